"""What every recipe builds on: each config key once, with its meaning, at the value of the
classic DCGAN (Radford et al. 2016: Adam 2e-4 with b1=0.5, batch 64, BCE with the
non-saturating G loss, batch norm, one D update per G update, no EMA); and the data sections
of the sources the recipes use. Not a recipe itself: it has no `get_config`.

A recipe's `get_config` starts from `base()` and sets, section by section (run, data, model,
optim, train, eval), what it changes: always `num_steps`, `data` and `eval_every`, which
`base()` leaves out. configs/mnist_dcgan_classic.py is `base()` on MNIST as it is.
"""

import ml_collections


def base() -> ml_collections.ConfigDict:
  """Every key but `num_steps`, `data` and `eval_every`, at DCGAN's values."""
  config = ml_collections.ConfigDict()
  # --- Run ---
  config.seed = 0
  config.batch_size = 64  # global batch, split over all devices
  config.log_every = 100
  config.sample_every = 500  # 0 disables sample grids
  config.checkpoint_every = 1000
  config.keep_checkpoints = 3
  config.num_grid_samples = 64  # images in each sample grid, from one fixed latent batch
  # --- Model ---
  config.model = dcgan_model()
  # --- Optim ---
  config.optim = ml_collections.ConfigDict()
  config.optim.name = 'adam'  # adam | adamw | rmsprop | sgd
  config.optim.g_lr = 2e-4
  config.optim.d_lr = 2e-4
  config.optim.schedule = 'constant'  # constant | linear | cosine (to 0 at num_steps)
  config.optim.b1 = 0.5  # adam, adamw
  config.optim.b2 = 0.999  # adam, adamw
  config.optim.eps = 1e-8  # adam, adamw, rmsprop
  config.optim.decay = 0.9  # rmsprop: decay of the squared-gradient average
  config.optim.momentum = 0.0  # rmsprop, sgd
  config.optim.weight_decay = 0.0  # > 0: decoupled weight decay (AdamW) for G and D
  # --- Train: the GAN (README "GAN family"; these values leave all of it off) ---
  config.train = ml_collections.ConfigDict()
  config.train.loss = (
    'non_saturating'  # non_saturating | minimax | least_squares | hinge | wasserstein
  )
  config.train.d_steps = 1
  config.train.g_steps = 1
  config.train.balance = 'none'  # none | loss_ratio
  config.train.balance_a = 1.5  # loss_ratio: skip G's update while g_loss * a < d_loss
  config.train.balance_b = 2.0  # loss_ratio: skip D's update while d_loss * b < g_loss
  config.train.gp_weight = 0.0  # WGAN-GP gradient penalty weight (10 in the paper)
  config.train.r1_weight = 0.0  # R1 gamma: gamma / 2 * ||grad_x D(real)||^2
  config.train.r1_every = 1  # lazy R1: every k-th D update, scaled by k (StyleGAN2 uses 16)
  config.train.label_smoothing = 0.0  # one-sided: real target 1 - s (BCE losses only)
  config.train.info_weight = 1.0  # InfoGAN's term (model.latent_classes, latent_continuous)
  # MSGAN's mode-seeking term in G's loss, against G drawing one image per class or cluster.
  config.train.mode_seeking = 0.0
  config.train.ema_decay = 0.0  # > 0: sample from an EMA of G's params; 0: from G itself
  config.train.ema_start = 2000  # step from which the EMA averages (before: a copy of G)
  # > 0: sample (grids, evaluation) with G's batch-norm statistics recomputed from this many
  # batches of 500 latents, not the running averages of training (BigGAN's standing stats).
  config.train.standing_stats = 0
  # Differentiable augmentation of all D's inputs, real and fake (DiffAugment): ops from
  # color, translation, cutout, comma-separated; '' is off. Each op is applied to each image
  # with probability augment_p, a number or 'adaptive' (ADA: p starts at 0, and every
  # ada_interval steps moves to keep the mean sign of D's logits on real images at
  # ada_target; ada_kimg is how many thousand real images p takes to go from 0 to 1: ADA's
  # 500 suits runs of millions of images, 100 runs of a few thousand steps).
  config.train.augment = ''
  config.train.augment_p = ml_collections.FieldReference(1.0, field_type=object)  # or a str
  config.train.ada_target = 0.6
  config.train.ada_interval = 4
  config.train.ada_kimg = 100.0
  # --- Train: the loop ---
  # Iterations fused into one jitted call (lax.scan): fewer dispatches and host round trips,
  # the same result bit for bit, and faster on CPU (docs/benchmarks.md).
  config.train.steps_per_call = 10
  # A NaN/Inf in the losses, D outputs or grad norms: 'stop' the run, or 'rollback' to the last
  # checkpoint with both learning rates x rollback_lr_factor, at most max_rollbacks times.
  config.train.on_nan = 'stop'  # stop | rollback
  config.train.rollback_lr_factor = 0.5
  config.train.max_rollbacks = 3
  # --- Eval (docs/evaluation.md): every eval_every steps, which each recipe sets (0: off) ---
  config.eval_num_samples = 10_000
  # The feature network of the evaluation: '' is the dataset's own (the MNIST classifier for
  # MNIST), 'inception' the FID Inception network, whose weights file (pytorch-fid's) is
  # eval_inception_weights, or $JAXGAN_INCEPTION_WEIGHTS when ''.
  config.eval_features = ''
  config.eval_inception_weights = ''
  return config


