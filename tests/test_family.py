"""The GAN family: penalties, label smoothing, weight decay, generator EMA."""

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import gan as gan_lib
from jaxgan import images as images_lib
from jaxgan import objectives, sampling, steps, train
from jaxgan import workdir as workdir_lib
from jaxgan.batch import Batch, FakeBatch, FakeInputs
from jaxgan.objectives import penalties
from jaxgan.state import GAN, init_state

W = np.array([[0.5, -1.0], [2.0, 0.3], [-0.7, 1.5]])  # (3 inputs, 2 hidden)
V = np.array([1.0, -2.0])


def _d_tanh(x, w=W):
  """A smooth nonlinear 'D' on (N, 3) inputs: v . tanh(x W), one logit per row."""
  return jnp.tanh(x @ jnp.asarray(w, jnp.float32)) @ jnp.asarray(V, jnp.float32)


def _gp_numpy(w, x_hat):
  """WGAN-GP in float64, with D's input gradient from central finite differences."""

  def d(x):
    return np.tanh(x @ w) @ V

  h = 1e-6
  grads = np.stack(
    [(d(x_hat + h * e) - d(x_hat - h * e)) / (2 * h) for e in np.eye(x_hat.shape[1])], axis=1
  )
  return np.mean((np.linalg.norm(grads, axis=1) - 1) ** 2)


def _interpolates(key, real, fake):
  eps = np.asarray(jax.random.uniform(key, (real.shape[0], 1)), np.float64)
  return eps * real + (1 - eps) * fake


REAL = np.array([[0.1, 0.2, -0.3], [1.0, -0.5, 0.2], [0.0, 0.3, 0.9], [-1.0, 0.4, 0.0]])
FAKE = np.array([[0.4, -0.2, 0.1], [0.3, 0.5, -0.8], [-0.6, 0.1, 0.2], [0.2, -0.9, 0.7]])


def test_gradient_penalty_matches_finite_differences():
  key = jax.random.PRNGKey(3)
  got = penalties.gradient_penalty(_d_tanh, jnp.asarray(REAL), jnp.asarray(FAKE), key)
  want = _gp_numpy(W, _interpolates(key, REAL, FAKE))
  assert want > 0.01
  np.testing.assert_allclose(float(got), want, rtol=1e-4)


def test_gradient_penalty_differentiates_through_d_under_jit():
  """d GP / d W (a gradient of a gradient) against finite differences of the float64 GP."""
  key = jax.random.PRNGKey(3)
  real, fake = jnp.asarray(REAL, jnp.float32), jnp.asarray(FAKE, jnp.float32)
  grad = jax.jit(
    jax.grad(lambda w: penalties.gradient_penalty(lambda x: _d_tanh(x, w), real, fake, key))
  )(jnp.asarray(W, jnp.float32))
  x_hat, h = _interpolates(key, REAL, FAKE), 1e-5
  want = np.zeros_like(W)
  for idx in np.ndindex(W.shape):
    e = np.zeros_like(W)
    e[idx] = h
    want[idx] = (_gp_numpy(W + e, x_hat) - _gp_numpy(W - e, x_hat)) / (2 * h)
  np.testing.assert_allclose(np.asarray(grad), want, rtol=2e-3, atol=2e-4)


class LinearD(nn.Module):
  """D(x) = <w, x> + b: its input gradient is w for every x."""

  @nn.compact
  def __call__(self, x, train=True):
    return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]


class DenseG(nn.Module):
  @nn.compact
  def __call__(self, z, train=True):
    return jnp.tanh(nn.Dense(4)(z))


def _linear_gan(**kw):
  kw.setdefault('d_optimizer', optax.sgd(1.0))
  kw.setdefault('g_optimizer', optax.sgd(0.1))
  return GAN(DenseG(), LinearD(), latent_dim=3, **kw)


def _real(seed=0, n_steps=1) -> Batch:
  return Batch(jax.random.uniform(jax.random.PRNGKey(seed), (n_steps, 5, 4), minval=-1))


def _first(batch: Batch) -> Batch:
  return jax.tree.map(lambda x: x[0], batch)


def _zeros_fake(n=5) -> FakeBatch:
  return FakeBatch(jnp.zeros((n, 4)), FakeInputs(jnp.zeros((n, 3))))


