"""The ``ema`` trick: an exponential moving average of the generator's weights."""

from __future__ import annotations

import copy
from typing import Any, Self

import torch
from pydantic import Field, model_validator
from torch import nn

from gankit.hookspecs import Register
from gankit.registry import Params
from gankit.training.context import TrainingContext


class EmaParams(Params):
    """Parameters of ``ema``."""

    decay: float = Field(0.999, ge=0, lt=1, description="Weight of the old average at each update.")
    start: int = Field(0, ge=0, description="Copy the weights until this step, then start averaging.")
    every: int = Field(1, ge=1, description="Update the average every this many steps.")
    half_life_images: int | None = Field(
        None, ge=1,
        description="Instead of decay: the images after which an old weight counts half (StyleGAN2: 10,000 "
        "per 32 images of batch); the decay then follows the batch size.",
    )
    rampup: float | None = Field(
        None, gt=0,
        description="With half_life_images: the half-life is at most rampup x the images seen so far, so early "
        "weights are forgotten quickly (StyleGAN2-ADA: 0.05).",
    )

    @model_validator(mode="after")
    def _rampup_needs_half_life(self) -> Self:
        if self.rampup is not None and self.half_life_images is None:
            raise ValueError("rampup needs half_life_images")
        return self


class EmaTrick:
    """Moving average of the generator's weights, used for samples and exported generators.

    After each generator update, ``avg = decay * avg + (1 - decay) * weights``;
    buffers (BatchNorm statistics, a tracked average ``w``) are copied.
    Averaged generators give smoother, often better samples (Yazici et al.
    2019; Karras et al. 2018).

    With ``half_life_images`` (StyleGAN2's form), the decay of an update that
    follows ``b`` images (``every`` steps of the batch on every process) is
    ``0.5 ** (b / half_life)``, and with ``rampup`` the half-life is at most
    ``rampup`` times the images seen before the step: the first update copies
    the weights, and the average forgets its start quickly.
    """

    def __init__(self, params: EmaParams, **context: Any) -> None:
        self.params = params
        self.average: nn.Module | None = None
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._buffers: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._averaged: list[torch.Tensor] = []
        self._current: list[torch.Tensor] = []
        self._averaged_buffers: list[torch.Tensor] = []
        self._current_buffers: list[torch.Tensor] = []

    def setup(self, ctx: TrainingContext) -> None:
        """Make the averaged copy of the run's generator."""
        source: nn.Module = ctx.generator
        self.average = copy.deepcopy(source).eval().requires_grad_(False)
        self._pairs = list(zip(self.average.parameters(), source.parameters(), strict=True))
        self._buffers = list(zip(self.average.buffers(), source.buffers(), strict=True))
        # the tensor lists each update passes to the foreach kernels, made once
        self._averaged = [a for a, _ in self._pairs]
        self._current = [c for _, c in self._pairs]
        self._averaged_buffers = [a for a, _ in self._buffers]
        self._current_buffers = [c for _, c in self._buffers]

    @torch.no_grad()
    def after_generator_step(self, ctx: TrainingContext) -> None:
        """Fold the generator's new weights into the average."""
        step = ctx.step
        if step % self.params.every:
            return
        decay = self.decay_at(ctx)
        if step < self.params.start or decay == 0.0:
            torch._foreach_copy_(self._averaged, self._current)
        else:
            torch._foreach_lerp_(self._averaged, self._current, 1.0 - decay)
        if self._averaged_buffers:
            torch._foreach_copy_(self._averaged_buffers, self._current_buffers)

    def decay_at(self, ctx: TrainingContext) -> float:
        """The decay of the update after step ``ctx.step`` (``decay``, or from ``half_life_images``)."""
        p = self.params
        if p.half_life_images is None:
            return float(p.decay)
        batch = ctx.batch_size * ctx.world_size
        half_life = float(p.half_life_images)
        if p.rampup is not None:
            half_life = min(half_life, (ctx.step - 1) * batch * p.rampup)
        if half_life <= 0.0:
            return 0.0
        return float(0.5 ** (batch * p.every / half_life))

    def sampling_generator(self, ctx: TrainingContext) -> nn.Module | None:
        """The averaged generator, for samples and exports."""
        return self.average

    def state_dict(self) -> dict[str, Any]:
        assert self.average is not None
        return {"average": self.average.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.average is not None
        self.average.load_state_dict(state["average"])


def register(register: Register) -> None:
    """Register the built-in ``ema`` trick."""
    register("trick", "ema", EmaTrick, EmaParams)
