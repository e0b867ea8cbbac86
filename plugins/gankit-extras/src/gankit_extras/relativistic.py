"""``extras.rcgan``: the relativistic centered GAN loss (Jolicoeur-Martineau 2018, appendix)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from gankit import Params
from pydantic import Field
from torch import Tensor


class CenteredParams(Params):
    """Parameters of ``extras.rcgan``."""

    weight: float = Field(1.0, ge=0, description="multiplies both networks' losses")


class RelativisticCentered:
    """Relativistic centered GAN loss: how far is a sample from the centre of *all* the logits?

    With ``c`` the mean of the real and the generated logits together, the
    discriminator minimises ``mean(softplus(-(real - c))) + mean(softplus(fake - c))``
    and the generator the same with the roles swapped. Its generator loss
    depends on the real logits: ``needs_real_logits`` asks gankit for fresh ones
    in the generator phase.
    """

    needs_real_logits = True

    def __init__(self, params: CenteredParams, **context: Any) -> None:
        self.weight = float(params.weight)

    def _game(self, winner: Tensor, loser: Tensor) -> Tensor:
        centre = (winner.float().sum() + loser.float().sum()) / (winner.numel() + loser.numel())
        return self.weight * (F.softplus(centre - winner.float()).mean() + F.softplus(loser.float() - centre).mean())

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Real logits above the centre, generated ones below."""
        return self._game(real_logits, fake_logits)

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """Generated logits above the centre, real ones below."""
        if real_logits is None:
            raise ValueError("extras.rcgan needs the real logits in the generator phase")
        return self._game(fake_logits, real_logits)
