"""ResNet G and D of SNGAN (Miyato et al. 2018) and BigGAN (Brock et al. 2019), 32 to 256 px.

G: z -> dense -> (H/2**k, W/2**k) map -> k up blocks -> BN-ReLU-conv3x3 -> tanh, where an up
block is BN-ReLU-up-conv3x3-BN-ReLU-conv3x3 plus an up-conv1x1 shortcut (nearest-neighbour 2x).
D: blocks of ReLU-conv3x3-ReLU-conv3x3(-avgpool) plus a conv1x1(-avgpool) shortcut (the first
one "optimized": no ReLU on the pixels), the first `d_downsample` halving the size, then ReLU,
a sum over positions and a dense layer to one logit.

Widths are `g_ch * g_mults[i]` (g_mults[0] for the dense layer's map, then one per up block)
and `d_ch * d_mults[i]` (one per D block). Per image side, the published ones:

  side  g_mults                  d_mults                  d_downsample  (g_ch, d_ch)
  32    (1, 1, 1, 1)             (1, 1, 1, 1)             2             (256, 128) SNGAN CIFAR
  64    (16, 16, 8, 4, 2)        (1, 2, 4, 8, 16)         4             (64, 64) BigGAN
  128   (16, 16, 8, 4, 2, 1)     (1, 2, 4, 8, 16, 16)     5             (64, 64) SNGAN, 96 BigGAN
  256   (16, 16, 8, 8, 4, 2, 1)  (1, 2, 4, 8, 8, 16, 16)  6             (96, 96) BigGAN

(`ARCHITECTURES` below). Conditional (`num_classes` > 0): G's block norms are conditional
batch norms with per-class gains and biases (SNGAN's form; the last norm stays plain, as in
SNGAN and BigGAN), and D is a projection discriminator (Miyato & Koyama 2018): its logit gets
<embed(y), h> added, h being the pooled features the dense layer sees.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan import checks
from jaxgan.errors import ConfigError
from jaxgan.models import layers

K = checks.Key
SCHEMA: dict[str, checks.Key] = {  # this family's keys under config.model: SNGAN's CIFAR-10 G, D
  'g_ch': K(256, checks.integer(1)),  # widths: g_ch * g_mults[i], d_ch * d_mults[i]
  'd_ch': K(128, checks.integer(1)),
  'g_mults': K((1, 1, 1, 1), checks.int_tuple),  # the first map, then one per up block
  'd_mults': K((1, 1, 1, 1), checks.int_tuple),  # one per D block
  'd_downsample': K(2, checks.integer(0)),  # D blocks that halve the size
  'spectral_norm': K(True, checks.boolean),  # in D
  'g_spectral_norm': K(False, checks.boolean),  # in G too (SAGAN, BigGAN)
  'attention_res': K(0, checks.integer(0)),  # self-attention at this height in G and D; 0: none
  'dtype': K('float32', checks.one_of('float32', 'bfloat16')),  # compute dtype
}

# image side -> (g_mults, d_mults, d_downsample), the table in the module docstring.
ARCHITECTURES: dict[int, tuple[tuple[int, ...], tuple[int, ...], int]] = {
  32: ((1, 1, 1, 1), (1, 1, 1, 1), 2),
  64: ((16, 16, 8, 4, 2), (1, 2, 4, 8, 16), 4),
  128: ((16, 16, 8, 4, 2, 1), (1, 2, 4, 8, 16, 16), 5),
  256: ((16, 16, 8, 8, 4, 2, 1), (1, 2, 4, 8, 8, 16, 16), 6),
}

# SNGAN's initialisation: Glorot-uniform, with gain sqrt(2) on the convolutions inside the
# residual branches (they follow ReLUs) and gain 1 elsewhere.
_RES_INIT = nn.initializers.variance_scaling(2.0, 'fan_avg', 'uniform')
_INIT = nn.initializers.xavier_uniform()
# PyTorch's BatchNorm defaults (momentum 0.1 there is 0.9 here), as in jaxgan's DCGAN.
_BN = dict(momentum=0.9, epsilon=1e-5)


def build(cfg, image_shape: tuple[int, ...], num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
  """(Generator, Discriminator) from the `config.model` section."""
  codes = cfg.latent_classes
  code_outputs = codes + cfg.latent_continuous
  g = Generator(
    image_shape=image_shape,
    ch=cfg.g_ch,
    mults=tuple(cfg.g_mults),
    num_classes=num_classes or codes,  # InfoGAN's code enters G as a class does
    spectral_norm=cfg.g_spectral_norm,
    attention_res=cfg.attention_res,
    dtype=cfg.dtype,
  )
  d = Discriminator(
    ch=cfg.d_ch,
    mults=tuple(cfg.d_mults),
    downsample=cfg.d_downsample,
    num_classes=num_classes,
    code_outputs=code_outputs,
    spectral_norm=cfg.spectral_norm,
    attention_res=cfg.attention_res,
    dtype=cfg.dtype,
  )
  return g, d


def g_sides(cfg, height: int) -> list[int]:
  """The heights G's up blocks make, first to last."""
  k = len(cfg.g_mults) - 1
  return [(height >> k) << (i + 1) for i in range(k)]


