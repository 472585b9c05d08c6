"""CIFAR-10 and CIFAR-100 from their official python tarballs, read without unpacking them.

`data.dir` is a folder holding `cifar-10-python.tar.gz` (`cifar-100-python.tar.gz`), or the
tarball itself; with `data.dir=''` the tarball is fetched once from the official site into
`data.cache_dir`/<name> (default ~/.cache/jaxgan/<name>). Either way its MD5 must be the
published one. The batches inside are pickles: they are read with an unpickler that builds
only numpy arrays and plain containers, so a tampered file cannot run code.
"""

import hashlib
import os
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
from absl import logging

from jaxgan import checks, files
from jaxgan.data import cache, download
from jaxgan.data.dataset import Dataset
from jaxgan.errors import DataError

DEFAULT_URL = 'https://www.cs.toronto.edu/~kriz/'
# As published on https://www.cs.toronto.edu/~kriz/cifar.html.
MD5 = {
  'cifar-10-python.tar.gz': 'c58f30108f718f92721af3b95e74349a',
  'cifar-100-python.tar.gz': 'eb9058c3a382ffc7106e4002c42a8d85',
}
_CHUNK_BYTES = 1 << 20


class Spec(NamedTuple):
  name: str
  tarball: str
  folder: str  # inside the tarball
  splits: dict[str, tuple[str, ...]]  # split -> its batch files
  label_key: bytes
  meta: str
  names_key: bytes


CIFAR10_SPEC = Spec(
  'cifar10',
  'cifar-10-python.tar.gz',
  'cifar-10-batches-py',
  {'train': tuple(f'data_batch_{i}' for i in range(1, 6)), 'test': ('test_batch',)},
  b'labels',
  'batches.meta',
  b'label_names',
)
CIFAR100_SPEC = Spec(
  'cifar100',
  'cifar-100-python.tar.gz',
  'cifar-100-python',
  {'train': ('train',), 'test': ('test',)},
  b'fine_labels',
  'meta',
  b'fine_label_names',
)


class _Unpickler(pickle.Unpickler):
  """Builds numpy arrays, lists, dicts, numbers and strings; refuses anything else."""

  _ALLOWED = {
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('_codecs', 'encode'),  # how protocol 2 stores Python 3 bytes
  }

  def find_class(self, module, name):
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(f'unexpected object {module}.{name} in a CIFAR batch')
    return super().find_class(module, name)


def _md5(path: Path) -> str:
  h = hashlib.md5(usedforsecurity=False)
  with open(path, 'rb') as f:
    while chunk := f.read(_CHUNK_BYTES):
      h.update(chunk)
  return h.hexdigest()


