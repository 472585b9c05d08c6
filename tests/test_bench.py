"""The PyTorch references (DCGAN, SNGAN ResNet) are the same networks and steps as jaxgan's,
and the bench times them beside jaxgan's own."""

import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import gan as gan_lib
from jaxgan import images as images_lib
from jaxgan import steps
from jaxgan.batch import Batch
from jaxgan.configs import cifar10_dcgan, cifar10_sngan
from jaxgan.configs import mnist_unconditional as mnist_config
from jaxgan.errors import JaxganError
from jaxgan.state import init_state
from tests import references
from tests.conftest import REPO

IMAGE_SHAPE = (28, 28, 1)


def _jaxgan_step(config, batch: int, image_shape=IMAGE_SHAPE, seed: int = 0):
  """One jaxgan train step from a fresh state; returns (state before, after, metrics, reals,
  latents): reals (d_steps, N, H, W, C), latents (d_steps + g_steps, N, latent_dim), the ones
  train_step draws from its keys."""
  gan = gan_lib.from_config(config, image_shape)
  state = jax.jit(lambda key: init_state(gan, key, image_shape))(jax.random.PRNGKey(seed))
  shape = (gan.d_steps, batch, *image_shape)
  real = images_lib.to_float(np.random.default_rng(seed).integers(0, 256, shape, np.uint8))
  keys = jax.random.split(jax.random.fold_in(state.rng, state.step), gan.d_steps + gan.g_steps)
  z = np.stack([gan.sample_latent(key, batch) for key in keys])
  new, metrics = jax.jit(lambda s, r: steps.train_step(gan, s, Batch(r)))(state, real)
  return state, new, metrics, np.asarray(real), z


def _named_params(net) -> dict:
  return {f'g.{k}': v for k, v in net.g.named_parameters()} | {
    f'd.{k}': v for k, v in net.d.named_parameters()
  }


def _in_torch_layout(torch_reference, config, image_shape, state, g_tree, d_tree) -> dict:
  """Trees shaped like g_params/d_params, as named torch tensors (loaded into a fresh net)."""
  net = torch_reference.TorchGAN(config, image_shape)
  torch_reference.load_jaxgan_state(net, state.replace(g_params=g_tree, d_params=d_tree))
  return _named_params(net)


def _check_same_step(config, batch: int, image_shape):
  """jaxgan's train_step and the PyTorch reference's step, from the same weights, statistics
  and inputs, give the same losses, gradients, updated weights and statistics."""
  torch = references.load('torch')
  from benchmarks import torch_reference

  state, new, metrics, real, z = _jaxgan_step(config, batch, image_shape)
  net = torch_reference.TorchGAN(config, image_shape)
  torch_reference.load_jaxgan_state(net, state)
  losses = net.step(torch.tensor(real).permute(0, 1, 4, 2, 3), torch.tensor(z))

  np.testing.assert_allclose(float(losses['d_loss']), metrics['d_loss'], rtol=1e-4)
  np.testing.assert_allclose(float(losses['g_loss']), metrics['g_loss'], rtol=1e-4)
  # Adam's first moments, the same function of each network's gradients in both.
  g_mu, d_mu = new.g_opt_state[0].mu, new.d_opt_state[0].mu
  want_grads = _in_torch_layout(torch_reference, config, image_shape, state, g_mu, d_mu)
  want_params = _in_torch_layout(
    torch_reference, config, image_shape, new, new.g_params, new.d_params
  )
  optimizer = {**net.g_opt.state, **net.d_opt.state}
  # Per network: some gradients are rounding noise around 0 (a conv bias that batch norm
  # cancels), to be measured against the network's other gradients.
  scales = {
    key: max(float(np.abs(v.detach().numpy()).max()) for n, v in want_grads.items() if n[0] == key)
    for key in 'gd'
  }
  for name, param in _named_params(net).items():
    grad = optimizer[param]['exp_avg'].numpy()
    want = want_grads[name].detach().numpy()
    scale = scales[name[0]]
    np.testing.assert_allclose(grad, want, rtol=1e-3, atol=1e-4 * scale, err_msg=name)
    # Adam's first step moves a weight by lr * sign(gradient), so where the gradient is about
    # float rounding the sign, and the weight, may differ; elsewhere they agree closely.
    clear = np.abs(want) > 1e-3 * scale
    got_p, want_p = param.detach().numpy(), want_params[name].detach().numpy()
    np.testing.assert_allclose(got_p[clear], want_p[clear], atol=1e-6, err_msg=name)
  # Batch statistics: running means (PyTorch's running variance is unbiased, flax's biased);
  # spectral norm's vectors.
  fresh = torch_reference.TorchGAN(config, image_shape)
  torch_reference.load_jaxgan_state(fresh, new)
  for module, key in ((net.g, 'g'), (net.d, 'd')):
    for (name, got), want in zip(
      module.state_dict().items(), getattr(fresh, key).state_dict().values(), strict=True
    ):
      if name.endswith(('running_mean', '.u')):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_torch_reference_takes_the_same_step():
  _check_same_step(mnist_config.get_config(), 16, IMAGE_SHAPE)


