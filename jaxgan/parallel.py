"""Many processes: JAX's own multi-controller runtime, one process per host (or per GPU)."""

import jax
from absl import logging


def initialize(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> None:
  """jax.distributed.initialize; with no arguments JAX detects TPU VM, SLURM and similar setups.

  On CPU, cross-process collectives need an implementation; gloo ships with jaxlib.
  """
  if jax.config.jax_platforms in (None, '', 'cpu') or 'cpu' in str(jax.config.jax_platforms):
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(
    coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
  )
  logging.info(
    'Process %d of %d; %d local of %d global devices',
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
  )
