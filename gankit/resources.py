"""Memory checked before the work starts, not discovered by the allocator.

The networks of a recipe are built on PyTorch's ``meta`` device, which records
shapes and dtypes but allocates nothing, so a recipe asking for a width of a
billion costs nothing to inspect. From them come estimates of what training
(parameters, gradients, optimiser state, the activations of a forward pass at
the batch size) or sampling needs; a check compares the estimate with the
memory available (``MemAvailable`` and any cgroup limit on Linux,
``torch.cuda.mem_get_info`` on CUDA) and refuses with a message that names
the values, before any real allocation.

Estimates are lower bounds of the real use: a refusal means the work cannot
fit. ``GANKIT_NO_MEMORY_CHECK=1`` skips the checks (for a machine whose free
memory is misreported).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from gankit.recipe import PartSpec, Recipe

#: Set to 1 to skip the memory checks.
SKIP_ENV = "GANKIT_NO_MEMORY_CHECK"
_SKIP_HINT = f"(if this machine misreports its free memory, {SKIP_ENV}=1 skips the check)"


def checks_disabled() -> bool:
    """Whether ``GANKIT_NO_MEMORY_CHECK`` turns the memory checks off."""
    return os.environ.get(SKIP_ENV, "").strip().lower() not in ("", "0", "false", "no")


def format_bytes(count: float) -> str:
    """``1536`` → ``"1.5 KiB"``: a byte count for people."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover


def available_memory(device: torch.device) -> int | None:
    """Bytes free for tensors on ``device`` (CPU: MemAvailable and any cgroup limit), or ``None`` if unknown."""
    if device.type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    return available_host_memory()


def available_host_memory() -> int | None:
    """Bytes of main memory free for new allocations (MemAvailable and any cgroup limit), or ``None`` if unknown."""
    found: list[int] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        with contextlib.suppress(ValueError, OSError, AttributeError):
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    with contextlib.suppress(OSError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit.isdigit() and used.isdigit():
            found.append(int(limit) - int(used))
    return max(0, min(found)) if found else None


# --------------------------------------------------------------------------- meta-device networks


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def build_on_meta(spec: PartSpec, **context: Any) -> nn.Module | None:
    """Build a network part on the ``meta`` device (shapes only, no memory); ``None`` if the part cannot be."""
    import torch
    from torch import nn

    try:
        with _quiet(), torch.device("meta"):
            module = spec.build(**context)
    except GankitError:
        raise
    except Exception:  # a part that needs real tensors to build: no estimate
        return None
    return module if isinstance(module, nn.Module) else None


def tensor_bytes(module: nn.Module, *, buffers: bool = True) -> int:
    """Bytes of a module's parameters (and buffers)."""
    tensors = list(module.parameters()) + (list(module.buffers()) if buffers else [])
    return sum(t.numel() * t.element_size() for t in tensors)


def parameter_count(module: nn.Module) -> int:
    """How many numbers a module's parameters hold."""
    return sum(p.numel() for p in module.parameters())


def _nbytes(value: Any) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, list | tuple):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, Mapping):
        return sum(_nbytes(v) for v in value.values())
    return 0


@dataclass(frozen=True)
class Activations:
    """The outputs of one forward pass: their sum (kept for backward when training) and the largest layer's."""

    total: int
    largest: int
    output: Any


def forward_on_meta(module: nn.Module, inputs: Any, labels: Any = None) -> Activations | None:
    """Run ``module(inputs)`` (``module(inputs, labels)`` with labels) on meta tensors, measuring each leaf layer's
    output; ``None`` if it cannot run there."""
    import torch

    sizes: list[int] = []

    def record(layer: Any, args: Any, output: Any) -> None:
        sizes.append(_nbytes(output))

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [leaf.register_forward_hook(record) for leaf in leaves]
    try:
        with _quiet(), torch.no_grad():
            output = module(inputs) if labels is None else module(inputs, labels)
    except Exception:  # data-dependent control flow, .item(), ...: no estimate
        return None
    finally:
        for handle in handles:
            handle.remove()
    sizes.append(_nbytes(output))
    return Activations(sum(sizes), max(sizes), output)


def _meta(shape: tuple[int, ...]) -> torch.Tensor:
    import torch

    return torch.empty(shape, device="meta")


def _meta_labels(module: nn.Module, batch: int) -> torch.Tensor | None:
    """Class labels on the meta device for a class-conditional network (one with ``num_classes``), else None."""
    import torch

    if not int(getattr(module, "num_classes", 0) or 0):
        return None
    return torch.zeros(batch, dtype=torch.int64, device="meta")


# --------------------------------------------------------------------------- weights against a recipe


def check_weights_fit(module: nn.Module, shapes: Mapping[str, tuple[int, ...]], what: str, source: str) -> None:
    """Check that checkpoint tensors (``shapes``, by state-dict key) fit ``module`` (built on meta), before loading.

    A recipe in a checkpoint that asks for larger networks than the file's
    tensors is refused here, before the networks are built for real.
    """
    expected = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    shared = sorted(set(expected) & set(shapes))
    wrong = [(k, expected[k], shapes[k]) for k in shared if tuple(shapes[k]) != expected[k]]
    if not (missing or unexpected or wrong):
        return
    problems = []
    if wrong:
        key, want, got = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        problems.append(f"{key} is {list(got)} in the file but {list(want)} in the recipe's {what}{more}")
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        problems.append(f"missing {missing[0]!r}{more}")
    if unexpected:
        more = f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""
        problems.append(f"unexpected {unexpected[0][:80]!r}{more}")
    raise GankitError(f"{source}: weights do not fit the recipe's {what}: {'; '.join(problems)}")


