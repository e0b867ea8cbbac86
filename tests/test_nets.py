"""The built-in networks, built through the registry as a recipe would build them."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torch.nn.utils import parametrize

from gankit.errors import GankitError
from gankit.plugins import get_registry
from gankit.protocols import Discriminator, Generator

TINY = {"width": 4, "max_width": 16}
RESOLUTIONS = [8, 16, 32, 64]


def build(kind: str, name: str, params: dict[str, Any] | None = None, **context: Any) -> Any:
    return get_registry().get(kind, name).build(params or {}, **context)


def weighted_layers(module: nn.Module) -> list[Any]:
    return [m for m in module.modules() if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d)]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes_and_range(resolution: int, channels: int) -> None:
    shape = (channels, resolution, resolution)
    g = build("generator", "dcgan", {**TINY, "latent_dim": 8}, shape=shape)
    d = build("discriminator", "dcgan", TINY, shape=shape)
    assert isinstance(g, Generator) and isinstance(d, Discriminator)
    assert g.latent_dim == 8
    images = g(torch.randn(3, g.latent_dim))
    assert images.shape == (3, *shape)
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert d(images).shape == (3,)


def test_dcgan_generator_widths_double_towards_low_resolution_up_to_the_cap() -> None:
    g = build("generator", "dcgan", {"width": 4, "max_width": 8}, shape=(3, 32, 32))
    conv_out = [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert conv_out == [8, 8, 4]
    assert g.latent_dim == 64


@pytest.mark.parametrize("upsample", ["transpose", "nearest", "bilinear"])
@pytest.mark.parametrize("norm", ["batch", "none"])
@pytest.mark.parametrize("init", ["dcgan", "default"])
def test_dcgan_generator_options(upsample: str, norm: str, init: str) -> None:
    params = {**TINY, "upsample": upsample, "norm": norm, "init": init}
    g = build("generator", "dcgan", params, shape=(3, 16, 16))
    images = g(torch.randn(2, g.latent_dim))
    assert images.shape == (2, 3, 16, 16)
    images.mean().backward()
    assert all(p.grad is not None for p in g.parameters())
    has_norm = any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    assert has_norm == (norm == "batch")
    has_transpose = any(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    assert has_transpose == (upsample == "transpose")


@pytest.mark.parametrize("downsample", ["stride", "pool"])
@pytest.mark.parametrize("norm", ["batch", "none", "layer"])
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_dcgan_discriminator_options(downsample: str, norm: str, spectral_norm: bool) -> None:
    params = {**TINY, "downsample": downsample, "norm": norm, "spectral_norm": spectral_norm}
    d = build("discriminator", "dcgan", params, shape=(1, 16, 16))
    x = torch.randn(4, 1, 16, 16)
    logits = d(x)
    assert logits.shape == (4,)
    logits.sum().backward()
    assert all(p.grad is not None for p in d.parameters())
    layers = weighted_layers(d)
    assert layers
    assert all(parametrize.is_parametrized(m, "weight") for m in layers) == spectral_norm
    assert any(parametrize.is_parametrized(m, "weight") for m in layers) == spectral_norm


def test_dcgan_discriminator_channels_last_matches_contiguous() -> None:
    d = build("discriminator", "dcgan", {**TINY, "norm": "layer"}, shape=(3, 32, 32)).eval()
    x = torch.randn(2, 3, 32, 32)
    d_last = d.to(memory_format=torch.channels_last)
    expected = d_last(x)
    got = d_last(x.contiguous(memory_format=torch.channels_last))
    assert got.shape == (2,)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_dcgan_init_draws_small_weights() -> None:
    g = build("generator", "dcgan", {"width": 16, "max_width": 64, "init": "dcgan"}, shape=(3, 32, 32))
    weights = torch.cat([m.weight.flatten() for m in weighted_layers(g)])
    assert abs(weights.std().item() - 0.02) < 0.002
    scales = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(scales.mean().item() - 1.0) < 0.01


@pytest.mark.parametrize("kind", ["generator", "discriminator"])
@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((3, 100, 100), ["100x100", "base grid of 3 to 16", "104x104 or 96x96"]),
        ((3, 4, 4), ["4x4", "at least once", "6x6 or 8x8"]),
        ((3, 15, 32), ["15x32", "96x128 (4:3)", "72x128 (16:9)"]),
        ((2,), ["(C, H, W)", "mlp"]),
    ],
)
def test_dcgan_rejects_bad_shapes_with_a_useful_message(kind: str, shape: tuple[int, ...], expected: list[str]) -> None:
    with pytest.raises(GankitError) as info:
        build(kind, "dcgan", TINY, shape=shape)
    message = str(info.value)
    assert "dcgan" in message
    for text in expected:
        assert text in message


@pytest.mark.parametrize(
    ("size", "base", "blocks"),
    [
        ((96, 128), (3, 4), 5),
        ((72, 128), (9, 16), 3),
        ((12, 16), (3, 4), 2),
        ((48, 48), (3, 3), 4),
        ((16, 32), (4, 8), 2),
    ],
)
def test_dcgan_non_square_sizes_from_their_base_grid(size: tuple[int, int], base: tuple[int, int], blocks: int) -> None:
    shape = (3, *size)
    g = build("generator", "dcgan", {**TINY, "latent_dim": 8}, shape=shape)
    d = build("discriminator", "dcgan", {**TINY, "minibatch_std": True}, shape=shape)
    assert g.base == base == d.base
    assert len(g.blocks) == blocks
    images = g(torch.randn(2, 8))
    assert images.shape == (2, *shape)
    assert d(images).shape == (2,)
    assert d.net[-1].kernel_size == base, "the last convolution covers the whole base grid"


def test_square_power_of_two_networks_keep_their_4x4_grid() -> None:
    g = build("generator", "dcgan", {**TINY, "latent_dim": 8}, shape=(1, 32, 32))
    d = build("discriminator", "dcgan", TINY, shape=(1, 32, 32))
    assert g.base == d.base == (4, 4) and g.project.out_features == 16 * 4 * 4
    assert d.net[-1].kernel_size == (4, 4)


def test_non_square_recipe_trains_a_step(tmp_path: Any) -> None:
    import numpy as np
    from PIL import Image

    from gankit.recipe import loads_recipe
    from gankit.training import load_generator, train

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    recipe = loads_recipe(f"""
[run]
steps = 2
batch_size = 4
samples = 4
log_every = 1
sample_every = 2
checkpoint_every = 2
[data]
type = "image-folder"
path = "{photos}"
resolution = [12, 16]
[generator]
type = "dcgan"
latent_dim = 8
width = 4
max_width = 8
[discriminator]
type = "dcgan"
width = 4
max_width = 8
""")
    result = train(recipe, tmp_path / "run", quiet=True)
    assert result.step == 2
    loaded = load_generator(tmp_path / "run")
    assert loaded.generator(torch.randn(3, 8)).shape == (3, 3, 12, 16)
    grid = Image.open(sorted((tmp_path / "run" / "samples").glob("*.png"))[-1])
    assert grid.width > grid.height, "the sample grid shows 4:3 pictures"


@pytest.mark.parametrize("kind", ["generator", "discriminator"])
@pytest.mark.parametrize("name", ["dcgan", "mlp"])
def test_missing_shape_is_a_gankit_error(kind: str, name: str) -> None:
    with pytest.raises(GankitError, match="shape"):
        build(kind, name, {"width": 4})


@pytest.mark.parametrize(
    ("kind", "name", "params"),
    [
        ("generator", "dcgan", {"widht": 4}),
        ("generator", "dcgan", {"width": 0}),
        ("generator", "dcgan", {"upsample": "pixel-shuffle"}),
        ("generator", "dcgan", {"width": 64, "max_width": 32}),
        ("discriminator", "dcgan", {"norm": "spectral"}),
        ("discriminator", "dcgan", {"latent_dim": 8}),
        ("generator", "mlp", {"depth": 0}),
        ("generator", "mlp", {"output": "sigmoid"}),
        ("generator", "mlp", {"spectral_norm": True}),
        ("discriminator", "mlp", {"activation": "gelu"}),
    ],
)
def test_bad_params_are_validation_errors(kind: str, name: str, params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        build(kind, name, params, shape=(3, 16, 16))


def test_unknown_context_is_ignored() -> None:
    g = build("generator", "dcgan", TINY, shape=(1, 8, 8), device="cpu", future_option=1)
    d = build("discriminator", "mlp", {"width": 4}, shape=(2,), future_option=1)
    assert g(torch.randn(1, g.latent_dim)).shape == (1, 1, 8, 8)
    assert d(torch.randn(1, 2)).shape == (1,)


def test_mlp_points_are_not_squashed() -> None:
    g = build("generator", "mlp", {"latent_dim": 3, "width": 8, "depth": 2}, shape=(2,))
    assert g.latent_dim == 3
    with torch.no_grad():
        for layer in weighted_layers(g):
            layer.weight.fill_(1.0)
    points = g(torch.ones(5, 3))
    assert points.shape == (5, 2)
    assert points.abs().max() > 4.0


@pytest.mark.parametrize(("output", "bounded"), [("auto", True), ("tanh", True), ("linear", False)])
def test_mlp_image_output(output: str, bounded: bool) -> None:
    g = build("generator", "mlp", {"latent_dim": 4, "width": 8, "output": output}, shape=(1, 8, 8))
    with torch.no_grad():
        for layer in weighted_layers(g):
            layer.weight.fill_(1.0)
    images = g(torch.ones(2, 4))
    assert images.shape == (2, 1, 8, 8)
    assert (images.abs().max() <= 1.0) == bounded


def test_mlp_tanh_output_for_points() -> None:
    g = build("generator", "mlp", {"latent_dim": 2, "width": 8, "output": "tanh"}, shape=(2,))
    assert g(torch.randn(64, 2) * 100).abs().max() <= 1.0


@pytest.mark.parametrize("shape", [(2,), (1, 8, 8), (3, 16, 16)])
@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("activation", ["relu", "leaky-relu"])
def test_mlp_shapes(shape: tuple[int, ...], batch_norm: bool, activation: str) -> None:
    params = {"width": 8, "depth": 2, "batch_norm": batch_norm, "activation": activation}
    g = build("generator", "mlp", {**params, "latent_dim": 4}, shape=shape)
    d = build("discriminator", "mlp", params, shape=shape)
    assert isinstance(g, nn.Module) and isinstance(d, nn.Module)
    assert isinstance(g, Generator) and isinstance(d, Discriminator)
    samples = g(torch.randn(3, 4))
    assert samples.shape == (3, *shape)
    logits = d(samples)
    assert logits.shape == (3,)
    logits.sum().backward()
    assert all(p.grad is not None for p in g.parameters())
    assert any(isinstance(m, nn.BatchNorm1d) for m in g.modules()) == batch_norm


def test_mlp_layer_count_follows_depth() -> None:
    g = build("generator", "mlp", {"latent_dim": 4, "width": 8, "depth": 5}, shape=(2,))
    d = build("discriminator", "mlp", {"width": 8, "depth": 5}, shape=(2,))
    assert len(weighted_layers(g)) == 6
    assert len(weighted_layers(d)) == 6
    assert weighted_layers(d)[0].in_features == 2


def test_mlp_discriminator_flattens_channels_last_images() -> None:
    d = build("discriminator", "mlp", {"width": 8}, shape=(3, 8, 8))
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(d(x.contiguous(memory_format=torch.channels_last)), d(x))


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_mlp_discriminator_spectral_norm(spectral_norm: bool) -> None:
    d = build("discriminator", "mlp", {"width": 8, "spectral_norm": spectral_norm}, shape=(2,))
    assert all(parametrize.is_parametrized(m, "weight") == spectral_norm for m in weighted_layers(d))
    if spectral_norm:
        d.train()
        for _ in range(30):
            d(torch.randn(4, 2))
        with torch.no_grad():
            for layer in weighted_layers(d):
                sigma = torch.linalg.matrix_norm(layer.weight, ord=2).item()
                assert math.isclose(sigma, 1.0, rel_tol=0.05)


def test_parts_are_listed_with_summaries() -> None:
    registry = get_registry()
    for kind in ("generator", "discriminator"):
        for name in ("mlp", "dcgan"):
            part = registry.get(kind, name)
            assert part.summary
            assert all(field.description for field in part.params.model_fields.values())
