"""``progressive`` generator and discriminator: networks that grow from 4x4 to full resolution (Karras et al. 2018).

Both networks are built whole, every block from 4x4 up to the data's
resolution, and work at the resolution the ``progressive`` trick sets: the
generator returns images at the **current** resolution and the discriminator
takes images at the current resolution. Blocks above it are not used, so their
parameters get no gradient and the optimiser leaves them alone until they
appear (see :mod:`gankit.parts.tricks_progressive`). Without the trick both
networks stay at full resolution.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, model_validator
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.nn.layers import square_power_of_two
from gankit.nn.progressive import (
    BASE_RESOLUTION,
    DiscriminatorBlock,
    DiscriminatorHead,
    FromImage,
    GrowingNetwork,
    channels_at,
    downsample2,
    fade,
    generator_layers,
    upsample2,
)
from gankit.registry import MAX_WIDTH, Params


class NetworkWidthParams(Params):
    """Channel widths and the equalised learning rate, shared by the growing and multi-scale networks."""

    width: int = Field(
        default=64, ge=1, le=MAX_WIDTH,
        description="channels at the full resolution; each halving of resolution doubles them",
    )
    max_width: int = Field(default=512, ge=1, le=MAX_WIDTH, description="cap on the channels at any resolution")
    equalized_lr: bool = Field(
        default=True,
        description="equalised learning rate: N(0, 1) weights scaled by He's constant at run time; "
        "false: He's constant folded into the initial weights",
    )

    @model_validator(mode="after")
    def _width_within_cap(self) -> Self:
        if self.max_width < self.width:
            raise ValueError(f"max_width ({self.max_width}) must be at least width ({self.width})")
        return self


class ProgressiveGeneratorParams(NetworkWidthParams):
    """Parameters of the ``progressive`` generator."""

    latent_dim: int = Field(default=128, ge=1, le=MAX_WIDTH, description="size of the latent vector z")
    pixel_norm: bool = Field(
        default=True, description="normalise z and every pixel's feature vector after each convolution"
    )


class ProgressiveDiscriminatorParams(NetworkWidthParams):
    """Parameters of the ``progressive`` discriminator."""

    minibatch_std: bool = Field(
        default=True, description="append the minibatch standard deviation as a channel before the last block"
    )
    minibatch_std_group: int = Field(
        default=4, ge=1, description="samples per minibatch-stddev group (shrinks to a divisor of the batch size)"
    )


class ProgressiveGenerator(GrowingNetwork):
    """Progressive-growing generator: z → 4x4 → doubling blocks → image at the current resolution.

    A pixel-normalised latent goes through a dense layer to a 4x4 map and a
    3x3 convolution; each block doubles the resolution (nearest-neighbour
    upsampling, two 3x3 convolutions, LeakyReLU 0.2, pixel norm). Every
    resolution has its own 1x1 to-image convolution with tanh. While the newest
    block fades in, the output is
    ``(1 - alpha) * upsample2(image_{r/2}) + alpha * image_r``. Square
    power-of-two resolutions from 8 up.
    """

    latent_dim: int

    def __init__(self, params: ProgressiveGeneratorParams, *, shape: Any = None, **context: Any) -> None:
        channels, resolution = square_power_of_two(shape, "generator 'progressive'")
        super().__init__(resolution)
        self.shape = (channels, resolution, resolution)
        self.latent_dim = params.latent_dim
        self.stem, self.blocks, self.to_image = generator_layers(
            params.latent_dim, channels, self.levels, width=params.width, max_width=params.max_width,
            pixel_norm=params.pixel_norm, equalized=params.equalized_lr,
        )

    def forward(self, z: Tensor) -> Tensor:
        """Latents ``(N, latent_dim)`` → images ``(N, C, r, r)`` in [-1, 1] at the current resolution ``r``."""
        x = self.stem(z)
        level = self.level
        if level == 0:
            out: Tensor = self.to_image[0](x)
            return out
        for block in self.blocks[: level - 1]:
            x = block(x)
        new = self.to_image[level](self.blocks[level - 1](x))
        if not self.fading:
            return new
        return fade(upsample2(self.to_image[level - 1](x)), new, self.alpha)


class ProgressiveDiscriminator(GrowingNetwork):
    """Progressive-growing discriminator: image at the current resolution → halving blocks → 4x4 → one logit.

    Every resolution has its own 1x1 from-image convolution; each block has
    two 3x3 convolutions with LeakyReLU 0.2 and 2x2 average pooling; the 4x4
    head appends the minibatch standard deviation, then a 3x3 and a 4x4
    convolution and a linear logit. No normalisation layers. While the newest
    block fades in, its output is blended with the from-image features of the
    2x2-averaged input: ``(1 - alpha) * from_image_{r/2}(downsample2(x)) +
    alpha * block_r(from_image_r(x))``. Images must come at the current
    resolution (the ``progressive`` trick serves real ones that way).
    """

    def __init__(self, params: ProgressiveDiscriminatorParams, *, shape: Any = None, **context: Any) -> None:
        channels, resolution = square_power_of_two(shape, "discriminator 'progressive'")
        super().__init__(resolution)
        self.shape = (channels, resolution, resolution)
        eq = params.equalized_lr
        widths = [channels_at(level, self.levels, params.width, params.max_width) for level in range(self.levels + 1)]
        self.from_image = nn.ModuleList(FromImage(channels, w, equalized=eq) for w in widths)
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(widths[i + 1], widths[i + 1], widths[i], equalized=eq) for i in range(self.levels)
        )
        group = params.minibatch_std_group if params.minibatch_std else None
        self.head = DiscriminatorHead(widths[0], widths[0], minibatch_group=group, equalized=eq)

    def input_blocks(self) -> list[nn.Module]:
        """Blocks from the full-resolution image on (for ``freeze-d``): from-image with the top block, ..., the head."""
        if self.levels == 0:
            return [self.from_image[0], self.head]
        first = nn.ModuleList([self.from_image[self.levels], self.blocks[self.levels - 1]])
        return [first, *(self.blocks[i] for i in range(self.levels - 2, -1, -1)), self.head]

    def forward(self, x: Tensor) -> Tensor:
        """Images ``(N, C, r, r)`` at the current resolution ``r`` → logits ``(N,)``."""
        level = self.level
        size = BASE_RESOLUTION << level
        if x.dim() != 4 or x.shape[-1] != size or x.shape[-2] != size:
            raise GankitError(
                f"the 'progressive' discriminator works at {size}x{size} now but got a batch of shape "
                f"{tuple(x.shape)}; real images reach it at the current resolution through the 'progressive' trick"
            )
        h = self.from_image[level](x)
        if level > 0:
            h = self.blocks[level - 1](h)
            if self.fading:
                h = fade(self.from_image[level - 1](downsample2(x)), h, self.alpha)
            for index in range(level - 2, -1, -1):
                h = self.blocks[index](h)
        logits: Tensor = self.head(h)
        return logits


def register(register: Register) -> None:
    """Register the ``progressive`` generator and discriminator."""
    register("generator", "progressive", ProgressiveGenerator, ProgressiveGeneratorParams)
    register("discriminator", "progressive", ProgressiveDiscriminator, ProgressiveDiscriminatorParams)

