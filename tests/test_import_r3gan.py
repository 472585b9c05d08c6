"""python -m jaxgan.import_network on R3GAN training snapshots (brownvc/R3GAN).

The snapshots are made here with the official structure (tests/r3gan_pickles.py, no R3GAN
code); the imported G_ema is compared with a PyTorch forward of the pickled network written
there. The cross-check against the official code itself is local (docs/import_network.md).
"""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import import_network, network_pickle, sample, train
from jaxgan.configs import r3gan_cifar10
from jaxgan.errors import JaxganError
from jaxgan.evaluation import checkpoints
from jaxgan.models import r3gan, r3gan_official
from tests import r3gan_pickles as rp
from tests import references
from tests.test_first_hour import two_class_folder


@pytest.fixture(scope='module')
def torch():
  return references.load('torch')


def _write(path, obj):
  with rp.fake_modules(), open(path, 'wb') as f:
    pickle.dump(obj, f)
  return str(path)


def _error(g, apply, labels) -> float:
  """max |jaxgan - reference| / max |reference| of G's images."""
  z = np.random.default_rng(1).standard_normal((len(labels), g.z_dim)).astype(np.float32)
  want = rp.generate(g, z, labels if g.c_dim else None)
  got = np.asarray(apply(jnp.asarray(z), jnp.asarray(labels)))
  return float(np.abs(got - want).max() / np.abs(want).max())


def _adam(opt_state):
  """The optax ScaleByAdamState inside jaxgan's optimizer state."""
  return opt_state.inner.inner_state[0]


def test_a_small_conditional_snapshot_makes_the_same_images(tmp_path, torch):
  nets = rp.snapshot(rp.SMALL, c_dim=10, cur_nimg=1_000_000)
  workdir = str(tmp_path / 'run')
  lines = import_network.import_network(_write(tmp_path / 'snap.pkl', nets), workdir)
  config, gan, state = checkpoints.load(workdir)
  labels = np.arange(6, dtype=np.int32) % 10

  def apply(z, y):
    return gan.generator.apply({'params': state.g_ema_params}, z, train=False, labels=y)

  assert _error(nets['G_ema'], apply, labels) < 1e-4
  # What the snapshot tells: the structure, the images seen, Adam's moments and step count.
  m = config.model
  assert (*map(tuple, (m.widths, m.cardinalities, m.blocks)), m.expansion, m.kernel_size) == (
    (16, 24, 24, 8), (4, 6, 3, 2), (1, 2, 1, 1), 2, 3
  )  # fmt: skip
  assert (m.latent_dim, m.g_embed_dim, m.d_embed_dim, m.bf16_stages) == (12, 12, 16, 1)
  assert m.conditional and config.data.num_classes == 10 and config.data.mirror
  assert int(state.step) == 1_000_000 // config.batch_size
  g1 = nets['G'].Model.MainLayers[1].Layers[1].LinearLayer2.Layer.weight.numpy()
  got = state.g_params['stage1_block0']['conv2']
  np.testing.assert_array_equal(got, g1.transpose(2, 3, 1, 0))
  d = nets['D'].Model
  np.testing.assert_array_equal(
    state.d_params['transition0']['kernel'], d.MainLayers[0].Layers[1].LinearLayer.Layer.weight[
      :, :, 0, 0].numpy().T
  )  # fmt: skip
  names = r3gan_official.param_names(
    network_pickle.read(open(tmp_path / 'snap.pkl', 'rb').read())['D']
  )
  index = names.index('Model.EmbeddingLayer.weight')
  torch_state = nets['D_opt_state']['state'][index]
  adam = _adam(state.d_opt_state)
  np.testing.assert_array_equal(adam.mu['embed']['embedding'], torch_state['exp_avg'].numpy().T)
  np.testing.assert_array_equal(adam.nu['embed']['embedding'], torch_state['exp_avg_sq'].numpy().T)
  assert int(adam.count) == int(torch_state['step']) == 2
  assert int(state.d_opt_state.inner.count) == 2
  assert any("the snapshot's Adam moments, step 2" in line for line in lines)
  # The recipe's hyperparameters: the CIFAR10 preset's.
  recipe = r3gan_cifar10.get_config('cond')
  assert (config.batch_size, config.optim.b2, config.train.r1_weight) == (
    recipe.batch_size, recipe.optim.b2, recipe.train.r1_weight
  )  # fmt: skip
  _check_the_next_adam_step(nets, state, torch)
  sample.sample(workdir, 4, str(tmp_path / 'samples.npz'))
  images = np.load(tmp_path / 'samples.npz')['images']
  assert images.shape == (4, 32, 32, 3) and images.std() > 0


