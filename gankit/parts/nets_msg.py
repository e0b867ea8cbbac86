"""``msg`` generator and discriminator: multi-scale gradients (MSG-GAN, Karnewar & Wang 2019, arXiv 1903.06048).

The generator emits an image at every resolution from 4x4 to full, coarsest
first; the discriminator reads each of them where its own path reaches that
resolution, so its gradient flows into every scale of the generator at once.
No trick and no schedule: the networks train at every resolution from the
first step, in the ordinary trainer.

Real images come to the discriminator as one full-resolution batch; it makes
their smaller scales itself, by 2x2 average pooling (:func:`gankit.nn.progressive.pyramid`).
Generated images come as the generator's list. Regularisers see the same two
forms: R1 differentiates with respect to the full-resolution real batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.nn.layers import square_power_of_two
from gankit.nn.progressive import (
    BASE_RESOLUTION,
    DiscriminatorBlock,
    DiscriminatorHead,
    EqualizedConv2d,
    FromImage,
    channels_at,
    generator_layers,
    levels_between,
    pyramid,
)
from gankit.parts.nets_progressive import NetworkWidthParams, ProgressiveGeneratorParams

CombineName = Literal["concat", "lin-cat", "cat-lin"]


class MsgGeneratorParams(ProgressiveGeneratorParams):
    """Parameters of the ``msg`` generator."""


class MsgDiscriminatorParams(NetworkWidthParams):
    """Parameters of the ``msg`` discriminator."""

    combine: CombineName = Field(
        default="concat",
        description="how each scale's image joins the features: concat (the paper's phi_simple: concatenate the "
        "image's channels), lin-cat (1x1 convolution of the image, then concatenate), cat-lin (concatenate, then a "
        "1x1 convolution back to the feature width)",
    )
    minibatch_std: bool = Field(
        default=True, description="append the minibatch standard deviation as a channel before the last block"
    )
    minibatch_std_group: int = Field(
        default=4, ge=1, description="samples per minibatch-stddev group (shrinks to a divisor of the batch size)"
    )


class MsgGenerator(nn.Module):
    """MSG-GAN generator: z → 4x4 → doubling blocks, with an image out of every resolution.

    The body is the progressive generator's (dense 4x4 start, blocks of
    nearest-neighbour upsampling and two 3x3 convolutions with LeakyReLU 0.2
    and pixel norm); after each block a 1x1 convolution with tanh gives that
    resolution's image. Returns a list of ``levels + 1`` images, 4x4 first,
    full resolution last, each in [-1, 1]. Square power-of-two resolutions from 8 up.
    """

    latent_dim: int

    def __init__(self, params: MsgGeneratorParams, *, shape: Any = None, **context: Any) -> None:
        super().__init__()
        channels, resolution = square_power_of_two(shape, "generator 'msg'")
        self.shape = (channels, resolution, resolution)
        self.resolution = resolution
        self.levels = levels_between(resolution)
        self.latent_dim = params.latent_dim
        self.stem, self.blocks, self.to_image = generator_layers(
            params.latent_dim, channels, self.levels, width=params.width, max_width=params.max_width,
            pixel_norm=params.pixel_norm, equalized=params.equalized_lr,
        )

    def forward(self, z: Tensor) -> list[Tensor]:
        """Latents ``(N, latent_dim)`` → images ``[(N, C, 4, 4), (N, C, 8, 8), ..., (N, C, S, S)]`` in [-1, 1]."""
        x = self.stem(z)
        images = [self.to_image[0](x)]
        for block, to_image in zip(self.blocks, self.to_image[1:]):
            x = block(x)
            images.append(to_image(x))
        return images


class Combine(nn.Module):
    """Merges an image into the discriminator's features at the same resolution (the paper's phi).

    - ``concat``: ``cat(image, features)`` — ``features + image`` channels out;
    - ``lin-cat``: ``cat(conv1x1(image), features)`` — the image projected to
      as many channels as the features, ``2 * features`` channels out;
    - ``cat-lin``: ``conv1x1(cat(image, features))`` — ``features`` channels out.
    """

    def __init__(self, mode: CombineName, image_channels: int, channels: int, *, equalized: bool) -> None:
        super().__init__()
        self.mode = mode
        self.project: nn.Module | None = None
        if mode == "concat":
            self.out_channels = channels + image_channels
        elif mode == "lin-cat":
            self.project = EqualizedConv2d(image_channels, channels, 1, gain=1.0, equalized=equalized)
            self.out_channels = 2 * channels
        elif mode == "cat-lin":
            self.project = EqualizedConv2d(image_channels + channels, channels, 1, gain=1.0, equalized=equalized)
            self.out_channels = channels
        else:
            raise ValueError(f"unknown combine function {mode!r}: use 'concat', 'lin-cat' or 'cat-lin'")

    def forward(self, image: Tensor, features: Tensor) -> Tensor:
        """``image`` ``(N, C, S, S)`` and ``features`` ``(N, F, S, S)`` → ``(N, out_channels, S, S)``."""
        if self.project is None:
            return torch.cat([image, features], dim=1)
        if self.mode == "lin-cat":
            return torch.cat([self.project(image), features], dim=1)
        out: Tensor = self.project(torch.cat([image, features], dim=1))
        return out

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, out_channels={self.out_channels}"


class MsgDiscriminator(nn.Module):
    """MSG-GAN discriminator: reads an image at every resolution, full resolution first, down to one logit.

    The full-resolution image goes through a 1x1 from-image convolution and a
    block (two 3x3 convolutions with LeakyReLU 0.2, 2x2 average pooling); at
    every smaller resolution the image of that scale is merged into the
    features by ``combine`` before the next block; at 4x4 the head
    (minibatch stddev, 3x3 and 4x4 convolutions, linear logit) ends it.

    Accepts a list of images, 4x4 first (the generator's output), or one
    full-resolution batch (real images), whose scales it makes by 2x2 average
    pooling.
    """

    def __init__(self, params: MsgDiscriminatorParams, *, shape: Any = None, **context: Any) -> None:
        super().__init__()
        channels, resolution = square_power_of_two(shape, "discriminator 'msg'")
        self.shape = (channels, resolution, resolution)
        self.resolution = resolution
        self.levels = levels_between(resolution)
        eq = params.equalized_lr
        widths = [channels_at(level, self.levels, params.width, params.max_width) for level in range(self.levels + 1)]
        self.from_image = FromImage(channels, widths[-1], equalized=eq)
        combine = [Combine(params.combine, channels, widths[level], equalized=eq) for level in range(self.levels)]
        blocks = []
        for level in range(self.levels):
            in_channels = widths[level + 1] if level == self.levels - 1 else combine[level + 1].out_channels
            blocks.append(DiscriminatorBlock(in_channels, widths[level + 1], widths[level], equalized=eq))
        self.combine = nn.ModuleList(combine)
        self.blocks = nn.ModuleList(blocks)
        group = params.minibatch_std_group if params.minibatch_std else None
        self.head = DiscriminatorHead(combine[0].out_channels, widths[0], minibatch_group=group, equalized=eq)

    def scales(self, x: Tensor | Sequence[Tensor]) -> list[Tensor]:
        """The images of every scale, 4x4 first: ``x`` itself when a list, else its average-pooled pyramid."""
        images = pyramid(x, BASE_RESOLUTION) if isinstance(x, Tensor) else list(x)
        expected = [BASE_RESOLUTION << level for level in range(self.levels + 1)]
        got = [tuple(image.shape[-2:]) for image in images]
        if got != [(size, size) for size in expected]:
            raise GankitError(
                f"the 'msg' discriminator takes one {self.resolution}x{self.resolution} batch or a list of images at "
                f"{', '.join(f'{s}x{s}' for s in expected)} (coarsest first); got sizes {got}"
            )
        return images

    def input_blocks(self) -> list[nn.Module]:
        """Blocks from the full-resolution image on (for ``freeze-d``), each with the merge of its scale's image."""
        first = nn.ModuleList([self.from_image, self.blocks[-1]])
        middle = [nn.ModuleList([self.combine[level], self.blocks[level - 1]])
                  for level in range(self.levels - 1, 0, -1)]
        return [first, *middle, nn.ModuleList([self.combine[0], self.head])]

    def forward(self, x: Tensor | Sequence[Tensor]) -> Tensor:
        """A full-resolution batch ``(N, C, S, S)`` or one batch per scale, 4x4 first → logits ``(N,)``."""
        images = self.scales(x)
        h = self.blocks[-1](self.from_image(images[-1]))
        for level in range(self.levels - 1, 0, -1):
            h = self.blocks[level - 1](self.combine[level](images[level], h))
        logits: Tensor = self.head(self.combine[0](images[0], h))
        return logits


def register(register: Register) -> None:
    """Register the ``msg`` generator and discriminator."""
    register("generator", "msg", MsgGenerator, MsgGeneratorParams)
    register("discriminator", "msg", MsgDiscriminator, MsgDiscriminatorParams)
