"""What a run logs: metrics.jsonl (the record), and the same records, sample grids and metrics for its loggers.

metrics.jsonl is written first and always; the recipe's ``[[loggers]]``
(TensorBoard, a tracker from a plugin) then receive each record and each
sample grid. A logger that cannot be built (its package is not installed) or
that raises (a full disk, a lost connection) is warned about once and switched
off for the rest of the run: training never stops for a logger, and nothing
is lost, since metrics.jsonl holds every record.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from gankit.errors import GankitWarning
from gankit.training.run_folder import LOGS_DIR, METRICS_FILE


class _Logger:
    """One logger of the run, switched off at its first failure."""

    def __init__(self, name: str, logger: Any) -> None:
        self.name = name
        self.logger = logger
        self.has_image = callable(getattr(logger, "image", None))
        self.has_close = callable(getattr(logger, "close", None))
        self.failed = False

    def call(self, method: str, *args: Any) -> None:
        if self.failed:
            return
        try:
            getattr(self.logger, method)(*args)
        except Exception as error:  # a logger never stops training
            self.failed = True
            _warn_failed(self.name, f"{method}() raised {type(error).__name__}: {error}")


def _warn_failed(name: str, what: str) -> None:
    warnings.warn(
        f"logger {name!r}: {what}; it is off for the rest of this run (metrics.jsonl keeps every record)",
        GankitWarning,
        stacklevel=4,
    )


def log_folder(run_dir: Path, name: str, taken: set[str]) -> Path:
    """A folder of its own for the logger ``name`` under ``RUN/logs/`` (``tensorboard``, ``tensorboard-2``, ...)."""
    base = re.sub(r"[^a-z0-9._-]+", "-", name.lower()) or "logger"
    folder, n = base, 1
    while folder in taken:
        n += 1
        folder = f"{base}-{n}"
    taken.add(folder)
    return run_dir / LOGS_DIR / folder


class RunLog:
    """metrics.jsonl and the recipe's loggers, as one place to send records and pictures (rank 0 only).

    >>> with RunLog(run_dir, recipe, start_step=0) as log:     # doctest: +SKIP
    ...     log.write({"step": 10, "d_loss": 0.7})
    ...     log.picture(10, "samples", grid)
    """

    def __init__(self, run_dir: str | Path, recipe: Any = None, *, start_step: int = 0) -> None:
        self.run_dir = Path(run_dir)
        self._file: IO[str] | None = open(self.run_dir / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self.loggers: list[_Logger] = []
        try:
            specs: Sequence[Any] = (recipe.get("loggers") or []) if recipe is not None else []
            self._build(specs, recipe, start_step)
        except BaseException:
            self.close()
            raise

    def _build(self, specs: Sequence[Any], recipe: Any, start_step: int) -> None:
        taken: set[str] = set()
        for spec in specs:
            name = spec.name
            log_dir = log_folder(self.run_dir, name, taken)
            try:
                logger = spec.build(run_dir=self.run_dir, log_dir=log_dir, recipe=recipe, start_step=start_step)
            except Exception as error:  # not installed, cannot start: warn, train on
                _warn_failed(name, f"could not start: {error}")
                continue
            self.loggers.append(_Logger(name, logger))

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` to metrics.jsonl, then hand it to every logger."""
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        for logger in self.loggers:
            logger.call("log", dict(record))

    def picture(self, step: int, name: str, picture: np.ndarray) -> None:
        """Hand a picture (a sample grid, ``uint8`` ``(H, W, C)``) to every logger that takes pictures."""
        for logger in self.loggers:
            if logger.has_image:
                logger.call("image", step, name, picture)

    def close(self) -> None:
        """Close every logger (quietly those that failed: they were warned about), then metrics.jsonl."""
        for logger in self.loggers:
            if logger.has_close and logger.failed:
                with contextlib.suppress(Exception):
                    logger.logger.close()
            elif logger.has_close:
                logger.call("close")
        self.loggers = []
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
