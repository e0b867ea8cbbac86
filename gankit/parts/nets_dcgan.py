"""Deep convolutional generator and discriminator in the style of DCGAN (Radford et al. 2015)."""

from __future__ import annotations

from typing import Any, Literal, Self

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from gankit.hookspecs import Register
from gankit.nn.conditioning import (
    DISCRIMINATOR_CONDITION_HELP,
    ClassEmbedding,
    ClassifierHead,
    ConditionalBatchNorm,
    DiscriminatorCondition,
    Projection,
    classes_for,
    uses_classifier,
    uses_projection,
)
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
    condition: Literal["none", "embedding", "batchnorm"] = Field(
        default="none",
        description="class conditioning (needs labelled data): 'embedding' appends a learnt class embedding to z; "
        "'batchnorm' gives every batch normalisation a scale and shift per class (needs norm = 'batch')",
    )
    embedding_dim: int | None = Field(
        default=None, ge=1, le=MAX_WIDTH,
        description="size of the learnt class embedding (both conditions); default: latent_dim",
    )

    @model_validator(mode="after")
    def _batchnorm_condition_needs_norm(self) -> Self:
        if self.condition == "batchnorm" and self.norm != "batch":
            raise ValueError("condition = 'batchnorm' needs norm = 'batch' (it conditions the batch normalisation)")
        return self


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
    condition: DiscriminatorCondition = Field(default="none", description=DISCRIMINATOR_CONDITION_HELP)


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

    Class-conditional (``condition``, with labelled data): ``"embedding"``
    appends a learnt class embedding to z before the projection;
    ``"batchnorm"`` replaces every batch normalisation with a conditional one
    whose scale and shift are computed from a learnt class embedding shared by
    every layer (:class:`gankit.nn.conditioning.ConditionalBatchNorm`).
    It is then called ``generator(z, labels)``.
    """

    latent_dim: int

    def __init__(
        self, params: DCGANGeneratorParams, *, shape: Any = None, num_classes: int = 0, **context: Any
    ) -> None:
        super().__init__()
        channels, self.base, blocks = image_grid(shape, "generator 'dcgan'")
        self.shape = (channels, self.base[0] << blocks, self.base[1] << blocks)
        self.latent_dim = params.latent_dim
        self.condition = params.condition
        classes = classes_for(params.condition, num_classes, "generator 'dcgan'")
        if classes:
            self.num_classes = classes
        batch_norm = params.norm == "batch"
        embedding_dim = params.embedding_dim or params.latent_dim
        cbn = embedding_dim if params.condition == "batchnorm" else 0
        widths = _block_widths(blocks, params.width, params.max_width)[::-1]
        self.base_channels = widths[0]
        inputs = params.latent_dim
        if params.condition == "embedding":
            self.embed = ClassEmbedding(classes, embedding_dim, params.latent_dim)
            inputs = self.embed.out_features
        elif params.condition == "batchnorm":
            self.class_embedding = nn.Embedding(classes, embedding_dim)
        self.project = nn.Linear(inputs, widths[0] * self.base[0] * self.base[1], bias=not batch_norm)
        self.project_norm: nn.Module = _norm(widths[0], batch_norm, cbn)
        self.blocks = nn.Sequential(
            *(self._up_block(widths[i], widths[i + 1], params.upsample, batch_norm, cbn) for i in range(blocks))
        )
        self.to_image = nn.Conv2d(widths[-1], channels, 3, padding=1)
        init_weights(self, params.init)

    @staticmethod
    def _up_block(in_channels: int, out_channels: int, upsample: str, batch_norm: bool, cbn: int
                  ) -> nn.Sequential:
        layers: list[nn.Module]
        if upsample == "transpose":
            layers = [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=not batch_norm)]
        else:
            layers = [
                nn.Upsample(scale_factor=2, mode=upsample),
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm),
            ]
        if batch_norm:
            layers.append(_norm(out_channels, True, cbn))
        layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Map latents ``(N, latent_dim)`` (and classes ``(N,)`` when conditional) to images ``(N, C, H, W)``."""
        if self.condition == "none":
            x = self.project(z.flatten(1)).view(z.shape[0], self.base_channels, *self.base)
            x = torch.relu(self.project_norm(x))
            return torch.tanh(self.to_image(self.blocks(x)))
        if labels is None:
            raise ValueError("this generator is class-conditional: call it as generator(z, labels)")
        if self.condition == "embedding":
            x = self.project(self.embed(z, labels)).view(z.shape[0], self.base_channels, *self.base)
            x = torch.relu(self.project_norm(x))
            return torch.tanh(self.to_image(self.blocks(x)))
        condition = self.class_embedding(labels)
        x = self.project(z.flatten(1)).view(z.shape[0], self.base_channels, *self.base)
        x = torch.relu(self.project_norm(x, condition))
        for block in self.blocks:
            for layer in block.children():
                x = layer(x, condition) if isinstance(layer, ConditionalBatchNorm) else layer(x)
        return torch.tanh(self.to_image(x))


