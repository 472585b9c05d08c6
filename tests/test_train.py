"""End to end: the trainer on real MNIST (tiny model), its outputs, resume and bad input."""

import hashlib
import json
import os
import signal
import types

import jax
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import gan as gan_lib
from jaxgan import parallel, steps, train, writers
from jaxgan import workdir as workdir_lib
from jaxgan.errors import CheckpointError, ConfigError, DataError, JaxganError
from jaxgan.evaluation import checkpoints
from jaxgan.state import init_state
from jaxgan.train import feed, setup


def _leaves_equal(a, b) -> bool:
  return all(
    np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  )


def _metrics(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def _tree_digest(path) -> str:
  h = hashlib.sha256()
  for root, dirs, files in sorted(os.walk(path)):
    dirs.sort()
    for name in sorted(files):
      p = os.path.join(root, name)
      h.update(p.encode())
      with open(p, 'rb') as f:
        h.update(f.read())
  return h.hexdigest()


def test_workdir_contents(test_config, tmp_path):
  state = train.train_and_evaluate(test_config, str(tmp_path))
  assert int(state.step) == 6
  rows = _metrics(tmp_path)
  assert [r['step'] for r in rows] == [2, 4, 6]
  for r in rows:
    assert {'d_loss', 'g_loss', 'd_real', 'd_fake', 'steps_per_sec', 'd_skipped'} <= set(r)
    assert 0 < r['d_real'] < 1 and 0 < r['d_fake'] < 1
  assert sorted(os.listdir(tmp_path / 'samples')) == ['step_000003.png', 'step_000006.png']
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(tmp_path / 'tensorboard'))
  assert sorted(int(s) for s in os.listdir(tmp_path / 'checkpoints') if s.isdigit()) == [3, 6]
  assert json.loads((tmp_path / 'config.json').read_text())['batch_size'] == 8
  config, _, restored = workdir_lib.load_run(str(tmp_path))
  assert config.batch_size == 8 and _leaves_equal(restored, state)
  _, _, at_3 = workdir_lib.load_run(str(tmp_path), step=3)
  assert int(at_3.step) == 3
  with pytest.raises(CheckpointError, match='no checkpoint 4'):
    workdir_lib.load_run(str(tmp_path), step=4)


def test_sample_grid_image(test_config, tmp_path):
  from PIL import Image

  train.train_and_evaluate(test_config, str(tmp_path))
  img = np.asarray(Image.open(tmp_path / 'samples' / 'step_000006.png'))
  # 16 samples -> a 4x4 grid of 28x28 digits with 1-pixel borders.
  assert img.shape == (4 * 29 + 1, 4 * 29 + 1) and img.dtype == np.uint8
  assert img.std() > 0


def test_same_seed_same_losses_at_every_step(test_config, tmp_path):
  test_config.log_every = 1
  a = train.train_and_evaluate(test_config, str(tmp_path / 'a'))
  b = train.train_and_evaluate(test_config, str(tmp_path / 'b'))
  strip = lambda rows: [{k: v for k, v in r.items() if k != 'steps_per_sec'} for r in rows]  # noqa: E731
  assert strip(_metrics(tmp_path / 'a')) == strip(_metrics(tmp_path / 'b'))
  assert len(_metrics(tmp_path / 'a')) == 6
  assert _leaves_equal(a, b)
  test_config.seed = 1
  c = train.train_and_evaluate(test_config, str(tmp_path / 'c'))
  assert not _leaves_equal(a.g_params, c.g_params)


def test_resume_is_bit_for_bit(test_config, tmp_path):
  test_config.log_every = 1
  straight = train.train_and_evaluate(test_config, str(tmp_path / 'straight'))
  test_config.num_steps = 3
  train.train_and_evaluate(test_config, str(tmp_path / 'resumed'))
  test_config.num_steps = 6
  resumed = train.train_and_evaluate(test_config, str(tmp_path / 'resumed'))
  assert _leaves_equal(straight, resumed)
  strip = lambda rows: [(r['step'], r['d_loss'], r['g_loss']) for r in rows]  # noqa: E731
  assert strip(_metrics(tmp_path / 'resumed')) == strip(_metrics(tmp_path / 'straight'))


