"""A dataset prepared once on disk: the uint8 images as one .npy file (memory-mapped when read),
the labels as another, and a manifest, written last, saying what they were made from.

The arrays are trusted only when the manifest matches the current source files and settings
and they have the manifest's shape. So a preparation killed half-way, a truncated or garbled
file, or a source folder that changed since all lead to preparing again, never to wrong data.
Each file is written atomically (jaxgan.files), and a new preparation first removes the old
manifest, so no mix of old and new files ever looks complete.
"""

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from absl import logging

from jaxgan import files
from jaxgan.errors import DataError

FORMAT_VERSION = 1
IMAGES, LABELS, MANIFEST = 'images.npy', 'labels.npy', 'manifest.json'


def default_cache_dir(name: str) -> Path:
  """Returns $JAXGAN_CACHE/<name>, or ~/.cache/jaxgan/<name> when JAXGAN_CACHE is unset."""
  root = os.environ.get('JAXGAN_CACHE') or Path.home() / '.cache' / 'jaxgan'
  return Path(root).expanduser() / name


def path_for(cache_dir: str | os.PathLike, kind: str, settings: dict[str, Any]) -> Path:
  """cache_dir/kind/<hash of the settings> (a '' cache_dir: the default cache)."""
  root = Path(cache_dir).expanduser() / kind if cache_dir else default_cache_dir(kind)
  key = json.dumps({'format': FORMAT_VERSION, **settings}, sort_keys=True)
  return root / hashlib.sha256(key.encode()).hexdigest()[:16]


class Prepared(NamedTuple):
  images: np.ndarray  # uint8 (N, H, W, C), memory-mapped read-only
  labels: np.ndarray | None  # int32 (N,)
  manifest: dict[str, Any]
  path: Path
  fresh: bool  # prepared by this call (not read from an earlier preparation)


def _silent(*args) -> None:
  pass


def read(
  path: Path, settings: dict[str, Any], sources: list, quiet: bool = False
) -> Prepared | None:
  """The preparation in `path` if it was made from `sources` with `settings`, else None.

  `sources` is any JSON-able description of the inputs (for image folders: each file's
  relative path, size and mtime); anything unreadable is logged (unless `quiet`) and treated
  as absent.
  """
  warning = _silent if quiet else logging.warning
  info = _silent if quiet else logging.info
  manifest_path = path / MANIFEST
  if not manifest_path.exists():
    if (path / IMAGES).exists():
      warning('%s: an unfinished preparation (no manifest); preparing again.', path)
    return None
  try:
    manifest = json.loads(manifest_path.read_text())
    current = manifest['format'] == FORMAT_VERSION and manifest['settings'] == settings
    count, shape, has_labels = manifest['count'], tuple(manifest['image_shape']), manifest['labels']
  except (OSError, ValueError, KeyError, TypeError) as e:
    warning('%s: unreadable (%s); preparing again.', manifest_path, e)
    return None
  if not current:
    info('%s: made by another jaxgan version or settings; preparing again.', path)
    return None
  if manifest.get('sources') != sources:
    info('%s: the source files changed since it was prepared; preparing again.', path)
    return None
  try:
    images = np.load(path / IMAGES, mmap_mode='r')
    labels = np.load(path / LABELS) if has_labels else None
  except (OSError, ValueError) as e:  # a truncated or garbled .npy file
    warning('%s: a cached array is corrupt (%s); preparing again.', path, e)
    return None
  expected = [(images, np.uint8, (count, *shape))]
  if labels is not None:
    expected.append((labels, np.int32, (count,)))
  for array, dtype, want in expected:
    if array.dtype != dtype or array.shape != want:
      warning(
        '%s: a cached array is %s %s, its manifest says %s %s; preparing again.',
        path,
        array.dtype,
        array.shape,
        np.dtype(dtype),
        want,
      )
      return None
  return Prepared(images, labels, manifest, path, fresh=False)


