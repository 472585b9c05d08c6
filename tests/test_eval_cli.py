"""`python -m jaxgan.evaluate` and `python -m jaxgan.sample` on a tiny trained run."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from configs import test as test_config_lib
from jaxgan import evaluate, evaluation, sample, train
from jaxgan import images as images_lib
from jaxgan import workdir as workdir_lib
from jaxgan.errors import CheckpointError, JaxganError
from jaxgan.evaluation import checkpoints
from tests.conftest import REPO


def run(module, *args, timeout=240):
  return subprocess.run(
    [sys.executable, '-m', module, *args],
    cwd=REPO,
    env={**os.environ, 'PYTHONUNBUFFERED': '1'},
    capture_output=True,
    text=True,
    timeout=timeout,
  )


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """A configs/test.py run: checkpoints at steps 3 and 6; step 3 also as the 'best' one."""
  path = tmp_path_factory.mktemp('run')
  train.train_and_evaluate(test_config_lib.get_config(), str(path))
  shutil.copytree(path / 'checkpoints' / '3', path / 'checkpoints_best' / '3')
  return path


def test_evaluate_command(workdir):
  r = run('jaxgan.evaluate', f'--workdir={workdir}', '--num_samples=300')
  assert r.returncode == 0, r.stderr[-2000:]
  report = json.loads(r.stdout)  # stdout is exactly one JSON object
  assert report['step'] == 6 and report['num_samples'] == 300 and report['dataset'] == 'mnist'
  keys = {'fid', 'classifier_score', 'precision', 'recall', 'class_kl', 'classes_covered'}
  keys |= {'kid_mean', 'kid_std', 'density', 'coverage'}
  assert set(report['metrics']) == keys and set(report['reference']) == keys
  assert report['reference']['fid'] < report['metrics']['fid']  # 6 steps of G: far from real
  assert report['reference']['kid_mean'] < report['metrics']['kid_mean']
  assert json.loads((workdir / 'eval_step_000006.json').read_text()) == report
  protocol = report['protocol']
  assert protocol == {
    'num_generated': 300,
    'num_reference': 300,
    'reference_split': 'test',
    'features': 'mnist_classifier',
    'features_sha256': evaluation.features.get('mnist_classifier').sha256,
    'resize': 'none',
    'jaxgan_version': evaluation.evaluator.jaxgan_version(),
  }


def test_evaluate_with_another_feature_network(workdir, tmp_path, monkeypatch):
  """--features picks the network and --fid_stats adds FID against a statistics file; the
  Inception network without weights is one line and exit code 2."""
  from tests.test_metrics_extra import FakeInception

  monkeypatch.setattr(evaluation.features, '_REGISTRY', dict(evaluation.features._REGISTRY))
  net = FakeInception()
  evaluation.features.register(net)
  test_images = evaluate.load_real(workdir_lib.load_run(str(workdir))[0].data, 'test').images
  same = evaluation.embed_real(net, test_images, 100)  # the reference images the run compares
  evaluation.stats.save(str(tmp_path / 's.npz'), evaluation.stats.from_features(same.features))
  report = evaluate.run(
    str(workdir), num_samples=100, features='fake_inception', fid_stats=str(tmp_path / 's.npz')
  )
  m = report['metrics']
  assert report['features'] == 'fake_inception' and m['is_mean'] > 1 and 'kid_mean' in m
  assert 'classifier_score' not in m and 'is_mean' in report['reference']
  assert m['fid_stats'] == pytest.approx(m['fid'], rel=1e-6)
  assert report['protocol']['features_sha256'] == 'f' * 64
  with pytest.raises(JaxganError, match='16-d features.*another feature network'):
    evaluate.run(str(workdir), num_samples=100, fid_stats=str(tmp_path / 's.npz'))

  # A weights file that is not there (without one, jaxgan would look for installed weights).
  env = {**os.environ, 'JAXGAN_INCEPTION_WEIGHTS': str(tmp_path / 'absent.pt')}
  r = subprocess.run(
    [sys.executable, '-m', 'jaxgan.evaluate', f'--workdir={workdir}', '--features=inception'],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=240,
  )
  errors = [ln for ln in r.stderr.splitlines() if ln.startswith('jaxgan: error:')]
  assert r.returncode == 2 and len(errors) == 1 and 'Inception weights' in errors[0], r.stderr
  assert 'Traceback' not in r.stderr


def test_checkpoint_choice(workdir):
  assert checkpoints.resolve(str(workdir), 'latest')[1] == 6
  assert checkpoints.resolve(str(workdir), '3')[1] == 3
  directory, step = checkpoints.resolve(str(workdir), 'best')
  assert step == 3 and directory.endswith('checkpoints_best')
  _, _, state = checkpoints.load(str(workdir), 'best')
  _, _, state_3 = workdir_lib.load_run(str(workdir), 3)
  assert np.array_equal(
    state.g_params['Dense_0']['kernel'], state_3.g_params['Dense_0']['kernel']
  ), 'best restores checkpoints_best/3'
  with pytest.raises(CheckpointError, match='no checkpoint at step 4 .*there are: 3, 6'):
    checkpoints.resolve(str(workdir), '4')
  with pytest.raises(CheckpointError, match='latest, best or a step number'):
    checkpoints.resolve(str(workdir), 'last')
  report = evaluate.run(str(workdir), 'best', num_samples=100)
  assert report['step'] == 3 and (workdir / 'eval_step_000003.json').exists()
  with pytest.raises(JaxganError, match='at least 10'):
    evaluate.run(str(workdir), num_samples=5)


def test_evaluate_without_checkpoint(tmp_path):
  r = run('jaxgan.evaluate', f'--workdir={tmp_path}')
  assert r.returncode == 2
  errors = [ln for ln in r.stderr.splitlines() if ln.startswith('jaxgan: error:')]
  assert len(errors) == 1 and 'no checkpoint in' in errors[0], r.stderr[-2000:]
  assert 'Traceback' not in r.stderr and os.listdir(tmp_path) == []
  for which in ('best', '12'):
    with pytest.raises(CheckpointError, match='no checkpoint in'):
      evaluate.run(str(tmp_path), which)
  assert os.listdir(tmp_path) == []


def test_sample_npz_and_png(workdir, tmp_path):
  r = run('jaxgan.sample', f'--workdir={workdir}', '--num_samples=20', f'--out={tmp_path}/s.npz')
  assert r.returncode == 0, r.stderr[-2000:]
  images = np.load(tmp_path / 's.npz')['images']
  assert images.shape == (20, 28, 28, 1) and images.dtype == np.uint8
  # The same latents as the evaluation's for the same seed.
  _, gan, state = workdir_lib.load_run(str(workdir))
  expected = next(evaluation.generate(evaluation.make_generate_fn(gan, state), 20))
  assert np.abs(images.astype(int) - images_lib.to_uint8(expected)).max() <= 1

  sample.sample(str(workdir), 10, str(tmp_path / 'grid.png'), checkpoint='3', seed=1)
  assert Image.open(tmp_path / 'grid.png').size == (4 * 29 + 1, 3 * 29 + 1)  # 4 columns, 3 rows
  with pytest.raises(JaxganError, match='.npz or .png'):
    sample.sample(str(workdir), 10, str(tmp_path / 'x.jpg'))


def test_sample_without_checkpoint(tmp_path):
  r = run('jaxgan.sample', f'--workdir={tmp_path}', '--num_samples=4', f'--out={tmp_path}/s.png')
  errors = [ln for ln in r.stderr.splitlines() if ln.startswith('jaxgan: error:')]
  assert r.returncode == 2 and len(errors) == 1 and 'no checkpoint' in errors[0], r.stderr
