"""MSG-GAN: the multi-scale generator and discriminator, gradients at every scale, the recipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from gankit.errors import GankitError
from gankit.nn.progressive import pyramid
from gankit.plugins import get_registry
from gankit.protocols import Discriminator, Generator
from gankit.recipe import load_recipe
from gankit.training import Trainer, train

TINY = {"width": 4, "max_width": 8}
COMBINES = ["concat", "lin-cat", "cat-lin"]


def build(kind: str, params: dict[str, Any], shape: tuple[int, ...]) -> Any:
    return get_registry().get(kind, "msg").build(params, shape=shape)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("resolution", [8, 16, 32])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("combine", COMBINES)
def test_output_shapes_at_every_scale(resolution: int, channels: int, combine: str) -> None:
    shape = (channels, resolution, resolution)
    g = build("generator", {**TINY, "latent_dim": 8}, shape)
    d = build("discriminator", {**TINY, "combine": combine}, shape)
    assert isinstance(g, Generator) and isinstance(d, Discriminator)
    images = g(torch.randn(3, 8))
    sizes = [4 << i for i in range(len(images))]
    assert sizes[-1] == resolution
    assert [tuple(x.shape) for x in images] == [(3, channels, s, s) for s in sizes]
    assert all(x.min() >= -1 and x.max() <= 1 for x in images)
    assert d(images).shape == (3,)
    assert d(torch.rand(3, *shape) * 2 - 1).shape == (3,)


@pytest.mark.parametrize("combine", COMBINES)
def test_real_batch_is_read_as_its_average_pooled_pyramid(combine: str) -> None:
    d = build("discriminator", {**TINY, "combine": combine}, (3, 16, 16))
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    scales = pyramid(x)
    assert [s.shape[-1] for s in scales] == [4, 8, 16]
    assert torch.allclose(scales[0], torch.nn.functional.avg_pool2d(x, 4), atol=1e-6)
    assert torch.equal(d(x), d(scales))


@pytest.mark.parametrize("combine", COMBINES)
def test_gradients_reach_every_output(combine: str) -> None:
    g = build("generator", {**TINY, "latent_dim": 8}, (1, 16, 16))
    d = build("discriminator", {**TINY, "combine": combine}, (1, 16, 16))
    images = g(torch.randn(4, 8))
    for image in images:
        image.retain_grad()
    d(images).sum().backward()
    for image in images:
        assert image.grad is not None and image.grad.abs().sum() > 0
    for name, p in [*g.named_parameters(), *d.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_combine_functions_shape_the_discriminator() -> None:
    def channels_into_head(combine: str) -> int:
        params = {"width": 4, "max_width": 8, "combine": combine, "minibatch_std": False}
        d = build("discriminator", params, (3, 16, 16))
        return int(d.head.conv.in_channels)

    assert channels_into_head("concat") == 8 + 3
    assert channels_into_head("lin-cat") == 2 * 8
    assert channels_into_head("cat-lin") == 8


def test_discriminator_refuses_a_wrong_pyramid() -> None:
    d = build("discriminator", TINY, (1, 16, 16))
    with pytest.raises(GankitError, match="coarsest first"):
        d([torch.randn(2, 1, 16, 16), torch.randn(2, 1, 8, 8), torch.randn(2, 1, 4, 4)])
    with pytest.raises(GankitError, match="one 16x16 batch"):
        d(torch.randn(2, 1, 32, 32))


def test_regularisers_see_every_scale() -> None:
    d = build("discriminator", TINY, (1, 16, 16))
    g = build("generator", {**TINY, "latent_dim": 8}, (1, 16, 16))
    real = torch.rand(4, 1, 16, 16) * 2 - 1
    fake = [x.detach() for x in g(torch.randn(4, 8))]
    r1 = get_registry().get("loss", "r1").build({})
    gp = get_registry().get("loss", "gradient-penalty").build({})
    assert r1.penalty(d, real, fake) > 0
    assert gp.penalty(d, pyramid(real), fake) > 0
    torch.manual_seed(0)
    from_full = gp.penalty(d, real, fake)
    torch.manual_seed(0)
    assert torch.allclose(from_full, gp.penalty(d, pyramid(real), fake)), "a full batch is averaged down per scale"


def test_msg_recipe_with_gradient_penalty_trains(tmp_path: Path) -> None:
    recipe = load_recipe("msg-digits", [*_tiny(2), 'regularizers.0.type="gradient-penalty"',
                                        "regularizers.0.every=1"])
    assert train(recipe, tmp_path / "run", quiet=True).step == 2


def _tiny(steps: int) -> list[str]:
    return [
        f"run.steps={steps}", "run.batch_size=4", "run.samples=4", "run.sample_every=2", "run.log_every=1",
        "run.checkpoint_every=2", "generator.width=4", "generator.max_width=8", "generator.latent_dim=8",
        "discriminator.width=4", "discriminator.max_width=8",
    ]


@pytest.mark.parametrize("combine", COMBINES)
def test_msg_digits_recipe_trains_end_to_end(tmp_path: Path, combine: str) -> None:
    recipe = load_recipe("msg-digits", [*_tiny(3), f"discriminator.combine={combine}"])
    result = train(recipe, tmp_path / "run", quiet=True)
    assert result.step == 3
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor([r["d_loss"], r["g_loss"]])).all() for r in records)
    samples = sorted((tmp_path / "run" / "samples").glob("*.png"))
    grid = 2 * (32 + 2) + 2
    gap = 6
    with Image.open(samples[-1]) as picture:
        assert picture.size == (4 * grid + 3 * gap, grid)


def test_msg_training_updates_every_scale(tmp_path: Path) -> None:
    trainer = Trainer(load_recipe("msg-digits", _tiny(2)), tmp_path / "run", quiet=True)
    before = {name: p.detach().clone() for name, p in trainer.generator_module.named_parameters()}
    trainer.train_step()
    for name, p in trainer.generator_module.named_parameters():
        assert not torch.equal(p, before[name]), name
