"""Datasets as uint8 arrays on the host: MNIST read by jaxgan itself, anything else via tfds."""

from typing import Any, NamedTuple

import numpy as np
from absl import logging

from jaxgan.data import mnist, stacked_mnist, tfds_source
from jaxgan.data.mnist import MNIST_FILES

__all__ = ['MNIST_FILES', 'Dataset', 'load_dataset', 'mnist', 'stacked_mnist', 'tfds_source']


class Dataset(NamedTuple):
  """A whole split in host memory."""

  images: np.ndarray  # uint8, (N, H, W, C).
  labels: np.ndarray | None  # int32, (N,), or None when the dataset has no labels.
  name: str


def load_dataset(data_config: Any) -> Dataset:
  """Loads the split named by `data_config` (fields name, split, dir, cache_dir, url).

  Raises DataError when the data is missing, corrupt, or cannot be fetched or prepared.
  """
  name = getattr(data_config, 'name', 'mnist') or 'mnist'
  split = getattr(data_config, 'split', 'train') or 'train'
  data_dir = getattr(data_config, 'dir', '')
  if name == 'mnist':
    images, labels = mnist.load_mnist(
      split,
      data_dir=data_dir,
      cache_dir=getattr(data_config, 'cache_dir', ''),
      url=getattr(data_config, 'url', '') or mnist.DEFAULT_URL,
    )
  elif name == 'stacked_mnist':
    images, labels = stacked_mnist.load_stacked_mnist(
      split,
      size=getattr(data_config, 'stacked_size', stacked_mnist.DEFAULT_SIZE),
      data_dir=data_dir,
      cache_dir=getattr(data_config, 'cache_dir', ''),
      url=getattr(data_config, 'url', '') or mnist.DEFAULT_URL,
    )
  else:
    images, labels = tfds_source.load_tfds(name, split, data_dir)
  logging.info('Loaded %s/%s: images %s.', name, split, images.shape)
  return Dataset(images, labels, name)
