"""`jaxgan.sample`'s inputs and options on a tiny StyleGAN2 run: chosen latents and labels,
truncation toward w_avg, the noise modes, the .npz's raw output and the style-mixing grid,
each against G called directly."""

import jax
import numpy as np
import pytest
from PIL import Image

from jaxgan import images as images_lib
from jaxgan import sample, sampling, train
from jaxgan import workdir as workdir_lib
from jaxgan.configs import stylegan2_folder
from jaxgan.errors import JaxganError
from tests.test_first_hour import two_class_folder
from tests.test_stylegan2_training import TINY


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """configs/stylegan2_folder.py (conditional) at 8 px, trained one step without its lazy
  phases and augmentation (tests/test_stylegan2_training.py trains those): w_avg and the noise
  strengths are off zero."""
  tmp = tmp_path_factory.mktemp('sg2')
  config = stylegan2_folder.get_config('cond')
  config.data.dir = str(two_class_folder(tmp / 'images'))
  config.data.update(resolution=8, cache_dir=str(tmp / 'cache'), workers=1)
  config.model.update(latent_dim=8, **TINY, mbstd_group=2)
  config.train.update(r1_weight=0.0, penalties='', augment='', augment_p=1.0)
  config.batch_size, config.num_steps, config.steps_per_call = 4, 1, 1
  config.sample_every, config.checkpoint_every = 0, 1
  train.train_and_evaluate(config, str(tmp / 'run'))
  _, gan, state = workdir_lib.load_run(str(tmp / 'run'))
  return tmp / 'run', gan, state


def _inputs(tmp_path, n=5, seed=0):
  rng = np.random.default_rng(seed)
  z = rng.standard_normal((n, 8)).astype(np.float32)
  y = rng.integers(0, 2, n)
  np.save(tmp_path / 'z.npy', z)
  np.save(tmp_path / 'y.npy', y)
  return z, y, (str(tmp_path / 'z.npy'), str(tmp_path / 'y.npy'))


def _g(gan, state, z, y, **kw):
  """G (EMA params) called directly, in inference mode."""
  variables = {'params': state.g_ema_params, **state.g_vars}
  return np.asarray(gan.generator.apply(variables, z, train=False, labels=y, **kw))


def _sample(workdir, tmp_path, inputs, options=sampling.NO_OPTIONS, seed=0):
  out = str(tmp_path / 'out.npz')
  assert sample.sample(str(workdir), None, out, seed=seed, inputs=inputs, options=options) == 5
  with np.load(out) as f:
    return f['images'], f['raw']


def test_latents_and_labels_give_gs_images_and_raw_output(run, tmp_path):
  workdir, gan, state = run
  z, y, inputs = _inputs(tmp_path)
  images, raw = _sample(workdir, tmp_path, inputs)
  assert images.dtype == np.uint8 and raw.dtype == np.float32 and raw.shape == (5, 8, 8, 3)
  np.testing.assert_allclose(raw, _g(gan, state, z, y, noise_mode='const'), atol=1e-5)
  np.testing.assert_array_equal(images, images_lib.to_uint8(raw))
  # Labels matter: a conditional G.
  np.save(tmp_path / 'y1.npy', 1 - y)
  other = _sample(workdir, tmp_path, (inputs[0], str(tmp_path / 'y1.npy')))[1]
  assert np.abs(other - raw).max() > 1e-3


def test_truncation_pulls_toward_w_avg(run, tmp_path):
  workdir, gan, state = run
  z, y, inputs = _inputs(tmp_path)
  half = _sample(workdir, tmp_path, inputs, sampling.GOptions(truncation_psi=0.5))[1]
  np.testing.assert_allclose(half, _g(gan, state, z, y, truncation_psi=0.5), atol=1e-5)
  # psi 0: every w is w_avg, so every image is the same, whatever its latent and label.
  zero = _sample(workdir, tmp_path, inputs, sampling.GOptions(truncation_psi=0.0))[1]
  np.testing.assert_allclose(zero, np.broadcast_to(zero[:1], zero.shape), atol=1e-6)
  assert np.abs(half - zero).max() > 1e-3
  # A cutoff of 0 layers truncates nothing.
  none = _sample(workdir, tmp_path, inputs, sampling.GOptions(0.0, truncation_cutoff=0))[1]
  np.testing.assert_allclose(none, _g(gan, state, z, y), atol=1e-5)