def test_r1_on_a_linear_d_is_the_squared_weight_norm():
  gan = _linear_gan()
  state = init_state(gan, jax.random.PRNGKey(0), (4,))
  w = state.d_params['Dense_0']['kernel'][:, 0]

  def d_fn(x):
    return steps.apply(gan.discriminator, state.d_params, state.d_vars, x, True)[0]

  np.testing.assert_allclose(
    penalties.r1_penalty(d_fn, _first(_real()).images), jnp.sum(w**2), rtol=1e-6
  )


def test_r1_on_every_update_adds_gamma_times_w_to_the_d_steps_gradient():
  """gamma/2 * ||w||^2 has gradient gamma * w: SGD(1) moves w by exactly that more, in the
  same update as the adversarial loss (StyleGAN2-ADA's 'Dboth')."""
  gamma = 0.5
  plain, r1 = _linear_gan(), _linear_gan(r1_weight=gamma)
  state = init_state(plain, jax.random.PRNGKey(0), (4,))
  new_plain, _ = jax.jit(lambda s: steps.d_step(plain, s, _first(_real()), _zeros_fake()))(state)
  new_r1, m = jax.jit(lambda s: steps.d_step(r1, s, _first(_real()), _zeros_fake()))(state)
  w = state.d_params['Dense_0']['kernel']
  diff = new_plain.d_params['Dense_0']['kernel'] - new_r1.d_params['Dense_0']['kernel']
  np.testing.assert_allclose(diff, gamma * w, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(m['r1'], jnp.sum(w**2), rtol=1e-6)


def test_lazy_r1_is_a_d_update_of_its_own_times_k():
  """With r1_every = k > 1, R1 is not in D's main update: it is an update of its own after
  it, of gamma/2 * k * ||w||^2 (gradient gamma * k * w at the weights the main update left),
  on D update 0, k, 2k, ... only."""
  gamma, k = 0.5, 3
  plain, lazy = _linear_gan(), _linear_gan(r1_weight=gamma, r1_every=k)
  state = init_state(plain, jax.random.PRNGKey(0), (4,))
  for t, due in ((0, True), (1, False), (3, True)):
    s = state.replace(step=jnp.asarray(t, jnp.int32))
    new_plain, _ = jax.jit(lambda s: steps.train_step(plain, s, _real()))(s)
    new_lazy, m = jax.jit(lambda s: steps.train_step(lazy, s, _real()))(s)
    w = new_plain.d_params['Dense_0']['kernel']  # after the main update, the same in both
    got = new_lazy.d_params['Dense_0']['kernel']
    np.testing.assert_allclose(got, w - gamma * k * w if due else w, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(
      new_lazy.d_params['Dense_0']['bias'], new_plain.d_params['Dense_0']['bias']
    )
    np.testing.assert_allclose(m['r1'], jnp.sum(w**2) if due else 0.0, rtol=1e-5)


def test_lazy_r1_counts_d_updates_across_sub_steps():
  gan = _linear_gan(r1_weight=1.0, r1_every=3, d_steps=2)
  state = init_state(gan, jax.random.PRNGKey(0), (4,))
  step = jax.jit(lambda s, r: steps.train_step(gan, s, r))
  applied = []
  for t in range(5):  # D updates 2t and 2t + 1: 0 and 3, 6 and 9 are due
    state = state.replace(step=jnp.asarray(t, jnp.int32))
    _, m = step(state, _real(t, n_steps=2))
    applied.append(float(m['r1']) > 0)
  assert applied == [True, True, False, True, True]


def test_train_step_reports_penalties_and_stays_finite():
  gan = _linear_gan(gp_weight=10.0, r1_weight=1.0, d_optimizer=optax.adam(1e-3))
  state = init_state(gan, jax.random.PRNGKey(0), (4,))
  new, m = jax.jit(lambda s, r: steps.train_step(gan, s, r))(state, _real())
  assert {'gp', 'r1'} <= set(m) and all(np.isfinite(float(v)) for v in m.values())
  # The linear D's input gradient is w, so its GP is exactly (||w|| - 1)^2.
  w = state.d_params['Dense_0']['kernel'][:, 0]
  np.testing.assert_allclose(m['gp'], (jnp.linalg.norm(w) - 1) ** 2, rtol=1e-5)


def test_one_sided_label_smoothing_by_hand():
  real, fake = jnp.array([2.0, -1.0]), jnp.array([0.5, -3.0])
  r, f = 1 / (1 + np.exp(-np.asarray(real, np.float64))), 1 / (1 + np.exp(-np.asarray(fake)))
  s = 0.1
  want = np.mean(-(1 - s) * np.log(r) - s * np.log(1 - r)) + np.mean(-np.log(1 - f))
  got = objectives.get('non_saturating').d_loss(real, fake, label_smoothing=s)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert float(got) != float(objectives.get('non_saturating').d_loss(real, fake))
  with pytest.raises(ValueError, match='label_smoothing'):
    objectives.get('hinge').d_loss(real, fake, label_smoothing=s)


def test_weight_decay_is_decoupled(test_config):
  test_config.optim.weight_decay = 0.1
  gan = gan_lib.from_config(test_config, (28, 28, 1))
  params = {'w': jnp.array([1.0, -2.0])}
  # Zero gradients: Adam's step is 0, so all that is left is -lr * wd * params.
  updates, _ = gan.d_optimizer.update({'w': jnp.zeros(2)}, gan.d_optimizer.init(params), params)
  np.testing.assert_allclose(updates['w'], -test_config.optim.d_lr * 0.1 * params['w'], rtol=1e-6)


def test_ema_update_on_a_known_sequence():
  ema = {'p': jnp.array(0.0)}
  got = []
  for t, p in enumerate([1.0, 2.0, 4.0, 8.0]):
    ema = steps.ema_update(ema, {'p': jnp.array(p)}, 0.5, jnp.array(t), start=1)
    got.append(float(ema['p']))
  # Step 0 is before start: a copy. Then 0.5 * ema + 0.5 * p.
  assert got == [1.0, 1.5, 2.75, 5.375]


def test_ema_after_training_is_the_closed_form():
  d, n = 0.8, 4
  gan = _linear_gan(ema_decay=d, d_optimizer=optax.adam(1e-2), g_optimizer=optax.adam(1e-1))
  state = init_state(gan, jax.random.PRNGKey(0), (4,))
  step = jax.jit(lambda s, r: steps.train_step(gan, s, r))
  history = [state.g_params]
  for t in range(n):
    state, _ = step(state, _real(t))
    history.append(state.g_params)
  # ema_n = d^n p_0 + (1 - d) sum_{t=1..n} d^(n-t) p_t, with p_0 the initial params.
  want = jax.tree.map(
    lambda *ps: d**n * ps[0] + (1 - d) * sum(d ** (n - t) * ps[t] for t in range(1, n + 1)),
    *history,
  )
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
    state.g_ema_params,
    want,
  )
  diffs = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.g_ema_params, state.g_params)
  assert all(v > 1e-4 for v in jax.tree.leaves(diffs))


