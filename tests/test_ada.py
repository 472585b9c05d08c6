"""ADA's augmentation pipeline (jaxgan.ada): each op against its textbook form with fixed
parameters, their composition, the draws (p, ranges, independence), p=0 as the identity bit
for bit, gradients, determinism, and traced p under jit and lax.scan."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
from scipy.spatial.transform import Rotation

from jaxgan import ada, augment
from jaxgan import config as config_lib

KEY = jax.random.PRNGKey(11)
N, SIZE = 4, 16


def _images(shape=(N, SIZE, SIZE, 3), seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), shape, minval=-1.0, maxval=1.0)


def _with_negative_zeros(x):
  """x with some pixels -0.0: arithmetic that only looks like the identity (x * 1 + 0) turns
  them into +0.0, which `_assert_same_bits` tells apart."""
  return x.at[:, ::3, ::5].set(-0.0)


def _assert_same_bits(a, b):
  np.testing.assert_array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))


@jax.jit
def _apply(x, params):
  """All of bgc's ops with the given parameters: one program for every op's test."""
  return ada.apply(x, params, ada.OPS)


def _params(n=N, **values):
  """identity_params with some ops' values set, the same for every image."""
  params = ada.identity_params(n)
  for op, v in values.items():
    params[op] = jnp.broadcast_to(jnp.asarray(v, params[op].dtype), params[op].shape)
  return params


def _per_channel(x, fn):
  """fn applied to each HW channel of each NHWC image, in float64 numpy."""
  x = np.asarray(x, np.float64)
  return np.stack([np.stack([fn(c) for c in np.moveaxis(img, -1, 0)], -1) for img in x])


def _affine(x, inverse_2x2, shift=(0.0, 0.0)):
  """Textbook bilinear warp on the mirrored image: output pixel o (row, col) reads the input at
  centre + inverse @ (o - centre) - shift, with (row, col) matrices as scipy takes them."""
  centre = (np.array(x.shape[1:3]) - 1) / 2
  inverse_2x2 = np.asarray(inverse_2x2, np.float64)
  offset = centre - inverse_2x2 @ centre - np.asarray(shift)
  return _per_channel(
    x, lambda c: scipy.ndimage.affine_transform(c, inverse_2x2, offset, order=1, mode='mirror')
  )


def test_blitting_moves_whole_pixels_as_numpy_does():
  x = _images()
  np.testing.assert_array_equal(_apply(x, _params(xflip=1.0)), x[:, :, ::-1])
  for k in range(4):
    np.testing.assert_array_equal(_apply(x, _params(rotate90=k)), np.rot90(x, k, axes=(1, 2)))
  # Moved right by 2 and up by 1, the image mirrored (numpy's 'reflect') into the gap.
  moved = _apply(x, _params(xint=[2.0, -1.0]))
  padded = np.pad(np.asarray(x), ((0, 0), (1, 1), (2, 2), (0, 0)), mode='reflect')
  np.testing.assert_array_equal(moved, padded[:, 2:, :SIZE])


def test_general_geometric_ops_as_scipy_warps_them():
  x = _images()
  s, theta = 1.3, 0.7
  cases = {
    # scipy's matrices map output (row, col) to input (row, col): the inverse motion.
    'scale': (_params(scale=s), np.eye(2) / s, (0, 0)),
    'aniso': (_params(aniso=s), np.diag([s, 1 / s]), (0, 0)),  # x stretched by s, y by 1/s
    'xfrac': (_params(xfrac=[1.25, -0.5]), np.eye(2), (-0.5, 1.25)),  # (x, y) vs (row, col)
  }
  for op, (params, inverse, shift) in cases.items():
    np.testing.assert_allclose(_apply(x, params), _affine(x, inverse, shift), atol=2e-5, err_msg=op)
  # A rotation by theta counterclockwise, as scipy.ndimage.rotate turns images (and np.rot90).
  rotate = functools.partial(scipy.ndimage.rotate, reshape=False, order=1, mode='mirror')
  for angles in ([theta, 0.0], [0.0, theta], [theta / 2, theta / 2]):
    want = _per_channel(x, lambda c: rotate(c, np.degrees(theta)))
    np.testing.assert_allclose(_apply(x, _params(rotate=angles)), want, atol=2e-5)