def _tiny_sngan():
  """configs/cifar10_sngan.py narrowed, with one block fewer in G and D: still every kind of
  block (D's first, downsampling and identity-shortcut blocks), compiled in less time."""
  config = cifar10_sngan.get_config()
  config.model.g_ch = config.model.d_ch = 8
  config.model.g_mults = config.model.d_mults = (1, 1, 1)
  return config


def test_torch_resnet_takes_the_same_step():
  """SNGAN's schedule (here 2 D updates, each on its own batch and fresh fakes, then a G update
  on the last fakes), hinge loss, spectral norm and ResNet blocks, on 16x16 images."""
  config = _tiny_sngan()
  config.train.d_steps = 2
  _check_same_step(config, 4, (16, 16, 3))


def test_torch_resnet_has_jaxgans_parameter_counts():
  references.load('torch')
  from benchmarks import torch_reference
  from jaxgan import models

  config = cifar10_sngan.get_config()
  image_shape = (32, 32, 3)
  g, d = models.create(config.model, image_shape)
  g_vars = jax.eval_shape(
    lambda: g.init(jax.random.PRNGKey(0), jnp.zeros((2, config.model.latent_dim)))
  )
  d_vars = jax.eval_shape(lambda: d.init(jax.random.PRNGKey(0), jnp.zeros((2, *image_shape))))
  torch_g, torch_d = torch_reference.build(config.model, image_shape)
  for variables, net in ((g_vars, torch_g), (d_vars, torch_d)):
    want = sum(x.size for x in jax.tree.leaves(variables['params']))
    assert sum(p.numel() for p in net.parameters()) == want
  # One spectral-norm vector per weight matrix of D, as in jaxgan.
  u_sizes = sorted(x.size for x in jax.tree.leaves(d_vars['batch_stats']) if x.ndim == 2)
  assert sorted(b.numel() for n, b in torch_d.named_buffers() if n.endswith('.u')) == u_sizes


def test_torch_reference_refuses_what_it_does_not_mirror():
  references.load('torch')
  from benchmarks import torch_reference

  assert torch_reference.unmirrored(cifar10_sngan.get_config()) == []
  assert torch_reference.unmirrored(cifar10_dcgan.get_config()) == []
  config = cifar10_sngan.get_config()
  config.model.conditional = True
  config.train.gp_weight = 10.0
  with pytest.raises(ValueError, match=r'model.conditional=True, train.gp_weight=10.0'):
    torch_reference.TorchGAN(config, (32, 32, 3))


@pytest.mark.parametrize('name', ['cifar10_dcgan', 'cifar10_sngan'])
def test_bench_times_cifar_configs_against_torch(name, monkeypatch):
  """Both CIFAR-10 recipes' networks, narrowed, timed on both sides; SNGAN with 1 D update a
  step, not 5, which would take as much longer to compile (the schedule is checked above)."""
  references.load('torch')
  from jaxgan import bench

  monkeypatch.setattr(bench, 'NUM_IMAGES', 64)  # the synthetic dataset: small is enough
  # One thread for the PyTorch worker: its threads waited on each other for seconds a step
  # while the test workers (or other jobs) kept the cores busy; speed is not tested here.
  monkeypatch.setenv('OMP_NUM_THREADS', '1')
  if name == 'cifar10_dcgan':
    config = cifar10_dcgan.get_config()
    config.model.g_features, config.model.d_features = (16, 8, 4), (4, 8, 16)
  else:
    config = _tiny_sngan()
    config.train.d_steps = 1
  config.batch_size = 2
  config.steps_per_call = 1
  r = bench.benchmark(config, (32, 32, 3), steps=1, rounds=1, with_torch=True, tune_malloc=False)
  assert r['model'] == config.model.name and r['d_steps'] == config.train.d_steps
  for key in ('steps_per_s', 'torch_steps_per_s', 'ratio_jax_over_torch', 'gflop_per_step'):
    assert np.isfinite(r[key]) and r[key] > 0, key
  assert r['torch_device'] == 'cpu' or jax.default_backend() == 'gpu'


