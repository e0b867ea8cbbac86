"""``sliced-wasserstein``: a metric for any data, comparing generated samples with real ones directly.

It needs no feature network and no knowledge of the data: points, images
(flattened) or anything a data source yields, so that a plugin's new data
source can be scored with ``gankit eval`` and ``[[metrics]]`` from the start.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gankit.hookspecs import Register
from gankit.registry import Params


class SlicedWassersteinParams(Params):
    """Parameters of the ``sliced-wasserstein`` metric."""

    samples: int = Field(2000, gt=1, le=1_000_000, description="generated and real samples compared")
    projections: int = Field(256, gt=0, le=100_000, description="random directions the samples are projected on")
    seed: int | None = Field(None, ge=0, description="seed of the latents, real batch and directions; "
                                                      "default: the run's seed")


class SlicedWassersteinMetric:
    """Sliced Wasserstein distance between generated and real samples (any data, flattened); lower is better.

    ``samples`` generated samples (from a fixed latent batch) and as many
    real ones (drawn with a generator seeded from ``seed``) are projected on
    ``projections`` random directions; the 2-Wasserstein distances of the
    sorted projections are averaged (root mean square). Returns
    ``distance``, and ``real_baseline``: the same distance between two
    independent real batches, the value a perfect generator would reach with
    this many samples. Images are compared in [-1, 1] pixel space, which
    rewards pixel statistics, not perceptual quality: use ``fid`` for that.
    """

    def __init__(self, params: SlicedWassersteinParams, **context: Any) -> None:
        self.params = params

    def __call__(self, generator: Any, data: Any, *, device: Any = None, seed: int = 0) -> dict[str, float]:
        """Compare ``samples`` generated samples with as many real ones."""
        import torch

        from gankit.metrics.sampling import evaluation_labels, generate
        from gankit.metrics.sliced import sliced_wasserstein

        seed = self.params.seed if self.params.seed is not None else seed
        n, k = self.params.samples, self.params.projections
        fake = generate(generator, n, seed=seed, device=device, labels=evaluation_labels(generator, data, n, seed))
        rng = torch.Generator().manual_seed(seed + 1)
        real = data.sample(n, rng).float().cpu()
        other = data.sample(n, rng).float().cpu()
        return {
            "distance": float(sliced_wasserstein(fake, real, projections=k, seed=seed + 2)),
            "real_baseline": float(sliced_wasserstein(other, real, projections=k, seed=seed + 2)),
            "samples": float(n),
        }


def register(register: Register) -> None:
    """Register ``sliced-wasserstein``."""
    register("metric", "sliced-wasserstein", SlicedWassersteinMetric, SlicedWassersteinParams)
