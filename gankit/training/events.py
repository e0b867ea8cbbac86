"""The named points at which tricks hook into the trainer.

A trick implements any subset of these methods; the trainer calls, at each
point, only the tricks that implement it (looked up once, not every step).

================================  ============================================================
event                             when, and what it may return
================================  ============================================================
``setup(trainer)``                once, after networks and optimisers exist, before resuming
``before_step(trainer, step)``    at the start of every step
``real_batch(trainer, x)``        a real batch was drawn: return it transformed (progressive)
``discriminator_input(trainer,    any batch (real or generated) about to enter the
x)``                              discriminator: return it transformed (augmentation)
``after_discriminator_step(       after the discriminator phase of a step
trainer, step)``
``after_generator_step(trainer,   after the generator phase of a step (EMA)
step)``
``sampling_generator(trainer)``   the generator to use for samples and exports, or None
``log(trainer, step)``            extra numbers for metrics.jsonl (dict)
``state_dict()`` /                the trick's state for checkpoints: tensors and JSON data
``load_state_dict(state)``
================================  ============================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EVENTS = (
    "setup",
    "before_step",
    "real_batch",
    "discriminator_input",
    "after_discriminator_step",
    "after_generator_step",
    "sampling_generator",
    "log",
)


class TrickHooks:
    """The tricks of a run, indexed by the events each implements."""

    def __init__(self, tricks: Sequence[Any]) -> None:
        self.tricks = list(tricks)
        self.by_event: dict[str, list[Any]] = {
            event: [getattr(t, event) for t in self.tricks if callable(getattr(t, event, None))]
            for event in EVENTS
        }

    def call(self, event: str, *args: Any) -> None:
        """Call ``event`` on every trick that implements it."""
        for hook in self.by_event[event]:
            hook(*args)

    def transform(self, event: str, trainer: Any, value: Any) -> Any:
        """Pass ``value`` through ``event`` of every trick, in recipe order."""
        for hook in self.by_event[event]:
            value = hook(trainer, value)
        return value

    def first(self, event: str, *args: Any) -> Any:
        """The first non-None answer to ``event``."""
        for hook in self.by_event[event]:
            answer = hook(*args)
            if answer is not None:
                return answer
        return None

    def logs(self, trainer: Any, step: int) -> dict[str, Any]:
        """Every trick's extra numbers for metrics.jsonl."""
        out: dict[str, Any] = {}
        for hook in self.by_event["log"]:
            out.update(hook(trainer, step) or {})
        return out
