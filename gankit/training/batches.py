"""Where a training step's inputs come from: real batches, latent batches, labels, and their random streams.

The trainer owns three random streams, all seeded from ``run.seed`` and saved
in every checkpoint: one for real batches (``data``), one for latents and
generated labels (``latent``), and torch's global generator for everything
else (initialisation, augmentation, regularisers' random draws). A fixed
latent batch, drawn once, makes the sample grids comparable over a run.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gankit.errors import GankitError


class RandomStreams:
    """The run's random streams for one process, seeded from ``seed`` and the process's rank."""

    def __init__(self, seed: int, rank: int, device: torch.device) -> None:
        self.seed = seed
        self.rank = rank
        self.device = device
        self.data = torch.Generator().manual_seed(seed + 1 + 1000 * rank)
        self.latent = torch.Generator(device=device).manual_seed(seed + 2 + 1000 * rank)
        if rank:
            torch.manual_seed(seed + 1000 * rank)

    def state(self) -> dict[str, Tensor]:
        """Every stream's state, as CPU tensors."""
        rng = {"torch": torch.get_rng_state(), "data": self.data.get_state(), "latent": self.latent.get_state().cpu()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def restore(self, rng: dict[str, Tensor]) -> None:
        """Put every stream back where :meth:`state` saw it."""
        torch.set_rng_state(rng["torch"])
        self.data.set_state(rng["data"])
        self.latent.set_state(rng["latent"].to(self.latent.get_state().device))
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def reseed(self, step: int) -> None:
        """New streams derived from the seed, the step and the rank (resuming on another number of processes)."""
        base = self.seed + 7919 * step + 1000 * self.rank
        torch.manual_seed(base)
        self.data.manual_seed(base + 1)
        self.latent.manual_seed(base + 2)


class Batches:
    """Draws the batches of a step: real samples (with labels when needed) and latents (with labels).

    ``transform_real`` is applied to every real batch on the device (the
    tricks' ``real_batch`` event). A conditional generator's labels are drawn
    uniformly over its ``num_classes``, or, with ``label_frequencies`` (a
    ``(num_classes,)`` tensor summing to 1, the data's), as often as each
    class occurs in the data.
    """

    def __init__(
        self,
        data: Any,
        streams: RandomStreams,
        *,
        batch_size: int,
        latent_dim: int,
        device: torch.device,
        channels_last: bool = False,
        num_classes: int = 0,
        real_labels: bool = False,
        transform_real: Any = None,
        label_frequencies: Tensor | None = None,
    ) -> None:
        self.data = data
        self.streams = streams
        self.batch_size = batch_size
        self.latent_dim = latent_dim
        self.device = device
        self.channels_last = channels_last
        self.num_classes = num_classes
        self.real_labels = real_labels
        self.transform_real = transform_real
        if (real_labels or num_classes) and not int(getattr(data, "num_classes", 0) or 0):
            raise GankitError(
                f"the networks are class-conditional, but the data source {type(data).__name__} has no labels: train "
                "on labelled data (digits, stacked-digits, or image-folder / prepared with labels = \"folders\") or "
                "set condition = \"none\" on the generator and the discriminator"
            )
        if num_classes and int(data.num_classes) != num_classes:
            raise GankitError(
                f"the generator is conditioned on {num_classes} classes but the data has {int(data.num_classes)}"
            )
        self.label_frequencies: Tensor | None = None
        if label_frequencies is not None and num_classes:
            frequencies = torch.as_tensor(label_frequencies, dtype=torch.float32).flatten()
            if frequencies.numel() != num_classes or not bool(torch.isfinite(frequencies).all()) or bool(
                (frequencies < 0).any()
            ) or float(frequencies.sum()) <= 0:
                raise GankitError(
                    f"the data's label_frequencies() must give {num_classes} non-negative numbers with a positive "
                    f"sum, got {frequencies.numel()}"
                )
            self.label_frequencies = frequencies.to(device)

    def real(self) -> tuple[Tensor, Tensor | None]:
        """A real batch on the device (and its labels when the networks need them)."""
        labels: Tensor | None = None
        if self.real_labels:
            batch, labels = self.data.sample_labelled(self.batch_size, self.streams.data)
            labels = labels.to(self.device, non_blocking=True)
        else:
            batch = self.data.sample(self.batch_size, self.streams.data)
        batch = batch.to(self.device, non_blocking=True)
        if self.channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        if self.transform_real is not None:
            batch = self.transform_real(batch)
        return batch, labels

    def latents(self, n: int | None = None) -> tuple[Tensor, Tensor | None]:
        """A latent batch from the latent stream, and labels when the generator is conditional.

        The labels come from the same stream: uniform, or with the data's label frequencies when given.
        """
        n = self.batch_size if n is None else n
        z = torch.randn(n, self.latent_dim, device=self.device, generator=self.streams.latent)
        labels = None
        if self.label_frequencies is not None:
            labels = torch.multinomial(self.label_frequencies, n, replacement=True, generator=self.streams.latent)
        elif self.num_classes:
            labels = torch.randint(self.num_classes, (n,), device=self.device, generator=self.streams.latent)
        return z, labels
