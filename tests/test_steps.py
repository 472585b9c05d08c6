"""The training scheme: each step trains one network only, through the right gradients."""

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import steps
from jaxgan.batch import Batch, FakeBatch, FakeInputs
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


def real_batch(n_steps=1, seed=1) -> Batch:
  return Batch(jax.random.uniform(jax.random.PRNGKey(seed), (n_steps, BATCH, *SHAPE), minval=-1))


def first(batch: Batch) -> Batch:
  return jax.tree.map(lambda x: x[0], batch)


def fake_batch(images, z) -> FakeBatch:
  return FakeBatch(images, FakeInputs(z))


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
  new, m = steps.d_step(gan, state, first(real_batch()), fake_batch(fake, z))
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
    new, _ = steps.d_step(gan, state, first(real_batch()), fake_batch(fake, z))
    return sum(jnp.sum(x) for x in jax.tree.leaves(new.d_params))

  grads = jax.grad(d_params_after)(state.g_params)
  assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grads))


def test_g_step_changes_only_g(gan_and_state):
  gan, state = gan_and_state
  new, m = steps.g_step(gan, state, FakeInputs(gan.sample_latent(jax.random.PRNGKey(3), BATCH)))
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
  new, _ = steps.g_step(gan, state, FakeInputs(z))
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
  s, dm = steps.d_step(gan, state, first(real), fake_batch(fake, z))
  s, gm = steps.g_step(gan, s, FakeInputs(z))
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


class AffineD(nn.Module):
  """D(x) = w * mean(x) + b, from given w and b: logits known in advance on flat images."""

  w: float
  b: float

  @nn.compact
  def __call__(self, x, train=True):
    w = self.param('w', nn.initializers.constant(self.w), ())
    b = self.param('b', nn.initializers.constant(self.b), ())
    return w * jnp.mean(x, axis=(1, 2, 3)) + b


class FlatG(nn.Module):
  """G(z) = tanh(dense(z)) with a zero kernel: the grey image tanh(0) = 0 at init."""

  @nn.compact
  def __call__(self, z, train=True):
    x = nn.Dense(math.prod(SHAPE), kernel_init=nn.initializers.zeros)(z)
    return jnp.tanh(x).reshape(z.shape[0], *SHAPE)


def _softplus(x):
  return float(np.logaddexp(0.0, x))


@pytest.mark.parametrize(
  'w, b, skipped',
  [
    # D tells real (logit 5) from fake (-5): d_loss 0.013, g_loss 5.0.
    (10.0, -5.0, 'd'),
    # D guesses (logit -0.3 for both): d_loss 1.41, g_loss 0.85; G waits, but would not
    # with D's factor 2.
    (0.0, -0.3, 'g'),
    # Logits 5 and -0.4: d_loss 0.52, g_loss 0.91; neither waits, but D would with G's 1.5.
    (5.4, -0.4, None),
  ],
)
def test_balancing_rule_with_default_factors(w, b, skipped):
  """balance_a = 1.5, balance_b = 2: G waits while g_loss * 1.5 < d_loss, D while
  d_loss * 2 < g_loss. With all-white real images, a grey fake batch and an affine D, the
  logits, and so both losses, are known before the step (D learns at lr 1e-4 and so moves its
  logits by about 1e-4 before G's loss is taken, far from either threshold)."""
  opt = optax.adam(1e-4)
  gan = GAN(FlatG(), AffineD(w, b), opt, opt, latent_dim=6, balance='loss_ratio')
  assert (gan.balance_a, gan.balance_b) == (1.5, 2.0)
  real_logit, fake_logit = w * 1.0 + b, b
  d = _softplus(-real_logit) + _softplus(fake_logit)  # -log D(x) - log(1 - D(G(z)))
  g = _softplus(-fake_logit)  # -log D(G(z))
  want = {'d': d * 2.0 < g, 'g': g * 1.5 < d}
  assert want == {'d': skipped == 'd', 'g': skipped == 'g'}  # the cases are what they say
  state = init_state(gan, jax.random.PRNGKey(0), SHAPE)
  new, m = steps.train_step(gan, state, Batch(jnp.ones((1, BATCH, *SHAPE))))
  np.testing.assert_allclose(float(m['d_loss']), d, rtol=1e-5)
  np.testing.assert_allclose(float(m['g_loss']), g, rtol=1e-3)
  for net in ('d', 'g'):
    params, old = getattr(new, f'{net}_params'), getattr(state, f'{net}_params')
    if net == skipped:
      assert float(m[f'{net}_skipped']) == 1.0
      assert_same(params, old)
    else:
      assert float(m[f'{net}_skipped']) == 0.0
      assert_changed(params, old)


def test_multi_step_equals_repeated_train_step(gan_and_state):
  gan, state = gan_and_state
  reals = real_batch(3)

  def real_fn(s):
    return Batch(reals.images[s.step][None])

  scanned, sm = steps.multi_step(gan, state, real_fn, 3)
  s = state
  for i in range(3):
    s, m = steps.train_step(gan, s, Batch(reals.images[i][None]))
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
