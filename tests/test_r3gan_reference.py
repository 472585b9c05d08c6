"""benchmarks/torch_r3gan.py computes jaxgan.models.r3gan's functions: each block, the bases,
the resamplers and whole G and D, conditional or not, with jaxgan's parameters loaded give the
same outputs and the same gradients (inputs and every parameter); and its D and G losses are
the paper's, differentiated by JAX."""

import copy
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import models
from jaxgan.models import r3gan
from tests import references

# 3 stages (16 px), a width change in each direction, unequal cardinalities.
TINY = dict(widths=(8, 4, 6), cardinalities=(2, 1, 3), blocks=(1, 1, 1), latent_dim=6)
SIDE = 16


@pytest.fixture(scope='module')
def torch():
  return references.load('torch')


@pytest.fixture(scope='module')
def ref(torch):
  from benchmarks import torch_r3gan

  return torch_r3gan


def _live(module, *args, seed=0, **kwargs):
  """Every parameter drawn at random (no zero-initialised conv or bias hides a term)."""
  rng = np.random.default_rng(seed)

  def draw(path, a):
    std = 0.1 if 'bias' in jax.tree_util.keystr(path) else 1 / math.sqrt(np.prod(a.shape[:-1]))
    return jnp.asarray(std * rng.standard_normal(a.shape), a.dtype)

  shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args, **kwargs))
  return jax.tree_util.tree_map_with_path(draw, shapes)['params']


def _nchw(a):
  return np.asarray(a).transpose(0, 3, 1, 2) if np.ndim(a) == 4 else np.asarray(a)


def _close(got, want, rtol=2e-4):
  want = np.asarray(want)
  np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


def _compare(torch, ref, flax_module, torch_module, params, x, **kw):
  """flax_module(x) vs torch_module(x) with `params` loaded in both: the outputs, and the
  gradients of <outputs, random cotangent> w.r.t. x and every parameter."""
  ref.load_jaxgan_params(torch_module, params)

  def apply(p, x):
    return flax_module.apply({'params': p}, x, **kw)

  y = jax.jit(apply)(params, x)
  rng = np.random.default_rng(1)
  cot = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape), jnp.float32), y)
  p_grads, x_grads = jax.jit(lambda p, x, c: jax.vjp(apply, p, x)[1](c))(params, x, cot)

  tx = torch.tensor(_nchw(x), requires_grad=True)
  torch_kw = {k: torch.tensor(np.asarray(v)) for k, v in kw.items()}
  ty = torch_module(tx, **torch_kw)
  ys, tys, cots = (v if isinstance(v, tuple) else (v,) for v in (y, ty, cot))
  for a, b in zip(ys, tys, strict=True):
    _close(b.detach().numpy(), _nchw(a))
  sum(
    (b * torch.tensor(_nchw(c), dtype=torch.float32)).sum() for b, c in zip(tys, cots, strict=True)
  ).backward()
  _close(tx.grad.numpy(), _nchw(x_grads))
  want = copy.deepcopy(torch_module)
  ref.load_jaxgan_params(want, p_grads)  # jaxgan's gradients in torch's layout, by path
  for (name, p), (_, w) in zip(
    torch_module.named_parameters(), want.named_parameters(), strict=True
  ):
    assert p.grad is not None, name
    _close(p.grad.numpy(), w.detach().numpy())


