"""Feature extractors (kind ``encoder``): ``vgg19`` and ``vgg16``, and ``random-pyramid`` that needs no download.

The VGG networks are defined in :mod:`gankit.style.vgg` (no torchvision
needed); their weights come from :mod:`gankit.style.weights`. The random
pyramid is :mod:`gankit.style.pyramid`. Modules are loaded when an encoder is
built. (Listing parts imports torch anyway: most part modules define
``nn.Module`` classes.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field

from gankit.hookspecs import Register
from gankit.registry import Params, Seed


class VGGParams(Params):
    """Parameters of the VGG encoders."""

    weights: str = Field(
        "hub",
        min_length=1,
        description="'hub' (torchvision's file in the torch hub cache; get it with: gankit weights vgg19),"
        " a .pth or .safetensors file, or 'random' (seeded, normalised; for tests and offline demos).",
    )
    pooling: Literal["max", "avg"] = Field(
        "max", description="'max' (as trained) or 'avg' (smoother gradients, as Gatys et al. recommend)."
    )
    seed: Seed = Field(0, description="Seed of random weights (weights = 'random' only).")


def _build(arch: str, params: VGGParams, layers: Iterable[str] | None) -> Any:
    from gankit.style import vgg, weights

    wanted = None if layers is None else list(layers)
    if wanted:
        vgg.check_layers(arch, wanted)
    path = weights.resolve(arch, params.weights)
    encoder = vgg.VGGEncoder(arch, pooling=params.pooling, layers=wanted or None)
    if path is None:
        encoder.init_random(params.seed)
    else:
        encoder.load_weights(weights.load(path, arch), source=str(path))
    return encoder.eval().requires_grad_(False)


def vgg19_encoder(params: VGGParams, *, layers: Iterable[str] | None = None, **context: Any) -> Any:
    """VGG19 features (conv1_1 ... pool5) for RGB images in [0, 1]; ImageNet normalisation inside.

    Returns a :class:`gankit.style.vgg.VGGEncoder`: ``encoder(images, layers)``
    gives a dict of activations from one forward pass. Built with the
    ``layers`` context keyword, it is trimmed after the deepest of them.
    Weights: torchvision's ``vgg19-dcbb9e9d.pth`` (``gankit weights vgg19``),
    a file, or ``"random"``.
    """
    return _build("vgg19", params, layers)


def vgg16_encoder(params: VGGParams, *, layers: Iterable[str] | None = None, **context: Any) -> Any:
    """VGG16 features (conv1_1 ... pool5) for RGB images in [0, 1]; ImageNet normalisation inside.

    Like ``vgg19`` with three convolutions in blocks 3 to 5. Weights:
    torchvision's ``vgg16-397923af.pth`` (``gankit weights vgg16``), a file, or
    ``"random"``.
    """
    return _build("vgg16", params, layers)


class RandomPyramidParams(Params):
    """Parameters of the ``random-pyramid`` encoder."""

    weights: Literal["random"] = Field(
        "random", description="Always 'random': this encoder's filters are drawn from its seed, nothing is downloaded."
    )
    seed: int = Field(0, description="Seed of the random filters.")
    levels: int = Field(5, ge=1, le=5, description="Pyramid levels (blocks): level b sees the image at stride 2^(b-1).")
    depth: int = Field(2, ge=1, le=4, description="Convolutions (with ReLUs) per level: relu<b>_1 ... relu<b>_<depth>.")
    channels: int = Field(
        128, ge=4, le=512, description="Filters per convolution; fewer are cheaper but vary more with the seed."
    )
    kernel_size: int = Field(5, ge=1, le=15, description="Size of each level's first filters (odd).")
    inner_kernel_size: int = Field(1, ge=1, le=7, description="Size of the filters after each level's first (odd).")


def random_pyramid_encoder(
    params: RandomPyramidParams, *, layers: Iterable[str] | None = None, **context: Any
) -> Any:
    """Random filters on an image pyramid, with VGG-style layer names: style transfer without downloads.

    Level ``b`` (``conv<b>_<n>``, ``relu<b>_<n>``) applies ``depth`` random
    convolutions to the image halved ``b - 1`` times; its first filters have
    zero mean, and every channel is normalised. Good layers: content at
    ``relu2_2``, style at ``relu1_2`` ... ``relu5_2`` (recipe
    ``style-transfer-offline``). Built with the ``layers`` context keyword, only
    the levels up to the deepest of them are made.
    """
    from gankit.errors import GankitError
    from gankit.style.pyramid import RandomPyramidEncoder

    for name in ("kernel_size", "inner_kernel_size"):
        if getattr(params, name) % 2 == 0:
            raise GankitError(f"encoder.{name} = {getattr(params, name)}: must be odd (1, 3, 5, ...)")
    encoder = RandomPyramidEncoder(
        levels=params.levels, depth=params.depth, channels=params.channels, kernel_size=params.kernel_size,
        inner_kernel_size=params.inner_kernel_size, seed=params.seed,
        layers=None if layers is None else list(layers) or None,
    )
    return encoder.eval().requires_grad_(False)


def register(register: Register) -> None:
    """Register the encoders."""
    register("encoder", "vgg19", vgg19_encoder, VGGParams)
    register("encoder", "vgg16", vgg16_encoder, VGGParams)
    register("encoder", "random-pyramid", random_pyramid_encoder, RandomPyramidParams)
