"""The slots of a recipe: what each top-level table of a recipe holds, and how it is validated.

A *task* (``gan``, ``style``, ...) is a :class:`TaskSchema`: a name and its
slots. This module depends on nothing else in gankit, so that the tasks, the
recipe validator and the JSON Schema can all import it without a circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

#: Rewrites a table written for an older layout into today's, before validation (or returns it unchanged).
Upgrade = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class PartSlot:
    """A table naming one part of ``kind`` (``[generator]``)."""

    kind: str
    role: str | None = None
    default: str | None = None
    required: bool = True
    doc: str = ""


@dataclass(frozen=True)
class PartListSlot:
    """An array of tables, each naming a part of ``kind`` (``[[tricks]]``)."""

    kind: str
    role: str | None = None
    doc: str = ""


@dataclass(frozen=True)
class PartMapSlot:
    """A table of fixed sub-tables, each naming a part of ``kind`` (``[schedule.generator]``).

    ``upgrade`` rewrites a sub-table written for an older layout (for example
    ``[optim.generator] name = "adam"``) before it is validated.
    """

    kind: str
    keys: tuple[str, ...]
    default: str
    doc: str = ""
    upgrade: Upgrade | None = None


@dataclass(frozen=True)
class ModelSlot:
    """A table of fixed settings validated by ``model`` (``[run]``)."""

    model: type[BaseModel]
    doc: str = ""


@dataclass(frozen=True)
class ModelMapSlot:
    """A table of fixed sub-tables, each validated by ``model``."""

    model: type[BaseModel]
    keys: tuple[str, ...]
    doc: str = ""


Slot = PartSlot | PartListSlot | PartMapSlot | ModelSlot | ModelMapSlot


@dataclass(frozen=True)
class TaskSchema:
    """The slots of one kind of recipe, and the function that trains it (``module:function``, or None).

    The trainer is named, not imported, so that validating a recipe loads no
    training code; ``gankit train`` imports it when it runs.
    """

    name: str
    slots: dict[str, Slot]
    doc: str = ""
    trainer: str | None = None
