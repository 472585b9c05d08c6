"""Real-vs-real floors of the Inception metrics on CIFAR-10: what a perfect generator would score.

Reads the CIFAR-10 JPEG tarball (cifar10-jpg/{train,test}/<class>/NNNN.jpg; the shared offline
copy) and, for each resize asked for, embeds both splits once with the FID Inception network
and measures, real against real:
- fid_train_test: the 50,000 training images against the 10,000 test images (pytorch-fid
  publishes about 3.15 for the PNG originals with its resize);
- fid_test_halves: two random halves of the test split (5,000 each);
- fid10k_train_test: 10,000 training images (a fixed random subset) against the test split;
- kid_train_test (mean, std; 100 subsets of 1,000), and precision, recall (k = 3), density and
  coverage (k = 5) of the test images against the training images.
Writes everything, with timings and the protocol (weights, their hash, resize, counts), to --out.
Made for a GPU (embedding 60,000 images per resize). On a CPU (about 2.5 hours per resize) it
can be stopped and run again: the embeddings go through jaxgan's cache of real images'
features, in parts of 5,000 images, and the evaluations of runs on these images reuse them.

  python -m benchmarks.inception_floors --images=../shared/data/cifar10/cifar10-jpg.tar.gz \
    --out=floors.json                                       # all three resizes
  python -m benchmarks.inception_floors --images=... --limit=24 --resizes=legacy_tensorflow \
    --out=/tmp/floors.json                                  # a CPU smoke test (a minute)
"""

import argparse
import io
import json
import os
import tarfile
import time

import jax
import numpy as np
from PIL import Image

from jaxgan.evaluation import evaluator, inception, metrics
from jaxgan.evaluation import features as features_lib


def read_tarball(path: str, limit: int = 0) -> dict[str, np.ndarray]:
  """{'train': (N, 32, 32, 3) uint8, 'test': ...} in sorted file order; `limit` per split."""
  found: dict[str, dict[str, np.ndarray]] = {'train': {}, 'test': {}}
  with tarfile.open(path, 'r:*') as tar:
    for member in tar:
      parts = member.name.split('/')
      if not member.isfile() or len(parts) != 4 or parts[1] not in found:
        continue
      split = found[parts[1]]
      if limit and len(split) >= limit:
        continue
      data = tar.extractfile(member).read()
      split[member.name] = np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))
  return {k: np.stack([v[name] for name in sorted(v)]) for k, v in found.items()}


def floors(train: np.ndarray, test: np.ndarray, net, timings: dict) -> dict[str, float]:
  # Through jaxgan's cache of real embeddings: the evaluations of runs on the same images
  # reuse these, and a run cut short resumes (jaxgan.evaluation.evaluator).
  t0 = time.perf_counter()
  f_test = evaluator.embed_real(net, test, len(test)).features
  timings['embed_test_s'] = time.perf_counter() - t0
  t0 = time.perf_counter()
  f_train = evaluator.embed_real(net, train, len(train)).features
  timings['embed_train_s'] = time.perf_counter() - t0
  t0 = time.perf_counter()
  order = np.random.default_rng(0).permutation(len(f_test))
  halves = f_test[order[: len(order) // 2]], f_test[order[len(order) // 2 :]]
  # The training images jaxgan's evaluations compare when they take as many as the test split.
  f_sub = f_train[evaluator.subset_indices(len(train), len(test))]
  kid_mean, kid_std = metrics.kid(f_train, f_test)
  out = {
    'fid_train_test': metrics.fid(f_train, f_test),
    'fid_test_halves': metrics.fid(*halves),
    'fid10k_train_test': metrics.fid(f_sub, f_test),
    'kid_train_test': kid_mean,
    'kid_train_test_std': kid_std,
    **{f'{k}_test_vs_train': v for k, v in metrics.manifold_metrics(f_train, f_test).items()},
  }
  timings['metrics_s'] = time.perf_counter() - t0
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--images', required=True, help='the CIFAR-10 JPEG tarball')
  parser.add_argument('--weights', default='', help='default: found as jaxgan finds them')
  parser.add_argument('--resizes', default=','.join(inception.RESIZES))
  parser.add_argument('--limit', type=int, default=0, help='at most this many images per split')
  parser.add_argument('--batch-size', type=int, default=inception.BATCH_SIZE)
  parser.add_argument('--out', required=True)
  args = parser.parse_args()

  t0 = time.perf_counter()
  splits = read_tarball(args.images, args.limit)
  read_s = time.perf_counter() - t0
  print(f'read {len(splits["train"])} training, {len(splits["test"])} test images: {read_s:.1f} s')
  base = features_lib.inception(args.weights)
  base.batch_size = args.batch_size
  report = {
    'images': os.path.abspath(args.images),
    'num_train': len(splits['train']),
    'num_test': len(splits['test']),
    'device': ', '.join(sorted({d.device_kind for d in jax.devices()})),
    'read_s': read_s,
    'by_resize': {},
  }
  for resize in args.resizes.split(','):
    net = base.with_resize(resize)
    timings: dict[str, float] = {}
    values = floors(splits['train'], splits['test'], net, timings)
    report['by_resize'][resize] = {
      'metrics': values,
      'protocol': {**features_lib.describe(net), 'jaxgan_version': evaluator.jaxgan_version()},
      'timings': timings,
    }
    shown = ', '.join(f'{k} {v:.4g}' for k, v in values.items())
    took = f'{timings["embed_test_s"] + timings["embed_train_s"]:.0f} s to embed'
    print(f'{resize}: {shown}; {took} (or read from the cache)', flush=True)
    with open(args.out, 'w') as f:  # after each resize: a run cut short keeps what it measured
      json.dump(report, f, indent=2)
  print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
