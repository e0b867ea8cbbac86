"""Checkpoints: safetensors files holding tensors, with the rest of the training state as JSON metadata.

No pickle anywhere: tensors go into safetensors, everything else (step,
optimiser settings, policy state, the recipe) into the file's JSON metadata.
Writes are atomic (temporary file, fsync, rename, fsync of the folder), so a
crash, Ctrl-C or a full disk leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from gankit.errors import GankitError
from gankit.files import write_bytes_atomic

FORMAT = 1
META_KEY = "gankit"
CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
_CKPT_RE = re.compile(r"^step-(\d+)\.safetensors$")


@dataclass
class Checkpoint:
    """What a checkpoint holds: named tensors and JSON-serialisable state."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    def group(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors under ``prefix/``, with the prefix removed."""
        start = prefix + "/"
        return {k[len(start) :]: v for k, v in self.tensors.items() if k.startswith(start)}

    def put(self, prefix: str, tensors: Mapping[str, torch.Tensor]) -> None:
        """Store ``tensors`` under ``prefix/``."""
        for key, value in tensors.items():
            self.tensors[f"{prefix}/{key}"] = value.detach().to("cpu").contiguous()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    write_bytes_atomic(path, data)


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write a checkpoint atomically."""
    state = dict(checkpoint.state, format=FORMAT)
    try:
        metadata = {META_KEY: json.dumps(state, allow_nan=True)}
    except TypeError as error:
        raise TypeError(f"checkpoint state is not JSON-serialisable: {error}") from error
    atomic_write_bytes(path, save_bytes(checkpoint.tensors, metadata=metadata))


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON state of a checkpoint or exported generator, without loading its tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise GankitError(f"{path}: not a readable gankit checkpoint ({error})") from error
    if META_KEY not in metadata:
        raise GankitError(f"{path}: a safetensors file, but not one written by gankit (no '{META_KEY}' metadata)")
    state: dict[str, Any] = json.loads(metadata[META_KEY])
    return state


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise GankitError(f"{path}: cannot read checkpoint: {error}") from error
    try:
        tensors = load_bytes(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise GankitError(f"{path}: corrupt or not a safetensors checkpoint ({error})") from error
    state = read_metadata(path)
    if state.get("format", 0) > FORMAT:
        raise GankitError(f"{path}: written by a newer gankit (format {state['format']}); upgrade gankit")
    return Checkpoint(tensors=dict(tensors), state=state)


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` lives in a run folder."""
    return Path(run_dir) / CHECKPOINT_DIR / f"step-{step:08d}.safetensors"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """A run's checkpoints as (step, path), oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _CKPT_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def write_run_checkpoint(run_dir: Path, step: int, checkpoint: Checkpoint, keep: int) -> Path:
    """Write the checkpoint of ``step``, point ``latest`` at it, and keep only the last ``keep``."""
    path = checkpoint_path(run_dir, step)
    save_checkpoint(path, checkpoint)
    atomic_write_bytes(path.parent / LATEST, (path.name + "\n").encode())
    for _, old in list_checkpoints(run_dir)[:-keep]:
        if old != path:
            old.unlink(missing_ok=True)
    return path


def latest_checkpoint(run_dir: Path) -> Path:
    """The run's newest readable checkpoint (the ``latest`` pointer, else the highest step)."""
    run_dir = Path(run_dir)
    folder = run_dir / CHECKPOINT_DIR
    pointer = folder / LATEST
    if pointer.is_file():
        candidate = folder / pointer.read_text().strip()
        if candidate.is_file():
            return candidate
    found = list_checkpoints(run_dir)
    if not found:
        raise GankitError(
            f"{run_dir}: no checkpoint found (looked in {folder}); is this a gankit run folder?"
        )
    return found[-1][1]


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the latest checkpoint of a run folder."""
    path = Path(path)
    if path.is_dir():
        exported = path / "generator.safetensors"
        if (path / CHECKPOINT_DIR).is_dir():
            return latest_checkpoint(path)
        if exported.is_file():
            return exported
        raise GankitError(f"{path}: not a gankit run folder (no {CHECKPOINT_DIR}/ and no generator.safetensors)")
    if not path.exists():
        raise GankitError(f"{path}: no such run folder or checkpoint file")
    return path


def state_dict_to_tensors(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a module's state dict (every value is a tensor)."""
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def split_state(state: Mapping[str, Any], prefix: str, checkpoint: Checkpoint) -> dict[str, Any]:
    """Store the tensors of a nested state dict in ``checkpoint`` and return the rest as JSON data.

    Tensors are replaced by ``{"__tensor__": key}`` markers that :func:`join_state` resolves.
    """

    def walk(value: Any, key: str) -> Any:
        if isinstance(value, torch.Tensor):
            checkpoint.put(prefix, {key: value})
            return {"__tensor__": key}
        if isinstance(value, Mapping):
            return {"__map__": [[_key_to_json(k), walk(v, f"{key}.{k}")] for k, v in value.items()]}
        if isinstance(value, list | tuple):
            return [walk(v, f"{key}.{i}") for i, v in enumerate(value)]
        return value

    result: dict[str, Any] = walk(state, "s")
    return result


def join_state(data: Any, prefix: str, checkpoint: Checkpoint) -> Any:
    """Rebuild a nested state dict stored by :func:`split_state`."""
    tensors = checkpoint.group(prefix)

    def walk(value: Any) -> Any:
        if isinstance(value, dict) and "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if isinstance(value, dict) and "__map__" in value:
            return {_key_from_json(k): walk(v) for k, v in value["__map__"]}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(data)


def _key_to_json(key: Any) -> Any:
    return {"__int__": key} if isinstance(key, int) else key


def _key_from_json(key: Any) -> Any:
    return key["__int__"] if isinstance(key, dict) else key
