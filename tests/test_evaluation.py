"""Sample-quality metrics: closed forms, scipy, hand-made cases, and the shipped classifier."""

import dataclasses
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist

from jaxgan import evaluation
from jaxgan.data import mnist
from jaxgan.evaluation import classifier, metrics
from jaxgan.gan import GAN
from tests.conftest import SHARED_MNIST

# --- FID -------------------------------------------------------------------------------------


def _fid_scipy(mu1, s1, mu2, s2) -> float:
  """The reference formula, with scipy's general (non-symmetric) matrix square root."""
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_distance_closed_form():
  # Diagonal covariances commute: the distance is |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
  a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
  mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
  expected = 1 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 0.5) ** 2
  got = metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
  assert got == pytest.approx(expected, rel=1e-12)
  # Rotating both Gaussians together changes nothing.
  q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
  rotated = metrics.frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
  assert rotated == pytest.approx(expected, rel=1e-9)


def test_fid_matches_scipy_on_random_data():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2000, 16)) @ rng.normal(size=(16, 16))
  y = rng.normal(size=(2000, 16)) @ rng.normal(size=(16, 16)) + 0.5
  mu1, s1 = metrics.gaussian_stats(x)
  mu2, s2 = metrics.gaussian_stats(y)
  assert metrics.fid(x, y) == pytest.approx(_fid_scipy(mu1, s1, mu2, s2), rel=1e-8)


def test_fid_identical_and_rank_deficient():
  x = np.random.default_rng(2).normal(size=(500, 8))
  assert metrics.fid(x, x) == pytest.approx(0, abs=1e-9)
  # Fewer points than dimensions, and a dead (constant) feature: singular covariances.
  low_rank = np.random.default_rng(3).normal(size=(20, 64))
  low_rank[:, 0] = 0
  value = metrics.fid(low_rank, low_rank + 1.0)
  assert value == pytest.approx(64, rel=1e-6)  # only the means differ, by 1 in each feature


def test_fid_from_fewer_samples_than_dimensions():
  """The low-rank path (singular values of A B') against the covariances' formula, which adds
  the square roots of ~30 round-off eigenvalues (1e-15 each): 1e-6 of 98. Exactly 0 between a
  set and a shifted copy, but for the shift."""
  rng = np.random.default_rng(4)
  x, y = rng.normal(size=(12, 40)), rng.normal(size=(9, 40)) * 1.5 + 0.3
  expected = metrics.frechet_distance(*metrics.gaussian_stats(x), *metrics.gaussian_stats(y))
  assert metrics.fid(x, y) == pytest.approx(expected, rel=1e-7)
  assert metrics.fid(y, x) == pytest.approx(expected, rel=1e-7)
  assert metrics.fid(x, x + 0.5) == pytest.approx(40 * 0.25, rel=1e-12)


# --- Classifier score, class histogram -------------------------------------------------------


def test_classifier_score_bounds():
  confident_diverse = np.eye(10)[np.arange(1000) % 10]
  assert metrics.classifier_score(confident_diverse) == pytest.approx(10, rel=1e-6)
  assert metrics.classifier_score(np.eye(10)[np.full(1000, 3)]) == pytest.approx(1, rel=1e-6)
  assert metrics.classifier_score(np.full((1000, 10), 0.1)) == pytest.approx(1, rel=1e-6)


def test_class_kl_and_coverage():
  balanced = np.arange(1000) % 10
  assert metrics.kl_from_uniform(balanced, 10) == pytest.approx(0, abs=1e-12)
  assert metrics.num_covered(balanced, 10) == 10
  one = np.full(1000, 7)
  assert metrics.kl_from_uniform(one, 10) == pytest.approx(np.log(10))
  assert metrics.num_covered(one, 10) == 1
  # Two stray samples among 1000 appear, but do not hold 1% of the samples.
  stray = np.concatenate([np.full(998, 7), [1, 2]])
  assert metrics.num_covered(stray, 10) == 3
  assert metrics.num_covered(stray, 10, min_fraction=0.01) == 1


