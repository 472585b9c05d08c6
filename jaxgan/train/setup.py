"""What the train loop needs, built from a config: the data on the devices, the GAN, the state
(restored from the workdir or new), the compiled step and the sample-grid inputs.

Nothing here knows a dataset or a model: `jaxgan.data` and `jaxgan.models` choose those by
name from the config.
"""

import dataclasses
import functools
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxgan import data, evaluation, files, images, parallel, steps, xla_cpu
from jaxgan import gan as gan_lib
from jaxgan import workdir as workdir_lib
from jaxgan.checkpoint import Checkpointer
from jaxgan.data import clusters
from jaxgan.errors import ConfigError
from jaxgan.gan import GAN
from jaxgan.state import GANState, abstract_state, init_state
from jaxgan.train import feed as feed_lib


def make_train_fn(
  gan: GAN,
  batch_size: int,
  data_key: jax.Array,
  batch_sharding=None,
  mirror: bool = False,
  streamed: bool = False,
):
  """(state, pixels, num_steps, labels=None) -> (state, metrics stacked over steps), to be jitted.

  Real batches are drawn uniformly with replacement, with the key for step t folded from
  `data_key` (`feed.draw_indices`), so a resumed run sees the same batches as an
  uninterrupted one. `pixels` is the whole dataset, drawn from on device; or, `streamed`, the
  call's batches (num_steps, d_steps, batch, H, W, C) that `feed.Streamed` drew on the host
  with the same indices. `labels` (the dataset's classes, or the batches' with `streamed`)
  come with their images for a conditional GAN. `mirror` flips each drawn image left-right
  with probability 1/2, the coins coming from the same step key, so resuming stays exact.
  """

  def real_fn(state: GANState, pixels: jax.Array, labels: jax.Array | None, first_step):
    key = jax.random.fold_in(data_key, state.step)
    if streamed:
      i = state.step - first_step
      drawn, y = pixels[i], None if labels is None else labels[i]
    else:
      idx = feed_lib.draw_indices(data_key, state.step, (gan.d_steps, batch_size), len(pixels))
      drawn, y = pixels[idx], None if labels is None else labels[idx]
    if mirror:  # drawn: (d_steps, batch, H, W, C)
      flip = jax.random.bernoulli(jax.random.fold_in(key, 1), 0.5, drawn.shape[:2])
      drawn = jnp.where(flip[..., None, None, None], drawn[..., ::-1, :], drawn)
    real = images.to_float(drawn)
    if batch_sharding is not None:
      real = jax.lax.with_sharding_constraint(real, batch_sharding)
    if y is None:
      return real
    if batch_sharding is not None:
      y = jax.lax.with_sharding_constraint(y, batch_sharding)
    return real, y

  # G's inputs (batch, ...) split over the devices as the real batches are.
  fake_sharding = None if batch_sharding is None else parallel.example_sharding(batch_sharding.mesh)

  def train_fn(state: GANState, pixels: jax.Array, num_steps: int, labels=None):
    first_step = state.step
    if num_steps == 1:  # a rolled scan is several times slower per step on CPU
      batch = real_fn(state, pixels, labels, first_step)
      real, y = batch if isinstance(batch, tuple) else (batch, None)
      state, metrics = steps.train_step(gan, state, real, y, fake_sharding)
      return state, jax.tree.map(lambda m: m[None], metrics)

    def batches(s: GANState):
      return real_fn(s, pixels, labels, first_step)

    return steps.multi_step(gan, state, batches, num_steps, fake_sharding)

  return train_fn


