"""Shared test setup: fast compilation, the offline MNIST copy, the tiny test config."""

import os
from pathlib import Path

# Tiny models compile far longer than they run; most XLA optimizations only cost time here.
# Set in the environment too, so CLI subprocesses inherit it.
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', 'true')

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update('jax_disable_most_optimizations', True)

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / 'shared' / 'data' / 'mnist'


@pytest.fixture
def test_config():
  """configs/test.py: a narrow DCGAN, 6 steps, reading ../shared/data/mnist."""
  from configs import test

  return test.get_config()
