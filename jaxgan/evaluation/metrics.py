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
  """Fréchet distance between Gaussian fits of two feature sets.

  With fewer samples than dimensions (a quick check of 2048-d Inception features), the
  covariances have low rank, and the trace term comes from the samples: with A, B the centred
  samples over sqrt(n - 1), s1 = A'A, s2 = B'B, and tr((s1 s2)^1/2) is the sum of the singular
  values of A B' (n1 x n2), the same number exactly, without the D x D eigendecompositions
  whose round-off eigenvalues add sqrt(1e-16)-sized terms by the thousand.
  """
  x1, x2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
  (n1, d), n2 = x1.shape, len(x2)
  if max(n1, n2) > d or min(n1, n2) < 2:
    return frechet_distance(*gaussian_stats(x1), *gaussian_stats(x2))
  mu1, mu2 = x1.mean(0), x2.mean(0)
  a, b = (x1 - mu1) / np.sqrt(n1 - 1), (x2 - mu2) / np.sqrt(n2 - 1)
  trace_sqrt = np.linalg.svd(a @ b.T, compute_uv=False).sum()
  value = np.sum((mu1 - mu2) ** 2) + np.sum(a * a) + np.sum(b * b) - 2 * trace_sqrt
  return float(max(value, 0.0))


def _log0(x: np.ndarray) -> np.ndarray:
  """log x, and 0 where x = 0: the p log p terms of a KL then count as 0 there (their limit)."""
  return np.log(x, out=np.zeros_like(x), where=x > 0)


def _exp_mean_kl(p: np.ndarray) -> float:
  """exp(E_x[KL(p(y|x) || p(y))]) of the rows p(y|x) of `p`, p(y) their mean."""
  p = np.asarray(p, np.float64)
  # A class no row predicts has p(y) = 0, but then every p(y|x) of it is 0 too: 0 log 0.
  kl = np.sum(p * (_log0(p) - _log0(p.mean(0))), axis=1)
  return float(np.exp(kl.mean()))


def classifier_score(probs: np.ndarray) -> float:
  """exp(E_x[KL(p(y|x) || p(y))]): between 1 and the number of classes (confident and diverse).

  The Inception Score's formula (one split) with a dataset's classifier in place of Inception.
  """
  return _exp_mean_kl(probs)


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
  """Squared distances (len(a), len(b)), clipped at 0 against round-off.

  |a|^2 + |b|^2 - 2 a.b in float32 loses what the norms share: its error grows with the
  squared distance of the points from the origin, not between them. Callers centre the points
  first (`_centred`), which leaves the distances as they are and the norms small.
  """
  return np.maximum(_sq_norms(a)[:, None] + b_sq[None, :] - 2 * a @ b.T, 0)


