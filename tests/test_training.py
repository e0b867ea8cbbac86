"""The trainer: two-phase invariants, balance decisions, determinism, resume, checkpoints, NaN handling."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from support.recipes import TINY_DIGITS_PARTS
from torch import nn

import gankit
from gankit.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from gankit.errors import GankitError, TrainingError
from gankit.plugins import build_registry, register_plugin
from gankit.recipe import loads_recipe
from gankit.registry import Params, Provider
from gankit.training import Trainer, resume, train

RING = """
[run]
seed = 3
steps = 8
batch_size = 32
log_every = 2
sample_every = 4
samples = 64
checkpoint_every = 4
[data]
type = "ring"
[generator]
type = "mlp"
latent_dim = 4
width = 16
depth = 2
[discriminator]
type = "mlp"
width = 16
depth = 2
"""

DIGITS = """
[run]
seed = 1
steps = 6
batch_size = 8
log_every = 2
sample_every = 3
samples = 4
checkpoint_every = 3
""" + TINY_DIGITS_PARTS + """spectral_norm = true
[[tricks]]
type = "ema"
decay = 0.9
"""


def recipe(text: str, *overrides: str, registry: Any = None) -> gankit.Recipe:
    return loads_recipe(text, list(overrides), registry=registry)


def state_of(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def differs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- two phases


def test_generator_phase_leaves_discriminator_untouched(tmp_path: Path) -> None:
    trainer = Trainer(recipe(DIGITS, "data.resolution=16"), tmp_path / "run", quiet=True)
    trainer.game.discriminator_phase()
    before_d = state_of(trainer.discriminator_module)
    grads_before = [None if p.grad is None else p.grad.clone() for p in trainer.discriminator_module.parameters()]
    before_g = state_of(trainer.generator_module)
    assert any("running_mean" in k for k in before_d), "the test needs BatchNorm in the discriminator"
    assert any("_u" in k for k in before_d), "the test needs spectral norm in the discriminator"
    trainer.game.generator_phase()
    assert_same(before_d, state_of(trainer.discriminator_module))
    for p, g in zip(trainer.discriminator_module.parameters(), grads_before, strict=True):
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)
        assert p.requires_grad, "parameters must be unfrozen after the generator phase"
    assert differs(before_g, state_of(trainer.generator_module)), "the generator phase must train the generator"


def test_discriminator_phase_trains_only_the_discriminator(tmp_path: Path) -> None:
    trainer = Trainer(recipe(RING), tmp_path / "run", quiet=True)
    before_d = state_of(trainer.discriminator_module)
    before_g = dict(trainer.generator_module.named_parameters())
    before_g = {k: v.detach().clone() for k, v in before_g.items()}
    trainer.game.discriminator_phase()
    assert differs(before_d, state_of(trainer.discriminator_module))
    for name, value in trainer.generator_module.named_parameters():
        assert torch.equal(value, before_g[name]), name
        assert value.grad is None


class _SignDiscriminator(nn.Module):
    """Logit +10 for the real ring (|x| ≈ 1), -10 for anything at the origin."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 20 * x.norm(dim=1) - 10


def test_labels_real_one_fake_zero(tmp_path: Path) -> None:
    trainer = Trainer(recipe(RING, 'loss.type="bce"'), tmp_path / "run", quiet=True)
    judge = _SignDiscriminator()
    real = trainer.game.batches.real()[0]
    fake = torch.zeros_like(real)
    loss = trainer.loss
    assert loss.discriminator_loss(judge(real), judge(fake)).item() < 1e-3, "real must be labelled 1 and fake 0"
    assert loss.discriminator_loss(judge(fake), judge(real)).item() > 10, "swapped labels must cost a lot"
    # the generator aims for 1: minimax log(1 - D) is ≈ 0 while D says 0, very negative once D says 1
    assert loss.generator_loss(judge(fake)).item() > -1e-3
    assert loss.generator_loss(judge(real)).item() < -5
    ns = Trainer(recipe(RING), tmp_path / "run2", quiet=True)
    assert ns.loss.generator_loss(_SignDiscriminator()(fake)).item() > 9


# ---------------------------------------------------------------- balance


def test_discriminator_skip_skips_and_logs(tmp_path: Path) -> None:
    text = RING + '\n[balance]\ntype = "discriminator-skip"\nthreshold = 100.0\nmax_consecutive = 3\n'
    trainer = Trainer(recipe(text), tmp_path / "run", quiet=True)
    result = trainer.fit()
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    skips = [r for r in records if r.get("event") == "skip"]
    # step 1 trains (no loss seen yet), then 3 skips, 1 forced train, 3 skips: 6 of 8 steps skipped
    assert len(skips) == 6 == trainer.counters.skips == trainer.balance.skips
    assert all(r["reason"].startswith("skip: discriminator loss") and "< 100" in r["reason"] for r in skips)
    logged = [r for r in records if "d_loss" in r]
    assert logged[-1]["skips"] == 6


