"""``stacked-digits``: three random scikit-learn digits stacked as the channels of one image (1,000 modes).

This is the Stacked-MNIST benchmark of Metz et al. (2017) and VEEGAN /
PacGAN, built on the digits that ship with scikit-learn instead of MNIST:
every sample is a triple of independently drawn digits, so the data has
10 x 10 x 10 = 1,000 equally likely modes, and a generator that drops any
combination of digits is easy to catch with a digit classifier (the
``stacked-digits`` metric).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from gankit.hookspecs import Register
from gankit.parts.data_digits import Digits, DigitsParams
from gankit.registry import Params

CHANNELS = 3


class StackedDigitsParams(Params):
    """Parameters of ``stacked-digits``."""

    resolution: int = Field(
        32, ge=8, le=1024, description="side of the square images, in pixels (8 is the digits' own resolution)"
    )


class StackedDigits:
    """Three independent uniformly drawn digits in the three channels: ``(3, R, R)`` images in [-1, 1].

    Each channel is one of scikit-learn's 1,797 digits rendered exactly as
    the ``digits`` data source renders it (antialiased bicubic resizing,
    background -1). Samples are drawn with replacement; ``labels(index)``
    gives the digit triples of stored indices, and :attr:`modes` is 1,000.
    ``len()`` is a nominal 1,797 x 3 (an epoch sees each stored digit about
    three times).
    """

    modes_count: int = 10**CHANNELS

    def __init__(self, params: StackedDigitsParams, **context: Any) -> None:
        self.digits = Digits(DigitsParams(resolution=params.resolution, channels=1))
        self.resolution: int = params.resolution
        self.shape: tuple[int, ...] = (CHANNELS, params.resolution, params.resolution)

    def __len__(self) -> int:
        return len(self.digits) * CHANNELS

    def sample_indices(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """Indices ``(N, 3)`` of stored digits, drawn uniformly and independently with ``generator``."""
        return torch.randint(len(self.digits), (batch_size, CHANNELS), generator=generator)

    def images_of(self, indices: Tensor) -> Tensor:
        """Images ``(N, 3, R, R)`` in [-1, 1] made of the stored digits ``indices`` ``(N, 3)``."""
        pixels = self.digits.pixels[indices.flatten()].reshape(indices.shape[0], CHANNELS, *self.shape[1:])
        return pixels.float().div_(127.5).sub_(1.0)

    def labels(self, indices: Tensor) -> Tensor:
        """The digit triples ``(N, 3)`` of stored-digit indices ``(N, 3)``."""
        return self.digits.labels[indices]

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """``batch_size`` stacked images ``(N, 3, R, R)`` in [-1, 1], drawn with ``generator``."""
        return self.images_of(self.sample_indices(batch_size, generator))

    def __repr__(self) -> str:
        return f"StackedDigits(shape={self.shape}, modes={self.modes_count})"


def register(register: Register) -> None:
    """Register ``stacked-digits``."""
    register("data", "stacked-digits", StackedDigits, StackedDigitsParams)
