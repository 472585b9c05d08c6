"""The training scheme: each step trains one network only, through the right gradients."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import steps
from jaxgan.models import dcgan
from jaxgan.state import GAN, init_state

SHAPE = (8, 8, 1)
BATCH = 4


def make_gan(**kw) -> GAN:
  kw.setdefault('g_optimizer', optax.adam(1e-2, b1=0.5))
  kw.setdefault('d_optimizer', optax.adam(1e-2, b1=0.5))
  return GAN(
    generator=dcgan.Generator(image_shape=SHAPE, features=(8, 4)),
    discriminator=dcgan.Discriminator(features=(4, 8)),
    latent_dim=6,
    **kw,
  )


def real_batch(n_steps=1, seed=1):
  return jax.random.uniform(jax.random.PRNGKey(seed), (n_steps, BATCH, *SHAPE), minval=-1)


def assert_same(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def assert_changed(a, b):
  diffs = jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.any(x != y)), a, b))
  assert all(diffs), 'every leaf should change'


@pytest.fixture
def gan_and_state():
  gan = make_gan()
  return gan, init_state(gan, jax.random.PRNGKey(0), SHAPE)


def test_state_has_separate_trees_and_batch_stats(gan_and_state):
  _, state = gan_and_state
  assert 'batch_stats' in state.g_vars and 'batch_stats' in state.d_vars
  assert set(state.g_params) != set(state.d_params)


def test_d_step_changes_only_d(gan_and_state):
  gan, state = gan_and_state
  z = gan.sample_latent(jax.random.PRNGKey(2), BATCH)
  fake = steps.apply(gan.generator, state.g_params, state.g_vars, z, True)[0]
  new, m = steps.d_step(gan, state, real_batch()[0], fake)
  assert_same(
    (new.g_params, new.g_vars, new.g_opt_state), (state.g_params, state.g_vars, state.g_opt_state)
  )
  assert_changed(new.d_params, state.d_params)
  assert_changed(new.d_vars, state.d_vars)  # D's batch stats are trained by the D step
  assert set(m) >= {'d_loss', 'd_real', 'd_fake', 'd_grad_norm'}


def test_d_step_treats_fake_as_constant(gan_and_state):
  """No gradient reaches G's params through the D step."""
  gan, state = gan_and_state
  z = gan.sample_latent(jax.random.PRNGKey(2), BATCH)

  def d_params_after(g_params):
    fake = steps.apply(gan.generator, g_params, state.g_vars, z, True)[0]
    new, _ = steps.d_step(gan, state, real_batch()[0], fake)
    return sum(jnp.sum(x) for x in jax.tree.leaves(new.d_params))

  grads = jax.grad(d_params_after)(state.g_params)
  assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grads))


def test_g_step_changes_only_g(gan_and_state):
  gan, state = gan_and_state
  new, m = steps.g_step(gan, state, gan.sample_latent(jax.random.PRNGKey(3), BATCH))
  # D's params, optimizer state and batch statistics are unchanged: its stats from the
  # G step's forward pass are discarded.
  assert_same(
    (new.d_params, new.d_vars, new.d_opt_state), (state.d_params, state.d_vars, state.d_opt_state)
  )
  assert_changed(new.g_params, state.g_params)
  assert_changed(new.g_vars, state.g_vars)
  assert set(m) >= {'g_loss', 'g_grad_norm'}


def test_g_step_gradient_is_that_of_the_g_loss():
  """With SGD(lr=1), G's update is exactly minus the gradient of g_loss(D(G(z))) w.r.t. G."""
  gan = make_gan(g_optimizer=optax.sgd(1.0))
  state = init_state(gan, jax.random.PRNGKey(0), SHAPE)
  z = gan.sample_latent(jax.random.PRNGKey(3), BATCH)

  def g_loss(g_params):
    fake = steps.apply(gan.generator, g_params, state.g_vars, z, True)[0]
    logits = steps.apply(gan.discriminator, state.d_params, state.d_vars, fake, True)[0]
    return gan.objective.g_loss(logits)

  want = jax.grad(g_loss)(state.g_params)
  new, _ = steps.g_step(gan, state, z)
  got = jax.tree.map(lambda old, upd: old - upd, state.g_params, new.g_params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), got, want)


