"""Each part checked against its contract by gankit.testing, and all of them trained together."""

from __future__ import annotations

from gankit.testing import check_part, tiny_recipe, train_for


def test_relativistic_centered_loss() -> None:
    check_part("loss", "extras.rcgan")


def test_mode_seeking_regulariser() -> None:
    check_part("loss", "extras.mode-seeking")


def test_adaptive_noise_trick() -> None:
    check_part("trick", "extras.adaptive-noise")


def test_lion_optimizer() -> None:
    check_part("optimizer", "extras.lion")


def test_all_four_train_together_and_resume() -> None:
    recipe = tiny_recipe(
        "images",
        loss="extras.rcgan",
        regularizers=["r1", {"type": "extras.mode-seeking", "weight": 0.1}],
        tricks=[{"type": "extras.adaptive-noise", "interval": 1, "target": 0.0}],
        optim={"generator": {"type": "extras.lion"}, "discriminator": {"type": "extras.lion"}},
    )
    result = train_for(recipe, steps=4)
    assert result.step == 4
    assert result.last is not None and result.last["noise_std"] > 0  # the discriminator is sure of reals: r_t > 0


def test_the_shipped_recipe_is_listed_and_valid() -> None:
    import gankit

    recipe = gankit.load_recipe("ring-extras")
    assert recipe["loss"].name == "extras.rcgan"
