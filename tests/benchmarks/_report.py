"""The results of one benchmark session: rows collected by the tests, a table at the end, JSON on request."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One reported number: what it is, its value, and the target it is held to (if any).

    ``kind`` says how to read ``value``: ``"ratio"`` (gankit time over
    baseline time, lower is better), ``"fraction"`` (higher is better),
    ``"seconds"``, ``"rate"`` or ``"info"``. ``target`` is a bound:
    ``("<=", 1.03)`` or ``(">=", 0.6)``.
    """

    group: str
    name: str
    value: float
    kind: str = "info"
    unit: str = ""
    target: tuple[str, float] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        """Whether the target is met (``None`` without a target)."""
        if self.target is None or math.isnan(self.value):
            return None
        op, bound = self.target
        return self.value <= bound if op == "<=" else self.value >= bound

    def shown_value(self) -> str:
        """The value for the table."""
        if math.isnan(self.value):
            return "n/a"
        if self.kind == "seconds":
            from _harness import fmt_seconds

            return fmt_seconds(self.value)
        if self.kind == "fraction":
            return f"{self.value:.1%}"
        if self.kind == "info" and self.value.is_integer() and abs(self.value) < 1e12:
            return f"{int(self.value)}{(' ' + self.unit) if self.unit else ''}"
        if abs(self.value) >= 1000 or (self.value and abs(self.value) < 0.01):
            return f"{self.value:.4g}{(' ' + self.unit) if self.unit else ''}"
        return f"{self.value:.3f}{(' ' + self.unit) if self.unit else ''}"

    def to_json(self) -> dict[str, Any]:
        """The row as JSON data."""
        return {
            "group": self.group,
            "name": self.name,
            "value": None if math.isnan(self.value) else self.value,
            "kind": self.kind,
            "unit": self.unit,
            "target": list(self.target) if self.target else None,
            "met": self.met,
            "details": self.details,
        }


@dataclass
class Report:
    """Every row of a session, with the machine it ran on."""

    rows: list[Row] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def add(self, group: str, name: str, value: float, **kwargs: Any) -> Row:
        """Add a row (see :class:`Row` for the keywords); rewrites ``GANKIT_BENCH_OUT`` if set, so a cut run reports."""
        row = Row(group, name, float(value), **kwargs)
        self.rows.append(row)
        out = os.environ.get("GANKIT_BENCH_OUT")
        if out:
            self.write(out)
        return row

    def table(self) -> str:
        """The rows as an aligned text table, grouped in the order they came."""
        if not self.rows:
            return ""
        header = ("group", "measure", "value", "target", "met")
        lines = [header]
        for row in self.rows:
            target = f"{row.target[0]} {row.target[1]:g}" if row.target else ""
            met = {True: "yes", False: "NO", None: ""}[row.met]
            lines.append((row.group, row.name, row.shown_value(), target, met))
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        out = []
        for n, line in enumerate(lines):
            out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        """The session as JSON data."""
        return {
            "machine": self.machine,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "rows": [row.to_json() for row in self.rows],
        }

    def write(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` (folders created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return path


#: The session's report (pytest loads this module once per session).
REPORT = Report()
