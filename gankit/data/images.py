"""Reading the user's pictures: finding them, decoding any colour mode, orienting, cropping or padding to size.

Everything here works on ordinary files with Pillow and returns ``uint8``
pixels, so a data set of ``N`` images of ``H x W`` costs ``N * C * H * W``
bytes in memory. Decoding runs in a thread pool: Pillow releases the GIL
while it decodes and resamples, so threads scale with cores.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
from PIL import Image, ImageOps
from pydantic import Field
from torch import Tensor

#: File name endings read as images (compared in lower case).
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})

#: How many unreadable files a warning names before it only counts.
WARN_NAMES = 10

_ORIENTATION_TAG = 0x0112
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_CHUNK = 2048

Mode = Literal["RGB", "L"]

#: One side of an image, in pixels, as the data parts accept it.
Side = Annotated[int, Field(ge=4, le=4096)]
#: A resolution as the data parts accept it: a side (square images) or ``[height, width]``.
Resolution = Side | tuple[Side, Side]


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
    complete: bool = True


def list_images(folder: Path, *, recursive: bool = True, stop_after: int | None = None) -> ImageListing:
    """The image files in ``folder`` (and its sub-folders when ``recursive``), in a deterministic order.

    Hidden files and folders (names starting with a dot) are skipped.
    Symbolic links are followed; a folder reached twice is read once. With
    ``stop_after``, the search stops once more than that many images are
    found (``complete`` is then false and ``files`` holds only those found).
    """
    listing = ImageListing()
    seen: set[str] = set()
    pending = [folder]
    while pending:
        if stop_after is not None and len(listing.files) > stop_after:
            listing.complete = False
            break
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


def find_images(
    folder: Path, *, recursive: bool = True, point: str, recurse: str, stop_after: int | None = None
) -> ImageListing:
    """The images in ``folder`` (see :func:`list_images`), or a :class:`~gankit.errors.GankitError` saying why none.

    The errors end with how to fix them: ``point`` says how to name another
    folder (``"--set data.path=/path/to/images"``), ``recurse`` how to read
    sub-folders (``"--set data.recursive=true"``).
    """
    from gankit.errors import GankitError

    if not folder.exists():
        raise GankitError(f"image folder '{folder}' does not exist. Point it at a folder of images, e.g. {point}")
    if not folder.is_dir():
        raise GankitError(
            f"'{folder}' is a file, not a folder: put the images in a folder and pass the folder, e.g. {point}"
        )
    try:
        listing = list_images(folder, recursive=recursive, stop_after=stop_after)
    except OSError as exc:
        raise GankitError(f"cannot read the image folder '{folder}': {exc}") from exc
    if listing.files:
        return listing
    message = f"no images found in '{folder}'{' or its sub-folders' if recursive else ''}; accepted: "
    message += f"{accepted_extensions()} (any case; hidden files are ignored)."
    if not recursive:
        nested = len(list_images(folder, recursive=True).files)
        if nested:
            message += f" {nested} images are in sub-folders: {recurse} to use them."
    if listing.others:
        kinds = ", ".join(f"{ext} ({n})" for ext, n in listing.others.most_common(5))
        message += f" The folder holds other files: {kinds}; convert images to PNG or JPEG."
    raise GankitError(message + f" Point it at another folder, e.g. {point}.")


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


#: How an image of another aspect ratio is brought to the target size: cut to it, or fitted inside and padded.
Fit = Literal["crop", "pad"]

#: The colour of the bars ``fit="pad"`` adds: black.
PAD_VALUE = 0


def size_of(resolution: int | Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` of a resolution given as a side (a square) or as ``[height, width]``."""
    if isinstance(resolution, int):
        return resolution, resolution
    height, width = resolution
    return int(height), int(width)


