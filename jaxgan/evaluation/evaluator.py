"""Sample quality of a generator: generated vs real images, in a feature network's space.

`evaluate_generator` (generated vs real test images), `reference_metrics` (real training vs
real test images: what a perfect generator would score), `make_generate_fn` (a jaxgan GAN as a
`generate_fn`), and `Evaluator`, which the trainer calls. Which feature network measures a
dataset is the data source's choice (`FEATURES`); the metrics are those registered in
`jaxgan.evaluation.registry`.
"""

import hashlib
import importlib.metadata

import numpy as np

import jaxgan
from jaxgan import data
from jaxgan.errors import ConfigError
from jaxgan.evaluation import features as features_lib
from jaxgan.evaluation import registry
from jaxgan.evaluation.features import Embedding
from jaxgan.gan import GAN
from jaxgan.sampling import GenerateFn, generate, make_generate_fn
from jaxgan.state import GANState

DEFAULT_FEATURES = 'mnist_classifier'
SUBSET_SEED = 0  # which real images are compared when there are more than num_samples


def _subset(images: np.ndarray, n: int) -> np.ndarray:
  """`n` images drawn without replacement with a fixed seed (all of them if there are fewer)."""
  if n >= len(images):
    return images
  order = np.random.default_rng(SUBSET_SEED).permutation(len(images))[:n]
  return images[np.sort(order)]


_EMBEDDINGS: dict[tuple, Embedding] = {}


def _embed_cached(net, images: np.ndarray) -> Embedding:
  """`net.embed`, remembered per process: the trainer compares with the same real images."""
  digest = hashlib.sha1(np.ascontiguousarray(images)).hexdigest()
  key = (net.name, getattr(net, 'sha256', None), getattr(net, 'resize', None))
  key += (images.shape, images.dtype.str, digest)
  if key not in _EMBEDDINGS:
    if len(_EMBEDDINGS) >= 4:
      _EMBEDDINGS.pop(next(iter(_EMBEDDINGS)))
    _EMBEDDINGS[key] = net.embed(images)
  return _EMBEDDINGS[key]


def evaluate_images(
  fake_images: np.ndarray,
  real_images: np.ndarray,
  num_samples: int | None = None,
  features=DEFAULT_FEATURES,
) -> dict[str, float]:
  """Metrics of `fake_images` against `num_samples` of `real_images` (uint8 or [-1, 1]).

  num_samples defaults to len(fake_images). `features`: a feature network or its name.
  """
  net = features_lib.get(features)
  net.check(fake_images.shape)
  if fake_images.shape[1:] != real_images.shape[1:]:
    raise ValueError(f'fake images {fake_images.shape} and real {real_images.shape} differ')
  n = len(fake_images) if num_samples is None else num_samples
  real = _embed_cached(net, _subset(real_images, n))
  return registry.compare(real, net.embed(fake_images[:n]))


def embed_real(net, images: np.ndarray, num_samples: int) -> Embedding:
  """`net`'s embedding of `num_samples` of `images` (all if fewer), the same ones every time."""
  return _embed_cached(net, _subset(images, num_samples))


def embed_generated(
  generate_fn: GenerateFn, net, image_shape: tuple, num_samples: int, seed: int = 0
) -> Embedding:
  """`net`'s embedding of `num_samples` images of `generate_fn` (see `evaluate_generator`),
  which must be of `image_shape` (H, W, C)."""
  parts = []
  for batch in generate(generate_fn, num_samples, seed):
    if batch.shape[1:] != tuple(image_shape):
      raise ValueError(f'generated images {batch.shape} do not match real {tuple(image_shape)}')
    parts.append(net.embed(batch))  # batch by batch: all the images at once can be large
  return Embedding(
    np.concatenate([p.features for p in parts]),
    None if parts[0].probs is None else np.concatenate([p.probs for p in parts]),
  )