def _x(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def test_the_resamplers_match(torch, ref):
  x = _x((2, 8, 6, 3))
  for fn, tfn in ((r3gan.upsample, ref.upsample), (r3gan.downsample, ref.downsample)):
    y, vjp = jax.vjp(fn, x)
    cot = _x(y.shape, 1)
    tx = torch.tensor(_nchw(x), requires_grad=True)
    ty = tfn(tx)
    _close(ty.detach().numpy(), _nchw(y))
    (ty * torch.tensor(_nchw(cot))).sum().backward()
    _close(tx.grad.numpy(), _nchw(vjp(cot)[0]))


@pytest.mark.parametrize('cardinality, expansion', [(3, 2), (1, 1), (12, 2)])
def test_a_residual_block_matches(torch, ref, cardinality, expansion):
  x = _x((2, 6, 5, 6))
  block = r3gan.ResidualBlock(cardinality, expansion, 3, 4)
  params = _live(block, x)
  _compare(torch, ref, block, ref.ResidualBlock(6, cardinality, expansion, 3, 4), params, x)


def test_the_bases_match(torch, ref):
  z = _x((3, 5))
  g_basis = r3gan.GenerativeBasis(7)
  _compare(torch, ref, g_basis, ref.GenerativeBasis(5, 7), _live(g_basis, z), z)
  x = _x((3, 4, 4, 7))
  d_basis = r3gan.DiscriminativeBasis(2)
  _compare(torch, ref, d_basis, ref.DiscriminativeBasis(7, 2), _live(d_basis, x), x)


def _config(**overrides):
  config = config_lib.defaults('r3gan', 'mnist')
  config.model.update({**TINY, **overrides})
  return config


@pytest.mark.parametrize('num_classes', [0, 4])
def test_g_and_d_match(torch, ref, num_classes):
  config = _config(conditional=bool(num_classes), g_embed_dim=5, d_embed_dim=7)
  g, d = models.create(config.model, (SIDE, SIDE, 3), num_classes)
  tg, td = ref.build(config.model, (SIDE, SIDE, 3), num_classes)
  z = _x((3, 6))
  kw = {'labels': jnp.array([2, 0, 3])} if num_classes else {}
  _compare(torch, ref, g, tg, _live(g, z, **kw), z, **kw)
  x = _x((3, SIDE, SIDE, 3), 2)
  _compare(torch, ref, d, td, _live(d, x, **kw), x, **kw)


def test_the_losses_are_the_papers(torch, ref):
  """R3GANStep's D loss, softplus(-(D(x) - D(G(z)))) + gamma / 2 (R1 + R2), and G's,
  softplus(-(D(G(z)) - D(x))), with their gradients, against JAX's autodiff of the definitions."""
  config = _config(widths=(4, 6), cardinalities=(1, 3), blocks=(1, 1))  # 8 px: compiles fast
  config.train.loss, config.train.r1_weight = 'rpgan', 0.3
  with config.unlocked():
    config.train.r2_weight = 0.3
  g, d = models.create(config.model, (8, 8, 3))
  step = ref.R3GANStep(config, (8, 8, 3))
  z, real = _x((3, 6)), _x((3, 8, 8, 3), 2)
  g_params, d_params = _live(g, z), _live(d, real, seed=1)
  ref.load_jaxgan_params(step.g, g_params)
  ref.load_jaxgan_params(step.d, d_params)
  fake = g.apply({'params': g_params}, z)

  def d_fn(p, x):
    return d.apply({'params': p}, x)

  def penalty(p, x):  # batch mean of the per-sample squared gradient norm
    grads = jax.grad(lambda x: d_fn(p, x).sum())(x)
    return jnp.mean(jnp.sum(grads**2, axis=(1, 2, 3)))

  def d_loss(p):
    adv = jnp.mean(jax.nn.softplus(-(d_fn(p, real) - d_fn(p, fake))))
    return adv + 0.3 / 2 * (penalty(p, real) + penalty(p, fake))

  def g_loss(gp):
    f = g.apply({'params': gp}, z)
    return jnp.mean(jax.nn.softplus(-(d_fn(d_params, f) - d_fn(d_params, real))))

  t_real, t_z = torch.tensor(_nchw(real)), torch.tensor(np.asarray(z))
  for net, loss, p, t_loss in (
    (step.d, d_loss, d_params, lambda: step.d_loss(t_real, step.g(t_z).detach())),
    (step.g, g_loss, g_params, lambda: step.g_loss(t_real, step.g(t_z))),
  ):
    value, grads = jax.jit(jax.value_and_grad(loss))(p)
    net.zero_grad()
    got = t_loss()
    got.backward()
    _close(got.item(), value)
    want = copy.deepcopy(net)
    ref.load_jaxgan_params(want, grads)
    for a, b in zip(net.parameters(), want.parameters(), strict=True):
      _close(a.grad.numpy(), b.detach().numpy())
    net.zero_grad()
  assert all(p.grad is None for p in step.d.parameters())  # D is a constant of G's step


def test_bfloat16_stages_are_jaxgans(torch, ref):
  """The stages `bf16_stages` names compute in bfloat16 in both (G's last, D's first): the
  outputs agree to bfloat16's precision, and differ from float32's by more than that."""
  kw = {k: TINY[k] for k in ('widths', 'cardinalities', 'blocks')}
  z, x = _x((3, 6)), _x((3, SIDE, SIDE, 3), 2)
  for flax_net, torch_net, inputs in (
    (r3gan.Generator(bf16_stages=2, **kw), ref.Generator(6, bf16_stages=2, **kw), z),
    (r3gan.Discriminator(bf16_stages=2, **kw), ref.Discriminator(bf16_stages=2, **kw), x),
  ):
    params = _live(flax_net, inputs)
    ref.load_jaxgan_params(torch_net, params)
    want = np.asarray(jax.jit(flax_net.apply)({'params': params}, inputs))
    got = torch_net(torch.tensor(_nchw(inputs))).detach().numpy()
    _close(got, _nchw(want), rtol=2e-2)
    torch_net.bf16 = [False] * len(torch_net.bf16)
    full = torch_net(torch.tensor(_nchw(inputs))).detach().numpy()
    assert np.abs(full - got).max() > 1e-4 * np.abs(full).max()


def test_the_cpu_grouped_conv_differentiates_twice_as_xlas():
  """grouped_conv_split (a dense conv per group): values, gradients and the gradient of an
  input-gradient norm (R1's shape) are those of XLA's grouped conv."""
  x, kernel = _x((2, 5, 4, 6)), 0.3 * _x((3, 3, 2, 6), 1)

  def r1(conv):
    def loss(x, k):
      gx = jax.grad(lambda x: jnp.sum(jnp.sin(conv(x, k, 3))))(x)
      return jnp.sum(gx**2)

    return jax.jit(jax.value_and_grad(loss, (0, 1)))(x, kernel)

  (got, got_grads), (want, want_grads) = r1(r3gan.grouped_conv_split), r1(r3gan.grouped_conv_xla)
  _close(got, want)
  for a, b in zip(got_grads, want_grads, strict=True):
    _close(a, b)
