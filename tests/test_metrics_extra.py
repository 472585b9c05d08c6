"""Inception Score, KID, density and coverage against textbook loops; which metrics each kind
of feature network gets; and the protocol in the trainer's evaluation rows."""

import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.special import softmax

from jaxgan import evaluation, train
from jaxgan.evaluation import features as features_lib
from jaxgan.evaluation import metrics, registry
from jaxgan.evaluation.features import Embedding
from jaxgan.images import to_float
from jaxgan.registry import UnknownName

# --- Inception Score -------------------------------------------------------------------------


def _is_loop(probs, splits):
  """Salimans et al.'s formula, one sample and one class at a time."""
  n, k = probs.shape
  scores = []
  for s in range(splits):
    part = probs[s * n // splits : (s + 1) * n // splits]
    marginal = [sum(p[j] for p in part) / len(part) for j in range(k)]
    kl = [sum(p[j] * np.log(p[j] / marginal[j]) for j in range(k) if p[j] > 0) for p in part]
    scores.append(np.exp(sum(kl) / len(kl)))
  return np.mean(scores), np.std(scores)


def test_inception_score_matches_the_formula():
  rng = np.random.default_rng(0)
  probs = rng.dirichlet(np.full(7, 0.3), size=103)  # 103: splits of 10 and 11 samples
  probs[0] = np.eye(7)[2]  # exact zeros: 0 log 0 counts as 0
  got = metrics.inception_score(probs)
  assert got == pytest.approx(_is_loop(probs, 10), rel=1e-10)
  assert metrics.inception_score(probs, splits=1)[0] == pytest.approx(
    metrics.classifier_score(probs), rel=1e-6
  )


def test_inception_score_closed_forms():
  # Confident and spread evenly over K classes in every split: exactly K, with no spread.
  k = 8
  one_hot = np.tile(np.eye(k), (10, 1))
  assert metrics.inception_score(one_hot) == pytest.approx((k, 0), abs=1e-9)
  # Every sample the same distribution: p(y|x) = p(y), IS 1.
  assert metrics.inception_score(np.full((50, k), 1 / k)) == pytest.approx((1, 0), abs=1e-9)
  with pytest.raises(ValueError, match='at least 10 samples'):
    metrics.inception_score(one_hot[:9])


# --- KID -------------------------------------------------------------------------------------


def _mmd2_loop(x, y):
  """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, pair by pair, in float64."""
  d, m, n = x.shape[1], len(x), len(y)

  def k(a, b):
    return (np.dot(a, b) / d + 1) ** 3

  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  return xx + yy - 2 * xy


def test_kid_matches_the_unbiased_estimator():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(40, 6)).astype(np.float32)
  y = (rng.normal(size=(40, 6)) * 1.3 + 0.4).astype(np.float32)
  expected = _mmd2_loop(x.astype(np.float64), y.astype(np.float64))
  # Subsets of all 40 points are the whole sets: one value, no spread.
  assert metrics.kid(x, y, subset_size=1000) == pytest.approx((expected, 0), rel=1e-5, abs=1e-9)


def test_kid_subsets():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(300, 5)).astype(np.float32)
  y = rng.normal(size=(200, 5)).astype(np.float32) + 0.5
  mean, std = metrics.kid(x, y, num_subsets=30, subset_size=50, seed=3)
  # The subsets the seed draws, each measured by the loop.
  draw = np.random.default_rng(3)
  values = []
  for _ in range(30):
    xs, ys = x[draw.choice(300, 50, replace=False)], y[draw.choice(200, 50, replace=False)]
    values.append(_mmd2_loop(xs.astype(np.float64), ys.astype(np.float64)))
  assert (mean, std) == pytest.approx((np.mean(values), np.std(values)), rel=1e-5)
  assert std > 0 and metrics.kid(x, y, 30, 50, seed=3) == (mean, std)
  # Unbiased: two samples of one distribution give about 0 (FID would be positive).
  same = metrics.kid(x[:150], x[150:], num_subsets=20, subset_size=100)[0]
  assert abs(same) < 0.2 * mean


# --- Density and coverage --------------------------------------------------------------------


def _density_coverage_loop(real, fake, k):
  """Naeem et al. 2020, eqs. (2) and (3), with exact float64 distances."""
  real, fake = real.astype(np.float64), fake.astype(np.float64)
  radius = [np.sort([np.linalg.norm(r - o) for o in real])[k] for r in real]  # [0] is r itself
  inside = [[np.linalg.norm(f - r) < radius[i] for f in fake] for i, r in enumerate(real)]
  density = sum(map(sum, inside)) / (k * len(fake))
  coverage = np.mean([any(row) for row in inside])
  return density, coverage


