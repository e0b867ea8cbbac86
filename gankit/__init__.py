"""gankit: generative adversarial networks and neural style transfer from interchangeable parts.

``import gankit`` is cheap: it loads no plugin and no network; parts are
loaded the first time they are needed. The public API is :data:`__all__`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError, PartNotFoundError, RegistrationError, TrainingError
from gankit.hookspecs import Register, hookimpl

__version__ = "0.1.0"

# Names resolved on first use, so that importing gankit stays light.
_LAZY: dict[str, str] = {
    "KINDS": "gankit.registry",
    "NoParams": "gankit.registry",
    "Params": "gankit.registry",
    "Part": "gankit.registry",
    "Provider": "gankit.registry",
    "Registry": "gankit.registry",
    "get_registry": "gankit.plugins",
    "broken_plugins": "gankit.plugins",
    "Recipe": "gankit.recipe",
    "RecipeError": "gankit.recipe",
    "RecipeIssue": "gankit.recipe",
    "PartSpec": "gankit.recipe",
    "load_recipe": "gankit.recipe",
    "loads_recipe": "gankit.recipe",
    "recipe_from_dict": "gankit.recipe",
    "Trainer": "gankit.training",
    "TrainingContext": "gankit.training.context",
    "TrainResult": "gankit.training",
    "train": "gankit.training",
    "resume": "gankit.training",
    "load_generator": "gankit.training",
    "sample": "gankit.training",
    "interpolate": "gankit.training",
    "GankitWarning": "gankit.errors",
    "stylize": "gankit.style",
    "StyleResult": "gankit.style",
    "Generator": "gankit.protocols",
    "Discriminator": "gankit.protocols",
    "Loss": "gankit.protocols",
    "AdversarialLoss": "gankit.protocols",
    "Regularizer": "gankit.protocols",
    "ImageLoss": "gankit.protocols",
    "Schedule": "gankit.protocols",
    "BalancePolicy": "gankit.protocols",
    "Decision": "gankit.protocols",
    "DataSource": "gankit.protocols",
    "Trick": "gankit.protocols",
    "Metric": "gankit.protocols",
    "Logger": "gankit.protocols",
}

__all__ = [
    "GankitError",
    "PartNotFoundError",
    "RegistrationError",
    "TrainingError",
    "__version__",
    "Register",
    "hookimpl",
    *_LAZY,
]

if TYPE_CHECKING:
    from gankit.errors import GankitWarning
    from gankit.plugins import broken_plugins, get_registry
    from gankit.protocols import (
        AdversarialLoss,
        BalancePolicy,
        DataSource,
        Decision,
        Discriminator,
        Generator,
        ImageLoss,
        Logger,
        Loss,
        Metric,
        Regularizer,
        Schedule,
        Trick,
    )
    from gankit.recipe import PartSpec, Recipe, RecipeError, RecipeIssue, load_recipe, loads_recipe, recipe_from_dict
    from gankit.registry import KINDS, NoParams, Params, Part, Provider, Registry
    from gankit.style import StyleResult, stylize
    from gankit.training import Trainer, TrainResult, interpolate, load_generator, resume, sample, train
    from gankit.training.context import TrainingContext


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gankit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
