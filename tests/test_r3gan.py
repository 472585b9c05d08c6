"""The R3GAN family's pieces equal their textbook definitions (blocks, grouped conv, resamplers,
bases, conditioning), its init makes every block the identity, it has no normalisation, and it
trains through jaxgan (tiny widths: the file runs in seconds)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import gan as gan_lib
from jaxgan import models, steps
from jaxgan.batch import Batch
from jaxgan.errors import ConfigError
from jaxgan.models import r3gan
from jaxgan.state import init_state

_DN = ('NHWC', 'HWIO', 'NHWC')
# Tiny networks: 4 stages (32 px), a width change in each direction, unequal cardinalities.
TINY = dict(widths=(8, 8, 4, 6), cardinalities=(2, 4, 1, 3), blocks=(1, 1, 1, 1), latent_dim=6)


def _config(**overrides):
  config = config_lib.defaults('r3gan', 'mnist')
  config.model.update({**TINY, **overrides})
  return config


def _random(variables, seed=0, scale=0.5):
  """Every parameter drawn at random, so that no zero-initialised conv or bias hides a term."""
  rng = np.random.default_rng(seed)
  return jax.tree.map(
    lambda a: jnp.asarray(scale * rng.standard_normal(a.shape), jnp.float32), variables
  )


def _leaky(x):
  return jnp.where(x >= 0, x, 0.2 * x)


# --- resampling --------------------------------------------------------------------------------


def _upfirdn_numpy(x, up, down):
  """upfirdn2d on one (H, W) map, from its definition: insert up - 1 zeros after each sample,
  zero-pad, convolve with the 2D filter (the outer product of [1,2,1] * [1,1], normalised,
  times up**2), keep every down-th sample. Paddings as the official up/downsample2d's."""
  taps = np.convolve([1, 2, 1], [1, 1]).astype(np.float64)
  kernel = np.outer(taps, taps) / np.outer(taps, taps).sum() * up**2
  h, w = x.shape
  stuffed = np.zeros((h * up, w * up))
  stuffed[::up, ::up] = x
  k = len(taps)
  p0, p1 = ((k + up - 1) // 2, (k - up) // 2) if up > 1 else ((k - down + 1) // 2, (k - down) // 2)
  padded = np.pad(stuffed, ((p0, p1), (p0, p1)))
  out = np.zeros((padded.shape[0] - k + 1, padded.shape[1] - k + 1))
  flipped = kernel[::-1, ::-1]  # a convolution (the filter is symmetric anyway)
  for i in range(out.shape[0]):
    for j in range(out.shape[1]):
      out[i, j] = np.sum(padded[i : i + k, j : j + k] * flipped)
  return out[::down, ::down]


def _per_map(fn, x):
  return np.stack(
    [np.stack([fn(x[n, :, :, c]) for c in range(x.shape[3])], -1) for n in range(x.shape[0])]
  )


def test_resamplers_match_upfirdn_with_the_121_filter():
  x = np.random.default_rng(0).standard_normal((2, 8, 6, 3))
  up, down = r3gan.upsample(jnp.asarray(x)), r3gan.downsample(jnp.asarray(x))
  assert up.shape == (2, 16, 12, 3) and down.shape == (2, 4, 3, 3)
  np.testing.assert_allclose(up, _per_map(lambda m: _upfirdn_numpy(m, 2, 1), x), atol=1e-5)
  np.testing.assert_allclose(down, _per_map(lambda m: _upfirdn_numpy(m, 1, 2), x), atol=1e-5)


def test_resamplers_keep_a_constant_image_away_from_the_zero_padded_border():
  x = jnp.full((1, 8, 8, 2), 3.0)
  down = np.asarray(r3gan.downsample(x))
  np.testing.assert_allclose(down[:, 1:-1, 1:-1], 3.0, rtol=1e-6)
  # On the border row, the filter's outer tap (1/8) falls on the zero padding.
  np.testing.assert_allclose(down[:, 0, 1:-1], 3.0 * 7 / 8, rtol=1e-6)
  np.testing.assert_allclose(down[:, 0, 0], 3.0 * (7 / 8) ** 2, rtol=1e-6)
  up = np.asarray(r3gan.upsample(x))
  np.testing.assert_allclose(up[:, 1:-1, 1:-1], 3.0, rtol=1e-6)
  np.testing.assert_allclose(up[:, 0, 1:-1], 3.0 * 3 / 4, rtol=1e-6)


def _filter_axis(x, taps, axis):
  """x correlated with 3 `taps` along `axis`, zero-padded."""
  pad = [(0, 0)] * x.ndim
  pad[axis] = (1, 1)
  padded, n = np.pad(x, pad), x.shape[axis]
  return sum(t * np.take(padded, range(s, s + n), axis) for s, t in enumerate(taps))


def test_downsampling_an_upsampled_image_low_passes_it():
  """down(up(x)) is x filtered with [3, 10, 3] / 16 per axis away from the border (the filter
  [1, 3, 3, 1] / 8 against its 2x-upsampled self): a constant passes, and a checkerboard (the
  highest frequency) keeps a quarter of its amplitude per axis."""
  interior = (slice(None), slice(1, -1), slice(1, -1))
  checker = (-1.0) ** np.add.outer(np.arange(8), np.arange(8))[None, :, :, None]
  smooth = np.random.default_rng(1).standard_normal((1, 8, 8, 1))
  for x in (checker, smooth, np.ones_like(smooth)):
    y = np.asarray(r3gan.downsample(r3gan.upsample(jnp.asarray(x, jnp.float32))))
    want = _filter_axis(_filter_axis(x, np.array([3, 10, 3]) / 16, 1), np.array([3, 10, 3]) / 16, 2)
    np.testing.assert_allclose(y[interior], want[interior], atol=1e-5)
  y = np.asarray(r3gan.downsample(r3gan.upsample(jnp.asarray(checker, jnp.float32))))
  np.testing.assert_allclose(y[interior], checker[interior] / 16, atol=1e-6)


# --- convolutions, blocks, bases -------------------------------------------------------------


def test_grouped_conv_equals_the_block_diagonal_dense_conv():
  """Both forms, XLA's grouped conv (GPU, TPU) and a dense conv per group (CPU), and gradients."""
  rng = np.random.default_rng(0)
  groups, cin, cout = 3, 6, 9
  x = jnp.asarray(rng.standard_normal((2, 5, 5, cin)), jnp.float32)
  kernel = jnp.asarray(rng.standard_normal((3, 3, cin // groups, cout)), jnp.float32)
  r = jnp.asarray(rng.standard_normal((2, 5, 5, cout)), jnp.float32)
  gi, go = cin // groups, cout // groups
  dense = jnp.zeros((3, 3, cin, cout))
  for g in range(groups):
    block = kernel[..., g * go : (g + 1) * go]
    dense = dense.at[:, :, g * gi : (g + 1) * gi, g * go : (g + 1) * go].set(block)

  def dense_conv(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME', dimension_numbers=_DN)

  want = dense_conv(x, dense)
  # The dense kernel's gradient, on the block diagonal, is the grouped kernel's.
  want_gx, want_gk = jax.grad(lambda x, k: jnp.sum(dense_conv(x, k) * r), (0, 1))(x, dense)
  want_gk = jnp.concatenate(
    [want_gk[:, :, g * gi : (g + 1) * gi, g * go : (g + 1) * go] for g in range(groups)], -1
  )

  for conv in (r3gan.grouped_conv, r3gan.grouped_conv_split, r3gan.grouped_conv_xla):
    np.testing.assert_allclose(conv(x, kernel, groups), want, atol=1e-5)
    gx, gk = jax.grad(lambda x, k, c=conv: jnp.sum(c(x, k, groups) * r), (0, 1))(x, kernel)
    np.testing.assert_allclose(gx, want_gx, atol=1e-4)
    np.testing.assert_allclose(gk, want_gk, atol=1e-4)


def _block_setup(width=8, cardinality=4, expansion=2, total=5):
  block = r3gan.ResidualBlock(cardinality, expansion, 3, total)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 6, width))
  return block, block.init(jax.random.PRNGKey(0), x), x


def _block_reference(p, x, cardinality):
  """A residual block written out: 1x1 conv, bias, leaky ReLU, grouped conv, bias, leaky ReLU,
  1x1 conv, plus x."""
  y = _leaky(x @ p['conv1']['kernel'] + p['act1']['bias'])
  y = jax.lax.conv_general_dilated(
    y, p['conv2'], (1, 1), 'SAME', dimension_numbers=_DN, feature_group_count=cardinality
  )
  y = _leaky(y + p['act2']['bias'])
  return x + y @ p['conv3']['kernel']


def test_a_block_is_its_textbook_form():
  block, variables, x = _block_setup()
  p = _random(variables)['params']
  want = _block_reference(p, x, 4)
  np.testing.assert_allclose(block.apply({'params': p}, x), want, rtol=1e-5, atol=1e-5)


def test_a_block_starts_as_the_identity_with_variance_scaled_kernels():
  total = 5
  block, variables, x = _block_setup(width=32, cardinality=8, expansion=2, total=total)
  assert np.array_equal(block.apply(variables, x), x)
  p = variables['params']
  assert not np.any(p['conv3']['kernel'])
  # N(0, gain**2 / fan_in), gain = leaky ReLU's * total**(-1/4): kernels of 4096 and 2304
  # draws, whose sample stds are within a few percent of the target.
  gain = math.sqrt(2 / 1.04) * total**-0.25
  np.testing.assert_allclose(np.std(p['conv1']['kernel']), gain / math.sqrt(32), rtol=0.06)
  fan_in = 3 * 3 * 64 // 8  # a group's inputs only
  np.testing.assert_allclose(np.std(p['conv2']), gain / math.sqrt(fan_in), rtol=0.06)


def test_the_generative_basis_scales_a_learned_4x4_map_per_channel():
  basis = r3gan.GenerativeBasis(5)
  z = jax.random.normal(jax.random.PRNGKey(1), (3, 7))
  p = _random(basis.init(jax.random.PRNGKey(0), z))['params']
  want = p['basis'][None] * (z @ p['linear']['kernel'])[:, None, None, :]
  np.testing.assert_allclose(basis.apply({'params': p}, z), want, rtol=1e-5)


def test_the_discriminative_basis_is_a_depthwise_4x4_conv_then_linear():
  basis = r3gan.DiscriminativeBasis(2)
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 4, 4, 5))
  p = _random(basis.init(jax.random.PRNGKey(0), x))['params']
  kernel = p['basis'][:, :, None, :]  # (4, 4, 1, C): one filter per channel
  depthwise = jax.lax.conv_general_dilated(
    x, kernel, (1, 1), 'VALID', dimension_numbers=_DN, feature_group_count=5
  )
  h, out = basis.apply({'params': p}, x)
  np.testing.assert_allclose(h, depthwise[:, 0, 0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(out, h @ p['linear']['kernel'], rtol=1e-5, atol=1e-5)


# --- the networks ------------------------------------------------------------------------------


def _shapes(variables) -> dict[str, tuple[int, ...]]:
  return {
    jax.tree_util.keystr(p): a.shape for p, a in jax.tree_util.tree_leaves_with_path(variables)
  }


def _live(module, *args, seed=0, **kwargs):
  """Variables for `module` at realistic magnitudes with no term left at zero, drawn on the
  host from the shapes alone (compiling flax's initialisers costs more than the tests): every
  kernel N(0, 1 / fan_in), the blocks' last convs too; biases N(0, 0.01)."""
  rng = np.random.default_rng(seed)

  def draw(path, a):
    std = 0.1 if 'bias' in jax.tree_util.keystr(path) else 1 / math.sqrt(np.prod(a.shape[:-1]))
    return jnp.asarray(std * rng.standard_normal(a.shape), a.dtype)

  shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args, **kwargs))
  return jax.tree_util.tree_map_with_path(draw, shapes)


@pytest.mark.parametrize('channels, conditional', [(1, False), (3, False), (1, True), (3, True)])
def test_networks_make_and_judge_32px_images(channels, conditional):
  """Shapes and dtypes, traced only (the tests below compute)."""
  config = _config(conditional=conditional)
  g, d = models.create(config.model, (32, 32, channels), 10 if conditional else 0)
  z = jnp.zeros((3, 6))
  labels = {'labels': jnp.array([0, 4, 9])} if conditional else {}
  g_vars = jax.eval_shape(g.init, jax.random.PRNGKey(0), z, **labels)
  images = jax.eval_shape(g.apply, g_vars, z, **labels)
  assert images.shape == (3, 32, 32, channels) and images.dtype == jnp.float32
  d_vars = jax.eval_shape(d.init, jax.random.PRNGKey(0), images, **labels)
  logits = jax.eval_shape(d.apply, d_vars, images, **labels)
  assert logits.shape == (3,) and logits.dtype == jnp.float32
  # No normalisation layer: parameters only, none of a norm's kinds.
  assert set(g_vars) == {'params'} and set(d_vars) == {'params'}
  names = set(_shapes(g_vars)) | set(_shapes(d_vars))
  assert not [n for n in names if any(s in n.lower() for s in ('norm', 'scale', 'mean', 'var'))]


def test_the_keys_make_the_stages_blocks_and_transitions_they_name():
  """G's stages from 4x4 up, D's the same in reverse: blocks per stage, grouped kernels of
  hidden / cardinality inputs, a 1x1 conv only where the width changes (on the smaller map)."""
  config = _config(blocks=(2, 1, 1, 3), expansion=3)
  g, d = models.create(config.model, (32, 32, 3))
  g_shapes = _shapes(jax.eval_shape(g.init, jax.random.PRNGKey(0), jnp.zeros((1, 6))))
  d_shapes = _shapes(jax.eval_shape(d.init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3))))
  conv2 = "['params']['stage{}_block{}']['conv2']"
  for i, (w, c, n) in enumerate(zip((8, 8, 4, 6), (2, 4, 1, 3), (2, 1, 1, 3), strict=True)):
    for j in range(n):
      assert g_shapes[conv2.format(i, j)] == (3, 3, 3 * w // c, 3 * w)
      assert d_shapes[conv2.format(3 - i, j)] == (3, 3, 3 * w // c, 3 * w)
    assert conv2.format(i, n) not in g_shapes and conv2.format(3 - i, n) not in d_shapes
  assert {k: v for k, v in g_shapes.items() if 'transition' in k} == {
    "['params']['transition2']['kernel']": (8, 4),
    "['params']['transition3']['kernel']": (4, 6),
  }
  assert {k: v for k, v in d_shapes.items() if 'transition' in k} == {
    "['params']['transition0']['kernel']": (6, 4),
    "['params']['transition1']['kernel']": (4, 8),
  }
  assert g_shapes["['params']['basis']['basis']"] == (4, 4, 8)
  assert g_shapes["['params']['out']['kernel']"] == (6, 3)
  assert d_shapes["['params']['extract']['kernel']"] == (3, 6)
  assert d_shapes["['params']['basis']['basis']"] == (4, 4, 8)
  assert d_shapes["['params']['basis']['linear']['kernel']"] == (8, 1)


def test_infogan_codes_enter_g_as_classes_and_d_gets_a_code_head():
  config = _config(latent_classes=3, latent_continuous=2)
  g, d = models.create(config.model, (32, 32, 3))
  z, codes = jnp.zeros((5, 6)), jnp.zeros((5,), jnp.int32)
  g_vars = jax.eval_shape(g.init, jax.random.PRNGKey(0), z, labels=codes)
  assert g_vars['params']['embed']['embedding'].shape == (3, 6)  # model.latent_dim wide
  images = jax.eval_shape(g.apply, g_vars, z, labels=codes)
  d_vars = jax.eval_shape(d.init, jax.random.PRNGKey(0), images)
  logits, code_outputs = jax.eval_shape(d.apply, d_vars, images)
  assert logits.shape == (5,) and code_outputs.shape == (5, 3 + 2)


def _g_reference(p, z, labels):
  """G with TINY's keys, conditional, written out from the pieces (each checked above)."""
  widths, cards, blocks = TINY['widths'], TINY['cardinalities'], TINY['blocks']
  x = jnp.concatenate([z, p['embed']['embedding'][labels]], -1)  # the class embedding
  x = p['basis']['basis'] * (x @ p['basis']['linear']['kernel'])[:, None, None, :]
  for i, (w, c, n) in enumerate(zip(widths, cards, blocks, strict=True)):
    if i:
      if w != widths[i - 1]:
        x = x @ p[f'transition{i}']['kernel']
      x = r3gan.upsample(x)
    for j in range(n):
      x = _block_reference(p[f'stage{i}_block{j}'], x, c)
  return x @ p['out']['kernel']


def _d_reference(p, x, labels=None):
  """D with TINY's keys, written out: G's stages reversed; conditional, a projection D."""
  widths, cards, blocks = (TINY[k][::-1] for k in ('widths', 'cardinalities', 'blocks'))
  x = x @ p['extract']['kernel']
  for i, (w, c, n) in enumerate(zip(widths, cards, blocks, strict=True)):
    for j in range(n):
      x = _block_reference(p[f'stage{i}_block{j}'], x, c)
    if i + 1 < len(widths):
      x = r3gan.downsample(x)
      if w != widths[i + 1]:
        x = x @ p[f'transition{i}']['kernel']
  h = jnp.sum(x * p['basis']['basis'], axis=(1, 2))  # the 4x4 depthwise conv, no padding
  out = h @ p['basis']['linear']['kernel']
  if labels is None:
    return out[:, 0]
  return jnp.sum(out * p['embed']['embedding'][labels], -1)


def test_the_networks_are_their_pieces_composed():
  """Stages in order, 1x1 convs where the width changes, the class embedding concatenated to z
  in G and projected on in D; and nothing else: no normalisation, no example depending on the
  others in its batch (the references compute each alone)."""
  g, d = models.create(
    _config(conditional=True, g_embed_dim=5, d_embed_dim=7).model, (32, 32, 3), 4
  )
  z, labels = jax.random.normal(jax.random.PRNGKey(0), (3, 6)), jnp.array([2, 0, 2])
  g_vars = _live(g, z, labels=labels)
  images = jax.jit(g.apply)(g_vars, z, labels=labels)
  want = jax.jit(_g_reference)(g_vars['params'], z, labels)
  np.testing.assert_allclose(images, want, rtol=1e-4, atol=1e-4 * float(jnp.abs(want).max()))
  d_vars = _live(d, images, labels=labels, seed=1)
  assert d_vars['params']['embed']['embedding'].shape == (4, 7)
  logits = jax.jit(d.apply)(d_vars, images, labels=labels)
  want = jax.jit(_d_reference)(d_vars['params'], images, labels)
  np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-4 * float(jnp.abs(want).max()))
  d = models.create(_config().model, (32, 32, 3))[1]  # unconditional: one logit from the basis
  d_vars = _live(d, images, seed=2)
  logits, want = jax.jit(d.apply)(d_vars, images), jax.jit(_d_reference)(d_vars['params'], images)
  np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-4 * float(jnp.abs(want).max()))


