"""gankit-diffaugment: differentiable augmentation (Zhao et al. 2020) as the gankit trick ``diffaugment.augment``.

Installing this distribution is all it takes: gankit finds it through the
``gankit`` entry point group. In a recipe::

    [[tricks]]
    type = "diffaugment.augment"
    policy = ["color", "translation", "cutout"]
"""

from __future__ import annotations

from importlib import metadata

from gankit_diffaugment.augment import (
    DEFAULT_POLICY,
    DiffAugment,
    DiffAugmentParams,
    color,
    cutout,
    diff_augment,
    hole,
    shift,
    translation,
)

try:
    __version__ = metadata.version("gankit-diffaugment")
except metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_POLICY",
    "DiffAugment",
    "DiffAugmentParams",
    "__version__",
    "color",
    "cutout",
    "diff_augment",
    "hole",
    "shift",
    "translation",
]
