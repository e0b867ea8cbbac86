"""Loggers: the tensorboard logger's event files, and loggers that fail never stop training."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import Field

import gankit
from gankit.errors import GankitWarning
from gankit.plugins import build_registry, register_plugin
from gankit.recipe import recipe_from_dict
from gankit.registry import Params, Provider
from gankit.testing import tiny_recipe
from gankit.training import resume, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def records_of(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def event_tags(folder: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


def test_tensorboard_logger_writes_scalars_metrics_and_sample_grids(tmp_path: Path) -> None:
    recipe = tiny_recipe(
        "images", loggers=["tensorboard"],
        metrics=[{"type": "sliced-wasserstein", "samples": 16, "projections": 4}],
        tricks=[{"type": "ema", "decay": 0.9}],
        run={"sample_every": 2, "metrics_every": 2, "steps": 4},
    )
    run = tmp_path / "run"
    train(recipe_from_dict(recipe), run, quiet=True)
    events = event_tags(run / "logs" / "tensorboard")
    tags = events.Tags()
    assert {"train/d_loss", "train/g_loss", "train/lr_g", "train/lr_d", "train/skips",
            "metrics/sliced-wasserstein.distance"} <= set(tags["scalars"])
    assert tags["images"] == ["samples"]
    assert [e.step for e in events.Images("samples")] == [0, 2, 4]
    logged = {r["step"]: r["d_loss"] for r in records_of(run) if "d_loss" in r}
    assert {e.step: pytest.approx(e.value) for e in events.Scalars("train/d_loss")} == logged
    assert "recipe/text_summary" in tags["tensors"]


def test_a_resumed_run_keeps_one_tensorboard_history(tmp_path: Path) -> None:
    recipe = recipe_from_dict(tiny_recipe("images", loggers=["tensorboard"], run={"checkpoint_every": 2}))
    run = tmp_path / "run"
    train(recipe, run, steps=2, quiet=True)
    resume(run, steps=4, quiet=True)
    steps = [e.step for e in event_tags(run / "logs" / "tensorboard").Scalars("train/g_loss")]
    assert steps == [1, 2, 3, 4]


class _Seen:
    """What the recording logger received, shared by every instance."""

    records: ClassVar[list[dict[str, Any]]] = []
    images: ClassVar[list[tuple[int, str, tuple[int, ...]]]] = []
    closed: ClassVar[int] = 0
    built_with: ClassVar[dict[str, Any]] = {}


class _FlakyParams(Params):
    fail: str = Field("never", description="never, build, log or image")


class _Flaky:
    """A logger that records what it gets, or raises where told to."""

    def __init__(self, params: _FlakyParams, **context: Any) -> None:
        if params.fail == "build":
            raise ImportError("no module named 'dashboard'")
        self.fail = params.fail
        _Seen.built_with = context

    def log(self, record: dict[str, Any]) -> None:
        if self.fail == "log":
            raise OSError(28, "No space left on device")
        _Seen.records.append(record)

    def image(self, step: int, name: str, picture: np.ndarray) -> None:
        if self.fail == "image":
            raise RuntimeError("lost connection")
        _Seen.images.append((step, name, picture.shape))

    def close(self) -> None:
        _Seen.closed += 1


class _LoggerPlugin:
    @gankit.hookimpl
    def gankit_register_parts(self, register: Any) -> None:
        register("logger", "flaky.logger", _Flaky, _FlakyParams)


@pytest.fixture
def registry() -> Any:
    registry, _ = build_registry(third_party=False)
    register_plugin(registry, _LoggerPlugin(), Provider("flaky-test", "1", "flaky"))
    _Seen.records.clear()
    _Seen.images.clear()
    _Seen.closed = 0
    return registry


def test_a_logger_gets_every_record_every_grid_and_the_metrics(tmp_path: Path, registry: Any) -> None:
    recipe = tiny_recipe(
        "images", loggers=["flaky.logger"], balance={"type": "discriminator-skip", "threshold": 10.0},
        metrics=[{"type": "sliced-wasserstein", "samples": 16, "projections": 4}],
        run={"sample_every": 2, "metrics_every": 2, "steps": 4},
    )
    run = tmp_path / "run"
    train(recipe_from_dict(recipe, registry=registry), run, quiet=True)
    assert _Seen.records == records_of(run)
    assert {r.get("event") for r in _Seen.records} == {None, "skip", "metrics"}
    assert _Seen.images == [(0, "samples", (22, 22, 1)), (2, "samples", (22, 22, 1)), (4, "samples", (22, 22, 1))]
    assert _Seen.closed == 1
    assert _Seen.built_with["run_dir"] == run
    assert _Seen.built_with["log_dir"] == run / "logs" / "flaky.logger"
    assert _Seen.built_with["start_step"] == 0
    assert _Seen.built_with["recipe"].name == "recipe"


@pytest.mark.parametrize(("fail", "said"), [
    ("build", "could not start: no module named 'dashboard'"),
    ("log", "log() raised OSError: [Errno 28] No space left on device"),
    ("image", "image() raised RuntimeError: lost connection"),
])
def test_a_failing_logger_warns_once_and_training_goes_on(
    tmp_path: Path, registry: Any, fail: str, said: str
) -> None:
    recipe = tiny_recipe("images", loggers=[{"type": "flaky.logger", "fail": fail}],
                         run={"sample_every": 1, "steps": 3})
    run = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(recipe_from_dict(recipe, registry=registry), run, quiet=True)
    assert result.step == 3
    ours = [str(w.message) for w in caught
            if issubclass(w.category, GankitWarning) and "flaky.logger" in str(w.message)]
    assert len(ours) == 1, ours
    assert said in ours[0] and "metrics.jsonl keeps every record" in ours[0]
    assert [r["step"] for r in records_of(run)] == [1, 2, 3]
    assert (run / "generator.safetensors").is_file()
    if fail == "image":  # the grid of step 0 comes first: the logger is off before any record
        assert _Seen.records == []
        assert _Seen.closed == 1


def test_the_tensorboard_logger_is_a_registered_part_with_documented_parameters() -> None:
    part = gankit.get_registry().get("logger", "tensorboard")
    assert set(part.params.model_fields) == {"images", "flush_secs"}
    assert "TensorBoard" in part.summary
