"""Parts on the open contracts: relativistic losses, R2, path length, optimisers, trick context and events."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import gankit
from gankit.cli import main
from gankit.errors import GankitError, RegistrationError
from gankit.recipe import loads_recipe, recipe_from_dict
from gankit.registry import Provider, Registry
from gankit.testing import check_part, tiny_recipe, train_for
from gankit.training import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- losses


def test_ragan_is_relativistic_in_both_phases(builtin_registry: Registry) -> None:
    loss = builtin_registry.get("loss", "ragan").build()
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0])
    # RaSGAN: D sees r = real - mean(fake), f = fake - mean(real)
    r, f = real - fake.mean(), fake - real.mean()
    expected_d = torch.nn.functional.softplus(-r).mean() + torch.nn.functional.softplus(f).mean()
    assert loss.discriminator_loss(real, fake) == pytest.approx(expected_d.item())
    expected_g = torch.nn.functional.softplus(-f).mean() + torch.nn.functional.softplus(r).mean()
    assert loss.generator_loss(fake, real) == pytest.approx(expected_g.item())
    # shifting every logit by the same amount changes nothing: only differences matter
    assert loss.discriminator_loss(real + 5, fake + 5) == pytest.approx(expected_d.item())
    assert loss.needs_real_logits
    with pytest.raises(ValueError, match="real logits"):
        loss.generator_loss(fake)


@pytest.mark.parametrize("form", ["non-saturating", "hinge", "least-squares"])
def test_ragan_forms_pass_the_loss_contract(form: str) -> None:
    check_part("loss", "ragan", {"form": form})


def test_rpgan_pairs_samples(builtin_registry: Registry) -> None:
    loss = builtin_registry.get("loss", "rpgan").build()
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    assert loss.discriminator_loss(real, fake) == pytest.approx(
        torch.nn.functional.softplus(fake - real).mean().item())
    assert loss.generator_loss(fake, real) == pytest.approx(torch.nn.functional.softplus(real - fake).mean().item())
    with pytest.raises(ValueError, match="one to one"):
        loss.discriminator_loss(real, fake[:1])
    check_part("loss", "rpgan")


def test_old_style_generator_loss_still_works(tmp_path: Path) -> None:
    """A loss written for gankit 0.1, with generator_loss(fake_logits) only, trains unchanged."""

    class OldLoss:
        weight = 1.0

        def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.softplus(-real_logits).mean() + torch.nn.functional.softplus(fake_logits).mean()

        def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.softplus(-fake_logits).mean()

    trainer = Trainer(recipe_from_dict(tiny_recipe()), tmp_path / "run", quiet=True)
    from gankit.training.game import GanGame

    game: GanGame = trainer.game
    game.loss = OldLoss()
    game._generator_loss_two = False
    assert torch.isfinite(game.generator_phase())


# --------------------------------------------------------------------------- regularisers


def test_r2_penalises_the_gradient_on_generated_samples(builtin_registry: Registry) -> None:
    r2 = builtin_registry.get("loss", "r2").build()
    assert r2.network == "discriminator"
    weight = torch.tensor([3.0, -4.0])

    def judge(x: torch.Tensor, labels: Any = None) -> torch.Tensor:
        return x @ weight  # gradient (3, -4) everywhere: |g|^2 = 25

    real, fake = torch.zeros(5, 2), torch.ones(5, 2)
    assert r2.penalty(judge, real, fake).item() == pytest.approx(12.5)
    r1 = builtin_registry.get("loss", "r1").build()
    quadratic = lambda x, labels=None: (x**2).sum(1)  # noqa: E731 — gradient 2x: zero at real, 2 at fake
    assert r1.penalty(quadratic, real, fake).item() == pytest.approx(0.0)
    assert r2.penalty(quadratic, real, fake).item() == pytest.approx(0.5 * 8)


def test_path_length_regularizes_the_generator_and_tracks_its_mean(builtin_registry: Registry) -> None:
    pl = check_part("loss", "path-length")
    assert pl.network == "generator"
    pl = builtin_registry.get("loss", "path-length").build({"decay": 1.0, "batch_shrink": 1})
    # a linear generator G(z) = 2z on 2x2 images (4 pixels): |J^T y| = 2|y| with y ~ N(0, I)/2,
    # so the lengths are chi-distributed with 4 degrees of freedom: mean sqrt(2) Gamma(5/2) / Gamma(2)
    g = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        g.weight.copy_(2 * torch.eye(4))
    generator = nn.Sequential(g, nn.Unflatten(1, (1, 2, 2)))
    torch.manual_seed(0)
    penalty = pl.penalty(generator, torch.randn(4096, 4))
    assert pl.mean.item() == pytest.approx(math.sqrt(2) * math.gamma(2.5) / math.gamma(2), rel=0.02)
    assert penalty.item() < 0.6  # the lengths scatter around their mean
    assert torch.equal(pl.state_dict()["mean"], pl.mean)


def test_generator_regularizer_is_applied_lazily(tmp_path: Path) -> None:
    calls: list[int] = []

    class Counting:
        network = "generator"
        weight = 1.0
        every = 3

        def penalty(self, generator: Any, latents: torch.Tensor, **context: Any) -> torch.Tensor:
            calls.append(1)
            assert context["labels"] is None and callable(context["discriminator"])
            return generator(latents).square().mean()

    trainer = Trainer(recipe_from_dict(tiny_recipe(run={"steps": 7})), tmp_path / "run", quiet=True)
    from gankit.training.game import Regularization

    trainer.game.g_regularizers = [Regularization(Counting())]
    for _ in range(7):
        trainer.train_step()
    assert len(calls) == 2  # generator steps 3 and 6


def test_path_length_mean_survives_resume(tmp_path: Path) -> None:
    recipe = tiny_recipe("images", regularizers=[{"type": "path-length", "every": 1}], run={"checkpoint_every": 2})
    straight = train_for(recipe, steps=4, out=tmp_path / "a")
    train_for(recipe, steps=2, out=tmp_path / "b")
    resumed = gankit.resume(tmp_path / "b", steps=4, quiet=True)
    from gankit.checkpoint import load_checkpoint

    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert torch.equal(a.tensors["regularizer.0/s.mean"], b.tensors["regularizer.0/s.mean"])
    assert a.tensors["regularizer.0/s.mean"].item() > 0
    for key, value in a.group("generator").items():
        assert torch.equal(value, b.group("generator")[key]), key


# --------------------------------------------------------------------------- optimisers


def test_optimizers_are_parts_with_validated_parameters(builtin_registry: Registry) -> None:
    for name in ("adam", "adamw", "sgd", "rmsprop"):
        check_part("optimizer", name)
    with pytest.raises(GankitError, match="momentum"):
        loads_recipe('[optim.generator]\ntype = "adam"\nmomentum = 0.9\n' + _TINY, registry=builtin_registry)
    recipe = loads_recipe('[optim.discriminator]\ntype = "sgd"\nmomentum = 0.5\nlr = 0.01\n' + _TINY,
                          registry=builtin_registry)
    assert recipe["optim"]["discriminator"].name == "sgd"


def test_old_optimizer_tables_still_load(builtin_registry: Registry) -> None:
    old = ('[optim.generator]\nname = "sgd"\nlr = 0.01\nbetas = [0.5, 0.999]\neps = 1e-8\nmomentum = 0.9\n'
           'weight_decay = 0.0\nfused = false\n')
    recipe = loads_recipe(old + _TINY, registry=builtin_registry)
    spec = recipe["optim"]["generator"]
    assert (spec.name, spec.params.lr, spec.params.momentum) == ("sgd", 0.01, 0.9)
    # a key the old table ignored, set to a value that meant something: reported, not dropped silently
    with pytest.raises(GankitError, match="betas"):
        loads_recipe('[optim.generator]\nname = "sgd"\nbetas = [0.9, 0.9]\n' + _TINY, registry=builtin_registry)


def test_schedules_multiply_an_optimizers_base_rate(tmp_path: Path) -> None:
    recipe = recipe_from_dict(tiny_recipe(optim={"generator": {"type": "sgd", "lr": 0.5}},
                                          schedule={"generator": {"type": "step", "milestones": [1], "factor": 0.1}}))
    trainer = Trainer(recipe, tmp_path / "run", quiet=True)
    trainer.train_step()
    assert trainer.optimizers["generator"].param_groups[0]["lr"] == 0.5
    trainer.train_step()
    assert trainer.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(0.05)


_TINY = """
[data]
type = "ring"
[generator]
type = "mlp"
[discriminator]
type = "mlp"
"""


# --------------------------------------------------------------------------- tricks


class _Spy:
    """A trick that records what its context shows at each event."""

    def __init__(self, params: Any = None, **context: Any) -> None:
        self.events: list[tuple[str, int, str]] = []

    def before_step(self, ctx: Any) -> None:
        self.events.append(("before_step", ctx.step, ctx.phase))

    def discriminator_input(self, ctx: Any, x: torch.Tensor) -> torch.Tensor:
        self.events.append(("discriminator_input", ctx.step, ctx.phase))
        return x

    def after_discriminator_step(self, ctx: Any) -> None:
        assert ctx.real_logits is not None and ctx.real_logits.shape == (ctx.batch_size,)
        assert not ctx.real_logits.requires_grad
        self.events.append(("after_discriminator_step", ctx.step, ctx.phase))

    def after_generator_step(self, ctx: Any) -> None:
        self.events.append(("after_generator_step", ctx.step, ctx.phase))


def test_events_fire_as_documented(tmp_path: Path) -> None:
    recipe = recipe_from_dict(tiny_recipe(regularizers=["r1"]))
    trainer = Trainer(recipe, tmp_path / "run", quiet=True)
    spy = _Spy()
    from gankit.training.events import TrickHooks

    trainer.hooks = trainer.game.hooks = TrickHooks([spy])
    trainer.game._transforms = True
    trainer.train_step()
    assert spy.events == [
        ("before_step", 0, "idle"),
        ("discriminator_input", 0, "discriminator"),  # the real batch
        ("discriminator_input", 0, "discriminator"),  # the generated batch; R1 reuses the real one
        ("after_discriminator_step", 0, "idle"),
        ("discriminator_input", 0, "generator"),  # the generated batch of the generator phase
        ("after_generator_step", 1, "idle"),
    ]


def test_a_misspelt_event_is_a_registration_error(builtin_registry: Registry) -> None:
    class Typo:
        """Meant to run after every generator step."""

        def after_generater_step(self, ctx: Any) -> None:
            pass

    with pytest.raises(RegistrationError, match=r"'after_generater_step'.*Did you mean 'after_generator_step'"):
        builtin_registry.add("trick", "typo", Typo, provider=Provider("someone", "1.0"))

    class Prefixed:
        def on_step(self, ctx: Any) -> None:
            pass

    with pytest.raises(RegistrationError, match="'on_step' is not a trainer event"):
        builtin_registry.add("trick", "prefixed", Prefixed, provider=Provider("someone", "1.0"))

    class Helper:
        def discriminator_input(self, ctx: Any, x: Any) -> Any:
            return x

        def strength(self) -> float:  # an ordinary public method is fine
            return 1.0

    builtin_registry.add("trick", "helper", Helper, provider=Provider("someone", "1.0"))


def test_a_trick_reading_the_old_trainer_names_gets_a_deprecation_warning(tmp_path: Path) -> None:
    trainer = Trainer(recipe_from_dict(tiny_recipe()), tmp_path / "run", quiet=True)
    ctx = trainer.context
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ctx.generator_module is ctx.generator
        assert ctx.opt_d is ctx.optimizers["discriminator"]
        assert ctx.settings is ctx.run
    assert len(caught) == 3 and all(issubclass(w.category, DeprecationWarning) for w in caught)
    with pytest.raises(AttributeError, match="TrainingContext"):
        _ = ctx.nonexistent


def test_old_style_trick_methods_with_a_step_argument_still_work(tmp_path: Path) -> None:
    seen: list[int] = []

    class OldTrick:
        def after_generator_step(self, trainer: Any, step: int) -> None:
            seen.append(step)

    from gankit.training.events import TrickHooks

    trainer = Trainer(recipe_from_dict(tiny_recipe()), tmp_path / "run", quiet=True)
    trainer.hooks = TrickHooks([OldTrick()])
    trainer.train_step()
    trainer.train_step()
    assert seen == [1, 2]


# --------------------------------------------------------------------------- plugin authors' tools


def test_check_part_catches_a_broken_loss(builtin_registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    class Backwards:
        weight = 1.0

        def __init__(self, params: Any, **context: Any) -> None:
            pass

        def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
            return (fake_logits - real_logits).mean()

        def generator_loss(self, fake_logits: torch.Tensor, real_logits: Any = None) -> torch.Tensor:
            return fake_logits.mean()  # wrong way round: rewards fakes judged fake

    builtin_registry.add("loss", "backwards", Backwards, provider=Provider("gankit", gankit.__version__),
                         role="adversarial")
    monkeypatch.setattr("gankit.plugins.get_registry", lambda: builtin_registry)
    with pytest.raises(AssertionError, match="generator_loss must fall"):
        check_part("loss", "backwards")


def test_a_missing_plugin_namespace_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.toml").write_text(_TINY + '[loss]\ntype = "relgan.average"\n')
    assert main(["check", str(tmp_path / "r.toml")]) == 1
    err = capsys.readouterr().err
    assert "No installed plugin provides the namespace 'relgan'" in err
    import os

    os.environ["GANKIT_DISABLE_PLUGINS"] = "1"
    try:
        from gankit.plugins import reset_registry

        reset_registry()
        assert main(["check", str(tmp_path / "r.toml")]) == 1
        assert "GANKIT_DISABLE_PLUGINS is set" in capsys.readouterr().err
    finally:
        del os.environ["GANKIT_DISABLE_PLUGINS"]
        reset_registry()


def test_plugin_recipes_are_listed_and_usable_by_name(run_gankit: Any, tmp_path: Path) -> None:
    listed = run_gankit(["recipes"])
    assert listed.returncode == 0
    line = next(line for line in listed.stdout.splitlines() if line.startswith("ring-pacgan "))
    assert "[gankit-pacgan" in line
    trained = run_gankit(["train", "ring-pacgan", "--steps", "2", "--out", "run", "-q"])
    assert trained.returncode == 0, trained.stderr
    assert 'type = "pacgan.packed@v1"' in (tmp_path / "run" / "recipe.toml").read_text()


def test_sliced_wasserstein_scores_any_data() -> None:
    from gankit.metrics.sliced import sliced_wasserstein

    x = torch.randn(2000, 2)
    assert sliced_wasserstein(x, x, projections=64, seed=0).item() == pytest.approx(0.0, abs=1e-12)
    shifted = x + torch.tensor([3.0, 0.0])
    # for a shift t the projections move by t.u: the root mean square over directions is |t| / sqrt(2) in 2-D
    assert sliced_wasserstein(x, shifted, projections=2000, seed=0).item() == pytest.approx(3 / math.sqrt(2), rel=0.05)
    images = torch.rand(100, 3, 4, 4)
    assert sliced_wasserstein(images, images[:50], projections=16, seed=0).item() < 0.1


def test_eval_help_gives_commands_that_work(run_gankit: Any, tmp_path: Path) -> None:
    helped = run_gankit(["eval", "--help"])
    commands = [line.strip() for line in helped.stdout.splitlines() if line.strip().startswith("gankit ")]
    assert len(commands) >= 3
    import shlex

    for command in commands:
        result = run_gankit(shlex.split(command)[1:], timeout=300, env={"OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, f"{command}: {result.stderr}"
