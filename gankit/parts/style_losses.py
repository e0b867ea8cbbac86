"""Image losses of neural style transfer: ``content``, ``gram-style`` and ``total-variation`` (role ``image``).

The classes live in :mod:`gankit.style.losses`, loaded when a loss is built;
the normalisations are documented there and in ``docs/style-transfer.md``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from gankit.hookspecs import Register
from gankit.registry import Params

_LAYER_RE = re.compile(r"^(conv[1-5]_[1-4]|relu[1-5]_[1-4]|pool[1-5])$")
GATYS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

Layers = tuple[str, ...] | dict[str, float]


def _check_layers(value: Layers) -> Layers:
    names = list(value)
    if not names:
        raise ValueError("name at least one encoder layer, e.g. ['relu4_2']")
    bad = [n for n in names if not _LAYER_RE.match(n)]
    if bad:
        raise ValueError(
            f"unknown layer name{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))}:"
            " VGG layers are conv<block>_<n>, relu<block>_<n> or pool<block> (relu4_2, pool5)"
        )
    if len(set(names)) != len(names):
        raise ValueError("a layer is named twice")
    if isinstance(value, dict):
        if any(w < 0 for w in value.values()):
            raise ValueError("layer weights must be >= 0")
        if not any(value.values()):
            raise ValueError("at least one layer weight must be > 0")
    return value


_LAYERS_HELP = (
    " A list weighs every layer 1/len(list); a table {layer = weight} weighs each as given."
)


class ContentParams(Params):
    """Parameters of the ``content`` loss."""

    layers: Layers = Field(
        ("relu4_2",), description="Encoder layers whose activations must match the content image's." + _LAYERS_HELP
    )
    weight: float = Field(1.0, ge=0, description="Multiplies the loss in the weighted sum.")
    relative: bool = Field(
        True, description="Divide each layer's mean squared error by the target's mean square (scale-free weights)."
    )

    _layers = field_validator("layers")(_check_layers)


class GramStyleParams(Params):
    """Parameters of the ``gram-style`` loss."""

    layers: Layers = Field(
        GATYS_STYLE_LAYERS,
        description="Encoder layers whose Gram matrices must match the style image's." + _LAYERS_HELP,
    )
    weight: float = Field(1.0, ge=0, description="Multiplies the loss in the weighted sum.")
    relative: bool = Field(
        True,
        description="Divide each layer's squared Gram error by the style Gram's squared norm (scale-free weights).",
    )

    _layers = field_validator("layers")(_check_layers)


class TotalVariationParams(Params):
    """Parameters of the ``total-variation`` loss."""

    weight: float = Field(1.0, ge=0, description="Multiplies the loss in the weighted sum.")
    norm: Literal["l1", "squared"] = Field(
        "squared", description="'l1': mean |a - b| over neighbouring pixels; 'squared': mean (a - b)^2."
    )


def content_loss(params: ContentParams, **context: Any) -> Any:
    """Content (feature reconstruction): match the content image's activations at chosen layers.

    Per layer ``mean((F - P)^2)`` between the image's activations ``F`` and the
    content image's ``P``, divided by ``mean(P^2)`` when ``relative``; layers
    are combined with their weights, then multiplied by ``weight``. Targets
    are computed once from the content image.
    """
    from gankit.style.losses import ContentLoss

    return ContentLoss(params.layers, weight=params.weight, relative=params.relative)


def gram_style_loss(params: GramStyleParams, **context: Any) -> Any:
    """Gram style: match the style image's feature correlations (Gram matrices) at chosen layers.

    ``G = F F^T / (C H W)`` for activations reshaped to ``(C, H W)``; per layer
    ``sum((G - A)^2)`` against the style image's ``A``, divided by ``sum(A^2)``
    when ``relative``; layers combined with their weights, times ``weight``.
    Style Gram matrices are computed once.
    """
    from gankit.style.losses import GramStyleLoss

    return GramStyleLoss(params.layers, weight=params.weight, relative=params.relative)


def total_variation_loss(params: TotalVariationParams, **context: Any) -> Any:
    """Total variation: the mean difference between neighbouring pixels, L1 or squared.

    Over every horizontal and vertical pair of neighbouring pixels in each
    channel, the mean of ``|a - b|`` (``"l1"``) or ``(a - b)^2``
    (``"squared"``), times ``weight``. It smooths away high-frequency noise.
    """
    from gankit.style.losses import TotalVariationLoss

    return TotalVariationLoss(weight=params.weight, norm=params.norm)


def register(register: Register) -> None:
    """Register the image losses of style transfer."""
    register("loss", "content", content_loss, ContentParams, role="image")
    register("loss", "gram-style", gram_style_loss, GramStyleParams, role="image")
    register("loss", "total-variation", total_variation_loss, TotalVariationParams, role="image")
