"""The PyTorch reference is the same network and step as jaxgan's, and the bench CLI works."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import mnist as mnist_config
from jaxgan import gan as gan_lib
from jaxgan import images as images_lib
from jaxgan import steps
from jaxgan.state import init_state
from tests.conftest import REPO

IMAGE_SHAPE = (28, 28, 1)


def _jaxgan_step(config, batch: int, seed: int = 0):
  """One jaxgan train step from a fresh state; returns (state before, after, metrics, real, z)."""
  gan = gan_lib.from_config(config, IMAGE_SHAPE)
  state = jax.jit(lambda key: init_state(gan, key, IMAGE_SHAPE))(jax.random.PRNGKey(seed))
  pixels = np.random.default_rng(seed).integers(0, 256, (1, batch, *IMAGE_SHAPE), np.uint8)
  real = images_lib.to_float(pixels)
  # The latents train_step draws for its D step (and reuses for its G step).
  keys = jax.random.split(jax.random.fold_in(state.rng, state.step), gan.d_steps + gan.g_steps)
  z = gan.sample_latent(keys[0], batch)
  new, metrics = jax.jit(lambda s, r: steps.train_step(gan, s, r))(state, real)
  return state, new, metrics, np.asarray(real[0]), np.asarray(z)


def _in_torch_layout(torch_dcgan, config, state, g_tree, d_tree) -> dict:
  """Trees shaped like g_params/d_params, as named torch tensors (loaded into a fresh net)."""
  net = torch_dcgan.TorchDCGAN(config, IMAGE_SHAPE)
  torch_dcgan.load_jaxgan_state(net, state.replace(g_params=g_tree, d_params=d_tree))
  named = {f'g.{k}': v for k, v in net.g.named_parameters()}
  return named | {f'd.{k}': v for k, v in net.d.named_parameters()}


def test_torch_reference_takes_the_same_step():
  torch = pytest.importorskip('torch')
  from jaxgan import bench_torch as torch_dcgan

  config = mnist_config.get_config()
  batch = 16
  state, new, metrics, real, z = _jaxgan_step(config, batch)

  net = torch_dcgan.TorchDCGAN(config, IMAGE_SHAPE)
  torch_dcgan.load_jaxgan_state(net, state)
  losses = net.step(torch.tensor(real).permute(0, 3, 1, 2), torch.tensor(z))

  np.testing.assert_allclose(float(losses['d_loss']), metrics['d_loss'], rtol=1e-4)
  np.testing.assert_allclose(float(losses['g_loss']), metrics['g_loss'], rtol=1e-4)
  # After one Adam step the first moment is (1 - b1) * gradient in both: compare gradients.
  g_mu, d_mu = new.g_opt_state[0].mu, new.d_opt_state[0].mu
  want_grads = _in_torch_layout(torch_dcgan, config, state, g_mu, d_mu)
  want_params = _in_torch_layout(torch_dcgan, config, new, new.g_params, new.d_params)
  params = {f'g.{k}': v for k, v in net.g.named_parameters()}
  params |= {f'd.{k}': v for k, v in net.d.named_parameters()}
  optimizer = {**net.g_opt.state, **net.d_opt.state}
  for name, param in params.items():
    grad = optimizer[param]['exp_avg'].numpy()
    want = want_grads[name].detach().numpy()
    scale = np.abs(want).max()
    np.testing.assert_allclose(grad, want, rtol=1e-3, atol=1e-4 * scale, err_msg=name)
    # Adam's first step moves a weight by lr * sign(gradient), so where the gradient is about
    # float rounding the sign, and the weight, may differ; elsewhere they agree closely.
    clear = np.abs(want) > 1e-3 * scale
    got_p, want_p = param.detach().numpy(), want_params[name].detach().numpy()
    np.testing.assert_allclose(got_p[clear], want_p[clear], atol=1e-6, err_msg=name)
  # Batch statistics: running means (PyTorch's running variance is unbiased, flax's biased).
  for module, key in ((net.g, 'g'), (net.d, 'd')):
    fresh = torch_dcgan.TorchDCGAN(config, IMAGE_SHAPE)
    torch_dcgan.load_jaxgan_state(fresh, new)
    for (name, got), want in zip(
      module.state_dict().items(), getattr(fresh, key).state_dict().values(), strict=True
    ):
      if name.endswith('running_mean'):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_bench_cli_prints_table_and_json_from_any_folder(tmp_path):
  """As a user of the installed package runs it: another working folder, a config by path."""
  try:
    import torch  # noqa: F401

    with_torch = ['--torch']
  except ImportError:
    with_torch = []
  argv = [sys.executable, '-m', 'jaxgan.bench', f'--config={REPO / "configs" / "mnist.py"}']
  argv += ['--config.batch_size=8', '--config.model.g_features=16,8']
  argv += ['--config.model.d_features=8,16', '--config.train.steps_per_call=1']
  argv += ['--steps=2', '--rounds=2', *with_torch]
  r = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  lines = r.stdout.strip().splitlines()
  result = json.loads(lines[-1])
  assert 'compile' in '\n'.join(lines[:-1])
  for key in ('steps_per_s', 'images_per_s', 'compile_s', 'gflop_per_step', 'gflop_per_s'):
    assert result[key] > 0, key
  assert result['backend'] == jax.default_backend() and result['device_kind']
  if with_torch:
    assert result['ratio_jax_over_torch'] > 0
    assert len(result['torch_steps_per_s_rounds']) == 2


def test_jax_step_times_a_conditional_gan(test_config):
  """The bench feeds a conditional GAN's step the real images' classes, as the trainer does."""
  from jaxgan import bench

  test_config.model.conditional = True
  step = bench.JaxStep(test_config, IMAGE_SHAPE)
  assert step.labels is not None and step.labels.shape == (bench.NUM_IMAGES,)
  step.compile()
  before = int(step.state.step)
  assert step.run(2) > 0
  assert int(step.state.step) == before + 2
