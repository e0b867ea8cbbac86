"""run.threads = "auto": the tuner keeps the fastest thread count, and changes it when the machine changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gankit.recipe import recipe_from_dict
from gankit.testing import tiny_recipe
from gankit.threads import ThreadTuner, candidate_counts, describe, thread_policy
from gankit.training import Trainer


class Machine:
    """Step times as a function of the thread count, for a machine that is idle or shares its cores."""

    def __init__(self) -> None:
        self.busy = False

    def step_time(self) -> float:
        threads = torch.get_num_threads()
        if self.busy:  # a spinning neighbour: OpenMP teams wait on each other
            return {1: 0.45, 2: 2.0}[threads]
        return {1: 0.50, 2: 0.26}[threads]


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def run(tuner: ThreadTuner, machine: Machine, steps: int) -> list[int]:
    used = []
    for _ in range(steps):
        used.append(torch.get_num_threads())
        tuner.step_done(machine.step_time())
    return used


def test_keeps_the_fastest_and_adapts_to_a_busy_then_quiet_machine(restore_threads: None) -> None:
    machine = Machine()
    choices = []
    tuner = ThreadTuner([1, 2], probe_steps=3, recheck_steps=50, report=choices.append)
    used = run(tuner, machine, 20)
    assert choices[0].threads == 2 and choices[0].reason == "start"
    assert used[-10:] == [2] * 10
    machine.busy = True
    used = run(tuner, machine, 20)
    assert choices[-1].threads == 1 and choices[-1].reason == "steps slowed down"
    assert used[-5:] == [1] * 5
    machine.busy = False  # 1 thread does not slow down when the neighbour leaves: a periodic re-check finds 2
    used = run(tuner, machine, 80)
    assert choices[-1].threads == 2 and choices[-1].reason == "periodic re-check"
    assert used[-5:] == [2] * 5
    assert describe(choices[-1]) == "threads: 2 (1: 500 ms, 2: 260 ms per step; periodic re-check)"


def test_steps_slower_than_the_probe_from_the_start_are_no_slowdown(restore_threads: None) -> None:
    """Steps that log or sample cost more than the probed ones; on an idle machine that is not a reason to re-probe."""
    times = iter([0.50] * 4 + [0.26] * 4 + [0.36] * 200)  # probe 1, probe 2, then steady steps 40 % above the probe
    choices = []
    tuner = ThreadTuner([1, 2], probe_steps=3, recheck_steps=10_000, report=choices.append)
    for _ in range(150):
        tuner.step_done(next(times))
    assert [c.reason for c in choices] == ["start"] and choices[0].threads == 2
    for _ in range(12):  # a real slowdown, well beyond the steady steps, still is (and the probe is reported)
        tuner.step_done(0.9)
    assert choices[-1].reason == "steps slowed down"


def test_probing_costs_little_on_a_busy_machine(restore_threads: None) -> None:
    machine = Machine()
    machine.busy = True
    tuner = ThreadTuner([1, 2], probe_steps=3, recheck_steps=200)
    total = 0.0
    for _ in range(2000):
        t = machine.step_time()
        total += t
        tuner.step_done(t)
    best_fixed = 2000 * 0.45
    assert total / best_fixed < 1.2  # within 20 % of the best fixed setting, probes and re-checks included


def test_candidates_and_explicit_settings(restore_threads: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gankit.threads.available_cores", lambda: 12)
    assert candidate_counts(12) == [1, 2, 4, 8, 12]
    assert candidate_counts(2) == [1, 2]
    assert candidate_counts(1) == [1]
    cpu = torch.device("cpu")
    assert thread_policy(3, cpu) is None and torch.get_num_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert thread_policy("auto", cpu) is None and torch.get_num_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert isinstance(thread_policy("auto", cpu), ThreadTuner)


def test_auto_threads_in_a_run_are_reported(tmp_path: Path, restore_threads: None,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("gankit.threads.available_cores", lambda: 2)
    recipe = recipe_from_dict(tiny_recipe(run={"threads": "auto", "steps": 12}))
    Trainer(recipe, tmp_path / "run", quiet=True).fit()
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    chosen = [e for e in events if e.get("event") == "threads"]
    assert chosen and chosen[0]["reason"] == "start" and chosen[0]["step"] == 8  # 2 x (1 warm-up + 3 timed)
    assert chosen[0]["threads"] in (1, 2)
    assert set(chosen[0]["seconds"]) == {"1", "2"}


def test_fixed_threads_are_validated() -> None:
    from gankit.errors import GankitError

    with pytest.raises(GankitError, match="threads"):
        recipe_from_dict(tiny_recipe(run={"threads": 0}))
    with pytest.raises(GankitError, match="threads"):
        recipe_from_dict(tiny_recipe(run={"threads": "many"}))


def test_stylize_tunes_its_threads_too(restore_threads: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from gankit.style.loop import stylize

    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("gankit.threads.available_cores", lambda: 2)
    content = torch.rand(1, 3, 32, 32)
    lines: list[str] = []
    result = stylize(content, content, "style-transfer-offline", size=32, steps=12, multi_scale=1, quiet=False,
                     stream=_Lines(lines))
    assert result.image.shape == (1, 3, 32, 32)
    assert any(line.startswith("threads: ") and "start" in line for line in lines), lines


class _Lines:
    """A text stream that keeps the lines written to it."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write(self, text: str) -> int:
        self.lines.extend(line.strip() for line in text.splitlines() if line.strip())
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