# --------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class MemoryEstimate:
    """What a piece of work needs, in bytes, by component (``parts``), and on which device."""

    device: str
    parts: dict[str, int]
    what: str

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        shown = ", ".join(f"{name} {format_bytes(size)}" for name, size in self.parts.items() if size)
        return f"{self.what} needs at least {format_bytes(self.total)} of {self.device} memory ({shown})"


def check_memory(estimate: MemoryEstimate, device: torch.device, fix: str) -> None:
    """Refuse ``estimate`` when it exceeds the memory available on ``device``; ``fix`` says what to change."""
    if checks_disabled():
        return
    free = available_memory(device)
    if free is None or estimate.total <= free:
        return
    raise GankitError(f"{estimate.describe()}, but about {format_bytes(free)} is available. {fix} {_SKIP_HINT}")


#: Copies of the parameters each built-in optimiser keeps (moments, momentum); others are counted as one.
_OPTIMISER_COPIES = {"adam": 2, "adamw": 2, "sgd": 0, "rmsprop": 1}


def _optimiser_copies(optimiser: Any) -> int:
    """How many parameter-sized buffers an optimiser (a recipe's ``optim.*`` part) keeps."""
    name = str(getattr(optimiser, "name", ""))
    params = getattr(optimiser, "params", optimiser)
    momentum: Any = getattr(params, "momentum", None)
    copies = _OPTIMISER_COPIES.get(name, 1)
    if name in ("sgd", "rmsprop") and momentum:
        copies += 1
    return copies


def _describe_network(spec: PartSpec, module: nn.Module) -> str:
    return f"{spec.name} ({parameter_count(module):,} parameters)"


def estimate_training_memory(
    recipe: Recipe, shape: tuple[int, ...], device: torch.device, **context: Any
) -> MemoryEstimate | None:
    """What training ``recipe`` on samples of ``shape`` needs on ``device`` (``None``: a network cannot go on meta).

    Parameters, gradients and optimiser state of both networks (and an EMA
    copy of the generator with the ``ema`` trick); the real batch; and the
    activations of the larger phase: the discriminator on a real and a
    generated batch (again for a gradient penalty), or the generator and the
    discriminator on a generated batch. ``context`` goes to the network factories (``num_classes``).
    """
    settings = recipe.run
    batch = int(settings.batch_size)
    generator = build_on_meta(recipe["generator"], shape=shape, **context)
    discriminator = build_on_meta(recipe["discriminator"], shape=shape, **context)
    if generator is None or discriminator is None:
        return None
    g_bytes = tensor_bytes(generator)
    d_bytes = tensor_bytes(discriminator)
    g_params = tensor_bytes(generator, buffers=False)
    d_params = tensor_bytes(discriminator, buffers=False)
    optim = recipe["optim"]
    parts = {
        "weights": g_bytes + d_bytes,
        "gradients": g_params + d_params,
        "optimiser state": g_params * _optimiser_copies(optim["generator"])
        + d_params * _optimiser_copies(optim["discriminator"]),
    }
    if any(spec.name == "ema" for spec in recipe["tricks"]):
        parts["moving average"] = g_bytes
    parts["real batch"] = batch * math.prod(shape) * 4
    latent_dim = int(getattr(generator, "latent_dim", 0) or 0)
    g_act = forward_on_meta(generator, _meta((batch, latent_dim)), _meta_labels(generator, batch)) \
        if latent_dim > 0 else None
    d_act = forward_on_meta(discriminator, g_act.output, _meta_labels(discriminator, batch)) \
        if g_act is not None else None
    if g_act is not None and d_act is not None:
        d_phase = (3 if recipe["regularizers"] else 2) * d_act.total + _nbytes(g_act.output)
        g_phase = g_act.total + d_act.total
        scale = 0.5 if settings.precision != "fp32" else 1.0
        parts[f"activations at batch size {batch}"] = int(scale * max(d_phase, g_phase))
    what = (
        f"training generator {_describe_network(recipe['generator'], generator)} and discriminator "
        f"{_describe_network(recipe['discriminator'], discriminator)} on {tuple(shape)} samples, "
        f"run.batch_size = {batch},"
    )
    return MemoryEstimate(device.type, parts, what)


def check_training_resources(recipe: Recipe, shape: tuple[int, ...], device: torch.device, **context: Any) -> None:
    """Refuse, before any network is built for real, a training run that cannot fit in ``device``'s memory.

    The trainer calls this once the data source is built (it gives ``shape``,
    one sample's shape) and the device is resolved; ``context`` is what the
    network factories get besides ``shape`` (``num_classes``). Networks that
    cannot be built on the meta device are not checked.
    """
    if checks_disabled():
        return
    estimate = estimate_training_memory(recipe, tuple(shape), device, **context)
    if estimate is None:
        return
    check_memory(estimate, device, "Lower run.batch_size, or the networks' width or depth.")


def estimate_sampling_memory(
    generator: nn.Module, count: int, batch_size: int, device: torch.device, what: str = "sampling"
) -> MemoryEstimate:
    """What drawing ``count`` samples, ``batch_size`` at a time, from ``generator`` (built on meta) needs."""
    latent_dim = int(getattr(generator, "latent_dim", 0) or 0)
    parts = {"weights": tensor_bytes(generator)}
    chunk = max(1, min(count, batch_size))
    activations = forward_on_meta(generator, _meta((chunk, latent_dim)), _meta_labels(generator, chunk)) \
        if latent_dim > 0 else None
    if activations is not None:
        parts[f"activations of {chunk} samples"] = 2 * activations.largest
        parts[f"{count} samples"] = _nbytes(activations.output) * count // chunk
    return MemoryEstimate(device.type, parts, what)
