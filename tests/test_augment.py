"""Differentiable augmentation (DiffAugment ops, ADA's adaptive p): what each op does to images
and to gradients, its randomness, p's update rule, and the trainer with augmentation on."""

import functools
import json
import types

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import augment, steps
from jaxgan import config as config_lib
from jaxgan.batch import Batch
from jaxgan.checkpoint import Checkpointer
from jaxgan.errors import ConfigError
from jaxgan.gan import GAN
from jaxgan.state import abstract_state, init_state
from tests.conftest import straight_and_resumed

KEY = jax.random.PRNGKey(7)
SHAPE = (64, 16, 16, 3)  # most tests use this shape: fewer programs to compile


@functools.partial(jax.jit, static_argnums=(1,))
def _jitted(x, ops, p, key):
  return augment.augment(x, key, ops, p)


def _aug(x, ops, p=1.0, key=KEY):
  """augment.augment under jit, with p traced: one small program per op and shape, much
  faster than running op by op."""
  return _jitted(x, ops, jnp.float32(p), key)


def _images(shape=SHAPE, seed=0):
  # No pixel is 0, so zeros in an output come from the op.
  x = jax.random.uniform(jax.random.PRNGKey(seed), shape, minval=0.1, maxval=1.0)
  return x * jnp.where(jax.random.bernoulli(jax.random.PRNGKey(seed + 1), 0.5, shape), 1, -1)


def _shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
  """One HWC image moved down dy and right dx, zeros shifted in: the textbook definition."""
  h, w = x.shape[:2]
  padded = np.pad(x, ((h, h), (w, w), (0, 0)))
  return padded[h - dy : 2 * h - dy, w - dx : 2 * w - dx]


def _shifts_of(x, y, max_shift):
  """The (dy, dx) that turned each image of x into y's, or None where no shift does."""
  x, y = np.asarray(x), np.asarray(y)
  out = []
  for xi, yi in zip(x, y, strict=True):
    rng = range(-max_shift, max_shift + 1)
    found = [(dy, dx) for dy in rng for dx in rng if np.array_equal(_shifted(xi, dy, dx), yi)]
    out.append(found[0] if len(found) == 1 else None)
  return out


@pytest.mark.parametrize('op', augment.OPS)
def test_p_zero_is_the_identity_static_or_traced(op):
  x = _images()
  np.testing.assert_array_equal(augment.augment(x, KEY, (op,), 0.0), x)  # draws nothing
  np.testing.assert_array_equal(_aug(x, (op,), 0.0), x)
  # p = 1 changes (nearly) every image, p = 1/2 about half of them.
  changed = lambda y: np.any(np.asarray(y) != np.asarray(x), axis=(1, 2, 3))  # noqa: E731
  assert changed(_aug(x, (op,), 1.0)).mean() > 0.9
  assert 0.25 < changed(_aug(x, (op,), 0.5)).mean() < 0.75


def test_translation_moves_each_image_by_whole_pixels_with_zero_fill():
  x = _images()
  y = _aug(x, ('translation',))
  shifts = _shifts_of(x, y, 2)  # 16 / 8: at most 2 pixels each way
  assert None not in shifts
  assert len(set(shifts)) > 5  # drawn per image


def test_cutout_zeroes_a_square_of_half_the_size_clipped_at_the_edges():
  x = _images()
  y = np.asarray(_aug(x, ('cutout',)))
  zero = y == 0
  np.testing.assert_array_equal(y[~zero], np.asarray(x)[~zero])
  sizes = []
  for z in zero:
    assert (z == z[..., :1]).all()  # every channel
    rows, cols = np.flatnonzero(z[..., 0].any(1)), np.flatnonzero(z[..., 0].any(0))
    # A rectangle: the 8x8 square's part inside the 16x16 image, 4 to 8 pixels a side.
    assert z[..., 0].sum() == len(rows) * len(cols)
    assert np.ptp(rows) == len(rows) - 1 and np.ptp(cols) == len(cols) - 1
    assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8
    if 0 < rows[0] and rows[-1] < 15 and 0 < cols[0] and cols[-1] < 15:
      assert len(rows) == len(cols) == 8
    sizes.append((len(rows), len(cols)))
  assert (8, 8) in sizes and len(set(sizes)) > 2


