"""The training command line end to end: train, resume, sample, report, Ctrl-C, mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from support.interrupt import interrupt_after_logging
from support.recipes import TINY_RING_PARTS

from gankit.checkpoint import latest_checkpoint, load_checkpoint
from gankit.cli import main

TINY = """# tiny ring GAN for tests
[run]
steps = 6
batch_size = 16
log_every = 2
sample_every = 3
samples = 32
checkpoint_every = 3
""" + TINY_RING_PARTS


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_train_resume_sample_report(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", str(tiny), "--out", str(run), "--quiet", "--set", "run.seed=7"]) == 0
    assert "seed = 7" in (run / "recipe.toml").read_text()
    assert load_checkpoint(latest_checkpoint(run)).state["step"] == 6
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert {"d_loss", "g_loss", "lr_g", "lr_d", "skips", "balance", "time"} <= records[0].keys()

    assert main(["train", "--resume", str(run), "--steps", "9", "--quiet"]) == 0
    assert load_checkpoint(latest_checkpoint(run)).state["step"] == 9

    grid = tmp_path / "grid.png"
    assert main(["sample", str(run), "-n", "16", "-o", str(grid), "--seed", "3"]) == 0
    assert Image.open(grid).size[0] > 0
    strip = tmp_path / "strip.png"
    assert main(["sample", str(run), "--interpolate", "-n", "20", "--steps", "5", "-o", str(strip)]) == 0
    assert strip.is_file()

    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "data:image/png;base64," in page and "step 6" in page and "[generator]" in page
    capsys.readouterr()


def test_progress_lines_when_not_a_terminal(tiny: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gankit", "train", str(tiny), "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "train 6/6" in out.stderr and " D " in out.stderr and " G " in out.stderr and "skips" in out.stderr
    assert "done: 6 steps" in out.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "no-such-recipe.toml"], "no such recipe file"),
        (["train", "dcgan-digitz"], "Did you mean 'dcgan-digits'"),
        (["train", "--resume", "nowhere"], "no such run folder"),
        (["train"], "name a recipe"),
        (["sample", "nowhere"], "no such run folder or checkpoint"),
        (["report", "nowhere"], "no such run folder"),
    ],
)
def test_user_mistakes_are_one_clear_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_training_into_an_existing_run_is_refused(tiny: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", str(tiny), "--out", str(run), "-q"]) == 0
    assert main(["train", str(tiny), "--out", str(run), "-q"]) == 1
    assert "--resume" in capsys.readouterr().err


def test_nan_exits_3(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", str(tiny), "--out", str(tmp_path / "run"), "-q", "--set", "optim.generator.lr=1e38",
                 "--set", "optim.discriminator.lr=1e38", "--set", "loss.type=\"wgan\"", "--set", "run.steps=30"])
    assert code == 3
    assert "NaN or infinite" in capsys.readouterr().err


def test_ctrl_c_writes_a_checkpoint_and_resumes(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = interrupt_after_logging(
        ["train", str(tiny), "--out", str(run), "--steps", "1000000", "--set", "run.log_every=1",
         "--set", "run.checkpoint_every=1000000"],
        run / "metrics.jsonl",
    )
    assert done.returncode == 130, done.stderr
    assert "resume with: gankit train --resume" in done.stdout
    step = load_checkpoint(latest_checkpoint(run)).state["step"]
    assert step >= 3
    assert main(["train", "--resume", str(run), "--steps", str(step + 2), "-q"]) == 0
    assert load_checkpoint(latest_checkpoint(run)).state["step"] == step + 2
