"""StyleGAN2's pieces equal their textbook definitions (numpy references written here), its
networks have the shapes they should at 32 and 64 px, and the family trains through jaxgan.
Tiny widths: the file runs in seconds."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import gan as gan_lib
from jaxgan import models, steps
from jaxgan.batch import Batch
from jaxgan.errors import ConfigError
from jaxgan.models import stylegan2 as sg
from jaxgan.models import upfirdn
from jaxgan.state import init_state

F = np.array([1, 3, 3, 1], np.float64) / 8
TINY = dict(w_dim=8, mapping_layers=2, channel_base=64, channel_max=8)


def _rng(seed=0):
  return np.random.default_rng(seed)


def _normal(shape, seed=0):
  return _rng(seed).standard_normal(shape).astype(np.float32)


def _variables(module, *args, seed=0, **kwargs):
  """Variables for `module` with every one drawn at random (w_avg, biases and noise strengths
  too, so that no zero hides a term), on the host from the shapes alone: flax's initialisers,
  compiled shape by shape, would cost more than the tests."""
  rngs = {'params': jax.random.PRNGKey(0)}
  shapes = jax.eval_shape(functools.partial(module.init, **kwargs), rngs, *args)
  rng = _rng(seed)

  def draw(path, a):
    # The mapping layers' stored weights are N(0, 1) / lr_mult, as flax initialises them.
    name = jax.tree_util.keystr(path)
    scale = 100.0 if "['mapping']['fc" in name and name.endswith("['kernel']") else 1.0
    return (scale * rng.standard_normal(a.shape)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _jit(fn, *args):
  """fn(*args), compiled as one program."""
  return jax.jit(fn)(*args)


def _apply(module, variables, *args, rngs=None, **kwargs):
  """module.apply, compiled (one program compiles faster than its ops run one by one), the
  arrays and RNG keys as arguments."""
  return jax.jit(lambda v, r, *a: module.apply(v, *a, rngs=r, **kwargs))(variables, rngs, *args)


# --- numpy references -------------------------------------------------------------------------


def np_upfirdn2d(x, f, up=1, down=1, pad=(0, 0), gain=1.0):
  """upfirdn2d as defined: insert up - 1 zeros after each sample, pad (negative: crop),
  convolve with the 2-D filter outer(f, f) * gain, keep every down-th sample."""
  n, h, w, c = x.shape
  u = np.zeros((n, h * up, w * up, c))
  u[:, ::up, ::up] = x
  p0, p1 = pad
  u = np.pad(u, ((0, 0), (max(p0, 0), max(p1, 0)), (max(p0, 0), max(p1, 0)), (0, 0)))
  u = u[:, max(-p0, 0) : u.shape[1] - max(-p1, 0), max(-p0, 0) : u.shape[2] - max(-p1, 0)]
  k = np.outer(f, f)[::-1, ::-1] * gain  # convolution: the flipped filter, correlated
  t = len(f)
  out = np.zeros((n, u.shape[1] - t + 1, u.shape[2] - t + 1, c))
  for a in range(t):
    for b in range(t):
      out += k[a, b] * u[:, a : a + out.shape[1], b : b + out.shape[2]]
  return out[:, ::down, ::down]


def np_correlate(x, w, stride=1):
  """Valid correlation of x (N, H, W, I) with w (k, k, I, O), with a stride."""
  k = w.shape[0]
  h = (x.shape[1] - k) // stride + 1
  out = np.zeros((x.shape[0], h, h, w.shape[3]))
  for a in range(k):
    for b in range(k):
      patch = x[:, a : a + stride * (h - 1) + 1 : stride, b : b + stride * (h - 1) + 1 : stride]
      out += patch @ w[a, b]
  return out


def _same(x, k):
  p = k // 2
  return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


# --- FIR resampling ---------------------------------------------------------------------------


@pytest.mark.parametrize(
  'up, down, pad, gain',
  [(1, 1, (1, 2), 1.0), (2, 1, (2, 1), 4.0), (1, 2, (1, 1), 1.0), (2, 2, (-1, 3), 2.0)],
)
def test_upfirdn2d_matches_its_definition(up, down, pad, gain):
  x = _normal((2, 6, 6, 3))
  got = _jit(lambda x: upfirdn.upfirdn2d(x, upfirdn.setup_filter(), up, down, pad, gain), x)
  np.testing.assert_allclose(got, np_upfirdn2d(x, F, up, down, pad, gain), rtol=1e-5, atol=1e-5)


def test_up_and_downsampling_keep_a_constant_and_halve_or_double_the_size():
  x = _normal((1, 8, 8, 2))
  f = upfirdn.setup_filter()
  up, down = _jit(lambda x: (upfirdn.upsample2d(x, f), upfirdn.downsample2d(x, f)), x)
  np.testing.assert_allclose(up, np_upfirdn2d(x, F, up=2, pad=(2, 1), gain=4), atol=1e-5)
  np.testing.assert_allclose(down, np_upfirdn2d(x, F, down=2, pad=(1, 1)), atol=1e-5)
  # Away from the zero padding, a constant stays the same constant.
  up, down = _jit(lambda x: (upfirdn.upsample2d(x, f), upfirdn.downsample2d(x, f)), np.ones_like(x))
  np.testing.assert_allclose(up[0, 2:-2, 2:-2], 1.0, atol=1e-6)
  np.testing.assert_allclose(down[0, 1:-1, 1:-1], 1.0, atol=1e-6)


def test_resampling_convs_are_the_filter_and_a_direct_convolution():
  """Upsampling: upfirdn2d (zeros, filter times 4), then a true convolution with the kernel;
  downsampling: the filter, then a stride-2 correlation (stylegan2-ada-pytorch's
  conv2d_resample, its padding for a 3x3 kernel)."""
  x, w = _normal((2, 5, 5, 3)), _normal((3, 3, 3, 4), 1)
  f = upfirdn.setup_filter()
  up = _jit(lambda x, w: upfirdn.upsample_conv2d(x, w, f), x, w)
  want = np_correlate(np_upfirdn2d(x, F, up=2, pad=(3, 2), gain=4), w[::-1, ::-1])
  assert up.shape == (2, 10, 10, 4)
  np.testing.assert_allclose(up, want, rtol=1e-4, atol=1e-4)
  x = _normal((2, 8, 8, 3))
  down = _jit(lambda x, w: upfirdn.conv2d_downsample(x, w, f), x, w)
  want = np_correlate(np_upfirdn2d(x, F, pad=(2, 2)), w, stride=2)
  np.testing.assert_allclose(down, want, rtol=1e-4, atol=1e-4)
  w1 = w[1:2, 1:2]
  down1 = _jit(lambda x, w: upfirdn.conv2d_downsample(x, w, f), x, w1)
  np.testing.assert_allclose(down1, np_upfirdn2d(x, F, 1, 2, (1, 1)) @ w1[0, 0], atol=1e-4)


_F32 = upfirdn.setup_filter()
_RESAMPLING = {  # name: (what the networks run, the textbook form)
  'up': (
    lambda x, w: upfirdn.upsample_conv2d(x, w, _F32),
    lambda x, w: upfirdn.upsample_conv2d_reference(x, w, _F32),
  ),
  'down': (
    lambda x, w: upfirdn.conv2d_downsample(x, w, _F32),
    lambda x, w: upfirdn.conv2d_downsample_reference(x, w, _F32),
  ),
  'down 1x1': (
    lambda x, w: upfirdn.conv2d_downsample(x, w[1:2, 1:2], _F32),
    lambda x, w: upfirdn.conv2d_downsample_reference(x, w[1:2, 1:2], _F32),
  ),
  'same': (upfirdn.conv2d, upfirdn.conv2d_reference),
}


@pytest.mark.parametrize('op', list(_RESAMPLING))
def test_fast_convs_equal_the_textbook_ones_with_gradients_and_r1s(op):
  """The forms the networks run on CPU (stride-2 products with custom VJPs, jaxgan.convs) and
  XLA's convolutions differentiated by JAX: outputs, both gradients, and the kernel gradient
  of the squared input gradient (R1's double backward)."""
  assert jax.default_backend() == 'cpu'  # where the fast forms are used
  x, w = _normal((2, 8, 8, 5)), _normal((3, 3, 5, 6), 1)

  def parts(fn):
    def r1(w):
      g = jax.grad(lambda x: jnp.sum(jnp.sin(fn(x, w))))(x)
      return jnp.sum(jnp.square(g))

    y, vjp = jax.vjp(fn, x, w)
    dy = jnp.cos(y)  # any cotangent with no symmetry to hide a misplaced tap
    return (y, *vjp(dy), jax.grad(r1)(w))

  got, want = (
    _jit(lambda x, w: parts(_RESAMPLING[op][0]), x, w),
    _jit(lambda x, w: parts(_RESAMPLING[op][1]), x, w),
  )
  for a, b, name in zip(
    got, want, ('output', 'input grad', 'kernel grad', 'R1 kernel grad'), strict=True
  ):
    scale = float(jnp.max(jnp.abs(b)))
    np.testing.assert_allclose(a, b, atol=1e-4 * scale, rtol=0, err_msg=name)


# --- layers -----------------------------------------------------------------------------------


@pytest.mark.parametrize('up', [False, True])
def test_modulated_conv_is_a_per_image_conv_with_demodulated_weights(up):
  x, kernel, styles = _normal((3, 4, 4, 5)), _normal((3, 3, 5, 6), 1), _normal((3, 5), 2)
  got = _jit(lambda *a: sg.modulated_conv(*a, up), x, kernel, styles)
  for n in range(3):
    w = kernel * styles[n][None, None, :, None]
    w = w / np.sqrt(np.sum(w**2, axis=(0, 1, 2)) + 1e-8)
    if up:
      want = np_correlate(np_upfirdn2d(x[n : n + 1], F, up=2, pad=(3, 2), gain=4), w[::-1, ::-1])
    else:
      want = np_correlate(_same(x[n : n + 1], 3), w)
    np.testing.assert_allclose(got[n : n + 1], want, rtol=1e-4, atol=1e-4)


def test_demodulation_makes_the_output_independent_of_the_style_scale():
  x, kernel, styles = _normal((2, 6, 6, 8)), _normal((3, 3, 8, 16), 1), _normal((2, 8), 2)

  def conv(s, demodulate):
    return sg.modulated_conv(jnp.asarray(x), jnp.asarray(kernel), s, demodulate=demodulate)

  base, scaled, plain, plain_scaled = _jit(
    lambda s: (conv(s, True), conv(7 * s, True), conv(s, False), conv(7 * s, False)), styles
  )
  np.testing.assert_allclose(scaled, base, rtol=1e-4, atol=1e-5)
  # Each output channel has about unit std for unit-variance inputs (the point of it).
  assert 0.6 < float(base.std(axis=(1, 2)).mean()) < 1.4
  np.testing.assert_allclose(plain_scaled, 7.0 * plain, rtol=1e-4, atol=1e-4)


def test_equalized_lr_scales_the_stored_weights_at_run_time():
  """Effective weight = stored * lr_mult / sqrt(fan_in) (dense; bias * lr_mult), and
  stored / sqrt(k * k * in) (conv); stored weights start at N(0, 1) / lr_mult."""
  layer = sg.Dense(40, act=False, lr_mult=0.01, bias_init=3.0)
  v = layer.init(jax.random.PRNGKey(0), jnp.zeros((1, 60)))
  kernel, bias = v['params']['kernel'], v['params']['bias']
  assert 0.9 < float(kernel.std()) * 0.01 < 1.1
  np.testing.assert_allclose(bias, 3.0)
  y = layer.apply(v, jnp.eye(60))  # row i: the effective weights of input i, plus the bias
  np.testing.assert_allclose(y, kernel * 0.01 / np.sqrt(60) + 0.03, rtol=1e-5, atol=1e-7)
  # With the activation: leaky ReLU (0.2) times sqrt(2).
  act = sg.Dense(40, act=True, lr_mult=0.01)
  pre = np.asarray(jnp.eye(60) @ (kernel * 0.01 / np.sqrt(60))) + 0.03
  want = np.where(pre > 0, pre, 0.2 * pre) * np.sqrt(2)
  np.testing.assert_allclose(act.apply(v, jnp.eye(60)), want, rtol=1e-5, atol=1e-7)
  conv = sg.Conv(6, kernel_size=3, use_bias=False, act=False)
  v = conv.init(jax.random.PRNGKey(1), jnp.zeros((1, 5, 5, 4)))
  x = np.zeros((4, 5, 5, 4), np.float32)
  x[np.arange(4), 2, 2, np.arange(4)] = 1  # one unit impulse per input channel
  got = conv.apply(v, jnp.asarray(x))[:, 1:4, 1:4]  # (in, 3, 3, out): the kernel, flipped
  want = np.asarray(v['params']['kernel']).transpose(2, 0, 1, 3)[:, ::-1, ::-1] / np.sqrt(36)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def np_minibatch_std(x, group, channels):
  """stylegan2-ada's formula, in NHWC: std over groups of images i, i + N/G, ..., averaged
  over each of `channels` slices of the features and over positions."""
  n, h, w, c = x.shape
  g = min(group, n)
  y = x.reshape(g, n // g, h, w, channels, c // channels)
  y = np.sqrt(((y - y.mean(0)) ** 2).mean(0) + 1e-8).mean(axis=(1, 2, 4))  # (n / g, F)
  stds = np.tile(y, (g, 1))
  return np.concatenate([x, np.broadcast_to(stds[:, None, None], (n, h, w, channels))], -1)


@pytest.mark.parametrize('group, channels', [(4, 1), (2, 2), (8, 4)])
def test_minibatch_std_matches_the_formula(group, channels):
  x = _normal((8, 3, 3, 8)) * np.arange(1, 9, dtype=np.float32)[:, None, None, None]
  got = sg.minibatch_std(jnp.asarray(x), group, channels)
  np.testing.assert_allclose(got, np_minibatch_std(x, group, channels), rtol=1e-5)


# --- mapping, w_avg, truncation ---------------------------------------------------------------


def _mapping_ref(params, z, labels, num_classes, lr=0.01):
  def dense(p, x, m=1.0, act=True):
    y = x @ (np.asarray(p['kernel']) * m / np.sqrt(x.shape[-1])) + np.asarray(p['bias']) * m
    return np.where(y > 0, y, 0.2 * y) * np.sqrt(2) if act else y

  def norm(x):
    return x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-8)

  parts = [] if z is None else [norm(z)]
  if num_classes:
    parts.append(norm(dense(params['embed'], np.eye(num_classes)[labels], act=False)))
  x = np.concatenate(parts, axis=1)
  i = 0
  while f'fc{i}' in params:
    x = dense(params[f'fc{i}'], x, lr)
    i += 1
  return x


@functools.cache
def _g(num_classes=0):
  """A 16 px G (6 ws), its variables (w_avg random) and inputs."""
  g = sg.Generator((16, 16, 3), num_classes=num_classes, **TINY)
  z = jnp.asarray(_normal((4, 16), 3))
  labels = jnp.arange(4) % num_classes if num_classes else None
  return g, _variables(g, z, train=False, labels=labels), z, labels


def _w_avg(v):
  return v['buffers']['mapping']['w_avg']


@pytest.mark.parametrize('num_classes', [0, 3])
def test_mapping_network_is_normalisation_then_dense_layers(num_classes):
  g, v, z, labels = _g(num_classes)
  ws = g.apply(v, z, labels=labels, train=False, method='map')
  assert ws.shape == (4, g.num_ws, 8) == (4, 6, 8)  # 16 px: 2 * 4 - 2 ws
  want = _mapping_ref(v['params']['mapping'], np.asarray(z), labels, num_classes)
  for i in range(g.num_ws):
    np.testing.assert_allclose(ws[:, i], want, rtol=1e-4, atol=1e-5)


def test_w_avg_moves_with_decay_0995_only_in_training():
  g, v, z, _ = _g()
  w = g.apply(v, z, train=False, method='map')[:, 0]
  _, new = g.apply(v, z, train=True, method='map', mutable=['buffers'])
  want = 0.995 * _w_avg(v) + 0.005 * w.mean(axis=0)
  np.testing.assert_allclose(_w_avg(new), want, rtol=1e-5, atol=1e-6)
  _, same = g.apply(v, z, train=False, method='map', mutable=['buffers'])
  np.testing.assert_array_equal(_w_avg(same), _w_avg(v))
  # In training without the collection mutable (as in a penalty's G pass): no update, no error.
  g.apply(v, z, train=True, method='map')
  # At init, w_avg is zeros (not moved by init's own training-mode pass).
  init = g.init({'params': jax.random.PRNGKey(0)}, z, train=True, method='map')
  np.testing.assert_array_equal(_w_avg(init), 0)


def test_truncation_pulls_ws_to_w_avg():
  g, v, z, _ = _g()
  ws = g.apply(v, z, train=False, method='map')
  at0 = g.apply(v, z, train=False, truncation_psi=0.0, method='map')
  np.testing.assert_allclose(at0, jnp.broadcast_to(_w_avg(v), ws.shape), rtol=1e-6)
  traced = jax.jit(lambda psi: g.apply(v, z, train=False, truncation_psi=psi, method='map'))
  np.testing.assert_allclose(traced(0.0), at0, rtol=1e-6)  # psi an array, as under jit
  half = g.apply(v, z, train=False, truncation_psi=0.5, truncation_cutoff=3, method='map')
  np.testing.assert_allclose(half[:, :3], (_w_avg(v) + ws[:, :3]) / 2, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(half[:, 3:], ws[:, 3:])
  # psi = 0 through the whole G: every latent makes the same image (noise 'const').
  images = _apply(g, v, z, train=False, truncation_psi=0.0)
  np.testing.assert_allclose(images, jnp.broadcast_to(images[:1], images.shape), atol=1e-5)
  assert float(jnp.abs(images - _apply(g, v, z, train=False)).max()) > 1e-3


# --- blocks -----------------------------------------------------------------------------------


def _lrelu(x):
  return np.where(x > 0, x, 0.2 * x) * np.sqrt(2)


def np_dense(p, x):
  return x @ (np.asarray(p['kernel']) / np.sqrt(x.shape[-1])) + np.asarray(p['bias'])


def np_modulated(x, kernel, styles, up=False, demodulate=True):
  """Per image: the kernel scaled by the styles over its inputs, demodulated, then a 'same'
  correlation, or for `up` upfirdn2d (zeros, filter times 4) and a true convolution."""
  out = []
  for n in range(x.shape[0]):
    w = kernel * styles[n][None, None, :, None]
    if demodulate:
      w = w / np.sqrt(np.sum(w**2, axis=(0, 1, 2)) + 1e-8)
    xn = x[n : n + 1]
    if up:
      out.append(np_correlate(np_upfirdn2d(xn, F, up=2, pad=(3, 2), gain=4), w[::-1, ::-1]))
    else:
      out.append(np_correlate(_same(xn, w.shape[0]), w))
  return np.concatenate(out)


def np_synthesis_layer(p, noise, x, w, up, clamp):
  y = np_modulated(x, np.asarray(p['kernel']), np_dense(p['affine'], w), up)
  y = y + np.asarray(noise)[None, :, :, None] * float(p['noise_strength'])
  return np.clip(_lrelu(y + np.asarray(p['bias'])), -clamp, clamp)


def np_synthesis_block(p, buffers, x, img, ws, clamp):
  """conv0 (upsampling), conv1, each with its w, const noise, bias, lrelu, clamp; toRGB
  (styles / sqrt(fan_in), no demodulation, bias, clamp) added to the upsampled image."""
  x = np_synthesis_layer(p['conv0'], buffers['conv0']['noise_const'], x, ws[:, 0], True, clamp)
  x = np_synthesis_layer(p['conv1'], buffers['conv1']['noise_const'], x, ws[:, 1], False, clamp)
  t = p['torgb']
  styles = np_dense(t['affine'], ws[:, 2]) / np.sqrt(x.shape[-1])
  y = np_modulated(x, np.asarray(t['kernel']), styles, demodulate=False) + np.asarray(t['bias'])
  return x, np_upfirdn2d(img, F, up=2, pad=(2, 1), gain=4) + np.clip(y, -clamp, clamp)


def test_synthesis_block_is_the_textbook_composition():
  block = sg.SynthesisBlock(6, side=8, image_channels=3, conv_clamp=1.5)
  x, img, ws = _normal((2, 4, 4, 5), 1), _normal((2, 4, 4, 3), 2), _normal((2, 3, 7), 3)
  v = _variables(block, x, img, ws, noise_mode='const')
  got_x, got_img = _apply(block, v, x, img, ws, noise_mode='const')
  want_x, want_img = np_synthesis_block(v['params'], v['buffers'], x, img, ws, 1.5)
  assert np.abs(want_x).max() == 1.5  # the clamp is at work
  np.testing.assert_allclose(got_x, want_x, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(got_img, want_img, rtol=1e-4, atol=1e-4)


def test_synthesis_gives_each_layer_its_own_w():
  """b4 takes ws 0 (conv1) and 1 (toRGB); b8 ws 1, 2, 3; b16 ws 3, 4, 5 (conv0, conv1,
  toRGB): a block's toRGB shares its w with the next block's conv0."""
  g, v, z, _ = _g()
  ws = jnp.asarray(_normal((4, 6, 8), 5))
  got = _apply(g, v, ws, train=False, method='synthesize')
  params, buffers = v['params']['synthesis'], v['buffers']['synthesis']

  def block(side, *args):
    b = sg.SynthesisBlock(8 if side < 16 else 4, side, 3)
    return b.apply({'params': params[f'b{side}'], 'buffers': buffers[f'b{side}']}, *args, 'const')

  def blocks(ws):
    x, img = block(4, None, None, ws[:, 0:2])
    x, img = block(8, x, img, ws[:, 1:4])
    return block(16, x, img, ws[:, 3:6])[1]

  np.testing.assert_allclose(got, _jit(blocks, ws), rtol=1e-4, atol=1e-4)


def np_conv(p, x, act=True, gain=1.0, clamp=None, down=False):
  """D's layer: correlation with kernel / sqrt(fan_in) ('same'; `down`: the filter padded by
  2, then stride 2; 1x1: downsample2d first), bias, lrelu, times gain, clamp."""
  kernel = np.asarray(p['kernel'])
  k = kernel.shape[0]
  w = kernel / np.sqrt(k * k * x.shape[-1])
  if down and k == 1:
    y = np_upfirdn2d(x, F, down=2, pad=(1, 1)) @ w[0, 0]
  elif down:
    y = np_correlate(np_upfirdn2d(x, F, pad=(2, 2)), w, stride=2)
  else:
    y = np_correlate(_same(x, k), w)
  y = y + np.asarray(p.get('bias', 0.0))
  y = (_lrelu(y) if act else y) * gain
  return y if clamp is None else np.clip(y, -clamp * gain, clamp * gain)


@pytest.mark.parametrize('architecture', ['resnet', 'orig'])
def test_d_block_is_the_textbook_composition(architecture):
  block = sg.DiscriminatorBlock(5, 6, True, architecture, conv_clamp=0.8)
  x = _normal((2, 8, 8, 3), 1)
  v = _variables(block, x)
  got = _apply(block, v, x)
  p, clamp = v['params'], 0.8
  h = np_conv(p['fromrgb'], x, clamp=clamp)
  gain = np.sqrt(0.5) if architecture == 'resnet' else 1.0
  y = np_conv(p['conv1'], np_conv(p['conv0'], h, clamp=clamp), gain=gain, clamp=clamp, down=True)
  if architecture == 'resnet':
    y = y + np_conv(p['skip'], h, act=False, gain=gain, down=True)
  else:
    assert 'skip' not in p
  assert got.shape == (2, 4, 4, 6)
  np.testing.assert_allclose(got, y, rtol=1e-4, atol=1e-4)


def test_d_epilogue_is_the_textbook_composition():
  epilogue = sg.Epilogue(8, mbstd_group=2, mbstd_channels=2, conv_clamp=2.0)
  x = _normal((4, 4, 4, 8), 1)
  v = _variables(epilogue, x, None)
  got = _apply(epilogue, v, x, None)
  p = v['params']
  h = np_conv(p['conv'], np_minibatch_std(x, 2, 2), clamp=2.0)
  h = _lrelu(np_dense(p['fc'], h.reshape(4, -1)))  # NHWC order flattened
  np.testing.assert_allclose(got, np_dense(p['out'], h)[:, 0], rtol=1e-4, atol=1e-4)


# --- the networks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
  'side, channels, num_classes', [(32, 3, 0), (32, 1, 0), (64, 3, 0), (64, 1, 10), (32, 3, 10)]
)
def test_shapes(side, channels, num_classes):
  g = sg.Generator((side, side, channels), num_classes=num_classes, **TINY)
  d = sg.Discriminator(num_classes, channel_base=64, channel_max=8, mapping_layers=2)
  z, labels = jnp.zeros((4, 16)), (jnp.zeros((4,), jnp.int32) if num_classes else None)
  rngs = {'params': jax.random.PRNGKey(0), 'noise': jax.random.PRNGKey(1)}
  gv = jax.eval_shape(functools.partial(g.init, labels=labels), rngs, z)
  x = jax.eval_shape(functools.partial(g.apply, labels=labels, rngs=rngs), gv, z)
  assert x.shape == (4, side, side, channels) and x.dtype == jnp.float32
  dv = jax.eval_shape(functools.partial(d.init, labels=labels), rngs['params'], x)
  logits = jax.eval_shape(functools.partial(d.apply, labels=labels), dv, x)
  assert logits.shape == (4,) and logits.dtype == jnp.float32
  blocks = [f'b{2**i}' for i in range(2, int(np.log2(side)) + 1)]
  assert sorted(gv['params']['synthesis']) == sorted(blocks)
  assert sorted(dv['params']) == sorted(blocks + (['mapping'] if num_classes else []))
  assert ('embed' in gv['params']['mapping']) == bool(num_classes)
  # Widths min(channel_base // side, channel_max): 8 up to 8 px, then 64 // side.
  assert gv['params']['synthesis'][f'b{side}']['conv1']['kernel'].shape[-1] == 64 // side


def _with_strength(v, value):
  return jax.tree_util.tree_map_with_path(
    lambda p, a: jnp.full_like(a, value) if 'noise_strength' in jax.tree_util.keystr(p) else a, v
  )


def test_noise_modes():
  g, v, z, _ = _g()

  def run(v, noise_mode=None, key=None):
    rngs = None if key is None else {'noise': jax.random.PRNGKey(key)}
    return _apply(g, v, z, train=key is not None, noise_mode=noise_mode, rngs=rngs)

  const = run(v)  # evaluation's default: the fixed buffers
  np.testing.assert_array_equal(run(v, 'const'), const)
  one, two = run(v, key=1), run(v, key=2)  # training's default: drawn from the 'noise' stream
  assert float(jnp.abs(one - two).max()) > 1e-3 and float(jnp.abs(one - const).max()) > 1e-3
  np.testing.assert_array_equal(run(v, key=1), one)
  # 'none' is G without noise, which is G with zero strengths; the strengths do matter.
  np.testing.assert_allclose(run(v, 'none'), run(_with_strength(v, 0.0), 'const'), atol=1e-6)
  assert float(jnp.abs(run(v, 'none') - const).max()) > 1e-3


def test_style_mixing_through_map_and_synthesize():
  g, v, z, _ = _g()
  ws = g.apply(v, z, train=False, method='map')
  whole = _apply(g, v, z, train=False)
  np.testing.assert_allclose(_apply(g, v, ws, train=False, method='synthesize'), whole, atol=1e-5)
  other = g.apply(v, z[::-1], train=False, method='map')
  mixed = jnp.concatenate([ws[:, :3], other[:, 3:]], 1)
  mixed = _apply(g, v, mixed, train=False, method='synthesize')
  assert float(jnp.abs(mixed - whole).max()) > 1e-3


def test_conditional_d_projects_onto_the_mapped_class():
  """logit = <out(h), cmap(y)> / sqrt(cmap_dim), cmap from D's own mapping of the class."""
  d = sg.Discriminator(5, channel_base=64, channel_max=8, mapping_layers=2)
  x = jnp.asarray(_normal((4, 8, 8, 3)))
  labels = jnp.asarray([0, 1, 2, 4])
  v = _variables(d, x, labels=labels)
  logits, inter = _apply(d, v, x, labels=labels, capture_intermediates=True, mutable=True)
  (out,) = inter['intermediates']['b4']['out']['__call__']
  cmap = _mapping_ref(v['params']['mapping'], None, np.asarray(labels), 5)
  np.testing.assert_allclose(logits, np.sum(out * cmap, -1) / np.sqrt(8), rtol=1e-4, atol=1e-5)
  other = _apply(d, v, x, labels=(labels + 1) % 5)
  assert float(jnp.abs(other - logits).max()) > 1e-4


def test_bfloat16_in_the_top_resolutions_keeps_float32_params_and_outputs():
  g, v, z, _ = _g()
  g16 = sg.Generator((16, 16, 3), num_fp16_res=1, **TINY)  # the 16 px block
  x32, x16 = _apply(g, v, z, train=False), _apply(g16, v, z, train=False)
  assert x16.dtype == jnp.float32
  assert 0 < float(jnp.abs(x16 - x32).max()) < 0.05 * float(jnp.abs(x32).max())
  d32 = sg.Discriminator(channel_base=64, channel_max=8)
  d16 = sg.Discriminator(channel_base=64, channel_max=8, num_fp16_res=1)
  dv = _variables(d32, x32)
  l32, l16 = _apply(d32, dv, x32), _apply(d16, dv, x32)
  assert l16.dtype == jnp.float32
  assert 0 < float(jnp.abs(l16 - l32).max()) < 0.05 * float(jnp.abs(l32).max())


# --- through jaxgan ---------------------------------------------------------------------------


def _config(**model):
  config = config_lib.defaults('stylegan2', 'cifar10')
  config.model.update({'latent_dim': 16, **TINY, 'mbstd_group': 2, 'd_mapping_layers': 2, **model})
  config.num_steps = 2
  return config_lib.complete(config)


def test_registered_and_built_from_the_config():
  assert 'stylegan2' in models.names()
  config = _config(conditional=True, mbstd_channels=2, d_architecture='orig')
  g, d = models.create(config.model, (64, 64, 1), 10)
  assert isinstance(g, sg.Generator) and isinstance(d, sg.Discriminator)
  assert g.num_classes == d.num_classes == 10 and g.mapping_layers == 2 and g.w_dim == 8
  assert d.mbstd_channels == 2 and d.architecture == 'orig' and d.conv_clamp == 256
  assert g.num_fp16_res == d.num_fp16_res == 0  # on CPU; the config says 4
  assert models.create(_config(conv_clamp=0).model, (32, 32, 3))[0].conv_clamp is None


@pytest.mark.parametrize(
  'overrides, shape, message',
  [
    (dict(), (32, 48, 3), 'square images'),
    (dict(), (48, 48, 3), 'power of two'),
    (dict(), (4, 4, 3), 'at least 8'),
    (dict(channel_base=16), (32, 32, 3), 'channel_base=16 gives no channels at 32 px'),
    (dict(mbstd_channels=3), (32, 32, 3), 'mbstd_channels=3 must divide the 4x4 width 8'),
  ],
)
def test_impossible_shapes_are_config_errors(overrides, shape, message):
  with pytest.raises(ConfigError, match=message):
    models.create(_config(**overrides).model, shape)


def test_a_conditional_gan_trains_one_step_through_jaxgan():
  config = _config(conditional=True)
  config.data.num_classes = 10
  shape = (8, 8, 3)
  gan = gan_lib.from_config(config, shape)
  state = jax.jit(lambda key: init_state(gan, key, shape))(jax.random.PRNGKey(0))
  assert not np.asarray(_w_avg(state.g_vars)).any()
  real = jnp.asarray(_normal((1, 4, *shape)).clip(-1, 1))
  labels = jnp.asarray([[0, 1, 2, 3]])
  new, metrics = jax.jit(lambda s, r, y: steps.train_step(gan, s, Batch(r, y)))(state, real, labels)
  assert all(np.isfinite(float(m)) for m in metrics.values()), metrics
  changed = jax.tree.map(lambda a, b: bool((a != b).any()), state.g_params, new.g_params)
  assert all(jax.tree.leaves(changed))  # every G parameter trains, the 4x4 constant too
  changed = jax.tree.map(lambda a, b: bool((a != b).any()), state.d_params, new.d_params)
  assert all(jax.tree.leaves(changed))
  # w_avg moved (0.005 of the batch's mean w); the fixed noise did not.
  assert np.isfinite(_w_avg(new.g_vars)).all() and np.abs(_w_avg(new.g_vars)).max() > 0
  noise = state.g_vars['buffers']['synthesis']['b8']['conv1']['noise_const']
  np.testing.assert_array_equal(
    new.g_vars['buffers']['synthesis']['b8']['conv1']['noise_const'], noise
  )
