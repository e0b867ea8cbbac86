"""Resources checked before work: memory estimates on the meta device, refusals that name the values, limits."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from support.recipes import TINY_RING_PARTS

import gankit
from gankit import resources
from gankit.cli import main
from gankit.images import MAX_GRID_IMAGES, MAX_GRID_PIXELS, check_picture_size
from gankit.recipe import builtin_recipes, load_recipe, loads_recipe
from gankit.resources import (
    SKIP_ENV,
    build_on_meta,
    estimate_training_memory,
    forward_on_meta,
    tensor_bytes,
)
from gankit.training import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = """
[run]
steps = 2
batch_size = 16
log_every = 1
sample_every = 2
checkpoint_every = 2
""" + TINY_RING_PARTS

MLP = """
[run]
batch_size = {batch}
[data]
type = "ring"
[generator]
type = "mlp"
latent_dim = 4
width = 32
depth = 2
[discriminator]
type = "mlp"
width = 32
depth = 2
[optim.generator]
name = "{optim}"
[optim.discriminator]
name = "{optim}"
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "ring"
    assert train(loads_recipe(TINY), out, quiet=True).step == 2
    return out


def mlp_recipe(batch: int = 64, optim: str = "adam") -> gankit.Recipe:
    return loads_recipe(MLP.format(batch=batch, optim=optim))


# --------------------------------------------------------------------------- estimates


def test_the_training_estimate_counts_weights_gradients_optimiser_and_activations() -> None:
    recipe = mlp_recipe()
    real_g = recipe["generator"].build(shape=(2,))
    real_d = recipe["discriminator"].build(shape=(2,))
    estimate = estimate_training_memory(recipe, (2,), torch.device("cpu"))
    assert estimate is not None
    params = sum(p.numel() * 4 for p in [*real_g.parameters(), *real_d.parameters()])
    assert estimate.parts["weights"] == tensor_bytes(real_g) + tensor_bytes(real_d)
    assert estimate.parts["gradients"] == params
    assert estimate.parts["optimiser state"] == 2 * params  # Adam: two moments per parameter
    assert estimate.parts["real batch"] == 64 * 2 * 4
    activations = estimate.parts["activations at batch size 64"]
    assert activations > 64 * 32 * 4  # at least one hidden layer's output
    sgd = estimate_training_memory(mlp_recipe(optim="sgd"), (2,), torch.device("cpu"))
    assert sgd is not None and sgd.parts["optimiser state"] == 0
    momentum = loads_recipe(MLP.format(batch=64, optim="sgd") + "momentum = 0.9\n")  # the discriminator's
    with_momentum = estimate_training_memory(momentum, (2,), torch.device("cpu"))
    assert with_momentum is not None
    assert with_momentum.parts["optimiser state"] == sum(p.numel() * 4 for p in real_d.parameters())
    double = estimate_training_memory(mlp_recipe(batch=128), (2,), torch.device("cpu"))
    assert double is not None and double.parts["activations at batch size 128"] == 2 * activations


@pytest.mark.parametrize("name", [n for n in builtin_recipes() if load_recipe(n).task == "gan"])
def test_every_shipped_recipe_is_estimated_on_meta(name: str) -> None:
    recipe = load_recipe(name)
    data = recipe["data"]
    shape = (2,) if data.name in ("ring", "grid") else (
        3 if data.name == "stacked-digits" else data.params.channels, data.params.resolution, data.params.resolution
    )
    # ten classes, as labelled data would give (unconditional networks ignore them; conditional ones need them)
    estimate = estimate_training_memory(recipe, shape, torch.device("cpu"), num_classes=10)
    assert estimate is not None
    assert estimate.parts["weights"] > 0
    assert any(key.startswith("activations") for key in estimate.parts)


def test_networks_on_meta_allocate_nothing() -> None:
    recipe = loads_recipe(MLP.format(batch=64, optim="adam").replace("width = 32", "width = 65536"))
    module = build_on_meta(recipe["generator"], shape=(2,))
    assert module is not None
    assert all(p.device.type == "meta" for p in module.parameters())
    assert tensor_bytes(module, buffers=False) > 65536 * 65536 * 4  # 16 GiB, never allocated
    activations = forward_on_meta(module, torch.empty(1 << 20, 4, device="meta"))
    assert activations is not None and activations.total >= (1 << 20) * 65536 * 4


# --------------------------------------------------------------------------- refusals


