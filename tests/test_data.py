"""Tests for jaxgan.data: local MNIST, the fetch-and-cache path, and the generic tfds path."""

import contextlib
import functools
import gzip
import http.server
import importlib.util
import shutil
import socket
import threading
from pathlib import Path

import ml_collections
import numpy as np
import pytest

from jaxgan.data import load_dataset, mnist
from jaxgan.errors import DataError

# The real MNIST files live beside the repo (read-only), so that CI needs no network.
MNIST_DIR = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / 'mnist'
TEST_IMAGES = 't10k-images-idx3-ubyte'
TEST_LABELS = 't10k-labels-idx1-ubyte'


def _config(**overrides) -> ml_collections.ConfigDict:
  fields = dict(name='mnist', split='test', dir='', cache_dir='', url=mnist.DEFAULT_URL)
  return ml_collections.ConfigDict({**fields, **overrides})


def _copy_test_split(tmp_path: Path) -> Path:
  for name in (TEST_IMAGES, TEST_LABELS):
    shutil.copy(MNIST_DIR / f'{name}.gz', tmp_path / f'{name}.gz')
  return tmp_path


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
  # A proxy set in the environment must not intercept requests to the local test server.
  monkeypatch.setenv('no_proxy', '*')
  monkeypatch.setenv('NO_PROXY', '*')


@pytest.fixture(scope='module')
def local_test_split():
  return load_dataset(_config(dir=str(MNIST_DIR)))


@pytest.mark.parametrize('split, n', [('train', 60000), ('test', 10000)])
def test_real_mnist(split, n):
  ds = load_dataset(_config(split=split, dir=str(MNIST_DIR)))
  assert ds.name == 'mnist'
  assert ds.images.shape == (n, 28, 28, 1) and ds.images.dtype == np.uint8
  assert ds.labels.shape == (n,) and ds.labels.dtype == np.int32
  assert set(np.unique(ds.labels)) == set(range(10))
  assert ds.images.min() == 0 and ds.images.max() == 255


def test_uncompressed_files_are_accepted(tmp_path, local_test_split):
  for name in (TEST_IMAGES, TEST_LABELS):
    (tmp_path / name).write_bytes(gzip.decompress((MNIST_DIR / f'{name}.gz').read_bytes()))
  ds = load_dataset(_config(dir=str(tmp_path)))
  np.testing.assert_array_equal(ds.images, local_test_split.images)
  np.testing.assert_array_equal(ds.labels, local_test_split.labels)


def test_missing_file(tmp_path):
  _copy_test_split(tmp_path)
  (tmp_path / f'{TEST_LABELS}.gz').unlink()
  with pytest.raises(DataError, match=f'{TEST_LABELS}.gz: file not found'):
    load_dataset(_config(dir=str(tmp_path)))


def test_truncated_gzip(tmp_path):
  path = _copy_test_split(tmp_path) / f'{TEST_IMAGES}.gz'
  path.write_bytes(path.read_bytes()[:5000])
  with pytest.raises(DataError, match=f'{TEST_IMAGES}.gz: corrupt or truncated'):
    load_dataset(_config(dir=str(tmp_path)))


def test_flipped_bytes_fail_the_checksum(tmp_path):
  path = _copy_test_split(tmp_path) / f'{TEST_LABELS}.gz'
  data = bytearray(gzip.decompress(path.read_bytes()))
  data[100] = (data[100] + 1) % 10  # Still a valid IDX file, just a different label.
  path.write_bytes(gzip.compress(bytes(data)))
  with pytest.raises(DataError, match=f'{TEST_LABELS}.gz: corrupt .*SHA-256'):
    load_dataset(_config(dir=str(tmp_path)))


