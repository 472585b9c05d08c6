"""Dataset sources by name, behind one small protocol; `load_dataset(config.data)` reads a split.

A source is a module (or any object) with
- `SCHEMA`: {key: check} for its own keys under `config.data` (jaxgan.checks);
- `load(data_config, split) -> Dataset`: the whole split as uint8 arrays in host memory;
- `image_shape(data_config)`: (H, W, C) without reading the data, or None if unknown;
- `FEATURES`: the name of the evaluation feature network that measures its images (see
  jaxgan.evaluation), or None; `EVAL_NUM_SAMPLES`: samples per evaluation by default;
- optionally `prepare(data_config, split) -> dict`: prepare the split into its cache and say
  where it is and what it holds (`python -m jaxgan.prepare`; sources without it are loaded);
- optionally `has_split(data_config, split) -> bool`: False where a split is missing, so that
  evaluations compare with 'train' where there is no 'test' (`reference_split`).
A Dataset may carry its class names (`classes`); the trainer writes them to the workdir.
`register(name, source)` adds one and `config.data.name` selects it; `tfds:NAME` reads the
tensorflow-datasets dataset NAME. Every source shares the keys in COMMON_SCHEMA.
"""

import numpy as np
from absl import logging

from jaxgan import checks, registry
from jaxgan.data import cifar, folder, mnist, stacked_mnist, tfds_source
from jaxgan.data.dataset import Dataset
from jaxgan.data.mnist import MNIST_FILES
from jaxgan.errors import ConfigError

__all__ = [
  'COMMON_SCHEMA',
  'MNIST_FILES',
  'Dataset',
  'get',
  'image_shape',
  'load_dataset',
  'register',
  'subset',
]

K = checks.Key
COMMON_SCHEMA: dict[str, checks.Check | checks.Key] = {
  'name': checks.string,  # no default: every config names its source
  'split': K('train', checks.string),
  'dir': K('', checks.string),  # where the source reads its files ('': it fetches them)
  # Classes of a conditional model (model.conditional): 0 counts them in the data when training
  # starts (a folder's sub-folders, CIFAR's classes, the labels' range); the run records it.
  'num_classes': K(0, checks.integer(0)),
  # Images on every device (yes), streamed from host memory (no), or by size (auto).
  'on_device': K('auto', checks.one_of('auto', 'yes', 'no')),
  'subset': K(0, checks.integer(0)),  # train on this many images (a fixed choice); 0: all
  'clusters': K(0, checks.integer(0)),  # > 0: labels are k-means clusters (jaxgan.data.clusters)
  'mirror': K(False, checks.boolean),  # random left-right flips of the training images
}

_REGISTRY = registry.Registry(
  'data source',
  f'data.name, or {tfds_source.PREFIX}NAME for a tensorflow-datasets dataset',
  {
    'mnist': mnist,
    'stacked_mnist': stacked_mnist,
    'folder': folder,
    'cifar10': cifar.CIFAR10,
    'cifar100': cifar.CIFAR100,
  },
)


def register(name: str, source) -> None:
  _REGISTRY.register(name, source)


def names() -> tuple[str, ...]:
  return _REGISTRY.names()


def get(name: str):
  """The source registered as `name`, or tensorflow-datasets for `tfds:NAME`."""
  if name.startswith(tfds_source.PREFIX):
    return tfds_source
  return _REGISTRY.get(name)


def load_dataset(data_config, split: str | None = None) -> Dataset:
  """The split `split` (default: data_config.split) of the source named by data_config.name.

  Raises DataError when the data is missing, corrupt, or cannot be fetched or prepared.
  """
  split = split or data_config.split or 'train'
  dataset = get(data_config.name).load(data_config, split)
  logging.info('Loaded %s/%s: images %s.', data_config.name, split, dataset.images.shape)
  return dataset


def reference_split(data_config) -> str:
  """The split that evaluations compare samples with: 'test', or 'train' where the source
  has no test split (a folder of images without split sub-folders)."""
  source = get(data_config.name)
  has_test = getattr(source, 'has_split', lambda cfg, split: True)(data_config, 'test')
  return 'test' if has_test else 'train'


def subset(dataset: Dataset, n: int) -> Dataset:
  """The first `n` images of a fixed random order of `dataset` (data.subset; 0: all of it).

  The order depends on nothing but the split's size, so every run and seed, and every model
  compared on it, trains on the same images (e.g. 10% of CIFAR-10 for DiffAugment).
  """
  total = len(dataset.images)
  if not n or n == total:
    return dataset
  if n > total:
    raise ConfigError(f'config.data.subset={n}, but the split has only {total} images')
  keep = np.sort(np.random.default_rng(0).permutation(total)[:n])
  labels = None if dataset.labels is None else dataset.labels[keep]
  logging.info('Training on a subset of %d of the %d images (data.subset).', n, total)
  return dataset._replace(images=dataset.images[keep], labels=labels)


def image_shape(data_config) -> tuple[int, ...] | None:
  """(H, W, C) of the source's images if it knows them without reading, else None."""
  return get(data_config.name).image_shape(data_config)
