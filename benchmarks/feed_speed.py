"""Images/s that the streamed input pipeline (jaxgan.train.feed.Streamed) delivers to the device.

  python -m benchmarks.feed_speed [--resolutions=64,256] [--batch_size=64] [--steps_per_call=10]

For each resolution: a memory-mapped uint8 .npy of random images (as a prepared folder's
cache is read), then the trainer's call pattern: each call takes one prefetched batch of
steps_per_call steps and starts the next. Prints images/s with the device waiting on nothing
else (an upper bound on what the pipeline needs from a step) and the file's size. Compare with
the train step's images/s from `python -m jaxgan.bench --config=configs/folder.py`.
"""

import argparse
import os
import tempfile
import time

import jax
import numpy as np

from jaxgan import parallel
from jaxgan.train import feed


def measure(images: np.ndarray, batch_size: int, steps_per_call: int, calls: int) -> float:
  source = feed.Streamed(images, None, jax.random.PRNGKey(0), 1, batch_size, parallel.mesh())
  try:
    jax.block_until_ready(source(0, steps_per_call))  # warm: compile the index function
    t0 = time.perf_counter()
    for i in range(1, calls + 1):
      jax.block_until_ready(source(i * steps_per_call, steps_per_call))
    seconds = time.perf_counter() - t0
  finally:
    source.close()
  return calls * steps_per_call * batch_size / seconds


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--resolutions', default='64,256')
  parser.add_argument('--num_images', type=int, default=10_000)
  parser.add_argument('--batch_size', type=int, default=64)
  parser.add_argument('--steps_per_call', type=int, default=10)
  parser.add_argument('--calls', type=int, default=30)
  args = parser.parse_args()
  print(f'device: {jax.devices()[0].device_kind}, {os.cpu_count()} CPUs')
  print('| resolution | cache file | images/s delivered |\n| ---: | ---: | ---: |')
  with tempfile.TemporaryDirectory() as tmp:
    for r in map(int, args.resolutions.split(',')):
      path = os.path.join(tmp, f'{r}.npy')
      out = np.lib.format.open_memmap(path, 'w+', np.uint8, (args.num_images, r, r, 3))
      rng = np.random.default_rng(0)
      for start in range(0, args.num_images, 1000):
        out[start : start + 1000] = rng.integers(0, 256, out[start : start + 1000].shape, np.uint8)
      out.flush()
      del out
      images = np.load(path, mmap_mode='r')
      rate = measure(images, args.batch_size, args.steps_per_call, args.calls)
      print(f'| {r} | {images.nbytes / 1e9:.2f} GB | {rate:,.0f} |', flush=True)
      del images


if __name__ == '__main__':
  main()
