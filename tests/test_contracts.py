"""The open contracts: old runs keep working, --steps means run.steps, resuming after a NaN stop, fresh logits."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from support.recipes import TINY_DIGITS_PARTS, TINY_RING_PARTS

from gankit.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from gankit.cli import main
from gankit.recipe import loads_recipe
from gankit.training import Trainer, load_generator, sample

OLD_RUN = Path(__file__).parent / "data" / "ring-run-0.1"

RING = """
[run]
steps = 12
batch_size = 16
log_every = 2
sample_every = 100
checkpoint_every = 4
keep_checkpoints = 5
[schedule.generator]
type = "cosine"
[schedule.discriminator]
type = "cosine"
min_factor = 0.1
""" + TINY_RING_PARTS


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    run = tmp_path / "old"
    shutil.copytree(OLD_RUN, run)
    return run


def _weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(path)
    return {k: v for k, v in ckpt.tensors.items() if k.startswith(("generator/", "discriminator/", "optim."))}


def test_a_run_written_by_gankit_0_1_resumes_bit_exactly(old_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """gankit 0.1 trained this run to step 6 (recipe with `name = "adam"` optimisers, r1, ema, cosine)."""
    old_step6 = _weights(old_run / "checkpoints" / "step-00000006.safetensors")
    # going back to 0.1's step 3 and training to 6 again gives 0.1's step 6, bit for bit
    assert main(["train", "--resume", str(old_run), "--from", "3", "-q"]) == 0
    assert load_checkpoint(latest_checkpoint(old_run)).state["step"] == 6
    new_step6 = _weights(latest_checkpoint(old_run))
    assert new_step6.keys() == old_step6.keys()
    for key, value in old_step6.items():
        assert torch.equal(value, new_step6[key]), key
    # and it goes on, and samples
    assert main(["train", "--resume", str(old_run), "--steps", "9", "-q"]) == 0
    assert load_checkpoint(latest_checkpoint(old_run)).state["step"] == 9
    recipe = (old_run / "recipe.toml").read_text()
    assert 'type = "adam@v1"' in recipe and 'type = "rmsprop@v1"' in recipe and "name =" not in recipe
    assert main(["sample", str(old_run), "-n", "8", "-o", str(old_run / "s.png")]) == 0
    capsys.readouterr()


def test_an_exported_generator_of_gankit_0_1_samples(old_run: Path) -> None:
    loaded = load_generator(old_run / "generator.safetensors")
    assert sample(loaded, 5).shape == (5, 2)


def test_steps_option_is_run_steps_schedules_included(tmp_path: Path) -> None:
    (tmp_path / "ring.toml").write_text(RING)
    assert main(["train", str(tmp_path / "ring.toml"), "--out", str(tmp_path / "a"), "--steps", "8", "-q"]) == 0
    assert main(["train", str(tmp_path / "ring.toml"), "--out", str(tmp_path / "b"), "--set", "run.steps=8",
                 "-q"]) == 0
    a, b = _weights(latest_checkpoint(tmp_path / "a")), _weights(latest_checkpoint(tmp_path / "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    lrs = [json.loads(line)["lr_d"] for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    # the cosine ran over 8 steps, not the recipe's 12: at the last step (7) it is near min_factor
    assert lrs[-1] == pytest.approx(2e-4 * (0.1 + 0.9 * 0.5 * (1 + math.cos(7 / 8 * math.pi))))
    assert "steps = 8" in (tmp_path / "a" / "recipe.toml").read_text()


def test_resume_with_more_steps_stretches_the_schedule_from_there(tmp_path: Path) -> None:
    (tmp_path / "ring.toml").write_text(RING)
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "ring.toml"), "--out", str(run), "--steps", "8", "-q"]) == 0
    assert main(["train", "--resume", str(run), "--steps", "16", "-q"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    lr = {r["step"]: r["lr_g"] for r in records}
    # from step 8 on the cosine is the 16-step one (as documented in docs/training.md)
    for step in (10, 16):
        assert lr[step] == pytest.approx(2e-4 * 0.5 * (1 + math.cos((step - 1) / 16 * math.pi)))
    assert "steps = 16" in (run / "recipe.toml").read_text()


JUMP = RING.split("[schedule.generator]")[0] + """
[loss]
type = "wgan"
[schedule.generator]
type = "step"
milestones = [6]
factor = 1e30
[schedule.discriminator]
type = "step"
milestones = [6]
factor = 1e30
""" + TINY_RING_PARTS


def test_after_a_nan_stop_resume_from_a_good_checkpoint_with_a_lower_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: the learning rate jumps x1e30 mid-run, checkpoints every step."""
    (tmp_path / "jump.toml").write_text(JUMP)
    run = tmp_path / "run"
    code = main(["train", str(tmp_path / "jump.toml"), "--out", str(run), "-q", "--set", "run.checkpoint_every=1",
                 "--set", "run.log_every=1"])
    message = capsys.readouterr().err
    assert code == 3
    assert "--from" in message and "optim.generator.lr" in message
    kept = list_checkpoints(run)
    assert kept and kept[-1][0] < 12
    for _, path in kept:  # every kept checkpoint has finite weights
        assert all(torch.isfinite(t).all() for k, t in load_checkpoint(path).tensors.items()
                   if k.startswith(("generator/", "discriminator/")))
    assert main(["train", "--resume", str(run), "--from", "6", "--set", "loss.type=\"hinge\"", "-q"]) == 1
    assert "keeps its parts" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--from", "6", "--set", "schedule.generator.factor=0.5",
                 "--set", "schedule.discriminator.factor=0.5", "--set", "optim.generator.lr=1e-4", "-q"]) == 0
    assert load_checkpoint(latest_checkpoint(run)).state["step"] == 12
    assert "lr = 0.0001" in (run / "recipe.toml").read_text()
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 12
    assert list(run.glob("metrics.jsonl.before-rewind-*")), "the old metrics are kept"


