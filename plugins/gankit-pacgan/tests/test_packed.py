"""Tests of gankit-pacgan, run against the installed distribution (``pip install -e plugins/gankit-pacgan``)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import gankit
import pytest
import torch

from gankit_pacgan import PackedDiscriminator, PackedParams, pack_batch, packed_shape

RECIPES = Path(__file__).resolve().parents[1] / "src" / "gankit_pacgan" / "recipes"


def packed(pack: int = 2, shape: tuple[int, ...] = (2,), **inner: object) -> PackedDiscriminator:
    """A packed discriminator built through the registry, as a recipe would build it."""
    part = gankit.get_registry().get("discriminator", "pacgan.packed")
    table = {"type": "mlp", "width": 16, "depth": 2, **inner}
    module: PackedDiscriminator = part.build({"pack": pack, "inner": table}, shape=shape)
    return module


def test_registered_through_the_entry_point_with_the_distribution_as_provider() -> None:
    part = gankit.get_registry().get("discriminator", "pacgan.packed")
    assert part.provider.name == "gankit-pacgan"
    assert part.provider.version == metadata.version("gankit-pacgan")
    assert part.provider.namespace == "pacgan"
    assert part.factory is PackedDiscriminator
    assert not [b for b in gankit.broken_plugins() if b.name == "pacgan"]


def test_packed_shape_for_points_and_images() -> None:
    assert packed_shape((2,), 4) == (8,)
    assert packed_shape(5, 2) == (10,)
    assert packed_shape((3, 16, 16), 2) == (6, 16, 16)
    with pytest.raises(gankit.GankitError, match=r"points \(D,\) or images"):
        packed_shape((4, 4), 2)


def test_pack_batch_groups_consecutive_samples() -> None:
    x = torch.arange(12.0).reshape(6, 2)
    packs = pack_batch(x, 3)
    assert packs.shape == (2, 6)
    assert packs[0].tolist() == [0, 1, 2, 3, 4, 5]
    assert packs[1].tolist() == [6, 7, 8, 9, 10, 11]
    images = torch.randn(4, 3, 8, 8)
    packed_images = pack_batch(images, 2)
    assert packed_images.shape == (2, 6, 8, 8)
    assert torch.equal(packed_images[1, 3:], images[3])


def test_inner_discriminator_is_built_for_the_packed_shape_and_returns_one_logit_per_pack() -> None:
    d = packed(pack=4, shape=(2,))
    assert d.packed_shape == (8,)
    assert d.inner_ref == "mlp@v1"
    first = next(m for m in d.inner.modules() if isinstance(m, torch.nn.Linear))
    assert first.in_features == 8
    x = torch.randn(12, 2)
    logits = d(x)
    assert logits.shape == (3,)
    assert torch.allclose(logits, d.inner(x.reshape(3, 8)))


def test_packs_images_for_a_convolutional_inner_discriminator() -> None:
    part = gankit.get_registry().get("discriminator", "pacgan.packed")
    d = part.build({"pack": 2, "inner": {"type": "dcgan", "width": 8, "max_width": 16}}, shape=(1, 16, 16))
    first = next(m for m in d.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 2
    assert d(torch.randn(6, 1, 16, 16)).shape == (3,)


def test_batch_size_must_be_a_multiple_of_pack() -> None:
    d = packed(pack=3)
    with pytest.raises(gankit.GankitError, match=r"pack = 3 needs a batch size that is a multiple of 3, got 4"):
        d(torch.randn(4, 2))
    with pytest.raises(gankit.GankitError, match=r"built for samples of shape \(2,\)"):
        d(torch.randn(6, 3))


def test_gradients_reach_every_sample_of_a_pack() -> None:
    d = packed(pack=2)
    x = torch.randn(8, 2, requires_grad=True)
    d(x).sum().backward()
    assert x.grad is not None
    assert bool((x.grad.abs().sum(dim=1) > 0).all())


def test_params_pin_and_spell_out_the_inner_part() -> None:
    params = PackedParams.model_validate({"pack": 3, "inner": {"type": "mlp", "width": 32}})
    assert params.inner["type"] == "mlp@v1"
    assert params.inner["width"] == 32
    assert params.inner["depth"] == 3
    assert PackedParams().inner["type"] == "mlp@v1"


def ring_recipe(**inner: object) -> dict[str, object]:
    return {
        "run": {"steps": 5, "batch_size": 32, "seed": 0, "samples": 16, "log_every": 1},
        "data": {"type": "ring"},
        "generator": {"type": "mlp", "latent_dim": 2, "width": 16, "depth": 2},
        "discriminator": {"type": "pacgan.packed", "pack": 2, "inner": {"type": "mlp", "width": 16, **inner}},
        "loss": {"type": "non-saturating"},
    }


@pytest.mark.parametrize(
    ("inner", "path", "text"),
    [
        ({"width": 0}, "discriminator.inner.width", "greater than or equal to 1"),
        ({"widht": 8}, "discriminator.inner.widht", "Did you mean 'width'?"),
        ({"type": "mlpp"}, "discriminator.inner.type", "Did you mean 'mlp'?"),
        ({"type": "pacgan.packed"}, "discriminator.inner.type", "cannot pack another"),
    ],
)
def test_recipe_errors_name_the_inner_key(inner: dict[str, object], path: str, text: str) -> None:
    with pytest.raises(gankit.RecipeError) as caught:
        gankit.recipe_from_dict(ring_recipe(**inner))
    assert [issue.path for issue in caught.value.issues] == [path]
    assert text in str(caught.value)


def test_missing_inner_type_is_reported() -> None:
    raw = ring_recipe()
    raw["discriminator"] = {"type": "pacgan.packed", "inner": {"width": 8}}
    with pytest.raises(gankit.RecipeError, match=r"discriminator\.inner\.type: missing key 'type'"):
        gankit.recipe_from_dict(raw)


def test_resolved_recipe_round_trips_with_the_inner_version_pinned() -> None:
    recipe = gankit.recipe_from_dict(ring_recipe())
    table = recipe.to_dict()["discriminator"]
    assert table["type"] == "pacgan.packed@v1"
    assert table["inner"]["type"] == "mlp@v1"
    again = gankit.loads_recipe(recipe.to_toml())
    assert again.to_dict() == recipe.to_dict()


@pytest.mark.parametrize("name", ["ring-pacgan", "grid-pacgan"])
def test_shipped_recipes_are_valid(name: str) -> None:
    recipe = gankit.load_recipe(RECIPES / f"{name}.toml")
    assert recipe["discriminator"].name == "pacgan.packed"
    assert recipe.run.batch_size % recipe["discriminator"].params.pack == 0


def test_a_few_training_steps_then_the_generator_loads_back(tmp_path: Path) -> None:
    recipe = gankit.load_recipe(
        RECIPES / "ring-pacgan.toml",
        ["run.steps=4", "run.batch_size=64", "run.samples=16", "run.log_every=2", "run.sample_every=4",
         "run.checkpoint_every=4", "generator.width=16", "discriminator.inner.width=16"],
    )
    result = gankit.train(recipe, tmp_path / "run", quiet=True)
    assert result.step == 4
    loaded = gankit.load_generator(tmp_path / "run")
    assert gankit.sample(loaded, 8).shape == (8, 2)
    assert "pacgan.packed@v1 (gankit-pacgan" in loaded.recipe.part_versions()["discriminator"]
