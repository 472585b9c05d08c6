"""Stacked MNIST (28x28x3, three random digits, 1000 modes): the default DCGAN, mode coverage.

  python -m jaxgan.main --config=configs/stacked_mnist.py --workdir=runs/stacked_mnist
  python -m jaxgan.evaluate --workdir=runs/stacked_mnist  # modes_covered out of 1000, mode_kl

The generator takes its output shape from the data, so configs/mnist.py's DCGAN works as is.
Runtime: a little over configs/mnist.py's per step on a 2-core CPU (three output channels).
"""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.data.name = 'stacked_mnist'
  config.data.stacked_size = 60_000  # images built from the split, seed 0
  return config
