"""The report a person reads: one plot per logged number and per metric, real data behind 2-D samples, a browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import gankit
from gankit.cli import main
from gankit.plugins import build_registry, register_plugin
from gankit.recipe import recipe_from_dict
from gankit.registry import Provider
from gankit.report import Target, metric_target, series_of
from gankit.testing import tiny_recipe
from gankit.training import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    """A ring run with metrics, skips of the discriminator and a decaying learning rate, and its report."""
    recipe = tiny_recipe(
        "points",
        balance={"type": "discriminator-skip", "threshold": 5.0, "max_consecutive": 2},
        schedule={"generator": {"type": "cosine"}, "discriminator": {"type": "constant"}},
        metrics=[{"type": "modes", "samples": 200}, {"type": "sliced-wasserstein", "samples": 64, "projections": 8}],
        run={"steps": 12, "log_every": 2, "sample_every": 4, "metrics_every": 4, "checkpoint_every": 4,
             "samples": 64, "keep_checkpoints": 5},
    )
    folder = tmp_path_factory.mktemp("report") / "ring"
    train(recipe_from_dict(recipe), folder, quiet=True)
    assert main(["report", str(folder)]) == 0
    return folder


def alts(page: str) -> list[str]:
    return re.findall(r'<img alt="([^"]*)"', page)


def test_one_plot_per_metric_with_the_measuring_numbers_in_a_table(ring: Path) -> None:
    page = (ring / "report.html").read_text()
    shown = alts(page)
    for key in ("modes.modes", "modes.high_quality", "modes.reverse_kl", "modes.score",
                "sliced-wasserstein.distance"):
        assert shown.count(key) == 1, key
    for key in ("modes.samples", "modes.total_modes", "sliced-wasserstein.real_baseline"):
        assert key not in shown and f"<th>{key}</th>" in page


def test_training_plots_losses_rates_and_skips(ring: Path) -> None:
    shown = alts((ring / "report.html").read_text())
    assert {"losses", "learning rates", "balance skips"} <= set(shown)


def test_two_dimensional_samples_are_drawn_over_the_real_data(ring: Path) -> None:
    page = (ring / "report.html").read_text()
    assert "Generated points over the real data" in page
    assert [a for a in alts(page) if a.startswith("step ")][:3] == ["step 4", "step 8", "step 12"]


def test_the_report_links_a_video_of_the_sample_grids(ring: Path) -> None:
    page = (ring / "report.html").read_text()
    assert "<a href='samples-over-time.gif'>" in page
    with Image.open(ring / "samples-over-time.gif") as gif:
        assert gif.n_frames == len(list((ring / "samples").glob("step-*.png"))) == 4


def test_metric_targets() -> None:
    record = {"modes.modes": 5.0, "modes.total_modes": 8.0, "modes.samples": 2500.0,
              "stacked-digits.kl": 0.3, "stacked-digits.total_modes": 1000.0, "stacked-digits.samples": 26000.0,
              "sliced-wasserstein.distance": 0.3, "sliced-wasserstein.real_baseline": 0.02}
    assert metric_target("modes.modes", record) == Target(8.0, "all 8 modes")
    assert metric_target("modes.reverse_kl", record) == Target(0.0, "0, every mode equally often")
    assert metric_target("modes.high_quality", record) == Target(1.0, "1")
    assert metric_target("stacked-digits.kl", record) == Target(999 / 52000, "a perfect generator (sampling noise)")
    assert metric_target("sliced-wasserstein.distance", record) == Target(0.02, "real data against real data")
    assert metric_target("fid.fid", {}) == Target(0.0, "0")
    assert metric_target("mine.value", record) is None


def test_series_keep_every_logged_number_on_its_own() -> None:
    records = [
        {"step": 2, "time": 0.1, "d_loss": 1.0, "g_loss": 0.5, "lr_g": 1e-3, "balance": "always", "p": 0.1},
        {"step": 3, "event": "skip", "reason": "low"},
        {"step": 4, "event": "metrics", "modes.modes": 2.0, "modes.total_modes": 8.0},
        {"step": 4, "time": 0.2, "d_loss": 0.9, "g_loss": 0.6, "lr_g": 5e-4, "balance": "always", "p": 0.3},
    ]
    logged, metrics = series_of(records)
    assert set(logged) == {"d_loss", "g_loss", "lr_g", "p"}
    assert logged["p"].steps == [2, 4] and logged["p"].values == [0.1, 0.3]
    assert metrics["modes.modes"].targets == [Target(8.0, "all 8 modes")]


class _Strength:
    """A trick that logs a number, as an adaptive augmentation logs its strength."""

    def __init__(self, params: Any, **context: Any) -> None:
        pass

    def log(self, ctx: Any) -> dict[str, float]:
        return {"augment_p": ctx.step / 10}


class _TrickPlugin:
    @gankit.hookimpl
    def gankit_register_parts(self, register: Any) -> None:
        register("trick", "strength.logged", _Strength)


def test_a_trick_value_gets_its_own_plot(tmp_path: Path) -> None:
    registry, _ = build_registry(third_party=False)
    register_plugin(registry, _TrickPlugin(), Provider("strength-test", "1", "strength"))
    run = tmp_path / "run"
    train(recipe_from_dict(tiny_recipe("images", tricks=["strength.logged"], run={"steps": 3}), registry=registry),
          run, quiet=True)
    assert main(["report", str(run)]) == 0
    assert "augment_p" in alts((run / "report.html").read_text())


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(chromium() is None, reason="needs Chromium (apt-get install chromium); .ci/run installs it")
def test_the_report_renders_in_a_real_browser(ring: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    browser = chromium()
    assert browser is not None
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2400", f"--screenshot={shot}",
         (ring / "report.html").resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)

    def share(colour: tuple[int, int, int]) -> float:
        return float((np.abs(pixels - np.array(colour)).sum(axis=1) < 30).mean())

    assert share((31, 119, 180)) > 1e-4  # matplotlib's first colour: the plots' lines were decoded and drawn
    assert share((255, 127, 14)) > 1e-4  # its second: the generated points over the real data
    assert share((255, 255, 255)) < 0.97  # not a blank page
