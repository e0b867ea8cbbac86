"""StyleGAN2, ADA and R3GAN benchmarks (issue 14): quality at equal time, small data, real photographs.

Run from the repository root, on a quiet machine::

    python tests/benchmarks/modern_gans.py calibrate                  # steps/s of each digits recipe
    python tests/benchmarks/modern_gans.py quality --seeds 3 --jobs 1 --out runs/bench-quality
    python tests/benchmarks/modern_gans.py small-data --out runs/bench-small
    python tests/benchmarks/modern_gans.py photos --out runs/bench-photos
    python tests/benchmarks/modern_gans.py all --tiny --out /tmp/check  # every part on tiny settings

``calibrate`` times each digits recipe (after warm-up steps) and prints the
number of steps that takes ``--minutes`` (15) on this machine: put them in
``STEPS`` (or pass ``--steps recipe=N``).

``quality`` trains ``dcgan-digits``, ``stylegan2-digits`` and
``r3gan-digits`` for a fixed number of steps each (``STEPS``: about 15
minutes each on a quiet 2-core machine, so the comparison is at equal wall
time; a fixed number of steps gives the same result under any load, so runs
may go in parallel with ``--jobs``) and scores each final (moving-average)
generator by FID with gankit's digits features: 2,000 samples from a fixed
latent batch against all 1,797 digits. Target: both new recipes beat DCGAN.

``small-data`` trains ``stylegan2-digits`` on 200 digits (a seeded subset,
written as a folder of PNGs) with and without the ``ada`` trick, keeps a
checkpoint every ``--every`` steps and scores each by FID against all 1,797
digits; it reports FID and ADA's ``p`` over training. Target: without ADA
the FID turns back up (the discriminator overfits), with ADA it does not.

``photos`` writes random crops of scikit-learn's two sample photographs into
a folder, trains ``stylegan2-folder`` on them with a sample grid every
``--sample-every`` steps, and builds the run's HTML report (samples at
steps).

Each writes ``results.json`` and ``results.md`` into ``--out``. This script is
not part of the test suite (pytest does not collect it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

#: Steps of each digits recipe for 15 minutes on an idle 2-core machine (2 torch threads) on an AMD EPYC:
#: ``calibrate`` gave 283 and 441 ms a step for StyleGAN2 and R3GAN; ``dcgan-digits`` (half as wide since
#: 2026-11-30) took 139 ms in ``modern_sweep.py``'s timing (docs/BENCHMARKS.md). Other machines: run ``calibrate``.
STEPS = {"dcgan-digits": 6470, "stylegan2-digits": 3180, "r3gan-digits": 2040}

#: Latent seeds for scoring are the run's seed plus this, so they differ from the sample grids'.
EVAL_SEED_OFFSET = 10_000

#: FID settings: gankit's digits features, 2,000 generated samples, every stored digit as the reference.
FID = {"features": "digits", "n_fake": 2000}

#: Overrides that make every recipe tiny, for ``--tiny`` checks of this script.
TINY = {
    "dcgan-digits": ["generator.width=8", "discriminator.width=8", "generator.max_width=16",
                     "discriminator.max_width=16"],
    "stylegan2-digits": ["generator.channel_max=16", "discriminator.channel_max=16"],
    "r3gan-digits": ["generator.max_width=16", "discriminator.max_width=16"],
    "stylegan2-folder": ["generator.channel_max=16", "discriminator.channel_max=16", "data.resolution=32"],
}


@dataclass
class Job:
    """One training run."""

    name: str
    recipe: Any  # a shipped recipe's name or a recipe dict
    seed: int
    steps: int
    threads: int
    out: str
    overrides: list[str] = field(default_factory=list)
    score_every: int = 0  # score every kept checkpoint (small data) instead of the final generator only
    n_fake: int = FID["n_fake"]


@dataclass
class Outcome:
    """What one run gave."""

    name: str
    seed: int
    steps: int
    wall_s: float
    cpu_s: float
    fid: float | None = None
    fid_by_step: dict[int, float] = field(default_factory=dict)
    p_by_step: dict[int, float] = field(default_factory=dict)
    error: str = ""


def digits_reference(resolution: int = 32) -> Any:
    """All 1,797 digits at ``resolution``: the reference set of every FID here."""
    from gankit.plugins import get_registry

    return get_registry().get("data", "digits").build({"resolution": resolution}, seed=0)


def fid_of(generator: Any, reference: Any, seed: int, n_fake: int) -> float:
    """FID of ``generator`` with the digits features against ``reference``."""
    from gankit.plugins import get_registry

    metric = get_registry().get("metric", "fid").build({**FID, "n_fake": n_fake})
    return float(metric(generator, reference, device="cpu", seed=seed + EVAL_SEED_OFFSET)["fid"])


def run_job(job: Job) -> Outcome:
    """Train one recipe and score it (in a worker process)."""
    import torch

    torch.set_num_threads(job.threads)
    from gankit.checkpoint import checkpoint_path
    from gankit.recipe import load_recipe, recipe_from_dict
    from gankit.training import Trainer, load_generator

    out = Path(job.out)
    overrides = [f"run.seed={job.seed}", f"run.steps={job.steps}", "run.device='cpu'",
                 f"run.threads={job.threads}", *job.overrides]
    if job.score_every:
        overrides += [f"run.checkpoint_every={job.score_every}", "run.keep_checkpoints=1000"]
    try:
        recipe = (recipe_from_dict(job.recipe, overrides) if isinstance(job.recipe, dict)
                  else load_recipe(job.recipe, overrides))
        wall, cpu = time.perf_counter(), time.process_time()
        trainer = Trainer(recipe, out, quiet=True)
        result = trainer.fit()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        outcome = Outcome(job.name, job.seed, result.step, wall, cpu)
        reference = digits_reference(int(recipe["data"].params.resolution))
        if job.score_every:
            for step in range(job.score_every, result.step + 1, job.score_every):
                loaded = load_generator(checkpoint_path(out, step))
                outcome.fid_by_step[step] = fid_of(loaded.generator, reference, job.seed, job.n_fake)
            for line in (out / "metrics.jsonl").read_text().splitlines():
                record = json.loads(line)
                if "ada_p" in record:
                    outcome.p_by_step[int(record["step"])] = float(record["ada_p"])
        loaded = load_generator(out / "generator.safetensors")
        outcome.fid = fid_of(loaded.generator, reference, job.seed, job.n_fake)
        return outcome
    except Exception as error:  # one failed run must not lose the others
        return Outcome(job.name, job.seed, 0, 0.0, 0.0, error=f"{type(error).__name__}: {error}")


def run_all(jobs: Sequence[Job], parallel: int) -> list[Outcome]:
    """Run the jobs, ``parallel`` at a time, each in its own process."""
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(max_workers=parallel, mp_context=get_context("spawn")) as pool:
        for outcome in pool.map(run_job, jobs):
            status = outcome.error or f"FID {outcome.fid:.2f}, {outcome.wall_s:.0f} s"
            print(f"{outcome.name} seed {outcome.seed}: {status}", flush=True)
            outcomes.append(outcome)
    return outcomes


# --------------------------------------------------------------------------- the experiments


def seconds_per_step(recipe: str, overrides: Sequence[str], threads: int, warmup: int, timed: int) -> float:
    """A recipe's time per training step here, alone, with ``threads`` threads, after ``warmup`` steps."""
    import tempfile

    import torch

    from gankit.recipe import load_recipe
    from gankit.training import Trainer

    torch.set_num_threads(threads)
    trainer = Trainer(load_recipe(recipe, [f"run.threads={threads}", "run.device='cpu'", *overrides]),
                      Path(tempfile.mkdtemp()) / "run", quiet=True)
    for _ in range(warmup):
        trainer.train_step()
    start = time.perf_counter()
    for _ in range(timed):
        trainer.train_step()
    return (time.perf_counter() - start) / timed


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    """Steps per second of each digits recipe here, and the steps that take ``--minutes``."""
    results: dict[str, Any] = {}
    for name in STEPS:
        per_step = seconds_per_step(name, TINY[name] if args.tiny else [], args.threads, args.warmup, args.timed)
        results[name] = {"seconds_per_step": per_step, "steps": int(args.minutes * 60 / per_step)}
        print(f"{name}: {per_step * 1000:.0f} ms/step -> {results[name]['steps']} steps in {args.minutes} min",
              flush=True)
    return results


