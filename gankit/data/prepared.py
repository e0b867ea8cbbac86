"""Prepared datasets: a folder of images decoded once into uint8 shards, read batch by batch (flat memory).

A prepared dataset is a folder:

``dataset.json``
    the index (UTF-8 JSON, written last): ``format`` (``"gankit-prepared-images"``),
    ``version`` (1), ``count``, ``shape`` (``[C, H, W]``), ``dtype`` (``"uint8"``),
    ``layout`` (``"NCHW"``), ``shards`` (each ``{"file", "count", "sha256"}``; the
    hash is of the pixel bytes after the header), ``fingerprint`` (a hash of
    every shard's hash and the shape), ``classes`` (class names, or ``null``),
    ``class_counts``, ``labels`` (``"labels.npy"`` or ``null``), ``settings``
    (how the images were made: resolution, channels, fit, ...), ``skipped``
    (how many files could not be read) and ``created_by``.
``shard-00000.npy``, ...
    the pixels: NumPy ``.npy`` files (format 1.0, a 128-byte header, then raw
    ``uint8`` data in C order) of shape ``(count, C, H, W)``; image ``i`` of the
    dataset is the ``i``-th image of the shards taken in order.
``labels.npy``
    with labels: one ``int64`` class number per image.
``files.json``
    the source file of every image (relative to the folder read) and every
    skipped file with the reason; read only when asked for.

No file needs pickle: ``numpy.load(path, allow_pickle=False)`` reads every
``.npy``. A dataset is written into a hidden temporary folder beside its
destination and renamed into place when complete, so a half-written dataset
never looks like one: without ``dataset.json`` a folder is not a prepared
dataset, and a shard whose size disagrees with the index is reported damaged.

Reading (:class:`PreparedImages`) fetches just the images of a batch with
positioned reads (``preadv``) straight into the batch's buffer: the data stays
in the operating system's file cache, shared by every process, and a
process's resident memory does not grow with the number of images.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.files import fsync_path

FORMAT = "gankit-prepared-images"
FORMAT_VERSION = 1
INDEX_FILE = "dataset.json"
FILES_FILE = "files.json"
LABELS_FILE = "labels.npy"
#: Bytes of every shard's ``.npy`` header (magic, version, length, padded dictionary).
HEADER_BYTES = 128
#: Default shard size: images are grouped into files of at most this many bytes.
SHARD_BYTES = 256 * 2**20

_PARTIAL = ".partial-"
_OLD = ".old-"


def is_prepared(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding a prepared dataset's index."""
    return (Path(path) / INDEX_FILE).is_file()


def _npy_header(count: int, shape: Sequence[int]) -> bytes:
    """A ``.npy`` format 1.0 header of exactly :data:`HEADER_BYTES` bytes for a uint8 array ``(count, *shape)``."""
    dims = ", ".join(str(int(n)) for n in (count, *shape))
    text = f"{{'descr': '|u1', 'fortran_order': False, 'shape': ({dims}), }}"
    room = HEADER_BYTES - 10 - 1
    if len(text) > room:
        raise ValueError(f"shape {(count, *shape)} does not fit a {HEADER_BYTES}-byte header")
    header = text.ljust(room) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1")


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (on Windows, where signal 0 would kill it, always assumed)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_partials(out: Path) -> list[Path]:
    """Remove the temporary folders (new or replaced datasets) of ``prepare`` runs for ``out`` whose process is
    gone; returns them."""
    removed = []
    prefixes = (f".{out.name}{_PARTIAL}", f".{out.name}{_OLD}")
    with contextlib.suppress(OSError):
        for entry in out.parent.iterdir():
            prefix = next((p for p in prefixes if entry.name.startswith(p)), None)
            if prefix is None or not entry.is_dir():
                continue
            pid_text = entry.name[len(prefix):].split("-")[0]
            if pid_text.isdigit() and _pid_alive(int(pid_text)):
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


@dataclass
class _Shard:
    file: str
    count: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)


