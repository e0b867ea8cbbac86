"""The W&B logger in offline mode: what a training run logs reaches W&B's run files; no network is used."""

from __future__ import annotations

from pathlib import Path

import pytest
from gankit.testing import tiny_recipe, train_for

from gankit_wandb.logger import ID_FILE, values


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B offline, quiet, and with its settings and caches in the test's folder."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "data"))


def recipe(steps: int) -> dict:
    return tiny_recipe(
        "images",
        loggers=[{"type": "wandb.logger", "project": "gankit-tests"}],
        metrics=[{"type": "sliced-wasserstein", "samples": 16, "projections": 4}],
        run={"sample_every": 2, "metrics_every": 2, "checkpoint_every": 2, "steps": steps},
    )


def test_records_metrics_and_sample_grids_reach_the_offline_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train_for(recipe(2), steps=2, out=run)
    assert result.step == 2
    folder = run / "logs" / "wandb.logger"
    offline_runs = sorted((folder / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    identifier = (folder / ID_FILE).read_text(encoding="utf-8").strip()
    assert f"-{identifier}" in offline_runs[0].name
    history = next(offline_runs[0].glob("run-*.wandb")).read_bytes()
    for key in (b"train/d_loss", b"train/g_loss", b"train/lr_g", b"metrics/sliced-wasserstein.distance"):
        assert key in history, key
    grids = list((offline_runs[0] / "files" / "media" / "images").glob("samples_*.png"))
    assert len(grids) == 2  # steps 0 and 2


def test_a_resumed_run_continues_the_same_wandb_run(tmp_path: Path) -> None:
    import gankit

    run = tmp_path / "run"
    train_for(recipe(2), steps=2, out=run)
    identifier = (run / "logs" / "wandb.logger" / ID_FILE).read_text(encoding="utf-8").strip()
    gankit.resume(run, steps=4, quiet=True)
    offline_runs = sorted((run / "logs" / "wandb.logger" / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 2
    assert all(f"-{identifier}" in path.name for path in offline_runs)  # W&B adds "-1" to a name taken this second


def test_values_keep_numbers_and_name_them_by_record_kind() -> None:
    assert values({"step": 3, "time": 1.0, "d_loss": 0.5, "balance": "always", "skips": 0}) == {
        "train/d_loss": 0.5, "train/skips": 0.0}
    assert values({"step": 3, "event": "metrics", "fid.fid": 12.0}) == {"metrics/fid.fid": 12.0}
    assert values({"step": 3, "event": "skip", "reason": "loss below 0.3"}) == {}
    assert values({"step": 3, "d_loss": float("nan")}) == {}
