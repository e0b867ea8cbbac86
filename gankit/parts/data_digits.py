"""``digits``: scikit-learn's 1,797 handwritten 8x8 digits, a tiny MNIST that needs no download."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.registry import Params

_MAX_VALUE = 16.0
_RESIZE_CHUNK = 64


class DigitsParams(Params):
    """Parameters of ``digits``."""

    resolution: int = Field(32, ge=8, le=1024, description="side of the square images, in pixels (upsampled from 8)")
    channels: Literal[1, 3] = Field(1, description="1 for grayscale, 3 to repeat the gray level as RGB")
    classes: list[Annotated[int, Field(ge=0, le=9)]] | None = Field(
        None, min_length=1, description="keep only these digits (0-9); all ten when unset"
    )


class Digits:
    """scikit-learn's 8x8 handwritten digits, upsampled; dark background, bright strokes, like MNIST.

    The 1,797 images (values 0..16) ship with scikit-learn. They are resized
    to ``resolution`` with antialiased bicubic resampling, scaled to
    [-1, 1] (background -1) and cached as ``uint8`` in :attr:`pixels`.
    :meth:`sample` draws uniformly with replacement.

    It is labelled: the classes are the digits kept (:attr:`class_names`
    ``"0"`` to ``"9"``, or those of ``classes``, in increasing order), and
    :meth:`sample_labelled` gives each image's class index with it (the digit
    itself when all ten are kept). :attr:`labels` holds every stored image's
    digit.
    """

    def __init__(self, params: DigitsParams, **context: Any) -> None:
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:
            raise GankitError(
                "the 'digits' data needs scikit-learn, which is not installed: pip install scikit-learn"
            ) from exc
        bunch = load_digits()
        images = torch.as_tensor(bunch.images, dtype=torch.float32)
        labels = torch.as_tensor(bunch.target, dtype=torch.int64)
        if params.classes is not None:
            keep = torch.isin(labels, torch.tensor(sorted(set(params.classes))))
            images, labels = images[keep], labels[keep]
        self.resolution: int = params.resolution
        self.channels: int = params.channels
        self.classes: list[int] = sorted(set(params.classes)) if params.classes is not None else list(range(10))
        self.labels: Tensor = labels
        self.class_names: list[str] = [str(digit) for digit in self.classes]
        self.class_labels: Tensor = torch.bucketize(labels, torch.tensor(self.classes))
        self.pixels: Tensor = _resize_to_uint8(images.unsqueeze(1), params.resolution)
        self.shape: tuple[int, ...] = (params.channels, params.resolution, params.resolution)

    def __len__(self) -> int:
        return self.pixels.shape[0]

    @property
    def num_classes(self) -> int:
        """How many classes (digits) the data holds."""
        return len(self.classes)

    def label_frequencies(self) -> Tensor:
        """How often each class occurs among the stored images, ``(num_classes,)`` float32 summing to 1."""
        counts = torch.bincount(self.class_labels, minlength=self.num_classes).double()
        return (counts / counts.sum()).float()

    def labels_at(self, indices: Tensor) -> Tensor:
        """The class indices of the stored images at ``indices``, ``int64``."""
        return self.class_labels[torch.as_tensor(indices, dtype=torch.int64)]

    def _to_float(self, pixels: Tensor) -> Tensor:
        images = pixels.float().div_(127.5).sub_(1.0)
        return images.expand(-1, self.channels, -1, -1).contiguous() if self.channels != 1 else images

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """``batch_size`` images ``(N, C, H, W)`` in [-1, 1], drawn uniformly with replacement using ``generator``."""
        index = torch.randint(len(self), (batch_size,), generator=generator)
        return self._to_float(self.pixels[index])

    def sample_labelled(self, batch_size: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """A batch as :meth:`sample` draws it (the same draws) and the class index of every image, ``int64``."""
        index = torch.randint(len(self), (batch_size,), generator=generator)
        return self._to_float(self.pixels[index]), self.class_labels[index]

    def images(self) -> Tensor:
        """Every stored image, ``(N, C, H, W)`` float in [-1, 1], in scikit-learn's order."""
        return self._to_float(self.pixels)

    def __repr__(self) -> str:
        return f"Digits(n={len(self)}, shape={self.shape}, classes={self.classes})"


def _resize_to_uint8(images: Tensor, resolution: int) -> Tensor:
    """Resize ``(N, 1, 8, 8)`` images with values 0..16 to ``(N, 1, resolution, resolution)`` uint8 0..255."""
    out = torch.empty((images.shape[0], 1, resolution, resolution), dtype=torch.uint8)
    for start in range(0, images.shape[0], _RESIZE_CHUNK):
        chunk = images[start : start + _RESIZE_CHUNK]
        if resolution != chunk.shape[-1]:
            chunk = F.interpolate(
                chunk, size=(resolution, resolution), mode="bicubic", align_corners=False, antialias=True
            )
        out[start : start + _RESIZE_CHUNK] = (chunk * (255.0 / _MAX_VALUE)).round_().clamp_(0, 255).to(torch.uint8)
    return out


def register(register: Register) -> None:
    """Register ``digits``."""
    register("data", "digits", Digits, DigitsParams)
