"""The CIFAR-10 feature classifier: its shipped weights on real test images, the feature network
around it, and the training command's step and errors."""

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import jax
import numpy as np
import optax
import pytest
from PIL import Image

from jaxgan.errors import DataError, JaxganError
from jaxgan.evaluation import cifar_classifier, features, metrics
from jaxgan.evaluation import train_classifier as tc
from tests.conftest import REPO
from tests.test_folder_data import (
  CIFAR_JPG,
  cifar_jpgs,  # noqa: F401  (100 real test images, two classes)
)


def _real(folder: Path) -> tuple[np.ndarray, np.ndarray]:
  files = sorted(folder.glob('*/*.jpg'))
  images = np.stack([np.asarray(Image.open(f).convert('RGB')) for f in files])
  return images, np.array([tc.CIFAR10_CLASSES.index(f.parent.name) for f in files])


def _test_split() -> tuple[np.ndarray, np.ndarray]:
  """All 10,000 test images of the offline CIFAR-10 JPEG copy and their labels, decoded from
  the archive in memory (it holds test/ first: reading stops where train/ begins)."""
  if not CIFAR_JPG.exists():
    pytest.skip(f'{CIFAR_JPG} is not here')
  images, labels = [], []
  with tarfile.open(CIFAR_JPG, 'r:gz') as tar:
    for member in tar:
      parts = member.name.split('/')  # cifar10-jpg/<split>/<class>/NNNN.jpg
      if len(parts) > 1 and parts[1] == 'train':
        break
      if member.isfile() and parts[1] == 'test':
        with Image.open(io.BytesIO(tar.extractfile(member).read())) as image:
          images.append(np.asarray(image.convert('RGB')))
        labels.append(tc.CIFAR10_CLASSES.index(parts[2]))
  return np.stack(images), np.array(labels)


def test_shipped_weights_reach_the_recorded_accuracy_on_the_test_jpegs():
  """The claimed accuracy, measured: the whole test split (about 10 s here)."""
  images, labels = _test_split()
  assert images.shape == (10_000, 32, 32, 3) and np.bincount(labels).tolist() == [1000] * 10
  _, probs = cifar_classifier.classify(images)
  accuracy = float(np.mean(probs.argmax(-1) == labels))
  record = json.loads(Path(cifar_classifier.WEIGHTS_PATH).with_suffix('.json').read_text())
  # The record (and the docs) give three digits. 0.002 is 20 images: room for other XLA
  # kernels (optimisations off in tests, a GPU) to flip a few borderline predictions.
  assert abs(accuracy - record['test_accuracy']) <= 0.002, accuracy
  claim = f'{100 * record["test_accuracy"]:.1f}% accuracy on the 10,000 test'
  for doc in ('README.md', 'docs/evaluation.md'):
    assert claim in ' '.join((REPO / doc).read_text().split()).replace('*', ''), doc


def test_shipped_weights_classify_real_test_images(cifar_jpgs):  # noqa: F811
  images, labels = _real(cifar_jpgs)
  feats, probs = cifar_classifier.classify(images)
  assert feats.shape == (100, cifar_classifier.FEATURE_DIM) and probs.shape == (100, 10)
  np.testing.assert_allclose(probs.sum(-1), 1, rtol=1e-5)
  # Floats in [-1, 1] and uint8 pixels are the same images.
  feats_f, _ = cifar_classifier.classify(images.astype(np.float32) / 127.5 - 1)
  np.testing.assert_allclose(feats_f, feats, rtol=1e-4, atol=1e-4)


def test_record_describes_the_shipped_weights():
  record = json.loads(Path(cifar_classifier.WEIGHTS_PATH).with_suffix('.json').read_text())
  sha = hashlib.sha256(Path(cifar_classifier.WEIGHTS_PATH).read_bytes()).hexdigest()
  assert record['sha256'] == sha == features.get('cifar10_classifier').sha256
  assert record['dataset'] == 'cifar10' and record['test_accuracy'] >= 0.85
  assert record['command'].startswith('python -m jaxgan.evaluation.train_classifier')


def test_real_images_are_near_each_other_and_far_from_noise(cifar_jpgs):  # noqa: F811
  net = features.get('cifar10_classifier')
  images, _ = _real(cifar_jpgs)
  real_a, real_b = net.embed(images[::2]).features, net.embed(images[1::2]).features
  noise = np.random.default_rng(0).integers(0, 256, (50, 32, 32, 3), np.uint8)
  fake = net.embed(noise).features
  assert metrics.fid(real_a, real_b) * 3 < metrics.fid(real_a, fake)


def test_feature_network_measures_32px_rgb_only():
  net = features.get('cifar10_classifier')
  assert 'cifar10_classifier' in features.names()
  net.check((7, 32, 32, 3))
  for shape in [(7, 28, 28, 1), (7, 64, 64, 3), (7, 32, 32, 1)]:
    with pytest.raises(ValueError, match='32x32 RGB'):
      net.check(shape)
  emb = net.embed(np.zeros((3, 32, 32, 3), np.uint8))
  assert emb.features.shape == (3, cifar_classifier.FEATURE_DIM) and emb.probs.shape == (3, 1, 10)
  assert features.describe(net) == {
    'features': 'cifar10_classifier',
    'features_sha256': net.sha256,
    'resize': 'none',
  }


def test_train_step_fits_a_batch():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (16, 32, 32, 3), np.uint8)
  labels = np.arange(16) % 10
  optimizer = optax.sgd(0.05, momentum=0.9, nesterov=True)
  step = tc.make_cifar10_step(optimizer, max_shift=1)
  variables = cifar_classifier.init_variables(jax.random.PRNGKey(0))
  opt_state = optimizer.init(variables['params'])
  losses = []
  for i in range(40):
    variables, opt_state, loss = step(variables, opt_state, images, labels, jax.random.PRNGKey(i))
    losses.append(float(loss))
  # The label-smoothed optimum is 0.87; random labels take a while to memorise.
  assert np.mean(losses[-5:]) < 0.6 * losses[0]


def test_bad_data_folder(cifar_jpgs, tmp_path):  # noqa: F811
  with pytest.raises(JaxganError, match='--data_dir is required'):
    tc.load_cifar10_folder('', 'train')
  with pytest.raises(DataError, match="not CIFAR-10's"):  # two of the ten classes
    tc.load_cifar10_folder(str(cifar_jpgs), 'train', cache_dir=str(tmp_path))


def test_command_without_data_dir_fails_clearly():
  cmd = [sys.executable, '-m', 'jaxgan.evaluation.train_classifier', '--dataset=cifar10']
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0
  assert '--data_dir is required' in proc.stderr
