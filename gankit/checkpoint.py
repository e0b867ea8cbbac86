"""Checkpoints: safetensors files holding tensors, with the rest of the training state as JSON metadata.

No pickle anywhere: tensors go into safetensors, everything else (step,
optimiser settings, policy state, the recipe) into the file's JSON metadata.
Writes are atomic (temporary file, fsync, rename, fsync of the folder), so a
crash, Ctrl-C or a full disk leaves the previous checkpoint intact. Every file
carries a checksum of its tensors and state (:mod:`gankit.tensorfile`), checked
when it is read; the state is checked key by key (:func:`parse_state`). Loading
a run folder skips a damaged newest checkpoint with a warning and uses the
previous one; ``checkpoints/latest`` is only a hint, never a path to follow.
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

from gankit import tensorfile
from gankit.errors import CorruptCheckpointError, GankitError
from gankit.files import write_bytes_atomic

FORMAT = 1
META_KEY = "gankit"
CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
EXPORT_FILE = "generator.safetensors"
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


# --------------------------------------------------------------------------- the state's JSON

#: How deeply the JSON state may nest (gankit's own states nest about ten levels).
MAX_STATE_DEPTH = 64


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _is_number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _is_optim(value: Any) -> bool:
    """A GAN run's two optimiser states (a table per network), or another task's one state (a table)."""
    if not isinstance(value, dict):
        return False
    networks = [k for k in ("generator", "discriminator") if k in value]
    return all(isinstance(value[k], dict) for k in networks) and (len(networks) in (0, 2))


#: Keys of a checkpoint's state that gankit reads: (check, what a good value is).
STATE_KEYS: dict[str, tuple[Any, str]] = {
    "format": (_is_count, "a non-negative integer"),
    "step": (_is_count, "a non-negative integer"),
    "recipe": (lambda v: isinstance(v, str), "the recipe as TOML text"),
    "recipe_name": (lambda v: isinstance(v, str), "a string"),
    "gankit_version": (lambda v: isinstance(v, str), "a string"),
    "part_versions": (
        lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        "a table of strings",
    ),
    "exported": (lambda v: isinstance(v, bool), "true or false"),
    "world_size": (lambda v: _is_count(v) and v >= 1, "a positive integer"),
    "d_step_count": (_is_count, "a non-negative integer"),
    "skips": (_is_count, "a non-negative integer"),
    "best_value": (_is_number_or_none, "a number or null"),
    "optim": (_is_optim, "a table of optimiser state (a GAN's: 'generator' and 'discriminator' tables)"),
    "balance": (lambda v: v is None or isinstance(v, dict), "a table or null"),
    "tricks": (lambda v: v is None or (isinstance(v, list) and all(x is None or isinstance(x, dict | list) for x in v)),
               "a list of tables or nulls"),
    "scaler": (lambda v: v is None or isinstance(v, dict), "a table or null"),
    "g_step_count": (_is_count, "a non-negative integer"),
    "regularizers": (lambda v: v is None or (isinstance(v, list) and all(x is None or isinstance(x, dict | list)
                                                                          for x in v)), "a list of tables or nulls"),
    "data_shape": (lambda v: isinstance(v, list) and 0 < len(v) <= 8 and all(_is_count(d) and d > 0 for d in v),
                   "a list of positive sizes"),
    "num_classes": (_is_count, "a non-negative integer"),
    "class_names": (lambda v: v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
                    "a list of names or null"),
}


def _depth(value: Any) -> int:
    """How deeply a JSON value nests (iteratively: a deep value must not overflow the stack)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_STATE_DEPTH:
                return level
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_state(text: str, path: str | Path) -> dict[str, Any]:
    """Parse and check a checkpoint's JSON state; one clear :class:`CorruptCheckpointError` naming the key if bad."""
    try:
        state = json.loads(text)
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else "not valid JSON"
        raise CorruptCheckpointError(f"{path}: checkpoint metadata '{META_KEY}' is {reason}") from None
    if not isinstance(state, dict):
        raise CorruptCheckpointError(
            f"{path}: checkpoint metadata '{META_KEY}' must be a JSON object, got {_short(state)}"
        )
    if _depth(state) > MAX_STATE_DEPTH:
        raise CorruptCheckpointError(
            f"{path}: checkpoint metadata nests deeper than {MAX_STATE_DEPTH} levels; not a gankit checkpoint"
        )
    required = ["step", "recipe"] if state.get("exported") is True else ["step", "recipe", "optim"]
    for key in required:
        if key not in state:
            raise CorruptCheckpointError(f"{path}: checkpoint metadata has no key '{key}'; the file is damaged")
    for key, (check, wanted) in STATE_KEYS.items():
        if key in state and not check(state[key]):
            raise CorruptCheckpointError(
                f"{path}: checkpoint metadata key '{key}' must be {wanted}, got {_short(state[key])}"
            )
    return state


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write a checkpoint atomically, with a checksum of its tensors and state (see :mod:`gankit.tensorfile`)."""
    state = dict(checkpoint.state, format=FORMAT)
    try:
        metadata = {META_KEY: json.dumps(state, allow_nan=True)}
    except TypeError as error:
        raise TypeError(f"checkpoint state is not JSON-serialisable: {error}") from error
    tensorfile.write(path, checkpoint.tensors, metadata)


def _state_of(metadata: Mapping[str, str], path: Path) -> dict[str, Any]:
    if META_KEY not in metadata:
        raise CorruptCheckpointError(
            f"{path}: a safetensors file, but not one written by gankit (no '{META_KEY}' metadata)"
        )
    state = parse_state(metadata[META_KEY], path)
    if state.get("format", 0) > FORMAT:
        raise GankitError(f"{path}: written by a newer gankit (format {state['format']}); upgrade gankit")
    return state


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON state of a checkpoint or exported generator, reading only the file's header."""
    path = Path(path)
    return _state_of(tensorfile.read_header(path).metadata, path)


