"""The layers every model family builds on: the stride-2 convolutions (kernel 4, padding 1,
PyTorch's conventions) and a stride-1 'SAME' one (`Conv`), computed by jaxgan.convs's fast
products; the ResNet blocks' resampling 3x3 convs (`UpsampleConv3x3`, `Conv3x3AvgPool`),
computed by the stride-2 ones; spectral normalisation (`spectral_apply`), ProGAN's minibatch
standard deviation, depth-to-space and the class labels of conditional networks.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgan import convs


class Conv(nn.Module):
  """Stride-1 'SAME' conv, odd square kernel (see `convs.conv_same`), nn.Conv's parameters."""

  features: int
  kernel_size: int = 3
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    shape = (self.kernel_size, self.kernel_size, x.shape[-1], self.features)
    y = convs.conv_same(x, self.param('kernel', self.kernel_init, shape))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,)).astype(y.dtype)
    return y


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
  """Transposed conv k4 s2 p1, doubling height and width (see `convs.conv_transpose_4x4s2`)."""

  fn = staticmethod(convs.conv_transpose_4x4s2)


class Conv4x4s2(_Stride2Conv):
  """Conv k4 s2 p1, halving height and width (see `convs.conv_4x4s2`)."""

  fn = staticmethod(convs.conv_4x4s2)


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
