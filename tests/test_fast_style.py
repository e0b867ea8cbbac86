"""Feed-forward stylizers: training a fast-style recipe, resuming it, stylizing photos and frames in one pass."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from support.interrupt import interrupt_after_logging

from gankit.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from gankit.cli import main
from gankit.recipe import load_recipe
from gankit.style.fast import load_stylizer, train_fast_style
from gankit.style.sample_photos import write_photo_folder, write_sample_photos

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: A network and loss encoder small enough for tests: a step takes milliseconds.
TINY = [
    "data.resolution=32", "style.size=48", "run.batch_size=2", "run.log_every=1", "run.sample_every=3",
    "run.samples=2", "run.checkpoint_every=2", "network.channels=4", "network.residual_blocks=1",
    "encoder.levels=3", "encoder.channels=16", "losses.1.layers=[\"relu1_2\", \"relu2_2\", \"relu3_2\"]",
]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fast-style")
    write_photo_folder(folder / "photos", count=6, size=40, sources=("china.jpg", "flower.jpg"))
    china, flower = write_sample_photos(folder)
    return {"photos": folder / "photos", "china": china, "flower": flower}


def _settings(photos: dict[str, Path], *extra: str) -> list[str]:
    return [f"data.path={photos['photos']}", f"style.image={photos['flower']}", *TINY, *extra]


def _sets(items: list[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        out += ["--set", item]
    return out


@pytest.fixture(scope="module")
def trained(photos: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "flower"
    assert main(["train", "fast-style", *_sets(_settings(photos)), "--out", str(run), "--steps", "24", "-q"]) == 0
    return run


def test_training_writes_a_run_folder_and_lowers_the_loss(trained: Path) -> None:
    names = {p.name for p in trained.iterdir()}
    assert {"recipe.toml", "metrics.jsonl", "samples", "checkpoints", "stylizer.safetensors", "style.png"} <= names
    assert [step for step, _ in list_checkpoints(trained)] == [20, 22, 24]
    records = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 25))
    assert {"content", "gram-style", "total-variation", "total"} <= set(records[0])
    first, last = records[0]["total"], sum(r["total"] for r in records[-4:]) / 4
    assert last < 0.8 * first, (first, last)
    assert (trained / "samples" / "step-00000000.png").is_file()
    assert (trained / "samples" / "step-00000024.png").is_file()
    with Image.open(trained / "style.png") as style:
        assert max(style.size) == 48


def test_resume_continues_exactly_where_the_run_stopped(photos: dict[str, Path], tmp_path: Path) -> None:
    straight = train_fast_style(load_recipe("fast-style", _settings(photos)), tmp_path / "straight", steps=4,
                                quiet=True)
    half = train_fast_style(load_recipe("fast-style", _settings(photos)), tmp_path / "resumed", steps=2, quiet=True)
    assert half.step == 2
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--steps", "4", "-q"]) == 0
    a = load_checkpoint(straight.checkpoint).group("network")  # type: ignore[arg-type]
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "step-00000004.safetensors").group("network")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_a_second_run_into_a_finished_folder_is_refused(trained: Path, photos: dict[str, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "fast-style", *_sets(_settings(photos)), "--out", str(trained), "-q"]) == 1
    assert "already holds a run; resume it with: gankit train --resume" in capsys.readouterr().err


def test_stylize_a_photo_in_one_pass(trained: Path, photos: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "china-styled.png"
    assert main(["stylize", "--model", str(trained), "--content", str(photos["china"]), "-o", str(out),
                 "--size", "64"]) == 0
    assert re.search(r"wrote .*china-styled.png \(64x43 px\) in \d+ ms on cpu", capsys.readouterr().out)
    with Image.open(out) as image:
        assert image.size == (64, 43)
    stylizer = load_stylizer(trained)
    china = Image.open(photos["china"]).convert("RGB").resize((64, 43))
    result = stylizer(china)
    assert result.shape == (1, 3, 43, 64) and float(result.min()) >= 0 and float(result.max()) <= 1
    photo = torch.from_numpy(__import__("numpy").asarray(china).copy()).permute(2, 0, 1).float() / 255
    assert float((result[0] - photo).abs().mean()) > 0.02, "the stylizer should change the photo"
    same = load_stylizer(trained / "stylizer.safetensors")(china)
    assert torch.equal(result, same)


def test_stylize_frames_with_a_model(trained: Path, photos: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    china = Image.open(photos["china"]).convert("RGB")
    for i in range(4):
        china.crop((100 + 4 * i, 80, 100 + 4 * i + 48, 112)).save(frames / f"{i:03d}.png")
    out = tmp_path / "styled"
    assert main(["stylize", "--model", str(trained), "--frames-in", str(frames), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote 4 frames to {out}/" in printed
    assert re.search(r"flicker: stylized frames change by 0\.\d+ per pixel .* the input by 0\.\d+ \(ratio \d", printed)
    assert sorted(p.name for p in out.iterdir()) == ["000.png", "001.png", "002.png", "003.png"]
    with Image.open(out / "002.png") as image:
        assert image.size == (48, 32)


def test_no_style_image_is_a_clear_error(photos: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "fast-style", "--set", f"data.path={photos['photos']}", "--out", str(tmp_path / "run"), "-q"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "no style image: name one with --set style.image=painting.jpg" in err
    assert not (tmp_path / "run").exists()
    assert main([*args, "--set", f"style.image={tmp_path / 'missing.jpg'}"]) == 1
    assert re.search(r"style image \(style.image\) .*missing.jpg: no such file", capsys.readouterr().err)


def test_model_mistakes_are_clear_errors(trained: Path, photos: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    china = str(photos["china"])
    cases = [
        (["--model", str(trained), "--content", china, "--style", china], "leave out --style"),
        (["--model", str(tmp_path), "--content", china], "not a fast-style run folder"),
        (["--model", str(tmp_path / "nowhere"), "--content", china], "no such run folder or stylizer file"),
        (["--model", str(trained)], "name the photo with --content IMAGE"),
        (["--content", china], "name the style image with --style IMAGE"),
    ]
    for args, message in cases:
        assert main(["stylize", *args, "-o", str(tmp_path / "x.png")]) == 1
        err = capsys.readouterr().err
        assert message in err, (args, err)
        assert "Traceback" not in err


def test_a_gan_run_is_not_a_stylizer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.checkpoint import Checkpoint, save_checkpoint

    ckpt = Checkpoint(state={"recipe": "", "step": 1, "exported": True})  # what a GAN export holds
    save_checkpoint(tmp_path / "generator.safetensors", ckpt)
    assert main(["stylize", "--model", str(tmp_path / "generator.safetensors"), "--content", "x.png"]) == 1
    assert "is not a fast-style stylizer" in capsys.readouterr().err


def test_the_temporal_loss_compares_the_overlap_of_shifted_crops(photos: dict[str, Path], tmp_path: Path) -> None:
    from gankit.style.fast import FastStyleTrainer

    recipe = load_recipe("fast-style", _settings(photos, "run.temporal_weight=10", "run.temporal_shift=5",
                                                 "run.temporal_noise=0"))
    trainer = FastStyleTrainer(recipe, tmp_path / "unused", quiet=True)
    # A network that moves with the image (a 1x1 identity convolution) satisfies the temporal loss exactly.
    identity = torch.nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        identity.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        identity.bias.zero_()
    trainer.network = identity
    trainer.optimizer = torch.optim.SGD(identity.parameters(), lr=0.0)
    for _ in range(3):
        assert float(trainer.train_step()["temporal"]) == 0.0
    # Trained for real, the term is logged with the other losses.
    result = train_fast_style(recipe, tmp_path / "run", steps=3, quiet=True)
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(r["temporal"] > 0 for r in records)


def test_a_missing_photo_folder_leaves_no_run_folder(photos: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "fast-style", *_sets(_settings(photos, f"data.path={tmp_path / 'nowhere'}")),
            "--out", str(tmp_path / "run"), "-q"]
    assert main(args) == 1
    assert "nowhere' does not exist. Point it at a folder of images, e.g. --set data.path=" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_gan_commands_say_a_stylizer_run_is_not_a_gan(trained: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", str(trained), "-o", str(tmp_path / "grid.png")]) == 1
    err = capsys.readouterr().err
    assert "a fast-style run, not a GAN: it has no generator to sample" in err and "Traceback" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_stops_after_the_step_with_a_checkpoint_and_resumes(photos: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    settings = _settings(photos, "run.checkpoint_every=1000000", "run.sample_every=1000000")
    done = interrupt_after_logging(
        ["train", "fast-style", *_sets(settings), "--out", str(run), "--steps", "1000000"], run / "metrics.jsonl"
    )
    assert done.returncode == 130, done.stderr
    assert "resume with: gankit train --resume" in done.stdout + done.stderr
    step = load_checkpoint(latest_checkpoint(run)).state["step"]
    assert step >= 3
    assert main(["train", "--resume", str(run), "--steps", str(step + 2), "-q"]) == 0
    assert load_checkpoint(latest_checkpoint(run)).state["step"] == step + 2
