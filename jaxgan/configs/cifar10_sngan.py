"""SNGAN on CIFAR-10 (Miyato et al. 2018): ResNet G and D, spectral norm in D, hinge loss.

  python -m jaxgan.main --config=configs/cifar10_sngan.py --workdir=runs/cifar10_sngan
  python -m jaxgan.main --config=configs/cifar10_sngan.py:folder --workdir=runs/cifar10_sngan \
    --config.data.dir=/tmp/data/cifar10-jpg   # offline: the JPEGs, train/ and test/ inside

The paper's CIFAR-10 ResNet setting: G of width 256 with three up blocks from 4x4 and batch
norm, D of width 128 with four blocks (two downsampling) and spectral norm on every layer,
hinge loss, 5 D updates per G update, Adam(2e-4, b1=0, b2=0.9) for both, batch 64, z of 128
Gaussian numbers, 50,000 G updates (jaxgan.models.resnet has the blocks and the 64-256 px
widths). For learning rates that decay linearly to 0 over the run, as some reimplementations
use: --config.optim.schedule=linear. Data sources and evaluation (every 1,000 G updates, in
jaxgan's CIFAR-10 classifier's features) as in configs/cifar10_dcgan.py. The full run is meant
for a GPU: on a 2-core CPU one iteration takes seconds (docs/benchmarks.md, "The recipes'
run times").

On a CPU, `:cpu` (`:folder,cpu` for the JPEG folder) narrows it to a CPU-sized run
(docs/results.md, "SNGAN's `:cpu` option", has its time, figures and grids): the same blocks
32 channels wide, 1 D update per G update, Adam 1e-3 for G and 5e-4 for D (b1=0,
b2=0.9), standing batch-norm statistics for sampling, 3,000 iterations, evaluated every 500.
Its grids show CIFAR-like objects by the end:

  python -m jaxgan.main --config=configs/cifar10_sngan.py:folder,cpu \
    --workdir=runs/cifar10_sngan_cpu --config.data.dir=/tmp/data/cifar10-jpg
"""

import ml_collections

from jaxgan import config as config_lib
from jaxgan.configs import common


def resnet_model(conditional: bool = False) -> ml_collections.ConfigDict:
  """SNGAN's CIFAR-10 networks as a `config.model` section of the resnet family (whose
  defaults, jaxgan.models.resnet.SCHEMA, are these: G of width 256 with three up blocks from
  4x4, D of width 128 with four blocks, two downsampling, spectral norm in D), z of 128."""
  model = config_lib.defaults('resnet', 'cifar10').model
  model.latent_dim = 128
  model.conditional = conditional  # conditional batch norm in G, projection D
  return model


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: the data source ('' or 'cifar10' for the tarball, 'folder'), and 'cpu' for the
  CPU-sized run, comma-separated: 'folder,cpu'."""
  source, flags = common.options(arg, ('cpu',))
  cpu = 'cpu' in flags
  config = common.base()
  # --- Run: 50,000 G updates (:cpu 3,000) ---
  config.num_steps = 3000 if cpu else 50_000
  config.sample_every = config.checkpoint_every = 500 if cpu else 1000
  # --- Data ---
  config.data = common.cifar10_data(source)
  config.data.mirror = True
  # --- Model: 32 channels wide for :cpu ---
  config.model = resnet_model()
  if cpu:
    config.model.g_ch = config.model.d_ch = 32
  # --- Optim ---
  config.optim.g_lr, config.optim.d_lr = (1e-3, 5e-4) if cpu else (2e-4, 2e-4)
  config.optim.b1, config.optim.b2 = 0.0, 0.9
  # --- Train ---
  config.train.loss = 'hinge'
  config.train.d_steps = 1 if cpu else 5
  config.train.standing_stats = 10 if cpu else 0  # 0: the running averages of training
  # --- Eval ---
  config.eval_every = 500 if cpu else 1000
  config.eval_features = 'cifar10_classifier'  # as in configs/cifar10_dcgan.py
  return config
