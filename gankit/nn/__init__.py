"""Building blocks shared by gankit's networks."""

from __future__ import annotations

from gankit.nn.layers import (
    NORM_LAYERS,
    WEIGHTED_LAYERS,
    ActivationName,
    InitName,
    activation,
    apply_spectral_norm,
    init_weights,
    sample_shape,
    square_power_of_two,
)

__all__ = [
    "NORM_LAYERS",
    "WEIGHTED_LAYERS",
    "ActivationName",
    "InitName",
    "activation",
    "apply_spectral_norm",
    "init_weights",
    "sample_shape",
    "square_power_of_two",
]