def test_density_coverage_match_the_definition():
  rng = np.random.default_rng(4)
  real = rng.normal(size=(120, 4)).astype(np.float32)
  fake = (rng.normal(size=(90, 4)) * 0.7 + 0.3).astype(np.float32)
  got = metrics.density_coverage(real, fake, k=5, chunk=32)  # several chunks
  assert got == pytest.approx(_density_coverage_loop(real, fake, 5), rel=1e-9)
  assert metrics.density_coverage(real, real) == pytest.approx((1, 1))
  assert metrics.density_coverage(real, fake + 100) == (0, 0)
  # Samples piled up at the data's mode: realistic (density about 1 or more), but covering
  # little of the data.
  piled = rng.normal(size=(90, 4)).astype(np.float32) * 0.05
  density, coverage = metrics.density_coverage(real, piled)
  assert density > 1 and coverage < 0.15


def test_manifold_metrics_match_the_separate_functions():
  rng = np.random.default_rng(5)
  real = rng.normal(size=(130, 6)).astype(np.float32)
  fake = (rng.normal(size=(110, 6)) * 0.8 + 0.2).astype(np.float32)
  got = metrics.manifold_metrics(real, fake, k_pr=3, k_dc=5, chunk=25)  # several chunks
  precision, recall = metrics.precision_recall(real, fake, k=3, chunk=1000)
  density, coverage = metrics.density_coverage(real, fake, k=5, chunk=1000)
  assert got == {'precision': precision, 'recall': recall, 'density': density, 'coverage': coverage}
  assert 0 < precision < 1 and 0 < recall < 1 and 0 < coverage < 1  # not a trivial case


def _manifold_exact(real, fake, k_pr=3, k_dc=5) -> dict[str, float]:
  """Precision, recall (Kynkäänniemi et al.), density and coverage (Naeem et al.) from exact
  float64 distances."""
  real, fake = real.astype(np.float64), fake.astype(np.float64)
  d_rr, d_ff = cdist(real, real, 'sqeuclidean'), cdist(fake, fake, 'sqeuclidean')
  d_fr = cdist(fake, real, 'sqeuclidean')
  real_pr, real_dc = np.sort(d_rr, axis=1)[:, k_pr], np.sort(d_rr, axis=1)[:, k_dc]
  fake_pr = np.sort(d_ff, axis=1)[:, k_pr]
  count = np.sum(d_fr < real_dc, axis=0)
  return {
    'precision': float(np.mean(np.any(d_fr <= real_pr, axis=1))),
    'recall': float(np.mean(np.any(d_fr.T <= fake_pr, axis=1))),
    'density': float(count.sum() / (k_dc * len(fake))),
    'coverage': float(np.mean(count > 0)),
  }


def test_manifold_metrics_do_not_depend_on_a_common_offset():
  """Features at the Inception scale (2048-d, non-negative as after a ReLU, mean about 0.4,
  some activations above 5, a low-dimensional manifold), then the same shifted together by
  1000: the same four values, those of exact distances. |a|^2 + |b|^2 - 2ab in float32 on the
  shifted ones is off by far more than the distances between the points."""
  rng = np.random.default_rng(6)
  w = rng.normal(size=(8, 2048)) * 0.35

  def features(n, shift, scale):
    return np.maximum((rng.normal(size=(n, 8)) * scale + shift) @ w, 0).astype(np.float32)

  real, fake = features(300, 0, 1), features(250, 0.7, 0.8)
  assert 0.3 < real.mean() < 0.5 and real.max() > 5
  exact = _manifold_exact(real, fake)
  assert 0.1 < exact['precision'] < 0.9 and 0.1 < exact['recall'] < 0.9  # not a trivial case
  assert metrics.manifold_metrics(real, fake) == exact
  offset = np.float32(1000)
  assert metrics.manifold_metrics(real + offset, fake + offset) == exact
  np.testing.assert_allclose(
    metrics.knn_radii(real + offset), np.sort(cdist(real, real, 'sqeuclidean'), 1)[:, 3], rtol=1e-4
  )


# --- Which metrics a feature network gets ----------------------------------------------------


class FakeInception:
  """A stand-in for the Inception network: 16-d random projections of the pixels and 1008-way
  probabilities, cheap enough for tests."""

  name = 'fake_inception'
  sha256 = 'f' * 64
  resize = 'none (test network)'

  def __init__(self, classes: int = registry.INCEPTION_CLASSES):
    rng = np.random.default_rng(0)
    self._w, self._v = rng.normal(size=(784, 16)), rng.normal(size=(784, classes)) * 0.1

  def check(self, image_shape):
    if tuple(image_shape[-3:]) != (28, 28, 1):
      raise ValueError(f'images of shape {tuple(image_shape)}: 28x28x1 only')

  def embed(self, images):
    x = to_float(np.asarray(images)).reshape(len(images), -1).astype(np.float64)
    return Embedding((x @ self._w).astype(np.float32), softmax(x @ self._v, -1)[:, None])


