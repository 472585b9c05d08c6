"""The classic DCGAN on MNIST (Radford et al. 2016), for comparison with the default.

  python -m jaxgan.main --config=configs/mnist_dcgan_classic.py --workdir=runs/mnist_classic

configs/common.py's values as they are: BCE loss with the non-saturating G loss, batch norm in
both networks, LeakyReLU(0.2) in D, transposed convolutions up and strided convolutions down,
Gaussian latents, one D step per G step, Adam(2e-4, b1=0.5) for both, batch 64, no EMA; no
labels and no clusters. What it reaches in 5,000 steps: docs/results.md.
"""

import ml_collections

from jaxgan.configs import common


def get_config() -> ml_collections.ConfigDict:
  config = common.base()
  config.num_steps = 5000
  config.data = common.mnist_data()
  config.eval_every = 2500
  return config
