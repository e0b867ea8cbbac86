"""The ``style`` recipe task: its ``[run]`` settings and its slots.

A style recipe says ``task = "style"`` at the top and has three slots:

- ``[run]``: :class:`StyleRunSettings` (size, steps, optimiser, start image, ...);
- ``[encoder]``: the feature extractor, a part of kind ``encoder`` (``vgg19`` by default);
- ``[[losses]]``: parts of kind ``loss`` with role ``image`` (``content``,
  ``gram-style``, ``total-variation``), summed with their weights.

This module imports pydantic only: recipes are validated without loading torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from gankit.registry import Params, Seed, check_device
from gankit.slots import ModelSlot, PartListSlot, PartSlot, TaskSchema

#: The ``init`` values that are not paths.
INIT_CHOICES = ("noise", "content")


#: The longest side of a stylised image, in pixels.
MAX_SIZE = 1 << 20


class StyleRunSettings(Params):
    """Settings of a style-transfer run (the ``[run]`` table of a ``style`` recipe)."""

    size: int | None = Field(
        None, gt=0, le=MAX_SIZE,
        description="Longest side of the result in pixels; unset: gpu_size on a GPU, cpu_size otherwise.",
    )
    gpu_size: int = Field(512, gt=0, le=MAX_SIZE, description="Default longest side on a GPU (when size is unset).")
    cpu_size: int = Field(
        256, gt=0, le=MAX_SIZE, description="Default longest side on a CPU or MPS (when size is unset)."
    )
    style_scale: float = Field(
        1.0, gt=0, le=8, description="Longest side of the style image relative to the result's."
    )
    steps: int = Field(
        300, gt=0, description="Optimiser iterations at each scale (one forward and backward pass each)."
    )
    optimizer: Literal["lbfgs", "adam"] = Field("lbfgs", description="'lbfgs' (Gatys et al.) or 'adam'.")
    lr: float | None = Field(
        None, gt=0, description="Step size; unset: 1.0 for lbfgs, 0.02 for adam (pixels are in [0, 1])."
    )
    history_size: int = Field(
        50, gt=0, le=1000, description="L-BFGS memory: past steps kept (each costs two copies of the image)."
    )
    range_weight: float = Field(
        300.0,
        ge=0,
        description="L-BFGS keeps pixels in [0, 1] with a penalty: this weight times the mean squared excess"
        " (adam clamps after each step instead; the result is always clamped).",
    )
    init: str = Field(
        "noise", min_length=1, description="Start image: 'noise', 'content', or the path of an image file."
    )
    multi_scale: int = Field(
        1,
        ge=1,
        le=6,
        description="Number of scales: 3 runs at size/4, size/2 then size, each result upscaled to start the next.",
    )
    preserve_color: bool = Field(
        False, description="Keep the content image's colours: the result's luminance with the content's chrominance."
    )
    log_every: int = Field(
        50, gt=0, description="Log every loss by name (and check that the loss is finite) every this many steps."
    )
    frames_every: int = Field(0, ge=0, description="Save the current image every this many steps (0: never).")
    frames_dir: str | None = Field(
        None, description="Folder for frames; unset: '<output name>-frames' beside the output."
    )
    device: str = Field("auto", description="'auto' (CUDA, then MPS, when present), 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    seed: Seed = Field(
        0, description="Seed of the noise start image: same recipe and seed, same result (on CPU)."
    )
    threads: int | None = Field(None, gt=0, le=4096, description="CPU threads for torch (default: torch's choice).")

    _device = field_validator("device")(check_device)

    def default_size(self, accelerated: bool) -> int:
        """The longest side of the result: ``size``, else ``gpu_size`` or ``cpu_size``."""
        if self.size is not None:
            return self.size
        return self.gpu_size if accelerated else self.cpu_size

    def learning_rate(self) -> float:
        """``lr``, else the optimiser's default."""
        if self.lr is not None:
            return self.lr
        return 1.0 if self.optimizer == "lbfgs" else 0.02


STYLE = TaskSchema(
    name="style",
    doc="Neural style transfer: optimise an image so that its features match a content and a style image.",
    slots={
        "run": ModelSlot(StyleRunSettings, doc="Run settings."),
        "encoder": PartSlot("encoder", default="vgg19", doc="The feature extractor every loss reads."),
        "losses": PartListSlot("loss", role="image", doc="Image losses, summed with their weights."),
    },
)
