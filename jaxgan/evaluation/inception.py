"""The FID Inception-v3 network (pytorch-fid's `FIDInceptionV3`) in Flax, for FID on any images.

FID numbers are only comparable with published ones when they come from one specific network:
TensorFlow's 2015-12-05 Inception graph, which pytorch-fid ported with its quirks (average pools
that ignore padding, a max pool in the last block, 1008 logits) and whose weights it publishes as
`pt_inception-2015-12-05-6726825d.pth`. This module runs that network on the user's copy of the
file (jaxgan ships no weights and fetches nothing), reading the PyTorch checkpoint itself so that
evaluation needs no torch. Its preprocessing is pytorch-fid's, to a few float32 ulps: uint8
pixels, bilinear resizing to 299x299 WITHOUT antialiasing (as `F.interpolate`), [-1, 1].

`load(path, allow_unverified)` gives the feature network (`Inception`) for
jaxgan.evaluation.features; `Inception(variables)` builds it from given (e.g. random) variables.
"""

import collections
import hashlib
import io
import os
import pickle
import struct
import zipfile
from typing import Any, NamedTuple

import flax.linen as nn
import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgan import parallel, writers
from jaxgan.errors import JaxganError
from jaxgan.evaluation.features import Embedding
from jaxgan.gan import PyTree
from jaxgan.images import to_uint8

ENV_VAR = 'JAXGAN_INCEPTION_WEIGHTS'
WEIGHTS_FILE = 'pt_inception-2015-12-05-6726825d.pth'
# torch.hub names a file after the start of its SHA-256; that prefix is all pytorch-fid
# publishes (and all torch.hub checks), so it is what a copy is checked against.
SHA256_PREFIX = '6726825d'
WHERE_TO_GET = (
  f'download {WEIGHTS_FILE} from the GitHub release "fid_weights" of mseitzer/pytorch-fid '
  f'and pass its path (or set {ENV_VAR})'
)
SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
BATCH_SIZE = 200


class WeightsError(JaxganError):
  """The Inception weights file is missing, not the published one, or unreadable."""


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------


