"""Labels without annotations: k-means clusters of the training images (`data.clusters`).

A class-conditional GAN trained on cluster ids instead of classes learns each cluster as a
mode of its own, so G stops spending samples between the modes of a multi-modal dataset
(Sage et al. 2018, "Logo synthesis and manipulation with clustered GANs"; Liu et al. 2020,
"Diverse image generation via self-conditioned GANs", cluster in a network's features; here
the pixels suffice, and nothing is learned twice). The clustering is k-means++ then Lloyd
iterations, on the images average-pooled to at most 32 px a side, in float32 on the default
device; it depends only on the images, k and the seed, so a resumed run gets the same labels.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.errors import ConfigError

MAX_SIDE = 32  # larger images are average-pooled to at most this many pixels a side
ITERATIONS = 30  # Lloyd iterations after k-means++


def features(images: np.ndarray) -> jax.Array:
  """(N, D) float32 in [0, 1]: uint8 images (N, H, W, C) pooled to at most MAX_SIDE a side."""
  factor = math.ceil(max(images.shape[1:3]) / MAX_SIDE)
  x = jnp.asarray(images, jnp.float32) / 255.0
  if factor > 1:
    n, h, w, c = x.shape
    x = x[:, : h - h % factor, : w - w % factor]
    x = x.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))
  return x.reshape(x.shape[0], -1)


def _sq_distances(x: jax.Array, centers: jax.Array) -> jax.Array:
  """(N, K) squared distances, as |x|^2 - 2 x.c + |c|^2 (one matmul)."""
  x2 = jnp.sum(x * x, axis=1, keepdims=True)
  return jnp.maximum(x2 - 2 * x @ centers.T + jnp.sum(centers * centers, axis=1), 0.0)


@functools.partial(jax.jit, static_argnums=(1, 3))
def kmeans(x: jax.Array, k: int, key: jax.Array, iterations: int = ITERATIONS) -> jax.Array:
  """(k, D) centers of the rows of x: k-means++ seeding (Arthur & Vassilvitskii 2007), then
  Lloyd iterations; a center that loses all its points keeps its place."""
  x2 = jnp.sum(x * x, axis=1)

  def to(point):  # squared distances of all rows to one point
    return jnp.maximum(x2 - 2 * (x @ point) + jnp.sum(point * point), 0.0)

  first = jax.random.randint(jax.random.fold_in(key, 0), (), 0, x.shape[0])
  centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])

  def seed(i, carry):  # the next center: a point drawn with probability ~ its distance^2
    centers, nearest = carry
    logits = jnp.log(jnp.maximum(nearest, 1e-30))
    pick = jax.random.categorical(jax.random.fold_in(key, i), logits)
    return centers.at[i].set(x[pick]), jnp.minimum(nearest, to(x[pick]))

  centers, _ = jax.lax.fori_loop(1, k, seed, (centers, to(x[first])))

  def lloyd(_, centers):
    nearest = jnp.argmin(_sq_distances(x, centers), axis=1)
    sums = jax.ops.segment_sum(x, nearest, num_segments=k)
    counts = jax.ops.segment_sum(jnp.ones_like(x[:, :1]), nearest, num_segments=k)
    return jnp.where(counts > 0, sums / jnp.maximum(counts, 1), centers)

  return jax.lax.fori_loop(0, iterations, lloyd, centers)


def assign(x: jax.Array, centers: jax.Array) -> np.ndarray:
  """The nearest center of each row of x, (N,) int32."""
  return np.asarray(jnp.argmin(_sq_distances(x, centers), axis=1), np.int32)


def cluster_labels(images: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
  """(N,) int32 labels in [0, k): the k-means cluster of each image."""
  if k > len(images):
    raise ConfigError(f'config.data.clusters={k} is more than the {len(images)} training images')
  x = features(images)
  return assign(x, kmeans(x, k, jax.random.PRNGKey(seed)))


def frequencies(labels: np.ndarray, k: int) -> tuple[float, ...]:
  """The fraction of the labels in each of the k values: how the fake labels are drawn."""
  counts = np.bincount(labels, minlength=k).astype(np.float64)
  return tuple(float(c) for c in counts / counts.sum())
