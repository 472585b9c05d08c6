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
import numpy as np
from absl import logging

from jaxgan import data, evaluation, files, images, parallel, sampling, steps, xla_cpu
from jaxgan import gan as gan_lib
from jaxgan import workdir as workdir_lib
from jaxgan.checkpoint import Checkpointer
from jaxgan.data import clusters
from jaxgan.errors import ConfigError
from jaxgan.gan import GAN
from jaxgan.state import GANState, abstract_state, init_state
from jaxgan.train import feed as feed_lib


def make_train_fn(gan: GAN, feed):
  """(state, data, num_steps) -> (state, metrics stacked over steps), to be jitted: `num_steps`
  iterations on the real batches `feed.batch` makes of the call's `data` (`feed(step,
  num_steps)`; jaxgan.train.feed)."""

  def train_fn(state: GANState, data, num_steps: int):
    first_step = state.step
    if num_steps == 1:  # a rolled scan is several times slower per step on CPU
      batch = feed.batch(data, state.step, first_step)
      state, metrics = steps.train_step(gan, state, batch, feed.fake_sharding)
      return state, jax.tree.map(lambda m: m[None], metrics)

    def batches(s: GANState):
      return feed.batch(data, s.step, first_step)

    return steps.multi_step(gan, state, batches, num_steps, feed.fake_sharding)

  return train_fn


@dataclasses.dataclass
class Run:
  """One launch of a training run, ready for the loop."""

  gan: GAN
  state: GANState
  feed: Any  # feed(step, num_steps) -> train_fn's data: jaxgan.train.feed
  train_fn: Any  # jitted make_train_fn: (state, data, num_steps)
  sample: Any  # () -> a grid of samples (uint8) from the state's generator
  ckpt: Checkpointer
  evaluator: evaluation.Evaluator | None


def build(config, workdir: str, devices: list, lr_scale: float = 1.0) -> Run:
  """Reads the data, builds the GAN and restores the latest checkpoint of `workdir` (or
  initialises the state) onto `devices`."""
  dataset = data.subset(data.load_dataset(config.data), config.data.subset)
  dataset, label_probs = _clustered(dataset, config.data.clusters)
  _count_classes(config, dataset)
  # Before anything is written: a config whose evaluation cannot run leaves no workdir files.
  evaluator = _evaluator(config) if config.eval_every else None
  image_shape = tuple(dataset.images.shape[1:])
  gan = gan_lib.from_config(config, image_shape, lr_scale, label_probs)
  mesh = parallel.mesh(devices)
  replicated = parallel.replicated(mesh)
  labels = _labels(dataset, gan.num_classes)
  state_key, data_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  draws = feed_lib.Draws(data_key, (gan.d_steps, config.batch_size), config.data.mirror)
  streamed = feed_lib.choose(config.data.on_device, dataset.images, devices)
  feed = (feed_lib.Streamed if streamed else feed_lib.Resident)(
    (dataset.images, labels), draws, mesh
  )

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

  train_fn = jax.jit(
    make_train_fn(gan, feed),
    static_argnums=2,
    donate_argnums=0,
    compiler_options=xla_cpu.compiler_options(),  # XLA:CPU: faster conv kernels; {} elsewhere
  )
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
  sampled as the evaluation samples (`jaxgan.sampling`)."""
  fake, cols = sampling.grid_inputs(gan, key, n)
  generate = jax.jit(lambda p, v: sampling.g_apply(gan, p, v, fake), out_shardings=sharding)

  def sample(state: GANState) -> np.ndarray:
    params = state.g_ema_params
    vars_ = sampling.sampling_vars(gan, params, state.g_vars)
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


def _count_classes(config, dataset) -> None:
  """Sets data.num_classes of a conditional model to the data's class count where it is 0;
  raises ConfigError where the config gives another count than the data's named classes."""
  if not config.model.conditional or config.data.clusters:
    return
  if dataset.labels is None:
    raise ConfigError(f'model.conditional needs labels, and {dataset.name!r} has none')
  given = config.data.num_classes
  if dataset.classes is not None:  # the source names them (e.g. a folder's sub-folders)
    found = len(dataset.classes)
    if given and given != found:
      raise ConfigError(
        f'data.num_classes={given}, but {dataset.name!r} has {found} classes '
        f'({", ".join(dataset.classes[:5])}{", ..." if found > 5 else ""}): '
        f'set data.num_classes={found}, or leave it 0 to count them'
      )
  else:
    found = int(dataset.labels.max()) + 1
  if not given:
    with config.unlocked():
      config.data.num_classes = found


def _labels(dataset, num_classes: int) -> np.ndarray | None:
  """The dataset's labels (int32) for a conditional GAN (num_classes > 0), else None."""
  if not num_classes:
    return None
  if dataset.labels.min() < 0 or dataset.labels.max() >= num_classes:
    raise ConfigError(
      f'{dataset.name!r} has labels in [{dataset.labels.min()}, {dataset.labels.max()}]: '
      f'more than data.num_classes={num_classes}'
    )
  return dataset.labels.astype(np.int32)
