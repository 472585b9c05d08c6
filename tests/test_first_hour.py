"""A new user's first hour: the package installed (not editable) and used from another folder,
their own components in every command, errors that say what to do, and a quiet console."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxgan import train
from jaxgan.errors import ConfigError
from tests.conftest import REPO, SHARED_MNIST

TINY = [  # a DCGAN of a few steps, small enough for every command here
  '--config.num_steps=2',
  '--config.batch_size=8',
  '--config.log_every=1',
  '--config.sample_every=0',
  '--config.eval_every=0',
  '--config.model.g_features=(16,8)',
  '--config.model.d_features=(8,16)',
  '--config.train.standing_stats=0',
]


def _run(args, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
  # This checkout's jaxgan, wherever the command runs, unless `env` says which.
  env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'PYTHONPATH': str(REPO), **(env or {})}
  return subprocess.run(
    [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
  )


def _ok(r) -> subprocess.CompletedProcess:
  assert r.returncode == 0, r.stderr[-3000:]
  return r


def _error(r) -> str:
  errors = [ln for ln in r.stderr.splitlines() if ln.startswith('jaxgan: error:')]
  assert r.returncode == 2 and len(errors) == 1, r.stderr[-3000:]
  assert 'Traceback' not in r.stderr
  return errors[0]


OWN_FILES = {p.name for p in (REPO / 'jaxgan').rglob('*.py')}


def _foreign_lines(stderr: str) -> list[str]:
  """Log lines of other libraries: absl's format names the source file, and theirs are not
  jaxgan's (orbax's checkpoint.py shares a name with jaxgan's, not its words)."""
  logged = [ln for ln in stderr.splitlines() if ln[:1] in 'IWE' and '] ' in ln and '.py:' in ln]
  return [
    ln
    for ln in logged
    if ln.split('] ')[0].split()[-1].split(':')[0] not in OWN_FILES
    or any(w in ln for w in ('libtpu', 'orbax', 'CheckpointManager'))
  ]


# --- Installed, used from another folder -------------------------------------------------------

MY_FAMILY = """
from jaxgan import models
from jaxgan.models import dcgan

models.register('conv16', dcgan)  # DCGAN's networks under a family name of the user's
"""

MY_CONFIG = """
import my_family  # noqa: F401  (beside this file: registers 'conv16')
from jaxgan.configs import test


def get_config():
  config = test.get_config()
  config.model.name = 'conv16'
  return config
"""


@pytest.fixture(scope='module')
def installed(tmp_path_factory) -> dict:
  """The checkout installed into a folder of its own, as `pip install <checkout>` does; the
  environment that uses it (PYTHONPATH) from a folder outside the checkout."""
  tmp = tmp_path_factory.mktemp('installed')
  source = tmp / 'source'  # a copy: pip's build leaves files in the tree it builds
  shutil.copytree(REPO / 'jaxgan', source / 'jaxgan', ignore=shutil.ignore_patterns('__pycache__'))
  for name in ('pyproject.toml', 'README.md'):
    shutil.copy(REPO / name, source / name)
  target = tmp / 'site'
  pip = ['-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation', '--target']
  _ok(_run([*pip, str(target), str(source)], cwd=tmp))
  assert not (target / 'jaxgan' / '__editable__').exists()
  return {'PYTHONPATH': str(target), 'cwd': tmp}


def test_installed_package_trains_samples_and_evaluates_from_another_folder(installed):
  env, cwd = {'PYTHONPATH': installed['PYTHONPATH']}, installed['cwd']
  probe = _ok(_run(['-c', 'import jaxgan.configs as c; print(c.__file__)'], cwd, env))
  assert probe.stdout.startswith(installed['PYTHONPATH'])  # the installed copy, not the checkout

  # A shipped config by name.
  shipped = ['-m', 'jaxgan.main', '--config=mnist', f'--config.data.dir={SHARED_MNIST}']
  r = _ok(_run([*shipped, '--workdir=shipped', '--config.data.clusters=0', *TINY], cwd, env))
  status = [ln for ln in r.stdout.splitlines() if ln.startswith('step ')]
  assert len(status) == 2 and status[0].endswith(tuple('0123456789'))  # no '| -' placeholder
  assert 'steps/s' in status[1] and _foreign_lines(r.stderr) == []
  rows = [json.loads(ln) for ln in (cwd / 'shipped' / 'metrics.jsonl').read_text().splitlines()]
  assert 'steps_per_sec' not in rows[0] and rows[1]['steps_per_sec'] > 0

  # A config of the user's, in a folder of its own, importing a module beside it.
  (cwd / 'mine').mkdir()
  (cwd / 'mine' / 'my_family.py').write_text(MY_FAMILY)
  (cwd / 'mine' / 'my_run.py').write_text(MY_CONFIG)
  own = ['-m', 'jaxgan.main', '--config=mine/my_run.py', f'--config.data.dir={SHARED_MNIST}']
  _ok(_run([*own, '--workdir=own', *TINY], cwd, env))
  run_json = json.loads((cwd / 'own' / 'run.json').read_text())
  assert run_json['imports'] == {'my_family': str(cwd / 'mine' / 'my_family.py')}

  # Other commands name what to import, then find the family with --import.
  sample = ['-m', 'jaxgan.sample', '--workdir=own', '--num_samples=4', '--out=own.png']
  line = _error(_run(sample, cwd, env))
  assert "unknown model family 'conv16'" in line
  assert f'pass --import={cwd / "mine" / "my_family.py"}' in line
  r = _ok(_run([*sample, '--import=mine/my_family.py'], cwd, env))
  assert (cwd / 'own.png').exists() and _foreign_lines(r.stderr) == []
  evaluate = ['-m', 'jaxgan.evaluate', '--workdir=own', '--num_samples=100']
  r = _ok(_run([*evaluate, '--import=mine/my_family.py'], cwd, env))
  assert json.loads(r.stdout.splitlines()[-1])['metrics']['fid'] > 0