def test_resume_from_a_step_that_is_not_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ring.toml").write_text(RING)
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "ring.toml"), "--out", str(run), "--steps", "8", "-q"]) == 0
    assert main(["train", "--resume", str(run), "--from", "5", "-q"]) == 1
    assert "kept steps: 4, 8" in capsys.readouterr().err


class _Recorder:
    """A relativistic-style loss that records the real logits it is given in the generator phase."""

    needs_real_logits = True
    weight = 1.0

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(fake_logits - real_logits).mean()

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        assert real_logits is not None
        self.seen.append(real_logits.detach().clone())
        return torch.nn.functional.softplus(real_logits - fake_logits).mean()


def test_generator_phase_gets_fresh_real_logits(tmp_path: Path) -> None:
    trainer = Trainer(loads_recipe(RING), tmp_path / "run", quiet=True)
    recorder = _Recorder()
    trainer.game.loss = trainer.loss = recorder
    trainer.game.needs_real_logits = True
    trainer.train_step()
    real, _ = trainer.game.last_real  # type: ignore[misc]
    with torch.no_grad():
        expected = trainer.discriminator_module(real)
    # judged by the discriminator *after* its update in this step, on this step's real batch
    assert torch.equal(recorder.seen[-1], expected)
    assert not torch.equal(recorder.seen[-1], trainer.context.real_logits)  # the pre-update logits differ


def test_a_generator_samples_without_its_data(tmp_path: Path) -> None:
    """Checkpoints and exports record the sample shape and classes: sampling needs no data source."""
    from PIL import Image

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i in range(3):
        Image.new("RGB", (10, 10), (60 * i, 90, 200 - 50 * i)).save(pictures / f"p{i}.png")
    (tmp_path / "folder.toml").write_text("""
[run]
steps = 2
batch_size = 4
samples = 4
""" + TINY_DIGITS_PARTS.replace('type = "digits"', f'type = "image-folder"\npath = "{pictures}"'))
    assert main(["train", str(tmp_path / "folder.toml"), "--out", str(tmp_path / "run"), "-q"]) == 0
    state = load_checkpoint(latest_checkpoint(tmp_path / "run")).state
    assert (state["data_shape"], state["num_classes"]) == ([3, 8, 8], 0)
    shutil.rmtree(pictures)
    for source in (tmp_path / "run", tmp_path / "run" / "generator.safetensors"):
        assert sample(load_generator(source), 2).shape == (2, 3, 8, 8)