def test_ema_off_keeps_the_ema_equal_to_the_params():
  gan = _linear_gan()
  state = init_state(gan, jax.random.PRNGKey(0), (4,))
  new, _ = steps.train_step(gan, state, _real())
  jax.tree.map(np.testing.assert_array_equal, new.g_ema_params, new.g_params)


# --- Spectral norm and other norms ------------------------------------------------------------


class _SNDense(nn.Module):
  @nn.compact
  def __call__(self, x, train=True):
    return nn.SpectralNorm(nn.Dense(3, use_bias=False))(x, update_stats=train)


def test_spectral_norm_sigma_converges_to_the_largest_singular_value():
  kernel = jnp.asarray([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0], [1.0, 0.0, 1.0]])
  module, x = _SNDense(), jnp.ones((2, 4))
  variables = module.init(jax.random.PRNGKey(0), x)
  params = jax.tree.map(lambda _: kernel, variables['params'])  # the one leaf: the kernel
  stats = variables['batch_stats']
  step = jax.jit(
    lambda s: module.apply({'params': params, 'batch_stats': s}, x, mutable=['batch_stats'])[1]
  )
  for _ in range(30):
    stats = step(stats)['batch_stats']
  (sigma,) = [v for p, v in jax.tree_util.tree_leaves_with_path(stats) if 'sigma' in str(p)]
  np.testing.assert_allclose(sigma, np.linalg.svd(np.asarray(kernel))[1][0], rtol=1e-4)
  # The layer then computes x W / sigma: a map with spectral norm 1.
  y = module.apply({'params': params, 'batch_stats': stats}, jnp.eye(4), train=False)
  np.testing.assert_allclose(np.linalg.svd(np.asarray(y))[1][0], 1.0, rtol=1e-4)