# --- Precision and recall --------------------------------------------------------------------


def test_precision_recall_by_hand():
  real = np.arange(10.0)[:, None]  # 0..9 on a line; k=3 radii: 3 at the ends, 2 inside
  assert metrics.precision_recall(real, real) == (1.0, 1.0)
  assert metrics.precision_recall(real, real + 100) == (0.0, 0.0)
  # Fakes 0..4 and 100..104: half of them are real-looking. Their balls (radius 3 at 4,
  # the last point of the left group) reach real points 0..7: recall 0.8.
  fake = np.concatenate([np.arange(5.0), np.arange(100.0, 105.0)])[:, None]
  assert metrics.precision_recall(real, fake) == (0.5, 0.8)


def test_knn_radii_and_chunking():
  rng = np.random.default_rng(4)
  x, y = rng.normal(size=(300, 5)), rng.normal(size=(200, 5)) + 0.3
  brute = np.sort(cdist(x, x, 'sqeuclidean'), axis=1)[:, 3]
  np.testing.assert_allclose(metrics.knn_radii(x, k=3, chunk=7), brute, rtol=1e-4)
  assert metrics.precision_recall(x, y, chunk=7) == metrics.precision_recall(x, y, chunk=1000)


# --- The shipped classifier on real MNIST ----------------------------------------------------


@pytest.fixture(scope='module')
def mnist_test():
  return mnist.load_mnist('test', data_dir=SHARED_MNIST)


@pytest.fixture(scope='module')
def mnist_train():
  return mnist.load_mnist('train', data_dir=SHARED_MNIST)


def test_classifier_accuracy(mnist_test):
  images, labels = mnist_test
  _, probs = classifier.classify(images)
  accuracy = np.mean(probs.argmax(-1) == labels)
  assert accuracy >= 0.99, accuracy


def test_identical_sets(mnist_test):
  images = mnist_test[0][:1000]
  m = evaluation.evaluate_images(images, images)
  assert m['fid'] == pytest.approx(0, abs=1e-6)
  assert m['precision'] == 1.0 and m['recall'] == 1.0
  assert m['classes_covered'] == 10 and m['class_kl'] < 0.02
  assert m['classifier_score'] > 9


def test_noise_is_far_from_digits(mnist_test, mnist_train):
  real = mnist_test[0][:1000]
  noise = np.random.default_rng(5).uniform(-1, 1, size=real.shape).astype(np.float32)
  m = evaluation.evaluate_images(noise, real)
  ref = evaluation.reference_metrics(mnist_train[0], mnist_test[0], 1000)
  assert m['fid'] > 50 * ref['fid']
  assert m['precision'] < 0.01 and m['recall'] < 0.01


def _collapsed_generator(images: np.ndarray):
  """A generator that only ever draws (different) images of one digit."""

  def generate_fn(key):
    rng = np.random.default_rng(int(key[-1]))
    return images[rng.integers(0, len(images), 100)].astype(np.float32) / 127.5 - 1

  return generate_fn


def test_collapsed_generator(mnist_test):
  images, labels = mnist_test
  sevens = images[labels == 7]
  m = evaluation.evaluate_generator(_collapsed_generator(sevens), images, num_samples=1000)
  assert m['classes_covered'] == 1
  assert m['class_kl'] > 2.0  # log(10) = 2.30 for exactly one class
  assert m['classifier_score'] < 1.2
  assert m['recall'] < 0.3 and m['precision'] > 0.9  # realistic, but no variety
  assert m['fid'] > 10 * evaluation.evaluate_images(images[:1000], images, 1000)['fid'] + 1


def test_reference_metrics(mnist_train, mnist_test):
  ref = evaluation.reference_metrics(mnist_train[0], mnist_test[0], 1000)
  assert ref['classes_covered'] == 10 and ref['class_kl'] < 0.02
  assert ref['precision'] > 0.6 and ref['recall'] > 0.6
  assert ref['classifier_score'] > 9
  # Deterministic, and remembered for the process.
  assert evaluation.reference_metrics(mnist_train[0], mnist_test[0], 1000) is ref


