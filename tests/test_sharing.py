"""Sharing: gankit export → a Hugging Face style folder → load_generator / gankit sample, locally and on the Hub."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.images import samples_picture
from gankit.testing import tiny_recipe, train_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    """A tiny digits run with an EMA generator and a metric."""
    recipe = tiny_recipe(
        "images", tricks=[{"type": "ema", "decay": 0.9}],
        metrics=[{"type": "sliced-wasserstein", "samples": 16, "projections": 4}],
        run={"sample_every": 4, "metrics_every": 4, "checkpoint_every": 4, "samples": 9, "seed": 5},
    )
    folder = tmp_path_factory.mktemp("share") / "run"
    train_for(recipe, steps=4, out=folder)
    return folder


@pytest.fixture(scope="module")
def exported(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "digits"
    assert main(["export", str(run), str(out)]) == 0
    return out


def pixels(path: Path) -> np.ndarray:
    array = np.asarray(Image.open(path))
    return array[..., None] if array.ndim == 2 else array


def test_export_writes_the_hugging_face_layout(exported: Path) -> None:
    assert sorted(p.name for p in exported.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                           "samples.png"]
    config = json.loads((exported / "config.json").read_text())
    assert config["library_name"] == "gankit"
    assert config["generator"] == {"type": "dcgan@v1", "latent_dim": 8, "width": 4, "max_width": 8,
                                   "init": "dcgan", "upsample": "transpose", "norm": "batch",
                                   "condition": "none"}
    assert config["part_version"] == f"dcgan@v1 (gankit {gankit.__version__})"
    assert config["part_versions"]["tricks.0"].startswith("ema@v1")
    assert config["sample_shape"] == [1, 8, 8] and config["latent_dim"] == 8 and config["step"] == 4
    assert config["weights"] == "ema"
    assert "[generator]" in config["recipe"]
    from safetensors import safe_open

    with safe_open(str(exported / "model.safetensors"), framework="pt") as handle:
        assert "project.weight" in handle.keys()  # noqa: SIM118
        assert handle.metadata()["format"] == "pt"


def test_the_model_card_has_the_grid_the_metrics_and_how_to_load_it(exported: Path) -> None:
    card = (exported / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: gankit\n")
    assert "pipeline_tag: unconditional-image-generation" in card
    assert "![64 samples](samples.png)" in card
    assert "| `sliced-wasserstein.distance` |" in card
    assert f'gankit.load_generator("{exported}")' in card and f"gankit sample {exported}" in card
    assert "```toml" in card and "[discriminator]" in card
    assert Image.open(exported / "samples.png").size == (82, 82)  # 64 samples of 8x8 in an 8x8 grid


def test_export_load_sample_gives_the_pixels_of_the_run(run: Path, exported: Path) -> None:
    shared = gankit.load_generator(exported)
    from_run = gankit.load_generator(run)
    assert shared.recipe is not None and shared.recipe.name == from_run.recipe.name
    assert shared.step == 4 and shared.shape == (1, 8, 8)
    assert torch.equal(gankit.sample(shared, 16, seed=3), gankit.sample(from_run, 16, seed=3))
    # the run's own last grid: the trainer's fixed latent batch (seed + 3), through the EMA generator
    latents = torch.randn(9, 8, generator=torch.Generator().manual_seed(5 + 3))
    grid = samples_picture(gankit.sample(shared, 9, latents=latents))
    assert np.array_equal(grid, pixels(run / "samples" / "step-00000004.png"))


def test_gankit_sample_reads_an_exported_folder(exported: Path, run: Path, tmp_path: Path) -> None:
    assert main(["sample", str(exported), "-n", "16", "-o", str(tmp_path / "a.png")]) == 0
    assert main(["sample", str(run), "-n", "16", "-o", str(tmp_path / "b.png")]) == 0
    assert np.array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png"))


def test_export_needs_no_data_to_load(exported: Path, tmp_path: Path) -> None:
    config = json.loads((exported / "config.json").read_text())
    config["recipe"] = config["recipe"].replace('type = "digits@v1"', 'type = "nowhere.data"')
    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    (copy / "config.json").write_text(json.dumps(config))
    loaded = gankit.load_generator(copy)
    assert loaded.recipe is None  # its recipe names a part not installed here; the generator loads all the same
    assert gankit.sample(loaded, 2).shape == (2, 1, 8, 8)
    assert main(["eval", str(copy), "--metric", "sliced-wasserstein"]) == 1


def test_export_refuses_a_folder_that_is_not_an_earlier_export(run: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(["export", str(run), str(tmp_path / "mine")]) == 1
    assert "not empty (notes.txt)" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    again = tmp_path / "again"
    assert main(["export", str(run), str(again)]) == 0
    assert main(["export", str(run), str(again), "--samples", "4"]) == 0  # an earlier export is replaced
    assert "![4 samples](samples.png)" in (again / "README.md").read_text()
    assert main(["export", str(run)]) == 1
    assert "name the folder to export into" in capsys.readouterr().err


def hub_cache(root: Path, repo_id: str, folder: Path) -> Path:
    """The Hugging Face cache layout of one model, as huggingface_hub leaves it after a download."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(folder, repo / "snapshots" / commit)
    return root