def _dcgan_gan(**d_kw):
  from jaxgan.models import dcgan

  return GAN(
    dcgan.Generator(image_shape=(8, 8, 1), features=(8, 4)),
    dcgan.Discriminator(features=(4, 8), **d_kw),
    optax.adam(1e-2),
    optax.adam(1e-2),
    latent_dim=6,
  )


def test_spectral_norm_state_is_in_the_gan_state_and_changes_with_training():
  gan = _dcgan_gan(spectral_norm=True, norm='none')
  state = init_state(gan, jax.random.PRNGKey(0), (8, 8, 1))
  names = [str(p) for p, _ in jax.tree_util.tree_leaves_with_path(state.d_vars)]
  # Two convs and the dense layer, each with its power-iteration vector and sigma.
  assert sum('/u' in n for n in names) == 3 and sum('/sigma' in n for n in names) == 3
  real = jax.random.uniform(jax.random.PRNGKey(1), (1, 4, 8, 8, 1), minval=-1)
  new, m = jax.jit(lambda s, r: steps.train_step(gan, s, Batch(r)))(state, real)
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new.d_vars, state.d_vars)
  assert all(jax.tree.leaves(changed))
  assert np.isfinite(float(m['d_loss']))


def _norm_numpy(x, scale, bias, groups):
  """Normalisation over each example's (H, W, C), or over (H, W, C/groups) per group of
  channels, then a per-channel scale and bias; float64, eps 1e-5 as in the model."""
  n, h, w, c = x.shape
  xg = x.astype(np.float64).reshape(n, h, w, groups, c // groups)
  mean = xg.mean(axis=(1, 2, 4), keepdims=True)
  var = xg.var(axis=(1, 2, 4), keepdims=True)
  return ((xg - mean) / np.sqrt(var + 1e-5)).reshape(x.shape) * scale + bias


@pytest.mark.parametrize('norm', ['layer', 'group'])
def test_layer_and_group_norm(test_config, norm):
  """Every norm layer of G and D against numpy: layer norm over each example's whole (H, W, C)
  map (the README's promise), group norm over gcd(32, C) groups of channels; with a scale and
  bias per channel. Widths 64 and 16 give groups of 2 channels and of 1."""
  from jaxgan import models

  test_config.model.norm = norm
  test_config.model.g_features, test_config.model.d_features = (64, 16), (16, 64)
  g, d = models.create(test_config.model, (28, 28, 1))
  g_vars = g.init(jax.random.PRNGKey(0), jnp.zeros((2, test_config.model.latent_dim)))
  d_vars = d.init(jax.random.PRNGKey(0), jnp.zeros((2, 28, 28, 1)))
  assert set(g_vars) == {'params'} and set(d_vars) == {'params'}  # no running statistics

  def perturbed(variables, seed):  # every parameter off its init: scales off 1, biases off 0
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return tree.unflatten(
      [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    )

  calls = []

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if isinstance(context.module, nn.LayerNorm | nn.GroupNorm):
      calls.append((context.module, args[0], out, context.module.variables['params']))
    return out

  z = jax.random.normal(jax.random.PRNGKey(1), (3, test_config.model.latent_dim))
  x = jax.random.uniform(jax.random.PRNGKey(2), (3, 28, 28, 1), minval=-1, maxval=1)
  with nn.intercept_methods(record):
    g.apply(perturbed(g_vars, 3), z)
    d.apply(perturbed(d_vars, 4), x)
  kind = nn.LayerNorm if norm == 'layer' else nn.GroupNorm
  assert len(calls) == 3 and all(type(m) is kind for m, *_ in calls)  # G's two, D's one
  channels = []
  for _, inp, out, params in calls:
    inp, c = np.asarray(inp), inp.shape[-1]
    channels.append(c)
    assert params['scale'].shape == params['bias'].shape == (c,)
    groups = 1 if norm == 'layer' else math.gcd(32, c)
    want = _norm_numpy(inp, np.asarray(params['scale']), np.asarray(params['bias']), groups)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
  assert channels == [64, 16, 64]


def test_d_norm_overrides_the_norm_for_d_only(test_config):
  from jaxgan import models

  test_config.model.d_norm = 'none'
  g, d = models.create(test_config.model, (28, 28, 1))
  assert g.norm == 'batch' and d.norm == 'none'


# --- Conditional generation ---------------------------------------------------------------------


def _conditional_gan(num_classes=3):
  from jaxgan.models import dcgan

  return GAN(
    dcgan.Generator(image_shape=(8, 8, 1), features=(8, 4), num_classes=num_classes),
    dcgan.Discriminator(features=(4, 8), num_classes=num_classes),
    optax.adam(1e-2),
    optax.adam(1e-2),
    latent_dim=6,
    num_classes=num_classes,
  )


def test_conditional_generator_output_depends_on_the_label():
  gan = _conditional_gan()
  state = init_state(gan, jax.random.PRNGKey(0), (8, 8, 1))
  z = jnp.tile(gan.sample_latent(jax.random.PRNGKey(1), 1), (3, 1))  # one latent, 3 classes
  x, _ = steps.apply(gan.generator, state.g_params, state.g_vars, z, False, labels=jnp.arange(3))
  assert float(jnp.abs(x[0] - x[1]).max()) > 1e-4 and float(jnp.abs(x[1] - x[2]).max()) > 1e-4
  with pytest.raises(ValueError, match='labels'):
    steps.apply(gan.generator, state.g_params, state.g_vars, z, False)


def test_projection_discriminator_adds_embed_dot_features():
  """logit = w.h + b + e_y.h, so d logit/d e_y = h = d logit/d w, and other classes get 0."""
  gan = _conditional_gan()
  state = init_state(gan, jax.random.PRNGKey(0), (8, 8, 1))
  x = jax.random.uniform(jax.random.PRNGKey(2), (1, 8, 8, 1), minval=-1)

  def logit(params):
    return steps.apply(gan.discriminator, params, state.d_vars, x, False, labels=jnp.array([2]))[0][
      0
    ]

  grads = jax.grad(logit)(state.d_params)
  h = grads['Dense_0']['kernel'][:, 0]
  embed_grad = grads['class_embed']['embedding']
  np.testing.assert_allclose(embed_grad[2], h, rtol=1e-6)
  assert float(jnp.abs(embed_grad[:2]).max()) == 0.0
  # And the value: zeroing the embedding removes exactly <e_2, h>.
  e2 = state.d_params['class_embed']['embedding'][2]
  zeroed = jax.tree.map(lambda a: a, state.d_params)
  zeroed['class_embed'] = {'embedding': jnp.zeros_like(state.d_params['class_embed']['embedding'])}
  np.testing.assert_allclose(
    logit(state.d_params) - logit(zeroed), jnp.dot(e2, h), rtol=1e-5, atol=1e-7
  )


def test_conditional_train_step_needs_labels_and_trains():
  gan = _conditional_gan()
  state = init_state(gan, jax.random.PRNGKey(0), (8, 8, 1))
  real = jax.random.uniform(jax.random.PRNGKey(1), (1, 4, 8, 8, 1), minval=-1)
  with pytest.raises(ValueError, match='labels'):
    steps.train_step(gan, state, Batch(real))
  new, m = jax.jit(lambda s, r, y: steps.train_step(gan, s, Batch(r, y)))(
    state, real, jnp.array([[0, 1, 2, 1]])
  )
  assert np.isfinite(float(m['d_loss'])) and np.isfinite(float(m['g_loss']))
  old, trained = state.g_params['Embed_0'], new.g_params['Embed_0']
  assert float(jnp.abs(trained['embedding'] - old['embedding']).max()) > 0


def test_conditional_grid_has_one_row_per_class():

  gan = _conditional_gan(num_classes=10)
  fake, cols = sampling.grid_inputs(gan, jax.random.PRNGKey(0), 64)
  z, labels = fake.z, fake.labels
  assert cols == 6 and z.shape == (60, 6)
  rows = np.asarray(labels).reshape(10, 6)
  np.testing.assert_array_equal(rows, np.repeat(np.arange(10)[:, None], 6, axis=1))
  np.testing.assert_array_equal(z[:6], z[6:12])  # a column shares its latent
  grid = images_lib.grid(np.zeros((60, 8, 8, 1)), pad=1, cols=cols)
  assert grid.shape == (10 * 9 + 1, 6 * 9 + 1, 1)
  # Unconditional grids are unchanged.
  fake, cols = sampling.grid_inputs(_linear_gan(), jax.random.PRNGKey(0), 64)
  assert fake.z.shape == (64, 3) and fake.g_labels is None and cols is None


# --- Config checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
  'key, value, message',
  [
    ('train.gp_weight', -1.0, 'gp_weight must be >= 0'),
    ('train.r1_every', 0, 'r1_every must be >= 1'),
    ('train.label_smoothing', 1.0, r'label_smoothing must be a number in \[0, 1\)'),
    ('train.ema_decay', 1.5, 'ema_decay must be a number'),
    ('optim.weight_decay', -0.1, 'weight_decay must be >= 0'),
    ('model.spectral_norm', 1, 'spectral_norm must be True or False'),
    ('model.d_norm', 'instance', 'd_norm must be one of'),
    ('model.conditional', 'yes', 'conditional must be True or False'),
    ('data.num_classes', -1, 'num_classes must be >= 0'),
  ],
)
def test_bad_family_config_values(test_config, key, value, message):
  from jaxgan import config as config_lib
  from jaxgan.errors import ConfigError

  section, leaf = key.split('.')
  with test_config[section].ignore_type():
    test_config[section][leaf] = value
  with pytest.raises(ConfigError, match=message):
    config_lib.validate(test_config)


def test_label_smoothing_needs_a_bce_loss(test_config):
  from jaxgan import config as config_lib
  from jaxgan.errors import ConfigError

  test_config.train.label_smoothing = 0.1
  config_lib.validate(test_config)
  test_config.train.loss = 'hinge'
  with pytest.raises(ConfigError, match='label_smoothing needs a BCE loss'):
    config_lib.validate(test_config)


# --- In the trainer ---------------------------------------------------------------------------


def test_trainer_keeps_and_checkpoints_the_ema(test_config, tmp_path):
  test_config.num_steps = 3
  test_config.train.ema_decay = 0.5
  state = train.train_and_evaluate(test_config, str(tmp_path))
  diffs = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.g_ema_params, state.g_params)
  assert all(v > 0 for v in jax.tree.leaves(diffs))
  _, _, restored = workdir_lib.load_run(str(tmp_path))
  jax.tree.map(np.testing.assert_array_equal, restored.g_ema_params, state.g_ema_params)


