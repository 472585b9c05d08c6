"""LSGAN (Mao et al. 2017) on MNIST: least-squares loss (targets real 1, fake 0), DCGAN otherwise.

  python -m jaxgan.main --config=configs/mnist_lsgan.py --workdir=runs/mnist_lsgan

Runtime: measured with `--config.num_steps=100` on this 2-core CPU while it was shared (load
~4.7): 2.6-2.8 steps/s after a 15 s compile, where configs/mnist.py ran 2.5-4.2 steps/s; the
default's speed: 5000 steps in 30-35 minutes. Uncontended, scale by configs/mnist.py's own
speed.
"""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.train.loss = 'least_squares'
  return config
