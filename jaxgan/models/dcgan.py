"""DCGAN (Radford et al. 2016) for small images, with configurable up/down-sampling and norm."""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan import checks
from jaxgan.errors import ConfigError
from jaxgan.models import layers

_init = nn.initializers.normal(0.02)  # the DCGAN paper's initialisation

_NORMS = ('batch', 'layer', 'group', 'none')
K = checks.Key
SCHEMA: dict[str, checks.Key] = {  # this family's keys under config.model
  'g_features': K((128, 64), checks.int_tuple),  # G: dense -> 7x7x128 -> 14x14x64 -> image
  'd_features': K((64, 128), checks.int_tuple),  # D: image -> 14x14x64 -> 7x7x128 -> dense
  'upsample': K('conv_transpose', checks.one_of('conv_transpose', 'pixel_shuffle')),
  'downsample': K('strided_conv', checks.one_of('strided_conv', 'avg_pool')),
  'norm': K('batch', checks.one_of(*_NORMS)),
  'd_norm': K('', checks.one_of('', *_NORMS)),  # D's norm if not model.norm
  'spectral_norm': K(False, checks.boolean),  # in D (SNGAN)
  'dtype': K('float32', checks.one_of('float32', 'bfloat16')),  # compute dtype
  'g_dropout': K(0.0, checks.beta),  # after each of G's hidden layers
  'd_dropout': K(0.0, checks.beta),  # after each of D's activations
  'd_activation': K('leaky_relu', checks.one_of('leaky_relu', 'relu')),
  'd_minibatch_std': K(0, checks.integer(0)),  # > 0: ProGAN's minibatch-std channel in D
}


def build(cfg, image_shape: tuple[int, ...], num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
  """(Generator, Discriminator) from the `config.model` section."""
  codes = cfg.latent_classes
  code_outputs = codes + cfg.latent_continuous
  g = Generator(
    image_shape=image_shape,
    features=tuple(cfg.g_features),
    upsample=cfg.upsample,
    norm=cfg.norm,
    dtype=cfg.dtype,
    num_classes=num_classes or codes,  # InfoGAN's code enters G as a class does
    dropout=cfg.g_dropout,
  )
  d = Discriminator(
    features=tuple(cfg.d_features),
    downsample=cfg.downsample,
    norm=cfg.d_norm or cfg.norm,  # d_norm '': D uses model.norm too
    dtype=cfg.dtype,
    spectral_norm=cfg.spectral_norm,
    num_classes=num_classes,
    code_outputs=code_outputs,
    dropout=cfg.d_dropout,
    activation=cfg.d_activation,
    minibatch_std=cfg.d_minibatch_std,
  )
  return g, d


def check_image_shape(cfg, image_shape: tuple[int, ...]) -> None:
  """G starts from a map 2**len(g_features) times smaller than the images."""
  scale = 2 ** len(cfg.g_features)
  if image_shape[0] % scale or image_shape[1] % scale:
    raise ConfigError(
      f'image size {image_shape[:2]} is not divisible by 2**len(model.g_features) = {scale}'
    )


def _norm(kind: str, train: bool, x: jax.Array) -> jax.Array:
  if kind == 'batch':
    # momentum 0.9 here is PyTorch's BatchNorm momentum 0.1.
    bn = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=x.dtype)
    return bn(x)
  if kind == 'layer':  # over each example's whole (H, W, C) map, with per-channel scale/bias
    return nn.LayerNorm(reduction_axes=(-3, -2, -1), epsilon=1e-5, dtype=x.dtype)(x)
  if kind == 'group':  # up to 32 groups (Wu & He 2018), fewer if the channels are not divisible
    return nn.GroupNorm(num_groups=math.gcd(32, x.shape[-1]), epsilon=1e-5, dtype=x.dtype)(x)
  if kind == 'none':
    return x
  raise ValueError(f'unknown norm {kind!r}')


def _upsample(kind: str, features: int, use_bias: bool, x: jax.Array) -> jax.Array:
  if kind == 'conv_transpose':
    return layers.ConvTranspose4x4s2(features, use_bias=use_bias, kernel_init=_init)(x)
  if kind == 'pixel_shuffle':
    conv = layers.Conv(4 * features, 3, use_bias=use_bias, kernel_init=_init)
    return layers.depth_to_space(conv(x), 2)
  raise ValueError(f'unknown upsample {kind!r}')


def _downsample(
  kind: str, features: int, use_bias: bool, x: jax.Array, sn: bool = False, train: bool = True
) -> jax.Array:
  if kind == 'strided_conv':
    return layers.spectral_apply(
      layers.Conv4x4s2(features, use_bias=use_bias, kernel_init=_init), x, sn, train
    )
  if kind == 'avg_pool':
    conv = layers.Conv(features, 3, use_bias=use_bias, kernel_init=_init)
    return nn.avg_pool(layers.spectral_apply(conv, x, sn, train), (2, 2), (2, 2))
  raise ValueError(f'unknown downsample {kind!r}')


