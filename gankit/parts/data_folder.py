"""``image-folder``: train on your own pictures, from a folder of PNG, JPEG, WebP or BMP files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from gankit.data.images import Fit, Resolution
from gankit.data.source import ImageSource
from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.registry import Params

_SET_PATH = "--set data.path=/path/to/images"
_RECURSE = "set --set data.recursive=true"
#: Share of the available memory the decoded images may take.
MEMORY_SHARE = 0.8


class ImageFolderParams(Params):
    """Parameters of ``image-folder``."""

    path: str = Field(
        min_length=1,
        description="folder of .png/.jpg/.jpeg/.webp/.bmp images; '~' is expanded, relative paths start "
        "from the working directory",
    )
    resolution: Resolution = Field(
        64,
        description="side of square images, or [height, width] (each 4 to 4096): images are resized and cropped "
        "(or padded, see fit) to it",
    )
    fit: Fit = Field(
        "crop",
        description="images of another aspect ratio: 'crop' fills the frame and cuts the centre out; 'pad' fits "
        "the whole image inside and adds black bars",
    )
    channels: Literal[1, 3] = Field(3, description="3 for RGB, 1 for grayscale")
    recursive: bool = Field(True, description="also read the images in sub-folders")
    hflip: bool = Field(False, description="flip each sampled image left-right with probability 1/2")
    max_images: int | None = Field(
        None, ge=1, description="load at most this many images (the first readable ones in sorted path order)"
    )
    labels: Literal["none", "folders"] = Field(
        "none",
        description="'folders': each image's class is the name of the sub-folder it lies in (cats/, dogs/, ...), "
        "for conditional networks",
    )


class ImageFolder(ImageSource):
    """Your own pictures from a folder: any colour mode, EXIF-oriented, cropped or padded to the resolution.

    Files with the extensions .png, .jpg, .jpeg, .webp and .bmp (any case) are
    read, in order of their path relative to the folder; hidden files and
    folders are ignored. Each image is turned upright from its EXIF
    orientation, converted to RGB or grayscale (transparency composited onto
    white, 16-bit gray rescaled) and brought to ``resolution`` (a side, or
    ``[height, width]``) with a Lanczos filter: cropped to the centre
    (``fit = "crop"``) or fitted inside with black bars (``"pad"``). Images
    are decoded once, in parallel threads, and kept in memory as uint8
    (:attr:`pixels`); before that, the memory they need is checked against
    what is free, and a folder too big is refused with the numbers (prepare it
    once with ``gankit data prepare`` and train from the ``prepared`` data
    instead, which reads from disk). :meth:`sample` draws uniformly with
    replacement and converts to float in [-1, 1].

    With ``labels = "folders"`` every image's class is its top-level
    sub-folder (:attr:`class_names`, sorted; :meth:`sample_labelled`).

    Files that cannot be decoded are skipped, listed in :attr:`skipped` and
    named in one :class:`gankit.data.UnreadableImagesWarning`.

    Attributes:
        path: the folder, resolved.
        files: the files loaded, in the order of :attr:`pixels`.
        skipped: ``(path, reason)`` for each file that could not be read.
        pixels: ``(N, C, H, W)`` uint8 tensor of every image.
        labels: ``(N,)`` int64 classes (empty when unlabelled).
        shape: ``(C, H, W)`` of one sample.
    """

    def __init__(self, params: ImageFolderParams, **context: Any) -> None:
        from gankit.data.images import decode_images, find_images, labels_from_folders, size_of, warn_unreadable

        self.path: Path = Path(params.path).expanduser().resolve()
        height, width = size_of(params.resolution)
        self.resolution: tuple[int, int] = (height, width)
        self.channels: int = params.channels
        self.hflip = params.hflip
        self.shape: tuple[int, ...] = (params.channels, height, width)
        image_bytes = params.channels * height * width
        fits = _images_that_fit(image_bytes)
        wanted = params.max_images
        stop_after = fits if fits is not None and (wanted is None or wanted > fits) else None
        listing = find_images(
            self.path, recursive=params.recursive, point=_SET_PATH, recurse=_RECURSE, stop_after=stop_after
        )
        candidates = listing.files
        count = len(candidates) if wanted is None else min(wanted, len(candidates))
        if fits is not None and (count > fits or not listing.complete):
            raise GankitError(_too_big(self.path, count, listing.complete, self.shape, fits))
        labels: list[int] = []
        self.class_names: list[str] = []
        if params.labels == "folders":
            labels, self.class_names = labels_from_folders(self.path, candidates)
        decoded = decode_images(candidates, self.resolution, params.channels, fit=params.fit, limit=wanted)
        self.pixels: Tensor = decoded.pixels
        self.files: list[Path] = decoded.files
        self.skipped: list[tuple[str, str]] = listing.errors + decoded.skipped
        if not self.files:
            from gankit.data.images import accepted_extensions, describe_skipped

            raise GankitError(
                f"none of the {len(candidates)} image files in '{self.path}' could be read: "
                f"{describe_skipped(self.skipped, self.path, limit=3)}. "
                f"Check that they are valid images ({accepted_extensions()}), or point data.path elsewhere "
                f"with {_SET_PATH}."
            )
        label_of = dict(zip(candidates, labels))
        self.labels: Tensor = torch.tensor([label_of[f] for f in self.files] if labels else [], dtype=torch.int64)
        self.class_counts: list[int] = (
            torch.bincount(self.labels, minlength=len(self.class_names)).tolist() if self.class_names else []
        )
        warn_unreadable(self.skipped, len(self.files) + len(self.skipped), self.path, stacklevel=3)

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def pixels_at(self, indices: Sequence[int] | np.ndarray | Tensor) -> Tensor:
        """The images at ``indices``, ``(N, C, H, W)`` uint8."""
        return self.pixels[torch.as_tensor(indices, dtype=torch.int64)]

    def labels_at(self, indices: Sequence[int] | np.ndarray | Tensor) -> Tensor:
        """The classes of the images at ``indices``, ``int64``."""
        self._require_labels()
        return self.labels[torch.as_tensor(indices, dtype=torch.int64)]

    def shard(self, rank: int, world_size: int) -> None:
        """Keep only every ``world_size``-th image from ``rank`` on (and free the others' memory)."""
        self._check_shard(rank, world_size, len(self))
        self.pixels = self.pixels[rank::world_size].clone()
        self.files = self.files[rank::world_size]
        if self.class_names:
            self.labels = self.labels[rank::world_size].clone()

    def images(self) -> Tensor:
        """Every stored image, ``(N, C, H, W)`` float32 in [-1, 1], unflipped, in the order of :attr:`files`."""
        from gankit.data.images import to_float

        return to_float(self.pixels)

    def __repr__(self) -> str:
        return f"ImageFolder('{self.path}', n={len(self)}, shape={self.shape}, skipped={len(self.skipped)})"


def _processes_on_this_machine() -> int:
    """Training processes that each hold the data on this machine (torchrun's ``LOCAL_WORLD_SIZE``, else 1)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _images_that_fit(image_bytes: int) -> int | None:
    """How many decoded images of ``image_bytes`` fit in :data:`MEMORY_SHARE` of the free memory (None: unknown)."""
    from gankit.resources import available_host_memory

    free = available_host_memory()
    if free is None:
        return None
    return int(free * MEMORY_SHARE) // (image_bytes * _processes_on_this_machine())


def _too_big(path: Path, count: int, complete: bool, shape: tuple[int, ...], fits: int) -> str:
    """The refusal of a folder whose decoded images would not fit in memory, with the numbers and the ways out."""
    from gankit.resources import available_host_memory, format_bytes

    channels, height, width = shape
    image_bytes = channels * height * width
    processes = _processes_on_this_machine()
    at_least = "" if complete else "at least "
    each = f" in each of {processes} processes" if processes > 1 else ""
    free = available_host_memory() or 0
    resolution = f"{height}" if height == width else f"{height} {width}"
    return (
        f"image-folder '{path}': {at_least}{count:,} images of {channels}x{height}x{width} "
        f"({format_bytes(image_bytes)} each) need {at_least}{format_bytes(count * image_bytes)} of memory{each}; "
        f"only {format_bytes(free * MEMORY_SHARE)} may hold images ({MEMORY_SHARE:.0%} of the "
        f"{format_bytes(free)} free), enough for {fits:,}. Prepare the folder once with "
        f"'gankit data prepare {path} OUT --resolution {resolution}' and train from it with [data] "
        f'type = "prepared", path = "OUT" (read from disk, little memory); or lower data.resolution, or set '
        "data.max_images"
    )


def register(register: Register) -> None:
    """Register ``image-folder``."""
    register("data", "image-folder", ImageFolder, ImageFolderParams)
