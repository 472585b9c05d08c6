"""The `folder` source: every image under a folder of your own, prepared once into a cache.

What is read: every file under `data.dir` (sub-folders included) whose name ends in .jpg,
.jpeg, .png, .webp or .bmp (any case), in sorted path order. Hidden files and folders (a name
starting with '.') are left out; other files (notes.txt) are not images and are ignored. A file
with an image extension that does not decode (truncated, or not an image at all) is a bad file:
`data.on_bad_file='skip'` leaves it out and logs one warning line naming the first few,
`'error'` stops with a DataError naming it.

How each image becomes pixels (Pillow):
- turned upright by its EXIF orientation (photos from phones), then converted to RGB, or to
  grayscale ('L', ITU-R 601 luma) with `data.channels=1`; 16-bit grayscale is scaled to 8 bits;
- transparency (RGBA, LA, palette images with a transparent colour) is composited over black,
  so a transparent pixel is black whatever colour the file stored under it (dropping alpha
  instead would show those arbitrary colours);
- center-cropped to a square of its shorter side, then resized to `data.resolution` (a power
  of two) with `data.resize_filter`, smaller images upscaled with the same filter, and images
  already that size left untouched. The default is Lanczos, as in StyleGAN2-ADA's
  dataset_tool: an antialiasing filter, which matters because the resize filter measurably
  changes FID (stylegan2-ada-pytorch issue #283; Parmar et al., "On Aliased Resizing and
  Surprising Subtleties in GAN Evaluation"). 'box' averages whole pixels (exact for integer
  factors), 'bicubic' is the other common choice.

Splits: if `data.dir` has a sub-folder named like the split (`train/`, `test/`), that split
reads it; otherwise the whole folder is the split 'train' and any other split is an error.
So `data.dir=cifar10-jpg` with `data.split=train` and `data.dir=cifar10-jpg/train` read the same
images. (A class folder named 'train' or 'test' would be taken for a split.)

Labels: `data.labels='folders'` makes the first-level sub-folders the classes, in sorted order
(a label is the position of its folder's name); `'dataset_json'` reads them from a
`dataset.json` at the top (StyleGAN2-ADA's dataset_tool format: {"labels": [[path, class],
...]}); `'none'` gives no labels. The class names come with the Dataset (`classes`), and the
trainer writes them to WORKDIR/classes.json.

A dataset zip (`data.dir=archive.zip`, as dataset_tool writes them: PNGs and a dataset.json)
is read as the folder it would unpack to, without unpacking it: it is the split 'train'.

The prepared uint8 array lives in `data.cache_dir`/folder/<hash of the folder, split and
settings> (jaxgan.data.cache); it is prepared again when a file is added, removed or changed
(size or mtime), and decoding runs on `data.workers` processes (0: every core).
"""

import concurrent.futures
import io
import json
import os
import pickle
import queue
import subprocess
import sys
import time
import zipfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import PIL
from absl import logging
from PIL import Image, ImageOps

from jaxgan import checks, writers
from jaxgan.data import cache
from jaxgan.data.dataset import Dataset
from jaxgan.errors import DataError

EXTENSIONS = ('.jpg', '.jpeg', '.png', '.webp', '.bmp')
FILTERS = {
  'lanczos': Image.Resampling.LANCZOS,
  'box': Image.Resampling.BOX,
  'bicubic': Image.Resampling.BICUBIC,
}
_CHUNK_IMAGES = 256  # files per task: a smooth progress bar, little per-task overhead
_CHUNK_BYTES = 32 << 20  # at most this much decoded pixels per task (large resolutions)
_SIXTEEN_BIT = ('I', 'I;16', 'I;16L', 'I;16B', 'I;16N')
_SHOWN_BAD_FILES = 5


# --- Decoding one image ----------------------------------------------------------------------
def _to_mode(image: Image.Image, mode: str) -> Image.Image:
  """`image` in `mode` ('RGB' or 'L'), transparency composited over black."""
  if image.mode in _SIXTEEN_BIT:  # Pillow would clip 16-bit values to 255, not scale them
    pixels = np.asarray(image, np.float64) / 257
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
  if 'A' in image.mode or 'a' in image.mode or 'transparency' in image.info:
    rgba = image.convert('RGBA')
    image = Image.alpha_composite(Image.new('RGBA', rgba.size, (0, 0, 0, 255)), rgba)
  return image if image.mode == mode else image.convert(mode)


