"""Mode-collapse benchmark (issue 6): gankit's recipes on PacGAN's 2-D ring and grid, and on stacked digits.

Run it from the repository root::

    python tests/benchmarks/mode_collapse.py --seeds 5                 # everything, one seed after another
    python tests/benchmarks/mode_collapse.py --seeds 5 --jobs 8 --threads 2 --markdown table.md

For every suite (``ring``, ``grid``, ``stacked``), every recipe of the suite
and every seed it trains the recipe (``run.seed`` = the seed), then scores
the generator it keeps: ``checkpoints/best.safetensors`` when the recipe
keeps a best checkpoint (``run.best_metric``), else the final (moving
average) generator. Scoring uses a *fresh* latent batch (seed + 10,000), not
the one the best checkpoint was chosen on. The 2-D suites report PacGAN's
numbers (modes captured, percentage of high-quality samples, reverse KL),
stacked digits the Stacked-MNIST ones (modes of 1,000, KL to uniform).
Wall-clock and CPU time per seed cover the whole run (training, the metrics
computed during training, and checkpoints).

The markdown it prints (and writes with ``--markdown``) puts the results next
to PacGAN's Table 1 (Lin et al. 2018) and states the targets of issue 6.
This script is not part of the test suite (pytest does not collect it).
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

#: The recipes of each suite, in table order: label → shipped recipe name or file.
SUITES: dict[str, dict[str, str]] = {
    "ring": {"GAN (ring-gan)": "ring-gan", "gankit best (ring-best)": "ring-best"},
    "grid": {"GAN (grid-gan)": "grid-gan", "gankit best (grid-best)": "grid-best"},
    "stacked": {"gankit best (stacked-digits-best)": "stacked-digits-best"},
}

#: PacGAN, Table 1 (Lin et al. 2018): modes, high-quality %, reverse KL (means over their trials).
PACGAN_TABLE_1: dict[str, list[tuple[str, float, float, float]]] = {
    "ring": [("GAN (PacGAN Table 1)", 6.3, 98.2, 0.45), ("PacGAN2 (PacGAN Table 1)", 7.9, 95.6, 0.07)],
    "grid": [("GAN (PacGAN Table 1)", 17.3, 94.8, 0.70), ("PacGAN4 (PacGAN Table 1)", 24.8, 93.6, 0.04)],
}

#: Issue 6's targets for the shipped best recipes, per seed.
TARGETS = {
    "ring": {"modes": 8, "high_quality": 0.97, "reverse_kl": 0.05, "seconds": 300.0},
    "grid": {"modes": 25, "high_quality": 0.95, "reverse_kl": 0.05, "seconds": 300.0},
    "stacked": {"modes": 1000, "kl": 0.1},
}


@dataclass
class Job:
    """One training run of the benchmark."""

    suite: str
    label: str
    recipe: str
    seed: int
    threads: int
    out: str
    overrides: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What one run gave: the scores of the kept generator, where it came from, and the time it took."""

    suite: str
    label: str
    recipe: str
    seed: int
    scores: dict[str, float]
    kept: str
    steps: int
    wall_s: float
    cpu_s: float
    error: str = ""


def run_job(job: Job) -> Outcome:
    """Train one recipe with one seed and score the generator it keeps (runs in a worker process)."""
    import torch

    if job.threads:
        torch.set_num_threads(job.threads)
    from gankit.plugins import get_registry
    from gankit.recipe import load_recipe
    from gankit.training import Trainer, load_generator

    out = Path(job.out)
    try:
        threads = "'auto'" if job.threads == 0 else str(job.threads)
        recipe = load_recipe(job.recipe, [f"run.seed={job.seed}", "run.device='cpu'", f"run.threads={threads}",
                                          *job.overrides])
        wall, cpu = time.perf_counter(), time.process_time()
        trainer = Trainer(recipe, out, quiet=True)
        result = trainer.fit()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best = out / "checkpoints" / "best.safetensors"
        kept = "best" if best.is_file() else "final"
        loaded = load_generator(best if best.is_file() else out / "generator.safetensors")
        metric_name = "stacked-digits" if job.suite == "stacked" else "modes"
        metric = get_registry().get("metric", metric_name).build({})
        scores = metric(loaded.generator, trainer.data, device="cpu", seed=job.seed + EVAL_SEED_OFFSET)
        return Outcome(job.suite, job.label, job.recipe, job.seed, scores, f"{kept} (step {loaded.step})",
                       result.step, wall, cpu)
    except Exception as error:  # one failed run must not lose the others
        failure = f"{type(error).__name__}: {error}"
        return Outcome(job.suite, job.label, job.recipe, job.seed, {}, "", 0, 0.0, 0.0, failure)