class PreparedWriter:
    """Writes a prepared dataset image by image; nothing appears at ``out`` until :meth:`commit`.

    Use it as a context manager: leaving the block with an exception (or
    without committing) removes the temporary folder. Images are ``(C, H, W)``
    uint8 arrays of the one ``shape`` given.
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        shape: Sequence[int],
        *,
        shard_bytes: int = SHARD_BYTES,
        labelled: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.out = Path(out).expanduser().absolute()
        self.shape = tuple(int(n) for n in shape)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"image shape must be (C, H, W), got {shape}")
        self.image_bytes = int(np.prod(self.shape))
        self.per_shard = max(1, shard_bytes // self.image_bytes)
        self.labelled = labelled
        check_destination(self.out, overwrite)
        remove_stale_partials(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.out.parent / f".{self.out.name}{_PARTIAL}{os.getpid()}-{secrets.token_hex(4)}"
        self.tmp.mkdir()
        self.overwrite = overwrite
        self.shards: list[_Shard] = []
        self.labels: list[int] = []
        self.files: list[str] = []
        self._handle: Any = None
        self._committed = False

    def __enter__(self) -> PreparedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            self.abort()

    @property
    def count(self) -> int:
        """Images added so far."""
        return len(self.files)

    def add(self, pixels: np.ndarray, *, file: str, label: int | None = None) -> None:
        """Append one image ``(C, H, W)`` uint8, the file it came from and (when labelled) its class."""
        self.add_batch(pixels[None], files=[file], labels=None if label is None else [label])

    def add_batch(self, pixels: np.ndarray, *, files: Sequence[str], labels: Sequence[int] | None = None) -> None:
        """Append images ``(N, C, H, W)`` uint8, the files they came from and (when labelled) their classes."""
        if pixels.shape[1:] != self.shape or pixels.dtype != np.uint8 or pixels.ndim != 4:
            raise ValueError(f"expected uint8 images of shape (N, *{self.shape}), got {pixels.dtype} {pixels.shape}")
        if len(files) != pixels.shape[0] or (labels is not None and len(labels) != len(files)):
            raise ValueError("give one file name (and, when labelled, one label) per image")
        if self.labelled != (labels is not None):
            raise ValueError("give a label for every image of a labelled dataset, and none otherwise")
        done = 0
        while done < len(files):
            if self._handle is None or self.shards[-1].count == self.per_shard:
                self._close_shard()
                shard = _Shard(f"shard-{len(self.shards):05d}.npy")
                self.shards.append(shard)
                self._handle = open(self.tmp / shard.file, "wb")  # noqa: SIM115 (kept open across calls)
                self._handle.write(b"\0" * HEADER_BYTES)
            shard = self.shards[-1]
            take = min(len(files) - done, self.per_shard - shard.count)
            data = np.ascontiguousarray(pixels[done : done + take]).tobytes()
            self._handle.write(data)
            shard.sha256.update(data)
            shard.count += take
            done += take
        self.files.extend(files)
        if labels is not None:
            self.labels.extend(int(label) for label in labels)

    def _close_shard(self) -> None:
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        handle.seek(0)
        handle.write(_npy_header(self.shards[-1].count, self.shape))
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()

    def commit(
        self,
        *,
        settings: dict[str, Any],
        class_names: Sequence[str] | None = None,
        skipped: Sequence[tuple[str, str]] = (),
    ) -> Path:
        """Finish the shards, write labels, file list and index, and move the dataset to ``out``; returns ``out``."""
        from gankit import __version__

        if not self.files:
            raise GankitError(f"no image could be prepared for {self.out}: nothing to write")
        self._close_shard()
        counts: list[int] | None = None
        if self.labelled:
            names = list(class_names or [])
            labels = np.asarray(self.labels, dtype=np.int64)
            if labels.min() < 0 or labels.max() >= len(names):
                raise ValueError("labels must lie in [0, number of classes)")
            np.save(self.tmp / LABELS_FILE, labels, allow_pickle=False)
            fsync_path(self.tmp / LABELS_FILE)
            counts = np.bincount(labels, minlength=len(names)).tolist()
        with open(self.tmp / FILES_FILE, "w", encoding="utf-8") as handle:
            json.dump({"files": self.files, "skipped": [list(s) for s in skipped]}, handle)
        fsync_path(self.tmp / FILES_FILE)
        shards = [{"file": s.file, "count": s.count, "sha256": s.sha256.hexdigest()} for s in self.shards]
        fingerprint = hashlib.sha256(json.dumps([self.shape, [s["sha256"] for s in shards]]).encode())
        index = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "count": self.count,
            "shape": list(self.shape),
            "dtype": "uint8",
            "layout": "NCHW",
            "shards": shards,
            "fingerprint": fingerprint.hexdigest(),
            "classes": list(class_names or []) if self.labelled else None,
            "class_counts": counts,
            "labels": LABELS_FILE if self.labelled else None,
            "settings": settings,
            "skipped": len(skipped),
            "created_by": f"gankit {__version__}",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        with open(self.tmp / INDEX_FILE, "w", encoding="utf-8") as handle:
            json.dump(index, handle, indent=1)
        fsync_path(self.tmp / INDEX_FILE)
        self._move_into_place()
        self._committed = True
        return self.out

    def _move_into_place(self) -> None:
        old: Path | None = None
        if self.out.exists():
            check_destination(self.out, self.overwrite)
            if self.out.is_dir() and not any(self.out.iterdir()):
                self.out.rmdir()
            else:
                old = self.out.parent / f".{self.out.name}{_OLD}{os.getpid()}-{secrets.token_hex(4)}"
                os.replace(self.out, old)
        os.replace(self.tmp, self.out)
        with contextlib.suppress(OSError):
            fsync_path(self.out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Drop everything written so far."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        shutil.rmtree(self.tmp, ignore_errors=True)


def check_destination(out: Path, overwrite: bool) -> None:
    """Refuse to write a prepared dataset over anything but an empty folder (or, with ``overwrite``, another one)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise GankitError(f"{out} is a file: give a new folder for the prepared dataset")
    if not any(out.iterdir()):
        return
    if not is_prepared(out):
        raise GankitError(
            f"{out} is a folder that holds other files, not a prepared dataset: give a new or empty folder"
        )
    if not overwrite:
        raise GankitError(f"{out} holds a prepared dataset already: give another folder, or --overwrite to replace it")