def test_bfloat16_stages_keep_float32_params_and_outputs():
  assert r3gan.stage_dtypes(4, 3) == (
    ['float32'] + ['bfloat16'] * 3,
    ['bfloat16'] * 3 + ['float32'],
  )
  # 16 px: three stages, the last two of G's and the first two of D's in bfloat16.
  kw = dict(widths=(8, 4, 6), cardinalities=(4, 1, 3), blocks=(1, 1, 1))
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 6))
  g32, g16 = (r3gan.Generator(bf16_stages=n, **kw) for n in (0, 2))
  g_vars = _live(g16, z)
  assert {leaf.dtype for leaf in jax.tree.leaves(g_vars)} == {np.dtype(np.float32)}
  x32, x16 = jax.jit(g32.apply)(g_vars, z), jax.jit(g16.apply)(g_vars, z)
  # bfloat16 keeps 8 significant bits: errors of a few percent of the scale, not zero.
  assert x16.dtype == jnp.float32 and float(jnp.abs(x16 - x32).max()) > 0
  np.testing.assert_allclose(x16, x32, atol=0.03 * float(jnp.abs(x32).max()))
  d32, d16 = (r3gan.Discriminator(bf16_stages=n, **kw) for n in (0, 2))
  d_vars = _live(d16, x32, seed=1)
  assert {leaf.dtype for leaf in jax.tree.leaves(d_vars)} == {np.dtype(np.float32)}
  l32, l16 = jax.jit(d32.apply)(d_vars, x32), jax.jit(d16.apply)(d_vars, x32)
  assert l16.dtype == jnp.float32 and float(jnp.abs(l16 - l32).max()) > 0
  np.testing.assert_allclose(l16, l32, atol=0.03 * float(jnp.abs(l32).max()))
  # The family computes in float32 on the CPU whatever model.bf16_stages says.
  if jax.default_backend() == 'cpu':
    g, d = models.create(_config(bf16_stages=3).model, (32, 32, 3))
    assert g.bf16_stages == d.bf16_stages == 0


