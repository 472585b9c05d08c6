"""Every config in configs/ is valid and trains: each runs two tiny steps on the shared MNIST,
a tiny folder or tarball (the CIFAR-10 recipes on real images: tests/test_cifar_recipes.py)."""

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxgan import config as config_lib
from jaxgan import train
from jaxgan.data import cifar
from tests.conftest import REPO, SHARED_MNIST
from tests.test_cifar_data import make_tarball, use_fake_md5

# configs/common.py is what the recipes build on, not a recipe.
CONFIGS = sorted(
  p.stem for p in (REPO / 'configs').glob('*.py') if p.stem not in ('__init__', 'common')
)
# Recipes that tests/test_cifar_recipes.py trains on real images: here they are only validated
# (with each of their data sources), which saves compiling the same networks twice.
TRAINED_ON_REAL_DATA = (
  'cifar10_dcgan',
  'cifar10_sngan',
  'cifar10_sngan_cond',
  'cifar10_diffaug_10pct',
)
# Configs that train the networks and step of another config, only longer or with other
# learning rates: validated here, and trained through the config named.
SAME_STEP_AS = {'mnist_best': 'mnist', 'mnist_unconditional': 'mnist_dcgan_classic'}
# Recipes that another test file trains (validated here): its networks compile slowly on CPU.
TRAINED_ELSEWHERE = (
  'stylegan2_cifar10',  # tests/test_stylegan2_training.py
  'stylegan2_folder',  # its phases: test_stylegan2_training's resume test; test_sampling.py
  'r3gan_cifar10',  # tests/test_r3gan_training.py, which shares the others' training
  'r3gan_folder',
  'r3gan_stacked_mnist',
)


def _data_dir(config, tmp_path, monkeypatch) -> str:
  """Where the config's data is offline: the shared MNIST, or a tiny folder or tarball."""
  if config.data.name in ('mnist', 'stacked_mnist'):
    return str(SHARED_MNIST)
  if config.data.name == 'folder':
    pixels = np.random.default_rng(0).integers(0, 256, (8, 40, 48, 3), np.uint8)
    for i, image in enumerate(pixels):
      Image.fromarray(image).save(tmp_path / f'{i}.png')
    config.data.cache_dir = str(tmp_path.parent / 'cache')
    config.data.workers = 1
    return str(tmp_path)
  if config.data.name == 'cifar10':
    make_tarball(tmp_path)
    use_fake_md5(monkeypatch, tmp_path / cifar.CIFAR10_SPEC.tarball)
    return str(tmp_path)
  pytest.skip(f'data {config.data.name!r} is not available offline')


def shrink_model(model) -> None:
  """The same family and depth, a few channels wide."""
  model.latent_dim = 8
  if model.name == 'dcgan':
    model.g_features = (8, 4)
    model.d_features = (4, 8)
  elif model.name == 'resnet':
    model.g_ch = model.d_ch = 4
  elif model.name == 'stylegan2':
    # channel_base: at least one channel at the largest side (stylegan2_folder's 256 px).
    model.update(w_dim=8, mapping_layers=1, channel_base=1024, channel_max=8, mbstd_group=2)
  elif model.name == 'r3gan':
    n = len(model.widths)  # the stages the resolution needs
    model.update(widths=(8,) * n, cardinalities=(2,) * n, blocks=(1,) * n)
  else:
    raise AssertionError(f'no tiny size for model {model.name!r}: add one here')


def _shrunk(name: str, tmp_path: Path, monkeypatch):
  config = importlib.import_module(f'jaxgan.configs.{name}').get_config()
  config.batch_size = 8
  config.num_steps = 2
  config.log_every = config.sample_every = config.checkpoint_every = 2
  # The evaluation at the last step runs, on a few samples (the counts do not change the code).
  config.eval_num_samples = min(config.eval_num_samples, 100)
  config.num_grid_samples = 20
  config.data.dir = _data_dir(config, tmp_path / 'data', monkeypatch)
  if config.data.name == 'stacked_mnist':
    config.data.stacked_size = 64  # build only a few images
  # The tiny data sets hold a few dozen; of MNIST's 60,000, a few hundred do (k-means is fast).
  cap = 256 if config.data.name == 'mnist' else 8
  config.data.subset = min(config.data.subset or cap, cap)
  config.data.clusters = min(config.data.clusters, 4)
  shrink_model(config.model)
  config.train.d_steps = min(config.train.d_steps, 2)  # keeps n_d > 1, compiles faster
  config.steps_per_call = 1  # one small program (the fused loop: tests/test_train.py)
  return config


@pytest.mark.parametrize('name', TRAINED_ON_REAL_DATA)
def test_recipes_validate_with_the_folder_source(name):
  config = importlib.import_module(f'jaxgan.configs.{name}').get_config('folder')
  config.data.dir = str(REPO)
  config_lib.validate(config)
  assert config.data.name == 'folder' and config.data.labels == 'folders'
  assert config.data.resolution == 32


@pytest.mark.parametrize('name', ['cifar10_sngan', 'cifar10_sngan_cond'])
def test_sngan_cpu_option_narrows_the_run_and_keeps_the_data(name):
  module = importlib.import_module(f'jaxgan.configs.{name}')
  full, cpu = module.get_config('folder'), module.get_config('folder,cpu')
  cpu.data.dir = str(REPO)
  config_lib.validate(cpu)
  assert cpu.data.to_dict() == dict(full.data.to_dict(), dir=str(REPO))
  assert (cpu.model.name, cpu.train.loss) == (full.model.name, full.train.loss)
  assert cpu.model.g_ch < full.model.g_ch and cpu.train.d_steps < full.train.d_steps
  assert module.get_config('cpu').data.name == 'cifar10'
  for bad in ('folder,gpu', 'folder,cifar10', 'cpu,cpu'):
    with pytest.raises(ValueError, match='bad config argument'):
      module.get_config(bad)


def test_every_config_is_found():
  assert {'mnist', 'test', 'mnist_wgan_gp', 'mnist_hinge_sn', 'mnist_lsgan'} <= set(CONFIGS)
  assert {'mnist_conditional', 'folder', 'cifar10'} <= set(CONFIGS)
  assert set(TRAINED_ON_REAL_DATA) <= set(CONFIGS)


@pytest.mark.parametrize('name, other', SAME_STEP_AS.items())
def test_configs_said_to_share_a_step_do(name, other):
  a, b = (importlib.import_module(f'jaxgan.configs.{n}').get_config() for n in (name, other))
  assert a.model.to_dict() == b.model.to_dict() and a.data.to_dict() == b.data.to_dict()
  for key in ('loss', 'd_steps', 'g_steps', 'balance', 'gp_weight', 'r1_weight', 'augment'):
    assert a.train[key] == b.train[key], key
  assert (a.batch_size, a.optim.name) == (b.batch_size, b.optim.name)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_validates_and_trains(name, tmp_path, monkeypatch):
  (tmp_path / 'data').mkdir()
  config = _shrunk(name, tmp_path, monkeypatch)
  config_lib.validate(config)
  if name in TRAINED_ON_REAL_DATA or name in SAME_STEP_AS or name in TRAINED_ELSEWHERE:
    return
  workdir = tmp_path / 'w'
  state = train.train_and_evaluate(config, str(workdir))
  assert int(state.step) == 2
  lines = (workdir / 'metrics.jsonl').read_text().splitlines()
  metrics = json.loads(lines[-1])
  assert metrics['step'] == 2
  assert Path(workdir / 'samples' / 'step_000002.png').exists()
