"""The plugin module named by the ``gankit`` entry point: it registers this distribution's parts and recipes."""

from __future__ import annotations

from pathlib import Path

import gankit
from gankit.hookspecs import Register

from gankit_extras.adaptive_noise import AdaptiveNoise, AdaptiveNoiseParams
from gankit_extras.lion import LionParams, lion
from gankit_extras.mode_seeking import ModeSeeking, ModeSeekingParams
from gankit_extras.relativistic import CenteredParams, RelativisticCentered


@gankit.hookimpl
def gankit_register_parts(register: Register) -> None:
    """Register the four extra parts."""
    register("loss", "extras.rcgan", RelativisticCentered, CenteredParams, role="adversarial")
    register("loss", "extras.mode-seeking", ModeSeeking, ModeSeekingParams, role="regularizer")
    register("trick", "extras.adaptive-noise", AdaptiveNoise, AdaptiveNoiseParams)
    register("optimizer", "extras.lion", lion, LionParams)


@gankit.hookimpl
def gankit_recipes() -> list[Path]:
    """The recipe shipped with this plugin: ``gankit recipes`` lists it."""
    return [Path(__file__).parent / "recipes"]
