"""SNGAN-style (Miyato et al. 2018) on MNIST: hinge loss, spectrally normalised D, G's EMA.

  python -m jaxgan.main --config=configs/mnist_hinge_sn.py --workdir=runs/mnist_hinge_sn

Runtime: measured with `--config.num_steps=100` on this 2-core CPU while it was shared (load
~4.7): 2.6-3.3 steps/s after a 16 s compile, where configs/mnist.py ran 2.5-4.2 steps/s; about
the default's speed: 6000 steps in 30-40 minutes. Uncontended, scale by configs/mnist.py's own
speed.
"""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.train.loss = 'hinge'
  config.model.spectral_norm = True
  config.model.d_norm = 'none'  # spectral norm takes batch norm's place in D
  config.train.ema_decay = 0.999  # sample grids from G's moving average
  config.train.ema_start = 1000
  config.num_steps = 6000
  return config
