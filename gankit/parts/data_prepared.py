"""``prepared``: train from a prepared dataset (``gankit data prepare``), read from disk batch by batch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from torch import Tensor

from gankit.data.images import Resolution
from gankit.data.source import ImageSource
from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.registry import Params


class PreparedParams(Params):
    """Parameters of ``prepared``."""

    path: str = Field(
        min_length=1,
        description="folder written by 'gankit data prepare'; '~' is expanded, relative paths start from the "
        "working directory",
    )
    resolution: Resolution | None = Field(
        None,
        description="the resolution the dataset must have (a side or [height, width]); unset: whatever it was "
        "prepared at",
    )
    channels: Literal[1, 3] | None = Field(
        None, description="the channels the dataset must have (3 RGB, 1 gray); unset: whatever it was prepared with"
    )
    hflip: bool = Field(False, description="flip each sampled image left-right with probability 1/2")
    labels: Literal["auto", "none", "folders"] = Field(
        "auto",
        description="'auto': use the dataset's classes when it has them; 'folders': require them (prepared with "
        "--labels folders); 'none': ignore them",
    )


class Prepared(ImageSource):
    """Images from a prepared dataset: uint8 shards read from disk batch by batch, so memory stays flat.

    The images were decoded, oriented and sized once by ``gankit data
    prepare`` (see :mod:`gankit.data.prepared` for the format). Opening reads
    only the small index; :meth:`sample` draws uniformly with replacement
    from the trainer's generator and reads just the batch's images from the
    shards (the operating system's file cache keeps them, shared by every
    process; the process itself holds no more than the batch). With several
    processes, :meth:`shard` gives each a disjoint share
    (every ``world_size``-th image from its rank) without copying anything.
    A dataset prepared with ``--labels folders`` has :attr:`class_names` and
    :meth:`sample_labelled`.
    """

    def __init__(self, params: PreparedParams, **context: Any) -> None:
        from gankit.data.images import size_of
        from gankit.data.prepared import PreparedImages

        self.path = Path(params.path).expanduser().resolve()
        self.dataset = PreparedImages(self.path)
        self.shape: tuple[int, ...] = tuple(self.dataset.shape)
        if params.resolution is not None and size_of(params.resolution) != self.shape[1:]:
            height, width = size_of(params.resolution)
            raise GankitError(
                f"prepared dataset '{self.path}' holds {self.shape[1]}x{self.shape[2]} images, but data.resolution "
                f"asks for {height}x{width}: prepare it again with --resolution {height} {width}, or leave "
                "data.resolution unset"
            )
        if params.channels is not None and params.channels != self.shape[0]:
            raise GankitError(
                f"prepared dataset '{self.path}' holds {self.shape[0]}-channel images, but data.channels asks for "
                f"{params.channels}: prepare it again with --channels {params.channels}, or leave data.channels unset"
            )
        if params.labels == "folders" and not self.dataset.labelled:
            raise GankitError(
                f"prepared dataset '{self.path}' has no labels, but data.labels = \"folders\": prepare it again with "
                "--labels folders (one sub-folder per class), or set data.labels = \"none\""
            )
        self.hflip = params.hflip
        use_labels = params.labels != "none" and self.dataset.labelled
        self.class_names: list[str] = list(self.dataset.class_names or []) if use_labels else []
        self.class_counts: list[int] = list(self.dataset.class_counts or []) if use_labels else []
        self.rank = 0
        self.world_size = 1

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.world_size))

    def _global(self, indices: Sequence[int] | np.ndarray | Tensor) -> np.ndarray:
        local = np.asarray(indices, dtype=np.int64)
        if local.size and (local.min() < 0 or local.max() >= len(self)):
            raise IndexError(f"image indices must lie in [0, {len(self)})")
        return self.rank + local * self.world_size

    def pixels_at(self, indices: Sequence[int] | np.ndarray | Tensor) -> Tensor:
        """The images at ``indices`` of this process's share, ``(N, C, H, W)`` uint8."""
        return self.dataset.pixels(self._global(indices))

    def labels_at(self, indices: Sequence[int] | np.ndarray | Tensor) -> Tensor:
        """The classes of the images at ``indices`` of this process's share, ``int64``."""
        self._require_labels()
        return self.dataset.labels(self._global(indices))

    def shard(self, rank: int, world_size: int) -> None:
        """Keep only image ``rank``, ``rank + world_size``, ... of the dataset (nothing is copied)."""
        self._check_shard(rank, world_size, len(self.dataset))
        self.rank, self.world_size = rank, world_size

    def __repr__(self) -> str:
        share = f", shard {self.rank} of {self.world_size}" if self.world_size > 1 else ""
        return f"Prepared('{self.path}', n={len(self)}, shape={self.shape}{share})"


def register(register: Register) -> None:
    """Register ``prepared``."""
    register("data", "prepared", Prepared, PreparedParams)
