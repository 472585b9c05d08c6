"""Networks with randomness of their own (dropout in D, a noise input in G): jaxgan gives
them RNG streams folded from the step in training, none in sampling, and runs stay
reproducible bit for bit, across a resume too."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxgan import checks, evaluation, models, steps, train
from jaxgan.gan import GAN
from jaxgan.state import init_state


class NoisyG(nn.Module):
  image_shape: tuple[int, ...] = (28, 28, 1)

  @nn.compact
  def __call__(self, z, train=True):
    h = nn.relu(nn.Dense(32)(z))
    if train:  # a noise input, as in StyleGAN, with a learned strength
      strength = self.param('noise_strength', nn.initializers.constant(0.1), (32,))
      h = h + strength * jax.random.normal(self.make_rng('noise'), h.shape)
    x = jnp.tanh(nn.Dense(int(np.prod(self.image_shape)))(h))
    return x.reshape(z.shape[0], *self.image_shape)


class DropoutD(nn.Module):
  rate: float = 0.5

  @nn.compact
  def __call__(self, x, train=True):
    h = nn.leaky_relu(nn.Dense(32)(x.reshape(x.shape[0], -1)), 0.2)
    h = nn.Dropout(self.rate, deterministic=not train)(h)
    return nn.Dense(1)(h)[:, 0]


def _gan(rate=0.5):
  opt = optax.adam(1e-3, b1=0.5)
  return GAN(NoisyG(), DropoutD(rate), opt, opt, latent_dim=8)


def _steps(gan, n=3):
  state = init_state(gan, jax.random.PRNGKey(0), (28, 28, 1))
  step = jax.jit(lambda s, real: steps.train_step(gan, s, real))
  real = jax.random.uniform(jax.random.PRNGKey(1), (1, 16, 28, 28, 1), minval=-1, maxval=1)
  for _ in range(n):
    state, metrics = step(state, real)
  return state, metrics


def test_train_step_feeds_dropout_and_noise_and_repeats_exactly():
  a, ma = _steps(_gan())
  b, mb = _steps(_gan())
  jax.tree.map(np.testing.assert_array_equal, (a, ma), (b, mb))
  # Dropout is really applied: the same D without it (same parameters) trains differently.
  c, mc = _steps(_gan(rate=0.0))
  assert float(ma['d_loss']) != float(mc['d_loss'])


def test_sampling_needs_no_rng_and_is_deterministic():
  gan = _gan()
  state, _ = _steps(gan, 1)
  generate = evaluation.make_generate_fn(gan, state, batch_size=4)
  first, second = generate(jax.random.PRNGKey(5)), generate(jax.random.PRNGKey(5))
  np.testing.assert_array_equal(first, second)


class Stochastic:
  SCHEMA = {'rate': checks.beta}

  @staticmethod
  def build(cfg, image_shape, num_classes=0):
    return NoisyG(image_shape), DropoutD(cfg.rate)


def _config(test_config, num_steps):
  test_config.model = ml_collections.ConfigDict(
    {'name': 'stochastic_test', 'latent_dim': 8, 'latent_dist': 'gaussian', 'conditional': False}
    | {'latent_classes': 0, 'latent_continuous': 0}
  )
  test_config.model.rate = 0.5
  test_config.num_steps = num_steps
  test_config.log_every = 1
  return test_config


def _rows(workdir):
  rows = [json.loads(ln) for ln in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return [{k: v for k, v in r.items() if k != 'steps_per_sec'} for r in rows]


def test_the_trainer_repeats_and_resumes_a_stochastic_gan_exactly(
  test_config, tmp_path, monkeypatch
):
  monkeypatch.setattr(models, '_REGISTRY', dict(models._REGISTRY))
  models.register('stochastic_test', Stochastic)
  # A run stopped at 3 and resumed to 6 equals one run to 6: the same random streams, drawn
  # again from the step after a restore.
  a = train.train_and_evaluate(_config(test_config, 6), str(tmp_path / 'a'))
  train.train_and_evaluate(_config(test_config, 3), str(tmp_path / 'c'))
  c = train.train_and_evaluate(_config(test_config, 6), str(tmp_path / 'c'))
  jax.tree.map(np.testing.assert_array_equal, a, c)
  assert _rows(tmp_path / 'a') == _rows(tmp_path / 'c')
