"""R3GAN's generator and discriminator (Huang et al. 2024, "The GAN is dead; long live the GAN!").

A modernised ResNet with none of the usual GAN tricks: no normalisation,
no equalised learning rate, no mapping network, no noise inputs, no
minibatch statistics. Each resolution is a *stage* of residual blocks;
each block is an inverted bottleneck: a 1x1 convolution widens the
features by ``expansion``, a grouped 3x3 convolution (groups of
``group_channels`` channels) mixes them spatially, a 1x1 convolution narrows
them back; leaky ReLUs with learned biases in between. Stages are joined by
transition layers: the generator's upsample (binomial filter) after a 1x1
convolution that changes the width; the discriminator's downsample before
one. The generator starts from a learned basis (``channels x base grid``)
scaled per channel by a linear map of ``z``; the discriminator ends with a
depthwise convolution over the whole base grid and a linear layer.

Initialisation follows the paper's fix-up-style variance scaling: weights
are He-initialised, the two inner layers of every block scaled by
``L^(-1/4)`` (``L`` residual blocks in the network), and the last layer of
every block starts at zero, so each block starts as the identity.

Train them with the ``rpgan`` loss and both the ``r1`` and ``r2``
regularisers (the paper's R3GAN), as the ``r3gan-*`` recipes do.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Self

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.nn.conditioning import classes_for
from gankit.nn.grid import Pyramid, pyramid
from gankit.nn.resample import BINOMIAL, downsample2d, fir_filter, upsample2d
from gankit.registry import Params

#: The gain of a leaky ReLU of slope 0.2 (He et al. 2015), for initialisation.
LRELU_GAIN = math.sqrt(2.0 / (1.0 + 0.2**2))


class _R3GANParams(Params):
    """Parameters both R3GAN networks share."""

    width: int = Field(default=256, ge=1, description="channels at the highest resolution")
    max_width: int = Field(
        default=768, ge=1, description="cap on the channels of a stage; each halving of resolution doubles them"
    )
    blocks: int = Field(default=2, ge=1, le=16, description="residual blocks per stage (paper: 2)")
    expansion: int = Field(default=2, ge=1, le=8, description="how much an inverted bottleneck widens (paper: 2)")
    group_channels: int = Field(
        default=16, ge=1, description="channels per group of the grouped 3x3 convolution (paper: 16)"
    )

    @model_validator(mode="after")
    def _width_within_cap(self) -> Self:
        if self.max_width < self.width:
            raise ValueError(f"max_width ({self.max_width}) must be at least width ({self.width})")
        return self


class R3GANGeneratorParams(_R3GANParams):
    """Parameters of the ``r3gan`` generator."""

    latent_dim: int = Field(default=64, ge=1, description="size of the latent vector z (paper: 64)")
    condition: Literal["none", "embedding"] = Field(
        default="none",
        description="embedding: a class label's learned embedding (latent_dim long) is joined to z "
        "(called as generator(z, labels))",
    )


class R3GANDiscriminatorParams(_R3GANParams):
    """Parameters of the ``r3gan`` discriminator."""

    condition: Literal["none", "projection"] = Field(
        default="none",
        description="projection: the logit is the projection of the features on a learned embedding of the class "
        "label (Miyato & Koyama 2018); called as discriminator(x, labels)",
    )


def _he(layer: nn.Conv2d | nn.Linear, gain: float = 1.0) -> Any:
    """He initialisation scaled by ``gain`` (0 gives zeros), no bias."""
    fan_in = layer.weight[0].numel()
    with torch.no_grad():
        layer.weight.normal_(0.0, gain / math.sqrt(fan_in))
    return layer


def _conv(in_channels: int, out_channels: int, kernel: int, *, groups: int = 1, gain: float = 1.0) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, groups=groups, bias=False)
    _he(conv, gain)
    return conv


class BiasedLeakyReLU(nn.Module):
    """A learned bias per channel, then a leaky ReLU of slope 0.2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        """``leaky_relu(x + bias)``."""
        return F.leaky_relu(x + self.bias.to(x.dtype).view(1, -1, *([1] * (x.dim() - 2))), 0.2)


