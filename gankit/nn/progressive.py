"""Layers for high-resolution GANs: progressive growing (Karras et al. 2018) and MSG-GAN (Karnewar & Wang 2019).

- :class:`EqualizedConv2d` and :class:`EqualizedLinear`: the *equalised
  learning rate* — weights drawn from N(0, 1) and multiplied at every forward
  pass by He's constant ``gain / sqrt(fan_in)``, so that adaptive optimisers
  move every layer at the same speed. With ``equalized=False`` the constant is
  folded into the initial weights instead (plain He initialisation).
- :class:`PixelNorm`: each pixel's feature vector scaled to unit root mean square.
- The discriminators' minibatch standard deviation is
  :class:`gankit.nn.layers.MinibatchStd`, shared with the ``mlp`` and ``dcgan`` networks.
- Resizing and fade-in helpers: :func:`upsample2` (nearest neighbour),
  :func:`downsample2` (2x2 average), :func:`downsample_to`, :func:`pyramid`,
  :func:`fade` and :func:`fade_real`.
- The blocks both network families are built from, and :class:`GrowingNetwork`,
  the base of networks that change resolution while they train.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.nn.layers import LEAKY_SLOPE, MinibatchStd

SQRT2 = math.sqrt(2.0)
"""He's gain for (leaky) ReLU layers."""

BASE_RESOLUTION = 4
"""Side of the smallest image and feature map of the growing and multi-scale networks."""

_EPS = 1e-8


class EqualizedConv2d(nn.Module):
    """A square 2-D convolution with an equalised learning rate (or plain He initialisation).

    With ``equalized`` the weights are N(0, 1) and the forward pass multiplies
    them by ``gain / sqrt(in_channels * kernel_size**2)``; without it the
    weights are drawn from N(0, that constant**2) once and used as they are.
    Biases start at zero.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        padding: int = 0,
        gain: float = SQRT2,
        equalized: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        he = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.padding = padding
        self.scale = he if equalized else 1.0
        init_std = 1.0 if equalized else he
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) * init_std)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x`` with the scaled weights."""
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        k = self.weight.shape[-1]
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={k}, padding={self.padding}, "
            f"scale={self.scale:.4g}"
        )


class EqualizedLinear(nn.Module):
    """A linear layer with an equalised learning rate (or plain He initialisation); see :class:`EqualizedConv2d`."""

    def __init__(
        self, in_features: int, out_features: int, *, gain: float = SQRT2, equalized: bool = True, bias: bool = True
    ) -> None:
        super().__init__()
        he = gain / math.sqrt(in_features)
        self.in_features = in_features
        self.out_features = out_features
        self.scale = he if equalized else 1.0
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (1.0 if equalized else he))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """Apply the scaled weights to ``x``."""
        return F.linear(x, self.weight * self.scale, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, scale={self.scale:.4g}"


class PixelNorm(nn.Module):
    """Pixelwise feature normalisation: ``x / sqrt(mean over channels of x**2 + 1e-8)``.

    Works on feature maps ``(N, C, H, W)`` and on vectors ``(N, C)`` alike.
    """

    def forward(self, x: Tensor) -> Tensor:
        """Normalise every position's channel vector of ``x``."""
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + _EPS)