def quality(args: argparse.Namespace, steps: dict[str, int]) -> dict[str, Any]:
    """FID at equal wall time, per recipe and seed."""
    out = Path(args.out) / "quality"
    jobs = [Job(name, name, seed, steps[name], args.threads, str(out / f"{name}-seed{seed}"),
                TINY[name] if args.tiny else [], n_fake=args.n_fake)
            for seed in range(args.seeds) for name in STEPS]
    outcomes = run_all(jobs, args.jobs)
    lines = ["| recipe | steps | seeds | FID (digits features) | wall s / run | FIDs |", "|---|---|---|---|---|---|"]
    for name in STEPS:
        ok = [o for o in outcomes if o.name == name and not o.error and o.fid is not None]
        fids = [o.fid for o in ok if o.fid is not None]
        lines.append(f"| `{name}` | {steps[name]} | {len(ok)} | {_mean_std(fids)} | "
                     f"{_mean_std([o.wall_s for o in ok])} | {', '.join(f'{f:.2f}' for f in fids)} |")
    baseline = [o.fid for o in outcomes if o.name == "dcgan-digits" and o.fid is not None]
    for name in ("stylegan2-digits", "r3gan-digits"):
        fids = [o.fid for o in outcomes if o.name == name and o.fid is not None]
        if fids and baseline:
            verdict = "beats" if statistics.fmean(fids) < statistics.fmean(baseline) else "does NOT beat"
            lines.append(f"\n`{name}` {verdict} `dcgan-digits` (mean FID {statistics.fmean(fids):.2f} "
                         f"against {statistics.fmean(baseline):.2f}).")
    return {"outcomes": [asdict(o) for o in outcomes], "markdown": "\n".join(lines)}


