"""Samples from a trained run: `python -m jaxgan.sample --workdir=DIR --num_samples=N --out=FILE`.

FILE ending in .npz: uint8 images under the key `images` (N, H, W, C) and G's output before
that conversion under `raw` (float32, NHWC, in G's [-1, 1] range); ending in .png: a grid.
The latents for --seed are those `python -m jaxgan.evaluate --seed` measures; --latents (a
float32 (N, latent_dim) .npy) and --labels (int class ids, (N,)) choose G's inputs instead.
Generators that take them (StyleGAN2's) also take --truncation, --truncation_cutoff and
--noise; --style_mixing=ROWS,COLS draws StyleGAN's style-mixing figure as a .png.
"""

import os

import jax
import numpy as np
from absl import flags

from jaxgan import cli, sampling
from jaxgan import images as images_lib
from jaxgan.batch import FakeInputs
from jaxgan.errors import JaxganError
from jaxgan.evaluation import checkpoints


def _out_kind(out: str) -> str:
  kind = os.path.splitext(out)[1].lower()
  if kind not in ('.npz', '.png'):
    raise JaxganError(f'--out must end in .npz or .png, got {out!r}')
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  return kind


def load_inputs(gan, latents: str, labels: str | None = None) -> FakeInputs:
  """G's inputs from .npy files: latents (N, latent_dim) floats and, for a conditional G,
  labels (N,) ints in [0, classes). Read without pickles (nothing in them runs)."""
  z = _load_npy(latents, '--latents')
  if z.ndim != 2 or z.shape[1] != gan.latent_dim or not np.issubdtype(z.dtype, np.floating):
    raise JaxganError(
      f'--latents must hold a float (N, {gan.latent_dim}) array for this run, '
      f'got {z.dtype} {z.shape} in {latents!r}'
    )
  if not gan.g_classes:
    if labels:
      raise JaxganError("--labels given, but this run's generator takes no labels")
    return FakeInputs(z.astype(np.float32))
  if not labels:
    raise JaxganError(
      f"this run's generator is conditional ({gan.g_classes} classes): --labels is needed "
      'with --latents'
    )
  y = _load_npy(labels, '--labels')
  if y.shape != (len(z),) or not np.issubdtype(y.dtype, np.integer):
    raise JaxganError(f'--labels must hold ({len(z)},) ints, got {y.dtype} {y.shape}')
  if y.min() < 0 or y.max() >= gan.g_classes:
    raise JaxganError(f'--labels must be in [0, {gan.g_classes}), got {y.min()}..{y.max()}')
  z, y = z.astype(np.float32), y.astype(np.int32)
  return FakeInputs(z, codes=y) if gan.latent_classes else FakeInputs(z, y)


def _load_npy(path: str, flag: str) -> np.ndarray:
  try:
    return np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise JaxganError(f'{flag}: cannot read {path!r} as a .npy array ({e})') from e


def sample(
  workdir: str,
  num_samples: int | None,
  out: str,
  checkpoint: str = 'latest',
  seed: int = 0,
  inputs: tuple[str, str | None] | None = None,
  options: sampling.GOptions = sampling.NO_OPTIONS,
) -> int:
  """Writes images of the run's checkpoint to `out` (.npz or .png); returns how many.

  `inputs`: (latents .npy, labels .npy or None) to draw from, instead of `num_samples`
  latents of `seed` (which still seeds noise_mode 'random').
  """
  kind = _out_kind(out)
  if inputs is None and (num_samples is None or num_samples < 1):
    raise JaxganError(f'--num_samples must be at least 1, got {num_samples}')
  _, gan, state = checkpoints.load(workdir, checkpoint)
  try:
    if inputs is None:
      # The default batch size: with the same seed, the same latents as jaxgan.evaluate.
      generate_fn = sampling.make_generate_fn(gan, state, options=options)
      raw = np.concatenate(list(sampling.generate(generate_fn, num_samples, seed)))
    else:
      fake = load_inputs(gan, *inputs)
      if num_samples is not None and num_samples != len(fake.z):
        raise JaxganError(f'--num_samples={num_samples}, but --latents holds {len(fake.z)}')
      raw = np.concatenate(list(sampling.generate_from(gan, state, fake, options, seed)))
  except ValueError as e:
    raise JaxganError(str(e)) from e
  if kind == '.png':
    images_lib.save_png(out, images_lib.grid(raw))
  else:
    np.savez_compressed(out, images=images_lib.to_uint8(raw), raw=raw.astype(np.float32))
  return len(raw)


