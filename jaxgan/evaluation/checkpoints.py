"""Finding and restoring a run's checkpoint by name: `latest`, `best` or a step number.

`best` is WORKDIR/checkpoints_best, where the trainer keeps the best-by-FID state; the others
are in WORKDIR/checkpoints.
"""

import os

import ml_collections

from jaxgan import workdir as workdir_lib
from jaxgan.errors import CheckpointError
from jaxgan.state import GAN, GANState

FOLDERS = {'latest': 'checkpoints', 'best': 'checkpoints_best'}


def _steps(directory: str) -> list[int]:
  """Steps of the finished checkpoints in `directory` (orbax names them by step)."""
  if not os.path.isdir(directory):
    return []
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def resolve(workdir: str, checkpoint: str) -> tuple[str, int]:
  """(checkpoint folder, step) named by `checkpoint`: 'latest', 'best' or a step number.

  'best' is the newest checkpoint in checkpoints_best (the trainer keeps the best there).
  """
  if checkpoint not in FOLDERS and not checkpoint.isdigit():
    raise CheckpointError(f'--checkpoint must be latest, best or a step number, got {checkpoint!r}')
  directory = os.path.join(workdir, FOLDERS.get(checkpoint, 'checkpoints'))
  available = _steps(directory)
  if not available:
    raise CheckpointError(f'no checkpoint in {directory!r}: is {workdir!r} a trained workdir?')
  if checkpoint in FOLDERS:
    return directory, available[-1]
  if int(checkpoint) not in available:
    have = ', '.join(map(str, available))
    raise CheckpointError(
      f'no checkpoint at step {checkpoint} in {directory!r} (there are: {have})'
    )
  return directory, int(checkpoint)


def load(
  workdir: str, checkpoint: str = 'latest'
) -> tuple[ml_collections.ConfigDict, GAN, GANState]:
  """(config, gan, state) of the checkpoint named by `checkpoint` (see `resolve`)."""
  directory, step = resolve(workdir, checkpoint)
  return workdir_lib.load_run(workdir, step, folder=os.path.basename(directory))
