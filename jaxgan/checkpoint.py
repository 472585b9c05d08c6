"""Orbax checkpoints of the whole GANState in WORKDIR/checkpoints, asynchronous, keep-N."""

import os

import jax
import orbax.checkpoint as ocp

from jaxgan.errors import CheckpointError
from jaxgan.state import GANState


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
    try:
      return self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
    except Exception as e:  # orbax raises many types for a mismatched tree; all mean the same
      first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise CheckpointError(
        f'the checkpoint at step {step} in {self.directory} does not fit this config '
        f'(was it written with another model or dataset?): {first[:300]}'
      ) from e

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
