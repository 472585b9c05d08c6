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
from jaxgan.batch import Batch
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
  step = jax.jit(lambda s, real: steps.train_step(gan, s, Batch(real)))
  real = jax.random.uniform(
    jax.random.PRNGKey(1), (gan.d_steps, 16, 28, 28, 1), minval=-1, maxval=1
  )
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


class MaskRecordingD(nn.Module):
  """DropoutD with its dropout drawn as nn.Dropout draws it, each training call's mask kept
  in the 'masks' collection, call after call. D's collections are mutable in its own step
  and carried in the state, so the state after a few steps holds every mask D trained with."""

  rate: float = 0.5
  slots: int = 8
  batch: int = 16  # the training batch's (init runs on 2 images and records nothing)

  @nn.compact
  def __call__(self, x, train=True):
    h = nn.leaky_relu(nn.Dense(32)(x.reshape(x.shape[0], -1)), 0.2)
    masks = self.variable('masks', 'keep', jnp.zeros, (self.slots, self.batch, 32), jnp.bool_)
    count = self.variable('masks', 'count', jnp.zeros, (), jnp.int32)
    if train:
      keep = jax.random.bernoulli(self.make_rng('dropout'), 1 - self.rate, h.shape)
      if not self.is_initializing():
        masks.value = masks.value.at[count.value % self.slots].set(keep)
        count.value += 1
      h = jnp.where(keep, h / (1 - self.rate), 0)
    return nn.Dense(1)(h)[:, 0]


def _masks(n_steps):
  opt = optax.adam(1e-3, b1=0.5)
  gan = GAN(NoisyG(), MaskRecordingD(), opt, opt, latent_dim=8, d_steps=2)
  state, _ = _steps(gan, n_steps)
  assert int(state.d_vars['masks']['count']) == 4 * n_steps  # D's passes: 2 sub-steps x 2
  return np.asarray(state.d_vars['masks']['keep'])


def test_dropout_masks_are_folded_from_the_step_and_the_sub_step():
  masks = _masks(2)  # step 0: sub-step 0 (real, fake), sub-step 1 (real, fake); step 1: same
  names = [f'step {t} sub-step {i} {x}' for t in (0, 1) for i in (0, 1) for x in ('real', 'fake')]
  for i, a in enumerate(names):
    assert 0.35 < masks[i].mean() < 0.65, a  # each a Bernoulli(1 - rate) draw of its own
    for j in range(i):  # another step, another sub-step or another pass: another mask
      differ = float((masks[i] != masks[j]).mean())  # about 1/2 for independent draws
      assert differ > 0.3, f'{a} has the mask of {names[j]} ({differ:.0%} differ)'
  # And the same step and sub-step draw the same mask again, in a run of its own.
  np.testing.assert_array_equal(_masks(2), masks)


def test_sampling_needs_no_rng_and_is_g_in_inference_mode():
  gan = _gan()
  state, _ = _steps(gan, 1)
  generate = evaluation.make_generate_fn(gan, state, batch_size=4)
  key = jax.random.PRNGKey(5)
  z = gan.sample_latent(key, 4)
  variables = {'params': state.g_ema_params, **state.g_vars}
  want = gan.generator.apply(variables, z, train=False)  # no noise input at all
  np.testing.assert_allclose(generate(key), want, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(generate(key), generate(key))
  # The reference tells the modes apart: in training mode G adds its noise.
  noisy = gan.generator.apply(variables, z, train=True, rngs={'noise': jax.random.PRNGKey(6)})
  assert np.abs(np.asarray(noisy) - np.asarray(want)).max() > 1e-3


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
  monkeypatch.setattr(models, '_REGISTRY', models._REGISTRY.copy())
  models.register('stochastic_test', Stochastic)
  # A run stopped at 3 and resumed to 6 equals one run to 6: the same random streams, drawn
  # again from the step after a restore.
  a = train.train_and_evaluate(_config(test_config, 6), str(tmp_path / 'a'))
  train.train_and_evaluate(_config(test_config, 3), str(tmp_path / 'c'))
  c = train.train_and_evaluate(_config(test_config, 6), str(tmp_path / 'c'))
  jax.tree.map(np.testing.assert_array_equal, a, c)
  assert _rows(tmp_path / 'a') == _rows(tmp_path / 'c')
