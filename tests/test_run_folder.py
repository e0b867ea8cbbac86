"""One run per folder: a new run never writes over a user's files, and one process trains into a folder at a time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.recipes import TINY_RING_PARTS

from gankit.checkpoint import latest_checkpoint, load_checkpoint

TINY = """# a tiny ring GAN
[run]
steps = 4
batch_size = 16
log_every = 2
sample_every = 2
checkpoint_every = 2
""" + TINY_RING_PARTS

SLOW = TINY.replace("steps = 4", "steps = 1000000").replace("checkpoint_every = 2", "checkpoint_every = 1000000")


def _train(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gankit", "train", *args, "--quiet"], capture_output=True,
                          text=True, cwd=cwd or tmp_path, timeout=120, check=False)


def _start_slow(tmp_path: Path, run: Path) -> subprocess.Popen[str]:
    recipe = tmp_path / "slow.toml"
    recipe.write_text(SLOW)
    process = subprocess.Popen([sys.executable, "-m", "gankit", "train", str(recipe), "--out", str(run), "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline:
        lock = run / ".gankit-lock"
        if lock.is_file() and lock.read_text() and (run / "recipe.toml").is_file():
            return process
        if process.poll() is not None:
            raise AssertionError(f"the training process ended early: {process.communicate()}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the training process never locked its folder")


def test_out_refuses_a_folder_with_the_users_files(tmp_path: Path) -> None:
    (tmp_path / "my-recipe.toml").write_text("# my comments\n" + TINY)
    (tmp_path / "generator.safetensors").write_bytes(b"my own weights")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    result = _train(tmp_path, "my-recipe.toml", "--out", ".", "--steps", "2")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "not empty" in result.stderr and "generator.safetensors" in result.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # not even a lock file is left


def test_out_into_an_empty_or_new_folder(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "empty").mkdir()
    assert _train(tmp_path, "tiny.toml", "--out", "empty").returncode == 0
    assert _train(tmp_path, "tiny.toml", "--out", "new/deeper").returncode == 0
    for run in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        assert load_checkpoint(latest_checkpoint(run)).state["step"] == 4
        assert (run / ".gankit-run").is_file()


def test_a_finished_run_is_never_trained_over(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text(TINY)
    assert _train(tmp_path, "tiny.toml", "--out", "run").returncode == 0
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    again = _train(tmp_path, "tiny.toml", "--out", "run")
    assert again.returncode == 1 and "--resume" in again.stderr
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == metrics


def test_a_second_process_cannot_train_into_a_busy_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = _start_slow(tmp_path, run)
    try:
        (tmp_path / "other.toml").write_text(TINY)
        second = _train(tmp_path, "other.toml", "--out", str(run))
        resumed = _train(tmp_path, "--resume", str(run))
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    for result in (second, resumed):
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert f"pid {first.pid}" in result.stderr and "in use" in result.stderr
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # one writer: no step logged twice


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 is POSIX")
def test_a_killed_process_leaves_no_lock_that_blocks(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = _start_slow(tmp_path, run)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    (run / "checkpoints").mkdir(exist_ok=True)
    stale = run / "checkpoints" / ".step-00000002.safetensors.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    # the killed run had no checkpoint yet: a new run takes the marked folder over, starting clean
    (tmp_path / "tiny.toml").write_text(TINY)
    result = _train(tmp_path, "tiny.toml", "--out", str(run))
    assert result.returncode == 0, result.stderr
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]
    assert not stale.exists()


def test_resume_cleans_temporaries_and_takes_a_stale_lock(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text(TINY)
    assert _train(tmp_path, "tiny.toml", "--out", "run").returncode == 0
    run = tmp_path / "run"
    (run / ".gankit-lock").write_text(json.dumps({"pid": 999999, "host": "gone", "since": "long ago"}))
    stale = run / ".metrics.jsonl.x1.tmp"
    stale.write_bytes(b"x")
    result = _train(tmp_path, "--resume", "run", "--steps", "6")
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(latest_checkpoint(run)).state["step"] == 6
    assert not stale.exists()


def test_out_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "taken").write_text("mine")
    result = _train(tmp_path, "tiny.toml", "--out", "taken")
    assert result.returncode == 1 and "is a file" in result.stderr
    assert (tmp_path / "taken").read_text() == "mine"


def test_out_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "taken").write_text("mine")
    result = _train(tmp_path, "tiny.toml", "--out", "taken/run")
    assert result.returncode == 1 and "Traceback" not in result.stderr and "taken/run" in result.stderr


def test_a_run_that_cannot_be_built_leaves_no_folder(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(TINY.replace('type = "ring"', 'type = "image-folder"\npath = "nowhere"'))
    result = _train(tmp_path, "bad.toml", "--out", "run")
    assert result.returncode == 1 and "nowhere" in result.stderr
    assert not (tmp_path / "run").exists()
