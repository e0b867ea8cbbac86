"""What the image data sources (``image-folder``, ``prepared``) share: drawing batches, flips, labels, shards.

A source stores uint8 pixels and implements :meth:`ImageSource.pixels_at` and
(when labelled) :meth:`ImageSource.labels_at` over its own images, numbered
``0 .. len - 1``; this class draws training batches from them the way the
:class:`gankit.protocols.DataSource` protocol describes: uniformly with
replacement, every random choice from the generator the trainer passes (so a
resumed run, whose generator state is restored, continues the same order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from gankit.errors import GankitError


class ImageSource:
    """Base of the image data sources: sampling, flipping, labels and DDP shards over stored uint8 images.

    Subclasses set :attr:`shape`, :attr:`hflip`, :attr:`class_names` (empty
    when unlabelled) and :attr:`class_counts`, and implement ``__len__``,
    :meth:`pixels_at`, :meth:`labels_at` and :meth:`shard`.
    """

    shape: tuple[int, ...]
    hflip: bool = False
    class_names: list[str]
    class_counts: list[int]

    def __len__(self) -> int:
        raise NotImplementedError

    def pixels_at(self, indices: Sequence[int] | np.ndarray | Tensor) -> Tensor:
        """The stored images at ``indices``, ``(N, C, H, W)`` uint8."""
        raise NotImplementedError

    def labels_at(self, indices: Sequence[int] | np.ndarray | Tensor) -> Tensor:
        """The classes of the images at ``indices``, ``int64``."""
        raise NotImplementedError

    def shard(self, rank: int, world_size: int) -> None:
        """Keep only the images of process ``rank`` of ``world_size``: every ``world_size``-th, from ``rank``."""
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        """How many classes the labels name (0: unlabelled)."""
        return len(self.class_names)

    def label_frequencies(self) -> Tensor:
        """How often each class occurs in the whole dataset, ``(num_classes,)`` float32 summing to 1."""
        self._require_labels()
        counts = torch.tensor(self.class_counts, dtype=torch.float64)
        return (counts / counts.sum()).to(torch.float32)

    def _require_labels(self) -> None:
        if not self.class_names:
            raise GankitError(
                f"{type(self).__name__} has no labels: set labels = \"folders\" (one sub-folder per class) to "
                "train a conditional network"
            )

    def _draw(self, batch_size: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Indices drawn uniformly with replacement, then the batch (flipped when ``hflip``), float in [-1, 1]."""
        from gankit.data.images import to_float

        index = torch.randint(len(self), (batch_size,), generator=generator)
        images = to_float(self.pixels_at(index))
        if self.hflip:
            flip = torch.rand(batch_size, generator=generator) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        return images, index

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """``batch_size`` images ``(N, C, H, W)`` float32 in [-1, 1], drawn uniformly with replacement.

        Only ``generator`` supplies randomness: the indices, then (with
        ``hflip``) one coin per image for the left-right flip.
        """
        return self._draw(batch_size, generator)[0]

    def sample_labelled(self, batch_size: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """A batch as :meth:`sample` draws it (the same draws) and the classes of its images, ``int64`` ``(N,)``."""
        self._require_labels()
        images, index = self._draw(batch_size, generator)
        return images, self.labels_at(index)

    def _check_shard(self, rank: int, world_size: int, total: int) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad shard {rank} of {world_size}")
        if total < world_size:
            raise GankitError(
                f"{total} images cannot be shared among {world_size} processes: each needs at least one; "
                "use more images or fewer processes"
            )
