"""R3GAN's training: the RpGAN loss and R1 + R2 against autodiff of their written definitions,
each step's gradient w.r.t. its own network only, augmentation of every image D sees, and the
recipes (their presets, and a resume with every schedule on)."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import config as config_lib
from jaxgan import data, objectives, steps
from jaxgan.batch import Batch, FakeBatch, FakeInputs
from jaxgan.configs import r3gan_cifar10, r3gan_folder, r3gan_stacked_mnist
from jaxgan.data import stacked_mnist
from jaxgan.evaluation import features
from jaxgan.gan import GAN
from jaxgan.state import init_state
from tests.conftest import SHARED_MNIST, straight_and_resumed
from tests.test_first_hour import two_class_folder
from tests.test_schedules import _cosine

SHAPE, N, CLASSES = (6, 6, 1), 5, 3
KEY = jax.random.PRNGKey(0)


class _G(nn.Module):
  @nn.compact
  def __call__(self, z, labels=None, train=True):
    h = z if labels is None else jnp.concatenate([z, jax.nn.one_hot(labels, CLASSES)], -1)
    return jnp.tanh(nn.Dense(36)(h)).reshape(z.shape[0], *SHAPE)


class _D(nn.Module):
  """Non-linear in its input (so R1 depends on where it is taken), projection on the class."""

  @nn.compact
  def __call__(self, x, labels=None, train=True):
    h = jnp.tanh(nn.Dense(16)(x.reshape(x.shape[0], -1)))
    out = nn.Dense(1)(h)[:, 0]
    if labels is not None:
      out = out + jnp.sum(nn.Embed(CLASSES, 16)(labels) * h, axis=-1)
    return out


def _gan(**kw):
  # SGD at 1: an update is minus the gradient, which the tests compare with autodiff.
  return GAN(_G(), _D(), optax.sgd(1.0), optax.sgd(1.0), latent_dim=4, loss='rpgan', **kw)


def _inputs(conditional=False):
  keys = jax.random.split(jax.random.PRNGKey(1), 4)
  real = jax.random.uniform(keys[0], (N, *SHAPE), minval=-1)
  z = jax.random.normal(keys[1], (N, 4))
  if not conditional:
    return Batch(real), FakeInputs(z)
  labels = jax.random.randint(keys[2], (N,), 0, CLASSES)
  fake_labels = jax.random.randint(keys[3], (N,), 0, CLASSES)
  return Batch(real, labels), FakeInputs(z, labels=fake_labels)


def _softplus(x):
  return jnp.log1p(jnp.exp(x))


def _d_def(params, x, labels):  # D as written, one call per batch
  return _D().apply({'params': params}, x, labels=labels)


def _g_def(params, fake: FakeInputs):
  return _G().apply({'params': params}, fake.z, labels=fake.labels)


def _sq_grad_norms(params, x, labels):
  """||grad_x D(x_i)||^2 of each image on its own (a batch of one): the definition of R1."""

  def one(xi, yi):
    return _d_def(params, xi[None], None if yi is None else yi[None])[0]

  grads = (
    jax.vmap(jax.grad(one))(x, labels)
    if labels is not None
    else jax.vmap(jax.grad(lambda xi: one(xi, None)))(x)
  )
  return jnp.sum(grads.reshape(x.shape[0], -1) ** 2, axis=1)


def test_rpgan_losses_are_their_definitions():
  r = jax.random.normal(jax.random.PRNGKey(2), (7,))
  f = jax.random.normal(jax.random.PRNGKey(3), (7,)) * 2
  rpgan = objectives.get('rpgan')
  assert rpgan.g_needs_real
  d64, r64, f64 = (lambda a: np.mean(np.log1p(np.exp(-a)))), np.float64(r), np.float64(f)
  np.testing.assert_allclose(rpgan.d_loss(r, f), d64(r64 - f64), rtol=1e-6)
  np.testing.assert_allclose(rpgan.g_loss_of(f, r), d64(f64 - r64), rtol=1e-6)
  # Paired per sample, not averaged first (RaGAN): a permutation of the fakes changes it.
  assert abs(float(rpgan.d_loss(r, f[::-1])) - float(rpgan.d_loss(r, f))) > 1e-3
  # The gradient w.r.t. the logits: -sigmoid(f - r) / n for the real ones, its negation for the
  # fake ones (and the mirror image for G's loss).
  s = jax.nn.sigmoid(f - r) / r.shape[0]
  dr, df = jax.grad(rpgan.d_loss, argnums=(0, 1))(r, f)
  np.testing.assert_allclose(dr, -s, rtol=1e-6)
  np.testing.assert_allclose(df, s, rtol=1e-6)
  gf, gr = jax.grad(rpgan.g_loss_of, argnums=(0, 1))(f, r)
  s = jax.nn.sigmoid(r - f) / r.shape[0]
  np.testing.assert_allclose(gf, -s, rtol=1e-6)
  np.testing.assert_allclose(gr, s, rtol=1e-6)
  with pytest.raises(ValueError, match='label_smoothing needs a BCE loss'):
    rpgan.d_loss(r, f, 0.1)


@pytest.mark.parametrize('conditional', [False, True])
def test_d_step_is_rpgan_plus_r1_r2_by_autodiff_and_trains_d_only(conditional):
  """D's update is minus the gradient of softplus(-(D(x) - D(G(z)))) + gamma/2 (R1 + R2),
  written per sample, w.r.t. D's params; R2 sees the fakes with their own labels."""
  gamma = 0.7
  gan = _gan(r1_weight=gamma, r2_weight=gamma, num_classes=CLASSES if conditional else 0)
  state = init_state(gan, KEY, SHAPE)
  batch, inputs = _inputs(conditional)
  fake = _g_def(state.g_params, inputs)
  new, m = steps.d_step(gan, state, batch, FakeBatch(fake, inputs), jax.random.PRNGKey(4))

  def loss(params):
    real_logits = _d_def(params, batch.images, batch.labels)
    fake_logits = _d_def(params, fake, inputs.labels)
    r1 = jnp.mean(_sq_grad_norms(params, batch.images, batch.labels))
    r2 = jnp.mean(_sq_grad_norms(params, fake, inputs.labels))
    adversarial = jnp.mean(_softplus(-(real_logits - fake_logits)))
    return adversarial + gamma / 2 * (r1 + r2), (adversarial, r1, r2)

  (_, (adversarial, r1, r2)), grads = jax.value_and_grad(loss, has_aux=True)(state.d_params)
  np.testing.assert_allclose(m['d_loss'], adversarial, rtol=1e-6)
  np.testing.assert_allclose(m['r1'], r1, rtol=1e-5)
  np.testing.assert_allclose(m['r2'], r2, rtol=1e-5)
  assert float(r1) > 0 and abs(float(r1) - float(r2)) > 1e-4
  want = jax.tree.map(lambda p, g: p - g, state.d_params, grads)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), new.d_params, want
  )
  jax.tree.map(np.testing.assert_array_equal, new.g_params, state.g_params)
  jax.tree.map(np.testing.assert_array_equal, new.g_opt_state, state.g_opt_state)