def test_stacked_metrics(mnist_test):
  from jaxgan.data import stacked_mnist

  stacked, modes = stacked_mnist.stack(*mnist_test, size=600, seed=1)
  m = evaluation.evaluate_images(stacked, stacked)
  assert set(m) == {'fid', 'precision', 'recall', 'modes_covered', 'mode_kl'} | {
    'kid_mean',
    'kid_std',
    'density',
    'coverage',
  }
  assert m['precision'] == 1.0 and m['fid'] == pytest.approx(0, abs=1e-6)
  # Identical sets: every point is inside its own k-NN ball, and duplicates sit exactly on
  # other balls' radii, where float rounding decides: density is 1 up to those ties.
  assert m['density'] == pytest.approx(1, abs=0.02) and m['coverage'] == 1.0
  true_modes = len(np.unique(modes))  # about 1000 (1 - exp(-0.6)) = 451
  assert abs(m['modes_covered'] - true_modes) <= 0.05 * true_modes
  assert m['mode_kl'] == pytest.approx(metrics.kl_from_uniform(modes, 1000), rel=0.05)


def test_bad_shapes():
  with pytest.raises(ValueError, match='28x28'):
    evaluation.evaluate_images(np.zeros((10, 32, 32, 1), np.uint8), np.zeros((10, 32, 32, 1)))
  with pytest.raises(ValueError, match='differ'):
    evaluation.evaluate_images(np.zeros((10, 28, 28, 1), np.uint8), np.zeros((10, 28, 28, 3)))


class _DenseBN(nn.Module):
  """z -> BatchNorm(Dense(z)) -> images: one batch-norm layer whose statistics are easy to see."""

  @nn.compact
  def __call__(self, z, train: bool = True):
    h = nn.Dense(4 * 4, kernel_init=nn.initializers.normal(1.0))(z)
    h = nn.BatchNorm(use_running_average=not train, momentum=0.7)(h)
    return jnp.tanh(h).reshape(-1, 4, 4, 1)


def test_standing_stats_are_the_average_batch_moments():
  from jaxgan import sampling

  g = _DenseBN()
  gan = GAN(g, g, optax.sgd(0.1), optax.sgd(0.1), latent_dim=3)
  variables = g.init(jax.random.PRNGKey(1), jnp.zeros((2, 3)))
  params, vars_ = variables['params'], {'batch_stats': variables['batch_stats']}
  assert evaluation.sampling_vars(gan, params, vars_) is vars_  # standing_stats=0: unchanged

  gan = dataclasses.replace(gan, standing_stats=3)
  stats = evaluation.sampling_vars(gan, params, vars_)['batch_stats']['BatchNorm_0']
  # By hand: the textbook batch moments of Dense(z) on the same three batches of latents.
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  dense = params['Dense_0']
  h = [
    gan.sample_latent(k, sampling.STANDING_BATCH) @ dense['kernel'] + dense['bias'] for k in keys
  ]
  np.testing.assert_allclose(
    stats['mean'], np.mean([x.mean(0) for x in h], 0), rtol=1e-4, atol=1e-5
  )
  np.testing.assert_allclose(stats['var'], np.mean([x.var(0) for x in h], 0), rtol=1e-4)
  assert not np.allclose(stats['var'], vars_['batch_stats']['BatchNorm_0']['var'])


def test_samples_use_the_configured_standing_stats(test_config):
  from jaxgan import gan as gan_lib
  from jaxgan.state import init_state

  test_config.train.standing_stats = 2
  gan = gan_lib.from_config(test_config, (28, 28, 1))
  assert gan.standing_stats == 2
  state = init_state(gan, jax.random.PRNGKey(0), (28, 28, 1))
  key = jax.random.PRNGKey(5)
  got = evaluation.make_generate_fn(gan, state, batch_size=4)(key)
  standing = evaluation.sampling_vars(gan, state.g_ema_params, state.g_vars)
  z = gan.sample_latent(key, 4)
  want = gan.generator.apply({'params': state.g_ema_params, **standing}, z, train=False)
  np.testing.assert_allclose(got, want, atol=1e-6)
  running = gan.generator.apply({'params': state.g_ema_params, **state.g_vars}, z, train=False)
  assert not np.allclose(got, running, atol=1e-3)  # fresh running averages are 0 and 1