# --------------------------------------------------------------------------- reading


@dataclass
class _ShardFile:
    file: Path
    count: int
    start: int


def _gather(handle: Any, offset: int, record: int, indices: np.ndarray, out: np.ndarray) -> None:
    """Read records ``indices`` (of ``record`` bytes, from ``offset`` on in an open file) into ``out`` ``(N, record)``.

    Positioned reads go straight into the destination, one per run of
    consecutive indices, so nothing of the file is mapped into this process.
    """
    ordered = indices.size < 2 or bool(np.all(indices[1:] >= indices[:-1]))
    order = None if ordered else np.argsort(indices, kind="stable")
    wanted = indices if order is None else indices[order]
    rows = out if order is None else np.empty_like(out)
    ends = np.append(np.nonzero(np.diff(wanted) != 1)[0] + 1, wanted.size).tolist()
    first = 0
    for last in ends:
        view = rows[first:last].data.cast("B")
        position = offset + int(wanted[first]) * record
        while view.nbytes:
            got = _read_at(handle, view, position)
            if got <= 0:
                raise GankitError(f"{handle.name}: the file ended early; the dataset is damaged, prepare it again")
            view, position = view[got:], position + got
        first = last
    if order is not None:
        out[order] = rows


def _read_at(handle: Any, view: memoryview, position: int) -> int:
    """Read into ``view`` from ``position`` of ``handle``: ``preadv`` where the system has it, else seek and read."""
    if hasattr(os, "preadv"):
        return int(os.preadv(handle.fileno(), [view], position))
    handle.seek(position)
    return int(handle.readinto(view) or 0)


