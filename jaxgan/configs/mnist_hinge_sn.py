"""SNGAN-style (Miyato et al. 2018) on MNIST: hinge loss, spectrally normalised D, G's EMA.

  python -m jaxgan.main --config=configs/mnist_hinge_sn.py --workdir=runs/mnist_hinge_sn

The classic DCGAN otherwise (configs/mnist_dcgan_classic.py), for 6,000 iterations. What it
reached at 1,000 and 2,000 iterations and how long they took on a 2-core CPU: docs/results.md,
"The recipes in a fixed budget".
"""

from jaxgan.configs import mnist_dcgan_classic


def get_config():
  config = mnist_dcgan_classic.get_config()
  config.num_steps = 6000
  config.model.spectral_norm = True
  config.model.d_norm = 'none'  # spectral norm takes batch norm's place in D
  config.train.loss = 'hinge'
  config.train.ema_decay = 0.999  # sample grids from G's moving average
  config.train.ema_start = 1000
  return config
