"""Style-transfer losses: Gram matrices, total variation, content and style against hand-computed values."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pydantic import ValidationError

from gankit.plugins import get_registry
from gankit.protocols import ImageLoss
from gankit.recipe import RecipeError, loads_recipe
from gankit.style.losses import (
    ContentLoss,
    GramStyleLoss,
    TotalVariationLoss,
    gram_matrix,
    layer_weights,
    required_layers,
    total_variation,
)

# Two channels, one row of two pixels: F = [[1, 2], [3, 4]].
FEATURES = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
# F F^T = [[5, 11], [11, 25]], divided by C*H*W = 2*1*2 = 4.
GRAM = torch.tensor([[[1.25, 2.75], [2.75, 6.25]]])
GRAM_SQUARED_NORM = 1.25**2 + 2 * 2.75**2 + 6.25**2  # 55.75


def image_loss(name: str, params: dict[str, Any] | None = None) -> Any:
    return get_registry().get("loss", name, role="image").build(params or {})


def test_gram_matrix_of_a_hand_computed_case() -> None:
    torch.testing.assert_close(gram_matrix(FEATURES), GRAM)


def test_gram_matrix_does_not_depend_on_image_size() -> None:
    features = torch.randn(2, 3, 4, 5)
    tiled = features.repeat(1, 1, 2, 3)
    torch.testing.assert_close(gram_matrix(tiled), gram_matrix(features))
    assert gram_matrix(features).shape == (2, 3, 3)


def test_total_variation_of_a_hand_computed_case() -> None:
    image = torch.tensor([[[[0.0, 1.0], [3.0, 5.0]]]])
    # vertical pairs: |3-0| = 3, |5-1| = 4; horizontal pairs: |1-0| = 1, |5-3| = 2.
    assert total_variation(image, "l1").item() == pytest.approx((3 + 4 + 1 + 2) / 4)
    assert total_variation(image, "squared").item() == pytest.approx((9 + 16 + 1 + 4) / 4)


def test_total_variation_counts_every_pair_once_over_channels_and_rows() -> None:
    row = torch.tensor([[[[0.0, 1.0, 3.0]], [[2.0, 2.0, 2.0]]]])
    # channel 0: pairs 1 and 2; channel 1: pairs 0 and 0; no vertical pairs.
    assert total_variation(row, "l1").item() == pytest.approx(3 / 4)
    assert total_variation(row, "squared").item() == pytest.approx(5 / 4)
    assert total_variation(torch.full((1, 3, 4, 4), 0.3)).item() == 0.0
    with pytest.raises(ValueError, match="norm"):
        total_variation(row, "l3")  # type: ignore[arg-type]


def test_total_variation_part_multiplies_by_its_weight() -> None:
    image = torch.tensor([[[[0.0, 1.0], [3.0, 5.0]]]])
    loss = image_loss("total-variation", {"weight": 2.0, "norm": "l1"})
    assert isinstance(loss, ImageLoss)
    assert getattr(loss, "layers", None) == ()
    assert loss(image, {}).item() == pytest.approx(5.0)


def test_content_loss_is_a_relative_mean_squared_error() -> None:
    target = torch.full((1, 1, 2, 2), 2.0)
    loss = ContentLoss(["relu4_2"], weight=2.0)
    loss.set_target({"relu4_2": target})
    # mean((3 - 2)^2) = 1, divided by mean(2^2) = 4, times the weight 2.
    assert loss(torch.zeros(1), {"relu4_2": target + 1}).item() == pytest.approx(0.5)
    absolute = ContentLoss(["relu4_2"], weight=2.0, relative=False)
    absolute.set_target({"relu4_2": target})
    assert absolute(torch.zeros(1), {"relu4_2": target + 1}).item() == pytest.approx(2.0)
    assert loss(torch.zeros(1), {"relu4_2": target}).item() == 0.0


def test_content_target_is_cached_detached_and_must_match_the_image_size() -> None:
    features = torch.ones(1, 2, 3, 3, requires_grad=True)
    loss = ContentLoss(["relu1_1"])
    loss.set_target({"relu1_1": features})
    with torch.no_grad():
        features.mul_(5)
    assert loss(torch.zeros(1), {"relu1_1": torch.ones(1, 2, 3, 3)}).item() == 0.0
    with pytest.raises(ValueError, match="shape"):
        loss(torch.zeros(1), {"relu1_1": torch.ones(1, 2, 4, 4)})


def test_gram_style_loss_of_a_hand_computed_case() -> None:
    zeros = torch.zeros_like(FEATURES)
    absolute = GramStyleLoss(["relu1_1"], relative=False)
    absolute.set_target({"relu1_1": FEATURES})
    assert absolute(torch.zeros(1), {"relu1_1": zeros}).item() == pytest.approx(GRAM_SQUARED_NORM)
    relative = GramStyleLoss(["relu1_1"], weight=3.0)
    relative.set_target({"relu1_1": FEATURES})
    assert relative(torch.zeros(1), {"relu1_1": zeros}).item() == pytest.approx(3.0)
    assert relative(torch.zeros(1), {"relu1_1": FEATURES.repeat(1, 1, 2, 2)}).item() == pytest.approx(0.0, abs=1e-6)


def test_style_layers_combine_with_their_weights() -> None:
    features = {"relu1_1": FEATURES, "relu2_1": 2 * FEATURES}
    image = {"relu1_1": torch.zeros_like(FEATURES), "relu2_1": 2 * FEATURES}
    listed = GramStyleLoss(["relu1_1", "relu2_1"])
    listed.set_target(features)
    # relu1_1 contributes a relative error of 1, relu2_1 none; a list weighs each 1/2.
    assert listed(torch.zeros(1), image).item() == pytest.approx(0.5)
    weighted = GramStyleLoss({"relu1_1": 4.0, "relu2_1": 1.0})
    weighted.set_target(features)
    assert weighted(torch.zeros(1), image).item() == pytest.approx(4.0)
    assert layer_weights({"a": 2, "b": 0.5}) == {"a": 2.0, "b": 0.5}
    assert layer_weights(["a", "b", "c", "d"]) == {name: 0.25 for name in "abcd"}


def test_style_target_is_the_mean_gram_matrix_of_a_batch() -> None:
    loss = GramStyleLoss(["relu1_1"], relative=False)
    loss.set_target({"relu1_1": torch.cat([FEATURES, 3 * FEATURES])})
    # the batch mean of G and 9 G is 5 G: the Gram matrix of sqrt(5) F.
    image = {"relu1_1": 5**0.5 * FEATURES}
    assert loss(torch.zeros(1), image).item() == pytest.approx(0.0, abs=1e-5)


def test_losses_need_their_target_and_declare_their_layers() -> None:
    content, style = ContentLoss(["relu4_2"]), GramStyleLoss(["relu1_1", "relu4_2"])
    with pytest.raises(RuntimeError, match="set_target"):
        style(torch.zeros(1), {})
    with pytest.raises(KeyError, match="relu4_2"):
        content.set_target({"relu1_1": FEATURES})
    tv = TotalVariationLoss()
    assert required_layers([content, style, tv]) == ("relu4_2", "relu1_1")
    assert (content.target_image, style.target_image, tv.target_image) == ("content", "style", None)
    assert GramStyleLoss({"relu1_1": 1.0, "relu2_1": 0.0}).layers == ("relu1_1",)


@pytest.mark.parametrize("name", ["content", "gram-style", "total-variation"])
def test_image_losses_are_registered_with_role_image(name: str) -> None:
    part = get_registry().get("loss", name)
    assert part.role == "image"
    assert part.summary
    for field in part.params.model_fields.values():
        assert field.description
    assert isinstance(part.build(), ImageLoss)


def test_gatys_defaults_of_the_parts() -> None:
    assert image_loss("content").layers == ("relu4_2",)
    assert image_loss("gram-style").layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    weighted = image_loss("gram-style", {"layers": {"relu1_1": 2.0, "relu3_1": 0.5}, "weight": 7})
    assert weighted.per_layer == {"relu1_1": 2.0, "relu3_1": 0.5}
    assert weighted.weight == 7.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"layers": ["relu4_5x"]}, "unknown layer name"),
        ({"layers": []}, "at least one"),
        ({"layers": ["relu1_1", "relu1_1"]}, "twice"),
        ({"layers": {"relu1_1": -1.0}}, ">= 0"),
        ({"layers": {"relu1_1": 0.0}}, "> 0"),
        ({"weight": -1}, "greater than or equal"),
        ({"relative": "sometimes"}, "boolean"),
    ],
)
def test_bad_loss_parameters_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        get_registry().get("loss", "gram-style").validate(params)


def test_a_style_recipe_only_takes_image_losses() -> None:
    with pytest.raises(RecipeError) as caught:
        loads_recipe('task = "style"\n[[losses]]\ntype = "hinge"\n')
    text = str(caught.value)
    assert "line 3" in text
    assert "unknown image loss 'hinge'" in text
    assert "content, gram-style, total-variation" in text


def test_a_style_recipe_reports_unknown_keys_with_their_line() -> None:
    text = 'task = "style"\n[run]\nsteps = 5\noptimiser = "adam"\n[[losses]]\ntype = "content"\nlayer = ["relu4_2"]\n'
    with pytest.raises(RecipeError) as caught:
        loads_recipe(text)
    message = str(caught.value)
    assert "line 4" in message and "'optimizer'" in message
    assert "line 7" in message and "'layers'" in message
