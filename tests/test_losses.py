"""Adversarial losses and gradient regularisers, built through the registry."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import Tensor, nn

from gankit.plugins import get_registry
from gankit.protocols import AdversarialLoss, Regularizer

ADVERSARIAL = ["bce", "non-saturating", "lsgan", "hinge", "wgan"]
LN2, LN3, LN4 = math.log(2.0), math.log(3.0), math.log(4.0)
LOGITS = torch.tensor([0.0, LN3])


def loss(name: str, params: dict[str, Any] | None = None) -> Any:
    return get_registry().get("loss", name, role="adversarial").build(params or {})


def regularizer(name: str, params: dict[str, Any] | None = None) -> Any:
    return get_registry().get("loss", name, role="regularizer").build(params or {})


def close(value: Tensor, expected: float) -> None:
    assert value.dim() == 0
    assert value.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


class Linear(nn.Module):
    """D(x) = w . x (+ b), on a batch of flat or image samples, or the sum over a list of scales."""

    def __init__(self, *weights: Tensor, bias: float = 0.0) -> None:
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(w.clone()) for w in weights)
        self.bias = bias

    def forward(self, x: Tensor | list[Tensor]) -> Tensor:
        scales = x if isinstance(x, list) else [x]
        return sum((s.flatten(1) @ w.flatten() for s, w in zip(scales, self.weights)), torch.tensor(self.bias))


class Square(nn.Module):
    """D(x) = sum(x^2) / 2 per sample: the input gradient is x itself."""

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * x.flatten(1).square().sum(1)


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_adversarial_losses_satisfy_the_protocol(name: str) -> None:
    part = get_registry().get("loss", name)
    assert part.role == "adversarial"
    assert part.summary
    built = loss(name)
    assert isinstance(built, AdversarialLoss)
    assert built.weight == 1.0
    assert "weight" in part.params.model_fields


def test_bce_values() -> None:
    bce = loss("bce")
    # BCE(real=[0, ln3], 1) = mean(softplus(-0), softplus(-ln3)) = (ln2 + ln(4/3)) / 2
    # BCE(fake=[0, ln3], 0) = mean(softplus(0), softplus(ln3)) = (ln2 + ln4) / 2
    close(bce.discriminator_loss(LOGITS, LOGITS), (LN2 + LN4 - LN3) / 2 + (LN2 + LN4) / 2)
    close(bce.generator_loss(LOGITS), -(LN2 + LN4) / 2)


def test_non_saturating_values() -> None:
    ns = loss("non-saturating")
    close(ns.discriminator_loss(LOGITS, LOGITS), loss("bce").discriminator_loss(LOGITS, LOGITS).item())
    close(ns.generator_loss(LOGITS), (LN2 + LN4 - LN3) / 2)


def test_label_smoothing_moves_the_real_target() -> None:
    smooth = loss("bce", {"real_label": 0.9})
    real = torch.tensor([LN3])
    fake = torch.tensor([-50.0])
    # -(0.9 log 0.75 + 0.1 log 0.25); the fake term is ~0
    close(smooth.discriminator_loss(real, fake), -(0.9 * math.log(0.75) + 0.1 * math.log(0.25)))
    assert loss("non-saturating", {"real_label": 0.9}).generator_loss(real).item() == pytest.approx(-math.log(0.75))


def test_lsgan_values() -> None:
    ls = loss("lsgan")
    real = torch.tensor([1.0, 3.0])
    fake = torch.tensor([0.0, 2.0])
    # 0.5 * (mean([0, 4]) + mean([0, 4]))
    close(ls.discriminator_loss(real, fake), 2.0)
    # 0.5 * mean([1, 1])
    close(ls.generator_loss(fake), 0.5)
    smooth = loss("lsgan", {"real_label": 0.5})
    close(smooth.discriminator_loss(torch.tensor([0.5]), torch.tensor([0.0])), 0.0)


def test_hinge_values() -> None:
    hinge = loss("hinge")
    real = torch.tensor([0.0, 2.0, 0.5])
    fake = torch.tensor([-2.0, 0.0, 1.0])
    # real: relu(1 - [0, 2, .5]) = [1, 0, .5]; fake: relu(1 + [-2, 0, 1]) = [0, 1, 2]
    close(hinge.discriminator_loss(real, fake), 0.5 + 1.0)
    close(hinge.generator_loss(fake), -(-2.0 + 0.0 + 1.0) / 3)


def test_wgan_values() -> None:
    wgan = loss("wgan")
    close(wgan.discriminator_loss(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])), -0.5 - 2.0)
    close(wgan.generator_loss(torch.tensor([-1.0, 0.0])), 0.5)


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_weight_multiplies_both_losses(name: str) -> None:
    real, fake = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([-0.7, 0.4, 1.5])
    plain, heavy = loss(name), loss(name, {"weight": 2.5})
    assert heavy.weight == 2.5
    close(heavy.discriminator_loss(real, fake), 2.5 * plain.discriminator_loss(real, fake).item())
    close(heavy.generator_loss(fake), 2.5 * plain.generator_loss(fake).item())


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_sign_conventions(name: str) -> None:
    adversarial = loss(name)
    high, low = torch.full((4,), 0.9), torch.full((4,), -0.9)
    good = adversarial.discriminator_loss(high, low)
    bad = adversarial.discriminator_loss(low, high)
    assert good < bad
    assert adversarial.generator_loss(high) < adversarial.generator_loss(low)


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_gradients_push_the_right_way(name: str) -> None:
    adversarial = loss(name)
    real = torch.full((3,), 0.5, requires_grad=True)
    fake = torch.full((3,), 0.5, requires_grad=True)
    adversarial.discriminator_loss(real, fake).backward()
    assert real.grad is not None and fake.grad is not None
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake_g = torch.full((3,), 0.5, requires_grad=True)
    adversarial.generator_loss(fake_g).backward()
    assert fake_g.grad is not None and (fake_g.grad < 0).all()


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_losses_are_finite_for_extreme_logits(name: str) -> None:
    adversarial = loss(name)
    extreme = torch.tensor([-1e4, 1e4], requires_grad=True)
    d_loss = adversarial.discriminator_loss(extreme, extreme)
    g_loss = adversarial.generator_loss(extreme)
    (d_loss + g_loss).backward()
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    assert extreme.grad is not None and torch.isfinite(extreme.grad).all()


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_low_precision_logits_give_fp32_losses(name: str) -> None:
    adversarial = loss(name)
    logits = torch.tensor([0.5, -0.5], dtype=torch.bfloat16)
    assert adversarial.discriminator_loss(logits, logits).dtype == torch.float32
    assert adversarial.generator_loss(logits).dtype == torch.float32


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("bce", {"wieght": 1.0}),
        ("bce", {"real_label": 1.5}),
        ("lsgan", {"real_label": 0.0}),
        ("hinge", {"real_label": 0.9}),
        ("wgan", {"weight": -1.0}),
        ("gradient-penalty", {"every": 0}),
        ("r1", {"target": 1.0}),
    ],
)
def test_bad_params_are_validation_errors(name: str, params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        get_registry().get("loss", name).build(params)


@pytest.mark.parametrize(("name", "weight"), [("gradient-penalty", 10.0), ("r1", 10.0)])
def test_regularizers_expose_weight_and_every(name: str, weight: float) -> None:
    part = get_registry().get("loss", name)
    assert part.role == "regularizer"
    default = regularizer(name)
    assert isinstance(default, Regularizer)
    assert (default.weight, default.every) == (weight, 1)
    lazy = regularizer(name, {"weight": 0.5, "every": 16})
    assert (lazy.weight, lazy.every) == (0.5, 16)
    assert {"weight", "every"} <= set(part.params.model_fields)


def test_gradient_penalty_vanishes_for_a_unit_norm_linear_critic() -> None:
    torch.manual_seed(0)
    w = torch.tensor([0.6, 0.0, -0.8])
    gp = regularizer("gradient-penalty")
    value = gp.penalty(Linear(w, bias=3.0), torch.randn(5, 3), torch.randn(5, 3))
    assert value.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("target", [1.0, 0.0, 2.0])
def test_gradient_penalty_closed_form_for_a_linear_critic(target: float) -> None:
    torch.manual_seed(0)
    w = torch.tensor([[[3.0, 0.0], [0.0, 4.0]]])
    gp = regularizer("gradient-penalty", {"target": target})
    critic = Linear(w)
    value = gp.penalty(critic, torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2))
    close(value, (5.0 - target) ** 2)
    value.backward()
    (grad,) = (p.grad for p in critic.parameters())
    assert grad is not None
    torch.testing.assert_close(grad, 2 * (5.0 - target) * w / 5.0)


def test_gradient_penalty_interpolates_between_real_and_fake() -> None:
    real = torch.full((64, 2), 2.0)
    fake = torch.zeros(64, 2)
    gp = regularizer("gradient-penalty", {"target": 0.0})
    value = gp.penalty(Square(), real, fake)
    # grad D(x_hat) = x_hat = 2a * (1, 1), so the penalty is mean(8 a^2) with a ~ U(0, 1): 8/3 on average
    assert 1.5 < value.item() < 4.0
    torch.manual_seed(5)
    a = torch.rand(64)
    torch.manual_seed(5)
    close(gp.penalty(Square(), real, fake), (8 * a.square()).mean().item())


def test_gradient_penalty_is_seeded_by_the_global_rng() -> None:
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    gp = regularizer("gradient-penalty")
    torch.manual_seed(1)
    first = gp.penalty(Square(), real, fake)
    torch.manual_seed(1)
    second = gp.penalty(Square(), real, fake)
    assert first.item() == second.item()


def test_gradient_penalty_does_not_train_the_generator() -> None:
    real = torch.randn(4, 2)
    fake = torch.randn(4, 2, requires_grad=True)
    regularizer("gradient-penalty").penalty(Square(), real, fake).backward()
    assert fake.grad is None


def test_gradient_penalty_multi_scale() -> None:
    torch.manual_seed(0)
    w_coarse, w_fine = torch.tensor([1.0, 2.0]), torch.tensor([[[2.0, 0.0], [0.0, 4.0]]])
    critic = Linear(w_coarse, w_fine)
    real = [torch.randn(3, 2), torch.randn(3, 1, 2, 2)]
    fake = [torch.randn(3, 2), torch.randn(3, 1, 2, 2)]
    value = regularizer("gradient-penalty").penalty(critic, real, fake)
    close(value, (math.sqrt(1 + 4 + 4 + 16) - 1.0) ** 2)


def test_gradient_penalty_rejects_mismatched_batches() -> None:
    with pytest.raises(ValueError, match="shape"):
        regularizer("gradient-penalty").penalty(Square(), torch.randn(4, 2), torch.randn(3, 2))


def test_r1_for_a_linear_discriminator() -> None:
    w = torch.tensor([1.0, -2.0, 2.0])
    critic = Linear(w, bias=-1.0)
    r1 = regularizer("r1", {"weight": 5.0})
    value = r1.penalty(critic, torch.randn(6, 3), torch.randn(6, 3))
    close(value, 9.0 / 2)
    value.backward()
    (grad,) = (p.grad for p in critic.parameters())
    assert grad is not None
    torch.testing.assert_close(grad, w)


def test_r1_looks_at_real_samples_only() -> None:
    real = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    r1 = regularizer("r1")
    # grad D(x) = x: mean(||x||^2) / 2 = (5 + 9) / 4
    close(r1.penalty(Square(), real, torch.full((2, 2), 100.0)), 3.5)
    close(r1.penalty(Square(), real, torch.zeros(2, 2)), 3.5)


def test_r1_multi_scale() -> None:
    critic = Linear(torch.tensor([1.0, 2.0]), torch.tensor([[[2.0, 0.0], [0.0, 4.0]]]))
    real = [torch.randn(3, 2), torch.randn(3, 1, 2, 2)]
    close(regularizer("r1").penalty(critic, real, real), (1 + 4 + 4 + 16) / 2)


def test_penalties_train_a_real_discriminator() -> None:
    torch.manual_seed(0)
    d = get_registry().get("discriminator", "dcgan").build(
        {"width": 4, "max_width": 8, "norm": "layer"}, shape=(1, 8, 8)
    )
    real, fake = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    for name in ("gradient-penalty", "r1"):
        d.zero_grad()
        value = regularizer(name).penalty(d, real, fake)
        assert value.dim() == 0 and torch.isfinite(value)
        value.backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())
