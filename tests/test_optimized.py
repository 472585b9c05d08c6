"""A bit-for-bit claim at XLA's default optimisation level, the one users run.

The other tests compile with most optimisations off (tests/conftest.py), which changes the CPU
kernels and so the numbers: two programs that agree there need not agree as users compile
them. The runs here are processes started without that setting (as are test_kill.py's kills
and resumes).
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np

from jaxgan import workdir as workdir_lib
from tests.conftest import REPO


def default_optimizations_env() -> dict[str, str]:
  """This process's environment less the tests' setting, for a process that compiles as
  users' do."""
  return {k: v for k, v in os.environ.items() if k != 'JAX_DISABLE_MOST_OPTIMIZATIONS'}


def _train(workdir, *args: str) -> list[dict]:
  """configs/test.py for 8 steps in a fresh process; metrics.jsonl's rows, less the clock's."""
  argv = [sys.executable, '-m', 'jaxgan.main', '--config=configs/test.py', f'--workdir={workdir}']
  argv += ['--config.num_steps=8', '--config.log_every=4', '--config.checkpoint_every=8']
  argv += ['--config.sample_every=0', *args]
  r = subprocess.run(
    argv, cwd=REPO, env=default_optimizations_env(), capture_output=True, text=True, timeout=300
  )
  assert r.returncode == 0, r.stderr[-3000:]
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return [{k: v for k, v in row.items() if k != 'steps_per_sec'} for row in rows]


def test_steps_per_call_fuses_iterations_without_changing_the_run(tmp_path):
  """One compiled call per step, or 4 steps fused in one lax.scan (steps_per_call): the
  same metrics and the same final state, bit for bit."""
  one = _train(tmp_path / 'one', '--config.steps_per_call=1')
  fused = _train(tmp_path / 'fused', '--config.steps_per_call=4')
  assert [r['step'] for r in fused] == [4, 8]
  assert fused == one
  _, _, a = workdir_lib.load_run(str(tmp_path / 'one'))
  _, _, b = workdir_lib.load_run(str(tmp_path / 'fused'))
  assert int(a.step) == int(b.step) == 8
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)