def frame(image: Image.Image, size: tuple[int, int], fit: Fit = "crop") -> Image.Image:
    """``image`` brought to ``size`` = ``(height, width)``, keeping its proportions.

    ``"crop"``: the largest centred box of the target's aspect ratio is
    resized to the target (one Lanczos resampling of that box), so the image
    fills the frame and what sticks out is cut. ``"pad"``: the whole image is
    resized to fit inside the target and centred on a black frame
    (:data:`PAD_VALUE`), so nothing is cut.
    """
    height, width = size
    source_w, source_h = image.size
    if fit == "crop":
        box_w = min(float(source_w), source_h * width / height)
        box_h = box_w * height / width
        left, top = (source_w - box_w) / 2, (source_h - box_h) / 2
        return image.resize(
            (width, height), Image.Resampling.LANCZOS, box=(left, top, left + box_w, top + box_h), reducing_gap=3.0
        )
    if fit != "pad":
        raise ValueError(f"unknown fit {fit!r}: use 'crop' or 'pad'")
    scale = min(width / source_w, height / source_h)
    inner_w = min(width, max(1, round(source_w * scale)))
    inner_h = min(height, max(1, round(source_h * scale)))
    inner = image.resize((inner_w, inner_h), Image.Resampling.LANCZOS, reducing_gap=3.0)
    canvas = Image.new(image.mode, (width, height), PAD_VALUE if image.mode == "L" else (PAD_VALUE,) * 3)
    canvas.paste(inner, ((width - inner_w) // 2, (height - inner_h) // 2))
    inner.close()
    return canvas


def square(image: Image.Image, resolution: int) -> Image.Image:
    """The centred square of ``image`` resized to ``resolution``: the shorter side is scaled to fit, the rest cropped.

    Cropping and resizing are one Lanczos resampling of the centre box.
    """
    return frame(image, (resolution, resolution), "crop")


def load_framed(
    path: str | os.PathLike[str], size: tuple[int, int], channels: int = 3, fit: Fit = "crop"
) -> np.ndarray:
    """One image file as a ``(height, width, channels)`` uint8 array: upright, then :func:`frame`-d to ``size``."""
    mode: Mode = "L" if channels == 1 else "RGB"
    height, width = size
    with open_image(path, mode, min_size=2 * max(height, width)) as image, frame(image, size, fit) as small:
        pixels = np.array(small, dtype=np.uint8)
    return pixels.reshape(height, width, channels)


def load_square(path: str | os.PathLike[str], resolution: int, channels: int = 3) -> np.ndarray:
    """One image file as a ``(resolution, resolution, channels)`` uint8 array: upright, centre-cropped, resized."""
    return load_framed(path, (resolution, resolution), channels, "crop")


@dataclass
class DecodedImages:
    """The result of :func:`decode_images`: pixels ``(N, C, H, W)`` uint8, the files they came from, the failures."""

    pixels: Tensor
    files: list[Path]
    skipped: list[tuple[str, str]]


def try_load(path: Path, size: tuple[int, int], channels: int, fit: Fit = "crop") -> np.ndarray | str:
    """:func:`load_framed`, or the reason the file could not be read (any decoder failure, never a crash)."""
    try:
        return load_framed(path, size, channels, fit)
    except Exception as exc:  # any decoder failure means "unreadable", never a crash
        return f"{type(exc).__name__}: {exc}"


def default_workers() -> int:
    """Decoding threads: one per usable core, at least 2 and at most 32."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(2, min(32, cores))


def iter_decoded(
    paths: Sequence[Path],
    size: tuple[int, int],
    channels: int = 3,
    fit: Fit = "crop",
    *,
    workers: int | None = None,
    chunk: int = _CHUNK,
) -> Iterator[tuple[Path, np.ndarray | str]]:
    """Decode ``paths`` in parallel threads, yielding ``(path, pixels (H, W, C) or the reason it failed)`` in order.

    At most ``chunk`` decoded images are held at a time, so memory stays
    bounded however many files there are.
    """
    with ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="gankit-decode") as pool:
        for start in range(0, len(paths), chunk):
            part = paths[start : start + chunk]
            yield from zip(part, pool.map(lambda p: try_load(p, size, channels, fit), part))


def decode_images(
    paths: Sequence[Path],
    resolution: int | tuple[int, int],
    channels: int = 3,
    *,
    fit: Fit = "crop",
    limit: int | None = None,
    workers: int | None = None,
) -> DecodedImages:
    """Decode ``paths`` in parallel into one uint8 tensor ``(N, channels, height, width)``.

    ``resolution`` is a side (square images) or ``(height, width)``; images of
    another aspect ratio are cropped or padded as ``fit`` says (see
    :func:`frame`). Files keep the order of ``paths``. A file that cannot be
    decoded is left out and listed in ``skipped`` with the reason. With
    ``limit``, decoding stops once that many images are loaded (the first
    readable ones in order).
    """
    size = size_of(resolution)
    wanted = len(paths) if limit is None else min(limit, len(paths))
    pixels = torch.empty((wanted, channels, *size), dtype=torch.uint8)
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    position = 0
    while len(files) < wanted and position < len(paths):
        part = paths[position : position + min(wanted - len(files), _CHUNK)]
        position += len(part)
        for path, result in iter_decoded(part, size, channels, fit, workers=workers):
            if isinstance(result, str):
                skipped.append((str(path), result))
                continue
            pixels[len(files)] = torch.from_numpy(result).permute(2, 0, 1)
            files.append(path)
    if len(files) < wanted:
        pixels = pixels[: len(files)].clone()
    return DecodedImages(pixels, files, skipped)


def labels_from_folders(folder: Path, files: Sequence[Path]) -> tuple[list[int], list[str]]:
    """Each file's class from the first sub-folder of ``folder`` it lies in: ``(labels, class names)``.

    Classes are the sub-folder names that hold at least one of ``files``, in
    sorted order, numbered from 0. A file directly in ``folder`` has no class:
    :class:`~gankit.errors.GankitError` names it (and how many more there are).
    """
    from gankit.errors import GankitError

    tops: list[str] = []
    loose: list[Path] = []
    for path in files:
        parts = path.relative_to(folder).parts
        if len(parts) < 2:
            loose.append(path)
        tops.append(parts[0])
    if loose:
        more = f" and {len(loose) - 1} more" if len(loose) > 1 else ""
        raise GankitError(
            f"labels from sub-folders: '{loose[0].name}'{more} lie directly in '{folder}', in no class folder. "
            "Move every image into a sub-folder named after its class (e.g. cats/, dogs/), or train without labels"
        )
    names = sorted(set(tops))
    number = {name: i for i, name in enumerate(names)}
    return [number[top] for top in tops], names


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
