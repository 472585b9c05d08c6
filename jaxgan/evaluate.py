"""Sample quality of a trained run: `python -m jaxgan.evaluate --workdir=runs/mnist`.

Prints one JSON object (the generator's metrics and, as `reference`, the same metrics of real
training images against the test images) and writes it to WORKDIR/eval_step_<step>.json.
The metrics are explained in docs/evaluation.md.
"""

import json
import os
import sys
import time

import ml_collections
from absl import app, flags, logging

from jaxgan import data, evaluation
from jaxgan.errors import JaxganError
from jaxgan.evaluation import checkpoints

DATASETS = ('mnist', 'stacked_mnist')  # what the MNIST feature classifier can measure
MIN_SAMPLES = 10  # covariances and 3-NN balls need a few points; real use wants thousands


def load_real(data_config, split: str, data_dir: str = '') -> data.Dataset:
  """The `split` of the run's dataset (data_dir, when given, replaces config.data.dir)."""
  cfg = ml_collections.ConfigDict(data_config.to_dict())
  cfg.split = split
  if data_dir:
    cfg.dir = data_dir
  return data.load_dataset(cfg)


def run(
  workdir: str,
  checkpoint: str = 'latest',
  num_samples: int | None = None,
  seed: int = 0,
  data_dir: str = '',
) -> dict:
  """Evaluates the run's checkpoint; returns the report and writes it into `workdir`."""
  t0 = time.time()
  if num_samples is not None and num_samples < MIN_SAMPLES:
    raise JaxganError(f'--num_samples must be at least {MIN_SAMPLES}, got {num_samples}')
  config, gan, state = checkpoints.load(workdir, checkpoint)
  step = int(state.step)
  if config.data.name not in DATASETS:
    raise JaxganError(
      f'the MNIST feature classifier measures {" and ".join(DATASETS)} runs, '
      f'not {config.data.name!r}'
    )
  test = load_real(config.data, 'test', data_dir)
  train = load_real(config.data, 'train', data_dir)
  n = evaluation.default_num_samples(test.images.shape) if num_samples is None else num_samples
  logging.info('Evaluating step %d of %s on %d samples', step, workdir, n)
  generate_fn = evaluation.make_generate_fn(gan, state)
  report = {
    'workdir': os.path.abspath(workdir),
    'checkpoint': checkpoint,
    'step': step,
    'dataset': config.data.name,
    'num_samples': n,
    'seed': seed,
    'metrics': evaluation.evaluate_generator(generate_fn, test.images, n, seed),
    'reference': evaluation.reference_metrics(train.images, test.images, n),
  }
  report['seconds'] = round(time.time() - t0, 1)
  path = os.path.join(workdir, f'eval_step_{step:06d}.json')
  with open(path + '.tmp', 'w') as f:
    json.dump(report, f, indent=2)
    f.write('\n')
  os.replace(path + '.tmp', path)
  return report


def _define_flags() -> None:
  # Defined only when run as a program, so that tests and other tools can import `run`.
  flags.DEFINE_string('workdir', None, 'A training run directory.')
  flags.DEFINE_string('checkpoint', 'latest', 'latest, best (checkpoints_best) or a step number.')
  flags.DEFINE_integer('num_samples', None, 'Samples to measure; default 10,000 (26,000 stacked).')
  flags.DEFINE_integer('seed', 0, 'Seeds the latent vectors.')
  flags.DEFINE_string('data_dir', '', "MNIST IDX folder; default: the run's config.data.dir.")
  flags.DEFINE_bool('verbose', False, 'Show tracebacks for input errors.')
  flags.mark_flags_as_required(['workdir'])


def main(argv):
  FLAGS = flags.FLAGS
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    report = run(FLAGS.workdir, FLAGS.checkpoint, FLAGS.num_samples, FLAGS.seed, FLAGS.data_dir)
  except JaxganError as e:
    if FLAGS.verbose:
      raise
    print(f'jaxgan: error: {e}', file=sys.stderr)
    sys.exit(2)
  print(json.dumps(report), flush=True)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
