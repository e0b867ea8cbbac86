"""Two-dimensional Gaussian mixtures: the ``ring`` and ``grid`` mode-collapse benchmarks.

The defaults are the constants of PacGAN (Lin et al., 2018): eight Gaussians of
standard deviation 0.01 evenly spaced on a circle of radius 1, and twenty-five
Gaussians of standard deviation 0.05 centred on ``{-4, -2, 0, 2, 4}^2``. A
generator that covers every mode and puts each sample close to one is doing
well; counting the modes it hits measures mode collapse.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from gankit.hookspecs import Register
from gankit.registry import Params

#: How many samples per mode ``len()`` reports for these infinite sources.
SAMPLES_PER_MODE = 1000


class GaussianMixture:
    """Equal-weight isotropic Gaussians in the plane, sampled with replacement.

    ``modes`` holds the centres ``(K, 2)``, ``sigma`` the common standard
    deviation. The source is infinite; ``len()`` is ``K * 1000``, a nominal
    size that gives an epoch a meaning.
    """

    shape: tuple[int, ...] = (2,)

    def __init__(self, modes: Tensor, sigma: float) -> None:
        if modes.ndim != 2 or modes.shape[1] != 2 or modes.shape[0] == 0:
            raise ValueError(f"modes must have shape (K, 2) with K >= 1, got {tuple(modes.shape)}")
        self.modes: Tensor = modes.to(dtype=torch.float32, device="cpu").contiguous()
        self.sigma: float = float(sigma)

    def __len__(self) -> int:
        return self.modes.shape[0] * SAMPLES_PER_MODE

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """``batch_size`` points ``(N, 2)``: a mode drawn uniformly, plus Gaussian noise of std ``sigma``.

        Only ``generator`` is used for randomness, so equal generator states give equal batches.
        """
        index = torch.randint(self.modes.shape[0], (batch_size,), generator=generator)
        noise = torch.randn(batch_size, 2, generator=generator)
        return self.modes[index] + self.sigma * noise

    def nearest_mode(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """The index of the closest centre for each point ``(N, 2)``, and the distance to it."""
        distances = torch.cdist(points.detach().float().cpu(), self.modes)
        nearest, index = distances.min(dim=1)
        return index, nearest

    def __repr__(self) -> str:
        return f"{type(self).__name__}(modes={self.modes.shape[0]}, sigma={self.sigma})"


class RingParams(Params):
    """Parameters of ``ring``."""

    modes: int = Field(8, ge=1, le=10_000, description="number of Gaussians, evenly spaced on the circle")
    radius: float = Field(1.0, gt=0, description="radius of the circle the centres lie on")
    sigma: float = Field(0.01, gt=0, description="standard deviation of each Gaussian")


class Ring(GaussianMixture):
    """Gaussians evenly spaced on a circle (PacGAN's 2D-ring: 8 modes, radius 1, std 0.01).

    Mode ``k`` is centred at ``radius * (cos(2 pi k / K), sin(2 pi k / K))``.
    Samples pick a mode uniformly at random and add isotropic Gaussian noise.
    """

    def __init__(self, params: RingParams, **context: Any) -> None:
        angles = torch.arange(params.modes, dtype=torch.float64) * (2 * math.pi / params.modes)
        centres = params.radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
        super().__init__(centres, params.sigma)
        self.radius: float = params.radius


class GridParams(Params):
    """Parameters of ``grid``."""

    spacing: float = Field(2.0, gt=0, description="distance between neighbouring centres")
    extent: int = Field(
        2, ge=0, le=50, description="centres at spacing * {-extent, ..., extent} on each axis: (2*extent+1)^2 modes"
    )
    sigma: float = Field(0.05, gt=0, description="standard deviation of each Gaussian")


class Grid(GaussianMixture):
    """Gaussians on a square grid (PacGAN's 2D-grid: 25 modes on {-4,-2,0,2,4}^2, std 0.05).

    Centres are ordered row by row (x varies fastest). Samples pick a mode
    uniformly at random and add isotropic Gaussian noise.
    """

    def __init__(self, params: GridParams, **context: Any) -> None:
        axis = torch.arange(-params.extent, params.extent + 1, dtype=torch.float64) * params.spacing
        y, x = torch.meshgrid(axis, axis, indexing="ij")
        super().__init__(torch.stack([x.flatten(), y.flatten()], dim=1), params.sigma)
        self.spacing: float = params.spacing


def register(register: Register) -> None:
    """Register ``ring`` and ``grid``."""
    register("data", "ring", Ring, RingParams)
    register("data", "grid", Grid, GridParams)
