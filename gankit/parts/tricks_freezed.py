"""The ``freeze-d`` trick: fine-tune with the discriminator's first blocks frozen (FreezeD, Mo et al. 2020).

When a trained GAN is fine-tuned on a small new data set (``[run] init_from``),
the discriminator's lower layers, which see the image's edges and textures,
already know what they need; freezing them and training only the upper ones
keeps the discriminator from overfitting the few new images. Mo et al.
(2020) found it a simple and strong baseline for transfer learning.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from torch import nn

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.registry import Params
from gankit.training.context import TrainingContext


class FreezeDParams(Params):
    """Parameters of ``freeze-d``."""

    blocks: int = Field(
        1, ge=1, le=64, description="how many of the discriminator's first blocks (from the image) to freeze"
    )


def discriminator_blocks(discriminator: nn.Module) -> list[list[nn.Parameter]]:
    """The discriminator's parameters block by block, the block that reads the image first.

    A discriminator that has ``input_blocks()`` says what its blocks are.
    Otherwise every layer with a weight of two or more dimensions (a
    convolution, a linear layer) starts a block, in the order the layers were
    registered, and the layers between two such (normalisations) belong to
    the block before them: right for the ``mlp`` and ``dcgan`` discriminators.
    """
    blocks_method = getattr(discriminator, "input_blocks", None)
    if callable(blocks_method):
        return [list(block.parameters()) for block in blocks_method()]
    blocks: list[list[nn.Parameter]] = []
    owner_of: dict[str, list[nn.Parameter]] = {}
    for name, parameter in discriminator.named_parameters():
        owner = name.split(".parametrizations.")[0] if ".parametrizations." in name else name.rpartition(".")[0]
        owner_of.setdefault(owner, []).append(parameter)
    for parameters in owner_of.values():
        if any(p.dim() >= 2 for p in parameters) or not blocks:
            blocks.append(list(parameters))
        else:
            blocks[-1].extend(parameters)
    return blocks


class FreezeD:
    """Freezes the discriminator's first ``blocks`` blocks: their parameters get no gradient and never change.

    The frozen parameters stay in the optimiser, which skips them (they have
    no gradient). The last block, which gives the logit, is never frozen.
    Works with one training process (several would need DistributedDataParallel
    to know about the frozen parameters before it is built).
    """

    def __init__(self, params: FreezeDParams, **context: Any) -> None:
        self.params = params
        self.frozen = 0

    def setup(self, ctx: TrainingContext) -> None:
        """Turn off the gradients of the first blocks of the discriminator."""
        if ctx.world_size > 1:
            raise GankitError("the 'freeze-d' trick works with one training process; run it without torchrun")
        blocks = discriminator_blocks(ctx.discriminator)
        if self.params.blocks >= len(blocks):
            raise GankitError(
                f"freeze-d.blocks = {self.params.blocks}, but the discriminator has {len(blocks)} blocks and the "
                f"last one gives the logit: freeze at most {len(blocks) - 1}"
            )
        for block in blocks[: self.params.blocks]:
            for parameter in block:
                parameter.requires_grad_(False)
        self.frozen = sum(p.numel() for block in blocks[: self.params.blocks] for p in block)


def register(register: Register) -> None:
    """Register the ``freeze-d`` trick."""
    register("trick", "freeze-d", FreezeD, FreezeDParams)
