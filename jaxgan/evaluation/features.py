"""Feature networks by name: what the sample-quality metrics look at images through.

A feature network is an object with `name`, `embed(images) -> Embedding` (uint8 or [-1, 1]
images, NHWC) and `check(image_shape)`, raising ValueError for images it cannot measure.
`register(net)` adds one; a data source names its own in `FEATURES` (jaxgan.data).
"""

from typing import NamedTuple

import numpy as np

from jaxgan.evaluation import classifier


class Embedding(NamedTuple):
  """Features (N, D) of N images, and class probabilities (N, C, K) if the network classifies
  (C: one classification per image, or one per channel as for Stacked MNIST), else None."""

  features: np.ndarray
  probs: np.ndarray | None


class MNISTClassifier:
  """jaxgan's own MNIST classifier (classifier.py): 128-d features and 10 digit probabilities
  per channel, so a 3-channel Stacked MNIST image is three digits (features concatenated)."""

  name = 'mnist_classifier'

  def check(self, image_shape: tuple[int, ...]) -> None:
    if tuple(image_shape[-3:-1]) != (28, 28) or image_shape[-1] not in (1, 3):
      raise ValueError(
        f'images of shape {tuple(image_shape)}: the MNIST classifier measures 28x28 images with '
        '1 channel (MNIST) or 3 (Stacked MNIST)'
      )

  def embed(self, images: np.ndarray) -> Embedding:
    n, h, w, c = images.shape
    digits = np.moveaxis(np.asarray(images), -1, 1).reshape(n * c, h, w, 1)
    features, probs = classifier.classify(digits)
    return Embedding(features.reshape(n, c * classifier.FEATURE_DIM), probs.reshape(n, c, -1))


_REGISTRY = {MNISTClassifier.name: MNISTClassifier()}


def register(net) -> None:
  _REGISTRY[net.name] = net


def get(name: str):
  if name not in _REGISTRY:
    raise ValueError(f'unknown feature network {name!r}; known: {", ".join(_REGISTRY)}')
  return _REGISTRY[name]
