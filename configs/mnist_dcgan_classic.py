"""The classic DCGAN on MNIST (Radford et al. 2016), for comparison with the default.

  python -m jaxgan.main --config=configs/mnist_dcgan_classic.py --workdir=runs/mnist_classic

BCE loss with the non-saturating G loss, batch norm in both networks, LeakyReLU(0.2) in D,
transposed convolutions up and strided convolutions down, Gaussian latents, one D step per G
step, Adam(2e-4, b1=0.5) for both, batch 64, no EMA: every choice set here explicitly, so
that it stays the classic recipe whatever configs/mnist.py's defaults become. What it reaches
in 5,000 steps: docs/results.md.
"""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.batch_size = 64
  config.num_steps = 5000
  config.eval_every = 2500
  config.model.latent_dim = 100
  config.model.latent_dist = 'gaussian'
  config.model.g_features = (128, 64)
  config.model.d_features = (64, 128)
  config.model.upsample = 'conv_transpose'
  config.model.downsample = 'strided_conv'
  config.model.norm = 'batch'
  config.model.d_norm = ''
  config.model.spectral_norm = False
  config.model.d_activation = 'leaky_relu'
  config.model.g_dropout = config.model.d_dropout = 0.0
  config.model.conditional = False  # unconditional: no labels, no clusters
  config.data.clusters = 0
  config.model.latent_classes = config.model.latent_continuous = 0
  config.optim.name = 'adam'
  config.optim.g_lr = config.optim.d_lr = 2e-4
  config.optim.b1, config.optim.b2 = 0.5, 0.999
  config.optim.schedule = 'constant'
  config.optim.weight_decay = 0.0
  config.train.loss = 'non_saturating'
  config.train.d_steps = config.train.g_steps = 1
  config.train.balance = 'none'
  config.train.ema_decay = 0.0
  config.train.mode_seeking = 0.0
  config.train.standing_stats = 0  # sampled with the running averages of training
  config.train.gp_weight = config.train.r1_weight = config.train.label_smoothing = 0.0
  return config