def write_digit_folder(folder: Path, count: int, seed: int, resolution: int = 32) -> Path:
    """``count`` digits (a seeded subset) as grey PNGs of ``resolution`` pixels, the small training set."""
    import torch
    from PIL import Image

    digits = digits_reference(resolution)
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed))[:count]
    folder.mkdir(parents=True, exist_ok=True)
    for i, index in enumerate(order.tolist()):
        Image.fromarray(digits.pixels[index, 0].numpy()).save(folder / f"digit-{i:04d}.png")
    return folder


def small_data(args: argparse.Namespace) -> dict[str, Any]:
    """FID and p over training on 200 digits, with and without ADA."""
    from gankit.recipe import load_recipe

    out = Path(args.out) / "small-data"
    folder = write_digit_folder(out / "digits", args.images, seed=0)
    base = load_recipe(args.small_recipe, TINY[args.small_recipe] if args.tiny else []).to_dict()
    base["data"] = {"type": "image-folder", "path": str(folder), "resolution": 32, "channels": 1,
                    "hflip": False}
    with_ada = {**base, "tricks": [{"type": "ada"}, *base.get("tricks", [])]}
    jobs = [Job(f"{args.images} digits{label}", recipe, seed, args.small_steps, args.threads,
                str(out / f"{'ada' if 'ada' in label else 'plain'}-seed{seed}"), score_every=args.every,
                n_fake=args.n_fake)
            for seed in range(args.small_seeds)
            for label, recipe in (("", base), (" + ada", with_ada))]
    outcomes = run_all(jobs, args.jobs)
    lines = ["| run | seed | FID at each kept step (step: FID) | best step | final FID | final p |",
             "|---|---|---|---|---|---|"]
    for o in outcomes:
        if o.error:
            lines.append(f"| {o.name} | {o.seed} | failed: {o.error} | | | |")
            continue
        best = min(o.fid_by_step, key=o.fid_by_step.__getitem__) if o.fid_by_step else 0
        curve = ", ".join(f"{s}: {f:.1f}" for s, f in sorted(o.fid_by_step.items()))
        final_p = o.p_by_step[max(o.p_by_step)] if o.p_by_step else 0.0
        lines.append(f"| {o.name} | {o.seed} | {curve} | {best} | {o.fid:.2f} | {final_p:.3f} |")
    _plot_small_data(outcomes, out / "small-data.png")
    return {"outcomes": [asdict(o) for o in outcomes], "markdown": "\n".join(lines)}


