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