class ConvBN(nn.Module):
  """Conv (no bias), BatchNorm with TensorFlow's eps, ReLU: torchvision's `BasicConv2d`.

  The submodule names (`conv`, `bn`) are the state dict's, so loading is a rename.
  """

  features: int
  kernel: tuple[int, int]
  stride: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    (ph, pw), s = self.padding, self.stride
    x = nn.Conv(
      self.features, self.kernel, (s, s), padding=((ph, ph), (pw, pw)), use_bias=False, name='conv'
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
  """299x299x3 images in [-1, 1] -> (pool3 features (N, 2048), logits (N, 1008))."""

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
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
    return features, nn.Dense(NUM_CLASSES, name='fc')(features)


def init_variables(key: jax.Array) -> PyTree:
  """Random {'params', 'batch_stats'} of the right shapes (running stats 0 and 1)."""
  # The network is fully convolutional up to the global pool: the smallest input it takes
  # (75x75) gives the same variables as 299x299, at a fraction of the init cost.
  return jax.jit(FIDInceptionV3().init)(key, jnp.zeros((1, 75, 75, 3)))


# ---------------------------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------------------------


def resize_matrix(size_in: int, size_out: int = SIZE) -> np.ndarray:
  """(size_out, size_in) weights of 1-d linear interpolation as PyTorch's `F.interpolate(...,
  mode='bilinear', align_corners=False)` computes it: no antialiasing when shrinking (unlike
  jax.image.resize), source positions clamped at 0, rounded as its CPU kernel rounds them."""
  # Its float32 scale, the source position in double (C++'s `+ 0.5` promotes), then float32.
  scale = np.float64(np.float32(size_in / size_out))
  src = np.maximum((np.arange(size_out) + 0.5) * scale - 0.5, 0).astype(np.float32)
  i0 = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
  i1 = np.minimum(i0 + 1, size_in - 1)
  w1 = src - i0.astype(np.float32)
  m = np.zeros((size_out, size_in), np.float32)
  rows = np.arange(size_out)
  np.add.at(m, (rows, i0), np.float32(1) - w1)
  np.add.at(m, (rows, i1), w1)
  return m


def preprocess(images: jax.Array) -> jax.Array:
  """uint8 NHWC images (1 or 3 channels, any size) -> (N, 299, 299, 3) float32 in [-1, 1]."""
  _, h, w, c = images.shape
  x = images.astype(jnp.float32) / 255
  if c == 1:
    x = jnp.repeat(x, 3, axis=-1)
  # Separable: two small matrix products instead of a gather. Along the width first, as
  # PyTorch's kernel, which keeps the result within a few float32 ulps of F.interpolate's.
  rh, rw = jnp.asarray(resize_matrix(h)), jnp.asarray(resize_matrix(w))
  hp = jax.lax.Precision.HIGHEST
  x = jnp.einsum('pw,nhwc->nhpc', rw, x, precision=hp)
  x = jnp.einsum('oh,nhpc->nopc', rh, x, precision=hp)
  return 2 * x - 1


@jax.jit
def _network(variables: PyTree, x: jax.Array) -> tuple[jax.Array, jax.Array]:
  features, logits = FIDInceptionV3().apply(variables, x)
  return features, jax.nn.softmax(logits)


# Compiled apart from the network, so that images of every size share one compiled network.
_preprocess = jax.jit(preprocess)


# ---------------------------------------------------------------------------------------------
# The feature network
# ---------------------------------------------------------------------------------------------


class Inception:
  """FID Inception-v3 as a jaxgan feature network: pool3 features (2048) and the softmax of the
  1008 logits (for the Inception Score), for uint8 or [-1, 1] NHWC images of any size."""

  name = 'inception'
  resize = 'bilinear to 299x299, no antialiasing (pytorch-fid, F.interpolate)'

  def __init__(self, variables: PyTree, sha256: str | None = None, batch_size: int = BATCH_SIZE):
    self.sha256 = sha256  # of the weights file; None for variables not read from one
    self.batch_size = batch_size
    # This process's devices: each process embeds the images it was given.
    self._mesh = parallel.mesh(jax.local_devices())
    self._variables = jax.device_put(variables, parallel.replicated(self._mesh))
    self._sharding = NamedSharding(self._mesh, P('data'))

  def check(self, image_shape: tuple[int, ...]) -> None:
    if len(image_shape) < 3 or image_shape[-1] not in (1, 3) or min(image_shape[-3:-1]) < 1:
      raise ValueError(
        f'images of shape {tuple(image_shape)}: Inception measures HxW images with 1 channel '
        '(repeated to RGB) or 3'
      )

  def embed(self, images: np.ndarray) -> Embedding:
    """Features (N, 2048) and class probabilities (N, 1, 1008).

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
        x = _preprocess(jax.device_put(batch, self._sharding))
        f, p = jax.device_get(_network(self._variables, x))
        features.append(f[:count])
        probs.append(p[:count])
        bar.update(count)
    if not features:
      empty = np.zeros((0, FEATURE_DIM), np.float32)
      return Embedding(empty, np.zeros((0, 1, NUM_CLASSES), np.float32))
    return Embedding(np.concatenate(features), np.concatenate(probs)[:, None, :])


def load(path: str | None = None, allow_unverified: bool = False) -> Inception:
  """The FID Inception network with pytorch-fid's weights from `path` (default: $ENV_VAR).

  The file must be the published one (SHA-256 starting with 6726825d): any other file gives
  FIDs that cannot be compared with anyone's, so it is refused unless `allow_unverified`.
  """
  path = path or os.environ.get(ENV_VAR)
  if not path:
    raise WeightsError(f'no Inception weights given: {WHERE_TO_GET}')
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    raise WeightsError(
      f'cannot read Inception weights {path} ({e.strerror or e}): {WHERE_TO_GET}'
    ) from None
  sha256 = hashlib.sha256(data).hexdigest()
  if not sha256.startswith(SHA256_PREFIX):
    if not allow_unverified:
      raise WeightsError(
        f'{path} has SHA-256 {sha256[:16]}..., not the published {SHA256_PREFIX}... of '
        f'{WEIGHTS_FILE} (allow_unverified to use it anyway): {WHERE_TO_GET}'
      )
    logging.warning(
      'Inception weights %s are not the published file (SHA-256 %s..., expected %s...): '
      'its FIDs are not comparable with published ones',
      path,
      sha256[:16],
      SHA256_PREFIX,
    )
  try:
    variables = variables_from_state_dict(read_torch_checkpoint(data))
  except Exception as e:  # a corrupt file fails in any way the pickle and zip parsers can
    raise WeightsError(
      f'cannot read Inception weights {path} ({type(e).__name__}: {" ".join(str(e).split())}): '
      f'{WHERE_TO_GET}'
    ) from None
  return Inception(variables, sha256)


# ---------------------------------------------------------------------------------------------
# Weights: PyTorch checkpoints read without torch, and the state dict renamed for Flax
# ---------------------------------------------------------------------------------------------

_STORAGE_DTYPES = {
  'FloatStorage': np.float32,
  'DoubleStorage': np.float64,
  'HalfStorage': np.float16,
  'LongStorage': np.int64,
  'IntStorage': np.int32,
  'ShortStorage': np.int16,
  'CharStorage': np.int8,
  'ByteStorage': np.uint8,
  'BoolStorage': np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Storage(NamedTuple):
  key: str
  dtype: Any
  numel: int


class _TensorRef(NamedTuple):
  """A tensor as the pickle describes it; its bytes come later (after the pickle, or in the
  zip), so tensors are built once every storage is known."""

  storage: _Storage
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]


def _rebuild_tensor(storage, offset, size, stride, *unused):
  return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *unused):
  return data


class _Dtype(NamedTuple):
  dtype: Any


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickles a state dict and nothing else: the few globals a tensor needs map to harmless
  stand-ins; any other global (which in a pickle can run arbitrary code) is refused."""

  _GLOBALS = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    **{('torch', name): _Dtype(dtype) for name, dtype in _STORAGE_DTYPES.items()},
  }

  def __init__(self, file, storage_keys_out: dict):
    super().__init__(file)
    self._storages = storage_keys_out

  def find_class(self, module: str, name: str):
    if (module, name) not in self._GLOBALS:
      raise pickle.UnpicklingError(f'refusing {module}.{name}: not part of a tensor state dict')
    return self._GLOBALS[module, name]

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == 'storage'):
      raise pickle.UnpicklingError(f'unexpected persistent id {pid!r:.80}')
    storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
    if not isinstance(storage_type, _Dtype):
      raise pickle.UnpicklingError(f'unexpected storage type {storage_type!r:.80}')
    if len(pid) > 5 and pid[5] is not None:
      raise pickle.UnpicklingError('storage views (torch < 0.4 files) are not supported')
    storage = _Storage(key, storage_type.dtype, numel)
    self._storages[key] = storage
    return storage


