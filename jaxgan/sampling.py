"""Images from a trained generator: what grids, evaluation and `jaxgan.sample` all draw with.

G samples in inference mode (`train=False`: no dropout, no noise of training), from the EMA of
its params (G's own when EMA is off), with BigGAN's standing batch-norm statistics when the GAN
asks for them (`sampling_vars`). Images come out in [-1, 1], NHWC (`jaxgan.images.to_uint8`
makes uint8 of them). G's inputs are drawn by `GAN.sample_inputs(key, n, training=False)`.
"""

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import NamedTuple

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
NOISE_MODES = ('const', 'random', 'none')


class GOptions(NamedTuple):
  """Options of generators that take them (StyleGAN2's): w pulled toward `w_avg` by
  `truncation_psi` in the first `truncation_cutoff` layers (None: all of them), and the noise
  inputs' mode (`NOISE_MODES`; None: the network's own in inference, 'const'). The defaults
  change nothing, so they suit every generator."""

  truncation_psi: float = 1.0
  truncation_cutoff: int | None = None
  noise_mode: str | None = None

  def kwargs(self) -> dict:
    """G's keyword arguments for the options that are not at their defaults."""
    return {k: v for k, v in self._asdict().items() if v != GOptions._field_defaults[k]}

  def check(self, gan: GAN) -> None:
    """Raises ValueError for an option `gan`'s generator does not take, or a bad value."""
    if self.noise_mode not in (None, *NOISE_MODES):
      raise ValueError(
        f'the noise mode must be one of {", ".join(NOISE_MODES)}, got {self.noise_mode!r}'
      )
    if self.truncation_cutoff is not None and self.truncation_cutoff < 0:
      raise ValueError(f'the truncation cutoff must be >= 0, got {self.truncation_cutoff}')
    takes = inspect.signature(type(gan.generator).__call__).parameters
    for name in self.kwargs():
      if name not in takes:
        kind = type(gan.generator).__module__.rsplit('.', 1)[-1]
        raise ValueError(
          f"{name} does not apply to this run's generator ({kind}): only to one with a "
          'mapping network and noise inputs (stylegan2)'
        )


NO_OPTIONS = GOptions()


def g_apply(
  gan: GAN, params: PyTree, vars_: dict, fake: FakeInputs, options: GOptions = NO_OPTIONS, key=None
) -> jax.Array:
  """G's images of `fake` in inference mode; `key` draws noise for noise_mode 'random'."""
  rngs = {'noise': key} if options.noise_mode == 'random' else None
  kw = {'labels': fake.g_labels, 'rngs': rngs, **options.kwargs()}
  return steps.apply(gan.generator, params, vars_, fake.z, False, **kw)[0]


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
def _generator(gan: GAN, batch_size: int, options: GOptions) -> Callable:
  def generate(g_params, g_vars, key):
    fake = gan.sample_inputs(key, batch_size, training=False)
    return g_apply(gan, g_params, g_vars, fake, options, jax.random.fold_in(key, 3))

  return jax.jit(generate)


def make_generate_fn(
  gan: GAN, state: GANState, batch_size: int = 500, options: GOptions = NO_OPTIONS
) -> GenerateFn:
  """generate_fn(key) -> batch_size images of `state`'s generator (inference mode).

  Uses G's EMA parameters (the same as G's own when train.ema_decay is 0), with standing
  batch-norm statistics when gan.standing_stats > 0 (`sampling_vars`). Compiled once per
  (gan, batch_size, options): a new state reuses the compiled function.
  """
  options.check(gan)
  params = state.g_ema_params
  vars_ = sampling_vars(gan, params, state.g_vars)
  return functools.partial(_generator(gan, batch_size, options), params, vars_)


@functools.cache
def _of_inputs(gan: GAN, options: GOptions) -> Callable:
  return jax.jit(functools.partial(g_apply, gan, options=options))


def generate_from(
  gan: GAN, state: GANState, fake: FakeInputs, options: GOptions = NO_OPTIONS, seed: int = 0
) -> Iterator[np.ndarray]:
  """Batches of G's images of the given inputs (G's raw output, float32), in order: as
  `make_generate_fn`'s, for chosen latents and labels. `seed` draws the noise of 'random'."""
  options.check(gan)
  params = state.g_ema_params
  vars_ = sampling_vars(gan, params, state.g_vars)
  n, size = len(fake.z), min(len(fake.z), 500)
  key = jax.random.PRNGKey(seed)
  for i, start in enumerate(range(0, n, size)):
    # The last batch is padded to the others' size: one compiled shape.
    part = jax.tree.map(functools.partial(_padded, start=start, size=size), fake)
    out = _of_inputs(gan, options)(params, vars_, part, key=jax.random.fold_in(key, i))
    yield np.asarray(jax.device_get(out), np.float32)[: n - start]


def _padded(a: jax.Array, start: int, size: int) -> jax.Array:
  a = a[start : start + size]
  return jnp.concatenate([a, jnp.repeat(a[-1:], size - len(a), axis=0)]) if len(a) < size else a


def style_mixing(
  gan: GAN, state: GANState, rows: FakeInputs, cols: FakeInputs, layers: tuple[int, int]
) -> np.ndarray:
  """StyleGAN's style-mixing figure as a (rows + 1) x (cols + 1) grid, row-major, in [-1, 1]:
  a blank corner, the column images across the top, the row images down the left, and at
  (r, c) row r's ws with the layers [layers[0], layers[1]) taken from column c (the coarse
  layers set pose and shape, the fine ones colour). Constant noise, no truncation."""
  g = type(gan.generator)
  if not (hasattr(g, 'map') and hasattr(g, 'synthesize')):
    kind = g.__module__.rsplit('.', 1)[-1]
    raise ValueError(
      f"style mixing needs a generator with a mapping network (stylegan2), not this run's ({kind})"
    )
  num_ws = gan.generator.num_ws
  if not 0 <= layers[0] < layers[1] <= num_ws:
    raise ValueError(
      f'the mixed layers must be a range within [0, {num_ws}), got {layers[0]}-{layers[1]}'
    )
  variables = {'params': state.g_ema_params, **state.g_vars}
  grid = _mixing_grid(gan, layers)(variables, rows, cols)
  return np.asarray(grid)


@functools.cache
def _mixing_grid(gan: GAN, layers: tuple[int, int]) -> Callable:
  def grid(variables, rows: FakeInputs, cols: FakeInputs):
    apply = functools.partial(gan.generator.apply, variables, train=False)
    ws_r = apply(rows.z, rows.g_labels, method='map')
    ws_c = apply(cols.z, cols.g_labels, method='map')
    mixed = jnp.repeat(ws_r, len(cols.z), axis=0)
    from_cols = jnp.tile(ws_c, (len(rows.z), 1, 1))[:, layers[0] : layers[1]]
    mixed = mixed.at[:, layers[0] : layers[1]].set(from_cols)
    # One synthesis of all cells: the column images, the row images, the mixed ones.
    images = apply(jnp.concatenate([ws_c, ws_r, mixed]), method='synthesize', noise_mode='const')
    c_img, r_img, m_img = jnp.split(images, [len(cols.z), len(cols.z) + len(rows.z)])
    cells = [jnp.zeros_like(c_img[:1]) - 1, c_img]
    for i in range(len(rows.z)):
      cells += [r_img[i : i + 1], m_img[i * len(cols.z) : (i + 1) * len(cols.z)]]
    return jnp.concatenate(cells)

  return jax.jit(grid)


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
