import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import objectives
from jaxgan.errors import ConfigError

REAL = jnp.array([2.0, -1.0])
FAKE = jnp.array([0.5, -3.0])


def _sigmoid(x):
  return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


def _losses(name, real, fake):
  objective = objectives.get(name)
  return objective.d_loss(real, fake), objective.g_loss(fake)


def test_non_saturating_is_binary_cross_entropy():
  r, f = _sigmoid(REAL), _sigmoid(FAKE)
  d, g = _losses('non_saturating', REAL, FAKE)
  np.testing.assert_allclose(d, -np.mean(np.log(r)) - np.mean(np.log(1 - f)), rtol=1e-6)
  np.testing.assert_allclose(g, -np.mean(np.log(f)), rtol=1e-6)


def test_minimax_generator_minimises_log_one_minus_d():
  f = _sigmoid(FAKE)
  _, g = _losses('minimax', REAL, FAKE)
  np.testing.assert_allclose(g, np.mean(np.log(1 - f)), rtol=1e-6)


@pytest.mark.parametrize(
  'kind, want_d, want_g',
  [
    # 0.5*mean((r-1)^2) + 0.5*mean(f^2); G: 0.5*mean((f-1)^2)
    ('least_squares', 0.5 * (1 + 4) / 2 + 0.5 * (0.25 + 9) / 2, 0.5 * (0.25 + 16) / 2),
    # mean(relu(1-r)) + mean(relu(1+f)); G: -mean(f)
    ('hinge', (0 + 2) / 2 + (1.5 + 0) / 2, 1.25),
    # mean(f) - mean(r); G: -mean(f)
    ('wasserstein', -1.25 - 0.5, 1.25),
  ],
)
def test_other_losses_by_hand(kind, want_d, want_g):
  d, g = _losses(kind, REAL, FAKE)
  np.testing.assert_allclose(d, want_d, rtol=1e-6)
  np.testing.assert_allclose(g, want_g, rtol=1e-6)


def test_equilibrium_value():
  # At D(x) = D(G(z)) = 0.5 (logits 0) the BCE D loss is 2 log 2 and the G loss log 2.
  zero = jnp.zeros(4)
  d, g = _losses('non_saturating', zero, zero)
  np.testing.assert_allclose(d, 2 * np.log(2), rtol=1e-6)
  np.testing.assert_allclose(g, np.log(2), rtol=1e-6)


def test_unknown_loss_names_the_known_ones():
  with pytest.raises(ConfigError, match='unknown loss .bogus. .train.loss.; known: .*hinge'):
    objectives.get('bogus')


def test_a_registered_objective_is_accepted_by_the_config(monkeypatch):
  monkeypatch.setattr(objectives, '_REGISTRY', objectives._REGISTRY.copy())
  from jaxgan import config as config_lib
  from jaxgan.configs import test as test_config

  config = test_config.get_config()
  config.train.loss = 'unregistered_yet'
  with pytest.raises(Exception, match='train.loss must be one of'):
    config_lib.validate(config)
  objectives.register(
    objectives.Objective('unregistered_yet', lambda r, f, s=0.0: jnp.mean(f - r), jnp.mean)
  )
  config_lib.validate(config)
