"""How fast the FID Inception network embeds images on this machine: 32x32 uint8 images,
resized to 299x299 as pytorch-fid does, random weights (the speed does not depend on them).

Times --batches chunks of --batch-size images after one untimed chunk (compilation), prints
images/s, the process's CPU seconds per image and, EXTRAPOLATED from that rate, the time for
10,000 and 50,000 images (the usual FID sample sizes). Uses every device on the mesh, as
evaluation does.

  python -m benchmarks.inception_speed                             # from the repo root
  python -m benchmarks.inception_speed --batch-size=20 --batches=2  # a quick check
"""

import argparse
import time

import jax
import numpy as np

from jaxgan.evaluation import inception
from jaxgan.writers import format_duration


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--batch-size', type=int, default=inception.BATCH_SIZE)
  parser.add_argument('--batches', type=int, default=3)
  parser.add_argument('--size', type=int, default=32, help='input height and width (px)')
  args = parser.parse_args()

  net = inception.Inception(inception.init_variables(jax.random.key(0)), batch_size=args.batch_size)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (args.batch_size, args.size, args.size, 3), np.uint8)
  start = time.perf_counter()
  net.embed(images)
  print(f'compile and first chunk: {time.perf_counter() - start:.1f} s')

  start, cpu_start = time.perf_counter(), time.process_time()
  for _ in range(args.batches):
    net.embed(images)
  seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
  count = args.batches * args.batch_size
  rate = count / seconds
  devices = ', '.join(sorted({d.device_kind for d in jax.devices()}))
  print(
    f'{args.batches * args.batch_size} images of {args.size}x{args.size} (to 299x299) in '
    f'{seconds:.1f} s on {jax.device_count()} device(s) ({devices}): {rate:.1f} images/s'
  )
  # On a shared CPU the wall-clock rate depends on the neighbours; the CPU time does not.
  print(f'  process CPU time: {cpu_seconds / count:.2f} s per image')
  for n in (10_000, 50_000):
    print(f'  extrapolated: {n:,} images in {format_duration(n / rate)}')


if __name__ == '__main__':
  main()