def test_color_ops_against_their_formulas():
  x = _images()
  xn = np.asarray(x, np.float64)
  gray = xn.mean(-1, keepdims=True)  # the projection on the luma axis [1, 1, 1] / sqrt(3)
  b, c, s, theta = 0.3, 1.7, 0.4, 2.0

  def check(params, want):
    np.testing.assert_allclose(_apply(x, params), want, atol=2e-6)

  check(_params(brightness=b), xn + b)
  check(_params(contrast=c), xn * c)  # around 0, the mid-grey of [-1, 1]
  check(_params(lumaflip=1.0), xn - 2 * gray)  # x - 2 (v.x) v: a mirror through grey
  check(_params(saturation=s), gray + s * (xn - gray))
  hue = _apply(x, _params(hue=theta))
  turn = Rotation.from_rotvec(theta * np.ones(3) / np.sqrt(3)).as_matrix()
  check(_params(hue=theta), xn @ turn.T)
  np.testing.assert_allclose(np.mean(hue, -1), gray[..., 0], atol=1e-6)  # luma kept
  np.testing.assert_allclose(
    np.linalg.norm(hue - np.mean(hue, -1, keepdims=True), axis=-1),
    np.linalg.norm(xn - gray, axis=-1),
    atol=1e-5,
  )


def test_grayscale_images_get_the_ops_that_act_on_grey():
  x = _images((N, SIZE, SIZE, 1))
  xn = np.asarray(x, np.float64)
  b, c = 0.3, 1.7
  for params, want in [
    (_params(brightness=b), xn + b),
    (_params(contrast=c), xn * c),
    (_params(lumaflip=1.0), -xn),
    (_params(brightness=b, contrast=c, lumaflip=1.0), -(xn + b) * c),
  ]:
    np.testing.assert_allclose(_apply(x, params), want, atol=2e-6)
  # Hue and saturation leave grey as it is: skipped, the image returned bit for bit.
  x = _with_negative_zeros(x)
  _assert_same_bits(_apply(x, _params(hue=2.0, saturation=0.4)), x)
  with pytest.raises(ValueError, match='RGB or grayscale'):
    ada.apply(jnp.zeros((1, 4, 4, 2)), ada.identity_params(1))


def _turn(t):
  c, s = np.cos(t), np.sin(t)
  return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _move_back(tx, ty):
  return np.array([[1, 0, -tx], [0, 1, -ty], [0, 0, 1.0]])