def test_g_step_is_rpgan_by_autodiff_and_trains_g_only():
  """G's update is minus the gradient of softplus(-(D(G(z)) - D(x))) w.r.t. G's params, D's on
  the real batch a constant; D is untouched."""
  gan = _gan(r1_weight=0.5, r2_weight=0.5, num_classes=CLASSES)
  state = init_state(gan, KEY, SHAPE)
  batch, inputs = _inputs(conditional=True)
  new, m = steps.g_step(gan, state, inputs, batch, jax.random.PRNGKey(4))

  def loss(params):
    fake_logits = _d_def(state.d_params, _g_def(params, inputs), inputs.labels)
    real_logits = _d_def(state.d_params, batch.images, batch.labels)
    return jnp.mean(_softplus(-(fake_logits - real_logits)))

  value, grads = jax.value_and_grad(loss)(state.g_params)
  np.testing.assert_allclose(m['g_loss'], value, rtol=1e-6)
  want = jax.tree.map(lambda p, g: p - g, state.g_params, grads)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), new.g_params, want
  )
  jax.tree.map(np.testing.assert_array_equal, new.d_params, state.d_params)
  jax.tree.map(np.testing.assert_array_equal, new.d_opt_state, state.d_opt_state)
  with pytest.raises(ValueError, match="loss 'rpgan' compares fakes with reals: pass batch="):
    steps.g_step(gan, state, inputs)


