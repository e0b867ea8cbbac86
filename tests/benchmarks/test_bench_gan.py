"""GAN training speed (issue 8): gankit's step against a hand-written loop, FLOP rate, scaling, run options.

Each test interleaves its contenders round by round in one process and
reports medians and ratios (see :mod:`_harness`); the table is printed at
the end of the session. Targets: DCGAN ratio <= 1.03, ring MLP ratio
<= 1.10, DCGAN FLOP rate >= 60% of the float32 matrix-multiply rate.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from _harness import (
    HandWrittenGan,
    Interleaver,
    check_same_work,
    compare,
    count_flops,
    count_ops,
    count_python_calls,
    dcgan_overrides,
    fmt_seconds,
    gan_recipe,
    is_cuda,
    make_trainer,
    matmul_burst,
    report_comparison,
    rounds,
    run_interleaved,
    sync_locations,
    synchronize,
)
from _report import Report

DCGAN_TARGET = 1.03
RING_TARGET = 1.10
FLOP_TARGET = 0.60

#: The ring recipe with tiny networks and batches, where Python overhead is all there is.
TINY_RING = ["generator.width=16", "discriminator.width=16", "run.batch_size=16"]


def _same_work(trainer: Any, baseline: HandWrittenGan, device: torch.device, report: Report, group: str) -> None:
    """Check (and report) that both sides compute the same weights: exactly on a CPU, closely on a GPU."""
    diff = check_same_work(trainer, baseline)
    report.add(group, "same work: max weight difference after 3 steps", diff, kind="info")
    if is_cuda(device):  # cuDNN picks algorithms freely: Adam turns last-bit differences into ~lr steps
        if diff > 1e-2:
            warnings.warn(f"{group}: the hand-written loop differs from the trainer by {diff} on CUDA", stacklevel=2)
        return
    assert diff <= 1e-5, f"the hand-written loop diverges from the trainer by {diff}"


def _sample_seconds(device: torch.device) -> float:
    return 0.25 if is_cuda(device) else 0.6


# --------------------------------------------------------------------------- gankit vs hand-written


@pytest.mark.parametrize(
    ("case", "recipe", "overrides", "target"),
    [
        ("DCGAN 32px b64", "dcgan-digits", dcgan_overrides(64, 32), DCGAN_TARGET),
        ("ring MLP", "ring-gan", [], RING_TARGET),
        ("ring MLP, tiny nets b16", "ring-gan", TINY_RING, RING_TARGET),
    ],
    ids=["dcgan", "ring", "ring-tiny"],
)
def test_step_vs_handwritten(benchmark: Any, report: Report, device: torch.device, run_dir: Path, case: str,
                             recipe: str, overrides: list[str], target: float) -> None:
    """gankit's ``train_step`` against the same step written by hand in plain PyTorch.

    A third contender, ``gankit fused``, is gankit with the ``fused = true``
    optimiser option (fused Adam rounds differently from the hand-written
    loop's default Adam, so it is timed but not compared weight for weight).
    """
    r = gan_recipe(recipe, *overrides, device=device)
    trainer = make_trainer(r, run_dir)
    baseline = HandWrittenGan(r, device=device)
    _same_work(trainer, baseline, device, report, case)
    fused = make_trainer(gan_recipe(recipe, *overrides, *FUSED, device=device), run_dir)
    contenders = {"gankit": trainer.train_step, "gankit fused": fused.train_step, "hand-written": baseline.step}
    n = 12 if "DCGAN" in case else 20
    timing, calls = compare(benchmark, contenders, device, sample_seconds=_sample_seconds(device), n_rounds=n)
    ratios = report_comparison(report, case, timing, "hand-written", targets={"gankit": target}, calls=calls)
    benchmark.extra_info.update({f"ratio {k}": v for k, v in ratios.items()})


@pytest.mark.parametrize(
    ("case", "recipe", "overrides"),
    [("DCGAN 32px b64", "dcgan-digits", dcgan_overrides(64, 32)), ("ring MLP, tiny nets b16", "ring-gan", TINY_RING)],
    ids=["dcgan", "ring-tiny"],
)
def test_step_work_counts(benchmark: Any, report: Report, device: torch.device, run_dir: Path, case: str,
                          recipe: str, overrides: list[str]) -> None:
    """Noise-free overhead measures of one step: ATen operations, Python calls and (CUDA) host syncs."""
    r = gan_recipe(recipe, *overrides, device=device)
    contenders = {
        "gankit": make_trainer(r, run_dir).train_step,
        "hand-written": HandWrittenGan(r, device=device).step,
    }
    for fn in contenders.values():
        fn()
    group = f"work per step, {case}"
    for name, fn in contenders.items():
        report.add(group, f"{name}: ATen ops per step", count_ops(fn))
        report.add(group, f"{name}: Python calls per step", count_python_calls(fn, 10 if "DCGAN" in case else 50))
        syncs = sync_locations(fn, device)
        if syncs is not None:
            report.add(group, f"{name}: host syncs per step", len(syncs))
            benchmark.extra_info[f"{name}: host syncs at"] = syncs
    benchmark.pedantic(contenders["gankit"], rounds=1, iterations=1)


FUSED = ("optim.generator.fused=true", "optim.discriminator.fused=true")


# --------------------------------------------------------------------------- FLOP rate


def _with_flags(fn: Any, **flags: bool) -> Any:
    """``fn`` run with CUDA backend flags set (``tf32_matmul``, ``cudnn_benchmark``), restored afterwards."""

    def run() -> None:
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark)
        torch.backends.cuda.matmul.allow_tf32 = flags.get("tf32_matmul", saved[0])
        torch.backends.cudnn.benchmark = flags.get("cudnn_benchmark", saved[1])
        try:
            fn()
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark = saved

    return run


def test_dcgan_flop_rate(benchmark: Any, report: Report, device: torch.device, run_dir: Path) -> None:
    """FLOPs of a DCGAN step (FlopCounterMode) per second, against the float32 matmul rate measured alongside.

    On CUDA, convolutions run in TF32 by default (``cudnn.allow_tf32``) while
    matrix products do not, so the TF32 matmul rate is measured too.
    """
    group = "DCGAN 32px b64 FLOP rate"
    r = gan_recipe("dcgan-digits", *dcgan_overrides(64, 32), device=device)
    trainer = make_trainer(r, run_dir)
    trainer.train_step()
    flops = count_flops(trainer.train_step)
    synchronize(device)
    start = time.perf_counter()
    trainer.train_step()
    synchronize(device)
    step_seconds = time.perf_counter() - start
    burst, burst_flops = matmul_burst(device, step_seconds)
    contenders = {"step": trainer.train_step, "matmul": burst}
    if is_cuda(device):
        contenders["matmul tf32"] = _with_flags(burst, tf32_matmul=True)
    interleaver = Interleaver(contenders, calls=max(1, round(_sample_seconds(device) / step_seconds)), device=device)
    timing = run_interleaved(benchmark, interleaver, rounds(10))
    achieved = flops / timing.median("step")
    peak = burst_flops / timing.median("matmul")
    report.add(group, "FLOPs per step (flop_counter)", flops / 1e9, unit="GFLOP")
    report.add(group, "achieved rate", achieved / 1e9, kind="rate", unit="GFLOP/s")
    report.add(group, "fp32 matmul rate", peak / 1e9, kind="rate", unit="GFLOP/s")
    report.add(group, "achieved / fp32 matmul rate", achieved / peak, kind="fraction", target=(">=", FLOP_TARGET),
               details={"clock": timing.clock, "step_s": timing.median("step"), "matmul_s": timing.median("matmul")})
    if "matmul tf32" in contenders:
        tf32 = burst_flops / timing.median("matmul tf32")
        report.add(group, "tf32 matmul rate", tf32 / 1e9, kind="rate", unit="GFLOP/s")
        report.add(group, "achieved / tf32 matmul rate", achieved / tf32, kind="fraction")
    benchmark.extra_info.update({"flops": flops, "fraction": achieved / peak})


# --------------------------------------------------------------------------- scaling


SCALING = [(32, 32), (64, 32), (128, 32), (64, 16), (64, 64)]


def test_dcgan_scaling(benchmark: Any, report: Report, device: torch.device, run_dir: Path) -> None:
    """DCGAN step time as the batch size (32, 64, 128 at 32 px) and the resolution (16, 32, 64 at batch 64) double."""
    group = "DCGAN scaling"
    trainers: dict[str, Any] = {}
    flops: dict[str, int] = {}
    for batch, resolution in SCALING:
        name = f"b{batch} {resolution}px"
        trainer = make_trainer(gan_recipe("dcgan-digits", *dcgan_overrides(batch, resolution), device=device), run_dir)
        trainer.train_step()
        flops[name] = count_flops(trainer.train_step)
        trainers[name] = trainer.train_step
    timing, _ = compare(benchmark, trainers, device, sample_seconds=_sample_seconds(device) / 2, n_rounds=6,
                            calibrate_on="b32 16px" if "b32 16px" in trainers else "b32 32px")
    for name in trainers:
        seconds = timing.median(name)
        batch = int(name.split()[0][1:])
        report.add(group, f"{name}: time per step", seconds, kind="seconds",
                   details={"per_sample_s": seconds / batch, "gflop": flops[name] / 1e9,
                            "gflop_per_s": flops[name] / seconds / 1e9})
    for small, large in (("b32 32px", "b64 32px"), ("b64 32px", "b128 32px"), ("b64 16px", "b64 32px"),
                         ("b64 32px", "b64 64px")):
        report.add(group, f"{large} / {small}: time (FLOPs x{flops[large] / flops[small]:.2f})",
                   timing.ratio(large, small), kind="ratio",
                   details={"flop_ratio": flops[large] / flops[small]})


# --------------------------------------------------------------------------- run options


def _option_recipes(device: torch.device) -> dict[str, list[str]]:
    options = {
        "fp32": [],
        "channels_last": ["run.channels_last=true"],
        "bf16": ["run.precision=bf16"],
        "bf16+channels_last": ["run.precision=bf16", "run.channels_last=true"],
    }
    if is_cuda(device):
        options["fp16"] = ["run.precision=fp16"]
    return options


def test_dcgan_run_options(benchmark: Any, report: Report, device: torch.device, run_dir: Path) -> None:
    """channels_last, bf16 (and fp16, cudnn.benchmark on CUDA) and fused Adam against the fp32 default."""
    group = "DCGAN 32px b64 run options"
    contenders: dict[str, Any] = {}
    for name, extra in _option_recipes(device).items():
        r = gan_recipe("dcgan-digits", *dcgan_overrides(64, 32), *extra, device=device)
        contenders[name] = make_trainer(r, run_dir).train_step
    contenders["fused adam"] = make_trainer(
        gan_recipe("dcgan-digits", *dcgan_overrides(64, 32), *FUSED, device=device), run_dir
    ).train_step
    r = gan_recipe("dcgan-digits", *dcgan_overrides(64, 32), device=device)
    if is_cuda(device):
        contenders["cudnn.benchmark"] = _with_flags(make_trainer(r, run_dir).train_step, cudnn_benchmark=True)
    flops = count_flops(contenders["fp32"])
    burst, burst_flops = matmul_burst(device, 0.05 if is_cuda(device) else 0.3)
    bf16_burst, bf16_flops = matmul_burst(device, 0.05 if is_cuda(device) else 0.3, torch.bfloat16)
    contenders["matmul fp32"] = burst
    contenders["matmul bf16"] = bf16_burst
    timing, _ = compare(benchmark, contenders, device, sample_seconds=_sample_seconds(device) / 2, n_rounds=10,
                        calibrate_on="fp32")
    peak = burst_flops / timing.median("matmul fp32")
    peak_bf16 = bf16_flops / timing.median("matmul bf16")
    report.add(group, "fp32 matmul rate", peak / 1e9, kind="rate", unit="GFLOP/s")
    report.add(group, "bf16 matmul rate", peak_bf16 / 1e9, kind="rate", unit="GFLOP/s")
    for name in contenders:
        if name.startswith("matmul"):
            continue
        seconds = timing.median(name)
        report.add(group, f"{name}: time per step", seconds, kind="seconds",
                   details={"fraction_of_fp32_matmul": flops / seconds / peak,
                            "fraction_of_bf16_matmul": flops / seconds / peak_bf16})
        if name != "fp32":
            report.add(group, f"{name} / fp32", timing.ratio(name, "fp32"), kind="ratio",
                       details={"paired_ratio": timing.paired_ratio(name, "fp32")})
        report.add(group, f"{name}: achieved / fp32 matmul rate", flops / seconds / peak, kind="fraction")


def test_dcgan_compile(benchmark: Any, report: Report, device: torch.device, run_dir: Path,
                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``run.compile = true``: compile time (first steps, empty compiler cache) and steady-state time against eager."""
    if os.environ.get("GANKIT_BENCH_COMPILE", "1") == "0":
        pytest.skip("GANKIT_BENCH_COMPILE=0")
    group = "DCGAN 32px b64 torch.compile"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor-cache"))
    torch._dynamo.reset()
    compiled = make_trainer(gan_recipe("dcgan-digits", *dcgan_overrides(64, 32), "run.compile=true",
                                       device=device), run_dir)
    start = time.perf_counter()
    try:
        for _ in range(3):
            compiled.train_step()
        synchronize(device)
    except Exception as error:
        report.add(group, "compile failed", float("nan"), details={"error": f"{type(error).__name__}: {error}"[:500]})
        pytest.skip(f"torch.compile failed here: {type(error).__name__}: {str(error)[:200]}")
    report.add(group, "compile time (first 3 steps, empty cache)", time.perf_counter() - start, kind="seconds")
    eager = make_trainer(gan_recipe("dcgan-digits", *dcgan_overrides(64, 32), device=device), run_dir)
    contenders = {"compiled": compiled.train_step, "eager": eager.train_step}
    timing, calls = compare(benchmark, contenders, device, sample_seconds=_sample_seconds(device) / 2, n_rounds=8,
                            calibrate_on="eager")
    report_comparison(report, group, timing, "eager", calls=calls)
    print(f"compiled step {fmt_seconds(timing.median('compiled'))}, eager {fmt_seconds(timing.median('eager'))}")
