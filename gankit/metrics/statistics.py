"""Feature statistics for FID, gathered batch by batch, and saved as the real side's reference (``stats.npz``).

:class:`RunningGaussian` accumulates the mean and covariance of features
without keeping them (Chan et al.'s pairwise update, in float64), so FID over
50,000 images needs a ``D x D`` matrix, not 50,000 feature vectors.

A statistics file is an ``.npz`` readable with ``allow_pickle=False``:
``mu`` (``(D,)`` float64) and ``sigma`` (``(D, D)`` float64, unbiased, as
pytorch-fid writes them, so either tool reads the other's files), ``n`` (the
sample count) and ``meta`` (a JSON string: how the features were made: the
extractor, its weights' SHA-256, the resize mode, the image shape, the
source).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from gankit.errors import GankitError
from gankit.metrics.frechet import GaussianStats


class RunningGaussian:
    """Mean and covariance of feature batches ``(N, D)``, merged batch by batch in float64."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None
        self.scatter: np.ndarray | None = None
        self._kept: list[np.ndarray] | None = []  # the samples, while there are no more than features

    def update(self, features: Tensor | np.ndarray) -> None:
        """Add a batch of features."""
        batch = features.detach().cpu().double().numpy() if isinstance(features, Tensor) else features
        batch = np.asarray(batch, dtype=np.float64)
        if batch.ndim != 2:
            raise ValueError(f"features must be a matrix (N, D), got shape {batch.shape}")
        if batch.shape[0] == 0:
            return
        if not np.all(np.isfinite(batch)):
            raise ValueError("features contain NaN or infinite values")
        count = batch.shape[0]
        if self._kept is not None:
            self._kept.append(batch.copy())
            if self.n + count > batch.shape[1]:
                self._kept = None
        mean = batch.mean(axis=0)
        centred = batch - mean
        scatter = centred.T @ centred
        if self.mean is None or self.scatter is None:
            self.n, self.mean, self.scatter = count, mean, scatter
            return
        if mean.shape != self.mean.shape:
            raise ValueError(f"feature sizes differ: {self.mean.shape[0]} and {mean.shape[0]}")
        total = self.n + count
        delta = mean - self.mean
        self.scatter += scatter + np.outer(delta, delta) * (self.n * count / total)
        self.mean = self.mean + delta * (count / total)
        self.n = total

    def result(self) -> GaussianStats:
        """The mean and the unbiased covariance (divided by ``n - 1``) of everything added."""
        if self.mean is None or self.scatter is None or self.n < 2:
            raise ValueError("at least two samples are needed for a covariance")
        kept = np.concatenate(self._kept) if self._kept else None
        return GaussianStats(self.mean.copy(), self.scatter / (self.n - 1), self.n, kept)


def save_stats(path: str | os.PathLike[str], stats: GaussianStats, meta: dict[str, Any]) -> Path:
    """Write ``stats`` and ``meta`` as a statistics ``.npz`` (atomically); returns the path."""
    from gankit.files import write_bytes_atomic

    buffer = io.BytesIO()
    np.savez(
        buffer,
        mu=np.asarray(stats.mean, dtype=np.float64),
        sigma=np.asarray(stats.cov, dtype=np.float64),
        n=np.asarray(stats.n, dtype=np.int64),
        meta=np.asarray(json.dumps(meta, sort_keys=True)),
    )
    return write_bytes_atomic(Path(path), buffer.getvalue())


def load_stats(path: str | os.PathLike[str]) -> tuple[GaussianStats, dict[str, Any]]:
    """Read a statistics ``.npz`` (gankit's, or pytorch-fid's ``mu``/``sigma``) without pickle: stats and meta.

    A file without ``meta`` gives an empty dict; without ``n``, ``n`` is 0.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise GankitError(
            f"reference statistics {file} do not exist; make them with: gankit data stats SOURCE -o {file}"
        )
    try:
        with np.load(file, allow_pickle=False) as archive:
            keys = set(archive.files)
            if not {"mu", "sigma"} <= keys:
                raise GankitError(
                    f"{file}: not a statistics file: it needs arrays 'mu' and 'sigma', it has {sorted(keys)}"
                )
            mean = np.asarray(archive["mu"], dtype=np.float64)
            cov = np.asarray(archive["sigma"], dtype=np.float64)
            n = int(archive["n"]) if "n" in keys else 0
            meta = json.loads(str(archive["meta"])) if "meta" in keys else {}
    except GankitError:
        raise
    except (OSError, ValueError, EOFError) as error:
        raise GankitError(
            f"{file}: cannot read statistics ({error}); it must be an .npz without pickled data"
        ) from error
    if mean.ndim != 1 or cov.shape != (mean.size, mean.size):
        raise GankitError(f"{file}: 'mu' {mean.shape} and 'sigma' {cov.shape} do not match")
    return GaussianStats(mean, cov, n), meta
