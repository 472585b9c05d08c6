"""python -m jaxgan.import_network: StyleGAN2-ADA network pickles as jaxgan run folders.

The pickles are made here with the official structure (tests/stylegan2_pickles.py, no NVIDIA
code); the imported G_ema is compared with a PyTorch forward pass of the pickled network written
there. The cross-check against the official code itself is local (docs: the importer's note).
"""

import functools
import json
import os
import pickle
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import evaluate, import_network, network_pickle, sample, train
from jaxgan import gan as gan_lib
from jaxgan.configs import stylegan2_cifar10
from jaxgan.errors import JaxganError
from jaxgan.evaluation import checkpoints
from jaxgan.models import stylegan2_official
from jaxgan.state import init_state
from tests import references
from tests import stylegan2_pickles as sp
from tests.conftest import REPO
from tests.test_first_hour import two_class_folder


@pytest.fixture(scope='module')
def torch():
  return references.load('torch')


def _write(path, obj):
  with sp.fake_persistence(), open(path, 'wb') as f:
    pickle.dump(obj, f)
  return str(path)


def _compare(nets, gan, state, torch, labels=None):
  """max |jaxgan - reference| / max |reference| of G_ema's images at psi 1 and 0.5."""
  g = nets['G_ema']
  z = np.random.default_rng(1).standard_normal((6, g.init_kwargs['z_dim'])).astype(np.float32)
  variables = {'params': state.g_ema_params, **state.g_vars}
  kw = {} if labels is None else {'labels': jnp.asarray(labels)}

  @jax.jit  # psi traced: one compilation for both
  def images(psi):
    return gan.generator.apply(
      variables, jnp.asarray(z), train=False, truncation_psi=psi, noise_mode='const', **kw
    )

  errors = []
  for psi in (1.0, 0.5):
    with torch.no_grad():
      t_labels = None if labels is None else torch.from_numpy(labels)
      want = sp.generate(g, torch.from_numpy(z), t_labels, psi).numpy().transpose(0, 2, 3, 1)
    got = np.asarray(images(jnp.float32(psi)))
    errors.append(float(np.abs(got - want).max() / np.abs(want).max()))
  return errors


def test_a_small_network_makes_the_same_images(tmp_path, torch):
  nets = sp.snapshot(sp.SMALL, p=0.25)
  pkl = _write(tmp_path / 'network-snapshot-000064.pkl', nets)
  lines = import_network.import_network(pkl, str(tmp_path / 'run'))
  assert any('start fresh' in line for line in lines)
  config, gan, state = checkpoints.load(str(tmp_path / 'run'))
  assert max(_compare(nets, gan, state, torch)) < 1e-4
  # G itself too (a different network than G_ema here), D, and what the pickle tells.
  g_kernel = nets['G'].modules['mapping'].modules['fc1'].params['weight'].numpy().T
  np.testing.assert_array_equal(state.g_params['mapping']['fc1']['kernel'], g_kernel)
  skip = nets['D'].modules['b16'].modules['skip'].params['weight'].numpy()
  np.testing.assert_array_equal(state.d_params['b16']['skip']['kernel'], skip.transpose(2, 3, 1, 0))
  # D's dense layer after the 4x4 conv reads (h, w, c) here, (c, h, w) officially.
  fc = nets['D'].modules['b4'].modules['fc'].params['weight'].numpy()  # (out, c * 16)
  kernel = np.asarray(state.d_params['b4']['fc']['kernel'])  # (16 * c, out)
  c = fc.shape[1] // 16
  for h, w, ch, o in [(0, 0, 1, 2), (1, 3, 0, 5), (3, 2, c - 1, 0)]:
    assert kernel[(h * 4 + w) * c + ch, o] == fc[o, ch * 16 + h * 4 + w]
  assert float(state.ada['p']) == pytest.approx(0.25)
  assert int(state.step) == 64_000 // config.batch_size
  m = config.model
  assert (m.latent_dim, m.w_dim, m.mapping_layers, m.channel_base, m.channel_max) == (
    16, 24, 3, 256, 32
  )  # fmt: skip
  assert (m.d_architecture, m.mbstd_group, m.conv_clamp, m.conditional) == ('resnet', 4, 0, False)
  assert config.data.dir == '/data/mydata.zip' and config.train.augment == 'bgc'
  # Not in the pickle: train.py's auto spec at 32 px (a residual D: not the cifar spec).
  assert any('auto spec at 32 px' in line for line in lines)
  assert (config.batch_size, config.train.r1_weight) == (32, pytest.approx(0.0002 * 32**2 / 32))


