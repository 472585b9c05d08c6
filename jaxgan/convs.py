"""Convolutions with custom VJPs that stay fast on XLA:CPU: the DCGAN's stride-2 ones (kernel 4,
padding 1, PyTorch's conventions) and a stride-1 'SAME' one. The flax layers built on them are
in jaxgan.models.layers; the XLA:CPU compiler options that go with them in jaxgan.xla_cpu.

Both stride-2 products keep a (4, 4, in, out) kernel with PyTorch's semantics, so weights move
between the two frameworks by a transpose. A training step needs three products per layer, and
the two layers share them, because the transposed convolution is the adjoint of the convolution:

  conv(x, k)           conv_4x4s2 forward; input gradient of conv_transpose_4x4s2
  conv_t(x, k)         conv_transpose_4x4s2 forward; input gradient of conv_4x4s2
  conv_wgrad(x, dy)    kernel gradient of both (with the roles of x and dy swapped)

Autodiff would write the kernel gradient of a transposed convolution as a convolution over an
lhs-dilated input, which XLA:CPU runs slowly, so both have custom VJPs built from the three
products, and each product picks, by channel count, the formulation that measured fastest on
XLA:CPU (docs/benchmarks.md has the per-op table). `conv_same` does the same for the 3x3
convolutions of the ResNet family and of DCGAN's `pixel_shuffle` and `avg_pool` options.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_DN = ('NHWC', 'HWIO', 'NHWC')
_PAD1 = ((0, 0), (1, 1), (1, 1), (0, 0))
# Below this many input channels a conv is an im2col matmul: XLA's convolution emitter is slow
# for such a thin contraction, and the patches (16 values per pixel per channel) are cheap.
_FEW_CHANNELS = 4
# Output phase r of a transposed conv row reads input rows (m - 1 + r, m + r) with these taps.
_PHASE_TAPS = np.array([[3, 1], [2, 0]])


def _xla_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DN)


def _im2col_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """conv as one matmul: space-to-depth of the padded input, then a 2x2 im2col."""
  n, h, w, c = x.shape
  hp, wp = h // 2 + 1, w // 2 + 1
  s = jnp.pad(x, _PAD1).reshape(n, hp, 2, wp, 2, c).transpose(0, 1, 3, 2, 4, 5)
  s = s.reshape(n, hp, wp, 4 * c)
  patches = jnp.concatenate(
    [s[:, a : a + hp - 1, b : b + wp - 1] for a in (0, 1) for b in (0, 1)], -1
  )
  k = kernel.reshape(2, 2, 2, 2, c, -1).transpose(0, 2, 1, 3, 4, 5)  # (a, b, dy, dx, c, o)
  return patches @ k.reshape(16 * c, -1)


def _conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """y[i] = sum_k x[2i + k - 1] @ kernel[k] per spatial axis."""
  kernel = kernel.astype(x.dtype)
  if x.shape[-1] <= _FEW_CHANNELS and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0:
    return _im2col_conv(x, kernel)
  return _xla_conv(x, kernel)


def _conv_t_dilated(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """conv_t as XLA's lhs-dilated convolution (autodiff's own form)."""
  pad = ((2, 2), (2, 2))
  k = kernel[::-1, ::-1]
  return lax.conv_general_dilated(x, k, (1, 1), pad, lhs_dilation=(2, 2), dimension_numbers=_DN)


def _conv_t_phases(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """conv_t as four stride-1 2x2 convolutions, one per output sub-pixel phase, interleaved."""
  n, h, w, _ = x.shape
  rows = []
  for ry in (0, 1):
    phases = []
    for rx in (0, 1):
      k = kernel[_PHASE_TAPS[ry]][:, _PHASE_TAPS[rx]]
      pad = ((1 - ry, ry), (1 - rx, rx))
      phases.append(lax.conv_general_dilated(x, k, (1, 1), pad, dimension_numbers=_DN))
    rows.append(jnp.stack(phases, axis=3))
  return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, kernel.shape[-1])


def _conv_t(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """y[2i + k - 1] += x[i] @ kernel[k] per spatial axis."""
  kernel = kernel.astype(x.dtype)
  # XLA's lhs-dilated form is fast for a thin output but slows down with batch size otherwise.
  if kernel.shape[-1] <= _FEW_CHANNELS:
    return _conv_t_dilated(x, kernel)
  return _conv_t_phases(x, kernel)


def _conv_wgrad(x: jax.Array, dy: jax.Array) -> jax.Array:
  """d conv(x, kernel) / d kernel applied to dy: sum_i x[2i + k - 1] (outer) dy[i]."""
  n, h, w, c = dy.shape[0], dy.shape[1], dy.shape[2], x.shape[-1]
  if c <= _FEW_CHANNELS:
    # One matmul over all output pixels, with the 16 taps of x as rows.
    xp = jnp.pad(x, _PAD1)[:, : 2 * h + 2, : 2 * w + 2]
    taps = [xp[:, a : a + 2 * h : 2, b : b + 2 * w : 2] for a in range(4) for b in range(4)]
    cols = jnp.stack(taps).transpose(0, 4, 1, 2, 3).reshape(16 * c, n * h * w)
    return (cols @ dy.reshape(n * h * w, -1)).reshape(4, 4, c, -1)
  # A convolution over the batch: x as (c, H, W, n) images with n features, dy as a (h, w, n, o)
  # kernel dilated by the stride. Autodiff's own form of it (jax.linear_transpose of the conv)
  # has non-canonical dimension labels, which XLA:CPU rewrites into this at the top level of a
  # program but not inside a while loop, where it ran many times slower (steps_per_call
  # > 1; docs/benchmarks.md).
  pad = ((1, 2 * h + 1 - x.shape[1]), (1, 2 * w + 1 - x.shape[2]))
  y = lax.conv_general_dilated(
    x.transpose(3, 1, 2, 0),
    dy.transpose(1, 2, 0, 3),
    (1, 1),
    pad,
    rhs_dilation=(2, 2),
    dimension_numbers=_DN,
  )
  return y.transpose(1, 2, 0, 3)


@jax.custom_vjp
def conv_4x4s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Conv, kernel 4, stride 2, padding 1: NHWC, half the size; kernel (4, 4, in, out).

  y[i] = sum_k x[2i + k - 1] @ kernel[k] per spatial axis (cross-correlation, as in PyTorch).
  """
  return _conv(x, kernel)