def test_noise_modes(run, tmp_path):
  workdir, gan, state = run
  z, y, inputs = _inputs(tmp_path)
  modes = {m: sampling.GOptions(noise_mode=m) for m in sampling.NOISE_MODES}
  const = _sample(workdir, tmp_path, inputs, modes['const'])[1]
  off = _sample(workdir, tmp_path, inputs, modes['none'])[1]
  np.testing.assert_allclose(off, _g(gan, state, z, y, noise_mode='none'), atol=1e-5)
  r0 = _sample(workdir, tmp_path, inputs, modes['random'], seed=0)[1]
  r0_again = _sample(workdir, tmp_path, inputs, modes['random'], seed=0)[1]
  r1 = _sample(workdir, tmp_path, inputs, modes['random'], seed=1)[1]
  np.testing.assert_array_equal(r0, r0_again)
  for a, b in ((const, off), (const, r0), (r0, r1)):
    assert np.abs(a - b).max() > 1e-4


def test_seeded_sampling_takes_the_options(run, tmp_path):
  workdir, _, _ = run
  out = str(tmp_path / 's.npz')
  sample.sample(str(workdir), 4, out, options=sampling.GOptions(truncation_psi=0.0))
  raw = np.load(out)['raw']
  np.testing.assert_allclose(raw, np.broadcast_to(raw[:1], raw.shape), atol=1e-6)
  sample.sample(str(workdir), 4, out)
  assert np.abs(np.load(out)['raw'] - raw).max() > 1e-3


def test_style_mixing_grid(run, tmp_path):
  workdir, gan, state = run
  rows = gan.sample_inputs(jax.random.PRNGKey(0), 2, False)
  cols = gan.sample_inputs(jax.random.PRNGKey(1), 3, False)
  grid = sampling.style_mixing(gan, state, rows, cols, (0, gan.generator.num_ws))
  row_images, col_images = _g(gan, state, rows.z, rows.labels), _g(gan, state, cols.z, cols.labels)
  grid = grid.reshape(3, 4, *grid.shape[1:])
  np.testing.assert_allclose(grid[0, 1:], col_images, atol=1e-5)
  np.testing.assert_allclose(grid[1:, 0], row_images, atol=1e-5)
  # All layers from the column: the column's image in every row.
  np.testing.assert_allclose(grid[1:, 1:], np.stack([col_images] * 2), atol=1e-5)
  coarse = sampling.style_mixing(gan, state, rows, cols, (0, 2)).reshape(grid.shape)
  assert np.abs(coarse[1:, 1:] - grid[1:, 1:]).max() > 1e-4
  sample.style_mixing(str(workdir), str(tmp_path / 'mix.png'), (2, 3), (0, 2))
  assert Image.open(tmp_path / 'mix.png').size == (4 * 9 + 1, 3 * 9 + 1)
  with pytest.raises(JaxganError, match='range within'):
    sample.style_mixing(str(workdir), str(tmp_path / 'mix.png'), (2, 3), (3, 3))


@pytest.mark.parametrize(
  'z_shape, labels, message',
  [
    ((5, 7), True, r'float \(N, 8\) array'),
    ((5, 8), False, '--labels is needed'),
    ((5, 8), 'bad', r'\[0, 2\)'),
  ],
)
def test_bad_inputs_are_one_clear_error(run, tmp_path, z_shape, labels, message):
  workdir, _, _ = run
  np.save(tmp_path / 'z.npy', np.zeros(z_shape, np.float32))
  np.save(tmp_path / 'y.npy', np.full(5, 2 if labels == 'bad' else 0))
  inputs = (str(tmp_path / 'z.npy'), str(tmp_path / 'y.npy') if labels else None)
  with pytest.raises(JaxganError, match=message):
    sample.sample(str(workdir), None, str(tmp_path / 'o.npz'), inputs=inputs)
  assert not (tmp_path / 'o.npz').exists()
