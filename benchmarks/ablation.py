"""The ablation table of docs/results.md: one training run per choice, on one fixed budget.

  python -m benchmarks.ablation --out=runs/ablation --num_steps=3000 [--seeds=0,1] \
    [--only=loss,D:G] [--data_dir=../shared/data/mnist] [--print_only]

Each row changes one choice of the base config (`--config`, default
configs/mnist_unconditional.py, the DCGAN without clusters that the seed's questions are
about) and
trains it with `python -m jaxgan.main` for --num_steps, evaluated once at the end by the
trainer (10,000 samples against the test split). Rows whose settings equal the base config's
are the base run, trained once. Finished runs are not trained again, so the command resumes
where it stopped. Prints a markdown table: FID, classifier score, precision, recall, classes
covered and train time (as benchmarks/recipe_table.py counts it).
"""

import argparse
import importlib.util
import os
import subprocess
import sys

from benchmarks import recipe_table

# (question, choice, overrides): the seed's questions first, then what jaxgan added.
ROWS = [
  ('loss', 'BCE (non-saturating)', {'train.loss': 'non_saturating'}),
  ('loss', 'hinge', {'train.loss': 'hinge'}),
  ('loss', 'least squares', {'train.loss': 'least_squares'}),
  ('D norm', 'batch norm', {'model.d_norm': 'batch', 'model.spectral_norm': False}),
  ('D norm', 'none', {'model.d_norm': 'none', 'model.spectral_norm': False}),
  ('D norm', 'spectral norm', {'model.d_norm': 'none', 'model.spectral_norm': True}),
  ('D activation', 'LeakyReLU(0.2)', {'model.d_activation': 'leaky_relu'}),
  ('D activation', 'ReLU', {'model.d_activation': 'relu'}),
  ('D downsampling', 'strided conv', {'model.downsample': 'strided_conv'}),
  ('D downsampling', 'average pool', {'model.downsample': 'avg_pool'}),
  ('G upsampling', 'transposed conv', {'model.upsample': 'conv_transpose'}),
  ('G upsampling', 'pixel shuffle', {'model.upsample': 'pixel_shuffle'}),
  ('latent', 'Gaussian', {'model.latent_dist': 'gaussian'}),
  ('latent', 'uniform', {'model.latent_dist': 'uniform'}),
  ('D:G steps', '1:1', {'train.d_steps': 1}),
  ('D:G steps', '2:1', {'train.d_steps': 2}),
  ('D:G steps', '5:1', {'train.d_steps': 5}),
  ('balancing', 'off', {'train.balance': 'none'}),
  ('balancing', 'loss ratio', {'train.balance': 'loss_ratio'}),
  ('optimizer', 'Adam', {'optim.name': 'adam'}),
  (
    'optimizer',
    'RMSProp 1.5e-4',
    {'optim.name': 'rmsprop', 'optim.g_lr': 1.5e-4, 'optim.d_lr': 1.5e-4},
  ),
  ('dropout in D', 'off', {'model.d_dropout': 0.0}),
  ('dropout in D', '0.3', {'model.d_dropout': 0.3}),
  # What jaxgan added.
  ('learning rate', '2e-4 (DCGAN)', {'optim.g_lr': 2e-4, 'optim.d_lr': 2e-4}),
  ('learning rate', '1e-3', {'optim.g_lr': 1e-3, 'optim.d_lr': 1e-3}),
  ('standing BN stats', 'off', {'train.standing_stats': 0}),
  ('standing BN stats', '10 batches', {'train.standing_stats': 10}),
  ('G width', '128, 64', {'model.g_features': (128, 64)}),
  ('G width', '256, 128', {'model.g_features': (256, 128)}),
  ('labels', 'none', {'model.conditional': False, 'data.clusters': 0}),
  ('labels', '50 k-means clusters', {'model.conditional': True, 'data.clusters': 50}),
  ('labels', "MNIST's own (not unsupervised)", {'model.conditional': True, 'data.clusters': 0}),
  ('InfoGAN codes', 'none', {'model.latent_classes': 0, 'model.latent_continuous': 0}),
  ('InfoGAN codes', '10 classes', {'model.latent_classes': 10, 'model.latent_continuous': 0}),
  (
    'InfoGAN codes',
    '10 classes + 2 continuous',
    {'model.latent_classes': 10, 'model.latent_continuous': 2},
  ),
]


