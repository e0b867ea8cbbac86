"""Shared fixtures: a fresh registry of built-in parts, and running gankit in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import torch

# Runs are bit-identical only with a fixed thread count (thread counts change the order of floating-point
# sums): the tests pin it, as a user who wants reproducible runs would. run.threads = "auto" honours an
# explicit OMP_NUM_THREADS; the thread tuner has tests of its own (tests/test_threads.py).
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run a module's tests on one torch thread.

    Their networks are tiny: one thread is as fast, and far faster than two
    on a CPU that other jobs share (OpenMP teams then wait on each other).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def builtin_registry():
    """A new registry holding gankit's built-in parts only (the process-wide one is left alone)."""
    from gankit.plugins import build_registry

    registry, broken = build_registry(third_party=False)
    assert broken == []
    return registry


@pytest.fixture(scope="session")
def gankit_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache folder for the whole session, so the digits classifier is trained once per resolution."""
    path = tmp_path_factory.mktemp("gankit-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("GANKIT_CACHE", str(path))
    yield path
    patch.undo()


RunGankit = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def run_gankit(tmp_path: Path) -> RunGankit:
    """Run ``python -m gankit ARGS`` (or ``python -c CODE``) in a fresh interpreter.

    ``env`` entries are added to (``None`` removes them from) a copy of this
    process's environment; ``GANKIT_DISABLE_PLUGINS`` is cleared unless given. It runs in an
    empty folder unless ``cwd`` is given, so that it imports the installed gankit.
    """

    def run(
        args: Sequence[str] = (),
        *,
        code: str | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: str | Path | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        full_env.pop("GANKIT_DISABLE_PLUGINS", None)
        full_env["COLUMNS"] = "250"
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        command = [sys.executable, "-c", code] if code is not None else [sys.executable, "-m", "gankit"]
        return subprocess.run(
            [*command, *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd or tmp_path,
            timeout=timeout,
            check=False,
        )

    return run
