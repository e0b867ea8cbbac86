"""GAN training: the two-phase trainer, resuming, and using trained generators.

The names below load their modules on first use, so that importing a light
module of this package (``gankit.training.events``) does not load the trainer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["TrainResult", "Trainer", "interpolate", "load_generator", "resume", "sample", "train"]

_HOME = {
    "TrainResult": "gankit.training.trainer",
    "Trainer": "gankit.training.trainer",
    "resume": "gankit.training.trainer",
    "train": "gankit.training.trainer",
    "interpolate": "gankit.training.generate",
    "load_generator": "gankit.training.generate",
    "sample": "gankit.training.generate",
}

if TYPE_CHECKING:
    from gankit.training.generate import interpolate, load_generator, sample
    from gankit.training.trainer import Trainer, TrainResult, resume, train


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'gankit.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
