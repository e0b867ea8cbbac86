"""The plugin module named by the ``gankit`` entry point: it registers the ``wandb.logger`` part."""

from __future__ import annotations

import gankit
from gankit.hookspecs import Register

from gankit_wandb.logger import WandbLogger, WandbParams


@gankit.hookimpl
def gankit_register_parts(register: Register) -> None:
    """Register the Weights & Biases logger."""
    register("logger", "wandb.logger", WandbLogger, WandbParams)
