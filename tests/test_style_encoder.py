"""VGG encoders: named layers, trimming, ImageNet preprocessing, random and file weights, frozen parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.plugins import get_registry
from gankit.style import vgg, weights
from gankit.style.losses import ContentLoss, GramStyleLoss, TotalVariationLoss, required_layers
from gankit.style.vgg import VGGEncoder

SHALLOW = ["relu1_1", "relu2_1", "relu3_1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(arch: str = "vgg16", layers: list[str] | None = SHALLOW, **params: object) -> VGGEncoder:
    encoder = get_registry().get("encoder", arch).build({"weights": "random", **params}, layers=layers)
    assert isinstance(encoder, VGGEncoder)
    return encoder


@pytest.fixture(scope="module")
def encoder() -> VGGEncoder:
    return build()


@pytest.fixture(autouse=True)
def _empty_hub(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("torch-home")
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def test_layer_names_follow_the_literature() -> None:
    names = vgg.layer_names("vgg19")
    assert len(names) == 16 + 16 + 5
    assert names[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert names[-3:] == ("conv5_4", "relu5_4", "pool5")
    assert "relu4_2" in names and "conv3_4" in names
    assert len(vgg.layer_names("vgg16")) == 13 + 13 + 5
    assert "conv3_4" not in vgg.layer_names("vgg16")
    strides = {layer.name: layer.stride for layer in vgg.architecture("vgg19")}
    assert (strides["relu1_1"], strides["pool1"], strides["relu4_2"], strides["pool5"]) == (1, 2, 8, 32)


def test_unknown_layers_are_named_with_a_suggestion() -> None:
    with pytest.raises(GankitError, match=r"vgg16 has no layer 'conv5_4'.*'conv5_3'"):
        vgg.check_layers("vgg16", ["conv5_4"])
    with pytest.raises(GankitError, match="no layer"):
        build("vgg19", ["relu9_9"])
    with pytest.raises(GankitError, match="unknown VGG"):
        vgg.architecture("vgg11")


def test_forward_returns_the_requested_layers_from_one_pass(encoder: VGGEncoder) -> None:
    calls: list[str] = []
    hook = encoder.conv("conv1_1").register_forward_hook(lambda *_: calls.append("conv1_1"))
    try:
        features = encoder(torch.rand(2, 3, 32, 48), ["relu3_1", "relu1_1", "conv2_1"])
    finally:
        hook.remove()
    assert calls == ["conv1_1"]
    assert set(features) == {"relu1_1", "conv2_1", "relu3_1"}
    assert features["relu1_1"].shape == (2, 64, 32, 48)
    assert features["conv2_1"].shape == (2, 128, 16, 24)
    assert features["relu3_1"].shape == (2, 256, 8, 12)
    assert (features["conv2_1"] < 0).any(), "a requested convolution output must not be rectified in place"


def test_imagenet_normalisation_happens_inside(encoder: VGGEncoder) -> None:
    images = torch.rand(1, 3, 8, 8)
    mean = torch.tensor(vgg.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(vgg.IMAGENET_STD).view(1, 3, 1, 1)
    conv = encoder.conv("conv1_1")
    expected = F.conv2d((images - mean) / std, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(encoder(images, ["conv1_1"])["conv1_1"], expected)


def test_the_encoder_is_trimmed_after_the_deepest_layer_in_use(encoder: VGGEncoder) -> None:
    assert encoder.layer_names[-1] == "relu3_1"
    assert sorted({k.split(".")[0] for k in encoder.state_dict()}) == [
        "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"
    ]
    with pytest.raises(GankitError, match="relu4_1"):
        encoder(torch.rand(1, 3, 16, 16), ["relu4_1"])
    deeper = VGGEncoder("vgg16")
    assert deeper.layer_names[-1] == "pool5"
    deeper.trim(["relu2_2", "relu1_1"])
    assert deeper.layer_names[-1] == "relu2_2"
    assert not hasattr(deeper, "conv3_1")


def test_random_weights_are_seeded_and_do_not_depend_on_trimming() -> None:
    a, b = build("vgg16", ["relu2_1"]), build("vgg16", ["relu3_1"])
    for name in ("conv1_1", "conv1_2", "conv2_1"):
        torch.testing.assert_close(a.conv(name).weight, b.conv(name).weight, rtol=1e-5, atol=1e-6)
    other = build("vgg16", ["relu2_1"], seed=1)
    assert not torch.equal(a.conv("conv1_1").weight, other.conv("conv1_1").weight)
    assert a.weights_source == "random (seed 0)"


def test_random_weights_are_normalised_per_channel(encoder: VGGEncoder) -> None:
    reference = vgg.pink_noise(4, 96, seed=0)
    assert reference.min() >= 0.0 and reference.max() <= 1.0
    features = encoder(reference, ["conv1_1", "conv2_1", "conv3_1"])
    for name, value in features.items():
        mean, std = value.mean(dim=(0, 2, 3)), value.std(dim=(0, 2, 3))
        torch.testing.assert_close(mean, torch.zeros_like(mean), atol=1e-3, rtol=0, msg=name)
        torch.testing.assert_close(std, torch.ones_like(std), atol=1e-3, rtol=0, msg=name)


def test_gradients_reach_only_the_image(encoder: VGGEncoder) -> None:
    losses: list[Any] = [ContentLoss(["relu3_1"]), GramStyleLoss(["relu1_1", "relu2_1"]), TotalVariationLoss()]
    with torch.no_grad():
        losses[0].set_target(encoder(torch.rand(1, 3, 32, 32), ["relu3_1"]))
        losses[1].set_target(encoder(torch.rand(1, 3, 40, 40), ["relu1_1", "relu2_1"]))
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    features = encoder(image, required_layers(losses))
    total = sum(loss(image, features) for loss in losses)
    assert isinstance(total, torch.Tensor)
    total.backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    for parameter in encoder.parameters():
        assert not parameter.requires_grad
        assert parameter.grad is None
    assert not encoder.training


def test_weights_saved_to_safetensors_load_back_with_identical_features(encoder: VGGEncoder, tmp_path: Path) -> None:
    file = weights.save_safetensors(encoder.state_dict(), tmp_path / "random.safetensors", arch="vgg16")
    loaded = get_registry().get("encoder", "vgg16").build({"weights": str(file)}, layers=SHALLOW)
    assert loaded.weights_source == str(file)
    images = torch.rand(1, 3, 24, 24)
    for name, value in encoder(images, SHALLOW).items():
        assert torch.equal(loaded(images, SHALLOW)[name], value)


def _torchvision_state(source: VGGEncoder) -> dict[str, torch.Tensor]:
    """A state dict laid out like torchvision's vgg16 (features.N, classifier) from a full encoder."""
    state: dict[str, torch.Tensor] = {}
    for index, layer in enumerate(vgg.architecture(source.arch)):
        if layer.kind == "conv":
            weight, bias = source._parameters_of(layer.name)
            state[f"features.{index}.weight"] = weight.detach().clone()
            state[f"features.{index}.bias"] = bias.detach().clone()
    state["classifier.0.weight"] = torch.zeros(4, 4)
    return state


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, VGGEncoder]:
    full = VGGEncoder("vgg16")
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in full.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    path = tmp_path_factory.mktemp("tv") / "vgg16-397923af.pth"
    torch.save(_torchvision_state(full), path)
    return path, full


