"""Differentiable augmentation of everything D sees (DiffAugment, Zhao et al. 2020), applied with
a probability `p` that may adapt to D's overfitting (ADA, Karras et al. 2020).

With little data, D memorises the real images and its feedback to G degrades. Augmenting real
and fake images alike, in both steps, makes D's task harder without leaking the augmentations
into G's samples: G is trained through the augmentation (every op here is differentiable w.r.t.
the images), so it must produce un-augmented images that look real after augmentation.

Images are NHWC floats in [-1, 1]. Every op draws its parameters per image from `key` and is
applied to each image with probability `p`; p=0 returns the images unchanged (bit for bit),
p=1 is plain DiffAugment. No Python control flow depends on traced values, so the ops run under
jit and lax.scan, and `p` may be a traced scalar (adaptive).

Besides DiffAugment's ops, ADA's own pipelines (`jaxgan.ada`) are ops here: 'bgc' (pixel
blitting, general geometric and colour transformations, as ADA trains), 'bg' and 'gc'.
"""

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxgan import ada

OPS = ('color', 'translation', 'cutout')
PIPES = tuple(ada.PIPES)  # ADA's pipelines: each one op here, of many ops inside
_NAMES = OPS + PIPES  # an op's draws come from a key folded with its index here: new ones last


def parse(spec: str) -> tuple[str, ...]:
  """('color', 'cutout') from 'color,cutout'; () from ''. Raises ValueError on an unknown op."""
  ops = tuple(s.strip() for s in spec.split(',') if s.strip())
  for op in ops:
    if op not in _NAMES:
      raise ValueError(f'unknown augmentation {op!r}; expected some of {", ".join(_NAMES)}')
  return ops


def _draws(key: jax.Array, x: jax.Array, k: int) -> jax.Array:
  """(k, N) uniforms in [0, 1): all of an op's numbers for N images in one draw, which keeps
  the compiled step small (each draw is a threefry hash in the program)."""
  return jax.random.uniform(key, (k, x.shape[0]))


def _randint(u: jax.Array, lo: int, hi: int) -> jax.Array:
  """Integers uniform in [lo, hi] from uniforms u in [0, 1)."""
  return lo + jnp.minimum(jnp.floor(u * (hi - lo + 1)).astype(jnp.int32), hi - lo)


def _coin(u: jax.Array, p) -> jax.Array | None:
  """Which images an op applies to: None where p is statically 1 (all of them)."""
  if isinstance(p, int | float) and p >= 1:
    return None
  return u < p  # u lies in [0, 1), so p=0 (traced or not) selects none


def _select(apply: jax.Array | None, new: jax.Array, x: jax.Array) -> jax.Array:
  if apply is None:
    return new
  return jnp.where(apply[:, None, None, None], new, x)


def color(x: jax.Array, key: jax.Array, p=1.0) -> jax.Array:
  """Brightness + U[-0.5, 0.5), saturation x U[0, 2), contrast x U[0.5, 1.5), per image.

  Saturation scales each pixel's channels' distances from their mean (the pixel's gray), so
  grayscale images (C=1) are unchanged by it; contrast scales each image's distance from its
  overall mean.
  """
  if isinstance(p, int | float) and p <= 0:
    return x
  coin, *factors = _draws(key, x, 4)
  bright, sat, contrast = (f.astype(x.dtype)[:, None, None, None] for f in factors)
  y = x + (bright - 0.5)
  mean = jnp.mean(y, axis=3, keepdims=True)
  y = (y - mean) * (2 * sat) + mean
  mean = jnp.mean(y, axis=(1, 2, 3), keepdims=True)
  y = (y - mean) * (contrast + 0.5) + mean
  return _select(_coin(coin, p), y, x)


