"""Reference statistics files: the Gaussian fit (mean, covariance) of a feature network's
features over a set of real images, so that FID against those images needs only the samples.

The format is pytorch-fid's `.npz` (`mu`, `sigma`), so its files and jaxgan's are
interchangeable: pytorch-fid reads only those two keys, and jaxgan adds the protocol (image
count, feature network, weights hash, resize, version, source) as string entries beside them.
A file without them (pytorch-fid's own) has an unknown protocol, and is trusted as it is.
"""

import io
from typing import NamedTuple

import numpy as np

from jaxgan import files
from jaxgan.errors import JaxganError
from jaxgan.evaluation import metrics

_ARRAYS = ('mu', 'sigma')
# What files written before the Inception resizes had names say for the one they used.
_OLD_RESIZE_NAMES = {
  'bilinear to 299x299, no antialiasing (pytorch-fid, F.interpolate)': 'legacy_pytorch'
}


class Stats(NamedTuple):
  mu: np.ndarray  # (D,)
  sigma: np.ndarray  # (D, D)
  info: dict[str, str]  # the protocol, as strings; {} for a file without one


def from_features(features: np.ndarray, info: dict | None = None) -> Stats:
  mu, sigma = metrics.gaussian_stats(features)
  return Stats(mu, sigma, {k: str(v) for k, v in (info or {}).items()})


def save(path: str, stats: Stats) -> None:
  """Writes `stats` to `path` (atomically: a reader never sees half a file)."""
  reserved = set(stats.info) & set(_ARRAYS)
  if reserved:
    raise ValueError(f'protocol entries cannot be named {", ".join(sorted(reserved))}')
  buffer = io.BytesIO()
  info = {k: np.array(str(v)) for k, v in stats.info.items()}
  np.savez(buffer, mu=stats.mu, sigma=stats.sigma, **info)
  files.write_bytes(path, buffer.getvalue())


def load(path: str) -> Stats:
  """The statistics in `path`; a one-line JaxganError for a file that is not such a file."""
  try:
    with np.load(path, allow_pickle=False) as f:
      if not all(k in f.files for k in _ARRAYS):
        raise JaxganError(f'{path}: not a statistics file (it has no mu and sigma arrays)')
      mu, sigma = np.asarray(f['mu'], np.float64), np.asarray(f['sigma'], np.float64)
      info = {k: str(f[k]) for k in f.files if k not in _ARRAYS and f[k].dtype.kind == 'U'}
  except (OSError, ValueError) as e:  # missing, unreadable, not an .npz, or pickled objects
    raise JaxganError(f'cannot read statistics file {path}: {e}') from None
  if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
    raise JaxganError(
      f'{path}: mu {mu.shape} and sigma {sigma.shape} are not a (D,) mean and (D, D) covariance'
    )
  return Stats(mu, sigma, info)


def fid(features: np.ndarray, stats: Stats, net=None, where: str = 'the statistics') -> float:
  """FID of `features` (N, D) against `stats`. With `net`, the feature network that made
  `features`, a file whose protocol names another network, other weights or another resize is
  refused: its FID would be a number without meaning (or a biased one), not a large one."""
  features = np.asarray(features)
  if features.ndim != 2 or features.shape[1] != len(stats.mu):
    raise JaxganError(
      f'{where} are of {len(stats.mu)}-d features, the images give features of shape '
      f'{features.shape}: were they made with another feature network?'
    )
  if net is not None:
    checked = (
      ('features', net.name),
      ('features_sha256', getattr(net, 'sha256', None)),
      ('resize', getattr(net, 'resize', None)),
    )
    for key, mine in checked:
      theirs = stats.info.get(key)
      theirs = _OLD_RESIZE_NAMES.get(theirs, theirs) if key == 'resize' else theirs
      if theirs and mine and theirs not in ('unknown', mine):
        raise JaxganError(f'{where} were made with {key}={theirs}, these images with {mine}')
  mu, sigma = metrics.gaussian_stats(features)
  return metrics.frechet_distance(mu, sigma, stats.mu, stats.sigma)
