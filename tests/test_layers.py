"""The fast stride-2 layers compute exactly the textbook layers, and flax's, with the same grads."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import convs, xla_cpu
from jaxgan.models import layers

# (batch, height, width, in, out): thin (<= 4) and wide channel counts take different code paths.
SHAPES = [
  (2, 14, 14, 1, 8),  # D's first layer / the conv inside G's last layer's gradient
  (2, 14, 14, 8, 1),  # G's last layer
  (3, 6, 10, 6, 5),  # non-square, wide on both sides
  (1, 8, 8, 3, 16),  # RGB in
  (2, 4, 4, 16, 3),  # RGB out
]
LAYERS = [
  (convs.conv_4x4s2, convs.conv_4x4s2_reference),
  (convs.conv_transpose_4x4s2, convs.conv_transpose_4x4s2_reference),
]


def _inputs(shape, seed=0):
  n, h, w, cin, cout = shape
  kx, kk, kg = jax.random.split(jax.random.PRNGKey(seed), 3)
  x = jax.random.normal(kx, (n, h, w, cin))
  kernel = 0.1 * jax.random.normal(kk, (4, 4, cin, cout))
  return x, kernel, kg


def _loss(fn):
  """A scalar whose gradient weights every output element differently."""

  def loss(x, kernel, key):
    y = fn(x, kernel)
    return jnp.sum(jnp.sin(y) * jax.random.normal(key, y.shape))

  return loss


@jax.jit
def _outputs_and_grads(x, kernel, key):
  """Output and (input, kernel) gradients of each fast layer and its reference, in one jit."""
  out = {}
  for fn in (fn for pair in LAYERS for fn in pair):
    out[fn.__name__] = (fn(x, kernel), *jax.grad(_loss(fn), argnums=(0, 1))(x, kernel, key))
  return out


@pytest.mark.parametrize('shape', SHAPES)
def test_fast_layers_equal_reference(shape):
  x, kernel, key = _inputs(shape)
  out = _outputs_and_grads(x, kernel, key)
  for fast, reference in LAYERS:
    got, want = out[fast.__name__], out[reference.__name__]
    for g, w, what in zip(got, want, ('output', 'input grad', 'kernel grad'), strict=True):
      np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4, err_msg=f'{fast.__name__} {what}')


@pytest.mark.parametrize('fast, reference', LAYERS)
def test_second_derivatives_equal_reference(fast, reference):
  """Gradient penalties differentiate the input gradient again, w.r.t. the kernel."""
  x, kernel, key = _inputs((2, 8, 8, 6, 1))

  def penalty(fn):
    input_grad = jax.grad(_loss(fn))
    return lambda kernel: jnp.sum(input_grad(x, kernel, key) ** 2)

  got = jax.jit(jax.grad(penalty(fast)))(kernel)
  np.testing.assert_allclose(got, jax.grad(penalty(reference))(kernel), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('cin', [2, 6])
def test_conv_with_odd_size_matches_reference(cin):
  """Odd sizes fall back to XLA's own gradient (a transposed conv only makes even sizes)."""
  out = _outputs_and_grads(*_inputs((2, 7, 9, cin, 5)))
  got, want = out['conv_4x4s2'], out['conv_4x4s2_reference']
  for g, w in zip(got, want, strict=True):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('shape', SHAPES[:3])