def test_the_cifar_spec_structure_imports_samples_and_evaluates(tmp_path, torch):
  """Conditional, fp16 layers, conv clamp 256, 2 mapping layers, D 'orig', mbstd 32: the
  official cifar spec, narrowed (the full widths: the next test)."""
  spec = dict(sp.CIFAR, z_dim=32, w_dim=32, channel_base=512, channel_max=64)
  nets = sp.snapshot(spec)
  pkl = _write(tmp_path / 'net.pkl', nets)
  workdir = str(tmp_path / 'run')
  import_network.import_network(pkl, workdir, kimg=3)
  config, gan, state = checkpoints.load(workdir)
  labels = np.arange(6, dtype=np.int32) % 10
  assert max(_compare(nets, gan, state, torch, labels)) < 1e-4
  assert config.model.conv_clamp == 256 and config.model.num_fp16_res == 4
  assert config.data.num_classes == 10 and config.data.labels == 'dataset_json'  # a .zip
  sample.sample(workdir, 5, str(tmp_path / 'samples.npz'))
  images = np.load(tmp_path / 'samples.npz')['images']
  assert images.shape == (5, 32, 32, 3) and images.std() > 0
  real = tmp_path / 'real'
  for k in range(10):
    two_class_folder(real / f'c{k}')
  # dataset_tool's labels file, as the zip the pickle names would hold.
  listed = [[f.relative_to(real).as_posix(), int(f.parts[-3][1:])] for f in real.rglob('*.png')]
  (real / 'dataset.json').write_text(json.dumps({'labels': listed}))
  report = evaluate.run(workdir, num_samples=10, data_dir=str(real))
  assert report['step'] == 3000 // config.batch_size and np.isfinite(report['metrics']['fid'])


def test_the_official_cifar_spec_maps_at_full_width(torch):
  """The spec's own widths (512 at every resolution): its config and every shape."""
  with sp.fake_persistence():
    data = pickle.dumps(sp.snapshot(sp.CIFAR, lazy=True))
  nets = network_pickle.read(data)
  model = stylegan2_official.model_config(nets['G'], nets['D'])
  recipe = stylegan2_cifar10.stylegan2_model()
  for key in ('latent_dim', 'w_dim', 'mapping_layers', 'channel_base', 'channel_max', 'mbstd_group',
              'd_architecture', 'conv_clamp', 'num_fp16_res'):  # fmt: skip
    assert model[f'model.{key}'] == recipe[key], key
  assert model['model.conditional'] and model['data.num_classes'] == 10
  config, image_shape, _ = import_network._config(nets, [])
  gan = gan_lib.from_config(config, image_shape)
  init = functools.partial(init_state, gan, image_shape=image_shape)
  like = jax.eval_shape(init, jax.random.PRNGKey(0))
  g_params, g_buffers = stylegan2_official.generator_variables(nets['G_ema'])
  import_network._fitted(g_params, like.g_params, 'G')
  import_network._fitted({'buffers': g_buffers}, like.g_vars, 'buffers')
  import_network._fitted(stylegan2_official.discriminator_params(nets['D']), like.d_params, 'D')