def grid_inputs(gan: GAN, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array | None, int | None]:
  """(latents, labels, columns) of the sample grid: n latents; conditional: a row per class.

  In a conditional grid each column shares one latent, so a row shows one class (or InfoGAN
  code) and a column one style. Labels that name nothing (clusters, `data.clusters`) are drawn
  as in training instead, as many as the latents.
  """
  if not gan.g_classes:
    return gan.sample_latent(key, n), None, None
  if gan.label_probs:
    return gan.sample_latent(key, n), gan.sample_labels(jax.random.fold_in(key, 1), n), None
  cols = max(1, n // gan.g_classes)
  z = jnp.tile(gan.sample_latent(key, cols), (gan.g_classes, 1))
  return z, jnp.repeat(jnp.arange(gan.g_classes), cols), cols


@dataclasses.dataclass
class Run:
  """One launch of a training run, ready for the loop."""

  gan: GAN
  state: GANState
  feed: Any  # feed(step, num_steps) -> train_fn's (pixels, labels): jaxgan.train.feed
  train_fn: Any  # jitted make_train_fn: (state, pixels, num_steps, labels)
  sample: Any  # () -> a grid of samples (uint8) from the state's generator
  ckpt: Checkpointer
  evaluator: evaluation.Evaluator | None


def build(config, workdir: str, devices: list, lr_scale: float = 1.0) -> Run:
  """Reads the data, builds the GAN and restores the latest checkpoint of `workdir` (or
  initialises the state) onto `devices`."""
  dataset = data.subset(data.load_dataset(config.data), config.data.get('subset', 0))
  dataset, label_probs = _clustered(dataset, config.data.get('clusters', 0))
  image_shape = tuple(dataset.images.shape[1:])
  gan = gan_lib.from_config(config, image_shape, lr_scale, label_probs)
  mesh = parallel.mesh(devices)
  replicated = parallel.replicated(mesh)
  labels = _labels(dataset, gan.num_classes)
  state_key, data_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  streamed = feed_lib.choose(config.data.get('on_device', 'auto'), dataset.images, devices)
  if streamed:
    feed = feed_lib.Streamed(dataset.images, labels, data_key, gan.d_steps, config.batch_size, mesh)
  else:
    feed = feed_lib.Resident(dataset.images, labels, mesh)

  parallel.barrier('setup')  # the checkpointer's first collective, after per-process work
  ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'), keep=config.keep_checkpoints)
  state = ckpt.restore_latest(abstract_state(gan, image_shape, replicated))
  if state is None:
    init = functools.partial(init_state, gan, image_shape=image_shape)
    state = jax.jit(init, out_shardings=replicated)(state_key)
  else:
    logging.info('Resumed from step %d in %s', int(state.step), workdir)
  if jax.process_index() == 0:
    workdir_lib.write_run(workdir, config, image_shape, label_probs)
    if dataset.classes is not None:  # what each label means, for samples of a conditional G
      files.write_json(os.path.join(workdir, 'classes.json'), list(dataset.classes), indent=2)

  mirror = config.data.get('mirror', False)
  train_fn = jax.jit(
    make_train_fn(
      gan, config.batch_size, data_key, parallel.batch_sharding(mesh), mirror, streamed
    ),
    static_argnums=2,
    donate_argnums=0,
    compiler_options=xla_cpu.compiler_options(),  # XLA:CPU: faster conv kernels; {} elsewhere
  )
  evaluator = _evaluator(config) if config.eval_every else None
  return Run(
    gan,
    state,
    feed,
    train_fn,
    _grid_sampler(gan, sample_key, config.num_grid_samples, replicated),
    ckpt,
    evaluator,
  )


def _evaluator(config) -> evaluation.Evaluator:
  """Sample quality in the space of config.eval_features ('': the data source's network)."""
  return evaluation.Evaluator(
    config.data,
    config.eval_num_samples,
    config.seed,
    config.eval_features,
    config.eval_inception_weights,
  )


def _grid_sampler(gan: GAN, key: jax.Array, n: int, sharding):
  """state -> uint8 grid of one fixed latent batch, from G's EMA (G itself when EMA is off),
  sampled as the evaluation samples (`evaluation.sampling_vars`)."""
  z, y, cols = grid_inputs(gan, key, n)
  generate = jax.jit(
    lambda p, v: steps.apply(gan.generator, p, v, z, False, y)[0], out_shardings=sharding
  )

  def sample(state: GANState) -> np.ndarray:
    params = state.g_ema_params
    vars_ = evaluation.sampling_vars(gan, params, state.g_vars)
    return images.grid(jax.device_get(generate(params, vars_)), cols=cols)

  return sample


def _clustered(dataset, k: int):
  """(dataset, label_probs): with k > 0, the dataset labelled by its k-means clusters, and
  the clusters' frequencies (fake labels follow them); else as it is, and ()."""
  if not k:
    return dataset, ()
  start = time.time()
  labels = clusters.cluster_labels(dataset.images, k)
  probs = clusters.frequencies(labels, k)
  logging.info(
    'data.clusters=%d: k-means of %d images in %.1f s; cluster sizes %d to %d',
    k,
    len(labels),
    time.time() - start,
    min(probs) * len(labels),
    max(probs) * len(labels),
  )
  return dataset._replace(labels=labels, classes=None), probs


def _labels(dataset, num_classes: int) -> np.ndarray | None:
  """The dataset's labels (int32) for a conditional GAN (num_classes > 0), else None."""
  if not num_classes:
    return None
  if dataset.labels is None:
    raise ConfigError(f'model.conditional needs labels, and {dataset.name!r} has none')
  if dataset.labels.min() < 0 or dataset.labels.max() >= num_classes:
    raise ConfigError(
      f'{dataset.name!r} has labels in [{dataset.labels.min()}, {dataset.labels.max()}]: '
      f'more than data.num_classes={num_classes}'
    )
  return dataset.labels.astype(np.int32)
