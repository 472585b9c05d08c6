"""The two ways real batches reach the devices (jaxgan.train.feed) give the same run."""

import json

import jax
import numpy as np
import pytest

from jaxgan import gan as gan_lib
from jaxgan import parallel, train
from jaxgan.errors import ConfigError
from jaxgan.state import init_state
from jaxgan.train import feed, setup

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (40, 28, 28, 1), np.uint8)
LABELS = RNG.integers(0, 10, 40).astype(np.int32)


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_streamed_batches_train_exactly_as_the_resident_ones(test_config):
  # Conditional: labels travel with the images (unconditional streaming is trained below).
  test_config.model.conditional = True
  test_config.data.num_classes = 10  # without the data, the count is given
  test_config.train.d_steps = 2  # two real batches per step
  gan = gan_lib.from_config(test_config, (28, 28, 1))
  mesh = parallel.mesh()
  draws = feed.Draws(jax.random.PRNGKey(4), (gan.d_steps, 8), mirror=True)
  feeds = {
    False: feed.Resident((IMAGES, LABELS), draws, mesh),
    True: feed.Streamed((IMAGES, LABELS), draws, mesh),
  }
  results = {}
  for streamed, source in feeds.items():
    fn = jax.jit(setup.make_train_fn(gan, source), static_argnums=2)
    state = init_state(gan, jax.random.PRNGKey(0), (28, 28, 1))
    step = 0
    for k in (3, 3, 1, 3):  # prefetched calls, and one the feed did not expect
      state, _ = fn(state, source(step, k), k)
      step += k
    source.close()
    results[streamed] = _leaves(state)
  for a, b in zip(results[False], results[True], strict=True):
    np.testing.assert_array_equal(a, b)


def test_streamed_batches_hold_the_drawn_examples():
  key = jax.random.PRNGKey(9)
  source = feed.Streamed((IMAGES, LABELS), feed.Draws(key, (1, 5)), parallel.mesh())
  pixels, labels = source(10, 2)
  source.close()
  assert pixels.shape == (2, 1, 5, 28, 28, 1) and labels.shape == (2, 1, 5)
  for i, step in enumerate((10, 11)):
    idx = np.asarray(feed.draw_indices(key, step, (1, 5), len(IMAGES)))
    np.testing.assert_array_equal(pixels[i], IMAGES[idx])
    np.testing.assert_array_equal(labels[i], LABELS[idx])


def test_auto_streams_only_what_does_not_fit(monkeypatch):
  devices = jax.devices()
  assert feed.choose('yes', IMAGES, devices) is False
  assert feed.choose('no', IMAGES, devices) is True
  assert feed.choose('auto', IMAGES, devices) is False
  monkeypatch.setattr(feed, 'RESIDENT_LIMIT_BYTES', IMAGES.nbytes - 1)
  monkeypatch.setattr(type(devices[0]), 'memory_stats', lambda self: None)
  assert feed.choose('auto', IMAGES, devices) is True


def _metrics(workdir):
  with open(workdir / 'metrics.jsonl') as f:
    return [json.loads(line) for line in f]


def _strip(rows):
  return [{k: v for k, v in r.items() if k != 'steps_per_sec'} for r in rows]


def test_training_streamed_equals_resident_and_resumes_exactly(test_config, tmp_path):
  test_config.steps_per_call = 2
  test_config.num_steps = 6
  runs = {}
  for on_device in ('yes', 'no'):
    test_config.data.on_device = on_device
    runs[on_device] = train.train_and_evaluate(test_config, str(tmp_path / on_device))
  # Streamed, stopped at step 4 and resumed: the same as straight through.
  test_config.num_steps = 4
  train.train_and_evaluate(test_config, str(tmp_path / 'resumed'))
  test_config.num_steps = 6
  resumed = train.train_and_evaluate(test_config, str(tmp_path / 'resumed'))
  for other in (runs['no'], resumed):
    for a, b in zip(_leaves(runs['yes']), _leaves(other), strict=True):
      np.testing.assert_array_equal(a, b)
  assert _strip(_metrics(tmp_path / 'yes')) == _strip(_metrics(tmp_path / 'no'))


def test_bad_on_device_value_is_a_config_error(test_config):
  from jaxgan import config as config_lib

  test_config.data.on_device = 'sometimes'
  with pytest.raises(ConfigError, match='data.on_device must be one of auto, yes, no'):
    config_lib.validate(test_config)
