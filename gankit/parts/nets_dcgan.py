"""Deep convolutional generator and discriminator in the style of DCGAN (Radford et al. 2015)."""

from __future__ import annotations

from typing import Any, Literal, Self

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from gankit.hookspecs import Register
from gankit.nn.layers import (
    LEAKY_SLOPE,
    InitName,
    MinibatchStd,
    MinibatchStdParams,
    apply_spectral_norm,
    image_grid,
    init_weights,
)
from gankit.registry import MAX_WIDTH, Params


class _WidthParams(Params):
    """Channel widths shared by both DCGAN networks."""

    width: int = Field(
        default=64, ge=1, le=MAX_WIDTH,
        description="channels at the highest resolution; each halving of resolution doubles them",
    )
    max_width: int = Field(default=512, ge=1, le=MAX_WIDTH, description="cap on the channels of any block")
    init: InitName = Field(
        default="dcgan",
        description="dcgan: weights N(0, 0.02), norm scales N(1, 0.02); default: PyTorch's initialisation",
    )

    @model_validator(mode="after")
    def _width_within_cap(self) -> Self:
        if self.max_width < self.width:
            raise ValueError(f"max_width ({self.max_width}) must be at least width ({self.width})")
        return self


class DCGANGeneratorParams(_WidthParams):
    """Parameters of the ``dcgan`` generator."""

    latent_dim: int = Field(default=64, ge=1, le=MAX_WIDTH, description="size of the latent vector z")
    upsample: Literal["transpose", "nearest", "bilinear"] = Field(
        default="transpose",
        description="how blocks double resolution: 4x4 transposed convolution, or nearest/bilinear upsampling "
        "followed by a 3x3 convolution",
    )
    norm: Literal["batch", "none"] = Field(default="batch", description="normalisation after each block")


class DCGANDiscriminatorParams(MinibatchStdParams, _WidthParams):
    """Parameters of the ``dcgan`` discriminator."""

    downsample: Literal["stride", "pool"] = Field(
        default="stride",
        description="stride: 4x4 convolution with stride 2; pool: 3x3 convolution then 2x2 average pooling",
    )
    norm: Literal["batch", "none", "layer"] = Field(
        default="batch",
        description="normalisation after each block but the first; layer is a one-group GroupNorm, safe with "
        "gradient penalties",
    )
    spectral_norm: bool = Field(default=False, description="spectral normalisation on every convolution")


def _block_widths(blocks: int, width: int, max_width: int) -> list[int]:
    """Channels of ``blocks + 1`` feature maps from the highest resolution down: width, 2*width, ... capped."""
    return [min(width * 2**i, max_width) for i in range(blocks + 1)]


