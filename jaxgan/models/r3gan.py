"""R3GAN's G and D (Huang et al. 2024, "The GAN is dead; long live the GAN!"), 32 to 256 px.

A modernised ResNet without normalisation. Both networks are stages of residual blocks
  x + conv1x1(act(gconvKxK(act(conv1x1(x)))))
with `act` a bias then leaky ReLU(0.2), the KxK conv grouped (`cardinalities`), the hidden
width `expansion` times the block's. Each kernel is drawn from N(0, gain**2 / fan_in), the gain
of the first two shrunk by L**(-1/4) for L blocks in the network (so that the sum of L residual
branches keeps the variance of its input: Fixup's rule for three layers), and the last conv
starts at zero: every block is the identity at init, and nothing needs a normalisation layer.

G: z (with a class embedding concatenated when conditional) -> a learned 4x4 basis, scaled per
channel by a linear map of z -> stage 0's blocks -> per stage: a 1x1 conv where the width
changes, 2x upsampling, blocks -> a 1x1 conv to the image channels. No tanh: the images are
clipped where they are saved.
D, the mirror image: a 1x1 conv from the image channels -> per stage: blocks, 2x downsampling,
a 1x1 conv where the width changes -> last stage: blocks, then a 4x4 depthwise conv (the
discriminative basis, a learned weighting of the 4x4 positions) and a linear map to one logit,
or, conditional, to an embedding dimension where the logit is the projection on the class's
embedding.

Resampling is interpolative (`jaxgan.models.upfirdn`): a zero-padded FIR filter, [1, 2, 1]
convolved with the box [1, 1] (the 4 taps [1, 3, 3, 1] / 8 per axis), as the official code's
`CreateLowpassKernel` and upfirdn2d make it; upsampling is its transpose, times 4.

`widths`, `cardinalities` and `blocks` are G's, from the 4x4 stage up; D takes them reversed.
The paper's presets are `PRESETS` (the model keys each sets; the family's defaults are
CIFAR-10's, but for `model.latent_dim`, the GAN's key, 64 in every preset). `bf16_stages`:
that many of G's last stages and D's first ones compute in bfloat16 on GPU and TPU (params
stay float32); on the CPU, everything computes in float32.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgan import checks
from jaxgan.errors import ConfigError
from jaxgan.models import layers, upfirdn

K = checks.Key


def _odd(v) -> str | None:
  return checks.integer(1)(v) or (None if v % 2 else f'must be odd, got {v}')


SCHEMA: dict[str, checks.Key] = {  # this family's keys under config.model: the CIFAR-10 preset
  'widths': K((768, 768, 768, 768), checks.int_tuple),  # G's per stage, from 4x4 up
  'cardinalities': K((96, 96, 96, 96), checks.int_tuple),  # groups of the KxK convs, per stage
  'blocks': K((2, 2, 2, 2), checks.int_tuple),  # residual blocks per stage
  'expansion': K(2, checks.integer(1)),  # hidden width of a block / its width
  'kernel_size': K(3, _odd),
  'g_embed_dim': K(0, checks.integer(0)),  # G's class embedding; 0: model.latent_dim
  'd_embed_dim': K(0, checks.integer(0)),  # D's projection; 0: widths[0]
  'bf16_stages': K(3, checks.integer(0)),  # G's last and D's first stages in bfloat16 (not CPU)
}

# The official train.py's presets: the model keys each sets (its --preset names).
PRESETS: dict[str, dict] = {
  'cifar10': dict(
    widths=(768,) * 4, cardinalities=(96,) * 4, blocks=(2,) * 4, bf16_stages=3, latent_dim=64
  ),
  'ffhq64': dict(
    widths=(768,) * 4 + (384,),
    cardinalities=(96,) * 4 + (48,),
    blocks=(2,) * 5,
    bf16_stages=4,
    latent_dim=64,
  ),
  'ffhq256': dict(
    widths=(768,) * 4 + (384, 192, 96),
    cardinalities=(96,) * 4 + (48, 24, 12),
    blocks=(2,) * 7,
    bf16_stages=4,
    latent_dim=64,
  ),
  'imagenet32': dict(
    widths=(1536,) * 4, cardinalities=(96,) * 4, blocks=(2,) * 4, bf16_stages=3, latent_dim=64
  ),
  'imagenet64': dict(
    widths=(1536,) * 5, cardinalities=(96,) * 5, blocks=(2,) * 5, bf16_stages=4, latent_dim=64
  ),
}

# Leaky ReLU(0.2)'s gain: it keeps the second moment of a unit Gaussian.
ACTIVATION_GAIN = math.sqrt(2 / (1 + 0.2**2))
# The resampling filter per axis: [1, 2, 1] convolved with [1, 1], summing to 1.
FILTER = upfirdn.setup_filter(np.convolve([1, 2, 1], [1, 1]))


def msr_init(gain: float = 1.0) -> nn.initializers.Initializer:
  """N(0, gain**2 / fan_in), fan_in from flax's layout (a grouped kernel's own inputs only)."""
  if gain == 0:
    return nn.initializers.zeros
  return nn.initializers.variance_scaling(gain**2, 'fan_in', 'normal')  # untruncated


def stage_dtypes(num_stages: int, bf16_stages: int) -> tuple[list[str], list[str]]:
  """Compute dtypes of G's stages and of D's (D's first stages mirror G's last)."""
  g = ['float32'] * (num_stages - bf16_stages) + ['bfloat16'] * min(bf16_stages, num_stages)
  return g, g[::-1]


def build(cfg, image_shape: tuple[int, ...], num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
  """(Generator, Discriminator) from the `config.model` section."""
  codes = cfg.latent_classes
  # XLA:CPU has no fast bfloat16 convolutions: there, mixed precision only costs.
  bf16 = 0 if jax.default_backend() == 'cpu' else cfg.bf16_stages
  common = dict(
    cardinalities=tuple(cfg.cardinalities),
    blocks=tuple(cfg.blocks),
    expansion=cfg.expansion,
    kernel_size=cfg.kernel_size,
    bf16_stages=bf16,
  )
  g = Generator(
    widths=tuple(cfg.widths),
    channels=image_shape[-1],
    num_classes=num_classes or codes,  # InfoGAN's code enters G as a class does
    embed_dim=cfg.g_embed_dim or cfg.latent_dim,
    **common,
  )
  d = Discriminator(
    widths=tuple(cfg.widths),
    num_classes=num_classes,
    embed_dim=cfg.d_embed_dim or cfg.widths[0],
    code_outputs=codes + cfg.latent_continuous,
    **common,
  )
  return g, d


def check_image_shape(cfg, image_shape: tuple[int, ...]) -> None:
  """One stage per side from 4 to the image's; each block's hidden width splits into groups."""
  n = len(cfg.widths)
  for key in ('cardinalities', 'blocks'):
    if len(cfg[key]) != n:
      raise ConfigError(
        f'model.{key} needs one entry per stage, as model.widths: {n}, got {len(cfg[key])}'
      )
  side = 4 * 2 ** (n - 1)
  if tuple(image_shape[:2]) != (side, side):
    raise ConfigError(
      f'model.widths has {n} stages, which make {side}x{side} images from the 4x4 basis; '
      f'the images are {image_shape[0]}x{image_shape[1]}'
    )
  for w, c in zip(cfg.widths, cfg.cardinalities, strict=True):
    if (w * cfg.expansion) % c:
      raise ConfigError(
        f'model.cardinalities: a stage of width {w} has {w * cfg.expansion} hidden channels '
        f'(model.expansion={cfg.expansion}), not divisible into {c} groups'
      )


def upsample(x: jax.Array) -> jax.Array:
  """(N, H, W, C) -> (N, 2H, 2W, C), interpolating with the separable FILTER."""
  return upfirdn.upsample2d(x, FILTER)


def downsample(x: jax.Array) -> jax.Array:
  """(N, H, W, C) -> (N, H/2, W/2, C), low-passing with the separable FILTER."""
  return upfirdn.downsample2d(x, FILTER)


class Linear(nn.Module):
  """A bias-free linear map of the last axis (a 1x1 conv on images), in the input's dtype."""

  features: int
  gain: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', msr_init(self.gain), (x.shape[-1], self.features))
    return x @ kernel.astype(x.dtype)


