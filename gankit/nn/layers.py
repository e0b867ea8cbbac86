"""Helpers the built-in networks share: activations, initialisation, spectral norm, minibatch std, shape checks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils import parametrizations, parametrize

from gankit.errors import GankitError
from gankit.registry import Params

#: Hidden-layer nonlinearities a network part may choose by name.
ActivationName = Literal["relu", "leaky-relu"]

#: ``"dcgan"``: the initialisation of Radford et al. (2015); ``"default"``: PyTorch's own.
InitName = Literal["dcgan", "default"]

#: Layers with a ``weight`` that spectral norm and the DCGAN initialisation act on.
WEIGHTED_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)

#: Normalisation layers whose affine scale the DCGAN initialisation draws around 1.
NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)

LEAKY_SLOPE = 0.2


def activation(name: str, *, slope: float = LEAKY_SLOPE) -> nn.Module:
    """A fresh activation module by name: ``"relu"`` or ``"leaky-relu"`` (negative slope ``slope``)."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky-relu":
        return nn.LeakyReLU(slope)
    raise ValueError(f"unknown activation {name!r}: use 'relu' or 'leaky-relu'")


def init_weights(module: nn.Module, scheme: str) -> nn.Module:
    """Initialise ``module``'s layers in place and return it.

    ``"dcgan"`` follows Radford et al. (2015): every linear and (transposed)
    convolution weight is drawn from N(0, 0.02) with zero bias, and every
    affine normalisation scale from N(1, 0.02) with zero shift. ``"default"``
    keeps PyTorch's initialisation. Call it before :func:`apply_spectral_norm`,
    which moves the weights behind a parametrisation.
    """
    if scheme == "default":
        return module
    if scheme != "dcgan":
        raise ValueError(f"unknown initialisation {scheme!r}: use 'dcgan' or 'default'")
    for layer in module.modules():
        weight, bias = _tensor(layer, "weight"), _tensor(layer, "bias")
        if weight is None:
            continue
        if isinstance(layer, WEIGHTED_LAYERS):
            nn.init.normal_(weight, 0.0, 0.02)
        elif isinstance(layer, NORM_LAYERS):
            nn.init.normal_(weight, 1.0, 0.02)
        else:
            continue
        if bias is not None:
            nn.init.zeros_(bias)
    return module