def decode_image(
  path: str | os.PathLike | io.BytesIO,
  resolution: int,
  channels: int = 3,
  resize_filter: str = 'lanczos',
) -> np.ndarray:
  """The image file at `path` (or a file object) as uint8 (resolution, resolution, channels),
  as the module docstring describes. Raises whatever Pillow raises for a file it cannot decode."""
  with Image.open(path) as image:
    ImageOps.exif_transpose(image, in_place=True)  # also decodes the whole file
    image = _to_mode(image, 'L' if channels == 1 else 'RGB')
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    if (width, height) != (side, side):
      # Cropped first, so that the filter sees nothing of the cut-off parts (as in
      # StyleGAN2-ADA's dataset_tool), not resized from a box of the whole image.
      image = image.crop((left, top, left + side, top + side))
    if side != resolution:
      image = image.resize((resolution, resolution), FILTERS[resize_filter])
    pixels = np.asarray(image, np.uint8)
  return pixels.reshape(resolution, resolution, channels)


def _reason(e: BaseException) -> str:
  lines = str(e).strip().splitlines()
  return f'{type(e).__name__}: {lines[0]}' if lines else type(e).__name__


def _decode_chunk(
  paths: list[str], resolution: int, channels: int, resize_filter: str, archive: str | None = None
) -> tuple[np.ndarray, list[tuple[int, str]]]:
  """(the images that decoded, [(position in `paths`, why not) for those that did not]);
  `paths` name members of the zip `archive` where one is given."""
  out = np.empty((len(paths), resolution, resolution, channels), np.uint8)
  bad, n = [], 0
  zf = zipfile.ZipFile(archive) if archive else None
  for i, path in enumerate(paths):
    try:
      source = io.BytesIO(zf.read(path)) if zf else path
      out[n] = decode_image(source, resolution, channels, resize_filter)
      n += 1
    # Decoders of untrusted files fail in many ways (OSError, ValueError, SyntaxError,
    # DecompressionBombError, struct.error, ...); any of them makes this one file bad.
    except Exception as e:
      bad.append((i, _reason(e)))
  if zf:
    zf.close()
  return out[:n], bad


def _cpu_count() -> int:
  if hasattr(os, 'sched_getaffinity'):  # the cores this process may use, not the machine's
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


