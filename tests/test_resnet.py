"""The ResNet family's pieces equal their textbook definitions, and its networks have the shapes
and the gradients they should, from 32 to 256 px (tiny widths: the file runs in seconds)."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import models
from jaxgan.errors import ConfigError
from jaxgan.models import layers, resnet
from tests import references

_DN = ('NHWC', 'HWIO', 'NHWC')
EPS = 1e-5  # the batch norms' epsilon


def _variables(module, *args, seed=0, scale=0.5, **kwargs):
  """Variables for `module` with every parameter drawn at random, so that no zero-initialised
  bias or unit gain can hide a term a reference gets wrong. Drawn on the host from the shapes
  alone: compiling flax's initialisers costs more than everything else here."""
  shapes = jax.eval_shape(functools.partial(module.init, **kwargs), jax.random.PRNGKey(0), *args)
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = jax.tree_util.keystr(path)
    if 'batch_stats' in name and not name.endswith("/u']"):  # means 0, variances and sigmas 1
      return np.full(leaf.shape, 0.0 if name.endswith("['mean']") else 1.0, np.float32)
    return (scale * rng.standard_normal(leaf.shape)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _conv(x, kernel, bias=None):
  y = jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME', dimension_numbers=_DN)
  return y if bias is None else y + bias


def _bn(x, scale=None, bias=None):
  """Batch norm in training mode, written out: batch mean and biased variance per channel."""
  mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
  y = (x - mean) / jnp.sqrt(var + EPS)
  return y if scale is None else y * scale + bias


def _up(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _pool(x):
  return nn.avg_pool(x, (2, 2), (2, 2))


# --- spectral norm ----------------------------------------------------------------------------


class _SNConv(nn.Module):
  """One spectrally normalised 3x3 conv, as the ResNet blocks use it."""

  features: int

  @nn.compact
  def __call__(self, x, train=True):
    return layers.spectral_apply(layers.Conv(self.features, 3, name='conv'), x, True, train)


def _sn_setup(cin=4, cout=6):
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 5, cin))
  module = _SNConv(cout)
  variables = _variables(module, x, scale=1.0)
  return module, variables, x


def test_spectral_norm_converges_to_the_largest_singular_value():
  module, variables, x = _sn_setup()

  @jax.jit
  def iterate(variables):  # 300 training calls, one power iteration each
    def body(_, v):
      return {**v, **module.apply(v, x, mutable=['batch_stats'])[1]}

    return jax.lax.fori_loop(0, 300, body, variables)

  variables = iterate(variables)
  kernel = np.asarray(variables['params']['conv']['kernel'], np.float64)
  sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
  stats = variables['batch_stats']['SpectralNorm_0']
  np.testing.assert_allclose(stats['conv/kernel/sigma'], sigma, rtol=1e-5)
  bias = variables['params']['conv']['bias']
  want = _conv(x, kernel.astype(np.float32) / sigma, bias)
  np.testing.assert_allclose(module.apply(variables, x, train=False), want, atol=1e-5)


