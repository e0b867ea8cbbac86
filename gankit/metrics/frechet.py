"""Distances between sets of features, in float64: Fréchet distance (FID) and kernel distance (KID).

- :func:`frechet_distance` fits a Gaussian to each set and returns
  ``||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1^{1/2} S_2 S_1^{1/2})^{1/2})``
  (Heusel et al. 2017). The matrix square root is taken through symmetric
  eigen-decompositions, which stay real and stable where ``sqrtm(S_1 S_2)``
  can return complex noise: ``tr((S_1 S_2)^{1/2})`` equals the trace of the
  square root of the symmetric matrix ``S_1^{1/2} S_2 S_1^{1/2}``.
- :func:`kernel_distance` is the unbiased estimate of the squared maximum
  mean discrepancy with the cubic polynomial kernel
  ``k(x, y) = (x . y / d + 1)^3``, averaged over random subsets (Bińkowski
  et al. 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor


def _as_float64(features: Tensor | np.ndarray) -> np.ndarray:
    array = features.detach().cpu().double().numpy() if isinstance(features, Tensor) else np.asarray(features)
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"features must be a matrix (N, D), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("features contain NaN or infinite values")
    return array


@dataclass(frozen=True)
class GaussianStats:
    """Mean ``(D,)`` and covariance ``(D, D)`` of a feature set, in float64, and how many samples made them.

    ``features`` keeps the samples themselves (``(n, D)``) when there are no more
    of them than features: the covariance then has low rank, and
    :func:`frechet_distance_between` uses them for an exact and much faster
    distance.
    """

    mean: np.ndarray
    cov: np.ndarray
    n: int
    features: np.ndarray | None = None


def gaussian_statistics(features: Tensor | np.ndarray) -> GaussianStats:
    """Sample mean and unbiased covariance of features ``(N, D)``, N >= 2, in float64."""
    array = _as_float64(features)
    if array.shape[0] < 2:
        raise ValueError("at least two samples are needed for a covariance")
    mean = array.mean(axis=0)
    centred = array - mean
    cov = centred.T @ centred / (array.shape[0] - 1)
    return GaussianStats(mean, cov, array.shape[0])


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The square root of a symmetric positive semi-definite matrix (negative rounding-error eigenvalues → 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    root: np.ndarray = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    return root


def trace_sqrt_product(cov_1: np.ndarray, cov_2: np.ndarray) -> float:
    """``tr((S_1 S_2)^{1/2})`` for symmetric PSD ``S_1``, ``S_2``, through ``S_1^{1/2} S_2 S_1^{1/2}``."""
    root_1 = _symmetric_sqrt(cov_1)
    middle = root_1 @ cov_2 @ root_1
    values = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def frechet_distance(
    mean_1: np.ndarray, cov_1: np.ndarray, mean_2: np.ndarray, cov_2: np.ndarray
) -> float:
    """Fréchet (2-Wasserstein) distance between ``N(mean_1, cov_1)`` and ``N(mean_2, cov_2)``, float64.

    Clipped at 0 against rounding error.
    """
    mean_1, mean_2 = np.asarray(mean_1, np.float64), np.asarray(mean_2, np.float64)
    cov_1, cov_2 = np.asarray(cov_1, np.float64), np.asarray(cov_2, np.float64)
    if mean_1.shape != mean_2.shape or cov_1.shape != cov_2.shape or cov_1.shape != (mean_1.size, mean_1.size):
        raise ValueError(
            f"statistics do not match: means {mean_1.shape} and {mean_2.shape}, covariances {cov_1.shape} "
            f"and {cov_2.shape}"
        )
    diff = mean_1 - mean_2
    value = float(diff @ diff + np.trace(cov_1) + np.trace(cov_2) - 2.0 * trace_sqrt_product(cov_1, cov_2))
    return max(value, 0.0)


def frechet_distance_of(features_1: Tensor | np.ndarray, features_2: Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N_1, D)`` and ``(N_2, D)``, float64.

    With fewer samples than feature dimensions the covariances have low rank
    and the same number is computed exactly, and much faster, from the
    samples: ``tr((S_1 S_2)^{1/2})`` is the sum of the singular values of
    ``A B^T / sqrt((N_1 - 1)(N_2 - 1))`` for the centred sets ``A`` and ``B``
    (the non-zero eigenvalues of ``A^T A B^T B`` are those of ``(A B^T)(A B^T)^T``).
    """
    a, b = _as_float64(features_1), _as_float64(features_2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} and {b.shape[1]}")
    if min(a.shape[0], b.shape[0]) < 2:
        raise ValueError("at least two samples are needed for a covariance")
    if min(a.shape[0], b.shape[0]) >= a.shape[1]:
        x, y = gaussian_statistics(a), gaussian_statistics(b)
        return frechet_distance(x.mean, x.cov, y.mean, y.cov)
    diff = a.mean(axis=0) - b.mean(axis=0)
    centred_a, centred_b = a - a.mean(axis=0), b - b.mean(axis=0)
    scale_a, scale_b = a.shape[0] - 1, b.shape[0] - 1
    traces = float(np.sum(centred_a**2)) / scale_a + float(np.sum(centred_b**2)) / scale_b
    cross = float(np.linalg.svd(centred_a @ centred_b.T, compute_uv=False).sum()) / np.sqrt(scale_a * scale_b)
    return max(float(diff @ diff) + traces - 2.0 * cross, 0.0)


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD between ``x`` ``(m, D)`` and ``y`` ``(n, D)`` with ``k(a, b) = (a . b / D + 1)^3``.

    The diagonals of the within-set kernel matrices are left out, which makes
    the estimate unbiased (and able to go slightly below zero).
    """
    m, n, d = x.shape[0], y.shape[0], x.shape[1]
    if m < 2 or n < 2:
        raise ValueError("each set needs at least two samples")
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_distance(
    features_1: Tensor | np.ndarray,
    features_2: Tensor | np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: mean and standard deviation of :func:`polynomial_mmd2` over ``subsets`` random subsets, float64.

    Each subset draws ``min(subset_size, N_1, N_2)`` samples from each set
    without replacement, using a NumPy generator seeded by ``seed``.
    """
    a, b = _as_float64(features_1), _as_float64(features_2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} and {b.shape[1]}")
    if subsets < 1:
        raise ValueError("subsets must be at least 1")
    size = min(subset_size, a.shape[0], b.shape[0])
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(a.shape[0], size, replace=False)]
        y = b[rng.choice(b.shape[0], size, replace=False)]
        values.append(polynomial_mmd2(x, y))
    return float(np.mean(values)), float(np.std(values))



