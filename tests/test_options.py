"""Optimizers by name and dropout in the DCGAN (the seed notebook's RMSProp + dropout recipe)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import gan as gan_lib
from jaxgan.errors import ConfigError
from jaxgan.models import dcgan

OPTIM = dict(b1=0.5, b2=0.999, eps=1e-8, decay=0.9, momentum=0.0, weight_decay=0.0)


def _first_update(name, lr=0.1, grad=2.0, **overrides):
  cfg = ml_collections.ConfigDict({**OPTIM, 'name': name, **overrides})
  opt = gan_lib.optimizer(cfg, lr)
  params = {'w': jnp.array(1.0)}
  updates, _ = opt.update({'w': jnp.array(grad)}, opt.init(params), params)
  return float(updates['w'])


def test_optimizers_by_name_take_their_first_step_by_hand():
  # Adam's first step is -lr * sign(g) (bias-corrected moments), whatever the betas.
  assert _first_update('adam') == pytest.approx(-0.1, rel=1e-4)  # float32 moments
  # RMSProp: v = (1 - decay) g^2; step -lr g / (sqrt(v) + eps), eps outside the root.
  want = -0.1 * 2.0 / (np.sqrt(0.1 * 4.0) + 1e-8)
  assert _first_update('rmsprop') == pytest.approx(want, rel=1e-6)
  assert _first_update('sgd') == pytest.approx(-0.2, rel=1e-6)
  assert _first_update('sgd', momentum=0.9) == pytest.approx(-0.2, rel=1e-6)
  # AdamW adds the decoupled decay lr * wd * w to Adam's step.
  assert _first_update('adamw', weight_decay=0.5) == pytest.approx(-0.1 - 0.1 * 0.5, rel=1e-4)


def test_unknown_optimizer_is_a_config_error(test_config):
  test_config.optim.name = 'adagrad'
  with pytest.raises(ConfigError, match='optim.name must be one of adam, adamw, rmsprop, sgd'):
    config_lib.validate(test_config)


def test_dcgan_dropout_is_on_in_training_only():
  x = jax.random.uniform(jax.random.PRNGKey(0), (4, 28, 28, 1), minval=-1, maxval=1)
  plain, dropped = dcgan.Discriminator((8, 16)), dcgan.Discriminator((8, 16), dropout=0.5)
  variables = plain.init(jax.random.PRNGKey(1), x, train=False)
  # Dropout has no parameters: the same variables fit both networks.
  same = dropped.apply(variables, x, train=False)
  np.testing.assert_array_equal(same, plain.apply(variables, x, train=False))

  def train(key):
    out, _ = dropped.apply(variables, x, train=True, rngs={'dropout': key}, mutable=['batch_stats'])
    return out

  np.testing.assert_array_equal(train(jax.random.PRNGKey(2)), train(jax.random.PRNGKey(2)))
  assert not np.allclose(train(jax.random.PRNGKey(2)), train(jax.random.PRNGKey(3)))


def test_generator_dropout_changes_training_samples_only():
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 16))
  plain = dcgan.Generator(features=(16, 8))
  g = dcgan.Generator(features=(16, 8), dropout=0.5)
  variables = g.init(jax.random.PRNGKey(1), z, train=False)
  # Samples (inference mode) are those of the same G without dropout: no mask, no rescaling.
  np.testing.assert_array_equal(
    g.apply(variables, z, train=False), plain.apply(variables, z, train=False)
  )

  def train(net, key):
    return net.apply(variables, z, train=True, rngs={'dropout': key}, mutable=True)[0]

  a, b = train(g, jax.random.PRNGKey(2)), train(g, jax.random.PRNGKey(3))
  assert not np.allclose(a, b)  # in training, each key its own mask
  assert not np.allclose(a, train(plain, jax.random.PRNGKey(2)))  # and dropout is applied


def test_dcgan_discriminator_activation():
  x = jax.random.uniform(jax.random.PRNGKey(0), (4, 28, 28, 1), minval=-1, maxval=1)
  leaky, relu = dcgan.Discriminator((8, 16)), dcgan.Discriminator((8, 16), activation='relu')
  variables = leaky.init(jax.random.PRNGKey(1), x, train=False)
  a, b = leaky.apply(variables, x, train=False), relu.apply(variables, x, train=False)
  assert not np.allclose(a, b)  # same parameters, another nonlinearity


@pytest.mark.parametrize('kind', ['linear', 'cosine'])
def test_learning_rate_schedules_end_at_zero(kind):
  cfg = ml_collections.ConfigDict({'schedule': kind})
  schedule = gan_lib.learning_rate(cfg, 1e-3, num_updates=100)
  assert float(schedule(0)) == pytest.approx(1e-3)
  assert float(schedule(50)) == pytest.approx(5e-4, rel=1e-5)  # both are at half halfway
  assert float(schedule(100)) == pytest.approx(0.0, abs=1e-12)
  constant = ml_collections.ConfigDict({'schedule': 'constant'})
  assert gan_lib.learning_rate(constant, 1e-3, 100) == 1e-3


def test_schedule_counts_each_networks_updates(test_config):
  test_config.optim.schedule = 'linear'
  test_config.train.d_steps = 2
  gan = gan_lib.from_config(test_config, (28, 28, 1))
  params, grads = {'w': jnp.array(1.0)}, {'w': jnp.array(1.0)}
  state = gan.d_optimizer.init(params)
  n = 2 * test_config.num_steps  # D's updates in the run
  for _ in range(n):
    last, state = gan.d_optimizer.update(grads, state, params)
  # Adam's step is about lr: the last of D's updates has lr / n, and the schedule then ends.
  assert float(last['w']) == pytest.approx(-test_config.optim.d_lr / n, rel=1e-3)
  after, _ = gan.d_optimizer.update(grads, state, params)
  assert float(after['w']) == 0.0
