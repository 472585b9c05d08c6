"""R3GAN (Huang et al. 2024) on a folder of your images: the `FFHQ-64` and `FFHQ-256` presets
of brownvc/R3GAN's train.py, chosen by the resolution.

  python -m jaxgan.main --config=r3gan_folder:64 --workdir=runs/r3gan_ffhq64 \
    --config.data.dir=PATH
  python -m jaxgan.main --config=r3gan_folder:256 --workdir=runs/r3gan_ffhq256 \
    --config.data.dir=PATH
  python -m jaxgan.main --config=r3gan_folder:64,cpu --workdir=runs/r3gan_folder_cpu \
    --config.data.dir=PATH

The presets (`jaxgan.models.r3gan.PRESETS`): G and D of stages from 4x4 up of widths 768 (four
stages), then 384, 192, 96, cardinality 96 then 48, 24, 12, 2 blocks each, noise 64; batch
256; RpGAN with R1 and R2 at one gamma; Adam with b1 = 0; cosine schedules over 20M images
(then held): both learning rates 2e-4 -> 5e-5, b2 0.9 -> 0.99, gamma 2 -> 0.2 at 64 px and
150 -> 15 at 256 px, G's EMA half-life 0 -> 500k images, the augmentation probability 0 -> 0.3
(configs/r3gan_cifar10.py says how the pipeline differs from the official one); x-flips of
the data. The folder is prepared once into a cache (README "Your own images").

Options, comma-separated: the resolution ('64', the default, or '256'), 'cond' (classes from
the folder's sub-folders, data.labels=folders), 'cpu' (64 px only: narrow networks at batch
32, a run sized for 15-20 minutes on a 2-core CPU, every schedule over the run's length, the
EMA's half-life to 10k images). No feature network measures arbitrary images yet, so
evaluation is off (eval_every=0).
"""

import ml_collections

from jaxgan.configs import common
from jaxgan.configs.r3gan_cifar10 import (
  SCHEDULE_KIMG,
  r3gan_model,
  r3gan_training,
  steps_per_call,
)

# resolution: (model preset, gamma from, to)
PRESETS = {64: ('ffhq64', (2.0, 0.2)), 256: ('ffhq256', (150.0, 15.0))}


def _options(arg: str) -> tuple[int, set[str]]:
  given = [a for a in arg.split(',') if a]
  sizes = [a for a in given if a.isdigit()]
  flags = set(given) - set(sizes)
  bad = len(sizes) > 1 or len(given) != len(set(given)) or not flags <= {'cond', 'cpu'}
  resolution = int(sizes[0]) if sizes else 64
  if bad or resolution not in PRESETS or ('cpu' in flags and resolution != 64):
    raise ValueError(
      f"bad config argument {arg!r}: give a resolution ('64' or '256'; 'cpu' with 64 only) and "
      "optionally 'cond', 'cpu', comma-separated (e.g. '64,cpu')"
    )
  return resolution, flags


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  resolution, flags = _options(arg)
  cpu = 'cpu' in flags
  preset, gamma = PRESETS[resolution]
  config = common.base()
  # --- Run ---
  config.batch_size = 32 if cpu else 256
  # The official run has no set length: the schedules' 20M images. :cpu from jaxgan.bench's
  # steps/s at this shape, measured before the faster grouped convolutions and one step per
  # call (docs/benchmarks.md): not re-sized since.
  config.num_steps = 90 if cpu else 20_000_000 // 256
  config.sample_every = config.checkpoint_every = 30 if cpu else 5000
  config.steps_per_call = steps_per_call(cpu)
  # --- Data ---
  config.data = common.folder_data(resolution)
  config.data.mirror = True
  if 'cond' in flags:
    config.data.labels = 'folders'
  # --- Model ---
  config.model = r3gan_model(preset)
  if cpu:  # the preset's shape at 1/24 of its width, 16 channels per group as in it
    config.model.update(widths=(32,) * 5, cardinalities=(4,) * 5, blocks=(1,) * 5)
  config.model.conditional = 'cond' in flags
  # --- Optim, Train ---
  r3gan_training(config, gamma, 10 if cpu else 500, 0.3, None if cpu else SCHEDULE_KIMG)
  # --- Eval ---
  config.eval_every = 0  # no feature network for arbitrary images yet
  return config
