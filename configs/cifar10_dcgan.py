"""DCGAN on CIFAR-10 (32x32 RGB), from the official python tarball or the JPEG folder.

  python -m jaxgan.main --config=configs/cifar10_dcgan.py --workdir=runs/cifar10_dcgan
  python -m jaxgan.main --config=configs/cifar10_dcgan.py:folder --workdir=runs/cifar10_dcgan \
    --config.data.dir=/tmp/data/cifar10-jpg   # offline: the JPEGs, train/ and test/ inside

Without data.dir the tarball (163 MB) is downloaded once into ~/.cache/jaxgan/cifar10 and
checked against its published MD5; --config.data.dir=PATH reads it from a folder instead.
CIFAR-100: --config.data.name=cifar100 --config.data.num_classes=100 --config.eval_every=0.
With `:folder` the data section is configs/folder.py's at 32 px with labels from the class
folders (README "Your own images"; ../shared/data/cifar10/cifar10-jpg.tar.gz unpacks into such
a folder; its test/ sub-folder is the evaluation's reference). G starts from 4x4: dense ->
4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x3.

Evaluation: every 1,000 steps, 10,000 samples against the 10,000 test images in the features
of jaxgan's own CIFAR-10 classifier (`cifar10_classifier`, not Inception: its FID compares
jaxgan runs, not papers; README "Sample quality"). In Inception features:
--config.eval_features=inception; a paper-comparable FID of the finished run:
python -m jaxgan.evaluate --workdir=... --metrics=fid50k_full.

Random left-right flips and standing batch-norm statistics for sampling are on: a 10-minute
CPU run with both had far fewer of the vertical-stripe artifacts of a run without them
(docs/results.md, "CIFAR-10 DCGAN recipe"). Adam at 1e-3 for G and 5e-4 for D, as in
configs/mnist.py (DCGAN's 2e-4 for both: --config.optim.g_lr=2e-4 --config.optim.d_lr=2e-4):
at step 4,500 of a 15-minute CPU run, FID 4.8 and recall 0.37 against 6.3 and 0.23, with
clearer objects (docs/results.md, "CIFAR-10 DCGAN: learning rates and EMA").

Runtime on the 2-core AMD EPYC CPU of docs/results.md, nothing else running: 5.1-6.0 steps/s
at batch 64 (21 GFLOP a step), 3,110 steps in 10 minutes; use a GPU or TPU for real runs.
"""

import ml_collections

from configs import folder


def data_config(source: str = '') -> ml_collections.ConfigDict:
  """CIFAR-10's data section: the official tarball (source '' or 'cifar10') or, with
  'folder', a folder of its images in one sub-folder per class (labels from the folders)."""
  if source == 'folder':
    data = folder.get_config().data
    data.resolution = 32
    data.labels = 'folders'
    data.num_classes = 10
    return data
  if source not in ('', 'cifar10'):
    raise ValueError(f"unknown CIFAR-10 source {source!r}; use 'cifar10' or 'folder'")
  data = ml_collections.ConfigDict()
  data.name = 'cifar10'  # or cifar100
  data.split = 'train'
  data.dir = ''  # a folder with cifar-10-python.tar.gz (or the file); '' downloads it
  data.cache_dir = ''  # '' means ~/.cache/jaxgan (or $JAXGAN_CACHE)
  # Images on every device (yes), streamed from host memory (no), or by size (auto).
  data.on_device = 'auto'
  data.subset = 0  # train on this many images of the split (a fixed random choice); 0: all
  # > 0: labels are this many k-means clusters of the training images (jaxgan/data/clusters.py),
  # for a conditional GAN (model.conditional) on data without labels; 0: the data's own labels
  data.clusters = 0
  data.url = ''  # '' is https://www.cs.toronto.edu/~kriz/
  data.mirror = False  # random left-right flips of the training images
  data.num_classes = 10  # 100 for cifar100
  return data


def get_config(source: str = '') -> ml_collections.ConfigDict:
  config = folder.get_config()
  config.data = data_config(source)
  config.model.g_features = (256, 128, 64)  # G: dense -> 4x4x256 -> 8x8x128 -> 16x16x64
  config.model.d_features = (64, 128, 256)  # D: 32x32 -> 16x16x64 -> 8x8x128 -> 4x4x256
  config.data.mirror = True
  config.optim.g_lr, config.optim.d_lr = 1e-3, 5e-4  # G twice as fast as D (docs/results.md)
  config.train.standing_stats = 10  # grids from BN statistics of G itself (README)
  config.eval_every = 1000
  config.eval_num_samples = 10_000  # as many as the test split has
  config.eval_features = 'cifar10_classifier'  # jaxgan's own, so that :folder measures too
  return config