class DCGANGenerator(nn.Module):
    """DCGAN generator: z -> 4x4 feature map -> blocks doubling resolution -> tanh image.

    A linear projection reshaped to 4x4 is followed by one block per doubling
    of resolution (transposed 4x4 convolution, or nearest/bilinear upsampling
    then a 3x3 convolution; batch normalisation; ReLU), each halving the
    channels down to ``width``, and a final 3x3 convolution to the image
    channels with tanh. This is the all-convolutional design of Radford et al.
    (2015), with upsampling + convolution as the option Odena et al. (2016)
    suggest against checkerboard artefacts. Square power-of-two resolutions
    from 8 up start from 4x4; other sizes, non-square ones included, from
    their own base grid (3 to 16 pixels a side, e.g. 3x4 for 4:3 images of
    96x128, 9x16 for 16:9 images of 144x256; see
    :func:`gankit.nn.layers.image_grid`).
    """

    latent_dim: int

    def __init__(self, params: DCGANGeneratorParams, *, shape: Any = None, **context: Any) -> None:
        super().__init__()
        channels, self.base, blocks = image_grid(shape, "generator 'dcgan'")
        self.shape = (channels, self.base[0] << blocks, self.base[1] << blocks)
        self.latent_dim = params.latent_dim
        batch_norm = params.norm == "batch"
        widths = _block_widths(blocks, params.width, params.max_width)[::-1]
        self.base_channels = widths[0]
        self.project = nn.Linear(params.latent_dim, widths[0] * self.base[0] * self.base[1], bias=not batch_norm)
        self.project_norm: nn.Module = nn.BatchNorm2d(widths[0]) if batch_norm else nn.Identity()
        self.blocks = nn.Sequential(
            *(self._up_block(widths[i], widths[i + 1], params.upsample, batch_norm) for i in range(blocks))
        )
        self.to_image = nn.Conv2d(widths[-1], channels, 3, padding=1)
        init_weights(self, params.init)

    @staticmethod
    def _up_block(in_channels: int, out_channels: int, upsample: str, batch_norm: bool) -> nn.Sequential:
        layers: list[nn.Module]
        if upsample == "transpose":
            layers = [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=not batch_norm)]
        else:
            layers = [
                nn.Upsample(scale_factor=2, mode=upsample),
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm),
            ]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """Map latents ``(N, latent_dim)`` to images ``(N, C, H, W)`` in [-1, 1]."""
        x = self.project(z.flatten(1)).view(z.shape[0], self.base_channels, *self.base)
        x = torch.relu(self.project_norm(x))
        return torch.tanh(self.to_image(self.blocks(x)))


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: image -> blocks halving resolution down to the base grid -> one logit.

    Each block halves the resolution (strided 4x4 convolution, or a 3x3
    convolution then 2x2 average pooling), normalises (not in the first block,
    as in Radford et al. 2015) and applies LeakyReLU(0.2); channels start at
    ``width`` and double per block up to ``max_width``. A final convolution
    over the whole base grid (4x4 for square power-of-two images, 3x4 for
    96x128, ...) gives one logit per image. ``spectral_norm`` normalises every
    convolution (Miyato et al. 2018); ``norm="layer"`` (one-group GroupNorm)
    keeps samples independent, as the gradient penalty requires.
    ``minibatch_std`` adds the standard deviation across a group of samples as
    one more 4x4 channel before the last convolution (Karras et al. 2018).
    """

    def __init__(self, params: DCGANDiscriminatorParams, *, shape: Any = None, **context: Any) -> None:
        super().__init__()
        channels, self.base, blocks = image_grid(shape, "discriminator 'dcgan'")
        self.shape = (channels, self.base[0] << blocks, self.base[1] << blocks)
        widths = _block_widths(blocks - 1, params.width, params.max_width)
        layers: list[nn.Module] = []
        in_channels = channels
        for index, out_channels in enumerate(widths):
            norm = params.norm if index > 0 else "none"
            layers.extend(self._down_block(in_channels, out_channels, params.downsample, norm))
            in_channels = out_channels
        if params.minibatch_std:
            layers.append(MinibatchStd(params.minibatch_std_group))
            in_channels += 1
        layers.append(nn.Conv2d(in_channels, 1, self.base))
        self.net = nn.Sequential(*layers)
        init_weights(self, params.init)
        if params.spectral_norm:
            apply_spectral_norm(self)

    @staticmethod
    def _down_block(in_channels: int, out_channels: int, downsample: str, norm: str) -> list[nn.Module]:
        bias = norm == "none"
        layers: list[nn.Module]
        if downsample == "stride":
            layers = [nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)]
        else:
            layers = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias), nn.AvgPool2d(2)]
        if norm == "batch":
            layers.append(nn.BatchNorm2d(out_channels))
        elif norm == "layer":
            layers.append(nn.GroupNorm(1, out_channels))
        layers.append(nn.LeakyReLU(LEAKY_SLOPE))
        return layers

    def forward(self, x: Tensor) -> Tensor:
        """Map images ``(N, C, H, W)`` to logits ``(N,)``."""
        return self.net(x).reshape(x.shape[0])


def register(register: Register) -> None:
    """Register the DCGAN generator and discriminator."""
    register("generator", "dcgan", DCGANGenerator, DCGANGeneratorParams)
    register("discriminator", "dcgan", DCGANDiscriminator, DCGANDiscriminatorParams)
