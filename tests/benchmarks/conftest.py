"""Fixtures of the performance suite (issue 8) and its end-of-session report.

Run it with ``make bench`` (``pytest tests/benchmarks --benchmark-only``); a
plain ``pytest`` run skips every test here (``--benchmark-skip`` in the
project's ``addopts``), without running any fixture.

Environment variables:

- ``GANKIT_BENCH_DEVICE``: ``cpu`` (default) or ``cuda``;
- ``GANKIT_BENCH_THREADS``: torch CPU threads for the session (default: torch's choice);
- ``GANKIT_BENCH_OUT``: write the results as JSON to this file;
- ``GANKIT_BENCH_ROUNDS``: scale the number of timed rounds (e.g. ``0.5``);
- ``GANKIT_BENCH_CLOCK``: ``cpu`` or ``wall``, the clock ratios are read from
  (default: process CPU time on a CPU, wall time on a GPU);
- ``GANKIT_BENCH_COMPILE``: ``0`` skips the ``torch.compile`` measurement.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _harness import JPEG_COUNT, JPEG_SIZE, OUT_ENV, bench_device, machine
from _report import REPORT, Report

THREADS_ENV = "GANKIT_BENCH_THREADS"


def _set_threads() -> None:
    threads = os.environ.get(THREADS_ENV)
    if threads:
        import torch

        torch.set_num_threads(int(threads))


@pytest.fixture(scope="session")
def report() -> Report:
    """The session's :class:`Report`; the machine is described when a first benchmark asks for it."""
    _set_threads()
    if not REPORT.machine:
        REPORT.machine = machine()
    return REPORT


@pytest.fixture(scope="session")
def device(report: Report) -> object:
    """The device the benchmarks run on (``GANKIT_BENCH_DEVICE``); skips when CUDA is asked for but absent."""
    import torch

    dev = bench_device()
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("GANKIT_BENCH_DEVICE=cuda but CUDA is not available")
    return dev


@pytest.fixture(scope="session")
def jpeg_folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 2,000 seeded 96x96 JPEGs (colour gradients plus noise), made once and kept in pytest's cache."""
    import numpy as np
    from PIL import Image

    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("gankit-bench-jpegs") if cache is not None else tmp_path_factory.mktemp("jpegs")
    if len(list(folder.glob("*.jpg"))) == JPEG_COUNT:
        return folder
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.0, 1.0, JPEG_SIZE, dtype=np.float32)
    for i in range(JPEG_COUNT):
        colour = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
        mix = (ramp[:, None] if i % 2 else ramp[None, :])[..., None]
        pixels = colour[0] * (1 - mix) + colour[1] * mix + rng.normal(0, 20, (JPEG_SIZE, JPEG_SIZE, 3))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB").save(folder / f"img-{i:04d}.jpg", quality=90)
    return folder


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    """A run folder for trainers (they write nothing unless fitted)."""
    yield tmp_path / "run"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the ``torch.compile`` measurement last: its compile time is long, and a time limit should cut it first."""
    here = Path(__file__).parent
    ours = [item for item in items if here in Path(str(item.fspath)).parents]
    if not ours:
        return
    late = [item for item in ours if "compile" in item.name]
    if late:
        items[:] = [item for item in items if item not in late] + late


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the session's table of results (and write the JSON when ``GANKIT_BENCH_OUT`` is set)."""
    if not REPORT.rows:
        return
    terminalreporter.section("gankit performance (issue 8)")
    described = ", ".join(f"{k}={v}" for k, v in REPORT.machine.items())
    terminalreporter.write_line(described)
    terminalreporter.write_line(REPORT.table())
    out = os.environ.get(OUT_ENV)
    if out:
        path = REPORT.write(out)
        terminalreporter.write_line(f"results written to {path}")