def _norm(channels: int, batch_norm: bool, condition_dim: int) -> nn.Module:
    """Batch normalisation (conditional on a class embedding of ``condition_dim`` when > 0), or nothing."""
    if not batch_norm:
        return nn.Identity()
    return ConditionalBatchNorm(channels, condition_dim) if condition_dim else nn.BatchNorm2d(channels)


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

    Class-conditional (``condition``, with labelled data), it is called
    ``discriminator(x, labels)``. ``"projection"`` adds ``<embedding(label),
    features>`` over the last feature map (the class-specific part of the last
    convolution's kernel; Miyato & Koyama 2018). ``"classifier"`` adds an
    auxiliary classifier, a convolution over the same features to one logit
    per class: called with ``return_classes=True`` it returns ``(logits,
    class_logits)`` for the ``acgan`` loss (Odena et al. 2017).
    """

    def __init__(
        self, params: DCGANDiscriminatorParams, *, shape: Any = None, num_classes: int = 0, **context: Any
    ) -> None:
        super().__init__()
        classes = classes_for(params.condition, num_classes, "discriminator 'dcgan'")
        if classes:
            self.num_classes = classes
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
        self.has_classifier = uses_classifier(params.condition)
        if self.has_classifier:
            self.classifier = ClassifierHead(nn.Conv2d(in_channels, classes, self.base))
        init_weights(self, params.init)
        if params.spectral_norm:
            apply_spectral_norm(self)
        if uses_projection(params.condition):
            self.projection = Projection(
                classes, in_channels * self.base[0] * self.base[1], spectral_norm=params.spectral_norm
            )

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

    def forward(
        self, x: Tensor, labels: Tensor | None = None, *, return_classes: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Map images ``(N, C, H, W)`` (and classes ``(N,)`` when conditional) to logits ``(N,)``.

        With ``return_classes`` (a discriminator with a classifier), also the class logits ``(N, num_classes)``.
        """
        if not hasattr(self, "num_classes"):
            return self.net(x).reshape(x.shape[0])
        *body, last = self.net
        features = x
        for layer in body:
            features = layer(features)
        logits = last(features).reshape(x.shape[0])
        if hasattr(self, "projection"):
            if labels is None:
                raise ValueError("this discriminator is class-conditional: call it as discriminator(x, labels)")
            logits = logits + self.projection(features, labels)
        if not return_classes:
            return logits
        if not self.has_classifier:
            raise ValueError("this discriminator has no classifier: set condition = 'classifier'")
        return logits, self.classifier(features)


def register(register: Register) -> None:
    """Register the DCGAN generator and discriminator."""
    register("generator", "dcgan", DCGANGenerator, DCGANGeneratorParams)
    register("discriminator", "dcgan", DCGANDiscriminator, DCGANDiscriminatorParams)
