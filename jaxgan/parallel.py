"""Devices and processes: the mesh, the shardings, and JAX's own multi-controller runtime
(one process per host, or per GPU) for many hosts."""

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


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


def barrier(name: str, timeout_s: int = 1800) -> None:
  """Every process waits here for the others, up to `timeout_s`: a coordination-service
  barrier, not a collective.

  The first cross-process collective creates gloo's communicator, which gives up after 30 s if
  one process arrives that much later; reading data or compiling on a loaded machine can skew
  the processes by more. Calling this just before the first collective absorbs the skew. (Once
  the communicator exists, later collectives wait as long as they need.)
  """
  if jax.process_count() == 1:
    return
  from jax._src import distributed  # the client of jax.distributed.initialize (no public API)

  distributed.global_state.client.wait_at_barrier(f'jaxgan_{name}', timeout_s * 1000)


def mesh(devices: list | None = None) -> Mesh:
  """All devices (of every process) along one `data` axis: the only place a Mesh is built."""
  return Mesh(np.array(jax.devices() if devices is None else devices), ('data',))


def replicated(m: Mesh) -> NamedSharding:
  """Every device holds the whole array (parameters, optimizer state, small datasets)."""
  return NamedSharding(m, P())


def example_sharding(m: Mesh) -> NamedSharding:
  """(batch, ...) arrays split over devices along the batch axis (G's inputs)."""
  return NamedSharding(m, P('data'))


def batch_sharding(m: Mesh) -> NamedSharding:
  """(sub-steps, batch, ...) arrays split over devices along the batch axis."""
  return NamedSharding(m, P(None, 'data'))


def stream_sharding(m: Mesh) -> NamedSharding:
  """(steps, sub-steps, batch, ...) arrays of streamed batches, split along the batch axis."""
  return NamedSharding(m, P(None, None, 'data'))


def put_replicated(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
  """A host array on every device. Every process holds the same copy, so each fills its own
  devices from it (with one process or many)."""
  return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def any_process(flag: bool) -> bool:
  """True on every process if `flag` is true on any: a decision all processes take together.

  A blocking collective (it waits for the devices' queued work), so the trainer calls it once
  per compiled call, and only with several processes.
  """
  if jax.process_count() == 1:
    return flag
  flags = multihost_utils.process_allgather(np.int32(flag))
  return bool(np.any(flags))