@pytest.fixture
def fake_inception(monkeypatch):
  monkeypatch.setattr(features_lib, '_REGISTRY', features_lib._REGISTRY.copy())
  net = FakeInception()
  features_lib.register(net)
  return net


@pytest.fixture(scope='module')
def digits():
  from jaxgan.data import mnist
  from tests.conftest import SHARED_MNIST

  return mnist.load_mnist('test', data_dir=SHARED_MNIST)[0][:400]


def test_metrics_by_feature_network(fake_inception, digits):
  common = {'fid', 'precision', 'recall', 'kid_mean', 'kid_std', 'density', 'coverage'}
  m = evaluation.evaluate_images(digits[:200], digits[200:], features='fake_inception')
  assert set(m) == common | {'is_mean', 'is_std'}
  assert 1 < m['is_mean'] < registry.INCEPTION_CLASSES and m['is_std'] > 0
  m = evaluation.evaluate_images(digits[:200], digits[200:])  # the MNIST classifier
  assert set(m) == common | {'classifier_score', 'class_kl', 'classes_covered'}
  assert m['kid_mean'] < 0.05 and m['density'] > 0.5 and m['coverage'] > 0.5  # real digits
  # Another number of classes is a dataset's classifier: no Inception Score.
  features_lib._REGISTRY.register('fake_inception', FakeInception(classes=20))
  m = evaluation.evaluate_images(digits[:200], digits[200:], features='fake_inception')
  assert 'is_mean' not in m and 'classifier_score' in m


def test_protocol_of_the_shipped_classifier():
  import hashlib

  from jaxgan.evaluation import classifier

  net = features_lib.get('mnist_classifier')
  p = evaluation.protocol(net, 100, 90, 'test')
  with open(classifier.WEIGHTS_PATH, 'rb') as f:
    sha = hashlib.sha256(f.read()).hexdigest()
  assert p == {
    'num_generated': 100,
    'num_reference': 90,
    'reference_split': 'test',
    'features': 'mnist_classifier',
    'features_sha256': sha,
    'resize': 'none',
    'jaxgan_version': evaluation.evaluator.jaxgan_version(),
  }
  assert sha.startswith('e28940a6')  # the hash docs/evaluation.md gives
  with pytest.raises(
    UnknownName,
    match=r"unknown feature network 'nope' \(eval_features, --features\); known: .*inception",
  ):
    features_lib.get('nope')


def test_training_rows_carry_the_protocol(fake_inception, test_config, tmp_path, capsys):
  """eval_features picks the network; every eval row says how it measured, TensorBoard (which
  takes numbers only) is written as well, and the best checkpoint still follows FID."""
  test_config.num_steps, test_config.eval_every, test_config.eval_num_samples = 3, 3, 60
  test_config.eval_features = 'fake_inception'
  train.train_and_evaluate(test_config, str(tmp_path))
  rows = [json.loads(ln) for ln in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  (row,) = [r for r in rows if 'eval_fid' in r]
  assert row['step'] == 3 and row['eval_is_mean'] > 1 and 'eval_kid_mean' in row
  assert {k: row[f'eval_{k}'] for k in ('features', 'features_sha256', 'resize')} == {
    'features': 'fake_inception',
    'features_sha256': 'f' * 64,
    'resize': 'none (test network)',
  }
  assert row['eval_num_generated'] == 60 and row['eval_num_reference'] == 60
  assert row['eval_reference_split'] == 'test' and row['eval_jaxgan_version']
  assert json.loads((tmp_path / 'best.json').read_text()) == {'step': 3, 'fid': row['eval_fid']}
  assert list((tmp_path / 'tensorboard').iterdir())
  out = capsys.readouterr().out
  assert 'eval step 3 | fid' in out and 'fake_inception' not in out  # console: numbers only


def test_eval_features_config_key(test_config, fake_inception):
  from jaxgan import config as config_lib
  from jaxgan.errors import ConfigError

  for ok in ('', 'inception', 'mnist_classifier', 'fake_inception'):
    test_config.eval_features = ok
    config_lib.validate(test_config)
  test_config.eval_features = 'vgg'
  with pytest.raises(ConfigError, match="eval_features must be '' .* one of mnist_classifier"):
    config_lib.validate(test_config)


def test_knn_metrics_are_left_out_for_a_handful_of_images():
  rng = np.random.default_rng(0)
  few, many = Embedding(rng.normal(size=(3, 4)), None), Embedding(rng.normal(size=(50, 4)), None)
  out = registry.compare(few, many)
  assert np.isfinite(out['fid']) and 'kid_mean' in out
  assert not {'precision', 'recall', 'density', 'coverage'} & set(out)
  out = registry.compare(many, many)
  assert {'precision', 'recall', 'density', 'coverage'} <= set(out)