def test_color_is_per_image_and_affine_in_each_gray_image():
  same = jnp.broadcast_to(_images((1, *SHAPE[1:])), SHAPE)
  y = _aug(same, ('color',))
  assert y.shape == same.shape
  assert len({np.asarray(img).tobytes() for img in y}) == SHAPE[0]  # each image its own draw
  # Changing one input image changes that output image only.
  other = same.at[3].multiply(-1)
  diff = np.any(np.asarray(_aug(other, ('color',))) != np.asarray(y), axis=(1, 2, 3))
  np.testing.assert_array_equal(diff, np.arange(SHAPE[0]) == 3)
  # Gray: saturation does nothing, so y = a x + b, a = contrast in [0.5, 1.5].
  x = _images((16, 8, 8, 1))
  y = _aug(x, ('color',))
  for xi, yi in zip(np.asarray(x), np.asarray(y), strict=True):
    a, b = np.polyfit(xi.ravel(), yi.ravel(), 1)
    np.testing.assert_allclose(a * xi + b, yi, atol=1e-5)
    assert 0.5 <= a <= 1.5 and abs(b) <= 0.5 + 1.5 * 1.0


@pytest.mark.parametrize('op', augment.OPS)
def test_gradients_flow_through_each_op(op):
  x = _images()
  w = jax.random.normal(jax.random.PRNGKey(3), x.shape)
  f = lambda x: jnp.sum(w * augment.augment(x, KEY, (op,), 0.5))  # noqa: E731
  value_and_grad = jax.jit(jax.value_and_grad(f))
  _, grad = value_and_grad(x)
  assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
  # Against a central difference along a random direction: exact up to rounding, as each op
  # is affine in the images for a fixed key.
  v = jax.random.normal(jax.random.PRNGKey(4), x.shape)
  eps = 1e-2
  slope = (value_and_grad(x + eps * v)[0] - value_and_grad(x - eps * v)[0]) / (2 * eps)
  np.testing.assert_allclose(slope, jnp.sum(grad * v), rtol=1e-3)


def test_translation_and_cutout_gradients_equal_their_textbook_forms():
  x = _images()
  w = jax.random.normal(jax.random.PRNGKey(3), x.shape)
  grad = jax.grad(lambda x: jnp.sum(w * _aug(x, ('translation',))))(x)
  # The textbook translation (pad, slice) with the same shifts, differentiated by autodiff.
  shifts = _shifts_of(x, _aug(x, ('translation',)), 2)

  def textbook(x):
    out = []
    for xi, (dy, dx) in zip(x, shifts, strict=True):
      padded = jnp.pad(xi, ((16, 16), (16, 16), (0, 0)))
      out.append(padded[16 - dy : 32 - dy, 16 - dx : 32 - dx])
    return jnp.stack(out)

  @jax.jit
  def textbook_and_grad(x):
    y, vjp = jax.vjp(textbook, x)
    return y, vjp(w)[0]

  y, textbook_grad = textbook_and_grad(x)
  np.testing.assert_array_equal(y, _aug(x, ('translation',)))
  np.testing.assert_array_equal(grad, textbook_grad)
  # Cutout: the gradient is w where the pixel was kept and 0 in the square.
  y = _aug(x, ('cutout',))
  grad = jax.grad(lambda x: jnp.sum(w * _aug(x, ('cutout',))))(x)
  np.testing.assert_array_equal(grad, jnp.where(y == 0, 0.0, w))


def test_same_key_same_augmentation_and_another_step_another():
  x = _images()
  ops = augment.parse('color,translation,cutout')
  a = _aug(x, ops, key=jax.random.fold_in(KEY, 5))
  np.testing.assert_array_equal(a, _aug(x, ops, key=jax.random.fold_in(KEY, 5)))
  b = _aug(x, ops, key=jax.random.fold_in(KEY, 6))
  assert np.any(np.asarray(a) != np.asarray(b), axis=(1, 2, 3)).all()
  # An op draws the same with or without the others: cutout alone zeroes the same squares.
  cut = _aug(jnp.ones_like(x), ('cutout',)) == 0
  both = _aug(jnp.ones_like(x), ('color', 'cutout')) == 0
  np.testing.assert_array_equal(cut, both)