@pytest.mark.parametrize(
  'edit',
  [
    lambda data: b'\x00\x00\x42' + data[3:],  # Unknown element type.
    lambda data: data[:4] + (12345).to_bytes(4, 'big') + data[8:],  # Count disagrees with size.
    lambda data: data[:-1],  # One byte missing.
  ],
)
def test_bad_header(tmp_path, edit):
  path = _copy_test_split(tmp_path) / f'{TEST_LABELS}.gz'
  path.write_bytes(gzip.compress(edit(gzip.decompress(path.read_bytes()))))
  with pytest.raises(DataError, match=f'{TEST_LABELS}.gz: corrupt or truncated IDX'):
    load_dataset(_config(dir=str(tmp_path)))


def test_read_idx():
  labels = mnist.read_idx(MNIST_DIR / f'{TEST_LABELS}.gz')
  assert labels.shape == (10000,) and labels.dtype == np.uint8


@contextlib.contextmanager
def _serve(directory: Path):
  """Serves `directory` over HTTP on a free local port; yields its URL and the server."""
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
  handler.log_message = lambda *args: None
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f'http://127.0.0.1:{server.server_address[1]}/', server
  finally:
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def mnist_server():
  with _serve(MNIST_DIR) as url_and_server:
    yield url_and_server


def test_fetch_then_use_cache(tmp_path, mnist_server, local_test_split):
  url, server = mnist_server
  ds = load_dataset(_config(url=url, cache_dir=str(tmp_path)))
  np.testing.assert_array_equal(ds.images, local_test_split.images)
  np.testing.assert_array_equal(ds.labels, local_test_split.labels)
  assert sorted(p.name for p in tmp_path.iterdir()) == [f'{TEST_IMAGES}.gz', f'{TEST_LABELS}.gz']

  server.shutdown()
  server.server_close()
  cached = load_dataset(_config(url=url, cache_dir=str(tmp_path)))
  np.testing.assert_array_equal(cached.images, local_test_split.images)


def test_corrupt_cache_is_fetched_again(tmp_path, mnist_server, local_test_split):
  url, _ = mnist_server
  cached = tmp_path / f'{TEST_IMAGES}.gz'
  cached.write_bytes(b'\x1f\x8b not really gzip')
  ds = load_dataset(_config(url=url, cache_dir=str(tmp_path)))
  np.testing.assert_array_equal(ds.images, local_test_split.images)
  assert gzip.decompress(cached.read_bytes()) == gzip.decompress(
    (MNIST_DIR / f'{TEST_IMAGES}.gz').read_bytes()
  )


def test_default_cache_dir_from_env(tmp_path, mnist_server, monkeypatch):
  monkeypatch.setenv('JAXGAN_CACHE', str(tmp_path))
  load_dataset(_config(url=mnist_server[0]))
  assert (tmp_path / 'mnist' / f'{TEST_LABELS}.gz').exists()


def test_wrong_file_on_server(tmp_path):
  served, cache = tmp_path / 'served', tmp_path / 'cache'
  served.mkdir()
  shutil.copy(MNIST_DIR / f'{TEST_IMAGES}.gz', served)
  # A valid IDX file, but the train labels under the test labels' name.
  shutil.copy(MNIST_DIR / 'train-labels-idx1-ubyte.gz', served / f'{TEST_LABELS}.gz')
  with _serve(served) as (url, _), pytest.raises(DataError, match='downloaded file is corrupt'):
    load_dataset(_config(url=url, cache_dir=str(cache)))
  assert [p.name for p in cache.iterdir()] == [f'{TEST_IMAGES}.gz']  # No bad or partial file.


def test_unreachable_url(tmp_path):
  with socket.socket() as s:  # A port that was just free, so nothing listens on it.
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  with pytest.raises(DataError, match='--config.data.dir'):
    load_dataset(_config(url=f'http://127.0.0.1:{port}/', cache_dir=str(tmp_path)))
  assert not list(tmp_path.iterdir())  # No partial file left behind.


def test_missing_file_on_server(tmp_path, mnist_server):
  url, _ = mnist_server
  with pytest.raises(DataError, match='404'):
    load_dataset(_config(url=url + 'nothing-here/', cache_dir=str(tmp_path)))