def _conv_fwd(x, kernel):
  return _conv(x, kernel), (x, kernel)


def _conv_bwd(res, dy):
  x, kernel = res
  if x.shape[1] % 2 or x.shape[2] % 2:  # conv_t only makes even sizes; autodiff covers odd ones
    return jax.vjp(conv_4x4s2_reference, x, kernel)[1](dy)
  dx = conv_transpose_4x4s2(dy, kernel.swapaxes(2, 3))
  return dx.astype(x.dtype), _conv_wgrad(x, dy).astype(kernel.dtype)


conv_4x4s2.defvjp(_conv_fwd, _conv_bwd)


@jax.custom_vjp
def conv_transpose_4x4s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Transposed conv, kernel 4, stride 2, padding 1: NHWC, twice the size; kernel (4, 4, in, out).

  y[2i + k - 1] += x[i] @ kernel[k] per spatial axis (PyTorch's ConvTranspose2d).
  """
  return _conv_t(x, kernel)


def _conv_t_fwd(x, kernel):
  return _conv_t(x, kernel), (x, kernel)


def _conv_t_bwd(res, dy):
  x, kernel = res
  dx = conv_4x4s2(dy, kernel.swapaxes(2, 3))
  dkernel = _conv_wgrad(dy, x).swapaxes(2, 3)
  return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


conv_transpose_4x4s2.defvjp(_conv_t_fwd, _conv_t_bwd)


def conv_4x4s2_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The textbook form of `conv_4x4s2`, differentiated by JAX itself: XLA's strided conv."""
  return _xla_conv(x, kernel.astype(x.dtype))


def conv_transpose_4x4s2_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The textbook form of `conv_transpose_4x4s2`, differentiated by JAX: lhs-dilated conv."""
  return _conv_t_dilated(x, kernel.astype(x.dtype))


@jax.custom_vjp
def conv_same(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Conv, stride 1, 'SAME' zero padding, odd kernel (k, k, in, out): NHWC, same size."""
  return _same_conv(x, kernel.astype(x.dtype))


def _windows(x: jax.Array, k: int) -> list[jax.Array]:
  """The k * k windows of x (N, H, W, ...) zero-padded 'SAME' for a k x k kernel, each the size
  of x: window a * k + b is x shifted by (a - k // 2, b - k // 2)."""
  p = k // 2
  h, w = x.shape[1:3]
  xp = jnp.pad(x, [(0, 0), (p, p), (p, p)] + [(0, 0)] * (x.ndim - 3))
  return [xp[:, a : a + h, b : b + w] for a in range(k) for b in range(k)]


def _same_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  k, _, c_in, c_out = kernel.shape
  # XLA's convolution emitter is slow for a thin side (RGB in or out); matmuls are not.
  if c_in <= _FEW_CHANNELS:  # im2col: the k * k windows of x side by side, one matmul
    return jnp.concatenate(_windows(x, k), -1) @ kernel.reshape(k * k * c_in, c_out)
  if c_out <= _FEW_CHANNELS:  # each tap's product on every pixel in one matmul, then shifted sums
    taps = x @ kernel.transpose(2, 0, 1, 3).reshape(c_in, k * k * c_out)
    taps = taps.reshape(*x.shape[:3], k * k, c_out)
    return sum(window[..., t, :] for t, window in enumerate(_windows(taps, k)))
  p = k // 2
  return lax.conv_general_dilated(x, kernel, (1, 1), ((p, p), (p, p)), dimension_numbers=_DN)


# XLA:CPU's kernel for the convolution over the batch below slows down more than linearly with
# the size of its (H, W, n, out) kernel; summing over chunks of a few images keeps it in cache
# (docs/benchmarks.md). Maps smaller than 16x16 gain nothing, and other backends run it whole.
_WGRAD_CHUNK = 8
_WGRAD_CHUNK_MIN_PIXELS = 16 * 16


def _same_wgrad(x: jax.Array, dy: jax.Array, k: int) -> jax.Array:
  """sum over (n, i) of x[i + t - p] (outer) dy[i] for each tap t: the kernel gradient."""
  n, h, w, c_in = x.shape
  c_out = dy.shape[-1]
  if c_out <= _FEW_CHANNELS:
    # One matmul against the windows of the thin dy, in reverse: tap t pairs x[i] with
    # dy[i - t + p], the window shifted by -(t - p).
    shifted = jnp.concatenate(_windows(dy, k)[::-1], -1)
    y = x.reshape(-1, c_in).T @ shifted.reshape(-1, k * k * c_out)
    return y.reshape(c_in, k, k, c_out).transpose(1, 2, 0, 3)
  m = _WGRAD_CHUNK
  if jax.default_backend() == 'cpu' and n > m and n % m == 0 and h * w >= _WGRAD_CHUNK_MIN_PIXELS:

    def add_chunk(total, chunk):
      return total + _same_wgrad_whole(*chunk, k), None

    chunks = (x.reshape(n // m, m, h, w, c_in), dy.reshape(n // m, m, h, w, c_out))
    zero = jnp.zeros((k, k, c_in, c_out), jnp.result_type(x, dy))
    return lax.scan(add_chunk, zero, chunks)[0]
  return _same_wgrad_whole(x, dy, k)


def _same_wgrad_whole(x: jax.Array, dy: jax.Array, k: int) -> jax.Array:
  """`_same_wgrad` as one conv over the batch: x as (in, H, W, n) images with n features and dy
  as an (H, W, n, out) kernel, canonical dimension labels, which XLA:CPU keeps fast inside a
  while loop too, unlike autodiff's form."""
  p = k // 2
  xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  y = lax.conv_general_dilated(
    xp.transpose(3, 1, 2, 0), dy.transpose(1, 2, 0, 3), (1, 1), 'VALID', dimension_numbers=_DN
  )
  return y.transpose(1, 2, 0, 3)


def _same_fwd(x, kernel):
  return conv_same(x, kernel), (x, kernel)


def _same_bwd(res, dy):
  x, kernel = res
  k = kernel.astype(dy.dtype)
  dx = _same_conv(dy, k[::-1, ::-1].swapaxes(2, 3))  # the adjoint: flipped taps, in <-> out
  return dx.astype(x.dtype), _same_wgrad(x, dy, kernel.shape[0]).astype(kernel.dtype)


conv_same.defvjp(_same_fwd, _same_bwd)
