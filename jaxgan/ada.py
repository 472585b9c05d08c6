"""ADA's augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data"): pixel blitting, general geometric and colour transformations, `bgc`.

Each op is applied to each image with probability p; its parameters are drawn per image:
  blit:  xflip (a mirror, half of the time), rotate90 (k quarter turns, k uniform in 0..3),
         xint (a whole-pixel shift, uniform up to 0.125 of the size each way);
  geom:  scale (isotropic, lognormal: log2 s ~ N(0, 0.2^2)), rotate (uniform angle, before
         and after aniso, each with probability 1 - sqrt(1 - p) so that one of them happens
         with probability p), aniso (x by s, y by 1/s, log2 s ~ N(0, 0.2^2)), xfrac (a shift
         ~ N(0, 0.125^2) of the size);
  color: brightness (+b, b ~ N(0, 0.2^2)), contrast (x c around 0, the mid-grey of [-1, 1];
         log2 c ~ N(0, 0.5^2)), lumaflip (a reflection of the colour along the luma axis
         v = [1, 1, 1] / sqrt(3), half of the time), hue (a rotation about v, uniform in
         [-pi, pi)), saturation (the colour's distance from v scaled by s, log2 s ~ N(0, 1)).

As in the official pipeline, the geometric ops of an image compose into one 3x3 homogeneous
matrix, applied with one resampling, and the colour ops into one 4x4 matrix. The resampling is
bilinear on the image extended by reflection (whole-sample symmetric, as numpy's 'reflect',
repeated as far as the matrix reaches). The official code upsamples 2x with a wavelet filter
before its bilinear step and downsamples after, which blurs fractional positions less but
moves whole pixels only approximately; plain bilinear moves whole pixels exactly (blitting
copies them), costs four gathers a pixel, and is a gather and a weighted sum, exact on any
backend. Its extra blur reaches real and fake images alike, so it does not leak into G.

Grayscale images get the colour ops that act on a grey level: brightness, contrast and luma
flip (a negation); hue and saturation leave grey unchanged and are skipped. Images whose draws
all came out as the identity are returned as they were, bit for bit: p=0 changes nothing.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

BLIT = ('xflip', 'rotate90', 'xint')
GEOM = ('scale', 'rotate', 'aniso', 'xfrac')
COLOR = ('brightness', 'contrast', 'lumaflip', 'hue', 'saturation')
OPS = BLIT + GEOM + COLOR
PIPES = {'bg': BLIT + GEOM, 'bgc': BLIT + GEOM + COLOR, 'gc': GEOM + COLOR}

# The official defaults: ranges relative to the image size, standard deviations of log2.
XINT_MAX, SCALE_STD, ANISO_STD, XFRAC_STD = 0.125, 0.2, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, np.pi, 1.0

_LUMA = np.full(3, 1 / np.sqrt(3), np.float32)


def identity_params(n: int) -> dict[str, jax.Array]:
  """Each op's parameters for n images where it does nothing: the values `draw` gives an image
  whose coin came out tails. Shapes: (n,) or (n, 2) for the (x, y) shifts and the two angles."""
  zeros, ones = jnp.zeros(n), jnp.ones(n)
  return dict(
    xflip=zeros, rotate90=zeros.astype(jnp.int32), xint=jnp.zeros((n, 2)),
    scale=ones, rotate=jnp.zeros((n, 2)), aniso=ones, xfrac=jnp.zeros((n, 2)),
    brightness=zeros, contrast=ones, lumaflip=zeros, hue=zeros, saturation=ones,
  )  # fmt: skip


def draw(key: jax.Array, n: int, size: tuple[int, int], ops: Sequence[str], p) -> dict:
  """The parameters of `ops` for n images of size (h, w), each op on with probability p (the
  others: `identity_params`). Every op has its own rows in three draws made whatever `ops` is,
  so an op's numbers do not depend on which others are on."""
  for op in ops:
    if op not in OPS:
      raise ValueError(f'unknown ADA augmentation {op!r}; expected some of {", ".join(OPS)}')
  h, w = size
  k_coin, k_uniform, k_normal = jax.random.split(key, 3)
  # One coin per op and image, and a second one for the rotation after aniso.
  coins = jax.random.uniform(k_coin, (len(OPS) + 1, n))
  coin = dict(zip(OPS, coins, strict=False))
  u = jax.random.uniform(k_uniform, (8, n))
  z = jax.random.normal(k_normal, (7, n))
  size_xy = jnp.array([w, h], jnp.float32)
  drawn = dict(
    xflip=jnp.floor(u[0] * 2),
    rotate90=jnp.minimum(jnp.floor(u[1] * 4), 3).astype(jnp.int32),
    xint=jnp.round((u[2:4].T * 2 - 1) * XINT_MAX * size_xy),
    scale=jnp.exp2(z[0] * SCALE_STD),
    rotate=(u[4:6].T * 2 - 1) * np.pi,
    aniso=jnp.exp2(z[1] * ANISO_STD),
    xfrac=z[2:4].T * XFRAC_STD * size_xy,
    brightness=z[4] * BRIGHTNESS_STD,
    contrast=jnp.exp2(z[5] * CONTRAST_STD),
    lumaflip=jnp.floor(u[6] * 2),
    hue=(u[7] * 2 - 1) * HUE_MAX,
    saturation=jnp.exp2(z[6] * SATURATION_STD),
  )
  p = jnp.asarray(p, jnp.float32)
  params = identity_params(n)
  for op in ops:
    if op == 'rotate':  # before and after aniso, each with p_rot: at least one with p
      p_rot = 1 - jnp.sqrt(jnp.clip(1 - p, 0, 1))
      on = jnp.stack([coin[op], coins[-1]], 1) < p_rot
    else:
      on = (coin[op] < p).reshape(-1, *[1] * (drawn[op].ndim - 1))
    params[op] = jnp.where(on, drawn[op], params[op])
  return params


