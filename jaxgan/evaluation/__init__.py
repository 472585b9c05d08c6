"""Sample quality: FID, classifier score, precision/recall and mode coverage on MNIST features.

The trainer's entry points are `evaluate_generator` (generated vs real test images),
`reference_metrics` (real training vs real test images: what a perfect generator would score)
and `make_generate_fn` (a jaxgan GAN as a `generate_fn`). See docs/evaluation.md.
"""

from jaxgan.evaluation.evaluator import (
  DEFAULT_NUM_SAMPLES,
  default_num_samples,
  embed,
  evaluate_generator,
  evaluate_images,
  generate,
  make_generate_fn,
  reference_metrics,
)

__all__ = [
  'DEFAULT_NUM_SAMPLES',
  'default_num_samples',
  'embed',
  'evaluate_generator',
  'evaluate_images',
  'generate',
  'make_generate_fn',
  'reference_metrics',
]
