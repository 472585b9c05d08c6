"""Command line entry: `python -m jaxgan.main --config=configs/mnist.py --workdir=runs/mnist`.

Only parses flags and calls `train.train_and_evaluate`; the logic lives in importable,
testable modules. Override any config field with --config.KEY=VALUE.
"""

import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from jaxgan import cli, parallel, train

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """The CLI's flags, defined only when run as a program, so that importing this module
  beside another CLI module (jaxgan.prepare, jaxgan.bench) defines no flag twice."""
  flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and samples.')
  flags.DEFINE_bool('verbose', False, 'Show tracebacks for configuration and input errors.')
  config_flags.DEFINE_config_file('config', None, 'Training config file (a get_config() file).')
  flags.DEFINE_bool(
    'distributed', False, 'Call jax.distributed.initialize() (auto-detected on TPU VMs and SLURM).'
  )
  flags.DEFINE_string('coordinator_address', None, 'host:port of process 0, for many processes.')
  flags.DEFINE_integer('num_processes', None, 'Number of processes (with --coordinator_address).')
  flags.DEFINE_integer('process_id', None, 'This process (0 .. num_processes-1).')
  flags.mark_flags_as_required(['config', 'workdir'])


class _QuietLibraries(logging.logging.Filter):
  """Drops orbax's per-save INFO lines, which would bury the training status lines."""

  def filter(self, record):
    return record.levelno > logging.logging.INFO or '/orbax/' not in record.pathname


def main(argv):
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if FLAGS.distributed or FLAGS.coordinator_address:
    parallel.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  logging.info(
    'JAX process %d/%d, devices: %s', jax.process_index(), jax.process_count(), jax.devices()
  )
  try:
    cli.guarded(lambda: train.train_and_evaluate(FLAGS.config, FLAGS.workdir), FLAGS.verbose)
  except KeyboardInterrupt:
    sys.exit(130)


if __name__ == '__main__':
  _define_flags()
  app.run(main, flags_parser=cli.parse_config_flags)
