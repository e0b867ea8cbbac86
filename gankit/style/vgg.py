"""VGG16 and VGG19 feature extractors with named layers (Simonyan and Zisserman, 2015).

The networks are defined here, not taken from torchvision. Layers are named
the way the style-transfer literature names them: ``conv{block}_{n}``,
``relu{block}_{n}`` and ``pool{block}``, blocks 1 to 5 (VGG19 has four
convolutions in blocks 3 to 5, VGG16 three). The layer order is torchvision's
``features`` order, so its published weights map onto these names one to one.

An encoder takes RGB images in [0, 1] of shape ``(N, 3, H, W)`` and applies
the ImageNet normalisation itself. It returns a dict of the requested layers'
activations from a single forward pass that stops at the deepest of them;
:meth:`VGGEncoder.trim` drops every layer after the deepest one in use.

Random weights (``weights = "random"``) are seeded Kaiming-normal
convolutions whose outputs are then normalised layer by layer: each
convolution's weights and bias are rescaled so that, on a fixed reference
input (seeded noise with the 1/f spectrum of natural images), every channel
has zero mean and unit variance before its ReLU. The rescaled weights are
ordinary weights: saved and loaded back, they give identical features.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.registry import did_you_mean

#: Convolutions per block of each architecture.
ARCHS: dict[str, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
#: Output channels of each block's convolutions.
BLOCK_CHANNELS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Pooling = Literal["max", "avg"]


@dataclass(frozen=True)
class Layer:
    """One named layer: what it is, its output channels and its output stride (1 to 32)."""

    name: str
    kind: Literal["conv", "relu", "pool"]
    in_channels: int
    channels: int
    stride: int


@cache
def architecture(arch: str) -> tuple[Layer, ...]:
    """Every layer of ``arch`` (``"vgg16"`` or ``"vgg19"``) in forward order."""
    if arch not in ARCHS:
        raise GankitError(f"unknown VGG architecture {arch!r}.{did_you_mean(arch, ARCHS)} Known: {', '.join(ARCHS)}.")
    out: list[Layer] = []
    in_channels, stride = 3, 1
    for block, (count, channels) in enumerate(zip(ARCHS[arch], BLOCK_CHANNELS), start=1):
        for n in range(1, count + 1):
            out.append(Layer(f"conv{block}_{n}", "conv", in_channels, channels, stride))
            out.append(Layer(f"relu{block}_{n}", "relu", channels, channels, stride))
            in_channels = channels
        stride *= 2
        out.append(Layer(f"pool{block}", "pool", channels, channels, stride))
    return tuple(out)


def layer_names(arch: str) -> tuple[str, ...]:
    """The names of every layer of ``arch``, in forward order."""
    return tuple(layer.name for layer in architecture(arch))


def check_layers(arch: str, names: Iterable[str], *, available: Iterable[str] | None = None) -> None:
    """Raise a :class:`GankitError` naming each layer of ``names`` that ``arch`` (or ``available``) lacks."""
    known = tuple(available) if available is not None else layer_names(arch)
    unknown = [name for name in names if name not in known]
    if unknown:
        hints = "".join(did_you_mean(name, known) for name in unknown)
        raise GankitError(
            f"{arch} has no layer{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}.{hints}"
            f" Its layers: {', '.join(known)}."
        )


def deepest_layer(arch: str, names: Iterable[str]) -> str:
    """The layer of ``names`` that comes last in ``arch``."""
    names = list(names)
    check_layers(arch, names)
    if not names:
        raise GankitError("no encoder layers requested")
    order = {name: i for i, name in enumerate(layer_names(arch))}
    return max(names, key=order.__getitem__)


def activation_bytes(
    arch: str, deepest: str, height: int, width: int, *, pooling: Pooling = "max", batch: int = 1
) -> int:
    """Bytes that a forward and backward pass of ``arch`` up to ``deepest`` holds at most, in float32.

    It counts the activations autograd saves (ReLUs work in place, max
    pooling also keeps int64 indices) and the two largest gradient buffers
    alive at once during the backward pass. Convolution workspaces are not
    counted; callers add a margin.
    """
    saved = 3 * height * width * 4
    largest = 0
    for layer in architecture(arch):
        numel = layer.channels * max(height // layer.stride, 1) * max(width // layer.stride, 1)
        if layer.kind == "conv":
            saved += numel * 4
        elif layer.kind == "pool":
            saved += numel * (12 if pooling == "max" else 4)
        largest = max(largest, numel * 4)
        if layer.name == deepest:
            break
    return batch * (saved + 2 * largest)


def pink_noise(batch: int, size: int, *, seed: int) -> Tensor:
    """Seeded RGB noise in [0, 1] whose spectrum falls as 1/f, like natural images (CPU, float32)."""
    return _pink_noise(batch, size, seed).clone()


@cache
def _pink_noise(batch: int, size: int, seed: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    white = torch.randn(batch, 3, size, size, generator=generator)
    fy = torch.fft.fftfreq(size).view(-1, 1)
    fx = torch.fft.rfftfreq(size).view(1, -1)
    radius = torch.sqrt(fy**2 + fx**2).clamp_min(1.0 / size)
    shaped = torch.fft.irfft2(torch.fft.rfft2(white) / radius, s=(size, size))
    shaped = shaped - shaped.mean(dim=(1, 2, 3), keepdim=True)
    shaped = shaped / shaped.std(dim=(1, 2, 3), keepdim=True)
    return (0.5 + 0.2 * shaped).clamp(0.0, 1.0)


class VGGEncoder(nn.Module):
    """A VGG16 or VGG19 feature extractor with named layers; see :mod:`gankit.style.vgg`.

    ``encoder(images, ["relu1_1", "relu4_2"])`` returns those layers'
    activations for RGB ``images`` in [0, 1]. Parameters are named after their
    convolution (``conv1_1.weight``); the module starts uninitialised: call
    :meth:`load_weights` or :meth:`init_random` (``weights_source`` says which).
    """

    mean: Tensor
    std: Tensor

    def __init__(self, arch: str = "vgg19", *, pooling: Pooling = "max", layers: Iterable[str] | None = None) -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise GankitError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        self.arch = arch
        self.pooling: Pooling = pooling
        self.weights_source = "uninitialised"
        plan = architecture(arch)
        if layers is not None:
            last = deepest_layer(arch, layers)
            plan = plan[: layer_names(arch).index(last) + 1]
        self._plan: tuple[Layer, ...] = plan
        for layer in plan:
            if layer.kind == "conv":
                conv = nn.utils.skip_init(nn.Conv2d, layer.in_channels, layer.channels, 3, padding=1)
                self.add_module(layer.name, conv)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """The layers this encoder can return (it is trimmed after the last)."""
        return tuple(layer.name for layer in self._plan)

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layers this encoder keeps, in forward order."""
        return self._plan

    def conv(self, name: str) -> nn.Conv2d:
        """The convolution called ``name`` (``"conv3_1"``)."""
        module = getattr(self, name)
        assert isinstance(module, nn.Conv2d)
        return module

    def _parameters_of(self, name: str) -> tuple[Tensor, Tensor]:
        conv = self.conv(name)
        assert conv.bias is not None
        return conv.weight, conv.bias

    def trim(self, layers: Iterable[str]) -> VGGEncoder:
        """Drop every layer after the deepest of ``layers``, freeing its weights; returns ``self``."""
        last = deepest_layer(self.arch, layers)
        check_layers(self.arch, [last], available=self.layer_names)
        keep = self.layer_names.index(last) + 1
        for layer in self._plan[keep:]:
            if layer.kind == "conv":
                delattr(self, layer.name)
        self._plan = self._plan[:keep]
        return self

    def forward(self, images: Tensor, layers: Iterable[str] | None = None) -> dict[str, Tensor]:
        """The activations of ``layers`` (default: every kept layer) for ``images`` in [0, 1]."""
        wanted = set(self.layer_names if layers is None else layers)
        check_layers(self.arch, sorted(wanted), available=self.layer_names)
        out: dict[str, Tensor] = {}
        x = (images - self.mean) / self.std
        previous = ""
        for layer in self._plan:
            if not wanted:
                break
            if layer.kind == "conv":
                x = self.conv(layer.name)(x)
            elif layer.kind == "relu":
                x = F.relu(x, inplace=previous not in out)
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2, 2)
            else:
                x = F.avg_pool2d(x, 2, 2)
            if layer.name in wanted:
                out[layer.name] = x
                wanted.discard(layer.name)
            previous = layer.name
        return out

    def estimate_bytes(self, height: int, width: int, layers: Iterable[str] | None = None, *, batch: int = 1) -> int:
        """Peak activation bytes of a forward and backward pass at ``height`` x ``width`` (:func:`activation_bytes`)."""
        last = deepest_layer(self.arch, layers) if layers is not None else self.layer_names[-1]
        return activation_bytes(self.arch, last, height, width, pooling=self.pooling, batch=batch)

    @torch.no_grad()
    def init_random(self, seed: int = 0, *, reference: Tensor | None = None) -> VGGEncoder:
        """Seeded Kaiming-normal weights, then per-channel normalisation (see :meth:`normalize_activations`)."""
        generator = torch.Generator().manual_seed(seed)
        for layer in self._plan:
            if layer.kind == "conv":
                weight, bias = self._parameters_of(layer.name)
                std = math.sqrt(2.0 / (layer.in_channels * 9))
                weight.copy_(torch.randn(weight.shape, generator=generator) * std)
                bias.zero_()
        self.weights_source = f"random (seed {seed})"
        return self.normalize_activations(reference if reference is not None else pink_noise(4, 96, seed=seed))

    @torch.no_grad()
    def normalize_activations(self, reference: Tensor) -> VGGEncoder:
        """Rescale each convolution so that its channels have zero mean, unit variance on ``reference``.

        Layers are normalised in forward order, each on the activations of the
        already normalised layers before it, so the result does not depend on
        where the encoder is trimmed.
        """
        device = self.mean.device
        x = (reference.to(device) - self.mean) / self.std
        for layer in self._plan:
            if layer.kind == "conv":
                y = self.conv(layer.name)(x)
                mean = y.mean(dim=(0, 2, 3))
                std = y.std(dim=(0, 2, 3)).clamp_min(1e-6)
                weight, bias = self._parameters_of(layer.name)
                weight.div_(std.view(-1, 1, 1, 1))
                bias.sub_(mean).div_(std)
                x = (y - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
            elif layer.kind == "relu":
                x = F.relu(x)
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2, 2)
            else:
                x = F.avg_pool2d(x, 2, 2)
        return self

    @torch.no_grad()
    def load_weights(self, state: Mapping[str, Tensor], *, source: str = "weights") -> VGGEncoder:
        """Copy convolution weights from ``state`` (keys ``conv1_1.weight``, ...); extra layers are ignored.

        A missing layer or a wrong shape is a :class:`GankitError` naming ``source``.
        """
        for layer in self._plan:
            if layer.kind != "conv":
                continue
            for what, param in zip(("weight", "bias"), self._parameters_of(layer.name)):
                key = f"{layer.name}.{what}"
                if key not in state:
                    raise GankitError(
                        f"{source}: no {key!r}: these are not {self.arch} weights up to {self.layer_names[-1]}"
                    )
                value = state[key]
                if tuple(value.shape) != tuple(param.shape):
                    raise GankitError(
                        f"{source}: {key} has shape {tuple(value.shape)}, {self.arch} needs {tuple(param.shape)}:"
                        " these are not weights of this network"
                    )
                param.copy_(value.to(param.dtype))
        self.weights_source = source
        return self

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, pooling={self.pooling!r}, last={self.layer_names[-1]!r}"
