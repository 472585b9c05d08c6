"""CIFAR-10/100 from tiny fake tarballs laid out like the official ones: local files, the
download into the cache (from a server on 127.0.0.1), MD5 checks, corrupt and tampered files."""

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import ml_collections
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan.data import cifar, load_dataset
from jaxgan.errors import ConfigError, DataError
from tests.test_data import _serve


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
  # A proxy set in the environment must not intercept requests to the local test server.
  monkeypatch.setenv('no_proxy', '*')
  monkeypatch.setenv('NO_PROXY', '*')


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


def make_tarball(folder: Path, spec: cifar.Spec = cifar.CIFAR10_SPEC, per_batch: int = 3) -> dict:
  """Writes a fake `spec.tarball` into `folder`; returns {split: (images NHWC, labels)}."""
  rng = np.random.default_rng(len(spec.name))
  num_classes = 10 if spec is cifar.CIFAR10_SPEC else 100
  expected = {}
  folder.mkdir(parents=True, exist_ok=True)
  with tarfile.open(folder / spec.tarball, 'w:gz') as tar:
    names = [f'class{i}'.encode() for i in range(num_classes)]
    meta = {spec.names_key: names, b'num_cases_per_batch': per_batch}
    _add(tar, f'{spec.folder}/{spec.meta}', pickle.dumps(meta, protocol=2))
    for split, batches in spec.splits.items():
      images, labels = [], []
      for batch in batches:
        pixels = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        ys = rng.integers(0, num_classes, per_batch).tolist()
        planes = pixels.transpose(0, 3, 1, 2).reshape(per_batch, 3072)  # R, G, B planes
        content = {b'data': planes, spec.label_key: ys, b'batch_label': b'fake'}
        _add(tar, f'{spec.folder}/{batch}', pickle.dumps(content, protocol=2))
        images.append(pixels)
        labels.extend(ys)
      expected[split] = (np.concatenate(images), np.array(labels, np.int32))
    _add(tar, f'{spec.folder}/readme.html', b'<html></html>')
  return expected


def use_fake_md5(monkeypatch, path: Path) -> None:
  monkeypatch.setitem(cifar.MD5, path.name, hashlib.md5(path.read_bytes()).hexdigest())


def _config(**overrides) -> ml_collections.ConfigDict:
  fields = dict(name='cifar10', split='train', dir='', cache_dir='', url='', mirror=False)
  return ml_collections.ConfigDict({**fields, 'num_classes': 10, **overrides})


@pytest.fixture
def fake10(tmp_path, monkeypatch):
  expected = make_tarball(tmp_path / 'served')
  use_fake_md5(monkeypatch, tmp_path / 'served' / cifar.CIFAR10_SPEC.tarball)
  return tmp_path / 'served', expected


def test_local_tarball(fake10):
  folder, expected = fake10
  for data_dir in (folder, folder / cifar.CIFAR10_SPEC.tarball):  # the folder or the file
    for split, n in (('train', 15), ('test', 3)):
      ds = load_dataset(_config(dir=str(data_dir)), split)
      assert ds.name == 'cifar10' and ds.images.shape == (n, 32, 32, 3)
      assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int32
      np.testing.assert_array_equal(ds.images, expected[split][0])
      np.testing.assert_array_equal(ds.labels, expected[split][1])
      assert ds.classes == tuple(f'class{i}' for i in range(10))
  with pytest.raises(DataError, match="unknown split 'validation'"):
    load_dataset(_config(dir=str(folder)), 'validation')


def test_cifar100(tmp_path, monkeypatch):
  expected = make_tarball(tmp_path, cifar.CIFAR100_SPEC, per_batch=4)
  use_fake_md5(monkeypatch, tmp_path / cifar.CIFAR100_SPEC.tarball)
  ds = load_dataset(_config(name='cifar100', dir=str(tmp_path)), 'test')
  np.testing.assert_array_equal(ds.images, expected['test'][0])
  np.testing.assert_array_equal(ds.labels, expected['test'][1])
  assert len(ds.classes) == 100 and ds.name == 'cifar100'


