"""The CIFAR-10 feature classifier: an offline stand-in for Inception on 32x32 RGB images.

Where no Inception weights exist (air-gapped clusters, CI, this machine) the CIFAR recipes are
measured in this network's features. It is NOT the FID Inception network: numbers in its space
(reported with `features: cifar10_classifier`) track training progress and compare runs of
jaxgan with each other, never with papers. Its trained weights ship with jaxgan
(`cifar10_classifier.msgpack`, made by `python -m jaxgan.evaluation.train_classifier
--dataset=cifar10`; how, and its test accuracy, in `cifar10_classifier.json`).
"""

import functools
import os

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import files
from jaxgan.evaluation import classifier
from jaxgan.gan import PyTree

WEIGHTS_PATH = os.path.join(os.path.dirname(__file__), 'cifar10_classifier.msgpack')
WIDTHS = (16, 32, 64, 128)
FEATURE_DIM = WIDTHS[-1]
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)


class CIFARClassifier(nn.Module):
  """A small VGG-style CNN for 32x32 RGB in [-1, 1]: a 3x3 conv, then per width one block of
  conv, 2x2 max pool, conv (each with batch norm and ReLU), a global max pool and a dense layer.
  The pooled activations of the last block are the features."""

  widths: tuple[int, ...] = WIDTHS

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    """Returns (logits (N, 10), features (N, widths[-1]))."""

    def conv_bn_relu(x, width):
      x = nn.Conv(width, (3, 3), use_bias=False)(x)
      return nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))

    x = conv_bn_relu(x, self.widths[0])
    for width in self.widths[1:]:
      x = nn.Conv(width, (3, 3), use_bias=False)(x)
      n, h, w, c = x.shape  # 2x2 max pool as a reshape: its gradient is fast on XLA:CPU
      x = x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
      x = conv_bn_relu(x, width)
    features = x.max(axis=(1, 2))
    return nn.Dense(NUM_CLASSES)(features), features


def init_variables(key: jax.Array) -> PyTree:
  """Fresh {'params', 'batch_stats'} for `CIFARClassifier()`."""
  return CIFARClassifier().init(key, jnp.zeros((1, *IMAGE_SHAPE)))


@functools.cache
def load_variables(path: str = WEIGHTS_PATH) -> PyTree:
  """The shipped (or given) trained variables, read once per process."""
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except FileNotFoundError:
    raise FileNotFoundError(
      f'{path}: the CIFAR-10 classifier weights are missing; make them with '
      '`python -m jaxgan.evaluation.train_classifier --dataset=cifar10 --data_dir=CIFAR_JPEGS`'
    ) from None
  return jax.tree.map(jnp.asarray, flax.serialization.msgpack_restore(data))


def save_variables(path: str, variables: PyTree) -> None:
  """Writes variables as msgpack (float32 numpy arrays), atomically."""
  files.write_bytes(path, flax.serialization.msgpack_serialize(jax.tree.map(np.asarray, variables)))


@jax.jit
def _apply(variables: PyTree, images: jax.Array) -> tuple[jax.Array, jax.Array]:
  logits, features = CIFARClassifier().apply(variables, images)
  return features, jax.nn.softmax(logits)


def classify(
  images: np.ndarray, variables: PyTree | None = None, batch_size: int = 500
) -> tuple[np.ndarray, np.ndarray]:
  """(features (N, 128), class probabilities (N, 10)) for (N, 32, 32, 3) images, uint8 pixels
  or floats in [-1, 1], in fixed-size batches (the last one padded) so it compiles once."""
  variables = load_variables() if variables is None else variables
  return classifier.in_batches(_apply, variables, images, batch_size)
