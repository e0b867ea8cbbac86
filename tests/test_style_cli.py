"""``gankit stylize`` and the style recipes end to end, on scikit-learn's two sample photos."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from gankit.cli import main
from gankit.recipe import builtin_recipes, load_recipe

SMALL = ["--weights", "random", "--size", "64", "--steps", "4"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from sklearn.datasets import load_sample_images

    folder = tmp_path_factory.mktemp("photos")
    sample = load_sample_images()
    paths = []
    for name, array in zip(sample.filenames, sample.images):
        path = folder / Path(name).name
        Image.fromarray(array).save(path)
        paths.append(path)
    china, flower = sorted(paths)
    return china, flower


@pytest.fixture(autouse=True)
def _no_hub_weights(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))


def test_stylize_end_to_end_on_the_sample_photos(
    photos: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    china, flower = photos
    out = tmp_path / "out" / "china-as-flower.png"
    code = main(["stylize", "--content", str(china), "--style", str(flower), "-o", str(out), *SMALL, "--quiet"])
    assert code == 0
    with Image.open(out) as image:
        assert image.size == (64, 43)
        assert image.mode == "RGB"
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_stylize_with_the_fast_recipe_frames_and_colours(
    photos: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    china, flower = photos
    monkeypatch.chdir(tmp_path)
    args = ["stylize", "--recipe", "style-transfer-fast", "--content", str(china), "--style", str(flower),
            "--weights", "random", "--set", "run.size=48", "--steps", "4", "--set", "run.log_every=2",
            "--preserve-color", "--frames", "frames", "--frames-every", "4", "--multi-scale", "2"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "wrote china-flower.png (48x32 px) in" in captured.out
    assert "2 frames in frames" in captured.out
    assert "step 4/8 [24x16]" in captured.err and "gram-style" in captured.err
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["frame-00004.png", "frame-00008.png"]
    assert (tmp_path / "china-flower.png").is_file()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"content": "missing.jpg"}, "content image missing.jpg: no such file"),
        ({"style": "{text}"}, "not an image file"),
        ({"style": "{folder}"}, "is a folder"),
        ({"output": "out.bmpx"}, "unknown image format '.bmpx'"),
        ({"output": "{content}"}, "would overwrite the content image"),
        ({"extra": ["--size", "100000"]}, r"needs about .* GiB of \w+ memory"),
        ({"extra": ["--size", "0"]}, "--size 0: must be a positive number"),
        ({"extra": ["--set", "run.optimiser=adam"]}, "unknown key 'optimiser'. Did you mean 'optimizer'"),
        ({"extra": ["--init", "nowhere.png"]}, "start image .*nowhere.png: no such file"),
        ({"weights": "hub"}, "no vgg19 weights in the torch hub cache"),
    ],
)
def test_stylize_mistakes_are_clear_errors(
    change: dict[str, object], message: str, photos: tuple[Path, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    china, flower = photos
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    names = {"{text}": str(text), "{folder}": str(tmp_path), "{content}": str(china)}
    content = names.get(str(change.get("content")), str(change.get("content", china)))
    style = names.get(str(change.get("style")), str(change.get("style", flower)))
    output = names.get(str(change.get("output")), str(change.get("output", tmp_path / "out.png")))
    weights = str(change.get("weights", "random"))
    extra = change.get("extra", [])
    assert isinstance(extra, list)
    args = ["stylize", "--content", content, "--style", style, "-o", output, "--weights", weights, "--size", "32",
            "--steps", "1", "--quiet", *extra]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "out.png").exists()


def test_missing_weights_tell_how_to_get_them(photos: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    china, flower = photos
    assert main(["stylize", "--content", str(china), "--style", str(flower), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "gankit weights vgg19" in err
    assert 'weights = "random"' in err
    assert "Or work offline without them: gankit stylize --weights random" in err


@pytest.mark.parametrize("name", ["style-transfer", "style-transfer-fast"])
def test_shipped_style_recipes_are_valid(name: str) -> None:
    assert name in builtin_recipes()
    recipe = load_recipe(name)
    assert recipe.task == "style"
    assert recipe["encoder"].name == "vgg19"
    assert [spec.name for spec in recipe["losses"]][:2] == ["content", "gram-style"]


def test_the_gatys_recipe_keeps_the_paper_s_choices() -> None:
    recipe = load_recipe("style-transfer")
    assert recipe.run.optimizer == "lbfgs"
    assert recipe.run.init == "noise"
    assert (recipe.run.gpu_size, recipe.run.cpu_size, recipe.run.size) == (512, 256, None)
    content, style = recipe["losses"]
    assert content.params.layers == ("relu4_2",)
    assert style.params.layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert recipe["encoder"].params.weights == "hub"


def test_gankit_check_and_list_know_the_style_parts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "style-transfer-fast"]) == 0
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("vgg19", "vgg16", "gram-style", "total-variation"):
        assert name in out


def test_weights_list_shows_the_hub_cache(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "--list"]) == 0
    out = capsys.readouterr().out
    assert "hub/checkpoints" in out
    assert "vgg19: not found; get it with: gankit weights vgg19" in out