def test_resume_drops_metrics_logged_after_the_checkpoint(test_config, tmp_path):
  """A run killed after logging step 4 but before its step-6 checkpoint resumes at step 3."""
  test_config.num_steps = 3
  train.train_and_evaluate(test_config, str(tmp_path))
  with open(tmp_path / 'metrics.jsonl', 'a') as f:
    f.write(json.dumps({'step': 4, 'd_loss': 0.0}) + '\n{"step": 5, "d_lo')  # a cut line too
  test_config.num_steps = 6
  train.train_and_evaluate(test_config, str(tmp_path))
  # Step 3 was logged as the end of the first run; the bogus 4 and the cut line are gone.
  rows = _metrics(tmp_path)
  assert [r['step'] for r in rows] == [2, 3, 4, 6]
  assert rows[2]['d_loss'] != 0.0


def test_incompatible_checkpoint_is_refused_and_kept(test_config, tmp_path):
  test_config.num_steps = 3
  train.train_and_evaluate(test_config, str(tmp_path))
  before = _tree_digest(tmp_path / 'checkpoints')
  test_config.model.g_features = (32, 8)
  with pytest.raises(
    CheckpointError,
    match=r"does not fit this config.*is \(\(16,\), 'float32'\) in the checkpoint, \(\(32,\)",
  ):
    train.train_and_evaluate(test_config, str(tmp_path))
  assert _tree_digest(tmp_path / 'checkpoints') == before


def test_train_fn_donates_state_and_keeps_metrics_on_device(test_config):
  """The jitted step reuses the state's buffers and makes no device->host transfer."""
  gan = gan_lib.from_config(test_config, (28, 28, 1))
  state = jax.jit(lambda k: init_state(gan, k, (28, 28, 1)))(jax.random.PRNGKey(0))
  images = np.zeros((16, 28, 28, 1), np.uint8)
  draws = feed.Draws(jax.random.PRNGKey(1), (1, 8))
  resident = feed.Resident((images, None), draws, parallel.mesh())
  fn = jax.jit(train.make_train_fn(gan, resident), static_argnums=2, donate_argnums=0)
  data = resident(0, 1)
  new, _ = fn(state, data, 1)  # compile outside the guard
  leaf = jax.tree.leaves(new.g_params)[0]
  with jax.transfer_guard_device_to_host('disallow'):
    newer, metrics = fn(new, data, 1)
    for _ in range(3):
      newer, metrics = fn(newer, data, 1)
  assert leaf.is_deleted()
  assert isinstance(metrics['d_loss'], jax.Array)


def test_mirror_flips_some_real_images_the_same_way_at_every_call(monkeypatch):
  """With mirror, each drawn image is itself or its left-right flip, from the step's key."""
  seen = []
  monkeypatch.setattr(
    steps, 'train_step', lambda gan, state, batch, *_: seen.append(batch.images) or (state, {})
  )
  gan = types.SimpleNamespace(d_steps=2)
  state = types.SimpleNamespace(step=jax.numpy.int32(7))
  pixels = np.random.default_rng(0).integers(0, 256, (50, 4, 4, 1), np.uint8)
  key = jax.random.PRNGKey(3)
  for mirror in (False, True, True):
    resident = feed.Resident((pixels, None), feed.Draws(key, (2, 16), mirror), parallel.mesh())
    train.make_train_fn(gan, resident)(state, resident(0, 1), 1)
  plain, flipped, again = (np.asarray(r) for r in seen)
  same = (flipped == plain).all(axis=(2, 3, 4))
  mirrored = (flipped == plain[..., ::-1, :]).all(axis=(2, 3, 4))
  assert (same | mirrored).all() and same.any() and (mirrored & ~same).any()
  np.testing.assert_array_equal(again, flipped)


