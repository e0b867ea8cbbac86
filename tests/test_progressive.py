"""Progressive growing: the growing networks, the fade-in, the ``progressive`` trick's schedule, resume, recipes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from gankit.checkpoint import join_state, latest_checkpoint, load_checkpoint
from gankit.errors import GankitError
from gankit.nn.layers import MinibatchStd
from gankit.nn.progressive import (
    EqualizedConv2d,
    EqualizedLinear,
    GrowingNetwork,
    PixelNorm,
    downsample2,
    fade_real,
    upsample2,
)
from gankit.parts.tricks_progressive import progress_at
from gankit.plugins import get_registry
from gankit.protocols import Discriminator, Generator
from gankit.recipe import load_recipe, loads_recipe
from gankit.training import Trainer, load_generator, resume, sample, train

TINY = {"width": 4, "max_width": 8}


def build(kind: str, name: str, params: dict[str, Any] | None = None, **context: Any) -> Any:
    return get_registry().get(kind, name).build(params or {}, **context)


def networks(resolution: int, channels: int = 1, **params: Any) -> tuple[Any, Any]:
    shape = (channels, resolution, resolution)
    g = build("generator", "progressive", {**TINY, "latent_dim": 8, **params.get("g", {})}, shape=shape)
    d = build("discriminator", "progressive", {**TINY, **params.get("d", {})}, shape=shape)
    return g, d


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# --- layers -----------------------------------------------------------------------------------------------------


def test_equalized_layers_scale_weights_by_he_constant_at_run_time() -> None:
    conv = EqualizedConv2d(3, 5, 3, padding=1)
    assert conv.scale == pytest.approx(2**0.5 / (3 * 9) ** 0.5)
    x = torch.randn(2, 3, 6, 6)
    expected = torch.nn.functional.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1)
    assert torch.allclose(conv(x), expected)
    plain = EqualizedConv2d(3, 5, 3, padding=1, equalized=False)
    assert plain.scale == 1.0 and plain.weight.std() < 0.5
    linear = EqualizedLinear(16, 4, gain=1.0)
    assert linear.scale == pytest.approx(0.25)
    assert linear(torch.randn(3, 16)).shape == (3, 4)


def test_pixel_norm_gives_unit_root_mean_square_per_pixel() -> None:
    y = PixelNorm()(torch.randn(2, 6, 3, 3) * 7)
    assert torch.allclose(y.square().mean(dim=1), torch.ones(2, 3, 3), atol=1e-4)


def test_minibatch_stddev_appends_the_group_spread() -> None:
    x = torch.randn(6, 3, 4, 4)
    y = MinibatchStd(group_size=4)(x)
    assert y.shape == (6, 4, 4, 4)
    assert torch.equal(y[:, :3], x)
    groups = x.reshape(3, 2, 3, 4, 4)
    expected = (groups.var(dim=0, correction=0) + 1e-8).sqrt().mean(dim=(1, 2, 3))
    assert torch.allclose(y[:, 3, 0, 0], expected.repeat(3))
    assert torch.allclose(MinibatchStd()(x[:1])[:, 3], torch.full((1, 4, 4), 1e-4))


# --- networks ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [8, 16, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shapes_at_every_stage(resolution: int, channels: int) -> None:
    g, d = networks(resolution, channels)
    assert isinstance(g, Generator) and isinstance(d, Discriminator)
    assert isinstance(g, GrowingNetwork) and isinstance(d, GrowingNetwork)
    assert g.progress == (resolution, 1.0)
    z = torch.randn(5, g.latent_dim)
    size = 4
    while size <= resolution:
        for alpha in [1.0] if size == 4 else [0.0, 0.3, 1.0]:
            g.set_progress(size, alpha)
            d.set_progress(size, alpha)
            images = g(z)
            assert images.shape == (5, channels, size, size)
            assert images.min() >= -1.0 and images.max() <= 1.0
            assert d(images).shape == (5,)
        size *= 2


@pytest.mark.parametrize(
    "g_params, d_params",
    [({"pixel_norm": False}, {"minibatch_std": False}), ({"equalized_lr": False}, {"equalized_lr": False})],
)
def test_network_options(g_params: dict[str, Any], d_params: dict[str, Any]) -> None:
    g, d = networks(16, g=g_params, d=d_params)
    assert any(isinstance(m, PixelNorm) for m in g.modules()) == g_params.get("pixel_norm", True)
    assert any(isinstance(m, MinibatchStd) for m in d.modules()) == d_params.get("minibatch_std", True)
    assert d(g(torch.randn(4, g.latent_dim))).shape == (4,)


def test_generator_fade_in_equals_its_formula() -> None:
    g, _ = networks(32)
    z = torch.randn(4, g.latent_dim)
    alpha = 0.3
    g.set_progress(16, alpha)
    with torch.no_grad():
        h = g.blocks[0](g.stem(z))
        old = upsample2(g.to_image[1](h))
        new = g.to_image[2](g.blocks[1](h))
        expected = (1 - alpha) * old + alpha * new
        assert torch.allclose(g(z), expected, atol=1e-6)
        g.set_progress(16, 1.0)
        assert torch.allclose(g(z), new, atol=1e-6)
        g.set_progress(16, 0.0)
        assert torch.allclose(g(z), old, atol=1e-6)


def test_discriminator_fade_in_equals_its_formula() -> None:
    _, d = networks(32)
    x = torch.randn(4, 1, 16, 16)
    alpha = 0.7
    d.set_progress(16, alpha)
    with torch.no_grad():
        new = d.blocks[1](d.from_image[2](x))
        old = d.from_image[1](downsample2(x))
        expected = d.head(d.blocks[0]((1 - alpha) * old + alpha * new))
        assert torch.allclose(d(x), expected, atol=1e-6)


def test_real_images_fade_in_like_generated_ones() -> None:
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    x16 = torch.nn.functional.avg_pool2d(x, 2)
    coarse = upsample2(torch.nn.functional.avg_pool2d(x16, 2))
    for alpha in (0.0, 0.25, 0.9):
        assert torch.allclose(fade_real(x, 16, alpha), (1 - alpha) * coarse + alpha * x16, atol=1e-6)
    assert torch.equal(fade_real(x, 16, 1.0), x16)
    assert torch.equal(fade_real(x, 32, 1.0), x)


def test_discriminator_refuses_images_at_another_resolution() -> None:
    _, d = networks(16)
    d.set_progress(8, 0.5)
    with pytest.raises(GankitError, match="works at 8x8 now"):
        d(torch.randn(2, 1, 16, 16))
    with pytest.raises(GankitError, match="cannot work at 32x32"):
        d.set_progress(32, 1.0)
    with pytest.raises(GankitError, match="alpha"):
        d.set_progress(4, 0.5)


def test_stage_and_alpha_travel_with_state_dict_and_copies() -> None:
    g, _ = networks(32)
    g.set_progress(16, 0.25)
    state = g.state_dict()
    assert int(state["current_resolution"]) == 16 and float(state["alpha"]) == 0.25
    fresh, _ = networks(32)
    fresh.load_state_dict(state)
    assert fresh.progress == (16, 0.25) and fresh.fading
    z = torch.randn(2, g.latent_dim)
    assert torch.equal(fresh(z), g(z))
    clone = copy.deepcopy(g)
    assert clone.progress == (16, 0.25) and clone(z).shape == (2, 1, 16, 16)


def test_unused_blocks_get_no_gradient_and_adam_leaves_them_alone() -> None:
    g, d = networks(32)
    g.set_progress(8, 0.5)
    d.set_progress(8, 0.5)
    opt = torch.optim.Adam([*g.parameters(), *d.parameters()], lr=0.1)
    before = {name: p.detach().clone() for name, p in g.named_parameters()}
    for _ in range(2):
        opt.zero_grad(set_to_none=True)
        d(g(torch.randn(4, g.latent_dim))).mean().backward()
        opt.step()
    above = ("blocks.1.", "blocks.2.", "to_image.2.", "to_image.3.")
    unused = {n for n, _ in g.named_parameters() if n.startswith(above)}
    for name, p in g.named_parameters():
        assert (p.grad is None) == (name in unused), name
        assert torch.equal(p, before[name]) == (name in unused), name
    g.set_progress(8, 1.0)
    opt.zero_grad(set_to_none=True)
    g(torch.randn(4, g.latent_dim)).mean().backward()
    assert g.to_image[0].conv.weight.grad is None and g.to_image[1].conv.weight.grad is not None


# --- the schedule -----------------------------------------------------------------------------------------------


def test_alpha_schedule() -> None:
    def at(images: int) -> tuple[int, int, float, str]:
        p = progress_at(images, start_resolution=8, resolution=32, fade_images=100, stabilise_images=50)
        return p.stage, p.resolution, p.alpha, p.phase

    assert at(0) == (0, 8, 1.0, "stabilise")
    assert at(49) == (0, 8, 1.0, "stabilise")
    assert at(50) == (1, 16, 0.0, "fade")
    assert at(75) == (1, 16, 0.25, "fade")
    assert at(149) == (1, 16, 0.99, "fade")
    assert at(150) == (1, 16, 1.0, "stabilise")
    assert at(199) == (1, 16, 1.0, "stabilise")
    assert at(200) == (2, 32, 0.0, "fade")
    assert at(260) == (2, 32, 0.6, "fade")
    assert at(300) == (2, 32, 1.0, "stabilise")
    assert at(10**9) == (2, 32, 1.0, "stabilise")
    alphas = [at(n)[2] for n in range(50, 150, 10)]
    assert alphas == pytest.approx([i / 10 for i in range(10)])
    assert progress_at(5, start_resolution=32, resolution=32, fade_images=1, stabilise_images=1).resolution == 32
    no_fade = progress_at(60, start_resolution=4, resolution=16, fade_images=0, stabilise_images=50)
    assert (no_fade.resolution, no_fade.alpha) == (8, 1.0)


@pytest.mark.parametrize(
    "params, message",
    [({"start_resolution": 12}, "power of two"), ({"fade_images": 0, "stabilise_images": 0}, "both be 0")],
)
def test_trick_parameters_are_checked(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        get_registry().get("trick", "progressive").validate(params)


# --- training ---------------------------------------------------------------------------------------------------

RECIPE = """
[run]
seed = 2
steps = 10
batch_size = 4
log_every = 1
sample_every = 100
samples = 4
checkpoint_every = 100
[data]
type = "digits"
resolution = 16
[generator]
type = "progressive"
latent_dim = 8
width = 4
max_width = 8
[discriminator]
type = "progressive"
width = 4
max_width = 8
[[regularizers]]
type = "r1"
weight = 1.0
every = 2
[optim.generator]
lr = 1e-3
betas = [0.0, 0.99]
[optim.discriminator]
lr = 1e-3
betas = [0.0, 0.99]
[[tricks]]
type = "progressive"
start_resolution = 4
fade_images = 16
stabilise_images = 4
[[tricks]]
type = "ema"
decay = 0.5
"""
"""Stage 0 (4x4) for step 0; 8x8 fades in over steps 1-4 and stabilises at 5; 16x16 fades in over steps 6-9."""


def test_trainer_follows_the_schedule(tmp_path: Path) -> None:
    trainer = Trainer(loads_recipe(RECIPE), tmp_path / "run", quiet=True)
    trainer.fit()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    seen = [(r["resolution"], round(r["alpha"], 4)) for r in records if "resolution" in r]
    fade = [0.0, 0.25, 0.5, 0.75]
    assert seen == [(4, 1.0), *((8, a) for a in fade), (8, 1.0), *((16, a) for a in fade)]
    average = trainer.sampling_generator()
    assert average is not trainer.generator_module
    assert isinstance(average, GrowingNetwork) and average.progress == trainer.generator_module.progress
    assert trainer.fixed_latents.shape[0] == 4
    with torch.no_grad():
        assert average(trainer.fixed_latents).shape == (4, 1, 16, 16)


def test_resume_in_mid_fade_is_bit_exact(tmp_path: Path) -> None:
    recipe = loads_recipe(RECIPE)
    train(recipe, tmp_path / "whole", quiet=True)
    train(recipe, tmp_path / "halves", steps=8, quiet=True)
    middle = load_checkpoint(latest_checkpoint(tmp_path / "halves"))
    progressive_state = join_state(middle.state["tricks"][0], "trick.0", middle)
    assert progressive_state["resolution"] == 16 and progressive_state["phase"] == "fade"
    assert progressive_state["alpha"] == 0.25
    resume(tmp_path / "halves", steps=10, quiet=True)
    whole = load_checkpoint(latest_checkpoint(tmp_path / "whole"))
    halves = load_checkpoint(latest_checkpoint(tmp_path / "halves"))
    assert whole.state["step"] == halves.state["step"] == 10
    assert whole.tensors.keys() == halves.tensors.keys()
    for key, value in whole.tensors.items():
        assert torch.equal(value, halves.tensors[key]), key
    assert whole.state["tricks"] == halves.state["tricks"]


def test_reset_optimizer_clears_state_when_a_resolution_appears(tmp_path: Path) -> None:
    recipe = loads_recipe(RECIPE, ["tricks.0.reset_optimizer=true", "run.steps=2"])
    trainer = Trainer(recipe, tmp_path / "run", quiet=True)
    trick = trainer.tricks[0]
    trainer.train_step()
    assert trainer.optimizers["generator"].state
    trainer.context.step = 1
    trick.before_step(trainer.context)
    assert not trainer.optimizers["generator"].state and not trainer.optimizers["discriminator"].state


def test_trick_needs_growing_networks(tmp_path: Path) -> None:
    recipe = loads_recipe(RECIPE, ["generator.type=dcgan", "generator.max_width=8"])
    with pytest.raises(GankitError, match='growing generator: set \\[generator\\] type = "progressive"'):
        Trainer(recipe, tmp_path / "run", quiet=True)
    with pytest.raises(GankitError, match="above the data's resolution"):
        Trainer(loads_recipe(RECIPE, ["tricks.0.start_resolution=32"]), tmp_path / "run", quiet=True)


def _tiny(steps: int) -> list[str]:
    return [
        f"run.steps={steps}", "run.batch_size=4", "run.samples=4", "run.sample_every=100", "run.log_every=1",
        "generator.width=4", "generator.max_width=8", "generator.latent_dim=8",
        "discriminator.width=4", "discriminator.max_width=8",
        "tricks.0.fade_images=4", "tricks.0.stabilise_images=4",
    ]


def _picture_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_progressive_digits_recipe_trains_end_to_end(tmp_path: Path) -> None:
    recipe = load_recipe("progressive-digits", _tiny(5))
    result = train(recipe, tmp_path / "run", quiet=True)
    assert result.step == 5
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["resolution"] for r in records] == [8, 16, 16, 32, 32]
    samples = sorted((tmp_path / "run" / "samples").glob("*.png"))
    assert _picture_size(samples[0]) == (2 * (8 + 2) + 2,) * 2
    assert _picture_size(samples[-1]) == (2 * (32 + 2) + 2,) * 2
    exported = load_generator(tmp_path / "run" / "generator.safetensors")
    assert exported.generator.progress == (32, 1.0)
    assert sample(exported, 3).shape == (3, 1, 32, 32)


def test_progressive_folder_recipe_trains_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    overrides = [f"data.path={folder}", "data.resolution=16", *_tiny(7)]
    result = train(load_recipe("progressive-folder", overrides), tmp_path / "run", quiet=True)
    assert result.step == 7
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["resolution"] for r in records] == [4, 8, 8, 16, 16, 16, 16]
