"""The kinds of recipe (tasks) and their fixed settings: ``[run]`` and ``[optim.*]``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, field_validator

from gankit.registry import MAX_BATCH_SIZE, Params, Seed, check_device
from gankit.slots import ModelSlot, PartListSlot, PartMapSlot, PartSlot, TaskSchema
from gankit.style.fast_schema import FAST_STYLE
from gankit.style.schema import STYLE


class GanRunSettings(Params):
    """Settings of a GAN training run (the ``[run]`` table)."""

    seed: Seed = Field(0, description="Seed of every random number: same recipe and seed, same weights (on CPU).")
    steps: int = Field(2000, gt=0, description="Total generator steps of the run (resuming continues up to it).")
    batch_size: int = Field(64, gt=0, le=MAX_BATCH_SIZE, description="Samples per batch, real and generated alike.")
    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    out: str | None = Field(
        None, description="Run folder; default runs/<recipe name>-<date>-<time>. --out overrides it."
    )
    log_every: int = Field(10, gt=0, description="Write losses to metrics.jsonl every this many steps.")
    sample_every: int = Field(200, gt=0, description="Save a sample grid every this many steps.")
    samples: int = Field(64, gt=0, le=1024, description="Images in each sample grid (from a fixed latent batch).")
    checkpoint_every: int = Field(500, gt=0, description="Write a checkpoint every this many steps.")
    keep_checkpoints: int = Field(3, gt=0, description="How many of the latest checkpoints to keep.")
    metrics_every: int = Field(500, gt=0, description="Compute the recipe's [[metrics]] every this many steps.")
    best_metric: str | None = Field(
        None, description="Keep checkpoints/best.safetensors by this metric, e.g. 'modes.reverse_kl'."
    )
    best_mode: Literal["min", "max"] = Field("min", description="Whether lower or higher best_metric is better.")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="Autocast precision: fp32, bf16 (CPU or CUDA), fp16 (CUDA, with a gradient scaler)."
    )
    channels_last: bool = Field(False, description="Use the channels-last memory format for image networks.")
    compile: Literal[False, True, "default", "reduce-overhead", "max-autotune"] = Field(
        False,
        description="Compile the networks with torch.compile: true (its default mode), or a mode by name: "
        "'reduce-overhead' replays CUDA graphs on a GPU (small networks are launch-bound there), 'max-autotune' "
        "also searches kernels. Gradient penalties (r1, r2, gradient-penalty) run uncompiled.",
    )
    sync_batchnorm: bool = Field(
        False, description="With several processes: synchronise BatchNorm statistics across them (CUDA only)."
    )
    dist_timeout: float = Field(
        600.0, gt=0, description="With several processes: seconds to wait for the others before failing."
    )
    latent_labels: Literal["uniform", "data"] = Field(
        "uniform",
        description="Conditional generators: how the classes of generated batches are drawn, 'uniform' over the "
        "classes or as often as each occurs in the 'data'.",
    )
    threads: int | Literal["auto"] | None = Field(
        "auto",
        description="CPU threads for torch: a number (bit-identical runs), or 'auto': measure the candidates on the "
        "first steps, keep the fastest, re-check when steps slow down (an explicit OMP_NUM_THREADS wins). "
        "Unset (null): torch's own default.",
    )
    init_from: str | None = Field(
        None, min_length=1,
        description="Fine-tune: start the networks from this run folder or checkpoint (optimisers start fresh; "
                    "the recipe must build the same networks).",
    )

    @field_validator("threads")
    @classmethod
    def _positive_threads(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and not 1 <= value <= 4096:
            raise ValueError("threads must be 'auto' or a number from 1 to 4096")
        return value

    _device = field_validator("device")(check_device)


#: Keys of the ``[optim.*]`` table before optimisers were parts (``name = "adam"``), with their defaults there.
_OLD_OPTIMIZER_DEFAULTS: dict[str, Any] = {
    "lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 0.0, "eps": 1e-8, "momentum": 0.0, "fused": False,
}
#: The keys each built-in optimiser takes.
_OPTIMIZER_KEYS: dict[str, set[str]] = {
    "adam": {"lr", "weight_decay", "betas", "eps", "fused"},
    "adamw": {"lr", "weight_decay", "betas", "eps", "fused"},
    "sgd": {"lr", "weight_decay", "momentum", "nesterov"},
    "rmsprop": {"lr", "weight_decay", "momentum", "alpha", "eps"},
}


def upgrade_optimizer_table(table: dict[str, Any]) -> dict[str, Any]:
    """An ``[optim.*]`` table in the layout before optimisers were parts (``name = "adam"``), rewritten.

    ``name`` becomes ``type``; a key the chosen optimiser does not take is
    dropped when it holds the old layout's default (old resolved recipes spell
    every key out), and kept otherwise, so that validation reports it.
    """
    if "name" not in table or "type" in table:
        return table
    table = dict(table)
    name = table.pop("name")
    table["type"] = name
    takes = _OPTIMIZER_KEYS.get(name) if isinstance(name, str) else None
    if takes is not None:
        for key, default in _OLD_OPTIMIZER_DEFAULTS.items():
            if key in table and key not in takes and _same(table[key], default):
                del table[key]
    return table


def _same(value: Any, default: Any) -> bool:
    if isinstance(default, list):
        return isinstance(value, list | tuple) and all(isinstance(v, int | float) for v in value) and [
            float(v) for v in value] == default
    return type(value) is type(default) and bool(value == default)


NETWORKS = ("generator", "discriminator")

GAN = TaskSchema(
    name="gan",
    doc="Train a generator and a discriminator against each other.",
    trainer="gankit.training.trainer:train",
    slots={
        "run": ModelSlot(GanRunSettings, doc="Run settings."),
        "data": PartSlot("data", doc="Where real samples come from."),
        "generator": PartSlot("generator"),
        "discriminator": PartSlot("discriminator"),
        "loss": PartSlot("loss", role="adversarial", default="non-saturating", doc="The adversarial loss."),
        "regularizers": PartListSlot("loss", role="regularizer",
                                     doc="Terms added to a network's loss (each says which network: R1, R2 and "
                                         "gradient penalties the discriminator's, path length the generator's)."),
        "optim": PartMapSlot("optimizer", NETWORKS, default="adam", upgrade=upgrade_optimizer_table,
                             doc="Each network's optimiser (TTUR)."),
        "schedule": PartMapSlot("schedule", NETWORKS, default="constant", doc="Each network's learning-rate factor."),
        "balance": PartSlot("balance", default="always", doc="Which network trains at each step."),
        "tricks": PartListSlot("trick", doc="Training tricks (EMA, progressive growing, ...)."),
        "metrics": PartListSlot("metric", doc="Metrics computed during training."),
        "loggers": PartListSlot("logger", doc="Where records, sample grids and metrics also go, besides "
                                              "metrics.jsonl (TensorBoard, a tracker from a plugin)."),
    },
)

#: Every recipe task by name. A task adds its schema here.
TASKS: dict[str, TaskSchema] = {"gan": GAN, "style": STYLE, "fast-style": FAST_STYLE}


def train_task(recipe: Any) -> Callable[..., Any]:
    """The function that trains a recipe of this task: ``train(recipe, out, *, quiet=...)``."""
    import importlib

    from gankit.errors import GankitError

    schema = TASKS[recipe.task]
    if schema.trainer is None:
        if recipe.task == "style":
            raise GankitError(
                f"{recipe.source}: a style recipe optimises one picture and has nothing to train: run it with "
                f"gankit stylize --recipe {recipe.source} --content photo.jpg --style painting.jpg"
            )
        raise GankitError(f"{recipe.source}: a {recipe.task!r} recipe is not trained")
    module, _, function = schema.trainer.partition(":")
    trainer: Callable[..., Any] = getattr(importlib.import_module(module), function)
    return trainer
