"""Command line entry: `python -m jaxgan.main --config=mnist --workdir=runs/mnist`.

Only parses flags and calls `train.train_and_evaluate`; the logic lives in importable,
testable modules. Override any config field with --config.KEY=VALUE.
"""

import sys

import jax
from absl import flags, logging

from jaxgan import cli, parallel, train

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """The CLI's flags, defined only when run as a program, so that importing this module
  beside another CLI module (jaxgan.prepare, jaxgan.bench) defines no flag twice."""
  flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and samples.')
  cli.define_config_flag()
  flags.DEFINE_bool(
    'distributed', False, 'Call jax.distributed.initialize() (auto-detected on TPU VMs and SLURM).'
  )
  flags.DEFINE_string('coordinator_address', None, 'host:port of process 0, for many processes.')
  flags.DEFINE_integer('num_processes', None, 'Number of processes (with --coordinator_address).')
  flags.DEFINE_integer('process_id', None, 'This process (0 .. num_processes-1).')
  flags.mark_flags_as_required(['workdir'])


def main():
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
  cli.run(main, with_config=True)