def d_sides(cfg, height: int) -> list[int]:
  """The heights D's blocks make, first to last."""
  return [height >> min(i + 1, cfg.d_downsample) for i in range(len(cfg.d_mults))]


def check_image_shape(cfg, image_shape: tuple[int, ...]) -> None:
  """G doubles its start map once per up block; D halves the images d_downsample times."""
  height, width = image_shape[:2]
  k = len(cfg.g_mults) - 1
  if k < 1:
    raise ConfigError('model.g_mults needs at least two entries: the start map and one block')
  if height % 2**k or width % 2**k:
    raise ConfigError(
      f'image size {(height, width)} is not divisible by 2**(len(model.g_mults) - 1) = {2**k}'
    )
  if cfg.d_downsample >= len(cfg.d_mults):
    raise ConfigError(
      f'model.d_downsample={cfg.d_downsample} must be less than len(model.d_mults)='
      f'{len(cfg.d_mults)}: the last D block does not downsample'
    )
  if height % 2**cfg.d_downsample or width % 2**cfg.d_downsample:
    raise ConfigError(
      f'image size {(height, width)} is not divisible by 2**model.d_downsample = '
      f'{2**cfg.d_downsample}'
    )
  res = cfg.attention_res
  if res and (res not in g_sides(cfg, height) or res not in d_sides(cfg, height)):
    raise ConfigError(
      f'model.attention_res={res} must be a height that both G and D blocks make: '
      f'G {g_sides(cfg, height)}, D {d_sides(cfg, height)} (0 turns attention off)'
    )


def _conv(x, features: int, name: str, sn: bool, train: bool, layer=layers.Conv, **kw):
  """A 3x3 conv: `layer` is layers.Conv, or UpsampleConv3x3 / Conv3x3AvgPool to resample too."""
  conv = layer(features, kernel_init=kw.pop('kernel_init', _RES_INIT), name=name, **kw)
  return layers.spectral_apply(conv, x, sn, train)


def _dense(x, features: int, name: str, sn: bool, train: bool, **kw) -> jax.Array:
  # A dense layer over the channels is a 1x1 convolution, and a plain matmul on every backend.
  dense = nn.Dense(features, kernel_init=kw.pop('kernel_init', _INIT), name=name, **kw)
  return layers.spectral_apply(dense, x, sn, train)


