"""Turning batches of generated samples into pictures: grids, strips and PNG files."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gankit.checkpoint import atomic_write_bytes


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


def save_picture(picture: np.ndarray, path: str | Path) -> Path:
    """Save a uint8 picture (H, W, C) as PNG (atomically)."""
    from PIL import Image

    path = Path(path)
    array = picture[..., 0] if picture.shape[-1] == 1 else picture
    buffer = io.BytesIO()
    fmt = (path.suffix.lstrip(".") or "png").upper()
    Image.fromarray(array).save(buffer, format="JPEG" if fmt == "JPG" else fmt)
    atomic_write_bytes(path, buffer.getvalue())
    return path
