"""Counting digit triples: the Stacked-MNIST protocol's numbers from classified 3-channel images."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from gankit.metrics.digits import DigitsClassifier
from gankit.metrics.modes import reverse_kl_to_uniform

#: Ten digits in each of three channels.
TRIPLES = 1000


def triple_counts(batches: Iterable[Tensor], classifier: DigitsClassifier) -> Tensor:
    """Histogram ``(1000,)`` of the digit triples ``100 * c0 + 10 * c1 + c2`` in batches of 3-channel images."""
    counts = torch.zeros(TRIPLES, dtype=torch.int64)
    for images in batches:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected 3-channel images (N, 3, H, W), got shape {tuple(images.shape)}")
        labels, _ = classifier.predict(images)
        counts += torch.bincount(labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2], minlength=TRIPLES)
    return counts


def stacked_summary(counts: Tensor, accuracy: float) -> dict[str, float]:
    """``modes``, ``kl`` (to uniform), ``classifier_accuracy``, ``total_modes`` and ``samples`` of a histogram."""
    return {
        "modes": float((counts > 0).sum()),
        "kl": reverse_kl_to_uniform(counts),
        "classifier_accuracy": float(accuracy),
        "total_modes": float(counts.numel()),
        "samples": float(counts.sum()),
    }
