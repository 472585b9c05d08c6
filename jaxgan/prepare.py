"""Prepare a dataset before training: `python -m jaxgan.prepare --config=configs/folder.py
--config.data.dir=PATH [--config.data.resolution=64] [--splits=train,test]`.

Does what the trainer's first run would do to the data, alone: an image folder is decoded,
cropped and resized into its cache (the one training then reads), CIFAR and MNIST are fetched
when not on disk. Prints one line per split: the images, the files skipped, where the cache
is. Takes the same config and overrides as `jaxgan.main`, and checks them the same way.
"""

import sys

from absl import flags

from jaxgan import cli, data
from jaxgan import config as config_lib

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """The CLI's flags, defined only when run as a program, so that importing this module
  (run, describe) beside another CLI module (jaxgan.main) defines no flag twice."""
  cli.define_config_flag()
  flags.DEFINE_list('splits', [], "Splits to prepare (default: the config's data.split).")


def run(config, splits: list[str] | None = None) -> list[dict]:
  """Prepares each of `splits` (default: config.data.split); a report per split.

  A source with a `prepare` function reports what it did; any other is loaded once.
  """
  config_lib.validate(config)
  source = data.get(config.data.name)
  reports = []
  for split in splits or [config.data.split]:
    if hasattr(source, 'prepare'):
      report = source.prepare(config.data, split)
    else:
      dataset = data.load_dataset(config.data, split)
      report = {'images': len(dataset.images), 'image_shape': dataset.images.shape[1:]}
      report['classes'] = dataset.classes
    reports.append({'name': config.data.name, 'split': split, **report})
  return reports


def describe(report: dict) -> str:
  """One line for a split's report."""
  shape = 'x'.join(map(str, report['image_shape']))
  line = f'{report["name"]}/{report["split"]}: {report["images"]} images of {shape}'
  if 'skipped' in report:
    line += f', {report["skipped"]} bad files skipped'
  if report.get('classes'):
    line += f', {len(report["classes"])} classes'
  if 'cache' in report:
    line += f', in {report["cache"]}'
    if report['prepared_now']:
      line += f' (prepared now: {report["seconds"]:.1f} s, {report["images_per_sec"]:.0f} images/s)'
    else:
      line += ' (prepared before)'
  return line


def main():
  try:
    reports = cli.guarded(lambda: run(FLAGS.config, FLAGS.splits), FLAGS.verbose)
  except KeyboardInterrupt:
    sys.exit(130)
  for report in reports:
    print(describe(report))


if __name__ == '__main__':
  _define_flags()
  cli.run(main, with_config=True)