def _plot_small_data(outcomes: Sequence[Outcome], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for o in outcomes:
        if o.fid_by_step:
            ax1.plot(*zip(*sorted(o.fid_by_step.items()), strict=True), marker="o", label=f"{o.name} s{o.seed}")
        if o.p_by_step:
            ax2.plot(*zip(*sorted(o.p_by_step.items()), strict=True), label=f"{o.name} s{o.seed}")
    ax1.set(xlabel="step", ylabel="FID (digits features)", title="FID over training")
    ax2.set(xlabel="step", ylabel="ADA p", title="augmentation probability")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_photo_crops(folder: Path, count: int, seed: int) -> Path:
    """``count`` random square crops (96 to 256 pixels) of scikit-learn's two sample photographs."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = load_sample_images().images
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        photo = photos[i % len(photos)]
        height, width, _ = photo.shape
        side = int(rng.integers(96, 257))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        Image.fromarray(photo[top : top + side, left : left + side]).save(folder / f"crop-{i:04d}.png")
    return folder


def photos(args: argparse.Namespace) -> dict[str, Any]:
    """A run on crops of real photographs, with samples at steps in its report."""
    from gankit.report import build_report

    out = Path(args.out) / "photos"
    folder = write_photo_crops(out / "crops", args.crops, seed=0)
    job = Job(args.photo_recipe, args.photo_recipe, 0, args.photo_steps, args.threads, str(out / "run"),
              [f"data.path={folder}", f"run.sample_every={args.sample_every}",
               *args.photo_set, *(TINY.get(args.photo_recipe, []) if args.tiny else [])])
    import torch

    torch.set_num_threads(args.threads)
    from gankit.recipe import load_recipe
    from gankit.training import Trainer

    overrides = [f"run.steps={job.steps}", f"run.threads={job.threads}", "run.device='cpu'", *job.overrides]
    start = time.perf_counter()
    result = Trainer(load_recipe(job.recipe, overrides), job.out, quiet=True).fit()
    wall = time.perf_counter() - start
    report = build_report(result.run_dir)
    settings = f" ({', '.join(args.photo_set)})" if args.photo_set else ""
    text = (f"`{args.photo_recipe}`{settings} on {args.crops} crops of scikit-learn's sample photographs, "
            f"{result.step} steps in {wall:.0f} s; samples every {args.sample_every} steps: {report}")
    print(text, flush=True)
    return {"run": str(result.run_dir), "report": str(report), "wall_s": wall, "markdown": text}


# --------------------------------------------------------------------------- plumbing


def _mean_std(values: Sequence[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    return f"{mean:.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{mean:.2f}"


def describe_machine(args: argparse.Namespace) -> str:
    """The machine and how the runs shared it, as one markdown line."""
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    return (f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, Python "
            f"{platform.python_version()}, torch {torch.__version__}; {args.jobs} run(s) at a time, {args.threads} "
            f"thread(s) each; 1-minute load average at the end: {load:.1f}.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("what", choices=["calibrate", "quality", "small-data", "photos", "all"])
    parser.add_argument("--out", default="runs/bench-modern", help="folder for the runs and results")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run (default 2)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    parser.add_argument("--tiny", action="store_true", help="tiny networks and few steps: checks the script")
    parser.add_argument("--steps", action="append", default=[], metavar="RECIPE=N", help="override STEPS")
    parser.add_argument("--minutes", type=float, default=15.0, help="calibrate: the wall time to size runs for")
    parser.add_argument("--warmup", type=int, default=5, help="calibrate: steps before timing")
    parser.add_argument("--timed", type=int, default=30, help="calibrate: steps timed")
    parser.add_argument("--seeds", type=int, default=3, help="quality: seeds per recipe (default 3)")
    parser.add_argument("--n-fake", type=int, default=FID["n_fake"], help="generated samples per FID")
    parser.add_argument("--images", type=int, default=200, help="small-data: training digits (default 200)")
    parser.add_argument("--small-steps", type=int, default=STEPS["stylegan2-digits"],
                        help="small-data: steps per run (default: the 15-minute length)")
    parser.add_argument("--small-recipe", default="stylegan2-digits", choices=sorted(set(STEPS)),
                        help="small-data: the digits recipe trained on the subset (default stylegan2-digits)")
    parser.add_argument("--every", type=int, default=500, help="small-data: score a checkpoint every N steps")
    parser.add_argument("--small-seeds", type=int, default=1, help="small-data: seeds per setting (default 1)")
    parser.add_argument("--photo-recipe", default="stylegan2-folder", help="photos: the recipe (default "
                        "stylegan2-folder)")
    parser.add_argument("--photo-steps", type=int, default=5000, help="photos: steps (default 5000)")
    parser.add_argument("--photo-set", action="append", default=[], metavar="KEY=VALUE",
                        help="photos: a recipe override, such as data.resolution=32 (repeatable)")
    parser.add_argument("--sample-every", type=int, default=250, help="photos: sample grid every N steps")
    parser.add_argument("--crops", type=int, default=500, help="photos: crops written (default 500)")
    args = parser.parse_args(argv)

    steps = dict(STEPS)
    for text in args.steps:
        name, _, value = text.partition("=")
        if name not in STEPS or not value.isdigit():
            parser.error(f"--steps {text}: give RECIPE=N with RECIPE one of {', '.join(STEPS)}")
        steps[name] = int(value)
    if args.tiny:
        steps = dict.fromkeys(steps, 4)
        args.n_fake, args.small_steps, args.every, args.photo_steps = 64, 8, 4, 4
        args.sample_every, args.crops, args.timed, args.warmup, args.images = 2, 8, 2, 1, 20
        args.seeds = min(args.seeds, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if args.what in ("calibrate", "all"):
        results["calibrate"] = calibrate(args)
    if args.what in ("quality", "all"):
        results["quality"] = quality(args, steps)
    if args.what in ("small-data", "all"):
        results["small-data"] = small_data(args)
    if args.what in ("photos", "all"):
        results["photos"] = photos(args)
    machine = describe_machine(args)
    markdown = "\n\n".join(f"### {key}\n\n{value['markdown']}" for key, value in results.items()
                           if isinstance(value, dict) and "markdown" in value)
    (out / "results.json").write_text(json.dumps({**results, "machine": machine, "argv": sys.argv}, indent=1))
    (out / "results.md").write_text(markdown + "\n\n" + machine + "\n")
    print(markdown + "\n\n" + machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
