"""Schedules over images seen: their values, the optimizers and terms they drive, their logs and
resume; and the state a penalty keeps."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from jaxgan import checkpoint, schedules, steps
from jaxgan import config as config_lib
from jaxgan.errors import ConfigError
from jaxgan.objectives import penalties
from jaxgan.state import init_state
from tests.conftest import straight_and_resumed
from tests.test_steps import BATCH, SHAPE, make_gan, real_batch


def _cosine(start, end, t):  # R3GAN's cosine decay, as its training loop writes it
  decay = 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
  return start + (1 - decay) * (end - start)


@pytest.mark.parametrize(
  'spec, seen, expected',
  [
    ('linear(1, 3, 2)', 500, 1.5),
    ('linear(1, 3, 2)', 5000, 3.0),  # held at the end
    ('cosine(2e-4, 5e-5, 10)', 2500, _cosine(2e-4, 5e-5, 0.25)),
    ('cosine(0.9, 0.99, 10)', 10_000, 0.99),
    ('ramp(10, 200)', 50_000, 2.5),
    ('ramp(10, 200)', 10**9, 10.0),
  ],
)
def test_schedule_values(spec, seen, expected):
  assert float(schedules.parse(spec)(seen)) == pytest.approx(expected, rel=1e-6)


def test_schedule_over_the_run_and_algebra():
  s = schedules.over_run('cosine(1, 0)', run_kimg=4.0)
  assert s.kimg == 4.0 and float(s(2000)) == pytest.approx(0.5)
  assert schedules.over_run(0.5, 4.0) == 0.5 and schedules.over_run('adaptive', 4.0) == 'adaptive'
  assert float((0.5 * s)(0)) == 0.5  # weight = gamma / 2 of a scheduled gamma
  assert not schedules.parse('linear(0, 0, 1)') and schedules.parse('ramp(1)')


@pytest.mark.parametrize(
  'value, message',
  [
    ('cosine(0.05, -1)', 'must be >= 0'),
    ('exp(1, 2)', 'expected a number or one of linear(...), cosine(...), ramp(...)'),
    ('linear(1, 2, 0)', 'kimg must be > 0'),
    ('linear(1)', 'takes 2 or 3 numbers'),
    ('cosine(a, b)', 'takes numbers'),
  ],
)
def test_bad_schedules_name_the_key(test_config, value, message):
  test_config.train.r1_weight = value
  with pytest.raises(ConfigError, match='train.r1_weight') as e:
    config_lib.validate(test_config)
  assert message in str(e.value)


def test_schedules_that_cannot_combine(test_config):
  test_config.train.ema_kimg = 'ramp(10, 200)'
  test_config.train.ema_decay = 0.999
  with pytest.raises(ConfigError, match='ema_kimg'):
    config_lib.validate(test_config)
  test_config.train.ema_decay = 0.0
  test_config.optim.g_lr = 'cosine(2e-4, 5e-5)'
  test_config.optim.schedule = 'linear'
  with pytest.raises(ConfigError, match='optim.schedule'):
    config_lib.validate(test_config)


def test_an_optimizer_without_schedules_is_optax_own():
  tx = schedules.optimizer(optax.adam, 1e-3, b1=0.5, b2=0.99, eps=1e-8)
  ref = optax.adam(1e-3, b1=0.5, b2=0.99, eps=1e-8)
  params = {'w': jnp.arange(3.0)}
  grads = {'w': jnp.array([0.5, -1.0, 2.0])}
  state, ref_state = tx.init(params), ref.init(params)
  assert jax.tree.structure(state) == jax.tree.structure(ref_state)  # old checkpoints fit
  for _ in range(3):
    (u, state), (r, ref_state) = tx.update(grads, state, params), ref.update(grads, ref_state)
    np.testing.assert_array_equal(u['w'], r['w'])


def test_scheduled_adam_follows_the_values_at_the_images_seen():
  """lr and b2 on schedules: each update is Adam's with the values at the images seen then."""
  lr, b2 = schedules.parse('linear(1e-2, 1e-3, 1)'), schedules.parse('cosine(0.9, 0.99, 1)')
  tx = schedules.optimizer(optax.adam, lr, b1=0.5, b2=b2, eps=1e-8)
  params = {'w': jnp.zeros(2)}
  state = tx.init(params)
  m = v = np.zeros(2)
  for t, seen in enumerate([0, 300, 700, 2000], start=1):
    g = np.array([0.3 * t, -1.0])
    u, state = tx.update({'w': jnp.asarray(g)}, state, params, images_seen=seen)
    b2_t, lr_t = float(b2(seen)), float(lr(seen))
    m = 0.5 * m + 0.5 * g
    v = b2_t * v + (1 - b2_t) * g**2
    expected = -lr_t * (m / (1 - 0.5**t)) / (np.sqrt(v / (1 - b2_t**t)) + 1e-8)
    np.testing.assert_allclose(u['w'], expected, rtol=1e-5)
    assert float(state.values['b2']) == pytest.approx(b2_t)