# --- Errors ------------------------------------------------------------------------------------


def test_config_file_errors_are_one_line_with_file_and_line(tmp_path):
  (tmp_path / 'syntax.py').write_text('def get_config(:\n')
  (tmp_path / 'raises.py').write_text('def get_config():\n  raise ValueError("no such preset")\n')
  main = ['-m', 'jaxgan.main', '--workdir=w']
  line = _error(_run([*main, '--config=syntax.py'], tmp_path))
  assert 'given by --config: syntax.py:1: SyntaxError: invalid syntax' in line
  line = _error(_run([*main, '--config=raises.py'], tmp_path))
  assert line.endswith('raises.py:2: ValueError: no such preset')
  line = _error(_run([*main, '--config=folder', '--config.data.resolutoin=32'], tmp_path))
  assert line == (
    "jaxgan: error: unknown config key 'resolutoin' in --config.data.resolutoin. "
    'Did you mean "resolution" instead of "resolutoin"?'
  )
  line = _error(_run([*main, '--config=mnsit'], tmp_path))
  assert "no file 'mnsit', and no shipped config of that name (cifar10, " in line
  assert not (tmp_path / 'w').exists()


def two_class_folder(root: Path) -> Path:
  rng = np.random.default_rng(0)
  for cls in ('cats', 'dogs'):
    (root / cls).mkdir(parents=True)
    for i in range(8):
      pixels = rng.integers(0, 256, (16, 16, 3), np.uint8)
      Image.fromarray(pixels).save(root / cls / f'{i}.png')
  return root


def _folder_config(tmp_path):
  from jaxgan.configs import folder

  config = folder.get_config()
  config.data.dir = str(two_class_folder(tmp_path / 'images'))
  config.data.cache_dir = str(tmp_path / 'cache')
  config.data.resolution = 16
  config.data.workers = 1
  config.model.g_features, config.model.d_features = (16, 8), (8, 16)
  config.batch_size, config.num_steps, config.steps_per_call = 4, 2, 1
  config.sample_every = config.checkpoint_every = 2
  config.num_grid_samples = 6
  return config


def test_the_class_count_comes_from_the_folders(tmp_path):
  config = _folder_config(tmp_path)
  config.data.labels, config.model.conditional = 'folders', True
  state = train.train_and_evaluate(config, str(tmp_path / 'run'))
  saved = json.loads((tmp_path / 'run' / 'config.json').read_text())
  assert saved['data']['num_classes'] == 2
  embeddings = [p for k, p in state.g_params.items() if k.startswith('Embed')]
  assert [e['embedding'].shape[0] for e in embeddings] == [2]
  config.data.num_classes = 10
  with pytest.raises(ConfigError, match=r"num_classes=10, but 'folder' has 2 classes \(cats, dogs"):
    train.train_and_evaluate(config, str(tmp_path / 'ten'))
  assert not (tmp_path / 'ten').exists()


def test_a_folder_run_evaluates_against_its_images_and_names_the_feature_networks(tmp_path):
  config = _folder_config(tmp_path)
  config.eval_every, config.eval_num_samples = 2, 20
  with pytest.raises(ConfigError, match='set eval_features') as e:
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  message = str(e.value)
  assert 'for 16x16x3 images: inception' in message
  assert 'not mnist_classifier (28x28 images, 1 or 3 channels)' in message
  assert 'cifar10_classifier (32x32 RGB images)' in message
  assert not (tmp_path / 'run').exists()  # a run that fails its checks leaves nothing

  # At 32x32 the CIFAR-10 classifier measures it, against the training images (no test split).
  config.data.resolution = 32
  config.model.g_features, config.model.d_features = (16, 8, 8), (8, 8, 16)
  config.eval_features = 'cifar10_classifier'
  train.train_and_evaluate(config, str(tmp_path / 'run'))
  rows = [json.loads(ln) for ln in (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()]
  assert any('eval_fid' in r for r in rows)
  r = _run(['-m', 'jaxgan.evaluate', f'--workdir={tmp_path / "run"}', '--num_samples=20'], REPO)
  report = json.loads(_ok(r).stdout.splitlines()[-1])
  assert report['protocol']['reference_split'] == 'train' and 'reference' not in report
