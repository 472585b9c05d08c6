"""Sample quality of a trained run: `python -m jaxgan.evaluate --workdir=runs/mnist`.

Prints one JSON object (the generator's metrics and, as `reference`, the same metrics of real
training images against the test images) and writes it to WORKDIR/eval_step_<step>.json.
The metrics are explained in docs/evaluation.md.
"""

import json
import os
import time

import ml_collections
from absl import app, flags, logging

from jaxgan import cli, data, evaluation, files
from jaxgan.errors import JaxganError
from jaxgan.evaluation import checkpoints

MIN_SAMPLES = 10  # covariances and 3-NN balls need a few points; real use wants thousands


def load_real(data_config, split: str, data_dir: str = '') -> data.Dataset:
  """The `split` of the run's dataset (data_dir, when given, replaces config.data.dir)."""
  cfg = ml_collections.ConfigDict(data_config.to_dict())
  if data_dir:
    cfg.dir = data_dir
  return data.load_dataset(cfg, split)


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
  source = data.get(config.data.name)
  if not getattr(source, 'FEATURES', None):
    raise JaxganError(f'no feature network measures {config.data.name!r} runs')
  test = load_real(config.data, 'test', data_dir)
  train = load_real(config.data, 'train', data_dir)
  n = source.EVAL_NUM_SAMPLES if num_samples is None else num_samples
  logging.info('Evaluating step %d of %s on %d samples', step, workdir, n)
  generate_fn = evaluation.make_generate_fn(gan, state)
  report = {
    'workdir': os.path.abspath(workdir),
    'checkpoint': checkpoint,
    'step': step,
    'dataset': config.data.name,
    'num_samples': n,
    'seed': seed,
    'features': source.FEATURES,
    'metrics': evaluation.evaluate_generator(generate_fn, test.images, n, seed, source.FEATURES),
    'reference': evaluation.reference_metrics(train.images, test.images, n, source.FEATURES),
  }
  report['seconds'] = round(time.time() - t0, 1)
  files.write_json(os.path.join(workdir, f'eval_step_{step:06d}.json'), report, indent=2)
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
  report = cli.guarded(
    lambda: run(FLAGS.workdir, FLAGS.checkpoint, FLAGS.num_samples, FLAGS.seed, FLAGS.data_dir),
    FLAGS.verbose,
  )
  print(json.dumps(report), flush=True)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
