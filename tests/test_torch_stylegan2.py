"""benchmarks/torch_stylegan2.py, loaded with a jaxgan StyleGAN2's parameters, computes the same
function: G's images (constant noise), D's logits, and their gradients. Tiny networks."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models import stylegan2 as sg

torch = pytest.importorskip('torch')
ref = pytest.importorskip('benchmarks.torch_stylegan2')

M = types.SimpleNamespace(
  latent_dim=8, w_dim=8, mapping_layers=2, mapping_lr=0.01, channel_base=64, channel_max=8,
  conv_clamp=4.0, d_architecture='resnet', d_mapping_layers=2, mbstd_group=2, mbstd_channels=2,
)  # fmt: skip
SHAPE, CLASSES, N = (16, 16, 3), 3, 4


def _random(shapes, seed):
  """Every variable drawn at random (biases, noise strengths, w_avg too: no zero hides a term);
  the mapping layers' weights at N(0, 1) / lr_mult, as stored."""
  rng = np.random.default_rng(seed)

  def draw(path, a):
    name = jax.tree_util.keystr(path)
    scale = 100.0 if "mapping']['fc" in name and name.endswith("['kernel']") else 0.5
    return (scale * rng.standard_normal(a.shape)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


@pytest.fixture(scope='module')
def nets():
  kw = dict(channel_base=M.channel_base, channel_max=M.channel_max, conv_clamp=M.conv_clamp)
  g = sg.Generator(SHAPE, M.w_dim, CLASSES, M.mapping_layers, M.mapping_lr, **kw)
  d = sg.Discriminator(CLASSES, mapping_layers=M.d_mapping_layers, mbstd_group=M.mbstd_group,
                       mbstd_channels=M.mbstd_channels, **kw)  # fmt: skip
  z = np.random.default_rng(1).standard_normal((N, M.latent_dim)).astype(np.float32)
  labels = np.arange(N) % CLASSES
  key = {'params': jax.random.PRNGKey(0)}
  gv = _random(jax.eval_shape(lambda: g.init(key, z, train=False, labels=labels)), 2)
  images = np.random.default_rng(3).standard_normal((N, *SHAPE)).astype(np.float32)
  dv = _random(jax.eval_shape(lambda: d.init(key, images, labels=labels)), 4)
  tg, td = ref.Generator(M, SHAPE, CLASSES), ref.Discriminator(M, SHAPE, CLASSES)
  ref.load_jaxgan(tg, td, gv['params'], dv['params'], gv['buffers'])
  return g, d, gv, dv, tg, td, z, labels, images


def _nchw(a):
  return np.asarray(a).transpose(0, 3, 1, 2)


def test_g_images_and_their_gradient_w_r_t_z_agree(nets):
  g, _, gv, _, tg, _, z, labels, _ = nets

  def images(z):
    return g.apply(gv, z, train=False, labels=labels, noise_mode='const')

  want, vjp = jax.jit(lambda z: jax.vjp(images, z))(z)
  cot = np.cos(np.asarray(want))
  (want_dz,) = vjp(jnp.asarray(cot))
  tz = torch.from_numpy(z).requires_grad_(True)
  got = tg(tz, torch.from_numpy(labels), noise_mode='const')
  (got * torch.from_numpy(_nchw(cot))).sum().backward()
  scale = float(np.abs(want).max())
  np.testing.assert_allclose(got.detach().numpy(), _nchw(want), atol=1e-4 * scale, rtol=0)
  dz = float(np.abs(want_dz).max())
  np.testing.assert_allclose(tz.grad.numpy(), want_dz, atol=1e-3 * dz, rtol=0)


def test_d_logits_and_r1_gradient_agree(nets):
  _, d, _, dv, _, td, _, labels, images = nets

  def logits(x):
    return d.apply(dv, x, labels=labels)

  def r1(params):
    grad = jax.grad(lambda x: jnp.sum(d.apply({'params': params}, x, labels=labels)))(images)
    return jnp.sum(jnp.square(grad))

  want = jax.jit(logits)(images)
  want_dx = jax.jit(jax.grad(lambda x: jnp.sum(jnp.sin(logits(x)))))(images)
  want_r1 = jax.jit(jax.grad(r1))(dv['params'])['b16']['conv0']['kernel']
  x = torch.from_numpy(_nchw(images)).requires_grad_(True)
  got = td(x, torch.from_numpy(labels))
  np.testing.assert_allclose(got.detach().numpy(), want, atol=1e-4 * float(np.abs(want).max()))
  (dx,) = torch.autograd.grad(got.sin().sum(), x)
  np.testing.assert_allclose(dx.numpy(), _nchw(want_dx), atol=1e-4 * float(np.abs(want_dx).max()))
  x = torch.from_numpy(_nchw(images)).requires_grad_(True)
  (grad,) = torch.autograd.grad(td(x, torch.from_numpy(labels)).sum(), x, create_graph=True)
  grad.square().sum().backward()
  got_r1 = td.blocks[0].conv0.weight.grad.numpy().transpose(2, 3, 1, 0)
  np.testing.assert_allclose(got_r1, want_r1, atol=1e-3 * float(np.abs(want_r1).max()))
