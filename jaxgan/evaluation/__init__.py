"""Sample quality: FID, precision/recall and class or mode coverage, in the space of a feature
network chosen by the dataset (jaxgan's MNIST classifier for MNIST and Stacked MNIST).

The trainer's entry points are `Evaluator`, `evaluate_generator` (generated vs real test
images), `reference_metrics` (real training vs real test images: what a perfect generator
would score) and `make_generate_fn` (a jaxgan GAN as a `generate_fn`). New feature networks
register in `features`, new metrics in `registry`. See docs/evaluation.md.
"""

from jaxgan.evaluation import features, registry
from jaxgan.evaluation.evaluator import (
  Evaluator,
  evaluate_generator,
  evaluate_images,
  generate,
  make_generate_fn,
  reference_metrics,
  sampling_vars,
)
from jaxgan.evaluation.features import Embedding

__all__ = [
  'Embedding',
  'Evaluator',
  'evaluate_generator',
  'evaluate_images',
  'features',
  'generate',
  'make_generate_fn',
  'reference_metrics',
  'registry',
  'sampling_vars',
]
