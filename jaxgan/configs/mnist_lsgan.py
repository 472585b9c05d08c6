"""LSGAN (Mao et al. 2017) on MNIST: least-squares loss (targets real 1, fake 0), DCGAN otherwise.

  python -m jaxgan.main --config=configs/mnist_lsgan.py --workdir=runs/mnist_lsgan

The classic DCGAN otherwise (configs/mnist_dcgan_classic.py). What it reached at 1,000 and
2,000 iterations and how long they took on a 2-core CPU: docs/results.md, "The recipes in a
fixed budget".
"""

from jaxgan.configs import mnist_dcgan_classic


def get_config():
  config = mnist_dcgan_classic.get_config()
  config.train.loss = 'least_squares'
  return config