def _check_fits_in_memory(path: Path) -> None:
    from gankit.resources import MemoryEstimate, check_memory, format_bytes

    try:
        size = path.stat().st_size
    except OSError as error:
        raise GankitError(f"{path}: cannot read checkpoint: {error.strerror or error}") from error
    estimate = MemoryEstimate("cpu", {"the file and its tensors": 2 * size},
                              f"loading {path} ({format_bytes(size)})")
    check_memory(estimate, torch.device("cpu"), "Load it on a machine with more memory.")


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`, checking its header, checksum and state.

    A damaged file raises :class:`~gankit.errors.CorruptCheckpointError` naming it.
    """
    path = Path(path)
    if path.is_dir():
        raise GankitError(f"{path}: is a folder, not a checkpoint file")
    _check_fits_in_memory(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise GankitError(f"{path}: cannot read checkpoint: {error.strerror or error}") from error
    header = tensorfile.verify(data, path)
    state = _state_of(header.metadata, path)
    try:
        tensors = load_bytes(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise CorruptCheckpointError(f"{path}: corrupt safetensors data ({_short(str(error), 200)})") from error
    return Checkpoint(tensors=dict(tensors), state=state)


# --------------------------------------------------------------------------- run folders


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` lives in a run folder."""
    return Path(run_dir) / CHECKPOINT_DIR / f"step-{step:08d}.safetensors"


def _is_plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """A run's checkpoints as (step, path), oldest first (plain ``step-N.safetensors`` files only)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _CKPT_RE.match(path.name)
        if match and _is_plain_file(path):
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


def _warn(message: str) -> None:
    import warnings

    from gankit.errors import GankitWarning

    warnings.warn(message, GankitWarning, stacklevel=4)


def _pointed_checkpoint(folder: Path) -> Path | None:
    """The checkpoint ``latest`` names, when it names a plain ``step-N.safetensors`` file in ``folder``.

    Anything else (garbage bytes, invalid UTF-8, a path such as ``../../etc/hostname``, a
    symbolic link) is ignored with a warning: ``latest`` is a hint, never a path to follow.
    """
    pointer = folder / LATEST
    if not pointer.exists():
        return None
    try:
        with open(pointer, "rb") as handle:
            raw = handle.read(256)
        name = raw.decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        name = ""
    candidate = folder / name if _CKPT_RE.match(name) else None
    if candidate is None or not _is_plain_file(candidate):
        _warn(f"{pointer} does not name a checkpoint file in {folder}; ignoring it and using the highest step")
        return None
    return candidate


def _candidates(run_dir: Path) -> list[Path]:
    """The run's checkpoints to try, best first: the one ``latest`` names, then the others, newest first."""
    folder = run_dir / CHECKPOINT_DIR
    pointed = _pointed_checkpoint(folder) if folder.is_dir() else None
    others = [path for _, path in reversed(list_checkpoints(run_dir)) if path != pointed]
    return [pointed, *others] if pointed is not None else others


def load_latest_checkpoint(run_dir: Path) -> tuple[Path, Checkpoint]:
    """The run's newest good checkpoint and its path.

    A newest checkpoint that is damaged (truncated, a garbage header, a failed
    checksum, bad metadata) is skipped with a :class:`~gankit.errors.GankitWarning`
    naming it, and the previous one is used.
    """
    run_dir = Path(run_dir)
    folder = run_dir / CHECKPOINT_DIR
    skipped: list[str] = []
    for path in _candidates(run_dir):
        try:
            checkpoint = load_checkpoint(path)
        except CorruptCheckpointError as error:
            _warn(f"skipping a damaged checkpoint: {error}")
            skipped.append(path.name)
            continue
        return path, checkpoint
    if skipped:
        raise CorruptCheckpointError(
            f"{run_dir}: every checkpoint is damaged ({', '.join(skipped)}); nothing to load"
        )
    raise GankitError(f"{run_dir}: no checkpoint found (looked in {folder}); is this a gankit run folder?")


def latest_checkpoint(run_dir: Path) -> Path:
    """The run's newest good checkpoint (the one ``latest`` names, else the highest step); damaged ones are skipped.

    Each candidate is read and checked; :func:`load_latest_checkpoint` returns the loaded checkpoint as well.
    """
    return load_latest_checkpoint(run_dir)[0]


def _source_kind(path: Path) -> str:
    """``"run"`` (a run folder with checkpoints), ``"export"`` (a folder with generator.safetensors) or ``"file"``."""
    if path.is_dir():
        if (path / CHECKPOINT_DIR).is_dir():
            return "run"
        if (path / EXPORT_FILE).is_file():
            return "export"
        raise GankitError(f"{path}: not a gankit run folder (no {CHECKPOINT_DIR}/ and no {EXPORT_FILE})")
    if not path.exists():
        raise GankitError(f"{path}: no such run folder or checkpoint file")
    return "file"


def load_source(path: str | Path) -> tuple[Path, Checkpoint]:
    """Load a checkpoint file, or a run folder's newest good checkpoint (its exported generator if it has none).

    A run folder falls back past damaged checkpoints (with a warning); a file named
    explicitly that is damaged is an error.
    """
    path = Path(path)
    kind = _source_kind(path)
    if kind == "run":
        return load_latest_checkpoint(path)
    file = path / EXPORT_FILE if kind == "export" else path
    return file, load_checkpoint(file)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the newest good checkpoint of a run folder."""
    path = Path(path)
    kind = _source_kind(path)
    if kind == "run":
        return latest_checkpoint(path)
    return path / EXPORT_FILE if kind == "export" else path


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
