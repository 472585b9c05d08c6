"""Per-op timing of R3GAN's grouped 3x3 convolutions: jaxgan's, XLA's grouped conv, PyTorch.

For the grouped conv of a residual block (hidden width = 2 x the block's, cardinality groups)
of the `:cpu` width (64 channels in 4 groups, benchmarks/r3gan_bench.py:cpu) and of the
CIFAR10 preset (1536 channels in 96 groups): the forward pass, the input gradient and the
kernel gradient, each jitted alone, for `r3gan.grouped_conv` (what the train step runs: a
dense conv per group on CPU; compiled with `jaxgan.xla_cpu`'s options), the textbook form
differentiated by JAX (XLA's convolution with feature groups, `r3gan.grouped_conv_xla`,
XLA's default options) and PyTorch eager (conv2d with groups, the backward kernels its
autograd calls). Rounds alternate between the three; the best round of each is reported, as
ms, with the trainer's malloc settings.

  python -m benchmarks.r3gan_ops --rounds=2   # from the repo root
"""

import argparse

import jax
import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.conv_ops import OPS, _jax_ops, best_of_rounds
from jaxgan import allocator, xla_cpu
from jaxgan.models import r3gan

# name: (batch, map side, channels, groups)
LAYERS = {
  ':cpu 32 px, 64 ch / 4 groups': (64, 32, 64, 4),
  ':cpu 16 px, 64 ch / 4 groups': (64, 16, 64, 4),
  'preset 8 px, 1536 ch / 96 groups': (32, 8, 1536, 96),
  'preset 32 px, 1536 ch / 96 groups': (32, 32, 1536, 96),
}


def _torch_ops(x, kernel, dy, groups):
  x, dy = (torch.from_numpy(a.transpose(0, 3, 1, 2).copy()) for a in (x, dy))
  w = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())  # (k, k, in/g, out) -> OIHW

  def backward(mask):
    return torch.ops.aten.convolution_backward(
      dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], groups, mask
    )

  return (
    lambda: F.conv2d(x, w, padding=1, groups=groups),
    lambda: backward([True, False, False]),
    lambda: backward([False, True, False]),
  )


def time_layer(batch, side, channels, groups, rounds) -> dict[str, list[float]]:
  rng = np.random.default_rng(0)
  x = rng.standard_normal((batch, side, side, channels), np.float32)
  dy = rng.standard_normal((batch, side, side, channels), np.float32)
  kernel = 0.1 * rng.standard_normal((3, 3, channels // groups, channels), np.float32)

  def ours(x, k):
    return r3gan.grouped_conv(x, k, groups)

  def textbook(x, k):
    return r3gan.grouped_conv_xla(x, k, groups)

  impls = {
    'jaxgan': _jax_ops(ours, x, kernel, dy, xla_cpu.compiler_options()),
    'xla grouped': _jax_ops(textbook, x, kernel, dy, None),
    'torch': _torch_ops(x, kernel, dy, groups),
  }
  flops = 2 * batch * side * side * channels * 9 * channels // groups
  return best_of_rounds(impls, 1, rounds), flops


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--layers', default=','.join(str(i) for i in range(len(LAYERS))))
  args = parser.parse_args()
  allocator.tune()
  print(f'jax {jax.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)')
  print(
    '| layer (batch) | op | MFLOP | jaxgan ms | XLA grouped ms | PyTorch ms | jaxgan / PyTorch |'
  )
  print('| --- | --- | ---: | ---: | ---: | ---: | ---: |')
  names = list(LAYERS)
  for i in (int(v) for v in args.layers.split(',')):
    spec = LAYERS[names[i]]
    best, flops = time_layer(*spec, args.rounds)
    for j, op in enumerate(OPS):
      ours, ref, pt = (best[k][j] for k in ('jaxgan', 'xla grouped', 'torch'))
      print(
        f'| {names[i]} ({spec[0]}) | {op} | {flops / 1e6:.0f} | {ours:.2f} | {ref:.2f} | '
        f'{pt:.2f} | {ours / pt:.2f} |'
      )


if __name__ == '__main__':
  main()
