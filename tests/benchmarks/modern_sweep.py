"""Settings of the StyleGAN2 and R3GAN digits recipes at a short, equal CPU budget (issue 14's tuning).

Run from the repository root, on a quiet machine::

    python tests/benchmarks/modern_sweep.py --minutes 4 --out runs/sweep

Each variant is a shipped recipe plus ``--set`` overrides (``VARIANTS``). The
script first times every variant alone (2 threads, after warm-up steps), then
gives each the number of steps that takes ``--minutes`` at that rate, so the
comparison is at equal wall time on this machine, and trains them ``--jobs``
at a time with one thread each (a fixed number of steps gives the same result
under any load). Each final moving-average generator is scored as in
``modern_gans.py quality`` (FID with the digits features, 2,000 samples,
all 1,797 digits). Results: ``results.json`` and ``results.md`` in ``--out``.
This script is not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from modern_gans import Job, run_all, seconds_per_step

WIDE_SG = ["generator.channel_base=2048", "generator.channel_max=128",
           "discriminator.channel_base=2048", "discriminator.channel_max=128"]
SHORT_SG = ["tricks.0.probability=0", "tricks.1.half_life_images=2000"]
#: The first ``dcgan-digits`` (before 2026-11-30), spelled out so that the variants stay what they were.
FIRST_DCGAN = ["run.batch_size=64", "optim.generator.lr=2e-4", "optim.discriminator.lr=2e-4",
               "generator.width=32", "generator.max_width=128", "discriminator.width=32",
               "discriminator.max_width=128"]
NARROW_DCGAN = ["generator.width=16", "generator.max_width=64", "discriminator.width=16",
                "discriminator.max_width=64"]
FAST_DCGAN = ["optim.generator.lr=5e-4", "optim.discriminator.lr=5e-4"]

#: name -> (recipe, overrides)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "dcgan": ("dcgan-digits", FIRST_DCGAN),
    "dcgan-shipped": ("dcgan-digits", []),
    "sg-base": ("stylegan2-digits", []),
    "sg-short": ("stylegan2-digits", SHORT_SG),
    "sg-wide": ("stylegan2-digits", WIDE_SG),
    "sg-wide-short": ("stylegan2-digits", WIDE_SG + SHORT_SG),
    "r3-base": ("r3gan-digits", []),
    "r3-lr5e-4": ("r3gan-digits", ["optim.generator.lr=5e-4", "optim.discriminator.lr=5e-4"]),
    "r3-wide": ("r3gan-digits", ["generator.width=32", "generator.max_width=128",
                                 "discriminator.width=32", "discriminator.max_width=128"]),
    # make demo in 3 minutes (issue 20): cheaper DCGAN steps, or faster learning (later overrides win)
    "dcgan-w16": ("dcgan-digits", FIRST_DCGAN + NARROW_DCGAN),
    "dcgan-lr5e-4": ("dcgan-digits", FIRST_DCGAN + FAST_DCGAN),
    "dcgan-w16-lr5e-4": ("dcgan-digits", FIRST_DCGAN + NARROW_DCGAN + FAST_DCGAN),
    "dcgan-b32-lr5e-4": ("dcgan-digits", [*FIRST_DCGAN, "run.batch_size=32", *FAST_DCGAN]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0, 1, ... per variant")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--timed", type=int, default=12)
    parser.add_argument("--out", default="runs/sweep")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    timing: dict[str, float] = {}
    for name in names:
        recipe, overrides = VARIANTS[name]
        timing[name] = seconds_per_step(recipe, overrides, 2, args.warmup, args.timed)
        print(f"{name}: {timing[name] * 1000:.0f} ms/step alone", flush=True)
    jobs = [Job(name=name, recipe=VARIANTS[name][0], seed=seed,
                steps=int(args.minutes * 60 / timing[name]), threads=1, out=str(out / f"{name}-{seed}"),
                overrides=VARIANTS[name][1]) for seed in range(args.seeds) for name in names]
    outcomes = run_all(jobs, args.jobs)
    results: dict[str, Any] = {"minutes": args.minutes, "seeds": args.seeds, "variants": {}}
    lines = [f"# Digits recipes at {args.minutes:g} minutes each (seeds 0-{args.seeds - 1})", "",
             "| variant | overrides | ms/step | steps | FID per seed |", "|---|---|---|---|---|"]
    for job, outcome in zip(jobs, outcomes, strict=True):
        entry = results["variants"].setdefault(job.name, {
            "recipe": job.recipe, "overrides": job.overrides, "seconds_per_step": timing[job.name],
            "steps": job.steps, "fid": {}, "errors": {}})
        if outcome.fid is not None:
            entry["fid"][job.seed] = outcome.fid
        else:
            entry["errors"][job.seed] = outcome.error
    for name, entry in results["variants"].items():
        fids = " / ".join(f"{fid:.1f}" for fid in entry["fid"].values()) or "failed"
        lines.append(f"| {name} | `{' '.join(entry['overrides'])}` | {entry['seconds_per_step'] * 1000:.0f} "
                     f"| {entry['steps']} | {fids} |")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
