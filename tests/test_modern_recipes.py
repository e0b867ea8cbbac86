"""The StyleGAN2 and R3GAN recipes: listed with a description, and each trains through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from gankit.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECIPES = ("stylegan2-digits", "stylegan2-folder", "r3gan-digits", "r3gan-folder", "cstylegan2-folder",
           "cr3gan-folder")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i in range(6):
        Image.new("RGB", (40, 30), (30 * i, 200 - 25 * i, 90 + 10 * i)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Photos in two class sub-folders, as the conditional folder recipes expect."""
    folder = tmp_path_factory.mktemp("classes")
    for name, colour in (("dark", (20, 30, 40)), ("light", (230, 220, 210))):
        (folder / name).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 30), tuple(c - 5 * i for c in colour)).save(folder / name / f"p{i}.png")
    return folder


def test_recipes_are_listed_with_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipes"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    for name in RECIPES:
        assert name in lines
        assert len(lines[name].split(None, 1)[1]) > 30, lines[name]


@pytest.mark.parametrize("name", RECIPES)
def test_each_recipe_trains_a_few_steps_through_the_cli(name: str, tmp_path: Path, photos: Path,
                                                        classes: Path) -> None:
    run = tmp_path / "run"
    args = ["train", name, "--out", str(run), "--steps", "2", "--quiet", "--set", "run.batch_size=4",
            "--set", "run.samples=4", "--set", "run.threads=1"]
    if "folder" in name:
        folder = classes if name.startswith("c") else photos
        args += ["--set", f"data.path={folder}", "--set", "data.resolution=16"]
    cap = "channel_max" if "stylegan2" in name else "max_width"
    args += ["--set", f"generator.{cap}=32", "--set", f"discriminator.{cap}=32"]
    assert main(args) == 0
    assert (run / "generator.safetensors").is_file()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 2
    if "folder" in name:
        assert "ada_p" in records[-1]
    truncation = ["--truncation", "0.7"] if "stylegan2" in name else []
    if name.startswith("c"):  # class-conditional: ask for a class by its folder's name
        assert main(["sample", str(run), "-n", "4", "--class", "light", *truncation,
                     "-o", str(tmp_path / "light.png")]) == 0
    elif truncation:
        assert main(["sample", str(run), "-n", "4", *truncation, "-o", str(tmp_path / "s.png")]) == 0
