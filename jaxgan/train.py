"""The trainer: `train_and_evaluate(config, workdir)` builds everything, resumes, and trains.

Sections: setup, data, model and optimizers, sharding, checkpoint restore, compiled step,
train loop (log, sample, checkpoint, stop on signal).
"""

import fcntl
import functools
import json
import os
import signal
import tempfile
import threading
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgan import allocator, data, evaluation, models, steps, writers
from jaxgan import config as config_lib
from jaxgan.checkpoint import Checkpointer
from jaxgan.errors import CheckpointError, ConfigError, JaxganError
from jaxgan.models import layers
from jaxgan.state import GAN, GANState, init_state


def build_gan(config, image_shape: tuple[int, ...], lr_scale: float = 1.0) -> GAN:
  """The GAN (networks, optimizers, schedule) that `config` describes.

  `lr_scale` multiplies both learning rates: train.on_nan='rollback' lowers them this way.
  """
  num_classes = config.data.num_classes if config.model.conditional else 0
  generator, discriminator = models.create(config.model, image_shape, num_classes)
  opt, tr = config.optim, config.train

  def optimizer(lr):
    if opt.weight_decay:  # decoupled (Loshchilov & Hutter), not an L2 term in the loss
      return optax.adamw(lr, b1=opt.b1, b2=opt.b2, weight_decay=opt.weight_decay)
    return optax.adam(lr, b1=opt.b1, b2=opt.b2)

  return GAN(
    generator=generator,
    discriminator=discriminator,
    g_optimizer=optimizer(opt.g_lr * lr_scale),
    d_optimizer=optimizer(opt.d_lr * lr_scale),
    latent_dim=config.model.latent_dim,
    latent_dist=config.model.latent_dist,
    loss=config.train.loss,
    d_steps=config.train.d_steps,
    g_steps=config.train.g_steps,
    balance=config.train.balance,
    balance_a=config.train.balance_a,
    balance_b=config.train.balance_b,
    gp_weight=tr.gp_weight,
    r1_weight=tr.r1_weight,
    r1_every=tr.r1_every,
    label_smoothing=tr.label_smoothing,
    ema_decay=tr.ema_decay,
    ema_start=tr.ema_start,
    num_classes=num_classes,
  )


def to_float(images: jax.Array) -> jax.Array:
  """uint8 pixels -> floats in [-1, 1], the range of G's tanh output."""
  return images.astype(jnp.float32) / 127.5 - 1.0


def make_train_fn(gan: GAN, batch_size: int, data_key: jax.Array, batch_sharding=None):
  """(state, images, num_steps, labels=None) -> (state, metrics stacked over steps), to be jitted.

  Real batches are drawn on device, uniformly with replacement, with the key for step t
  folded from `data_key`, so a resumed run sees the same batches as an uninterrupted one.
  `labels` (the dataset's classes) are drawn with their images for a conditional GAN.
  """

  def real_fn(state: GANState, images: jax.Array, labels: jax.Array | None = None):
    key = jax.random.fold_in(data_key, state.step)
    idx = jax.random.randint(key, (gan.d_steps, batch_size), 0, images.shape[0])
    real = to_float(images[idx])
    if batch_sharding is not None:
      real = jax.lax.with_sharding_constraint(real, batch_sharding)
    if labels is None:
      return real
    y = labels[idx]
    if batch_sharding is not None:
      y = jax.lax.with_sharding_constraint(y, batch_sharding)
    return real, y

  def train_fn(state: GANState, images: jax.Array, num_steps: int, labels=None):
    if num_steps == 1:  # a rolled scan is several times slower per step on CPU
      batch = real_fn(state, images, labels)
      real, y = batch if isinstance(batch, tuple) else (batch, None)
      state, metrics = steps.train_step(gan, state, real, y)
      return state, jax.tree.map(lambda m: m[None], metrics)
    return steps.multi_step(gan, state, lambda s: real_fn(s, images, labels), num_steps)

  return train_fn


