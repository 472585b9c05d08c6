"""Kill anywhere: SIGKILL a real training process in the middle of a checkpoint write and at
random moments, restart it each time, and finish.

The run must always resume and end bit-for-bit equal to an uninterrupted one (CPU), with the
same metrics.jsonl. It runs at XLA's default optimisation level, the one users run (the other
tests compile with most optimisations off: tests/conftest.py), with a persistent compilation
cache, so that only the first start compiles.

The first kill is certain to land in a write: tests/instrumented.py holds the writer of step
WRITE_KILLED's checkpoint just before it commits it (orbax renames the finished temporary
directory into place), and the test kills the process there, while the training loop, ahead
of the writer, has logged steps that no checkpoint holds. Checkpoints are written every step
(asynchronously), so some of the random kills land in writes too.
"""

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from jaxgan import workdir as workdir_lib
from jaxgan.checkpoint import Checkpointer
from tests.conftest import REPO
from tests.test_optimized import default_optimizations_env

WRITE_KILLED = 5
RANDOM_KILLS = 2  # each restart costs a few seconds of start-up
ARGS = [
  '--config=configs/test.py',
  '--config.num_steps=40',
  '--config.log_every=1',
  '--config.checkpoint_every=1',
  '--config.sample_every=5',
]


def _start(workdir, **env):
  """jaxgan.main (through tests/instrumented.py) at XLA's default optimisation level."""
  env = default_optimizations_env() | env
  cache = workdir.parent / 'xla_cache'  # shared by every start of this test
  env |= {
    'PYTHONUNBUFFERED': '1',
    'JAX_COMPILATION_CACHE_DIR': str(cache),
    'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0',
  }
  return subprocess.Popen(
    [sys.executable, '-m', 'tests.instrumented', f'--workdir={workdir}', *ARGS],
    cwd=REPO,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
    text=True,
  )


def _kill_in_write(workdir: Path, marker: Path) -> Path:
  """Starts the run, kills it while step WRITE_KILLED's checkpoint waits to be committed, and
  returns that checkpoint's temporary directory."""
  proc = _start(workdir, JAXGAN_TEST_PAUSE_CHECKPOINT=f'{WRITE_KILLED}:{marker}')
  deadline = time.monotonic() + 600  # a start-up on a busy machine; never a timing assumption
  while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
    time.sleep(0.1)
  proc.kill()
  out, _ = proc.communicate()
  assert marker.exists(), f'the writer never reached the commit of step {WRITE_KILLED}:\n{out}'
  return Path(marker.read_text())


def _metrics(workdir: Path) -> list[dict]:
  """metrics.jsonl's rows, less the clock's throughput."""
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return [{k: v for k, v in r.items() if k != 'steps_per_sec'} for r in rows]


def test_survives_sigkill_in_a_checkpoint_write_and_anywhere(tmp_path):
  workdir = tmp_path / 'killed'
  pending = _kill_in_write(workdir, tmp_path / 'paused')
  checkpoints = workdir / 'checkpoints'
  # The kill landed in the write: its files are there, uncommitted, the checkpoint a restart
  # resumes from is the step before, and the loop had logged steps beyond it.
  assert pending.parent == checkpoints and (pending / 'default').is_dir()
  ckpt = Checkpointer(str(checkpoints))
  assert ckpt.latest_step() == WRITE_KILLED - 1
  ckpt.close()
  assert _metrics(workdir)[-1]['step'] > WRITE_KILLED

  rng = random.Random(0)
  kills, finished = 0, False
  while kills < RANDOM_KILLS:
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
  assert kills == RANDOM_KILLS, f'the run finished after only {kills} kills; make it longer'
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
  # One row per step, as in the straight run: the rows logged past the checkpoint a restart
  # resumed from were dropped and written again.
  assert _metrics(workdir) == _metrics(reference)
