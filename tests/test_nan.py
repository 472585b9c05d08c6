"""on_nan='rollback': a real divergence (huge learning rates) is rolled back and survives.

Learning rates of 1e30 make the losses NaN within a step on CPU; 1e4 and below train.
"""

import json
import os
import re
import shutil

import jax
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import train
from jaxgan import workdir as workdir_lib
from jaxgan.errors import ConfigError, JaxganError

HUGE = 1e30


def _metrics(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def _rollbacks(workdir):
  return json.loads((workdir / 'rollbacks.json').read_text())


def _set_lrs(config, lr):
  with config.ignore_type():
    config.optim.g_lr = config.optim.d_lr = lr


def _checkpoints_are_finite(workdir) -> list[int]:
  saved = sorted(int(s) for s in os.listdir(workdir / 'checkpoints') if s.isdigit())
  for step in saved:
    _, _, state = workdir_lib.load_run(str(workdir), step=step)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state)), step
  return saved


def test_rollback_restores_the_checkpoint_lowers_the_lrs_and_persists(
  test_config, tmp_path, capsys
):
  test_config.num_steps = 3
  train.train_and_evaluate(test_config, str(tmp_path / 'run'))
  shutil.copytree(tmp_path / 'run', tmp_path / 'by_hand')
  before = _metrics(tmp_path / 'run')

  test_config.num_steps = 6
  test_config.on_nan = 'rollback'
  test_config.rollback_lr_factor = 1e-34  # one rollback: 1e30 -> 1e-4
  _set_lrs(test_config, HUGE)
  state = train.train_and_evaluate(test_config, str(tmp_path / 'run'))
  out = capsys.readouterr().out
  assert re.search(
    r'^step 4: [dg]_\w+ is nan; rolled back to step 3, learning rates x1e-34 \(rollback 1 of 3\)$',
    out,
    re.M,
  ), out
  assert int(state.step) == 6
  assert _rollbacks(tmp_path / 'run') == {'rollbacks': 1, 'lr_scale': 1e-34}
  rows = _metrics(tmp_path / 'run')
  assert [r['step'] for r in rows] == [2, 3, 4, 6]  # the NaN step was never logged
  assert rows[:2] == before
  assert all(np.isfinite(v) for r in rows for v in r.values())
  assert [r.get('rollbacks') for r in rows] == [None, None, 1, 1]
  assert _checkpoints_are_finite(tmp_path / 'run') == [3, 6]

  # The rollback is exactly a resume from step 3 with both learning rates lowered.
  _set_lrs(test_config, HUGE * 1e-34)
  test_config.on_nan = 'stop'
  by_hand = train.train_and_evaluate(test_config, str(tmp_path / 'by_hand'))
  pairs = zip(jax.tree.leaves(state), jax.tree.leaves(by_hand), strict=True)
  assert all(np.array_equal(a, b) for a, b in pairs)

  # A new process goes on with the lowered rates: 1e30 would diverge again at once.
  _set_lrs(test_config, HUGE)
  test_config.on_nan = 'rollback'
  test_config.num_steps = 9
  state = train.train_and_evaluate(test_config, str(tmp_path / 'run'))
  assert int(state.step) == 9
  assert 'rolled back' not in capsys.readouterr().out
  assert _rollbacks(tmp_path / 'run') == {'rollbacks': 1, 'lr_scale': 1e-34}
  assert [r['step'] for r in _metrics(tmp_path / 'run')] == [2, 3, 4, 6, 8, 9]
  assert _checkpoints_are_finite(tmp_path / 'run') == [3, 6, 9]


def test_gives_up_after_max_rollbacks_and_the_count_survives_a_restart(
  test_config, tmp_path, capsys
):
  test_config.on_nan = 'rollback'
  test_config.max_rollbacks = 1
  _set_lrs(test_config, HUGE)  # x0.5 is far from enough
  # No checkpoint yet: the rollback restarts from the initial state.
  with pytest.raises(
    JaxganError,
    match=r'^[dg]_\w+ is nan in the steps up to 2: training diverged again after 1 rollback '
    r'\(learning rates x0\.5\)',
  ):
    train.train_and_evaluate(test_config, str(tmp_path))
  assert 'rolled back to step 0, learning rates x0.5 (rollback 1 of 1)' in capsys.readouterr().out
  assert _rollbacks(tmp_path) == {'rollbacks': 1, 'lr_scale': 0.5}

  # Restarted, the run has no rollback left and gives up at the first divergence.
  with pytest.raises(JaxganError, match=r'diverged again after 1 rollback \(learning rates x0\.5'):
    train.train_and_evaluate(test_config, str(tmp_path))
  assert 'rolled back' not in capsys.readouterr().out
  assert not os.listdir(tmp_path / 'checkpoints')
  assert not (tmp_path / 'metrics.jsonl').exists() or not _metrics(tmp_path)


def test_stop_is_the_default_and_writes_no_rollbacks(test_config, tmp_path):
  assert test_config.on_nan == 'stop'
  _set_lrs(test_config, HUGE)
  with pytest.raises(JaxganError, match=r'in the steps up to 2: training diverged \(.*on_nan='):
    train.train_and_evaluate(test_config, str(tmp_path))
  assert not (tmp_path / 'rollbacks.json').exists()


def test_unreadable_rollbacks_file(test_config, tmp_path):
  (tmp_path / 'rollbacks.json').write_text('{"rollbacks": 1')
  with pytest.raises(JaxganError, match='rollbacks.json is unreadable.*delete it'):
    train.train_and_evaluate(test_config, str(tmp_path))


BAD_VALUES = [
  ('on_nan', 'skip', 'on_nan must be one of stop, rollback'),
  ('on_nan', True, 'on_nan must be one of'),
  ('rollback_lr_factor', 0, r'rollback_lr_factor must be a number in \(0, 1\)'),
  ('rollback_lr_factor', 1.0, 'rollback_lr_factor must be a number in'),
  ('rollback_lr_factor', 2, 'rollback_lr_factor must be a number in'),
  ('rollback_lr_factor', '0.5', 'rollback_lr_factor must be a number in'),
  ('max_rollbacks', 0, 'max_rollbacks must be >= 1'),
  ('max_rollbacks', 2.0, 'max_rollbacks must be an integer'),
]


@pytest.mark.parametrize('key, value, message', BAD_VALUES, ids=lambda v: repr(v)[:20])
def test_bad_values(test_config, key, value, message):
  with test_config.ignore_type():
    test_config[key] = value
  with pytest.raises(ConfigError, match=f'config.{message}'):
    config_lib.validate(test_config)
