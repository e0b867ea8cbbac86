"""safetensors files with a checksum: written atomically, checked when read.

safetensors stores no checksum: a flipped bit inside a tensor, or an ``F32``
tensor relabelled ``I32`` in the header, loads without complaint. gankit adds
one to the file's metadata, under :data:`CHECKSUM_KEY`: a SHA-256 over every
other metadata entry and, tensor by tensor in name order, each tensor's name,
dtype, shape and bytes. It is computed from the serialised bytes while the file
is written (one pass over memory) and checked when the file is read; files
without it (written by an older gankit, or by another program) still load.

The header is parsed here, by gankit, before safetensors sees the file, so
that a truncated file, a garbage header or a metadata bomb is one clear error
(:class:`~gankit.errors.CorruptCheckpointError`) naming the file, never a
traceback or a huge allocation.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gankit.errors import CorruptCheckpointError, GankitError

#: The metadata key that holds the checksum, ``"sha256:<hex digest>"``.
CHECKSUM_KEY = "gankit.sha256"
#: The largest header gankit reads (safetensors' own limit).
HEADER_LIMIT = 100_000_000
_METADATA = "__metadata__"
_ALIGN = 8


@dataclass(frozen=True)
class Header:
    """The parsed header of a safetensors file: tensor entries, metadata, where the data starts."""

    tensors: dict[str, dict[str, Any]]
    metadata: dict[str, str]
    data_start: int
    data_length: int

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each tensor's shape, by name."""
        return {name: tuple(entry["shape"]) for name, entry in self.tensors.items()}


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _header_length(prefix: bytes, path: Path, size: int) -> int:
    if len(prefix) < 8:
        raise CorruptCheckpointError(f"{path}: truncated or empty file ({size} bytes), not a safetensors checkpoint")
    length = int.from_bytes(prefix[:8], "little")
    if length > HEADER_LIMIT:
        raise CorruptCheckpointError(
            f"{path}: garbage header (it claims {length} bytes of header; at most {HEADER_LIMIT} are allowed)"
        )
    if 8 + length > size:
        raise CorruptCheckpointError(
            f"{path}: truncated file: its header claims {length} bytes, the file holds {size - 8} after the length"
        )
    return length


def _check_entry(name: str, entry: Any, data_length: int, path: Path) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise CorruptCheckpointError(f"{path}: garbage header: tensor {_short(name)} is not described by a table")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or len(dtype) > 16:
        raise CorruptCheckpointError(f"{path}: garbage header: tensor {_short(name)} has dtype {_short(dtype)}")
    if not isinstance(shape, list) or len(shape) > 64 or not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**63 for d in shape
    ):
        raise CorruptCheckpointError(f"{path}: garbage header: tensor {_short(name)} has shape {_short(shape)}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise CorruptCheckpointError(
            f"{path}: garbage header: tensor {_short(name)} has data offsets {_short(offsets)}"
        )
    if offsets[1] > data_length:
        raise CorruptCheckpointError(
            f"{path}: truncated file: tensor {_short(name)} ends at byte {offsets[1]} of the data, "
            f"the file holds {data_length}"
        )
    return entry


def parse_header(prefix: bytes | memoryview, path: str | Path, size: int) -> Header:
    """Parse the header at the start of a safetensors file of ``size`` bytes (``prefix`` holds at least it)."""
    path = Path(path)
    length = _header_length(bytes(prefix[:8]), path, size)
    raw = bytes(prefix[8 : 8 + length])
    try:
        decoded = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else "not JSON"
        raise CorruptCheckpointError(f"{path}: garbage header ({reason}); not a readable safetensors file") from None
    if not isinstance(decoded, dict):
        raise CorruptCheckpointError(f"{path}: garbage header (not a JSON object); not a readable safetensors file")
    data_length = size - 8 - length
    metadata = decoded.pop(_METADATA, None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise CorruptCheckpointError(f"{path}: garbage header (its metadata is not a table of strings)")
    tensors = {name: _check_entry(name, entry, data_length, path) for name, entry in decoded.items()}
    return Header(tensors, metadata, 8 + length, data_length)


def read_header(path: str | Path) -> Header:
    """The header of a safetensors file, reading only the header's bytes."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            prefix = handle.read(8)
            length = _header_length(prefix, path, size)
            prefix += handle.read(length)
    except OSError as error:
        raise GankitError(f"{path}: cannot read ({error.strerror or error})") from error
    return parse_header(prefix, path, size)


def content_digest(header: Header, data: bytes | memoryview) -> str:
    """``"sha256:<hex>"`` over the metadata (but the checksum) and each tensor's name, dtype, shape and bytes."""
    view = memoryview(data)
    digest = hashlib.sha256()
    for key in sorted(header.metadata):
        if key != CHECKSUM_KEY:
            digest.update(json.dumps(["metadata", key, header.metadata[key]]).encode() + b"\0")
    for name in sorted(header.tensors):
        entry = header.tensors[name]
        start, end = entry["data_offsets"]
        digest.update(json.dumps(["tensor", name, entry["dtype"], entry["shape"], end - start]).encode() + b"\0")
        digest.update(view[header.data_start + start : header.data_start + end])
    return "sha256:" + digest.hexdigest()


def verify(data: bytes | memoryview, path: str | Path) -> Header:
    """Parse and check a whole file's bytes: header, bounds and (when it has one) checksum."""
    header = parse_header(data, path, len(data))
    stored = header.metadata.get(CHECKSUM_KEY)
    if stored is not None and content_digest(header, data) != stored:
        raise CorruptCheckpointError(
            f"{path}: checksum mismatch: the file is damaged (a tensor's bytes, dtype or shape, or the metadata, "
            "changed after it was written)"
        )
    return header


def with_checksum(serialised: bytes, path: str | Path = "<tensors>") -> list[bytes | memoryview]:
    """The pieces of a safetensors file: ``serialised`` (from safetensors) with a checksum added to its metadata.

    The tensor data is not copied: the last piece is a view of ``serialised``.
    """
    header = parse_header(serialised, path, len(serialised))
    metadata = dict(header.metadata)
    metadata[CHECKSUM_KEY] = content_digest(header, serialised)
    table: dict[str, Any] = {_METADATA: metadata, **header.tensors}
    text = json.dumps(table, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % _ALIGN)
    return [len(text).to_bytes(8, "little"), text, memoryview(serialised)[header.data_start :]]


def write(path: str | Path, tensors: Mapping[str, Any], metadata: Mapping[str, str]) -> Path:
    """Write ``tensors`` (torch tensors by name) and ``metadata`` to ``path`` atomically, with a checksum."""
    from safetensors.torch import save

    from gankit.files import atomic_writer

    pieces = with_checksum(save(dict(tensors), metadata=dict(metadata)), path)
    with atomic_writer(path) as handle:
        for piece in pieces:
            handle.write(piece)
    return Path(path)
