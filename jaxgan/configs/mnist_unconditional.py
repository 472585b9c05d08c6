"""The best unconditional DCGAN without cluster labels: configs/mnist.py until 2026-12-02.

  python -m jaxgan.main --config=configs/mnist_unconditional.py --workdir=runs/mnist_uncond

The classic DCGAN (configs/mnist_dcgan_classic.py) at Adam 1e-3 for both networks, sampled
with standing batch-norm statistics, 3,000 steps; G draws from one Gaussian latent space, with
no clusters and no labels. The base of the 1,000-step ablation in docs/results.md
(`python -m benchmarks.ablation --config=configs/mnist_unconditional.py`), and what
configs/mnist.py's clusters are measured against.
"""

from jaxgan.configs import mnist


def get_config():
  config = mnist.get_config()
  config.num_steps = 3000
  config.data.clusters = 0
  config.model.conditional = False
  config.optim.g_lr = config.optim.d_lr = 1e-3
  config.train.ema_decay = 0.0
  config.train.ema_start = 0
  config.train.mode_seeking = 0.0
  config.eval_every = 1500
  return config
