"""Mode coverage of samples from a mixture with known centres (PacGAN's and VEEGAN's protocol).

Each sample is assigned to its nearest centre. It is *high quality* when it
lies within ``threshold`` standard deviations of that centre (the distance
divided by ``sigma``, as in the PacGAN code). A mode is *captured* when at
least one high-quality sample is assigned to it. The *reverse KL* is
``KL(p || uniform)`` of the histogram ``p`` of high-quality samples over the
modes: 0 when every mode receives the same share, ``log K`` when one mode
takes everything. With no high-quality sample at all, the histogram is
undefined and ``log K`` (total collapse) is reported.

``score`` summarises the three in one number for choosing checkpoints (it is
gankit's, not PacGAN's): ``(modes / K) * high_quality * exp(-reverse_kl)``,
1 for a perfect generator and 0 for one with no high-quality sample.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def reverse_kl_to_uniform(counts: np.ndarray | Tensor) -> float:
    """``KL(p || uniform) = sum_k p_k log(K p_k)`` of a histogram of counts over ``K`` bins, in nats.

    Empty bins contribute nothing (``0 log 0 = 0``); an all-zero histogram
    gives ``log K``, the value of total collapse.
    """
    values = np.asarray(counts.cpu().numpy() if isinstance(counts, Tensor) else counts, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("the histogram needs at least one bin")
    if np.any(values < 0):
        raise ValueError("counts must be non-negative")
    total = values.sum()
    if total <= 0:
        return math.log(values.size)
    p = values[values > 0] / total
    return float(np.sum(p * np.log(p * values.size)))


def nearest_centres(points: Tensor, centres: Tensor) -> tuple[Tensor, Tensor]:
    """For points ``(N, D)`` and centres ``(K, D)``: the nearest centre's index ``(N,)`` and distance ``(N,)``.

    Distances are computed in float64.
    """
    if points.ndim != 2 or centres.ndim != 2 or points.shape[1] != centres.shape[1]:
        raise ValueError(
            f"points (N, D) and centres (K, D) must agree in D, got {tuple(points.shape)} and {tuple(centres.shape)}"
        )
    distances = torch.cdist(points.detach().cpu().double(), centres.detach().cpu().double())
    nearest, index = distances.min(dim=1)
    return index, nearest


def mode_coverage(points: Tensor, centres: Tensor, sigma: float, *, threshold: float = 3.0) -> dict[str, float]:
    """PacGAN's three numbers for samples ``points`` of a mixture with ``centres`` and common std ``sigma``.

    Returns ``modes`` (how many centres have at least one high-quality
    sample), ``high_quality`` (the fraction of samples within
    ``threshold * sigma`` of their nearest centre), ``reverse_kl`` (see the
    module docstring), ``score`` (their summary, see the module docstring),
    ``total_modes`` and ``samples``. Non-finite samples
    count as low quality.
    """
    if sigma <= 0 or threshold <= 0:
        raise ValueError("sigma and threshold must be positive")
    points = points.detach().cpu().double().flatten(1)
    finite = torch.isfinite(points).all(dim=1)
    safe = torch.where(finite.unsqueeze(1), points, torch.zeros_like(points))
    index, distance = nearest_centres(safe, centres)
    good = finite & (distance / sigma < threshold)
    counts = torch.bincount(index[good], minlength=centres.shape[0])
    n = points.shape[0]
    modes = float((counts > 0).sum())
    high_quality = float(good.sum()) / n if n else 0.0
    kl = reverse_kl_to_uniform(counts)
    return {
        "modes": modes,
        "high_quality": high_quality,
        "reverse_kl": kl,
        "score": modes / centres.shape[0] * high_quality * math.exp(-kl),
        "total_modes": float(centres.shape[0]),
        "samples": float(n),
    }
