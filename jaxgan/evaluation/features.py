"""Feature networks by name: what the sample-quality metrics look at images through.

A feature network is an object with `name`, `embed(images) -> Embedding` (uint8 or [-1, 1]
images, NHWC) and `check(image_shape)`, raising ValueError for images it cannot measure, and
for the protocol every report carries, `sha256` (of its weights file) and `resize` (how images
are brought to its input size; the FID Inception network also says which `weights`).
`register(net)` adds one; a data source names its own in `FEATURES` (jaxgan.data). 'inception'
is built on first use from a weights file, given or found (`inception(path)`;
jaxgan.evaluation.inception and inception_weights).
"""

import functools
import hashlib
import os

import numpy as np

from jaxgan import registry as registry_lib
from jaxgan.evaluation import cifar_classifier, classifier
from jaxgan.evaluation import inception as inception_lib
from jaxgan.evaluation.embedding import Embedding


@functools.cache
def file_sha256(path: str) -> str:
  """The SHA-256 of a shipped weights file, read once per process."""
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


class MNISTClassifier:
  """jaxgan's own MNIST classifier (classifier.py): 128-d features and 10 digit probabilities
  per channel, so a 3-channel Stacked MNIST image is three digits (features concatenated)."""

  name = 'mnist_classifier'
  resize = 'none'  # 28x28 in, 28x28 measured
  measures = '28x28 images, 1 or 3 channels'

  @property
  def sha256(self) -> str:
    return file_sha256(classifier.WEIGHTS_PATH)

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


class MNISTClassifierCentre(MNISTClassifier):
  """The MNIST classifier on the 28x28 centre of evenly padded images (Stacked MNIST with
  data.pad > 0, e.g. 32x32 for R3GAN): the same numbers as on the images before padding."""

  name = 'mnist_classifier_centre'
  measures = 'the 28x28 centre of square images padded evenly, 1 or 3 channels'

  def check(self, image_shape: tuple[int, ...]) -> None:
    h, w, c = image_shape[-3:]
    if h != w or h <= 28 or (h - 28) % 2 or c not in (1, 3):
      raise ValueError(
        f'images of shape {tuple(image_shape)}: mnist_classifier_centre measures the 28x28 '
        'centre of square images padded evenly (30x30, 32x32, ...), 1 or 3 channels'
      )

  def embed(self, images: np.ndarray) -> Embedding:
    p = (images.shape[1] - 28) // 2
    return super().embed(np.asarray(images)[:, p:-p, p:-p])


class CIFAR10Classifier:
  """jaxgan's own CIFAR-10 classifier (cifar_classifier.py), NOT the FID Inception network:
  128-d features and 10 class probabilities for 32x32 RGB images. Its numbers compare jaxgan
  runs with each other, not with papers."""

  name = 'cifar10_classifier'
  resize = 'none'  # 32x32 in, 32x32 measured
  measures = '32x32 RGB images'

  @property
  def sha256(self) -> str:
    return file_sha256(cifar_classifier.WEIGHTS_PATH)

  def check(self, image_shape: tuple[int, ...]) -> None:
    if tuple(image_shape[-3:]) != cifar_classifier.IMAGE_SHAPE:
      raise ValueError(
        f'images of shape {tuple(image_shape)}: the CIFAR-10 classifier measures 32x32 RGB '
        'images (use eval_features=inception for other sizes)'
      )

  def embed(self, images: np.ndarray) -> Embedding:
    features, probs = cifar_classifier.classify(images)
    return Embedding(features, probs[:, None])


_REGISTRY = registry_lib.Registry(
  'feature network',
  'eval_features, --features',
  {net.name: net for net in (MNISTClassifier(), MNISTClassifierCentre(), CIFAR10Classifier())},
)
INCEPTION = 'inception'  # not registered: built from the user's weights file on first use


def register(net) -> None:
  _REGISTRY.register(net.name, net)


def names() -> tuple[str, ...]:
  return (*_REGISTRY.names(), *(() if INCEPTION in _REGISTRY else (INCEPTION,)))


_INCEPTIONS: dict[tuple[str, bool], object] = {}


def inception(path: str = '', allow_unverified: bool = False, resize: str = ''):
  """The FID Inception network with the weights at `path` ('': found as
  jaxgan.evaluation.inception_weights.locate says), loaded once per process and file, resizing
  images as `resize` says ('': pytorch-fid's). Raises a one-line JaxganError without usable
  weights, and ValueError for an unknown resize."""
  if resize and resize not in inception_lib.RESIZES:
    raise ValueError(f'unknown resize {resize!r}; known: {", ".join(inception_lib.RESIZES)}')
  path = path or os.environ.get(inception_lib.ENV_VAR, '')
  key = (os.path.abspath(path) if path else '', allow_unverified)
  if key not in _INCEPTIONS:
    _INCEPTIONS[key] = inception_lib.load(path or None, allow_unverified)
  net = _INCEPTIONS[key]
  return net.with_resize(resize) if resize and resize != net.resize else net


def get(name, inception_weights: str = '', allow_unverified: bool = False, resize: str = ''):
  """The feature network named `name` (a network object is returned as it is); 'inception',
  unless one was registered under that name, is loaded with `inception(...)`."""
  if not isinstance(name, str):
    return name
  if name == INCEPTION and name not in _REGISTRY:
    return inception(inception_weights, allow_unverified, resize)
  if name not in _REGISTRY:
    raise registry_lib.UnknownName(
      f'unknown feature network {name!r} ({_REGISTRY.key}); known: {", ".join(names())}'
    )
  return _REGISTRY.get(name)


def options(image_shape) -> str:
  """Which feature networks can measure images of `image_shape` (None: unknown), and what
  each of the others measures: for errors that name every way on."""
  can, cannot = [f'{INCEPTION} (the FID network, RGB images of any size)'], []
  for net in _REGISTRY.values():
    try:
      if image_shape is None:
        raise ValueError(getattr(net, 'measures', ''))
      net.check(tuple(image_shape))
      can.append(net.name)
    except ValueError:
      cannot.append(f'{net.name} ({getattr(net, "measures", "other images")})')
  shape = 'these images' if image_shape is None else 'x'.join(map(str, image_shape)) + ' images'
  return f'for {shape}: {", ".join(can)}' + (f'; not {", ".join(cannot)}' if cannot else '')


def none_of_its_own(data_name: str, image_shape) -> str:
  """The error for a training run that evaluates data without a feature network of its own."""
  return (
    f'data.name={data_name!r} has no feature network of its own: set eval_features '
    f'({options(image_shape)}), or eval_every=0'
  )


def describe(net) -> dict[str, str]:
  """Which network measured, with which weights and input resizing: for every report."""
  out = {
    'features': net.name,
    'features_sha256': getattr(net, 'sha256', None) or 'unknown',
    'resize': getattr(net, 'resize', None) or 'unknown',
  }
  if getattr(net, 'weights', None):
    out['weights'] = net.weights
  return out