def test_spectral_norm_matches_torch_in_training():
  """Output, updated u and both gradients equal torch.nn.utils.spectral_norm's (one power
  iteration per training call, the gradient flowing through sigma but not through u, v)."""
  torch = references.load('torch')
  module, variables, x = _sn_setup()
  r = jax.random.normal(jax.random.PRNGKey(2), (2, 5, 5, 6))

  def loss(params, x):
    out, updates = module.apply({**variables, 'params': params}, x, mutable=['batch_stats'])
    return jnp.sum(out * r), (out, updates)

  (_, (out, updates)), (g_params, g_x) = jax.value_and_grad(loss, (0, 1), has_aux=True)(
    variables['params'], x
  )
  params = variables['params']['conv']
  conv = torch.nn.Conv2d(4, 6, 3, padding=1)
  with torch.no_grad():
    conv.weight.copy_(torch.from_numpy(np.array(params['kernel']).transpose(3, 2, 0, 1)))
    conv.bias.copy_(torch.from_numpy(np.array(params['bias'])))
  conv = torch.nn.utils.spectral_norm(conv)
  u0 = variables['batch_stats']['SpectralNorm_0']['conv/kernel/u'][0]
  conv.weight_u.copy_(torch.from_numpy(np.array(u0)))
  conv.train()
  xt = torch.from_numpy(np.array(x).transpose(0, 3, 1, 2)).requires_grad_()
  yt = conv(xt)
  (yt * torch.from_numpy(np.array(r).transpose(0, 3, 1, 2))).sum().backward()

  np.testing.assert_allclose(out, yt.detach().numpy().transpose(0, 2, 3, 1), atol=1e-5)
  u1 = updates['batch_stats']['SpectralNorm_0']['conv/kernel/u'][0]
  np.testing.assert_allclose(u1, conv.weight_u.numpy(), atol=1e-5)
  np.testing.assert_allclose(g_x, xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-4)
  w_grad = conv.weight_orig.grad.numpy().transpose(2, 3, 1, 0)
  np.testing.assert_allclose(g_params['conv']['kernel'], w_grad, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(g_params['conv']['bias'], conv.bias.grad.numpy(), rtol=1e-5)


# --- conditional batch norm, blocks, attention ------------------------------------------------


def test_conditional_batch_norm_is_plain_batch_norm_then_the_class_affine():
  x = 3.0 + 2.0 * jax.random.normal(jax.random.PRNGKey(0), (6, 3, 3, 5))
  labels = jnp.array([0, 2, 2, 1, 3, 0])
  module = resnet.ConditionalBatchNorm(4)
  variables = _variables(module, x, labels)
  gain = variables['params']['gain']['embedding']
  bias = variables['params']['bias']['embedding']
  assert gain.shape == bias.shape == (4, 5)
  out, updates = module.apply(variables, x, labels, mutable=['batch_stats'])
  want = _bn(x) * gain[labels][:, None, None] + bias[labels][:, None, None]
  np.testing.assert_allclose(out, want, atol=1e-5)
  plain = nn.BatchNorm(use_running_average=False, use_scale=False, use_bias=False, epsilon=EPS)
  normed, _ = plain.apply({}, x, mutable=['batch_stats'])
  np.testing.assert_allclose(
    out, normed * gain[labels][:, None, None] + bias[labels][:, None, None], atol=1e-5
  )
  # In evaluation, the running statistics (PyTorch's momentum 0.1, from mean 0 and var 1).
  stats = updates['batch_stats']['BatchNorm_0']
  np.testing.assert_allclose(stats['mean'], 0.1 * x.mean((0, 1, 2)), rtol=1e-5)
  np.testing.assert_allclose(stats['var'], 0.9 + 0.1 * x.var((0, 1, 2)), rtol=1e-4)  # biased
  evaluated = module.apply({**variables, **updates}, x, labels, train=False)
  running = (x - stats['mean']) / jnp.sqrt(stats['var'] + EPS)
  want = running * gain[labels][:, None, None] + bias[labels][:, None, None]
  np.testing.assert_allclose(evaluated, want, atol=1e-5)


@pytest.mark.parametrize('num_classes', [0, 3])
def test_g_block_is_the_textbook_composition(num_classes):
  """BN-ReLU-up-conv3x3-BN-ReLU-conv3x3 + conv1x1(up(x)), the shortcut in the paper's order."""
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 4, 4, 5))
  labels = jnp.array([0, 2, 1, 2]) if num_classes else None
  block = resnet.GBlock(6, num_classes)
  variables = _variables(block, x, labels)
  p = variables['params']
  out, _ = block.apply(variables, x, labels, mutable=['batch_stats'])

  def norm(h, name):
    if num_classes:
      gain, bias = p[name]['gain']['embedding'], p[name]['bias']['embedding']
      return _bn(h) * gain[labels][:, None, None] + bias[labels][:, None, None]
    return _bn(h, p[name]['scale'], p[name]['bias'])

  h = _conv(_up(nn.relu(norm(x, 'bn1'))), p['conv1']['kernel'])
  h = _conv(nn.relu(norm(h, 'bn2')), p['conv2']['kernel'], p['conv2']['bias'])
  shortcut = _conv(_up(x), p['shortcut']['kernel'][None, None], p['shortcut']['bias'])
  assert out.shape == (4, 8, 8, 6)
  np.testing.assert_allclose(out, h + shortcut, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize(
  'first, downsample, cin',
  [(True, True, 3), (False, True, 5), (False, False, 5), (False, False, 6)],
  ids=['optimized', 'down', 'width-change', 'identity-shortcut'],
)
def test_d_block_is_the_textbook_composition(first, downsample, cin):
  """(ReLU)-conv3x3-ReLU-conv3x3-(avgpool) + (avgpool(conv1x1(x)) | conv1x1(avgpool(x)) | x)."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, cin))
  block = resnet.DBlock(6, downsample, first, spectral_norm=False)
  variables = _variables(block, x)
  p = variables['params']
  h = _conv(x if first else nn.relu(x), p['conv1']['kernel'], p['conv1']['bias'])
  h = _conv(nn.relu(h), p['conv2']['kernel'], p['conv2']['bias'])
  h = _pool(h) if downsample else h
  if 'shortcut' not in p:
    assert cin == 6 and not downsample
    shortcut = x
  elif first:  # SNGAN's optimized block pools the image first
    shortcut = _conv(_pool(x), p['shortcut']['kernel'][None, None], p['shortcut']['bias'])
  else:
    shortcut = _conv(x, p['shortcut']['kernel'][None, None], p['shortcut']['bias'])
    shortcut = _pool(shortcut) if downsample else shortcut
  out = block.apply(variables, x)
  assert out.shape == (2, 4 if downsample else 8, 4 if downsample else 8, 6)
  np.testing.assert_allclose(out, h + shortcut, atol=1e-4, rtol=1e-4)


def test_self_attention_is_the_textbook_composition():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 6, 16))
  module = resnet.SelfAttention()
  variables = module.init(jax.random.PRNGKey(1), x)
  np.testing.assert_array_equal(module.apply(variables, x), x)  # gamma starts at 0: identity
  variables = _variables(module, x)
  p = {k: v['kernel'] if isinstance(v, dict) else v for k, v in variables['params'].items()}
  query = (x @ p['query']).reshape(2, 24, 2)
  key = nn.max_pool(x @ p['key'], (2, 2), (2, 2)).reshape(2, 6, 2)
  value = nn.max_pool(x @ p['value'], (2, 2), (2, 2)).reshape(2, 6, 8)
  weights = jax.nn.softmax(jnp.einsum('nqc,nkc->nqk', query, key), axis=-1)
  o = jnp.einsum('nqk,nkc->nqc', weights, value).reshape(2, 4, 6, 8) @ p['out']
  np.testing.assert_allclose(module.apply(variables, x), x + p['gamma'] * o, atol=1e-4)


# --- whole networks ---------------------------------------------------------------------------


def test_projection_term_is_the_inner_product_with_the_class_embedding():
  d = resnet.Discriminator(ch=4, num_classes=5, spectral_norm=False)
  x = jax.random.uniform(jax.random.PRNGKey(0), (3, 32, 32, 3), minval=-1, maxval=1)
  labels = jnp.array([4, 0, 4])
  variables = _variables(d, x, labels=labels)
  logits, state = d.apply(
    variables, x, train=False, labels=labels, capture_intermediates=True, mutable=['intermediates']
  )
  last = state['intermediates']['block3']['__call__'][0]
  h = jnp.sum(nn.relu(last), axis=(1, 2))
  p = variables['params']
  unconditional = h @ p['dense']['kernel'][:, 0] + p['dense']['bias'][0]
  projection = jnp.sum(p['class_embed']['embedding'][labels] * h, axis=-1)
  np.testing.assert_allclose(logits, unconditional + projection, rtol=1e-5, atol=1e-4)
  assert float(jnp.abs(projection).min()) > 1e-3  # the term is really there


def _tiny(side: int):
  g_mults, d_mults, down = resnet.ARCHITECTURES[side]
  ch = 4 if side == 32 else 1
  g = resnet.Generator((side, side, 3), ch, g_mults, attention_res=16 if side == 32 else 0)
  d = resnet.Discriminator(ch, d_mults, down, attention_res=16 if side == 32 else 0)
  return g, d


@pytest.mark.parametrize('side', [32, 64, 128])
def test_generator_and_discriminator_shapes(side):
  g, d = _tiny(side)
  z = jax.random.normal(jax.random.PRNGKey(0), (2, 16)) * 10
  g_vars = _variables(g, z)
  d_vars = _variables(d, jax.ShapeDtypeStruct((2, side, side, 3), jnp.float32))

  @jax.jit
  def run(g_vars, d_vars):
    x = g.apply(g_vars, z, train=False)
    return x, d.apply(d_vars, x, train=False)

  x, logits = run(g_vars, d_vars)
  assert x.shape == (2, side, side, 3) and x.dtype == jnp.float32
  assert float(jnp.abs(x).max()) <= 1.0 and float(x.std()) > 0
  assert logits.shape == (2,) and logits.dtype == jnp.float32


def test_256_px_shapes_without_computing():
  g, d = _tiny(256)
  z = jax.ShapeDtypeStruct((2, 128), jnp.float32)
  g_vars = jax.eval_shape(g.init, jax.random.PRNGKey(0), z)
  x = jax.eval_shape(lambda v, z: g.apply(v, z, train=False), g_vars, z)
  assert x.shape == (2, 256, 256, 3)
  assert g_vars['params']['dense']['kernel'].shape == (128, 4 * 4 * 16)
  assert g_vars['params']['conv_out']['kernel'].shape == (3, 3, 1, 3)
  d_vars = jax.eval_shape(d.init, jax.random.PRNGKey(0), x)
  assert jax.eval_shape(lambda v, x: d.apply(v, x, train=False), d_vars, x).shape == (2,)
  assert d_vars['params']['block6']['conv2']['kernel'].shape == (3, 3, 16, 16)
  assert 'shortcut' not in d_vars['params']['block6']  # 4x4, same width: identity


def test_gradients_reach_exactly_the_parameters_used():
  """Per-class gains, biases and embeddings of classes absent from the batch get no gradient;
  every other parameter does."""
  num_classes, labels = 5, jnp.array([0, 2, 2, 0])
  g = resnet.Generator((32, 32, 3), 4, num_classes=num_classes, spectral_norm=True)
  # D without spectral norm: sigma of the class embedding depends on every row.
  d = resnet.Discriminator(4, num_classes=num_classes, spectral_norm=False)
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 16))
  g_vars = _variables(g, z, labels=labels)
  d_vars = _variables(d, jax.ShapeDtypeStruct((4, 32, 32, 3), jnp.float32), labels=labels)

  @jax.jit
  def grads(d_params, g_params):
    def d_loss(d_params, g_params):
      x, _ = g.apply({**g_vars, 'params': g_params}, z, labels=labels, mutable=['batch_stats'])
      logits, _ = d.apply({**d_vars, 'params': d_params}, x, labels=labels, mutable=True)
      return jnp.sum(jnp.sin(logits))

    return jax.grad(d_loss, (0, 1))(d_params, g_params)

  d_grads, g_grads = grads(d_vars['params'], g_vars['params'])
  for tree in (d_grads, g_grads):
    for path, grad in jax.tree_util.tree_leaves_with_path(tree):
      name = jax.tree_util.keystr(path)
      nonzero = np.abs(np.asarray(grad)).reshape(grad.shape[0] if grad.ndim else 1, -1).max(-1)
      if 'embedding' in name:  # one row per class
        assert (nonzero[[0, 2]] > 0).all() and (nonzero[[1, 3, 4]] == 0).all(), name
      else:
        assert nonzero.max() > 0, name
  assert any(
    'class_embed' in jax.tree_util.keystr(p)
    for p, _ in jax.tree_util.tree_leaves_with_path(d_grads)
  )


def test_bfloat16_compute_keeps_float32_params_and_outputs():
  g32 = resnet.Generator((32, 32, 3), 8)
  g16 = resnet.Generator((32, 32, 3), 8, dtype='bfloat16')
  d32, d16 = resnet.Discriminator(8), resnet.Discriminator(8, dtype='bfloat16')
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 16))
  g_vars = _variables(g32, z, scale=0.2)
  d_vars = _variables(d32, jax.ShapeDtypeStruct((4, 32, 32, 3), jnp.float32), scale=0.2)

  @jax.jit
  def run(g_vars, d_vars):
    x32, x16 = g32.apply(g_vars, z, train=False), g16.apply(g_vars, z, train=False)
    return x32, x16, d32.apply(d_vars, x32, train=False), d16.apply(d_vars, x32, train=False)

  x32, x16, l32, l16 = run(g_vars, d_vars)
  g16_params = jax.eval_shape(g16.init, jax.random.PRNGKey(0), z)
  assert {leaf.dtype for leaf in jax.tree.leaves(g16_params)} == {np.dtype(np.float32)}
  assert x16.dtype == l16.dtype == jnp.float32
  np.testing.assert_allclose(x16, x32, atol=0.05)
  np.testing.assert_allclose(l16, l32, atol=0.05 * float(jnp.abs(l32).max()) + 0.05)
  assert float(jnp.abs(x16 - x32).max()) > 0


# --- config -----------------------------------------------------------------------------------


def _model_config(**overrides):
  """A narrow resnet `config.model`: the family's defaults, 4 channels wide."""
  from jaxgan import config as config_lib

  cfg = config_lib.defaults('resnet', 'cifar10').model
  cfg.update({'latent_dim': 16, 'g_ch': 4, 'd_ch': 4, **overrides})
  return cfg


def test_registered_and_built_from_the_config():
  assert 'resnet' in models.names()
  g, d = models.create(_model_config(attention_res=8, g_spectral_norm=True), (32, 32, 3), 10)
  assert isinstance(g, resnet.Generator) and isinstance(d, resnet.Discriminator)
  assert g.spectral_norm and d.spectral_norm and g.num_classes == d.num_classes == 10
  assert g.attention_res == d.attention_res == 8 and d.downsample == 2


@pytest.mark.parametrize(
  'overrides, shape, message',
  [
    (dict(g_mults=(1,)), (32, 32, 3), 'at least two'),
    (dict(), (36, 36, 3), 'not divisible by 2\\*\\*\\(len\\(model.g_mults\\) - 1\\) = 8'),
    (dict(d_downsample=4), (32, 32, 3), 'must be less than len\\(model.d_mults\\)=4'),
    (dict(g_mults=(1, 1), d_downsample=3), (12, 12, 3), 'not divisible by 2\\*\\*model.d_down'),
    (dict(attention_res=32), (32, 32, 3), 'G \\[8, 16, 32\\], D \\[16, 8, 8, 8\\]'),
  ],
)
def test_impossible_shapes_are_config_errors(overrides, shape, message):
  with pytest.raises(ConfigError, match=message):
    models.create(_model_config(**overrides), shape)
  models.create(_model_config(), (32, 48, 3))  # non-square works: G starts from 4x6
