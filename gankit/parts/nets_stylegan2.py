"""StyleGAN2's networks (Karras et al. 2020, "Analyzing and improving the image quality of StyleGAN").

The generator maps a latent ``z`` through a *mapping network* to an
intermediate latent ``w``, one copy per layer (``num_ws`` of them, so that
styles can be mixed), and a *synthesis network* draws the image from a
learned constant: every 3x3 convolution is *modulated* by a style (an affine
map of its ``w``) and *demodulated* (each output feature map divided by the
norm its modulated weights would give unit-variance inputs), per-pixel noise
of learned strength adds stochastic detail, and every resolution adds its
own RGB output (``toRGB``) to the upsampled image of the one below (the
"skip" architecture). The mapping network tracks the average ``w``
(``w_avg``) during training, around which sampling can truncate.

The discriminator is residual ("resnet" architecture): blocks of two 3x3
convolutions that halve the resolution with a 1x1 shortcut, then minibatch
standard deviation, a 3x3 convolution and two dense layers. Conditional on
class labels, it projects its features on a learned embedding of the label
(Miyato & Koyama 2018), as the reference's ``cmap`` does.

Every layer has an equalised learning rate (:mod:`gankit.nn.equalized`);
resampling goes through the binomial filter (:mod:`gankit.nn.resample`).
Images of any size that halves down to a small grid are supported: square
powers of two from 8 to 1024, and others such as 48x64 (see
:mod:`gankit.nn.grid`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.nn.conditioning import classes_for
from gankit.nn.equalized import EqualConv2d, EqualLinear, bias_act, normalize_2nd_moment
from gankit.nn.grid import Pyramid, pyramid
from gankit.nn.layers import MinibatchStd
from gankit.nn.resample import BINOMIAL, conv2d_up, fir_filter, upsample2d
from gankit.registry import Params

# --------------------------------------------------------------------------- parameters


class _ChannelParams(Params):
    """Channel widths shared by both StyleGAN2 networks."""

    channel_base: int = Field(
        default=32768, ge=1,
        description="channels at a level are channel_base / (its larger side), capped by channel_max "
        "(StyleGAN2: 32768; 16384 halves every width)",
    )
    channel_max: int = Field(default=512, ge=1, description="cap on the channels of any layer")


class StyleGAN2GeneratorParams(_ChannelParams):
    """Parameters of the ``stylegan2`` generator."""

    latent_dim: int = Field(default=512, ge=1, description="size of the latent vector z")
    w_dim: int = Field(default=512, ge=1, description="size of the intermediate latent w (the styles' input)")
    mapping_layers: int = Field(default=8, ge=1, le=32, description="depth of the mapping network z -> w")
    mapping_lr: float = Field(
        default=0.01, gt=0.0, le=1.0, description="learning-rate multiplier of the mapping network"
    )
    w_avg_decay: float = Field(
        default=0.995, ge=0.0, lt=1.0,
        description="the tracked average w moves by (1 - w_avg_decay) towards each training batch's mean w",
    )
    condition: Literal["none", "embedding"] = Field(
        default="none",
        description="embedding: a class label is embedded and fed to the mapping network with z "
        "(the generator is then called as generator(z, labels))",
    )


class StyleGAN2DiscriminatorParams(_ChannelParams):
    """Parameters of the ``stylegan2`` discriminator."""

    minibatch_std_group: int = Field(
        default=4, ge=1, description="samples per minibatch-standard-deviation group (the largest divisor of the "
        "batch up to it)"
    )
    minibatch_std_channels: int = Field(
        default=1, ge=0, description="features the minibatch standard deviation adds (0 turns it off)"
    )
    condition: Literal["none", "projection"] = Field(
        default="none",
        description="projection: the logit is the projection of the features on a learned embedding of the class "
        "label (Miyato & Koyama 2018); called as discriminator(x, labels)",
    )
    mapping_layers: int = Field(
        default=8, ge=1, le=32, description="condition = 'projection': depth of the label's mapping network"
    )


def _channels(size: tuple[int, int], base: int, cap: int) -> int:
    return max(1, min(base // max(size), cap))



# --------------------------------------------------------------------------- mapping


class MappingNetwork(nn.Module):
    """z (and a class label) → w: a stack of equalised dense layers with leaky ReLU.

    ``z`` and the label's embedding are each normalised to unit root mean
    square, then concatenated. In training mode every call moves ``w_avg``
    towards the batch's mean ``w`` by ``1 - w_avg_decay``. With ``num_ws`` the
    output is broadcast to ``(N, num_ws, w_dim)``.
    """

    def __init__(
        self,
        latent_dim: int,
        num_classes: int,
        w_dim: int,
        *,
        num_ws: int | None,
        layers: int,
        lr_multiplier: float,
        w_avg_decay: float | None,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.w_avg_decay = w_avg_decay
        embed = w_dim if num_classes else 0
        self.embed = EqualLinear(num_classes, embed) if num_classes else None
        features = [latent_dim + embed] + [w_dim] * layers
        self.layers = nn.Sequential(
            *(EqualLinear(features[i], features[i + 1], activation="lrelu", lr_multiplier=lr_multiplier)
              for i in range(layers))
        )
        self.w_avg: Tensor
        if w_avg_decay is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor | None, labels: Tensor | None = None) -> Tensor:
        """``(N, latent_dim)`` latents (and ``(N,)`` labels) → ``(N, num_ws, w_dim)`` (or ``(N, w_dim)``)."""
        inputs = []
        if self.latent_dim:
            if z is None:
                raise ValueError("the mapping network needs latents z")
            inputs.append(normalize_2nd_moment(z.float()))
        if self.embed is not None:
            if labels is None:
                raise GankitError("this network is conditional: call it with class labels, network(x, labels)")
            one_hot = F.one_hot(labels.long(), self.num_classes).to(torch.float32)
            inputs.append(normalize_2nd_moment(self.embed(one_hot)))
        x = torch.cat(inputs, dim=1) if len(inputs) > 1 else inputs[0]
        x = self.layers(x)
        if self.w_avg_decay is not None and self.training:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_decay))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        return x


# --------------------------------------------------------------------------- synthesis


def modulated_conv2d(
    x: Tensor, weight: Tensor, styles: Tensor, *, demodulate: bool = True, up: bool = False,
    resample_filter: Tensor | None = None,
) -> Tensor:
    """A convolution of ``x`` ``(N, I, H, W)`` whose weights are scaled per sample by ``styles`` ``(N, I)``.

    With ``demodulate``, each output feature map is divided by the norm of its
    modulated weights, ``sqrt(sum_{i,k} (w_oik s_i)^2)``, which brings
    unit-variance inputs back to unit variance whatever the styles. Written
    as scaling the activations around one ordinary convolution (the same
    maths as a convolution per sample, much faster for batches). ``up``
    doubles the resolution through ``resample_filter``.
    """
    n = x.shape[0]
    dcoefs = None
    if demodulate:
        dcoefs = (styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()  # (N, O)
    x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
    w = weight.to(x.dtype)
    if up:
        assert resample_filter is not None
        x = conv2d_up(x, w, resample_filter)
    else:
        x = F.conv2d(x, w, padding=weight.shape[-1] // 2)
    if dcoefs is not None:
        x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    return x


class SynthesisLayer(nn.Module):
    """A modulated, demodulated 3x3 convolution (optionally doubling the resolution), noise, bias, leaky ReLU.

    Noise is fresh per sample in training mode and a fixed pattern
    (``noise_const``) in evaluation mode, so samples are deterministic.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, size: tuple[int, int], *, up: bool) -> None:
        super().__init__()
        self.size = size
        self.up = up
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.noise_const: Tensor
        self.resample_filter: Tensor
        self.register_buffer("noise_const", torch.randn(size))
        self.register_buffer("resample_filter", fir_filter(BINOMIAL), persistent=False)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        """``x`` at this layer's input size, ``w`` ``(N, w_dim)`` → features at ``size``."""
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight, styles, up=self.up, resample_filter=self.resample_filter)
        if self.training:
            noise = torch.randn(x.shape[0], 1, *self.size, device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)
        x = x + noise * self.noise_strength.to(x.dtype)
        return bias_act(x, self.bias, "lrelu")


