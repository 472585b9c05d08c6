"""The field's evaluation protocols by name, as StyleGAN2-ADA and R3GAN report them.

A preset fixes what a number means: the metric, how many images are generated, which real
images they are compared with, and (by default) how images are resized for the FID Inception
network. `evaluate(...)` computes any set of presets from one batch of generated images (the
largest count asked for; a preset of fewer images takes the first ones) and one embedding of
each real split, and says for each the protocol it was measured with.

- fid50k_full: FID, 50,000 generated images against the whole training set;
- kid50k_full: KID of the same (100 subsets of 1,000 images, StyleGAN2-ADA's settings);
- pr50k3_full: precision and recall (k = 3) of the same, in Inception features. StyleGAN2-ADA's
  pr50k3_full measures in VGG16 features instead: these numbers are not comparable with its;
- is50k: Inception Score of 50,000 generated images (10 splits), where the weights have logits;
- fid10k: FID, 10,000 generated images against the test split, for quick runs.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from absl import logging

from jaxgan.evaluation import evaluator, metrics
from jaxgan.evaluation import features as features_lib
from jaxgan.evaluation.features import Embedding

# StyleGAN2-ADA and R3GAN measure with NVIDIA's network file, which resizes as TensorFlow 1.
DEFAULT_RESIZE = 'legacy_tensorflow'
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
IS_SPLITS = 10
PR_K = 3


class Preset(NamedTuple):
  name: str
  metric: str  # fid, kid, pr or is
  num_generated: int
  reference_split: str  # 'train' (all of it: "full"), 'test', or '' (no real images)


PRESETS = {
  p.name: p
  for p in (
    Preset('fid50k_full', 'fid', 50_000, 'train'),
    Preset('kid50k_full', 'kid', 50_000, 'train'),
    Preset('pr50k3_full', 'pr', 50_000, 'train'),
    Preset('is50k', 'is', 50_000, ''),
    Preset('fid10k', 'fid', 10_000, 'test'),
  )
}


def parse(names: str) -> list[Preset]:
  """Comma-separated preset names -> presets (in that order, each once); ValueError if unknown."""
  out = []
  for name in (n.strip() for n in names.split(',')):
    if name not in PRESETS:
      raise ValueError(f'unknown metric preset {name!r}; known: {", ".join(PRESETS)}')
    if PRESETS[name] not in out:
      out.append(PRESETS[name])
  if not out:
    raise ValueError(f'no metric preset named; known: {", ".join(PRESETS)}')
  return out


class Result(NamedTuple):
  metrics: dict[str, float]  # 'fid50k_full', 'kid50k_full', 'kid50k_full_std', ...
  protocols: dict[str, dict]  # preset name -> how it was measured
  notes: list[str]  # presets left out, and why


def evaluate(
  presets: list[Preset],
  fake: Embedding,
  real: 'RealSplits',
  net,
  num_generated: int | None = None,
) -> Result:
  """The presets' metrics of the generated images' embedding `fake` (at least as many images as
  the largest preset asks for, or `num_generated` when given, which overrides every preset's
  count) against the real splits' embeddings by `net`. A protocol's `preset_counts` says
  whether its numbers of images are the preset's (and so comparable with published ones)."""
  out, protocols, notes = {}, {}, []
  for p in presets:
    n = num_generated or p.num_generated
    if len(fake.features) < n:
      raise ValueError(f'{p.name} needs {n} generated images, got {len(fake.features)}')
    gen = Embedding(fake.features[:n], None if fake.probs is None else fake.probs[:n])
    ref = real.embed(p.reference_split) if p.reference_split else None
    if p.metric == 'is' and (gen.probs is None or gen.probs.shape[1] != 1):
      note = f'{p.name} left out: the feature network ({_weights(net)}) gives no class logits'
      logging.warning('%s', note)
      notes.append(note)
      continue
    if p.metric == 'fid':
      out[p.name] = metrics.fid(ref.features, gen.features)
    elif p.metric == 'kid':
      out[p.name], out[f'{p.name}_std'] = metrics.kid(
        ref.features, gen.features, KID_SUBSETS, KID_SUBSET_SIZE
      )
    elif p.metric == 'pr':
      m = metrics.manifold_metrics(ref.features, gen.features, k_pr=PR_K, k_dc=None)
      out[f'{p.name}_precision'], out[f'{p.name}_recall'] = m['precision'], m['recall']
    else:
      out[p.name], out[f'{p.name}_std'] = metrics.inception_score(gen.probs[:, 0], IS_SPLITS)
    protocols[p.name] = {
      'preset': p.name,
      'num_generated': n,
      'num_reference': 0 if ref is None else len(ref.features),
      'reference_split': p.reference_split or 'none',
      'preset_counts': n == p.num_generated
      and (not p.reference_split or real.complete(p.reference_split)),
      **features_lib.describe(net),
      'jaxgan_version': evaluator.jaxgan_version(),
    }
  return Result(out, protocols, notes)


def _weights(net) -> str:
  return getattr(net, 'weights', '') or net.name


def max_generated(presets: list[Preset], num_generated: int | None = None) -> int:
  return num_generated or max(p.num_generated for p in presets)


class RealSplits:
  """The real images of each split, loaded by `load_split(split)` (all of them, or `max_real`
  drawn with a fixed seed) and embedded by `net`, once per split."""

  def __init__(self, net, load_split: Callable[[str], np.ndarray], max_real: int | None = None):
    self.net, self.load_split, self.max_real = net, load_split, max_real
    self._done: dict[str, tuple[Embedding, bool]] = {}

  def _get(self, split: str) -> tuple[Embedding, bool]:
    if split not in self._done:
      images = self.load_split(split)
      n = min(self.max_real or len(images), len(images))
      self._done[split] = evaluator.embed_real(self.net, images, n), n == len(images)
    return self._done[split]

  def embed(self, split: str) -> Embedding:
    return self._get(split)[0]

  def complete(self, split: str) -> bool:
    """Whether all of the split's images were embedded."""
    return self._get(split)[1]
