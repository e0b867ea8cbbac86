"""``extras.mode-seeking``: the mode-seeking regulariser on the generator (Mao et al. 2019, MSGAN)."""

from __future__ import annotations

from typing import Any

import torch
from gankit import Params
from pydantic import Field
from torch import Tensor


class ModeSeekingParams(Params):
    """Parameters of ``extras.mode-seeking``."""

    weight: float = Field(1.0, ge=0, description="multiplies the penalty")
    every: int = Field(1, ge=1, description="apply every this many generator steps, scaled by it (lazy)")
    eps: float = Field(1e-5, gt=0, description="keeps the penalty finite when two samples coincide")


class ModeSeeking:
    """Mode-seeking regulariser: two latents far apart must give samples far apart.

    The latent batch is split in halves ``z1``, ``z2``; with samples
    ``G(z1)``, ``G(z2)`` the ratio ``r = mean|G(z1) - G(z2)| / mean|z1 - z2|``
    should be large, so the penalty is ``1 / (r + eps)``: minimising it
    spreads the generator's samples out and counters mode collapse.
    ``network = "generator"`` puts it on the generator's side of the game.
    """

    network = "generator"

    def __init__(self, params: ModeSeekingParams, **context: Any) -> None:
        self.weight = float(params.weight)
        self.every = int(params.every)
        self.eps = float(params.eps)

    def penalty(self, generator: Any, latents: Tensor, **context: Any) -> Tensor:
        """``1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + eps)`` over the two halves of ``latents``."""
        half = latents.shape[0] // 2
        if half == 0:
            raise ValueError("extras.mode-seeking needs a batch of at least 2 latents")
        z1, z2 = latents[:half], latents[half : 2 * half]
        labels = context.get("labels")
        both = torch.cat([z1, z2])
        pair_labels = None if labels is None else torch.cat([labels[:half], labels[:half]])
        samples = generator(both) if pair_labels is None else generator(both, pair_labels)
        if isinstance(samples, list | tuple):
            samples = samples[-1]
        a, b = samples[:half].float(), samples[half:].float()
        ratio = (a - b).abs().mean() / (z1 - z2).abs().mean()
        return 1.0 / (ratio + self.eps)