def test_every_image_d_sees_is_augmented_in_both_steps_and_both_penalties():
  """With augmentation on, D's loss, G's loss (its real batch too), R1 and R2 are their
  definitions on the augmented images (the gradients of R1 and R2 w.r.t. the images before
  augmentation), and differ from the same without augmentation."""
  gamma = 0.7
  kw = dict(r1_weight=gamma, r2_weight=gamma, num_classes=CLASSES)
  gan = _gan(augment='translation,cutout', augment_p=1.0, **kw)
  state = init_state(gan, KEY, SHAPE)
  batch, inputs = _inputs(conditional=True)
  key = jax.random.PRNGKey(4)
  fake = _g_def(state.g_params, inputs)
  _, dm = steps.d_step(gan, state, batch, FakeBatch(fake, inputs), key)
  _, gm = steps.g_step(gan, state, inputs, batch, key)
  _, plain_d = steps.d_step(_gan(**kw), state, batch, FakeBatch(fake, inputs), key)
  _, plain_g = steps.g_step(_gan(**kw), state, inputs, batch, key)

  aug = steps._augmenter(gan, state, key, 0.0)
  p = state.d_params

  def logits(x, labels, call):
    return _d_def(p, aug(x, call), labels)

  def sq_norms(x, labels):
    # Each image's augmentation is drawn for its place in the batch, so the per-sample
    # gradients are those of the summed logits (D and the augmentation are per sample).
    grads = jax.grad(lambda v: jnp.sum(logits(v, labels, steps._D_OTHER)))(x)
    return jnp.sum(grads.reshape(x.shape[0], -1) ** 2, axis=1)

  real_d, fake_d = (
    logits(batch.images, batch.labels, steps._D_REAL),
    logits(fake, inputs.labels, steps._D_FAKE),
  )
  want = {
    'd_loss': jnp.mean(_softplus(-(real_d - fake_d))),
    'r1': jnp.mean(sq_norms(batch.images, batch.labels)),
    'r2': jnp.mean(sq_norms(fake, inputs.labels)),
  }
  for k, v in want.items():
    np.testing.assert_allclose(dm[k], v, rtol=1e-5, err_msg=k)
    assert abs(float(dm[k]) - float(plain_d[k])) > 1e-4, k
  g_want = jnp.mean(_softplus(-(fake_d - real_d)))  # the same draws: G's step is the D step's
  np.testing.assert_allclose(gm['g_loss'], g_want, rtol=1e-5)
  assert abs(float(gm['g_loss']) - float(plain_g['g_loss'])) > 1e-4


def _tiny_recipe(tmp_path, arg='cond,cpu'):
  """The CIFAR-10 recipe at 8 px on a folder of two classes, 4 steps of 4 images."""
  config = r3gan_cifar10.get_config(f'folder,{arg}')
  config.data.dir = str(two_class_folder(tmp_path / 'images'))
  config.data.update(resolution=8, cache_dir=str(tmp_path / 'cache'), workers=1)
  config.model.update(widths=(8, 8), cardinalities=(2, 2), blocks=(1, 1), latent_dim=8)
  config.batch_size, config.num_steps, config.steps_per_call = 4, 4, 1
  config.log_every, config.sample_every, config.checkpoint_every = 1, 0, 2
  config.eval_every = 0
  return config


def test_the_recipe_resumes_exactly_with_every_schedule_on(tmp_path):
  """The learning rates, b2, gamma, the EMA half-life and the augmentation probability on
  cosines over the run, R1 and R2, conditional: a stopped and resumed run equals a straight
  one bit for bit, and every scheduled value moves along its cosine."""
  config = _tiny_recipe(tmp_path)
  # Over the 16 images of the straight run: a schedule over the run would last 8 in the first
  # half of the resumed one (num_steps makes its length). The EMA's half-life ends at 8 images.
  r3gan_cifar10.r3gan_training(config, (0.05, 0.005), 0.008, 0.55, kimg=0.016)
  straight, resumed = straight_and_resumed(config, tmp_path)
  jax.tree.map(np.testing.assert_array_equal, straight, resumed)

  def rows(name):  # timings apart
    lines = (tmp_path / name / 'metrics.jsonl').read_text().splitlines()
    return [{k: v for k, v in json.loads(ln).items() if 'sec' not in k} for ln in lines]

  assert rows('straight') == rows('resumed')
  rows = rows('straight')
  assert [r['step'] for r in rows] == [1, 2, 3, 4]
  for key, start, end in [
    ('g_lr', 2e-4, 5e-5),
    ('d_lr', 2e-4, 5e-5),
    ('g_b2', 0.9, 0.99),
    ('d_b2', 0.9, 0.99),
    ('r1_weight', 0.05, 0.005),
    ('r2_weight', 0.05, 0.005),
    ('ema_kimg', 0.0, 0.008),
    ('augment_p', 0.0, 0.55),
  ]:
    want = [_cosine(start, end, seen / 16) for seen in (0, 4, 8, 12)]
    np.testing.assert_allclose([r[key] for r in rows], want, rtol=1e-5, atol=1e-9, err_msg=key)
  assert all(r['r1'] > 0 and r['r2'] > 0 for r in rows)
  ema, params = jax.tree.leaves(straight.g_ema_params), jax.tree.leaves(straight.g_params)
  assert any(not np.array_equal(e, p) for e, p in zip(ema, params, strict=True))


