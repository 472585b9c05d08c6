"""The FID Inception-v3 network itself (pytorch-fid's `FIDInceptionV3`) as Flax modules: its
layers and blocks, with the 2015 graph's quirks (average pools that ignore padding, a max pool in
the last block, 1008 logits). Loading weights into it: jaxgan.evaluation.inception_weights;
measuring images with it: jaxgan.evaluation.inception."""

import flax.linen as nn
import jax
import jax.numpy as jnp

SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008


class ConvBN(nn.Module):
  """Conv (no bias), BatchNorm with TensorFlow's eps, ReLU: torchvision's `BasicConv2d`.

  The submodule names (`conv`, `bn`) are the state dict's, so loading is a rename. The
  convolutions run in full float32 on every backend (no TF32 on GPUs): FID is compared with
  numbers made in float32.
  """

  features: int
  kernel: tuple[int, int]
  stride: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    (ph, pw), s = self.padding, self.stride
    x = nn.Conv(
      self.features,
      self.kernel,
      (s, s),
      padding=((ph, ph), (pw, pw)),
      use_bias=False,
      precision=jax.lax.Precision.HIGHEST,
      name='conv',
    )(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
  # TensorFlow's SAME average pool divides by the number of real (unpadded) pixels.
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x: jax.Array, stride: int = 1) -> jax.Array:
  pad = ((1, 1), (1, 1)) if stride == 1 else 'VALID'
  return nn.max_pool(x, (3, 3), (stride, stride), pad)


class BlockA(nn.Module):
  """Mixed_5b..5d (FIDInceptionA)."""

  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = ConvBN(64, (1, 1), name='branch1x1')(x)
    b5 = ConvBN(48, (1, 1), name='branch5x5_1')(x)
    b5 = ConvBN(64, (5, 5), padding=(2, 2), name='branch5x5_2')(b5)
    b3 = ConvBN(64, (1, 1), name='branch3x3dbl_1')(x)
    b3 = ConvBN(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(b3)
    b3 = ConvBN(96, (3, 3), padding=(1, 1), name='branch3x3dbl_3')(b3)
    bp = ConvBN(self.pool_features, (1, 1), name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], -1)


class BlockB(nn.Module):
  """Mixed_6a: the 35x35 -> 17x17 reduction."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = ConvBN(384, (3, 3), stride=2, name='branch3x3')(x)
    bd = ConvBN(64, (1, 1), name='branch3x3dbl_1')(x)
    bd = ConvBN(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = ConvBN(96, (3, 3), stride=2, name='branch3x3dbl_3')(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3(x, 2)], -1)


class BlockC(nn.Module):
  """Mixed_6b..6e (FIDInceptionC): factorized 7x7 convolutions."""

  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = self.channels_7x7
    row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
    b1 = ConvBN(192, (1, 1), name='branch1x1')(x)
    b7 = ConvBN(c, (1, 1), name='branch7x7_1')(x)
    b7 = ConvBN(c, **row, name='branch7x7_2')(b7)
    b7 = ConvBN(192, **col, name='branch7x7_3')(b7)
    bd = ConvBN(c, (1, 1), name='branch7x7dbl_1')(x)
    bd = ConvBN(c, **col, name='branch7x7dbl_2')(bd)
    bd = ConvBN(c, **row, name='branch7x7dbl_3')(bd)
    bd = ConvBN(c, **col, name='branch7x7dbl_4')(bd)
    bd = ConvBN(192, **row, name='branch7x7dbl_5')(bd)
    bp = ConvBN(192, (1, 1), name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], -1)


class BlockD(nn.Module):
  """Mixed_7a: the 17x17 -> 8x8 reduction."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = ConvBN(192, (1, 1), name='branch3x3_1')(x)
    b3 = ConvBN(320, (3, 3), stride=2, name='branch3x3_2')(b3)
    b7 = ConvBN(192, (1, 1), name='branch7x7x3_1')(x)
    b7 = ConvBN(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(b7)
    b7 = ConvBN(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(b7)
    b7 = ConvBN(192, (3, 3), stride=2, name='branch7x7x3_4')(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3(x, 2)], -1)


class BlockE(nn.Module):
  """Mixed_7b (FIDInceptionE_1, average pool) and Mixed_7c (FIDInceptionE_2, max pool: the
  2015 graph's quirk, kept because the published FID statistics were computed with it)."""

  max_pool: bool

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    row, col = dict(kernel=(1, 3), padding=(0, 1)), dict(kernel=(3, 1), padding=(1, 0))
    b1 = ConvBN(320, (1, 1), name='branch1x1')(x)
    b3 = ConvBN(384, (1, 1), name='branch3x3_1')(x)
    b3 = [ConvBN(384, **row, name='branch3x3_2a')(b3), ConvBN(384, **col, name='branch3x3_2b')(b3)]
    bd = ConvBN(448, (1, 1), name='branch3x3dbl_1')(x)
    bd = ConvBN(384, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = [
      ConvBN(384, **row, name='branch3x3dbl_3a')(bd),
      ConvBN(384, **col, name='branch3x3dbl_3b')(bd),
    ]
    pooled = _max_pool_3x3(x) if self.max_pool else _avg_pool_3x3(x)
    bp = ConvBN(192, (1, 1), name='branch_pool')(pooled)
    return jnp.concatenate([b1, *b3, *bd, bp], -1)


class FIDInceptionV3(nn.Module):
  """299x299x3 images in [-1, 1] -> (pool3 features (N, 2048), logits (N, num_classes)); with
  num_classes 0 (weights without the classifier), the logits are None."""

  num_classes: int = NUM_CLASSES

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array | None]:
    x = ConvBN(32, (3, 3), stride=2, name='Conv2d_1a_3x3')(x)
    x = ConvBN(32, (3, 3), name='Conv2d_2a_3x3')(x)
    x = ConvBN(64, (3, 3), padding=(1, 1), name='Conv2d_2b_3x3')(x)
    x = _max_pool_3x3(x, 2)
    x = ConvBN(80, (1, 1), name='Conv2d_3b_1x1')(x)
    x = ConvBN(192, (3, 3), name='Conv2d_4a_3x3')(x)
    x = _max_pool_3x3(x, 2)
    x = BlockA(32, name='Mixed_5b')(x)
    x = BlockA(64, name='Mixed_5c')(x)
    x = BlockA(64, name='Mixed_5d')(x)
    x = BlockB(name='Mixed_6a')(x)
    for name, c in (('Mixed_6b', 128), ('Mixed_6c', 160), ('Mixed_6d', 160), ('Mixed_6e', 192)):
      x = BlockC(c, name=name)(x)
    x = BlockD(name='Mixed_7a')(x)
    x = BlockE(max_pool=False, name='Mixed_7b')(x)
    x = BlockE(max_pool=True, name='Mixed_7c')(x)
    features = x.mean(axis=(1, 2))
    if not self.num_classes:
      return features, None
    return features, nn.Dense(self.num_classes, precision=jax.lax.Precision.HIGHEST, name='fc')(
      features
    )


# ---------------------------------------------------------------------------------------------
# Preprocessing