def meets_target(outcome: Outcome) -> bool:
    """Whether one run reached issue 6's targets for its suite."""
    target, s = TARGETS[outcome.suite], outcome.scores
    if not s:
        return False
    if outcome.suite == "stacked":
        return s["modes"] >= target["modes"] and s["kl"] <= target["kl"]
    return (s["modes"] >= target["modes"] and s["high_quality"] >= target["high_quality"]
            and s["reverse_kl"] <= target["reverse_kl"] and outcome.wall_s <= target["seconds"])


def _mean_std(values: Sequence[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    return f"{mean:.3g} ± {statistics.stdev(values):.2g}" if len(values) > 1 else f"{mean:.3g}"


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def markdown(outcomes: Sequence[Outcome], machine: str) -> str:
    """The results as markdown: a summary per suite next to PacGAN's Table 1, then every seed."""
    lines: list[str] = []
    for suite in SUITES:
        rows = [o for o in outcomes if o.suite == suite]
        if not rows:
            continue
        labels = list(dict.fromkeys(o.label for o in rows))
        if suite == "stacked":
            lines += [f"### Stacked digits (1000 modes; target: all modes, KL ≤ {TARGETS['stacked']['kl']})", "",
                      "| recipe | seeds | modes | KL | classifier accuracy | wall s / seed | target met |",
                      "|---|---|---|---|---|---|---|"]
            for label in labels:
                ok = [o for o in rows if o.label == label and not o.error]
                lines.append(
                    f"| {label} | {len(ok)} | {_mean_std([o.scores['modes'] for o in ok])} | "
                    f"{_mean_std([o.scores['kl'] for o in ok])} | "
                    f"{_mean_std([100 * o.scores['classifier_accuracy'] for o in ok])} % | "
                    f"{_mean_std([o.wall_s for o in ok])} | {sum(meets_target(o) for o in ok)}/{len(ok)} |"
                )
        else:
            t = TARGETS[suite]
            k = int(t["modes"])
            title = (f"### {suite.capitalize()} ({k} modes; target per seed: {k} modes, "
                     f"≥ {100 * t['high_quality']:.0f} % high quality, reverse KL ≤ {t['reverse_kl']}, "
                     f"≤ {t['seconds']:.0f} s)")
            lines += [title, "",
                      "| recipe | seeds | modes | high quality % | reverse KL | wall s / seed (max) | target met |",
                      "|---|---|---|---|---|---|---|"]
            for label in labels:
                ok = [o for o in rows if o.label == label and not o.error]
                walls = [o.wall_s for o in ok]
                lines.append(
                    f"| {label} | {len(ok)} | {_mean_std([o.scores['modes'] for o in ok])} | "
                    f"{_mean_std([100 * o.scores['high_quality'] for o in ok])} | "
                    f"{_mean_std([o.scores['reverse_kl'] for o in ok])} | "
                    f"{_mean_std(walls)} ({max(walls, default=0):.0f}) | {sum(meets_target(o) for o in ok)}/{len(ok)} |"
                )
            for label, modes, hq, kl in PACGAN_TABLE_1[suite]:
                lines.append(f"| {label} | - | {modes} | {hq} | {kl} | - | - |")
        lines.append("")
    lines += ["Every seed:", "", "| suite | recipe | seed | kept generator | modes | high quality % / KL | "
              "reverse KL | wall s | CPU s |", "|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        if o.error:
            lines.append(f"| {o.suite} | {o.label} | {o.seed} | failed: {o.error} | | | | | |")
            continue
        s = o.scores
        quality = _fmt(100 * s["high_quality"], 1) if "high_quality" in s else f"KL {_fmt(s['kl'])}"
        reverse = _fmt(s["reverse_kl"]) if "reverse_kl" in s else "-"
        lines.append(f"| {o.suite} | {o.label} | {o.seed} | {o.kept} | {s['modes']:.0f} | {quality} | {reverse} | "
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
        f"Machine: {model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}. Runs: {jobs} at a time, "
        f"{threads} torch thread(s) each; 1-minute load average at the end: {load:.1f}."
    )


def plan(suites: Sequence[str], seeds: Sequence[int], threads: int, root: Path, extra: dict[str, dict[str, str]],
         overrides: Sequence[str], only_added: bool = False) -> list[Job]:
    """Every job of the benchmark, longest suites first."""
    jobs = []
    for suite in suites:
        recipes = {**({} if only_added else SUITES[suite]), **extra.get(suite, {})}
        for label, recipe in recipes.items():
            for seed in seeds:
                name = "".join(c if c.isalnum() else "-" for c in label).strip("-")
                jobs.append(Job(suite, label, recipe, seed, threads, str(root / suite / f"{name}-seed{seed}"),
                                list(overrides)))
    order = {"stacked": 0, "grid": 1, "ring": 2}
    added = {label for recipes in extra.values() for label in recipes}
    return sorted(jobs, key=lambda j: (j.label not in added, order[j.suite]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per recipe: 0, 1, ... (default 5)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start the seeds here, e.g. --first-seed 3 --seeds 2 runs seeds 3 and 4")
    parser.add_argument("--suites", default="ring,grid,stacked", help="comma-separated: ring, grid, stacked")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, each in its own process (default 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads per run (default 2; 0: auto)")
    parser.add_argument("--recipe", action="append", default=[], metavar="SUITE:LABEL=RECIPE",
                        help="add a recipe (file or shipped name) to a suite, e.g. ring:mine=my-ring.toml")
    parser.add_argument("--only-added", action="store_true",
                        help="run only the recipes given with --recipe, not the suites' own")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override every recipe, e.g. --set run.steps=200 for a quick smoke run")
    parser.add_argument("--out", help="folder for the runs (default: a temporary folder, removed afterwards)")
    parser.add_argument("--markdown", help="write the markdown table to this file")
    parser.add_argument("--json", help="write every run's numbers to this JSON file")
    args = parser.parse_args(argv)

    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    unknown = [s for s in suites if s not in SUITES]
    if unknown or args.seeds < 1 or args.first_seed < 0 or args.jobs < 1 or args.threads < 1:
        parser.error(f"bad --suites {unknown} or non-positive --seeds/--jobs/--threads")
    extra: dict[str, dict[str, str]] = {}
    for text in args.recipe:
        suite, _, rest = text.partition(":")
        label, _, recipe = rest.partition("=")
        if suite not in SUITES or not label or not recipe:
            parser.error(f"--recipe {text!r}: write it as SUITE:LABEL=RECIPE")
        extra.setdefault(suite, {})[label] = recipe

    with tempfile.TemporaryDirectory(prefix="gankit-mode-collapse-") as scratch:
        root = Path(args.out) if args.out else Path(scratch)
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        jobs = plan(suites, seeds, args.threads, root, extra, args.overrides, args.only_added)
        outcomes: list[Outcome] = []
        start = time.perf_counter()
        if args.jobs == 1:
            for job in jobs:
                outcomes.append(run_job(job))
                report_progress(outcomes[-1], start)
        else:
            with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
                for future in as_completed([pool.submit(run_job, job) for job in jobs]):
                    outcomes.append(future.result())
                    report_progress(outcomes[-1], start)
    order = {label: i for i, label in enumerate(dict.fromkeys(j.label for j in jobs))}
    outcomes.sort(key=lambda o: (list(SUITES).index(o.suite), order[o.label], o.seed))
    text = markdown(outcomes, describe_machine(args.jobs, args.threads))
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(o) for o in outcomes], indent=1), encoding="utf-8")
    return 1 if any(o.error for o in outcomes) else 0


def report_progress(outcome: Outcome, start: float) -> None:
    """One JSON line per finished run on standard error (so a run cut short still leaves its results)."""
    record = {"elapsed_s": round(time.perf_counter() - start), **asdict(outcome)}
    record["scores"] = {k: round(v, 5) for k, v in outcome.scores.items()}
    record["wall_s"], record["cpu_s"] = round(outcome.wall_s, 1), round(outcome.cpu_s, 1)
    print(json.dumps(record), file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
