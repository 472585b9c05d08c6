"""Per-op timing of the default DCGAN's four convolutions: jaxgan's layers, XLA's own, PyTorch.

For each layer, the forward pass, the input gradient and the kernel gradient, each jitted
alone: `jaxgan.convs` (what the train step runs, compiled with `jaxgan.xla_cpu`'s options),
the textbook form differentiated by JAX (`*_reference`, XLA's default options), and PyTorch
eager. Rounds alternate between the three; the best round of each is reported, as ms. All
three run in this one process with the trainer's malloc settings (`jaxgan.allocator`).

  python -m benchmarks.conv_ops --batch_sizes=64,256   # from the repo root
"""

import argparse
import time

import jax
import numpy as np
import torch
import torch.nn.functional as F

from jaxgan import allocator, convs, xla_cpu

# name: (transposed?, in channels, out channels, input height = width)
LAYERS = {
  'G 128->64 convT 7->14': (True, 128, 64, 7),
  'G 64->1 convT 14->28': (True, 64, 1, 14),
  'D 1->64 conv 28->14': (False, 1, 64, 28),
  'D 64->128 conv 14->7': (False, 64, 128, 14),
}
OPS = ('forward', 'input grad', 'kernel grad')


def _jax_ops(fn, x, kernel, dy, options):
  """The three ops of layer fn as jitted thunks (each returns something to block on)."""
  fwd = jax.jit(fn, compiler_options=options)
  dx = jax.jit(lambda x, k, g: jax.vjp(lambda x: fn(x, k), x)[1](g)[0], compiler_options=options)
  dk = jax.jit(lambda x, k, g: jax.vjp(lambda k: fn(x, k), k)[1](g)[0], compiler_options=options)
  return (lambda: fwd(x, kernel), lambda: dx(x, kernel, dy), lambda: dk(x, kernel, dy))


def _torch_ops(transposed, x, kernel, dy):
  """The same three ops in PyTorch (NCHW), through the kernels its autograd calls."""
  x, dy = (torch.from_numpy(a.transpose(0, 3, 1, 2).copy()) for a in (x, dy))
  # jaxgan's (kh, kw, in, out): PyTorch's transposed-conv weight is (in, out, kh, kw), its
  # conv weight (out, in, kh, kw).
  w = torch.from_numpy(kernel.transpose((2, 3, 0, 1) if transposed else (3, 2, 0, 1)).copy())
  conv = F.conv_transpose2d if transposed else F.conv2d

  def backward(mask):
    return torch.ops.aten.convolution_backward(
      dy, x, w, None, [2, 2], [1, 1], [1, 1], transposed, [0, 0], 1, mask
    )

  return (
    lambda: conv(x, w, stride=2, padding=1),
    lambda: backward([True, False, False]),
    lambda: backward([False, True, False]),
  )


def _best_ms(thunk, reps: int) -> float:
  t0 = time.perf_counter()
  for _ in range(reps):
    out = thunk()
  jax.block_until_ready(out)
  return 1e3 * (time.perf_counter() - t0) / reps


def time_layer(transposed, cin, cout, size, batch, rounds=5) -> dict[str, list[float]]:
  """{implementation: [ms per op]} for one layer at one batch size."""
  rng = np.random.default_rng(0)
  out = 2 * size if transposed else size // 2
  x = rng.standard_normal((batch, size, size, cin), np.float32)
  dy = rng.standard_normal((batch, out, out, cout), np.float32)
  kernel = 0.02 * rng.standard_normal((4, 4, cin, cout), np.float32)
  if transposed:
    fast, reference = convs.conv_transpose_4x4s2, convs.conv_transpose_4x4s2_reference
  else:
    fast, reference = convs.conv_4x4s2, convs.conv_4x4s2_reference
  impls = {
    'jaxgan': _jax_ops(fast, x, kernel, dy, xla_cpu.compiler_options()),
    'jax autodiff': _jax_ops(reference, x, kernel, dy, None),
    'torch': _torch_ops(transposed, x, kernel, dy),
  }
  return best_of_rounds(impls, max(1, 2048 // batch), rounds)


def best_of_rounds(impls: dict, reps: int, rounds: int) -> dict[str, list[float]]:
  """{implementation: [best ms per op]}: rounds alternate between the implementations."""
  best = {name: [float('inf')] * len(thunks) for name, thunks in impls.items()}
  for _ in range(rounds):
    for name, thunks in impls.items():
      for i, thunk in enumerate(thunks):
        jax.block_until_ready(thunk())  # compile / warm up
        best[name][i] = min(best[name][i], _best_ms(thunk, reps))
  return best


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch_sizes', default='64,256')
  parser.add_argument('--rounds', type=int, default=5)
  args = parser.parse_args()
  allocator.tune()
  print(f'jax {jax.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)')
  print('| batch | layer | op | jaxgan ms | JAX autodiff ms | PyTorch ms | jaxgan / PyTorch time |')
  print('| ---: | --- | --- | ---: | ---: | ---: | ---: |')
  for batch in (int(b) for b in args.batch_sizes.split(',')):
    for name, spec in LAYERS.items():
      best = time_layer(*spec, batch, args.rounds)
      for i, op in enumerate(OPS):
        ours, ref, pt = best['jaxgan'][i], best['jax autodiff'][i], best['torch'][i]
        print(f'| {batch} | {name} | {op} | {ours:.2f} | {ref:.2f} | {pt:.2f} | {ours / pt:.2f} |')


if __name__ == '__main__':
  main()
