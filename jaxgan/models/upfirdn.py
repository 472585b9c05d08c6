"""FIR resampling of NHWC images (upfirdn2d's semantics, Karras et al. 2020), and the
resampling convolutions StyleGAN2 builds from it.

`upfirdn2d(x, f, up, down, padding, gain)`, per spatial axis: upsample by inserting up - 1
zeros after every sample, pad (negative: crop), convolve with the FIR filter `f` and keep every
`down`-th sample. The filters here are separable (a 1-D `f` filters both axes), as StyleGAN2's
[1, 3, 3, 1] is; each axis is filtered by shifted slices, which XLA fuses on every backend.

Conventions follow stylegan2-ada-pytorch's, so that its weights apply unchanged (after the
NCHW -> NHWC transposes): its upsampling layers convolve (the kernel flipped), its other
layers correlate, as `lax.conv_general_dilated` does.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgan import convs

_DN = ('NHWC', 'HWIO', 'NHWC')


def setup_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> np.ndarray:
  """The 1-D filter, normalised to unit sum: it keeps a constant signal's value."""
  f = np.asarray(taps, np.float64)
  return (f / f.sum()).astype(np.float32)


def _pair(padding: int | tuple[int, int]) -> tuple[int, int]:
  return (padding, padding) if isinstance(padding, int) else tuple(padding)


def _fir_axis(x: jax.Array, taps: np.ndarray, axis: int, down: int) -> jax.Array:
  """The valid convolution of x with `taps` along `axis`, every `down`-th output kept."""
  n = (x.shape[axis] - len(taps)) // down + 1
  if n < 1:
    raise ValueError(f'{x.shape[axis]} samples are fewer than the filter has taps ({len(taps)})')
  flipped = taps[::-1]  # convolution, not correlation (the same for symmetric filters)
  out = None
  for k, t in enumerate(flipped):
    term = float(t) * lax.slice_in_dim(x, k, k + (n - 1) * down + 1, down, axis)
    out = term if out is None else out + term
  return out


def upfirdn2d(
  x: jax.Array,
  f: np.ndarray,
  up: int = 1,
  down: int = 1,
  padding: int | tuple[int, int] = 0,
  gain: float = 1.0,
) -> jax.Array:
  """x (N, H, W, C) upsampled by `up`, padded by `padding` (before, after; the same on both
  axes), filtered by the separable filter `f` times `gain` (overall) and downsampled by
  `down`. Output side: (H * up + before + after - len(f)) // down + 1."""
  p0, p1 = _pair(padding)
  # Interior padding inserts the zeros between samples; the up - 1 after the last one go on
  # the trailing edge. Negative edge padding crops.
  spec = (p0, p1 + up - 1, up - 1)
  x = lax.pad(x, np.zeros((), x.dtype), ((0, 0, 0), spec, spec, (0, 0, 0)))
  taps = np.asarray(f, np.float64) * np.sqrt(gain)  # half the gain on each axis
  return _fir_axis(_fir_axis(x, taps, 1, down), taps, 2, down)