def grid_inputs(gan: GAN, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array | None, int | None]:
  """(latents, labels, columns) of the sample grid: n latents; conditional: a row per class.

  In a conditional grid each column shares one latent, so a row shows one class and a column
  one style.
  """
  if not gan.num_classes:
    return gan.sample_latent(key, n), None, None
  cols = max(1, n // gan.num_classes)
  z = jnp.tile(gan.sample_latent(key, cols), (gan.num_classes, 1))
  return z, jnp.repeat(jnp.arange(gan.num_classes), cols), cols


def _reduce_metrics(chunks: list[dict]) -> dict[str, float]:
  """Host-side means over a log interval (one device->host transfer); skip counts are summed."""
  stacked = jax.device_get({k: jnp.concatenate([c[k] for c in chunks]) for k in chunks[0]})
  return {k: float(v.sum() if k.endswith('_skipped') else v.mean()) for k, v in stacked.items()}


class _StopFlag:
  """Turns SIGTERM/SIGINT into a request to checkpoint and stop after the current step."""

  def __init__(self):
    self.signum = None
    self._old = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for s in (signal.SIGTERM, signal.SIGINT):
        self._old[s] = signal.signal(s, self._handle)
    return self

  def _handle(self, signum, frame):
    self.signum = signum
    # A second Ctrl-C or SIGTERM acts at once.
    signal.signal(signum, self._old.get(signum, signal.SIG_DFL))

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)


