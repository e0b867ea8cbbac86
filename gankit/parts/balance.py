"""Balance policies: which network trains at each step, how often, and why.

The seed lesson's remedies for an unbalanced game: train the discriminator
several times per generator step (``n-critic``), skip its update while it is
winning too easily (``discriminator-skip``), or let the weaker network train
more (``adaptive``). Every decision carries a reason, logged in metrics.jsonl.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from gankit.hookspecs import Register
from gankit.protocols import Decision
from gankit.registry import NoParams, Params


class AlwaysPolicy:
    """One discriminator step, then one generator step, every step."""

    needs_losses = False

    def __init__(self, params: NoParams, **context: Any) -> None:
        self.decision = Decision(1, 1, "always")

    def decide(self, step: int) -> Decision:
        return self.decision

    def observe(self, step: int, d_loss: float | None, g_loss: float | None) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class NCriticParams(Params):
    """Parameters of ``n-critic``."""

    n: int = Field(5, ge=1, le=100, description="Discriminator steps per generator step (WGAN uses 5).")


class NCriticPolicy(AlwaysPolicy):
    """``n`` discriminator steps per generator step (WGAN's critic iterations)."""

    def __init__(self, params: NCriticParams, **context: Any) -> None:
        self.decision = Decision(params.n, 1, f"n-critic {params.n}")


class SkipParams(Params):
    """Parameters of ``discriminator-skip``."""

    threshold: float = Field(
        0.3, gt=0, description="Skip the discriminator's update while its loss is below this value."
    )
    max_consecutive: int = Field(
        50, ge=1, description="Never skip more than this many steps in a row (the discriminator must keep up)."
    )


class DiscriminatorSkipPolicy:
    """Skip the discriminator's update while its loss is below a threshold; count and log every skip."""

    needs_losses = True

    def __init__(self, params: SkipParams, **context: Any) -> None:
        self.params = params
        self.last_d_loss: float | None = None
        self.skips = 0
        self.consecutive = 0

    def decide(self, step: int) -> Decision:
        loss = self.last_d_loss
        if loss is not None and loss < self.params.threshold and self.consecutive < self.params.max_consecutive:
            self.skips += 1
            self.consecutive += 1
            return Decision(0, 1, f"skip: discriminator loss {loss:.4g} < {self.params.threshold:g}")
        self.consecutive = 0
        return Decision(1, 1, "train")

    def observe(self, step: int, d_loss: float | None, g_loss: float | None) -> None:
        if d_loss is not None:
            self.last_d_loss = d_loss

    def state_dict(self) -> dict[str, Any]:
        return {"last_d_loss": self.last_d_loss, "skips": self.skips, "consecutive": self.consecutive}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_d_loss = state.get("last_d_loss")
        self.skips = int(state.get("skips", 0))
        self.consecutive = int(state.get("consecutive", 0))


class AdaptiveParams(Params):
    """Parameters of ``adaptive``."""

    ratio: float = Field(
        1.5, gt=1, description="A network is 'weaker' when its loss exceeds the other's by this ratio."
    )
    max_steps: int = Field(3, ge=1, le=20, description="At most this many steps for the weaker network.")
    smoothing: float = Field(0.9, ge=0, lt=1, description="Exponential smoothing of the losses compared.")


class AdaptivePolicy:
    """Train the weaker network more, judged by the ratio of smoothed losses.

    Meaningful for losses that stay positive (bce, non-saturating, lsgan); when
    a loss is not positive it trains both networks once and says so.
    """

    needs_losses = True

    def __init__(self, params: AdaptiveParams, **context: Any) -> None:
        self.params = params
        self.d_loss: float | None = None
        self.g_loss: float | None = None

    def decide(self, step: int) -> Decision:
        d, g = self.d_loss, self.g_loss
        if d is None or g is None:
            return Decision(1, 1, "warming up")
        if d <= 0 or g <= 0:
            return Decision(1, 1, "losses not positive: 1:1")
        ratio = self.params.ratio
        if g / d > ratio:
            extra = min(self.params.max_steps, max(2, math.floor(g / d / ratio) + 1))
            return Decision(1, extra, f"generator weaker (G/D loss {g / d:.3g}): {extra} generator steps")
        if d / g > ratio:
            extra = min(self.params.max_steps, max(2, math.floor(d / g / ratio) + 1))
            return Decision(extra, 1, f"discriminator weaker (D/G loss {d / g:.3g}): {extra} discriminator steps")
        return Decision(1, 1, "balanced")

    def observe(self, step: int, d_loss: float | None, g_loss: float | None) -> None:
        a = self.params.smoothing
        if d_loss is not None and math.isfinite(d_loss):
            self.d_loss = d_loss if self.d_loss is None else a * self.d_loss + (1 - a) * d_loss
        if g_loss is not None and math.isfinite(g_loss):
            self.g_loss = g_loss if self.g_loss is None else a * self.g_loss + (1 - a) * g_loss

    def state_dict(self) -> dict[str, Any]:
        return {"d_loss": self.d_loss, "g_loss": self.g_loss}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.d_loss = state.get("d_loss")
        self.g_loss = state.get("g_loss")


def register(register: Register) -> None:
    """Register the built-in balance policies."""
    register("balance", "always", AlwaysPolicy)
    register("balance", "n-critic", NCriticPolicy, NCriticParams)
    register("balance", "discriminator-skip", DiscriminatorSkipPolicy, SkipParams)
    register("balance", "adaptive", AdaptivePolicy, AdaptiveParams)
