"""How fast a folder of images is prepared: CIFAR-10's 60,000 JPEGs, decoded, resized and
written into a fresh cache at each resolution, on every core (data.workers=0) or --workers.

The offline copy (../shared/data/cifar10/cifar10-jpg.tar.gz) is unpacked into a temporary
folder first (not timed); --limit takes only its first N files (train and test together) for
a quick check. Prints, per resolution, the images prepared, the seconds and images/s, and how
long reading the prepared cache back takes.

  python -m benchmarks.prepare_speed                        # all 60,000 at 32 and 64 px
  python -m benchmarks.prepare_speed --limit=2000 --workers=2   # from the repo root
"""

import argparse
import tarfile
import tempfile
import time
from pathlib import Path

import ml_collections

from jaxgan.data import folder

ARCHIVE = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'cifar10' / 'cifar10-jpg.tar.gz'


def unpack(archive: Path, into: Path, limit: int | None) -> Path:
  """Unpacks the archive's JPEGs (the first `limit` only, when given); returns cifar10-jpg/."""
  with tarfile.open(archive, 'r:gz') as tar:
    count = 0
    for member in tar:
      if member.isfile() and member.name.endswith('.jpg'):
        if limit is not None and count >= limit:
          break
        count += 1
      tar.extract(member, into, filter='data')
  return into / 'cifar10-jpg'


def data_config(data_dir: Path, cache_dir: Path, resolution: int, workers: int):
  return ml_collections.ConfigDict(
    dict(
      name='folder',
      split='train',
      dir=str(data_dir),
      resolution=resolution,
      channels=3,
      labels='folders',
      mirror=False,
      on_bad_file='error',
      resize_filter='lanczos',
      workers=workers,
      cache_dir=str(cache_dir),
      num_classes=10,
    )
  )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--archive', type=Path, default=ARCHIVE)
  parser.add_argument('--resolutions', default='32,64')
  parser.add_argument('--workers', type=int, default=0, help='0: every core')
  parser.add_argument('--limit', type=int, default=None, help='only the first N files')
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    root = unpack(args.archive, Path(tmp) / 'data', args.limit)
    splits = [s for s in ('train', 'test') if (root / s).is_dir()]
    for resolution in map(int, args.resolutions.split(',')):
      cache_dir = Path(tmp) / f'cache{resolution}'
      cfg = data_config(root, cache_dir, resolution, args.workers)
      images, seconds = 0, 0.0
      for split in splits:
        report = folder.prepare(cfg, split)
        images += report['images']
        seconds += report['seconds']
      start = time.perf_counter()
      for split in splits:
        folder.load(cfg, split)
      reread = time.perf_counter() - start
      print(
        f'{resolution}x{resolution}: {images} images prepared in {seconds:.1f} s '
        f'({images / seconds:.0f} images/s); read back from the cache in {reread:.2f} s'
      )


if __name__ == '__main__':
  main()
