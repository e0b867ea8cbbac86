"""The whole training state of a run, to and from a checkpoint.

A checkpoint holds the networks, both optimisers, the state of every part
that has one (tricks, regularisers, the loss, the balance policy, the data
source's reading position), the gradient scaler, every process's random
streams, the step counters and the resolved recipe with its part versions.
Tensors go into safetensors; the rest is JSON metadata (no pickle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gankit import __version__
from gankit.checkpoint import Checkpoint, join_state, split_state
from gankit.errors import GankitError


@dataclass
class Counters:
    """The step counters of a run."""

    step: int = 0
    d_steps: int = 0
    g_steps: int = 0
    skips: int = 0
    best_value: float | None = None


@dataclass
class StatefulParts:
    """Everything whose state a checkpoint carries, besides the counters and random streams."""

    generator: nn.Module
    discriminator: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    tricks: Sequence[Any]
    regularizers: Sequence[Any]
    loss: Any
    balance: Any
    data: Any
    scaler: torch.amp.GradScaler


def _part_state(part: Any, prefix: str, ckpt: Checkpoint) -> Any:
    """A part's ``state_dict()`` split into tensors and JSON (None when it has no state)."""
    if not callable(getattr(part, "state_dict", None)):
        return None
    return split_state(part.state_dict(), prefix, ckpt)


def _load_part_state(part: Any, data: Any, prefix: str, ckpt: Checkpoint) -> None:
    if data is not None and callable(getattr(part, "load_state_dict", None)):
        part.load_state_dict(join_state(data, prefix, ckpt))


def to_checkpoint(
    parts: StatefulParts,
    counters: Counters,
    rng_states: Sequence[dict[str, torch.Tensor]],
    *,
    recipe: Any,
    world_size: int,
) -> Checkpoint:
    """The whole training state as a :class:`Checkpoint`."""
    ckpt = Checkpoint()
    ckpt.put("generator", parts.generator.state_dict())
    ckpt.put("discriminator", parts.discriminator.state_dict())
    optim_state = {key: split_state(opt.state_dict(), f"optim.{key}", ckpt) for key, opt in parts.optimizers.items()}
    tricks_state = [_part_state(t, f"trick.{i}", ckpt) for i, t in enumerate(parts.tricks)]
    regularizers_state = [_part_state(r, f"regularizer.{i}", ckpt) for i, r in enumerate(parts.regularizers)]
    for rank, rng in enumerate(rng_states):
        ckpt.put(f"rng.{rank}", rng)
    ckpt.state = {
        "step": counters.step,
        "world_size": world_size,
        "d_step_count": counters.d_steps,
        "g_step_count": counters.g_steps,
        "skips": counters.skips,
        "best_value": counters.best_value,
        "gankit_version": __version__,
        "recipe": recipe.to_toml(),
        "recipe_name": recipe.name,
        "part_versions": recipe.part_versions(),
        "optim": optim_state,
        "balance": parts.balance.state_dict(),
        "tricks": tricks_state,
        "regularizers": regularizers_state,
        "loss": _part_state(parts.loss, "loss", ckpt),
        "data": _part_state(parts.data, "data", ckpt),
        "scaler": parts.scaler.state_dict() if parts.scaler.is_enabled() else None,
        **data_description(parts.data),
    }
    return ckpt


def data_description(data: Any) -> dict[str, Any]:
    """What a generator needs to know of its data to be rebuilt without it: sample shape and classes."""
    classes = int(getattr(data, "num_classes", 0) or 0)
    names = getattr(data, "class_names", None) if classes else None
    return {
        "data_shape": [int(d) for d in data.shape],
        "num_classes": classes,
        "class_names": [str(n) for n in names] if names else None,
    }


def from_checkpoint(parts: StatefulParts, ckpt: Checkpoint) -> Counters:
    """Load a checkpoint's state into the parts (built from the same recipe); returns its counters.

    Random streams are restored by the caller (they depend on the number of processes).
    """
    state = ckpt.state
    try:
        parts.generator.load_state_dict(ckpt.group("generator"))
        parts.discriminator.load_state_dict(ckpt.group("discriminator"))
        for key, opt in parts.optimizers.items():
            opt.load_state_dict(join_state(state["optim"][key], f"optim.{key}", ckpt))
    except (RuntimeError, KeyError, ValueError, TypeError) as error:
        raise GankitError(f"checkpoint does not match the recipe's networks: {error}") from error
    parts.balance.load_state_dict(state.get("balance") or {})
    for i, (trick, data) in enumerate(zip(parts.tricks, state.get("tricks") or [], strict=False)):
        _load_part_state(trick, data, f"trick.{i}", ckpt)
    for i, (reg, data) in enumerate(zip(parts.regularizers, state.get("regularizers") or [], strict=False)):
        _load_part_state(reg, data, f"regularizer.{i}", ckpt)
    _load_part_state(parts.loss, state.get("loss"), "loss", ckpt)
    _load_part_state(parts.data, state.get("data"), "data", ckpt)
    if state.get("scaler") and parts.scaler.is_enabled():
        parts.scaler.load_state_dict(state["scaler"])
    return Counters(
        step=int(state["step"]),
        d_steps=int(state.get("d_step_count", 0)),
        g_steps=int(state.get("g_step_count", state["step"])),
        skips=int(state.get("skips", 0)),
        best_value=state.get("best_value"),
    )


def weights_are_finite(*modules: nn.Module) -> bool:
    """Whether every parameter and buffer of the modules is finite (one host sync)."""
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    if not tensors:
        return True
    norms = torch._foreach_norm([t.detach().float() for t in tensors])
    return bool(torch.isfinite(torch.stack(norms)).all())
