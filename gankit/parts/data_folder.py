"""``image-folder``: train on your own pictures, from a folder of PNG, JPEG, WebP or BMP files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.registry import Params

_SET_PATH = "--set data.path=/path/to/images"


class ImageFolderParams(Params):
    """Parameters of ``image-folder``."""

    path: str = Field(
        min_length=1,
        description="folder of .png/.jpg/.jpeg/.webp/.bmp images; '~' is expanded, relative paths start "
        "from the working directory",
    )
    resolution: int = Field(
        64, ge=4, le=4096, description="side of the square images: shorter side resized to it, then centre-cropped"
    )
    channels: Literal[1, 3] = Field(3, description="3 for RGB, 1 for grayscale")
    recursive: bool = Field(True, description="also read the images in sub-folders")
    hflip: bool = Field(False, description="flip each sampled image left-right with probability 1/2")
    max_images: int | None = Field(
        None, ge=1, description="load at most this many images (the first readable ones in sorted path order)"
    )


class ImageFolder:
    """Your own pictures from a folder: any colour mode, EXIF-oriented, centre-cropped squares.

    Files with the extensions .png, .jpg, .jpeg, .webp and .bmp (any case) are
    read, in order of their path relative to the folder; hidden files and
    folders are ignored. Each image is turned upright from its EXIF
    orientation, converted to RGB or grayscale (transparency composited onto
    white, 16-bit gray rescaled), its shorter side resized to ``resolution``
    with a Lanczos filter, and centre-cropped to a square. Images are
    decoded once, in parallel threads, and kept in memory as uint8
    (:attr:`pixels`); :meth:`sample` draws uniformly with replacement and
    converts to float in [-1, 1].

    Files that cannot be decoded are skipped, listed in :attr:`skipped` and
    named in one :class:`gankit.data.UnreadableImagesWarning`.

    Attributes:
        path: the folder, resolved.
        files: the files loaded, in the order of :attr:`pixels`.
        skipped: ``(path, reason)`` for each file that could not be read.
        pixels: ``(N, C, H, W)`` uint8 tensor of every image.
        shape: ``(C, H, W)`` of one sample.
    """

    def __init__(self, params: ImageFolderParams, **context: Any) -> None:
        from gankit.data.images import decode_images, warn_unreadable

        self.path: Path = Path(params.path).expanduser().resolve()
        self.resolution: int = params.resolution
        self.channels: int = params.channels
        self.hflip: bool = params.hflip
        self.shape: tuple[int, ...] = (params.channels, params.resolution, params.resolution)
        candidates, listing_errors = _find(self.path, params.recursive)
        decoded = decode_images(candidates, params.resolution, params.channels, limit=params.max_images)
        self.pixels: Tensor = decoded.pixels
        self.files: list[Path] = decoded.files
        self.skipped: list[tuple[str, str]] = listing_errors + decoded.skipped
        if not self.files:
            from gankit.data.images import accepted_extensions, describe_skipped

            raise GankitError(
                f"none of the {len(candidates)} image files in '{self.path}' could be read: "
                f"{describe_skipped(self.skipped, self.path, limit=3)}. "
                f"Check that they are valid images ({accepted_extensions()}), or point data.path elsewhere "
                f"with {_SET_PATH}."
            )
        warn_unreadable(self.skipped, len(self.files) + len(self.skipped), self.path, stacklevel=3)

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """``batch_size`` images ``(N, C, H, W)`` float32 in [-1, 1], drawn uniformly with replacement.

        Only ``generator`` supplies randomness: the indices, then (with
        ``hflip``) one coin per image for the left-right flip.
        """
        from gankit.data.images import to_float

        index = torch.randint(len(self), (batch_size,), generator=generator)
        images = to_float(self.pixels[index])
        if self.hflip:
            flip = torch.rand(batch_size, generator=generator) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        return images

    def images(self) -> Tensor:
        """Every stored image, ``(N, C, H, W)`` float32 in [-1, 1], unflipped, in the order of :attr:`files`."""
        from gankit.data.images import to_float

        return to_float(self.pixels)

    def __repr__(self) -> str:
        return f"ImageFolder('{self.path}', n={len(self)}, shape={self.shape}, skipped={len(self.skipped)})"


def _find(folder: Path, recursive: bool) -> tuple[list[Path], list[tuple[str, str]]]:
    """The candidate image files in ``folder`` and unreadable sub-folders, or a :class:`GankitError` saying why none."""
    from gankit.data.images import accepted_extensions, list_images

    if not folder.exists():
        raise GankitError(
            f"image folder '{folder}' does not exist. Point data.path at a folder of images, e.g. {_SET_PATH}"
        )
    if not folder.is_dir():
        raise GankitError(
            f"data.path '{folder}' is a file, not a folder: put the images in a folder and pass the folder, "
            f"e.g. --set data.path={folder.parent}"
        )
    try:
        listing = list_images(folder, recursive=recursive)
    except OSError as exc:
        raise GankitError(f"cannot read the image folder '{folder}': {exc}") from exc
    if listing.files:
        return listing.files, listing.errors
    message = f"no images found in '{folder}'{' or its sub-folders' if recursive else ''}; accepted: "
    message += f"{accepted_extensions()} (any case; hidden files are ignored)."
    if not recursive:
        nested = len(list_images(folder, recursive=True).files)
        if nested:
            message += f" {nested} images are in sub-folders: set --set data.recursive=true to use them."
    if listing.others:
        kinds = ", ".join(f"{ext} ({n})" for ext, n in listing.others.most_common(5))
        message += f" The folder holds other files: {kinds}; convert images to PNG or JPEG."
    raise GankitError(message + f" Point data.path at another folder with {_SET_PATH}.")


def register(register: Register) -> None:
    """Register ``image-folder``."""
    register("data", "image-folder", ImageFolder, ImageFolderParams)
