"""The CIFAR-10 recipes train on real CIFAR-10 images: each for two steps, a few channels wide,
on the offline JPEG copy read as an image folder (`get_config('folder')`, the `:folder` of the
recipes' commands), and evaluate in the CIFAR-10 classifier's features against its test/
sub-folder. tests/test_configs.py validates them but leaves the training to this file."""

import importlib
import json

import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import evaluate, train
from tests.test_configs import TRAINED_ON_REAL_DATA, shrink_model
from tests.test_folder_data import cifar_jpgs  # noqa: F401  (100 real images, two classes)


@pytest.fixture(scope='module')
def cifar_root(cifar_jpgs, tmp_path_factory):  # noqa: F811
  """A CIFAR-10-like folder: the 100 real images as both train/ and test/."""
  root = tmp_path_factory.mktemp('cifar_root')
  for split in ('train', 'test'):
    (root / split).symlink_to(cifar_jpgs, target_is_directory=True)
  return root


# The conditional SNGAN trains in its CPU-sized form (one D step), the others as shipped.
ARGS = {
  name: 'folder,cpu' if name == 'cifar10_sngan_cond' else 'folder' for name in TRAINED_ON_REAL_DATA
}


@pytest.mark.parametrize('name, arg', ARGS.items())
def test_recipe_trains_on_real_cifar10(name, arg, cifar_root, tmp_path):
  config = importlib.import_module(f'jaxgan.configs.{name}').get_config(arg)
  assert config.eval_every and config.eval_features == 'cifar10_classifier'
  config.data.dir = str(cifar_root)
  config.data.subset = min(config.data.subset, 60)
  config.eval_num_samples = 50
  config.data.cache_dir = str(tmp_path / 'cache')
  config.data.workers = 1
  config.batch_size = 8
  config.num_steps = 2
  config.log_every = config.sample_every = config.checkpoint_every = 2
  config.num_grid_samples = 20
  config.steps_per_call = 1
  config.train.d_steps = min(config.train.d_steps, 2)  # n_d > 1 as in SNGAN's 5, compiles faster
  shrink_model(config.model)
  config_lib.validate(config)
  workdir = tmp_path / 'w'
  state = train.train_and_evaluate(config, str(workdir))
  assert int(state.step) == 2
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  metrics = [row for row in rows if 'd_loss' in row][-1]
  assert metrics['step'] == 2
  assert np.isfinite([metrics['d_loss'], metrics['g_loss']]).all()
  evals = [row for row in rows if 'eval_fid' in row]
  assert evals and np.isfinite(evals[-1]['eval_fid']) and evals[-1]['eval_fid'] > 0
  assert evals[-1]['eval_features'] == 'cifar10_classifier'
  if name == 'cifar10_dcgan':  # the evaluate command measures as the run did (folder source)
    report = evaluate.run(str(workdir), num_samples=50)
    assert report['features'] == 'cifar10_classifier' and np.isfinite(report['metrics']['fid'])
  assert json.loads((workdir / 'classes.json').read_text()) == ['airplane', 'automobile']
  assert (workdir / 'samples' / 'step_000002.png').exists()
