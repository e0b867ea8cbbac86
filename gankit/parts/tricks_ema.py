"""The ``ema`` trick: an exponential moving average of the generator's weights."""

from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import Field
from torch import nn

from gankit.hookspecs import Register
from gankit.registry import Params
from gankit.training.context import TrainingContext


class EmaParams(Params):
    """Parameters of ``ema``."""

    decay: float = Field(0.999, ge=0, lt=1, description="Weight of the old average at each update.")
    start: int = Field(0, ge=0, description="Copy the weights until this step, then start averaging.")
    every: int = Field(1, ge=1, description="Update the average every this many steps.")


class EmaTrick:
    """Moving average of the generator's weights, used for samples and exported generators.

    After each generator update, ``avg = decay * avg + (1 - decay) * weights``;
    buffers (BatchNorm statistics) are copied. Averaged generators give
    smoother, often better samples (Yazici et al. 2019; Karras et al. 2018).
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
        if step < self.params.start:
            torch._foreach_copy_(self._averaged, self._current)
        else:
            torch._foreach_lerp_(self._averaged, self._current, 1.0 - self.params.decay)
        if self._averaged_buffers:
            torch._foreach_copy_(self._averaged_buffers, self._current_buffers)

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
