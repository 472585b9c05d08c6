"""How the training images reach the devices: all of them on every device, or streamed.

A feed owns the real batch: `feed(step, num_steps)` gives what one compiled call needs (its
`data`), and inside that call `feed.batch(data, step, first_step)` makes step `step`'s
`jaxgan.batch.Batch`, drawn, flipped and scaled to [-1, 1]. Both feeds make the same batches:
example indices drawn uniformly with replacement from the data key folded with the step
(`Draws`), so a run is the same whichever feed it uses, and a resumed run continues the same
way.

- `Resident`: the uint8 dataset is copied once to every device and the compiled step draws
  its batches there: no host work per step. For datasets that fit in device memory (60,000
  images of 32x32x3 take 180 MB).
- `Streamed`: the dataset stays in host memory (or in the memory-mapped cache of a prepared
  folder); for each call the host gathers the call's batches and puts them on the devices,
  split along the batch, while a background thread already gathers the next call's. Each
  process reads only the rows of its own devices.

`data.on_device` chooses: 'yes' (Resident), 'no' (Streamed), or 'auto': Resident when the
images take at most a quarter of a device's memory (or of RESIDENT_LIMIT_BYTES where JAX
does not report it, as on CPU).
"""

import concurrent.futures
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxgan import images as images_lib
from jaxgan import parallel
from jaxgan.batch import Batch

RESIDENT_LIMIT_BYTES = 4 << 30  # 'auto' where the device's memory is unknown (CPU)


def draw_indices(data_key: jax.Array, step, shape: tuple[int, ...], n: int) -> jax.Array:
  """The examples the real batches of `step` are made of: `shape` indices in [0, n)."""
  return jax.random.randint(jax.random.fold_in(data_key, step), shape, 0, n)


@dataclasses.dataclass(frozen=True)
class Draws:
  """What each step's real batches are: `shape` (d_steps, batch) examples drawn with the data
  key `key` folded with the step, flipped left-right with probability 1/2 when `mirror` (the
  coins from the same step key, so resuming stays exact)."""

  key: jax.Array
  shape: tuple[int, int]
  mirror: bool = False

  def finish(self, drawn: jax.Array, labels, step, sharding) -> Batch:
    """The step's Batch from its drawn uint8 images (d_steps, batch, H, W, C) and labels."""
    if self.mirror:
      key = jax.random.fold_in(self.key, step)
      flip = jax.random.bernoulli(jax.random.fold_in(key, 1), 0.5, drawn.shape[:2])
      drawn = jnp.where(flip[..., None, None, None], drawn[..., ::-1, :], drawn)
    batch = Batch(images_lib.to_float(drawn), labels)
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding), batch)


class Resident:
  """The whole dataset (and its labels, if given) on every device; the batches drawn there."""

  def __init__(self, dataset: tuple[np.ndarray, np.ndarray | None], draws: Draws, mesh):
    images, labels = dataset
    sharding = parallel.replicated(mesh)
    self.draws, self._sharding = draws, parallel.batch_sharding(mesh)
    self.fake_sharding = parallel.example_sharding(mesh)  # G's inputs, split as the reals
    self.pixels = parallel.put_replicated(np.asarray(images), sharding)
    self.labels = None if labels is None else parallel.put_replicated(labels, sharding)

  def __call__(self, step: int, num_steps: int) -> tuple[jax.Array, jax.Array | None]:
    """The call's data for the `num_steps` steps from `step`: always the whole dataset."""
    return self.pixels, self.labels

  def batch(self, data, step, first_step) -> Batch:
    """Step `step`'s batch, drawn on the device (traced inside the compiled call)."""
    pixels, labels = data
    idx = draw_indices(self.draws.key, step, self.draws.shape, len(pixels))
    return self.draws.finish(
      pixels[idx], None if labels is None else labels[idx], step, self._sharding
    )

  def close(self) -> None:
    pass