BAD_CONFIGS = [
  ('batch_size', 0, 'batch_size must be >= 1'),
  ('optim.g_lr', -1e-3, 'g_lr must be > 0'),
  ('optim.d_lr', 0.0, 'd_lr must be > 0'),
  ('model.upsample', 'bilinear', 'upsample must be one of'),
  ('model.downsample', 'maxpool', 'downsample must be one of'),
  ('model.norm', 'instance', 'norm must be one of'),
  ('model.latent_dist', 'cauchy', 'latent_dist must be one of'),
  ('train.balance', 'always', 'balance must be one of'),
  ('train.loss', 'bce', 'loss must be one of'),
  ('train.d_steps', 0, 'd_steps must be >= 1'),
  ('num_steps', 2.5, 'num_steps must be an integer'),
  ('model.latent_dim', True, 'latent_dim must be an integer'),
  ('model.g_features', (), 'g_features must be a non-empty tuple'),
]


@pytest.mark.parametrize('key, value, message', BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_bad_config_values(test_config, tmp_path, key, value, message):
  *parents, leaf = key.split('.')
  node = test_config
  for p in parents:
    node = node[p]
  with node.ignore_type():
    node[leaf] = value
  with pytest.raises(ConfigError, match=message):
    train.train_and_evaluate(test_config, str(tmp_path / 'w'))
  assert not (tmp_path / 'w').exists()  # nothing written before the config is known good


def test_unknown_and_missing_keys(test_config):
  test_config.model.unknown = 3
  with pytest.raises(ConfigError, match="unknown config key 'model.unknown'"):
    config_lib.validate(test_config)
  del test_config.model['unknown']
  del test_config['log_every']  # a key with a default comes back at it
  config_lib.validate(test_config)
  assert test_config.log_every == config_lib.LOOP['log_every'].default
  del test_config['num_steps']  # one without must be set
  with pytest.raises(ConfigError, match="'num_steps' is missing: it has no default"):
    config_lib.validate(test_config)


def test_batch_size_must_divide_over_devices(test_config):
  test_config.batch_size = 12
  with pytest.raises(ConfigError, match='divisible by the 8 devices'):
    config_lib.validate(test_config, num_devices=8)


def test_missing_data_file(test_config, tmp_path):
  test_config.data.dir = str(tmp_path)
  with pytest.raises(DataError, match='train-images-idx3-ubyte'):
    train.train_and_evaluate(test_config, str(tmp_path / 'w'))


def test_unwritable_workdir(test_config, tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('not a directory')
  with pytest.raises(JaxganError, match='not writable'):
    train.train_and_evaluate(test_config, str(blocker / 'w'))


def test_steps_per_call_fuses_iterations_without_changing_the_run(test_config, tmp_path):
  one = train.train_and_evaluate(test_config, str(tmp_path / 'one'))
  test_config.steps_per_call = 4  # clipped to 2 or 1 so that logs/checkpoints still land
  fused = train.train_and_evaluate(test_config, str(tmp_path / 'fused'))
  assert [r['step'] for r in _metrics(tmp_path / 'fused')] == [2, 4, 6]
  assert [r['g_loss'] for r in _metrics(tmp_path / 'fused')] == [
    r['g_loss'] for r in _metrics(tmp_path / 'one')
  ]
  assert int(fused.step) == int(one.step) == 6
  assert _leaves_equal(one, fused)  # the scanned step is the same computation, bit for bit


def test_unreadable_latest_checkpoint_falls_back_and_is_kept(test_config, tmp_path):
  straight = train.train_and_evaluate(test_config, str(tmp_path / 'straight'))
  workdir = tmp_path / 'damaged'
  train.train_and_evaluate(test_config, str(workdir))
  # Truncate every data file of the step-6 checkpoint, as a disk-full or torn write would.
  for root, _, files in os.walk(workdir / 'checkpoints' / '6'):
    for name in files:
      if os.path.getsize(os.path.join(root, name)) > 64:
        with open(os.path.join(root, name), 'r+b') as f:
          f.truncate(16)
  resumed = train.train_and_evaluate(test_config, str(workdir))
  assert _leaves_equal(straight, resumed)  # redone from step 3, bit for bit
  assert (workdir / 'corrupt_checkpoints' / '6').is_dir()
  assert sorted(os.listdir(workdir / 'checkpoints')) == ['3', '6']


def test_divergence_stops_with_a_clear_error_and_no_bad_checkpoint(test_config, tmp_path):
  test_config.num_steps = 3
  train.train_and_evaluate(test_config, str(tmp_path))
  test_config.num_steps = 6
  test_config.log_every = 100  # the check must also guard checkpoints between log steps
  with test_config.ignore_type():
    test_config.optim.d_lr = 1e30  # D's weights overflow in a step or two
  with pytest.raises(
    JaxganError, match=r'^(d|g)_\w+ is nan in the steps up to 6: training diverged'
  ):
    train.train_and_evaluate(test_config, str(tmp_path))
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['3']


def test_evaluation_during_training_keeps_the_best_checkpoint(test_config, tmp_path, capsys):
  test_config.eval_every = 3
  train.train_and_evaluate(test_config, str(tmp_path))
  evals = [r for r in _metrics(tmp_path) if 'eval_fid' in r]
  assert [r['step'] for r in evals] == [3, 6]
  for r in evals:
    assert (
      r['eval_fid'] > 0 and 0 <= r['eval_precision'] <= 1 and 1 <= r['eval_classes_covered'] <= 10
    )
  best = json.loads((tmp_path / 'best.json').read_text())
  assert best['fid'] == min(r['eval_fid'] for r in evals)
  assert os.listdir(tmp_path / 'checkpoints_best') == [str(best['step'])]
  assert 'eval step 6 | fid' in capsys.readouterr().out


class _FixedFID:
  """An evaluator reporting a given FID per step: which state is kept as the best is tested
  here, not how FID is measured (test_evaluation_during_training_keeps_the_best_checkpoint)."""

  protocol = {}

  def __init__(self, fids: dict[int, float]):
    self.fids = fids

  def __call__(self, gan, state) -> dict[str, float]:
    return {'fid': self.fids[int(state.step)]}


def test_checkpoints_keep_the_last_few_and_the_best_holds_its_steps_state(
  test_config, tmp_path, monkeypatch
):
  test_config.checkpoint_every, test_config.keep_checkpoints = 1, 2
  test_config.sample_every = 0
  test_config.eval_every = 2  # best at step 4: better than step 2's, not beaten at step 6
  monkeypatch.setattr(setup, '_evaluator', lambda config: _FixedFID({2: 5.0, 4: 3.0, 6: 4.0}))
  final = train.train_and_evaluate(test_config, str(tmp_path / 'run'))
  assert sorted(os.listdir(tmp_path / 'run' / 'checkpoints')) == ['5', '6']  # of 1, 2, ..., 6
  assert json.loads((tmp_path / 'run' / 'best.json').read_text()) == {'step': 4, 'fid': 3.0}
  assert os.listdir(tmp_path / 'run' / 'checkpoints_best') == ['4']
  _, _, best = checkpoints.load(str(tmp_path / 'run'), 'best')
  # The state at step 4, from a run of its own that stops there.
  test_config.num_steps, test_config.eval_every = 4, 0
  at_4 = train.train_and_evaluate(test_config, str(tmp_path / 'to_4'))
  assert int(best.step) == 4 and _leaves_equal(best, at_4)
  assert not _leaves_equal(best.g_params, final.g_params)


def test_signal_during_the_step_hooks_still_checkpoints_the_last_step(
  test_config, tmp_path, monkeypatch
):
  """A SIGTERM that lands while a step's log line is written (after the stop flag was read)
  is acted on after the next call, which is then logged and checkpointed."""
  status_line = writers.status_line

  def status_line_then_sigterm(step, *args):
    if step == 2:
      os.kill(os.getpid(), signal.SIGTERM)
    return status_line(step, *args)

  monkeypatch.setattr(writers, 'status_line', status_line_then_sigterm)
  state = train.train_and_evaluate(test_config, str(tmp_path))
  assert int(state.step) == 3  # one more step, then stopped: not the full 6
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['3']
  assert [r['step'] for r in _metrics(tmp_path)] == [2, 3]