def _unpickle(file) -> tuple[Any, dict[str, _Storage]]:
  storages: dict[str, _Storage] = {}
  return _RestrictedUnpickler(file, storages).load(), storages


def read_torch_checkpoint(data: bytes) -> dict[str, np.ndarray]:
  """The state dict (name -> numpy array) of a `torch.save`d file's bytes, either format.

  torch >= 1.6 writes a zip (`<name>/data.pkl` and one `<name>/data/<key>` per storage);
  older torch (and `_use_new_zipfile_serialization=False`) a sequence of pickles: magic
  number, protocol, system info, the object, the storage keys, then each storage's raw bytes
  after an int64 element count.
  """
  if zipfile.is_zipfile(io.BytesIO(data)):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
      pkl = [n for n in z.namelist() if n.endswith('/data.pkl') or n == 'data.pkl']
      if len(pkl) != 1:
        raise ValueError('a zip without one data.pkl: not a PyTorch checkpoint')
      prefix = pkl[0][: -len('data.pkl')]
      obj, storages = _unpickle(io.BytesIO(z.read(pkl[0])))
      raw = {key: z.read(f'{prefix}data/{key}') for key in storages}
  else:
    f = io.BytesIO(data)
    try:
      magic = _RestrictedUnpickler(f, {}).load()
    except Exception:  # random bytes fail to unpickle in many ways
      magic = None
    if magic != _LEGACY_MAGIC:
      raise ValueError('not a PyTorch checkpoint (neither a zip nor the legacy format)')
    _RestrictedUnpickler(f, {}).load()  # protocol version
    _RestrictedUnpickler(f, {}).load()  # sys info (endianness, type sizes)
    obj, storages = _unpickle(f)
    keys = _RestrictedUnpickler(f, {}).load()
    raw = {}
    for key in keys:
      if key not in storages:
        raise ValueError(f'storage {key} is listed but used by no tensor')
      (count,) = struct.unpack('<q', f.read(8))
      nbytes = count * np.dtype(storages[key].dtype).itemsize
      raw[key] = f.read(nbytes)
      if len(raw[key]) != nbytes:
        raise ValueError('file truncated')
  if not isinstance(obj, dict):
    raise ValueError(f'the checkpoint holds a {type(obj).__name__}, not a state dict')
  return {str(name): _materialize(t, raw) for name, t in obj.items() if isinstance(t, _TensorRef)}


