"""Sample quality of a trained run: `python -m jaxgan.evaluate --workdir=runs/mnist`.

Prints one JSON object (the generator's metrics and, as `reference`, the same metrics of real
training images against the test images, and the `protocol` they were measured with) and
writes it to WORKDIR/eval_step_<step>.json. `--features=inception` measures with the FID
Inception network instead of the dataset's own; `--fid_stats` adds the FID against a reference
statistics file (`python -m jaxgan.fid_stats`, or pytorch-fid's). The metrics are explained in
docs/evaluation.md.
"""

import json
import os
import time

import ml_collections
from absl import app, flags, logging

from jaxgan import cli, data, evaluation, files
from jaxgan.errors import JaxganError
from jaxgan.evaluation import checkpoints, registry
from jaxgan.evaluation import features as features_lib
from jaxgan.evaluation import stats as stats_lib

MIN_SAMPLES = 10  # covariances, 3-NN balls and 10 IS splits need a few points; use thousands


def load_real(data_config, split: str, data_dir: str = '') -> data.Dataset:
  """The `split` of the run's dataset (data_dir, when given, replaces config.data.dir)."""
  cfg = ml_collections.ConfigDict(data_config.to_dict())
  if data_dir:
    cfg.dir = data_dir
  return data.load_dataset(cfg, split)


def feature_network(
  name: str, source_features: str | None, inception_weights: str = '', allow_unverified=False
):
  """The feature network named `name` ('': the data source's), as a JaxganError if unusable."""
  name = name or source_features
  if not name:
    raise JaxganError('no feature network measures this dataset: give --features=inception')
  try:
    return features_lib.get(name, inception_weights, allow_unverified)
  except ValueError as e:
    raise JaxganError(f'--features: {e}') from None


def run(
  workdir: str,
  checkpoint: str = 'latest',
  num_samples: int | None = None,
  seed: int = 0,
  data_dir: str = '',
  features: str = '',
  inception_weights: str = '',
  allow_unverified: bool = False,
  fid_stats: str = '',
) -> dict:
  """Evaluates the run's checkpoint; returns the report and writes it into `workdir`."""
  t0 = time.time()
  if num_samples is not None and num_samples < MIN_SAMPLES:
    raise JaxganError(f'--num_samples must be at least {MIN_SAMPLES}, got {num_samples}')
  config, gan, state = checkpoints.load(workdir, checkpoint)
  step = int(state.step)
  source = data.get(config.data.name)
  # The run's own choice (config.eval_features) unless the command names another.
  net = feature_network(
    features or config.get('eval_features', ''),
    getattr(source, 'FEATURES', None),
    inception_weights or config.get('eval_inception_weights', ''),
    allow_unverified,
  )
  reference_stats = stats_lib.load(fid_stats) if fid_stats else None
  test = load_real(config.data, 'test', data_dir)
  try:
    net.check(test.images.shape)
  except ValueError as e:
    raise JaxganError(f'--features={net.name} cannot measure {config.data.name!r}: {e}') from None
  train = load_real(config.data, 'train', data_dir)
  n = source.EVAL_NUM_SAMPLES if num_samples is None else num_samples
  logging.info('Evaluating step %d of %s on %d samples with %s', step, workdir, n, net.name)
  generate_fn = evaluation.make_generate_fn(gan, state)
  fake = evaluation.embed_generated(generate_fn, net, test.images.shape[1:], n, seed)
  real = evaluation.embed_real(net, test.images, n)
  metrics = registry.compare(real, fake)
  report = {
    'workdir': os.path.abspath(workdir),
    'checkpoint': checkpoint,
    'step': step,
    'dataset': config.data.name,
    'num_samples': n,
    'seed': seed,
    'features': net.name,
    'protocol': evaluation.protocol(net, n, len(real.features), 'test'),
    'metrics': metrics,
    'reference': evaluation.reference_metrics(train.images, test.images, n, net),
  }
  if reference_stats is not None:
    where = f'--fid_stats={fid_stats}'
    metrics['fid_stats'] = stats_lib.fid(fake.features, reference_stats, net, where)
    report['fid_stats'] = {'path': os.path.abspath(fid_stats), **reference_stats.info}
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
  flags.DEFINE_string(
    'features',
    '',
    'Feature network: mnist_classifier, cifar10_classifier or inception; default: the '
    "run's config.eval_features, else the dataset's.",
  )
  flags.DEFINE_string(
    'inception_weights', '', "pytorch-fid's Inception weights; default $JAXGAN_INCEPTION_WEIGHTS."
  )
  flags.DEFINE_bool(
    'allow_unverified_weights', False, 'Accept Inception weights that are not the published file.'
  )
  flags.DEFINE_string('fid_stats', '', 'Also report fid_stats: FID against this statistics file.')
  flags.DEFINE_bool('verbose', False, 'Show tracebacks for input errors.')
  flags.mark_flags_as_required(['workdir'])


def main(argv):
  FLAGS = flags.FLAGS
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  report = cli.guarded(
    lambda: run(
      FLAGS.workdir,
      FLAGS.checkpoint,
      FLAGS.num_samples,
      FLAGS.seed,
      FLAGS.data_dir,
      FLAGS.features,
      FLAGS.inception_weights,
      FLAGS.allow_unverified_weights,
      FLAGS.fid_stats,
    ),
    FLAGS.verbose,
  )
  print(json.dumps(report), flush=True)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
