"""Images from a trained generator: what grids, evaluation and `jaxgan.sample` all draw with.

G samples in inference mode (`train=False`: no dropout, no noise of training), from the EMA of
its params (G's own when EMA is off), with BigGAN's standing batch-norm statistics when the GAN
asks for them (`sampling_vars`). Images come out in [-1, 1], NHWC (`jaxgan.images.to_uint8`
makes uint8 of them). G's inputs are drawn by `GAN.sample_inputs(key, n, training=False)`.
"""

import functools
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import steps
from jaxgan.batch import FakeInputs
from jaxgan.gan import GAN, PyTree
from jaxgan.state import GANState

GenerateFn = Callable[[jax.Array], jax.Array]
STANDING_BATCH = 500  # latents per batch of standing statistics
_MOMENTS = ('mean', 'var')  # flax BatchNorm's running statistics


def g_apply(gan: GAN, params: PyTree, vars_: dict, fake: FakeInputs) -> jax.Array:
  """G's images of `fake` in inference mode."""
  return steps.apply(gan.generator, params, vars_, fake.z, False, labels=fake.g_labels)[0]


def generate(generate_fn: GenerateFn, num_samples: int, seed: int = 0) -> Iterator[np.ndarray]:
  """Batches of `num_samples` images in all: generate_fn(fold_in(PRNGKey(seed), i)), i = 0, 1..."""
  key = jax.random.PRNGKey(seed)
  made, i = 0, 0
  while made < num_samples:
    batch = np.asarray(jax.device_get(generate_fn(jax.random.fold_in(key, i))))
    batch = batch[: num_samples - made]
    yield batch
    made, i = made + len(batch), i + 1


@functools.cache
def _generator(gan: GAN, batch_size: int) -> Callable:
  def generate(g_params, g_vars, key):
    return g_apply(gan, g_params, g_vars, gan.sample_inputs(key, batch_size, training=False))

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


def grid_inputs(gan: GAN, key: jax.Array, n: int) -> tuple[FakeInputs, int | None]:
  """(G's inputs, columns) of a sample grid of n images; conditional: a row per class.

  In a conditional grid each column shares one latent, so a row shows one class (or InfoGAN
  code) and a column one style. Labels that name nothing (clusters, `data.clusters`) are drawn
  as in sampling instead, as many as the latents.
  """
  if not gan.g_classes or gan.label_probs:
    return gan.sample_inputs(key, n, training=False), None
  cols = max(1, n // gan.g_classes)
  z = jnp.tile(gan.sample_latent(key, cols), (gan.g_classes, 1))
  y = jnp.repeat(jnp.arange(gan.g_classes), cols)
  return (FakeInputs(z, codes=y) if gan.latent_classes else FakeInputs(z, labels=y)), cols


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
    fake = gan.sample_inputs(key, STANDING_BATCH, training=False)
    kw = {'labels': fake.g_labels, 'rngs': gan.rngs(key)}
    return steps.apply(gan.generator, params, start, fake.z, True, **kw)[1]

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
