"""StyleGAN2(-ADA) on CIFAR-10: the official `cifar` spec of stylegan2-ada-pytorch's train.py.

  python -m jaxgan.main --config=stylegan2_cifar10 --workdir=runs/sg2_cifar10
  python -m jaxgan.main --config=stylegan2_cifar10:folder,cond,cpu --workdir=runs/sg2_cpu \
    --config.data.dir=/tmp/data/cifar10-jpg

The spec: batch 64, G and D of channel_base 32768 (widths 512 at every resolution up to
32x32), a mapping network of 2 layers, minibatch std over groups of 32, D without residual
shortcuts ('orig'); the non-saturating loss with R1 (gamma 0.01) every 16 D updates, no path
length penalty, no style mixing; Adam(0, 0.99) at 0.0025 with the learning rate and betas
corrected for the lazy intervals (G 4, D 16: optim.reg_intervals); G's EMA with a half-life
of 500k images, ramped up over the first 10M (0.05 of the images seen); ADA's 'bgc'
augmentation (jaxgan/ada.py) with its probability adapting towards an r_t of 0.6.
Options, comma-separated: the data source ('' or 'cifar10' for the tarball, 'folder'),
'cond' (class-conditional, as the paper's CIFAR-10 result), 'cpu' (narrow networks and a
shorter run for a CPU).

Evaluation in jaxgan's CIFAR-10 classifier's features as the other CIFAR-10 recipes (a
paper-comparable FID: python -m jaxgan.evaluate --workdir=... --metrics=fid50k_full).
"""

import ml_collections

from jaxgan import config as config_lib
from jaxgan.configs import common


def stylegan2_model(cpu: bool = False) -> ml_collections.ConfigDict:
  """The `cifar` spec's networks, or narrow ones for a CPU run (widths 128 down to 32)."""
  model = config_lib.defaults('stylegan2', 'cifar10').model
  model.latent_dim = 512
  model.mapping_layers = 2
  model.mbstd_group = 32
  model.d_architecture = 'orig'
  model.style_mixing = 0.0
  model.pl_weight = 0.0
  if cpu:
    model.latent_dim = model.w_dim = 128
    model.channel_base, model.channel_max = 1024, 128
    model.mbstd_group = 4
  return model


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  source, flags = common.options(arg, ('cond', 'cpu'))
  cpu = 'cpu' in flags
  config = common.base()
  # --- Run ---
  config.batch_size = 32 if cpu else 64
  # :cpu: about 15-20 minutes on a quiet 2-core CPU (docs/benchmarks.md, StyleGAN2).
  config.num_steps = 2500 if cpu else 1_562_500  # the spec: 100M images
  config.sample_every = config.checkpoint_every = 500 if cpu else 5000
  # --- Data ---
  config.data = common.cifar10_data(source)
  config.data.mirror = False  # the spec's default (--mirror=0)
  # --- Model ---
  config.model = stylegan2_model(cpu)
  config.model.conditional = 'cond' in flags
  if config.model.conditional:
    config.num_grid_samples = 100  # a row per class
  # --- Optim ---
  config.optim.g_lr = config.optim.d_lr = 0.0025
  config.optim.b1, config.optim.b2 = 0.0, 0.99
  config.optim.reg_intervals = (4, 16)
  # --- Train ---
  config.train.r1_weight, config.train.r1_every = 0.01, 16
  config.train.ema_start = 0
  config.train.ema_kimg = 'ramp(500, 10000)' if not cpu else 'ramp(5, 20)'
  config.train.augment = 'bgc'  # ADA's pipeline (jaxgan/ada.py)
  config.train.augment_p = 'adaptive'
  config.train.ada_kimg = 500 if not cpu else 20  # :cpu: p can move within its 80k images
  # --- Eval ---
  config.eval_every = 500 if cpu else 5000
  config.eval_features = 'cifar10_classifier'
  return config
