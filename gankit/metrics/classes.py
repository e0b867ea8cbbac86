"""Measuring class-conditional generators: does a sample show the class it was asked for, class by class?

- :func:`expected_digits`: what gankit's digits classifier should read in each
  channel of an image of each class, from the classes' names (``"7"``, or
  ``"372"`` for a stacked-digits triple).
- :func:`class_accuracy`: the share of generated images read as their class,
  overall and per class.
- :func:`stored_labels` and :func:`real_pixels_of_class`: the real images of
  one class, for per-class distances (intra-class FID).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.metrics.digits import DigitsClassifier


def expected_digits(class_names: Sequence[str], channels: int) -> Tensor:
    """``(num_classes, channels)``: the digit each channel of an image of each class shows.

    A one-digit name (``"7"``) is that digit in every channel (gray repeated
    as RGB); a name of one digit per channel (``"372"`` for three channels,
    stacked-digits' triples) gives each channel its own. Any other name is a
    :class:`GankitError`: the classes cannot be read by a digits classifier.
    """
    rows = []
    for name in class_names:
        text = str(name)
        if text.isascii() and text.isdigit() and len(text) == 1:
            rows.append([int(text)] * channels)
        elif text.isascii() and text.isdigit() and len(text) == channels:
            rows.append([int(c) for c in text])
        else:
            shown = ", ".join(repr(str(n)) for n in list(class_names)[:5])
            raise GankitError(
                f"class {text!r} cannot be read by gankit's digits classifier: classes must be digits ('0' to '9', or "
                f"one digit per channel such as stacked-digits' '372'); the data's classes are {shown}"
                f"{', ...' if len(class_names) > 5 else ''}"
            )
    return torch.tensor(rows, dtype=torch.int64).reshape(len(rows), channels)


def class_accuracy(
    batches: Iterable[Tensor], labels: Tensor, classifier: DigitsClassifier, expected: Tensor
) -> tuple[float, Tensor]:
    """Overall accuracy and per-class accuracy ``(num_classes,)`` of generated images read by ``classifier``.

    ``batches`` are the images generated for ``labels`` (in order); an image
    is correct when every channel reads the digit ``expected[label]`` says.
    A class with no image gets NaN.
    """
    num_classes = expected.shape[0]
    correct = torch.zeros(num_classes, dtype=torch.float64)
    seen = torch.zeros(num_classes, dtype=torch.float64)
    start = 0
    for images in batches:
        read, _ = classifier.predict(images)
        asked = labels[start : start + images.shape[0]]
        start += images.shape[0]
        right = (read == expected[asked]).all(dim=1).double()
        correct.index_add_(0, asked, right)
        seen.index_add_(0, asked, torch.ones_like(right))
    if start != labels.shape[0]:
        raise ValueError(f"{labels.shape[0]} labels but {start} images")
    per_class = correct / seen
    return float(correct.sum() / seen.sum()), per_class


def stored_labels(data: Any, what: str) -> Tensor:
    """The class of every stored image of ``data`` (``labels_at`` over all of them), ``int64``.

    Data that stores no labelled images is a :class:`GankitError` naming ``what`` (the metric).
    """
    labels_at = getattr(data, "labels_at", None)
    if not callable(labels_at) or not int(getattr(data, "num_classes", 0) or 0) or not (
        callable(getattr(data, "pixels_at", None)) or callable(getattr(data, "images", None))
    ):
        raise GankitError(
            f"{what} compares each class with the real images of that class, so it needs data that stores "
            f"labelled images (digits, image-folder or prepared with labels = \"folders\"); {type(data).__name__} "
            "does not"
        )
    return torch.as_tensor(labels_at(np.arange(len(data))), dtype=torch.int64)


def real_pixels_of_class(
    data: Any, labels: Tensor, label: int, n: int | None, *, seed: int, batch: int = 250
) -> Iterator[Tensor]:
    """The stored real images of class ``label`` as 8-bit pixels, ``batch`` at a time.

    ``labels`` are :func:`stored_labels`. Every image of the class, or ``n``
    of them chosen at random from ``seed`` (read in stored order).
    """
    from gankit.metrics.pixels import quantize

    members = torch.nonzero(labels == label).flatten()
    if n is not None and n < members.numel():
        order = torch.randperm(members.numel(), generator=torch.Generator().manual_seed(seed + label))
        members = members[order[:n]].sort().values
    chosen = members.numpy()
    pixels_at = getattr(data, "pixels_at", None)
    if callable(pixels_at):
        for start in range(0, len(chosen), batch):
            yield pixels_at(chosen[start : start + batch])
        return
    stored = data.images()
    for start in range(0, len(chosen), batch):
        yield quantize(stored[torch.as_tensor(chosen[start : start + batch])])
