"""DCGAN on a folder of your own images (64x64 RGB by default), prepared once into a cache.

  python -m jaxgan.main --config=configs/folder.py --workdir=runs/faces --config.data.dir=PATH

The first run decodes, center-crops and resizes every image under PATH on all cores into
~/.cache/jaxgan/folder (README "Your own images"); later runs read that cache in seconds.
The networks are DCGAN's at 64x64: G dense -> 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 ->
64x64x3, D the mirror image. At another resolution the same widths start G from a map 16
times smaller (2x2 at 32 px); for DCGAN's 4x4 start at 32 px pass
--config.model.g_features='(256,128,64)' --config.model.d_features='(64,128,256)'. No feature
network measures arbitrary images yet, so evaluation is off (eval_every=0).

Runtime on a 2-core CPU (batch 64, measured while another job used one of the cores): about
3.5 s a step at 64x64 (127 GFLOP a step, `python -m jaxgan.bench --config=configs/folder.py`),
1.1 steps/s at 32x32; use a GPU or TPU for real runs. Preparing CIFAR-10's 50,000 JPEGs took
13 s (3,700 images/s). Override any field with --config.KEY=VALUE.
"""

import ml_collections

from configs import mnist_dcgan_classic


def get_config() -> ml_collections.ConfigDict:
  config = mnist_dcgan_classic.get_config()  # DCGAN's own hyperparameters (Adam 2e-4, 0.5)
  config.num_steps = 20_000
  config.sample_every = 1000
  config.eval_every = 0  # no feature network for arbitrary images yet

  config.data = ml_collections.ConfigDict()
  config.data.name = 'folder'
  config.data.split = 'train'  # data.dir/train if it exists, else the whole of data.dir
  config.data.dir = ''  # the folder of images (required)
  config.data.resolution = 64  # a power of two from 8 to 1024
  config.data.channels = 3  # 3: RGB; 1: grayscale
  config.data.labels = 'none'  # none | folders (the first-level sub-folders are the classes)
  config.data.mirror = False  # random left-right flips of the training images
  config.data.on_bad_file = 'skip'  # skip (one warning) | error, for files that do not decode
  config.data.resize_filter = 'lanczos'  # lanczos | box | bicubic
  config.data.workers = 0  # processes decoding images when preparing; 0: every core
  config.data.cache_dir = ''  # '' means ~/.cache/jaxgan (or $JAXGAN_CACHE)
  # Images on every device (yes), streamed from host memory (no), or by size (auto).
  config.data.on_device = 'auto'
  config.data.subset = 0  # train on this many images of the split (a fixed random choice); 0: all
  # > 0: labels are this many k-means clusters of the training images (jaxgan/data/clusters.py),
  # for a conditional GAN (model.conditional) on data without labels; 0: the data's own labels
  config.data.clusters = 0
  config.data.num_classes = 10  # with labels=folders and model.conditional: the class count

  config.model.g_features = (512, 256, 128, 64)  # G: dense -> 4x4x512 -> ... -> 64x64x3
  config.model.d_features = (64, 128, 256, 512)  # D: 64x64 -> 32x32x64 -> ... -> 4x4x512
  return config