def test_the_imported_run_fine_tunes_with_jaxgan_main(tmp_path):
  # The cifar spec's kind (no path length, no style mixing: fewer phases to compile), at 8 px.
  spec = dict(sp.CIFAR, c_dim=0, z_dim=8, w_dim=8, resolution=8, channel_base=64, channel_max=8)
  pkl = _write(tmp_path / 'network-snapshot-000001.pkl', sp.snapshot(spec))
  workdir = str(tmp_path / 'run')
  import_network.import_network(pkl, workdir)
  _, _, imported = checkpoints.load(workdir)
  config = import_network.run_config(workdir)  # as W/config.py gives it to jaxgan.main
  config.data.dir = str(two_class_folder(tmp_path / 'images'))
  config.data.cache_dir, config.data.workers = str(tmp_path / 'cache'), 1
  config.batch_size, config.steps_per_call, config.sample_every = 4, 1, 0
  config.num_steps = int(imported.step) + 1
  config.train.augment, config.train.augment_p = '', 1.0  # ADA compiles long; tested apart
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == int(imported.step) + 1  # resumed, not started over
  before = imported.g_params['synthesis']['b8']['conv1']['kernel']
  after = state.g_params['synthesis']['b8']['conv1']['kernel']
  assert not np.array_equal(before, after)
  assert np.abs(np.asarray(after) - np.asarray(before)).max() < 0.1  # a step, not a new network


# --- refused files -------------------------------------------------------------------------------


class _RunsACommand:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return os.system, (f'touch {self.marker}',)


def test_a_reduce_that_runs_a_command_is_refused_and_runs_nothing(tmp_path):
  marker = tmp_path / 'ran'
  pkl = _write(tmp_path / 'evil.pkl', {'G': _RunsACommand(marker)})
  r = subprocess.run(
    [sys.executable, '-m', 'jaxgan.import_network', f'--pkl={pkl}', f'--workdir={tmp_path / "w"}'],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert r.returncode == 2 and not marker.exists()
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('jaxgan: error:') and 'system' in lines[0]
  assert not (tmp_path / 'w').exists()


class _Generator:  # a plain class of the trainer's, as other projects pickle their networks
  pass


# (R3GAN's training.networks.Generator is allowed, as data: tests/test_import_r3gan.py)
_Generator.__module__, _Generator.__qualname__ = 'training.networks', 'MappingNetwork'


def test_a_class_outside_the_allowed_set_is_refused(tmp_path, monkeypatch):
  import types

  module = types.ModuleType('training.networks')
  module.MappingNetwork = _Generator
  monkeypatch.setitem(sys.modules, 'training', types.ModuleType('training'))
  monkeypatch.setitem(sys.modules, 'training.networks', module)
  pkl = _write(tmp_path / 'foreign.pkl', {'G': _Generator()})
  with pytest.raises(JaxganError, match='refusing training.networks.MappingNetwork'):
    import_network.import_network(pkl, str(tmp_path / 'w'))


def test_the_embedded_source_never_runs(tmp_path):
  marker = tmp_path / 'ran'
  nets = sp.snapshot(dict(sp.SMALL, resolution=8, channel_base=32, channel_max=8))
  nets['G'].source = f'open({str(marker)!r}, "w").close()\n'
  nets['D'].source = f'import os\nos.system("touch " + {str(marker)!r})\n'
  read = network_pickle.read(open(_write(tmp_path / 'net.pkl', nets), 'rb').read())
  assert read['G'].class_name == 'Generator' and not marker.exists()


def test_bad_files_and_unsupported_networks_are_one_line_errors(tmp_path):
  junk = tmp_path / 'junk.pkl'
  junk.write_bytes(b'not a pickle at all')
  with pytest.raises(JaxganError, match='junk.pkl is not a network pickle'):
    import_network.import_network(str(junk), str(tmp_path / 'w'))
  nets = sp.snapshot(dict(sp.SMALL, resolution=8, channel_base=32, channel_max=8))
  nets['G'].init_kwargs['synthesis_kwargs']['architecture'] = 'resnet'
  with pytest.raises(JaxganError, match="architecture='resnet'; jaxgan's stylegan2 has 'skip'"):
    import_network.import_network(_write(tmp_path / 'n.pkl', nets), str(tmp_path / 'w'))
