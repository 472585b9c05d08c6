"""The CIFAR-10 recipes train on real CIFAR-10 images: each for two steps, a few channels wide,
on the offline JPEG copy read as an image folder (`get_config('folder')`, the `:folder` of the
recipes' commands). tests/test_configs.py validates them but leaves the training to this file."""

import importlib
import json

import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import train
from tests.test_configs import TRAINED_ON_REAL_DATA, shrink_model
from tests.test_folder_data import cifar_jpgs  # noqa: F401  (100 real images, two classes)


@pytest.mark.parametrize('name', TRAINED_ON_REAL_DATA)
def test_recipe_trains_on_real_cifar10(name, cifar_jpgs, tmp_path):  # noqa: F811
  config = importlib.import_module(f'configs.{name}').get_config('folder')
  config.data.dir = str(cifar_jpgs)
  config.data.cache_dir = str(tmp_path / 'cache')
  config.data.workers = 1
  config.batch_size = 8
  config.num_steps = 2
  config.log_every = config.sample_every = config.checkpoint_every = 2
  config.num_grid_samples = 20
  config.train.steps_per_call = 1
  config.train.d_steps = min(config.train.d_steps, 2)  # n_d > 1 as in SNGAN's 5, compiles faster
  shrink_model(config.model)
  config_lib.validate(config)
  workdir = tmp_path / 'w'
  state = train.train_and_evaluate(config, str(workdir))
  assert int(state.step) == 2
  metrics = json.loads((workdir / 'metrics.jsonl').read_text().splitlines()[-1])
  assert metrics['step'] == 2
  assert np.isfinite([metrics['d_loss'], metrics['g_loss']]).all()
  assert json.loads((workdir / 'classes.json').read_text()) == ['airplane', 'automobile']
  assert (workdir / 'samples' / 'step_000002.png').exists()
