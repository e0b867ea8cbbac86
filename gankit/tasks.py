"""The kinds of recipe (tasks) and their fixed settings: ``[run]`` and ``[optim.*]``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from gankit.recipe import ModelMapSlot, ModelSlot, PartListSlot, PartMapSlot, PartSlot, TaskSchema
from gankit.registry import Params, check_device
from gankit.style.fast_schema import FAST_STYLE
from gankit.style.schema import STYLE


class GanRunSettings(Params):
    """Settings of a GAN training run (the ``[run]`` table)."""

    seed: int = Field(0, description="Seed of every random number: same recipe and seed, same weights (on CPU).")
    steps: int = Field(2000, gt=0, description="Total generator steps of the run (resuming continues up to it).")
    batch_size: int = Field(64, gt=0, description="Samples per batch, real and generated alike.")
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
    compile: bool = Field(False, description="Compile the networks with torch.compile.")
    sync_batchnorm: bool = Field(
        False, description="With several processes: synchronise BatchNorm statistics across them (CUDA only)."
    )
    dist_timeout: float = Field(
        600.0, gt=0, description="With several processes: seconds to wait for the others before failing."
    )
    threads: int | None = Field(None, gt=0, description="CPU threads for torch (default: torch's choice).")

    _device = field_validator("device")(check_device)


class OptimizerSettings(Params):
    """One network's optimiser (``[optim.generator]``, ``[optim.discriminator]``)."""

    name: Literal["adam", "adamw", "sgd", "rmsprop"] = Field("adam", description="The torch.optim algorithm.")
    lr: float = Field(2e-4, gt=0, description="Base learning rate (the schedule multiplies it).")
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam's betas (DCGAN: 0.5, 0.999).")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay.")
    eps: float = Field(1e-8, gt=0, description="Adam's epsilon.")
    momentum: float = Field(0.0, ge=0, lt=1, description="Momentum for sgd and rmsprop.")
    fused: bool = Field(
        False, description="Use the fused Adam/AdamW kernel: faster (CPU and CUDA), rounds slightly differently."
    )

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in value):
            raise ValueError("betas must be two numbers in [0, 1)")
        return value


NETWORKS = ("generator", "discriminator")

GAN = TaskSchema(
    name="gan",
    doc="Train a generator and a discriminator against each other.",
    slots={
        "run": ModelSlot(GanRunSettings, doc="Run settings."),
        "data": PartSlot("data", doc="Where real samples come from."),
        "generator": PartSlot("generator"),
        "discriminator": PartSlot("discriminator"),
        "loss": PartSlot("loss", role="adversarial", default="non-saturating", doc="The adversarial loss."),
        "regularizers": PartListSlot("loss", role="regularizer", doc="Terms added to the discriminator's loss."),
        "optim": ModelMapSlot(OptimizerSettings, NETWORKS, doc="Each network's optimiser (TTUR)."),
        "schedule": PartMapSlot("schedule", NETWORKS, default="constant", doc="Each network's learning-rate factor."),
        "balance": PartSlot("balance", default="always", doc="Which network trains at each step."),
        "tricks": PartListSlot("trick", doc="Training tricks (EMA, progressive growing, ...)."),
        "metrics": PartListSlot("metric", doc="Metrics computed during training."),
    },
)

#: Every recipe task by name. A task adds its schema here.
TASKS: dict[str, TaskSchema] = {"gan": GAN, "style": STYLE, "fast-style": FAST_STYLE}
