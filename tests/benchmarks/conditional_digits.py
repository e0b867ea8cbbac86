"""Class-conditional benchmark (issue 15): ``cdcgan-digits`` against ``dcgan-digits``, quality and speed.

Run it from the repository root::

    python tests/benchmarks/conditional_digits.py --seeds 3 --threads 2                # one run at a time
    python tests/benchmarks/conditional_digits.py --seeds 3 --jobs 3 --threads 1 --no-speed --markdown q.md
    python tests/benchmarks/conditional_digits.py --speed-only --threads 2             # the speed comparison alone

For every seed it trains ``cdcgan-digits`` and ``dcgan-digits`` at their shipped
length (``run.seed`` = the seed, ``run.threads`` fixed), then scores the
final (moving-average) generators on a *fresh* latent batch (seed + 10,000):

- ``cdcgan-digits``: ``class-accuracy`` (``--per-class`` samples of every class,
  1,000 by default, read by gankit's digits classifier; issue 15's target is
  at least 98 %), ``intra-fid`` (``--per-class`` samples of every class against
  that class's real digits) and ``fid`` (``--fid-n`` samples against all
  1,797 real digits);
- ``dcgan-digits``: ``fid`` the same way, the unconditional reference.

FID and intra-FID use gankit's digits features; intra-FID compares about 180
real images per class, FID all 1,797, so the two are biased differently (FID
falls with the sample count): compare intra-FID between conditional runs, and
each recipe's ``fid`` with the other's.

Speed: issue 15 asks for the target in no more wall time than ``dcgan-digits``.
Both recipes run the same number of steps, so the comparison is their time
per step. It is measured side by side in one process (``--speed-steps`` steps
of each, in alternating chunks of ten, after a warm-up, at ``--threads``),
so that other work on the machine weighs on both alike; the ratio of the
median chunk times is reported. The wall and CPU time of every training run
are reported too, but they are only comparable when the runs had the machine
to themselves (``--jobs 1`` on a quiet machine).

Runs at a fixed thread count are bit-identical whatever else the machine
does, so the quality numbers do not depend on load: the seeds can run in
parallel (``--jobs 3 --threads 1``) and give the same numbers as one after
another. This script is not part of the test suite (pytest does not collect it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

#: Latent seeds for scoring are the run's seed plus this, so they differ from the seeds used while training.
EVAL_SEED_OFFSET = 10_000
CONDITIONAL = "cdcgan-digits"
UNCONDITIONAL = "dcgan-digits"
#: Issue 15's target: class accuracy of the conditional recipe, per seed.
TARGET_ACCURACY = 0.98
#: ... in no more wall time than the unconditional recipe: time per step of cdcgan / dcgan.
TARGET_TIME_RATIO = 1.0


@dataclass
class Job:
    """One training run of the benchmark."""

    recipe: str
    seed: int
    threads: int
    out: str
    per_class: int
    fid_n: int
    overrides: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """One run's scores and the time its training took."""

    recipe: str
    seed: int
    scores: dict[str, float]
    steps: int
    wall_s: float
    cpu_s: float
    error: str = ""


def _score(name: str, params: dict[str, object], generator: object, data: object, seed: int) -> dict[str, float]:
    from gankit.plugins import get_registry

    metric = get_registry().get("metric", name).build(params)
    return metric(generator, data, device="cpu", seed=seed)


def run_job(job: Job) -> Outcome:
    """Train one recipe with one seed and score its final generator (runs in a worker process)."""
    import torch

    torch.set_num_threads(job.threads)
    from gankit.recipe import load_recipe
    from gankit.training import Trainer, load_generator

    out = Path(job.out)
    try:
        recipe = load_recipe(job.recipe, [f"run.seed={job.seed}", "run.device='cpu'", f"run.threads={job.threads}",
                                          *job.overrides])
        wall, cpu = time.perf_counter(), time.process_time()
        trainer = Trainer(recipe, out, quiet=True)
        result = trainer.fit()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        loaded = load_generator(out / "generator.safetensors")
        seed = job.seed + EVAL_SEED_OFFSET
        fid = _score("fid", {"n_fake": job.fid_n}, loaded.generator, trainer.data, seed)
        scores = {"fid": fid["fid"]}
        if loaded.num_classes:
            accuracy = _score("class-accuracy", {"samples": job.per_class}, loaded.generator, trainer.data, seed)
            intra = _score("intra-fid", {"n_fake": job.per_class}, loaded.generator, trainer.data, seed)
            scores.update({f"class_accuracy.{k}": v for k, v in accuracy.items()})
            scores.update({f"intra_fid.{k}": v for k, v in intra.items()})
        return Outcome(job.recipe, job.seed, scores, result.step, wall, cpu)
    except Exception as error:  # one failed run must not lose the others
        return Outcome(job.recipe, job.seed, {}, 0, 0.0, 0.0, f"{type(error).__name__}: {error}")