def test_train_step_is_d_step_then_g_step_on_the_same_fake(gan_and_state):
  """The fused step (G forward shared through a vjp) equals the two steps run one by one."""
  gan, state = gan_and_state
  real = real_batch()
  fused, fm = steps.train_step(gan, state, real)

  key = jax.random.split(jax.random.fold_in(state.rng, state.step), 2)[0]
  z = gan.sample_latent(key, BATCH)
  fake = steps.apply(gan.generator, state.g_params, state.g_vars, z, True)[0]
  s, dm = steps.d_step(gan, state, real[0], fake)
  s, gm = steps.g_step(gan, s, z)
  assert int(fused.step) == 1
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
    (fused.g_params, fused.d_params, fused.g_vars, fused.d_vars),
    (s.g_params, s.d_params, s.g_vars, s.d_vars),
  )
  np.testing.assert_allclose(fm['d_loss'], dm['d_loss'], rtol=1e-6)
  np.testing.assert_allclose(fm['g_loss'], gm['g_loss'], rtol=1e-6)


def test_d_steps_to_g_steps_schedule():
  gan = make_gan(d_steps=2, g_steps=3)
  state = init_state(gan, jax.random.PRNGKey(0), SHAPE)
  new, _ = jax.jit(lambda s, r: steps.train_step(gan, s, r))(state, real_batch(2))
  # Adam counts its updates: two for D, three for G in one iteration.
  assert int(new.d_opt_state[0].count) == 2
  assert int(new.g_opt_state[0].count) == 3


@pytest.mark.parametrize('skip_net', ['d', 'g'])
def test_loss_ratio_balancing_skips_the_net_far_ahead(skip_net):
  # With b tiny, "d_loss * b < g_loss" holds, so D's update is skipped; likewise a for G.
  tiny, huge = 1e-6, 1e6
  a, b = (huge, tiny) if skip_net == 'd' else (tiny, huge)
  gan = make_gan(balance='loss_ratio', balance_a=a, balance_b=b)
  state = init_state(gan, jax.random.PRNGKey(0), SHAPE)
  new, m = steps.train_step(gan, state, real_batch())
  skipped, trained = (
    (new.d_params, new.g_params) if skip_net == 'd' else (new.g_params, new.d_params)
  )
  old_skipped, old_trained = (
    (state.d_params, state.g_params) if skip_net == 'd' else (state.g_params, state.d_params)
  )
  assert_same(skipped, old_skipped)
  assert_changed(trained, old_trained)
  assert float(m[f'{skip_net}_skipped']) == 1.0
  other = 'g' if skip_net == 'd' else 'd'
  assert float(m[f'{other}_skipped']) == 0.0


def test_balancing_rule_with_default_factors():
  """At init d_loss ~ 2 log 2 and g_loss ~ log 2: g*1.5 < d, so G waits and D trains."""
  gan = make_gan(balance='loss_ratio')
  state = init_state(gan, jax.random.PRNGKey(0), SHAPE)
  _, m = steps.train_step(gan, state, real_batch())
  d, g = float(m['d_loss']), float(m['g_loss'])
  assert float(m['g_skipped']) == float(g * 1.5 < d)
  assert float(m['d_skipped']) == float(d * 2.0 < g)


def test_multi_step_equals_repeated_train_step(gan_and_state):
  gan, state = gan_and_state
  reals = real_batch(3)

  def real_fn(s):
    return reals[s.step][None]

  scanned, sm = steps.multi_step(gan, state, real_fn, 3)
  s = state
  for i in range(3):
    s, m = steps.train_step(gan, s, reals[i][None])
  np.testing.assert_allclose(sm['g_loss'][-1], m['g_loss'], rtol=1e-5)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
    scanned.g_params,
    s.g_params,
  )


def test_uniform_and_gaussian_latents():
  g = make_gan(latent_dist='gaussian').sample_latent(jax.random.PRNGKey(0), 1000)
  u = dataclasses.replace(make_gan(), latent_dist='uniform').sample_latent(
    jax.random.PRNGKey(0), 1000
  )
  assert float(jnp.abs(u).max()) <= 1.0 and float(jnp.abs(g).max()) > 1.5
  assert abs(float(u.std()) - 1 / np.sqrt(3)) < 0.02 and abs(float(g.std()) - 1) < 0.05
