"""Shared machinery of the performance suite (issue 8): devices, interleaved timing, GAN baselines.

Every comparison runs its contenders *interleaved* in one process: round 1
times A then B, round 2 times B then A, and so on, so that drift (other
processes on a shared CPU, clock changes, thermal state) weighs on both
sides equally. Ratios are taken from the medians of the per-call times.

The hand-written baselines build their networks with gankit's own part
classes (through the same recipe, under the same seed, so the weights are
identical) but run the training loop in plain PyTorch, doing exactly the work
of :meth:`gankit.training.Trainer.train_step`. :func:`check_same_work` proves
it: after a few steps both sides hold bit-identical weights on a CPU.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.recipe import Recipe, load_recipe
from gankit.training import Trainer

#: Environment variable naming the device the suite runs on (``cpu`` by default, ``cuda`` on a GPU machine).
DEVICE_ENV = "GANKIT_BENCH_DEVICE"
#: Environment variable naming a JSON file for the results.
OUT_ENV = "GANKIT_BENCH_OUT"
#: Environment variable choosing the clock ratios are read from: ``wall`` or ``cpu`` (see :func:`primary_clock`).
CLOCK_ENV = "GANKIT_BENCH_CLOCK"
#: How many JPEG files the image-folder benchmarks decode, and their side in pixels.
JPEG_COUNT = 2000
JPEG_SIZE = 96
#: Environment variable scaling the number of timed rounds (``0.5`` halves them; at least 3 are kept).
ROUNDS_ENV = "GANKIT_BENCH_ROUNDS"


def bench_device() -> torch.device:
    """The device named by ``GANKIT_BENCH_DEVICE`` (default ``cpu``)."""
    return torch.device(os.environ.get(DEVICE_ENV, "cpu") or "cpu")


def rounds(n: int) -> int:
    """``n`` timed rounds, scaled by ``GANKIT_BENCH_ROUNDS`` (never fewer than 3)."""
    scale = float(os.environ.get(ROUNDS_ENV, "1") or 1)
    return max(3, round(n * scale))


def primary_clock(device: torch.device) -> str:
    """The clock ratios are read from: ``GANKIT_BENCH_CLOCK`` if set, else process CPU time on a CPU, wall on a GPU.

    On a CPU shared with other processes, wall time counts the waits for a
    core as well as the work; the process's CPU time counts the work only, so
    its ratios stay meaningful under load (with one torch thread it is exact;
    with more, idle worker threads spinning count too). On a GPU the CPU
    waits for the device, so wall time is the measure.
    """
    clock = os.environ.get(CLOCK_ENV, "")
    if clock in ("wall", "cpu"):
        return clock
    return "cpu" if device.type == "cpu" else "wall"


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Per-call seconds of each contender, one entry per round, by wall clock and by process CPU time.

    :attr:`samples` is the primary clock's (see :func:`primary_clock`);
    :attr:`wall` and :attr:`cpu` hold both.
    """

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    clock: str = "wall"

    @property
    def samples(self) -> dict[str, list[float]]:
        """Per-call seconds by the primary clock."""
        return self.cpu if self.clock == "cpu" else self.wall

    def using(self, clock: str) -> Timing:
        """The same samples read with another clock (``"wall"`` or ``"cpu"``)."""
        return Timing(self.wall, self.cpu, clock)

    def median(self, name: str) -> float:
        """Median seconds per call of ``name``."""
        return statistics.median(self.samples[name])

    def ratio(self, name: str, baseline: str) -> float:
        """``median(name) / median(baseline)``: above 1 means ``name`` is slower."""
        return self.median(name) / self.median(baseline)

    def paired_ratio(self, name: str, baseline: str) -> float:
        """Median over rounds of the round-by-round ratio (robust to slow drift)."""
        pairs = zip(self.samples[name], self.samples[baseline], strict=True)
        return statistics.median(a / b for a, b in pairs)

    def spread(self, name: str) -> float:
        """Interquartile range over median, a noise measure of ``name``'s rounds."""
        values = sorted(self.samples[name])
        if len(values) < 4:
            return 0.0
        q = statistics.quantiles(values, n=4)
        return (q[2] - q[0]) / statistics.median(values)


