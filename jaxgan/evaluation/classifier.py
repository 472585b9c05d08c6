"""The MNIST feature classifier whose features and predictions the sample-quality metrics use.

Its trained weights ship with jaxgan (`mnist_classifier.msgpack`, made by
`python -m jaxgan.evaluation.train_classifier`), so every machine measures with the same network.
"""

import functools
import os

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import files
from jaxgan.gan import PyTree
from jaxgan.images import to_float

WEIGHTS_PATH = os.path.join(os.path.dirname(__file__), 'mnist_classifier.msgpack')
FEATURE_DIM = 128
NUM_CLASSES = 10


class Classifier(nn.Module):
  """A small CNN for 28x28x1 digits in [-1, 1]: three conv+pool stages, dense 128, dense 10."""

  features: tuple[int, ...] = (32, 64, 64)
  hidden: int = FEATURE_DIM

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns (logits (N, 10), penultimate features (N, hidden))."""
    for f in self.features:
      x = _max_pool_2x2(nn.relu(nn.Conv(f, (3, 3))(x)))  # 28 -> 14 -> 7 -> 3
    features = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
    return nn.Dense(NUM_CLASSES)(features), features


def _max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max pooling, stride 2, odd edges dropped (as nn.max_pool with VALID padding)."""
  # A reshape and max: its gradient is several times faster on XLA:CPU than that of
  # nn.max_pool (select-and-scatter), which would dominate the training time.
  n, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2]
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def init_params(key: jax.Array) -> PyTree:
  """Fresh parameters for `Classifier()`."""
  return Classifier().init(key, jnp.zeros((1, 28, 28, 1)))['params']


@functools.cache
def load_params(path: str = WEIGHTS_PATH) -> PyTree:
  """The shipped (or given) trained parameters, read once per process."""
  with open(path, 'rb') as f:
    return jax.tree.map(jnp.asarray, flax.serialization.msgpack_restore(f.read()))


def save_params(path: str, params: PyTree) -> None:
  """Writes parameters as msgpack (float32 numpy arrays), atomically."""
  files.write_bytes(path, flax.serialization.msgpack_serialize(jax.tree.map(np.asarray, params)))


@jax.jit
def _apply(params: PyTree, images: jax.Array) -> tuple[jax.Array, jax.Array]:
  logits, features = Classifier().apply({'params': params}, images)
  return features, jax.nn.softmax(logits)


def classify(
  images: np.ndarray, params: PyTree | None = None, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
  """(features (N, 128), class probabilities (N, 10)) for (N, 28, 28, 1) images.

  `images` are uint8 pixels or floats in [-1, 1]. Runs in fixed-size batches (the last one
  padded) so that the jitted network compiles once.
  """
  params = load_params() if params is None else params
  return in_batches(_apply, params, images, batch_size)


def in_batches(apply, weights: PyTree, images: np.ndarray, batch_size: int):
  """(features, probabilities) of `apply(weights, batch)` over `images` (uint8 or [-1, 1]) in
  fixed-size float32 batches, the last one padded, so that the jitted network compiles once."""
  n = images.shape[0]
  features, probs = [], []
  for start in range(0, n, batch_size):
    batch = to_float(np.asarray(images[start : start + batch_size]))
    if batch.shape[0] < batch_size and n > batch_size:
      batch = np.concatenate([batch, np.zeros((batch_size - batch.shape[0], *batch.shape[1:]))])
    f, p = jax.device_get(apply(weights, batch.astype(np.float32)))
    features.append(f)
    probs.append(p)
  return np.concatenate(features)[:n], np.concatenate(probs)[:n]
