"""The rows of docs/results.md's recipe table, from the trainer's own metrics.jsonl.

  python -m benchmarks.recipe_table runs/mnist runs/mnist_wgan_gp ...   # workdirs

For each evaluation row (`eval_*` keys) of each workdir: the step, the train time up to it (the
sum over log intervals of steps / steps_per_sec, so compilation, grids, checkpoints and
evaluations are excluded) and the metrics.
"""

import json
import os
import sys


def evaluations(workdir: str) -> list[tuple[dict, float]]:
  """(evaluation row, train seconds up to it) for each `eval_*` row of the run."""
  out, seconds, last = [], 0.0, 0
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    for line in f:
      r = json.loads(line)
      if 'd_loss' in r:  # a training log; without steps_per_sec (after a resume) no time
        if r.get('steps_per_sec'):
          seconds += (r['step'] - last) / r['steps_per_sec']
        last = r['step']
      if 'eval_fid' in r:
        out.append((r, seconds))
  return out


def _cell(r: dict, key: str, fmt: str) -> str:
  """A metric as the tables print it, or '-' where the run has none (e.g. Stacked MNIST has
  modes, not a classifier score)."""
  return format(r[f'eval_{key}'], fmt) if f'eval_{key}' in r else '-'


def rows(workdir: str) -> list[str]:
  """Step, train time, fid, classifier score, precision, recall, class_kl and classes covered;
  then modes covered and mode KL for runs that count modes (Stacked MNIST)."""
  name = os.path.basename(os.path.normpath(workdir))
  out = []
  for r, seconds in evaluations(workdir):
    cells = [f'`{name}`', f'{r["step"]:,}', f'{seconds:.0f} s', _cell(r, 'fid', '.1f')]
    cells += [_cell(r, 'classifier_score', '.2f')]
    cells += [_cell(r, k, '.3f') for k in ('precision', 'recall', 'class_kl')]
    cells += [_cell(r, 'classes_covered', '.0f')]
    if 'eval_modes_covered' in r:
      cells += [_cell(r, 'modes_covered', '.0f'), _cell(r, 'mode_kl', '.3f')]
    out.append('| ' + ' | '.join(cells) + ' |')
  return out


if __name__ == '__main__':
  for workdir in sys.argv[1:]:
    print('\n'.join(rows(workdir)))
