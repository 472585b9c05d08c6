"""Samples from a trained run: `python -m jaxgan.sample --workdir=DIR --num_samples=N --out=FILE`.

FILE ending in .npz: uint8 images under the key `images` (N, H, W, C); ending in .png: a grid.
The latents for --seed are those `python -m jaxgan.evaluate --seed` measures.
"""

import os

import numpy as np
from absl import flags

from jaxgan import cli, evaluation
from jaxgan import images as images_lib
from jaxgan.errors import JaxganError
from jaxgan.evaluation import checkpoints


def sample(workdir: str, num_samples: int, out: str, checkpoint: str = 'latest', seed: int = 0):
  """Writes `num_samples` images of the run's checkpoint to `out` (.npz or .png)."""
  kind = os.path.splitext(out)[1].lower()
  if kind not in ('.npz', '.png'):
    raise JaxganError(f'--out must end in .npz or .png, got {out!r}')
  if num_samples < 1:
    raise JaxganError(f'--num_samples must be at least 1, got {num_samples}')
  _, gan, state = checkpoints.load(workdir, checkpoint)
  # The default batch size: with the same seed, the same latents as jaxgan.evaluate.
  generate_fn = evaluation.make_generate_fn(gan, state)
  samples = np.concatenate(list(evaluation.generate(generate_fn, num_samples, seed)))
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  if kind == '.png':
    images_lib.save_png(out, images_lib.grid(samples))
  else:
    np.savez_compressed(out, images=images_lib.to_uint8(samples))


def _define_flags() -> None:
  # Defined only when run as a program, so that tests and other tools can import `sample`.
  flags.DEFINE_string('workdir', None, 'A training run directory.')
  flags.DEFINE_integer('num_samples', None, 'How many images.')
  flags.DEFINE_string('out', None, 'Output file: .npz (uint8 images) or .png (a grid).')
  flags.DEFINE_string('checkpoint', 'latest', 'latest, best (checkpoints_best) or a step number.')
  flags.DEFINE_integer('seed', 0, 'Seeds the latent vectors.')
  flags.mark_flags_as_required(['workdir', 'num_samples', 'out'])


def main():
  FLAGS = flags.FLAGS
  cli.guarded(
    lambda: sample(FLAGS.workdir, FLAGS.num_samples, FLAGS.out, FLAGS.checkpoint, FLAGS.seed),
    FLAGS.verbose,
  )
  print(f'wrote {FLAGS.num_samples} samples to {FLAGS.out}')


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
