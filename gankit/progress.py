"""Progress of a long loop: a rich bar on a terminal, plain lines elsewhere, nothing when quiet."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Progress:
    """Shows how far a loop of ``total`` steps has gone, with named values (losses, skips, ...).

    On a terminal it is a rich bar with ETA and steps/s; otherwise a plain line
    every ``plain_every`` seconds; with ``quiet`` nothing at all. Use it as a
    context manager and call :meth:`update` with the number of steps done.
    """

    def __init__(
        self,
        total: int,
        *,
        description: str = "",
        start: int = 0,
        quiet: bool = False,
        plain_every: float = 5.0,
        stream: Any = None,
    ) -> None:
        self.total = total
        self.description = description
        self.start = start
        self.quiet = quiet
        self.plain_every = plain_every
        self.stream = stream if stream is not None else sys.stderr
        self._rich: Any = None
        self._task: Any = None
        self._last_plain = 0.0
        self._t0 = time.perf_counter()
        self._done = start
        self._fields: dict[str, Any] = {}

    def __enter__(self) -> Progress:
        self._t0 = time.perf_counter()
        if self.quiet:
            return self
        is_terminal = getattr(self.stream, "isatty", lambda: False)()
        if is_terminal:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[values]}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._rich.start()
            self._task = self._rich.add_task(
                self.description, total=self.total, completed=self.start, rate="", values=""
            )
        return self

    def rate(self) -> float:
        """Steps per second since the loop started."""
        elapsed = time.perf_counter() - self._t0
        return (self._done - self.start) / elapsed if elapsed > 0 else 0.0

    def update(self, done: int, **values: Any) -> None:
        """Record that ``done`` steps (of ``total``) are complete, with values to show."""
        self._done = done
        self._fields.update(values)
        if self.quiet:
            return
        text = "  ".join(f"{k} {_format_value(v)}" for k, v in self._fields.items())
        if self._rich is not None:
            self._rich.update(self._task, completed=done, rate=f"{self.rate():.2f} it/s", values=text)
            return
        now = time.perf_counter()
        if done >= self.total or now - self._last_plain >= self.plain_every:
            self._last_plain = now
            print(f"{self.description} {done}/{self.total}  {self.rate():.2f} it/s  {text}".rstrip(),
                  file=self.stream, flush=True)

    def log(self, message: str) -> None:
        """Print a message above the bar (or as a plain line)."""
        if self.quiet:
            return
        if self._rich is not None:
            self._rich.console.print(message, highlight=False, markup=False)
        else:
            print(message, file=self.stream, flush=True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
