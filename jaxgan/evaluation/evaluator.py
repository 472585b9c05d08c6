"""Sample quality of a generator, measured with the MNIST feature classifier.

One channel (MNIST): fid, classifier_score, precision, recall, class_kl, classes_covered.
Three channels (Stacked MNIST): fid, precision, recall, modes_covered, mode_kl; each channel
is classified as a digit and the features of the three channels are concatenated.
"""

import functools
import hashlib
from collections.abc import Callable, Iterator

import jax
import numpy as np

from jaxgan import steps
from jaxgan.evaluation import classifier, metrics
from jaxgan.state import GAN, GANState

DEFAULT_NUM_SAMPLES = {1: 10_000, 3: 26_000}  # by channel count: MNIST, Stacked MNIST
NUM_MODES = 1000  # Stacked MNIST: three digits
# A class counts as covered when it holds at least 1% of the samples (a tenth of its share
# under a uniform spread), so that a few misclassified samples do not count as a class.
MIN_CLASS_FRACTION = 0.01
SUBSET_SEED = 0  # which real images are compared when there are more than num_samples

GenerateFn = Callable[[jax.Array], jax.Array]


def default_num_samples(image_shape: tuple[int, ...]) -> int:
  """10,000 for MNIST-like (one channel), 26,000 for Stacked MNIST (three channels)."""
  return DEFAULT_NUM_SAMPLES[_channels(image_shape)]


def _channels(image_shape: tuple[int, ...]) -> int:
  channels = image_shape[-1]
  if tuple(image_shape[-3:-1]) != (28, 28) or channels not in DEFAULT_NUM_SAMPLES:
    raise ValueError(
      f'images of shape {tuple(image_shape)}: the MNIST classifier measures 28x28 images with '
      '1 channel (MNIST) or 3 (Stacked MNIST)'
    )
  return channels


