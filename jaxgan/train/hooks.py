"""What the train loop does between compiled calls, one hook each: log, sample, checkpoint,
evaluate. A hook says when it is `due` and runs with the step, the state and whether this is
the run's (or this launch's) last step.

Hooks whose `pauses_clock` is set block on the state and keep their time out of the logged
steps_per_sec. A hook that finds a NaN/Inf raises NonFinite; the loop turns it into a stop or
a rollback.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import images, writers


class NonFinite(Exception):
  def __init__(self, name: str, value: float):
    super().__init__(f'{name} is {value}')
    self.name, self.value = name, value


class Metrics:
  """The compiled calls' metrics (on device) since the last log step."""

  def __init__(self):
    self.pending: list[dict] = []

  def add(self, metrics: dict) -> None:
    self.pending.append(metrics)

  def reduce(self) -> dict[str, float]:
    """Host-side means over the interval (one device->host transfer); skip counts are summed."""
    chunks = self.pending
    stacked = jax.device_get({k: jnp.concatenate([c[k] for c in chunks]) for k in chunks[0]})
    return {k: float(v.sum() if k.endswith('_skipped') else v.mean()) for k, v in stacked.items()}

  def check_finite(self) -> None:
    if self.pending:
      check_finite(self.reduce())


def check_finite(scalars: dict[str, float]) -> None:
  for k, v in scalars.items():
    if not np.isfinite(v):
      raise NonFinite(k, v)


class Clock:
  """Training throughput: steps per second of compiled calls, without compilation or hooks."""

  def __init__(self, step: int):
    self.t, self.step = None, step

  def started(self) -> bool:
    return self.t is not None

  def start(self, step: int) -> None:
    self.t, self.step = time.time(), step

  def rate(self, step: int) -> float:
    """Steps per second since the last call (0 when only the compiling call ran), and resets."""
    now = time.time()
    rate = (step - self.step) / max(now - self.t, 1e-9) if step > self.step else 0.0
    self.t, self.step = now, step
    return rate

  def exclude(self, seconds: float) -> None:
    self.t += seconds


class Log:
  """Every `log_every` steps and at the last: the interval's mean metrics to metrics.jsonl,
  TensorBoard and the console."""

  pauses_clock = False

  def __init__(self, config, writer, metrics: Metrics, clock: Clock, extra: dict):
    self.every, self.total = config.log_every, config.num_steps
    self.writer, self.metrics, self.clock, self.extra = writer, metrics, clock, extra

  def due(self, step: int, last: bool) -> bool:
    return step % self.every == 0 or last

  def __call__(self, step: int, state, last: bool) -> None:
    scalars = self.metrics.reduce()
    self.metrics.pending = []
    if rate := self.clock.rate(step):  # none when the interval held only the compiling call
      scalars['steps_per_sec'] = rate
    scalars.update(self.extra)
    check_finite(scalars)
    if self.writer.enabled:  # process 0
      self.writer.write_scalars(step, scalars)
      writers.console(writers.status_line(step, self.total, scalars))


class Sample:
  """Every `sample_every` steps and at the last: a grid of one fixed latent batch as
  WORKDIR/samples/step_<step>.png and in TensorBoard."""

  pauses_clock = True

  def __init__(self, every: int, sample, writer, workdir: str):
    self.every, self.sample, self.writer = every, sample, writer
    self.folder = os.path.join(workdir, 'samples')

  def due(self, step: int, last: bool) -> bool:
    return bool(self.every) and (step % self.every == 0 or last)

  def __call__(self, step: int, state, last: bool) -> None:
    if not self.writer.enabled:  # processes other than 0
      return
    grid = self.sample(state)
    images.save_png(os.path.join(self.folder, f'step_{step:06d}.png'), grid)
    self.writer.write_image(step, 'samples', grid)


class Checkpoint:
  """Every `checkpoint_every` steps and at the last; never a state with a NaN/Inf in the
  metrics since the last log step. `good_step` is the newest checkpoint's step."""

  pauses_clock = True

  def __init__(self, every: int, ckpt, metrics: Metrics, start: int):
    self.every, self.ckpt, self.metrics, self.good_step = every, ckpt, metrics, start

  def due(self, step: int, last: bool) -> bool:
    return step % self.every == 0 or last

  def __call__(self, step: int, state, last: bool) -> None:
    self.metrics.check_finite()
    self.ckpt.save(state, force=last)
    self.good_step = step


class Evaluate:
  """Every `eval_every` steps and at num_steps: sample quality (`eval_*` rows), and the best
  state by FID in WORKDIR/checkpoints_best.

  Each row also carries the evaluator's protocol (sample counts, reference split, feature
  network and weights hash, resize, jaxgan version) as `eval_*` fields, some of them strings,
  so that a row read alone says what its numbers can be compared with."""

  pauses_clock = True

  def __init__(self, config, evaluator, gan, writer, best):
    self.every, self.total = config.eval_every, config.num_steps
    self.evaluator, self.gan, self.writer, self.best = evaluator, gan, writer, best

  def due(self, step: int, last: bool) -> bool:
    return bool(self.every) and (step % self.every == 0 or step == self.total)

  def __call__(self, step: int, state, last: bool) -> None:
    t0 = time.time()
    results = self.evaluator(self.gan, state)
    results['eval_seconds'] = time.time() - t0
    if self.writer.enabled:
      row = {**results, **getattr(self.evaluator, 'protocol', {})}
      self.writer.write_scalars(step, {f'eval_{k}': v for k, v in row.items()})
      writers.console(writers.eval_line(step, results))
    self.best.update(step, results['fid'], state)


def run_due(hooks: list, step: int, state, last: bool, clock: Clock) -> None:
  """Runs the hooks due at `step`, in order, keeping the time of the pausing ones off the clock."""
  t0 = None
  for hook in hooks:
    if not hook.due(step, last):
      continue
    if hook.pauses_clock and t0 is None:
      jax.block_until_ready(state)
      t0 = time.time()
    hook(step, state, last)
  if t0 is not None:
    clock.exclude(time.time() - t0)
