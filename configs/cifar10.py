"""DCGAN on CIFAR-10 (32x32 RGB) from the official python tarball.

  python -m jaxgan.main --config=configs/cifar10.py --workdir=runs/cifar10

Without data.dir the tarball (163 MB) is downloaded once into ~/.cache/jaxgan/cifar10 and
checked against its published MD5; --config.data.dir=PATH reads it from a folder instead.
CIFAR-100: --config.data.name=cifar100 --config.data.num_classes=100. G starts from 4x4:
dense -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x3. No CIFAR feature network ships yet, so
evaluation is off (eval_every=0).

Runtime on a 2-core CPU: 1.4 steps/s at batch 64 (21 GFLOP a step; measured while another job
used one of the cores); use a GPU or TPU for real runs.
"""

import ml_collections

from configs import folder


def get_config() -> ml_collections.ConfigDict:
  config = folder.get_config()
  config.data = ml_collections.ConfigDict()
  config.data.name = 'cifar10'  # or cifar100
  config.data.split = 'train'
  config.data.dir = ''  # a folder with cifar-10-python.tar.gz (or the file); '' downloads it
  config.data.cache_dir = ''  # '' means ~/.cache/jaxgan (or $JAXGAN_CACHE)
  # Images on every device (yes), streamed from host memory (no), or by size (auto).
  config.data.on_device = 'auto'
  config.data.url = ''  # '' is https://www.cs.toronto.edu/~kriz/
  config.data.mirror = False  # random left-right flips of the training images
  config.data.num_classes = 10  # 100 for cifar100

  config.model.g_features = (256, 128, 64)  # G: dense -> 4x4x256 -> 8x8x128 -> 16x16x64
  config.model.d_features = (64, 128, 256)  # D: 32x32 -> 16x16x64 -> 8x8x128 -> 4x4x256
  return config