COLUMNS = ('question', 'choice', 'seed', 'fid', 'classifier score', 'precision', 'recall')
COLUMNS += ('classes', 'train time')
HEADER = '| ' + ' | '.join(COLUMNS) + ' |\n| --- | --- |' + ' ---: |' * (len(COLUMNS) - 2)


def base_values(config_path: str) -> dict:
  """{'train.loss': ..., ...}: the base config's value of every key the rows set."""
  spec = importlib.util.spec_from_file_location('base_config', config_path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  out = {}
  for _, _, overrides in ROWS:
    for key in overrides:
      node = config
      for name in key.split('.'):  # 'batch_size', 'train.loss'
        node = node[name]
      out[key] = node
  if out.get('model.d_norm') == '':  # '' means D uses model.norm
    out['model.d_norm'] = config.model.norm
  return out


def _arg(value) -> str:
  """A value as --config.KEY=VALUE takes it: tuples as 256,128."""
  return ','.join(map(str, value)) if isinstance(value, tuple) else str(value)


def run_name(overrides: dict, base: dict, seed: int) -> str:
  """The workdir name: 'base' for the base settings, else the keys that differ."""
  diff = {k: v for k, v in overrides.items() if base[k] != v}
  name = '_'.join(f'{k.split(".")[-1]}-{_arg(v)}' for k, v in sorted(diff.items())) or 'base'
  return f'{name}_s{seed}'


def command(config: str, workdir: str, overrides: dict, num_steps: int, seed: int, data_dir: str):
  args = [sys.executable, '-m', 'jaxgan.main', f'--config={config}', f'--workdir={workdir}']
  args += [f'--config.num_steps={num_steps}', f'--config.eval_every={num_steps}']
  args += [f'--config.seed={seed}', '--config.sample_every=0']
  args += [f'--config.{k}={_arg(v)}' for k, v in overrides.items()]
  if data_dir:
    args.append(f'--config.data.dir={data_dir}')
  return args


def result(workdir: str, num_steps: int) -> dict | None:
  """The evaluation at num_steps of a finished run, with its train time, or None."""
  if not os.path.exists(os.path.join(workdir, 'metrics.jsonl')):
    return None
  final = [(r, s) for r, s in recipe_table.evaluations(workdir) if r['step'] == num_steps]
  return {**final[-1][0], 'train_seconds': final[-1][1]} if final else None


def table_row(question: str, choice: str, is_base: bool, seed: int, r: dict) -> str:
  cells = [
    question,
    f'**{choice}**' if is_base else choice,
    str(seed),
    f'{r["eval_fid"]:.1f}',
    f'{r["eval_classifier_score"]:.2f}',
    f'{r["eval_precision"]:.3f}',
    f'{r["eval_recall"]:.3f}',
    f'{r["eval_classes_covered"]:.0f}',
    f'{r["train_seconds"]:.0f} s',
  ]
  return '| ' + ' | '.join(cells) + ' |'


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='configs/mnist_unconditional.py')
  parser.add_argument('--out', required=True, help='folder for the runs')
  parser.add_argument('--num_steps', type=int, default=3000)
  parser.add_argument('--seeds', default='0')
  parser.add_argument('--only', default='', help='comma-separated questions (default: all)')
  parser.add_argument('--data_dir', default='')
  parser.add_argument('--print_only', action='store_true', help='no training: table only')
  args = parser.parse_args()
  base = base_values(args.config)
  only = set(filter(None, args.only.split(',')))
  rows = [row for row in ROWS if not only or row[0] in only]
  print(HEADER)
  for question, choice, overrides in rows:
    for seed in map(int, args.seeds.split(',')):
      workdir = os.path.join(args.out, run_name(overrides, base, seed))
      if result(workdir, args.num_steps) is None and not args.print_only:
        cmd = command(args.config, workdir, overrides, args.num_steps, seed, args.data_dir)
        print(f'training {workdir}', file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
      r = result(workdir, args.num_steps)
      if r:
        is_base = all(base[k] == v for k, v in overrides.items())
        print(table_row(question, choice, is_base, seed, r), flush=True)


if __name__ == '__main__':
  main()
