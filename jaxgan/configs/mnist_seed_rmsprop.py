"""The seed notebook's recipe: the DCGAN trained with RMSProp (1.5e-4) and dropout.

  python -m jaxgan.main --config=configs/mnist_seed_rmsprop.py --workdir=runs/mnist_rmsprop

The project's seed was a notebook training a DCGAN on MNIST with RMSProp at learning rate
1.5e-4 and dropout in the networks; this is that recipe on jaxgan's classic DCGAN
(configs/mnist_dcgan_classic.py), with dropout 0.3 after D's activations. What it reaches:
docs/results.md.
"""

from jaxgan.configs import mnist_dcgan_classic


def get_config():
  config = mnist_dcgan_classic.get_config()
  config.model.d_dropout = 0.3
  config.optim.name = 'rmsprop'
  config.optim.g_lr = config.optim.d_lr = 1.5e-4
  config.optim.decay = 0.9
  return config
