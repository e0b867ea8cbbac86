"""What a training trick sees: a typed, documented view of the run, never the trainer itself."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

Phase = Literal["idle", "discriminator", "generator", "measure"]


@dataclass(eq=False)
class TrainingContext:
    """The run as a trick sees it. Events receive it; tricks may keep it (it stays current).

    What a trick may **read**: ``step``, ``total_steps``, ``batch_size``,
    ``device``, ``data`` and ``data_shape``, ``run`` (the validated ``[run]``
    settings), ``rank``/``world_size``/``is_main``, ``phase``, and the detached
    logits of the latest discriminator phase (``real_logits``,
    ``fake_logits``: what an adaptive trick such as ADA needs).

    What it may **change**: the networks' parameters, buffers and
    ``requires_grad`` flags (``generator``, ``discriminator``, the modules
    being trained, never DDP wrappers), the optimisers' state and param
    groups (``optimizers["generator"]``, ``optimizers["discriminator"]``),
    and its own state. Learning rates are set from the schedules at the start
    of every step, so a trick that wants another rate changes it after
    ``before_step``.

    ``step`` counts the steps completed so far: in ``before_step`` it is the
    index of the step about to run, in ``after_generator_step`` it already
    includes the step just run.
    """

    generator: nn.Module
    discriminator: nn.Module
    optimizers: Mapping[str, torch.optim.Optimizer]
    data: Any
    run: Any
    device: torch.device
    total_steps: int
    rank: int = 0
    world_size: int = 1
    step: int = 0
    phase: Phase = "idle"
    real_logits: torch.Tensor | None = None
    fake_logits: torch.Tensor | None = None
    _sampling_generator: Callable[[], nn.Module] | None = field(default=None, repr=False)
    _all_reduce: Callable[[torch.Tensor, str], torch.Tensor] | None = field(default=None, repr=False)

    @property
    def batch_size(self) -> int:
        """Samples per batch in this process."""
        return int(self.run.batch_size)

    @property
    def data_shape(self) -> tuple[int, ...]:
        """One sample's shape: ``(C, H, W)`` for images, ``(D,)`` for points."""
        return tuple(self.data.shape)

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files (rank 0)."""
        return self.rank == 0

    def sampling_generator(self) -> nn.Module:
        """The generator used for samples and exports (a trick's EMA copy when there is one)."""
        if self._sampling_generator is None:
            return self.generator
        return self._sampling_generator()

    def all_reduce(self, tensor: torch.Tensor, op: Literal["sum", "avg", "max"] = "avg") -> torch.Tensor:
        """``tensor`` combined over every training process (itself when there is one process)."""
        if self._all_reduce is None or self.world_size == 1:
            return tensor
        return self._all_reduce(tensor, op)

    # ------------------------------------------------------------------ names from gankit 0.1

    _OLD_NAMES = {
        "generator_module": "generator",
        "discriminator_module": "discriminator",
        "settings": "run",
    }

    def __getattr__(self, name: str) -> Any:
        if name in ("opt_g", "opt_d"):
            _deprecated(name, f"optimizers[{'generator' if name == 'opt_g' else 'discriminator'!r}]")
            return self.optimizers["generator" if name == "opt_g" else "discriminator"]
        new = TrainingContext._OLD_NAMES.get(name)
        if new is not None:
            _deprecated(name, new)
            return getattr(self, new)
        raise AttributeError(f"a trick's context has no {name!r}; see gankit.training.context.TrainingContext")


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"a trick read context.{old}, the gankit 0.1 name: read context.{new} instead",
                  DeprecationWarning, stacklevel=3)