def test_parse_and_config_checks(test_config):
  config_lib.validate(test_config)  # the defaults: off
  test_config.train.augment_p = 'adaptive'
  with pytest.raises(ConfigError, match="augment_p='adaptive' needs ops in train.augment"):
    config_lib.validate(test_config)
  test_config.train.augment = 'color,cutout'
  config_lib.validate(test_config)
  test_config.train.augment = 'color,zoom'
  with pytest.raises(ConfigError, match="train.augment is 'color,zoom': unknown augmentation"):
    config_lib.validate(test_config)
  assert augment.parse('') == () and augment.parse(' cutout, color') == ('cutout', 'color')
  with pytest.raises(ValueError, match='unknown augmentation'):
    augment.parse('color,flip')
  assert augment.check_spec('color,translation') is None and augment.check_spec('x')
  assert augment.check_p('adaptive') is None and augment.check_p(0) is None
  assert augment.check_p(1.5) and augment.check_p('fixed') and augment.check_p(True)


def test_adaptive_p_rises_on_positive_real_logits_falls_on_negative_and_stays_in_0_1():
  gan = types.SimpleNamespace(ada_interval=2, ada_target=0.6, ada_kimg=0.1)  # 100 images
  ada = {k: jnp.zeros((), jnp.float32) for k in ('p', 'signs', 'count')}

  def run(ada, rt, steps_done, n_d=2):
    return steps._ada_update(gan, ada, [jnp.float32(rt)] * n_d, jnp.int32(steps_done), 10)

  ada = run(ada, 1.0, 1)  # mid-interval: accumulates, p unchanged
  assert float(ada['p']) == 0 and float(ada['count']) == 2 and float(ada['signs']) == 2
  ada = run(ada, 0.5, 2)  # mean sign 0.75 > 0.6 after 4 D updates of 10 images: +40/100
  assert float(ada['p']) == pytest.approx(0.4) and float(ada['count']) == 0
  for t in (3, 4, 5, 6):
    ada = run(ada, 1.0, t)
  assert float(ada['p']) == 1.0  # clipped
  for t in (7, 8):
    ada = run(ada, -1.0, t)
  assert float(ada['p']) == pytest.approx(0.6)
  for t in range(9, 17):
    ada = run(ada, -1.0, t)
  assert float(ada['p']) == 0.0  # clipped
  assert float(augment.adjust_p(jnp.float32(0.5), jnp.float32(0.6), 0.6, 100, 1)) == 0.5


class _G(nn.Module):
  @nn.compact
  def __call__(self, z, train=True):
    return jnp.tanh(nn.Dense(64)(z)).reshape(z.shape[0], 8, 8, 1)


class _D(nn.Module):
  @nn.compact
  def __call__(self, x, train=True):
    return nn.Dense(1)(nn.leaky_relu(nn.Dense(16)(x.reshape(x.shape[0], -1)), 0.2))[:, 0]


def _gan(**kw):
  opt = optax.adam(1e-3, b1=0.5)
  return GAN(_G(), _D(), opt, opt, latent_dim=4, **kw)


@functools.cache
def _jit_step(gan):
  return jax.jit(lambda s, real: steps.train_step(gan, s, Batch(real)))


