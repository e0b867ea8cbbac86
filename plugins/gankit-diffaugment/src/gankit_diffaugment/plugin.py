"""The plugin module named by the ``gankit`` entry point: it registers this distribution's parts.

gankit imports it only when parts are first needed (never on ``import gankit``).
The entry point's name, ``diffaugment``, is the namespace of every part registered here.
"""

from __future__ import annotations

from pathlib import Path

import gankit
from gankit.hookspecs import Register

from gankit_diffaugment.augment import DiffAugment, DiffAugmentParams


@gankit.hookimpl
def gankit_register_parts(register: Register) -> None:
    """Register ``diffaugment.augment``, differentiable augmentation of every batch entering the discriminator."""
    register("trick", "diffaugment.augment", DiffAugment, DiffAugmentParams)


@gankit.hookimpl
def gankit_recipes() -> list[Path]:
    """The recipes shipped with this plugin (folder recipe with DiffAugment): ``gankit recipes`` lists them."""
    return [Path(__file__).parent / "recipes"]