def upsample2(x: Tensor) -> Tensor:
    """Double the resolution of ``x`` by repeating every pixel (nearest neighbour)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample2(x: Tensor) -> Tensor:
    """Halve the resolution of ``x`` by averaging 2x2 blocks."""
    return F.avg_pool2d(x, 2)


def downsample_to(x: Tensor, resolution: int) -> Tensor:
    """Average square images ``x`` (``S`` x ``S``) down to ``resolution`` x ``resolution``, a divisor of ``S``."""
    size = x.shape[-1]
    if size == resolution:
        return x
    if resolution > size or size % resolution:
        raise ValueError(f"cannot average {size}x{size} images down to {resolution}x{resolution}")
    return F.avg_pool2d(x, size // resolution)


def pyramid(x: Tensor, smallest: int = BASE_RESOLUTION) -> list[Tensor]:
    """``x`` and its 2x2-averaged halvings down to ``smallest``, coarsest first."""
    scales = [x]
    while scales[-1].shape[-1] > smallest:
        scales.append(downsample2(scales[-1]))
    return scales[::-1]


def fade(old: Tensor, new: Tensor, alpha: float | Tensor) -> Tensor:
    """The fade-in blend ``(1 - alpha) * old + alpha * new``, written as ``old + alpha * (new - old)``."""
    if isinstance(alpha, Tensor):
        alpha = alpha.to(new.dtype)
    return old + alpha * (new - old)


def fade_real(x: Tensor, resolution: int, alpha: float | Tensor) -> Tensor:
    """Real images at ``resolution``, faded in the way the generator's output is.

    ``x`` is averaged down to ``resolution``; while ``alpha < 1`` it is blended
    with its own version at half the resolution, upsampled by pixel
    repetition: ``(1 - alpha) * upsample2(downsample2(x_r)) + alpha * x_r``.
    """
    current = downsample_to(x, resolution)
    if isinstance(alpha, Tensor) or alpha < 1.0:
        return fade(upsample2(downsample2(current)), current, alpha)
    return current


def leaky_relu(x: Tensor) -> Tensor:
    """LeakyReLU with the slope the growing networks use (0.2)."""
    return F.leaky_relu(x, LEAKY_SLOPE)


def channels_at(level: int, levels: int, width: int, max_width: int) -> int:
    """Channels of the feature maps at ``level`` (0 is 4x4, ``levels`` the full resolution).

    ``width`` at the full resolution, doubling at each halving, capped at ``max_width``.
    """
    return min(width * 2 ** (levels - level), max_width)


def levels_between(resolution: int) -> int:
    """How many doublings lead from ``BASE_RESOLUTION`` to ``resolution``."""
    return resolution.bit_length() - BASE_RESOLUTION.bit_length()


class GeneratorStem(nn.Module):
    """The 4x4 start of a growing generator: (pixel-normalised) z → dense 4x4 map → 3x3 convolution."""

    def __init__(self, latent_dim: int, channels: int, *, pixel_norm: bool, equalized: bool) -> None:
        super().__init__()
        self.channels = channels
        self.norm: nn.Module = PixelNorm() if pixel_norm else nn.Identity()
        self.dense = EqualizedLinear(latent_dim, channels * BASE_RESOLUTION**2, equalized=equalized)
        self.conv = EqualizedConv2d(channels, channels, 3, padding=1, equalized=equalized)

    def forward(self, z: Tensor) -> Tensor:
        """Latents ``(N, latent_dim)`` → features ``(N, channels, 4, 4)``."""
        x = self.dense(self.norm(z.flatten(1))).view(z.shape[0], self.channels, BASE_RESOLUTION, BASE_RESOLUTION)
        x = self.norm(leaky_relu(x))
        return self.norm(leaky_relu(self.conv(x)))


class GeneratorBlock(nn.Module):
    """Doubles the resolution: nearest-neighbour upsampling, two 3x3 convolutions with LeakyReLU (and pixel norm)."""

    def __init__(self, in_channels: int, out_channels: int, *, pixel_norm: bool, equalized: bool) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, padding=1, equalized=equalized)
        self.conv2 = EqualizedConv2d(out_channels, out_channels, 3, padding=1, equalized=equalized)
        self.norm: nn.Module = PixelNorm() if pixel_norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in, S, S)`` → ``(N, out, 2S, 2S)``."""
        x = self.norm(leaky_relu(self.conv1(upsample2(x))))
        return self.norm(leaky_relu(self.conv2(x)))


class ToImage(nn.Module):
    """Features → an image in [-1, 1]: a 1x1 convolution (gain 1) then tanh."""

    def __init__(self, in_channels: int, image_channels: int, *, equalized: bool) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(in_channels, image_channels, 1, gain=1.0, equalized=equalized)

    def forward(self, x: Tensor) -> Tensor:
        """Features ``(N, C, S, S)`` → image ``(N, image_channels, S, S)``."""
        return torch.tanh(self.conv(x))

def generator_layers(
    latent_dim: int, channels: int, levels: int, *, width: int, max_width: int, pixel_norm: bool, equalized: bool
) -> tuple[GeneratorStem, nn.ModuleList, nn.ModuleList]:
    """The layers of a generator that can emit an image at every scale from 4x4 up ``levels`` doublings.

    Returns the 4x4 stem, the doubling blocks, and one to-image layer per
    resolution; the progressive and MSG generators share this stack and differ
    only in which outputs they use.
    """
    widths = [channels_at(level, levels, width, max_width) for level in range(levels + 1)]
    stem = GeneratorStem(latent_dim, widths[0], pixel_norm=pixel_norm, equalized=equalized)
    blocks = nn.ModuleList(
        GeneratorBlock(widths[i], widths[i + 1], pixel_norm=pixel_norm, equalized=equalized) for i in range(levels)
    )
    to_image = nn.ModuleList(ToImage(w, channels, equalized=equalized) for w in widths)
    return stem, blocks, to_image


class FromImage(nn.Module):
    """An image → features: a 1x1 convolution then LeakyReLU."""

    def __init__(self, image_channels: int, out_channels: int, *, equalized: bool) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(image_channels, out_channels, 1, equalized=equalized)

    def forward(self, x: Tensor) -> Tensor:
        """Image ``(N, image_channels, S, S)`` → features ``(N, out_channels, S, S)``."""
        return leaky_relu(self.conv(x))