def test_ops_compose_in_order_in_one_matrix_each():
  x = _images()
  xn = np.asarray(x, np.float64)
  # The blit ops in one resampling: flipped, then turned, then moved.
  got = _apply(x, _params(xflip=1.0, rotate90=1, xint=[2.0, 0.0]))
  turned = np.rot90(xn[:, :, ::-1], 1, axes=(1, 2))
  want = np.pad(turned, ((0, 0), (0, 0), (2, 0), (0, 0)), mode='reflect')[:, :, :SIZE]
  np.testing.assert_array_equal(got, want)
  # Every geometric op: the composed matrix is the product of each op's matrix, first op left
  # (they map output positions back to the input), and the image warped by it as scipy does.
  params = _params(
    xflip=1.0, rotate90=3, xint=[1.0, -2.0], scale=1.2, rotate=[0.3, -0.5], aniso=0.8,
    xfrac=[0.4, 0.9],
  )  # fmt: skip
  each = [
    np.asarray(m, np.float64)
    for op in ada.BLIT + ada.GEOM
    for m in ada.geometric_matrices(_params(**{op: params[op][0]}))
    if not np.array_equal(m, np.broadcast_to(np.eye(3), m.shape))
  ]
  assert len(each) == 8  # the rotation is two, around aniso: their order matters, see below
  inverse = np.asarray(ada.compose(ada.geometric_matrices(params)), np.float64)
  expected = functools.reduce(np.matmul, each[:5] + [each[6], each[5], each[7]])
  np.testing.assert_allclose(inverse, expected, atol=1e-5)
  # The same from the textbook's matrices: each op's inverse motion (x, y, 1), first op left.
  textbook = [
    np.diag([-1.0, 1, 1]),  # mirrored in x
    _turn(3 * np.pi / 2),  # three quarter turns counterclockwise: the inverse turns back
    _move_back(1, -2),
    np.diag([1 / 1.2, 1 / 1.2, 1]),
    _turn(0.3),  # before aniso
    np.diag([1 / 0.8, 0.8, 1]),
    _turn(-0.5),  # after aniso
    _move_back(0.4, 0.9),
  ]
  np.testing.assert_allclose(inverse[0], functools.reduce(np.matmul, textbook), atol=1e-5)
  xy_to_rc = np.array([[0, 1], [1, 0]])  # scipy's (row, col) from our (x, y)
  m = inverse[0]
  want = _affine(x, xy_to_rc @ m[:2, :2] @ xy_to_rc, -(xy_to_rc @ m[:2, 2]))
  np.testing.assert_allclose(_apply(x, params), want, atol=2e-5)
  # Every colour op: the 4x4 matrix is the product, last op left; the image as the formulas
  # applied one after the other.
  values = dict(brightness=0.3, contrast=1.7, lumaflip=1.0, hue=2.0, saturation=0.4)
  params = _params(**values)
  each = [ada.color_matrices(_params(**{op: v}))[i] for i, (op, v) in enumerate(values.items())]
  matrix = functools.reduce(np.matmul, [np.asarray(m, np.float64) for m in each[::-1]])
  np.testing.assert_allclose(ada.compose(ada.color_matrices(params)[::-1]), matrix, atol=1e-6)
  y = (xn + 0.3) * 1.7
  y = y - 2 * y.mean(-1, keepdims=True)
  y = y @ Rotation.from_rotvec(2.0 * np.ones(3) / np.sqrt(3)).as_matrix().T
  y = y.mean(-1, keepdims=True) + 0.4 * (y - y.mean(-1, keepdims=True))
  np.testing.assert_allclose(_apply(x, params), y, atol=1e-5)


@functools.partial(jax.jit, static_argnums=(1,))
def _draw(p, ops=ada.OPS, key=KEY):
  return ada.draw(key, 4096, (32, 64), ops, p)  # (h, w): x and y ranges differ


def _on(params, op):
  """Which images op changes, from its parameters."""
  v, identity = np.asarray(params[op]), np.asarray(ada.identity_params(1)[op])
  return (v != identity).reshape(len(v), -1).any(1)


def test_draws_follow_p_and_the_official_distributions():
  # p = 0: the identity's parameters for every op; traced, so the same program as p > 0.
  jax.tree.map(np.testing.assert_array_equal, _draw(jnp.float32(0)), ada.identity_params(4096))
  params = _draw(jnp.float32(0.5))
  # The chance that an op changes an image: p times the chance that its draw is not the
  # identity (half of the flips are none, a quarter of the quarter turns).
  chance = dict(xflip=0.25, rotate90=0.375, lumaflip=0.25, rotate=0.5)
  for op in ada.OPS:
    assert abs(_on(params, op).mean() - chance.get(op, 0.5)) < 0.03, op
  # Either rotation with 1 - sqrt(1 - p) each, independently: both with (1 - sqrt(0.5))^2.
  both = (np.asarray(params['rotate']) != 0).all(1).mean()
  assert abs(both - (1 - np.sqrt(0.5)) ** 2) < 0.02
  # Independent coins: x-flips and luma flips are no more together than chance.
  together = (_on(params, 'xflip') & _on(params, 'lumaflip')).mean()
  assert abs(together - 0.25**2) < 0.02
  params = _draw(jnp.float32(1))
  assert set(np.unique(params['rotate90'])) == {0, 1, 2, 3}
  xint = np.asarray(params['xint'])
  # Whole pixels, up to 0.125 of the width in x and of the height in y, each way.
  assert set(np.unique(xint[:, 0])) == set(range(-8, 9))
  assert set(np.unique(xint[:, 1])) == set(range(-4, 5))
  theta = np.asarray(params['rotate'])
  assert theta.min() >= -np.pi and theta.max() < np.pi and theta.std() > 1.5
  for op, std in [('scale', 0.2), ('aniso', 0.2), ('contrast', 0.5), ('saturation', 1.0)]:
    assert abs(np.log2(params[op]).std() / std - 1) < 0.05, op
  xfrac = np.asarray(params['xfrac'])
  assert abs(np.std(xfrac[:, 0]) / (0.125 * 64) - 1) < 0.05
  assert abs(np.std(xfrac[:, 1]) / (0.125 * 32) - 1) < 0.05
  assert abs(np.std(params['brightness']) / 0.2 - 1) < 0.05
  assert np.abs(params['hue']).max() <= np.pi and np.std(params['hue']) > 1.5
  # Turning other ops on or off does not change an op's draws.
  alone = _draw(jnp.float32(0.5), ('hue',))
  np.testing.assert_array_equal(alone['hue'], _draw(jnp.float32(0.5))['hue'])
  with pytest.raises(ValueError, match='unknown ADA augmentation'):
    ada.draw(KEY, 1, (4, 4), ('zoom',), 0.5)


