"""Tests of gankit-diffaugment, run against the installed distribution (``pip install -e plugins/gankit-diffaugment``).

The last two train a tiny DCGAN for a few steps, through gankit's trainer.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import gankit
import pytest
import torch

from gankit_diffaugment import DiffAugment, DiffAugmentParams, diff_augment, hole, shift

RECIPES = Path(__file__).resolve().parents[1] / "src" / "gankit_diffaugment" / "recipes"


def trick(**params: Any) -> DiffAugment:
    """The trick built through the registry, as a recipe would build it."""
    built: DiffAugment = gankit.get_registry().get("trick", "diffaugment.augment").build(params)
    return built


def ramp(n: int = 4, c: int = 3, size: int = 16) -> torch.Tensor:
    """Images whose every pixel is different, so that moves can be traced."""
    return torch.arange(n * c * size * size, dtype=torch.float32).reshape(n, c, size, size) + 1.0


def test_registered_through_the_entry_point_with_the_distribution_as_provider() -> None:
    part = gankit.get_registry().get("trick", "diffaugment.augment")
    assert part.provider.name == "gankit-diffaugment"
    assert part.provider.version == metadata.version("gankit-diffaugment")
    assert part.provider.namespace == "diffaugment"
    assert part.factory is DiffAugment


def test_default_params_follow_the_paper() -> None:
    params = DiffAugmentParams()
    assert params.policy == ["color", "translation", "cutout"]
    assert params.translation_ratio == 0.125
    assert params.cutout_ratio == 0.5
    assert params.probability == 1.0


@pytest.mark.parametrize(
    ("policy", "text"),
    [(["translation", "translation"], "more than once"), (["rotate"], "translation"), ([], "at least 1")],
)
def test_bad_policies_are_recipe_errors(policy: list[str], text: str) -> None:
    raw = {
        "data": {"type": "digits", "resolution": 16},
        "generator": {"type": "dcgan"},
        "discriminator": {"type": "dcgan"},
        "tricks": [{"type": "diffaugment.augment", "policy": policy}],
    }
    with pytest.raises(gankit.RecipeError, match=text) as caught:
        gankit.recipe_from_dict(raw)
    assert caught.value.issues[0].path.startswith("tricks.0")


def test_shape_kept_values_changed_and_seeded() -> None:
    x = torch.randn(8, 3, 16, 16)
    torch.manual_seed(1)
    a = trick()(x)
    torch.manual_seed(1)
    b = trick()(x)
    torch.manual_seed(2)
    c = trick()(x)
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and isinstance(c, torch.Tensor)
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_translation_moves_each_image_by_at_most_the_ratio() -> None:
    torch.manual_seed(0)
    x = ramp(16)
    out = trick(policy=["translation"])(x)
    assert isinstance(out, torch.Tensor)
    limit = int(16 * 0.125 + 0.5)
    moves = set()
    for i in range(x.shape[0]):
        found = [
            (r, c)
            for r in range(-limit, limit + 1)
            for c in range(-limit, limit + 1)
            if torch.equal(out[i : i + 1], shift(x[i : i + 1], torch.tensor([r]), torch.tensor([c])))
        ]
        assert len(found) == 1, f"sample {i} is no translation of its input"
        moves.add(found[0])
    assert len(moves) > 1


def test_shift_fills_with_zeros() -> None:
    x = ramp(1, 1, 4)
    out = shift(x, torch.tensor([1]), torch.tensor([-1]))
    assert out[0, 0, 0].tolist() == [0.0, 5.0, 6.0, 7.0]
    assert out[0, 0, 3].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_cutout_zeroes_one_clipped_square() -> None:
    torch.manual_seed(0)
    x = torch.ones(64, 1, 16, 16)
    out = trick(policy=["cutout"])(x)
    assert isinstance(out, torch.Tensor)
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert bool((zeros <= 8 * 8).all()) and bool((zeros >= 4 * 4).all())
    assert bool((zeros == 64).any())
    assert set(out.unique().tolist()) == {0.0, 1.0}


def test_hole_is_clipped_at_the_border() -> None:
    out = hole(torch.ones(1, 1, 4, 4), torch.tensor([-1]), torch.tensor([2]), 2, 4)
    assert out[0, 0].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]


def test_color_on_a_flat_grey_image_is_a_flat_shift_within_half() -> None:
    torch.manual_seed(0)
    x = torch.full((32, 1, 8, 8), 0.25)
    out = trick(policy=["color"])(x)
    assert isinstance(out, torch.Tensor)
    flat = out.flatten(1)
    assert torch.allclose(flat, flat[:, :1].expand_as(flat))
    assert bool(((flat[:, 0] - 0.25).abs() <= 0.5).all())


def test_gradients_flow_through_every_operation() -> None:
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    out = trick()(x)
    assert isinstance(out, torch.Tensor)
    out.square().sum().backward()
    assert x.grad is not None and bool(x.grad.abs().sum() > 0)


def test_probability_zero_is_the_identity_and_draws_nothing() -> None:
    x = torch.randn(4, 3, 8, 8)
    torch.manual_seed(3)
    state = torch.get_rng_state()
    assert trick(probability=0.0)(x) is x
    assert torch.equal(torch.get_rng_state(), state)


def test_probability_augments_some_samples_and_leaves_the_rest() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    out = trick(probability=0.5)(x)
    assert isinstance(out, torch.Tensor)
    same = (out == x).flatten(1).all(dim=1)
    assert 10 < int(same.sum()) < 54


def test_multi_scale_batches_get_the_same_augmentation_at_every_scale() -> None:
    torch.manual_seed(0)
    small = torch.ones(8, 1, 8, 8)
    large = torch.ones(8, 1, 16, 16)
    out = diff_augment([small, large], ["cutout"])
    assert isinstance(out, list) and [t.shape for t in out] == [small.shape, large.shape]
    holes_small = (out[0] == 0).sum(dim=(1, 2, 3)).float()
    holes_large = (out[1] == 0).sum(dim=(1, 2, 3)).float()
    assert torch.allclose(holes_large, 4 * holes_small, atol=4 * 8 + 1)


def test_points_are_refused_with_a_clear_error() -> None:
    with pytest.raises(gankit.GankitError, match=r"image batches \(N, C, H, W\)"):
        trick()(torch.randn(8, 2))
    recipe = gankit.recipe_from_dict(
        {
            "data": {"type": "ring"},
            "generator": {"type": "mlp"},
            "discriminator": {"type": "mlp"},
            "tricks": [{"type": "diffaugment.augment"}],
        }
    )
    with pytest.raises(gankit.GankitError, match="remove it from \\[\\[tricks\\]\\] for point data"):
        gankit.Trainer(recipe, quiet=True)


def digits_recipe(steps: int) -> gankit.Recipe:
    return gankit.recipe_from_dict(
        {
            "run": {"steps": steps, "batch_size": 16, "seed": 0, "samples": 4, "log_every": 1,
                    "checkpoint_every": 1, "sample_every": 100},
            "data": {"type": "digits", "resolution": 16},
            "generator": {"type": "dcgan", "latent_dim": 8, "width": 8, "max_width": 16},
            "discriminator": {"type": "dcgan", "width": 8, "max_width": 16},
            "loss": {"type": "non-saturating"},
            "tricks": [{"type": "diffaugment.augment"}],
        },
        name="digits-diffaugment",
    )


def test_every_batch_entering_the_discriminator_is_augmented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bool, torch.Tensor, torch.Tensor]] = []
    original = DiffAugment.discriminator_input

    def spy(self: DiffAugment, trainer: Any, x: Any) -> Any:
        out = original(self, trainer, x)
        assert isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor)
        seen.append((bool(x.requires_grad), x.detach().clone(), out.detach().clone()))
        return out

    monkeypatch.setattr(DiffAugment, "discriminator_input", spy)
    gankit.train(digits_recipe(1), tmp_path / "run", quiet=True)
    assert len(seen) >= 3  # per step: a real and a generated batch for D, a generated one for G
    assert any(grad for grad, _, _ in seen), "the generator phase must send a batch that carries gradients"
    assert all(not torch.equal(x, out) for _, x, out in seen)


def test_resuming_gives_the_same_run_as_training_straight_through(tmp_path: Path) -> None:
    straight = gankit.train(digits_recipe(2), tmp_path / "straight", quiet=True)
    gankit.train(digits_recipe(2), tmp_path / "resumed", steps=1, quiet=True)
    resumed = gankit.resume(tmp_path / "resumed", steps=2, quiet=True)
    assert straight.step == resumed.step == 2
    a = gankit.load_generator(tmp_path / "straight", ema=False).generator.state_dict()
    b = gankit.load_generator(tmp_path / "resumed", ema=False).generator.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_folder_recipe_trains_on_a_small_folder_of_pictures(tmp_path: Path) -> None:
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = torch.Generator().manual_seed(0)
    for i in range(12):
        pixels = (torch.rand(20, 24, 3, generator=rng) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(photos / f"{i}.png")
    recipe = gankit.load_recipe(
        RECIPES / "folder-diffaugment.toml",
        [f"data.path={photos}", "data.resolution=16", "run.steps=2", "run.batch_size=8", "run.samples=4",
         "generator.width=8", "generator.max_width=16", "generator.latent_dim=8",
         "discriminator.width=8", "discriminator.max_width=16"],
    )
    assert [spec.name for spec in recipe["tricks"]] == ["ema", "diffaugment.augment"]
    result = gankit.train(recipe, tmp_path / "run", quiet=True)
    assert result.step == 2
