"""StyleGAN2(-ADA) on a folder of your own images, set up by resolution as stylegan2-ada-pytorch
sets up `--cfg=auto`, or with one of its fixed specs (`--cfg=stylegan2|paper256|paper512|
paper1024`).

  python -m jaxgan.main --config=stylegan2_folder:256 --workdir=runs/faces \
    --config.data.dir=PATH
  python -m jaxgan.main --config=stylegan2_folder:paper512,cond --workdir=runs/dogs \
    --config.data.dir=PATH --config.data.mirror=True

Argument, comma-separated: a spec ('auto', the default, or a fixed one), the resolution (a
power of two from 32 to 1024: 256 by default for 'auto' and 'stylegan2', the spec's own for
the paperN ones) and 'cond' (class-conditional; the classes are data.dir's sub-folders).
The resolution is an argument, not --config.data.resolution, because 'auto' sets the batch,
the widths, R1's gamma and the EMA from it. docs/stylegan2.md maps train.py's options to keys.

Every spec: G and D at channel_max 512, the non-saturating loss with R1 every 16 D updates
and the path-length penalty (weight 2) every 4 G updates, style mixing 0.9, Adam(0, 0.99)
corrected for those intervals, G's EMA by half-life, ADA's 'bgc' pipeline with p adapting
towards an r_t of 0.6 (train.py's defaults); a run of 25M images. The official specs assume
several GPUs; jaxgan trains the same global batch on all local devices. Evaluation is off
during training (no feature network of its own for arbitrary images); measure a run with
`python -m jaxgan.evaluate --workdir=W --metrics=fid50k_full` (real Inception weights).
"""

import ml_collections

from jaxgan.configs import common
from jaxgan.configs import stylegan2_cifar10 as cifar

# train.py's specs: batch, minibatch-std group, fmaps (channel_base = fmaps * 32768), learning
# rate, R1 gamma, EMA half-life in kimg and its ramp-up (None: none), mapping layers.
SPECS = {
  'stylegan2': dict(mb=32, mbstd=4, fmaps=1, lrate=0.002, gamma=10, ema=10, ramp=None, map=8),
  'paper256': dict(mb=64, mbstd=8, fmaps=0.5, lrate=0.0025, gamma=1, ema=20, ramp=None, map=8),
  'paper512': dict(mb=64, mbstd=8, fmaps=1, lrate=0.0025, gamma=0.5, ema=20, ramp=None, map=8),
  'paper1024': dict(mb=32, mbstd=4, fmaps=1, lrate=0.002, gamma=2, ema=10, ramp=None, map=8),
}
RUN_KIMG = 25_000


def auto_spec(resolution: int) -> dict:
  """train.py's `auto` spec for one device: the batch shrinks with the resolution to bound
  memory, and gamma follows its heuristic 0.0002 * res^2 / batch."""
  mb = min(4096 // resolution, 32)
  return dict(
    mb=mb,
    mbstd=min(mb, 4),
    fmaps=1 if resolution >= 512 else 0.5,
    lrate=0.002 if resolution >= 1024 else 0.0025,
    gamma=0.0002 * resolution**2 / mb,
    ema=mb * 10 / 32,
    ramp=0.05,
    map=2,
  )


def apply_spec(config: ml_collections.ConfigDict, spec: dict) -> None:
  """Sets the batch, widths, mapping depth, minibatch std, Adam, R1 and EMA of a spec."""
  config.batch_size = spec['mb']
  model = config.model
  model.channel_base, model.channel_max = int(spec['fmaps'] * 32768), 512
  model.mapping_layers, model.mbstd_group = spec['map'], spec['mbstd']
  config.optim.g_lr = config.optim.d_lr = spec['lrate']
  config.optim.b1, config.optim.b2 = 0.0, 0.99
  config.optim.reg_intervals = (4, 16)
  config.train.r1_weight, config.train.r1_every = spec['gamma'], 16
  config.train.ema_start = 0
  ema, ramp = spec['ema'], spec['ramp']
  # The ramp-up caps the half-life at `ramp` times the images seen: full from ema / ramp on.
  config.train.ema_kimg = ema if ramp is None else f'ramp({ema:g}, {ema / ramp:g})'


def _parse(arg: str) -> tuple[str, int | None, bool]:
  given = [a for a in arg.split(',') if a]
  specs = [a for a in given if a == 'auto' or a in SPECS]
  sizes = [a for a in given if a.isdigit()]
  if (
    len(specs) > 1
    or len(sizes) > 1
    or len(given) != len(set(given))
    or (set(given) - {*specs, *sizes, 'cond'})
  ):
    raise ValueError(
      f'bad config argument {arg!r}: give at most one spec (auto, {", ".join(SPECS)}), one '
      "resolution and optionally 'cond', comma-separated (e.g. 'paper256,cond' or '128')"
    )
  return (specs[0] if specs else 'auto'), (int(sizes[0]) if sizes else None), 'cond' in given


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  name, resolution, cond = _parse(arg)
  if resolution is None:
    resolution = int(name[5:]) if name.startswith('paper') else 256
  config = common.base()
  # --- Data ---
  config.data = common.folder_data(resolution)
  if cond:
    config.data.labels = 'folders'
  # --- Model ---
  config.model = cifar.stylegan2_model()
  config.model.conditional = cond
  config.model.d_architecture = 'resnet'
  config.model.style_mixing, config.model.pl_weight = 0.9, 2.0
  # --- Optim, train: the spec (with the run's batch) ---
  apply_spec(config, auto_spec(resolution) if name == 'auto' else SPECS[name])
  config.train.penalties = 'path_length'
  config.train.augment, config.train.augment_p = 'bgc', 'adaptive'
  config.train.ada_kimg = 500
  # --- Run ---
  config.num_steps = RUN_KIMG * 1000 // config.batch_size
  config.sample_every = config.checkpoint_every = (
    200_000 // config.batch_size
  )  # train.py's 50 ticks
  # --- Eval ---
  config.eval_every = 0  # no feature network of its own for arbitrary images
  return config
