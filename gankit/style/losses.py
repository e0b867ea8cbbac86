"""Image losses of style transfer: content, Gram style and total variation.

Each loss has a ``weight``, the encoder ``layers`` it reads and
``target_image``: ``"content"``, ``"style"`` or ``None``. The style loop runs
the encoder once on the image named by ``target_image`` (without gradients),
hands the features to :meth:`set_target`, which caches what the loss compares
against, then calls ``loss(image, features)`` at every step with the features
of one forward pass shared by every loss. What a call returns is already
multiplied by ``weight``.

Normalisations:

- content: ``mean((F - P)^2)`` over the elements of each layer, where ``F`` are
  the image's activations and ``P`` the content image's; with ``relative`` it is
  divided by ``mean(P^2)``, so it reads as a relative error;
- Gram style: ``G = F F^T / (C H W)`` for activations ``F`` reshaped to
  ``(C, H W)``, so a Gram matrix does not depend on the image size; a layer
  contributes ``sum((G - A)^2)`` over the ``C x C`` entries, ``A`` being the style
  image's Gram matrix (four times the ``E_l`` of Gatys et al., 2016); with
  ``relative`` it is divided by ``sum(A^2)``;
- total variation: the mean over every pair of horizontally or vertically
  neighbouring pixels (and channels) of ``|a - b|`` (``"l1"``) or ``(a - b)^2``
  (``"squared"``).

Layer weights: a list of layers weighs each ``1 / len(layers)``; a mapping
``{layer: weight}`` uses its weights as given. Relative losses make the weights
independent of the scale of the encoder's activations, so one recipe suits
pretrained and random weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor

_EPS = 1e-12


def layer_weights(layers: Sequence[str] | Mapping[str, float]) -> dict[str, float]:
    """``{layer: weight}``: a mapping as given, a list with equal weights summing to 1."""
    if isinstance(layers, Mapping):
        return {str(k): float(v) for k, v in layers.items()}
    layers = list(layers)
    return {name: 1.0 / len(layers) for name in layers}


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrices of activations ``(N, C, H, W)``: ``F F^T / (C H W)``, shape ``(N, C, C)``.

    The division by the number of elements keeps values independent of the
    image size and comparable between layers.
    """
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)).div(c * h * w)


def total_variation(image: Tensor, norm: Literal["l1", "squared"] = "squared") -> Tensor:
    """Mean ``|a - b|`` (``"l1"``) or ``(a - b)^2`` (``"squared"``) over every pair of neighbouring pixels.

    Pairs are horizontal and vertical neighbours in each channel of ``image``
    ``(N, C, H, W)``; the mean is taken over all pairs together.
    """
    down = image[..., 1:, :] - image[..., :-1, :]
    right = image[..., :, 1:] - image[..., :, :-1]
    if norm == "l1":
        down, right = down.abs(), right.abs()
    elif norm == "squared":
        down, right = down.square(), right.square()
    else:
        raise ValueError(f"norm must be 'l1' or 'squared', got {norm!r}")
    pairs = down.numel() + right.numel()
    if pairs == 0:
        return image.new_zeros(())
    return (down.sum() + right.sum()) / pairs