class Generator(nn.Module):
  """z (N, latent) -> images (N, H, W, C) in [-1, 1]; H and W are divisible by 2**len(features).

  A dense layer makes a (H/2**k, W/2**k, features[0]) map, then k upsamplings go through
  features[1:] to `image_shape[-1]` channels, each but the last followed by norm and ReLU.
  With `num_classes` > 0 it is conditional: a learned class embedding is concatenated to z.
  """

  image_shape: Sequence[int] = (28, 28, 1)
  features: Sequence[int] = (128, 64)
  upsample: str = 'conv_transpose'
  norm: str = 'batch'
  dtype: str = 'float32'  # compute dtype; 'bfloat16' for mixed precision (params stay f32)
  num_classes: int = 0
  class_embed_dim: int = 32
  dropout: float = 0.0  # after each hidden layer's ReLU, in training (the 'dropout' stream)

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True, labels: jax.Array | None = None):
    if self.num_classes:
      embed = nn.Embed(self.num_classes, self.class_embed_dim)(layers.class_labels(labels))
      z = jnp.concatenate([z, embed.astype(z.dtype)], axis=-1)
    z = z.astype(self.dtype)
    height, width, channels = self.image_shape
    scale = 2 ** len(self.features)
    h, w = height // scale, width // scale
    bias = self.norm == 'none'  # a bias before batch norm is cancelled by its mean
    x = nn.Dense(h * w * self.features[0], use_bias=bias, kernel_init=_init, dtype=self.dtype)(z)
    x = x.reshape(z.shape[0], h, w, self.features[0])
    x = _dropout(self.dropout, train, nn.relu(_norm(self.norm, train, x)))
    for f in self.features[1:]:
      x = nn.relu(_norm(self.norm, train, _upsample(self.upsample, f, bias, x)))
      x = _dropout(self.dropout, train, x)
    x = _upsample(self.upsample, channels, True, x)
    return jnp.tanh(x.astype(jnp.float32))


class Discriminator(nn.Module):
  """images (N, H, W, C) -> logits (N,): len(features) downsamplings, LeakyReLU(0.2), dense.

  As in DCGAN, the first layer has no norm. `spectral_norm` normalises every conv and the
  dense layer by its spectral norm (SNGAN). With `num_classes` > 0 it is a projection
  discriminator (Miyato & Koyama 2018): logit = dense(h) + <embed(y), h> on the features h.
  With `code_outputs` > 0 it also reads InfoGAN's codes off h (a dense layer, InfoGAN's Q head
  sharing D's body) and returns (logits, code outputs (N, code_outputs)): the categorical
  code's logits, then the continuous codes' predicted values.
  """

  features: Sequence[int] = (64, 128)
  downsample: str = 'strided_conv'
  norm: str = 'batch'
  dtype: str = 'float32'
  spectral_norm: bool = False
  num_classes: int = 0
  code_outputs: int = 0
  dropout: float = 0.0  # after each activation, in training (the 'dropout' stream)
  activation: str = 'leaky_relu'  # LeakyReLU(0.2) as in DCGAN, or 'relu'
  minibatch_std: int = 0  # > 0: group size of a minibatch-std channel before the dense layer

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True, labels: jax.Array | None = None):
    x = x.astype(self.dtype)
    sn = self.spectral_norm
    for i, f in enumerate(self.features):
      normed = i > 0 and self.norm != 'none'
      x = _downsample(self.downsample, f, not normed, x, sn, train)
      if i > 0:
        x = _norm(self.norm, train, x)
      act = nn.leaky_relu(x, 0.2) if self.activation == 'leaky_relu' else nn.relu(x)
      x = _dropout(self.dropout, train, act)
    if self.minibatch_std:
      x = layers.minibatch_std(x, self.minibatch_std)
    x = x.reshape(x.shape[0], -1)
    dense = nn.Dense(1, kernel_init=_init, dtype=self.dtype)
    logits = layers.spectral_apply(dense, x, sn, train)[:, 0]
    if self.num_classes:
      embed = nn.Embed(self.num_classes, x.shape[-1], embedding_init=_init, name='class_embed')
      logits = logits + jnp.sum(embed(layers.class_labels(labels)).astype(x.dtype) * x, axis=-1)
    if self.code_outputs:
      codes = nn.Dense(self.code_outputs, kernel_init=_init, dtype=self.dtype, name='code')(x)
      return logits.astype(jnp.float32), codes.astype(jnp.float32)
    return logits.astype(jnp.float32)


def _dropout(rate: float, train: bool, x: jax.Array) -> jax.Array:
  # No module at all when off, so a config without dropout builds the same network.
  return nn.Dropout(rate, deterministic=not train)(x) if rate else x
