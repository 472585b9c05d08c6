"""The in-memory form every source returns."""

from typing import NamedTuple

import numpy as np


class Dataset(NamedTuple):
  """A whole split in host memory (or memory-mapped from a prepared cache)."""

  images: np.ndarray  # uint8, (N, H, W, C).
  labels: np.ndarray | None  # int32, (N,), or None when the dataset has no labels.
  name: str
  classes: tuple[str, ...] | None = None  # the name of each label, when the source knows them