def test_a_run_that_cannot_fit_is_refused_before_any_allocation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "huge.toml"
    recipe.write_text(TINY)
    args = ["train", str(recipe), "--out", str(tmp_path / "run"), "--quiet", "--set", "generator.width=65536",
            "--set", "generator.depth=64", "--set", "run.batch_size=1048576"]
    assert main(args) == 1  # a real build would try to allocate about a terabyte
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "run.batch_size = 1048576" in err and "generator mlp (270,587,396,098 parameters)" in err
    assert "needs at least" in err and "TiB of cpu memory" in err and "is available" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_refusal_names_the_memory_available_and_can_be_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    monkeypatch.setattr(resources, "available_memory", lambda device: 1000)
    assert main(["train", str(recipe), "--out", str(tmp_path / "a"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "run.batch_size = 16, needs at least" in err and "but about 1000 bytes is available" in err
    assert SKIP_ENV in err
    monkeypatch.setenv(SKIP_ENV, "1")
    assert main(["train", str(recipe), "--out", str(tmp_path / "b"), "--quiet"]) == 0


def crafted(trained: Path, target: Path, **changes: str) -> Path:
    """``trained``'s last checkpoint with its recipe's text edited (``old=new``): a hostile file of a few KB."""
    source = trained / "checkpoints" / "step-00000002.safetensors"
    with safe_open(str(source), framework="pt") as handle:
        state = json.loads(handle.metadata()["gankit"])
    for old, new in changes.items():
        state["recipe"] = state["recipe"].replace(old.replace("_", " "), new)
    save_file(load_file(str(source)), str(target), metadata={"gankit": json.dumps(state)})
    assert target.stat().st_size < 50_000
    return target


@pytest.mark.parametrize("command", [["sample", "-o", "{tmp}/a.png"], ["eval", "--metric", "modes", "-n", "10"]])
def test_a_crafted_checkpoint_recipe_is_checked_against_its_tensors_first(
    trained: Path, tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # the recipe asks for a generator of 275 billion parameters; the file holds a few hundred
    bad = crafted(trained, tmp_path / "crafted.safetensors", **{"width_=_8": "width = 65536",
                                                                 "depth_=_1": "depth = 64"})
    args = [command[0], str(bad), *(a.replace("{tmp}", str(tmp_path)) for a in command[1:])]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: weights do not fit the recipe's generator: ")
    assert "in the file but [65536" in err and err.count("\n") == 1


def test_sampling_checks_memory_before_building(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = build_on_meta(loads_recipe(TINY)["generator"], shape=(2,))
    assert generator is not None
    estimate = resources.estimate_sampling_memory(generator, 1000, 256, torch.device("cpu"))
    assert estimate.parts["weights"] == tensor_bytes(generator)
    assert estimate.parts["1000 samples"] == 1000 * 2 * 4
    assert estimate.parts["activations of 256 samples"] >= 2 * 256 * 8 * 4  # the widest layer, twice
    monkeypatch.setattr(resources, "available_memory", lambda device: 10)
    assert main(["sample", str(trained), "-o", str(tmp_path / "a.png")]) == 1
    err = capsys.readouterr().err
    assert "needs at least" in err and "but about 10 bytes is available" in err
    assert not (tmp_path / "a.png").exists()


# --------------------------------------------------------------------------- sampling in chunks, grid limits


def test_sample_draws_in_chunks_with_the_same_result(trained: Path) -> None:
    loaded = gankit.load_generator(trained)
    whole = gankit.sample(loaded, 50, seed=3, batch_size=1000)
    chunked = gankit.sample(loaded, 50, seed=3, batch_size=7)
    assert chunked.shape == whole.shape == (50, 2)
    torch.testing.assert_close(chunked, whole)


def test_picture_limits_are_checked_before_generating() -> None:
    check_picture_size(MAX_GRID_IMAGES, (1, 32, 32))
    with pytest.raises(gankit.GankitError, match=f"-n {MAX_GRID_IMAGES + 1}: one grid holds at most 10,000 images"):
        check_picture_size(MAX_GRID_IMAGES + 1, (1, 32, 32))
    side = int(math.sqrt(MAX_GRID_PIXELS / 2000))
    with pytest.raises(gankit.GankitError, match=r"-n 2000: a grid of 2000 images of \d+x\d+ px would be \d+ "
                                                 "megapixels; one grid holds at most 50"):
        check_picture_size(2000, (3, side, side))


@pytest.mark.parametrize("n", ["100000000", "1000001"])
def test_sample_refuses_more_than_one_picture_holds(
    trained: Path, tmp_path: Path, n: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sample", str(trained), "-n", n, "-o", str(tmp_path / "a.png")]) == 1
    err = capsys.readouterr().err
    assert err == f"error: -n {n}: one picture holds at most 10,000 images or 1,000,000 points\n"
    assert not (tmp_path / "a.png").exists()
    with pytest.raises(gankit.GankitError, match="-n 1000001: one scatter picture holds at most 1,000,000 points"):
        check_picture_size(1_000_001, (2,))


def test_sample_of_many_points_works(trained: Path, tmp_path: Path) -> None:
    assert main(["sample", str(trained), "-n", "5000", "-o", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").stat().st_size > 0


# --------------------------------------------------------------------------- limits in the parameter models


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("run.seed=1180591620717411303424", "run.seed: Input should be less than or equal to 9223372036854775807"),
        ("run.seed=-18446744073709551616", "run.seed: Input should be greater than or equal to -9223372036854775808"),
        ("run.batch_size=1000000000", "run.batch_size: Input should be less than or equal to 1048576"),
        ("run.batch_size=0", "run.batch_size: Input should be greater than 0"),
        ("generator.width=1000000000", "generator.width: Input should be less than or equal to 65536"),
        ("generator.latent_dim=1000000000", "generator.latent_dim: Input should be less than or equal to 65536"),
        ("discriminator.width=-4", "discriminator.width: Input should be greater than or equal to 1"),
        ("optim.generator.lr=nan", "optim.generator.lr: Input should be a finite number"),
        ("data.sigma=inf", "data.sigma: Input should be a finite number"),
        ("run.threads=100000", "run.threads: Value error, threads must be 'auto' or a number from 1 to 4096"),
    ],
)
def test_values_that_never_make_sense_are_refused_by_check(
    tmp_path: Path, setting: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(TINY)
    assert main(["check", str(recipe), "--set", setting]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_copied_run_keeps_working(trained: Path, tmp_path: Path) -> None:
    """Sanity: a checkpoint that fits is loaded with the checks on."""
    copy = Path(shutil.copytree(trained, tmp_path / "copy"))
    assert main(["sample", str(copy), "-n", "8", "-o", str(tmp_path / "a.png")]) == 0