def style_mixing(
  workdir: str, out: str, shape: tuple[int, int], layers: tuple[int, int], seed: int = 0
) -> None:
  """Writes StyleGAN's style-mixing figure (`sampling.style_mixing`) of `shape` (rows,
  columns) latents of `seed`, the `layers` range taken from the columns, to a .png."""
  if _out_kind(out) != '.png':
    raise JaxganError('--style_mixing draws a grid: --out must end in .png')
  _, gan, state = checkpoints.load(workdir, 'latest')
  rows, cols = (
    gan.sample_inputs(jax.random.PRNGKey(seed + i), n, False) for i, n in enumerate(shape)
  )
  try:
    grid = sampling.style_mixing(gan, state, rows, cols, layers)
  except ValueError as e:
    raise JaxganError(str(e)) from e
  images_lib.save_png(out, images_lib.grid(grid, cols=shape[1] + 1))


def _pair(text: str, flag: str, sep: str) -> tuple[int, int]:
  try:
    a, b = (int(v) for v in text.split(sep))
  except ValueError as e:
    raise JaxganError(f'{flag} must be two integers A{sep}B, got {text!r}') from e
  return a, b


def _define_flags() -> None:
  # Defined only when run as a program, so that tests and other tools can import `sample`.
  flags.DEFINE_string('workdir', None, 'A training run directory.')
  flags.DEFINE_integer('num_samples', None, 'How many images (with --latents: optional).')
  flags.DEFINE_string('out', None, 'Output file: .npz (uint8 images, float32 raw) or .png.')
  flags.DEFINE_string('checkpoint', 'latest', 'latest, best (checkpoints_best) or a step number.')
  flags.DEFINE_integer('seed', 0, 'Seeds the latent vectors (and random noise).')
  flags.DEFINE_string('latents', None, 'A .npy of float32 (N, latent_dim) latents to sample.')
  flags.DEFINE_string('labels', None, 'A .npy of (N,) int class ids, with --latents.')
  flags.DEFINE_float('truncation', 1.0, 'Truncation psi toward w_avg (stylegan2); 1: none.')
  flags.DEFINE_integer('truncation_cutoff', None, 'Truncate only the first this many layers.')
  flags.DEFINE_enum('noise', None, sampling.NOISE_MODES, 'Noise inputs (stylegan2): default const.')
  flags.DEFINE_string('style_mixing', None, 'ROWS,COLS: a style-mixing grid (stylegan2), .png.')
  flags.DEFINE_string('mix_layers', '0-4', 'A-B: the layers [A, B) the columns give the rows.')
  flags.mark_flags_as_required(['workdir', 'out'])


def main():
  FLAGS = flags.FLAGS
  options = sampling.GOptions(FLAGS.truncation, FLAGS.truncation_cutoff, FLAGS.noise)

  def run():
    if FLAGS.style_mixing:
      shape = _pair(FLAGS.style_mixing, '--style_mixing', ',')
      style_mixing(
        FLAGS.workdir, FLAGS.out, shape, _pair(FLAGS.mix_layers, '--mix_layers', '-'), FLAGS.seed
      )
      return f'wrote a {shape[0]}x{shape[1]} style-mixing grid to {FLAGS.out}'
    inputs = (FLAGS.latents, FLAGS.labels) if FLAGS.latents else None
    if FLAGS.labels and not FLAGS.latents:
      raise JaxganError('--labels goes with --latents')
    n = sample(
      FLAGS.workdir, FLAGS.num_samples, FLAGS.out, FLAGS.checkpoint, FLAGS.seed, inputs, options
    )
    return f'wrote {n} samples to {FLAGS.out}'

  print(cli.guarded(run, FLAGS.verbose))


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
