"""Class-conditional SNGAN on CIFAR-10: projection D (Miyato & Koyama 2018), conditional BN in G.

  python -m jaxgan.main --config=configs/cifar10_sngan_cond.py --workdir=runs/cifar10_sngan_cond
  python -m jaxgan.main --config=configs/cifar10_sngan_cond.py:folder \
    --workdir=runs/cifar10_sngan_cond --config.data.dir=/tmp/data/cifar10-jpg

configs/cifar10_sngan.py with the labels: G's block norms take a gain and a bias per class,
D adds <embed(y), h> to its logit (the embedding spectrally normalised too); fakes get uniform
random classes. Sample grids have one row per class (a column shares one latent).

Runtime: as configs/cifar10_sngan.py's (the class gains, biases and projection add a few
per-channel operations to each layer), so a GPU run.
"""

import ml_collections

from jaxgan.configs import cifar10_sngan


def get_config(source: str = '') -> ml_collections.ConfigDict:
  config = cifar10_sngan.get_config(source)
  config.num_grid_samples = 100  # 10 rows (classes) x 10 columns (latents)
  config.model.conditional = True
  return config