class ImageSink:
  """Where a preparation puts its images, batch by batch, in order: a memory-mapped .npy file
  of room for `capacity` images, so that no more than one batch is ever in memory."""

  def __init__(self, array: np.ndarray):
    self._array = array
    self.count = 0

  def add(self, batch: np.ndarray) -> None:
    self._array[self.count : self.count + len(batch)] = batch
    self.count += len(batch)


Fill = Callable[[ImageSink], dict[str, Any]]


def get_or_prepare(
  path: Path,
  settings: dict[str, Any],
  sources: list,
  capacity: int,
  image_shape: tuple[int, ...],
  fill: Fill,
) -> Prepared:
  """The preparation in `path` if current (see `read`), else a new one made by `fill`.

  `fill(sink)` adds at most `capacity` images of `image_shape` to `sink` and returns the
  manifest's other fields: 'labels' (an int array, one per image added, or None) and any
  JSON-able extras. Raising in `fill` leaves no usable preparation behind. One process
  prepares at a time (a lock file in `path`); the others then read what it made.
  """
  cached = read(path, settings, sources)
  if cached:
    return cached
  try:
    path.mkdir(parents=True, exist_ok=True)
    with _lock(path / '.lock'):
      # Made by another process while this one waited? (What is wrong was logged above.)
      cached = read(path, settings, sources, quiet=True)
      if cached:
        return cached
      (path / MANIFEST).unlink(missing_ok=True)
      return _prepare(path, settings, sources, capacity, tuple(image_shape), fill)
  except OSError as e:
    raise DataError(f'{path}: cannot write the prepared dataset ({e}); set data.cache_dir.') from e


def _prepare(path, settings, sources, capacity, image_shape, fill: Fill) -> Prepared:
  with files.atomic_path(str(path / IMAGES)) as tmp:
    array = np.lib.format.open_memmap(tmp, 'w+', np.uint8, (capacity, *image_shape))
    sink = ImageSink(array)
    extra = fill(sink)
    array.flush()
    del array, sink._array
    if sink.count < capacity:
      _truncate_npy(tmp, sink.count)
  labels = extra.pop('labels', None)
  if labels is not None:
    labels = np.asarray(labels, np.int32)
    with files.atomic_path(str(path / LABELS)) as tmp, open(tmp, 'wb') as f:
      np.save(f, labels)
  manifest = {
    'format': FORMAT_VERSION,
    'settings': settings,
    'count': sink.count,
    'image_shape': list(image_shape),
    'labels': labels is not None,
    **extra,
    'sources': sources,  # last: the long part, after what a person reading the file wants
  }
  files.write_json(str(path / MANIFEST), manifest)
  images = np.load(path / IMAGES, mmap_mode='r')
  return Prepared(images, labels, manifest, path, fresh=True)


def _truncate_npy(filename: str, count: int) -> None:
  """Shrinks a .npy file to its first `count` rows in place: a smaller first dimension in the
  header, the rest cut off. NumPy pads every header with room for a 21-digit first dimension
  (so arrays can grow in place), so the data never moves."""
  with open(filename, 'r+b') as f:
    version = np.lib.format.read_magic(f)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
      version, np.lib.format.read_array_header_2_0
    )
    shape, fortran, dtype = read_header(f)
    offset = f.tell()
    header = {'shape': (count, *shape[1:]), 'fortran_order': fortran, 'descr': dtype.str}
    f.seek(0)
    write_header = {(1, 0): np.lib.format.write_array_header_1_0}.get(
      version, np.lib.format.write_array_header_2_0
    )
    write_header(f, header)
    if f.tell() != offset:
      raise RuntimeError(f'{filename}: the .npy header changed size ({offset} -> {f.tell()})')
    f.truncate(offset + count * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)


@contextlib.contextmanager
def _lock(filename: Path):
  with open(filename, 'a') as f:
    try:  # released when the file is closed, or by the OS when the process ends
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      logging.info('%s: another process is preparing this dataset; waiting for it.', filename)
      fcntl.flock(f, fcntl.LOCK_EX)
    yield
