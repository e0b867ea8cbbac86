"""An encoder that needs no downloaded weights: random filters on an image pyramid.

Random weights in a deep network such as VGG give style transfer little to
work with: the features of deep random layers vary with every pixel, their
gradients are high-frequency noise, and an image optimised against them turns
to colour noise. Shallow random networks do describe textures well when they
see the image at several scales (Ustyuzhaninov et al., "What does it take to
generate natural textures?", ICLR 2017). :class:`RandomPyramidEncoder` is
built on that finding:

- the image (RGB in [0, 1], centred on 0.5) is low-passed and halved
  ``levels - 1`` times (antialiased bilinear), giving levels at strides
  1, 2, 4, 8, 16;
- at each level a short chain of ``depth`` random convolutions with ReLUs
  reads that level's image: the first has ``channels`` filters of
  ``kernel_size`` with zero spatial mean (they respond to edges and
  textures, not to flat colour, so a flat region cannot satisfy them with
  noise), the next ones mix those channels (``inner_kernel_size``, 1x1 by
  default);
- every convolution is then normalised like the random VGG (zero mean, unit
  variance per channel on seeded 1/f noise), so each level weighs the same.

Layers are named as in VGG, block ``b`` being level ``b`` at stride
``2^(b-1)``: ``conv{b}_{n}`` and ``relu{b}_{n}`` for the ``n``-th convolution
of level ``b``. Content is matched well at ``relu2_2`` (stride 2): deeper
levels see only a blurred image, so a content layer there keeps the layout
but not the shapes. Each level draws its filters from its own seeded
generator, so the weights do not depend on how many levels are built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.registry import did_you_mean
from gankit.style.vgg import Layer, pink_noise

ARCH = "random-pyramid"
#: The most levels (blocks) an encoder has: layer names have one digit for the block, as VGG's.
MAX_LEVELS = 5
MAX_DEPTH = 4


def architecture(levels: int, depth: int, channels: int) -> tuple[Layer, ...]:
    """Every layer of a pyramid of ``levels`` levels with ``depth`` convolutions each, in forward order."""
    if not 1 <= levels <= MAX_LEVELS:
        raise GankitError(f"random-pyramid: levels must be 1 to {MAX_LEVELS}, got {levels}")
    if not 1 <= depth <= MAX_DEPTH:
        raise GankitError(f"random-pyramid: depth must be 1 to {MAX_DEPTH}, got {depth}")
    out: list[Layer] = []
    for level in range(1, levels + 1):
        stride = 2 ** (level - 1)
        in_channels = 3
        for n in range(1, depth + 1):
            out.append(Layer(f"conv{level}_{n}", "conv", in_channels, channels, stride))
            out.append(Layer(f"relu{level}_{n}", "relu", channels, channels, stride))
            in_channels = channels
    return tuple(out)


def _level(name: str) -> int:
    """The level (block) of a layer name: ``relu3_2`` -> 3."""
    return int(name[4])


class RandomPyramidEncoder(nn.Module):
    """Random convolutions on an image pyramid, with VGG-style layer names; see :mod:`gankit.style.pyramid`.

    ``encoder(images, ["relu1_2", "relu2_2"])`` returns those layers'
    activations for RGB ``images`` in [0, 1]. Only the levels up to the
    deepest of ``layers`` are built when ``layers`` is given.
    """

    def __init__(
        self,
        *,
        levels: int = 5,
        depth: int = 2,
        channels: int = 128,
        kernel_size: int = 5,
        inner_kernel_size: int = 1,
        seed: int = 0,
        layers: Iterable[str] | None = None,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise GankitError(f"random-pyramid: kernel_size must be odd and positive, got {kernel_size}")
        self.arch = ARCH
        self.kernel_size = kernel_size
        self.inner_kernel_size = inner_kernel_size
        self.depth = depth
        self.seed = seed
        plan = architecture(levels, depth, channels)
        if layers is not None:
            wanted = list(layers)
            self._check(wanted, tuple(layer.name for layer in plan))
            deepest = max(map(_level, wanted)) if wanted else levels
            plan = tuple(layer for layer in plan if _level(layer.name) <= deepest)
        self._plan = plan
        self.levels = max(_level(layer.name) for layer in plan)
        for layer in plan:
            if layer.kind == "conv":
                size = kernel_size if layer.name.endswith("_1") else inner_kernel_size
                self.add_module(layer.name, nn.Conv2d(layer.in_channels, layer.channels, size, padding=size // 2))
        self._init_random()
        self.weights_source = f"random (seed {seed})"

    # ------------------------------------------------------------------ layout

    @property
    def layer_names(self) -> tuple[str, ...]:
        """The layers this encoder can return."""
        return tuple(layer.name for layer in self._plan)

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layers this encoder keeps, in forward order."""
        return self._plan

    def _check(self, names: Iterable[str], known: tuple[str, ...]) -> None:
        unknown = [name for name in names if name not in known]
        if unknown:
            hints = "".join(did_you_mean(name, known) for name in unknown)
            raise GankitError(
                f"{ARCH} has no layer{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}.{hints}"
                f" Its layers: {', '.join(known)}."
            )

    def conv(self, name: str) -> nn.Conv2d:
        """The convolution called ``name`` (``"conv2_1"``)."""
        module = getattr(self, name)
        assert isinstance(module, nn.Conv2d)
        return module

    # ------------------------------------------------------------------ weights

    @torch.no_grad()
    def _init_random(self) -> None:
        """Seeded Gaussian filters (zero spatial mean in each level's first layer), then normalised."""
        for level in range(1, self.levels + 1):
            generator = torch.Generator().manual_seed(self.seed * 1009 + level)
            for n in range(1, self.depth + 1):
                conv = self.conv(f"conv{level}_{n}")
                weight = torch.randn(conv.weight.shape, generator=generator)
                if n == 1:
                    weight = weight - weight.mean(dim=(2, 3), keepdim=True)
                conv.weight.copy_(weight / math.sqrt(weight[0].numel()))
                assert conv.bias is not None
                conv.bias.zero_()
        self._normalise(pink_noise(4, 128, seed=self.seed))

    @torch.no_grad()
    def _normalise(self, reference: Tensor) -> None:
        for level, x in enumerate(self._pyramid(reference), start=1):
            for n in range(1, self.depth + 1):
                conv = self.conv(f"conv{level}_{n}")
                y = self._conv(conv, x)
                mean = y.mean(dim=(0, 2, 3))
                std = y.std(dim=(0, 2, 3)).clamp_min(1e-6)
                conv.weight.div_(std.view(-1, 1, 1, 1))
                assert conv.bias is not None
                conv.bias.sub_(mean).div_(std)
                x = F.relu(self._conv(conv, x))

    # ------------------------------------------------------------------ forward

    def _pyramid(self, images: Tensor, levels: int | None = None) -> list[Tensor]:
        x = images - 0.5
        out = [x]
        for _ in range((levels or self.levels) - 1):
            height, width = x.shape[-2:]
            x = F.interpolate(x, size=(max(1, height // 2), max(1, width // 2)), mode="bilinear", antialias=True,
                              align_corners=False)
            out.append(x)
        return out

    @staticmethod
    def _conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
        pad = conv.kernel_size[0] // 2
        mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
        return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode=mode), conv.weight, conv.bias)

    def forward(self, images: Tensor, layers: Iterable[str] | None = None) -> dict[str, Tensor]:
        """The activations of ``layers`` (default: every layer) for ``images`` in [0, 1]."""
        wanted = set(self.layer_names if layers is None else layers)
        self._check(sorted(wanted), self.layer_names)
        if not wanted:
            return {}
        needed = {level: 0 for level in range(1, self.levels + 1)}
        for name in wanted:
            needed[_level(name)] = max(needed[_level(name)], int(name.rsplit("_", 1)[1]))
        out: dict[str, Tensor] = {}
        for level, x in enumerate(self._pyramid(images, max(map(_level, wanted))), start=1):
            for n in range(1, needed[level] + 1):
                x = self._conv(self.conv(f"conv{level}_{n}"), x)
                if f"conv{level}_{n}" in wanted:
                    out[f"conv{level}_{n}"] = x
                x = F.relu(x)
                if f"relu{level}_{n}" in wanted:
                    out[f"relu{level}_{n}"] = x
        return out

    def estimate_bytes(self, height: int, width: int, layers: Iterable[str] | None = None, *, batch: int = 1) -> int:
        """Peak activation bytes of a forward and backward pass at ``height`` x ``width`` (float32, no margin)."""
        names = set(self.layer_names if layers is None else layers)
        deepest = max(map(_level, names)) if names else self.levels
        total = 3 * height * width * 4 * 2
        for layer in self._plan:
            if _level(layer.name) > deepest:
                break
            total += 2 * layer.channels * max(height // layer.stride, 1) * max(width // layer.stride, 1) * 4
        return batch * total

    def extra_repr(self) -> str:
        return f"levels={self.levels}, depth={self.depth}, kernel_size={self.kernel_size}, seed={self.seed}"
