"""Helpers for data sources: reading, orienting, converting and caching the user's images.

The data *parts* themselves (``ring``, ``grid``, ``digits``, ``image-folder``,
``prepared``) live in :mod:`gankit.parts`; this package holds what they and
other code (style transfer, metrics, ``gankit data``) share: reading and sizing
images (:mod:`gankit.data.images`), prepared datasets
(:mod:`gankit.data.prepared`, :mod:`gankit.data.prepare`) and the sampling
the image sources share (:mod:`gankit.data.source`).
"""

from __future__ import annotations

from gankit.data.images import (
    IMAGE_EXTENSIONS,
    DecodedImages,
    ImageListing,
    UnreadableImagesWarning,
    decode_images,
    frame,
    labels_from_folders,
    list_images,
    load_framed,
    load_square,
    open_image,
    size_of,
    square,
    to_float,
    to_mode,
)
from gankit.data.prepare import PrepareResult, PrepareSettings, prepare_folder
from gankit.data.prepared import PreparedImages, PreparedWriter, is_prepared

__all__ = [
    "IMAGE_EXTENSIONS",
    "DecodedImages",
    "ImageListing",
    "PrepareResult",
    "PrepareSettings",
    "PreparedImages",
    "PreparedWriter",
    "UnreadableImagesWarning",
    "decode_images",
    "frame",
    "is_prepared",
    "labels_from_folders",
    "list_images",
    "load_framed",
    "load_square",
    "open_image",
    "prepare_folder",
    "size_of",
    "square",
    "to_float",
    "to_mode",
]
