"""Reading the user's pictures: finding them, decoding any colour mode, orienting, squaring, caching.

Everything here works on ordinary files with Pillow and returns ``uint8``
pixels, so a data set of ``N`` images at resolution ``R`` costs ``N * C * R * R``
bytes in memory. Decoding runs in a thread pool: Pillow releases the GIL
while it decodes and resamples, so threads scale with cores.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

#: File name endings read as images (compared in lower case).
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})

#: How many unreadable files a warning names before it only counts.
WARN_NAMES = 10

_ORIENTATION_TAG = 0x0112
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_CHUNK = 2048

Mode = Literal["RGB", "L"]


class UnreadableImagesWarning(UserWarning):
    """Some image files could not be decoded and were left out of the data set."""


def accepted_extensions() -> str:
    """The accepted extensions as ``".bmp, .jpeg, .jpg, .png, .webp"``."""
    return ", ".join(sorted(IMAGE_EXTENSIONS))


def is_image_name(name: str) -> bool:
    """Whether a file name has an accepted image extension and is not hidden (starts with a dot)."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@dataclass
class ImageListing:
    """What :func:`list_images` found in a folder.

    ``files`` are the images, sorted by their path relative to the folder;
    ``others`` counts the extensions of the non-image files seen (a hint
    when no image is found); ``errors`` lists sub-folders that could not be
    read, with the reason.
    """

    files: list[Path] = field(default_factory=list)
    others: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)


def list_images(folder: Path, *, recursive: bool = True) -> ImageListing:
    """The image files in ``folder`` (and its sub-folders when ``recursive``), in a deterministic order.

    Hidden files and folders (names starting with a dot) are skipped.
    Symbolic links are followed; a folder reached twice is read once.
    """
    listing = ImageListing()
    seen: set[str] = set()
    pending = [folder]
    while pending:
        directory = pending.pop()
        real = os.path.realpath(directory)
        if real in seen:
            continue
        seen.add(real)
        try:
            with os.scandir(directory) as entries:
                children = list(entries)
        except OSError as exc:
            if directory == folder:
                raise
            listing.errors.append((str(directory), f"{type(exc).__name__}: {exc}"))
            continue
        for entry in children:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if recursive:
                    pending.append(Path(entry.path))
            elif is_image_name(entry.name):
                listing.files.append(Path(entry.path))
            else:
                listing.others[os.path.splitext(entry.name)[1].lower() or "(no extension)"] += 1
    listing.files.sort(key=lambda path: path.relative_to(folder).parts)
    return listing


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16- and 32-bit integer or float gray images as 8-bit ``L``, rescaled rather than clipped.

    ``I;16*`` images span 0..65535. ``I`` images are taken as 16-bit when any
    value exceeds 255, else as 8-bit. ``F`` images are taken as 0..1 when no
    value exceeds 1, else as 0..255.
    """
    values = np.asarray(image).astype(np.float64)
    finite = values[np.isfinite(values)]
    peak = float(finite.max()) if finite.size else 0.0
    if image.mode.startswith("I;16") or (image.mode == "I" and peak > 255):
        values = values / 257.0
    elif image.mode == "F" and peak <= 1.0:
        values = values * 255.0
    return Image.fromarray(np.nan_to_num(values).round().clip(0, 255).astype(np.uint8), mode="L")


def to_mode(image: Image.Image, mode: Mode) -> Image.Image:
    """``image`` converted to ``"RGB"`` or ``"L"`` from any Pillow mode.

    Transparency (an alpha band or a palette / ``tRNS`` transparent colour) is
    composited onto white; high bit-depth gray is rescaled to 8 bits.
    """
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = _high_depth_to_l(image)
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if image.mode != mode:
        image = image.convert(mode)
    return image


def open_image(path: str | os.PathLike[str], mode: Mode = "RGB", *, min_size: int | None = None) -> Image.Image:
    """Decode an image file, upright (EXIF orientation applied) and in ``mode``.

    With ``min_size``, a JPEG may be decoded at a reduced scale (1/2, 1/4 or
    1/8, done by the decoder itself and much faster) as long as both sides
    stay at least ``min_size``. Raises whatever Pillow raises for a file it
    cannot read.
    """
    with Image.open(path) as opened:
        if min_size is not None and opened.format == "JPEG":
            opened.draft("L" if mode == "L" else "RGB", (min_size, min_size))
        opened.load()
        image: Image.Image = opened
        if image.getexif().get(_ORIENTATION_TAG, 1) != 1:
            image = ImageOps.exif_transpose(image)
        return to_mode(image, mode)


def square(image: Image.Image, resolution: int) -> Image.Image:
    """The centred square of ``image`` resized to ``resolution``: the shorter side is scaled to fit, the rest cropped.

    Cropping and resizing are one Lanczos resampling of the centre box.
    """
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return image.resize(
        (resolution, resolution),
        Image.Resampling.LANCZOS,
        box=(left, top, left + side, top + side),
        reducing_gap=3.0,
    )


def load_square(path: str | os.PathLike[str], resolution: int, channels: int = 3) -> np.ndarray:
    """One image file as a ``(resolution, resolution, channels)`` uint8 array: upright, centre-cropped, resized."""
    mode: Mode = "L" if channels == 1 else "RGB"
    with open_image(path, mode, min_size=2 * resolution) as image, square(image, resolution) as small:
        pixels = np.array(small, dtype=np.uint8)
    return pixels.reshape(resolution, resolution, channels)


@dataclass
class DecodedImages:
    """The result of :func:`decode_images`: pixels ``(N, C, H, W)`` uint8, the files they came from, the failures."""

    pixels: Tensor
    files: list[Path]
    skipped: list[tuple[str, str]]


def _try_load(path: Path, resolution: int, channels: int) -> np.ndarray | str:
    try:
        return load_square(path, resolution, channels)
    except Exception as exc:  # any decoder failure means "unreadable", never a crash
        return f"{type(exc).__name__}: {exc}"


def default_workers() -> int:
    """Decoding threads: one per usable core, at least 2 and at most 32."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(2, min(32, cores))


