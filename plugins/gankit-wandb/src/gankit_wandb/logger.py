"""``wandb.logger``: a gankit run's records, metrics and sample grids in Weights & Biases."""

from __future__ import annotations

import math
import os
import secrets
from pathlib import Path
from typing import Any, Literal

import numpy as np
from gankit import GankitError, Params
from pydantic import Field

#: Keys of a record that are not values to plot.
_NOT_VALUES = frozenset({"step", "time", "event"})
#: The file in the logger's folder that keeps the W&B run id, so that a resumed gankit run continues the same one.
ID_FILE = "wandb-run-id"


class WandbParams(Params):
    """Parameters of ``wandb.logger``."""

    project: str = Field("gankit", min_length=1, description="W&B project the run goes into")
    entity: str | None = Field(None, min_length=1, description="W&B user or team; default: your default entity")
    name: str | None = Field(None, min_length=1, description="the run's display name; default: the run folder's name")
    group: str | None = Field(None, min_length=1, description="group the run with others (a sweep, a seed study)")
    tags: list[str] = Field(default_factory=list, description="tags of the run")
    mode: Literal["online", "offline", "disabled"] | None = Field(
        None, description="online, offline (sync later with `wandb sync`) or disabled; default: WANDB_MODE or online"
    )
    images: bool = Field(True, description="also log every sample grid (key 'samples')")
    capture_console: bool = Field(False, description="let W&B record the terminal output too")


def values(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics.jsonl record under W&B keys: ``train/...`` at logging steps, ``metrics/...``."""
    event = record.get("event")
    if event not in (None, "metrics"):
        return {}
    prefix = "metrics/" if event == "metrics" else "train/"
    return {
        prefix + key: float(value)
        for key, value in record.items()
        if key not in _NOT_VALUES and isinstance(value, int | float) and not isinstance(value, bool)
        and math.isfinite(value)
    }


def run_id(log_dir: Path) -> str:
    """The W&B run id of this gankit run: made once and kept in the logger's folder."""
    path = log_dir / ID_FILE
    if path.is_file():
        kept = path.read_text(encoding="utf-8").strip()
        if kept:
            return kept
    new = secrets.token_hex(4)
    log_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(new + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return new


class WandbLogger:
    """Every record of metrics.jsonl, the metric values and the sample grids of a run, in a W&B run.

    Keys: ``train/d_loss``, ``train/g_loss``, ``train/lr_g``, ``train/lr_d``,
    ``train/skips`` and every number a trick logs; ``metrics/<metric>.<key>``;
    ``samples`` (images). The resolved recipe is the run's config. The W&B run
    id is kept in ``RUN/logs/wandb.logger/``, so a resumed gankit run
    continues the same W&B run. W&B's files go into that folder too.
    """

    def __init__(
        self, params: WandbParams, *, run_dir: str | Path, log_dir: str | Path, recipe: Any = None,
        start_step: int = 0, **context: Any,
    ) -> None:
        try:
            import wandb
        except ImportError as error:
            raise GankitError("the 'wandb.logger' logger needs the wandb package: pip install wandb") from error
        self._wandb = wandb
        self.params = params
        folder = Path(log_dir)
        identifier = run_id(folder)
        self.run = wandb.init(
            project=params.project,
            entity=params.entity,
            name=params.name or Path(run_dir).name,
            group=params.group,
            tags=list(params.tags) or None,
            mode=params.mode,
            dir=str(folder),
            id=identifier,
            resume="allow",
            config=recipe.to_dict() if recipe is not None else None,
            settings=wandb.Settings(console="auto" if params.capture_console else "off"),
        )

    def log(self, record: dict[str, Any]) -> None:
        """Log the record's numbers at its step."""
        numbers = values(record)
        if numbers:
            self.run.log(numbers, step=int(record.get("step", 0)))

    def image(self, step: int, name: str, picture: np.ndarray) -> None:
        """Log a sample grid (``uint8`` ``(H, W, C)``)."""
        if self.params.images:
            array = picture[..., 0] if picture.shape[-1] == 1 else picture
            self.run.log({name: self._wandb.Image(array, caption=f"step {step}")}, step=step)

    def close(self) -> None:
        """Finish the W&B run (offline runs are then ready for ``wandb sync``)."""
        self.run.finish()
