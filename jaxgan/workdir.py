"""The run folder: one trainer at a time, the run's metadata, the best checkpoint, rollbacks,
and `load_run` to rebuild a run's GAN and state from it (for evaluation, sampling, research).

WORKDIR/
  config.json, run.json   the latest launch's config; what rebuilds the networks (image shape)
  checkpoints/<step>/     orbax checkpoints of the whole GANState
  checkpoints_best/, best.json    the lowest-FID state so far, when evaluating in training
  rollbacks.json          rollbacks done (on_nan='rollback') and the learning-rate scale
  .lock                   held by the running trainer
"""

import fcntl
import json
import os
import sys
import tempfile

import ml_collections

from jaxgan import config as config_lib
from jaxgan import data, files, models, objectives, parallel
from jaxgan import gan as gan_lib
from jaxgan.checkpoint import Checkpointer
from jaxgan.errors import CheckpointError, JaxganError
from jaxgan.evaluation import features
from jaxgan.evaluation import registry as metrics
from jaxgan.objectives import penalties
from jaxgan.registry import UnknownName
from jaxgan.state import GANState, abstract_state


def prepare(workdir: str) -> None:
  """Creates `workdir` and checks that this process can write into it."""
  try:
    os.makedirs(workdir, exist_ok=True)
    # A file of this process's own: every process of a multi-host run probes the same workdir.
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise JaxganError(f'workdir {workdir!r} is not writable: {e.strerror}') from e


class Lock:
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

  def remove_if_alone(self, remove_workdir: bool) -> None:
    """Removes the lock file if the workdir holds nothing else (a run stopped by bad input
    before it wrote anything), and then the workdir too if `remove_workdir`; while the lock
    is held, so that no other run is using either."""
    workdir = os.path.dirname(self.path)
    if not self._file or os.listdir(workdir) != ['.lock']:
      return
    os.remove(self.path)
    if remove_workdir:
      os.rmdir(workdir)


def write_run(workdir: str, config, image_shape: tuple[int, ...], label_probs=()) -> None:
  """config.json (the launch's config) and run.json (what is needed to rebuild the GAN: the
  image shape, the fake labels' frequencies when they come from the data, and the user's
  modules that registered components, which later commands must `--import` again)."""
  as_dict = config.to_dict() if hasattr(config, 'to_dict') else dict(config)
  files.write_json(os.path.join(workdir, 'config.json'), as_dict, indent=2)
  run = {'image_shape': list(image_shape)}
  if label_probs:
    run['label_probs'] = list(label_probs)
  if imports := _user_modules():
    run['imports'] = imports
  files.write_json(os.path.join(workdir, 'run.json'), run)


def _user_modules() -> dict[str, str]:
  """{module: its file} of the modules outside jaxgan that registered a component."""
  out = {}
  for registry in (models, data, objectives, penalties, features, metrics):
    for name in registry._REGISTRY.names():
      module = registry._REGISTRY.origin(name)
      if module:
        out[module] = getattr(sys.modules.get(module), '__file__', None) or ''
  return out


def read_run(workdir: str) -> tuple[ml_collections.ConfigDict, tuple[int, ...], tuple]:
  """(config, image_shape, label_probs) that `write_run` wrote."""
  for name in ('config.json', 'run.json'):
    if not os.path.exists(os.path.join(workdir, name)):
      raise CheckpointError(f'{workdir!r} has no {name}: is it a jaxgan workdir?')
  with open(os.path.join(workdir, 'run.json')) as f:
    run = json.load(f)
  with open(os.path.join(workdir, 'config.json')) as f:
    try:
      config = config_lib.migrate(ml_collections.ConfigDict(json.load(f)))
    except UnknownName as e:
      raise UnknownName(f'{e}. {_import_hint(run.get("imports", {}))}') from e
  return config, tuple(run['image_shape']), tuple(run.get('label_probs', ()))


def _import_hint(imports: dict[str, str]) -> str:
  """What to --import to rebuild a run whose components came from `imports`."""
  if not imports:
    return 'This run registered no components of its own: was it trained by this jaxgan?'
  scripts = [f for m, f in imports.items() if m == '__main__']
  if scripts:
    return (
      f'This run registered components in a script ({scripts[0]}): move the registration into '
      'a module and pass it with --import'
    )
  args = ','.join(f or m for m, f in imports.items())
  return f'This run registered components in {", ".join(imports)}: pass --import={args}'


def load_run(workdir: str, step: int | None = None, folder: str = 'checkpoints'):
  """(config, gan, state) of a finished or running training run, from its workdir.

  Restores the checkpoint at `step` (default: the latest) in WORKDIR/`folder` (`checkpoints`,
  or `checkpoints_best` for the best by FID) onto the local devices.
  """
  config, image_shape, label_probs = read_run(workdir)
  ckpt = Checkpointer(os.path.join(workdir, folder), keep=config.keep_checkpoints)
  step = ckpt.latest_step() if step is None else step
  if step is None or step not in ckpt.all_steps():
    raise CheckpointError(f'no checkpoint {"" if step is None else step} in {workdir!r}')
  # The learning rates the run trains with, so that `gan` can continue it.
  lr_scale = Rollbacks(workdir, is_main=False).lr_scale
  gan = gan_lib.from_config(config, image_shape, lr_scale, label_probs)
  sharding = parallel.replicated(parallel.mesh())
  state = ckpt.restore(abstract_state(gan, image_shape, sharding), step)
  ckpt.close()
  return config, gan, state


class Best:
  """Keeps the lowest-FID state in WORKDIR/checkpoints_best (one checkpoint) and best.json.

  Only a better state is written at all (orbax's best_fn would write every evaluated state
  and then delete the worse ones).
  """

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
      files.write_json(self.path, {'step': step, 'fid': fid})

  def close(self) -> None:
    self._ckpt.close()


class Rollbacks:
  """WORKDIR/rollbacks.json: the rollbacks done so far and the learning-rate scale they left.

  On disk so that a restarted run keeps the lowered learning rates and counts towards the same
  max_rollbacks. Delete the file to go back to the config's learning rates.
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
      files.write_json(self.path, {'rollbacks': self.count, 'lr_scale': self.lr_scale})