def _tensor(layer: nn.Module, name: str) -> Tensor | None:
    """``layer.name`` when it is a tensor (a weight or bias that exists), else None."""
    value = getattr(layer, name, None)
    return value if isinstance(value, Tensor) else None


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Put spectral normalisation (Miyato et al. 2018) on every linear and convolution weight of ``module``.

    Each weight is divided by an estimate of its largest singular value,
    refined by one power-iteration step per training forward pass, which keeps
    every layer (and so the whole network) roughly 1-Lipschitz. Layers already
    parametrised are left alone. Returns ``module``.
    """
    layers = [m for m in module.modules() if isinstance(m, WEIGHTED_LAYERS)]
    for layer in layers:
        if not parametrize.is_parametrized(layer, "weight"):
            parametrizations.spectral_norm(layer)
    return module


class MinibatchStdParams(Params):
    """The minibatch-standard-deviation options a discriminator's parameters share."""

    minibatch_std: bool = Field(
        default=False,
        description="append the minibatch standard deviation before the output layer (Karras et al. 2018): "
        "lets the discriminator see a collapsed batch",
    )
    minibatch_std_group: int = Field(
        default=4, ge=1, description="samples per minibatch-std group (the largest divisor of the batch up to it)"
    )


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018): append how varied the batch is as extra features.

    The batch is split into groups of ``group_size`` samples (the largest
    size up to ``group_size`` that divides the batch; one group when the batch
    is smaller). Within each group the standard deviation of every feature
    across the group's samples is taken, and averaged over ``features``
    slices of the channels (and over all positions of an image). Each sample
    receives its group's ``features`` numbers: as extra columns for vectors
    ``(N, F)``, as constant extra channels for images ``(N, C, H, W)``. A
    discriminator that sees them can tell a collapsed batch (near-zero
    spread) from a varied real one, which discourages mode collapse.
    """

    def __init__(self, group_size: int = 4, features: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        if group_size < 1 or features < 1:
            raise ValueError("group_size and features must be positive")
        self.group_size = group_size
        self.features = features
        self.eps = eps

    def group_for(self, batch: int) -> int:
        """The group size used for a batch of ``batch`` samples."""
        size = min(self.group_size, batch)
        while batch % size:
            size -= 1
        return size

    def forward(self, x: Tensor) -> Tensor:
        """``(N, F)`` → ``(N, F + features)``; ``(N, C, H, W)`` → ``(N, C + features, H, W)``."""
        if x.dim() not in (2, 4):
            raise ValueError(f"minibatch standard deviation takes (N, F) or (N, C, H, W), got {tuple(x.shape)}")
        batch, channels = x.shape[0], x.shape[1]
        if channels % self.features:
            raise ValueError(f"{channels} channels cannot be split into {self.features} minibatch-std features")
        group = self.group_for(batch)
        spatial = x.shape[2:]
        y = x.float().reshape(group, batch // group, self.features, channels // self.features, *spatial)
        # The variance written out: Tensor.var over the leading dimension is 30 times slower on a CPU.
        y = ((y - y.mean(dim=0)).square().mean(dim=0) + self.eps).sqrt()
        y = y.flatten(2).mean(dim=2)  # (N / group, features)
        y = y.repeat(group, 1).to(x.dtype)  # sample i belongs to group i % (N / group)
        if x.dim() == 4:
            y = y[:, :, None, None].expand(batch, self.features, *spatial)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, features={self.features}"


def sample_shape(shape: Any, part: str) -> tuple[int, ...]:
    """Check the ``shape`` a network part received as context and return it as a tuple of ints.

    ``part`` names the part in the error, e.g. ``"generator 'mlp'"``.
    """
    if shape is None:
        raise GankitError(
            f"{part} needs the shape of one sample (context 'shape', e.g. (2,) for points or (3, 32, 32) for images)"
        )
    if isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, Sequence) or not shape:
        raise GankitError(f"{part}: bad sample shape {shape!r}: give (D,) for points or (C, H, W) for images")
    out = tuple(shape)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in out):
        raise GankitError(f"{part}: bad sample shape {shape!r}: every size must be a positive integer")
    return out


def square_power_of_two(shape: Any, part: str, *, minimum: int = 8) -> tuple[int, int]:
    """Check that ``shape`` is ``(C, S, S)`` with ``S`` a power of two of at least ``minimum``; return ``(C, S)``.

    The error names the resolution received and the nearest sizes the network accepts.
    """
    checked = sample_shape(shape, part)
    if len(checked) != 3:
        raise GankitError(
            f"{part} works on images of shape (C, H, W), got a sample shape {checked}; "
            "for points use the 'mlp' networks"
        )
    channels, height, width = checked
    if height != width:
        raise GankitError(
            f"{part} needs square images, got {height}x{width} (shape {checked}); "
            f"resize or crop the data to {_accepted(max(height, width), minimum)}"
        )
    if height < minimum or height & (height - 1):
        raise GankitError(
            f"{part} needs a resolution that is a power of two of at least {minimum} (8, 16, 32, 64, ...), "
            f"got {height}x{width}; resize the data to {_accepted(height, minimum)}"
        )
    return channels, height


def _accepted(size: int, minimum: int) -> str:
    """The powers of two next to ``size`` that a network accepts, as text for an error message."""
    below = 1 << max(0, math.floor(math.log2(size)))
    above = below if below == size else below * 2
    sizes = sorted({s for s in (below, above) if s >= minimum} or {minimum})
    return " or ".join(f"{s}x{s}" for s in sizes)


#: Sides a base grid may have: a convolutional network of :func:`image_grid` starts (or ends) on such a grid.
BASE_SIDES = range(3, 17)


def image_grid(shape: Any, part: str) -> tuple[int, tuple[int, int], int]:
    """Check that ``shape`` is ``(C, H, W)`` with ``H x W`` a base grid doubled ``blocks`` times; return all three.

    The base grid is what halving both sides as often as they stay even (and
    at least 3) leaves; its sides must lie in 3..16 and there must be at least
    one doubling. Square powers of two have the 4 x 4 grid (8, 16, 32, ...);
    4:3 images a 3 x 4 one (96 x 128, ...), 16:9 a 9 x 16 one (72 x 128,
    144 x 256, ...). Returns ``(C, (base_h, base_w), blocks)``; the error names
    the size received and the nearest sizes of the same aspect ratio that work.
    """
    checked = sample_shape(shape, part)
    if len(checked) != 3:
        raise GankitError(
            f"{part} works on images of shape (C, H, W), got a sample shape {checked}; "
            "for points use the 'mlp' networks"
        )
    channels, height, width = checked
    blocks = 0
    while height % (2 << blocks) == 0 and width % (2 << blocks) == 0 and min(height, width) >> (blocks + 1) >= 3:
        blocks += 1
    base = (height >> blocks, width >> blocks)
    if blocks == 0 or max(base) > BASE_SIDES[-1]:
        raise GankitError(
            f"{part} cannot make {height}x{width} images: height and width must be a base grid of 3 to 16 pixels "
            "a side doubled the same number of times (at least once), e.g. 8x8, 64x64, 96x128 (4:3), "
            f"72x128 (16:9); resize the data to {_nearest_grids(height, width)}"
        )
    return channels, base, blocks


def _nearest_grids(height: int, width: int) -> str:
    """The two sizes closest to ``height x width`` (in aspect ratio, then area) that :func:`image_grid` accepts."""
    candidates = []
    for base_h in BASE_SIDES:
        for base_w in BASE_SIDES:
            for blocks in range(1, 11):
                h, w = base_h << blocks, base_w << blocks
                if h <= 8192 and w <= 8192:
                    aspect = abs(math.log((w / h) / (width / height)))
                    candidates.append((round(aspect, 2), abs(math.log(h * w / (height * width))), h, w))
    best = sorted(set(candidates))[:2]
    return " or ".join(f"{h}x{w}" for *_, h, w in best)
