"""benchmarks/recipe_table.py turns a run's metrics.jsonl into docs/results.md rows."""

import json

from benchmarks import recipe_table


def test_rows_sum_train_time_and_format_eval_metrics(tmp_path):
  run = tmp_path / 'mnist_lsgan'
  run.mkdir()
  lines = [
    {'step': 100, 'steps_per_sec': 10.0},
    {'step': 200, 'steps_per_sec': 5.0},
    {
      'step': 200,
      'eval_fid': 98.47,
      'eval_classifier_score': 4.907,
      'eval_precision': 0.376,
      'eval_recall': 0.4301,
      'eval_class_kl': 0.1734,
      'eval_classes_covered': 10.0,
    },
    {'step': 300, 'steps_per_sec': 0.0},  # the first log after a resume: no rate, no time
  ]
  (run / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in lines))
  # 100 steps at 10/s + 100 at 5/s = 30 s.
  assert recipe_table.rows(str(run)) == [
    '| `mnist_lsgan` | 200 | 30 s | 98.5 | 4.91 | 0.376 | 0.430 | 0.173 | 10 |'
  ]
