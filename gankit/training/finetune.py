"""Fine-tuning: a new run that starts from the networks of a trained run (``[run] init_from``).

The new run copies the generator's and the discriminator's weights (and
buffers) of the other run's checkpoint; everything else starts fresh: the
optimisers, the schedules, the step count, the tricks (an ``ema`` average
starts from the copied generator). The recipes must build the same
networks: the same generator and discriminator parts with the same
parameters, and data of the same shape. What differs is named in the error.
Only a run's first start copies weights: a resumed run continues from its own
checkpoints, so the other run's folder is needed only once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from gankit.checkpoint import Checkpoint, load_source
from gankit.errors import GankitError
from gankit.recipe import Recipe

NETWORKS = ("generator", "discriminator")


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str) -> list[str]:
    """``"generator.width: 32 there, 64 here"`` for every key whose value differs between two part tables."""
    found = []
    for key in sorted(set(old) | set(new)):
        was, now = old.get(key, "(unset)"), new.get(key, "(unset)")
        if was != now:
            found.append(f"{prefix}.{key}: {was!r} there, {now!r} here")
    return found


def _source_checkpoint(source: str) -> tuple[Path, Checkpoint]:
    path = Path(source).expanduser()
    if not path.exists():
        raise GankitError(f"run.init_from = {source!r}: no such run folder or checkpoint")
    try:
        file, ckpt = load_source(path)
    except GankitError as error:
        raise GankitError(f"run.init_from = {source!r}: {error}") from error
    if ckpt.state.get("exported") or not ckpt.group("discriminator"):
        raise GankitError(
            f"run.init_from = {source!r}: {file.name} holds a generator alone; fine-tuning starts from a run "
            "folder or a training checkpoint (checkpoints/step-N.safetensors, checkpoints/best.safetensors)"
        )
    return file, ckpt


def check_compatible(old: Recipe, new: Recipe, source: str) -> None:
    """Raise a :class:`GankitError` naming every difference between the two recipes' networks."""
    problems: list[str] = []
    for slot in NETWORKS:
        problems += differences(old[slot].to_table(), new[slot].to_table(), slot)
    if problems:
        raise GankitError(
            f"run.init_from = {source!r}: fine-tuning needs the same networks as the run it starts from; "
            + "; ".join(problems)
            + ". Set them as they were there (copy the [generator] and [discriminator] tables of its recipe.toml)"
        )


def init_networks(source: str, recipe: Recipe, generator: nn.Module, discriminator: nn.Module) -> Path:
    """Copy the networks of the run or checkpoint ``source`` into ``generator`` and ``discriminator``.

    The recipes are checked first (:func:`check_compatible`); weights that do
    not fit (data of another size or channel count) are named with the other
    run's data. Returns the checkpoint file used.
    """
    from gankit.training.resuming import recipe_from_checkpoint

    file, ckpt = _source_checkpoint(source)
    old = recipe_from_checkpoint(ckpt.state, str(file))
    check_compatible(old, recipe, source)
    for slot, module in zip(NETWORKS, (generator, discriminator), strict=True):
        try:
            module.load_state_dict(ckpt.group(slot))
        except RuntimeError as error:
            raise GankitError(
                f"run.init_from = {source!r}: the {slot}'s weights do not fit this run's data: it was trained on "
                f"{_data(old)}, this run's data is {_data(recipe)}. Fine-tuning needs samples of the same size and "
                "channels"
            ) from error
    return file


def _data(recipe: Recipe) -> str:
    """A data table in a few words: ``digits (resolution 64, channels 3)``."""
    table = recipe["data"].to_table()
    shown = ", ".join(f"{k} {table[k]}" for k in ("resolution", "channels") if k in table)
    return f"{table['type']}" + (f" ({shown})" if shown else "")
