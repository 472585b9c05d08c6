"""Convolutions that stay fast on CPU: the DCGAN's stride-2 ones (kernel 4, padding 1, PyTorch's
conventions) and a stride-1 'SAME' one (`Conv`), with custom VJPs; and the ResNet blocks'
resampling 3x3 convs (`UpsampleConv3x3`, `Conv3x3AvgPool`), computed by the stride-2 ones.

Both layers keep a (4, 4, in, out) kernel with PyTorch's semantics, so weights move between the
two frameworks by a transpose. A training step needs three products per layer, and the two
layers share them, because the transposed convolution is the adjoint of the convolution:

  conv(x, k)           conv_4x4s2 forward; input gradient of conv_transpose_4x4s2
  conv_t(x, k)         conv_transpose_4x4s2 forward; input gradient of conv_4x4s2
  conv_wgrad(x, dy)    kernel gradient of both (with the roles of x and dy swapped)

Autodiff would write the kernel gradient of a transposed convolution as a convolution over an
lhs-dilated input, which XLA:CPU runs at 1-3 GFLOP/s, so both layers have custom VJPs built from
the three products, and each product picks, by channel count, the formulation that measured
fastest on XLA:CPU (docs/benchmarks.md has the per-op table).

The spectral normalisation that every model family applies to its layers is here too
(`spectral_apply`).
"""

import functools

import flax.linen as nn
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
  # program but not inside a while loop, where it ran many times slower (train.steps_per_call
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


class Conv(nn.Module):
  """Stride-1 'SAME' conv with an odd square kernel (see `conv_same`), nn.Conv's parameters."""

  features: int
  kernel_size: int = 3
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    shape = (self.kernel_size, self.kernel_size, x.shape[-1], self.features)
    y = conv_same(x, self.param('kernel', self.kernel_init, shape))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,)).astype(y.dtype)
    return y


# XLA:CPU hands convolutions to YNNPACK by default. XLA's own (Eigen) convolution kernels ran
# the three products above faster at batch 64-256, and so the whole train step
# (docs/benchmarks.md), so on CPU keep YNNPACK for matmuls and reductions only.
_XLA_CPU_OPTIONS = {
  'xla_cpu_experimental_ynn_fusion_type': (
    'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE'
  ),
}


def compiler_options(backend: str | None = None) -> dict[str, str]:
  """XLA options for `jax.jit(compiler_options=...)` of a step using these layers on `backend`.

  Empty off CPU, and where this jaxlib does not know the options (they are experimental).
  """
  if (backend or jax.default_backend()) != 'cpu' or not _cpu_options_known():
    return {}
  return dict(_XLA_CPU_OPTIONS)


@functools.cache
def _cpu_options_known() -> bool:
  try:
    jax.jit(lambda x: x + 1, compiler_options=_XLA_CPU_OPTIONS).lower(0.0).compile()
  except Exception:  # an unknown option name or value
    return False
  return True


class _Stride2Conv(nn.Module):
  """Shared parameters (kernel (4, 4, in, out), optional bias) of the stride-2 layers; those with
  `taps` keep a 3x3 kernel and apply the 4x4 one that `taps` makes of it."""

  features: int
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.normal(0.02)
  fn = None
  taps = None  # (4, 3): each 4x4 tap as a sum of 3x3 taps, along either axis

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    t = type(self).taps
    size = 4 if t is None else 3
    kernel = self.param('kernel', self.kernel_init, (size, size, x.shape[-1], self.features))
    if t is not None:
      # HIGHEST: a TF32 or bf16 matmul pass would round the weights themselves on GPU/TPU.
      kernel = jnp.einsum('ay,bx,yxio->abio', t, t, kernel, precision=lax.Precision.HIGHEST)
    y = type(self).fn(x, kernel)
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,)).astype(y.dtype)
    return y


