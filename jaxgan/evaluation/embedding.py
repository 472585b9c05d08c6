"""What a feature network gives for a set of images."""

from typing import NamedTuple

import numpy as np


class Embedding(NamedTuple):
  """Features (N, D) of N images, and class probabilities (N, C, K) if the network classifies
  (C: one classification per image, or one per channel as for Stacked MNIST), else None."""

  features: np.ndarray
  probs: np.ndarray | None
