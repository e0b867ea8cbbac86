"""The style loop: it lowers the weighted loss, keeps pixels in range, and fails early and clearly."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

from gankit.errors import GankitError, TrainingError
from gankit.recipe import Recipe, recipe_from_dict
from gankit.style import images, loop, stylize
from gankit.style.schema import StyleRunSettings
from gankit.style.vgg import VGGEncoder

RECIPE: dict[str, Any] = {
    "task": "style",
    "run": {"size": 48, "steps": 10, "log_every": 5, "init": "noise"},
    "encoder": {"type": "vgg19", "weights": "random", "pooling": "avg"},
    "losses": [
        {"type": "content", "layers": ["relu4_2"]},
        {"type": "gram-style", "layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1"], "weight": 3.0},
        {"type": "total-variation", "weight": 1.0},
    ],
}


def recipe(**run: Any) -> dict[str, Any]:
    data = copy.deepcopy(RECIPE)
    data["run"].update(run)
    return data


def _content() -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, 36), torch.linspace(0, 1, 48), indexing="ij")
    disc = ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.08).float()
    return torch.stack([0.2 + 0.6 * x, 0.3 + 0.5 * disc, 0.8 - 0.6 * y]).unsqueeze(0).clamp(0, 1)


def _style() -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 6.28, 40), torch.linspace(0, 6.28, 40), indexing="ij")
    stripes = 0.5 + 0.5 * torch.sin(3 * x + 2 * y)
    return torch.stack([stripes, 1 - stripes, 0.5 * stripes]).unsqueeze(0)


CONTENT, STYLE = _content(), _style()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def encoder() -> VGGEncoder:
    built = recipe_from_dict(RECIPE)["encoder"].build(layers=["relu4_2", "relu4_1"])
    assert isinstance(built, VGGEncoder)
    return built


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_the_loop_lowers_the_weighted_loss(optimizer: str, encoder: VGGEncoder) -> None:
    result = stylize(CONTENT, STYLE, recipe(optimizer=optimizer), encoder=encoder, quiet=True)
    first, last = result.history[0], result.history[-1]
    assert [entry["step"] for entry in result.history] == [1, 5, 10]
    assert last["total"] < first["total"]
    names = ["content", "gram-style", "total-variation"] + (["range"] if optimizer == "lbfgs" else [])
    for entry in result.history:
        assert sum(entry[name] for name in names) == pytest.approx(entry["total"], rel=1e-4)
    assert result.size == (36, 48)
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    assert result.device == str(loop.resolve_device("auto"))
    assert result.seconds > 0


def test_the_loop_works_with_the_built_encoder_of_the_recipe(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = stylize(CONTENT, STYLE, recipe(steps=2, size=32), output=out, quiet=True)
    assert result.path == out
    assert result.to_pil().size == (32, 24)
    saved = images.as_tensor(out)
    assert saved.shape == (1, 3, 24, 32)


def test_multi_scale_starts_small_and_upscales(encoder: VGGEncoder) -> None:
    result = stylize(CONTENT, STYLE, recipe(size=64, steps=3, multi_scale=2, log_every=3), encoder=encoder, quiet=True)
    sizes = [(entry["scale"], entry["height"], entry["width"]) for entry in result.history]
    assert sizes == [(1, 24, 32), (1, 24, 32), (2, 48, 64), (2, 48, 64)]
    assert [entry["step"] for entry in result.history] == [1, 3, 4, 6]
    assert result.size == (48, 64)
    assert loop.scale_sizes(427, 640, 512, 3) == [(85, 128), (171, 256), (342, 512)]


def test_content_start_and_colour_preservation(encoder: VGGEncoder) -> None:
    result = stylize(
        CONTENT, STYLE, recipe(init="content", steps=2, preserve_color=True), encoder=encoder, quiet=True
    )
    assert result.history[0]["content"] == 0.0
    chroma = images._RGB_TO_YIQ[1:]
    got = torch.einsum("ij,njhw->nihw", chroma, result.image)
    want = torch.einsum("ij,njhw->nihw", chroma, CONTENT)
    assert (got - want).abs().mean() < 0.02


def test_preserve_colors_takes_luminance_from_the_result_and_colour_from_the_content() -> None:
    stylised = 0.3 + 0.4 * torch.rand(1, 3, 8, 8)
    content = 0.3 + 0.4 * torch.rand(1, 3, 8, 8)
    mixed = images.preserve_colors(stylised, content)
    yiq = images._RGB_TO_YIQ

    def project(rows: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,njhw->nihw", rows, image)

    torch.testing.assert_close(project(yiq[:1], mixed), project(yiq[:1], stylised))
    torch.testing.assert_close(project(yiq[1:], mixed), project(yiq[1:], content))


def test_start_from_an_image_file_and_save_frames(encoder: VGGEncoder, tmp_path: Path) -> None:
    start = tmp_path / "start.png"
    images.save_image(torch.full((1, 3, 10, 10), 0.5), start)
    out = tmp_path / "result.png"
    seen: list[dict[str, float]] = []
    result = stylize(
        CONTENT, STYLE, recipe(init=str(start), steps=4, frames_every=2, log_every=2), encoder=encoder,
        output=out, quiet=True, on_log=lambda entry, image: seen.append(entry),
    )
    frames = tmp_path / "result-frames"
    assert result.frames == [frames / "frame-00002.png", frames / "frame-00004.png"]
    assert all(frame.is_file() for frame in result.frames)
    assert [entry["step"] for entry in seen] == [1, 2, 4]
    assert out.is_file()


def test_ctrl_c_keeps_the_image_so_far(encoder: VGGEncoder, tmp_path: Path) -> None:
    def interrupt(entry: dict[str, float], image: torch.Tensor) -> None:
        if entry["step"] == 2:
            raise KeyboardInterrupt

    out = tmp_path / "partial.png"
    with pytest.raises(KeyboardInterrupt):
        stylize(CONTENT, STYLE, recipe(steps=5, log_every=2), encoder=encoder, output=out, quiet=True, on_log=interrupt)
    assert images.as_tensor(out).shape == (1, 3, 36, 48)


def test_the_same_seed_gives_the_same_image_on_cpu(encoder: VGGEncoder) -> None:
    a = stylize(CONTENT, STYLE, recipe(steps=2, device="cpu"), encoder=encoder, quiet=True)
    b = stylize(CONTENT, STYLE, recipe(steps=2, device="cpu"), encoder=encoder, quiet=True)
    c = stylize(CONTENT, STYLE, recipe(steps=2, seed=1, device="cpu"), encoder=encoder, quiet=True)
    assert torch.equal(a.image, b.image)
    assert not torch.equal(a.image, c.image)


def test_overrides_and_run_keywords_change_the_recipe(encoder: VGGEncoder) -> None:
    result = stylize(
        CONTENT, STYLE, RECIPE, overrides=["losses.1.weight=5", "losses.0.layers=[\"relu3_1\"]"],
        encoder=encoder, quiet=True, steps=1, size=32,
    )
    assert result.recipe["losses"][1].params.weight == 5.0
    assert result.recipe.run.steps == 1
    assert result.size == (24, 32)
    assert isinstance(loop.resolve_recipe(result.recipe), Recipe)


def test_total_variation_alone_needs_no_encoder() -> None:
    data = {"task": "style", "run": {"size": 16, "steps": 3, "optimizer": "adam", "lr": 0.05, "init": "content"},
            "encoder": {"weights": "nowhere.pth"}, "losses": [{"type": "total-variation"}]}
    result = stylize(torch.rand(1, 3, 16, 16), STYLE, data, quiet=True)
    assert result.history[-1]["total-variation"] < result.history[0]["total-variation"]


def test_progress_and_losses_are_logged_by_name(encoder: VGGEncoder, capsys: pytest.CaptureFixture[str]) -> None:
    data = recipe(steps=2, log_every=1)
    data["losses"].append({"type": "content", "layers": ["relu3_1"], "weight": 0.5})
    result = stylize(CONTENT, STYLE, data, encoder=encoder)
    err = capsys.readouterr().err
    assert "vgg19 (random (seed 0))" in err
    assert "step 2/2 [48x36]" in err
    assert "content-2" in err and "gram-style" in err and "total-variation" in err
    assert "content-2" in result.history[-1]


def test_cpu_and_gpu_default_sizes() -> None:
    settings = StyleRunSettings()
    assert settings.default_size(accelerated=False) == 256
    assert settings.default_size(accelerated=True) == 512
    assert StyleRunSettings(size=100).default_size(accelerated=True) == 100
    assert StyleRunSettings(optimizer="adam").learning_rate() == 0.02
    assert StyleRunSettings().learning_rate() == 1.0


@pytest.mark.parametrize(("optimizer", "own_reads_per_step"), [("adam", 0), ("lbfgs", 1)])
def test_the_loss_is_read_from_the_device_only_on_logging_steps(
    encoder: VGGEncoder, monkeypatch: pytest.MonkeyPatch, optimizer: str, own_reads_per_step: int
) -> None:
    """A read is a host sync on a GPU; torch's L-BFGS itself reads the loss once per step."""
    reads = {"float": 0, "tolist": 0}
    to_float, to_list = torch.Tensor.__float__, torch.Tensor.tolist

    def counted_float(self: torch.Tensor) -> float:
        reads["float"] += 1
        return to_float(self)

    def counted_tolist(self: torch.Tensor) -> Any:
        reads["tolist"] += 1
        return to_list(self)

    monkeypatch.setattr(torch.Tensor, "__float__", counted_float)
    monkeypatch.setattr(torch.Tensor, "tolist", counted_tolist)
    counts = []
    for steps in (4, 12):  # logged at step 1 and at the last step only
        reads.update(float=0, tolist=0)
        result = stylize(CONTENT, STYLE, recipe(steps=steps, log_every=100, optimizer=optimizer),
                         encoder=encoder, quiet=True)
        assert [entry["step"] for entry in result.history] == [1, steps]
        counts.append(dict(reads))
    extra = {"float": own_reads_per_step * (12 - 4), "tolist": 0}
    assert {k: counts[1][k] - counts[0][k] for k in extra} == extra, f"reads per run: {counts}"


