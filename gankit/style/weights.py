"""Weights of the VGG encoders: finding, reading, converting and downloading them.

An ``[encoder]`` table's ``weights`` is one of:

- ``"hub"``: the torch hub cache (``$TORCH_HOME/hub/checkpoints``, by default
  ``~/.cache/torch/hub/checkpoints``), where ``gankit weights vgg19`` and
  torchvision put torchvision's published files (``vgg19-dcbb9e9d.pth``,
  ``vgg16-397923af.pth``); a converted ``gankit-vgg19.safetensors`` there is
  preferred, as it is smaller and faster to read;
- a file path: a ``.safetensors`` file (gankit's layout, ``conv1_1.weight``, or
  torchvision's, ``features.0.weight``) or a torchvision ``.pth`` state dict,
  read with ``torch.load(..., weights_only=True)`` (no pickle code runs);
- ``"random"``: seeded random weights, normalised layer by layer (see
  :mod:`gankit.style.vgg`); an explicit choice for tests and timings. Offline
  style transfer uses the ``random-pyramid`` encoder instead
  (:mod:`gankit.style.pyramid`).

Nothing falls back silently: weights that cannot be found are an error that
says how to get them. Downloads check the SHA-256 prefix that torchvision
writes into its file names and are written atomically.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.files import atomic_writer, write_bytes_atomic
from gankit.progress import Progress
from gankit.registry import did_you_mean
from gankit.style.vgg import ARCHS, architecture

#: Where torchvision publishes its weights.
DEFAULT_URL_BASE = "https://download.pytorch.org/models/"
#: Environment variable that points downloads at a mirror (the same file names under another URL).
URL_ENV = "GANKIT_WEIGHTS_URL"
#: torchvision's published ImageNet weights for each architecture; the 8 hex digits start the file's SHA-256.
TORCHVISION_FILES: dict[str, str] = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}
#: Their approximate sizes, for messages.
TORCHVISION_MEGABYTES: dict[str, int] = {"vgg16": 528, "vgg19": 548}

_HASH_RE = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
_CHUNK = 1 << 20


def hub_dir() -> Path:
    """The torch hub checkpoint folder (``torch.hub.get_dir()/checkpoints``; it honours ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def converted_name(arch: str) -> str:
    """The file name of ``arch``'s weights converted to safetensors: ``gankit-vgg19.safetensors``."""
    return f"gankit-{arch}.safetensors"


def _check_arch(arch: str) -> None:
    if arch not in TORCHVISION_FILES:
        names = list(TORCHVISION_FILES)
        raise GankitError(f"no published weights for {arch!r}.{did_you_mean(arch, names)} Known: {', '.join(names)}.")


def find_in_hub(arch: str) -> Path | None:
    """``arch``'s weights in the torch hub cache (converted safetensors first), or ``None``."""
    _check_arch(arch)
    folder = hub_dir()
    for name in (converted_name(arch), TORCHVISION_FILES[arch]):
        if (folder / name).is_file():
            return folder / name
    return None


def how_to_get(arch: str) -> str:
    """The lines that tell a user how to get ``arch``'s weights."""
    _check_arch(arch)
    name = TORCHVISION_FILES[arch]
    return (
        f"Get them with one of:\n"
        f"  gankit weights {arch}   (downloads torchvision's {name}, about {TORCHVISION_MEGABYTES[arch]} MB)\n"
        f"  copy {DEFAULT_URL_BASE}{name} into {hub_dir()}\n"
        f'  [encoder] weights = "path/to/weights.pth" (or .safetensors), or --weights PATH\n'
        f'  [encoder] weights = "random" for tests (random VGG weights give colour noise)\n'
        f"Or work offline without them: gankit stylize --weights random (the style-transfer-offline recipe)"
    )


def resolve(arch: str, weights: str) -> Path | None:
    """The file to read for ``weights`` (``"hub"``, a path) or ``None`` for ``"random"``; errors say how to fix."""
    _check_arch(arch)
    if weights == "random":
        return None
    if weights == "hub":
        found = find_in_hub(arch)
        if found is None:
            raise GankitError(
                f"no {arch} weights in the torch hub cache ({hub_dir() / TORCHVISION_FILES[arch]}).\n{how_to_get(arch)}"
            )
        return found
    path = Path(weights).expanduser()
    if not path.exists():
        raise GankitError(f"{weights}: no such weights file for {arch}.\n{how_to_get(arch)}")
    if not path.is_file():
        raise GankitError(f"{weights}: is a folder, not a weights file (.pth or .safetensors)")
    return path


# --------------------------------------------------------------------------- reading


def read_tensors(path: str | Path) -> dict[str, Tensor]:
    """Every tensor in a ``.safetensors`` file or a ``torch.save``-d state dict (read with ``weights_only=True``)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path), device="cpu"))
        loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GankitError(f"{path}: no such weights file") from None
    except Exception as error:
        first = (str(error).strip().splitlines() or [""])[0][:200]
        raise GankitError(
            f"{path}: cannot read weights ({type(error).__name__}: {first}). Use a torchvision state dict (.pth) "
            "or a .safetensors file; files that need pickle code to load are refused."
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not isinstance(loaded, Mapping):
        raise GankitError(f"{path}: holds a {type(loaded).__name__}, not a state dict of tensors")
    tensors = {str(k).removeprefix("module."): v for k, v in loaded.items() if isinstance(v, Tensor)}
    if not tensors:
        raise GankitError(f"{path}: holds no tensors")
    return tensors


def _torchvision_indices(arch: str) -> dict[int, str]:
    return {i: layer.name for i, layer in enumerate(architecture(arch)) if layer.kind == "conv"}


def detect_arch(tensors: Mapping[str, Tensor]) -> str | None:
    """Which VGG (``"vgg16"``, ``"vgg19"``) a state dict in either layout holds, or ``None``."""
    convs = {k.rsplit(".", 1)[0] for k in tensors if k.endswith(".weight")}
    for arch in ARCHS:
        ours = set(_torchvision_indices(arch).values())
        theirs = {f"features.{i}" for i in _torchvision_indices(arch)}
        if ours <= convs and not any(c.startswith("conv") and c not in ours for c in convs):
            return arch
        if {c for c in convs if c.startswith("features.")} == theirs:
            return arch
    return None


def to_encoder_layout(tensors: Mapping[str, Tensor], arch: str, *, source: str = "weights") -> dict[str, Tensor]:
    """Convolution weights named gankit's way (``conv1_1.weight``), from either layout, as float32.

    torchvision's ``features.N.*`` keys are renamed, its classifier dropped.
    Weights of the other VGG, or of a batch-normalised one, are an error that says so.
    """
    if any(k.endswith("running_mean") for k in tensors):
        raise GankitError(f"{source}: batch-normalised VGG weights (vgg*_bn) are not supported; use plain {arch}")
    found = detect_arch(tensors)
    if found is not None and found != arch:
        raise GankitError(f'{source}: holds {found} weights, not {arch}: set [encoder] type = "{found}"')
    indices = _torchvision_indices(arch)
    out: dict[str, Tensor] = {}
    for key, value in tensors.items():
        match = re.fullmatch(r"features\.(\d+)\.(weight|bias)", key)
        if match:
            name = indices.get(int(match.group(1)))
            if name is None:
                raise GankitError(f"{source}: {key} is not a convolution of {arch}: these are not {arch} weights")
            out[f"{name}.{match.group(2)}"] = value.float().contiguous()
        elif re.fullmatch(r"conv\d_\d\.(weight|bias)", key):
            out[key] = value.float().contiguous()
    if not out:
        raise GankitError(
            f"{source}: holds no {arch} convolution weights (keys like 'features.0.weight' or 'conv1_1.weight')"
        )
    return out


def load(path: str | Path, arch: str) -> dict[str, Tensor]:
    """Read ``path`` and return ``arch``'s convolution weights in gankit's layout."""
    return to_encoder_layout(read_tensors(path), arch, source=str(path))


def save_safetensors(tensors: Mapping[str, Tensor], path: str | Path, *, arch: str, source: str = "") -> Path:
    """Write weights in gankit's layout to a ``.safetensors`` file, atomically."""
    from safetensors.torch import save

    metadata = {"gankit.arch": arch, "format": "pt"}
    if source:
        metadata["gankit.source"] = source
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata)
    return write_bytes_atomic(path, data)


