"""Default config: DCGAN on MNIST (28x28x1), conditioned on k-means clusters of the pixels.

  python -m jaxgan.main --config=configs/mnist.py --workdir=runs/mnist

No labels are used: the 60,000 training images are grouped into 200 k-means clusters of their
pixels (data.clusters, a few seconds), and G and D are class-conditional on the cluster id, so
G learns each cluster as a mode of its own instead of drawing blends of two digits; fake
batches get cluster ids as frequent as in the data, and MSGAN's mode-seeking term
(train.mode_seeking) keeps G from drawing one image per cluster. Otherwise the classic DCGAN of
Radford et al. 2016 (configs/mnist_dcgan_classic.py) with what measured best in
docs/results.md: Adam at 1e-3 for G and 5e-4 for D (DCGAN: 2e-4 for both), G's EMA from step
2,000, standing batch-norm statistics for sampling; 4,000 steps at batch 64, evaluated at the
end. Its run time and figures on the 2-core AMD EPYC: docs/results.md. Without clusters:
configs/mnist_unconditional.py.
Override any field with --config.KEY=VALUE.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.batch_size = 64  # global batch, split over all devices
  config.num_steps = 4000  # iterations; each is train.d_steps D updates + train.g_steps G updates
  config.log_every = 100
  config.sample_every = 500  # 0 disables sample grids
  config.checkpoint_every = 1000
  config.keep_checkpoints = 3
  config.num_grid_samples = 64  # images in each sample grid, from one fixed latent batch
  config.eval_every = 4000  # FID etc. against the test split (docs/evaluation.md); 0: off
  config.eval_num_samples = 10_000
  # The feature network of the evaluation: '' is the dataset's own (the MNIST classifier for
  # MNIST), 'inception' the FID Inception network, whose weights file is
  # eval_inception_weights, or when '' one found as jaxgan.evaluation.inception_weights says.
  config.eval_features = ''
  config.eval_inception_weights = ''

  config.data = ml_collections.ConfigDict()
  config.data.name = 'mnist'  # or any tfds dataset name, read with tfds.data_source
  config.data.split = 'train'
  config.data.dir = ''  # folder with the four MNIST IDX files; '' fetches and caches them
  config.data.cache_dir = ''  # '' means ~/.cache/jaxgan (or $JAXGAN_CACHE)
  # Images on every device (yes), streamed from host memory (no), or by size (auto).
  config.data.on_device = 'auto'
  config.data.subset = 0  # train on this many images of the split (a fixed random choice); 0: all
  # > 0: labels are this many k-means clusters of the training images (jaxgan/data/clusters.py),
  # for a conditional GAN (model.conditional) that needs no labels; 0: the data's own labels.
  # 200 clusters of the pixels: one mode each for G, so it stops drawing blends of two digits.
  config.data.clusters = 200
  config.data.url = 'https://storage.googleapis.com/cvdf-datasets/mnist/'

  config.model = ml_collections.ConfigDict()
  config.model.name = 'dcgan'
  config.model.latent_dim = 100
  config.model.latent_dist = 'gaussian'  # gaussian | uniform
  config.model.g_features = (128, 64)  # G: dense -> 7x7x128 -> 14x14x64 -> 28x28x1
  config.model.d_features = (64, 128)  # D: 28x28 -> 14x14x64 -> 7x7x128 -> dense
  config.model.upsample = 'conv_transpose'  # conv_transpose | pixel_shuffle
  config.model.downsample = 'strided_conv'  # strided_conv | avg_pool
  config.model.norm = 'batch'  # batch | layer | group | none
  config.model.dtype = 'float32'  # compute dtype: float32 | bfloat16 (mixed precision, GPU/TPU)
  config.model.g_dropout = 0.0  # dropout rate after each of G's hidden layers (0: none)
  config.model.d_dropout = 0.0  # dropout rate after each of D's activations (0: none)
  config.model.d_activation = 'leaky_relu'  # leaky_relu (0.2, as in DCGAN) | relu

  config.optim = ml_collections.ConfigDict()
  config.optim.name = 'adam'  # adam | adamw | rmsprop | sgd
  config.optim.g_lr = 1e-3  # DCGAN's 2e-4 trains 2x slower here (docs/results.md)
  config.optim.d_lr = 5e-4  # D half as fast as G: better recall and FID here (docs/results.md)
  config.optim.schedule = 'constant'  # constant | linear | cosine (to 0 at num_steps)
  config.optim.b1 = 0.5  # adam, adamw
  config.optim.b2 = 0.999  # adam, adamw
  config.optim.eps = 1e-8  # adam, adamw, rmsprop
  config.optim.decay = 0.9  # rmsprop: decay of the squared-gradient average
  config.optim.momentum = 0.0  # rmsprop, sgd

  config.train = ml_collections.ConfigDict()
  config.train.loss = (
    'non_saturating'  # non_saturating | minimax | least_squares | hinge | wasserstein
  )
  config.train.d_steps = 1
  config.train.g_steps = 1
  config.train.balance = 'none'  # none | loss_ratio
  config.train.balance_a = 1.5  # loss_ratio: skip G's update while g_loss * a < d_loss
  config.train.balance_b = 2.0  # loss_ratio: skip D's update while d_loss * b < g_loss
  # Iterations fused into one jitted call (lax.scan): fewer dispatches and host round trips,
  # the same result bit for bit, and faster on CPU (docs/benchmarks.md).
  config.train.steps_per_call = 10
  # A NaN/Inf in the losses, D outputs or grad norms: 'stop' the run, or 'rollback' to the last
  # checkpoint with both learning rates x rollback_lr_factor, at most max_rollbacks times.
  config.train.on_nan = 'stop'  # stop | rollback
  config.train.rollback_lr_factor = 0.5
  config.train.max_rollbacks = 3
  # --- The GAN family (README "GAN family"); these defaults leave all of it off ---------
  config.optim.weight_decay = 0.0  # > 0: decoupled weight decay (AdamW) for G and D
  config.train.gp_weight = 0.0  # WGAN-GP gradient penalty weight (10 in the paper)
  config.train.r1_weight = 0.0  # R1 gamma: gamma / 2 * ||grad_x D(real)||^2
  config.train.r1_every = 1  # lazy R1: every k-th D update, scaled by k (StyleGAN2 uses 16)
  config.train.label_smoothing = 0.0  # one-sided: real target 1 - s (BCE losses only)
  config.train.ema_decay = 0.999  # > 0: sample from an EMA of G's params; 0: from G itself
  config.train.ema_start = 2000  # step from which the EMA averages (before: a copy of G)
  # > 0: sample (grids, evaluation) with G's batch-norm statistics recomputed from this many
  # batches of 500 latents, not the running averages of training (BigGAN's standing stats).
  config.train.standing_stats = 10
  # Differentiable augmentation of all D's inputs, real and fake (DiffAugment): ops from
  # color, translation, cutout, comma-separated; '' is off. Each op is applied to each image
  # with probability augment_p, a number or 'adaptive' (ADA: p starts at 0, and every
  # ada_interval steps moves to keep the mean sign of D's logits on real images at
  # ada_target; ada_kimg is how many thousand real images p takes to go from 0 to 1: ADA's
  # 500 suits runs of millions of images, 100 runs of a few thousand steps like this one).
  config.train.augment = ''
  config.train.augment_p = ml_collections.FieldReference(1.0, field_type=object)  # or a str
  config.train.ada_target = 0.6
  config.train.ada_interval = 4
  config.train.ada_kimg = 100.0
  config.model.d_norm = ''  # D's norm if not model.norm: batch | layer | group | none
  config.model.spectral_norm = False  # spectral normalisation of D's layers (SNGAN)
  config.model.conditional = True  # class-conditional G and projection D (on data.clusters)
  # InfoGAN (Chen et al. 2016): G also takes a random categorical code with this many values,
  # and latent_continuous of z's dims are continuous codes; D has a head that must read both
  # back off the fakes (weight train.info_weight). 0 and 0: off.
  config.model.latent_classes = 0
  config.model.latent_continuous = 0
  config.train.info_weight = 1.0
  # MSGAN's mode-seeking term, against G drawing one image per cluster (recall 0.65 -> 0.73).
  config.train.mode_seeking = 0.5
  config.model.d_minibatch_std = 0  # DCGAN: > 0 adds ProGAN's minibatch-std channel to D
  config.data.num_classes = 10  # classes of data.name (used when model.conditional)
  return config
