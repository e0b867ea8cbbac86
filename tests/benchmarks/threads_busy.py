"""Thread counts on an idle and on a busy machine (issue 20): fixed settings against ``run.threads = "auto"``.

Run it from the repository root, with nothing else running::

    python tests/benchmarks/threads_busy.py                      # dcgan-digits, 120 steps per setting
    python tests/benchmarks/threads_busy.py --recipe ring-best --steps 600
    python tests/benchmarks/threads_busy.py --demo               # also `make demo`'s training, idle and busy

For each situation — *idle*, and *busy*: one neighbour process spinning on a
core, as a browser tab or an editor's indexer would — it trains the recipe for
``--steps`` steps with every fixed thread count and with ``auto`` (whose
probing and re-checks are part of its time), in a fresh process each, and
reports seconds per step and the ratio of ``auto`` to the best fixed setting.
``--demo`` (``--demo-only``: nothing else) times ``gankit train dcgan-digits`` end to end idle
and busy with the default settings. This script is not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

WORKER = """
import json, sys, time, torch
from gankit.recipe import load_recipe
from gankit.training import Trainer
recipe, threads, steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
setting = "'auto'" if threads == "auto" else threads
never = 10 * steps
r = load_recipe(recipe, [f"run.threads={setting}", f"run.steps={steps}", "run.device='cpu'", f"run.log_every={steps}",
                         f"run.sample_every={never}", f"run.checkpoint_every={never}", f"run.metrics_every={never}"])
trainer = Trainer(r, out, quiet=True)
start = time.perf_counter()
trainer.fit()
wall = time.perf_counter() - start
choices = [json.loads(l) for l in open(out + "/metrics.jsonl") if '"threads"' in l and '"event"' in l]
print(json.dumps({"seconds": wall, "per_step": wall / steps, "choices": choices}))
"""


def spin() -> None:
    """A neighbour that keeps one core busy."""
    while True:
        pass


@contextlib.contextmanager
def neighbour(busy: bool) -> Iterator[None]:
    if not busy:
        yield
        return
    process = multiprocessing.Process(target=spin, daemon=True)
    process.start()
    time.sleep(0.5)
    try:
        yield
    finally:
        process.terminate()
        process.join()


def run_one(recipe: str, threads: str, steps: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        done = subprocess.run([sys.executable, "-c", WORKER, recipe, threads, str(steps), folder + "/run"],
                              capture_output=True, text=True, env=env, check=True)
        result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


def demo_seconds() -> float:
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gankit", "train", "dcgan-digits", "--out", folder + "/run", "-q"],
                       check=True, env=env)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="dcgan-digits")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--demo", action="store_true", help="also time make demo's training, idle and busy")
    parser.add_argument("--demo-only", action="store_true", help="only time make demo's training, idle and busy")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    from gankit.threads import available_cores, candidate_counts

    fixed = [str(n) for n in candidate_counts()]
    results: dict[str, dict[str, dict[str, object]]] = {}
    for situation in () if args.demo_only else ("idle", "busy"):
        results[situation] = {}
        with neighbour(situation == "busy"):
            for threads in [*fixed, "auto"]:
                results[situation][threads] = run_one(args.recipe, threads, args.steps)
                print(situation, threads, f"{results[situation][threads]['per_step']:.4f} s/step", flush=True)
    demo: dict[str, float] = {}
    if args.demo or args.demo_only:
        for situation in ("idle", "busy"):
            with neighbour(situation == "busy"):
                demo[situation] = demo_seconds()
                print("demo", situation, f"{demo[situation]:.1f} s", flush=True)
    print(f"\n{args.recipe}, {args.steps} steps per setting; {available_cores()} cores; "
          f"{platform.processor() or platform.machine()}; python {platform.python_version()}\n")
    if results:
        _table(results, fixed)
    if demo:
        print("\nmake demo's training (gankit train dcgan-digits, default settings): "
              + ", ".join(f"{k} {v / 60:.2f} min" for k, v in demo.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": results, "demo": demo}, indent=2))


def _table(results: dict[str, dict[str, dict[str, object]]], fixed: list[str]) -> None:
    print("| situation | " + " | ".join(f"{t} thread(s)" for t in fixed) + " | auto | auto / best fixed |")
    print("|---|" + "---|" * (len(fixed) + 2))
    for situation, rows in results.items():
        best = min(float(rows[t]["per_step"]) for t in fixed)  # type: ignore[arg-type]
        cells = " | ".join(f"{float(rows[t]['per_step']) * 1000:.1f} ms" for t in [*fixed, "auto"])  # type: ignore[arg-type]
        print(f"| {situation} | {cells} | {float(rows['auto']['per_step']) / best:.3f} |")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