@jax.jit
def _scan_over_p(x, ps, key):
  """bgc once per p, in one lax.scan with p traced."""
  return jax.lax.scan(lambda _, p: (None, augment.augment(x, key, ('bgc',), p)), None, ps)[1]


def test_p_zero_is_the_identity_and_p_traced_under_jit_and_scan():
  x = _with_negative_zeros(_images())
  _assert_same_bits(_apply(x, ada.identity_params(N)), x)
  _assert_same_bits(ada.augment(x, KEY, 0.0), x)  # static: nothing drawn
  ps = jnp.array([0.0, 1.0, 1.0], jnp.float32)
  ys = _scan_over_p(x, ps, KEY)
  _assert_same_bits(ys[0], x)  # traced p = 0: every image as it was, bit for bit
  assert np.any(np.asarray(ys[1]) != np.asarray(x), axis=(1, 2, 3)).all()
  np.testing.assert_array_equal(ys[1], ys[2])  # the same key: the same draws
  # augment.augment's 'bgc': ada's draws from the key folded with the op's index, applied.
  op_key = jax.random.fold_in(KEY, len(augment.OPS) + augment.PIPES.index('bgc'))
  np.testing.assert_allclose(
    ys[1], _apply(x, ada.draw(op_key, N, (SIZE, SIZE), ada.OPS, 1.0)), atol=1e-6
  )
  # Another key, other draws for every image.
  other = _scan_over_p(x, ps, jax.random.fold_in(KEY, 1))[1]
  assert np.any(np.asarray(other) != np.asarray(ys[1]), axis=(1, 2, 3)).all()


def test_gradients_flow_through_the_pipeline():
  x = _images((8, SIZE, SIZE, 3))
  w = jax.random.normal(jax.random.PRNGKey(3), x.shape)
  f = lambda x: jnp.sum(w * ada.augment(x, KEY, jnp.float32(1)))  # noqa: E731
  value_and_grad = jax.jit(jax.value_and_grad(f))
  _, grad = value_and_grad(x)
  assert np.isfinite(grad).all() and (np.abs(grad).sum(axis=(1, 2, 3)) > 0).all()
  # Against a central difference: for fixed draws, the pipeline is affine in the images.
  v = jax.random.normal(jax.random.PRNGKey(4), x.shape)
  eps = 1e-2
  slope = (value_and_grad(x + eps * v)[0] - value_and_grad(x - eps * v)[0]) / (2 * eps)
  np.testing.assert_allclose(slope, jnp.sum(grad * v), rtol=1e-3)


def test_configs_take_the_pipelines_as_augment_ops(test_config):
  test_config.train.augment = 'bgc'
  test_config.train.augment_p = 'adaptive'
  config_lib.validate(test_config)
  test_config.train.augment = 'cutout,bg'
  config_lib.validate(test_config)
  assert augment.parse('bgc, gc') == ('bgc', 'gc')
  assert 'bgc' in augment.check_spec('bgcf')  # the error names the ops there are
