"""The trainer: `train_and_evaluate(config, workdir)` builds everything, resumes, and trains.

Sections: setup (train.setup.build), the loop (one compiled call of up to
steps_per_call iterations, then the hooks due: log, sample, checkpoint, evaluate),
stopping on a signal (agreed by all processes), and rollback on divergence.
"""

import os
import signal
import threading
import time

import jax
from absl import logging

from jaxgan import allocator, parallel, writers
from jaxgan import config as config_lib
from jaxgan import workdir as workdir_lib
from jaxgan.errors import JaxganError
from jaxgan.state import GANState
from jaxgan.train import hooks as hooks_lib
from jaxgan.train import setup


def train_and_evaluate(config, workdir: str) -> GANState:
  """Trains the GAN of `config`, writing checkpoints, metrics and samples into `workdir`.

  Resumes from the latest checkpoint in `workdir` if there is one. Returns the final state.
  On SIGTERM it checkpoints and returns; on Ctrl-C it checkpoints and raises KeyboardInterrupt.
  On CPU it also applies `jaxgan.allocator.tune()` (malloc settings) to this process.
  """
  devices = jax.devices()
  if jax.default_backend() == 'cpu':
    allocator.tune()  # XLA:CPU's per-step temporaries (docs/benchmarks.md)
  config_lib.validate(config, num_devices=len(devices))
  is_main = jax.process_index() == 0
  existed = os.path.exists(workdir)
  workdir_lib.prepare(workdir)
  with workdir_lib.Lock(workdir, enabled=is_main) as lock:
    try:
      return _train_with_rollbacks(config, workdir, devices)
    except JaxganError:
      if is_main:  # bad data found before anything was written: leave nothing behind
        lock.remove_if_alone(remove_workdir=not existed)
      raise


def _train_with_rollbacks(config, workdir: str, devices: list) -> GANState:
  """_train; on a divergence with on_nan='rollback', _train again with lower LRs.

  _train resumes from the latest checkpoint, and checkpoints are only written after a
  finiteness check, so running it again is the rollback: it restores the last good state (or
  the initial one), truncates metrics.jsonl there, and rebuilds and recompiles with the lowered
  learning rates.
  """
  rollbacks = workdir_lib.Rollbacks(workdir, is_main=jax.process_index() == 0)
  while True:
    try:
      return _train(config, workdir, devices, rollbacks)
    except Diverged as e:
      if config.on_nan == 'stop':
        raise
      if rollbacks.count >= config.max_rollbacks:
        raise JaxganError(
          f'{e.name} is {e.value} in the steps up to {e.step}: training diverged again after '
          f'{rollbacks.done()} (learning rates x{rollbacks.lr_scale:g}); the checkpoints '
          'written before are intact'
        ) from None
      rollbacks.record(config.rollback_lr_factor)
      writers.console(
        f'step {e.step}: {e.name} is {e.value}; rolled back to step {e.good_step}, learning '
        f'rates x{rollbacks.lr_scale:g} (rollback {rollbacks.count} of '
        f'{config.max_rollbacks})'
      )


def _train(config, workdir: str, devices: list, rollbacks) -> GANState:
  if rollbacks.count:
    logging.info('Learning rates x%g after %s', rollbacks.lr_scale, rollbacks.done())
  run = setup.build(config, workdir, devices, rollbacks.lr_scale)
  is_main = jax.process_index() == 0
  state, step = run.state, int(run.state.step)
  if step >= config.num_steps:
    logging.info('Nothing to do: checkpoint step %d >= num_steps %d', step, config.num_steps)
  writer = writers.MetricWriter(workdir, resume_step=step, enabled=is_main)
  best = workdir_lib.Best(workdir, is_main) if run.evaluator else None
  metrics, clock = hooks_lib.Metrics(), hooks_lib.Clock(step)
  extra = {'rollbacks': rollbacks.count} if rollbacks.count else {}
  ckpt_hook = hooks_lib.Checkpoint(config.checkpoint_every, run.ckpt, metrics, step)
  hooks = [
    hooks_lib.Log(config, writer, metrics, clock, extra),
    hooks_lib.Sample(config.sample_every, run.sample, writer, workdir),
    ckpt_hook,
  ]
  if run.evaluator:
    hooks.append(hooks_lib.Evaluate(config, run.evaluator, run.gan, writer, best))
  progress = writers.progress(config.num_steps, step)
  stop = StopFlag()
  try:
    with stop:
      stopping = False
      while step < config.num_steps and not stopping:
        k = min(config.steps_per_call, _next_event(step, config) - step)
        t0 = time.time()
        state, m = run.train_fn(state, run.feed(step, k), k)
        metrics.add(m)
        step += k
        if not clock.started():  # first call: compilation; time the steady state from here on
          jax.block_until_ready(state)
          if is_main:  # above the progress bar, not into its line
            writers.console(f'First call (compilation included) took {time.time() - t0:.1f} s')
          clock.start(step)
        progress.update(k)
        # The last step of the run, or of this launch when a stop was requested: log, sample
        # and checkpoint it. One decision, taken by all processes together, settles both this
        # and the loop's end, so a signal arriving during the hooks waits for the next step.
        stopping = parallel.any_process(stop.signum is not None)
        hooks_lib.run_due(hooks, step, state, step == config.num_steps or stopping, clock)
  except hooks_lib.NonFinite as e:
    raise Diverged(e.name, e.value, step=step, good_step=ckpt_hook.good_step) from None
  finally:
    progress.close()
    run.feed.close()
    run.ckpt.wait()
    run.ckpt.close()
    if best:
      best.close()
    writer.close()
  if stopping:
    _report_stop(stop.signum, step)
  return state


def _report_stop(signum: int | None, step: int) -> None:
  """A stop this process was signalled for, or one another process was (signum None)."""
  name = signal.Signals(signum).name if signum else 'a stop on another process'
  writers.console(f'{name} received: checkpoint at step {step} saved; run again to resume.')
  if signum == signal.SIGINT:
    raise KeyboardInterrupt


def _next_event(step: int, config) -> int:
  """The first step after `step` at which something happens (log, sample, checkpoint, end)."""
  periods = [config.log_every, config.checkpoint_every] + [
    p for p in (config.sample_every, config.eval_every) if p
  ]
  return min([config.num_steps] + [(step // p + 1) * p for p in periods])


class StopFlag:
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


class Diverged(JaxganError):
  """A NaN or Inf in the steps up to `step`; `good_step` is the latest checkpoint (or start)."""

  def __init__(self, name: str, value: float, step: int, good_step: int):
    super().__init__(
      f'{name} is {value} in the steps up to {step}: training diverged (lower the learning '
      "rates, or set on_nan='rollback'); the checkpoints written before are intact"
    )
    self.name, self.value, self.step, self.good_step = name, value, step, good_step
