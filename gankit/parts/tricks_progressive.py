"""The ``progressive`` trick: grow the networks from a small resolution to the data's (Karras et al. 2018).

Training runs in stages, one per resolution from ``start_resolution`` up to
the data's, doubling each time. The first stage only stabilises; every later
stage first *fades in* its new block over ``fade_images`` images, ``alpha``
rising linearly from 0 to 1, then *stabilises* for ``stabilise_images``
images at ``alpha = 1``. The last stage goes on for as long as the run does.
Images seen are counted as ``step * batch_size``.

Conventions: the generator returns images at the current resolution and the
discriminator takes images at the current resolution; this trick serves real
images at that resolution, faded in the same way as generated ones (see
:func:`gankit.nn.progressive.fade_real`). It works with the ``progressive``
networks (any :class:`gankit.nn.progressive.GrowingNetwork`) and any loss,
regulariser and balance policy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from torch import Tensor

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.nn.progressive import BASE_RESOLUTION, fade_real, growing_networks
from gankit.registry import Params
from gankit.training.context import TrainingContext


class ProgressiveParams(Params):
    """Parameters of ``progressive``."""

    start_resolution: int = Field(
        default=4, ge=BASE_RESOLUTION, description="resolution of the first stage: a power of two, 4 or more"
    )
    fade_images: int = Field(
        default=600_000, ge=0, description="images over which each new resolution fades in (alpha from 0 to 1)"
    )
    stabilise_images: int = Field(
        default=600_000, ge=0, description="images trained at alpha = 1 after each fade-in (and in the first stage)"
    )
    reset_optimizer: bool = Field(
        default=False,
        description="clear both optimisers' state (Adam's moments) when a new resolution starts to fade in",
    )

    @field_validator("start_resolution")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"must be a power of two (4, 8, 16, ...), got {value}")
        return value

    @model_validator(mode="after")
    def _some_images_per_stage(self) -> Self:
        if self.fade_images + self.stabilise_images == 0:
            raise ValueError("fade_images and stabilise_images cannot both be 0")
        return self


@dataclass(frozen=True)
class Progress:
    """Where a progressive run stands after some number of images."""

    stage: int
    """0 for ``start_resolution``, one more for each doubling."""
    resolution: int
    alpha: float
    """Weight of the newest block: rises from 0 to 1 during a fade-in, 1 otherwise."""
    phase: Literal["fade", "stabilise"]


def progress_at(
    images: int, *, start_resolution: int, resolution: int, fade_images: int, stabilise_images: int
) -> Progress:
    """The stage, resolution and alpha after ``images`` images, growing from ``start_resolution`` to ``resolution``.

    Stage 0 lasts ``stabilise_images``; each later stage lasts
    ``fade_images + stabilise_images``, of which the first ``fade_images``
    are its fade-in, with ``alpha = images into the fade-in / fade_images``.
    The last stage never ends.
    """
    last = resolution.bit_length() - start_resolution.bit_length()
    if last < 0:
        raise GankitError(f"start_resolution {start_resolution} is above the data's resolution {resolution}")
    period = fade_images + stabilise_images
    if last == 0 or images < stabilise_images:
        return Progress(0, start_resolution, 1.0, "stabilise")
    stage, into = divmod(images - stabilise_images, period)
    stage += 1
    if stage > last:
        return Progress(last, resolution, 1.0, "stabilise")
    size = start_resolution << stage
    if into < fade_images:
        return Progress(stage, size, into / fade_images, "fade")
    return Progress(stage, size, 1.0, "stabilise")


class ProgressiveTrick:
    """Progressive growing: stage and fade-in alpha from the images seen; real images served at the current size.

    At every step it sets the resolution and ``alpha`` on every growing
    network of the run (generator, discriminator, and the sampling generator
    such as an EMA copy), and blends real batches down to that resolution:
    ``(1 - alpha) * upsample2(downsample2(x_r)) + alpha * x_r`` with ``x_r`` the
    batch averaged down to the current resolution ``r``.

    The networks hold every block from the start, so the optimisers own every
    parameter from step 0; parameters of blocks not in use get no gradient
    (``None``, since the trainer zeroes gradients with ``set_to_none``) and
    Adam, AdamW, SGD and RMSprop skip them: a block's optimiser state begins
    when the block appears. ``reset_optimizer`` clears all optimiser state at
    the start of each fade-in instead.

    Its state (stage, resolution, alpha, images seen) is saved in checkpoints
    and the networks carry theirs in their buffers, so a run resumed in the
    middle of a fade-in goes on exactly as it would have.
    """

    def __init__(self, params: ProgressiveParams, **context: Any) -> None:
        self.params = params
        self.resolution_target: int | None = None
        self.progress = Progress(0, params.start_resolution, 1.0, "stabilise")
        self.images = 0
        self._ctx: TrainingContext | None = None

    def setup(self, ctx: TrainingContext) -> None:
        """Check that the run has growing networks at the data's resolution, and start at stage 0."""
        shape = ctx.data_shape
        if len(shape) != 3 or shape[1] != shape[2]:
            raise GankitError(f"the 'progressive' trick needs square images, got a sample shape {shape}")
        target = int(shape[-1])
        if self.params.start_resolution > target:
            raise GankitError(
                f"progressive.start_resolution = {self.params.start_resolution} is above the data's resolution "
                f"{target}; use {target} or less"
            )
        for slot, module in (("generator", ctx.generator), ("discriminator", ctx.discriminator)):
            found = growing_networks(module)
            if not found:
                raise GankitError(
                    f"the 'progressive' trick needs a growing {slot}: set [{slot}] type = \"progressive\""
                )
            for network in found:
                if network.resolution != target:
                    raise GankitError(
                        f"the {slot} grows to {network.resolution}x{network.resolution} "
                        f"but the data is {target}x{target}"
                    )
        self.resolution_target = target
        self._ctx = ctx
        self._move_to(ctx, ctx.step)

    def schedule(self, images: int) -> Progress:
        """Where this run stands after ``images`` images (needs :meth:`setup`, which reads the data's resolution)."""
        if self.resolution_target is None:
            raise GankitError("the 'progressive' trick is not set up: the trainer calls setup(trainer) first")
        p = self.params
        return progress_at(
            images,
            start_resolution=p.start_resolution,
            resolution=self.resolution_target,
            fade_images=p.fade_images,
            stabilise_images=p.stabilise_images,
        )

    def before_step(self, ctx: TrainingContext) -> None:
        """Move every growing network to the stage and alpha of the images seen before this step."""
        self._move_to(ctx, ctx.step)

    def _move_to(self, ctx: TrainingContext, step: int) -> None:
        images = step * ctx.batch_size
        progress = self.schedule(images)
        if self.params.reset_optimizer and progress.stage > self.progress.stage:
            for optimizer in ctx.optimizers.values():
                optimizer.state.clear()
        self.progress = progress
        self.images = images
        self._apply(ctx)

    def _apply(self, ctx: TrainingContext) -> None:
        modules = growing_networks(ctx.generator, ctx.discriminator, ctx.sampling_generator())
        for network in modules:
            network.set_progress(self.progress.resolution, self.progress.alpha)

    def real_batch(self, ctx: TrainingContext, x: Tensor) -> Tensor:
        """The real batch at the current resolution, faded in like the generator's output."""
        return fade_real(x, self.progress.resolution, self.progress.alpha)

    def log(self, ctx: TrainingContext) -> dict[str, Any]:
        """The resolution and alpha of the last step, for metrics.jsonl."""
        return {"resolution": self.progress.resolution, "alpha": round(self.progress.alpha, 6)}

    def state_dict(self) -> dict[str, Any]:
        """Stage, resolution, alpha, phase and images seen."""
        return {**asdict(self.progress), "images": self.images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state and put every growing network at its stage and alpha."""
        self.progress = Progress(
            int(state["stage"]), int(state["resolution"]), float(state["alpha"]), state.get("phase", "stabilise")
        )
        self.images = int(state["images"])
        if self._ctx is not None:
            self._apply(self._ctx)


def register(register: Register) -> None:
    """Register the ``progressive`` trick."""
    register("trick", "progressive", ProgressiveTrick, ProgressiveParams)