def dcgan_model(
  g_features: tuple[int, ...] = (128, 64), d_features: tuple[int, ...] = (64, 128)
) -> ml_collections.ConfigDict:
  """DCGAN's networks (jaxgan.models.dcgan): G from a map 2 ** len(g_features) times smaller
  than the images, D its mirror image; the default widths are MNIST's (G: dense -> 7x7x128 ->
  14x14x64 -> 28x28x1; D: 28x28 -> 14x14x64 -> 7x7x128 -> dense)."""
  model = ml_collections.ConfigDict()
  model.name = 'dcgan'
  model.latent_dim = 100
  model.latent_dist = 'gaussian'  # gaussian | uniform
  model.g_features = g_features
  model.d_features = d_features
  model.upsample = 'conv_transpose'  # conv_transpose | pixel_shuffle
  model.downsample = 'strided_conv'  # strided_conv | avg_pool
  model.norm = 'batch'  # batch | layer | group | none
  model.d_norm = ''  # D's norm if not model.norm: batch | layer | group | none
  model.spectral_norm = False  # spectral normalisation of D's layers (SNGAN)
  model.dtype = 'float32'  # compute dtype: float32 | bfloat16 (mixed precision, GPU/TPU)
  model.g_dropout = 0.0  # dropout rate after each of G's hidden layers (0: none)
  model.d_dropout = 0.0  # dropout rate after each of D's activations (0: none)
  model.d_activation = 'leaky_relu'  # leaky_relu (0.2, as in DCGAN) | relu
  model.d_minibatch_std = 0  # > 0 adds ProGAN's minibatch-std channel to D
  model.conditional = False  # class-conditional G and projection D (on data.num_classes)
  # InfoGAN (Chen et al. 2016): G also takes a random categorical code with this many values,
  # and latent_continuous of z's dims are continuous codes; D has a head that must read both
  # back off the fakes (weight train.info_weight). 0 and 0: off.
  model.latent_classes = 0
  model.latent_continuous = 0
  return model


def mnist_data() -> ml_collections.ConfigDict:
  """MNIST's training split: 60,000 images of 28x28x1, ten digit classes."""
  data = _data('mnist')  # or any tfds dataset name, read with tfds.data_source
  data.dir = ''  # folder with the four MNIST IDX files; '' fetches and caches them
  data.url = 'https://storage.googleapis.com/cvdf-datasets/mnist/'
  return data


def folder_data(resolution: int = 64) -> ml_collections.ConfigDict:
  """A folder of images (README "Your own images"), prepared once into a cache."""
  data = _data('folder')
  data.split = 'train'  # data.dir/train if it exists, else the whole of data.dir
  data.dir = ''  # the folder of images (required)
  data.resolution = resolution  # a power of two from 8 to 1024
  data.channels = 3  # 3: RGB; 1: grayscale
  data.labels = 'none'  # none | folders (the first-level sub-folders are the classes)
  data.mirror = False  # random left-right flips of the training images
  data.on_bad_file = 'skip'  # skip (one warning) | error, for files that do not decode
  data.resize_filter = 'lanczos'  # lanczos | box | bicubic
  data.workers = 0  # processes decoding images when preparing; 0: every core
  return data


def cifar10_data(source: str = '') -> ml_collections.ConfigDict:
  """CIFAR-10's training split: the official tarball (source '' or 'cifar10') or, with
  'folder', a folder of its images in one sub-folder per class (labels from the folders)."""
  if source == 'folder':
    data = folder_data(resolution=32)
    data.labels = 'folders'
    return data
  if source not in ('', 'cifar10'):
    raise ValueError(f"unknown CIFAR-10 source {source!r}; use 'cifar10' or 'folder'")
  data = _data('cifar10')  # or cifar100, with num_classes=100
  data.dir = ''  # a folder with cifar-10-python.tar.gz (or the file); '' downloads it
  data.url = ''  # '' is https://www.cs.toronto.edu/~kriz/
  data.mirror = False  # random left-right flips of the training images
  return data


def _data(name: str) -> ml_collections.ConfigDict:
  """A data section with the keys every data source has."""
  data = ml_collections.ConfigDict()
  data.name = name
  data.split = 'train'
  data.cache_dir = ''  # '' means ~/.cache/jaxgan (or $JAXGAN_CACHE)
  # Images on every device (yes), streamed from host memory (no), or by size (auto).
  data.on_device = 'auto'
  data.subset = 0  # train on this many images of the split (a fixed random choice); 0: all
  # > 0: labels are this many k-means clusters of the training images (jaxgan/data/clusters.py),
  # for a conditional GAN (model.conditional) on data without labels; 0: the data's own labels.
  data.clusters = 0
  data.num_classes = 10  # classes of the data's own labels (model.conditional, clusters=0)
  return data
