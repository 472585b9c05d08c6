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