def decode_images(
    paths: Sequence[Path],
    resolution: int,
    channels: int = 3,
    *,
    limit: int | None = None,
    workers: int | None = None,
) -> DecodedImages:
    """Decode ``paths`` in parallel into one uint8 tensor ``(N, channels, resolution, resolution)``.

    Files keep the order of ``paths``. A file that cannot be decoded is left
    out and listed in ``skipped`` with the reason. With ``limit``, decoding
    stops once that many images are loaded (the first readable ones in order).
    """
    wanted = len(paths) if limit is None else min(limit, len(paths))
    pixels = torch.empty((wanted, channels, resolution, resolution), dtype=torch.uint8)
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    position = 0
    with ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="gankit-decode") as pool:
        while len(files) < wanted and position < len(paths):
            chunk = paths[position : position + min(wanted - len(files), _CHUNK)]
            position += len(chunk)
            results = pool.map(lambda p: _try_load(p, resolution, channels), chunk)
            for path, result in zip(chunk, results):
                if isinstance(result, str):
                    skipped.append((str(path), result))
                    continue
                pixels[len(files)] = torch.from_numpy(result).permute(2, 0, 1)
                files.append(path)
    if len(files) < wanted:
        pixels = pixels[: len(files)].clone()
    return DecodedImages(pixels, files, skipped)


def describe_skipped(skipped: Sequence[tuple[str, str]], folder: Path | None = None, limit: int = WARN_NAMES) -> str:
    """``"a.png (reason), b.jpg (reason) and 3 more"``: the first ``limit`` failures, named relative to ``folder``."""
    names = []
    for path, reason in skipped[:limit]:
        name = path
        if folder is not None:
            with contextlib.suppress(ValueError):
                name = str(Path(path).relative_to(folder))
        names.append(f"{name} ({reason})")
    more = len(skipped) - limit
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def warn_unreadable(skipped: Sequence[tuple[str, str]], total: int, folder: Path, stacklevel: int = 2) -> None:
    """One :class:`UnreadableImagesWarning` counting and naming the files that could not be read."""
    if not skipped:
        return
    warnings.warn(
        f"skipped {len(skipped)} of {total} image files in {folder} that could not be read: "
        f"{describe_skipped(skipped, folder)}",
        UnreadableImagesWarning,
        stacklevel=stacklevel + 1,
    )


def to_float(pixels: Tensor) -> Tensor:
    """uint8 pixels 0..255 as float32 in [-1, 1]."""
    return pixels.to(torch.float32).div_(127.5).sub_(1.0)
