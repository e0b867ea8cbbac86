"""Writing files atomically: readers see the old file or the whole new one, never a part.

Every file gankit writes (checkpoints, exported generators, samples, reports,
downloaded weights, stylised images) goes through here: a temporary file beside
the target, flushed and fsynced, renamed over it, and the folder fsynced, so a
crash, Ctrl-C or a full disk never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_path(folder: Path) -> None:
    """Flush a file or folder to disk (best effort: a file system that cannot is left alone)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``, on error it is removed.

    Parent folders are created; the file gets the usual permissions (0666 less the umask). An
    ``OSError`` (a full disk, a read-only folder) names ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise _naming(error, path) from error
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(error, OSError) and error.filename is None:
            raise _naming(error, path) from error
        raise
    fsync_path(path.parent)


def _naming(error: OSError, path: Path) -> OSError:
    """``error`` naming the file being written (a full disk's error names no file)."""
    if error.errno is None:
        return error
    return OSError(error.errno, error.strerror, str(path))


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_writer(path) as handle:
        handle.write(data)
    return Path(path)
