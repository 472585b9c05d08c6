"""Default config: DCGAN on MNIST (28x28x1), conditioned on k-means clusters of the pixels.

  python -m jaxgan.main --config=configs/mnist.py --workdir=runs/mnist

No labels are used: the 60,000 training images are grouped into 200 k-means clusters of their
pixels (data.clusters, a few seconds), and G and D are class-conditional on the cluster id, so
G learns each cluster as a mode of its own instead of drawing blends of two digits; fake
batches get cluster ids as frequent as in the data, and MSGAN's mode-seeking term
(train.mode_seeking) keeps G from drawing one image per cluster. Otherwise the classic DCGAN of
Radford et al. 2016 (configs/common.py, configs/mnist_dcgan_classic.py) with what measured
best in docs/results.md: Adam at 1e-3 for G and 5e-4 for D (DCGAN: 2e-4 for both), G's EMA
from step 2,000, standing batch-norm statistics for sampling; 4,000 steps at batch 64,
evaluated at the end. Its run time and figures: docs/results.md. Without clusters:
configs/mnist_unconditional.py. Every key and what it means: configs/common.py.
Override any field with --config.KEY=VALUE.
"""

import ml_collections

from jaxgan.configs import common


def get_config() -> ml_collections.ConfigDict:
  config = common.base()
  # --- Run ---
  config.num_steps = 4000  # iterations; each is train.d_steps D updates + train.g_steps G updates
  # --- Data ---
  config.data = common.mnist_data()
  # 200 clusters of the pixels: one mode each for G, so it stops drawing blends of two digits.
  config.data.clusters = 200
  # --- Model ---
  config.model.conditional = True  # on the clusters
  # --- Optim ---
  config.optim.g_lr = 1e-3  # DCGAN's 2e-4 trains slower here (docs/results.md)
  config.optim.d_lr = 5e-4  # D half as fast as G: better recall and FID here (docs/results.md)
  # --- Train ---
  config.train.mode_seeking = 0.5  # raises recall (docs/results.md)
  config.train.ema_decay = 0.999
  config.train.standing_stats = 10
  # --- Eval ---
  config.eval_every = 4000  # FID etc. against the test split (docs/evaluation.md); 0: off
  return config