def test_a_diverging_loss_stops_with_a_training_error(encoder: VGGEncoder) -> None:
    with pytest.raises(TrainingError, match=r"lower run\.lr"):
        stylize(CONTENT, STYLE, recipe(lr=1e30, steps=4), encoder=encoder, quiet=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**RECIPE, "losses": []}, "no \\[\\[losses\\]\\]"),
        (recipe(init="missing.png"), "start image \\(run.init\\) missing.png: no such file"),
        (recipe(size=6), "scale 1 is 6x4 px, too small for layer relu4_2 \\(stride 8\\)"),
        (recipe(style_scale=0.1), "the style image at scale 1 is 5x5 px, too small"),
        (recipe(frames_every=2), "no folder for frames"),
        ({**RECIPE, "encoder": {"type": "vgg16", "weights": "random"},
          "losses": [{"type": "content", "layers": ["conv5_4"]}]}, "vgg16 has no layer 'conv5_4'"),
        ({**RECIPE, "encoder": {"type": "vgg19", "weights": "nowhere.pth"}}, "no such weights file"),
    ],
)
def test_mistakes_are_reported_before_any_work(data: dict[str, Any], message: str, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    with pytest.raises(GankitError, match=message):
        stylize(CONTENT, STYLE, data, output=None if "frames" in message else out, quiet=True)
    assert not out.exists()


def test_a_size_too_large_for_memory_is_refused_first(encoder: VGGEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "available_memory", lambda device: 64 << 20)
    with pytest.raises(GankitError, match=r"needs about .* GiB of \w+ memory.*About \d+ px fits"):
        stylize(CONTENT, STYLE, recipe(size=4096), encoder=encoder, quiet=True)
    assert loop.available_memory(torch.device("cpu")) == 64 << 20


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match=r"content image .*: no such file"):
        stylize(tmp_path / "nope.jpg", STYLE, RECIPE, quiet=True)
    with pytest.raises(GankitError, match="style image: a tensor image must have shape"):
        stylize(CONTENT, torch.rand(2, 3, 8, 8), RECIPE, quiet=True)
    with pytest.raises(GankitError, match=r"unknown image format '\.txt'"):
        stylize(CONTENT, STYLE, RECIPE, output=tmp_path / "out.txt", quiet=True)
    with pytest.raises(GankitError, match="needs a recipe with task = \"style\""):
        loop.resolve_recipe(Recipe(task="gan", slots={}, source="gan.toml"))
    with pytest.raises(GankitError, match="CUDA"):
        loop.resolve_device("cuda:0") if not torch.cuda.is_available() else loop.resolve_device("cuda:99")


def test_real_memory_is_measured() -> None:
    free = loop.available_memory(torch.device("cpu"))
    assert free is None or free > 0