@dataclass
class Speed:
    """Time per training step of both recipes, measured side by side."""

    conditional_ms: float
    unconditional_ms: float
    steps: int
    threads: int

    @property
    def ratio(self) -> float:
        return self.conditional_ms / self.unconditional_ms


def measure_speed(steps: int, threads: int, overrides: Sequence[str], root: Path, chunk: int = 10) -> Speed:
    """Train both recipes in this process, ``chunk`` steps of one then of the other, and compare their medians."""
    import torch

    torch.set_num_threads(threads)
    from gankit.recipe import load_recipe
    from gankit.training import Trainer

    trainers = {}
    for name in (CONDITIONAL, UNCONDITIONAL):
        recipe = load_recipe(name, ["run.device='cpu'", f"run.threads={threads}", *overrides])
        trainers[name] = Trainer(recipe, root / f"speed-{name}", quiet=True)
        for _ in range(min(chunk, steps)):  # warm-up: first calls allocate and pick kernels
            trainers[name].train_step()
    times: dict[str, list[float]] = {name: [] for name in trainers}
    order = list(trainers)
    for round_ in range(max(1, steps // chunk)):
        for name in order if round_ % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            for _ in range(chunk):
                trainers[name].train_step()
            times[name].append((time.perf_counter() - start) / chunk)
    return Speed(1000 * statistics.median(times[CONDITIONAL]), 1000 * statistics.median(times[UNCONDITIONAL]),
                 steps, threads)


def _mean_std(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> str:
    values = [scale * v for v in values if math.isfinite(v)]
    if not values:
        return "-"
    mean = statistics.fmean(values)
    return f"{mean:.{digits}g} ± {statistics.stdev(values):.2g}" if len(values) > 1 else f"{mean:.{digits}g}"


def markdown(outcomes: Sequence[Outcome], speed: Speed | None, machine: str, per_class: int, fid_n: int) -> str:
    """The results as markdown: a summary against issue 15's targets, then every seed."""
    cond = [o for o in outcomes if o.recipe == CONDITIONAL and not o.error]
    uncond = [o for o in outcomes if o.recipe == UNCONDITIONAL and not o.error]
    met = sum(o.scores["class_accuracy.accuracy"] >= TARGET_ACCURACY for o in cond)
    lines = [
        f"### `{CONDITIONAL}` against `{UNCONDITIONAL}` (target: class accuracy ≥ {100 * TARGET_ACCURACY:.0f} % "
        f"per seed, time per step ≤ {TARGET_TIME_RATIO:g} times {UNCONDITIONAL}'s)", "",
        "| measure | result | target |", "|---|---|---|",
        f"| class accuracy, {per_class:,} samples per class, digits classifier ({len(cond)} seeds) | "
        f"**{_mean_std([o.scores['class_accuracy.accuracy'] for o in cond], 100)} %** ({met}/{len(cond)} seeds "
        f"met) | ≥ {100 * TARGET_ACCURACY:.0f} % |",
        f"| weakest class | {_mean_std([o.scores['class_accuracy.worst'] for o in cond], 100)} % | |",
        f"| classifier on held-out real digits | "
        f"{_mean_std([o.scores['class_accuracy.classifier_accuracy'] for o in cond], 100)} % | |",
        f"| intra-class FID, {per_class:,} per class (digits features) | "
        f"{_mean_std([o.scores['intra_fid.intra_fid'] for o in cond])} (worst class "
        f"{_mean_std([o.scores['intra_fid.worst'] for o in cond])}) | |",
        f"| FID {fid_n:,} samples: {CONDITIONAL} | {_mean_std([o.scores['fid'] for o in cond])} | |",
        f"| FID {fid_n:,} samples: {UNCONDITIONAL} | {_mean_std([o.scores['fid'] for o in uncond])} | |",
    ]
    if speed is not None:
        ok = "✅" if speed.ratio <= TARGET_TIME_RATIO else "❌"
        lines.append(
            f"| time per step, side by side ({speed.steps} steps each, {speed.threads} thread(s)): {CONDITIONAL} / "
            f"{UNCONDITIONAL} | **{speed.ratio:.3f}** ({speed.conditional_ms:.1f} / {speed.unconditional_ms:.1f} ms; "
            f"{1000 / speed.conditional_ms:.2f} / {1000 / speed.unconditional_ms:.2f} steps/s) | "
            f"≤ {TARGET_TIME_RATIO:g} {ok} |"
        )
    lines += ["", "Every run (wall and CPU time of the whole training run, metrics excluded):", "",
              "| recipe | seed | steps | class accuracy % | worst class % | intra-FID | FID | wall s | CPU s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        if o.error:
            lines.append(f"| {o.recipe} | {o.seed} | failed: {o.error} | | | | | | |")
            continue
        s = o.scores
        acc = f"{100 * s['class_accuracy.accuracy']:.2f}" if "class_accuracy.accuracy" in s else "-"
        worst = f"{100 * s['class_accuracy.worst']:.1f}" if "class_accuracy.worst" in s else "-"
        intra = f"{s['intra_fid.intra_fid']:.2f}" if "intra_fid.intra_fid" in s else "-"
        lines.append(f"| {o.recipe} | {o.seed} | {o.steps} | {acc} | {worst} | {intra} | {s['fid']:.2f} | "
                     f"{o.wall_s:.0f} | {o.cpu_s:.0f} |")
    lines += ["", machine]
    return "\n".join(lines) + "\n"


def describe_machine(jobs: int, threads: int) -> str:
    """The machine, as markdown: CPU, core count, torch version, how runs shared it, and the load."""
    import torch

    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
    except OSError:
        model = platform.processor() or "?"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"Machine: {model}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, torch "
        f"{torch.__version__}. Runs: {jobs} at a time, {threads} torch thread(s) each; 1-minute load average at "
        f"the end: {load:.1f}."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per recipe: 0, 1, ... (default 3)")
    parser.add_argument("--jobs", type=int, default=1, help="training runs at a time, each in its own process")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads per run (default 2)")
    parser.add_argument("--per-class", type=int, default=1000,
                        help="generated samples per class for class-accuracy and intra-fid (default 1000)")
    parser.add_argument("--fid-n", type=int, default=10_000, help="generated samples for fid (default 10000)")
    parser.add_argument("--speed-steps", type=int, default=200,
                        help="steps of each recipe timed side by side (default 200; 0 or --no-speed: none)")
    parser.add_argument("--recipes", nargs="+", default=[CONDITIONAL, UNCONDITIONAL],
                        choices=[CONDITIONAL, UNCONDITIONAL], help="which recipes to train (default both)")
    parser.add_argument("--no-speed", action="store_true", help="skip the side-by-side speed comparison")
    parser.add_argument("--speed-only", action="store_true", help="only the speed comparison, no training runs")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override both recipes, e.g. --set run.steps=20 for a quick smoke run")
    parser.add_argument("--out", help="folder for the runs (default: a temporary folder, removed afterwards)")
    parser.add_argument("--markdown", help="write the markdown table to this file")
    parser.add_argument("--json", help="write every run's numbers to this JSON file")
    args = parser.parse_args(argv)
    if min(args.seeds, args.jobs, args.threads, args.per_class) < 1 or args.fid_n < 2 or args.speed_steps < 0:
        parser.error("--seeds, --jobs, --threads and --per-class must be positive, --fid-n at least 2")

    with tempfile.TemporaryDirectory(prefix="gankit-conditional-") as scratch:
        root = Path(args.out) if args.out else Path(scratch)
        jobs = [] if args.speed_only else [
            Job(recipe, seed, args.threads, str(root / f"{recipe}-seed{seed}"), args.per_class, args.fid_n,
                list(args.overrides))
            for seed in range(args.seeds) for recipe in (CONDITIONAL, UNCONDITIONAL)
            if recipe in args.recipes
        ]
        outcomes: list[Outcome] = []
        start = time.perf_counter()
        if args.jobs == 1:
            for job in jobs:
                outcomes.append(run_job(job))
                report_progress(outcomes[-1], start)
        elif jobs:
            with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
                for future in as_completed([pool.submit(run_job, job) for job in jobs]):
                    outcomes.append(future.result())
                    report_progress(outcomes[-1], start)
        speed = None
        if args.speed_steps and not args.no_speed:
            speed = measure_speed(args.speed_steps, args.threads, args.overrides, root)
            print(json.dumps({"speed": asdict(speed), "ratio": round(speed.ratio, 4)}), file=sys.stderr, flush=True)
    outcomes.sort(key=lambda o: (o.recipe != CONDITIONAL, o.seed))
    text = markdown(outcomes, speed, describe_machine(args.jobs, args.threads), args.per_class, args.fid_n)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    if args.json:
        record = {"runs": [asdict(o) for o in outcomes], "speed": asdict(speed) if speed else None}
        Path(args.json).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return 1 if any(o.error for o in outcomes) else 0


def report_progress(outcome: Outcome, start: float) -> None:
    """One JSON line per finished run on standard error (so a run cut short still leaves its results)."""
    record = {"elapsed_s": round(time.perf_counter() - start), **asdict(outcome)}
    record["scores"] = {k: round(v, 5) for k, v in outcome.scores.items() if not k.startswith(("class_accuracy.class_",
                                                                                                 "intra_fid.fid_"))}
    record["wall_s"], record["cpu_s"] = round(outcome.wall_s, 1), round(outcome.cpu_s, 1)
    print(json.dumps(record), file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