# --- The on-disk cache of real images' embeddings --------------------------------------------


class _CountingNet:
  """A slow feature network's stand-in: counts the images it embeds."""

  name = 'counting'
  resize = 'none'
  cache_real_embeddings = True

  def __init__(self, sha256='abc'):
    self.sha256, self.embedded = sha256, 0

  def embed(self, images):
    self.embedded += len(images)
    flat = images.reshape(len(images), -1).astype(np.float32)
    return evaluation.Embedding(flat[:, :4] + self.embedded, flat[:, None, :2])


def test_real_embeddings_are_kept_on_disk_by_weights_and_images(tmp_path, monkeypatch):
  from jaxgan.evaluation import evaluator

  monkeypatch.setenv('JAXGAN_CACHE', str(tmp_path))
  monkeypatch.setattr(evaluator, '_EMBEDDINGS', {})
  images = np.random.default_rng(0).integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
  net = _CountingNet()
  first = evaluator.embed_real(net, images, 6)
  path = evaluator.embedding_cache_path(net, images)
  assert net.embedded == 6 and path.startswith(str(tmp_path / 'features'))

  evaluator._EMBEDDINGS.clear()  # a new process: read from disk, not embedded again
  again = evaluator.embed_real(net, images, 6)
  assert net.embedded == 6
  np.testing.assert_array_equal(again.features, first.features)
  np.testing.assert_array_equal(again.probs, first.probs)

  # Other images, other weights: embedded afresh, each in a file of its own.
  evaluator.embed_real(net, images[::-1].copy(), 6)
  assert net.embedded == 12
  other = _CountingNet('def')
  evaluator.embed_real(other, images, 6)
  assert other.embedded == 6
  assert len(list((tmp_path / 'features').glob('*.npz'))) == 3

  # A garbled file is ignored and replaced; weights with no hash are never kept.
  open(path, 'wb').write(b'not an npz')
  evaluator._EMBEDDINGS.clear()
  np.testing.assert_array_equal(
    evaluator.embed_real(net, images, 6).features[:, :4], images.reshape(6, -1)[:, :4] + 18.0
  )
  assert net.embedded == 18
  with np.load(path, allow_pickle=False) as f:
    assert f['features'].shape == (6, 4)
  assert evaluator.embedding_cache_path(_CountingNet(sha256=None), images) == ''


def test_a_long_embedding_cut_short_resumes_from_its_parts(tmp_path, monkeypatch):
  from jaxgan.evaluation import evaluator

  monkeypatch.setenv('JAXGAN_CACHE', str(tmp_path))
  monkeypatch.setattr(evaluator, '_EMBEDDINGS', {})
  monkeypatch.setattr(evaluator, 'CACHE_CHUNK', 4)
  images = np.random.default_rng(1).integers(0, 256, (10, 4, 4, 3), dtype=np.uint8)
  whole = _CountingNet().embed(images)  # one call: every row offset by 10

  class Interrupted(Exception):
    pass

  net = _CountingNet()
  embed = net.embed

  def cut_at_the_last_part(x):
    if net.embedded == 8:
      raise Interrupted
    return embed(x)

  net.embed = cut_at_the_last_part
  with pytest.raises(Interrupted):
    evaluator.embed_real(net, images, 10)
  assert len(list((tmp_path / 'features').glob('*.npz'))) == 2  # the first two parts

  net.embed = embed
  got = evaluator.embed_real(net, images, 10)
  assert net.embedded == 10  # only the last part was embedded again
  np.testing.assert_array_equal(got.features[:4], whole.features[:4] - 10 + 4)
  np.testing.assert_array_equal(got.features[8:], whole.features[8:])
  assert [p.name for p in (tmp_path / 'features').glob('*.npz')] == [
    Path(evaluator.embedding_cache_path(net, images)).name
  ]
