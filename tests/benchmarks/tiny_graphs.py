"""A tiny network's training step, eager against torch.compile and CUDA graphs (issue 20).

Run from the repository root::

    python tests/benchmarks/tiny_graphs.py --device cuda --out tiny-graphs.json
    python tests/benchmarks/tiny_graphs.py --device cpu --modes eager,default --steps 300

It builds ``ring-best`` (MLPs of 128 x 3, batch 256, LSGAN with R1 every
step, EMA) once per mode of ``run.compile`` — ``eager`` (false), ``default``
(true) and ``reduce-overhead`` (CUDA graphs on a GPU) — and times
:meth:`gankit.training.Trainer.train_step` alone: ``--warmup`` steps first
(their time, compilation included, is reported on its own), then ``--steps``
steps in each of ``--rounds`` interleaved rounds. It reports steps per second,
the time the recipe's 22,000 steps would take at that rate, the floating-point
operations of one step (counted by PyTorch, where its counter can follow the
step) and the fraction of the device's
measured fp32 matrix-product rate that the step reaches. It is not part of the
test suite (pytest does not collect it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from _harness import count_flops, matmul_burst, synchronize  # noqa: E402

from gankit.recipe import load_recipe  # noqa: E402
from gankit.training import Trainer  # noqa: E402

#: ``run.compile`` for each mode this script knows.
MODES = {"eager": "false", "default": "true", "reduce-overhead": '"reduce-overhead"'}


def peak_rate(device: torch.device) -> float:
    """The device's fp32 matrix-product rate in FLOP/s (large square products, TF32 as PyTorch's default)."""
    burst, flops = matmul_burst(device, 1.0)
    burst()
    synchronize(device)
    start = time.perf_counter()
    burst()
    synchronize(device)
    return flops / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="ring-best")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path("tiny-graphs.json"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    threads = args.threads or torch.get_num_threads()
    result: dict[str, Any] = {
        "recipe": args.recipe, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "threads": threads, "warmup": args.warmup, "steps": args.steps,
        "rounds": args.rounds, "modes": {},
    }
    trainers: dict[str, Trainer] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            recipe = load_recipe(args.recipe, [f"run.device='{args.device}'", f"run.compile={MODES[mode]}",
                                               f"run.threads={threads}"])
            trainer = Trainer(recipe, Path(tmp) / mode, quiet=True)
            try:
                start = time.perf_counter()
                for _ in range(args.warmup):
                    trainer.train_step()
                synchronize(device)
                warmup = time.perf_counter() - start
            except Exception as error:  # a mode that fails here is reported, not fatal
                result["modes"][mode] = {"error": f"{type(error).__name__}: {str(error)[:400]}"}
                print(f"{mode}: failed: {result['modes'][mode]['error']}", flush=True)
                continue
            trainers[mode] = trainer
            result["modes"][mode] = {"warmup_seconds": warmup, "seconds_per_step": []}
            print(f"{mode}: warm-up {warmup:.1f} s", flush=True)
        args.out.write_text(json.dumps(result, indent=1))
        for r in range(args.rounds):
            order = list(trainers)
            for mode in order if r % 2 == 0 else order[::-1]:
                trainer = trainers[mode]
                try:
                    synchronize(device)
                    start = time.perf_counter()
                    for _ in range(args.steps):
                        trainer.train_step()
                    synchronize(device)
                except Exception as error:
                    result["modes"][mode]["error"] = f"{type(error).__name__}: {str(error)[:400]}"
                    print(f"{mode}: failed in round {r + 1}: {result['modes'][mode]['error']}", flush=True)
                    del trainers[mode]
                    continue
                result["modes"][mode]["seconds_per_step"].append((time.perf_counter() - start) / args.steps)
        order = list(trainers)
        eager = trainers.get("eager")
        flops = None
        if eager is not None:
            try:
                flops = count_flops(eager.train_step)
            except RuntimeError as error:  # PyTorch's counter cannot follow some double-backward graphs
                print(f"FLOPs not counted: {str(error)[:160]}", flush=True)
        rate = peak_rate(device)
        result["step_flops"], result["peak_flops_per_second"] = flops, rate
        for mode in order:
            entry = result["modes"][mode]
            per_step = statistics.median(entry["seconds_per_step"])
            entry["steps_per_second"] = 1.0 / per_step
            entry["recipe_seconds"] = per_step * load_recipe(args.recipe).run.steps
            if flops:
                entry["fraction_of_peak"] = flops / per_step / rate
            print(f"{mode}: {1.0 / per_step:,.0f} steps/s ({per_step * 1e3:.2f} ms), "
                  f"{args.recipe} in {entry['recipe_seconds']:.0f} s"
                  + (f", {entry['fraction_of_peak']:.2%} of the fp32 matmul rate" if flops else ""), flush=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
