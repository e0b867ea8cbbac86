"""The ``ada`` trick: adaptive discriminator augmentation (Karras et al. 2020, "Training GANs with limited data")."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.nn.augment import Augment
from gankit.registry import Params
from gankit.training.context import TrainingContext

GroupName = Literal["blit", "geom", "color", "noise", "cutout"]
_PAPER_GROUPS: tuple[GroupName, ...] = ("blit", "geom", "color")


class AdaParams(Params):
    """Parameters of ``ada``."""

    target: float = Field(
        default=0.6, gt=0.0, lt=1.0,
        description="the overfitting heuristic r_t = E[sign(D(real))] that p is adjusted towards (paper: 0.6)",
    )
    interval: int = Field(default=4, ge=1, description="adjust p every this many steps (paper: 4)")
    speed_images: int = Field(
        default=500_000, ge=1, description="images it takes p to move by 1 at the most (paper: 500,000)"
    )
    p: float = Field(default=0.0, ge=0.0, le=1.0, description="initial augmentation probability")
    adaptive: bool = Field(default=True, description="adjust p from r_t; false keeps p fixed")
    augment: list[GroupName] = Field(
        default_factory=lambda: list(_PAPER_GROUPS), min_length=1,
        description="augmentation groups: blit (flips, 90-degree turns, integer shifts), geom (scaling, rotation, "
        "fractional shifts), color (brightness, contrast, luma flip, hue, saturation), noise, cutout "
        "(paper's default: blit, geom, color)",
    )


class AdaTrick:
    """Adaptive discriminator augmentation: what the discriminator sees is augmented, more when it overfits.

    Every image the discriminator sees, real or generated, in every phase, goes
    through the differentiable pipeline of :mod:`gankit.nn.augment`, each
    augmentation applied with probability ``p``. With few training images the
    discriminator overfits: it grows sure that every real image is real. ADA
    measures that with ``r_t = E[sign(D(real))]`` (the fraction of real images
    judged real, rescaled to [-1, 1]) over the last ``interval`` steps, on every
    process, and moves ``p`` up when ``r_t`` is above ``target`` and down when
    below, by ``batch * interval / speed_images`` per adjustment (so ``p`` can go
    from 0 to 1 in ``speed_images`` images), kept within [0, 1]. Augmenting more
    makes the discriminator's task harder and ``r_t`` falls back.

    The heuristic needs logits whose sign says real or generated (the
    ``non-saturating``, ``bce``, ``hinge`` losses...). Relativistic losses
    (``rpgan``, ``ragan``) only compare real with generated logits, whose
    sign then means nothing: use ``adaptive = false`` and a fixed ``p`` with
    them, as R3GAN does.

    ``p`` and ``r_t`` are logged in metrics.jsonl (``ada_p``, ``ada_rt``); ``p``
    and the partial sums of the current interval are saved in checkpoints, so a
    resumed run continues exactly. With ``adaptive = false``, ``p`` stays at
    its initial value (fixed augmentation).
    """

    def __init__(self, params: AdaParams, **context: Any) -> None:
        self.params = params
        self.pipeline = Augment(list(dict.fromkeys(params.augment)))
        self.p = float(params.p)
        self.rt: float | None = None
        self._signs: Tensor = torch.zeros((), dtype=torch.float32)
        self._count: Tensor = torch.zeros((), dtype=torch.float32)

    def setup(self, ctx: TrainingContext) -> None:
        """Check that the run trains on images the pipeline can augment."""
        shape = ctx.data_shape
        if len(shape) != 3:
            raise GankitError(f"the 'ada' trick augments images (C, H, W), but the data's samples have shape {shape}")
        if "color" in self.params.augment and shape[0] not in (1, 3):
            raise GankitError(
                f"the 'ada' trick's color group takes grey or RGB images, got {shape[0]} channels; "
                "leave 'color' out of ada.augment"
            )
        self._signs = self._signs.to(ctx.device)
        self._count = self._count.to(ctx.device)

    def discriminator_input(self, ctx: TrainingContext, x: Any) -> Any:
        """The batch, augmented with probability ``p``."""
        if not isinstance(x, Tensor):
            raise GankitError(
                "the 'ada' trick augments one image batch per discriminator input; multi-scale networks "
                "(a list of batches) are not supported"
            )
        return self.pipeline(x, self.p)

    def after_discriminator_step(self, ctx: TrainingContext) -> None:
        """Add the step's real logits to ``r_t``; every ``interval`` steps, move ``p``."""
        if not self.params.adaptive:
            return
        logits = ctx.real_logits
        if logits is not None:
            self._signs += logits.detach().sign().sum().to(self._signs.dtype)
            self._count += logits.numel()
        if (ctx.step + 1) % self.params.interval:
            return
        signs, count = ctx.all_reduce(torch.stack([self._signs, self._count]), "sum").tolist()
        self._signs.zero_()
        self._count.zero_()
        if count <= 0:
            return
        self.rt = signs / count
        images = ctx.batch_size * ctx.world_size * self.params.interval
        step = math.copysign(1.0, self.rt - self.params.target) if self.rt != self.params.target else 0.0
        self.p = min(1.0, max(0.0, self.p + step * images / self.params.speed_images))

    def log(self, ctx: TrainingContext) -> dict[str, Any]:
        """``ada_p`` (and ``ada_rt``, the last heuristic value, once measured)."""
        record: dict[str, Any] = {"ada_p": self.p}
        if self.rt is not None:
            record["ada_rt"] = self.rt
        return record

    def state_dict(self) -> dict[str, Any]:
        """``p``, the last ``r_t`` and the sums of the interval in progress."""
        return {"p": self.p, "rt": self.rt, "signs": self._signs.clone(), "count": self._count.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``p`` and the interval's sums."""
        self.p = float(state["p"])
        self.rt = None if state.get("rt") is None else float(state["rt"])
        self._signs = state["signs"].to(self._signs.device, torch.float32).clone()
        self._count = state["count"].to(self._count.device, torch.float32).clone()


def register(register: Register) -> None:
    """Register the ``ada`` trick."""
    register("trick", "ada", AdaTrick, AdaParams)