def _shift(x: jax.Array, shift: jax.Array, axis: int) -> jax.Array:
  """x moved by shift[i] whole pixels along `axis` (1: down, 2: right), zeros shifted in.

  A gather along one axis: its gradient is the reverse shift, and it stays exact on any
  backend (a one-hot matmul would not be, with TF32 on GPUs).
  """
  size = x.shape[axis]
  src = jnp.arange(size)[None, :] - shift[:, None]  # (N, size): where each output pixel reads
  inside = (src >= 0) & (src < size)
  index_shape = [x.shape[0], 1, 1, 1]
  index_shape[axis] = size
  src = jnp.clip(src, 0, size - 1).reshape(index_shape)
  moved = jnp.take_along_axis(x, src, axis=axis, mode='clip')
  return jnp.where(inside.reshape(index_shape), moved, jnp.zeros((), x.dtype))


def translation(x: jax.Array, key: jax.Array, p=1.0, ratio: float = 0.125) -> jax.Array:
  """Shifts each image by whole pixels, at most round(ratio * size) each way, zero filled."""
  if isinstance(p, int | float) and p <= 0:
    return x
  coin, u_y, u_x = _draws(key, x, 3)
  h, w = x.shape[1:3]
  max_y, max_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
  dy, dx = _randint(u_y, -max_y, max_y), _randint(u_x, -max_x, max_x)
  y = _shift(_shift(x, dy, 1), dx, 2)
  return _select(_coin(coin, p), y, x)


def cutout(x: jax.Array, key: jax.Array, p=1.0, ratio: float = 0.5) -> jax.Array:
  """Zeroes a square of round(ratio * size) pixels a side in each image.

  As in DiffAugment, the square's centre is uniform over the image, so a square near an edge
  hangs over it and zeroes only its part inside: the border is cut as often as the centre.
  """
  if isinstance(p, int | float) and p <= 0:
    return x
  coin, u_y, u_x = _draws(key, x, 3)
  h, w = x.shape[1:3]
  size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
  # Top-left corners from -size // 2 to h - size // 2 (centres 0 .. h) inclusive.
  top = _randint(u_y, -(size_y // 2), h - size_y // 2)
  left = _randint(u_x, -(size_x // 2), w - size_x // 2)
  rows = jnp.arange(h)[None, :] - top[:, None]
  cols = jnp.arange(w)[None, :] - left[:, None]
  cut = ((rows >= 0) & (rows < size_y))[:, :, None] & ((cols >= 0) & (cols < size_x))[:, None, :]
  y = jnp.where(cut[..., None], jnp.zeros((), x.dtype), x)
  return _select(_coin(coin, p), y, x)


_FNS = {'color': color, 'translation': translation, 'cutout': cutout} | {
  name: functools.partial(ada.augment, ops=ops) for name, ops in ada.PIPES.items()
}


def augment(x: jax.Array, key: jax.Array, ops: Sequence[str], p=1.0) -> jax.Array:
  """`ops` applied in the order given, each to each image with probability p.

  Each op draws from a key of its own (folded from `key` with its index in OPS + PIPES), so
  turning one op on or off leaves the others' draws as they were.
  """
  for op in ops:
    x = _FNS[op](x, jax.random.fold_in(key, _NAMES.index(op)), p)
  return x


def adjust_p(p: jax.Array, rt: jax.Array, target: float, images: int, kimg: float) -> jax.Array:
  """ADA's update of p after `images` real images with overfitting heuristic `rt` (mean sign
  of D's logits on them): up when rt > target, down when below, by images / (kimg * 1000),
  so that p could go from 0 to 1 in kimg thousand images; clipped to [0, 1]."""
  step = jnp.sign(rt - target) * (images / (kimg * 1000.0))
  return jnp.clip(p + step, 0.0, 1.0).astype(jnp.float32)


def check_spec(v) -> str | None:
  """Config check of train.augment."""
  if not isinstance(v, str):
    return f'must be a string of comma-separated ops ({", ".join(_NAMES)}), got {v!r}'
  try:
    parse(v)
  except ValueError as e:
    return f'is {v!r}: {e}'
  return None


def check_p(v) -> str | None:
  """Config check of train.augment_p."""
  if v == 'adaptive':
    return None
  if isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1:
    return None
  return f"must be a number in [0, 1] or 'adaptive', got {v!r}"