def _r1_gan(r1_weight):  # SGD: Adam's first update would not show the loss's scale
  return make_gan(r1_weight=r1_weight, d_optimizer=optax.sgd(0.1))


def test_a_scheduled_weight_is_its_value_at_the_images_seen():
  """d_step with r1_weight on a schedule equals d_step with the schedule's value as a number."""
  s = schedules.parse('cosine(4.0, 0.5, 0.05)')
  gan = _r1_gan(s)
  state = init_state(gan, jax.random.PRNGKey(0), SHAPE).replace(step=jnp.asarray(7, jnp.int32))
  seen = 7 * BATCH
  fixed = _r1_gan(float(s(seen)))
  batch = jax.tree.map(lambda x: x[0], real_batch())
  g = steps.g_forward(gan, state, gan.sample_inputs(jax.random.PRNGKey(3), BATCH))
  key = jax.random.PRNGKey(4)
  a, ma = steps.d_step(gan, state, batch, g.fake, key)
  b, mb = steps.d_step(fixed, state, batch, g.fake, key)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6), a.d_params, b.d_params)
  # ... and not its value at the start
  c, _ = steps.d_step(_r1_gan(4.0), state, batch, g.fake, key)
  assert not all(map(np.allclose, jax.tree.leaves(a.d_params), jax.tree.leaves(c.d_params)))


@pytest.mark.parametrize('d_steps', [1, 2])
def test_ema_half_life(d_steps):
  """ema_kimg = h: after an iteration of n real images the EMA moves by 1 - 0.5 ** (n / h)."""
  gan = make_gan(ema_kimg=schedules.parse('linear(0.01, 0.03, 1)'), d_steps=d_steps)
  state = init_state(gan, jax.random.PRNGKey(0), SHAPE)
  state = state.replace(step=jnp.asarray(50, jnp.int32))
  seen = 50 * BATCH * d_steps
  half_life = 10 + 20 * seen / 1000  # images
  before = state.g_params
  new, metrics = steps.train_step(gan, state, real_batch())
  decay = 0.5 ** (BATCH * d_steps / half_life)
  expected = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, before, new.g_params)
  jax.tree.map(
    lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7), new.g_ema_params, expected
  )
  assert float(metrics['ema_kimg']) == pytest.approx(half_life / 1000)


def test_schedules_are_logged_and_resume_exactly(test_config, tmp_path):
  test_config.log_every = 1
  test_config.train.r1_weight = 'cosine(2.0, 0.2, 0.5)'
  test_config.optim.g_lr = 'linear(2e-4, 5e-5, 0.5)'
  test_config.optim.b2 = 'cosine(0.9, 0.99, 0.5)'
  test_config.train.ema_kimg = 'ramp(0.3, 0.5)'
  test_config.train.augment = 'translation'
  test_config.train.augment_p = 'cosine(0, 0.5, 0.5)'
  straight, resumed = straight_and_resumed(test_config, tmp_path)
  jax.tree.map(np.testing.assert_array_equal, straight, resumed)

  def rows(name):
    lines = (tmp_path / name / 'metrics.jsonl').read_text().splitlines()
    return [{k: v for k, v in json.loads(r).items() if 'sec' not in k} for r in lines]

  assert rows('straight') == rows('resumed')
  n = test_config.batch_size
  for row in rows('straight'):
    seen = (row['step'] - 1) * n  # the values of the iteration that ended at this step
    assert row['r1_weight'] == pytest.approx(_cosine(2.0, 0.2, seen / 500), rel=1e-5)
    assert row['g_lr'] == pytest.approx(2e-4 + (5e-5 - 2e-4) * min(seen / 500, 1), rel=1e-5)
    assert row['g_b2'] == row['d_b2'] == pytest.approx(_cosine(0.9, 0.99, seen / 500), rel=1e-5)
    assert row['ema_kimg'] == pytest.approx(0.3 * min(seen / 500, 1), rel=1e-5, abs=1e-9)
    assert row['augment_p'] == pytest.approx(_cosine(0, 0.5, seen / 500), abs=1e-6)
  assert 'd_lr' not in row  # only what follows a schedule