def upsample(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x: each pixel becomes a 2x2 square."""
  n, h, w, c = x.shape
  return jnp.broadcast_to(x[:, :, None, :, None], (n, h, 2, w, 2, c)).reshape(n, 2 * h, 2 * w, c)


def avg_pool(x: jax.Array) -> jax.Array:
  """2x2 average pooling, stride 2."""
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


class ConditionalBatchNorm(nn.Module):
  """Batch norm without its own affine, then a gain and a bias chosen by each example's class.

  SNGAN's form: a (num_classes, C) table of gains (initialised to 1) and one of biases (0).
  """

  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array, train: bool = True) -> jax.Array:
    bn = nn.BatchNorm(
      use_running_average=not train, use_scale=False, use_bias=False, dtype=x.dtype, **_BN
    )
    x = bn(x)
    c = x.shape[-1]
    gain = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.ones, name='gain')
    bias = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, name='bias')
    g, b = gain(labels).astype(x.dtype), bias(labels).astype(x.dtype)
    return x * g[:, None, None, :] + b[:, None, None, :]


def _batch_norm(x, labels, num_classes: int, train: bool, name: str) -> jax.Array:
  if num_classes:
    return ConditionalBatchNorm(num_classes, name=name)(x, labels, train)
  return nn.BatchNorm(use_running_average=not train, dtype=x.dtype, name=name, **_BN)(x)


class GBlock(nn.Module):
  """Up block: (BN-ReLU-up-conv3x3-BN-ReLU-conv3x3)(x) + conv1x1(up(x)), twice the size."""

  features: int
  num_classes: int = 0
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True) -> jax.Array:
    sn, f, nc = self.spectral_norm, self.features, self.num_classes
    h = nn.relu(_batch_norm(x, labels, nc, train, 'bn1'))
    up_conv = layers.UpsampleConv3x3
    h = _conv(h, f, 'conv1', sn, train, up_conv, use_bias=False)  # bn2 cancels a bias
    h = nn.relu(_batch_norm(h, labels, nc, train, 'bn2'))
    h = _conv(h, f, 'conv2', sn, train)
    # A 1x1 conv commutes with nearest upsampling: on the small map it costs 4x less.
    return h + upsample(_dense(x, f, 'shortcut', sn, train, dtype=x.dtype))


class DBlock(nn.Module):
  """(ReLU-conv3x3-ReLU-conv3x3-avgpool)(x) + avgpool(conv1x1(x)); without avgpool when not
  `downsample`, and with the identity shortcut when that keeps the width. The `first` block
  (SNGAN's "optimized" block) has no ReLU before its first conv: its input is the image."""

  features: int
  downsample: bool = True
  first: bool = False
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x, train: bool = True) -> jax.Array:
    sn, f = self.spectral_norm, self.features
    h = x if self.first else nn.relu(x)
    h = _conv(h, f, 'conv1', sn, train)
    conv2 = layers.Conv3x3AvgPool if self.downsample else layers.Conv
    h = _conv(nn.relu(h), f, 'conv2', sn, train, conv2)
    shortcut = x
    if self.downsample:
      shortcut = avg_pool(x)  # pooling commutes with the 1x1 conv: 4x cheaper
    if self.first or self.downsample or x.shape[-1] != f:
      shortcut = _dense(shortcut, f, 'shortcut', sn, train, dtype=x.dtype)
    return h + shortcut


class SelfAttention(nn.Module):
  """SAGAN's self-attention (Zhang et al. 2019, in BigGAN's form): x + gamma * o, gamma from 0.

  Queries have C/8 channels at every position; keys (C/8) and values (C/2) are max-pooled 2x2,
  which cuts the attention matrix by 4 (BigGAN).
  """

  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    n, h, w, c = x.shape
    sn, ck, cv = self.spectral_norm, max(c // 8, 1), max(c // 2, 1)

    def proj(features, name, inputs=x):
      return _dense(inputs, features, name, sn, train, use_bias=False, dtype=x.dtype)

    def pool(y):
      return y.reshape(n, h // 2, 2, w // 2, 2, -1).max(axis=(2, 4)).reshape(n, -1, y.shape[-1])

    query = proj(ck, 'query').reshape(n, h * w, ck)
    key, value = pool(proj(ck, 'key')), pool(proj(cv, 'value'))
    scores = jnp.einsum('nqc,nkc->nqk', query, key).astype(jnp.float32)
    attention = jax.nn.softmax(scores, axis=-1).astype(x.dtype)
    o = jnp.einsum('nqk,nkc->nqc', attention, value).reshape(n, h, w, cv)
    gamma = self.param('gamma', nn.initializers.zeros, ())
    return x + gamma.astype(x.dtype) * proj(c, 'out', o)


class Generator(nn.Module):
  """z (N, latent) -> images (N, H, W, C) in [-1, 1], with H and W divisible by 2**k, where
  k = len(mults) - 1 is the number of up blocks.

  `attention_res` > 0 puts self-attention after the block that makes maps of that height.
  """

  image_shape: Sequence[int] = (32, 32, 3)
  ch: int = 256
  mults: Sequence[int] = (1, 1, 1, 1)
  num_classes: int = 0
  spectral_norm: bool = False
  attention_res: int = 0
  dtype: str = 'float32'  # compute dtype; 'bfloat16' for mixed precision (params stay f32)

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True, labels: jax.Array | None = None):
    labels = layers.class_labels(labels) if self.num_classes else None
    height, width, channels = self.image_shape
    scale = 2 ** (len(self.mults) - 1)
    h, w, c = height // scale, width // scale, self.ch * self.mults[0]
    sn = self.spectral_norm
    x = _dense(z.astype(self.dtype), h * w * c, 'dense', sn, train, dtype=self.dtype)
    x = x.reshape(z.shape[0], h, w, c)
    for i, m in enumerate(self.mults[1:]):
      x = GBlock(self.ch * m, self.num_classes, sn, name=f'block{i}')(x, labels, train)
      if x.shape[1] == self.attention_res:
        x = SelfAttention(sn, name='attention')(x, train)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, dtype=x.dtype, name='bn', **_BN)(x))
    x = _conv(x, channels, 'conv_out', sn, train, kernel_init=_INIT)
    return jnp.tanh(x.astype(jnp.float32))


