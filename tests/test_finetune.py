"""Fine-tuning: [run] init_from starts from a trained run's networks; freeze-d freezes the discriminator's first."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

import gankit
from gankit.checkpoint import latest_checkpoint, load_checkpoint
from gankit.cli import main
from gankit.errors import GankitError
from gankit.parts.tricks_freezed import discriminator_blocks
from gankit.recipe import recipe_from_dict
from gankit.testing import tiny_recipe, train_for
from gankit.training import Trainer, resume, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    """A trained tiny digits run to start from."""
    folder = tmp_path_factory.mktemp("base") / "run"
    train_for(tiny_recipe("images", run={"checkpoint_every": 3, "seed": 1}), steps=3, out=folder)
    return folder


def finetune(base: Path, **slots: Any) -> dict[str, Any]:
    run = {"init_from": str(base), "seed": 2, "checkpoint_every": 2, **slots.pop("run", {})}
    recipe = tiny_recipe("images", run=run, tricks=[{"type": "freeze-d", "blocks": 1}, {"type": "ema", "decay": 0.9}],
                         **slots)
    recipe["data"] = {"type": "digits", "resolution": 8, "classes": [0, 1]}  # new data, same shape
    return recipe


def networks_of(path: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(latest_checkpoint(path) if path.is_dir() else path)
    return {k: v for k, v in ckpt.tensors.items() if k.startswith(("generator/", "discriminator/", "trick.1/"))}


def test_a_new_run_starts_from_the_networks_of_the_other(base: Path, tmp_path: Path) -> None:
    old = load_checkpoint(latest_checkpoint(base))
    trainer = Trainer(recipe_from_dict(finetune(base)), tmp_path / "run", quiet=True)
    for slot, module in (("generator", trainer.generator_module), ("discriminator", trainer.discriminator_module)):
        mine = module.state_dict()
        for key, value in old.group(slot).items():
            assert torch.equal(mine[key], value), f"{slot}.{key}"
    ema = trainer.sampling_generator().state_dict()
    assert all(torch.equal(ema[k], v) for k, v in old.group("generator").items())  # the average starts there too
    assert all(len(s) == 0 for opt in trainer.optimizers.values() for s in opt.state.values())  # optimisers fresh
    assert trainer.step == 0


def test_freeze_d_keeps_the_first_blocks_and_trains_the_rest(base: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(recipe_from_dict(finetune(base)), run, steps=3, quiet=True)
    old = load_checkpoint(latest_checkpoint(base)).group("discriminator")
    new = load_checkpoint(latest_checkpoint(run)).group("discriminator")
    assert old.keys() == new.keys()
    frozen = [k for k in old if k.startswith("net.0.")]  # the first block: the convolution reading the image
    assert frozen and all(torch.equal(old[k], new[k]) for k in frozen)
    trained = [k for k in old if k.startswith("net.2.")]  # the last block, which gives the logit
    assert any(not torch.equal(old[k], new[k]) for k in trained)


def test_fine_tuning_resumes_bit_exactly_without_the_other_run(base: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    train(recipe_from_dict(finetune(base)), whole, steps=4, quiet=True)
    copy = tmp_path / "base-copy"
    shutil.copytree(base, copy)
    halves = tmp_path / "halves"
    train(recipe_from_dict(finetune(copy)), halves, steps=2, quiet=True)
    shutil.rmtree(copy)  # a resumed run continues from its own checkpoints
    resume(halves, steps=4, quiet=True)
    a, b = networks_of(whole), networks_of(halves)
    assert a.keys() == b.keys() and any(k.startswith("trick.1/") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize(("change", "message"), [
    ({"generator": {"type": "dcgan", "latent_dim": 8, "width": 8, "max_width": 8}},
     "generator.width: 4 there, 8 here"),
    ({"discriminator": {"type": "dcgan", "width": 4, "max_width": 8, "spectral_norm": True}},
     "discriminator.spectral_norm: False there, True here"),
    ({"data": {"type": "digits", "resolution": 16}},
     "the generator's weights do not fit this run's data: it was trained on digits@v1 (resolution 8, channels 1), "
     "this run's data is digits@v1 (resolution 16, channels 1)"),
])
def test_init_from_rejects_a_run_with_other_networks(base: Path, tmp_path: Path, change: dict[str, Any],
                                                     message: str) -> None:
    recipe = finetune(base)
    recipe.update(change)
    with pytest.raises(GankitError, match=r"[Ff]ine-tuning") as info:
        Trainer(recipe_from_dict(recipe), tmp_path / "run", quiet=True)
    assert message in str(info.value)
    assert f"run.init_from = '{base}'" in str(info.value)


def test_init_from_mistakes_are_one_clear_line(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(GankitError, match="no such run folder or checkpoint"):
        Trainer(recipe_from_dict(finetune(tmp_path / "nowhere")), tmp_path / "a", quiet=True)
    with pytest.raises(GankitError, match="holds a generator alone"):
        Trainer(recipe_from_dict(finetune(base / "generator.safetensors")), tmp_path / "b", quiet=True)
    recipe = finetune(base)
    recipe["tricks"][0]["blocks"] = 2  # an 8x8 dcgan discriminator: one block at 8x8, then the logit's
    with pytest.raises(GankitError, match=r"freeze-d\.blocks = 2, but the discriminator has 2 blocks"):
        Trainer(recipe_from_dict(recipe), tmp_path / "c", quiet=True)
    assert discriminator_blocks(Trainer(recipe_from_dict(tiny_recipe("images")), tmp_path / "d").discriminator_module)
    best = tmp_path / "best.safetensors"
    shutil.copy(latest_checkpoint(base), best)
    Trainer(recipe_from_dict(finetune(best)), tmp_path / "e", quiet=True)  # a checkpoint file works too


@pytest.mark.slow
def test_the_folder_finetune_recipe_on_photos_from_a_digits_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image
    from sklearn.datasets import load_sample_images

    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    for i, picture in enumerate(load_sample_images().images):
        Image.fromarray(picture).save(tmp_path / "photos" / f"{i}.png")
    small = ["--set", "run.batch_size=4", "--set", "run.threads=1", "--set", "run.device=cpu", "-q"]
    assert main(["train", "folder-dcgan", "--set", 'data={type="digits", resolution=64, channels=3}',
                 "--steps", "1", "--out", "digits-rgb", *small]) == 0
    assert main(["train", "folder-finetune", "--set", "run.init_from=digits-rgb", "--set", "data.path=photos",
                 "--steps", "2", "--out", "photos-run", *small]) == 0
    assert load_checkpoint(latest_checkpoint(tmp_path / "photos-run")).state["step"] == 2
    recipe = gankit.load_recipe(tmp_path / "photos-run" / "recipe.toml")
    assert recipe.run.init_from == "digits-rgb"
    assert [t.name for t in recipe["tricks"]] == ["freeze-d", "ema"]
    capsys.readouterr()
    assert main(["train", "folder-finetune", "--set", "data.path=photos", "--steps", "2", "--out", "x", *small]) == 1
    assert "run.init_from = 'runs/folder-dcgan': no such run folder" in capsys.readouterr().err
