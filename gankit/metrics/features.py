"""Feature extractors for FID and KID: what turns a batch of images into vectors ``(N, D)``.

A feature extractor is any object with ``features(images) -> Tensor`` that
maps images ``(N, C, H, W)`` in [-1, 1] to a float matrix ``(N, D)``. gankit
ships two, registered as parts of kind ``encoder``:

- ``digits-features``: the penultimate layer of gankit's own digits
  classifier (:mod:`gankit.metrics.digits`), every channel embedded on its
  own; made for the ``digits`` and ``stacked-digits`` data, trained on first
  use in seconds, no download.
- ``inception-v3``: the 2048-d pool3 features of Inception-v3
  (:mod:`gankit.metrics.inception`) with weights from a safetensors file the
  user supplies: the features of published FID numbers.

A plugin adds another by registering an ``encoder`` whose built object has
``features``; the ``fid`` and ``kid`` metrics name it with ``features = "..."``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

#: Short names the metrics accept for the built-in extractors.
ALIASES = {"digits": "digits-features", "inception": "inception-v3"}


@runtime_checkable
class FeatureExtractor(Protocol):
    """Maps images ``(N, C, H, W)`` in [-1, 1] to features ``(N, D)``."""

    def features(self, images: Tensor) -> Tensor: ...


class DigitsFeatures:
    """The digits classifier's 128 penultimate activations per channel (``(N, C * 128)``), in float64.

    The classifier is trained for the data's resolution (``resolution``)
    and cached; :attr:`accuracy` is its held-out accuracy.
    """

    def __init__(self, resolution: int = 32, *, device: Any = "cpu") -> None:
        from gankit.metrics.digits import digits_classifier

        self.classifier = digits_classifier(resolution).to(device)
        self.accuracy = self.classifier.accuracy

    def features(self, images: Tensor) -> Tensor:
        """Per-channel embeddings, concatenated."""
        return self.classifier.embed(images)


class InceptionFeatures:
    """Inception-v3 pool3 features (``(N, 2048)``) from a user-supplied safetensors file."""

    def __init__(self, weights: str, *, variant: str = "fid", input_size: int = 299, device: Any = "cpu",
                 chunk: int = 50) -> None:
        from gankit.metrics.inception import load_inception

        self.network = load_inception(weights, variant=variant, input_size=input_size).to(device)  # type: ignore[arg-type]
        self.device = torch.device(device)
        self.chunk = chunk

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        """Pool3 features of ``images`` in chunks, float64 on the CPU."""
        parts = [
            self.network(images[i : i + self.chunk].to(self.device)).double().cpu()
            for i in range(0, images.shape[0], self.chunk)
        ]
        return torch.cat(parts)


def extract(extractor: Any, images: Tensor, *, chunk: int = 500) -> Tensor:
    """Features ``(N, D)`` of ``images`` with ``extractor`` (its ``features`` method, or calling it), float64."""
    method = getattr(extractor, "features", None)
    call = method if callable(method) else extractor
    with torch.no_grad():
        parts = [call(images[i : i + chunk]) for i in range(0, images.shape[0], chunk)]
    if not all(isinstance(p, Tensor) and p.ndim == 2 for p in parts):
        raise TypeError("a feature extractor must return a matrix (N, D) of features")
    return torch.cat(parts).double().cpu()