def test_download_once_then_use_the_cache(fake10, tmp_path):
  folder, expected = fake10
  with _serve(folder) as (url, server):
    ds = load_dataset(_config(url=url, cache_dir=str(tmp_path / 'cache')))
    server.shutdown()
    server.server_close()
    np.testing.assert_array_equal(ds.images, expected['train'][0])
    assert os.listdir(tmp_path / 'cache' / 'cifar10') == [cifar.CIFAR10_SPEC.tarball]
    again = load_dataset(_config(url=url, cache_dir=str(tmp_path / 'cache')), 'test')
    np.testing.assert_array_equal(again.images, expected['test'][0])


def test_default_cache_and_a_corrupt_cached_file(fake10, tmp_path, monkeypatch):
  folder, expected = fake10
  monkeypatch.setenv('JAXGAN_CACHE', str(tmp_path / 'env'))
  cached = tmp_path / 'env' / 'cifar10' / cifar.CIFAR10_SPEC.tarball
  cached.parent.mkdir(parents=True)
  cached.write_bytes(b'half a download')
  with _serve(folder) as (url, _):
    ds = load_dataset(_config(url=url))
  np.testing.assert_array_equal(ds.images, expected['train'][0])
  assert cached.read_bytes() == (folder / cifar.CIFAR10_SPEC.tarball).read_bytes()


def test_md5_mismatch(fake10, tmp_path, monkeypatch):
  folder, _ = fake10
  monkeypatch.setitem(cifar.MD5, cifar.CIFAR10_SPEC.tarball, '0' * 32)
  with _serve(folder) as (url, _), pytest.raises(DataError, match='downloaded file is corrupt'):
    load_dataset(_config(url=url, cache_dir=str(tmp_path / 'cache')))
  assert os.listdir(tmp_path / 'cache' / 'cifar10') == []  # nothing half-checked left behind
  with pytest.raises(DataError, match=r'corrupt or not the original .* \(MD5 [0-9a-f]{32}'):
    load_dataset(_config(dir=str(folder)))


def test_corrupt_tarball(tmp_path, monkeypatch):
  make_tarball(tmp_path)
  path = tmp_path / cifar.CIFAR10_SPEC.tarball
  path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  use_fake_md5(monkeypatch, path)
  with pytest.raises(DataError, match='corrupt or truncated cifar-10-python.tar.gz'):
    load_dataset(_config(dir=str(tmp_path)))
  path.write_bytes(b'\x1f\x8b' + b'not gzip' * 10)
  use_fake_md5(monkeypatch, path)
  with pytest.raises(DataError, match='corrupt or truncated'):
    load_dataset(_config(dir=str(tmp_path)))


class _Exploit:
  def __init__(self, target: Path):
    self.target = target

  def __reduce__(self):
    return (Path.touch, (self.target,))


def test_a_pickle_that_runs_code_is_refused(tmp_path, monkeypatch):
  spec = cifar.CIFAR10_SPEC
  target = tmp_path / 'pwned'
  with tarfile.open(tmp_path / spec.tarball, 'w:gz') as tar:
    _add(tar, f'{spec.folder}/{spec.meta}', pickle.dumps({spec.names_key: [b'a']}, protocol=2))
    _add(tar, f'{spec.folder}/test_batch', pickle.dumps({b'data': _Exploit(target)}, protocol=2))
  use_fake_md5(monkeypatch, tmp_path / spec.tarball)
  with pytest.raises(DataError, match='unexpected object .* in a CIFAR batch'):
    load_dataset(_config(dir=str(tmp_path)), 'test')
  assert not target.exists()


def test_config():
  from jaxgan.configs import cifar10

  config = cifar10.get_config()
  config_lib.validate(config)
  config.data.resolution = 64
  with pytest.raises(ConfigError, match="unknown config key 'data.resolution' of data 'cifar10'"):
    config_lib.validate(config)