def _npy_offset(path: Path) -> tuple[int, tuple[int, ...], np.dtype[Any]]:
    """Where the data of a ``.npy`` file starts, its shape and its dtype (read from the header, no pickle)."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(handle)
        if fortran or dtype.hasobject:
            raise GankitError(f"{path}: not a plain C-ordered array")
        return handle.tell(), tuple(shape), dtype


class PreparedImages:
    """A prepared dataset, opened for reading: its index, and its images read on demand.

    ``len()`` is the number of images, :attr:`shape` one image's ``(C, H, W)``;
    :meth:`pixels` reads the images at given indices into a uint8 tensor with
    positioned reads straight from the shard files. Nothing is mapped or
    cached in the process: the operating system's file cache keeps the data
    (shared by every process reading it), and this process's resident memory
    holds only the batches asked for, however many images the dataset has.
    (Memory-mapping the shards instead makes resident memory grow with every
    page touched.) Opening checks the index and the size of every shard, not
    their hashes (:meth:`verify` does that).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().resolve()
        self.index = read_index(self.path)
        channels, height, width = (int(n) for n in self.index["shape"])
        self.shape: tuple[int, int, int] = (channels, height, width)
        self.count: int = int(self.index["count"])
        self.class_names: list[str] | None = self.index.get("classes")
        self.class_counts: list[int] | None = self.index.get("class_counts")
        self.settings: dict[str, Any] = dict(self.index.get("settings") or {})
        self.fingerprint: str = str(self.index.get("fingerprint", ""))
        self._image_bytes = channels * height * width
        self._shards: list[_ShardFile] = []
        start = 0
        for entry in self.index["shards"]:
            shard = _ShardFile(self.path / entry["file"], int(entry["count"]), start)
            expected = HEADER_BYTES + shard.count * self._image_bytes
            try:
                size = shard.file.stat().st_size
            except OSError:
                raise GankitError(
                    f"{self.path}: shard {entry['file']} is missing; the dataset is incomplete, prepare it again"
                ) from None
            if size != expected:
                raise GankitError(
                    f"{shard.file}: {size} bytes where the index says {expected}; the dataset is damaged, "
                    "prepare it again"
                )
            self._shards.append(shard)
            start += shard.count
        if start != self.count:
            raise GankitError(f"{self.path / INDEX_FILE}: the shards hold {start} images, the index says {self.count}")
        self._starts = np.array([s.start for s in self._shards], dtype=np.int64)
        self._handles: dict[Path, Any] = {}

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"PreparedImages('{self.path}', n={self.count}, shape={self.shape})"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": {}}  # open files do not travel to other processes

    @property
    def labelled(self) -> bool:
        """Whether every image has a class."""
        return self.index.get("labels") is not None

    def _handle(self, file: Path) -> Any:
        if file not in self._handles:
            self._handles[file] = open(file, "rb", buffering=0)  # noqa: SIM115 (kept open while reading)
        return self._handles[file]

    def _check(self, indices: Sequence[int] | np.ndarray | Tensor) -> np.ndarray:
        order = np.asarray(indices, dtype=np.int64).reshape(-1)
        if order.size and (order.min() < 0 or order.max() >= self.count):
            raise IndexError(f"image indices must lie in [0, {self.count})")
        return order

    def pixels(self, indices: Sequence[int] | np.ndarray | Tensor) -> Tensor:
        """The images at ``indices`` (in that order) in a new ``(N, C, H, W)`` uint8 tensor."""
        order = self._check(indices)
        out = np.empty((order.size, self._image_bytes), dtype=np.uint8)
        which = np.searchsorted(self._starts, order, side="right") - 1
        shards = np.unique(which)
        for shard_number in shards:
            shard = self._shards[int(shard_number)]
            handle = self._handle(shard.file)
            if shards.size == 1:
                _gather(handle, HEADER_BYTES, self._image_bytes, order - shard.start, out)
                break
            rows = np.nonzero(which == shard_number)[0]
            part = np.empty((rows.size, self._image_bytes), dtype=np.uint8)
            _gather(handle, HEADER_BYTES, self._image_bytes, order[rows] - shard.start, part)
            out[rows] = part
        return torch.from_numpy(out.reshape(order.size, *self.shape))

    def batches(self, batch_size: int = 256) -> Iterator[Tensor]:
        """Every image in order, ``batch_size`` at a time, as uint8 tensors."""
        for start in range(0, self.count, batch_size):
            yield self.pixels(np.arange(start, min(start + batch_size, self.count)))

    def labels(self, indices: Sequence[int] | np.ndarray | Tensor) -> Tensor:
        """The classes of the images at ``indices``, an ``int64`` tensor."""
        if not self.labelled:
            raise GankitError(f"{self.path} has no labels: prepare it with --labels folders")
        order = self._check(indices)
        file = self.path / LABELS_FILE
        offset, shape, dtype = _npy_offset(file)
        if shape != (self.count,) or dtype != np.dtype("<i8"):
            raise GankitError(f"{file}: expected {self.count} int64 labels, found {dtype} {shape}")
        rows = np.empty((order.size, 8), dtype=np.uint8)
        _gather(self._handle(file), offset, 8, order, rows)
        return torch.from_numpy(rows.view("<i8").reshape(-1).astype(np.int64))

    def files(self) -> list[str]:
        """The source file of every image, in order (read from ``files.json`` on each call)."""
        with open(self.path / FILES_FILE, encoding="utf-8") as handle:
            return list(json.load(handle)["files"])

    def skipped(self) -> list[tuple[str, str]]:
        """The files that could not be read when the dataset was prepared, with the reason."""
        with open(self.path / FILES_FILE, encoding="utf-8") as handle:
            return [(str(p), str(r)) for p, r in json.load(handle)["skipped"]]

    def close(self) -> None:
        """Close the open shard files (they are opened again when needed)."""
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def verify(self) -> list[str]:
        """Re-hash every shard; returns the files whose pixels differ from the index (none for a sound dataset)."""
        bad = []
        for entry, shard in zip(self.index["shards"], self._shards, strict=True):
            digest = hashlib.sha256()
            with open(shard.file, "rb") as handle:
                handle.seek(HEADER_BYTES)
                for block in iter(lambda: handle.read(2**22), b""):
                    digest.update(block)
            if digest.hexdigest() != entry["sha256"]:
                bad.append(entry["file"])
        return bad