def test_conditional_training_needs_labelled_data(test_config, tmp_path, monkeypatch):
  from jaxgan import data
  from jaxgan.errors import ConfigError

  test_config.model.conditional = True
  load = data.load_dataset
  monkeypatch.setattr(data, 'load_dataset', lambda cfg: load(cfg)._replace(labels=None))
  with pytest.raises(ConfigError, match='model.conditional needs labels'):
    train.train_and_evaluate(test_config, str(tmp_path))
  test_config.data.num_classes = 5
  monkeypatch.setattr(data, 'load_dataset', load)
  with pytest.raises(ConfigError, match='num_classes=5'):
    train.train_and_evaluate(test_config, str(tmp_path))


# --- InfoGAN's categorical code -----------------------------------------------------------------


def _info_gan(codes=3, continuous=0, **kw):
  from jaxgan.models import dcgan

  kw.setdefault('g_optimizer', optax.adam(1e-2))
  kw.setdefault('d_optimizer', optax.adam(1e-2))
  return GAN(
    dcgan.Generator(image_shape=(8, 8, 1), features=(8, 4), num_classes=codes),
    dcgan.Discriminator(features=(4, 8), code_outputs=codes + continuous),
    latent_dim=6,
    latent_classes=codes,
    latent_continuous=continuous,
    **kw,
  )


