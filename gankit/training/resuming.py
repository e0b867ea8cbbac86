"""Continuing a run: which checkpoint, which recipe, and going back to an earlier checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gankit.checkpoint import Checkpoint, list_checkpoints, load_checkpoint, load_latest_checkpoint
from gankit.errors import GankitError, GankitWarning
from gankit.recipe import Recipe, loads_recipe
from gankit.training.run_folder import CHECKPOINT_DIR, METRICS_FILE


def recipe_from_checkpoint(ckpt_state: dict[str, Any], source: str, overrides: Sequence[str] = ()) -> Recipe:
    """The recipe a checkpoint was trained with, rebuilt from the installed parts (with ``--set`` overrides).

    The recipe pins every part's version; a version no longer installed is
    replaced by the newest one. Either way, a part whose version or provider
    differs from the one the checkpoint records is warned about.
    """
    text = ckpt_state.get("recipe")
    if not text:
        raise GankitError(f"{source}: checkpoint carries no recipe, cannot rebuild its networks")
    if not isinstance(text, str):
        raise GankitError(f"{source}: the checkpoint's recipe is not TOML text; the file is damaged")
    recipe = loads_recipe(text, overrides, source=f"{source} (recipe)", name=str(ckpt_state.get("recipe_name",
                                                                                               "recipe")),
                          upgrade_versions=True)
    versions = ckpt_state.get("part_versions", {})
    if isinstance(versions, dict):
        warn_part_versions(versions, recipe, source)
    return recipe


def _part_identity(text: str) -> tuple[str, str]:
    """``"dcgan@v1 (gankit 0.1.0)"`` → ``("dcgan@v1", "gankit")``: the part version and its provider's name."""
    ref, _, provider = text.partition(" (")
    return ref, provider.rstrip(")").rsplit(" ", 1)[0]


def warn_part_versions(recorded: dict[str, str], recipe: Recipe, source: str) -> None:
    """Warn when parts are loaded in another version, or from another provider, than they were trained with.

    A new release of the same provider with the same part version is not warned about.
    """
    current = recipe.part_versions()
    for slot, was in recorded.items():
        now = current.get(slot)
        if now is not None and isinstance(was, str) and _part_identity(now) != _part_identity(was):
            warnings.warn(f"{source}: {slot} was trained with {was}, now loading {now}", GankitWarning,
                          stacklevel=3)


def checkpoint_to_resume(run_dir: Path, from_step: int | None) -> tuple[Path, Checkpoint]:
    """The checkpoint a resumed run starts from: the latest good one, or the one of ``from_step``."""
    if from_step is None:
        return load_latest_checkpoint(run_dir)
    kept = dict(list_checkpoints(run_dir))
    if from_step not in kept:
        have = ", ".join(str(s) for s in sorted(kept)) or "none"
        raise GankitError(f"--from {from_step}: {run_dir} keeps no checkpoint of step {from_step}; kept steps: {have}")
    return kept[from_step], load_checkpoint(kept[from_step])


def recipe_for_resume(state: dict[str, Any], source: str, overrides: Sequence[str], steps: int | None) -> Recipe:
    """The checkpoint's recipe with the ``--set`` overrides and the new total of steps."""
    recipe = recipe_from_checkpoint(state, source, overrides)
    if steps is not None:
        recipe = recipe.with_run(steps=steps)
    return recipe


def rewind(run_dir: Path, step: int) -> None:
    """Go back to the checkpoint of ``step``: later checkpoints are moved aside, later metrics records set apart.

    Checkpoints after ``step`` move to ``checkpoints/abandoned-<time>/``; the
    whole metrics.jsonl is kept as ``metrics.jsonl.before-rewind-<time>`` and
    metrics.jsonl keeps the records up to ``step``.
    """
    from gankit.files import write_bytes_atomic

    stamp = time.strftime("%Y%m%d-%H%M%S")
    later = [path for s, path in list_checkpoints(run_dir) if s > step]
    if later:
        aside = run_dir / CHECKPOINT_DIR / f"abandoned-{stamp}"
        aside.mkdir(parents=True, exist_ok=True)
        for path in later:
            os.replace(path, aside / path.name)
    pointer = run_dir / CHECKPOINT_DIR / "latest"
    write_bytes_atomic(pointer, f"step-{step:08d}.safetensors\n".encode())
    metrics = run_dir / METRICS_FILE
    if not metrics.is_file():
        return
    shutil.copy2(metrics, run_dir / f"{METRICS_FILE}.before-rewind-{stamp}")
    kept = []
    for line in metrics.read_bytes().splitlines(keepends=True):
        try:
            record = json.loads(line)
            keep = isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step
        except ValueError:
            keep = False
        if keep:
            kept.append(line if line.endswith(b"\n") else line + b"\n")
    write_bytes_atomic(metrics, b"".join(kept))