def test_skipped_steps_leave_discriminator_unchanged(tmp_path: Path) -> None:
    text = RING + '\n[balance]\ntype = "discriminator-skip"\nthreshold = 100.0\n'
    trainer = Trainer(recipe(text), tmp_path / "run", quiet=True)
    trainer.train_step()
    before = state_of(trainer.discriminator_module)
    info = trainer.train_step()
    assert info["decision"].d_steps == 0
    assert_same(before, state_of(trainer.discriminator_module))


def test_n_critic_runs_k_discriminator_steps(tmp_path: Path) -> None:
    text = RING + '\n[balance]\ntype = "n-critic"\nn = 3\n[[regularizers]]\ntype = "gradient-penalty"\n'
    trainer = Trainer(recipe(text, 'loss.type="wgan"'), tmp_path / "run", quiet=True)
    trainer.train_step()
    trainer.train_step()
    assert trainer.game.d_step_count == 6


# ---------------------------------------------------------------- determinism and resume


def test_same_seed_same_weights_other_seed_other_weights(tmp_path: Path) -> None:
    a = Trainer(recipe(DIGITS), tmp_path / "a", quiet=True)
    a.fit()
    b = Trainer(recipe(DIGITS), tmp_path / "b", quiet=True)
    b.fit()
    c = Trainer(recipe(DIGITS, "run.seed=2"), tmp_path / "c", quiet=True)
    c.fit()
    assert_same(state_of(a.generator_module), state_of(b.generator_module))
    assert_same(state_of(a.discriminator_module), state_of(b.discriminator_module))
    assert differs(state_of(a.generator_module), state_of(c.generator_module))


@pytest.mark.parametrize(
    "text,extra",
    [
        (DIGITS, ()),
        (RING, ('balance.type="discriminator-skip"', "balance.threshold=1.3")),
        (RING + '\n[[regularizers]]\ntype = "r1"\nevery = 2\n[[tricks]]\ntype = "ema"\n', ()),
    ],
    ids=["dcgan-ema-spectral", "mlp-skip", "mlp-r1-ema"],
)
def test_resume_is_bit_identical(tmp_path: Path, text: str, extra: tuple[str, ...]) -> None:
    whole = train(recipe(text, *extra, "run.steps=6"), tmp_path / "whole", quiet=True)
    first = train(recipe(text, *extra, "run.steps=6"), tmp_path / "split", steps=3, quiet=True)
    assert first.step == 3
    second = resume(tmp_path / "split", steps=6, quiet=True)
    assert second.step == 6
    a = load_checkpoint(latest_checkpoint(whole.run_dir))
    b = load_checkpoint(latest_checkpoint(second.run_dir))
    assert a.tensors.keys() == b.tensors.keys()
    for key in a.tensors:
        assert torch.equal(a.tensors[key], b.tensors[key]), key
    assert a.state["step"] == b.state["step"] == 6
    assert a.state["balance"] == b.state["balance"]


def test_resume_with_more_steps_trains_the_difference(tmp_path: Path) -> None:
    train(recipe(RING), tmp_path / "run", quiet=True)
    result = resume(tmp_path / "run", steps=12, quiet=True)
    assert result.step == 12
    again = resume(tmp_path / "run", steps=12, quiet=True)
    assert again.step == 12


# ---------------------------------------------------------------- checkpoints


def test_checkpoints_rotate_and_latest_points_at_newest(tmp_path: Path) -> None:
    result = train(recipe(RING, "run.steps=10", "run.checkpoint_every=2", "run.keep_checkpoints=2"),
                   tmp_path / "run", quiet=True)
    steps = [s for s, _ in list_checkpoints(result.run_dir)]
    assert steps == [8, 10]
    assert latest_checkpoint(result.run_dir).name == "step-00000010.safetensors"
    assert (result.run_dir / "generator.safetensors").is_file()
    assert sorted(p.name for p in (result.run_dir / "samples").glob("*.png"))[0] == "step-00000000.png"
    assert "[generator]" in (result.run_dir / "recipe.toml").read_text()