def read_index(path: Path) -> dict[str, Any]:
    """The index of the prepared dataset in ``path``, checked; a :class:`GankitError` says what is wrong."""
    index_file = path / INDEX_FILE
    if not path.is_dir():
        if path.exists():
            raise GankitError(f"'{path}' is a file, not a prepared dataset (a folder with dataset.json); "
                              f"make one with: gankit data prepare FOLDER OUT")
        raise GankitError(f"prepared dataset '{path}' does not exist; make it with: gankit data prepare FOLDER {path}")
    if not index_file.is_file():
        partial = "" if not any(path.iterdir()) else " (an interrupted or foreign folder)"
        raise GankitError(
            f"'{path}' is not a prepared dataset: it has no {INDEX_FILE}{partial}. "
            f"Make one with: gankit data prepare FOLDER {path}"
        )
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GankitError(f"{index_file}: cannot read the index: {error}") from error
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise GankitError(f"{index_file}: not a gankit prepared dataset (format {index.get('format')!r})")
    if index.get("version") != FORMAT_VERSION:
        raise GankitError(
            f"{index_file}: format version {index.get('version')} is not readable by this gankit "
            f"(it reads version {FORMAT_VERSION}); prepare the dataset again or upgrade gankit"
        )
    shape = index.get("shape")
    if index.get("dtype") != "uint8" or not (isinstance(shape, list) and len(shape) == 3):
        raise GankitError(f"{index_file}: expected uint8 images of shape [C, H, W], got {index.get('dtype')} {shape}")
    return index
