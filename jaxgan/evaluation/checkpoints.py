"""Finding and restoring a run's checkpoint by name: `latest`, `best` or a step number.

`best` is WORKDIR/checkpoints_best, where the trainer keeps the best-by-FID state; the others
are in WORKDIR/checkpoints.
"""

import json
import os

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgan import train
from jaxgan.checkpoint import Checkpointer
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
  for name in ('config.json', 'run.json'):
    if not os.path.exists(os.path.join(workdir, name)):
      raise CheckpointError(f'{workdir!r} has no {name}: is it a jaxgan workdir?')
  if checkpoint != 'best':
    return train.load_run(workdir, step)
  # train.load_run reads WORKDIR/checkpoints only; these are its steps, for checkpoints_best.
  with open(os.path.join(workdir, 'config.json')) as f:
    config = ml_collections.ConfigDict(json.load(f))
  with open(os.path.join(workdir, 'run.json')) as f:
    image_shape = tuple(json.load(f)['image_shape'])
  gan = train.build_gan(config, image_shape)
  replicated = NamedSharding(Mesh(np.array(jax.devices()), ('data',)), P())
  ckpt = Checkpointer(directory)
  state = ckpt.restore(train._abstract_state(gan, image_shape, replicated), step)
  ckpt.close()
  return config, gan, state