def _counting_penalty(every):
  """A G penalty that keeps state: how often it ran, and a running mean of its value."""

  def fn(inputs):
    value = jnp.mean(jnp.square(inputs.fake.images))
    count, mean = inputs.state['count'], inputs.state['mean']
    return value, {'count': count + 1, 'mean': mean + 0.5 * (value - mean)}

  def init():
    return {'count': jnp.zeros((), jnp.int32), 'mean': jnp.zeros((), jnp.float32)}

  return penalties.Penalty('counted', 'g', fn, weight=0.1, every=every, init=init)


@pytest.mark.parametrize('every', [1, 2])
def test_a_penalty_keeps_its_state_in_the_gan_state(monkeypatch, every):
  monkeypatch.setattr(penalties, '_REGISTRY', penalties._REGISTRY.copy())
  penalties.register(_counting_penalty(every))
  gan = make_gan(penalties='counted')
  state = init_state(gan, jax.random.PRNGKey(0), SHAPE)
  assert int(state.penalty_vars['counted']['count']) == 0
  train_step = jax.jit(lambda s, b: steps.train_step(gan, s, b))
  values = []
  for i in range(4):
    state, m = train_step(state, real_batch(seed=i))
    values.append(float(m['counted']))
  runs = [v for v in values if v]  # lazily: 0 where it did not run
  assert int(state.penalty_vars['counted']['count']) == len(runs) == 4 // every
  mean = 0.0
  for v in runs:
    mean += 0.5 * (v - mean)
  assert float(state.penalty_vars['counted']['mean']) == pytest.approx(mean, rel=1e-5)


def test_a_penalty_state_is_checkpointed(monkeypatch, test_config, tmp_path):
  monkeypatch.setattr(penalties, '_REGISTRY', penalties._REGISTRY.copy())
  penalties.register(_counting_penalty(2))
  test_config.train.penalties = 'counted'
  straight, resumed = straight_and_resumed(test_config, tmp_path)
  assert int(resumed.penalty_vars['counted']['count']) == 3
  jax.tree.map(np.testing.assert_array_equal, straight, resumed)


def test_checkpoints_from_before_penalty_state_restore(tmp_path):
  """A checkpoint written before GANState had penalty_vars (the same tree less that field)."""
  gan = make_gan()
  state = init_state(gan, jax.random.PRNGKey(0), SHAPE)
  old = {f: getattr(state, f) for f in state.__dataclass_fields__ if f != 'penalty_vars'}
  with ocp.CheckpointManager(str(tmp_path)) as manager:
    manager.save(0, args=ocp.args.StandardSave(old))
  restored = checkpoint.Checkpointer(str(tmp_path)).restore(jax.eval_shape(lambda: state))
  assert restored.penalty_vars == {}
  jax.tree.map(np.testing.assert_array_equal, restored.d_params, state.d_params)


def test_a_registered_penalty_may_weigh_by_a_schedule():
  s = schedules.parse('cosine(1.0, 0.1, 0.5)')
  fixed = penalties.Penalty('fixed', 'g', jnp.mean, weight=lambda gan: gan.r1_weight)
  scheduled = penalties.Penalty('scheduled', 'g', jnp.mean, weight=s)
  assert fixed.weight_of(make_gan(r1_weight=2.0)) == 2.0
  assert scheduled.weight_of(make_gan()) is s  # a Schedule is callable, but not of the GAN