class _FeatureLoss:
    """Shared plumbing of the losses that compare encoder features with cached targets."""

    target_image: ClassVar[str | None] = None

    def __init__(
        self, layers: Sequence[str] | Mapping[str, float], *, weight: float = 1.0, relative: bool = True
    ) -> None:
        self.per_layer = {name: w for name, w in layer_weights(layers).items() if w}
        if not self.per_layer:
            raise ValueError(f"{type(self).__name__} needs at least one layer with a non-zero weight")
        self.layers: tuple[str, ...] = tuple(self.per_layer)
        self.weight = float(weight)
        self.relative = relative
        self._targets: dict[str, Tensor] = {}
        self._scales: dict[str, Tensor] = {}

    @property
    def has_target(self) -> bool:
        """Whether :meth:`set_target` has been called."""
        return bool(self._targets)

    def set_target(self, features: Mapping[str, Tensor]) -> None:
        """Cache the targets computed from ``features`` of the target image (detached)."""
        missing = [name for name in self.layers if name not in features]
        if missing:
            raise KeyError(f"{type(self).__name__}: target features lack layers {', '.join(missing)}")
        self._targets = {}
        self._scales = {}
        for name in self.layers:
            target = self._target(features[name].detach())
            self._targets[name] = target
            self._scales[name] = self._scale(target) if self.relative else target.new_ones(())

    def _target(self, features: Tensor) -> Tensor:
        raise NotImplementedError

    def _scale(self, target: Tensor) -> Tensor:
        raise NotImplementedError

    def _layer_loss(self, features: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, image: Tensor, features: Mapping[str, Tensor]) -> Tensor:
        """``weight`` times the weighted sum over layers of each layer's loss against its cached target."""
        if not self._targets:
            raise RuntimeError(f"{type(self).__name__}: call set_target() with the target image's features first")
        total = image.new_zeros(())
        for name, layer_weight in self.per_layer.items():
            loss = self._layer_loss(features[name], self._targets[name]) / self._scales[name]
            total = total + layer_weight * loss
        return self.weight * total

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layers={self.per_layer!r}, weight={self.weight}, relative={self.relative})"


class ContentLoss(_FeatureLoss):
    """Feature reconstruction: the image's activations should equal the content image's at ``layers``.

    Per layer ``mean((F - P)^2)``, divided by ``mean(P^2)`` when ``relative``.
    """

    target_image: ClassVar[str | None] = "content"

    def _target(self, features: Tensor) -> Tensor:
        return features.clone()

    def _scale(self, target: Tensor) -> Tensor:
        return target.square().mean().clamp_min(_EPS)

    def _layer_loss(self, features: Tensor, target: Tensor) -> Tensor:
        if features.shape != target.shape:
            raise ValueError(
                f"content features have shape {tuple(features.shape)} but the target {tuple(target.shape)}:"
                " set the target at the image's size"
            )
        return (features - target).square().mean()


class GramStyleLoss(_FeatureLoss):
    """Style as feature correlations: the image's Gram matrices should equal the style image's at ``layers``.

    Per layer ``sum((G - A)^2)`` with ``G = F F^T / (C H W)``, divided by
    ``sum(A^2)`` when ``relative``. Gram matrices do not depend on the image
    size, so the style image may be larger or smaller than the result.
    """

    target_image: ClassVar[str | None] = "style"

    def _target(self, features: Tensor) -> Tensor:
        return gram_matrix(features).mean(dim=0, keepdim=True)

    def _scale(self, target: Tensor) -> Tensor:
        return target.square().sum().clamp_min(_EPS)

    def _layer_loss(self, features: Tensor, target: Tensor) -> Tensor:
        return (gram_matrix(features) - target).square().sum(dim=(1, 2)).mean()


class TotalVariationLoss:
    """Smoothness: ``weight`` times the mean difference between neighbouring pixels (see :func:`total_variation`)."""

    target_image: ClassVar[str | None] = None
    layers: tuple[str, ...] = ()

    def __init__(self, *, weight: float = 1.0, norm: Literal["l1", "squared"] = "squared") -> None:
        self.weight = float(weight)
        self.norm: Literal["l1", "squared"] = norm

    has_target = True

    def set_target(self, features: Mapping[str, Tensor]) -> None:
        """Nothing to cache: total variation has no target."""

    def __call__(self, image: Tensor, features: Mapping[str, Tensor]) -> Tensor:
        """``weight * total_variation(image, norm)``."""
        return self.weight * total_variation(image, self.norm)

    def __repr__(self) -> str:
        return f"TotalVariationLoss(weight={self.weight}, norm={self.norm!r})"


def required_layers(losses: Iterable[object]) -> tuple[str, ...]:
    """Every encoder layer any of ``losses`` reads (their ``layers``), without repeats, in first-seen order."""
    seen: dict[str, None] = {}
    for loss in losses:
        for name in getattr(loss, "layers", ()):
            seen.setdefault(name, None)
    return tuple(seen)
