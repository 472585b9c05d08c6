"""Stride-2 convolutions written so that XLA lowers them, and their gradients, to fast kernels.

XLA lowers a transposed convolution, and the input gradient of a strided convolution, to a
convolution with `lhs_dilation`. On CPU (and, per jax-ml/jax#23783, on GPU too) that path is
slow; the weight gradient of the DCGAN generator's transposed conv ran at 1-3 GFLOP/s here. The
functions below compute exactly the textbook layers (same parameters, same outputs, same
gradients up to float rounding) from stride-1 2x2 convolutions, each done as one matrix multiply
over four shifted views of the input, plus reshapes. Their gradients are matmuls and pads.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_DN = ('NHWC', 'HWIO', 'NHWC')
# Output phase r of a k4 s2 p1 transposed conv reads input rows (m - 1 + r, m + r) with these taps.
_PHASE_TAPS = np.array([[3, 1], [2, 0]])


def _conv2x2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """VALID stride-1 2x2 convolution as one GEMM over the four shifted views (im2col)."""
  h, w = x.shape[1] - 1, x.shape[2] - 1
  patches = jnp.concatenate([x[:, a : a + h, b : b + w] for a in (0, 1) for b in (0, 1)], -1)
  return patches @ kernel.reshape(-1, kernel.shape[-1]).astype(x.dtype)


def conv_transpose_4x4s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Transposed conv, kernel 4, stride 2, padding 1 (PyTorch's DCGAN layer): NHWC, 2x the size.

  Per spatial axis y[2i + k - 1] += x[i] * kernel[k]; kernel is (4, 4, in, out). Computed as a
  2x2 conv into the four sub-pixel phases followed by depth-to-space.
  """
  n, h, w, _ = x.shape
  cin, cout = kernel.shape[2:]
  k = kernel[_PHASE_TAPS[:, :, None, None], _PHASE_TAPS[None, None, :, :]]  # ry, a, rx, b, i, o
  k = k.transpose(1, 3, 4, 0, 2, 5).reshape(2, 2, cin, 4 * cout)
  z = _conv2x2(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), k)
  z = z.reshape(n, h + 1, w + 1, 2, 2, cout)
  rows = [
    jnp.stack([z[:, ry : ry + h, rx : rx + w, ry, rx] for rx in (0, 1)], axis=3) for ry in (0, 1)
  ]
  return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, cout)


def conv_transpose_4x4s2_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The textbook form of `conv_transpose_4x4s2`: an lhs-dilated convolution."""
  pad = ((2, 2), (2, 2))
  return lax.conv_general_dilated(
    x, kernel[::-1, ::-1], (1, 1), pad, lhs_dilation=(2, 2), dimension_numbers=_DN
  )


def conv_4x4s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Conv, kernel 4, stride 2, padding 1 (PyTorch's DCGAN layer; flax 'SAME' for even sizes).

  Computed as space-to-depth of the padded input followed by a 2x2 conv, so the input gradient
  needs no lhs-dilated convolution. Odd sizes fall back to XLA's strided convolution.
  """
  n, h, w, c = x.shape
  if h % 2 or w % 2:
    return conv_4x4s2_reference(x, kernel)
  cout = kernel.shape[3]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  hp, wp = h // 2 + 1, w // 2 + 1
  s = xp.reshape(n, hp, 2, wp, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, hp, wp, 4 * c)
  k = kernel.reshape(2, 2, 2, 2, c, cout).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * c, cout)
  return _conv2x2(s, k)


def conv_4x4s2_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The textbook form of `conv_4x4s2`: XLA's strided convolution."""
  return lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DN)


class _Stride2Conv(nn.Module):
  """Shared parameters (kernel (4, 4, in, out), optional bias) of the two stride-2 layers."""

  features: int
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.normal(0.02)
  fn = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', self.kernel_init, (4, 4, x.shape[-1], self.features))
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


def depth_to_space(x: jax.Array, block: int = 2) -> jax.Array:
  """(N, H, W, C*b*b) -> (N, H*b, W*b, C): the pixel-shuffle rearrangement."""
  n, h, w, c = x.shape
  c //= block * block
  x = x.reshape(n, h, w, block, block, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h * block, w * block, c)
