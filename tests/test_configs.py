"""Every config in configs/ is valid and trains: each runs two tiny steps on the shared MNIST."""

import importlib
import json
from pathlib import Path

import pytest

from jaxgan import config as config_lib
from jaxgan import train
from tests.conftest import REPO, SHARED_MNIST

CONFIGS = sorted(p.stem for p in (REPO / 'configs').glob('*.py') if p.stem != '__init__')


def _shrunk(name: str):
  config = importlib.import_module(f'configs.{name}').get_config()
  if config.data.name not in ('mnist', 'stacked_mnist'):
    pytest.skip(f'{name}: data {config.data.name!r} is not available offline')
  config.batch_size = 8
  config.num_steps = 2
  config.log_every = config.sample_every = config.checkpoint_every = 2
  config.num_grid_samples = 20
  config.data.dir = str(SHARED_MNIST)
  if config.data.name == 'stacked_mnist':
    config.data.stacked_size = 64  # build only a few images
  config.model.latent_dim = 8
  config.model.g_features = (8, 4)
  config.model.d_features = (4, 8)
  config.train.d_steps = min(config.train.d_steps, 2)  # keeps n_d > 1, compiles faster
  config.train.steps_per_call = 1  # one small program (the fused loop: tests/test_train.py)
  return config


def test_every_config_is_found():
  assert {'mnist', 'test', 'mnist_wgan_gp', 'mnist_hinge_sn', 'mnist_lsgan'} <= set(CONFIGS)
  assert 'mnist_conditional' in CONFIGS


@pytest.mark.parametrize('name', CONFIGS)
def test_config_validates_and_trains(name, tmp_path):
  config = _shrunk(name)
  config_lib.validate(config)
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 2
  lines = (tmp_path / 'metrics.jsonl').read_text().splitlines()
  metrics = json.loads(lines[-1])
  assert metrics['step'] == 2
  assert Path(tmp_path / 'samples' / 'step_000002.png').exists()
