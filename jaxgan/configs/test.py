"""Tiny config for tests and CI: a narrow DCGAN, a few steps, real MNIST from ../shared.

  python -m jaxgan.main --config=configs/test.py --workdir=/tmp/jaxgan_test

Runtime: a few seconds after compilation on a 2-core CPU.
"""

from pathlib import Path

from jaxgan.configs import mnist

SHARED_MNIST = Path(__file__).resolve().parents[3] / 'shared' / 'data' / 'mnist'


def get_config():
  config = mnist.get_config()
  config.batch_size = 8
  config.num_steps = 6
  config.log_every = 2
  config.sample_every = 3
  config.checkpoint_every = 3
  config.num_grid_samples = 16
  config.data.dir = str(SHARED_MNIST)
  config.data.clusters = 0
  config.model.latent_dim = 16
  config.model.g_features = (16, 8)
  config.model.d_features = (8, 16)
  config.model.conditional = False  # an unconditional GAN; tests turn the options on
  config.train.ema_decay, config.train.ema_start = 0.0, 0
  config.train.mode_seeking = 0.0
  config.train.standing_stats = 0  # one program less to compile (tested in test_evaluation)
  config.steps_per_call = 1  # one compiled program per test run
  config.eval_every = 0
  config.eval_num_samples = 200
  return config