def _next_event(step: int, config) -> int:
  """The first step after `step` at which something happens (log, sample, checkpoint, end)."""
  periods = [config.log_every, config.checkpoint_every] + [
    p for p in (config.sample_every, config.eval_every) if p
  ]
  return min([config.num_steps] + [(step // p + 1) * p for p in periods])


def train_and_evaluate(config, workdir: str) -> GANState:
  """Trains the GAN of `config`, writing checkpoints, metrics and samples into `workdir`.

  Resumes from the latest checkpoint in `workdir` if there is one. Returns the final state.
  On SIGTERM it checkpoints and returns; on Ctrl-C it checkpoints and raises KeyboardInterrupt.
  On CPU it also applies `jaxgan.allocator.tune()` (malloc settings) to this process.
  """
  # --- Setup ------------------------------------------------------------------------------
  devices = jax.devices()
  if jax.default_backend() == 'cpu':
    allocator.tune()  # XLA:CPU's per-step temporaries: 1.05-1.4x faster (docs/benchmarks.md)
  config_lib.validate(config, num_devices=len(devices))
  _prepare_workdir(workdir)
  with _WorkdirLock(workdir, enabled=jax.process_index() == 0):
    return _train_with_rollbacks(config, workdir, devices)


def _train_with_rollbacks(config, workdir: str, devices: list) -> GANState:
  """_train; on a divergence with train.on_nan='rollback', _train again with lower LRs.

  _train resumes from the latest checkpoint, and checkpoints are only written after a
  finiteness check, so running it again is the rollback: it restores the last good state (or
  the initial one), truncates metrics.jsonl there, and rebuilds and recompiles with the lowered
  learning rates.
  """
  rollbacks = _Rollbacks(workdir, is_main=jax.process_index() == 0)
  while True:
    try:
      return _train(config, workdir, devices, rollbacks)
    except _Diverged as e:
      if config.train.on_nan == 'stop':
        raise
      if rollbacks.count >= config.train.max_rollbacks:
        raise JaxganError(
          f'{e.name} is {e.value} in the steps up to {e.step}: training diverged again after '
          f'{rollbacks.done()} (learning rates x{rollbacks.lr_scale:g}); the checkpoints '
          'written before are intact'
        ) from None
      rollbacks.record(config.train.rollback_lr_factor)
      print(
        f'step {e.step}: {e.name} is {e.value}; rolled back to step {e.good_step}, learning '
        f'rates x{rollbacks.lr_scale:g} (rollback {rollbacks.count} of '
        f'{config.train.max_rollbacks})',
        flush=True,
      )


def _train(config, workdir: str, devices: list, rollbacks: '_Rollbacks') -> GANState:
  is_main = jax.process_index() == 0

  # --- Data -------------------------------------------------------------------------------
  dataset = data.load_dataset(config.data)
  image_shape = tuple(dataset.images.shape[1:])
  scale = 2 ** len(config.model.g_features)
  if image_shape[0] % scale or image_shape[1] % scale:
    raise ConfigError(
      f'image size {image_shape[:2]} is not divisible by 2**len(model.g_features) = {scale}'
    )

  # --- Model, optimizers, sharding ---------------------------------------------------------
  if rollbacks.count:
    logging.info('Learning rates x%g after %s', rollbacks.lr_scale, rollbacks.done())
  gan = build_gan(config, image_shape, rollbacks.lr_scale)
  mesh = Mesh(np.array(devices), ('data',))
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P(None, 'data'))
  # MNIST is 47 MB: keep it on every device. Every process holds the same copy, so each fills
  # its own devices from it (this works with one process or many).
  images = jax.make_array_from_callback(
    dataset.images.shape, replicated, lambda index: dataset.images[index]
  )
  labels = _device_labels(dataset, gan.num_classes, replicated)
  init = jax.jit(
    functools.partial(init_state, gan, image_shape=image_shape), out_shardings=replicated
  )
  rng = jax.random.PRNGKey(config.seed)
  state_key, data_key, sample_key = jax.random.split(rng, 3)

  # --- Checkpoint restore ------------------------------------------------------------------
  ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'), keep=config.keep_checkpoints)
  state = ckpt.restore_latest(_abstract_state(gan, image_shape, replicated))
  if state is None:
    state = init(state_key)
  else:
    logging.info('Resumed from step %d in %s', int(state.step), workdir)
  _write_config(workdir, config, image_shape, is_main)
  start = int(state.step)

  # --- Compiled step -----------------------------------------------------------------------
  train_fn = jax.jit(
    make_train_fn(gan, config.batch_size, data_key, batch_sharding),
    static_argnums=2,
    donate_argnums=0,
    compiler_options=layers.compiler_options(),  # XLA:CPU: faster conv kernels; {} elsewhere
  )
  sample_fn = jax.jit(
    lambda p, v, z, y: steps.apply(gan.generator, p, v, z, False, y)[0],
    out_shardings=replicated,
  )
  grid_z, grid_y, grid_cols = grid_inputs(gan, sample_key, config.num_grid_samples)

  # --- Evaluation: sample quality against the test split, best checkpoint by FID -------------
  if config.eval_every:
    test_config = config.data.copy_and_resolve_references()
    test_config.split = 'test'
    test_images = data.load_dataset(test_config).images
    best = _Best(workdir, is_main)

  # --- Train loop --------------------------------------------------------------------------
  writer = writers.MetricWriter(workdir, resume_step=start, enabled=is_main)
  progress = writers.Progress(config.num_steps)
  if start >= config.num_steps:
    logging.info('Nothing to do: checkpoint step %d >= num_steps %d', start, config.num_steps)
  step, pending = start, []
  t_log, step_log = None, start
  good_step, diverged = start, None  # the latest finite checkpoint; (quantity, value) if not
  stopping = False
  with _StopFlag() as stop:
    while step < config.num_steps and not stopping:
      k = min(config.train.steps_per_call, _next_event(step, config) - step)
      t0 = time.time()
      state, metrics = train_fn(state, images, k, labels)
      pending.append(metrics)
      step += k
      if t_log is None:  # first call: compile; time the steady state from here on
        jax.block_until_ready(state)
        logging.info('First call (compilation included) took %.1f s', time.time() - t0)
        t_log, step_log = time.time(), step
      progress.update(step)

      # The last step of the run, or of this process when a stop was requested: log,
      # sample and checkpoint it. One snapshot of the flag decides both this and the loop's
      # end, so a signal arriving during the hooks below waits for the next step.
      stopping = stop.signum is not None
      last = step == config.num_steps or stopping
      if step % config.log_every == 0 or last:
        scalars = _reduce_metrics(pending)
        pending = []
        now = time.time()
        scalars['steps_per_sec'] = (
          (step - step_log) / max(now - t_log, 1e-9) if step > step_log else 0.0
        )
        t_log, step_log = now, step
        if rollbacks.count:
          scalars['rollbacks'] = rollbacks.count
        if diverged := _first_nonfinite(scalars):
          break
        if is_main:
          writer.write_scalars(step, scalars)
          progress.clear()
          print(writers.status_line(step, config.num_steps, scalars), flush=True)
      sample_now = config.sample_every and (step % config.sample_every == 0 or last)
      ckpt_now = step % config.checkpoint_every == 0 or last
      eval_now = config.eval_every and (step % config.eval_every == 0 or step == config.num_steps)
      if sample_now or ckpt_now or eval_now:  # keep hook time out of steps_per_sec
        jax.block_until_ready(state)
        t_hooks = time.time()
      if is_main and sample_now:
        # g_ema_params is G's EMA when train.ema_decay > 0, else G's params themselves.
        samples = sample_fn(state.g_ema_params, state.g_vars, grid_z, grid_y)
        grid = writers.image_grid(jax.device_get(samples), cols=grid_cols)
        writers.save_png(os.path.join(workdir, 'samples', f'step_{step:06d}.png'), grid)
        writer.write_image(step, 'samples', grid)
      if ckpt_now:
        # Never checkpoint a diverged state, even between log steps.
        if pending and (diverged := _first_nonfinite(_reduce_metrics(pending))):
          break
        ckpt.save(state, force=last)
        good_step = step
      if eval_now:
        results = evaluation.evaluate_generator(
          # The same latents every time, so FIDs of successive evaluations compare fairly.
          evaluation.make_generate_fn(gan, state),
          test_images,
          config.eval_num_samples,
          seed=config.seed,
        )
        results['eval_seconds'] = time.time() - t_hooks
        if is_main:
          writer.write_scalars(step, {f'eval_{k}': v for k, v in results.items()})
          print(writers.eval_line(step, results), flush=True)
        best.update(step, results['fid'], state)
      if sample_now or ckpt_now or eval_now:
        t_log += time.time() - t_hooks

  progress.clear()
  ckpt.wait()
  ckpt.close()
  if config.eval_every:
    best.close()
  writer.close()
  if diverged:
    raise _Diverged(*diverged, step=step, good_step=good_step)
  if stop.signum is not None:
    name = signal.Signals(stop.signum).name
    print(f'{name} received: checkpoint at step {step} saved; run again to resume.', flush=True)
    if stop.signum == signal.SIGINT:
      raise KeyboardInterrupt
  return state


def _device_labels(dataset, num_classes: int, sharding) -> jax.Array | None:
  """The dataset's labels on every device for a conditional GAN (num_classes > 0), else None."""
  if not num_classes:
    return None
  if dataset.labels is None:
    raise ConfigError(f'model.conditional needs labels, and {dataset.name!r} has none')
  if dataset.labels.min() < 0 or dataset.labels.max() >= num_classes:
    raise ConfigError(
      f'{dataset.name!r} has labels in [{dataset.labels.min()}, {dataset.labels.max()}]: '
      f'more than data.num_classes={num_classes}'
    )
  labels = dataset.labels.astype(np.int32)
  return jax.make_array_from_callback(labels.shape, sharding, lambda index: labels[index])


def _abstract_state(gan: GAN, image_shape: tuple[int, ...], sharding) -> GANState:
  """Shapes, dtypes and target shardings of the state, for restoring onto this topology."""
  shapes = jax.eval_shape(
    functools.partial(init_state, gan, image_shape=image_shape), jax.random.PRNGKey(0)
  )
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), shapes)


