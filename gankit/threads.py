"""How many CPU threads torch uses: a fixed number, or ``"auto"``, which measures and adapts while work runs.

On a CPU that other programs share, torch's default (one thread per core)
can be many times slower than one thread: OpenMP threads spin waiting for
each other while the neighbour holds a core. No fixed setting is right both
on an idle and on a busy machine, so ``threads = "auto"`` tries each
candidate count for a few steps of the real work, keeps the fastest, and
tries again when steps slow down, and every so often in case the machine has
become quiet again. Every choice is reported (a line in the progress output
and a record in metrics.jsonl).

Thread counts change the order of floating-point sums, so a run with
``"auto"`` is reproducible only up to rounding; set a fixed ``threads`` for
bit-identical runs.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

AUTO = "auto"


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def candidate_counts(limit: int | None = None) -> list[int]:
    """Thread counts worth trying: 1, then powers of two, then every core (``[1, 2]`` on 2 cores)."""
    top = max(1, min(limit or available_cores(), available_cores()))
    counts = [1]
    while counts[-1] * 2 < top:
        counts.append(counts[-1] * 2)
    if top not in counts:
        counts.append(top)
    return counts


@dataclass
class Choice:
    """One decision of the tuner: the thread count kept, and the median step time of each candidate tried."""

    threads: int
    seconds: dict[int, float]
    reason: str


class ThreadTuner:
    """Picks torch's thread count from measured step times; call :meth:`step_done` after every step.

    It tries each candidate for ``probe_steps`` steps (after one warm-up step
    that is not counted), keeps the fastest, and probes again when the
    median of the last ``probe_steps`` steps is more than ``drift`` times
    the baseline, or after ``recheck_steps`` steps (which
    double each time a re-check keeps the same choice, up to
    ``max_recheck_steps``). The baseline is the slower of the chosen count's
    probed time and the median of the first ``probe_steps`` steps after the
    choice: steps that log, sample or checkpoint take longer than the probed
    ones, and would otherwise look like a slowdown on an idle machine.
    ``report`` is called with every choice.
    """

    def __init__(
        self,
        candidates: Sequence[int],
        *,
        probe_steps: int = 3,
        drift: float = 1.3,
        recheck_steps: int = 200,
        max_recheck_steps: int = 3200,
        report: Callable[[Choice], None] | None = None,
    ) -> None:
        self.candidates = sorted(set(candidates))
        self.probe_steps = probe_steps
        self.drift = drift
        self.first_recheck = self.recheck_steps = recheck_steps
        self.max_recheck_steps = max_recheck_steps
        self.report = report
        self.choice: Choice | None = None
        self.threads = self.candidates[0]
        self._pending: list[int] | None = None  # candidates still to probe; None when settled
        self._times: dict[int, list[float]] = {}
        self._warm = False
        self._reason = "start"
        self._since_choice = 0
        self._recent: list[float] = []
        self._baseline: float | None = None
        if len(self.candidates) == 1:
            self._use(self.candidates[0])
            self.choice = Choice(self.threads, {}, "the only candidate")
        else:
            self._start_probe("start")

    def _use(self, threads: int) -> None:
        self.threads = threads
        self._warm = False
        torch.set_num_threads(threads)

    def _start_probe(self, why: str) -> None:
        self._reason = why
        self._times = {}
        self._pending = list(self.candidates)
        self._use(self._pending.pop(0))

    def step_done(self, seconds: float) -> None:
        """Record the wall time of the step just finished; change the thread count when it is time to."""
        if self._pending is not None:
            self._probe_step(seconds)
        elif self.choice is not None and self.choice.seconds:
            self._watch(seconds)

    def _probe_step(self, seconds: float) -> None:
        if not self._warm:
            self._warm = True  # the first step after a switch pays for starting threads: not counted
            return
        times = self._times.setdefault(self.threads, [])
        times.append(seconds)
        if len(times) < self.probe_steps:
            return
        assert self._pending is not None
        if self._pending:
            self._use(self._pending.pop(0))
            return
        medians = {n: statistics.median(t) for n, t in self._times.items()}
        best = min(medians, key=lambda n: (medians[n], n))
        if self._reason == "periodic re-check":
            kept = self.choice is not None and self.choice.threads == best
            self.recheck_steps = min(self.max_recheck_steps, self.recheck_steps * 2) if kept else self.first_recheck
        self.choice = Choice(best, medians, self._reason)
        self._pending = None
        self._since_choice = 0
        self._recent = []
        self._baseline = None
        if best != self.threads:
            self._use(best)
        if self.report is not None:
            self.report(self.choice)

    def _watch(self, seconds: float) -> None:
        assert self.choice is not None
        if not self._warm:
            self._warm = True
            return
        self._since_choice += 1
        self._recent = [*self._recent[-(self.probe_steps - 1):], seconds] if self.probe_steps > 1 else [seconds]
        if len(self._recent) < self.probe_steps:
            return
        if self._baseline is None:
            self._baseline = max(self.choice.seconds[self.choice.threads], statistics.median(self._recent))
        elif statistics.median(self._recent) > self.drift * self._baseline:
            self._start_probe("steps slowed down")
        elif self._since_choice >= self.recheck_steps:
            self._start_probe("periodic re-check")


def describe(choice: Choice) -> str:
    """``threads: 1 (1: 0.41 s, 2: 1.9 s per step; start)``."""
    times = ", ".join(f"{n}: {_seconds(t)}" for n, t in sorted(choice.seconds.items()))
    return f"threads: {choice.threads} ({times} per step; {choice.reason})"


def _seconds(value: float) -> str:
    return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"


def explicit_omp_threads() -> int | None:
    """The thread count the environment asks for (``OMP_NUM_THREADS``), when it is a positive number."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def thread_policy(setting: int | str | None, device: torch.device,
                  report: Callable[[Choice], None] | None = None) -> ThreadTuner | None:
    """Apply a ``threads`` setting; returns the tuner to feed step times to, for ``"auto"`` on a CPU.

    A number is applied as is; None leaves torch's default; ``"auto"`` on a
    CPU starts a :class:`ThreadTuner` (unless ``OMP_NUM_THREADS`` is set,
    which is then applied as is). On an accelerator the CPU threads hardly
    matter and ``"auto"`` leaves torch's default.
    """
    if setting is None:
        return None
    if isinstance(setting, int):
        torch.set_num_threads(setting)
        return None
    fixed = explicit_omp_threads()
    if fixed is not None:
        torch.set_num_threads(fixed)
        return None
    if device.type != "cpu":
        return None
    return ThreadTuner(candidate_counts(), report=report)
