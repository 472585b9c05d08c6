"""Kill anywhere: SIGKILL a real training process at random moments, restart it, and finish.

Checkpoints are written every step (asynchronously), so many kills land mid-write. The run
must always resume and end bit-for-bit equal to an uninterrupted one (CPU).
"""

import os
import random
import subprocess
import sys
import time

import jax
import numpy as np

from jaxgan import workdir as workdir_lib
from tests.conftest import REPO

KILLS = 4  # each restart costs a few seconds of start-up
ARGS = [
  '--config=configs/test.py',
  '--config.num_steps=40',
  '--config.log_every=1',
  '--config.checkpoint_every=1',
  '--config.sample_every=5',
]


def _start(workdir):
  # A shared persistent compilation cache makes each restart skip most of XLA compilation.
  cache = workdir.parent / 'xla_cache'
  env = {
    **os.environ,
    'PYTHONUNBUFFERED': '1',
    'JAX_COMPILATION_CACHE_DIR': str(cache),
    'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0',
  }
  return subprocess.Popen(
    [sys.executable, '-m', 'jaxgan.main', f'--workdir={workdir}', *ARGS],
    cwd=REPO,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
    text=True,
  )


def test_survives_repeated_sigkill(tmp_path):
  rng = random.Random(0)
  workdir = tmp_path / 'killed'
  kills, finished = 0, False
  while kills < KILLS:
    proc = _start(workdir)
    # Kill after a random number of completed steps plus a random fraction of a step, or
    # sometimes during start-up, before any step.
    wait_lines = rng.choice([0, 1, 1, 2, 3])
    for _ in range(wait_lines):
      line = proc.stdout.readline()
      if not line or 'step 40/40' in line:
        finished = True
        break
    if finished:
      proc.wait(timeout=60)
      break
    time.sleep(rng.uniform(0, 0.05) if wait_lines else rng.uniform(1.0, 4.0))
    proc.kill()
    proc.wait()
    kills += 1
  assert kills == KILLS, f'the run finished after only {kills} kills; make it longer'
  proc = _start(workdir)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0 and 'step 40/40' in out

  reference = tmp_path / 'straight'
  proc = _start(reference)
  proc.communicate(timeout=300)
  assert proc.returncode == 0
  _, _, a = workdir_lib.load_run(str(workdir))
  _, _, b = workdir_lib.load_run(str(reference))
  assert int(a.step) == int(b.step) == 40
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)
