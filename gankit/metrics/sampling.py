"""Drawing evaluation samples: a fixed latent batch (and fixed labels), pushed through a generator in chunks.

A class-conditional generator (one with ``num_classes``) is asked for labels:
those the metric gives, else fixed labels drawn from the seed, uniformly or
as often as each class occurs in the data (:func:`evaluation_labels`).
"""

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


def fixed_labels(n: int, num_classes: int, seed: int, frequencies: Tensor | None = None) -> Tensor:
    """``n`` class labels ``(n,)`` int64 drawn on the CPU from ``seed``: uniform, or with ``frequencies``.

    The draws use their own generator (seeded ``seed + 2``), so the latents of
    :func:`fixed_latents` are the same with or without labels.
    """
    rng = torch.Generator().manual_seed(seed + 2)
    if frequencies is not None:
        return torch.multinomial(frequencies.double().cpu(), n, replacement=True, generator=rng)
    return torch.randint(num_classes, (n,), generator=rng)


def num_classes_of(generator: Any) -> int:
    """Classes a generator is conditioned on (0: unconditional)."""
    return int(getattr(generator, "num_classes", 0) or 0)


def evaluation_labels(generator: Any, data: Any, n: int, seed: int) -> Tensor | None:
    """Labels for ``n`` evaluation samples: None for an unconditional generator, else drawn as the data's classes.

    The classes follow the data's ``label_frequencies()`` when it has them (so
    that a distance to the whole data set compares like with like), else
    they are uniform.
    """
    count = num_classes_of(generator)
    if not count:
        return None
    frequencies = None
    method = getattr(data, "label_frequencies", None)
    if callable(method) and int(getattr(data, "num_classes", 0) or 0) == count:
        frequencies = torch.as_tensor(method(), dtype=torch.float64)
    return fixed_labels(n, count, seed, frequencies)


def _device_of(generator: Any, device: Any) -> torch.device:
    if device is not None:
        return torch.device(device)
    try:
        return next(generator.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def iterate_samples(
    generator: Any, n: int, *, seed: int, device: Any = None, chunk: int = DEFAULT_CHUNK, labels: Tensor | None = None
) -> Iterator[Tensor]:
    """``n`` samples of ``generator`` from the fixed latent batch of ``seed``, yielded in float32 CPU chunks.

    The latents are those of :func:`fixed_latents` whatever ``chunk`` is. A
    class-conditional generator gets ``labels`` ``(n,)``, or uniform
    :func:`fixed_labels` of ``seed`` when none are given; an unconditional
    one must get none. The generator is put in evaluation mode while
    sampling and restored after. A multi-scale generator's finest output
    (its last) is used.
    """
    latent_dim = int(getattr(generator, "latent_dim", 0))
    if latent_dim <= 0:
        raise ValueError("the generator has no positive latent_dim")
    latents = fixed_latents(n, latent_dim, seed)
    count = num_classes_of(generator)
    if labels is None and count:
        labels = fixed_labels(n, count, seed)
    if labels is not None:
        if not count:
            raise ValueError("labels were given for a generator that is not class-conditional")
        if labels.shape != (n,):
            raise ValueError(f"expected {n} labels, got shape {tuple(labels.shape)}")
    target = _device_of(generator, device)
    was_training = bool(getattr(generator, "training", False))
    if hasattr(generator, "eval"):
        generator.eval()
    try:
        for start in range(0, n, chunk):
            z = latents[start : start + chunk].to(target)
            with torch.no_grad():
                out = generator(z) if labels is None else generator(z, labels[start : start + chunk].to(target))
            if isinstance(out, list | tuple):
                out = out[-1]
            yield out.detach().float().cpu()
    finally:
        if was_training and hasattr(generator, "train"):
            generator.train(True)


def generate(
    generator: Any, n: int, *, seed: int, device: Any = None, chunk: int = DEFAULT_CHUNK, labels: Tensor | None = None
) -> Tensor:
    """All ``n`` samples of :func:`iterate_samples` in one float32 CPU tensor."""
    return torch.cat(list(iterate_samples(generator, n, seed=seed, device=device, chunk=chunk, labels=labels)))