class DiscriminatorBlock(nn.Module):
    """Halves the resolution: two 3x3 convolutions with LeakyReLU, then 2x2 average pooling."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, *, equalized: bool) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, mid_channels, 3, padding=1, equalized=equalized)
        self.conv2 = EqualizedConv2d(mid_channels, out_channels, 3, padding=1, equalized=equalized)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in, S, S)`` → ``(N, out, S/2, S/2)``."""
        return downsample2(leaky_relu(self.conv2(leaky_relu(self.conv1(x)))))


class DiscriminatorHead(nn.Module):
    """The 4x4 end of a discriminator: (minibatch stddev), 3x3 and 4x4 convolutions, a linear logit."""

    def __init__(self, in_channels: int, channels: int, *, minibatch_group: int | None, equalized: bool) -> None:
        super().__init__()
        self.stddev: nn.Module = MinibatchStd(minibatch_group) if minibatch_group else nn.Identity()
        extra = 1 if minibatch_group else 0
        self.conv = EqualizedConv2d(in_channels + extra, channels, 3, padding=1, equalized=equalized)
        self.dense = EqualizedConv2d(channels, channels, BASE_RESOLUTION, equalized=equalized)
        self.logit = EqualizedLinear(channels, 1, gain=1.0, equalized=equalized)

    def forward(self, x: Tensor) -> Tensor:
        """Features ``(N, in, 4, 4)`` → logits ``(N,)``."""
        x = leaky_relu(self.conv(self.stddev(x)))
        x = leaky_relu(self.dense(x)).flatten(1)
        return self.logit(x).reshape(x.shape[0])


def _sync_progress(module: nn.Module, incompatible_keys: Any) -> None:
    """After ``load_state_dict``: read the stage back from the loaded buffers."""
    if isinstance(module, GrowingNetwork):
        module.set_progress(int(module.current_resolution), float(module.alpha))


class GrowingNetwork(nn.Module):
    """Base of a network that trains at a resolution that grows from 4x4 to ``resolution``.

    The current resolution and the fade-in ``alpha`` live in two buffers,
    ``current_resolution`` and ``alpha``, so that they travel with the
    network's ``state_dict`` (checkpoints, exported generators, the EMA copy's
    buffers) and are restored by ``load_state_dict``. The forward pass reads
    a plain-Python copy of them (``level``: 0 at 4x4, ``levels`` at full
    resolution; ``fading``: whether ``alpha < 1``), which
    :meth:`set_progress` and ``load_state_dict`` keep in step. A new network
    is at full resolution with ``alpha = 1``; the ``progressive`` trick moves it.
    """

    current_resolution: Tensor
    alpha: Tensor

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.levels = levels_between(resolution)
        self.register_buffer("current_resolution", torch.tensor(resolution, dtype=torch.int64))
        self.register_buffer("alpha", torch.tensor(1.0))
        self.level = self.levels
        self.fading = False
        self.register_load_state_dict_post_hook(_sync_progress)

    def set_progress(self, resolution: int, alpha: float) -> None:
        """Work at ``resolution`` (a power of two from 4 to full), the newest block faded in by ``alpha``.

        ``alpha`` in [0, 1]: 1 uses the newest block alone; below 1 its output
        is blended with the upsampled output of the previous resolution. At
        4x4, where there is no previous resolution, ``alpha`` must be 1.
        """
        level = levels_between(resolution)
        if resolution < BASE_RESOLUTION or resolution & (resolution - 1) or not 0 <= level <= self.levels:
            raise GankitError(
                f"{type(self).__name__} grows from {BASE_RESOLUTION}x{BASE_RESOLUTION} to "
                f"{self.resolution}x{self.resolution} by doubling; it cannot work at {resolution}x{resolution}"
            )
        if not 0.0 <= alpha <= 1.0 or (level == 0 and alpha < 1.0):
            raise GankitError(
                f"fade-in alpha must be in [0, 1] (and 1 at {BASE_RESOLUTION}x{BASE_RESOLUTION}), got {alpha}"
            )
        with torch.no_grad():
            self.current_resolution.fill_(resolution)
            self.alpha.fill_(alpha)
        self.level = level
        self.fading = alpha < 1.0

    @property
    def progress(self) -> tuple[int, float]:
        """``(current resolution, alpha)``."""
        return BASE_RESOLUTION << self.level, float(self.alpha)


def growing_networks(*roots: nn.Module | None) -> list[GrowingNetwork]:
    """Every :class:`GrowingNetwork` inside ``roots`` (each module once)."""
    found: dict[int, GrowingNetwork] = {}
    for root in roots:
        if root is None:
            continue
        for module in root.modules():
            if isinstance(module, GrowingNetwork):
                found.setdefault(id(module), module)
    return list(found.values())
