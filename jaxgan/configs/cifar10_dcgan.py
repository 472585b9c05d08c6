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

DCGAN's networks and hyperparameters (configs/common.py) with random left-right flips and
standing batch-norm statistics for sampling (a CPU run with both had far fewer of the
vertical-stripe artifacts of a run without them: docs/results.md, "CIFAR-10 DCGAN recipe"),
and Adam at 1e-3 for G and 5e-4 for D, as in configs/mnist.py (DCGAN's 2e-4 for both:
--config.optim.g_lr=2e-4 --config.optim.d_lr=2e-4), which reached a lower FID, a higher recall
and clearer objects in the same CPU time (docs/results.md, "CIFAR-10 DCGAN: learning rates and
EMA"). Its speed on a 2-core CPU: docs/benchmarks.md, "The recipes' run times"; use a GPU
or TPU for real runs.
"""

import ml_collections

from jaxgan.configs import common


def get_config(source: str = '') -> ml_collections.ConfigDict:
  """`source`: '' or 'cifar10' for the tarball, 'folder' for a folder of its images."""
  config = common.base()
  # --- Run ---
  config.num_steps = 20_000
  config.sample_every = 1000
  # --- Data ---
  config.data = common.cifar10_data(source)
  config.data.mirror = True
  # --- Model ---
  config.model.g_features = (256, 128, 64)  # G: dense -> 4x4x256 -> 8x8x128 -> 16x16x64
  config.model.d_features = (64, 128, 256)  # D: 32x32 -> 16x16x64 -> 8x8x128 -> 4x4x256
  # --- Optim ---
  config.optim.g_lr, config.optim.d_lr = 1e-3, 5e-4  # G twice as fast as D (docs/results.md)
  # --- Train ---
  config.train.standing_stats = 10  # grids from BN statistics of G itself (README)
  # --- Eval ---
  config.eval_every = 1000
  config.eval_num_samples = 10_000  # as many as the test split has
  config.eval_features = 'cifar10_classifier'  # jaxgan's own, so that :folder measures too
  return config
