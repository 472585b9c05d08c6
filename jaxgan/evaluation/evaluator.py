"""Sample quality of a generator: generated vs real images, in a feature network's space.

`evaluate_generator` (generated vs real test images), `reference_metrics` (real training vs
real test images: what a perfect generator would score), `make_generate_fn` (a jaxgan GAN as a
`generate_fn`), and `Evaluator`, which the trainer calls. Which feature network measures a
dataset is the data source's choice (`FEATURES`); the metrics are those registered in
`jaxgan.evaluation.registry`.
"""

import functools
import hashlib
import importlib.metadata
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

import jaxgan
from jaxgan import data, steps
from jaxgan.errors import ConfigError
from jaxgan.evaluation import features as features_lib
from jaxgan.evaluation import registry
from jaxgan.evaluation.features import Embedding
from jaxgan.gan import GAN, PyTree
from jaxgan.state import GANState

DEFAULT_FEATURES = 'mnist_classifier'
SUBSET_SEED = 0  # which real images are compared when there are more than num_samples

GenerateFn = Callable[[jax.Array], jax.Array]


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


def generate(generate_fn: GenerateFn, num_samples: int, seed: int = 0) -> Iterator[np.ndarray]:
  """Batches of `num_samples` images in all: generate_fn(fold_in(PRNGKey(seed), i)), i = 0, 1..."""
  key = jax.random.PRNGKey(seed)
  made, i = 0, 0
  while made < num_samples:
    batch = np.asarray(jax.device_get(generate_fn(jax.random.fold_in(key, i))))
    batch = batch[: num_samples - made]
    yield batch
    made, i = made + len(batch), i + 1


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


STANDING_BATCH = 500  # latents per batch of standing statistics
_MOMENTS = ('mean', 'var')  # flax BatchNorm's running statistics


def sampling_vars(gan: GAN, params: PyTree, vars_: dict) -> dict:
  """G's non-param collections for sampling `params`: `vars_` itself, or with
  gan.standing_stats > 0, every batch-norm mean and var replaced by its average over that
  many batches of G in training mode (the same latents every time, so a state's samples are
  reproducible). Other collections (e.g. spectral norm's vectors) are kept as they are."""
  if not gan.standing_stats or not vars_:
    return vars_
  return _standing(gan)(params, vars_)


def _is_moment(path) -> bool:
  return getattr(path[-1], 'key', None) in _MOMENTS


@functools.cache
def _standing(gan: GAN) -> Callable:
  def moments(params, vars_, key, old: float):
    """The running moments after one training-mode batch, from running moments all `old`."""
    start = jax.tree_util.tree_map_with_path(
      lambda p, v: jnp.full_like(v, old) if _is_moment(p) else v, vars_
    )
    z = gan.sample_latent(key, STANDING_BATCH)
    y = _fake_labels(gan, key, STANDING_BATCH)
    return steps.apply(gan.generator, params, start, z, True, y, gan.rngs(key))[1]

  def standing(params, vars_):
    keys = jax.random.split(jax.random.PRNGKey(0), gan.standing_stats)
    # Every moment updates as running = m * old + (1 - m) * batch: starting from 0 gives
    # (1 - m) * batch, and from 1 on the same batch tells m, whatever the layer's momentum.
    first = moments(params, vars_, keys[0], 0.0)
    decay = jax.tree.map(jnp.subtract, moments(params, vars_, keys[0], 1.0), first)
    total = jax.lax.fori_loop(
      1,
      gan.standing_stats,
      lambda i, acc: jax.tree.map(jnp.add, acc, moments(params, vars_, keys[i], 0.0)),
      first,
    )
    return jax.tree_util.tree_map_with_path(
      lambda p, v, t, m: t / (gan.standing_stats * (1 - m)) if _is_moment(p) else v,
      vars_,
      total,
      decay,
    )

  return jax.jit(standing)


def _fake_labels(gan: GAN, key: jax.Array, n: int) -> jax.Array | None:
  """Classes (or InfoGAN codes) drawn as in training, for G's `labels=`; or None."""
  if not gan.g_classes:
    return None
  return gan.sample_labels(jax.random.fold_in(key, 1), n)


@functools.cache
def _generator(gan: GAN, batch_size: int) -> Callable:
  def generate(g_params, g_vars, key):
    z = gan.sample_latent(key, batch_size)
    y = _fake_labels(gan, key, batch_size)
    return steps.apply(gan.generator, g_params, g_vars, z, False, y)[0]

  return jax.jit(generate)


def make_generate_fn(gan: GAN, state: GANState, batch_size: int = 500) -> GenerateFn:
  """generate_fn(key) -> batch_size images of `state`'s generator (inference mode).

  Uses G's EMA parameters (the same as G's own when train.ema_decay is 0), with standing
  batch-norm statistics when gan.standing_stats > 0 (`sampling_vars`). Compiled once per
  (gan, batch_size): a new state reuses the compiled function.
  """
  params = state.g_ema_params
  vars_ = sampling_vars(gan, params, state.g_vars)
  return functools.partial(_generator(gan, batch_size), params, vars_)


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
      raise ConfigError(
        f'no feature network measures data.name={data_config.name!r}: set eval_every=0 '
        'or eval_features=inception'
      )
    try:
      self.net = features_lib.get(features, inception_weights)
    except ValueError as e:
      raise ConfigError(f'config.eval_features: {e}') from None
    self.features = self.net.name
    self.test_images = data.load_dataset(data_config, 'test').images
    try:
      self.net.check(self.test_images.shape)
    except ValueError as e:
      raise ConfigError(f'config.eval_features={self.features!r} cannot measure {e}') from None
    self.num_samples, self.seed = num_samples, seed
    self.protocol = protocol(self.net, num_samples, min(num_samples, len(self.test_images)), 'test')

  def __call__(self, gan: GAN, state: GANState) -> dict[str, float]:
    generate_fn = make_generate_fn(gan, state)
    return evaluate_generator(generate_fn, self.test_images, self.num_samples, self.seed, self.net)