def test_conv_equals_flax_conv(shape):
  x, kernel, _ = _inputs(shape)
  conv = nn.Conv(shape[-1], (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=False)
  want = conv.apply({'params': {'kernel': kernel}}, x)
  np.testing.assert_allclose(convs.conv_4x4s2(x, kernel), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('shape', SHAPES[:3])
def test_conv_transpose_equals_flax_conv_transpose(shape):
  """flax's transpose_kernel=True layer is PyTorch's, with the kernel's channel axes swapped."""
  x, kernel, _ = _inputs(shape)
  conv_t = nn.ConvTranspose(
    shape[-1],
    (4, 4),
    strides=(2, 2),
    padding=((2, 2), (2, 2)),
    transpose_kernel=True,
    use_bias=False,
  )
  want = conv_t.apply({'params': {'kernel': kernel.swapaxes(2, 3)}}, x)
  got = convs.conv_transpose_4x4s2(x, kernel)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('module, size', [(layers.Conv4x4s2, 4), (layers.ConvTranspose4x4s2, 16)])
def test_modules_keep_parameters_and_dtype(module, size):
  """PyTorch-shaped parameters; bfloat16 compute gives bfloat16 outputs and float32 gradients."""
  x = jnp.ones((2, 8, 8, 3), jnp.bfloat16)
  layer = module(5)
  params = jax.jit(layer.init)(jax.random.PRNGKey(0), x)['params']
  assert jax.tree.map(jnp.shape, params) == {'kernel': (4, 4, 3, 5), 'bias': (5,)}

  def loss(params):
    return jnp.sum(layer.apply({'params': params}, x).astype(jnp.float32))

  @jax.jit
  def forward_and_grad(params):
    return layer.apply({'params': params}, x), jax.grad(loss)(params)

  y, grads = forward_and_grad(params)
  assert y.shape == (2, size, size, 5) and y.dtype == jnp.bfloat16
  assert grads['kernel'].dtype == jnp.float32


@pytest.mark.skipif(jax.default_backend() != 'cpu', reason='CPU options')
def test_compiler_options_keep_convolutions_out_of_ynnpack():
  assert xla_cpu.compiler_options('gpu') == {}
  x, kernel, _ = _inputs((2, 14, 14, 64, 64))  # YNNPACK leaves smaller convolutions to XLA

  def hlo(options):
    return jax.jit(convs.conv_4x4s2, compiler_options=options).lower(x, kernel).compile().as_text()

  fast_compile = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', False)  # conftest's setting skips YNNPACK
  try:
    assert '__ynn_fusion' in hlo({})  # XLA's default, which these options change
    assert '__ynn_fusion' not in hlo(xla_cpu.compiler_options())
  finally:
    jax.config.update('jax_disable_most_optimizations', fast_compile)


@pytest.mark.parametrize(
  'k, c_in, c_out, n, size',
  [
    (3, 1, 8, 3, (10, 12)),  # thin input: im2col
    (3, 16, 4, 3, (10, 12)),  # thin output: one matmul, then shifted sums
    (5, 6, 6, 3, (10, 12)),
    (3, 6, 5, 16, (16, 16)),  # on CPU, the kernel gradient summed over chunks of the batch
  ],
)
def test_same_conv_equals_flax_conv_and_its_gradients(k, c_in, c_out, n, size):
  x = jax.random.normal(jax.random.PRNGKey(0), (n, *size, c_in))
  ours, theirs = layers.Conv(c_out, k), nn.Conv(c_out, (k, k), padding='SAME')
  params = theirs.init(jax.random.PRNGKey(1), x)  # the same parameter tree for both
  assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(1), x)) == jax.tree.map(
    jnp.shape, params
  )
  np.testing.assert_allclose(ours.apply(params, x), theirs.apply(params, x), atol=1e-5)

  def loss(module, p, x):
    return jnp.sum(jnp.sin(module.apply(p, x)))

  got = jax.grad(functools.partial(loss, ours), argnums=(0, 1))(params, x)
  want = jax.grad(functools.partial(loss, theirs), argnums=(0, 1))(params, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), got, want)


def test_same_conv_second_derivative_equals_autodiff():
  """R1 and GP differentiate D's input gradient again, w.r.t. its kernels."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 4))
  kernel = 0.3 * jax.random.normal(jax.random.PRNGKey(1), (3, 3, 4, 5))

  def reference(x, k):
    return jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME', dimension_numbers=convs._DN)

  def penalty(fn):
    input_grad = jax.grad(lambda x, k: jnp.sum(jnp.sin(fn(x, k))))
    return lambda k: jnp.sum(input_grad(x, k) ** 2)

  got = jax.jit(jax.grad(penalty(convs.conv_same)))(kernel)
  np.testing.assert_allclose(got, jax.grad(penalty(reference))(kernel), rtol=1e-4, atol=1e-4)


def _upsample_then_conv(conv, params, x):
  return conv.apply(params, jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2))


def _conv_then_pool(conv, params, x):
  return nn.avg_pool(conv.apply(params, x), (2, 2), (2, 2))


RESAMPLED = [
  (layers.UpsampleConv3x3, _upsample_then_conv),
  (layers.Conv3x3AvgPool, _conv_then_pool),
]


@pytest.mark.parametrize('module, textbook', RESAMPLED)
@pytest.mark.parametrize('c_in, c_out', [(3, 8), (8, 3), (6, 5)])  # thin and wide code paths
def test_resampled_convs_equal_textbook_form(module, textbook, c_in, c_out):
  """One stride-2 layer = the 3x3 conv (flax's, same parameters) with the resampling beside it:
  outputs, gradients w.r.t. parameters and input, and the input gradient's own gradient."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 8, c_in))
  ours, conv = module(c_out), nn.Conv(c_out, (3, 3), padding='SAME')
  params = ours.init(jax.random.PRNGKey(1), x)
  params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, conv.init(jax.random.key(2), x))
  theirs = functools.partial(textbook, conv)
  np.testing.assert_allclose(ours.apply(params, x), theirs(params, x), rtol=1e-5, atol=1e-5)

  def penalised_loss(apply):
    def loss(p, x):
      return jnp.sum(jnp.sin(apply(p, x)))

    return lambda p, x: loss(p, x) + jnp.sum(jax.grad(loss, argnums=1)(p, x) ** 2)

  got = jax.grad(penalised_loss(ours.apply), argnums=(0, 1))(params, x)
  want = jax.grad(penalised_loss(theirs), argnums=(0, 1))(params, x)
  # Float32 sums in another order: errors relative to each gradient's largest entry.
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(b).max()), got, want
  )