class Interleaver:
    """Times several callables in alternating order, round after round.

    ``calls`` calls of one contender make one timed sample; the device is
    synchronised before and after. Round ``r`` visits the contenders in order
    when ``r`` is even and in reverse when odd.
    """

    def __init__(self, contenders: Mapping[str, Callable[[], Any]], *, calls: int, device: torch.device) -> None:
        self.contenders = dict(contenders)
        self.calls = calls
        self.device = device
        self.timing = Timing({name: [] for name in self.contenders}, {name: [] for name in self.contenders},
                             primary_clock(device))
        self._round = 0

    def warmup(self, calls: int | None = None) -> None:
        """Run each contender ``calls`` times (default: one sample's worth) without recording."""
        for fn in self.contenders.values():
            for _ in range(self.calls if calls is None else calls):
                fn()
        synchronize(self.device)

    def one_round(self) -> None:
        """Time one sample of every contender; the order alternates between rounds."""
        names = list(self.contenders)
        if self._round % 2:
            names.reverse()
        self._round += 1
        for name in names:
            fn = self.contenders[name]
            synchronize(self.device)
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(self.calls):
                fn()
            synchronize(self.device)
            self.timing.cpu[name].append((time.process_time() - start_cpu) / self.calls)
            self.timing.wall[name].append((time.perf_counter() - start) / self.calls)

    def run(self, n_rounds: int) -> Timing:
        """``n_rounds`` rounds (no pytest-benchmark); returns the timing."""
        for _ in range(n_rounds):
            self.one_round()
        return self.timing


def run_interleaved(
    benchmark: Any, interleaver: Interleaver, n_rounds: int, *, warmup_calls: int | None = None
) -> Timing:
    """Warm up, then let pytest-benchmark's pedantic mode drive ``n_rounds`` interleaved rounds.

    pytest-benchmark records the time of a whole round (every contender);
    the per-contender samples are in the returned :class:`Timing`.
    """
    interleaver.warmup(warmup_calls)
    benchmark.pedantic(interleaver.one_round, rounds=n_rounds, iterations=1, warmup_rounds=0)
    return interleaver.timing


# --------------------------------------------------------------------------- recipes


def gan_recipe(name: str, *overrides: str, device: torch.device | None = None) -> Recipe:
    """A shipped GAN recipe with ``overrides``, on the bench device, with quiet outputs."""
    device = device or bench_device()
    return load_recipe(name, [f"run.device={device.type}", *overrides])


#: The networks the suite's DCGAN cases time: ``dcgan-digits``' first widths (32 to 128), whatever it ships now.
DCGAN_WIDTHS = ["generator.width=32", "generator.max_width=128", "discriminator.width=32",
                "discriminator.max_width=128"]


def dcgan_overrides(batch: int = 64, resolution: int = 32) -> list[str]:
    """Overrides of ``dcgan-digits`` for a batch size and resolution, with the suite's fixed widths."""
    return [f"run.batch_size={batch}", f"data.resolution={resolution}", *DCGAN_WIDTHS]


def make_trainer(recipe: Recipe, run_dir: str | Path) -> Trainer:
    """A trainer for ``recipe`` that writes (if ever) into ``run_dir``, on the thread count set now.

    ``run.threads = "auto"`` (the default) is replaced by the current count: the suite times fixed settings
    side by side; the tuner has a benchmark of its own (``threads_busy.py``).
    """
    if recipe.run.threads == "auto":
        recipe = recipe.with_run(threads=torch.get_num_threads())
    return Trainer(recipe, run_dir, quiet=True)


# --------------------------------------------------------------------------- the hand-written loop


