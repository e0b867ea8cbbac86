"""The encoder that needs no download: random filters on an image pyramid, and the offline recipe that uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit.cli import main
from gankit.errors import GankitError
from gankit.plugins import get_registry
from gankit.recipe import load_recipe
from gankit.style import stylize
from gankit.style.losses import ContentLoss, GramStyleLoss
from gankit.style.pyramid import RandomPyramidEncoder
from gankit.style.sample_photos import write_sample_photos
from gankit.style.vgg import pink_noise

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(**params: object) -> RandomPyramidEncoder:
    layers = params.pop("layers", None)
    encoder = get_registry().get("encoder", "random-pyramid").build(params, layers=layers)
    assert isinstance(encoder, RandomPyramidEncoder)
    return encoder


def test_layers_are_named_by_level_with_vgg_strides() -> None:
    encoder = build(channels=8)
    assert encoder.layer_names[:4] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2")
    assert encoder.layer_names[-1] == "relu5_2"
    features = encoder(torch.rand(2, 3, 64, 48), ["relu1_2", "relu3_1", "relu5_2", "conv2_2"])
    assert features["relu1_2"].shape == (2, 8, 64, 48)
    assert features["relu3_1"].shape == (2, 8, 16, 12)
    assert features["relu5_2"].shape == (2, 8, 4, 3)
    assert float(features["relu3_1"].min()) >= 0 and float(features["conv2_2"].min()) < 0
    assert not any(p.requires_grad for p in encoder.parameters())


def test_weights_depend_on_the_seed_only_not_on_trimming() -> None:
    full, trimmed, other = build(channels=8), build(channels=8, layers=["relu2_2"]), build(channels=8, seed=1)
    assert trimmed.layer_names[-1] == "relu2_2" and not hasattr(trimmed, "conv3_1")
    image = torch.rand(1, 3, 32, 32)
    assert torch.equal(full(image, ["relu2_2"])["relu2_2"], trimmed(image, ["relu2_2"])["relu2_2"])
    assert not torch.equal(full(image, ["relu2_2"])["relu2_2"], other(image, ["relu2_2"])["relu2_2"])
    assert "random (seed 1)" in other.weights_source


def test_first_filters_ignore_flat_colour_and_every_channel_is_normalised() -> None:
    encoder = build(channels=16, levels=2)
    flat = encoder(torch.full((1, 3, 16, 16), 0.2), ["conv1_1"])["conv1_1"]
    other = encoder(torch.full((1, 3, 16, 16), 0.9), ["conv1_1"])["conv1_1"]
    assert torch.allclose(flat, other, atol=1e-4), "zero-mean filters see no difference between flat colours"
    reference = encoder(pink_noise(4, 128, seed=0), ["conv1_1", "conv2_2"])
    for value in reference.values():
        assert value.mean(dim=(0, 2, 3)).abs().max() < 1e-3
        assert (value.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3


def test_bad_layers_and_sizes_are_clear_errors() -> None:
    with pytest.raises(GankitError, match=r"random-pyramid has no layer 'relu3_3'"):
        build(layers=["relu3_3"])
    with pytest.raises(GankitError, match="kernel_size = 4: must be odd"):
        build(kernel_size=4)


def test_offline_recipe_is_the_default_for_random_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    china, flower = write_sample_photos(tmp_path)
    out = tmp_path / "offline.png"
    assert main(["stylize", "--content", str(china), "--style", str(flower), "--weights", "random", "--size", "64",
                 "--steps", "3", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "random-pyramid (random (seed 0))" in captured.err and "note:" not in captured.err
    assert out.is_file()
    assert main(["stylize", "--recipe", "style-transfer-fast", "--content", str(china), "--style", str(flower),
                 "--weights", "random", "--size", "32", "--steps", "1", "-o", str(out)]) == 0
    assert "note: random vgg19 weights give little more than colour noise" in capsys.readouterr().err
    recipe = load_recipe("style-transfer-offline")
    assert recipe["encoder"].name == "random-pyramid"
    assert recipe["losses"][0].params.layers == ("relu2_2",)


def test_an_offline_stylization_moves_towards_the_style_for_an_independent_encoder(tmp_path: Path) -> None:
    """Judged by an encoder with other random filters: the result is nearer the style than the photo is."""
    china, flower = write_sample_photos(tmp_path)
    result = stylize(china, flower, "style-transfer-offline", size=48, steps=30, quiet=True)
    judge = build(seed=12345, channels=64)
    from gankit.style import images

    content = images.resize(images.as_tensor(china), result.size)
    style = images.resize(images.as_tensor(flower), result.size)
    layers = ["relu1_2", "relu2_2", "relu3_2", "relu4_2"]
    gram, keep = GramStyleLoss(layers), ContentLoss(["relu2_2"])
    with torch.no_grad():
        gram.set_target(judge(style, layers))
        keep.set_target(judge(content, ["relu2_2"]))
        style_before = float(gram(content, judge(content, layers)))
        style_after = float(gram(result.image, judge(result.image, layers)))
        content_after = float(keep(result.image, judge(result.image, ["relu2_2"])))
        content_of_style = float(keep(style, judge(style, ["relu2_2"])))
    assert style_after < 0.6 * style_before, (style_before, style_after)
    assert content_after < 0.5 * content_of_style, (content_after, content_of_style)