class ToRGB(nn.Module):
    """A modulated 1x1 convolution (not demodulated) from features to image channels."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        """Features and ``w`` → an image contribution."""
        styles = self.affine(w) * self.weight_gain
        return bias_act(modulated_conv2d(x, self.weight, styles, demodulate=False), self.bias, "linear")


class SynthesisBlock(nn.Module):
    """One resolution: (upsampling) two synthesis layers and a toRGB; the first block starts from a constant."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, size: tuple[int, int], img_channels: int
    ) -> None:
        super().__init__()
        self.first = in_channels == 0
        self.const: Tensor | None = nn.Parameter(torch.randn(out_channels, *size)) if self.first else None
        self.conv0 = None if self.first else SynthesisLayer(in_channels, out_channels, w_dim, size, up=True)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, size, up=False)
        self.torgb = ToRGB(out_channels, img_channels, w_dim)
        self.num_conv = 1 if self.first else 2
        self.resample_filter: Tensor
        self.register_buffer("resample_filter", fir_filter(BINOMIAL), persistent=False)

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor) -> tuple[Tensor, Tensor]:
        """``ws`` ``(N, num_conv + 1, w_dim)``: one per convolution, then the toRGB's."""
        if self.first:
            assert self.const is not None
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        else:
            assert self.conv0 is not None and x is not None
            x = self.conv0(x, ws[:, 0])
        x = self.conv1(x, ws[:, self.num_conv - 1])
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """w ``(N, num_ws, w_dim)`` → images: one :class:`SynthesisBlock` per level of the pyramid."""

    def __init__(self, grid: Pyramid, w_dim: int, channel_base: int, channel_max: int) -> None:
        super().__init__()
        self.w_dim = w_dim
        sizes = grid.sizes
        widths = [_channels(s, channel_base, channel_max) for s in sizes]
        blocks = [SynthesisBlock(widths[i - 1] if i else 0, widths[i], w_dim, sizes[i], grid.channels)
                  for i in range(len(sizes))]
        self.convs_per_block = [block.num_conv for block in blocks]
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(self.convs_per_block) + 1

    def forward(self, ws: Tensor) -> Tensor:
        """Draw the images of ``ws``."""
        if ws.dim() != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"synthesis takes w of shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        ws = ws.float()
        x: Tensor | None = None
        img: Tensor | None = None
        index = 0
        for block, convs in zip(self.blocks, self.convs_per_block, strict=True):
            x, img = block(x, img, ws.narrow(1, index, convs + 1))
            index += convs
        assert img is not None
        return img


