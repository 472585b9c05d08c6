"""Shared test setup: fast compilation, the offline MNIST copy, the tiny test config."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Tiny models compile far longer than they run; most XLA optimizations only cost time here.
# Set in the environment too, so CLI subprocesses inherit it. (test_optimized.py and
# test_kill.py start theirs without it: bit-for-bit claims hold as users compile, too.)
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', 'true')
# Many tests compile the same small programs again, in new jit objects or new processes (the
# CLI tests); one persistent compilation cache for the session compiles each program once.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _cache = tempfile.mkdtemp(prefix='jaxgan-tests-xla-')
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _cache
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'

# Tests keep what jaxgan caches (prepared folders, real images' Inception features) out of the
# user's ~/.cache/jaxgan, in one folder for the session.
if 'JAXGAN_CACHE' not in os.environ:
  _data_cache = tempfile.mkdtemp(prefix='jaxgan-tests-cache-')
  atexit.register(shutil.rmtree, _data_cache, ignore_errors=True)
  os.environ['JAXGAN_CACHE'] = _data_cache

# No test downloads the Inception weights (jaxgan.evaluation.inception_weights).
os.environ['JAXGAN_INCEPTION_URL'] = ''

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update('jax_disable_most_optimizations', True)

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / 'shared' / 'data' / 'mnist'


@pytest.fixture
def test_config():
  """configs/test.py: a narrow DCGAN, 6 steps, reading ../shared/data/mnist."""
  from jaxgan.configs import test

  return test.get_config()


def straight_and_resumed(config, tmp_path: Path):
  """The final states of `config` trained straight (in tmp_path/straight) and stopped at half
  its steps then resumed (tmp_path/resumed)."""
  from jaxgan import train

  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  total = config.num_steps
  config.num_steps = total // 2
  train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  config.num_steps = total
  return straight, train.train_and_evaluate(config, str(tmp_path / 'resumed'))
