"""The ``fast-style`` recipe task: train a feed-forward stylizer for one style on a folder of photos.

A fast-style recipe says ``task = "fast-style"`` and has these slots:

- ``[run]``: :class:`FastStyleRunSettings` (steps, batch size, learning rate, temporal loss, ...);
- ``[style]``: :class:`StyleImageSettings`, the style image and its size;
- ``[data]``: the content photos, a part of kind ``data`` (``image-folder`` by default);
- ``[network]``: the stylizer, a part of kind ``stylizer`` (``johnson`` by default);
- ``[encoder]``: the loss network, a part of kind ``encoder``;
- ``[[losses]]``: image losses (``content``, ``gram-style``, ``total-variation``), summed with their weights.

This module imports pydantic only: recipes are validated without loading torch.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from gankit.registry import Params, check_device
from gankit.slots import ModelSlot, PartListSlot, PartSlot, TaskSchema


class FastStyleRunSettings(Params):
    """Settings of a fast-style training run (the ``[run]`` table of a ``fast-style`` recipe)."""

    seed: int = Field(0, description="Seed of every random number: same recipe and seed, same network (on CPU).")
    steps: int = Field(1000, gt=0, description="Total optimiser steps of the run (resuming continues up to it).")
    batch_size: int = Field(4, gt=0, le=256, description="Content photos per step.")
    lr: float = Field(1e-3, gt=0, le=1, description="Adam's learning rate.")
    temporal_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the temporal loss for video (0: off): the network's output for a shifted, noisier"
        " copy of each photo must be the shifted output, so that frames of a moving scene do not flicker.",
    )
    temporal_shift: int = Field(
        4, ge=1, le=64, description="Largest shift, in pixels, between the two copies the temporal loss compares."
    )
    temporal_noise: float = Field(
        0.02, ge=0, le=0.5, description="Standard deviation of the pixel noise added to the second copy."
    )
    device: str = Field("auto", description="'auto' (CUDA, then MPS, when present), 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    out: str | None = Field(
        None, description="Run folder; default runs/<recipe name>-<date>-<time>. --out overrides it."
    )
    log_every: int = Field(10, gt=0, description="Write the losses to metrics.jsonl every this many steps.")
    sample_every: int = Field(100, gt=0, description="Save stylized sample photos every this many steps.")
    samples: int = Field(4, gt=0, le=16, description="Photos in each sample picture (the first ones of the data).")
    checkpoint_every: int = Field(200, gt=0, description="Write a checkpoint every this many steps.")
    keep_checkpoints: int = Field(3, gt=0, description="How many of the latest checkpoints to keep.")
    threads: int | None = Field(None, gt=0, description="CPU threads for torch (default: torch's choice).")

    _device = field_validator("device")(check_device)


class StyleImageSettings(Params):
    """The style image of a fast-style run (the ``[style]`` table)."""

    image: str | None = Field(
        None,
        min_length=1,
        description="The style image (a painting, a texture): PNG, JPEG, WebP... A copy goes into the run folder.",
    )
    size: int = Field(
        256, ge=16, le=4096,
        description="Longest side the style image is resized to before its Gram matrices are taken; a larger size"
        " gives smaller brush strokes relative to the photos.",
    )


FAST_STYLE = TaskSchema(
    name="fast-style",
    doc="Train a feed-forward stylizer for one style image on a folder of photos (Johnson et al. 2016).",
    trainer="gankit.style.fast:train_fast_style",
    slots={
        "run": ModelSlot(FastStyleRunSettings, doc="Run settings."),
        "style": ModelSlot(StyleImageSettings, doc="The style image."),
        "data": PartSlot("data", default="image-folder", doc="The content photos."),
        "network": PartSlot("stylizer", default="johnson", doc="The feed-forward stylizer being trained."),
        "encoder": PartSlot("encoder", default="random-pyramid", doc="The loss network every loss reads."),
        "losses": PartListSlot("loss", role="image", doc="Image losses, summed with their weights."),
    },
)