def test_interrupted_checkpoint_write_keeps_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer(recipe(RING), tmp_path / "run", quiet=True)
    trainer.fit(4)
    good = latest_checkpoint(trainer.run_dir)
    good_bytes = good.read_bytes()
    trainer.train_step()

    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        trainer.checkpoint()
    monkeypatch.undo()
    assert latest_checkpoint(trainer.run_dir) == good
    assert good.read_bytes() == good_bytes
    assert not list((trainer.run_dir / "checkpoints").glob("*.tmp")), "temporary files must be cleaned up"
    assert load_checkpoint(good).state["step"] == 4
    resumed = resume(trainer.run_dir, steps=6, quiet=True)
    assert resumed.step == 6


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(GankitError, match=r"bad\.safetensors"):
        load_checkpoint(bad)
    with pytest.raises(GankitError, match="no checkpoint found"):
        latest_checkpoint(tmp_path)


def test_loading_uses_ema_weights_and_samples(tmp_path: Path) -> None:
    result = train(recipe(DIGITS), tmp_path / "run", quiet=True)
    loaded = gankit.load_generator(result.run_dir)
    raw = gankit.load_generator(result.run_dir, ema=False)
    assert loaded.step == 6
    assert differs(state_of(loaded.generator), state_of(raw.generator))
    exported = gankit.load_generator(result.run_dir / "generator.safetensors")
    assert_same(state_of(exported.generator), state_of(loaded.generator))
    images = gankit.sample(loaded, 5, seed=1)
    assert images.shape == (5, 1, 8, 8)
    assert torch.equal(images, gankit.sample(loaded, 5, seed=1))
    strip = gankit.interpolate(loaded, 4, rows=2)
    assert strip.shape == (8, 1, 8, 8)


# ---------------------------------------------------------------- non-finite losses


class _NanParams(Params):
    after: int = 2


class _NanLoss:
    """Non-saturating loss that turns NaN after a number of generator calls."""

    weight = 1.0

    def __init__(self, params: _NanParams, **context: Any) -> None:
        self.calls = 0
        self.after = params.after

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(-real).mean() + torch.nn.functional.softplus(fake).mean()

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        loss = torch.nn.functional.softplus(-fake).mean()
        return loss * math.nan if self.calls > self.after else loss


class _NanPlugin:
    @gankit.hookimpl
    def gankit_register_parts(self, register: Any) -> None:
        register("loss", "nan.loss", _NanLoss, _NanParams, role="adversarial")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    registry, _ = build_registry(third_party=False)
    register_plugin(registry, _NanPlugin(), Provider("nan-test", "1", "nan"))
    text = RING + '\n[loss]\ntype = "nan.loss"\nafter = 5\n'
    trainer = Trainer(recipe(text, "run.checkpoint_every=4", "run.log_every=1", registry=registry),
                      tmp_path / "run", quiet=True)
    with pytest.raises(TrainingError, match="NaN or infinite") as info:
        trainer.fit()
    assert info.value.exit_code == 3
    assert [s for s, _ in list_checkpoints(trainer.run_dir)] == [4]
    good = load_checkpoint(latest_checkpoint(trainer.run_dir))
    assert all(torch.isfinite(t.float()).all() for k, t in good.tensors.items() if k.startswith("generator/"))


def test_fused_adam_option_trains_deterministically(tmp_path: Path) -> None:
    overrides = ("optim.generator.fused=true", "optim.discriminator.fused=true")
    a = Trainer(recipe(RING, *overrides), tmp_path / "a", quiet=True)
    a.fit()
    b = Trainer(recipe(RING, *overrides), tmp_path / "b", quiet=True)
    b.fit()
    assert a.optimizers["generator"].defaults["fused"] is True
    assert_same(state_of(a.generator_module), state_of(b.generator_module))


@pytest.mark.parametrize("mode", ["true", '"reduce-overhead"'])
def test_compiled_networks_train_with_a_gradient_penalty(tmp_path: Path, mode: str) -> None:
    """``run.compile`` with r1: the penalty differentiates twice, which compiled graphs cannot, so it runs eagerly."""
    text = RING + "[[regularizers]]\ntype = \"r1\"\nweight = 1.0\n"
    compiled = Trainer(recipe(text, f"run.compile={mode}", "run.steps=3"), tmp_path / "c", quiet=True)
    before = state_of(compiled.discriminator_module)
    compiled.fit()
    assert compiled.counters.step == 3
    assert differs(before, state_of(compiled.discriminator_module))
    assert all(torch.isfinite(v).all() for v in state_of(compiled.discriminator_module).values())


def test_an_unknown_compile_mode_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match=r"run\.compile.*'reduce-overhead'.*got 'fast'"):
        recipe(RING, "run.compile=fast")