class _Workers:
  """`n` decoding processes (jaxgan.data.decode_worker), each given one chunk at a time."""

  def __init__(self, n: int):
    # The folder holding the jaxgan package, so that the workers import this same copy.
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get('PYTHONPATH')
    env = {**os.environ, 'PYTHONPATH': root + (os.pathsep + path if path else '')}
    command = [sys.executable, '-m', 'jaxgan.data.decode_worker']
    self._procs = []
    try:
      for _ in range(n):
        pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._procs.append(subprocess.Popen(command, env=env, **pipes))
    except OSError as e:
      self.close()
      raise DataError(f'cannot start image decoding processes ({e}); set data.workers=1.') from e
    self._idle = queue.SimpleQueue()
    for proc in self._procs:
      self._idle.put(proc)

  def decode(self, *args):
    """_decode_chunk(*args) in an idle worker (called from one thread per worker)."""
    proc = self._idle.get()
    try:
      pickle.dump(args, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
      proc.stdin.flush()
      return pickle.load(proc.stdout)
    except (OSError, EOFError, pickle.UnpicklingError) as e:
      raise DataError(
        f'a process decoding images died (exit code {proc.poll()}); out of memory? '
        'Set data.workers lower.'
      ) from e
    finally:
      self._idle.put(proc)  # even dead: a thread waiting for a worker then fails, not hangs

  def close(self) -> None:
    for proc in self._procs:
      proc.kill()  # idle or not: after close nothing they compute is wanted
      proc.wait()
      proc.stdin.close()
      proc.stdout.close()


def _decode_all(
  paths: list[str], resolution: int, channels: int, resize_filter: str, workers: int, archive=None
) -> Iterator[tuple[int, np.ndarray, list[tuple[int, str]]]]:
  """(start, images, bad) per chunk of `paths` (members of `archive`, a zip, where given), in
  order, decoded on `workers` processes."""
  per_chunk = max(1, min(_CHUNK_IMAGES, _CHUNK_BYTES // (resolution * resolution * channels)))
  workers = workers or _cpu_count()
  per_chunk = max(1, min(per_chunk, -(-len(paths) // (4 * workers))))  # work for every worker
  starts = range(0, len(paths), per_chunk)
  args = (resolution, channels, resize_filter, archive)
  if workers == 1 or len(starts) == 1:
    for start in starts:
      yield start, *_decode_chunk(paths[start : start + per_chunk], *args)
    return
  workers = min(workers, len(starts))
  pool, threads = _Workers(workers), concurrent.futures.ThreadPoolExecutor(workers)
  try:
    pending = deque()
    for start in starts:
      chunk = paths[start : start + per_chunk]
      pending.append((start, threads.submit(pool.decode, chunk, *args)))
      # A bounded queue: decoded chunks wait in memory only while older ones are written.
      if len(pending) > 2 * workers:
        first, future = pending.popleft()
        yield first, *future.result()
    while pending:
      first, future = pending.popleft()
      yield first, *future.result()
  finally:
    threads.shutdown(wait=False, cancel_futures=True)  # no new chunks, then stop the workers
    pool.close()
    threads.shutdown()


# --- The folder: splits, files, labels -------------------------------------------------------
def split_dir(data_dir: str, split: str) -> Path:
  """The folder split `split` reads (see the module docstring)."""
  if not data_dir:
    raise DataError('data.name=folder needs data.dir, the folder of images (--config.data.dir).')
  root = Path(data_dir).expanduser()
  if is_zip(root):
    if split == 'train':
      return root
    raise DataError(f'{root}: a dataset zip is the split train only, not {split!r} (data.split).')
  if not root.is_dir():
    what = 'not a folder' if root.exists() else 'no such folder'
    raise DataError(f'{root}: {what} (data.dir).')
  if (root / split).is_dir():
    return root / split
  if split == 'train':
    return root
  raise DataError(
    f'{root} has no {split!r} sub-folder: data.split={split!r} reads data.dir/{split} '
    '(a folder without split sub-folders is the split train).'
  )


def is_zip(path: Path) -> bool:
  return path.suffix.lower() == '.zip' and path.is_file()


def has_split(data_config, split: str) -> bool:
  """Whether data.dir has `split` (a folder without split sub-folders has 'train' only)."""
  root = Path(data_config.dir).expanduser()
  return split == 'train' or (root / split).is_dir()


def _walk_error(e: OSError) -> None:
  raise DataError(f'{e.filename}: cannot read this folder ({e.strerror}).')


def _shown(rel: str) -> bool:
  return os.path.splitext(rel)[1].lower() in EXTENSIONS and not any(
    part.startswith('.') for part in rel.split('/')
  )


def _open_zip(root: Path) -> zipfile.ZipFile:
  try:
    return zipfile.ZipFile(root)
  except (OSError, zipfile.BadZipFile) as e:
    raise DataError(f'{root}: not a readable zip file ({e}).') from e


def list_images(root: Path) -> list[list]:
  """[relative path, size, mtime_ns] of every image file under `root`, sorted by path; in a
  zip, [member name, size, CRC-32].

  Symbolic links are followed (each folder once); a file that cannot be stat'ed (a broken
  link) is listed with size -1 so that decoding it reports it as a bad file.
  """
  if is_zip(root):
    with _open_zip(root) as zf:
      infos = [i for i in zf.infolist() if not i.is_dir() and _shown(i.filename)]
      return sorted([i.filename, i.file_size, i.CRC] for i in infos)
  found, seen = [], set()
  for folder, dirs, names in os.walk(root, onerror=_walk_error, followlinks=True):
    st = os.stat(folder)
    if (st.st_dev, st.st_ino) in seen:  # a link back up the tree
      dirs[:] = []
      continue
    seen.add((st.st_dev, st.st_ino))
    dirs[:] = [d for d in dirs if not d.startswith('.')]
    for name in names:
      if name.startswith('.') or os.path.splitext(name)[1].lower() not in EXTENSIONS:
        continue
      full = os.path.join(folder, name)
      rel = Path(os.path.relpath(full, root)).as_posix()
      try:
        st = os.stat(full)
        found.append([rel, st.st_size, st.st_mtime_ns])
      except OSError:
        found.append([rel, -1, 0])
  return sorted(found)


def _folder_labels(root: Path, rels: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
  """Each file's class (its first-level sub-folder's position among them) and the classes."""
  loose = [rel for rel in rels if '/' not in rel]
  if loose:
    others = f' (and {len(loose) - 1} more)' if len(loose) > 1 else ''
    raise DataError(
      f'{root / loose[0]}{others}: an image directly in the folder, but data.labels=folders '
      'takes the classes from its sub-folders; move it into one, or set data.labels=none.'
    )
  tops = [rel.split('/', 1)[0] for rel in rels]
  classes = tuple(sorted(set(tops)))
  if len(classes) < 2:
    raise DataError(
      f'{root}: data.labels=folders needs images in at least 2 sub-folders (one per class); '
      f'found {len(classes)} ({", ".join(classes)}).'
    )
  index = {name: i for i, name in enumerate(classes)}
  return np.array([index[t] for t in tops], np.int32), classes


def _dataset_json_labels(root: Path, rels: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
  """Each file's class from dataset_tool's dataset.json (classes named by their number)."""
  try:
    if is_zip(root):
      with _open_zip(root) as zf:
        text = zf.read('dataset.json')
    else:
      text = (root / 'dataset.json').read_bytes()
    listed = json.loads(text)['labels']
    table = {str(name): int(label) for name, label in listed}
  except (KeyError, OSError, ValueError, TypeError) as e:
    raise DataError(
      f'{root}: data.labels=dataset_json needs a dataset.json with {{"labels": [[path, class], '
      f'...]}} at the top ({_reason(e)}).'
    ) from e
  missing = [rel for rel in rels if rel not in table]
  if missing:
    raise DataError(f'{root}: {missing[0]} has no label in dataset.json ({len(missing)} lack one).')
  labels = np.array([table[rel] for rel in rels], np.int32)
  if labels.min() < 0:
    raise DataError(f'{root}: dataset.json has a negative class ({labels.min()}).')
  return labels, tuple(str(c) for c in range(labels.max() + 1))


def _bad_file_error(root: Path, rel: str, reason: str) -> DataError:
  return DataError(
    f'{root / rel}: not a readable image ({reason}); fix or remove it, '
    'or set data.on_bad_file=skip to leave it out.'
  )


# --- Preparation -----------------------------------------------------------------------------
def _prepared(cfg, split: str) -> tuple[cache.Prepared, Path]:
  root = split_dir(cfg.dir, split)
  sources = list_images(root)
  if not sources:
    raise DataError(
      f'{root}: no images in this folder or its sub-folders '
      f'(files ending in {", ".join(EXTENSIONS)}).'
    )
  rels = [s[0] for s in sources]
  labels, classes = {
    'folders': _folder_labels,
    'dataset_json': _dataset_json_labels,
  }.get(cfg.labels, lambda *_: (None, None))(root, rels)
  resolution, channels, resize_filter = cfg.resolution, cfg.channels, cfg.resize_filter
  settings = {
    'source': str(root.resolve()),
    'split': split,
    'resolution': resolution,
    'channels': channels,
    'crop': 'center',
    'resize_filter': resize_filter,
    'alpha': 'over_black',
    'labels': cfg.labels,
  }
  path = cache.path_for(cfg.cache_dir, 'folder', settings)

  def fill(sink: cache.ImageSink) -> dict:
    kept, skipped = [], []
    start_time = time.perf_counter()
    archive = str(root) if is_zip(root) else None
    paths = rels if archive else [str(root / rel) for rel in rels]
    logging.info('Preparing %d image files of %s into %s.', len(paths), root, path)
    with writers.progress(len(paths), unit='img') as bar:
      for start, images, bad in _decode_all(
        paths, resolution, channels, resize_filter, cfg.workers, archive
      ):
        if bad and cfg.on_bad_file == 'error':
          raise _bad_file_error(root, rels[start + bad[0][0]], bad[0][1])
        sink.add(images)
        bad_positions = {i for i, _ in bad}
        size = len(images) + len(bad)
        kept.extend(start + i for i in range(size) if i not in bad_positions)
        skipped.extend([rels[start + i], reason] for i, reason in bad)
        bar.update(size)
    seconds = time.perf_counter() - start_time
    if not kept:
      raise DataError(
        f'{root}: none of its {len(rels)} image files could be read '
        f'(e.g. {skipped[0][0]}: {skipped[0][1]}).'
      )
    return {
      'labels': None if labels is None else labels[kept],
      'classes': None if classes is None else list(classes),
      'skipped': skipped,
      'seconds': round(seconds, 3),
      'images_per_sec': round(len(rels) / max(seconds, 1e-9), 1),
      'pillow': PIL.__version__,
    }

  prepared = cache.get_or_prepare(
    path, settings, sources, len(sources), (resolution, resolution, channels), fill
  )
  m = prepared.manifest
  skipped = m.get('skipped', [])
  if skipped and cfg.on_bad_file == 'error':  # a cache prepared with on_bad_file=skip
    raise _bad_file_error(root, *skipped[0])
  if prepared.fresh:
    logging.info(
      'Prepared %d images of %s in %.1f s: %.0f images/s.',
      m['count'],
      root,
      m['seconds'],
      m['images_per_sec'],
    )
    if skipped:
      shown = ', '.join(f'{rel} ({reason})' for rel, reason in skipped[:_SHOWN_BAD_FILES])
      hidden = len(skipped) - _SHOWN_BAD_FILES
      more = f' and {hidden} more' if hidden > 0 else ''
      logging.warning(
        'Skipped %d files of %s that are not readable images: %s%s '
        '(data.on_bad_file=error stops at the first instead).',
        len(skipped),
        root,
        shown,
        more,
      )
  else:
    note = f' ({len(skipped)} bad files skipped)' if skipped else ''
    logging.info('Read %d prepared images of %s from %s%s.', m['count'], root, prepared.path, note)
  return prepared, root


def prepare(data_config, split: str) -> dict:
  """Prepares `split` (or finds it prepared); what `python -m jaxgan.prepare` reports."""
  prepared, root = _prepared(data_config, split)
  m = prepared.manifest
  return {
    'source': str(root),
    'cache': str(prepared.path),
    'images': m['count'],
    'skipped': len(m.get('skipped', [])),
    'image_shape': tuple(m['image_shape']),
    'classes': m.get('classes'),
    'prepared_now': prepared.fresh,
    'seconds': m.get('seconds'),
    'images_per_sec': m.get('images_per_sec'),
  }


# --- The `folder` source (jaxgan.data) -------------------------------------------------------
K = checks.Key
SCHEMA = {
  'resolution': K(64, checks.power_of_two(8, 1024)),
  'channels': K(3, checks.int_one_of(1, 3)),
  'labels': K('none', checks.one_of('none', 'folders', 'dataset_json')),
  'on_bad_file': K('skip', checks.one_of('skip', 'error')),
  'resize_filter': K('lanczos', checks.one_of(*FILTERS)),
  'workers': K(0, checks.integer(0)),  # decoding processes; 0: every core
  'cache_dir': K('', checks.string),
}
FEATURES = None  # no feature network measures arbitrary RGB images yet
EVAL_NUM_SAMPLES = 10_000


def load(data_config, split: str) -> Dataset:
  prepared, _ = _prepared(data_config, split)
  classes = prepared.manifest.get('classes')
  return Dataset(prepared.images, prepared.labels, 'folder', tuple(classes) if classes else None)


def image_shape(data_config) -> tuple[int, ...]:
  return (data_config.resolution, data_config.resolution, data_config.channels)
