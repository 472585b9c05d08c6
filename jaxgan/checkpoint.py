"""Orbax checkpoints of the whole GANState in WORKDIR/checkpoints, asynchronous, keep-N."""

import dataclasses
import os
import time

import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath

from jaxgan.errors import CheckpointError
from jaxgan.state import GANState, initial_ada

# GANState fields added after checkpoints had been written without them, each with its value
# for such a checkpoint (a new run's), so that old workdirs still resume and evaluate.
_ADDED_FIELDS = {'ada': initial_ada, 'penalty_vars': dict}


class Checkpointer:
  """Saves and restores GANState; restore failures become one-line CheckpointErrors."""

  def __init__(self, directory: str, keep: int = 3, async_save: bool = True):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, enable_async_checkpointing=async_save, create=True
    )
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, state: GANState, force: bool = False) -> bool:
    """Starts saving `state` at its step; returns at once, the write goes on in the background."""
    # The trainer donates `state` to the next step; copy it so the background write reads
    # buffers that no computation reuses.
    state = jax.tree.map(lambda x: x.copy(), state)
    return self._manager.save(int(state.step), args=ocp.args.StandardSave(state), force=force)

  def restore(self, abstract_state: GANState, step: int | None = None) -> GANState:
    """Restores into the shapes, dtypes and shardings of `abstract_state` (jax.eval_shape)."""
    step = self.latest_step() if step is None else step
    absent = self._check_fits(step, abstract_state)
    target = abstract_state
    if absent:  # restore the fields the checkpoint has, by name
      names = [f.name for f in dataclasses.fields(GANState) if f.name not in absent]
      target = {name: getattr(abstract_state, name) for name in names}
    try:
      restored = self._manager.restore(step, args=ocp.args.StandardRestore(target))
    except Exception as e:  # shapes matched, so the data itself is damaged
      raise CheckpointError(
        f'the checkpoint at step {step} in {self.directory} is unreadable: {_first_line(e)}'
      ) from e
    if not absent:
      return restored
    logging.info('Checkpoint %d predates state fields %s: new values', step, ', '.join(absent))
    added = {name: _placed(_ADDED_FIELDS[name](), getattr(abstract_state, name)) for name in absent}
    return GANState(**restored, **added)

  def _check_fits(self, step: int, abstract_state: GANState) -> list[str]:
    """Compares the checkpoint's array shapes with the config's before orbax reads anything;
    returns the fields of _ADDED_FIELDS that the checkpoint predates.

    A mismatch is the common user error (another model or dataset in the same workdir); this
    names the first differing array, and spares the user the noise of a failed async restore.
    """
    path = epath.Path(self.directory) / str(step) / 'default'
    if not path.exists():
      return []  # an unusual layout: leave the verdict to orbax's restore
    try:
      metadata = ocp.StandardCheckpointHandler().metadata(path)
    except Exception as e:  # unreadable metadata: a damaged checkpoint
      raise CheckpointError(f'the checkpoint at step {step} is unreadable: {_first_line(e)}') from e
    saved, wanted = _shapes(metadata), _shapes(abstract_state)
    saved_fields = set(getattr(metadata, 'tree', metadata))  # fields without arrays too ({})
    absent = [name for name in _ADDED_FIELDS if name not in saved_fields]
    wanted = {k: v for k, v in wanted.items() if k.split('/')[0] not in absent}
    if saved == wanted:
      return absent
    if missing := sorted(wanted.keys() - saved.keys()):
      detail = f'the config has {missing[0]}, which the checkpoint lacks'
    elif extra := sorted(saved.keys() - wanted.keys()):
      detail = f'the checkpoint has {extra[0]}, which the config lacks'
    else:
      name = next(k for k in sorted(wanted) if wanted[k] != saved[k])
      detail = f'{name} is {saved[name]} in the checkpoint, {wanted[name]} in the config'
    raise CheckpointError(
      f'the checkpoint at step {step} in {self.directory} does not fit this config '
      f'(was it written with another model or dataset?): {detail}'
    )

  def restore_latest(self, abstract_state: GANState) -> GANState | None:
    """The newest checkpoint that restores, or None if there is none.

    A newer checkpoint that cannot be read while an older one can (a truncated or damaged
    write) is moved aside to ../corrupt_checkpoints/<step>, with a warning, never deleted. If
    no checkpoint restores, the newest one's error is raised (typically a config mismatch).
    """
    steps = sorted(self.all_steps(), reverse=True)
    errors = []
    for step in steps:
      try:
        state = self.restore(abstract_state, step)
      except CheckpointError as e:
        errors.append((step, e))
        continue
      for bad_step, e in errors:
        self._move_aside(bad_step, e)
      return state
    if errors:
      raise errors[0][1]
    return None

  def _move_aside(self, step: int, error: Exception) -> None:
    target = os.path.join(os.path.dirname(self.directory), 'corrupt_checkpoints', str(step))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.exists(target):
      target += f'.{int(time.time())}'
    os.rename(os.path.join(self.directory, str(step)), target)
    logging.warning('Checkpoint %d is unreadable (%s); moved it to %s', step, error, target)
    self._manager.reload()

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def _placed(tree, abstract):
  """`tree` on the shardings of `abstract` (ShapeDtypeStructs), where they have any."""
  return jax.tree.map(
    lambda x, a: x if a.sharding is None else jax.device_put(x, a.sharding), tree, abstract
  )


def _first_line(e: Exception) -> str:
  text = str(e).strip()
  return text.splitlines()[0][:300] if text else type(e).__name__


def _shapes(tree) -> dict[str, tuple]:
  """{'g_params/Dense_0/kernel': ((100, 6272), 'float32'), ...} for arrays or their metadata."""
  tree = getattr(tree, 'tree', tree)  # orbax's tree metadata wraps the tree
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    name = '/'.join(str(getattr(k, 'key', getattr(k, 'idx', getattr(k, 'name', k)))) for k in path)
    out[name] = (tuple(leaf.shape), str(leaf.dtype))
  return out