def _materialize(t: _TensorRef, raw: dict[str, bytes]) -> np.ndarray:
  flat = np.frombuffer(raw[t.storage.key], dtype=t.storage.dtype)
  if flat.size < t.storage.numel:
    raise ValueError(f'storage {t.storage.key} truncated')
  # as_strided reads whatever memory the strides point to: check the view stays inside.
  last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride, strict=True) if n > 0)
  if t.offset < 0 or min(t.stride, default=0) < 0 or (0 not in t.size and last >= flat.size):
    raise ValueError(f'a tensor reaches outside its storage {t.storage.key}')
  if 0 in t.size:
    return np.zeros(t.size, flat.dtype)
  item = flat.itemsize
  view = np.lib.stride_tricks.as_strided(
    flat[t.offset :], t.size, tuple(s * item for s in t.stride), writeable=False
  )
  return np.array(view)


def variables_from_state_dict(state_dict: dict[str, np.ndarray]) -> PyTree:
  """pytorch-fid's state dict (`Mixed_5b.branch1x1.conv.weight`, ..., `fc.bias`) as this
  module's {'params', 'batch_stats'}; every variable must be present with its exact shape."""
  expected = jax.eval_shape(FIDInceptionV3().init, jax.random.key(0), jnp.zeros((1, 75, 75, 3)))
  variables: dict = {'params': {}, 'batch_stats': {}}
  for name, value in state_dict.items():
    *path, module, leaf = name.split('.')
    if leaf == 'num_batches_tracked':
      continue
    value = np.asarray(value, np.float32)
    if module == 'conv' and leaf == 'weight':  # (out, in, kh, kw) -> (kh, kw, in, out)
      collection, leaf, value = 'params', 'kernel', value.transpose(2, 3, 1, 0)
    elif module == 'fc' and leaf == 'weight':  # (out, in) -> (in, out)
      collection, leaf, value = 'params', 'kernel', value.T
    elif leaf in ('weight', 'bias'):
      collection, leaf = 'params', {'weight': 'scale', 'bias': 'bias'}[leaf]
    elif leaf in ('running_mean', 'running_var'):
      collection, leaf = 'batch_stats', {'running_mean': 'mean', 'running_var': 'var'}[leaf]
    else:
      raise ValueError(f'unexpected variable {name}')
    node = variables[collection]
    for part in (*path, module):
      node = node.setdefault(part, {})
    node[leaf] = value
  flat_expected = flax.traverse_util.flatten_dict(expected)
  flat_got = flax.traverse_util.flatten_dict(variables)
  missing = sorted('/'.join(k) for k in flat_expected.keys() - flat_got.keys())
  unexpected = sorted('/'.join(k) for k in flat_got.keys() - flat_expected.keys())
  if missing or unexpected:
    raise ValueError(
      f'not the FID Inception state dict: missing {missing[:3]}, unexpected {unexpected[:3]}'
    )
  for k, v in flat_expected.items():
    if flat_got[k].shape != v.shape:
      raise ValueError(f'{"/".join(k)} has shape {flat_got[k].shape}, expected {v.shape}')
  return variables