class InvertedBottleneck(nn.Module):
    """``x + conv1x1(act(grouped conv3x3(act(conv1x1(x)))))``: widen, mix, narrow; starts as the identity."""

    def __init__(self, channels: int, expansion: int, group_channels: int, total_blocks: int) -> None:
        super().__init__()
        wide = channels * expansion
        if wide % group_channels:
            raise GankitError(
                f"r3gan: {wide} expanded channels ({channels} x expansion {expansion}) do not split into groups of "
                f"group_channels = {group_channels}; choose widths that are multiples of it"
            )
        gain = LRELU_GAIN * total_blocks ** (-1.0 / 4.0)
        self.widen = _conv(channels, wide, 1, gain=gain)
        self.act1 = BiasedLeakyReLU(wide)
        self.mix = _conv(wide, wide, 3, groups=wide // group_channels, gain=gain)
        self.act2 = BiasedLeakyReLU(wide)
        self.narrow = _conv(wide, channels, 1, gain=0.0)

    def forward(self, x: Tensor) -> Tensor:
        """The residual update of ``x``."""
        return x + self.narrow(self.act2(self.mix(self.act1(self.widen(x)))))


def _widths(grid: Pyramid, width: int, max_width: int) -> list[int]:
    """Channels of every level, from the base grid to the image: ``width`` at the top, doubling down, capped."""
    levels = grid.doublings + 1
    return [min(width * 2 ** (levels - 1 - i), max_width) for i in range(levels)]



class R3GANGenerator(nn.Module):
    """R3GAN's generator: z → learned basis at the base grid → stages of residual blocks, upsampling → 1x1 to image.

    Each stage has ``blocks`` inverted bottlenecks (1x1 widening by
    ``expansion``, grouped 3x3 with ``group_channels`` per group, 1x1
    narrowing; leaky ReLUs with biases; no normalisation), initialised so that
    every block starts as the identity. Widths are ``width`` at the image's
    resolution, doubling as it halves, up to ``max_width``. Train it with
    ``rpgan``, ``r1`` and ``r2``.

    The output is linear (no tanh), as in the paper; pictures clamp it.
    With ``condition = "embedding"`` it is called as ``generator(z, labels)``.
    """

    def __init__(
        self, params: R3GANGeneratorParams, *, shape: Any = None, num_classes: int = 0, **context: Any
    ) -> None:
        super().__init__()
        part = "generator 'r3gan'"
        grid = pyramid(shape, part)
        self.shape = (grid.channels, *grid.sizes[-1])
        self.latent_dim = params.latent_dim
        self.num_classes = classes_for(params.condition, int(num_classes or 0), part)
        widths = _widths(grid, params.width, params.max_width)
        total = params.blocks * len(widths)
        self.embed = _he(nn.Linear(self.num_classes, params.latent_dim, bias=False)) if self.num_classes else None
        inputs = params.latent_dim * (2 if self.num_classes else 1)
        self.base = nn.Parameter(torch.randn(widths[0], *grid.base))
        self.base_scale = _he(nn.Linear(inputs, widths[0], bias=False))
        self.stages = nn.ModuleList()
        for i, channels in enumerate(widths):
            layers: list[nn.Module] = []
            if i:
                if widths[i - 1] != channels:
                    layers.append(_conv(widths[i - 1], channels, 1))
                layers.append(_Upsample())
            layers.extend(
                InvertedBottleneck(channels, params.expansion, params.group_channels, total)
                for _ in range(params.blocks)
            )
            self.stages.append(nn.Sequential(*layers))
        self.to_image = _conv(widths[-1], grid.channels, 1)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Latents ``(N, latent_dim)`` (and labels ``(N,)`` when conditional) → images ``(N, C, H, W)``."""
        if self.embed is not None:
            if labels is None:
                raise GankitError("this generator is conditional: call it as generator(z, labels)")
            z = torch.cat([z, self.embed(F.one_hot(labels.long(), self.num_classes).to(z.dtype))], dim=1)
        x = self.base.unsqueeze(0) * self.base_scale(z).view(z.shape[0], -1, 1, 1)
        for stage in self.stages:
            x = stage(x)
        return self.to_image(x)


class _Upsample(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.resample_filter: Tensor
        self.register_buffer("resample_filter", fir_filter(BINOMIAL), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return upsample2d(x, self.resample_filter)


class _Downsample(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.resample_filter: Tensor
        self.register_buffer("resample_filter", fir_filter(BINOMIAL), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return downsample2d(x, self.resample_filter)


class R3GANDiscriminator(nn.Module):
    """R3GAN's discriminator: 1x1 from the image → stages of residual blocks, downsampling → basis → logit.

    The generator's mirror image (same blocks, widths and initialisation),
    ending with a depthwise convolution over the whole base grid and a linear
    layer.

    With ``condition = "projection"`` the last layer gives a vector that is
    projected on a learned embedding of the label; called as
    ``discriminator(x, labels)``.
    """

    def __init__(
        self, params: R3GANDiscriminatorParams, *, shape: Any = None, num_classes: int = 0, **context: Any
    ) -> None:
        super().__init__()
        part = "discriminator 'r3gan'"
        grid = pyramid(shape, part)
        self.shape = (grid.channels, *grid.sizes[-1])
        self.num_classes = classes_for(params.condition, int(num_classes or 0), part)
        widths = _widths(grid, params.width, params.max_width)[::-1]  # from the image down to the base grid
        total = params.blocks * len(widths)
        self.from_image = _conv(grid.channels, widths[0], 1)
        self.stages = nn.ModuleList()
        for i, channels in enumerate(widths):
            layers: list[nn.Module] = [
                InvertedBottleneck(channels, params.expansion, params.group_channels, total)
                for _ in range(params.blocks)
            ]
            if i + 1 < len(widths):
                layers.append(_Downsample())
                if widths[i + 1] != channels:
                    layers.append(_conv(channels, widths[i + 1], 1))
            self.stages.append(nn.Sequential(*layers))
        channels = widths[-1]
        self.basis = _he(nn.Conv2d(channels, channels, grid.base, groups=channels, bias=False))
        self.embed_dim = channels if self.num_classes else 0
        self.out = _he(nn.Linear(channels, self.embed_dim or 1, bias=False))
        self.embed = (
            _he(nn.Linear(self.num_classes, self.embed_dim, bias=False), 1.0 / math.sqrt(self.embed_dim))
            if self.num_classes else None
        )

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images ``(N, C, H, W)`` (and labels ``(N,)`` when conditional) → logits ``(N,)``."""
        x = self.from_image(x)
        for stage in self.stages:
            x = stage(x)
        x = self.out(self.basis(x).flatten(1))
        if self.embed is not None:
            if labels is None:
                raise GankitError("this discriminator is conditional: call it as discriminator(x, labels)")
            x = (x * self.embed(F.one_hot(labels.long(), self.num_classes).to(x.dtype))).sum(dim=1)
        return x.reshape(x.shape[0])


def register(register: Register) -> None:
    """Register the R3GAN generator and discriminator."""
    register("generator", "r3gan", R3GANGenerator, R3GANGeneratorParams)
    register("discriminator", "r3gan", R3GANDiscriminator, R3GANDiscriminatorParams)