def _centred(reference: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
  """float32 copies of `reference` and `others`, all shifted by the reference's mean (computed
  in float64): distances unchanged, and independent of any offset the features share."""
  centre = np.mean(reference, axis=0, dtype=np.float64).astype(np.float32)
  return [np.asarray(x, np.float32) - centre for x in (reference, *others)]


def _knn_radii(x: np.ndarray, ks: list[int], chunk: int) -> np.ndarray:
  """Squared distance from each point of float32 `x` to its k-th nearest other point, for
  each k of `ks`: (len(ks), N), from one pass over the distances."""
  x_sq = _sq_norms(x)
  radii = []
  for start in range(0, len(x), chunk):
    d = _pairwise_sq_dists(x[start : start + chunk], x, x_sq)
    # Column k of the sorted row: column 0 is the point itself (distance 0).
    radii.append(np.partition(d, ks, axis=1)[:, ks])
  return np.concatenate(radii).T


def knn_radii(features: np.ndarray, k: int = 3, chunk: int = 1000) -> np.ndarray:
  """Squared distance from each point to its k-th nearest other point in the same set."""
  return _knn_radii(_centred(features)[0], [k], chunk)[0]


def manifold_metrics(
  real: np.ndarray,
  fake: np.ndarray,
  k_pr: int | None = 3,
  k_dc: int | None = 5,
  chunk: int = 1000,
) -> dict[str, float]:
  """`precision_recall` with k_pr and `density_coverage` with k_dc neighbours, as a dict:
  precision, recall, density, coverage; a k of None leaves its pair out.

  Computes each distance matrix once, `chunk` rows at a time: real-real (the real radii for
  both k), fake-fake (the fake radii) and fake-real (all four metrics), where the two
  functions one after the other would compute the real-real and fake-real ones twice. Both
  sets are first shifted by the real features' mean, so that an offset they share (Inception
  features are all positive) costs no float32 precision.
  """
  real, fake = _centred(real, fake)
  ks = [k for k in (k_pr, k_dc) if k is not None]
  real_radii = dict(zip(ks, _knn_radii(real, ks, chunk), strict=True))
  if k_pr is not None:
    fake_radii = _knn_radii(fake, [k_pr], chunk)[0]
    fake_inside = np.zeros(len(fake), bool)  # in a real ball: precision
    real_inside = np.zeros(len(real), bool)  # in a fake ball: recall
  if k_dc is not None:
    count = np.zeros(len(real), np.int64)  # fake points in each real ball
  r_sq = _sq_norms(real)
  for start in range(0, len(fake), chunk):
    stop = start + chunk
    d = _pairwise_sq_dists(fake[start:stop], real, r_sq)
    if k_pr is not None:
      fake_inside[start:stop] = np.any(d <= real_radii[k_pr], axis=1)
      # Recall reads the same distances by column: real points in this chunk's fake balls.
      real_inside |= np.any(d <= fake_radii[start:stop, None], axis=0)
    if k_dc is not None:
      count += np.sum(d < real_radii[k_dc], axis=0)
  out = {}
  if k_pr is not None:
    out.update(precision=float(fake_inside.mean()), recall=float(real_inside.mean()))
  if k_dc is not None:
    out.update(density=float(count.sum() / (k_dc * len(fake))), coverage=float(np.mean(count > 0)))
  return out


def precision_recall(
  real: np.ndarray, fake: np.ndarray, k: int = 3, chunk: int = 1000
) -> tuple[float, float]:
  """k-NN precision and recall of Kynkäänniemi et al. 2019.

  Each set's manifold is the union of balls around its points reaching their k-th nearest
  neighbour. Precision: the fraction of fake points inside the real manifold (are samples
  realistic?); recall: the fraction of real points inside the fake manifold (is the data's
  variety covered?). Distances are computed `chunk` rows at a time to bound memory.
  """
  m = manifold_metrics(real, fake, k, None, chunk)
  return m['precision'], m['recall']


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
  """Inception Score (Salimans et al. 2016): mean and std over `splits` consecutive parts of
  exp(E_x[KL(p(y|x) || p(y))]), p(y) the part's own marginal.

  The split protocol of the original code and torch-fidelity, so that numbers compare with
  published ones; a single split is `classifier_score`. Terms with p(y|x) = 0 count as 0
  (the limit of p log p), not as NaN.
  """
  p = np.asarray(probs, np.float64)
  n = len(p)
  if n < splits:
    raise ValueError(f'the Inception Score needs at least {splits} samples, got {n}')
  scores = [_exp_mean_kl(p[i * n // splits : (i + 1) * n // splits]) for i in range(splits)]
  return float(np.mean(scores)), float(np.std(scores))


def _cubic_kernel_sums(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
  """Sums of k(x_i, x_j) over i != j, k(y_i, y_j) over i != j and k(x_i, y_j) over all i, j,
  for k(a, b) = (a.b / d + 1)^3, of float32 `x` and `y`.

  Kernel values in float32, sums accumulated in float64: 10x faster than float64 throughout
  (numpy's float64 power is slow), and the sums agree to about 1e-9 relative.
  """
  scale = np.float32(1 / x.shape[1])

  def kernel_sum(a, b, skip_diagonal):
    k = a @ b.T
    k *= scale
    k += 1
    cube = k * k
    cube *= k
    total = cube.sum(dtype=np.float64)
    return total - np.trace(cube, dtype=np.float64) if skip_diagonal else total

  return kernel_sum(x, x, True), kernel_sum(y, y, True), kernel_sum(x, y, False)


def kid(
  real: np.ndarray,
  fake: np.ndarray,
  num_subsets: int = 100,
  subset_size: int = 1000,
  seed: int = 0,
) -> tuple[float, float]:
  """Kernel Inception Distance (Binkowski et al. 2018): mean and std over `num_subsets` random
  subsets of the unbiased MMD^2 estimate with the kernel k(a, b) = (a.b / d + 1)^3.

  As torch-fidelity: each subset draws `subset_size` real and as many fake points without
  replacement (capped at the smaller set), and the std is over subsets (ddof 0). Unlike FID
  it is unbiased, so small sample sizes do not inflate it, and it can be slightly negative.
  """
  real, fake = np.asarray(real, np.float32), np.asarray(fake, np.float32)
  m = min(subset_size, len(real), len(fake))
  if m < 2:
    raise ValueError(f'KID needs at least 2 real and 2 fake samples, got {len(real)}, {len(fake)}')
  if m == len(real) == len(fake):
    num_subsets = 1  # every subset is the whole of both sets: the same value each time
  rng = np.random.default_rng(seed)
  values = []
  for _ in range(num_subsets):
    x = real[rng.choice(len(real), m, replace=False)]
    y = fake[rng.choice(len(fake), m, replace=False)]
    sxx, syy, sxy = _cubic_kernel_sums(x, y)
    values.append((sxx + syy) / (m * (m - 1)) - 2 * sxy / (m * m))
  return float(np.mean(values)), float(np.std(values))


def density_coverage(
  real: np.ndarray, fake: np.ndarray, k: int = 5, chunk: int = 1000
) -> tuple[float, float]:
  """Density and coverage of Naeem et al. 2020, k nearest neighbours of the real points only.

  Density: how many real k-NN balls hold each fake point, divided by k (1 on average for a
  generator matching the data; above 1 when samples crowd dense regions). Coverage: the
  fraction of real balls holding at least one fake point. Unlike precision and recall they do
  not build balls around fake points, so a few fake outliers cannot inflate them. Balls are
  open (distance < radius) as in the authors' code, so a set against itself has density 1.
  """
  m = manifold_metrics(real, fake, None, k, chunk)
  return m['density'], m['coverage']
