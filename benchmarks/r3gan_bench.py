"""R3GAN's train step at 32 px, for `jaxgan.bench --torch` (benchmarks/torch_r3gan.py's step).

  python -m jaxgan.bench --config=benchmarks/r3gan_bench.py --torch --steps=1 --rounds=2
  python -m jaxgan.bench --config=benchmarks/r3gan_bench.py:cpu --torch   # from the repo root

'' is the CIFAR10 preset (jaxgan.models.r3gan.PRESETS['cifar10']: 4 stages of width 768, 2
blocks each, cardinality 96) at batch 32; 'cpu' narrows it as the CPU recipe does (width 32,
cardinality 4: 16 channels per group as in the preset, 1 block per stage) at batch 64.
Unconditional, no augmentation, no EMA, constant Adam(2e-4, b1 = 0, b2 = 0.99): what changes
the work of a step is the loss and the penalties, R3GAN's where this jaxgan has them (the
`rpgan` loss, R1 and R2 on every D update, gamma 0.05); without them, the non-saturating loss
and R1 alone.
"""

import ml_collections

from jaxgan import config as config_lib
from jaxgan import objectives
from jaxgan.configs import common
from jaxgan.models import r3gan


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  _, flags = common.options(arg, ('cpu',))
  config = common.base()
  config.data = common.cifar10_data()
  config.model = config_lib.defaults('r3gan', 'cifar10').model
  config.model.update(r3gan.PRESETS['cifar10'])
  if 'cpu' in flags:
    config.model.update(widths=(32,) * 4, cardinalities=(4,) * 4, blocks=(1,) * 4)
  config.batch_size = 64 if 'cpu' in flags else 32
  config.num_steps = 1000  # not run: the bench times the step alone
  config.optim.g_lr = config.optim.d_lr = 2e-4
  config.optim.b1, config.optim.b2 = 0.0, 0.99
  config.train.r1_weight, config.train.r1_every = 0.05, 1
  if 'rpgan' in objectives.names() and 'r2_weight' in config.train:
    config.train.loss, config.train.r2_weight = 'rpgan', 0.05
  return config
