"""Feature extractors (kind ``encoder``): ``vgg19`` and ``vgg16`` with named layers.

The networks are defined in :mod:`gankit.style.vgg` (no torchvision needed);
their weights come from :mod:`gankit.style.weights`. Both are loaded when an
encoder is built. (Listing parts imports torch anyway: most part modules
define ``nn.Module`` classes.)
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


def register(register: Register) -> None:
    """Register the VGG encoders."""
    register("encoder", "vgg19", vgg19_encoder, VGGParams)
    register("encoder", "vgg16", vgg16_encoder, VGGParams)
