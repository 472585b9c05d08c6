"""Stacked MNIST: three independent random MNIST digits as the R, G, B channels (1000 modes).

A standard mode-collapse benchmark (Metz et al. 2017, Srivastava et al. 2017): a sample's mode
is its three digits, 000 to 999. Built deterministically from MNIST with a seed.
"""

import os

import numpy as np

from jaxgan import checks
from jaxgan.data import mnist
from jaxgan.data.dataset import Dataset

DEFAULT_SIZE = 60_000
SEED = 0


def stack(
  images: np.ndarray, labels: np.ndarray, size: int, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
  """`size` stacked images (size, H, W, 3) and their modes 100*d0 + 10*d1 + d2, from MNIST.

  Each channel is a digit drawn uniformly with replacement from (images (N, H, W, 1), labels).
  """
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, len(images), size=(size, 3))
  stacked = np.stack([images[idx[:, c], ..., 0] for c in range(3)], axis=-1)
  modes = (labels[idx] * np.array([100, 10, 1])).sum(1).astype(np.int32)
  return stacked, modes


def load_stacked_mnist(
  split: str,
  size: int = DEFAULT_SIZE,
  data_dir: str | os.PathLike = '',
  cache_dir: str | os.PathLike = '',
  url: str = mnist.DEFAULT_URL,
  seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray]:
  """Stacked MNIST built from MNIST `split`: uint8 images (size, 28, 28, 3), int32 modes."""
  images, labels = mnist.load_mnist(split, data_dir=data_dir, cache_dir=cache_dir, url=url)
  return stack(images, labels, size, seed)


# --- The `stacked_mnist` source (jaxgan.data) ---------------------------------------------------
SCHEMA = {
  **mnist.SCHEMA,
  'stacked_size': checks.Key(DEFAULT_SIZE, checks.integer(1)),
  # Black pixels added on each side: 2 makes 32x32 images, for networks whose sides are powers
  # of two (R3GAN); eval_features='mnist_classifier_centre' measures the 28x28 centre.
  'pad': checks.Key(0, checks.integer(0)),
}
FEATURES = 'mnist_classifier'  # each channel classified as a digit
EVAL_NUM_SAMPLES = 26_000  # the literature's count (PacGAN, VEEGAN)


def load(data_config, split: str) -> Dataset:
  images, labels = load_stacked_mnist(
    split,
    size=data_config.stacked_size,
    data_dir=data_config.dir,
    cache_dir=data_config.cache_dir,
    url=data_config.url or mnist.DEFAULT_URL,
  )
  p = data_config.pad
  if p:
    images = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)))
  return Dataset(images, labels, 'stacked_mnist')


def image_shape(data_config) -> tuple[int, ...]:
  side = 28 + 2 * data_config.pad
  return (side, side, 3)