class BiasedActivation(nn.Module):
  """x + bias, then leaky ReLU(0.2)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    bias = self.param('bias', nn.initializers.zeros, (x.shape[-1],))
    return nn.leaky_relu(x + bias.astype(x.dtype), 0.2)


def grouped_conv(x: jax.Array, kernel: jax.Array, groups: int) -> jax.Array:
  """Stride 1, 'SAME' zero padding; kernel (k, k, C_in / groups, C_out), flax's layout: output
  channels in `groups` consecutive runs, each seeing its own run of the input channels."""
  if groups > 1 and jax.default_backend() == 'cpu':
    return grouped_conv_split(x, kernel, groups)
  return grouped_conv_xla(x, kernel, groups)


def grouped_conv_xla(x: jax.Array, kernel: jax.Array, groups: int) -> jax.Array:
  """`grouped_conv` as XLA's convolution with feature groups (cuDNN's grouped conv on GPU)."""
  return lax.conv_general_dilated(
    x,
    kernel.astype(x.dtype),
    (1, 1),
    'SAME',
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    feature_group_count=groups,
  )


def grouped_conv_split(x: jax.Array, kernel: jax.Array, groups: int) -> jax.Array:
  """`grouped_conv` as one dense convolution per group, concatenated.

  On XLA:CPU the convolution with feature groups has slow derivatives: its kernel gradient (a
  convolution with batch groups) is tens of times slower than the dense convolutions of the
  groups, whose derivatives, at every order (R1 and R2 differentiate twice), run on XLA:CPU's
  fast dense kernels (docs/benchmarks.md).
  """
  c_in, c_out = kernel.shape[2], kernel.shape[3] // groups
  parts = [
    grouped_conv_xla(x[..., g * c_in : (g + 1) * c_in], kernel[..., g * c_out : (g + 1) * c_out], 1)
    for g in range(groups)
  ]
  return jnp.concatenate(parts, -1)


class ResidualBlock(nn.Module):
  """x + conv1x1(act(grouped convKxK(act(conv1x1(x))))); `num_blocks`: the network's total,
  which scales the init."""

  cardinality: int
  expansion: int
  kernel_size: int
  num_blocks: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c, k = x.shape[-1], self.kernel_size
    hidden = c * self.expansion
    # Fixup's rule for branches of m = 3 layers: L**(-1 / (2m - 2)) on each of the first m - 1,
    # so that a branch's variance scales as 1 / L and the sum of L branches stays bounded.
    gain = ACTIVATION_GAIN * self.num_blocks ** (-1 / (2 * 3 - 2))
    y = Linear(hidden, gain, name='conv1')(x)
    y = BiasedActivation(name='act1')(y)
    shape = (k, k, hidden // self.cardinality, hidden)
    kernel = self.param('conv2', msr_init(gain), shape)
    y = BiasedActivation(name='act2')(grouped_conv(y, kernel, self.cardinality))
    return x + Linear(c, 0.0, name='conv3')(y)


class GenerativeBasis(nn.Module):
  """z (N, D) -> (N, 4, 4, C): a learned 4x4 map per channel, scaled by a linear map of z."""

  features: int

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    basis = self.param('basis', nn.initializers.normal(1.0), (4, 4, self.features))
    scale = Linear(self.features, name='linear')(z)
    return basis.astype(z.dtype) * scale[:, None, None, :]


class DiscriminativeBasis(nn.Module):
  """(N, 4, 4, C) -> (N, C) features, by a 4x4 depthwise conv without padding; and their
  linear map to `features` outputs. Returns both."""

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    # A depthwise conv's fan-in is its 16 taps.
    basis = self.param('basis', nn.initializers.normal(1 / 4), (4, 4, x.shape[-1]))
    h = jnp.einsum('nhwc,hwc->nc', x, basis.astype(x.dtype))
    return h, Linear(self.features, name='linear')(h)


class Generator(nn.Module):
  """z (N, latent) -> images (N, S, S, channels), S = 4 * 2**(len(widths) - 1)."""

  widths: Sequence[int] = (768, 768, 768, 768)
  cardinalities: Sequence[int] = (96, 96, 96, 96)
  blocks: Sequence[int] = (2, 2, 2, 2)
  expansion: int = 2
  kernel_size: int = 3
  channels: int = 3
  num_classes: int = 0
  embed_dim: int = 64  # of the class embedding concatenated to z
  bf16_stages: int = 0

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True, labels: jax.Array | None = None):
    del train  # no layer behaves differently in training
    total = sum(self.blocks)
    dtypes, _ = stage_dtypes(len(self.widths), self.bf16_stages)
    x = z.astype(jnp.float32)
    if self.num_classes:
      # The official's bias-free linear map of one-hot labels, as a table: std 1/sqrt(fan-in).
      init = nn.initializers.normal(1 / math.sqrt(self.num_classes))
      embed = nn.Embed(self.num_classes, self.embed_dim, embedding_init=init, name='embed')
      x = jnp.concatenate([x, embed(layers.class_labels(labels))], axis=-1)
    for i, width in enumerate(self.widths):
      x = x.astype(dtypes[i])
      if i == 0:
        x = GenerativeBasis(width, name='basis')(x)
      else:
        if x.shape[-1] != width:  # on the small map: 4x cheaper than after upsampling
          x = Linear(width, name=f'transition{i}')(x)
        x = upsample(x)
      for j in range(self.blocks[i]):
        block = ResidualBlock(
          self.cardinalities[i], self.expansion, self.kernel_size, total, name=f'stage{i}_block{j}'
        )
        x = block(x)
    return Linear(self.channels, name='out')(x).astype(jnp.float32)


class Discriminator(nn.Module):
  """images (N, S, S, C) -> logits (N,); G's stages in reverse, then the discriminative basis.

  Conditional (`num_classes` > 0): the basis maps to `embed_dim` features and the logit is
  their dot product with the class's embedding (a projection D). `code_outputs` > 0 adds
  InfoGAN's code head, a linear map of the basis' features: the output is then (logits, codes).
  """

  widths: Sequence[int] = (768, 768, 768, 768)  # G's order
  cardinalities: Sequence[int] = (96, 96, 96, 96)
  blocks: Sequence[int] = (2, 2, 2, 2)
  expansion: int = 2
  kernel_size: int = 3
  num_classes: int = 0
  embed_dim: int = 768
  code_outputs: int = 0
  bf16_stages: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True, labels: jax.Array | None = None):
    del train
    widths, cards, blocks = (
      tuple(reversed(s)) for s in (self.widths, self.cardinalities, self.blocks)
    )
    total = sum(blocks)
    _, dtypes = stage_dtypes(len(widths), self.bf16_stages)
    x = Linear(widths[0], name='extract')(x.astype(dtypes[0]))
    for i, width in enumerate(widths):
      x = x.astype(dtypes[i])
      for j in range(blocks[i]):
        block = ResidualBlock(
          cards[i], self.expansion, self.kernel_size, total, name=f'stage{i}_block{j}'
        )
        x = block(x)
      if i + 1 < len(widths):
        x = downsample(x)
        if width != widths[i + 1]:  # on the small map: 4x cheaper than before downsampling
          x = Linear(widths[i + 1], name=f'transition{i}')(x)
    outputs = self.embed_dim if self.num_classes else 1
    h, out = DiscriminativeBasis(outputs, name='basis')(x)
    h, out = h.astype(jnp.float32), out.astype(jnp.float32)
    if self.num_classes:
      # The official's linear map of one-hot labels with gain 1 / sqrt(embed_dim).
      init = nn.initializers.normal(1 / math.sqrt(self.embed_dim * self.num_classes))
      embed = nn.Embed(self.num_classes, self.embed_dim, embedding_init=init, name='embed')
      logits = jnp.sum(out * embed(layers.class_labels(labels)), axis=-1)
    else:
      logits = out[:, 0]
    if self.code_outputs:
      return logits, Linear(self.code_outputs, name='code')(h)
    return logits