def test_steps_augment_d_inputs_in_both_steps_and_penalties_and_adapt_p():
  real = _images((2, 8, 8, 8, 1))
  common = dict(d_steps=2, r1_weight=1.0)  # R1 and GP call D through the same closure

  def run(gan, n, state=None):
    state = init_state(gan, KEY, (8, 8, 1)) if state is None else state
    out = []
    for _ in range(n):
      state, m = _jit_step(gan)(state, real)
      out.append((state, m))
    return out

  plain = run(_gan(**common), 2)
  # Adaptive p starts at 0: no image changes, so the same numbers as augmentation off (but
  # for the state's ADA accumulators and two more metrics) until p moves after step 2, by
  # 2 steps * 2 D updates * 8 images / 16 images = 2: to 1 or 0 by the sign of rt - 0.6.
  ops = 'color,translation,cutout'
  gan = _gan(augment=ops, augment_p='adaptive', ada_interval=2, ada_kimg=0.016, **common)
  adaptive = run(gan, 3)
  for (a, am), (b, bm) in zip(plain, adaptive[:2], strict=True):
    jax.tree.map(np.testing.assert_array_equal, a.replace(ada=None), b.replace(ada=None))
    assert set(bm) - set(am) == {'augment_p', 'ada_rt'}
    jax.tree.map(np.testing.assert_array_equal, am, {k: bm[k] for k in am})
  metrics = [m for _, m in adaptive]
  ps = [float(m['augment_p']) for m in metrics]
  rt = (float(metrics[0]['ada_rt']) + float(metrics[1]['ada_rt'])) / 2
  assert ps == [0.0, 0.0, 1.0 if rt > 0.6 else 0.0]
  assert all(np.isfinite(float(v)) for m in metrics for v in m.values())
  # The same 3 steps fused in one lax.scan (steps_per_call) give the same numbers.
  scan = jax.jit(lambda s: steps.multi_step(gan, s, lambda _: Batch(real), 3))
  fused, fused_metrics = scan(init_state(gan, KEY, (8, 8, 1)))
  jax.tree.map(np.testing.assert_array_equal, fused, adaptive[-1][0])
  np.testing.assert_array_equal(fused_metrics['augment_p'], ps)
  # At p = 1 (the same program), augmentation changes D's losses, the penalties and G's
  # gradients, which flow back through it.
  state = init_state(gan, KEY, (8, 8, 1))
  ((_, m),) = run(gan, 1, state.replace(ada={**state.ada, 'p': jnp.float32(1)}))
  for k in ('d_loss', 'r1', 'g_loss', 'g_grad_norm'):
    assert float(m[k]) != float(plain[0][1][k]) and np.isfinite(float(m[k])), k
  assert float(m['augment_p']) == 1.0


@flax.struct.dataclass
class _StateBeforeAda:  # GANState as checkpoints were written before augmentation existed
  step: jax.Array
  rng: jax.Array
  g_params: dict
  g_vars: dict
  g_opt_state: tuple
  d_params: dict
  d_vars: dict
  d_opt_state: tuple
  g_ema_params: dict


def test_a_checkpoint_without_ada_state_restores_with_it_new(tmp_path):
  gan = _gan(augment='cutout', augment_p='adaptive')
  state = init_state(gan, KEY, (8, 8, 1))
  state = state.replace(step=jnp.int32(3))
  old = _StateBeforeAda(
    **{k: v for k, v in vars(state).items() if k not in ('ada', 'penalty_vars')}
  )
  ckpt = Checkpointer(str(tmp_path), async_save=False)
  ckpt.save(old)
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  restored = ckpt.restore_latest(abstract_state(gan, (8, 8, 1), sharding))
  ckpt.close()
  jax.tree.map(np.testing.assert_array_equal, restored, state)  # ada: zeros, as at init
  assert restored.ada['p'].sharding == sharding


def _rows(workdir):
  rows = [json.loads(ln) for ln in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return [{k: v for k, v in r.items() if k != 'steps_per_sec'} for r in rows]


def test_trainer_with_adaptive_augmentation_repeats_and_resumes_exactly(test_config, tmp_path):
  test_config.log_every = 1
  test_config.train.augment = 'color,translation,cutout'
  test_config.train.augment_p = 'adaptive'
  test_config.train.ada_interval = 2
  test_config.train.ada_kimg = 0.032  # 2 steps of 8 images: p moves by 0.5
  test_config.sample_every = 0  # one program less to compile in each launch
  a, b = straight_and_resumed(test_config, tmp_path)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  rows = _rows(tmp_path / 'straight')
  assert rows == _rows(tmp_path / 'resumed')
  # p as logged follows ADA's rule from the logged heuristic, and ends in the state.
  p = 0.0
  for t, row in enumerate(rows, 1):
    assert row['augment_p'] == p
    if t % 2 == 0:
      rt = (rows[t - 2]['ada_rt'] + row['ada_rt']) / 2
      p = min(1.0, max(0.0, p + (0.5 if rt > 0.6 else -0.5)))
  assert float(a.ada['p']) == p
  assert max(row['augment_p'] for row in rows) > 0  # augmentation was on, after the resume too
