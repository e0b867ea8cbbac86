"""Turning batches of generated samples into pictures: grids, strips and PNG files."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gankit.checkpoint import atomic_write_bytes
from gankit.errors import GankitError


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] of shape (N, C, H, W) → uint8 array (N, H, W, C)."""
    x = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images: torch.Tensor, *, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile a batch of images (N, C, H, W) in [-1, 1] into one uint8 picture (H', W', C)."""
    n, c, h, w = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    tiles = to_uint8(images)
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, c), 32, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top : top + h, left : left + w] = tiles[i]
    return grid


def points_picture(points: torch.Tensor, *, size: int = 256, extent: float | None = None) -> np.ndarray:
    """A scatter picture of 2-D points (N, 2), as a uint8 grayscale array."""
    pts = points.detach().float().cpu()
    if extent is None:
        extent = float(pts.abs().max().clamp(min=1.0)) * 1.1
    picture = np.full((size, size, 1), 255, dtype=np.uint8)
    xy = ((pts / extent + 1) * 0.5 * (size - 1)).round().long()
    keep = ((xy >= 0) & (xy < size)).all(dim=1)
    for x, y in xy[keep].tolist():
        picture[size - 1 - y, x, 0] = 0
    return picture


def samples_picture(samples: torch.Tensor | Sequence[torch.Tensor], *, columns: int | None = None) -> np.ndarray:
    """One picture of a batch: a grid of images, a scatter of points, or every scale side by side."""
    if isinstance(samples, list | tuple):
        largest = samples[-1].shape[-1]
        scaled = [F.interpolate(s.float(), size=(largest, largest), mode="nearest") for s in samples]
        channels = max(s.shape[1] for s in scaled)
        scaled = [s.expand(-1, channels, -1, -1) if s.shape[1] != channels else s for s in scaled]
        grids = [make_grid(s, columns=columns) for s in scaled]
        gap = np.full((grids[0].shape[0], 6, grids[0].shape[2]), 255, dtype=np.uint8)
        parts: list[np.ndarray] = []
        for grid in grids:
            parts.extend([grid, gap])
        return np.concatenate(parts[:-1], axis=1)
    assert isinstance(samples, torch.Tensor)
    if samples.dim() == 2:
        return points_picture(samples)
    return make_grid(samples, columns=columns)


#: The most images one grid holds (``gankit sample -n``, sample grids).
MAX_GRID_IMAGES = 10_000
#: The most pixels one grid picture holds (50 megapixels: 10,000 images of 64x64, or 750 of 256x256).
MAX_GRID_PIXELS = 50_000_000
#: The most points one scatter picture of 2-D samples holds.
MAX_SCATTER_POINTS = 1_000_000


def _shown(path: str | Path) -> str:
    text = str(path)
    return text if len(text) <= 200 else text[:197] + "..."


def check_picture_output(path: str | Path) -> Path:
    """Check, before any work, that a picture can be written to ``path``; returns it.

    The suffix must name a format Pillow writes (``.png``, ``.jpg``, ``.webp``, ...), the path must
    not be a folder, and its nearest existing parent must be a folder.
    """
    from PIL import Image

    file = Path(path).expanduser()
    if file.is_dir():
        raise GankitError(f"{_shown(path)}: is a folder; give a file name like out.png")
    formats = Image.registered_extensions()
    suffix = file.suffix.lower()
    if suffix not in formats or formats[suffix] not in Image.SAVE:
        shown = suffix if len(suffix) <= 20 else suffix[:17] + "..."
        raise GankitError(f"{_shown(path)}: unknown image format {shown or '(no suffix)'!r}; use .png, .jpg or .webp")
    for parent in file.parents:
        if parent.exists():
            if not parent.is_dir():
                raise GankitError(f"{_shown(path)}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise GankitError(f"{_shown(path)}: cannot write into {parent} (permission denied)")
            break
    return file


def picture_size(count: int, sample_shape: Sequence[int], *, columns: int | None = None, scales: int = 1) -> int:
    """Pixels of the picture of ``count`` samples of ``sample_shape`` (grid or scatter), before it is drawn."""
    if len(sample_shape) < 3:
        return 256 * 256
    height, width = int(sample_shape[-2]), int(sample_shape[-1])
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    return (rows * (height + 2) + 2) * scales * (columns * (width + 2) + 2)


def check_picture_size(count: int, sample_shape: Sequence[int], *, columns: int | None = None, scales: int = 1) -> None:
    """Refuse a picture of more samples than :data:`MAX_GRID_IMAGES` / :data:`MAX_GRID_PIXELS` /
    :data:`MAX_SCATTER_POINTS` allow, before they are generated."""
    if len(sample_shape) < 3:
        if count > MAX_SCATTER_POINTS:
            raise GankitError(f"-n {count}: one scatter picture holds at most {MAX_SCATTER_POINTS:,} points")
        return
    if count > MAX_GRID_IMAGES:
        raise GankitError(f"-n {count}: one grid holds at most {MAX_GRID_IMAGES:,} images; draw several grids")
    pixels = picture_size(count, sample_shape, columns=columns, scales=scales)
    if pixels > MAX_GRID_PIXELS:
        side = "x".join(str(d) for d in sample_shape[-2:])
        raise GankitError(
            f"-n {count}: a grid of {count} images of {side} px would be {pixels / 1e6:.0f} megapixels; "
            f"one grid holds at most {MAX_GRID_PIXELS / 1e6:.0f}. Draw fewer images per grid"
        )


def save_picture(picture: np.ndarray, path: str | Path) -> Path:
    """Save a uint8 picture (H, W, C) atomically; the suffix picks the format (PNG without one).

    A picture the format cannot hold is a :class:`GankitError`; an error of the file system
    (a full disk, a read-only folder) is the ``OSError`` itself, naming the file.
    """
    from PIL import Image

    path = Path(path)
    array = picture[..., 0] if picture.shape[-1] == 1 else picture
    buffer = io.BytesIO()
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG") if path.suffix else "PNG"
    if fmt not in Image.SAVE:
        check_picture_output(path)
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    try:
        Image.fromarray(array).save(buffer, format=fmt, **options)
    except (OSError, ValueError) as error:
        height, width = array.shape[:2]
        raise GankitError(
            f"{_shown(path)}: cannot write a {width}x{height} picture as {fmt} ({error}); try .png"
        ) from error
    atomic_write_bytes(path, buffer.getvalue())
    return path