def _check_the_next_adam_step(nets, state, torch):
  """Adam's moments and step count carry on: optax's update from the imported state equals
  torch's step from the snapshot's, for the same gradient and hyperparameters."""
  import optax

  g = nets['G'].requires_grad_(True)
  weight = g.Model.AggregationLayer.Layer.weight  # (3, C, 1, 1); jaxgan's out.kernel (C, 3)
  opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.0, 0.9), eps=1e-8)
  opt.load_state_dict(nets['G_opt_state'])
  grad = np.random.default_rng(3).standard_normal(weight.shape).astype(np.float32)
  weight.grad = torch.from_numpy(grad)  # the only parameter with a gradient: the only one stepped
  with torch.no_grad():
    weight.zero_()  # so that the weight after the step is the update itself, not rounded by it
  opt.step()
  want = weight.detach()[:, :, 0, 0].numpy().T
  grads = jax.tree.map(jnp.zeros_like, state.g_params)
  grads['out']['kernel'] = jnp.asarray(grad[:, :, 0, 0].T)
  adam = optax.adam(2e-4, b1=0.0, b2=0.9, eps=1e-8)
  updates, _ = adam.update(grads, (_adam(state.g_opt_state), optax.EmptyState()))
  np.testing.assert_allclose(updates['out']['kernel'], want, rtol=1e-5)


def test_the_cifar10_preset_maps_at_full_width(torch):
  """The official CIFAR10 preset, conditional: its structure and G_ema's images."""
  g = rp.generator(rp.CIFAR, c_dim=10)
  with rp.fake_modules():
    read = network_pickle.read(pickle.dumps({'G': g}))['G']
  model = r3gan_official.model_config(read)
  preset = r3gan.PRESETS['cifar10']
  for key, value in preset.items():
    assert model[f'model.{key}'] == value, key
  assert model['image_shape'] == (32, 32, 3) and model['data.num_classes'] == 10
  cfg = config_lib.defaults('r3gan', 'cifar10').model
  cfg.update({k.split('.')[1]: v for k, v in model.items() if k.startswith('model.')})
  generator, _ = r3gan.build(cfg, (32, 32, 3), num_classes=10)
  params = r3gan_official.generator_params(read)

  @jax.jit
  def apply(z, y):
    return generator.apply({'params': params}, z, train=False, labels=y)

  assert _error(g, apply, np.array([3, 7], np.int32)) < 1e-4


def test_an_unconditional_snapshot_without_optimizer_states_starts_fresh_and_fine_tunes(
  tmp_path, torch
):
  spec = dict(rp.SMALL, widths=[8, 8], cards=[2, 4], blocks=[1, 1], bf16=0)  # 8 px
  nets = rp.snapshot(spec, c_dim=0, cur_nimg=5000, optimizer=False)
  workdir = str(tmp_path / 'run')
  lines = import_network.import_network(_write(tmp_path / 'snap.pkl', nets), workdir)
  assert any('G: not in the snapshot: fresh' in line for line in lines)
  config, gan, state = checkpoints.load(workdir)
  assert not config.model.conditional and config.data.num_classes == 0
  assert config.data.dir == '/data/cifar10.zip'  # not CIFAR-10's shape: the folder it names
  assert int(_adam(state.g_opt_state).count) == 0
  assert not np.asarray(_adam(state.g_opt_state).mu['out']['kernel']).any()

  def apply(z, y):
    return gan.generator.apply({'params': state.g_ema_params}, z, train=False)

  assert _error(nets['G_ema'], apply, np.zeros(3, np.int32)) < 1e-4
  # Fine-tuning with jaxgan.main: W/config.py's config resumes from the imported step.
  config = import_network.run_config(workdir)
  config.data.dir = str(two_class_folder(tmp_path / 'images'))
  config.data.cache_dir, config.data.workers = str(tmp_path / 'cache'), 1
  config.batch_size, config.steps_per_call, config.sample_every = 4, 1, 0
  config.num_steps = int(state.step) + 1
  config.train.augment, config.train.augment_p = '', 1.0  # the augmentation is tested apart
  tuned = train.train_and_evaluate(config, workdir)
  assert int(tuned.step) == int(state.step) + 1  # resumed, not started over
  assert int(_adam(tuned.g_opt_state).count) == 1
  before, after = state.g_params['out']['kernel'], tuned.g_params['out']['kernel']
  assert not np.array_equal(before, after)
  assert np.abs(np.asarray(after) - np.asarray(before)).max() < 0.1  # a step, not a new network


def test_classes_outside_r3gans_modules_are_refused(tmp_path, torch):
  nets = rp.snapshot(rp.SMALL, c_dim=0, cur_nimg=0, optimizer=False)
  with rp.fake_modules():
    data = pickle.dumps(nets)
  # The same bytes with one class renamed to R3GAN's trainer (same length: the pickle stays whole).
  bad = data.replace(b'ResidualBlock', b'Trainer.Adam1', 1)
  (tmp_path / 'bad.pkl').write_bytes(bad)
  with pytest.raises(JaxganError, match='refusing R3GAN.Networks.Trainer.Adam1'):
    import_network.import_network(str(tmp_path / 'bad.pkl'), str(tmp_path / 'w'))
  # An allowed class whose state is not a module's __dict__ is refused too.
  nets['G'].Model.MainLayers[0].Layers[1].__dict__['_parameters'] = ['not', 'a', 'dict']
  with rp.fake_modules():
    data = pickle.dumps(nets)
  (tmp_path / 'odd.pkl').write_bytes(data)
  with pytest.raises(JaxganError, match='not dicts'):
    import_network.import_network(str(tmp_path / 'odd.pkl'), str(tmp_path / 'w'))
  assert not (tmp_path / 'w').exists()
