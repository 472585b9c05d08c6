"""Stacked MNIST: built deterministically from MNIST, loadable by config, trainable as is."""

import json

import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import data, evaluation, train
from jaxgan import workdir as workdir_lib
from jaxgan.configs import stacked_mnist as stacked_config
from jaxgan.data import mnist, stacked_mnist
from tests.conftest import SHARED_MNIST


@pytest.fixture(scope='module')
def mnist_test():
  return mnist.load_mnist('test', data_dir=SHARED_MNIST)


def test_stack_is_three_labelled_digits(mnist_test):
  images, labels = mnist_test[0][:50], mnist_test[1][:50]
  stacked, modes = stacked_mnist.stack(images, labels, size=200, seed=3)
  assert stacked.shape == (200, 28, 28, 3) and stacked.dtype == np.uint8
  assert modes.dtype == np.int32 and modes.min() >= 0 and modes.max() < 1000
  label_of = {img.tobytes(): int(lab) for img, lab in zip(images[..., 0], labels, strict=True)}
  for img, mode in zip(stacked, modes, strict=True):
    digits = [label_of[img[..., c].tobytes()] for c in range(3)]  # each channel is an MNIST image
    assert 100 * digits[0] + 10 * digits[1] + digits[2] == mode


def test_stack_is_deterministic(mnist_test):
  a, ma = stacked_mnist.stack(*mnist_test, size=100)
  b, mb = stacked_mnist.stack(*mnist_test, size=100)
  c, _ = stacked_mnist.stack(*mnist_test, size=100, seed=1)
  assert np.array_equal(a, b) and np.array_equal(ma, mb) and not np.array_equal(a, c)


def test_load_dataset_and_config():
  config = stacked_config.get_config()
  config_lib.validate(config)
  assert config.data.name == 'stacked_mnist' and config.data.stacked_size == 60_000
  config.data.dir = str(SHARED_MNIST)
  config.data.stacked_size = 300
  config.data.split = 'test'
  ds = data.load_dataset(config.data)
  assert ds.images.shape == (300, 28, 28, 3) and ds.labels.shape == (300,)
  assert ds.name == 'stacked_mnist'


def test_trains_and_evaluates(test_config, tmp_path, mnist_test):
  test_config.data.name = 'stacked_mnist'
  test_config.data.stacked_size = 256
  test_config.num_steps = 2
  state = train.train_and_evaluate(test_config, str(tmp_path))
  assert json.loads((tmp_path / 'run.json').read_text())['image_shape'] == [28, 28, 3]
  _, gan, _ = workdir_lib.load_run(str(tmp_path))
  real, _ = stacked_mnist.stack(*mnist_test, size=200)
  m = evaluation.evaluate_generator(evaluation.make_generate_fn(gan, state), real, 200)
  assert set(m) == {'fid', 'precision', 'recall', 'modes_covered', 'mode_kl'} | {
    'kid_mean',
    'kid_std',
    'density',
    'coverage',
  }
  assert 1 <= m['modes_covered'] <= 200 and m['mode_kl'] > 0