def test_hf_reference_loads_from_the_hub_cache(exported: Path, tmp_path: Path, run_gankit: Any) -> None:
    cache = hub_cache(tmp_path / "hub", "me/digits", exported)
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "home")}
    done = run_gankit(["sample", "hf://me/digits", "-n", "16", "-o", str(tmp_path / "hub.png")], env=env)
    assert done.returncode == 0, done.stderr
    assert main(["sample", str(exported), "-n", "16", "-o", str(tmp_path / "local.png")]) == 0
    assert np.array_equal(pixels(tmp_path / "hub.png"), pixels(tmp_path / "local.png"))
    missing = run_gankit(["sample", "hf://me/unknown", "-o", str(tmp_path / "x.png")], env=env)
    assert missing.returncode == 1
    assert "hf://me/unknown: cannot download" in missing.stderr and "Traceback" not in missing.stderr
    bad = run_gankit(["sample", "hf://not-a-repo", "-o", str(tmp_path / "x.png")], env=env)
    assert bad.returncode == 1 and "hf://owner/name" in bad.stderr


def test_push_uploads_the_exported_folder(run: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import huggingface_hub

    calls: list[tuple[str, dict[str, Any]]] = []

    class FakeApi:
        def create_repo(self, repo_id: str, **kwargs: Any) -> None:
            calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

        def upload_folder(self, **kwargs: Any) -> None:
            folder = Path(kwargs["folder_path"])
            files = sorted(p.name for p in folder.iterdir())
            calls.append(("upload_folder", {**kwargs, "files": files, "card": (folder / "README.md").read_text()}))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert main(["export", str(run), "--push", "me/digits-dcgan", "--private"]) == 0
    assert calls[0] == ("create_repo", {"repo_id": "me/digits-dcgan", "repo_type": "model", "private": True,
                                        "exist_ok": True})
    name, upload = calls[1]
    assert name == "upload_folder" and upload["repo_id"] == "me/digits-dcgan"
    assert upload["files"] == ["README.md", "config.json", "model.safetensors", "samples.png"]
    assert 'gankit.load_generator("hf://me/digits-dcgan")' in upload["card"]
    assert "https://huggingface.co/me/digits-dcgan" in capsys.readouterr().out


def test_push_failures_and_a_missing_hub_package_are_one_clear_line(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import huggingface_hub

    class NoLogin:
        def create_repo(self, repo_id: str, **kwargs: Any) -> None:
            raise OSError("Invalid user token")

    monkeypatch.setattr(huggingface_hub, "HfApi", NoLogin)
    assert main(["export", str(run), "--push", "me/x"]) == 1
    err = capsys.readouterr().err
    assert "--push me/x: upload failed (OSError: Invalid user token)" in err and "hf auth login" in err
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    assert main(["export", str(run), "--push", "me/x"]) == 1
    assert "pip install 'gankit[hub]'" in capsys.readouterr().err


def test_a_disk_that_fills_up_during_an_export_leaves_no_half_export(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import contextlib
    import errno
    import os

    import gankit.files

    real = gankit.files.atomic_writer

    @contextlib.contextmanager
    def writer(path: Any) -> Any:
        if Path(path).name == "README.md":  # the weights and the grid are written, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        with real(path) as handle:
            yield handle

    monkeypatch.setattr(gankit.files, "atomic_writer", writer)
    out = tmp_path / "shared"
    assert main(["export", str(run), str(out)]) == 1
    assert f"{out}: cannot write the export (No space left on device)" in capsys.readouterr().err
    assert not out.exists()
