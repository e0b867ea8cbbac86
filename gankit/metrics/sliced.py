"""The sliced Wasserstein distance between two sets of samples of any shape (flattened)."""

from __future__ import annotations

import torch
from torch import Tensor


def sliced_wasserstein(a: Tensor, b: Tensor, *, projections: int, seed: int, p: int = 2) -> Tensor:
    """The sliced ``p``-Wasserstein distance between the samples ``a`` and ``b`` (each ``(N, ...)``), in float64.

    Both sets are flattened to ``(N, D)`` and projected onto ``projections``
    random unit directions (drawn from ``seed``); in one dimension the
    optimal transport pairs the sorted values, so each direction's distance
    is ``mean(|sort(a.u) - sort(b.u)|^p)^(1/p)`` (when the sets differ in size
    both are compared at the same quantiles). The result is the ``p``-mean
    over directions: 0 for identical sets, and it grows with any difference
    of the distributions (Rabin et al. 2011; Bonneel et al. 2015).
    """
    x = a.reshape(a.shape[0], -1).double()
    y = b.reshape(b.shape[0], -1).double()
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"the two sets have samples of {x.shape[1]} and {y.shape[1]} values")
    rng = torch.Generator().manual_seed(seed)
    directions = torch.randn(x.shape[1], projections, generator=rng, dtype=torch.float64)
    directions /= directions.norm(dim=0, keepdim=True)
    px = torch.sort(x @ directions, dim=0).values
    py = torch.sort(y @ directions, dim=0).values
    if px.shape[0] != py.shape[0]:
        n = min(px.shape[0], py.shape[0])
        quantiles = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        px = torch.quantile(px, quantiles, dim=0)
        py = torch.quantile(py, quantiles, dim=0)
    per_direction = (px - py).abs().pow(p).mean(dim=0)
    return per_direction.mean().pow(1.0 / p)