def upsample2d(x: jax.Array, f: np.ndarray, up: int = 2) -> jax.Array:
  """`up` times the height and width: zeros inserted, then the filter times up**2, which
  keeps a constant signal's value."""
  k = len(f)
  return upfirdn2d(x, f, up=up, padding=((k + up - 1) // 2, (k - up) // 2), gain=up**2)


def downsample2d(x: jax.Array, f: np.ndarray, down: int = 2) -> jax.Array:
  """1/`down` the height and width: filtered, then every `down`-th sample kept."""
  k = len(f)
  return upfirdn2d(x, f, down=down, padding=((k - down + 1) // 2, (k - down) // 2))


# On XLA:CPU the resampling convolutions below avoid the lhs-dilated and strided convolutions,
# and autodiff's kernel-gradient convolutions, that XLA:CPU runs slowly, inside the trainer's
# while loop and in R1's double backward most of all (docs/benchmarks.md,
# benchmarks/stylegan2_ops.py). Upsampling: [1, 3, 3, 1] / 8 is [1, 2, 1] / 4 convolved with
# [1, 1] / 2; the [1, 1] half goes into a 4-tap kernel (tap k sums the 3x3 kernel's taps k - 1
# and k along each axis) for jaxgan.convs's transposed convolution, the [1, 2, 1] half stays a
# filter. Downsampling: the filter, then `conv2d` at full size, every second output kept: four
# times the multiplies of the strided form, but R1 differentiates it twice fast.
_SPLIT = (np.array([1, 2, 1], np.float32) / 4, np.array([1, 1], np.float32) / 2)
_PAIR_TAPS = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], np.float32)


def _fast(w: jax.Array, f: np.ndarray) -> bool:
  """Whether the forms above apply: on CPU, a 3x3 kernel, the [1, 3, 3, 1] filter."""
  four = len(f) == 4 and np.allclose(np.asarray(f, np.float64), np.convolve(*_SPLIT))
  return jax.default_backend() == 'cpu' and w.shape[0] == 3 and four


def _pair_kernel(w: jax.Array, scale: float) -> jax.Array:
  """The (4, 4, in, out) kernel of w (3, 3, in, out) convolved with [1, 1] * scale on both
  axes."""
  t = _PAIR_TAPS * scale
  return jnp.einsum('ay,bx,yxio->abio', t, t, w, precision=lax.Precision.HIGHEST)


@jax.custom_vjp
def conv2d(x: jax.Array, w: jax.Array) -> jax.Array:
  """Stride-1 correlation with an odd (k, k, in, out) kernel, padded to keep the size
  (`convs.conv_same`, fast on XLA:CPU). Its input gradient is conv2d again, so that R1's
  double backward differentiates it by these products too, not by autodiff's kernel-gradient
  convolution, which XLA:CPU runs slowly (docs/benchmarks.md)."""
  return convs.conv_same(x, w)


def _conv2d_fwd(x, w):
  return conv2d(x, w), (x, w)


def _conv2d_bwd(res, dy):
  x, w = res
  dx = conv2d(dy, w[::-1, ::-1].swapaxes(2, 3).astype(dy.dtype))  # the adjoint
  dw = convs._same_wgrad(x, dy, w.shape[0])
  return dx.astype(x.dtype), dw.astype(w.dtype)


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def conv2d_reference(x: jax.Array, w: jax.Array) -> jax.Array:
  """`conv2d` as XLA's convolution, differentiated by JAX itself."""
  p = w.shape[0] // 2
  return lax.conv_general_dilated(x, w, (1, 1), ((p, p), (p, p)), dimension_numbers=_DN)


def upsample_conv2d(x: jax.Array, w: jax.Array, f: np.ndarray) -> jax.Array:
  """Twice the height and width: upsample2d with filter `f`, then convolve (the kernel
  flipped) with w (k, k, in, out), k odd, padded to keep the size; computed the other way
  round, all at once: a transposed convolution (no multiplies by the inserted zeros), then
  the filter on what it leaves. On XLA:CPU, for 3x3 and [1, 3, 3, 1], by jaxgan.convs's
  transposed convolution (see above)."""
  if _fast(w, f):
    return _upsample_conv2d_s2(x, w, f)
  return upsample_conv2d_reference(x, w, f)


def upsample_conv2d_reference(x: jax.Array, w: jax.Array, f: np.ndarray) -> jax.Array:
  """`upsample_conv2d` as XLA's lhs-dilated convolution, differentiated by JAX itself."""
  k, taps = w.shape[0], len(f)
  # Padding of the zero-inserted (2H - 1)-sample signal in upfirdn2d's order of operations.
  before, after = k // 2 + (taps + 1) // 2, k // 2 + (taps - 2) // 2 + 1
  # The full convolution takes k - 1 on each side; the filter gets the rest.
  x = lax.conv_general_dilated(
    x, w[::-1, ::-1], (1, 1), ((k - 1, k - 1),) * 2, lhs_dilation=(2, 2), dimension_numbers=_DN
  )
  return upfirdn2d(x, f, padding=(before - k + 1, after - k + 1), gain=4)


def conv2d_downsample(x: jax.Array, w: jax.Array, f: np.ndarray) -> jax.Array:
  """Half the height and width: filter `f`, then correlate with w (k, k, in, out), k odd,
  with stride 2; for k = 1, downsample2d then the 1x1 product. On XLA:CPU, for 3x3 and
  [1, 3, 3, 1], at full size, every second output kept."""
  if _fast(w, f):
    return _conv2d_downsample_full(x, w, f)
  if w.shape[0] == 1:
    return conv2d(downsample2d(x, f), w)
  return conv2d_downsample_reference(x, w, f)


def conv2d_downsample_reference(x: jax.Array, w: jax.Array, f: np.ndarray) -> jax.Array:
  """`conv2d_downsample` as XLA's strided convolution, differentiated by JAX itself."""
  k, taps = w.shape[0], len(f)
  if k == 1:
    return lax.conv_general_dilated(downsample2d(x, f), w, (1, 1), 'VALID', dimension_numbers=_DN)
  p = k // 2
  x = upfirdn2d(x, f, padding=(p + (taps - 1) // 2, p + (taps - 2) // 2))
  return lax.conv_general_dilated(x, w, (2, 2), 'VALID', dimension_numbers=_DN)


def _upsample_conv2d_s2(x: jax.Array, w: jax.Array, f: np.ndarray) -> jax.Array:
  """`upsample_conv2d` with [1, 3, 3, 1] and a 3x3 kernel: the 4x4 transposed convolution of x
  padded by one zero (its full output, the border the filter needs included), then [1, 2, 1].
  The gain 4 is 2 per axis: [1, 1] / 2 times 2."""
  del f  # _SPLIT's
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  y = convs.conv_transpose_4x4s2(xp, _pair_kernel(w, 1.0).astype(x.dtype))
  y = upfirdn2d(y, _SPLIT[0])
  return y[:, 1 : 1 + 2 * x.shape[1], 1 : 1 + 2 * x.shape[2]]


def _conv2d_downsample_full(x: jax.Array, w: jax.Array, f: np.ndarray) -> jax.Array:
  """`conv2d_downsample` with a 3x3 kernel on XLA:CPU: the filter, then `conv2d` at full
  size, every second output kept (the stride-2 correlation's)."""
  u = upfirdn2d(x, f, padding=(2, 2))
  return conv2d(u, w)[:, 1::2, 1::2]
