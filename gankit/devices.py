"""Device names: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, checked against this machine.

One resolver for every command and loop, so that ``--device cuda:7`` on a
machine with one GPU (or a CPU-only build of torch) and ``--device nonsense``
are one clear error naming the value, never a torch traceback.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gankit.errors import GankitError

if TYPE_CHECKING:
    import torch

#: The device names gankit accepts, in settings and on the command line.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,4})?)$")
DEVICE_CHOICES = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"


def _shown(name: object) -> str:
    text = repr(name)
    return text if len(text) <= 40 else text[:37] + "..."


def check_device_name(name: str) -> str:
    """``name`` if it is a device name gankit accepts (see :data:`DEVICE_PATTERN`), else a :class:`GankitError`."""
    if not isinstance(name, str) or not DEVICE_PATTERN.match(name.strip()):
        raise GankitError(f"device {_shown(name)}: not a device name; use {DEVICE_CHOICES}")
    return name.strip()


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch device ``name`` stands for on this machine.

    ``auto`` is CUDA when present, else MPS when present, else the CPU. A
    named device must exist: CUDA in this build of torch with that many GPUs,
    MPS available; otherwise a :class:`GankitError` says what is here.
    """
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    name = check_device_name(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is a CPU-only build" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise GankitError(f"device {name!r}: CUDA is not available here ({why}); use 'auto' or 'cpu'")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise GankitError(
                f"device {name!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise GankitError(f"device {name!r}: MPS is not available here; use 'auto' or 'cpu'")
    return device
