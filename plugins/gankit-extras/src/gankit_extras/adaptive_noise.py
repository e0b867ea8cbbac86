"""``extras.adaptive-noise``: instance noise whose strength follows how much the discriminator overfits."""

from __future__ import annotations

from typing import Any

import torch
from gankit import Params
from gankit.training.context import TrainingContext
from pydantic import Field
from torch import Tensor


class AdaptiveNoiseParams(Params):
    """Parameters of ``extras.adaptive-noise``."""

    target: float = Field(0.6, ge=0, le=1, description="the overfitting heuristic r_t = E[sign(D(real))] aimed at")
    speed: float = Field(0.01, gt=0, le=1, description="how much the noise std moves per adjustment")
    interval: int = Field(4, ge=1, description="adjust the std every this many steps")
    max_std: float = Field(1.0, gt=0, description="the largest noise std")


class AdaptiveNoise:
    """Gaussian instance noise on every batch entering the discriminator, adapted like ADA's probability.

    Every ``interval`` steps the trick reads the discriminator's logits on
    real data from the context, computes ``r_t = E[sign(D(real))]`` (1 when
    the discriminator is certain of every real sample: overfitting), and
    raises the noise's std by ``speed`` when ``r_t`` is above ``target``,
    lowers it otherwise (within ``[0, max_std]``). The std is logged
    (``noise_std``) and saved in checkpoints, so a resumed run goes on exactly.
    Noise is drawn from torch's global generator, which gankit seeds and saves.
    """

    def __init__(self, params: AdaptiveNoiseParams, **context: Any) -> None:
        self.params = params
        self.std = 0.0
        self._signs: list[Tensor] = []

    def discriminator_input(self, ctx: TrainingContext, x: Any) -> Any:
        """``x`` plus Gaussian noise of the current std (every scale of a multi-scale batch)."""
        if self.std == 0.0:
            return x
        if isinstance(x, list | tuple):
            return [t + self.std * torch.randn_like(t) for t in x]
        return x + self.std * torch.randn_like(x)

    def after_discriminator_step(self, ctx: TrainingContext) -> None:
        """Collect sign(D(real)); every ``interval`` steps, move the std towards the target."""
        if ctx.real_logits is not None:
            self._signs.append(ctx.real_logits.sign().mean())
        if (ctx.step + 1) % self.params.interval or not self._signs:
            return
        overfit = float(ctx.all_reduce(torch.stack(self._signs).mean(), "avg"))
        self._signs.clear()
        step = self.params.speed if overfit > self.params.target else -self.params.speed
        self.std = min(self.params.max_std, max(0.0, self.std + step))

    def log(self, ctx: TrainingContext) -> dict[str, float]:
        """The current noise std."""
        return {"noise_std": self.std}

    def state_dict(self) -> dict[str, Any]:
        """The std and the signs collected since the last adjustment."""
        return {"std": self.std, "signs": [float(s) for s in self._signs]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the std and the collected signs."""
        self.std = float(state["std"])
        self._signs = [torch.tensor(s) for s in state.get("signs", [])]