@pytest.mark.parametrize(
  'overrides, shape, message',
  [
    (dict(), (28, 28, 1), r'4 stages, which make 32x32 images .* are 28x28'),
    (dict(blocks=(1, 1, 1)), (32, 32, 3), r'model.blocks needs one entry per stage'),
    (dict(cardinalities=(2, 4, 3, 3)), (32, 32, 3), r'width 4 has 8 hidden .* into 3 groups'),
  ],
)
def test_bad_shapes_are_config_errors(overrides, shape, message):
  with pytest.raises(ConfigError, match=message):
    models.create(_config(**overrides).model, shape)


def test_the_presets_are_valid_model_sections_for_their_sides():
  sides = dict(cifar10=32, ffhq64=64, ffhq256=256, imagenet32=32, imagenet64=64)
  assert set(sides) == set(r3gan.PRESETS)
  for name, side in sides.items():
    config = _config(**r3gan.PRESETS[name])
    r3gan.check_image_shape(config.model, (side, side, 3))
    for key, value in r3gan.PRESETS[name].items():
      schema = r3gan.SCHEMA.get(key) or gan_lib.hyperparameters()[f'model.{key}'][1]
      assert schema.check(value) is None, (name, key)


def test_the_family_trains_through_jaxgan():
  """A few fused train steps of a conditional tiny R3GAN: finite losses, both networks move.
  One grouped stage only: on the CPU each costs a second of compilation."""
  config = _config(conditional=True, cardinalities=(1, 1, 1, 3))
  config.num_steps = 2
  config.data.num_classes = 10
  config.optim.b1 = 0.0  # the paper's Adam
  gan = gan_lib.from_config(config, (32, 32, 1))
  state = jax.jit(lambda key: init_state(gan, key, (32, 32, 1)))(jax.random.PRNGKey(0))
  rng = np.random.default_rng(1)
  images = jnp.asarray(rng.uniform(-1, 1, (1, 8, 32, 32, 1)), jnp.float32)
  batch = Batch(images, jnp.asarray(rng.integers(0, 10, (1, 8)), jnp.int32))
  step = jax.jit(lambda s, b: steps.train_step(gan, s, b))
  new = state
  for _ in range(2):
    new, metrics = step(new, batch)
    assert np.isfinite(float(metrics['d_loss'])) and np.isfinite(float(metrics['g_loss']))
  for a, b in ((state.g_params, new.g_params), (state.d_params, new.d_params)):
    assert all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.all(jnp.isfinite(y))), a, b)))
    assert any(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.any(x != y)), a, b)))
