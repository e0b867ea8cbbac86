"""Choosing the device a command runs on: one resolver for training, sampling, evaluation and style transfer."""

from __future__ import annotations

import torch

from gankit.errors import GankitError


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else MPS when present, else CPU; other names as given, checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as error:
        raise GankitError(
            f"device {name!r}: not a device name; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"device {name!r}: CUDA is not available here; use 'auto' or 'cpu'")
    return device