def frechet_distance_between(x: GaussianStats, y: GaussianStats) -> float:
    """The Fréchet distance of two :class:`GaussianStats`, exact, using the samples a low-rank side kept.

    With the samples ``A`` (centred, ``n x D``, ``n <= D``) of one side,
    ``tr((S_x S_y)^{1/2})`` is the sum of the square roots of the eigenvalues of
    the small symmetric matrix ``A S_y A^T / (n - 1)``, which are the non-zero
    eigenvalues of ``S_x S_y``; no ``D x D`` decomposition is needed.
    """
    if x.features is not None and y.features is not None:
        return frechet_distance_of(x.features, y.features)
    if x.features is None and y.features is not None:
        x, y = y, x
    if x.features is None:
        return frechet_distance(x.mean, x.cov, y.mean, y.cov)
    if x.mean.shape != y.mean.shape or y.cov.shape != (y.mean.size, y.mean.size):
        raise ValueError(f"statistics do not match: means {x.mean.shape} and {y.mean.shape}")
    centred = _as_float64(x.features) - x.mean
    small = centred @ y.cov @ centred.T / (x.n - 1)
    cross = float(np.sqrt(np.clip(np.linalg.eigvalsh((small + small.T) / 2), 0.0, None)).sum())
    diff = x.mean - y.mean
    value = float(diff @ diff) + float(np.trace(x.cov)) + float(np.trace(y.cov)) - 2.0 * cross
    return max(value, 0.0)