def convert(source: str | Path, dest: str | Path | None = None, *, arch: str) -> Path:
    """Convert a torchvision ``.pth`` (or any readable weights file) of ``arch`` to a safetensors file.

    Only the convolutions are kept (about 80 MB for VGG19 instead of 548 MB).
    ``dest`` defaults to ``gankit-<arch>.safetensors`` beside the source.
    """
    source = Path(source)
    if not source.is_file():
        raise GankitError(f"{source}: no such weights file")
    target = Path(dest) if dest is not None else source.with_name(converted_name(arch))
    if target.suffix != ".safetensors":
        raise GankitError(f"{target}: the converted file's name must end in .safetensors")
    if target.resolve() == source.resolve():
        raise GankitError(f"{target}: would overwrite the source")
    return save_safetensors(load(source, arch), target, arch=arch, source=source.name)


# --------------------------------------------------------------------------- downloading


@dataclass(frozen=True)
class Fetched:
    """A file fetched (or found already present and verified)."""

    path: Path
    url: str
    sha256: str
    downloaded: bool


def expected_hash(filename: str) -> str | None:
    """The SHA-256 prefix a torch hub file name carries (``vgg19-dcbb9e9d.pth`` → ``"dcbb9e9d"``), or ``None``."""
    match = _HASH_RE.search(filename)
    return match.group(1) if match else None


