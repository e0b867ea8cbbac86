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
``features``; the metrics name it with ``features = "..."``. The metrics
feed every extractor 8-bit images (generated ones quantised first): through
``features_from_pixels(pixels)`` when the extractor has it (uint8 ``(N, C, H,
W)``; Inception uses it to apply its resize mode), else through
``features`` of the pixels scaled back to [-1, 1]. An extractor may also have
``weights_sha256`` and ``settings()``, which the metrics report.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
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
    and cached; :attr:`accuracy` is its held-out accuracy and
    :attr:`weights_sha256` a hash of its weights.
    """

    name = "digits-features"

    def __init__(self, resolution: int = 32, *, device: Any = "cpu") -> None:
        from gankit.metrics.digits import digits_classifier

        self.classifier = digits_classifier(resolution).to(device)
        self.accuracy = self.classifier.accuracy
        self.weights_sha256 = state_sha256(self.classifier.net.state_dict())

    def features(self, images: Tensor) -> Tensor:
        """Per-channel embeddings, concatenated."""
        return self.classifier.embed(images)

    def settings(self) -> dict[str, Any]:
        """What defines these features, for the provenance of a number."""
        return {"features": self.name, "weights_sha256": self.weights_sha256,
                "classifier_resolution": self.classifier.settings.resolution}


class InceptionFeatures:
    """Inception-v3 pool3 features (``(N, 2048)``) from a user-supplied safetensors file.

    8-bit images go through the resize mode ``resize`` (see
    :mod:`gankit.metrics.pixels`) to the network's ``input_size``;
    :attr:`weights_sha256` is the SHA-256 of the weights file.
    """

    name = "inception-v3"

    def __init__(self, weights: str, *, variant: str = "fid", input_size: int = 299, device: Any = "cpu",
                 chunk: int = 50, resize: str = "legacy-tensorflow") -> None:
        from gankit.metrics.inception import load_inception
        from gankit.metrics.pixels import RESIZE_MODES

        if resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {resize!r}: use one of {', '.join(RESIZE_MODES)}")
        self.network = load_inception(weights, variant=variant, input_size=input_size).to(device)  # type: ignore[arg-type]
        self.weights = weights
        self.weights_sha256 = file_sha256(weights)
        self.variant = variant
        self.input_size = input_size
        self.resize = resize
        self.device = torch.device(device)
        self.chunk = chunk

    @torch.no_grad()
    def features_from_pixels(self, pixels: Tensor) -> Tensor:
        """Pool3 features of 8-bit images ``(N, C, H, W)`` (uint8, or float 0..255), float64 on the CPU."""
        from gankit.metrics.pixels import network_input

        size = (self.input_size, self.input_size)
        parts = []
        for i in range(0, pixels.shape[0], self.chunk):
            x = network_input(pixels[i : i + self.chunk].to(self.device), self.resize, size)  # type: ignore[arg-type]
            parts.append(self.network.trunk(x).double().cpu())
        return torch.cat(parts) if parts else torch.zeros(0, 2048, dtype=torch.float64)

    def features(self, images: Tensor) -> Tensor:
        """Pool3 features of images in [-1, 1] (taken as they are, not quantised), float64 on the CPU."""
        return self.features_from_pixels((images.float() + 1) * 127.5)

    def settings(self) -> dict[str, Any]:
        """What defines these features, for the provenance of a number."""
        return {"features": self.name, "weights_sha256": self.weights_sha256, "resize": self.resize,
                "variant": self.variant, "input_size": self.input_size}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, remembered per path, size and modification time."""
    file = Path(path).expanduser().resolve()
    stat = file.stat()
    key = (str(file), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(2**22), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def state_sha256(state: dict[str, Tensor]) -> str:
    """A SHA-256 of a state dict: every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def pixel_features(extractor: Any, pixels: Tensor) -> Tensor:
    """Features ``(N, D)`` float64 of 8-bit images: ``features_from_pixels`` when the extractor has it, else
    ``features`` of the images scaled to [-1, 1]."""
    from gankit.data.images import to_float

    direct = getattr(extractor, "features_from_pixels", None)
    with torch.no_grad():
        out = direct(pixels) if callable(direct) else extract(extractor, to_float(pixels))
    if not isinstance(out, Tensor) or out.ndim != 2 or out.shape[0] != pixels.shape[0]:
        raise TypeError("a feature extractor must return a matrix (N, D) of features")
    return out.double().cpu()


def extractor_settings(extractor: Any, name: str) -> dict[str, Any]:
    """The extractor's own ``settings()`` when it has them, else its name (and weights hash if it has one)."""
    describe = getattr(extractor, "settings", None)
    if callable(describe):
        return dict(describe())
    out: dict[str, Any] = {"features": name}
    if getattr(extractor, "weights_sha256", None):
        out["weights_sha256"] = extractor.weights_sha256
    return out


_HASHES: dict[tuple[str, int, int], str] = {}


def extract(extractor: Any, images: Tensor, *, chunk: int = 500) -> Tensor:
    """Features ``(N, D)`` of ``images`` with ``extractor`` (its ``features`` method, or calling it), float64."""
    method = getattr(extractor, "features", None)
    call = method if callable(method) else extractor
    with torch.no_grad():
        parts = [call(images[i : i + chunk]) for i in range(0, images.shape[0], chunk)]
    if not all(isinstance(p, Tensor) and p.ndim == 2 for p in parts):
        raise TypeError("a feature extractor must return a matrix (N, D) of features")
    return torch.cat(parts).double().cpu()
