"""WGAN-GP (Gulrajani et al. 2017) on MNIST: Wasserstein loss, gradient penalty 10, 5 D : 1 G.

  python -m jaxgan.main --config=configs/mnist_wgan_gp.py --workdir=runs/mnist_wgan_gp

Runtime: measured with `--config.num_steps=100` on this 2-core CPU while it was shared (load
~4.7): 0.7-1.0 steps/s after a 20 s compile, where configs/mnist.py ran 2.5-4.2 steps/s; so the
2000 steps (10,000 D updates) take 35-50 minutes. Uncontended, scale by configs/mnist.py's own
speed.
"""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.train.loss = 'wasserstein'
  config.train.gp_weight = 10.0
  config.train.d_steps = 5  # the critic is trained closer to optimality than G
  config.optim.g_lr = config.optim.d_lr = 1e-4
  config.optim.b1, config.optim.b2 = 0.0, 0.9
  # The penalty is on each example's own input gradient: batch norm would couple the examples,
  # so the critic has none (G keeps its batch norm, as in the paper).
  config.model.d_norm = 'none'
  config.num_steps = 2000
  return config