def url_base() -> str:
    """Where downloads come from: ``$GANKIT_WEIGHTS_URL``, else torchvision's server."""
    return os.environ.get(URL_ENV) or DEFAULT_URL_BASE


def sha256_file(path: str | Path) -> str:
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _offline_hint(filename: str, dest: Path) -> str:
    return (
        f"Is this machine offline? Download {DEFAULT_URL_BASE}{filename} elsewhere and copy it to {dest / filename}, "
        f"or point --url-base (or ${URL_ENV}) at a mirror"
    )


def fetch(
    filename: str,
    dest: str | Path,
    *,
    base: str | None = None,
    force: bool = False,
    quiet: bool = False,
    timeout: float = 30.0,
) -> Fetched:
    """Download ``base/filename`` into the folder ``dest``, checking the SHA-256 prefix in its name.

    A file already there whose hash matches is kept (unless ``force``). The
    download goes to a temporary file that replaces the target only once
    complete and verified: a failed or corrupt download leaves nothing
    behind. Failures are :class:`GankitError` with the reason and a way out.
    """
    folder = Path(dest).expanduser()
    target = folder / filename
    expected = expected_hash(filename)
    url = (base or url_base()).rstrip("/") + "/" + filename
    if target.is_file() and not force:
        present = sha256_file(target)
        if expected is None or present.startswith(expected):
            return Fetched(target, url, present, downloaded=False)
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise GankitError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise GankitError(f"cannot download {url}: {reason}. {_offline_hint(filename, folder)}") from None
    digest = hashlib.sha256()
    size = int(response.headers.get("Content-Length") or 0)
    received = 0
    try:
        with (
            response,
            atomic_writer(target) as handle,
            Progress(max(1, math.ceil(size / _CHUNK)), description=f"{filename} (MiB)", quiet=quiet or not size) as bar,
        ):
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                handle.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(received // _CHUNK)
            if size and received != size:
                raise GankitError(
                    f"cannot download {url}: the connection closed after {received} of {size} bytes; try again"
                )
            bar.update(max(1, math.ceil(size / _CHUNK)))
            got = digest.hexdigest()
            if expected is not None and not got.startswith(expected):
                raise GankitError(
                    f"checksum mismatch for {url}: its SHA-256 starts with {got[: len(expected)]}, the file name says"
                    f" {expected}. The download is corrupt or not the published file; nothing was written."
                )
    except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
        reason = f"the connection broke ({type(error).__name__}: {error})"
        raise GankitError(f"cannot download {url}: {reason}; try again. {_offline_hint(filename, folder)}") from None
    except OSError as error:
        raise GankitError(f"cannot write {target}: {error}") from None
    return Fetched(target, url, digest.hexdigest(), downloaded=True)


def download(
    arch: str,
    dest: str | Path | None = None,
    *,
    base: str | None = None,
    force: bool = False,
    quiet: bool = False,
) -> Fetched:
    """Download torchvision's published ImageNet weights of ``arch`` (into the torch hub cache by default)."""
    _check_arch(arch)
    return fetch(TORCHVISION_FILES[arch], dest if dest is not None else hub_dir(), base=base, force=force, quiet=quiet)
