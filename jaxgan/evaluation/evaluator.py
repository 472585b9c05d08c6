"""Sample quality of a generator: generated vs real images, in a feature network's space.

`evaluate_generator` (generated vs real test images), `reference_metrics` (real training vs
real test images: what a perfect generator would score), `make_generate_fn` (a jaxgan GAN as a
`generate_fn`), and `Evaluator`, which the trainer calls. Which feature network measures a
dataset is the data source's choice (`FEATURES`); the metrics are those registered in
`jaxgan.evaluation.registry`.
"""

import hashlib
import importlib.metadata
import os
import zipfile

import numpy as np
from absl import logging

import jaxgan
from jaxgan import data, files
from jaxgan.data import cache
from jaxgan.errors import ConfigError
from jaxgan.evaluation import features as features_lib
from jaxgan.evaluation import registry
from jaxgan.evaluation.features import Embedding
from jaxgan.gan import GAN
from jaxgan.sampling import GenerateFn, generate, make_generate_fn
from jaxgan.state import GANState

DEFAULT_FEATURES = 'mnist_classifier'
SUBSET_SEED = 0  # which real images are compared when there are more than num_samples


def subset_indices(count: int, n: int) -> np.ndarray:
  """Which `n` of `count` real images are compared: drawn without replacement with a fixed
  seed, in order (all of them if there are fewer)."""
  if n >= count:
    return np.arange(count)
  return np.sort(np.random.default_rng(SUBSET_SEED).permutation(count)[:n])


def _subset(images: np.ndarray, n: int) -> np.ndarray:
  return images if n >= len(images) else images[subset_indices(len(images), n)]


_EMBEDDINGS: dict[tuple, Embedding] = {}


def _embed_cached(net, images: np.ndarray) -> Embedding:
  """`net.embed`, remembered per process (the trainer compares with the same real images) and,
  for networks that set `cache_real_embeddings`, on disk (`embedding_cache_path`)."""
  digest = hashlib.sha1(np.ascontiguousarray(images)).hexdigest()
  key = (net.name, getattr(net, 'sha256', None), getattr(net, 'resize', None))
  key += (images.shape, images.dtype.str, digest)
  if key not in _EMBEDDINGS:
    if len(_EMBEDDINGS) >= 4:
      _EMBEDDINGS.pop(next(iter(_EMBEDDINGS)))
    path = embedding_cache_path(net, images, digest)
    _EMBEDDINGS[key] = _embed_on_disk(net, images, path) if path else net.embed(images)
  return _EMBEDDINGS[key]


def embedding_cache_path(net, images: np.ndarray, digest: str = '') -> str:
  """Where `net`'s embedding of these real images is kept between processes, or '' where it
  is not: only for networks slow enough to need it (`cache_real_embeddings`: the FID
  Inception network, about 20 minutes per 10,000 images on a CPU) and with weights known by
  their hash. $JAXGAN_CACHE/features (default ~/.cache/jaxgan/features), as StyleGAN2-ADA
  keeps its datasets' statistics; deleting the folder is always safe."""
  if not getattr(net, 'cache_real_embeddings', False) or not getattr(net, 'sha256', None):
    return ''
  key = {
    'features': net.name,
    'sha256': net.sha256,
    'resize': getattr(net, 'resize', None),
    'images': [list(images.shape), images.dtype.str],
    'images_sha1': digest or hashlib.sha1(np.ascontiguousarray(images)).hexdigest(),
  }
  return f'{cache.path_for("", "features", key)}.npz'


CACHE_CHUNK = 5_000  # images per part file: a long embedding cut short resumes from its parts


def _read_embedding(path: str, count: int) -> Embedding | None:
  try:
    with np.load(path, allow_pickle=False) as f:
      found = Embedding(f['features'], f['probs'] if 'probs' in f.files else None)
    if len(found.features) == count:
      return found
    logging.warning('ignoring %s: it does not hold this embedding', path)
  except FileNotFoundError:
    pass
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
    logging.warning('ignoring unreadable %s: %s', path, e)
  return None


def _write_embedding(path: str, embedding: Embedding) -> None:
  arrays = {'features': embedding.features}
  if embedding.probs is not None:
    arrays['probs'] = embedding.probs
  try:
    with files.atomic_path(path, suffix='.npz') as tmp:
      np.savez(tmp, **arrays)
  except OSError as e:  # a read-only cache costs the next evaluation time, not this one
    logging.warning('could not keep the embedding in %s: %s', path, e)


def _embed_on_disk(net, images: np.ndarray, path: str) -> Embedding:
  """The embedding kept in `path`, else embedded and kept there; more than CACHE_CHUNK images
  in parts, each kept until the whole is."""
  found = _read_embedding(path, len(images))
  if found is not None:
    logging.info('%s features of %d real images read from %s', net.name, len(images), path)
    return found
  if len(images) <= CACHE_CHUNK:
    embedding = net.embed(images)
  else:
    parts, part_paths = [], []
    for start in range(0, len(images), CACHE_CHUNK):
      stop = min(start + CACHE_CHUNK, len(images))
      part_paths.append(f'{path[: -len(".npz")]}.{start}-{stop}.npz')
      part = _read_embedding(part_paths[-1], stop - start)
      if part is None:
        logging.info('embedding real images %d-%d of %d', start, stop, len(images))
        part = net.embed(images[start:stop])
        _write_embedding(part_paths[-1], part)
      parts.append(part)
    embedding = Embedding(
      np.concatenate([p.features for p in parts]),
      None if parts[0].probs is None else np.concatenate([p.probs for p in parts]),
    )
  _write_embedding(path, embedding)
  if len(images) > CACHE_CHUNK and os.path.exists(path):
    for part_path in part_paths:
      if os.path.exists(part_path):
        os.unlink(part_path)
  return embedding


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