def _code_ce(code_logits, codes):
  """-log softmax(code_logits)[code], averaged: the InfoGAN term written out."""
  log_q = code_logits - jax.scipy.special.logsumexp(code_logits, axis=-1, keepdims=True)
  return -jnp.mean(jnp.take_along_axis(log_q, codes[:, None], axis=-1))


def test_infogan_d_reads_the_code_and_takes_no_labels():
  gan = _info_gan()
  state = init_state(gan, jax.random.PRNGKey(0), (8, 8, 1))
  assert 'code' in state.d_params and 'class_embed' not in state.d_params
  x = jax.random.uniform(jax.random.PRNGKey(2), (5, 8, 8, 1), minval=-1)
  logits, code_logits = steps.apply(gan.discriminator, state.d_params, state.d_vars, x, False)[0]
  assert logits.shape == (5,) and code_logits.shape == (5, 3)


def test_infogan_d_step_adds_the_code_loss_on_fakes():
  """d_loss stays the adversarial loss; the total D minimises adds info_weight * CE(code)."""
  gan = _info_gan(info_weight=0.7, d_optimizer=optax.sgd(1.0))
  state = init_state(gan, jax.random.PRNGKey(0), (8, 8, 1))
  real = jax.random.uniform(jax.random.PRNGKey(1), (4, 8, 8, 1), minval=-1)
  codes = jnp.array([0, 2, 1, 2])
  z = gan.sample_latent(jax.random.PRNGKey(3), 4)
  fake = steps.apply(gan.generator, state.g_params, state.g_vars, z, True, labels=codes)[0]

  def total(d_params):
    (real_logits, _), d_vars = steps.apply(gan.discriminator, d_params, state.d_vars, real, True)
    (fake_logits, code_logits), _ = steps.apply(gan.discriminator, d_params, d_vars, fake, True)
    adv = gan.objective.d_loss(real_logits, fake_logits)
    return adv + 0.7 * _code_ce(code_logits, codes), (adv, _code_ce(code_logits, codes))

  (_, (adv, ce)), want = jax.value_and_grad(total, has_aux=True)(state.d_params)
  new, m = steps.d_step(gan, state, Batch(real), FakeBatch(fake, FakeInputs(z, codes=codes)))
  np.testing.assert_allclose(m['d_loss'], adv, rtol=1e-6)
  np.testing.assert_allclose(m['info'], ce, rtol=1e-6)
  got = jax.tree.map(lambda old, upd: old - upd, state.d_params, new.d_params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), got, want)


