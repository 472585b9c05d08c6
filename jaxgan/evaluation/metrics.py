"""Sample-quality metrics as plain numpy functions of features, probabilities or class labels.

Features are (N, D) arrays (the feature classifier's penultimate layer); probabilities are
(N, K) softmax outputs; classes are (N,) integer predictions.
"""

import numpy as np


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean (D,) and covariance (D, D) of `features`, in float64."""
  x = np.asarray(features, np.float64)
  return x.mean(0), np.cov(x, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
  """Square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
  w, v = np.linalg.eigh(a)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
  """Squared Fréchet (2-Wasserstein) distance between N(mu1, s1) and N(mu2, s2).

  ||mu1 - mu2||^2 + tr(s1) + tr(s2) - 2 tr((s1 s2)^1/2). The trace term is computed as
  tr((r s2 r)^1/2) with r = s1^1/2: the same eigenvalues, but of a symmetric PSD matrix, so
  `eigh` applies and there is no complex round-off as with `scipy.linalg.sqrtm(s1 @ s2)`.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.atleast_2d(np.asarray(s1, np.float64)), np.atleast_2d(np.asarray(s2, np.float64))
  r = _sqrt_psd(s1)
  m = r @ s2 @ r
  eig = np.linalg.eigvalsh((m + m.T) / 2)
  trace_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
  value = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
  return float(max(value, 0.0))


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
  """Fréchet distance between Gaussian fits of two feature sets."""
  return frechet_distance(*gaussian_stats(features1), *gaussian_stats(features2))


def classifier_score(probs: np.ndarray, eps: float = 1e-12) -> float:
  """exp(E_x[KL(p(y|x) || p(y))]): between 1 and the number of classes (confident and diverse).

  The Inception Score's formula with the MNIST classifier in place of Inception.
  """
  p = np.asarray(probs, np.float64)
  marginal = p.mean(0)
  kl = np.sum(p * (np.log(p + eps) - np.log(marginal + eps)), axis=1)
  return float(np.exp(kl.mean()))


def histogram(classes: np.ndarray, num_classes: int) -> np.ndarray:
  """Fraction of the samples in each class, (num_classes,)."""
  counts = np.bincount(np.asarray(classes).ravel(), minlength=num_classes)
  return counts / max(counts.sum(), 1)


def kl_from_uniform(classes: np.ndarray, num_classes: int) -> float:
  """KL(histogram of `classes` || uniform): 0 when balanced, log(num_classes) for one class."""
  p = histogram(classes, num_classes)
  nonzero = p[p > 0]  # 0 log 0 = 0
  return float(np.sum(nonzero * np.log(nonzero * num_classes)))


def num_covered(classes: np.ndarray, num_classes: int, min_fraction: float = 0.0) -> int:
  """Classes holding at least one sample and at least `min_fraction` of all samples."""
  p = histogram(classes, num_classes)
  return int(np.sum((p > 0) & (p >= min_fraction)))


def _sq_norms(x: np.ndarray) -> np.ndarray:
  return np.einsum('ij,ij->i', x, x)


def _pairwise_sq_dists(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
  """Squared distances (len(a), len(b)), clipped at 0 against round-off."""
  return np.maximum(_sq_norms(a)[:, None] + b_sq[None, :] - 2 * a @ b.T, 0)


def knn_radii(features: np.ndarray, k: int = 3, chunk: int = 1000) -> np.ndarray:
  """Squared distance from each point to its k-th nearest other point in the same set."""
  x = np.asarray(features, np.float32)
  x_sq = _sq_norms(x)
  radii = []
  for start in range(0, len(x), chunk):
    d = _pairwise_sq_dists(x[start : start + chunk], x, x_sq)
    # Column k of the sorted row: column 0 is the point itself (distance 0).
    radii.append(np.partition(d, k, axis=1)[:, k])
  return np.concatenate(radii)


def _fraction_inside(
  queries: np.ndarray, support: np.ndarray, radii: np.ndarray, chunk: int
) -> float:
  """Fraction of `queries` inside at least one ball (support[j], radius radii[j])."""
  s_sq = _sq_norms(support)
  inside = []
  for start in range(0, len(queries), chunk):
    d = _pairwise_sq_dists(queries[start : start + chunk], support, s_sq)
    inside.append(np.any(d <= radii[None, :], axis=1))
  return float(np.mean(np.concatenate(inside)))


def precision_recall(
  real: np.ndarray, fake: np.ndarray, k: int = 3, chunk: int = 1000
) -> tuple[float, float]:
  """k-NN precision and recall of Kynkäänniemi et al. 2019.

  Each set's manifold is the union of balls around its points reaching their k-th nearest
  neighbour. Precision: the fraction of fake points inside the real manifold (are samples
  realistic?); recall: the fraction of real points inside the fake manifold (is the data's
  variety covered?). Distances are computed `chunk` rows at a time to bound memory.
  """
  real, fake = np.asarray(real, np.float32), np.asarray(fake, np.float32)
  precision = _fraction_inside(fake, real, knn_radii(real, k, chunk), chunk)
  recall = _fraction_inside(real, fake, knn_radii(fake, k, chunk), chunk)
  return precision, recall
