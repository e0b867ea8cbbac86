"""Learning-rate schedules: a factor of the base learning rate for each training step.

Each network has its own schedule (``[schedule.generator]``,
``[schedule.discriminator]``), so the two can follow different paths (TTUR).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, model_validator

from gankit.hookspecs import Register
from gankit.registry import NoParams, Params


class ConstantSchedule:
    """The same learning rate at every step."""

    def __init__(self, params: NoParams, **context: Any) -> None:
        self.params = params

    def __call__(self, step: int) -> float:
        return 1.0


class StepParams(Params):
    """Parameters of the ``step`` schedule."""

    milestones: list[int] = Field(
        default_factory=list, description="Steps at which the learning rate drops (ascending)."
    )
    factor: float = Field(0.1, gt=0, description="Multiply the learning rate by this at each milestone.")

    @model_validator(mode="after")
    def _ascending(self) -> StepParams:
        if any(m <= 0 for m in self.milestones) or self.milestones != sorted(self.milestones):
            raise ValueError("milestones must be positive steps in ascending order")
        return self


class StepSchedule:
    """Drop the learning rate by a factor at given steps (a sudden drop often makes a GAN converge)."""

    def __init__(self, params: StepParams, **context: Any) -> None:
        self.params = params

    def __call__(self, step: int) -> float:
        drops = sum(1 for m in self.params.milestones if step >= m)
        return float(self.params.factor**drops)


class CosineParams(Params):
    """Parameters of the ``cosine`` schedule."""

    min_factor: float = Field(0.0, ge=0, le=1, description="Factor reached at the last step.")
    steps: int | None = Field(None, gt=0, description="Length of the decay; default: the run's total steps.")


class CosineSchedule:
    """Cosine decay from 1 to ``min_factor`` over the run (Loshchilov & Hutter 2017, without restarts)."""

    def __init__(self, params: CosineParams, *, total_steps: int = 1, **context: Any) -> None:
        self.params = params
        self.length = params.steps or max(1, total_steps)

    def __call__(self, step: int) -> float:
        progress = min(1.0, max(0.0, step / self.length))
        low = self.params.min_factor
        return low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupParams(Params):
    """Parameters of the ``linear-warmup`` schedule."""

    warmup_steps: int = Field(100, gt=0, description="Steps over which the factor rises linearly to 1.")
    start_factor: float = Field(0.0, ge=0, le=1, description="Factor at step 0.")


class LinearWarmupSchedule:
    """Rise linearly from ``start_factor`` to 1 over the first ``warmup_steps`` steps, then stay at 1."""

    def __init__(self, params: WarmupParams, **context: Any) -> None:
        self.params = params

    def __call__(self, step: int) -> float:
        if step >= self.params.warmup_steps:
            return 1.0
        start = self.params.start_factor
        return start + (1.0 - start) * step / self.params.warmup_steps


def register(register: Register) -> None:
    """Register the built-in schedules."""
    register("schedule", "constant", ConstantSchedule)
    register("schedule", "step", StepSchedule, StepParams)
    register("schedule", "cosine", CosineSchedule, CosineParams)
    register("schedule", "linear-warmup", LinearWarmupSchedule, WarmupParams)
