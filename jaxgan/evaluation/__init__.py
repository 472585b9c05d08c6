"""Sample quality: FID, KID, precision/recall, density/coverage, and the Inception Score or class
or mode coverage, in the space of a feature network chosen by the dataset (jaxgan's MNIST
classifier for MNIST and Stacked MNIST) or by the user (the FID Inception network).

The trainer's entry points are `Evaluator`, `evaluate_generator` (generated vs real test
images), `reference_metrics` (real training vs real test images: what a perfect generator
would score) and `protocol` (how a report was measured); `make_generate_fn` (a jaxgan GAN as a
`generate_fn`) comes from `jaxgan.sampling`. New feature networks register in `features`,
new metrics in `registry`; reference statistics files are read and written by `stats`; the
field's protocols by name (fid50k_full, ...) are `presets`. See docs/evaluation.md.
"""

from jaxgan.evaluation import features, registry, stats
from jaxgan.evaluation.evaluator import (
  Evaluator,
  embed_generated,
  embed_real,
  evaluate_generator,
  evaluate_images,
  protocol,
  reference_metrics,
)
from jaxgan.evaluation.features import Embedding
from jaxgan.sampling import generate, make_generate_fn, sampling_vars

__all__ = [
  'Embedding',
  'Evaluator',
  'embed_generated',
  'embed_real',
  'evaluate_generator',
  'evaluate_images',
  'features',
  'generate',
  'make_generate_fn',
  'protocol',
  'reference_metrics',
  'registry',
  'sampling_vars',
  'stats',
]