class StyleGAN2Generator(nn.Module):
    """StyleGAN2's generator: a mapping network z → w, and a synthesis network of modulated convolutions.

    The mapping network (``mapping_layers`` dense layers, learning-rate
    multiplier ``mapping_lr``) gives one ``w`` per layer; each 3x3
    convolution of the synthesis network is modulated by a style (an affine
    map of its ``w``) and demodulated (unit-variance inputs stay at unit
    variance), per-pixel noise of learned strength adds detail (fixed noise
    in evaluation mode), and every resolution adds its own toRGB output to
    the upsampled image below ("skip" architecture), from a learned constant
    at the base grid. Channels are ``channel_base / side`` capped by
    ``channel_max``; every layer has an equalised learning rate. The tracked
    average ``w`` (``w_avg``, moved by ``1 - w_avg_decay`` per training
    batch) is what truncation pulls towards.

    Members beyond the :class:`gankit.protocols.Generator` protocol:
    ``mapping(z[, labels]) -> w`` ``(N, num_ws, w_dim)``, ``synthesis(w) ->
    images``, ``w_avg`` (the tracked average ``w``), ``num_ws`` and ``w_dim``.
    Images are not squashed (no tanh): they are in [-1, 1] only as far as
    training makes them, as in the reference; pictures clamp them. With
    ``condition = "embedding"`` it is called as ``generator(z, labels)``.
    """

    def __init__(
        self, params: StyleGAN2GeneratorParams, *, shape: Any = None, num_classes: int = 0, **context: Any
    ) -> None:
        super().__init__()
        part = "generator 'stylegan2'"
        grid = pyramid(shape, part)
        self.shape = (grid.channels, *grid.sizes[-1])
        self.latent_dim = params.latent_dim
        self.w_dim = params.w_dim
        self.num_classes = classes_for(params.condition, int(num_classes or 0), part)
        self.synthesis = SynthesisNetwork(grid, params.w_dim, params.channel_base, params.channel_max)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            params.latent_dim, self.num_classes, params.w_dim, num_ws=self.num_ws, layers=params.mapping_layers,
            lr_multiplier=params.mapping_lr, w_avg_decay=params.w_avg_decay,
        )

    @property
    def w_avg(self) -> Tensor:
        """The average ``w`` tracked during training, ``(w_dim,)``."""
        return self.mapping.w_avg

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Latents ``(N, latent_dim)`` (and labels ``(N,)`` when conditional) → images ``(N, C, H, W)``."""
        return self.synthesis(self.mapping(z, labels))


# --------------------------------------------------------------------------- discriminator


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convolutions halving the resolution, plus a 1x1 shortcut; each branch scaled by sqrt(1/2)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int) -> None:
        super().__init__()
        self.fromrgb = EqualConv2d(img_channels, tmp_channels, 1, activation="lrelu") if in_channels == 0 else None
        self.conv0 = EqualConv2d(tmp_channels, tmp_channels, 3, activation="lrelu")
        self.conv1 = EqualConv2d(tmp_channels, out_channels, 3, activation="lrelu", down=2)
        self.skip = EqualConv2d(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: Tensor) -> Tensor:
        """Features (or, for the first block, images) → features at half the resolution."""
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class StyleGAN2Discriminator(nn.Module):
    """StyleGAN2's residual discriminator: blocks halving the resolution, minibatch std, dense layers.

    Each block has two 3x3 convolutions (the second halving the resolution
    through the binomial filter) and a 1x1 shortcut, each branch scaled by
    ``sqrt(1/2)``; at the base grid, minibatch standard deviation
    (``minibatch_std_group``, ``minibatch_std_channels``), a 3x3
    convolution, a dense layer and the output. Channels are ``channel_base /
    side`` capped by ``channel_max``; every layer has an equalised learning
    rate.

    With ``condition = "projection"`` it is called as ``discriminator(x,
    labels)``: a mapping network turns the label into a vector ``c`` and the
    logit is ``<features, c> / sqrt(dim)``.
    """

    def __init__(
        self, params: StyleGAN2DiscriminatorParams, *, shape: Any = None, num_classes: int = 0, **context: Any
    ) -> None:
        super().__init__()
        part = "discriminator 'stylegan2'"
        grid = pyramid(shape, part)
        self.shape = (grid.channels, *grid.sizes[-1])
        self.num_classes = classes_for(params.condition, int(num_classes or 0), part)
        sizes = grid.sizes
        widths = [_channels(s, params.channel_base, params.channel_max) for s in sizes]
        self.blocks = nn.Sequential(
            *(DiscriminatorBlock(0 if i == len(sizes) - 1 else widths[i], widths[i], widths[i - 1], grid.channels)
              for i in range(len(sizes) - 1, 0, -1))
        )
        channels = widths[0]
        h, w = grid.base
        self.mbstd = (
            MinibatchStd(params.minibatch_std_group, params.minibatch_std_channels)
            if params.minibatch_std_channels else None
        )
        self.conv = EqualConv2d(channels + params.minibatch_std_channels, channels, 3, activation="lrelu")
        self.fc = EqualLinear(channels * h * w, channels, activation="lrelu")
        self.cmap_dim = channels if self.num_classes else 0
        self.out = EqualLinear(channels, self.cmap_dim or 1)
        self.mapping = (
            MappingNetwork(0, self.num_classes, self.cmap_dim, num_ws=None, layers=params.mapping_layers,
                           lr_multiplier=0.01, w_avg_decay=None)
            if self.num_classes else None
        )

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images ``(N, C, H, W)`` (and labels ``(N,)`` when conditional) → logits ``(N,)``."""
        x = self.blocks(x)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.mapping is not None:
            if labels is None:
                raise GankitError("this discriminator is conditional: call it as discriminator(x, labels)")
            cmap = self.mapping(None, labels)
            x = (x * cmap).sum(dim=1, keepdim=True) * (1.0 / math.sqrt(self.cmap_dim))
        return x.reshape(x.shape[0])


def register(register: Register) -> None:
    """Register the StyleGAN2 generator and discriminator."""
    register("generator", "stylegan2", StyleGAN2Generator, StyleGAN2GeneratorParams)
    register("discriminator", "stylegan2", StyleGAN2Discriminator, StyleGAN2DiscriminatorParams)