@pytest.mark.parametrize('codes, continuous', [(3, 2), (0, 2)])
def test_infogan_g_gradient_includes_the_code_loss(codes, continuous):
  """G's update is minus the gradient of g_loss + info_weight * (-log Q(codes | G(z, c))):
  the categorical code's cross-entropy plus half the squared error of the continuous codes,
  which are z's first dims."""
  gan = _info_gan(codes, continuous, info_weight=1.3, g_optimizer=optax.sgd(1.0))
  state = init_state(gan, jax.random.PRNGKey(0), (8, 8, 1))
  z, y = gan.sample_latent(jax.random.PRNGKey(3), 4), jnp.array([1, 0, 2, 2]) if codes else None

  def total(g_params):
    fake = steps.apply(gan.generator, g_params, state.g_vars, z, True, labels=y)[0]
    (logits, out), _ = steps.apply(gan.discriminator, state.d_params, state.d_vars, fake, True)
    nll = _code_ce(out[:, :codes], y) if codes else 0.0
    nll += 0.5 * jnp.sum((out[:, codes:] - z[:, :continuous]) ** 2) / 4
    return gan.objective.g_loss(logits) + 1.3 * nll

  want = jax.grad(total)(state.g_params)
  new, _ = steps.g_step(gan, state, FakeInputs(z, codes=y))
  got = jax.tree.map(lambda old, upd: old - upd, state.g_params, new.g_params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), got, want)
  if not codes:
    return
  # The code really enters G: another code, another image.
  fake = [
    steps.apply(gan.generator, state.g_params, state.g_vars, z[:1], False, labels=jnp.array([c]))[0]
    for c in (0, 1)
  ]
  assert float(jnp.abs(fake[0] - fake[1]).max()) > 1e-4


def test_infogan_train_step_needs_no_labels_and_its_grid_has_a_row_per_code():
  gan = _info_gan(codes=4)
  state = init_state(gan, jax.random.PRNGKey(0), (8, 8, 1))
  real = jax.random.uniform(jax.random.PRNGKey(1), (1, 4, 8, 8, 1), minval=-1)
  new, m = jax.jit(lambda s, r: steps.train_step(gan, s, Batch(r)))(state, real)
  assert np.isfinite(float(m['info'])) and float(m['info']) > 0
  assert float(jnp.abs(new.d_params['code']['kernel'] - state.d_params['code']['kernel']).max()) > 0
  fake, cols = sampling.grid_inputs(gan, jax.random.PRNGKey(0), 16)
  labels = fake.codes
  assert cols == 4 and np.asarray(labels).tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4


def test_infogan_and_conditional_exclude_each_other(test_config):
  from jaxgan import config as config_lib
  from jaxgan.errors import ConfigError

  test_config.model.latent_classes = 10
  config_lib.validate(test_config)
  test_config.model.conditional = True
  with pytest.raises(ConfigError, match='latent_classes .InfoGAN. and model.conditional'):
    config_lib.validate(test_config)


# --- Minibatch standard deviation and mode seeking ------------------------------------------