def load_run(workdir: str, step: int | None = None, folder: str = 'checkpoints'):
  """(config, gan, state) of a finished or running training run, from its workdir.

  Restores the checkpoint at `step` (default: the latest) in WORKDIR/`folder` (`checkpoints`,
  or `checkpoints_best` for the best by FID) onto the local devices.
  """
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise CheckpointError(f'{workdir!r} has no config.json: is it a jaxgan workdir?')
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  ckpt = Checkpointer(os.path.join(workdir, folder), keep=config.keep_checkpoints)
  step = ckpt.latest_step() if step is None else step
  if step is None or step not in ckpt.all_steps():
    raise CheckpointError(f'no checkpoint {"" if step is None else step} in {workdir!r}')
  with open(os.path.join(workdir, 'run.json')) as f:
    image_shape = tuple(json.load(f)['image_shape'])
  # The learning rates the run trains with, so that `gan` can continue it.
  gan = build_gan(config, image_shape, _Rollbacks(workdir, is_main=False).lr_scale)
  replicated = NamedSharding(Mesh(np.array(jax.devices()), ('data',)), P())
  state = ckpt.restore(_abstract_state(gan, image_shape, replicated), step)
  ckpt.close()
  return config, gan, state


class _Best:
  """Keeps the lowest-FID state in WORKDIR/checkpoints_best (one checkpoint) and best.json."""

  def __init__(self, workdir: str, is_main: bool):
    self.path = os.path.join(workdir, 'best.json')
    self.is_main = is_main
    self.fid = float('inf')
    if os.path.exists(self.path):
      with open(self.path) as f:
        self.fid = json.load(f)['fid']
    self._ckpt = Checkpointer(os.path.join(workdir, 'checkpoints_best'), keep=1)

  def update(self, step: int, fid: float, state: GANState) -> None:
    if not fid < self.fid:
      return
    self.fid = fid
    self._ckpt.save(state, force=True)
    self._ckpt.wait()  # best.json must never point at a checkpoint that is not written yet
    if self.is_main:
      tmp = self.path + '.tmp'
      with open(tmp, 'w') as f:
        json.dump({'step': step, 'fid': fid}, f)
      os.replace(tmp, self.path)

  def close(self) -> None:
    self._ckpt.close()


