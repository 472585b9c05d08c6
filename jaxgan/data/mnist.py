"""MNIST from its four IDX files: read from a folder, or fetched once into a cache.

Files are verified by the SHA-256 of their uncompressed content, because mirrors re-gzip the
same bytes and so the checksums of the .gz files differ from one copy to another.
"""

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np
from absl import logging

from jaxgan import checks, files
from jaxgan.data import download
from jaxgan.data.cache import default_cache_dir
from jaxgan.data.dataset import Dataset
from jaxgan.errors import DataError

DEFAULT_URL = 'https://storage.googleapis.com/cvdf-datasets/mnist/'

# SHA-256 of the uncompressed files, as published with the original distribution.
MNIST_FILES = {
  't10k-images-idx3-ubyte': '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
  't10k-labels-idx1-ubyte': 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
  'train-images-idx3-ubyte': 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
  'train-labels-idx1-ubyte': '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
}

SPLIT_PREFIX = {'train': 'train', 'test': 't10k'}

_IDX_DTYPES = {
  0x08: np.dtype('u1'),
  0x09: np.dtype('i1'),
  0x0B: np.dtype('>i2'),
  0x0C: np.dtype('>i4'),
  0x0D: np.dtype('>f4'),
  0x0E: np.dtype('>f8'),
}

_OFFLINE_HINT = 'for offline use pass --config.data.dir=PATH to a folder with the MNIST IDX files.'


def _read_bytes(path: Path) -> bytes:
  """Returns the content of `path`, gunzipped when it starts with the gzip magic bytes."""
  try:
    data = path.read_bytes()
    # Sniffing rather than trusting the suffix: IDX starts with 0 0, gzip with 1f 8b.
    return gzip.decompress(data) if data[:2] == b'\x1f\x8b' else data
  except FileNotFoundError:
    raise DataError(f'{path}: file not found.') from None
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f'{path}: corrupt or truncated ({e}); delete it and fetch it again.') from e


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
  """Parses IDX bytes (magic 0 0 dtype ndim, big-endian int32 dims, then the values)."""
  corrupt = f'{path}: corrupt or truncated IDX file'
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
    raise DataError(f'{corrupt} (bad magic number); delete it and fetch it again.')
  dtype, ndim = _IDX_DTYPES[data[2]], data[3]
  offset = 4 + 4 * ndim
  if len(data) < offset:
    raise DataError(f'{corrupt} (header cut short); delete it and fetch it again.')
  shape = tuple(int(d) for d in np.frombuffer(data, '>u4', count=ndim, offset=4))
  expected = offset + int(np.prod(shape)) * dtype.itemsize
  if len(data) != expected:
    raise DataError(
      f'{corrupt} ({len(data)} bytes, header {shape} needs {expected}); '
      'delete it and fetch it again.'
    )
  # Copy so that callers get a writable array that does not pin the raw bytes.
  return np.frombuffer(data, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder('='))


def read_idx(path: str | os.PathLike) -> np.ndarray:
  """Reads an IDX file (optionally gzipped), checking that its size matches its header."""
  path = Path(path)
  return _parse_idx(_read_bytes(path), path)


def _read_verified(path: Path, name: str) -> np.ndarray:
  """Reads MNIST file `name` from `path` and checks its uncompressed SHA-256."""
  data = _read_bytes(path)
  array = _parse_idx(data, path)
  if hashlib.sha256(data).hexdigest() != MNIST_FILES[name]:
    raise DataError(
      f'{path}: corrupt (SHA-256 of its content does not match {name}); '
      'delete it and fetch it again.'
    )
  return array


def _find_local(data_dir: Path, name: str) -> Path:
  """Returns the path of `name` in `data_dir`, gzipped or not."""
  for candidate in (data_dir / f'{name}.gz', data_dir / name):
    if candidate.exists():
      return candidate
  raise DataError(
    f'{data_dir / name}.gz: file not found (nor {name} uncompressed); '
    'put the four MNIST IDX files in data.dir.'
  )


def _download(url: str, path: Path, name: str) -> np.ndarray:
  """Fetches `url` into `path` atomically and returns its verified content."""
  try:
    with files.atomic_path(str(path)) as tmp:
      download.fetch(url, tmp, _OFFLINE_HINT)
      try:
        array = _read_verified(Path(tmp), name)
      except DataError as e:
        raise DataError(
          f'{url}: the downloaded file is corrupt or truncated (not the original {name}); '
          'check data.url, or pass --config.data.dir=PATH to a folder with the MNIST IDX files.'
        ) from e
  except OSError as e:  # the cache folder itself
    raise DataError(f'{path.parent}: cannot create the MNIST cache ({e}).') from e
  logging.info('Downloaded %s to %s.', url, path)
  return array


def _fetch_cached(url: str, cache_dir: Path, name: str) -> np.ndarray:
  """Returns `name` from the cache, downloading it when missing or failing verification."""
  path = cache_dir / f'{name}.gz'
  if path.exists():
    try:
      return _read_verified(path, name)
    except DataError as e:
      logging.warning('%s Downloading it again.', e)
  return _download(url.rstrip('/') + f'/{name}.gz', path, name)


def load_mnist(
  split: str,
  data_dir: str | os.PathLike = '',
  cache_dir: str | os.PathLike = '',
  url: str = DEFAULT_URL,
) -> tuple[np.ndarray, np.ndarray]:
  """Returns MNIST `split` ('train' or 'test') as uint8 images (N, 28, 28, 1), int32 labels (N,).

  Reads from `data_dir` when given (no network); otherwise fetches from `url` into `cache_dir`.
  """
  if split not in SPLIT_PREFIX:
    raise DataError(f'mnist: unknown split {split!r}; use one of {sorted(SPLIT_PREFIX)}.')
  names = [f'{SPLIT_PREFIX[split]}-images-idx3-ubyte', f'{SPLIT_PREFIX[split]}-labels-idx1-ubyte']
  if data_dir:
    data_dir = Path(data_dir).expanduser()
    images, labels = (_read_verified(_find_local(data_dir, n), n) for n in names)
  else:
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir('mnist')
    images, labels = (_fetch_cached(url, cache, n) for n in names)
  return images[..., None], labels.astype(np.int32)


# --- The `mnist` source (jaxgan.data) ----------------------------------------------------------
# '': ~/.cache/jaxgan (or $JAXGAN_CACHE); the download's base URL ('': the official mirror).
SCHEMA = {'cache_dir': checks.Key('', checks.string), 'url': checks.Key('', checks.string)}
FEATURES = 'mnist_classifier'
EVAL_NUM_SAMPLES = 10_000


def load(data_config, split: str) -> Dataset:
  images, labels = load_mnist(
    split,
    data_dir=data_config.dir,
    cache_dir=data_config.cache_dir,
    url=data_config.url or DEFAULT_URL,
  )
  return Dataset(images, labels, 'mnist')


def image_shape(data_config) -> tuple[int, ...]:
  return (28, 28, 1)
