"""Cluster labels (data.clusters): k-means of the training images for a conditional GAN."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import gan as gan_lib
from jaxgan import train
from jaxgan import workdir as workdir_lib
from jaxgan.data import clusters
from jaxgan.errors import ConfigError


def _three_kinds(n_each=40, seed=0):
  """uint8 images (3 * n_each, 8, 8, 1) of three distinct templates plus small noise, and the
  template of each."""
  rng = np.random.default_rng(seed)
  templates = np.zeros((3, 8, 8, 1))
  templates[0, :4] = 200  # top half
  templates[1, :, :4] = 200  # left half
  templates[2, 2:6, 2:6] = 250  # centre square
  kind = np.repeat(np.arange(3), n_each)
  images = templates[kind] + rng.normal(0, 10, (len(kind), 8, 8, 1))
  order = rng.permutation(len(kind))
  return np.clip(images[order], 0, 255).astype(np.uint8), kind[order]


def test_kmeans_recovers_separated_groups():
  images, kind = _three_kinds()
  labels = clusters.cluster_labels(images, 3)
  assert labels.dtype == np.int32 and labels.shape == kind.shape
  # The same partition, whatever the numbering: each cluster holds exactly one kind.
  pairs = set(zip(labels.tolist(), kind.tolist(), strict=True))
  assert len(pairs) == 3 and len({c for c, _ in pairs}) == 3
  # Deterministic for a seed (a resumed run gets the same labels).
  np.testing.assert_array_equal(labels, clusters.cluster_labels(images, 3))


def test_kmeans_centers_are_the_means_of_their_points():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(200, 5)), jnp.float32)
  centers = clusters.kmeans(x, 4, jax.random.PRNGKey(0))
  labels = clusters.assign(x, centers)
  for j in range(4):
    np.testing.assert_allclose(centers[j], x[labels == j].mean(axis=0), atol=1e-5)
  # Every point is nearest to its own center (Lloyd's fixed point).
  d = ((np.asarray(x)[:, None] - np.asarray(centers)[None]) ** 2).sum(-1)
  np.testing.assert_array_equal(d.argmin(axis=1), labels)


def test_features_pool_large_images_to_32_pixels():
  images = np.arange(2 * 64 * 64 * 3, dtype=np.int64).reshape(2, 64, 64, 3) % 256
  f = np.asarray(clusters.features(images.astype(np.uint8)))
  assert f.shape == (2, 32 * 32 * 3)
  want = images.astype(np.float32).reshape(2, 32, 2, 32, 2, 3).mean(axis=(2, 4)) / 255
  np.testing.assert_allclose(f, want.reshape(2, -1), rtol=1e-6)
  assert clusters.features(np.zeros((3, 28, 28, 1), np.uint8)).shape == (3, 784)  # unpooled


def test_frequencies_and_too_many_clusters():
  assert clusters.frequencies(np.array([0, 0, 2, 0]), 3) == (0.75, 0.0, 0.25)
  with pytest.raises(ConfigError, match='clusters=5 is more than the 4 training images'):
    clusters.cluster_labels(np.zeros((4, 8, 8, 1), np.uint8), 5)


def test_fake_labels_follow_label_probs_and_default_to_uniform(test_config):
  test_config.model.conditional = True
  test_config.data.num_classes = 10  # without the data, the count is given
  gan = gan_lib.from_config(test_config, (28, 28, 1), label_probs=(0.7, 0.0, 0.3))
  y = np.asarray(gan.sample_labels(jax.random.PRNGKey(0), 20_000))
  np.testing.assert_allclose(np.bincount(y, minlength=3) / len(y), [0.7, 0.0, 0.3], atol=0.015)
  # Without label_probs: uniform, the very draw of jax.random.randint (older runs unchanged).
  uniform = gan_lib.from_config(test_config, (28, 28, 1))
  key = jax.random.PRNGKey(3)
  want = jax.random.randint(key, (50,), 0, test_config.data.num_classes)
  np.testing.assert_array_equal(uniform.sample_labels(key, 50), want)


def test_clusters_need_a_conditional_gan(test_config):
  test_config.data.clusters = 20
  with pytest.raises(ConfigError, match='clusters=20 makes labels for a conditional GAN'):
    config_lib.validate(test_config)
  test_config.model.conditional = True
  config_lib.validate(test_config)


def test_training_on_clusters_records_their_frequencies(test_config, tmp_path):
  test_config.data.clusters = 4
  test_config.data.subset = 256  # k-means of a few hundred images, not of all 60,000
  test_config.model.conditional = True
  test_config.num_steps = 2
  test_config.num_grid_samples = 6
  state = train.train_and_evaluate(test_config, str(tmp_path))
  run = json.loads((tmp_path / 'run.json').read_text())
  probs = run['label_probs']
  assert len(probs) == 4 and abs(sum(probs) - 1) < 1e-9 and min(probs) > 0
  assert not (tmp_path / 'classes.json').exists()  # cluster ids name nothing
  # D's projection and G's embedding have one row per cluster, not per digit.
  assert state.g_params['Embed_0']['embedding'].shape[0] == 4
  _, gan, _ = workdir_lib.load_run(str(tmp_path))
  assert gan.num_classes == 4 and gan.label_probs == tuple(probs)