class _WorkdirLock:
  """One trainer per workdir: an exclusive flock on WORKDIR/.lock, freed by the OS on exit."""

  def __init__(self, workdir: str, enabled: bool):
    self.path = os.path.join(workdir, '.lock')
    self.enabled = enabled
    self._file = None

  def __enter__(self):
    if not self.enabled:
      return self
    self._file = open(self.path, 'a+')
    try:
      fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      self._file.seek(0)
      owner = self._file.read().strip() or '?'
      self._file.close()
      raise JaxganError(
        f'workdir {os.path.dirname(self.path)!r} is in use by another jaxgan run (pid {owner})'
      ) from None
    self._file.seek(0)
    self._file.truncate()
    self._file.write(str(os.getpid()))
    self._file.flush()
    return self

  def __exit__(self, *exc):
    if self._file:
      self._file.close()  # closing releases the flock


def _first_nonfinite(scalars: dict[str, float]) -> tuple[str, float] | None:
  return next(((k, v) for k, v in scalars.items() if not np.isfinite(v)), None)


class _Diverged(JaxganError):
  """A NaN or Inf in the steps up to `step`; `good_step` is the latest checkpoint (or start)."""

  def __init__(self, name: str, value: float, step: int, good_step: int):
    super().__init__(
      f'{name} is {value} in the steps up to {step}: training diverged (lower the learning '
      "rates, or set train.on_nan='rollback'); the checkpoints written before are intact"
    )
    self.name, self.value, self.step, self.good_step = name, value, step, good_step


class _Rollbacks:
  """WORKDIR/rollbacks.json: the rollbacks done so far and the learning-rate scale they left.

  On disk so that a restarted run keeps the lowered learning rates and counts towards the same
  train.max_rollbacks. Delete the file to go back to the config's learning rates.
  """

  def __init__(self, workdir: str, is_main: bool):
    self.path = os.path.join(workdir, 'rollbacks.json')
    self.is_main = is_main
    self.count, self.lr_scale = 0, 1.0
    if os.path.exists(self.path):
      try:
        with open(self.path) as f:
          saved = json.load(f)
        self.count, self.lr_scale = int(saved['rollbacks']), float(saved['lr_scale'])
      except (ValueError, KeyError, TypeError) as e:
        raise JaxganError(f'{self.path} is unreadable ({e!r}); delete it to start over') from e

  def done(self) -> str:
    return f'{self.count} rollback{"" if self.count == 1 else "s"}'

  def record(self, factor: float) -> None:
    self.count += 1
    self.lr_scale *= factor
    if self.is_main:
      tmp = self.path + '.tmp'
      with open(tmp, 'w') as f:
        json.dump({'rollbacks': self.count, 'lr_scale': self.lr_scale}, f)
      os.replace(tmp, self.path)


def _prepare_workdir(workdir: str) -> None:
  try:
    os.makedirs(workdir, exist_ok=True)
    # A file of this process's own: every process of a multi-host run probes the same workdir.
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise JaxganError(f'workdir {workdir!r} is not writable: {e.strerror}') from e


def _write_config(workdir: str, config, image_shape: tuple[int, ...], is_main: bool) -> None:
  """config.json (the launch's config) and run.json (what is needed to rebuild the networks)."""
  if is_main:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      json.dump(config.to_dict() if hasattr(config, 'to_dict') else dict(config), f, indent=2)
    with open(os.path.join(workdir, 'run.json'), 'w') as f:
      json.dump({'image_shape': list(image_shape)}, f)
