"""benchmarks/recipe_table.py turns a run's metrics.jsonl into docs/results.md rows."""

import json

from benchmarks import recipe_table
from tests.conftest import REPO


def test_rows_sum_train_time_and_format_eval_metrics(tmp_path):
  run = tmp_path / 'mnist_lsgan'
  run.mkdir()
  lines = [
    {'step': 100, 'd_loss': 1.0, 'steps_per_sec': 10.0},
    {'step': 200, 'd_loss': 1.0, 'steps_per_sec': 5.0},
    {
      'step': 200,
      'eval_fid': 98.47,
      'eval_classifier_score': 4.907,
      'eval_precision': 0.376,
      'eval_recall': 0.4301,
      'eval_class_kl': 0.1734,
      'eval_classes_covered': 10.0,
    },
    {'step': 300, 'd_loss': 1.0},  # the first log after a resume: no rate, no time
  ]
  (run / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in lines))
  # 100 steps at 10/s + 100 at 5/s = 30 s.
  assert recipe_table.rows(str(run)) == [
    '| `mnist_lsgan` | 200 | 30 s | 98.5 | 4.91 | 0.376 | 0.430 | 0.173 | 10 |'
  ]


def test_rows_of_a_run_that_counts_modes(tmp_path):
  """Stacked MNIST's evaluation has modes and no classifier score: '-' there, modes after."""
  run = tmp_path / 'stacked'
  run.mkdir()
  lines = [
    {'step': 50, 'd_loss': 1.0, 'steps_per_sec': 5.0},
    {'step': 50, 'eval_fid': 92.63, 'eval_precision': 0.4188, 'eval_recall': 0.5359},
  ]
  lines[1] |= {'eval_modes_covered': 1000, 'eval_mode_kl': 0.16824}
  (run / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in lines))
  assert recipe_table.rows(str(run)) == [
    '| `stacked` | 50 | 10 s | 92.6 | - | 0.419 | 0.536 | - | - | 1000 | 0.168 |'
  ]


def test_ablation_runs_the_base_once_and_reads_the_final_evaluation(tmp_path):
  from benchmarks import ablation

  base = ablation.base_values(str(REPO / 'configs' / 'mnist_unconditional.py'))
  assert base['model.d_norm'] == 'batch'  # '' resolved: D uses model.norm
  same = [o for _, _, o in ablation.ROWS if ablation.run_name(o, base, 0) == 'base_s0']
  assert len(same) == len({q for q, _, _ in ablation.ROWS})  # one base choice per question
  assert ablation.run_name({'train.d_steps': 5}, base, 1) == 'd_steps-5_s1'
  run = tmp_path / 'r'
  run.mkdir()
  lines = [
    {'step': 100, 'd_loss': 1.0, 'steps_per_sec': 20.0},
    {'step': 200, 'd_loss': 1.0, 'steps_per_sec': 10.0},
    {'step': 200, 'eval_fid': 3.0, 'eval_classifier_score': 9.1},
  ]
  (run / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in lines))
  assert ablation.result(str(run), 300) is None  # not finished
  got = ablation.result(str(run), 200)
  assert got['eval_fid'] == 3.0 and got['train_seconds'] == 15.0
