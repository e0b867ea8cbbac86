"""Data-parallel training on PyTorch's own engine (torch.distributed + DistributedDataParallel).

Started by ``torchrun --nproc-per-node N -m gankit train RECIPE``: torchrun sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address, and
:func:`init` joins the process group with the ``gloo`` backend on CPU and
``nccl`` on CUDA. Without those variables everything here is a no-op for a
single process.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from gankit.errors import TrainingError


class DistributedError(TrainingError):
    """Another training process failed or stopped answering; this one stops instead of hanging."""

    exit_code = 4


@dataclass(frozen=True)
class DistContext:
    """Where this process stands among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, samples, metrics and progress (rank 0)."""
        return self.rank == 0


SINGLE = DistContext()


def launched_by_torchrun() -> bool:
    """Whether the environment describes several processes (torchrun or a manual launch)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Whether this process is rank 0 (or the only process), from the environment, before joining any group."""
    return int(os.environ.get("RANK", "0")) == 0


def device_for(name: str, local_rank: int) -> str:
    """The device of one process: with CUDA, the GPU of its local rank."""
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{local_rank}"
    return name


def init(device: torch.device, timeout_s: float) -> DistContext:
    """Join the process group when launched with several processes; otherwise a single-process context."""
    if not launched_by_torchrun():
        return SINGLE
    if dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")),
                           dist.get_backend())
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    except Exception as error:
        raise DistributedError(f"could not join the training processes ({backend}): {error}") from error
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend)


def shutdown(ctx: DistContext, *, together: bool = False) -> None:
    """Leave the process group.

    With ``together`` (a run that ended normally on every process) the
    processes first wait for each other, so that none tears its connections
    down while a peer still uses them: gloo aborts a process that loses a
    peer mid-teardown. After a failure there is no waiting, since a peer may
    be gone.
    """
    if ctx.enabled and dist.is_initialized():
        if together:
            with contextlib.suppress(Exception):  # a peer lost now must not turn a finished run into a failure
                dist.barrier()
        dist.destroy_process_group()


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """All-reduce in place (``sum``, ``max`` or ``avg``) and return the tensor."""
    if op == "avg":
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= dist.get_world_size()
    else:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return tensor


def broadcast(tensor: torch.Tensor, source: int = 0) -> torch.Tensor:
    """``tensor`` as process ``source`` has it, on every process (in place)."""
    dist.broadcast(tensor, src=source)
    return tensor


def gather_states(states: dict[str, torch.Tensor], device: torch.device) -> list[dict[str, torch.Tensor]]:
    """Every rank's tensors of the same names and shapes (RNG states), indexed by rank."""
    world = dist.get_world_size()
    out: list[dict[str, torch.Tensor]] = [{} for _ in range(world)]
    for key, value in states.items():
        local = value.to(device)
        buffers = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(buffers, local)
        for rank, buffer in enumerate(buffers):
            out[rank][key] = buffer.to(value.device)
    return out


def peer_failure(error: BaseException) -> DistributedError:
    """A clear error for a collective that failed because another process died or hung."""
    return DistributedError(
        "another training process failed or stopped answering, so this one stops too "
        f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
        "Look at the other processes' output for the cause; resume with gankit train --resume RUN "
        "(on any number of processes)."
    )


def is_collective_failure(error: BaseException) -> bool:
    """Whether an exception came from a collective whose peer died or hung."""
    dist_error = getattr(dist, "DistError", None)
    if dist_error is not None and isinstance(error, dist_error):
        return True
    text = str(error).lower()
    return any(word in text for word in ("gloo", "nccl", "connection", "timed out", "timeout", "peer"))