def _matrix(rows) -> jax.Array:
  """(n, k, k) from k rows of k entries, each a number or an (n,) array."""
  n = max(jnp.shape(e)[0] for row in rows for e in row if jnp.ndim(e))
  return jnp.stack([jnp.stack([jnp.broadcast_to(e, (n,)) for e in row], -1) for row in rows], 1)


def _quarter_turn(k: jax.Array):
  """cos and sin of k quarter turns, exact (jnp.cos(pi / 2) is not 0 in floating point)."""
  return jnp.array([1.0, 0, -1, 0])[k], jnp.array([0.0, 1, 0, -1])[k]


def _rotation(c, s):
  return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _translation(t):
  return _matrix([[1, 0, t[:, 0]], [0, 1, t[:, 1]], [0, 0, 1]])


def _scaling(sx, sy):
  return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def geometric_matrices(params: dict) -> list[jax.Array]:
  """Each geometric op's (n, 3, 3) matrix in the order they apply: maps an output pixel's
  position (x right, y down, from the image centre) to where its value comes from, i.e. the
  inverse of the op's motion of the image."""
  flip = 1 - 2 * params['xflip']
  theta_pre, theta_post = params['rotate'][:, 0], params['rotate'][:, 1]
  return [
    _scaling(flip, 1),
    _rotation(*_quarter_turn(params['rotate90'])),  # counterclockwise on screen, as np.rot90
    _translation(-params['xint']),
    _scaling(1 / params['scale'], 1 / params['scale']),
    _rotation(jnp.cos(theta_pre), jnp.sin(theta_pre)),
    _scaling(1 / params['aniso'], params['aniso']),
    _rotation(jnp.cos(theta_post), jnp.sin(theta_post)),
    _translation(-params['xfrac']),
  ]


def color_matrices(params: dict) -> list[jax.Array]:
  """Each colour op's (n, 4, 4) homogeneous matrix in the order they apply: [r, g, b, 1] of
  an output pixel = matrix @ [r, g, b, 1] of the input pixel."""
  eye = jnp.eye(4)
  rgb = jnp.diag(jnp.array([1.0, 1, 1, 0]))  # the linear part's block
  vv = jnp.zeros((4, 4)).at[:3, :3].set(np.outer(_LUMA, _LUMA))  # projection on the luma axis
  b, c = params['brightness'], params['contrast']
  # Written so that the identity's parameters give the identity exactly, in floating point.
  per_image = lambda a: a[:, None, None]  # noqa: E731
  # Rodrigues: a rotation by theta about the unit axis v is cos I + sin [v]x + (1 - cos) v v^T.
  v0 = _LUMA[0]
  cross = jnp.array([[0, -v0, v0, 0], [v0, 0, -v0, 0], [-v0, v0, 0, 0], [0, 0, 0, 0]])
  cos, sin = per_image(jnp.cos(params['hue'])), per_image(jnp.sin(params['hue']))
  s = per_image(params['saturation'])
  return [
    _matrix([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]]),
    _matrix([[c, 0, 0, 0], [0, c, 0, 0], [0, 0, c, 0], [0, 0, 0, 1]]),
    eye - 2 * per_image(params['lumaflip']) * vv,  # a Householder reflection
    cos * rgb + sin * cross + (1 - cos) * vv + (eye - rgb),
    s * rgb + (1 - s) * vv + (eye - rgb),
  ]


