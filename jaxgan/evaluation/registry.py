"""Metrics by name: each compares the embeddings of real and generated images.

A metric is `fn(real: Embedding, fake: Embedding) -> {name: value}`; it returns {} when the
feature network gives it nothing to work with (e.g. no class probabilities). `register(name,
fn)` adds one; every registered metric runs in every evaluation, in registration order.
"""

from collections.abc import Callable

import numpy as np

from jaxgan import registry as registry_lib
from jaxgan.evaluation import metrics
from jaxgan.evaluation.features import Embedding

MetricFn = Callable[[Embedding, Embedding], dict[str, float]]

# A class counts as covered when it holds at least 1% of the samples (a tenth of its share
# under a uniform spread), so that a few misclassified samples do not count as a class.
MIN_CLASS_FRACTION = 0.01
# The FID Inception network's 1008 logits: the Inception Score is defined on them. Any other
# single classification (a dataset's own classifier) gets the classes metrics instead.
INCEPTION_CLASSES = 1008

_REGISTRY = registry_lib.Registry('metric')


def register(name: str, fn: MetricFn) -> MetricFn:
  return _REGISTRY.register(name, fn)


def get(name: str) -> MetricFn:
  return _REGISTRY.get(name)


def names() -> tuple[str, ...]:
  return _REGISTRY.names()


def compare(real: Embedding, fake: Embedding) -> dict[str, float]:
  """Every registered metric of `fake` against `real`."""
  out = {}
  for fn in _REGISTRY.values():
    out.update(fn(real, fake))
  return out


def _fid(real: Embedding, fake: Embedding) -> dict[str, float]:
  return {'fid': metrics.fid(real.features, fake.features)}


# Neighbours for precision/recall and for density/coverage (the papers' choices).
K_PRECISION_RECALL, K_DENSITY_COVERAGE = 3, 5


def _manifold(real: Embedding, fake: Embedding) -> dict[str, float]:
  """Precision, recall, density and coverage, from one pass over each distance matrix; left
  out when a set has no k-th neighbour to measure (a handful of images)."""
  k_pr = (
    K_PRECISION_RECALL if min(len(real.features), len(fake.features)) > K_PRECISION_RECALL else None
  )
  k_dc = K_DENSITY_COVERAGE if len(real.features) > K_DENSITY_COVERAGE else None
  if k_pr is None and k_dc is None:
    return {}
  return metrics.manifold_metrics(real.features, fake.features, k_pr, k_dc)


def _kid(real: Embedding, fake: Embedding) -> dict[str, float]:
  mean, std = metrics.kid(real.features, fake.features)
  return {'kid_mean': mean, 'kid_std': std}


def _single_classification(fake: Embedding) -> bool:
  return fake.probs is not None and fake.probs.shape[1] == 1


def _inception_score(real: Embedding, fake: Embedding) -> dict[str, float]:
  """The Inception Score with 10 splits, on the Inception network's probabilities only."""
  if not _single_classification(fake) or fake.probs.shape[-1] != INCEPTION_CLASSES:
    return {}
  mean, std = metrics.inception_score(fake.probs[:, 0])
  return {'is_mean': mean, 'is_std': std}


def _classes(real: Embedding, fake: Embedding) -> dict[str, float]:
  """One classification per image by a dataset's classifier: the Inception-Score formula
  (one split) and the class histogram."""
  if not _single_classification(fake) or fake.probs.shape[-1] == INCEPTION_CLASSES:
    return {}
  probs = fake.probs[:, 0]
  classes, k = probs.argmax(-1), probs.shape[-1]
  return {
    'classifier_score': metrics.classifier_score(probs),
    'class_kl': metrics.kl_from_uniform(classes, k),
    'classes_covered': metrics.num_covered(classes, k, MIN_CLASS_FRACTION),
  }


def _modes(real: Embedding, fake: Embedding) -> dict[str, float]:
  """One classification per channel (Stacked MNIST): a mode is the tuple of classes."""
  if fake.probs is None or fake.probs.shape[1] == 1:
    return {}
  c, k = fake.probs.shape[1:]
  modes = fake.probs.argmax(-1) @ (k ** np.arange(c - 1, -1, -1))
  return {
    'modes_covered': metrics.num_covered(modes, k**c),
    'mode_kl': metrics.kl_from_uniform(modes, k**c),
  }


register('fid', _fid)
register('manifold', _manifold)
register('classes', _classes)
register('modes', _modes)
register('inception_score', _inception_score)
register('kid', _kid)
