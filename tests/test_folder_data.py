"""The `folder` source: image files of every kind, bad files, labels, splits and the cache."""

import io
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest
from PIL import Image

from jaxgan import config as config_lib
from jaxgan import prepare, train
from jaxgan.data import cache, folder, load_dataset
from jaxgan.errors import ConfigError, DataError
from jaxgan.train import setup
from tests.conftest import REPO

CIFAR_JPG = REPO.parent / 'shared' / 'data' / 'cifar10' / 'cifar10-jpg.tar.gz'
RNG = np.random.default_rng(0)


def _config(data_dir, cache_dir, **overrides) -> ml_collections.ConfigDict:
  fields = dict(
    name='folder',
    split='train',
    dir=str(data_dir),
    resolution=16,
    channels=3,
    labels='none',
    mirror=False,
    on_bad_file='skip',
    resize_filter='lanczos',
    workers=1,
    cache_dir=str(cache_dir),
    num_classes=2,
  )
  return ml_collections.ConfigDict({**fields, **overrides})


def _rgb(h: int, w: int) -> np.ndarray:
  return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, image: Image.Image) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  image.save(path)
  return path


def _jpeg_bytes(pixels: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, 'JPEG')
  return buf.getvalue()


@pytest.fixture
def mixed(tmp_path) -> Path:
  """A folder of 5 decodable images (RGBA, L, P, an odd size, an upper-case extension), 2 bad
  files with image extensions, and files that are not images or are hidden."""
  root = tmp_path / 'images'
  rgba = np.zeros((16, 16, 4), np.uint8)
  rgba[:, :8] = (255, 0, 0, 0)  # transparent red: black after compositing
  rgba[:, 8:] = (0, 255, 0, 255)
  _save(root / 'a' / 'rgba.png', Image.fromarray(rgba, 'RGBA'))
  _save(root / 'a' / 'gray.png', Image.fromarray(RNG.integers(0, 256, (16, 16), np.uint8), 'L'))
  _save(root / 'a' / 'upper.PNG', Image.fromarray(_rgb(16, 16)))
  _save(root / 'b' / 'palette.png', Image.fromarray(_rgb(16, 16)).quantize(8))
  _save(root / 'b' / 'odd.png', Image.fromarray(_rgb(23, 17)))  # 17 wide, 23 high
  jpeg = _jpeg_bytes(_rgb(64, 64))
  (root / 'b' / 'corrupt.jpg').write_bytes(jpeg[: len(jpeg) // 2])  # valid header, cut short
  (root / 'b' / 'fake.jpg').write_text('not an image at all')
  (root / 'b' / 'notes.txt').write_text('ignored: not an image extension')
  _save(root / '.hidden' / 'x.png', Image.fromarray(_rgb(16, 16)))
  _save(root / 'b' / '.y.png', Image.fromarray(_rgb(16, 16)))
  return root


KEPT = ['a/gray.png', 'a/rgba.png', 'a/upper.PNG', 'b/odd.png', 'b/palette.png']


def _expected(root: Path, rel: str, resolution: int, resample=Image.Resampling.LANCZOS):
  image = Image.open(root / rel)
  if image.mode == 'RGBA':
    image = Image.alpha_composite(Image.new('RGBA', image.size, (0, 0, 0, 255)), image)
  image = image.convert('RGB')
  side = min(image.size)
  left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
  image = image.crop((left, top, left + side, top + side))
  if side != resolution:
    image = image.resize((resolution, resolution), resample)
  return np.asarray(image)


def test_skip_mode_loads_the_rest_and_warns_once(mixed, tmp_path, caplog):
  with caplog.at_level(logging.WARNING):
    ds = load_dataset(_config(mixed, tmp_path / 'cache'))
  assert ds.images.shape == (5, 16, 16, 3) and ds.images.dtype == np.uint8
  assert ds.name == 'folder' and ds.labels is None and ds.classes is None
  for image, rel in zip(ds.images, KEPT, strict=True):
    np.testing.assert_array_equal(image, _expected(mixed, rel, 16), err_msg=rel)
  np.testing.assert_array_equal(ds.images[1, :, :8], 0)  # transparent -> black
  warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert len(warnings) == 1
  assert 'Skipped 2 files' in warnings[0] and 'b/corrupt.jpg' in warnings[0]
  assert 'b/fake.jpg' in warnings[0]
  report = folder.prepare(_config(mixed, tmp_path / 'cache'), 'train')
  assert (report['images'], report['skipped'], report['prepared_now']) == (5, 2, False)


def test_grayscale_and_other_filters(mixed, tmp_path):
  gray = load_dataset(_config(mixed, tmp_path / 'c', channels=1, resolution=32))
  assert gray.images.shape == (5, 32, 32, 1)
  box = load_dataset(_config(mixed, tmp_path / 'c', resolution=32, resize_filter='box'))
  np.testing.assert_array_equal(box.images[3], _expected(mixed, 'b/odd.png', 32, Image.BOX))
  # Upscaling 16 -> 32 with a box filter repeats each pixel twice in both directions.
  np.testing.assert_array_equal(box.images[2], box.images[2, ::2, ::2].repeat(2, 0).repeat(2, 1))


def test_error_mode_names_the_first_bad_file(mixed, tmp_path):
  with pytest.raises(DataError, match=r'b/corrupt\.jpg: not a readable image \(OSError'):
    load_dataset(_config(mixed, tmp_path / 'cache', on_bad_file='error'))
  load_dataset(_config(mixed, tmp_path / 'cache'))  # a cache made with skip ...
  with pytest.raises(DataError, match=r'b/corrupt\.jpg'):  # ... still names it in error mode
    load_dataset(_config(mixed, tmp_path / 'cache', on_bad_file='error'))


def test_worker_processes_give_the_same_images(mixed, tmp_path):
  one = load_dataset(_config(mixed, tmp_path / 'c1', labels='folders'))
  two = load_dataset(_config(mixed, tmp_path / 'c2', labels='folders', workers=3))
  np.testing.assert_array_equal(one.images, two.images)
  np.testing.assert_array_equal(one.labels, two.labels)


def test_labels_from_folders(tmp_path):
  root = tmp_path / 'images'
  for name in ['cat/1.png', 'ant/x/deep.png', 'bee/2.png', 'cat/0.png']:
    _save(root / name, Image.fromarray(_rgb(8, 8)))
  (root / 'empty').mkdir()  # holds no images: not a class
  ds = load_dataset(_config(root, tmp_path / 'cache', labels='folders', resolution=8))
  assert ds.classes == ('ant', 'bee', 'cat')
  np.testing.assert_array_equal(ds.labels, [0, 1, 2, 2])  # ant/x/deep, bee/2, cat/0, cat/1
  assert ds.labels.dtype == np.int32


def test_labels_from_folders_need_two_classes_and_no_loose_images(tmp_path):
  root = tmp_path / 'images'
  _save(root / 'only' / 'a.png', Image.fromarray(_rgb(8, 8)))
  with pytest.raises(DataError, match='at least 2 sub-folders.*found 1 \\(only\\)'):
    load_dataset(_config(root, tmp_path / 'cache', labels='folders'))
  _save(root / 'other' / 'b.png', Image.fromarray(_rgb(8, 8)))
  _save(root / 'loose.png', Image.fromarray(_rgb(8, 8)))
  with pytest.raises(DataError, match='loose.png: an image directly in the folder'):
    load_dataset(_config(root, tmp_path / 'cache', labels='folders'))


def test_missing_empty_and_unreadable_folders(tmp_path):
  with pytest.raises(DataError, match='no such folder'):
    load_dataset(_config(tmp_path / 'nothing', tmp_path / 'cache'))
  with pytest.raises(DataError, match='needs data.dir'):
    load_dataset(_config('', tmp_path / 'cache'))
  (tmp_path / 'empty' / 'sub').mkdir(parents=True)
  (tmp_path / 'empty' / 'notes.txt').write_text('no images here')
  with pytest.raises(DataError, match='empty: no images in this folder'):
    load_dataset(_config(tmp_path / 'empty', tmp_path / 'cache'))
  (tmp_path / 'bad').mkdir()
  (tmp_path / 'bad' / 'a.png').write_text('not a png')
  with pytest.raises(DataError, match='none of its 1 image files could be read'):
    load_dataset(_config(tmp_path / 'bad', tmp_path / 'cache'))


def test_splits_are_sub_folders(tmp_path):
  root = tmp_path / 'images'
  _save(root / 'train' / 'a.png', Image.fromarray(_rgb(8, 8)))
  _save(root / 'train' / 'b.png', Image.fromarray(_rgb(8, 8)))
  _save(root / 'test' / 'c.png', Image.fromarray(_rgb(8, 8)))
  assert len(load_dataset(_config(root, tmp_path / 'cache'), 'train').images) == 2
  assert len(load_dataset(_config(root, tmp_path / 'cache'), 'test').images) == 1
  whole = root / 'train'  # no split sub-folders: the whole folder is 'train', nothing else
  assert len(load_dataset(_config(whole, tmp_path / 'cache'), 'train').images) == 2
  with pytest.raises(DataError, match="has no 'test' sub-folder"):
    load_dataset(_config(whole, tmp_path / 'cache'), 'test')


def _prepared_now(cfg) -> bool:
  return folder.prepare(cfg, 'train')['prepared_now']


def test_cache_is_reused_without_decoding(mixed, tmp_path, monkeypatch):
  cfg = _config(mixed, tmp_path / 'cache')
  first = load_dataset(cfg)
  assert isinstance(first.images, np.memmap)  # read from the cache, not held twice

  def no_decoding(*args):
    raise AssertionError('decoded again')

  monkeypatch.setattr(folder, '_decode_chunk', no_decoding)
  np.testing.assert_array_equal(load_dataset(cfg).images, first.images)
  (folder_path,) = (tmp_path / 'cache' / 'folder').iterdir()
  assert sorted(p.name for p in folder_path.iterdir()) == ['.lock', 'images.npy', 'manifest.json']


def _touch(root):
  st = (root / 'a' / 'gray.png').stat()
  os.utime(root / 'a' / 'gray.png', ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def _grow(root):
  with open(root / 'a' / 'gray.png', 'ab') as f:
    f.write(b'\0')  # after PNG's end chunk: the same picture, a different file


def _add(root):
  _save(root / 'b' / 'new.png', Image.fromarray(_rgb(16, 16)))


def _remove(root):
  (root / 'a' / 'gray.png').unlink()


@pytest.mark.parametrize(
  'edit, count',
  [(_touch, 5), (_grow, 5), (_add, 6), (_remove, 4)],
  ids=['mtime', 'size', 'added', 'removed'],
)
def test_cache_is_remade_when_the_files_change(mixed, tmp_path, edit, count):
  cfg = _config(mixed, tmp_path / 'cache')
  assert _prepared_now(cfg) and not _prepared_now(cfg)
  edit(mixed)
  assert _prepared_now(cfg) and not _prepared_now(cfg)
  images = load_dataset(cfg).images
  assert len(images) == count
  if edit is _remove:  # the others, in order, without it
    want = [_expected(mixed, rel, 16) for rel in KEPT if rel != 'a/gray.png']
    np.testing.assert_array_equal(images, np.stack(want))


# EXIF orientation (tag 0x0112) -> np.rot90's k that turns the stored pixels upright:
# 3: rotated 180 degrees; 6: turn 90 degrees clockwise; 8: 90 degrees counter-clockwise.
EXIF_TURNS = {3: 2, 6: -1, 8: 1}


def _exif_png(path: Path, pixels: np.ndarray, orientation: int) -> None:
  exif = Image.Exif()
  exif[0x0112] = orientation
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(pixels).save(path, exif=exif)


def test_other_formats_16_bit_and_exif_orientation(tmp_path):
  """BMP, lossless WebP, 16-bit grayscale PNG (I;16) and EXIF-rotated files, each against the
  pixels that were stored, turned and scaled by numpy."""
  root = tmp_path / 'images'
  want = {}
  bmp, webp = _rgb(16, 16), _rgb(16, 16)
  _save(root / 'a.bmp', Image.fromarray(bmp))
  Image.fromarray(webp).save(root / 'b.webp', 'WEBP', lossless=True)
  want['a.bmp'], want['b.webp'] = bmp, webp
  deep = RNG.integers(0, 65536, (16, 16), dtype=np.uint16)
  deep[0, :4] = (0, 128, 129, 65535)  # 8 bits: 0, 0 (0.498), 1 (0.502), 255
  _save(root / 'c.png', Image.fromarray(deep))
  with Image.open(root / 'c.png') as stored:
    assert stored.mode == 'I;16'
  gray = np.rint(deep / 257).astype(np.uint8)  # 0..65535 onto 0..255, not clipped at 255
  want['c.png'] = np.repeat(gray[..., None], 3, axis=-1)
  for orientation, k in EXIF_TURNS.items():
    pixels = _rgb(16, 16)
    _exif_png(root / f'd{orientation}.png', pixels, orientation)
    want[f'd{orientation}.png'] = np.rot90(pixels, k)
  wide = _rgb(16, 32)  # 32 wide, 16 high; upright 16 wide and 32 high: cropped after turning
  _exif_png(root / 'e6_wide.png', wide, 6)
  want['e6_wide.png'] = np.rot90(wide, -1)[8:24]
  ds = load_dataset(_config(root, tmp_path / 'cache', on_bad_file='error'))
  assert len(ds.images) == len(want)
  for image, name in zip(ds.images, sorted(want), strict=True):
    np.testing.assert_array_equal(image, want[name], err_msg=name)
  one = load_dataset(_config(root, tmp_path / 'cache', channels=1, on_bad_file='error'))
  np.testing.assert_array_equal(one.images[sorted(want).index('c.png')][..., 0], gray)


def test_other_settings_have_their_own_cache(mixed, tmp_path):
  cfg = _config(mixed, tmp_path / 'cache')
  assert _prepared_now(cfg)
  cfg.resolution = 32
  assert _prepared_now(cfg)
  assert load_dataset(cfg).images.shape[1:] == (32, 32, 3)
  cfg.resolution = 16
  assert not _prepared_now(cfg)
  assert len(list((tmp_path / 'cache' / 'folder').iterdir())) == 2


def _truncate_images(path: Path):
  data = (path / cache.IMAGES).read_bytes()
  (path / cache.IMAGES).write_bytes(data[: len(data) // 2])


def _garble_manifest(path: Path):
  (path / cache.MANIFEST).write_text('{"format": 1, "sett')


def _wrong_count(path: Path):
  manifest = json.loads((path / cache.MANIFEST).read_text())
  manifest['count'] += 1
  (path / cache.MANIFEST).write_text(json.dumps(manifest))


def _unfinished(path: Path):
  (path / cache.MANIFEST).unlink()  # killed after writing the arrays, before the manifest


@pytest.mark.parametrize(
  'damage',
  [_truncate_images, _garble_manifest, _wrong_count, _unfinished],
  ids=['truncated_npy', 'garbled_manifest', 'wrong_shape', 'no_manifest'],
)
def test_damaged_cache_is_prepared_again(mixed, tmp_path, caplog, damage):
  cfg = _config(mixed, tmp_path / 'cache', labels='folders')
  first = load_dataset(cfg)
  images, labels = np.array(first.images), first.labels
  (path,) = (tmp_path / 'cache' / 'folder').iterdir()
  damage(path)
  with caplog.at_level(logging.WARNING):
    assert _prepared_now(cfg)
  assert any('preparing again' in r.getMessage() for r in caplog.records)
  again = load_dataset(cfg)
  np.testing.assert_array_equal(again.images, images)
  np.testing.assert_array_equal(again.labels, labels)


def test_truncate_npy_keeps_the_first_rows(tmp_path):
  path = tmp_path / 'a.npy'
  full = np.lib.format.open_memmap(path, 'w+', np.uint8, (1000, 4, 4, 3))
  full[:] = np.arange(1000)[:, None, None, None] % 251
  full.flush()
  del full
  cache._truncate_npy(str(path), 7)
  rows = np.load(path)
  assert rows.shape == (7, 4, 4, 3)
  np.testing.assert_array_equal(
    rows, np.broadcast_to(np.arange(7)[:, None, None, None], rows.shape)
  )
  assert path.stat().st_size == 128 + rows.nbytes  # the 128-byte header, then the 7 rows


BAD_VALUES = [
  ('resolution', 33, 'resolution must be a power of two: 8, 16, ..., 1024; got 33'),
  ('resolution', 4, 'resolution must be a power of two'),
  ('channels', 2, 'channels must be one of 1, 3; got 2'),
  ('labels', 'foo', 'labels must be one of none, folders'),
  ('on_bad_file', 'x', 'on_bad_file must be one of skip, error'),
  ('resize_filter', 'nearest', 'resize_filter must be one of lanczos, box, bicubic'),
  ('workers', -1, 'workers must be >= 0'),
  ('mirror', 'yes', 'mirror must be True or False'),
]


@pytest.mark.parametrize(
  'key, value, message', BAD_VALUES, ids=[f'{k}={v}' for k, v, _ in BAD_VALUES]
)
def test_bad_config_values(key, value, message):
  from jaxgan.configs import folder as folder_config

  config = folder_config.get_config()
  with config.data.ignore_type():
    config.data[key] = value
  with pytest.raises(ConfigError, match=re.escape(message)):
    config_lib.validate(config)


def test_evaluation_and_image_size_are_checked_before_reading(tmp_path):
  from jaxgan.configs import folder as folder_config

  config = folder_config.get_config()
  config.data.dir = str(tmp_path / 'not-read')
  config_lib.validate(config)
  config.eval_every = 100
  message = "data.name='folder' has no feature network of its own: set eval_features"
  with pytest.raises(ConfigError, match=message + r' \(for 64x64x3 images: inception'):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  config.eval_every = 0
  config.data.resolution = 8  # G's four upsamplings need 16 px or more
  with pytest.raises(ConfigError, match=r'image size \(8, 8\) is not divisible'):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  assert not (tmp_path / 'w').exists()


def test_the_trainer_writes_the_classes_and_mirrors(mixed, tmp_path, monkeypatch):
  from jaxgan.configs import folder as folder_config

  config = folder_config.get_config()
  config.data.update(dir=str(mixed), resolution=16, labels='folders', mirror=True, workers=1)
  config.data.cache_dir = str(tmp_path / 'cache')
  config.model.update(latent_dim=8, g_features=(8, 4), d_features=(4, 8))
  config_lib.validate(config)
  calls, make_train_fn = [], setup.make_train_fn

  def spy(*args):
    calls.append(args)
    return make_train_fn(*args)

  monkeypatch.setattr(setup, 'make_train_fn', spy)
  run = setup.build(config, str(tmp_path / 'w'), jax.devices())
  assert json.loads((tmp_path / 'w' / 'classes.json').read_text()) == ['a', 'b']
  assert calls[0][1].draws.mirror is True  # data.mirror reaches the feed (test_train: what it does)
  assert run.feed.pixels.shape == (5, 16, 16, 3)


def test_prepare_command(mixed, tmp_path):
  args = [
    sys.executable,
    '-m',
    'jaxgan.prepare',
    '--config=configs/folder.py',
    f'--config.data.dir={mixed}',
    '--config.data.resolution=16',
    f'--config.data.cache_dir={tmp_path / "cache"}',
  ]
  r = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
  assert r.returncode == 0, r.stderr[-2000:]
  assert r.stdout.startswith('folder/train: 5 images of 16x16x3, 2 bad files skipped, in ')
  assert 'prepared now' in r.stdout


def test_prepare_reports_every_split(tmp_path):
  from jaxgan.configs import folder as folder_config

  root = tmp_path / 'images'
  for name in ['train/a/0.png', 'train/b/1.png', 'test/a/2.png', 'test/b/3.png']:
    _save(root / name, Image.fromarray(_rgb(8, 8)))
  config = folder_config.get_config()
  config.data.update(dir=str(root), resolution=16, labels='folders', workers=1)
  config.data.cache_dir = str(tmp_path / 'cache')
  reports = prepare.run(config, ['train', 'test'])
  lines = [prepare.describe(r) for r in reports]
  assert lines[0].startswith('folder/train: 2 images of 16x16x3, 0 bad files skipped, 2 classes')
  assert lines[1].startswith('folder/test: 2 images')
  config.data.dir = ''
  with pytest.raises(DataError, match='data.name=folder needs data.dir'):
    prepare.run(config)


@pytest.fixture(scope='module')
def cifar_jpgs(tmp_path_factory) -> Path:
  """The first 50 test images of two classes of the offline CIFAR-10 JPEG copy."""
  if not CIFAR_JPG.exists():
    pytest.skip(f'{CIFAR_JPG} is not here')
  root = tmp_path_factory.mktemp('cifar')
  wanted = {
    f'cifar10-jpg/test/{c}/{i:04d}.jpg' for c in ('airplane', 'automobile') for i in range(50)
  }
  with tarfile.open(CIFAR_JPG, 'r:gz') as tar:
    for member in tar:  # the archive starts with test/airplane, test/automobile, ...
      if member.name in wanted:
        tar.extract(member, root, filter='data')
        wanted.discard(member.name)
        if not wanted:
          break
  assert not wanted
  return root / 'cifar10-jpg' / 'test'


def test_real_cifar10_jpegs(cifar_jpgs, tmp_path):
  ds = load_dataset(_config(cifar_jpgs, tmp_path / 'cache', labels='folders', resolution=32))
  assert ds.images.shape == (100, 32, 32, 3) and ds.classes == ('airplane', 'automobile')
  np.testing.assert_array_equal(ds.labels, [0] * 50 + [1] * 50)
  files = sorted(cifar_jpgs.glob('*/*.jpg'))
  decoded = np.stack([np.asarray(Image.open(f).convert('RGB')) for f in files])
  np.testing.assert_array_equal(ds.images, decoded)  # 32 px already: decoded, nothing else
  small = load_dataset(_config(cifar_jpgs, tmp_path / 'cache', labels='folders', resolution=16))
  assert small.images.shape == (100, 16, 16, 3)
  lanczos = Image.fromarray(decoded[7]).resize((16, 16), Image.Resampling.LANCZOS)
  np.testing.assert_array_equal(small.images[7], np.asarray(lanczos))


def _dataset_zip(path: Path, folder_root: Path, labels: dict | None) -> Path:
  """A zip laid out as dataset_tool writes one: the folder's files, and dataset.json."""
  import zipfile

  with zipfile.ZipFile(path, 'w') as zf:
    for file in sorted(folder_root.rglob('*')):
      if file.is_file() and file.name != 'dataset.json':
        zf.write(file, file.relative_to(folder_root).as_posix())
    zf.writestr('dataset.json', json.dumps({'labels': labels}))
  return path


def test_a_dataset_zip_reads_as_its_folder_with_dataset_json_labels(mixed, tmp_path):
  # dataset.json lists every image file, the two that do not decode included.
  labels = {rel: i % 3 for i, (rel, *_) in enumerate(folder.list_images(mixed))}
  archive = _dataset_zip(tmp_path / 'data.zip', mixed, [[k, v] for k, v in labels.items()])
  from_zip = load_dataset(_config(archive, tmp_path / 'c', labels='dataset_json', workers=2))
  from_folder = load_dataset(_config(mixed, tmp_path / 'c'))
  np.testing.assert_array_equal(from_zip.images, from_folder.images)  # bad and hidden files too
  np.testing.assert_array_equal(from_zip.labels, [labels[rel] for rel in KEPT])
  assert from_zip.classes == ('0', '1', '2')
  # The folder with the same dataset.json gives the same labels.
  (mixed / 'dataset.json').write_text(json.dumps({'labels': [[k, v] for k, v in labels.items()]}))
  again = load_dataset(_config(mixed, tmp_path / 'c', labels='dataset_json'))
  np.testing.assert_array_equal(again.labels, from_zip.labels)
  # A changed zip is prepared again.
  del labels['b/odd.png']
  _dataset_zip(archive, mixed, [[k, v] for k, v in labels.items()])
  with pytest.raises(DataError, match='b/odd.png has no label in dataset.json'):
    load_dataset(_config(archive, tmp_path / 'c', labels='dataset_json'))
  with pytest.raises(DataError, match='split train only'):
    load_dataset(_config(archive, tmp_path / 'c', split='test'))


def test_bad_zips_and_label_files_are_one_clear_error(mixed, tmp_path):
  (tmp_path / 'broken.zip').write_bytes(b'PK not really')
  with pytest.raises(DataError, match='broken.zip: not a readable zip file'):
    load_dataset(_config(tmp_path / 'broken.zip', tmp_path / 'c'))
  archive = _dataset_zip(tmp_path / 'nolabels.zip', mixed, None)
  with pytest.raises(DataError, match='needs a dataset.json'):
    load_dataset(_config(archive, tmp_path / 'c', labels='dataset_json'))
  assert len(load_dataset(_config(archive, tmp_path / 'c')).images) == 5  # labels='none'
