"""The base grid of a pyramid network: the small feature map that doubles, block by block, to the image size.

Square powers of two halve down to 4x4 (64x64 is 4x4 doubled four times);
other sizes halve while both sides stay even and at least 3 pixels, so
48x64 images grow from a 3x4 grid and 144x256 from 9x16.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gankit.errors import GankitError
from gankit.nn.layers import sample_shape

#: The smallest side a base grid may have.
MIN_BASE_SIDE = 3
#: The largest side a base grid may have (beyond it the image hardly halves at all).
MAX_BASE_SIDE = 16


@dataclass(frozen=True)
class Pyramid:
    """Image channels, the base grid ``(height, width)`` and how many doublings lead to the image size."""

    channels: int
    base: tuple[int, int]
    doublings: int

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """``(height, width)`` of every level, from the base grid to the image."""
        h, w = self.base
        return [(h << i, w << i) for i in range(self.doublings + 1)]


def pyramid(shape: Any, part: str, *, min_side: int = 8, max_side: int = 1024) -> Pyramid:
    """The pyramid for images of ``shape`` ``(C, H, W)``; a clear error names what the network accepts.

    ``part`` names the network in errors, e.g. ``"generator 'stylegan2'"``.
    """
    checked = sample_shape(shape, part)
    if len(checked) != 3:
        raise GankitError(
            f"{part} works on images of shape (C, H, W), got a sample shape {checked}; "
            "for points use the 'mlp' networks"
        )
    channels, height, width = checked
    if max(height, width) > max_side or min(height, width) < min_side:
        raise GankitError(
            f"{part} takes images from {min_side} to {max_side} pixels a side, got {height}x{width}; "
            "resize the data (data.resolution)"
        )
    h, w, doublings = height, width, 0
    while h % 2 == 0 and w % 2 == 0 and h // 2 >= MIN_BASE_SIDE and w // 2 >= MIN_BASE_SIDE:
        h, w, doublings = h // 2, w // 2, doublings + 1
    if doublings == 0 or max(h, w) > MAX_BASE_SIDE:
        raise GankitError(
            f"{part} needs images that halve down to a small grid ({MIN_BASE_SIDE} to {MAX_BASE_SIDE} pixels a "
            f"side), got {height}x{width}, which stops at {h}x{w}; use sizes such as 32x32, 64x64, 48x64 or "
            "144x256 (a small grid times a power of two)"
        )
    return Pyramid(channels, (h, w), doublings)
