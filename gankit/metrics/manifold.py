"""Precision, recall, density and coverage: how generated features sit among the real ones, by nearest neighbours.

Each sample's *radius* is the distance to its ``k``-th nearest neighbour in
its own set (itself not counted); the union of the balls of those radii
around a set's samples estimates the set's support (its *manifold*).

- **Precision** (Kynkäänniemi et al. 2019): the share of generated samples
  inside the real manifold (within the radius of at least one real sample).
- **Recall**: the share of real samples inside the generated manifold.
- **Density** (Naeem et al. 2020): how many real balls contain each
  generated sample, on average, divided by ``k``; about 1 when the two sets
  come from one distribution, above 1 where generated samples crowd dense
  real regions.
- **Coverage**: the share of real samples whose ball contains at least one
  generated sample.

Distances are Euclidean, computed block by block (``block`` rows at a time,
float32 matrix products) so memory stays at a few blocks of distances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor


def _rows(x: Tensor, block: int) -> Iterator[tuple[int, Tensor]]:
    for start in range(0, x.shape[0], block):
        yield start, x[start : start + block]


def _distances(a: Tensor, b: Tensor, b_norms: Tensor) -> Tensor:
    """Euclidean distances ``(len(a), len(b))`` from squared norms and one matrix product."""
    squared = (a * a).sum(dim=1, keepdim=True) + b_norms[None, :] - 2.0 * (a @ b.T)
    return squared.clamp_min_(0.0).sqrt_()


def _as_matrix(features: Tensor) -> Tensor:
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be a matrix (N >= 2, D), got shape {tuple(features.shape)}")
    if not bool(torch.isfinite(features).all()):
        raise ValueError("features contain NaN or infinite values")
    return features.detach().to(torch.float32)


def knn_radii(features: Tensor, k: int, *, block: int = 1024) -> Tensor:
    """Each sample's distance to its ``k``-th nearest other sample of the same set, ``(N,)``."""
    x = _as_matrix(features)
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"k must lie in [1, {x.shape[0] - 1}] for {x.shape[0]} samples, got {k}")
    norms = (x * x).sum(dim=1)
    radii = torch.empty(x.shape[0], dtype=torch.float32, device=x.device)
    for start, rows in _rows(x, block):
        distances = _distances(rows, x, norms)
        own = torch.arange(rows.shape[0], device=x.device)
        distances[own, start + own] = 0.0  # a sample is at distance 0 of itself, whatever rounding says
        radii[start : start + rows.shape[0]] = distances.kthvalue(k + 1, dim=1).values
    return radii


def _count_within(
    queries: Tensor, centres: Tensor, radii: Tensor, reduce: Callable[[Tensor], Tensor], block: int
) -> Tensor:
    """``reduce(within)`` per query row, where ``within[i, j]`` says query ``i`` lies in ball ``j``."""
    norms = (centres * centres).sum(dim=1)
    parts = [reduce(_distances(rows, centres, norms) <= radii[None, :]) for _, rows in _rows(queries, block)]
    return torch.cat(parts)


def precision_recall(real: Tensor, fake: Tensor, *, k: int = 3, block: int = 1024) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake`` against ``real`` features."""
    real, fake = _as_matrix(real), _as_matrix(fake)
    any_ball = lambda within: within.any(dim=1)  # noqa: E731
    precision = _count_within(fake, real, knn_radii(real, k, block=block), any_ball, block)
    recall = _count_within(real, fake, knn_radii(fake, k, block=block), any_ball, block)
    return float(precision.float().mean()), float(recall.float().mean())


def density_coverage(real: Tensor, fake: Tensor, *, k: int = 5, block: int = 1024) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) of ``fake`` against ``real`` features."""
    real, fake = _as_matrix(real), _as_matrix(fake)
    radii = knn_radii(real, k, block=block)
    balls = _count_within(fake, real, radii, lambda within: within.sum(dim=1), block)
    density = float(balls.double().sum()) / (k * fake.shape[0])
    fake_norms = (fake * fake).sum(dim=1)
    nearest = torch.cat([_distances(rows, fake, fake_norms).min(dim=1).values for _, rows in _rows(real, block)])
    coverage = float((nearest <= radii).double().mean())
    return density, coverage
