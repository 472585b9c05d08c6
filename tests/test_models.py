"""The DCGAN variants named in the config really change the network, and each one trains."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import gan as gan_lib
from jaxgan import models, parallel, train
from jaxgan.state import init_state
from jaxgan.train import feed


def _variant(test_config, **model):
  for k, v in model.items():
    setattr(test_config.model, k, v)
  return test_config


def _param_shapes(tree):
  return {
    '/'.join(str(k.key) for k in path): leaf.shape
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
  }


def test_default_shapes(test_config):
  g, d = models.create(test_config.model, (28, 28, 1))
  z = jnp.zeros((3, test_config.model.latent_dim))
  g_vars = g.init(jax.random.PRNGKey(0), z)
  x = g.apply(g_vars, z, train=False)
  assert x.shape == (3, 28, 28, 1)
  d_vars = d.init(jax.random.PRNGKey(0), x)
  assert d.apply(d_vars, x, train=False).shape == (3,)
  shapes = _param_shapes(g_vars['params'])
  # Dense to 7x7x16, transposed convs 16 -> 8 -> 1 with 4x4 kernels.
  assert shapes['Dense_0/kernel'] == (16, 7 * 7 * 16)
  assert shapes['ConvTranspose4x4s2_0/kernel'] == (4, 4, 16, 8)
  assert shapes['ConvTranspose4x4s2_1/kernel'] == (4, 4, 8, 1)
  assert _param_shapes(d_vars['params'])['Conv4x4s2_1/kernel'] == (4, 4, 8, 16)


@pytest.mark.parametrize(
  'model, g_kernel, d_kernel',
  [
    (dict(upsample='pixel_shuffle'), ('Conv_0/kernel', (3, 3, 16, 32)), None),
    (dict(downsample='avg_pool'), None, ('Conv_0/kernel', (3, 3, 1, 8))),
  ],
)
def test_variants_change_the_layers(test_config, model, g_kernel, d_kernel):
  cfg = _variant(test_config, **model)
  g, d = models.create(cfg.model, (28, 28, 1))
  z = jnp.zeros((2, cfg.model.latent_dim))
  g_vars = g.init(jax.random.PRNGKey(0), z)
  x = g.apply(g_vars, z, train=False)
  assert x.shape == (2, 28, 28, 1)
  d_vars = d.init(jax.random.PRNGKey(0), x)
  assert d.apply(d_vars, x, train=False).shape == (2,)
  if g_kernel:
    assert _param_shapes(g_vars['params'])[g_kernel[0]] == g_kernel[1]
  if d_kernel:
    assert _param_shapes(d_vars['params'])[d_kernel[0]] == d_kernel[1]


def test_norm_none_has_no_batch_stats_and_uses_biases(test_config):
  cfg = _variant(test_config, norm='none')
  g, d = models.create(cfg.model, (28, 28, 1))
  g_vars = g.init(jax.random.PRNGKey(0), jnp.zeros((2, cfg.model.latent_dim)))
  d_vars = d.init(jax.random.PRNGKey(0), jnp.zeros((2, 28, 28, 1)))
  assert set(g_vars) == {'params'} and set(d_vars) == {'params'}
  assert 'bias' in g_vars['params']['Dense_0']


def test_generator_output_in_tanh_range(test_config):
  g, _ = models.create(test_config.model, (28, 28, 1))
  z = jax.random.normal(jax.random.PRNGKey(0), (4, test_config.model.latent_dim)) * 100
  v = g.init(jax.random.PRNGKey(1), z)
  x = g.apply(v, z, train=False)
  assert float(jnp.abs(x).max()) <= 1.0


@pytest.mark.parametrize(
  'overrides',
  [
    dict(),
    dict(upsample='pixel_shuffle'),
    dict(downsample='avg_pool'),
    dict(norm='none'),
    dict(latent_dist='uniform'),
  ],
  ids=lambda o: ','.join(f'{k}={v}' for k, v in o.items()) or 'default',
)
def test_each_variant_trains(test_config, overrides):
  """A few steps on random data: losses finite, both networks move."""
  cfg = _variant(test_config, **overrides)
  gan = gan_lib.from_config(cfg, (28, 28, 1))
  state = init_state(gan, jax.random.PRNGKey(0), (28, 28, 1))
  images = np.random.default_rng(1).integers(0, 256, (32, 28, 28, 1), np.uint8)
  draws = feed.Draws(jax.random.PRNGKey(2), (gan.d_steps, 8))
  resident = feed.Resident((images, None), draws, parallel.mesh())
  fn = jax.jit(train.make_train_fn(gan, resident), static_argnums=2)
  new, metrics = fn(state, resident(0, 1), 1)
  new, metrics = fn(new, resident(0, 1), 1)
  for k in ('d_loss', 'g_loss'):
    assert np.isfinite(float(metrics[k][0]))
  for a, b in ((state.g_params, new.g_params), (state.d_params, new.d_params)):
    assert any(
      bool(jnp.any(x != y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_bfloat16_compute_keeps_float32_params_and_outputs(test_config):
  g32, d32 = models.create(test_config.model, (28, 28, 1))
  test_config.model.dtype = 'bfloat16'
  g16, d16 = models.create(test_config.model, (28, 28, 1))
  z = jax.random.normal(jax.random.PRNGKey(0), (4, test_config.model.latent_dim))
  g_vars = g32.init(jax.random.PRNGKey(1), z)
  param_dtypes = {leaf.dtype for leaf in jax.tree.leaves(g16.init(jax.random.PRNGKey(1), z))}
  assert param_dtypes == {np.dtype(np.float32)}
  x32, x16 = g32.apply(g_vars, z, train=False), g16.apply(g_vars, z, train=False)
  assert x16.dtype == jnp.float32
  np.testing.assert_allclose(x16, x32, atol=0.05)  # bf16 keeps ~3 significant digits
  d_vars = d32.init(jax.random.PRNGKey(2), x32)
  np.testing.assert_allclose(
    d16.apply(d_vars, x32, train=False), d32.apply(d_vars, x32, train=False), atol=0.05
  )
  assert float(jnp.abs(x16 - x32).max()) > 0  # really computed in lower precision