class HandWrittenGan:
    """The training step of :class:`~gankit.training.Trainer`, written by hand in plain PyTorch.

    Supports the recipes the suite times: ``non-saturating`` loss, Adam for
    both networks, a constant schedule, the ``always`` balance policy, no
    regularisers and at most an ``ema`` trick. Networks and data are built
    from the recipe's parts (same classes, same seed, so the same weights);
    everything else is plain torch: fresh latents every phase, real batches
    drawn with replacement by ``data.sample``, the discriminator trained on
    ``D(real)`` and ``D(fake)`` separately, the generator trained through a
    frozen discriminator (no parameter gradients, buffers restored), losses
    accumulated on the device for logging.
    """

    def __init__(self, recipe: Recipe, *, device: torch.device | None = None) -> None:
        s = recipe.run
        self.device = device or torch.device(s.device)
        if recipe["loss"].name != "non-saturating" or recipe["regularizers"] or recipe["balance"].name != "always":
            raise ValueError("the hand-written loop covers non-saturating, always-balanced recipes only")
        torch.manual_seed(s.seed)
        self.data = recipe["data"].build(seed=s.seed)
        shape = tuple(self.data.shape)
        self.generator: nn.Module = recipe["generator"].build(shape=shape).to(self.device)
        self.discriminator: nn.Module = recipe["discriminator"].build(shape=shape).to(self.device)
        self.channels_last = bool(s.channels_last) and len(shape) == 3
        if self.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self.generator.train()
        self.discriminator.train()
        self.batch = s.batch_size
        self.latent_dim = int(self.generator.latent_dim)
        self.real_weight = float(recipe["loss"].params.weight)
        self.ema: nn.Module | None = None
        self.ema_decay = 0.0
        for spec in recipe["tricks"]:
            if spec.name != "ema" or spec.params.start or spec.params.every != 1:
                raise ValueError("the hand-written loop covers an ema trick updated every step only")
            self.ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
            self.ema_decay = float(spec.params.decay)
        g_opt, d_opt = recipe["optim"]["generator"].params, recipe["optim"]["discriminator"].params
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=g_opt.lr, betas=g_opt.betas, eps=g_opt.eps)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=d_opt.lr, betas=d_opt.betas, eps=d_opt.eps)
        self.data_rng = torch.Generator().manual_seed(s.seed + 1)
        self.latent_rng = torch.Generator(device=self.device).manual_seed(s.seed + 2)
        self.d_params = list(self.discriminator.parameters())
        self.d_buffers = list(self.discriminator.buffers())
        self.ema_params: list[Tensor] = list(self.ema.parameters()) if self.ema is not None else []
        self.g_params: list[Tensor] = list(self.generator.parameters())
        self.ema_buffers = list(self.ema.buffers()) if self.ema is not None else []
        self.g_buffers = list(self.generator.buffers())
        self.autocast_dtype: torch.dtype | None = {"fp32": None, "bf16": torch.bfloat16}[s.precision]
        if s.compile:
            self.generator_fwd: Callable[[Tensor], Tensor] = torch.compile(self.generator)
            self.discriminator_fwd: Callable[[Tensor], Tensor] = torch.compile(self.discriminator)
        else:
            self.generator_fwd = self.generator
            self.discriminator_fwd = self.discriminator
        self.d_sum = torch.zeros((), device=self.device)
        self.g_sum = torch.zeros((), device=self.device)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def step(self) -> None:
        """One discriminator update, then one generator update (then the EMA)."""
        g, d = self.generator_fwd, self.discriminator_fwd
        # discriminator phase
        real = self.data.sample(self.batch, self.data_rng).to(self.device, non_blocking=True)
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), self._autocast():
            fake = g(torch.randn(self.batch, self.latent_dim, device=self.device, generator=self.latent_rng))
        fake = fake.float()
        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            real_logits, fake_logits = d(real).float(), d(fake).float()
        d_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + (
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        )
        d_loss.backward()
        self.opt_d.step()
        # generator phase, through the frozen discriminator
        self.opt_g.zero_grad(set_to_none=True)
        for p in self.d_params:
            p.requires_grad_(False)
        saved = [b.clone() for b in self.d_buffers]
        with self._autocast():
            fake = g(torch.randn(self.batch, self.latent_dim, device=self.device, generator=self.latent_rng))
            g_loss = F.softplus(-d(fake).float()).mean()
        g_loss.backward()
        for p in self.d_params:
            p.requires_grad_(True)
        with torch.no_grad():
            for b, s in zip(self.d_buffers, saved, strict=True):
                b.copy_(s)
        self.opt_g.step()
        if self.ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(self.ema_params, self.g_params, 1.0 - self.ema_decay)
                for a, c in zip(self.ema_buffers, self.g_buffers, strict=True):
                    a.copy_(c)
        self.d_sum += d_loss.detach()
        self.g_sum += g_loss.detach()


def check_same_work(trainer: Trainer, baseline: HandWrittenGan, steps: int = 3) -> float:
    """Run ``steps`` steps on both sides; the largest absolute difference of any weight (0.0 on a CPU)."""
    for _ in range(steps):
        trainer.train_step()
        baseline.step()
    synchronize(baseline.device)
    worst = 0.0
    pairs = [
        (trainer.generator_module.state_dict(), baseline.generator.state_dict()),
        (trainer.discriminator_module.state_dict(), baseline.discriminator.state_dict()),
    ]
    for ours, theirs in pairs:
        assert ours.keys() == theirs.keys()
        for key, value in ours.items():
            other = theirs[key]
            if value.is_floating_point():
                worst = max(worst, float((value.float() - other.float()).abs().max()))
    return worst


# --------------------------------------------------------------------------- rates


