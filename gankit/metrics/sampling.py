"""Drawing evaluation samples: a fixed latent batch, pushed through a generator in chunks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

#: Samples per forward pass when generating for a metric.
DEFAULT_CHUNK = 500


def fixed_latents(n: int, latent_dim: int, seed: int) -> Tensor:
    """``n`` standard-normal latents ``(n, latent_dim)`` drawn on the CPU from ``seed``: the same for every call."""
    if n <= 0:
        raise ValueError(f"the number of samples must be positive, got {n}")
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))


def _device_of(generator: Any, device: Any) -> torch.device:
    if device is not None:
        return torch.device(device)
    try:
        return next(generator.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def iterate_samples(
    generator: Any, n: int, *, seed: int, device: Any = None, chunk: int = DEFAULT_CHUNK
) -> Iterator[Tensor]:
    """``n`` samples of ``generator`` from the fixed latent batch of ``seed``, yielded in float32 CPU chunks.

    The latents are those of :func:`fixed_latents` whatever ``chunk`` is. The
    generator is put in evaluation mode while sampling and restored after.
    A multi-scale generator's finest output (its last) is used.
    """
    latent_dim = int(getattr(generator, "latent_dim", 0))
    if latent_dim <= 0:
        raise ValueError("the generator has no positive latent_dim")
    latents = fixed_latents(n, latent_dim, seed)
    target = _device_of(generator, device)
    was_training = bool(getattr(generator, "training", False))
    if hasattr(generator, "eval"):
        generator.eval()
    try:
        for start in range(0, n, chunk):
            with torch.no_grad():
                out = generator(latents[start : start + chunk].to(target))
            if isinstance(out, list | tuple):
                out = out[-1]
            yield out.detach().float().cpu()
    finally:
        if was_training and hasattr(generator, "train"):
            generator.train(True)


def generate(generator: Any, n: int, *, seed: int, device: Any = None, chunk: int = DEFAULT_CHUNK) -> Tensor:
    """All ``n`` samples of :func:`iterate_samples` in one float32 CPU tensor."""
    return torch.cat(list(iterate_samples(generator, n, seed=seed, device=device, chunk=chunk)))
