"""Per-op timing of the ResNet SNGAN's 3x3 convolutions: jaxgan's layers against the textbook form.

For each convolution of `configs/cifar10_sngan.py` at 32x32 (width `--width`, 32 for `:cpu`):
the forward pass, the input gradient and the kernel gradient, each jitted alone, for
`jaxgan.models.layers` (what the train step runs, compiled with `jaxgan.xla_cpu`'s options)
and for the textbook form differentiated by JAX (nearest upsampling or average pooling written
out beside XLA's 'SAME' convolution, XLA's default options). Rounds alternate between the
two; the best round of each is reported, as ms, with the trainer's malloc settings.

  python -m benchmarks.resnet_ops --batch_sizes=64,128   # from the repo root
"""

import argparse

import jax
import numpy as np
from jax import lax

from benchmarks.conv_ops import OPS, _jax_ops, best_of_rounds
from jaxgan import allocator, convs, xla_cpu
from jaxgan.models import layers, resnet


def _xla_conv(x, kernel):
  return lax.conv_general_dilated(x, kernel, (1, 1), 'SAME', dimension_numbers=convs._DN)


def _module(cls):
  def apply(x, kernel):
    return cls(kernel.shape[-1], use_bias=False).apply({'params': {'kernel': kernel}}, x)

  return apply


def _layers(width: int) -> dict:
  """name: (jaxgan's fn, textbook fn, input height, in channels, out channels)."""
  c = width
  return {
    f'G block conv1: upsample 16->32, 3x3 {c}->{c}': (
      _module(layers.UpsampleConv3x3),
      lambda x, k: _xla_conv(resnet.upsample(x), k),
      16,
      c,
      c,
    ),
    f'D block conv2: 3x3 {c}->{c}, avgpool 32->16': (
      _module(layers.Conv3x3AvgPool),
      lambda x, k: resnet.avg_pool(_xla_conv(x, k)),
      32,
      c,
      c,
    ),
    f'3x3 {c}->{c} at 32x32': (convs.conv_same, _xla_conv, 32, c, c),
    f'G conv_out: 3x3 {c}->3 at 32x32': (convs.conv_same, _xla_conv, 32, c, 3),
    f'D first conv: 3x3 3->{c} at 32x32': (convs.conv_same, _xla_conv, 32, 3, c),
  }


def time_layer(
  fast, reference, size, cin, cout, batch, rounds, k: int = 3, images: int = 1024
) -> dict[str, list[float]]:
  """Best ms of each op of a k x k convolution, jaxgan's and the textbook's, each op timed
  over about `images` images."""
  rng = np.random.default_rng(0)
  x = rng.standard_normal((batch, size, size, cin), np.float32)
  kernel = 0.05 * rng.standard_normal((k, k, cin, cout), np.float32)
  dy = rng.standard_normal(jax.eval_shape(fast, x, kernel).shape, np.float32)
  impls = {
    'jaxgan': _jax_ops(fast, x, kernel, dy, xla_cpu.compiler_options()),
    'jax autodiff': _jax_ops(reference, x, kernel, dy, None),
  }
  return best_of_rounds(impls, max(1, images // batch), rounds)


def report(layers_: dict, batch_sizes: str, rounds: int, images: int = 1024) -> None:
  """Prints the table of `time_layer` for each layer, (fast, reference, size, cin, cout[, k])."""
  allocator.tune()
  print(f'jax {jax.__version__}, backend {jax.default_backend()}')
  print('| batch | convolution | op | jaxgan ms | JAX autodiff ms | autodiff / jaxgan |')
  print('| ---: | --- | --- | ---: | ---: | ---: |')
  for batch in (int(b) for b in batch_sizes.split(',')):
    for name, (fast, reference, size, cin, cout, *k) in layers_.items():
      best = time_layer(fast, reference, size, cin, cout, batch, rounds, *k, images=images)
      for i, op in enumerate(OPS):
        ours, ref = best['jaxgan'][i], best['jax autodiff'][i]
        print(f'| {batch} | {name} | {op} | {ours:.2f} | {ref:.2f} | {ref / ours:.2f} |')


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch_sizes', default='64,128')
  parser.add_argument('--width', type=int, default=32)
  parser.add_argument('--rounds', type=int, default=3)
  args = parser.parse_args()
  report(_layers(args.width), args.batch_sizes, args.rounds)


if __name__ == '__main__':
  main()
