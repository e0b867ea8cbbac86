"""ADA: the differentiable augmentation pipeline and the adaptive probability p."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from gankit.errors import GankitError
from gankit.nn.augment import Augment, _eye
from gankit.plugins import get_registry
from gankit.testing import tiny_recipe, train_for
from gankit.training.context import TrainingContext

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- the pipeline


def test_p_zero_leaves_images_untouched() -> None:
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    assert Augment(["blit", "geom", "color", "noise", "cutout"])(x, 0.0) is x


@pytest.mark.parametrize("shape", [(6, 1, 16, 16), (6, 3, 32, 32), (6, 3, 12, 20)])
def test_every_group_keeps_the_shape_and_passes_gradients(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    x = (torch.rand(shape) * 2 - 1).requires_grad_(True)
    y = Augment(["blit", "geom", "color", "noise", "cutout"])(x, 0.7)
    assert y.shape == x.shape
    assert not torch.allclose(y, x)
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_the_geometric_resampling_is_exact_for_the_identity() -> None:
    x = torch.rand(3, 3, 24, 24) * 2 - 1
    y = Augment(["geom"])._resample(x, _eye(3, 3, x.device))
    assert (y - x).abs().max() < 1e-4


def test_a_horizontal_flip_is_a_flip() -> None:
    torch.manual_seed(0)
    # a smooth image: the symlet filter is nearly, not exactly, symmetric (as in the reference implementation)
    x = torch.nn.functional.interpolate(torch.rand(1, 1, 4, 4), size=(16, 16), mode="bilinear")
    flip = torch.diag(torch.tensor([-1.0, 1.0, 1.0])).unsqueeze(0)
    y = Augment(["blit"])._resample(x, flip)
    assert (y - x.flip(3)).abs().max() < 0.02


def test_each_image_is_augmented_with_probability_p() -> None:
    torch.manual_seed(0)
    x = torch.zeros(4000, 1, 8, 8)
    for p in (0.1, 0.5):
        changed = (Augment(["color"])(x, p) != 0).flatten(1).any(dim=1).float().mean().item()
        # brightness, contrast (no effect on zeros) and luma flip (no effect on 0 either): brightness alone moves 0
        assert changed == pytest.approx(p, abs=0.03)


def test_colour_needs_grey_or_rgb() -> None:
    with pytest.raises(ValueError, match="1 or 3 channels"):
        Augment(["color"])(torch.rand(2, 4, 8, 8), 0.5)


# --------------------------------------------------------------------------- the trick


def context(world_size: int = 1, batch: int = 64, shape: tuple[int, ...] = (3, 16, 16)) -> TrainingContext:
    return TrainingContext(
        generator=torch.nn.Identity(), discriminator=torch.nn.Identity(), optimizers={},
        data=SimpleNamespace(shape=shape), run=SimpleNamespace(batch_size=batch), device=torch.device("cpu"),
        total_steps=1000, world_size=world_size,
    )


def ada(**params: Any) -> Any:
    return get_registry().get("trick", "ada").build(params)


def run_steps(trick: Any, ctx: TrainingContext, signs: list[float], steps: int) -> list[float]:
    """``steps`` steps whose real logits have the given signs; p after each."""
    trace = []
    for _ in range(steps):
        ctx.real_logits = torch.tensor(signs)
        trick.after_discriminator_step(ctx)
        ctx.step += 1
        trace.append(trick.p)
    return trace


def test_p_rises_while_the_discriminator_is_sure_of_every_real_image() -> None:
    trick, ctx = ada(), context()
    trick.setup(ctx)
    trace = run_steps(trick, ctx, [3.0] * 64, 40)
    assert trace[2] == 0.0 and trace[3] > 0.0  # adjusted every 4 steps
    assert trace[-1] == pytest.approx(10 * 64 * 4 / 500_000)  # 10 adjustments of batch * interval / speed
    assert trick.rt == 1.0


def test_p_falls_when_the_discriminator_is_unsure_and_stays_in_0_1() -> None:
    trick, ctx = ada(p=0.5, speed_images=1000), context()
    trick.setup(ctx)
    trace = run_steps(trick, ctx, [1.0, -1.0] * 32, 40)  # r_t = 0 < 0.6
    assert trace[3] == pytest.approx(0.5 - 64 * 4 / 1000)
    assert trace[-1] == 0.0 and min(trace) == 0.0
    trace = run_steps(trick, ctx, [1.0] * 64, 100)
    assert max(trace) == 1.0


def test_r_t_averages_the_interval_and_every_process() -> None:
    trick, ctx = ada(target=0.6, interval=2), context(world_size=2)
    seen: list[torch.Tensor] = []

    def all_reduce(tensor: torch.Tensor, op: str) -> torch.Tensor:
        seen.append(tensor.clone())
        assert op == "sum"
        return tensor * 2  # the other process had the same numbers

    ctx._all_reduce = all_reduce
    trick.setup(ctx)
    run_steps(trick, ctx, [1.0] * 3 + [-1.0], 1)
    run_steps(trick, ctx, [1.0] * 4, 1)
    assert len(seen) == 1 and seen[0].tolist() == [6.0, 8.0]
    assert trick.rt == 0.75
    assert trick.p == pytest.approx(64 * 2 * 2 / 500_000)  # batch x processes x interval


def test_fixed_p_does_not_adapt() -> None:
    trick, ctx = ada(p=0.3, adaptive=False), context()
    trick.setup(ctx)
    assert run_steps(trick, ctx, [5.0] * 64, 20)[-1] == 0.3


def test_state_round_trips_in_the_middle_of_an_interval() -> None:
    trick, ctx = ada(), context()
    trick.setup(ctx)
    run_steps(trick, ctx, [1.0] * 64, 6)
    state = trick.state_dict()
    other = ada()
    other.setup(context())
    other.load_state_dict(state)
    assert other.p == trick.p and other.rt == trick.rt
    ctx2 = context()
    ctx2.step = ctx.step
    assert run_steps(other, ctx2, [1.0, -1.0] * 32, 2) == run_steps(trick, ctx, [1.0, -1.0] * 32, 2)


def test_the_trick_refuses_what_it_cannot_augment() -> None:
    with pytest.raises(GankitError, match="augments images"):
        ada().setup(context(shape=(2,)))
    with pytest.raises(GankitError, match="4 channels"):
        ada().setup(context(shape=(4, 8, 8)))
    ada(augment=["blit", "geom"]).setup(context(shape=(4, 8, 8)))
    with pytest.raises(GankitError, match="multi-scale"):
        ada(p=0.5).discriminator_input(context(), [torch.zeros(1, 3, 8, 8)])


def test_every_discriminator_input_is_augmented_and_p_is_logged(tmp_path: Path) -> None:
    calls: list[str] = []

    recipe = tiny_recipe("images", loss="rpgan", tricks=[{"type": "ada", "p": 0.5, "interval": 1}],
                         run={"log_every": 1})
    from gankit.parts import tricks_ada

    original = tricks_ada.AdaTrick.discriminator_input

    def spy(self: Any, ctx: TrainingContext, x: Any) -> Any:
        calls.append(ctx.phase)
        return original(self, ctx, x)

    tricks_ada.AdaTrick.discriminator_input = spy  # type: ignore[method-assign]
    try:
        result = train_for(recipe, steps=2, out=tmp_path / "run")
    finally:
        tricks_ada.AdaTrick.discriminator_input = original  # type: ignore[method-assign]
    # per step: real and fake in the discriminator phase, fake and (rpgan) real in the generator phase
    assert calls.count("discriminator") == 4 and calls.count("generator") == 4
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert next(r["ada_p"] for r in records if "ada_p" in r) != 0.5
    assert all(-1.0 <= r["ada_rt"] <= 1.0 for r in records if "ada_rt" in r)