def count_ops(fn: Callable[[], Any]) -> int:
    """ATen operations (kernels, on a GPU) one call of ``fn`` dispatches, counted with a dispatch mode."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            self.count += 1
            return func(*args, **(kwargs or {}))

    with _Count() as counter:
        fn()
    return counter.count


def count_python_calls(fn: Callable[[], Any], calls: int = 20) -> float:
    """Python function calls per call of ``fn`` (cProfile's count, averaged over ``calls`` calls)."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(calls):
        fn()
    profile.disable()
    return pstats.Stats(profile).total_calls / calls  # type: ignore[attr-defined]


def sync_locations(fn: Callable[[], Any], device: torch.device) -> list[str] | None:
    """``file:line`` of every host-device synchronisation during one call of ``fn`` on CUDA (``None`` elsewhere)."""
    if device.type != "cuda":
        return None
    import warnings

    synchronize(device)
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    # torch's own notice that the debug mode is a prototype is not a synchronisation
    return [f"{w.filename}:{w.lineno}" for w in caught
            if "synchroniz" in str(w.message) and "prototype" not in str(w.message)]


def matmul_burst(device: torch.device, seconds: float, dtype: torch.dtype = torch.float32) -> tuple[Any, float]:
    """A callable doing ``reps`` square products lasting about ``seconds``, and the FLOPs of one call."""
    n = 4096 if is_cuda(device) else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(3):
        torch.mm(a, b, out=out)
    synchronize(device)
    one = (time.perf_counter() - start) / 3
    reps = max(1, round(seconds / max(one, 1e-7)))

    def burst() -> None:
        for _ in range(reps):
            torch.mm(a, b, out=out)

    return burst, 2.0 * n**3 * reps


def count_flops(fn: Callable[[], Any]) -> int:
    """Floating-point operations of one call of ``fn``, counted by :class:`torch.utils.flop_counter.FlopCounterMode`."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# --------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    """A description of the machine and the software: CPU model, cores, threads, torch, GPU."""
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")(),
        "device": str(bench_device()),
    }
    with contextlib.suppress(OSError):
        fields: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break  # the first processor is enough
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        info["cpu"] = fields.get("model name", "?")
        info["cpu_family_model"] = f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}"
        flags = set(fields.get("flags", "").split())
        info["cpu_matrix_extensions"] = sorted(flags & {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx2"})
    with contextlib.suppress(OSError):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    if bench_device().type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(bench_device())
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["cuda"] = torch.version.cuda
    return info


def fmt_seconds(seconds: float) -> str:
    """``12.3 ms``, ``456 us`` or ``1.23 s``."""
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def geometric_mean(values: Sequence[float]) -> float:
    """Geometric mean of positive ``values``."""
    return math.exp(sum(math.log(v) for v in values) / len(values))


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Temporarily run torch with ``n`` CPU threads (``None``: leave as is)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- running comparisons


def calibrate(fn: Callable[[], Any], device: torch.device, sample_seconds: float, *, max_calls: int = 1000) -> int:
    """How many calls of ``fn`` make one timed sample of about ``sample_seconds`` (after two warm-up calls)."""
    fn()
    fn()
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    one = max(time.perf_counter() - start, 1e-7)
    return max(1, min(max_calls, round(sample_seconds / one)))


def is_cuda(device: torch.device) -> bool:
    """Whether ``device`` is a CUDA device."""
    return device.type == "cuda"


def compare(benchmark: Any, contenders: Mapping[str, Callable[[], Any]], device: torch.device, *,
            sample_seconds: float, n_rounds: int, calibrate_on: str | None = None) -> tuple[Timing, int]:
    """Calibrate on one contender (default: the last), then time them all interleaved; returns timing and calls."""
    name = calibrate_on or list(contenders)[-1]
    calls = calibrate(contenders[name], device, sample_seconds)
    interleaver = Interleaver(contenders, calls=calls, device=device)
    return run_interleaved(benchmark, interleaver, rounds(n_rounds)), calls


def report_comparison(report: Any, group: str, timing: Timing, baseline: str, *,
                      targets: Mapping[str, float] | None = None, calls: int = 1, label: str = "",
                      unit_name: str = "step") -> dict[str, float]:
    """Add each contender's time per call and its ratio to ``baseline`` to ``report``; returns the ratios.

    Ratios are read from the primary clock (:func:`primary_clock`); the rows'
    details carry the wall-clock and paired ratios, the spread and the calls.
    """
    targets = targets or {}
    ratios: dict[str, float] = {}
    wall = timing.using("wall")
    for name in timing.samples:
        report.add(group, f"{name}: time per {unit_name}", timing.median(name), kind="seconds",
                   details={"wall_median_s": wall.median(name), "spread": round(timing.spread(name), 3),
                            "rounds": len(timing.samples[name]), "calls_per_round": calls, "clock": timing.clock})
    for name in timing.samples:
        if name == baseline:
            continue
        ratio = timing.ratio(name, baseline)
        ratios[name] = ratio
        target = targets.get(name)
        report.add(group, f"{name} / {baseline}{label}", ratio, kind="ratio",
                   target=("<=", target) if target is not None else None,
                   details={"clock": timing.clock, "paired_ratio": round(timing.paired_ratio(name, baseline), 4),
                            "wall_ratio": round(wall.ratio(name, baseline), 4),
                            "min_ratio": round(min(timing.samples[name]) / min(timing.samples[baseline]), 4),
                            "wall_paired_ratio": round(wall.paired_ratio(name, baseline), 4)})
    return ratios
