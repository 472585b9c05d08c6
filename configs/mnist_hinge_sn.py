"""SNGAN-style (Miyato et al. 2018) on MNIST: hinge loss, spectrally normalised D, G's EMA.

  python -m jaxgan.main --config=configs/mnist_hinge_sn.py --workdir=runs/mnist_hinge_sn

Runtime: 2,000 iterations trained in 234 s (8.5 steps/s) on the 2-core CPU of
docs/results.md, shared with other work, so its 6,000 take about 12 minutes, plus compilation
and 6-10 s per evaluation. What it reached at 1,000 and 2,000: docs/results.md.
"""

from configs import mnist_dcgan_classic


def get_config():
  config = mnist_dcgan_classic.get_config()
  config.train.loss = 'hinge'
  config.model.spectral_norm = True
  config.model.d_norm = 'none'  # spectral norm takes batch norm's place in D
  config.train.ema_decay = 0.999  # sample grids from G's moving average
  config.train.ema_start = 1000
  config.num_steps = 6000
  return config
