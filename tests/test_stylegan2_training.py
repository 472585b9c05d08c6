"""StyleGAN2's training: style mixing, the path-length penalty against its definition, Adam
corrected for lazy regularisation, and the recipe repeating exactly across a resume."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import config as config_lib
from jaxgan import gan as gan_lib
from jaxgan.batch import FakeBatch, FakeInputs
from jaxgan.configs import stylegan2_cifar10, stylegan2_folder
from jaxgan.models import stylegan2 as sg
from jaxgan.objectives import penalties
from tests.conftest import straight_and_resumed
from tests.test_first_hour import two_class_folder

TINY = dict(w_dim=8, mapping_layers=2, channel_base=64, channel_max=8)


def _g(style_mixing=0.0, side=8):
  g = sg.Generator((side, side, 3), style_mixing=style_mixing, **TINY)
  z = jax.random.normal(jax.random.PRNGKey(1), (4, 8))
  variables = jax.jit(g.init, static_argnames='train')(
    {'params': jax.random.PRNGKey(0)}, z, train=False
  )
  return g, variables, z


def test_style_mixing_takes_the_layers_from_a_cutoff_from_another_latent():
  g, variables, z = _g(style_mixing=1.0)
  plain = g.apply(variables, z, train=False, method='map')
  cutoffs = set()
  for seed in range(8):
    rngs = {'noise': jax.random.PRNGKey(seed)}
    mixed = g.apply(variables, z, train=True, method='map', rngs=rngs, mutable=['buffers'])[0]
    same = np.all(np.isclose(mixed, plain), axis=(0, 2))  # per layer
    cutoff = int(np.argmin(same))
    assert 1 <= cutoff < g.num_ws and same[:cutoff].all() and not same[cutoff:].any()
    other = mixed[:, cutoff:]
    np.testing.assert_array_equal(other, jnp.broadcast_to(other[:, :1], other.shape))
    cutoffs.add(cutoff)
  assert len(cutoffs) > 1  # the cutoff is drawn
  g0, variables0, _ = _g(style_mixing=0.0)
  rngs = {'noise': jax.random.PRNGKey(0)}
  unmixed = g0.apply(variables0, z, train=True, method='map', rngs=rngs, mutable=['buffers'])[0]
  np.testing.assert_array_equal(unmixed, g0.apply(variables0, z, train=False, method='map'))


def _path_length_inputs(g, variables, z, mean):
  def apply(x, **kw):
    rngs = {'noise': jax.random.PRNGKey(5)}
    return g.apply(variables, x, train=True, rngs=rngs, mutable=['buffers'], **kw)[0]

  fake = FakeBatch(None, FakeInputs(z))
  return penalties.PenaltyInputs(None, None, fake, jax.random.PRNGKey(3), {'mean': mean}, apply)


def test_path_length_is_its_definition():
  """sqrt(mean over layers of |J_w^T y|^2) per sample, y ~ N(0, 1) / sqrt(H W), against the
  full Jacobian of the images w.r.t. the ws, on the first half of the batch."""
  g, variables, z = _g(style_mixing=0.5)
  inputs = _path_length_inputs(g, variables, z, jnp.float32(0.3))
  value, state = jax.jit(lambda: sg.path_length(inputs))()

  ws = inputs.apply(z[:2], method='map')
  images = inputs.apply(ws, method='synthesize')
  jacobian = jax.jit(jax.jacrev(lambda w: inputs.apply(w, method='synthesize')))(ws)
  y = jax.random.normal(jax.random.fold_in(inputs.key, 7), images.shape) / 8.0  # sqrt(8 * 8)
  jty = jnp.einsum('nhwcmlk,nhwc->mlk', jacobian, y)
  lengths = jnp.sqrt(jnp.mean(jnp.sum(jty**2, axis=2), axis=1))
  mean = 0.3 + 0.01 * (jnp.mean(lengths) - 0.3)
  np.testing.assert_allclose(state['mean'], mean, rtol=1e-5)
  np.testing.assert_allclose(value, jnp.mean((lengths - mean) ** 2), rtol=1e-4)

  def penalty(params):  # the gradient reaches G's parameters (through the Jacobian)
    v = {**variables, 'params': params}
    return sg.path_length(_path_length_inputs(g, v, z, jnp.float32(0.3)))[0]

  grads = jax.jit(jax.grad(penalty))(variables['params'])
  assert float(optax.tree.norm(grads)) > 0


def test_adam_is_corrected_for_lazy_intervals(test_config):
  test_config.optim.b1, test_config.optim.b2 = 0.0, 0.99
  test_config.optim.g_lr = test_config.optim.d_lr = 0.0025
  test_config.optim.reg_intervals = (4, 16)
  gan = gan_lib.from_config(test_config, (28, 28, 1))
  grads = {'w': jnp.array([0.5, -2.0, 1e-3])}
  params = {'w': jnp.zeros(3)}
  for opt, k in ((gan.g_optimizer, 4), (gan.d_optimizer, 16)):
    c = k / (k + 1)
    want = optax.adam(0.0025 * c, b1=0.0, b2=0.99**c)
    state, state_want = opt.init(params), want.init(params)
    for _ in range(3):
      u, state = opt.update(grads, state, params)
      u_want, state_want = want.update(grads, state_want, params)
      np.testing.assert_allclose(u['w'], u_want['w'], rtol=1e-6)
  test_config.optim.reg_intervals = (1, 0)
  with pytest.raises(config_lib.ConfigError, match='reg_intervals must be'):
    config_lib.validate(test_config)


def _tiny_recipe(tmp_path, arg=''):
  """The recipe at 8 px on a folder of two classes: its phases compile fast enough for CI."""
  config = stylegan2_cifar10.get_config(f'folder,{arg}' if arg else 'folder')
  config.data.dir = str(two_class_folder(tmp_path / 'images'))
  config.data.update(resolution=8, cache_dir=str(tmp_path / 'cache'), workers=1)
  config.model.update(latent_dim=8, **TINY, mbstd_group=2)
  config.batch_size, config.num_steps, config.steps_per_call = 4, 4, 1
  config.log_every, config.sample_every, config.checkpoint_every = 1, 0, 2
  config.eval_every = 0
  return config


def test_the_recipe_resumes_exactly_with_every_phase(tmp_path):
  """Lazy R1 (every 2), path length (every 4), style mixing, adaptive p, the EMA ramp and the
  lazy corrections: a stopped and resumed run equals a straight one bit for bit."""
  config = _tiny_recipe(tmp_path, 'cond')
  config.train.r1_every = 2
  config.train.penalties = 'path_length'
  config.model.update(style_mixing=0.9, pl_weight=2.0)
  config.train.ada_interval, config.train.ada_kimg = 2, 0.01
  straight, resumed = straight_and_resumed(config, tmp_path)
  jax.tree.map(np.testing.assert_array_equal, straight, resumed)
  lines = (tmp_path / 'straight' / 'metrics.jsonl').read_text().splitlines()
  rows = [json.loads(ln) for ln in lines]
  assert [r['path_length'] > 0 for r in rows] == [True, False, False, False]
  assert [r['r1'] > 0 for r in rows] == [True, False] * 2
  assert 'augment_p' in rows[-1] and float(straight.penalty_vars['path_length']['mean']) > 0
  assert not np.allclose(straight.g_vars['buffers']['mapping']['w_avg'], 0)


def test_recipe_options():
  full, cpu = stylegan2_cifar10.get_config('folder,cond'), stylegan2_cifar10.get_config('cpu')
  assert full.model.conditional and not cpu.model.conditional
  assert cpu.model.channel_max < full.model.channel_max and cpu.data.name == 'cifar10'
  for bad in ('gpu', 'folder,cifar10', 'cond,cond'):
    with pytest.raises(ValueError, match='bad config argument'):
      stylegan2_cifar10.get_config(bad)


@pytest.mark.parametrize(
  'arg, batch, base, mbstd, gamma, ema, side',
  [
    ('', 16, 16384, 4, 0.0002 * 256**2 / 16, 'ramp(5, 100)', 256),  # auto at 256 px
    ('64', 32, 16384, 4, 0.0002 * 64**2 / 32, 'ramp(10, 200)', 64),
    ('1024', 4, 32768, 4, 0.0002 * 1024**2 / 4, 'ramp(1.25, 25)', 1024),
    ('paper256,cond', 64, 16384, 8, 1.0, 20, 256),
    ('stylegan2,512', 32, 32768, 4, 10.0, 10, 512),
  ],
)
def test_folder_recipe_follows_train_py_specs(arg, batch, base, mbstd, gamma, ema, side):
  """train.py's --cfg (auto by resolution on one device, or a fixed spec) as jaxgan's keys."""
  config = stylegan2_folder.get_config(arg)
  config.data.dir = '.'
  config_lib.validate(config)
  assert (config.batch_size, config.model.channel_base, config.model.mbstd_group) == (
    batch,
    base,
    mbstd,
  )
  assert config.train.r1_weight == pytest.approx(gamma) and config.train.ema_kimg == ema
  assert config.data.resolution == side and config.model.conditional == ('cond' in arg)
  assert config.num_steps * batch == 25_000_000 and config.train.penalties == 'path_length'
  for bad in ('paper256,auto', '64,128', 'gpu', 'cond,cond'):
    with pytest.raises(ValueError, match='bad config argument'):
      stylegan2_folder.get_config(bad)
