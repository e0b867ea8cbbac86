"""The ``tensorboard`` logger: a run's losses, learning rates, trick values, metrics and sample grids in TensorBoard.

It needs the ``tensorboard`` package (``pip install 'gankit[tensorboard]'``)
and writes through PyTorch's ``SummaryWriter`` into ``RUN/logs/tensorboard/``;
``tensorboard --logdir runs`` shows every run side by side.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.registry import Params

#: Keys of a record that are not values to plot.
_NOT_SCALARS = frozenset({"step", "time", "event"})


class TensorBoardParams(Params):
    """Parameters of the ``tensorboard`` logger."""

    images: bool = Field(True, description="also write every sample grid (tag 'samples')")
    flush_secs: float = Field(
        10.0, gt=0, le=3600, description="write buffered events to disk at least this often, in seconds"
    )


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The plottable numbers of a metrics.jsonl record, under TensorBoard tags.

    Losses, learning rates, skips and trick values go under ``train/``; metric
    evaluations (``"event": "metrics"``) under ``metrics/``; skip events give
    nothing (the ``skips`` count of the next record has them).
    """
    event = record.get("event")
    if event not in (None, "metrics"):
        return {}
    prefix = "metrics/" if event == "metrics" else "train/"
    out: dict[str, float] = {}
    for key, value in record.items():
        if key in _NOT_SCALARS or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[prefix + key] = float(value)
    return out


class TensorBoardLogger:
    """Every record of metrics.jsonl as TensorBoard scalars, and the sample grids as images.

    Tags: ``train/d_loss``, ``train/g_loss``, ``train/lr_g``, ``train/lr_d``,
    ``train/skips`` and every number a trick logs (``train/alpha``, an
    adaptive augmentation's ``train/p``); ``metrics/<metric>.<key>`` for
    ``[[metrics]]``; ``samples`` for the grids; the resolved recipe as the
    text ``recipe``. A resumed run purges the events after the step it
    continues from, so a run that went back with ``--from`` shows one history.
    """

    def __init__(
        self, params: TensorBoardParams, *, log_dir: str | Path, recipe: Any = None, start_step: int = 0,
        **context: Any,
    ) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise GankitError(
                "the 'tensorboard' logger needs the tensorboard package: pip install 'gankit[tensorboard]'"
            ) from error
        self.params = params
        self.writer = SummaryWriter(
            log_dir=str(log_dir), flush_secs=math.ceil(params.flush_secs),
            purge_step=start_step + 1 if start_step > 0 else None,
        )
        if recipe is not None and start_step == 0:
            text = "\n".join("    " + line for line in recipe.to_toml().splitlines())
            self.writer.add_text("recipe", text, 0)

    def log(self, record: dict[str, Any]) -> None:
        """Write the record's numbers as scalars at its step."""
        step = int(record.get("step", 0))
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, step)

    def image(self, step: int, name: str, picture: np.ndarray) -> None:
        """Write a sample grid (``uint8`` ``(H, W, C)``)."""
        if self.params.images:
            self.writer.add_image(name, picture, step, dataformats="HWC")

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def register(register: Register) -> None:
    """Register the built-in ``tensorboard`` logger."""
    register("logger", "tensorboard", TensorBoardLogger, TensorBoardParams)
