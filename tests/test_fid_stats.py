"""Reference statistics files (pytorch-fid's .npz) and `python -m jaxgan.fid_stats`."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

from jaxgan import fid_stats
from jaxgan.data import mnist
from jaxgan.errors import JaxganError
from jaxgan.evaluation import classifier, metrics
from jaxgan.evaluation import features as features_lib
from jaxgan.evaluation import stats as stats_lib
from tests.conftest import REPO, SHARED_MNIST


@pytest.fixture(scope='module')
def digits():
  return mnist.load_mnist('test', data_dir=SHARED_MNIST)[0][:300]


def _run(*args):
  # Inception weights that are not there (without them, jaxgan would look for installed ones).
  env = {**os.environ, 'JAXGAN_INCEPTION_WEIGHTS': '/nonexistent/inception.pt'}
  return subprocess.run(
    [sys.executable, '-m', 'jaxgan.fid_stats', *args],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=240,
  )


def test_files_are_pytorch_fids_format(tmp_path):
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(500, 6)), rng.normal(size=(400, 6)) * 1.5 + 1
  path = str(tmp_path / 'x.npz')
  stats_lib.save(path, stats_lib.from_features(x, {'num_images': 500, 'features': 'f'}))
  with np.load(path) as f:  # what pytorch-fid does: f['mu'][:], f['sigma'][:]
    mu, sigma = f['mu'][:], f['sigma'][:]
  assert np.allclose(mu, x.mean(0)) and np.allclose(sigma, np.cov(x, rowvar=False))
  loaded = stats_lib.load(path)
  assert loaded.info == {'num_images': '500', 'features': 'f'}
  assert stats_lib.fid(y, loaded) == pytest.approx(metrics.fid(y, x), rel=1e-12)
  # A file of pytorch-fid's own (mu and sigma only): no protocol, read all the same.
  np.savez(tmp_path / 'theirs.npz', mu=x.mean(0), sigma=np.cov(x, rowvar=False))
  theirs = stats_lib.load(str(tmp_path / 'theirs.npz'))
  assert theirs.info == {} and stats_lib.fid(y, theirs) == pytest.approx(metrics.fid(y, x))


def test_bad_files_and_mismatched_networks(tmp_path):
  with pytest.raises(JaxganError, match='cannot read statistics file'):
    stats_lib.load(str(tmp_path / 'missing.npz'))
  np.savez(tmp_path / 'other.npz', images=np.zeros((2, 2)))
  with pytest.raises(JaxganError, match='no mu and sigma'):
    stats_lib.load(str(tmp_path / 'other.npz'))
  np.savez(tmp_path / 'bad.npz', mu=np.zeros(3), sigma=np.zeros((2, 2)))
  with pytest.raises(JaxganError, match=r'not a \(D,\) mean'):
    stats_lib.load(str(tmp_path / 'bad.npz'))
  net = features_lib.get('mnist_classifier')
  x = np.random.default_rng(1).normal(size=(50, 4))
  made = stats_lib.from_features(x, {'features': 'inception', 'features_sha256': 'ab'})
  with pytest.raises(JaxganError, match='made with features=inception, these images with mnist'):
    stats_lib.fid(x, made, net)
  with pytest.raises(JaxganError, match='4-d features, the images give features of shape'):
    stats_lib.fid(np.zeros((50, 128)), made)
  # The same network and weights, other resizing: refused; a file from before resizes had
  # names (pytorch-fid's, described) compares with legacy_pytorch.
  inception = types.SimpleNamespace(name='inception', sha256='ab', resize='legacy_tensorflow')
  old = 'bilinear to 299x299, no antialiasing (pytorch-fid, F.interpolate)'
  info = {'features': 'inception', 'features_sha256': 'ab', 'resize': old}
  made = stats_lib.from_features(x, info)
  with pytest.raises(JaxganError, match='resize=legacy_pytorch, these images with legacy_tensorf'):
    stats_lib.fid(x, made, inception)
  inception.resize = 'legacy_pytorch'
  assert stats_lib.fid(x, made, inception) == pytest.approx(0, abs=1e-9)


def test_command_on_an_npz_file(digits, tmp_path):
  np.savez(tmp_path / 'digits.npz', images=digits)
  out = tmp_path / 'stats.npz'
  r = _run(f'--images={tmp_path}/digits.npz', f'--out={out}', '--features=mnist_classifier')
  assert r.returncode == 0, r.stderr[-2000:]
  report = json.loads(r.stdout)
  assert report['num_images'] == 300 and report['feature_dim'] == 128
  assert report['features'] == 'mnist_classifier' and report['resize'] == 'none'
  stats = stats_lib.load(str(out))
  features, _ = classifier.classify(digits)
  mu, sigma = metrics.gaussian_stats(features)
  np.testing.assert_allclose(stats.mu, mu, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(stats.sigma, sigma, rtol=1e-4, atol=1e-5)
  assert stats.info['features_sha256'] == features_lib.get('mnist_classifier').sha256
  assert stats.info['num_images'] == '300' and stats.info['image_shape'] == '28x28x1'
  assert stats.info['source'] == f'npz {tmp_path}/digits.npz'

  # Inception without weights: one line, exit 2, nothing written.
  r = _run(f'--images={tmp_path}/digits.npz', f'--out={tmp_path}/i.npz')
  errors = [ln for ln in r.stderr.splitlines() if ln.startswith('jaxgan: error:')]
  assert r.returncode == 2 and len(errors) == 1, r.stderr[-2000:]
  assert 'Inception weights' in errors[0] and 'Traceback' not in r.stderr
  assert not (tmp_path / 'i.npz').exists()


def test_a_folder_at_its_own_size(digits, tmp_path, monkeypatch):
  monkeypatch.setenv('JAXGAN_CACHE', str(tmp_path / 'cache'))
  folder = tmp_path / 'digits'
  folder.mkdir()
  for i, image in enumerate(digits[:40]):
    Image.fromarray(image[..., 0]).save(folder / f'{i:03d}.png')  # grayscale, lossless
  np.savez(tmp_path / 'same.npz', images=digits[:40])
  got = fid_stats.compute(str(folder), str(tmp_path / 'a.npz'), 'mnist_classifier')
  assert got['num_images'] == 40 and got['image_shape'] == '28x28x1'
  assert 'native size' in got['source']
  fid_stats.compute(str(tmp_path / 'same.npz'), str(tmp_path / 'b.npz'), 'mnist_classifier')
  a, b = stats_lib.load(str(tmp_path / 'a.npz')), stats_lib.load(str(tmp_path / 'b.npz'))
  np.testing.assert_array_equal(a.mu, b.mu)

  Image.new('L', (32, 32)).save(folder / 'big.png')
  with pytest.raises(JaxganError, match=r'2 sizes: 28x28, 32x32.*--resolution=R'):
    fid_stats.compute(str(folder), str(tmp_path / 'c.npz'), 'mnist_classifier')
  got = fid_stats.compute(str(folder), str(tmp_path / 'c.npz'), 'mnist_classifier', resolution=28)
  assert got['num_images'] == 41 and 'lanczos to 28x28' in got['source']


def test_input_errors(digits, tmp_path):
  def compute(images, out='s.npz', features='mnist_classifier', **kw):
    return fid_stats.compute(str(tmp_path / images), str(tmp_path / out), features, **kw)

  np.savez(tmp_path / 'float.npz', images=digits.astype(np.float32))
  np.savez(tmp_path / 'noimages.npz', x=digits)
  np.savez(tmp_path / 'rgb32.npz', images=np.zeros((4, 32, 32, 3), np.uint8))
  with pytest.raises(JaxganError, match='must be uint8 of shape'):
    compute('float.npz')
  with pytest.raises(JaxganError, match='no array named images'):
    compute('noimages.npz')
  with pytest.raises(JaxganError, match='--features=mnist_classifier cannot measure'):
    compute('rgb32.npz')
  with pytest.raises(JaxganError, match='--out must end in .npz'):
    compute('rgb32.npz', out='s.txt')
  with pytest.raises(JaxganError, match='unknown feature network'):
    compute('rgb32.npz', features='vgg')
  with pytest.raises(JaxganError, match='a .npz file or a folder'):
    compute('missing.png')
