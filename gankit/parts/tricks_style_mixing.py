"""The ``style-mixing`` trick: mixing regularisation (Karras et al. 2019, StyleGAN; kept in StyleGAN2)."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.registry import Params
from gankit.training.context import TrainingContext


class StyleMixingParams(Params):
    """Parameters of ``style-mixing``."""

    probability: float = Field(
        default=0.9, ge=0.0, le=1.0, description="chance that a training batch mixes two latents (StyleGAN2: 0.9)"
    )


class StyleMixingTrick:
    """Mixing regularisation: a random cut in the per-layer latents, after which a second latent's styles rule.

    With probability ``probability``, a training batch's per-layer latents
    ``w`` (the mapping network's output, ``(N, num_ws, w_dim)``) are cut at a
    random layer: the layers from the cut on take the ``w`` of a second, fresh
    latent batch (with the same labels). The generator cannot then rely on
    neighbouring layers' styles being correlated, which localises what each
    style controls. It applies in every training call of the generator (both
    phases and the path-length regulariser), never when sampling (the generator
    is then in evaluation mode).

    It works with any generator whose ``mapping`` is an ``nn.Module`` returning
    per-layer latents ``(N, num_ws, w_dim)`` with ``num_ws >= 2`` (the
    ``stylegan2`` generator, or a plugin's), through a forward hook on that
    module: the mixing happens inside the generator's forward pass, so it works
    under DistributedDataParallel and whichever part calls the mapping network.
    The second pass leaves the mapping network's buffers (the tracked ``w_avg``)
    as they were, as in the reference implementation. Random draws use torch's
    global generator, which checkpoints save.
    """

    def __init__(self, params: StyleMixingParams, **context: Any) -> None:
        self.params = params
        self.probability = float(params.probability)
        self.mapping: nn.Module | None = None
        self._mixing = False
        self._handle: Any = None

    def setup(self, ctx: TrainingContext) -> None:
        """Hook into the generator's mapping network."""
        generator = ctx.generator
        mapping = getattr(generator, "mapping", None)
        num_ws = int(getattr(generator, "num_ws", 0) or 0)
        if not isinstance(mapping, nn.Module) or not callable(getattr(generator, "synthesis", None)):
            raise GankitError(
                "the 'style-mixing' trick needs a generator with a mapping network (mapping and synthesis, as "
                f"'stylegan2' has); {type(generator).__name__} has none: remove the trick"
            )
        if num_ws < 2:
            raise GankitError(
                f"the 'style-mixing' trick needs per-layer latents (num_ws >= 2); {type(generator).__name__} has "
                f"num_ws = {num_ws}"
            )
        if self._handle is not None:
            self._handle.remove()
        self.mapping = mapping
        trick = self

        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Tensor) -> Tensor:
            # A plain closure (not a bound method), so that copies of the generator (an EMA) do not copy the trick.
            return trick._mix(module, args, kwargs, output)

        self._handle = mapping.register_forward_hook(hook, with_kwargs=True)

    def _mix(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Tensor) -> Tensor:
        if module is not self.mapping or self._mixing or not module.training or self.probability <= 0.0:
            return output
        if output.dim() != 3 or output.shape[1] < 2:
            raise GankitError(
                f"the 'style-mixing' trick needs per-layer latents (N, num_ws, w_dim) from the mapping network, "
                f"got {tuple(output.shape)}"
            )
        if float(torch.rand(())) >= self.probability:
            return output
        num_ws = output.shape[1]
        cutoff = int(torch.randint(1, num_ws, ()))
        z = args[0] if args else kwargs["z"]
        rest = args[1:]
        saved = [b.detach().clone() for b in module.buffers()]
        self._mixing = True
        try:
            other = module(torch.randn_like(z), *rest, **{k: v for k, v in kwargs.items() if k != "z"})
        finally:
            self._mixing = False
            with torch.no_grad():
                for buffer, value in zip(module.buffers(), saved, strict=True):
                    buffer.copy_(value)
        return torch.cat([output[:, :cutoff], other[:, cutoff:]], dim=1)


def register(register: Register) -> None:
    """Register the ``style-mixing`` trick."""
    register("trick", "style-mixing", StyleMixingTrick, StyleMixingParams)