class Discriminator(nn.Module):
  """images (N, H, W, C) -> logits (N,): len(mults) blocks, the first `downsample` of them
  halving the size, ReLU, a sum over positions, dense; plus the projection term when
  conditional. Spectral norm (SNGAN) on every conv, dense and embedding when `spectral_norm`.

  `attention_res` > 0 puts self-attention after the first block that makes maps that high.
  `code_outputs` > 0 adds InfoGAN's code head (a dense layer on the same features): the
  output is then (logits, code outputs (N, code_outputs)), as in the DCGAN's D.
  """

  ch: int = 128
  mults: Sequence[int] = (1, 1, 1, 1)
  downsample: int = 2
  num_classes: int = 0
  code_outputs: int = 0
  spectral_norm: bool = True
  attention_res: int = 0
  dtype: str = 'float32'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True, labels: jax.Array | None = None):
    sn = self.spectral_norm
    x = x.astype(self.dtype)
    attended = False
    for i, m in enumerate(self.mults):
      block = DBlock(self.ch * m, i < self.downsample, i == 0, sn, name=f'block{i}')
      x = block(x, train)
      if x.shape[1] == self.attention_res and not attended:
        x, attended = SelfAttention(sn, name='attention')(x, train), True
    h = jnp.sum(nn.relu(x), axis=(1, 2))
    logits = _dense(h, 1, 'dense', sn, train, dtype=self.dtype)[:, 0]
    if self.num_classes:
      embed = nn.Embed(self.num_classes, h.shape[-1], embedding_init=_INIT, name='class_embed')
      y = layers.spectral_apply(embed, layers.class_labels(labels), sn, train).astype(h.dtype)
      logits = logits + jnp.sum(y * h, axis=-1)
    if self.code_outputs:
      codes = _dense(h, self.code_outputs, 'code', sn, train, dtype=self.dtype)
      return logits.astype(jnp.float32), codes.astype(jnp.float32)
    return logits.astype(jnp.float32)
