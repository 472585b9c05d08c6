"""Per-op timing of StyleGAN2's convolutions (jaxgan.models.upfirdn): what the networks run
against the textbook form differentiated by JAX (`*_reference`: XLA's lhs-dilated, strided and
plain convolutions).

For each convolution of `configs/stylegan2_cifar10.py:cpu` at 32x32: the forward pass, the
input gradient and the kernel gradient, each jitted alone (jaxgan's with `jaxgan.xla_cpu`'s
options, the reference with XLA's defaults). Rounds alternate between the two; the best round
of each is reported, as ms, with the trainer's malloc settings. Jitted alone, at the top level
of a program: the trainer runs its steps inside a while loop, where XLA:CPU ran autodiff's
dilated convolutions slower still (docs/benchmarks.md).

  python -m benchmarks.stylegan2_ops --batch_sizes=32   # from the repo root
"""

import argparse

from benchmarks import resnet_ops
from jaxgan.models import upfirdn

F = upfirdn.setup_filter()


UP = (
  lambda x, k: upfirdn.upsample_conv2d(x, k, F),
  lambda x, k: upfirdn.upsample_conv2d_reference(x, k, F),
)
DOWN = (
  lambda x, k: upfirdn.conv2d_downsample(x, k, F),
  lambda x, k: upfirdn.conv2d_downsample_reference(x, k, F),
)
SAME = (upfirdn.conv2d, upfirdn.conv2d_reference)
LAYERS = {  # name: jaxgan's fn, textbook fn, input side, in, out, kernel size
  'G b8 conv0: up 4->8, 128->128': (*UP, 4, 128, 128, 3),
  'G b16 conv0: up 8->16, 128->64': (*UP, 8, 128, 64, 3),
  'G b32 conv0: up 16->32, 64->32': (*UP, 16, 64, 32, 3),
  'G b32 conv1: 3x3 32->32 at 32': (*SAME, 32, 32, 32, 3),
  'G b32 torgb: 1x1 32->3 at 32': (*SAME, 32, 32, 3, 1),
  'D b32 fromrgb: 1x1 3->32 at 32': (*SAME, 32, 3, 32, 1),
  'D b32 conv1: down 32->16, 32->64': (*DOWN, 32, 32, 64, 3),
  'D b16 conv1: down 16->8, 64->128': (*DOWN, 16, 64, 128, 3),
}  # fmt: skip


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch_sizes', default='32')
  parser.add_argument('--rounds', type=int, default=2)
  args = parser.parse_args()
  resnet_ops.report(LAYERS, args.batch_sizes, args.rounds, images=256)


if __name__ == '__main__':
  main()
