"""WGAN-GP (Gulrajani et al. 2017) on MNIST: Wasserstein loss, gradient penalty 10, 5 D : 1 G.

  python -m jaxgan.main --config=configs/mnist_wgan_gp.py --workdir=runs/mnist_wgan_gp

configs/mnist.py otherwise, unconditional, for 2,000 iterations (10,000 critic updates). What
it reached and how long it took on a 2-core CPU: docs/results.md, "The recipes in a fixed
budget".
"""

from jaxgan.configs import mnist


def get_config():
  config = mnist.get_config()
  config.num_steps = 2000
  config.data.clusters = 0
  # The penalty is on each example's own input gradient: batch norm would couple the examples,
  # so the critic has none (G keeps its batch norm, as in the paper).
  config.model.d_norm = 'none'
  config.model.conditional = False  # unconditional, as in the paper
  config.optim.g_lr = config.optim.d_lr = 1e-4
  config.optim.b1, config.optim.b2 = 0.0, 0.9
  config.train.loss = 'wasserstein'
  config.train.gp_weight = 10.0
  config.train.d_steps = 5  # the critic is trained closer to optimality than G
  config.train.mode_seeking = 0.0
  return config