class Streamed:
  """Each call's real batches, (num_steps, d_steps, batch, H, W, C), gathered on the host."""

  def __init__(self, dataset: tuple[np.ndarray, np.ndarray | None], draws: Draws, mesh):
    self.images, self.labels = dataset
    self.draws, self._shape = draws, draws.shape
    self._sharding = parallel.stream_sharding(mesh)
    self._batch_sharding = parallel.batch_sharding(mesh)
    self.fake_sharding = parallel.example_sharding(mesh)  # G's inputs, split as the reals
    n, data_key = len(self.images), draws.key
    self._cpu = jax.local_devices(backend='cpu')[0]  # where the indices are drawn
    # The same function as the device draws inside the step, vmapped over the call's steps.
    self._indices = jax.jit(jax.vmap(lambda s: draw_indices(data_key, s, self._shape, n)))
    rows = self.rows()
    logging.info(
      'Streaming the real batches from host memory; this process reads rows %s of each %d.',
      ', '.join(f'{a}-{b - 1}' for a, b in rows),
      self._shape[1],
    )
    self._thread = concurrent.futures.ThreadPoolExecutor(1, 'jaxgan-feed')
    self._next: tuple[tuple[int, int], concurrent.futures.Future] | None = None

  def __call__(self, step: int, num_steps: int) -> tuple[jax.Array, jax.Array | None]:
    """train_fn's (pixels, labels): the batches of steps step .. step + num_steps - 1; then
    starts gathering those of the next call of the same length."""
    if self._next and self._next[0] == (step, num_steps):
      batch = self._next[1].result()
    else:  # the first call, or a shorter one before an event: not prefetched
      batch = self._gather(step, num_steps)
    self._next = (
      (step + num_steps, num_steps),
      self._thread.submit(self._gather, step + num_steps, num_steps),
    )
    return batch

  def batch(self, data, step, first_step) -> Batch:
    """Step `step`'s batch, from the call's batches gathered on the host."""
    images, labels = data
    i = step - first_step
    return self.draws.finish(
      images[i], None if labels is None else labels[i], step, self._batch_sharding
    )

  def rows(self) -> list[tuple[int, int]]:
    """[start, stop) ranges of each batch that this process's devices hold (and it reads)."""
    shape = (1, *self._shape)
    index = self._sharding.addressable_devices_indices_map(shape).values()
    merged = []
    for start, stop in sorted({i[2].indices(shape[2])[:2] for i in index}):
      if merged and merged[-1][1] == start:  # adjacent devices: one range
        start = merged.pop()[0]
      merged.append((start, stop))
    return merged

  def _gather(self, step: int, num_steps: int) -> tuple[jax.Array, jax.Array | None]:
    steps = jax.device_put(np.arange(step, step + num_steps, dtype=np.int32), self._cpu)
    idx = np.asarray(self._indices(steps))  # (num_steps, d_steps, batch)

    def put(source: np.ndarray) -> jax.Array:
      shape = (*idx.shape, *source.shape[1:])
      # Called once per device of this process, with its part of the batch axis.
      return jax.make_array_from_callback(
        shape, self._sharding, lambda index: source[idx[index[:3]]]
      )

    return put(self.images), None if self.labels is None else put(self.labels)

  def close(self) -> None:
    self._thread.shutdown(wait=True, cancel_futures=True)


def choose(setting: str, images: np.ndarray, devices: list) -> bool:
  """Whether to stream (data.on_device 'no', or 'auto' and too large for the devices); the
  config schema has checked `setting` (jaxgan.data.COMMON_SCHEMA)."""
  if setting != 'auto':
    return setting == 'no'
  # One of this process's own devices: JAX reports memory only for those.
  device = next(d for d in devices if d.process_index == jax.process_index())
  stats = device.memory_stats() if hasattr(device, 'memory_stats') else None
  limit = (stats or {}).get('bytes_limit', 0) // 4 or RESIDENT_LIMIT_BYTES
  stream = images.nbytes > limit
  logging.info(
    'data.on_device=auto: the images take %.2f GB, the limit is %.2f GB: %s.',
    images.nbytes / 1e9,
    limit / 1e9,
    'streamed from host memory' if stream else 'on every device',
  )
  return stream