# The generic tfds path, with tiny builders defined here so that nothing is downloaded.
TINY_IMAGES = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 1), dtype=np.uint8)


@pytest.fixture(scope='module')
def tiny_builder():
  """Registers two tiny tfds builders ('jaxgan_tiny_images', 'jaxgan_tiny_numpy_images')."""
  tfds = pytest.importorskip('tensorflow_datasets')
  pil_image = pytest.importorskip('PIL.Image')

  class JaxganTinyImages(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version('1.0.0')

    def _info(self):
      features = {
        'image': tfds.features.Image(shape=(8, 8, 1)),
        'label': tfds.features.ClassLabel(num_classes=16),
      }
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
      return {'train': self._generate_examples()}

    def _generate_examples(self):
      # PIL images are PNG-encoded by PIL; numpy images would need TensorFlow to encode.
      for i, image in enumerate(TINY_IMAGES):
        yield i, {'image': pil_image.fromarray(image[..., 0]), 'label': i}

  class JaxganTinyNumpyImages(JaxganTinyImages):
    def _generate_examples(self):
      for i, image in enumerate(TINY_IMAGES):
        yield i, {'image': image, 'label': i}

  return JaxganTinyImages


def test_tfds_dataset(tmp_path, tiny_builder):
  tiny_builder(data_dir=tmp_path, file_format='array_record').download_and_prepare()
  ds = load_dataset(_config(name='tfds:jaxgan_tiny_images', split='train', dir=str(tmp_path)))
  assert ds.name == 'jaxgan_tiny_images'
  assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int32
  # tfds shuffles examples when preparing; the label is the index of the image.
  np.testing.assert_array_equal(np.sort(ds.labels), np.arange(16))
  np.testing.assert_array_equal(ds.images, TINY_IMAGES[ds.labels])


def test_tfds_prepared_on_demand(tmp_path, tiny_builder):
  ds = load_dataset(_config(name='tfds:jaxgan_tiny_images', split='train', dir=str(tmp_path)))
  np.testing.assert_array_equal(ds.images, TINY_IMAGES[ds.labels])


@pytest.mark.skipif(
  importlib.util.find_spec('tensorflow') is not None, reason='TensorFlow is installed'
)
def test_tfds_prepare_without_tensorflow(tmp_path, tiny_builder):
  with pytest.raises(DataError, match=r'needs TensorFlow: pip install .jaxgan\[tfds-prepare\]'):
    load_dataset(_config(name='tfds:jaxgan_tiny_numpy_images', split='train', dir=str(tmp_path)))


def test_unknown_tfds_name(tmp_path):
  pytest.importorskip('tensorflow_datasets')
  with pytest.raises(DataError, match='not a known tfds dataset'):
    load_dataset(_config(name='tfds:no_such_dataset_xyz', split='train', dir=str(tmp_path)))


def test_subset_is_a_fixed_choice_of_the_split():
  from jaxgan import data
  from jaxgan.data import Dataset
  from jaxgan.errors import ConfigError

  images = np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1)
  ds = Dataset(images, np.arange(20, dtype=np.int32) % 4, 'toy')
  assert data.subset(ds, 0) is ds and data.subset(ds, 20) is ds
  part = data.subset(ds, 5)
  assert part.images.shape == (5, 1, 1, 1) and len(set(part.images.ravel())) == 5
  np.testing.assert_array_equal(part.labels, part.images.ravel() % 4)  # pairs kept together
  np.testing.assert_array_equal(data.subset(ds, 5).images, part.images)  # the same every time
  assert set(data.subset(ds, 10).images.ravel()) >= set(part.images.ravel())  # nested
  assert data.subset(ds._replace(labels=None), 5).labels is None
  with pytest.raises(ConfigError, match='data.subset=21, but the split has only 20'):
    data.subset(ds, 21)