def test_bench_cli_prints_table_and_json_from_any_folder(tmp_path):
  """As a user of the installed package runs it: another working folder, a config by path."""
  try:
    import torch  # noqa: F401

    with_torch = ['--torch']
  except ImportError:
    with_torch = []
  argv = [
    sys.executable,
    '-m',
    'jaxgan.bench',
    f'--config={REPO / "configs" / "mnist.py"}',
  ]
  # Made unconditional here, as the PyTorch reference is.
  argv += ['--config.model.conditional=False', '--config.data.clusters=0']
  argv += ['--config.train.ema_decay=0', '--config.train.mode_seeking=0']
  argv += ['--config.batch_size=8', '--config.model.g_features=16,8']
  argv += ['--config.model.d_features=8,16', '--config.steps_per_call=1']
  argv += ['--steps=2', '--rounds=2', f'--out={tmp_path / "r.json"}', *with_torch]
  # The configs of a checkout import configs.common: its root on the path, as for anyone who
  # runs them from another folder.
  path = os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')]))
  env = dict(os.environ, PYTHONPATH=path)
  r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  lines = r.stdout.strip().splitlines()
  result = json.loads(lines[-1])
  assert json.loads((tmp_path / 'r.json').read_text()) == result
  assert 'compile' in '\n'.join(lines[:-1])
  for key in ('steps_per_s', 'images_per_s', 'compile_s', 'gflop_per_step', 'gflop_per_s'):
    assert result[key] > 0, key
  assert result['backend'] == jax.default_backend() and result['device_kind']
  if with_torch:
    assert result['ratio_jax_over_torch'] > 0
    assert len(result['torch_steps_per_s_rounds']) == 2


def test_torch_needs_pytorch(test_config, monkeypatch):
  from jaxgan import bench

  monkeypatch.setitem(sys.modules, 'torch', None)  # import torch fails; find_spec says None
  with pytest.raises(JaxganError, match=r'^--torch needs PyTorch: pip install torch$'):
    bench.TorchStep(test_config, IMAGE_SHAPE)


def test_torch_outside_a_checkout_is_one_error_line(tmp_path):
  """jaxgan and configs/ as an installed package has them, without benchmarks/: --torch says
  it needs a checkout, in one line, before anything is compiled."""
  site = tmp_path / 'site'
  for package in ('jaxgan', 'configs'):
    shutil.copytree(REPO / package, site / package, ignore=shutil.ignore_patterns('__pycache__'))
  argv = [sys.executable, '-m', 'jaxgan.bench', f'--config={site / "configs" / "test.py"}']
  env = dict(os.environ, PYTHONPATH=str(site))
  r = subprocess.run(
    [*argv, '--torch'], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
  )
  assert r.returncode == 2, r.stderr[-3000:]
  assert 'Traceback' not in r.stderr
  assert r.stderr.strip().splitlines()[-1] == (
    'jaxgan: error: --torch needs a checkout of the jaxgan repository (its '
    'benchmarks/torch_reference.py is not part of the installed package); this jaxgan is in '
    f'{site / "jaxgan"}'
  )


def test_jax_step_times_a_conditional_gan(test_config):
  """The bench feeds a conditional GAN's step the real images' classes, as the trainer does."""
  from jaxgan import bench

  test_config.model.conditional = True
  step = bench.JaxStep(test_config, IMAGE_SHAPE)
  labels = step.data[1]
  assert labels is not None and labels.shape == (bench.NUM_IMAGES,)
  step.compile()
  before = int(step.state.step)
  assert step.run(2) > 0
  assert int(step.state.step) == before + 2
