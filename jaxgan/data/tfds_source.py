"""Any image dataset of tensorflow-datasets, read through its random-access data source.

`tfds.data_source` reads ArrayRecord files without TensorFlow; only preparing most datasets
(downloading and encoding them) needs TensorFlow.
"""

import os

import numpy as np

from jaxgan.data.dataset import Dataset
from jaxgan.errors import DataError

_BATCH = 1024
_PREPARE_HINT = (
  "pip install 'jaxgan[tfds-prepare]' (or prepare it elsewhere with "
  "file_format='array_record' and point data.dir at that tfds data dir)"
)


def _needs_tensorflow(error: BaseException | None) -> bool:
  """Whether `error`, or an exception it was raised from, is a failed import of TensorFlow."""
  while error is not None:
    if isinstance(error, ImportError) and (
      error.name == 'tensorflow' or "'tensorflow'" in str(error)
    ):
      return True
    error = error.__cause__ or error.__context__
  return False


def _builder(tfds, name: str, data_dir: str | None):
  """Returns the prepared tfds builder of `name`, preparing it first when needed."""
  try:
    builder = tfds.builder(name, data_dir=data_dir, file_format='array_record')
  except tfds.core.DatasetNotFoundError:
    where = f' and not prepared in {data_dir}' if data_dir else ''
    raise DataError(
      f'{name!r} is not a known tfds dataset{where}; check data.name (see tfds.list_builders()).'
    ) from None
  if builder.is_prepared():
    return builder
  try:
    builder.download_and_prepare()
  except Exception as e:
    if _needs_tensorflow(e):
      raise DataError(f'preparing tfds dataset {name!r} needs TensorFlow: {_PREPARE_HINT}.') from e
    if isinstance(e, OSError):
      raise DataError(
        f'cannot download or prepare tfds dataset {name!r} ({e}); '
        'prepare it elsewhere and point data.dir at that tfds data dir.'
      ) from e
    raise
  return builder


def load_tfds(
  name: str, split: str, data_dir: str | os.PathLike = ''
) -> tuple[np.ndarray, np.ndarray | None]:
  """Returns tfds `name`/`split` as uint8 images (N, H, W, C) and int32 labels (or None).

  `data_dir` is the tfds data dir ('' for tfds' default); the dataset is prepared there if needed.
  """
  try:
    import tensorflow_datasets as tfds  # Heavy, and only needed for datasets other than MNIST.
  except ImportError as e:
    raise DataError(
      f'reading {name!r} needs tensorflow-datasets ({e}); pip install tensorflow-datasets.'
    ) from e
  builder = _builder(tfds, name, os.fspath(data_dir) if data_dir else None)
  try:
    source = builder.as_data_source(split=split)
  except NotImplementedError as e:
    raise DataError(
      f'tfds dataset {name!r} in {builder.data_dir} is not stored as array_record, which '
      'reading without TensorFlow needs; prepare it again with '
      "file_format='array_record' into another data.dir."
    ) from e
  except (KeyError, ValueError) as e:
    splits = sorted(builder.info.splits)
    raise DataError(f'tfds dataset {name!r}: bad split {split!r} ({e}); splits: {splits}.') from e
  return _materialise(source, name)


def _materialise(source, name: str) -> tuple[np.ndarray, np.ndarray | None]:
  """Reads every example of a tfds data source into one image array and one label array."""
  n = len(source)
  if n == 0:
    raise DataError(f'tfds dataset {name!r}: the split is empty.')
  first = source[0]
  if 'image' not in first:
    raise DataError(f'tfds dataset {name!r} has no image feature (features: {sorted(first)}).')
  shape = np.shape(first['image'])
  shape = shape + (1,) if len(shape) == 2 else shape
  images = np.empty((n, *shape), np.uint8)
  labels = np.empty((n,), np.int32) if 'label' in first else None
  for start in range(0, n, _BATCH):
    # Batched reads are much faster than one ArrayRecord lookup per example.
    for i, example in enumerate(source.__getitems__(list(range(start, min(start + _BATCH, n))))):
      image = np.asarray(example['image'])
      if image.dtype != np.uint8:
        raise DataError(f'tfds dataset {name!r}: images are {image.dtype}, jaxgan needs uint8.')
      if image.shape != shape and image.shape + (1,) != shape:
        raise DataError(
          f'tfds dataset {name!r}: images of different shapes ({shape}, {image.shape}); '
          'jaxgan needs one shape for the whole dataset.'
        )
      images[start + i] = image.reshape(shape)
      if labels is not None:
        labels[start + i] = example['label']
  return images, labels


# --- Any tensorflow-datasets dataset, as data.name='tfds:NAME' (jaxgan.data) -----------------
PREFIX = 'tfds:'
SCHEMA = {}
FEATURES = None  # no feature network measures arbitrary datasets yet
EVAL_NUM_SAMPLES = 10_000
_SHAPES = {'mnist': (28, 28, 1), 'fashion_mnist': (28, 28, 1)}


def _tfds_name(data_config) -> str:
  return data_config.name.removeprefix(PREFIX)


def load(data_config, split: str) -> Dataset:
  name = _tfds_name(data_config)
  images, labels = load_tfds(name, split, data_config.dir)
  return Dataset(images, labels, name)


def image_shape(data_config) -> tuple[int, ...] | None:
  return _SHAPES.get(_tfds_name(data_config))
