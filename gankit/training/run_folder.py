"""The run folder: which folder a run may write into, and one process at a time.

A run folder is gankit's own: a new run goes only into a folder that does not
exist yet, an empty folder, or a folder gankit marked as its run folder (the
``.gankit-run`` file) that holds no checkpoint yet (a run killed before its
first checkpoint; its partial files are replaced). gankit never writes over a
file it did not create.

While a process trains into a folder it holds an exclusive lock on
``.gankit-lock`` (``flock`` on POSIX, ``msvcrt.locking`` on Windows). The
operating system releases the lock when the process dies, however it dies, so
a lock left by a killed process never blocks the next run; a live holder is
named (pid, host, since when) in the error.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

from gankit.errors import GankitError

MARKER_FILE = ".gankit-run"
LOCK_FILE = ".gankit-lock"
RECIPE_FILE = "recipe.toml"
METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
CHECKPOINT_DIR = "checkpoints"
EXPORT_FILE = "generator.safetensors"
LOGS_DIR = "logs"

#: What a run writes, relative to its folder: replaced when a marked folder without checkpoints is reused.
RUN_FILES = (RECIPE_FILE, METRICS_FILE, EXPORT_FILE, "report.html", "samples-over-time.gif", "stylizer.safetensors",
             "style.png")
RUN_DIRS = (SAMPLES_DIR, CHECKPOINT_DIR, LOGS_DIR)


class RunFolderBusyError(GankitError):
    """Another live process holds the run folder's lock."""


def _try_lock(handle: IO[bytes]) -> bool:
    """Take an exclusive, non-blocking lock on an open file; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as error:  # a file system without locks (some network mounts)
        raise GankitError(f"{handle.name}: cannot lock the run folder ({error.strerror or error})") from error
    return True


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {int(info['pid'])} on {str(info['host'])[:100]}, since {str(info['since'])[:40]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _stale_temporaries(folder: Path) -> list[Path]:
    """Temporary files that interrupted atomic writes left behind (``.name.XXXX.tmp``)."""
    found: list[Path] = []
    for where in (folder, folder / CHECKPOINT_DIR, folder / SAMPLES_DIR):
        if where.is_dir():
            found.extend(p for p in where.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")
                         and p.is_file())
    return found


class RunFolder:
    """A run folder, locked by this process while it trains.

    >>> with RunFolder("runs/demo").claim_new("dcgan-digits") as folder:   # doctest: +SKIP
    ...     ...
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock: IO[bytes] | None = None

    # ------------------------------------------------------------------ locking

    def _acquire(self) -> bool:
        """Lock the folder (creating the lock file); returns whether the lock file is new."""
        lock_path = self.path / LOCK_FILE
        created = not lock_path.exists()
        try:
            handle = open(lock_path, "a+b")  # noqa: SIM115 (held for the life of the run)
        except OSError as error:
            raise GankitError(f"{self.path}: cannot write into the run folder ({error.strerror or error})") from error
        if not _try_lock(handle):
            handle.close()
            raise RunFolderBusyError(
                f"{self.path} is in use by {_holder(lock_path)}: one process trains into a run folder at a time. "
                "Wait for it to finish (or stop it), or choose another folder with --out"
            )
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(info).encode())
        handle.flush()
        self._lock = handle
        return created

    def release(self) -> None:
        """Release the lock (the lock file stays; an unlocked lock file means nobody trains here)."""
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.seek(0)
                self._lock.truncate()
            self._lock.close()
            self._lock = None

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    @property
    def locked(self) -> bool:
        """Whether this object holds the folder's lock."""
        return self._lock is not None

    # ------------------------------------------------------------------ claiming

    def is_marked(self) -> bool:
        """Whether gankit marked this folder as a run folder."""
        return (self.path / MARKER_FILE).is_file()

    def has_checkpoints(self) -> bool:
        """Whether the folder holds at least one checkpoint."""
        folder = self.path / CHECKPOINT_DIR
        return folder.is_dir() and any(p.suffix == ".safetensors" for p in folder.iterdir())

    def _foreign_entries(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.name not in (LOCK_FILE,))

    def claim_new(self, recipe_name: str) -> RunFolder:
        """Lock the folder for a new run; refuse a folder that holds anything gankit did not put there.

        A folder that does not exist is created; an empty one is used; a marked
        run folder with no checkpoint (its run died early) is cleared of that
        run's files and reused. Anything else is an error that names what is
        in the way.
        """
        if self.path.exists() and not self.path.is_dir():
            raise GankitError(f"--out {self.path}: is a file, not a folder; choose a new folder for the run")
        if self.path.is_dir() and not self.is_marked():
            self._check_new()  # refuse a user's folder before putting even a lock file into it
        self._made_folder = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise GankitError(f"--out {self.path}: cannot create the run folder ({error.strerror or error})") from error
        created = self._acquire()
        try:
            self._check_new()
            self._clean_temporaries()
            self._write_marker(recipe_name)
        except BaseException:
            self.release()
            if created:
                with contextlib.suppress(OSError):
                    (self.path / LOCK_FILE).unlink()
            raise
        return self

    def abandon(self) -> None:
        """Undo :meth:`claim_new` for a run that never started (its recipe could not be built, say).

        The mark and the lock go, and the folder too when this claim created it and nothing else is in it.
        """
        self.release()
        for name in (MARKER_FILE, LOCK_FILE):
            with contextlib.suppress(OSError):
                (self.path / name).unlink()
        if getattr(self, "_made_folder", False):
            with contextlib.suppress(OSError):
                self.path.rmdir()

    def _check_new(self) -> None:
        entries = self._foreign_entries()
        if not entries:
            return
        if not self.is_marked():
            shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
            raise GankitError(
                f"--out {self.path}: the folder is not empty ({shown}) and is not a gankit run folder; "
                "gankit writes a new run only into a new or empty folder. Choose another folder with --out"
            )
        if self.has_checkpoints():
            raise GankitError(
                f"{self.path} already holds a run; resume it with: gankit train --resume {self.path} "
                "(or choose another folder with --out)"
            )
        self._clear_previous_attempt()

    def _clear_previous_attempt(self) -> None:
        """Remove the files of a marked run that died before its first checkpoint."""
        import shutil

        for name in RUN_FILES:
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
        for name in RUN_DIRS:
            shutil.rmtree(self.path / name, ignore_errors=True)

    def open_existing(self) -> RunFolder:
        """Lock an existing run folder to continue it (``--resume``)."""
        if not self.path.is_dir():
            raise GankitError(f"--resume {self.path}: no such run folder")
        if not self.is_marked() and not (self.path / CHECKPOINT_DIR).is_dir():
            raise GankitError(f"--resume {self.path}: not a gankit run folder (no {CHECKPOINT_DIR}/ folder)")
        self._acquire()
        try:
            self._clean_temporaries()
            if not self.is_marked():  # a run folder from before the marker existed
                self._write_marker(None)
        except BaseException:
            self.release()
            raise
        return self

    def _write_marker(self, recipe_name: str | None) -> None:
        from gankit import __version__
        from gankit.files import write_bytes_atomic

        info = {"gankit": __version__, "recipe": recipe_name, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        write_bytes_atomic(self.path / MARKER_FILE, (json.dumps(info) + "\n").encode())

    def _clean_temporaries(self) -> None:
        for path in _stale_temporaries(self.path):
            with contextlib.suppress(OSError):
                path.unlink()