def evaluate_generator(
  generate_fn: GenerateFn,
  real_images: np.ndarray,
  num_samples: int = 10_000,
  seed: int = 0,
  features=DEFAULT_FEATURES,
) -> dict[str, float]:
  """Metrics of `num_samples` generated images against as many `real_images` (uint8, NHWC).

  `generate_fn(key)` returns a batch of images in [-1, 1] (any fixed batch size); it is
  called with keys `fold_in(PRNGKey(seed), i)`, i = 0, 1, ..., until num_samples are made.
  Use `make_generate_fn(gan, state)` for a jaxgan GAN. `features`: a feature network or its
  name.
  """
  net = features_lib.get(features)
  net.check(real_images.shape)
  fake = embed_generated(generate_fn, net, real_images.shape[1:], num_samples, seed)
  return registry.compare(embed_real(net, real_images, num_samples), fake)


_REFERENCE: dict[tuple, dict[str, float]] = {}


def reference_metrics(
  train_images: np.ndarray,
  test_images: np.ndarray,
  num_samples: int = 10_000,
  features=DEFAULT_FEATURES,
) -> dict[str, float]:
  """The metrics of real data: `num_samples` training images measured as if generated.

  The floor a perfect generator would reach at this num_samples. Remembered per process.
  """
  key = tuple(
    hashlib.sha1(np.ascontiguousarray(x)).hexdigest() for x in (train_images, test_images)
  )
  net = features_lib.get(features)
  key += (num_samples, net.name, getattr(net, 'sha256', None), getattr(net, 'resize', None))
  if key not in _REFERENCE:
    fake = _subset(train_images, num_samples)
    _REFERENCE[key] = evaluate_images(fake, test_images, num_samples, net)
  return _REFERENCE[key]


def jaxgan_version() -> str:
  """The installed package's version, or the source tree's when it is not installed."""
  try:
    return importlib.metadata.version('jaxgan')
  except importlib.metadata.PackageNotFoundError:
    return jaxgan.__version__


def protocol(net, num_generated: int, num_reference: int, reference_split: str) -> dict:
  """How a report's numbers were measured, so that two reports can be told comparable or not:
  sample counts (FID and KID depend on them), the reference images, the feature network and
  its weights, the resizing, and the code."""
  return {
    'num_generated': int(num_generated),
    'num_reference': int(num_reference),
    'reference_split': reference_split,
    **features_lib.describe(net),
    'jaxgan_version': jaxgan_version(),
  }


class Evaluator:
  """Evaluation during training: the run's generator against the test split of its dataset.

  The same latents every time (from `seed`), so successive evaluations compare fairly.
  `features` names the feature network ('': the data source's `FEATURES`); 'inception' reads
  its weights from `inception_weights` ('': found as inception_weights.locate says) here, at
  setup, so that missing weights stop the run before it trains. `protocol` says how it measures.
  """

  def __init__(
    self, data_config, num_samples: int, seed: int, features: str = '', inception_weights=''
  ):
    source = data.get(data_config.name)
    features = features or getattr(source, 'FEATURES', None)
    if not features:
      shape = data.image_shape(data_config)
      raise ConfigError(features_lib.none_of_its_own(data_config.name, shape))
    try:
      self.net = features_lib.get(features, inception_weights)
    except ValueError as e:
      raise ConfigError(f'config.eval_features: {e}') from None
    self.features = self.net.name
    split = data.reference_split(data_config)  # 'train' where there is no test split
    self.test_images = data.load_dataset(data_config, split).images
    try:
      self.net.check(self.test_images.shape)
    except ValueError as e:
      raise ConfigError(f'config.eval_features={self.features!r} cannot measure {e}') from None
    self.num_samples, self.seed = num_samples, seed
    self.protocol = protocol(self.net, num_samples, min(num_samples, len(self.test_images)), split)

  def __call__(self, gan: GAN, state: GANState) -> dict[str, float]:
    generate_fn = make_generate_fn(gan, state)
    return evaluate_generator(generate_fn, self.test_images, self.num_samples, self.seed, self.net)