def embed(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(features (N, C*128), class probabilities (N, C, 10)) of uint8 or [-1, 1] images.

  Each of the C channels is classified as one digit.
  """
  n, h, w, c = images.shape
  digits = np.moveaxis(np.asarray(images), -1, 1).reshape(n * c, h, w, 1)
  features, probs = classifier.classify(digits)
  return features.reshape(n, c * classifier.FEATURE_DIM), probs.reshape(n, c, -1)


def _subset(images: np.ndarray, n: int) -> np.ndarray:
  """`n` images drawn without replacement with a fixed seed (all of them if there are fewer)."""
  if n >= len(images):
    return images
  order = np.random.default_rng(SUBSET_SEED).permutation(len(images))[:n]
  return images[np.sort(order)]


_EMBEDDINGS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _embed_cached(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """`embed`, remembered per process: the trainer compares with the same real images each time."""
  key = (images.shape, images.dtype.str, hashlib.sha1(np.ascontiguousarray(images)).hexdigest())
  if key not in _EMBEDDINGS:
    if len(_EMBEDDINGS) >= 4:
      _EMBEDDINGS.pop(next(iter(_EMBEDDINGS)))
    _EMBEDDINGS[key] = embed(images)
  return _EMBEDDINGS[key]


def compare(
  real: tuple[np.ndarray, np.ndarray], fake: tuple[np.ndarray, np.ndarray]
) -> dict[str, float]:
  """All metrics of `fake` against `real`, each an `embed` result (features, probs)."""
  real_features, _ = real
  fake_features, fake_probs = fake
  out = {'fid': metrics.fid(real_features, fake_features)}
  out['precision'], out['recall'] = metrics.precision_recall(real_features, fake_features)
  classes = fake_probs.argmax(-1)  # (N, C)
  if classes.shape[1] == 1:
    out['classifier_score'] = metrics.classifier_score(fake_probs[:, 0])
    out['class_kl'] = metrics.kl_from_uniform(classes[:, 0], classifier.NUM_CLASSES)
    out['classes_covered'] = metrics.num_covered(
      classes[:, 0], classifier.NUM_CLASSES, MIN_CLASS_FRACTION
    )
  else:
    modes = classes @ np.array([100, 10, 1])
    out['modes_covered'] = metrics.num_covered(modes, NUM_MODES)
    out['mode_kl'] = metrics.kl_from_uniform(modes, NUM_MODES)
  return out


def evaluate_images(
  fake_images: np.ndarray, real_images: np.ndarray, num_samples: int | None = None
) -> dict[str, float]:
  """Metrics of `fake_images` against `num_samples` of `real_images` (uint8 or [-1, 1]).

  num_samples defaults to len(fake_images).
  """
  _channels(fake_images.shape)
  if fake_images.shape[1:] != real_images.shape[1:]:
    raise ValueError(f'fake images {fake_images.shape} and real {real_images.shape} differ')
  n = len(fake_images) if num_samples is None else num_samples
  return compare(_embed_cached(_subset(real_images, n)), embed(fake_images[:n]))


def generate(generate_fn: GenerateFn, num_samples: int, seed: int = 0) -> Iterator[np.ndarray]:
  """Batches of `num_samples` images in all: generate_fn(fold_in(PRNGKey(seed), i)), i = 0, 1..."""
  key = jax.random.PRNGKey(seed)
  made, i = 0, 0
  while made < num_samples:
    batch = np.asarray(jax.device_get(generate_fn(jax.random.fold_in(key, i))))
    batch = batch[: num_samples - made]
    yield batch
    made, i = made + len(batch), i + 1


def evaluate_generator(
  generate_fn: GenerateFn,
  real_images: np.ndarray,
  num_samples: int | None = None,
  seed: int = 0,
) -> dict[str, float]:
  """Metrics of `num_samples` generated images against as many `real_images` (uint8, NHWC).

  `generate_fn(key)` returns a batch of images in [-1, 1] (any fixed batch size); it is
  called with keys `fold_in(PRNGKey(seed), i)`, i = 0, 1, ..., until num_samples are made.
  num_samples defaults to 10,000 for one channel, 26,000 for three (Stacked MNIST).
  Use `make_generate_fn(gan, state)` for a jaxgan GAN.
  """
  n = default_num_samples(real_images.shape) if num_samples is None else num_samples
  features, probs = [], []
  for batch in generate(generate_fn, n, seed):
    if batch.shape[1:] != real_images.shape[1:]:
      raise ValueError(f'generated images {batch.shape} do not match real {real_images.shape}')
    f, p = embed(batch)  # batch by batch: 26,000 3-channel images would take 245 MB
    features.append(f)
    probs.append(p)
  fake = np.concatenate(features), np.concatenate(probs)
  return compare(_embed_cached(_subset(real_images, n)), fake)


_REFERENCE: dict[tuple, dict[str, float]] = {}


def reference_metrics(
  train_images: np.ndarray, test_images: np.ndarray, num_samples: int | None = None
) -> dict[str, float]:
  """The metrics of real data: `num_samples` training images measured as if generated.

  The floor a perfect generator would reach at this num_samples. Remembered per process.
  """
  n = default_num_samples(test_images.shape) if num_samples is None else num_samples
  key = tuple(
    hashlib.sha1(np.ascontiguousarray(x)).hexdigest() for x in (train_images, test_images)
  )
  if (key, n) not in _REFERENCE:
    _REFERENCE[key, n] = evaluate_images(_subset(train_images, n), test_images, n)
  return _REFERENCE[key, n]


@functools.cache
def _generator(gan: GAN, batch_size: int) -> Callable:
  def generate(g_params, g_vars, key):
    z = gan.sample_latent(key, batch_size)
    # A conditional GAN is measured on classes drawn uniformly, like the data's.
    y = None
    if gan.num_classes:
      y = jax.random.randint(jax.random.fold_in(key, 1), (batch_size,), 0, gan.num_classes)
    return steps.apply(gan.generator, g_params, g_vars, z, False, y)[0]

  return jax.jit(generate)


def make_generate_fn(gan: GAN, state: GANState, batch_size: int = 500) -> GenerateFn:
  """generate_fn(key) -> batch_size images of `state`'s generator (inference mode).

  Uses G's EMA parameters (the same as G's own when train.ema_decay is 0). Compiled once per
  (gan, batch_size): a new state reuses the compiled function.
  """
  return functools.partial(_generator(gan, batch_size), state.g_ema_params, state.g_vars)
