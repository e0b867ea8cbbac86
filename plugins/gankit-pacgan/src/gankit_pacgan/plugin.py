"""The plugin module named by the ``gankit`` entry point: it registers this distribution's parts.

gankit imports it only when parts are first needed (never on ``import gankit``).
The entry point's name, ``pacgan``, is the namespace of every part registered here.
"""

from __future__ import annotations

from pathlib import Path

import gankit
from gankit.hookspecs import Register

from gankit_pacgan.packed import PackedDiscriminator, PackedParams


@gankit.hookimpl
def gankit_register_parts(register: Register) -> None:
    """Register ``pacgan.packed``, a discriminator that judges packs of samples."""
    register("discriminator", "pacgan.packed", PackedDiscriminator, PackedParams)


@gankit.hookimpl
def gankit_recipes() -> list[Path]:
    """The recipes shipped with this plugin (PacGAN experiments): ``gankit recipes`` lists them."""
    return [Path(__file__).parent / "recipes"]
