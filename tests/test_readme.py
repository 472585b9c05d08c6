"""The README's library example runs as printed and trains."""

import re

import jax
import numpy as np

from jaxgan import steps
from tests.conftest import REPO


def test_library_example_runs(capsys):
  text = (REPO / 'README.md').read_text()
  example = next(b for b in re.findall(r'```python\n(.*?)```', text, re.S) if 'train_step' in b)
  scope = {}
  exec(compile(example, 'README.md', 'exec'), scope)
  metrics, gan, state = scope['metrics'], scope['gan'], scope['state']
  assert '{' in capsys.readouterr().out
  # G moved its points from near its init onto the data (mean (1, 1), std 0.1), and D can no
  # longer tell them apart: near the 0.5 / 0.5 equilibrium.
  z = gan.sample_latent(jax.random.PRNGKey(99), 1000)
  points = steps.apply(gan.generator, state.g_params, state.g_vars, z, False)[0]
  assert np.allclose(points.mean(0), [1.0, 1.0], atol=0.2)
  assert abs(float(metrics['d_real']) - float(metrics['d_fake'])) < 0.1


def test_the_readme_documents_every_loop_optimizer_and_gan_key():
  """Each key of the loop, the optimizers and the GAN is named in the README (in `backticks`,
  as a key or as --config.key=...); a model family's or source's keys are documented with it."""
  from jaxgan import config as config_lib
  from jaxgan import gan as gan_lib

  text = (REPO / 'README.md').read_text()
  named = {t.split('=')[0].removeprefix('--config.') for t in re.findall(r'`([^`\n]+)`', text)}
  keys = [*config_lib.LOOP, *(f'optim.{k}' for k in gan_lib.OPTIM_SCHEMA)]
  keys += list(gan_lib.hyperparameters())
  assert [k for k in keys if k not in named] == []


def test_sampling_and_pixel_ranges_runs(test_config, tmp_path, monkeypatch):
  from jaxgan import train

  train.train_and_evaluate(test_config, str(tmp_path / 'run'))
  text = (REPO / 'README.md').read_text()
  block = next(b for b in re.findall(r'```python\n(.*?)```', text, re.S) if 'to_uint8' in b)
  monkeypatch.chdir(tmp_path)
  scope = {}
  exec(
    compile(block.replace("'runs/library'", repr(str(tmp_path / 'run'))), 'README', 'exec'), scope
  )
  batch, pixels = scope['batch'], scope['pixels']
  assert batch.shape == (16, 28, 28, 1) and batch.dtype == np.float32
  assert -1 <= batch.min() < batch.max() <= 1
  assert pixels.dtype == np.uint8 and (tmp_path / 'samples.png').stat().st_size > 0
  np.testing.assert_array_equal(pixels, np.round((batch + 1) * 127.5))


def _table_rows(text: str, header: str) -> list[list[str]]:
  section = text.split(header, 1)[1].split('\n## ', 1)[0]
  rows = [ln for ln in section.splitlines() if ln.startswith('| `')]
  return [[cell.strip() for cell in row.strip('|').split('|')] for row in rows]


def _literal(cell: str):
  """A default as the README writes it: `'x'` (a string), 4000, 1e-3, (128, 64), True."""
  import ast

  cell = cell.strip()
  if cell.startswith('`') and cell.endswith('`'):
    cell = cell[1:-1]
    if not cell.startswith("'"):
      cell = repr(cell)
  return ast.literal_eval(cell)


DESCRIBED = {'data.url': 'MNIST mirror'}  # defaults the table describes rather than writes


def test_the_config_table_gives_configs_mnist_values():
  """Each key of the README's Config table has the value configs/mnist.py (the default run) gives
  it (a key of another family or source: its default), so the table cannot drift from the code."""
  from jaxgan import config as config_lib
  from jaxgan import data, models
  from jaxgan.configs import mnist

  config = mnist.get_config()
  config_lib.complete(config)
  flat = config_lib.flatten(config)
  for family in models.names():  # keys of other families and sources: their defaults
    for source in data.names():
      for key, value in config_lib.flatten(config_lib.defaults(family, source)).items():
        flat.setdefault(key, value)
  checked = 0
  for key_cell, default_cell, _ in _table_rows((REPO / 'README.md').read_text(), '## Config'):
    keys = re.findall(r'`([^`]+)`', key_cell)
    defaults = [d.strip() for d in default_cell.split(' / ')]
    assert len(keys) == len(defaults), key_cell
    for key, default in zip(keys, defaults, strict=True):
      assert key in flat, f'the README names {key}, which no config has'
      if DESCRIBED.get(key) == default:
        continue
      want = flat[key]
      got = _literal(default)
      assert got == (tuple(want) if isinstance(want, list) else want), f'{key}: {default}'
      checked += 1
  assert checked > 40
