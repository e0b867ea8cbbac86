"""The named points at which tricks hook into training, and how often each fires.

A trick implements any subset of these methods. Each receives the run's
:class:`~gankit.training.context.TrainingContext` (``ctx``), never the trainer;
the trainer calls, at each point, only the tricks that implement it (looked
up once, not every step), in recipe order.

==================================  ==========================================================================
event                               when, how often, and what it returns
==================================  ==========================================================================
``setup(ctx)``                      once, after networks, optimisers and parts exist, before a checkpoint's
                                    state is loaded into them (then ``load_state_dict``)
``before_step(ctx)``                at the start of every step, after the learning rates are set and before
                                    any phase; ``ctx.step`` is the index of the step about to run
``real_batch(ctx, x)``              every real batch drawn from the data (one per discriminator phase, or
                                    one for a measuring or generator phase that needs one): return it
                                    transformed (progressive growing serves the current resolution)
``discriminator_input(ctx, x)``     every batch about to enter the discriminator: in a discriminator phase
                                    once for the real and once for the generated batch (its regularisers
                                    see these same batches); in a generator phase once for the generated
                                    batch and, when the loss needs real logits, once for the real batch;
                                    once each when a skipped discriminator's loss is measured.
                                    ``ctx.phase`` says which. Return it transformed (augmentation, ADA)
``after_discriminator_step(ctx)``   once per step, after its discriminator phases (also when a balance
                                    policy skipped them); ``ctx.real_logits``/``ctx.fake_logits`` hold the
                                    latest phase's detached logits (None when none ran this step)
``after_generator_step(ctx)``       once per step, after its generator phases; ``ctx.step`` now includes
                                    this step (EMA updates here)
``sampling_generator(ctx)``         whenever samples, metrics or exports are made: the generator to use,
                                    or None (the first trick that answers wins)
``log(ctx)``                        at every logging step (``run.log_every``): extra numbers for
                                    metrics.jsonl, a dict
``state_dict()`` /                  at every checkpoint / when resuming: the trick's state, tensors and
``load_state_dict(state)``          JSON data
==================================  ==========================================================================

A public method of a trick whose name is not an event but looks like one
(``after_generater_step``, ``on_step``) is an error when the trick is
registered or built: misspelt events are never silently ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from gankit.errors import RegistrationError

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

#: Methods a trick may have besides the events.
STATE_METHODS = ("state_dict", "load_state_dict")

#: Events whose gankit 0.1 signature had a trailing ``step`` argument.
_OLD_STEP_ARGUMENT = frozenset({"before_step", "after_discriminator_step", "after_generator_step", "log"})

_EVENT_PREFIXES = ("before_", "after_", "on_")


def misspelt_events(names: Sequence[str]) -> list[tuple[str, str | None]]:
    """``(name, closest event or None)`` for each public name that looks like an event but is not one."""
    from gankit.registry import suggest

    found: list[tuple[str, str | None]] = []
    for name in names:
        if name.startswith("_") or name in EVENTS or name in STATE_METHODS:
            continue
        close = suggest(name, EVENTS, n=1)
        close_enough = close and _similar(name, close[0])
        if close_enough or name.startswith(_EVENT_PREFIXES):
            found.append((name, close[0] if close else None))
    return found


def _similar(a: str, b: str) -> bool:
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def check_trick_events(trick: Any, where: str) -> None:
    """Raise :class:`RegistrationError` when ``trick`` (a class or an object) has a misspelt event method."""
    names = [n for n in dir(trick) if callable(getattr(trick, n, None))]
    bad = misspelt_events(names)
    if not bad:
        return
    lines = []
    for name, close in bad:
        hint = f" Did you mean {close!r}?" if close else ""
        lines.append(f"{name!r} is not a trainer event.{hint}")
    raise RegistrationError(
        f"{where}: " + " ".join(lines) + f" Events: {', '.join(EVENTS)} (see gankit.training.events); "
        "rename helper methods with a leading underscore."
    )


def _wants_step(method: Any, event: str) -> bool:
    """Whether a trick's event method has the gankit 0.1 signature, with a trailing ``step``."""
    if event not in _OLD_STEP_ARGUMENT:
        return False
    try:
        parameters = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


def _bind(method: Any, event: str) -> Any:
    if _wants_step(method, event):
        return lambda ctx, *args: method(ctx, ctx.step, *args)
    return method


class TrickHooks:
    """The tricks of a run, indexed by the events each implements."""

    def __init__(self, tricks: Sequence[Any], names: Sequence[str] | None = None) -> None:
        self.tricks = list(tricks)
        for i, trick in enumerate(self.tricks):
            label = names[i] if names is not None else type(trick).__name__
            check_trick_events(trick, f"trick {label!r}")
        self.by_event: dict[str, list[Any]] = {
            event: [_bind(getattr(t, event), event) for t in self.tricks if callable(getattr(t, event, None))]
            for event in EVENTS
        }

    def has(self, event: str) -> bool:
        """Whether any trick implements ``event``."""
        return bool(self.by_event[event])

    def call(self, event: str, ctx: Any) -> None:
        """Call ``event`` on every trick that implements it."""
        for hook in self.by_event[event]:
            hook(ctx)

    def transform(self, event: str, ctx: Any, value: Any) -> Any:
        """Pass ``value`` through ``event`` of every trick, in recipe order."""
        for hook in self.by_event[event]:
            value = hook(ctx, value)
        return value

    def first(self, event: str, ctx: Any) -> Any:
        """The first non-None answer to ``event``."""
        for hook in self.by_event[event]:
            answer = hook(ctx)
            if answer is not None:
                return answer
        return None

    def logs(self, ctx: Any) -> dict[str, Any]:
        """Every trick's extra numbers for metrics.jsonl."""
        out: dict[str, Any] = {}
        for hook in self.by_event["log"]:
            out.update(hook(ctx) or {})
        return out