def compose(matrices: Sequence[jax.Array]) -> jax.Array:
  """matrices[0] @ matrices[1] @ ..., per image, in float32 on every backend (an elementwise
  product and sum: no TF32 matmul), so that identities compose to the identity exactly."""
  out = matrices[0]
  for m in matrices[1:]:
    out = jnp.sum(out[:, :, :, None] * m[:, None, :, :], axis=2)
  return out


def _reflect(i: jax.Array, n: int) -> jax.Array:
  """Index i of the image extended by whole-sample reflection (..., 2, 1, 0, 1, 2, ...)."""
  if n == 1:
    return jnp.zeros_like(i)
  period = 2 * n - 2
  i = jnp.mod(i, period)
  return jnp.where(i >= n, period - i, i)


def resample(x: jax.Array, inverse: jax.Array) -> jax.Array:
  """Each NHWC image transformed by its (3, 3) inverse matrix: bilinear on the reflected image.

  A gather of the 4 neighbours and a weighted sum, elementwise: differentiable w.r.t. x (the
  gradient scatters back) and exact where the positions are whole pixels.
  """
  n, h, w, ch = x.shape
  cy, cx = (h - 1) / 2, (w - 1) / 2
  qy, qx = jnp.meshgrid(jnp.arange(h) - cy, jnp.arange(w) - cx, indexing='ij')
  qx, qy = qx.reshape(1, -1), qy.reshape(1, -1)
  m = inverse[:, :2, :, None]
  sx = m[:, 0, 0] * qx + m[:, 0, 1] * qy + m[:, 0, 2] + cx  # (n, h * w): where each reads
  sy = m[:, 1, 0] * qx + m[:, 1, 1] * qy + m[:, 1, 2] + cy
  x0, y0 = jnp.floor(sx), jnp.floor(sy)
  fx, fy = (sx - x0)[..., None].astype(x.dtype), (sy - y0)[..., None].astype(x.dtype)
  x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
  flat = x.reshape(n, h * w, ch)

  def at(yi, xi):
    index = _reflect(yi, h) * w + _reflect(xi, w)
    return jnp.take_along_axis(flat, index[..., None], axis=1)

  top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
  bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
  return (top * (1 - fy) + bottom * fy).reshape(x.shape)


def recolor(x: jax.Array, matrix: jax.Array) -> jax.Array:
  """Each NHWC image's pixels through its (4, 4) colour matrix; a grey image (C=1) through the
  matrix's action on grey (r = g = b), averaged over the three output channels."""
  m = matrix[:, None, None].astype(x.dtype)  # (n, 1, 1, 4, 4)
  if x.shape[-1] == 1:
    gain = jnp.mean(jnp.sum(m[..., :3, :3], -1), -1)
    return x * gain[..., None] + jnp.mean(m[..., :3, 3], -1)[..., None]
  return sum(x[..., k : k + 1] * m[..., :3, k] for k in range(3)) + m[..., :3, 3]


def _changed(matrix: jax.Array) -> jax.Array:
  """Which images' matrices are not the identity, broadcastable to NHWC: the others are kept
  as they were, bit for bit (x * 1 + 0 is x but for -0.0, on every backend)."""
  return jnp.any(matrix != jnp.eye(matrix.shape[-1]), axis=(1, 2))[:, None, None, None]


def apply(x: jax.Array, params: dict, ops: Sequence[str] = PIPES['bgc']) -> jax.Array:
  """The geometric ops among `ops` in one resampling, then the colour ops in one matrix, with
  the given parameters (`draw`'s; those of ops not in `ops` are ignored)."""
  if x.shape[-1] not in (1, 3):
    raise ValueError(f'ADA augmentation needs RGB or grayscale images, got {x.shape[-1]} channels')
  if x.shape[-1] == 1:  # hue and saturation leave grey as it is
    ops = [op for op in ops if op not in ('hue', 'saturation')]
  params = {**identity_params(x.shape[0]), **{op: params[op] for op in ops}}
  if any(op in ops for op in BLIT + GEOM):
    inverse = compose(geometric_matrices(params))
    x = jnp.where(_changed(inverse), resample(x, inverse), x)
  if any(op in ops for op in COLOR):
    matrix = compose(color_matrices(params)[::-1])
    x = jnp.where(_changed(matrix), recolor(x, matrix), x)
  return x


def augment(x: jax.Array, key: jax.Array, p=1.0, ops: Sequence[str] = PIPES['bgc']) -> jax.Array:
  """`ops` (default: all of `bgc`) applied to each NHWC image in [-1, 1], each op with
  probability p (a number or a traced scalar), drawn from `key`."""
  if isinstance(p, int | float) and p <= 0:
    return x
  return apply(x, draw(key, x.shape[0], x.shape[1:3], ops, p), ops)