def test_torchvision_state_dicts_are_read_with_weights_only(
    torchvision_file: tuple[Path, VGGEncoder], tmp_path: Path
) -> None:
    path, full = torchvision_file
    loaded = get_registry().get("encoder", "vgg16").build({"weights": str(path)}, layers=["relu5_3"])
    images = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded(images, ["relu5_3"])["relu5_3"], full(images, ["relu5_3"])["relu5_3"])
    with pytest.raises(GankitError, match='holds vgg16 weights, not vgg19: set \\[encoder\\] type = "vgg16"'):
        get_registry().get("encoder", "vgg19").build({"weights": str(path)})
    converted = weights.convert(path, tmp_path / "vgg16.safetensors", arch="vgg16")
    assert converted.stat().st_size < path.stat().st_size
    again = get_registry().get("encoder", "vgg16").build({"weights": str(converted)}, layers=["relu5_3"])
    assert torch.equal(again(images, ["relu5_3"])["relu5_3"], full(images, ["relu5_3"])["relu5_3"])


class _NotATensor:
    pass


def test_files_that_need_pickle_code_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"conv1_1.weight": _NotATensor()}, path)
    with pytest.raises(GankitError, match="pickle"):
        weights.read_tensors(path)
    text = tmp_path / "notes.safetensors"
    text.write_text("not weights")
    with pytest.raises(GankitError, match="cannot read weights"):
        weights.read_tensors(text)
    empty = tmp_path / "other.pth"
    torch.save({"something.weight": torch.zeros(2)}, empty)
    with pytest.raises(GankitError, match="no vgg16 convolution weights"):
        weights.load(empty, "vgg16")


def test_missing_weights_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(GankitError) as caught:
        get_registry().get("encoder", "vgg19").build({})
    message = str(caught.value)
    assert "no vgg19 weights in the torch hub cache" in message
    assert "gankit weights vgg19" in message
    assert 'weights = "random"' in message
    with pytest.raises(GankitError, match=r"(?s)no such weights file.*gankit weights vgg16"):
        get_registry().get("encoder", "vgg16").build({"weights": str(tmp_path / "missing.pth")})
    with pytest.raises(GankitError, match="is a folder"):
        get_registry().get("encoder", "vgg16").build({"weights": str(tmp_path)})


def test_hub_weights_are_found_in_the_torch_home_cache(encoder: VGGEncoder, _empty_hub: Path) -> None:
    assert weights.hub_dir() == _empty_hub / "hub" / "checkpoints"
    assert weights.find_in_hub("vgg16") is None
    target = weights.hub_dir() / weights.converted_name("vgg16")
    weights.save_safetensors(encoder.state_dict(), target, arch="vgg16")
    assert weights.find_in_hub("vgg16") == target
    loaded = get_registry().get("encoder", "vgg16").build({"weights": "hub"}, layers=SHALLOW)
    assert loaded.weights_source == str(target)
    with pytest.raises(GankitError, match=r"no 'conv3_2\.weight'.*up to relu5_1"):
        get_registry().get("encoder", "vgg16").build({"weights": "hub"}, layers=["relu5_1"])


def test_activation_estimate_grows_with_the_pixels() -> None:
    small = vgg.activation_bytes("vgg19", "relu5_1", 128, 128)
    large = vgg.activation_bytes("vgg19", "relu5_1", 256, 256)
    assert 3.5 < large / small < 4.5
    assert vgg.activation_bytes("vgg19", "relu1_1", 256, 256) < large
    assert vgg.activation_bytes("vgg19", "relu5_1", 256, 256, pooling="avg") < large