def read_tarball(
  path: str | os.PathLike, spec: Spec, split: str
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
  """(images uint8 (N, 32, 32, 3), labels int32 (N,), class names) of `split` in the tarball."""
  path = Path(path)
  batches = [f'{spec.folder}/{b}' for b in spec.splits[split]]
  wanted = {*batches, f'{spec.folder}/{spec.meta}'}
  corrupt = f'{path}: corrupt or truncated {spec.tarball}'
  found = {}
  try:
    with tarfile.open(path, 'r:gz') as tar:
      for member in tar:  # in the archive's order: a gzip stream reads fastest front to back
        if member.name in wanted and member.isfile():
          found[member.name] = _Unpickler(tar.extractfile(member), encoding='bytes').load()
          if len(found) == len(wanted):
            break
  except (tarfile.TarError, OSError, EOFError, zlib.error, pickle.UnpicklingError) as e:
    raise DataError(f'{corrupt} ({e}); delete it and fetch it again.') from e
  except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:  # a bad pickle
    raise DataError(f'{corrupt} (unreadable batch: {e}); delete it and fetch it again.') from e
  missing = sorted(wanted - set(found))
  if missing:
    raise DataError(f'{corrupt} (no {missing[0]} inside); delete it and fetch it again.')
  try:
    data = np.concatenate([np.asarray(found[b][b'data'], np.uint8) for b in batches])
    labels = np.concatenate([np.asarray(found[b][spec.label_key], np.int64) for b in batches])
    classes = tuple(n.decode() for n in found[f'{spec.folder}/{spec.meta}'][spec.names_key])
  except (KeyError, TypeError, ValueError, AttributeError) as e:
    raise DataError(f'{corrupt} (a batch lacks {e}); delete it and fetch it again.') from e
  if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
    raise DataError(f'{corrupt} (images {data.shape}, labels {labels.shape}).')
  if labels.min() < 0 or labels.max() >= len(classes):
    raise DataError(f'{corrupt} (labels outside 0..{len(classes) - 1}).')
  # Stored as planes (R, G, B), each 32x32 row-major.
  images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
  return images, labels.astype(np.int32), classes


def _download(url: str, path: Path, md5: str) -> None:
  """Fetches `url` into `path` atomically; nothing is left there unless its MD5 is `md5`."""
  logging.info('Downloading %s to %s.', url, path)
  try:
    with files.atomic_path(str(path)) as tmp:
      hint = f'for offline use pass --config.data.dir=PATH to a folder with {path.name}.'
      download.fetch(url, tmp, hint)
      got = _md5(Path(tmp))
      if got != md5:
        raise DataError(
          f'{url}: the downloaded file is corrupt or not the original {path.name} '
          f'(MD5 {got}, expected {md5}); check data.url, or pass --config.data.dir=PATH.'
        )
  except OSError as e:  # the cache folder itself
    raise DataError(f'{path.parent}: cannot create the {path.name} cache ({e}).') from e


def tarball(data_config, spec: Spec) -> Path:
  """The verified tarball: in data.dir, else in the cache (downloaded when missing or bad)."""
  md5 = MD5[spec.tarball]
  if data_config.dir:
    path = Path(data_config.dir).expanduser()
    path = path / spec.tarball if path.is_dir() else path
    if not path.is_file():
      raise DataError(
        f'{path}: file not found; put {spec.tarball} in data.dir, or leave data.dir empty '
        'to download it.'
      )
    got = _md5(path)
    if got != md5:
      raise DataError(
        f'{path}: corrupt or not the original {spec.tarball} (MD5 {got}, expected {md5}); '
        'delete it and fetch it again.'
      )
    return path
  cache_dir = data_config.cache_dir
  root = Path(cache_dir).expanduser() / spec.name if cache_dir else None
  path = (root or cache.default_cache_dir(spec.name)) / spec.tarball
  if path.exists():
    if _md5(path) == md5:
      return path
    logging.warning('%s: corrupt or partial (MD5 mismatch); downloading it again.', path)
  url = (data_config.url or DEFAULT_URL).rstrip('/') + '/' + spec.tarball
  _download(url, path, md5)
  return path


class Source:
  """A jaxgan.data source for one of the CIFAR datasets."""

  SCHEMA = {'cache_dir': checks.Key('', checks.string), 'url': checks.Key('', checks.string)}
  EVAL_NUM_SAMPLES = 10_000  # the size of the test split

  def __init__(self, spec: Spec):
    self.spec = spec
    # jaxgan's own CIFAR-10 classifier (jaxgan.evaluation.cifar_classifier); CIFAR-100 has none.
    self.FEATURES = 'cifar10_classifier' if spec.name == 'cifar10' else None

  def load(self, data_config, split: str) -> Dataset:
    if split not in self.spec.splits:
      raise DataError(
        f'{self.spec.name}: unknown split {split!r}; use one of {sorted(self.spec.splits)}.'
      )
    images, labels, classes = read_tarball(tarball(data_config, self.spec), self.spec, split)
    return Dataset(images, labels, self.spec.name, classes)

  def image_shape(self, data_config) -> tuple[int, ...]:
    return (32, 32, 3)


CIFAR10 = Source(CIFAR10_SPEC)
CIFAR100 = Source(CIFAR100_SPEC)
