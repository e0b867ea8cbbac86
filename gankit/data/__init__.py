"""Helpers for data sources: reading, orienting, converting and caching the user's images.

The data *parts* themselves (``ring``, ``grid``, ``digits``, ``image-folder``)
live in :mod:`gankit.parts`; this package holds what they and other code
(style transfer, metrics) share.
"""

from __future__ import annotations

from gankit.data.images import (
    IMAGE_EXTENSIONS,
    DecodedImages,
    ImageListing,
    UnreadableImagesWarning,
    decode_images,
    list_images,
    load_square,
    open_image,
    square,
    to_float,
    to_mode,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "DecodedImages",
    "ImageListing",
    "UnreadableImagesWarning",
    "decode_images",
    "list_images",
    "load_square",
    "open_image",
    "square",
    "to_float",
    "to_mode",
]
