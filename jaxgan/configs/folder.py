"""DCGAN on a folder of your own images (64x64 RGB by default), prepared once into a cache.

  python -m jaxgan.main --config=configs/folder.py --workdir=runs/faces --config.data.dir=PATH

The first run decodes, center-crops and resizes every image under PATH on all cores into
~/.cache/jaxgan/folder (README "Your own images"); later runs read that cache in seconds.
The networks are DCGAN's at 64x64 with DCGAN's hyperparameters (configs/common.py): G dense ->
4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3, D the mirror image. At another
resolution the same widths start G from a map 16 times smaller (2x2 at 32 px); for DCGAN's 4x4
start at 32 px pass --config.model.g_features='(256,128,64)'
--config.model.d_features='(64,128,256)'. No feature network measures arbitrary images yet, so
evaluation is off (eval_every=0). Its speed on a 2-core CPU and at preparing images:
docs/benchmarks.md, "The recipes' run times"; use a GPU or TPU for real runs. Override any
field with --config.KEY=VALUE.
"""

import ml_collections

from jaxgan.configs import common


def get_config() -> ml_collections.ConfigDict:
  config = common.base()
  # --- Run ---
  config.num_steps = 20_000
  config.sample_every = 1000
  # --- Data ---
  config.data = common.folder_data(resolution=64)
  # --- Model ---
  config.model.g_features = (512, 256, 128, 64)  # G: dense -> 4x4x512 -> ... -> 64x64x3
  config.model.d_features = (64, 128, 256, 512)  # D: 64x64 -> 32x32x64 -> ... -> 4x4x512
  # --- Eval ---
  config.eval_every = 0  # no feature network for arbitrary images yet
  return config
