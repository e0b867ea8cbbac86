"""``stacked-digits``: three random scikit-learn digits stacked as the channels of one image (1,000 modes).

This is the Stacked-MNIST benchmark of Metz et al. (2017) and VEEGAN /
PacGAN, built on the digits that ship with scikit-learn instead of MNIST:
every sample is a triple of independently drawn digits, so the data has
10 x 10 x 10 = 1,000 equally likely modes, and a generator that drops any
combination of digits is easy to catch with a digit classifier (the
``stacked-digits`` metric).

It is labelled with those 1,000 modes: the class of an image is its digit
triple, numbered ``100 * first + 10 * second + third`` and named ``"000"`` to
``"999"``, so a conditional generator can be asked for any triple.
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

    Labelled: :meth:`sample_labelled` gives each image's class, its digit
    triple read as a three-digit number (``"372"`` is class 372), from the
    same draws as :meth:`sample`; :meth:`label_frequencies` are the products
    of the three digits' frequencies among the stored digits.
    """

    modes_count: int = 10**CHANNELS
    num_classes: int = 10**CHANNELS

    def __init__(self, params: StackedDigitsParams, **context: Any) -> None:
        self.digits = Digits(DigitsParams(resolution=params.resolution, channels=1))
        self.resolution: int = params.resolution
        self.shape: tuple[int, ...] = (CHANNELS, params.resolution, params.resolution)
        self.class_names: list[str] = [f"{k:0{CHANNELS}d}" for k in range(self.num_classes)]

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

    def classes_of(self, indices: Tensor) -> Tensor:
        """The class (digit triple as a number, 0 to 999) of stored-digit indices ``(N, 3)``: ``(N,)`` int64."""
        triples = self.labels(indices)
        weights = torch.tensor([10 ** (CHANNELS - 1 - c) for c in range(CHANNELS)])
        return (triples * weights).sum(dim=1)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """``batch_size`` stacked images ``(N, 3, R, R)`` in [-1, 1], drawn with ``generator``."""
        return self.images_of(self.sample_indices(batch_size, generator))

    def sample_labelled(self, batch_size: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """A batch as :meth:`sample` draws it (the same draws) and each image's class (its triple), ``int64``."""
        indices = self.sample_indices(batch_size, generator)
        return self.images_of(indices), self.classes_of(indices)

    def label_frequencies(self) -> Tensor:
        """How often each of the 1,000 triples is drawn, ``(1000,)`` float32 summing to 1."""
        digit = torch.bincount(self.digits.labels, minlength=10).double()
        digit = digit / digit.sum()
        joint = digit[:, None, None] * digit[None, :, None] * digit[None, None, :]
        return joint.flatten().float()

    def __repr__(self) -> str:
        return f"StackedDigits(shape={self.shape}, modes={self.modes_count})"


def register(register: Register) -> None:
    """Register ``stacked-digits``."""
    register("data", "stacked-digits", StackedDigits, StackedDigitsParams)
