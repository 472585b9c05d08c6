"""Stacked MNIST (28x28x3, three random digits, 1000 modes): the default DCGAN, mode coverage.

  python -m jaxgan.main --config=configs/stacked_mnist.py --workdir=runs/stacked_mnist
  python -m jaxgan.evaluate --workdir=runs/stacked_mnist  # modes_covered out of 1000, mode_kl

configs/mnist.py's DCGAN and training as they are (200 k-means clusters of the stacked
images, mode seeking, 4,000 steps; the generator takes its output shape from the data),
evaluated on the literature's 26,000 samples. The modes it covers, its mode KL and its run
time on a 2-core CPU: docs/results.md, "Stacked MNIST".
"""

from jaxgan.configs import mnist


def get_config():
  config = mnist.get_config()
  config.data.name = 'stacked_mnist'
  config.data.stacked_size = 60_000  # images built from the split, seed 0
  config.eval_every = config.num_steps
  config.eval_num_samples = 26_000  # as PacGAN and VEEGAN count modes
  return config
