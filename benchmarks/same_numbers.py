"""Runs every shipped config for a few steps and fingerprints what it wrote, so that a
refactor can show it moved no number.

  python -m benchmarks.same_numbers --out=/tmp/before --cifar=/tmp/data/cifar10-jpg
  (change the code)
  python -m benchmarks.same_numbers --out=/tmp/after --cifar=/tmp/data/cifar10-jpg
  python -m benchmarks.same_numbers --compare /tmp/before /tmp/after

Each run is `python -m jaxgan.main` in a subprocess at the default XLA optimisation level,
with `num_steps` (200 for configs/mnist.py, 20 for the others), a sample grid and a small
evaluation at the last step. The fingerprint of a run is metrics.jsonl without its timings and
the SHA-256 of every sample grid; `--compare` prints each run as same or different, and exits
1 if any differs. The workdirs stay under --out, so checkpoints written by the code before a
change can be restored by the code after it.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _timing(key: str) -> bool:
  return key.endswith(('seconds', 'per_sec'))


# (name, config argument, overrides); MNIST-based runs train on 2,000 images of
# --mnist; {cifar} is the CIFAR-10 JPEG folder (train/ and test/).
RUNS = [
  ('mnist', 'configs/mnist.py', []),
  ('mnist_best', 'configs/mnist_best.py', []),
  ('mnist_conditional', 'configs/mnist_conditional.py', []),
  ('mnist_dcgan_classic', 'configs/mnist_dcgan_classic.py', []),
  ('mnist_hinge_sn', 'configs/mnist_hinge_sn.py', []),
  ('mnist_lsgan', 'configs/mnist_lsgan.py', []),
  ('mnist_seed_rmsprop', 'configs/mnist_seed_rmsprop.py', []),
  ('mnist_unconditional', 'configs/mnist_unconditional.py', []),
  ('mnist_wgan_gp', 'configs/mnist_wgan_gp.py', []),
  ('stacked_mnist', 'configs/stacked_mnist.py', []),
  ('test', 'configs/test.py', []),
  (
    'folder',
    'configs/folder.py',
    ['data.dir={cifar}', 'data.resolution=32', 'eval_features=cifar10_classifier'],
  ),
  ('cifar10_dcgan', 'configs/cifar10_dcgan.py:folder', ['data.dir={cifar}']),
  ('cifar10', 'configs/cifar10.py:folder', ['data.dir={cifar}']),
  ('cifar10_diffaug_10pct', 'configs/cifar10_diffaug_10pct.py:folder', ['data.dir={cifar}']),
  ('cifar10_sngan_cpu', 'configs/cifar10_sngan.py:folder,cpu', ['data.dir={cifar}']),
  ('cifar10_sngan_cond', 'configs/cifar10_sngan_cond.py:folder', ['data.dir={cifar}']),
  ('cifar10_sngan', 'configs/cifar10_sngan.py:folder', ['data.dir={cifar}']),
]


def fingerprint(workdir: Path) -> dict:
  rows = []
  for line in (workdir / 'metrics.jsonl').read_text().splitlines():
    row = json.loads(line)
    rows.append({k: v for k, v in row.items() if not _timing(k)})
  grids = {
    p.name: hashlib.sha256(p.read_bytes()).hexdigest()
    for p in sorted((workdir / 'samples').glob('*.png'))
  }
  return {'metrics': rows, 'grids': grids}


def run(name: str, config: str, overrides: list[str], out: Path, cifar: str, mnist: str) -> dict:
  steps = 200 if name == 'mnist' else 20
  workdir = out / name
  flags = [
    f'--config.num_steps={steps}',
    f'--config.sample_every={steps}',
    f'--config.eval_every={steps}',
    '--config.eval_num_samples=500',
  ]
  if 'mnist' in name:  # a subset: k-means of 60,000 images would take most of the time
    flags += [f'--config.data.dir={mnist}', '--config.data.subset=2000']
  flags += [f'--config.{o.format(cifar=cifar)}' for o in overrides]
  env = {k: v for k, v in os.environ.items() if not k.startswith('JAX_DISABLE')}
  argv = [sys.executable, '-m', 'jaxgan.main', f'--config={config}', f'--workdir={workdir}']
  start = time.time()
  proc = subprocess.run(argv + flags, env=env, capture_output=True, text=True)
  if proc.returncode:
    print(proc.stderr[-3000:], file=sys.stderr)
    return {'error': proc.returncode}
  print(f'{name}: {time.time() - start:.0f} s', flush=True)
  return fingerprint(workdir)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', help='folder for the workdirs and fingerprints.json')
  parser.add_argument('--cifar', default='/tmp/data/cifar10-jpg', help='CIFAR-10 JPEG folder')
  parser.add_argument('--mnist', default='../shared/data/mnist', help='MNIST IDX folder')
  parser.add_argument('--only', default='', help='comma-separated run names (default: all)')
  parser.add_argument('--compare', nargs=2, metavar=('BEFORE', 'AFTER'))
  args = parser.parse_args()
  if args.compare:  # fingerprinted again from the workdirs, as this version of the script does
    before, after = (Path(d) for d in args.compare)
    differ = 0
    for name in json.loads((before / 'fingerprints.json').read_text()):
      a, b = (
        fingerprint(d / name) if (d / name / 'metrics.jsonl').exists() else None
        for d in (before, after)
      )
      same = a is not None and a == b
      differ += not same
      print(f'{name}: {"same" if same else "DIFFERENT"}')
    sys.exit(1 if differ else 0)
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  only = set(filter(None, args.only.split(',')))
  saved = out / 'fingerprints.json'  # --only adds to (or redoes runs of) an earlier set
  results = json.loads(saved.read_text()) if saved.exists() else {}
  for name, config, overrides in RUNS:
    if not only or name in only:
      results[name] = run(name, config, overrides, out, args.cifar, os.path.abspath(args.mnist))
      saved.write_text(json.dumps(results, indent=1))


if __name__ == '__main__':
  main()