class ConvTranspose4x4s2(_Stride2Conv):
  """Transposed conv k4 s2 p1, doubling height and width (see `conv_transpose_4x4s2`)."""

  fn = staticmethod(conv_transpose_4x4s2)


class Conv4x4s2(_Stride2Conv):
  """Conv k4 s2 p1, halving height and width (see `conv_4x4s2`)."""

  fn = staticmethod(conv_4x4s2)


# Nearest 2x upsampling then a 3x3 'SAME' conv is a 4x4 stride-2 transposed conv: along each axis
# its tap k sums the 3x3 taps that reach the same input pixel from output 2i + k - 1. A 3x3
# 'SAME' conv then 2x2 average pooling is a 4x4 stride-2 conv whose tap k averages the 3x3 taps
# k - 1 and k. The same functions with 4/9 of the multiplies, run by the stride-2 layers' fast
# products (docs/benchmarks.md).
_UP_TAPS = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], np.float32)
_POOL_TAPS = 0.5 * np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], np.float32)


class UpsampleConv3x3(ConvTranspose4x4s2):
  """Nearest-neighbour 2x upsampling, then a 3x3 'SAME' conv: twice the height and width.
  `Conv`'s parameters (kernel (3, 3, in, out)) and initialiser."""

  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  taps = _UP_TAPS


class Conv3x3AvgPool(Conv4x4s2):
  """A 3x3 'SAME' conv, then 2x2 average pooling with stride 2: half the height and width.
  `Conv`'s parameters (kernel (3, 3, in, out)) and initialiser."""

  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  taps = _POOL_TAPS


def spectral_apply(layer: nn.Module, x, spectral_norm: bool, train: bool) -> jax.Array:
  """layer(x), with each of its weight matrices divided by its largest singular value if
  `spectral_norm` (Miyato et al. 2018); biases and other vectors are left as they are.

  The estimate is flax's nn.SpectralNorm: one power iteration per call, the gradient flowing
  through sigma but not through the power-iteration vectors (as in PyTorch's
  torch.nn.utils.spectral_norm). Its vector u and the estimate sigma live in the 'batch_stats'
  collection, so they are checkpointed with the batch-norm statistics: updated in training
  (when the caller makes the collection mutable); in evaluation the stored u starts an
  iteration whose result is not kept. Conv kernels are flattened to (kh * kw * in, out)
  matrices. Every family shares this one, so that spectral norm means the same in all of them.
  """
  if spectral_norm:
    return nn.SpectralNorm(layer)(x, update_stats=train)
  return layer(x)


def minibatch_std(x: jax.Array, group: int) -> jax.Array:
  """x (N, H, W, C) with one more channel: the standard deviation of the features over a group
  of `group` images, averaged over features and positions (ProGAN's minibatch standard
  deviation, Karras et al. 2018), so that D can see how varied a batch is. Image i belongs to
  group i mod (N / g), g the largest divisor of N up to `group`."""
  n = x.shape[0]
  g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
  y = x.astype(jnp.float32).reshape(g, n // g, *x.shape[1:])
  std = jnp.sqrt(jnp.var(y, axis=0) + 1e-8).mean(axis=(1, 2, 3))  # (N / g,)
  std = jnp.broadcast_to(jnp.tile(std, g)[:, None, None, None], (*x.shape[:3], 1))
  return jnp.concatenate([x, std.astype(x.dtype)], axis=-1)


def depth_to_space(x: jax.Array, block: int = 2) -> jax.Array:
  """(N, H, W, C*b*b) -> (N, H*b, W*b, C): the pixel-shuffle rearrangement."""
  n, h, w, c = x.shape
  c //= block * block
  x = x.reshape(n, h, w, block, block, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h * block, w * block, c)


def class_labels(labels: jax.Array | None) -> jax.Array:
  """The class labels a conditional network (num_classes > 0) was called with; an error when
  they were left out."""
  if labels is None:
    raise ValueError('this network is conditional (num_classes > 0): pass labels=')
  return labels