def test_minibatch_std_by_hand():
  """Image i gets the std over its group {j : j = i mod N/g}, averaged over all features."""
  from jaxgan.models import layers

  x = jax.random.normal(jax.random.PRNGKey(0), (6, 2, 3, 4))
  out = np.asarray(layers.minibatch_std(x, 3))
  assert out.shape == (6, 2, 3, 5)
  np.testing.assert_array_equal(out[..., :4], x)
  xs = np.asarray(x, np.float64)
  for i in range(6):
    group = xs[[j for j in range(6) if j % 2 == i % 2]]
    want = np.sqrt(group.var(axis=0) + 1e-8).mean()
    np.testing.assert_allclose(out[i, ..., 4], want, rtol=1e-5)
  # A batch not divisible by the group size uses the largest divisor below it (here 1: std 0).
  odd = np.asarray(layers.minibatch_std(x[:5], 4))
  np.testing.assert_allclose(odd[..., 4], 1e-4, rtol=1e-3)


def test_minibatch_std_d_sees_the_batch_spread():
  """With the layer, D's logit for an image depends on the rest of its group; without, not."""
  x = jax.random.uniform(jax.random.PRNGKey(1), (4, 8, 8, 1), minval=-1)
  other = x.at[1:].set(x[0])  # image 0 alike, its group mates now its copies
  for group, depends in [(4, True), (0, False)]:
    gan = _dcgan_gan(minibatch_std=group, norm='none')
    state = init_state(gan, jax.random.PRNGKey(0), (8, 8, 1))

    def d(x):
      return steps.apply(gan.discriminator, state.d_params, state.d_vars, x, False)[0]  # noqa: B023

    differs = abs(float(d(x)[0] - d(other)[0])) > 1e-6
    assert differs == depends, group


def test_mode_seeking_g_gradient_is_the_msgan_objective():
  """G's update is minus the gradient of g_loss + w * mean|z1 - z2| / mean|G(z1) - G(z2)|,
  the batch's halves being the pairs."""
  gan = dataclasses.replace(
    _conditional_gan(), g_optimizer=optax.sgd(1.0), d_optimizer=optax.sgd(1.0), mode_seeking=0.4
  )
  state = init_state(gan, jax.random.PRNGKey(0), (8, 8, 1))
  z, y = gan.sample_latent(jax.random.PRNGKey(3), 6), jnp.array([0, 2, 1, 0, 2, 1])

  def total(g_params):
    fake = steps.apply(gan.generator, g_params, state.g_vars, z, True, labels=y)[0]
    logits = steps.apply(gan.discriminator, state.d_params, state.d_vars, fake, True, labels=y)[0]
    ratio = jnp.mean(jnp.abs(fake[:3] - fake[3:])) / jnp.mean(jnp.abs(z[:3] - z[3:]))
    return gan.objective.g_loss(logits) + 0.4 / (ratio + 1e-5)

  want = jax.grad(total)(state.g_params)
  new, _ = steps.g_step(gan, state, FakeInputs(z, labels=y))
  got = jax.tree.map(lambda old, upd: old - upd, state.g_params, new.g_params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7), got, want)
  off = steps.g_step(dataclasses.replace(gan, mode_seeking=0.0), state, FakeInputs(z, labels=y))[0]
  assert not np.allclose(off.g_params['Dense_0']['kernel'], new.g_params['Dense_0']['kernel'])


def test_mode_seeking_pairs_share_labels():
  """The fake batch's halves get the same labels, so each pair differs only in its latent."""
  gan = dataclasses.replace(_conditional_gan(), mode_seeking=1.0)
  fake = gan.sample_inputs(jax.random.PRNGKey(0), 9)
  y = np.asarray(fake.labels)  # classes: G and D both take them
  assert fake.codes is None and fake.g_labels is fake.labels
  np.testing.assert_array_equal(y[:4], y[4:8])
  assert len(set(y[:4].tolist())) > 1  # still drawn, not one label
  off = np.asarray(_conditional_gan().sample_inputs(jax.random.PRNGKey(0), 9).labels)
  sampled = np.asarray(gan.sample_inputs(jax.random.PRNGKey(0), 9, training=False).labels)
  assert not np.array_equal(off[:4], off[4:8]) and not np.array_equal(sampled[:4], sampled[4:8])
  assert not np.array_equal(off[:4], off[4:8])


def test_mode_seeking_needs_a_pair(test_config):
  from jaxgan import config as config_lib
  from jaxgan.errors import ConfigError

  test_config.train.mode_seeking = 0.5
  config_lib.validate(test_config)
  test_config.batch_size = 1
  with pytest.raises(ConfigError, match='mode_seeking.*at least 2'):
    config_lib.validate(test_config)
