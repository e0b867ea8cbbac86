"""Preparing a folder of images once: decode, orient, crop or pad to size, and write a prepared dataset.

:func:`prepare_folder` is what ``gankit data prepare`` runs. It reads the
folder with the same rules and the same tolerance as ``image-folder`` (files
that cannot be decoded are skipped and named), decodes in parallel threads a
few thousand images at a time (memory stays bounded whatever the folder's
size) and streams the pixels into a :class:`gankit.data.prepared.PreparedWriter`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gankit.data.images import Fit
from gankit.data.prepared import SHARD_BYTES, PreparedImages, PreparedWriter, check_destination


@dataclass(frozen=True)
class PrepareSettings:
    """How a folder becomes a prepared dataset: the same choices as ``image-folder``'s parameters."""

    resolution: tuple[int, int] = (64, 64)
    channels: int = 3
    fit: Fit = "crop"
    recursive: bool = True
    labels: bool = False
    max_images: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready settings (the ``settings`` of the index)."""
        return {
            "resolution": list(self.resolution),
            "channels": self.channels,
            "fit": self.fit,
            "recursive": self.recursive,
            "labels": "folders" if self.labels else "none",
            "max_images": self.max_images,
            "resample": "lanczos",
        }


@dataclass
class PrepareResult:
    """What :func:`prepare_folder` wrote: the dataset, opened, and the files it skipped."""

    dataset: PreparedImages
    skipped: list[tuple[str, str]] = field(default_factory=list)
    listed: int = 0


def prepare_folder(
    folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    settings: PrepareSettings,
    *,
    shard_bytes: int = SHARD_BYTES,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> PrepareResult:
    """Read every image of ``folder`` once and write them, sized by ``settings``, as a prepared dataset ``out``.

    ``progress(done, total)`` is called as files are read. Raises
    :class:`~gankit.errors.GankitError` for a folder without images, one
    where no image can be read, or a destination that holds something else.
    Nothing appears at ``out`` unless the whole dataset was written.
    """
    from gankit.data.images import find_images, iter_decoded, labels_from_folders

    source = Path(folder).expanduser().resolve()
    target = Path(out).expanduser().absolute()
    check_destination(target, overwrite)
    listing = find_images(source, recursive=settings.recursive, point="gankit data prepare FOLDER OUT",
                          recurse="leave out --no-recursive")
    files = listing.files
    labels: list[int] = []
    names: list[str] = []
    if settings.labels:
        labels, names = labels_from_folders(source, files)
    label_of = dict(zip(files, labels))
    skipped: list[tuple[str, str]] = list(listing.errors)
    height, width = settings.resolution
    shape = (settings.channels, height, width)
    limit = settings.max_images if settings.max_images is not None else len(files)
    with PreparedWriter(target, shape, shard_bytes=shard_bytes, labelled=settings.labels,
                        overwrite=overwrite) as writer:
        done = 0
        position = 0
        if progress is not None:
            progress(0, len(files))
        while writer.count < limit and position < len(files):
            part = files[position : position + min(limit - writer.count, 2048)]
            position += len(part)
            for path, result in iter_decoded(part, settings.resolution, settings.channels, settings.fit,
                                             workers=workers):
                done += 1
                if isinstance(result, str):
                    skipped.append((str(path), result))
                    continue
                writer.add(result.transpose(2, 0, 1), file=path.relative_to(source).as_posix(),
                           label=label_of[path] if settings.labels else None)
            if progress is not None:
                progress(done, len(files))
        if writer.count == 0:
            from gankit.data.images import accepted_extensions, describe_skipped
            from gankit.errors import GankitError

            raise GankitError(
                f"none of the {len(files)} image files in '{source}' could be read: "
                f"{describe_skipped(skipped, source, limit=3)}. Check that they are valid images "
                f"({accepted_extensions()})"
            )
        writer.commit(settings=settings.as_dict() | {"source": str(source)}, class_names=names, skipped=skipped)
    return PrepareResult(PreparedImages(target), skipped, len(files))