def test_the_recipes_are_the_official_presets():
  """Checked against brownvc/R3GAN's train.py (its CIFAR10, FFHQ-64 and FFHQ-256 presets)."""
  c = r3gan_cifar10.get_config('cond')
  assert (c.model.name, c.model.widths, c.model.blocks) == ('r3gan', (768,) * 4, (2,) * 4)
  assert (c.model.cardinalities, c.model.expansion, c.model.latent_dim) == ((96,) * 4, 2, 64)
  assert (c.batch_size, c.model.conditional, c.data.mirror) == (512, True, True)
  assert (c.optim.name, c.optim.b1, c.optim.b2) == ('adam', 0.0, 'cosine(0.9, 0.99, 20000)')
  assert c.optim.g_lr == c.optim.d_lr == 'cosine(0.0002, 5e-05, 20000)'
  assert c.train.r1_weight == c.train.r2_weight == 'cosine(0.05, 0.005, 20000)'
  assert (c.train.loss, c.train.r1_every, c.train.ema_start) == ('rpgan', 1, 0)
  assert c.train.ema_kimg == 'cosine(0, 5000, 20000)'
  assert c.train.augment_p == 'cosine(0, 0.55, 20000)' and c.train.augment
  for arg, widths, gamma in [
    ('64', (768,) * 4 + (384,), 'cosine(2, 0.2, 20000)'),
    ('256', (768,) * 4 + (384, 192, 96), 'cosine(150, 15, 20000)'),
  ]:
    f = r3gan_folder.get_config(arg)
    assert (f.model.widths, f.train.r1_weight, f.train.r2_weight) == (widths, gamma, gamma)
    assert (f.batch_size, f.data.resolution) == (256, int(arg))
    assert f.train.ema_kimg == 'cosine(0, 500, 20000)'
    assert f.train.augment_p == 'cosine(0, 0.3, 20000)'
  f = r3gan_folder.get_config('256')
  assert f.model.cardinalities == (96,) * 4 + (48, 24, 12)


def test_recipe_options():
  full, cpu = r3gan_cifar10.get_config('folder,cond'), r3gan_cifar10.get_config('cpu')
  assert full.model.conditional and not cpu.model.conditional
  assert cpu.model.widths < full.model.widths and cpu.data.name == 'cifar10'
  assert cpu.optim.g_lr == 'cosine(0.0002, 5e-05)'  # over the run
  for bad in ('gpu', 'folder,cifar10', 'cond,cond'):
    with pytest.raises(ValueError, match='bad config argument'):
      r3gan_cifar10.get_config(bad)
  assert r3gan_folder.get_config('64,cond,cpu').data.labels == 'folders'
  for bad in ('128', '256,cpu', '64,64', 'gpu'):
    with pytest.raises(ValueError, match='bad config argument'):
      r3gan_folder.get_config(bad)


def test_stacked_mnist_padded_to_32_is_measured_at_its_centre():
  """data.pad=2 adds black borders (32x32 for R3GAN's stages); the MNIST classifier measures
  the 28x28 centre, so the modes and features are those of the unpadded images."""
  config = r3gan_stacked_mnist.get_config('cpu')
  config_lib.validate(config)
  assert (config.model.name, config.data.pad, config.eval_num_samples) == ('r3gan', 2, 26_000)
  assert data.image_shape(config.data) == (32, 32, 3)
  config.data.update(dir=str(SHARED_MNIST), stacked_size=6)
  padded = stacked_mnist.load(config.data, 'train')
  config.data.pad = 0
  plain = stacked_mnist.load(config.data, 'train')
  assert padded.images.shape == (6, 32, 32, 3)
  np.testing.assert_array_equal(padded.images[:, 2:-2, 2:-2], plain.images)
  assert not padded.images[:, :2].any() and not padded.images[:, :, -2:].any()
  np.testing.assert_array_equal(padded.labels, plain.labels)
  assert config.eval_features == 'mnist_classifier_centre'
  centre, net = features.get('mnist_classifier_centre'), features.get('mnist_classifier')
  centre.check((32, 32, 3))
  a, b = centre.embed(padded.images), net.embed(plain.images)
  np.testing.assert_array_equal(a.features, b.features)
  np.testing.assert_array_equal(a.probs, b.probs)
  for shape in ((30, 32, 3), (31, 31, 3), (28, 28, 3), (32, 32, 2)):
    with pytest.raises(ValueError, match='mnist_classifier_centre measures'):
      centre.check(shape)
  with pytest.raises(ValueError, match='bad config argument'):
    r3gan_stacked_mnist.get_config('cond')
