"""Feed-forward stylizers (kind ``stylizer``): networks trained once per style, applied in one pass.

The network is defined in :mod:`gankit.style.stylizer` (loaded when built, so
listing parts does not import torch); a ``fast-style`` recipe trains it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gankit.hookspecs import Register
from gankit.registry import Params


class JohnsonParams(Params):
    """Parameters of the ``johnson`` stylizer."""

    channels: int = Field(
        32, ge=4, le=256,
        description="Width of the first layer; the network works at 1, 2 and 4 times it (Johnson et al.: 32).",
    )
    residual_blocks: int = Field(5, ge=0, le=16, description="Residual blocks at the lowest resolution (Johnson: 5).")


def johnson_stylizer(params: JohnsonParams, **context: Any) -> Any:
    """Johnson et al.'s image transformation network with instance normalisation (Ulyanov et al.).

    Two stride-2 convolutions down, ``residual_blocks`` residual blocks,
    nearest-neighbour upsampling and convolutions back up; RGB in [0, 1] of any
    size in, the same size out. About ``1.7 M`` parameters at the default width
    (32) and 5 blocks; ``channels = 16`` with 3 blocks is 16 times cheaper
    and is what the CPU recipe uses.
    """
    from gankit.style.stylizer import TransformerNet

    return TransformerNet(channels=params.channels, residual_blocks=params.residual_blocks)


def register(register: Register) -> None:
    """Register the stylizers."""
    register("stylizer", "johnson", johnson_stylizer, JohnsonParams)
