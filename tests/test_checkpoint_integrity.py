"""Checkpoints that cannot be trusted: checksums, damaged newest checkpoints, ``latest``, metadata checks.

A tiny ring run is trained once; each test damages a copy of it and uses it
through the command line (in-process ``main``), as a user would.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from support.recipes import TINY_RING_PARTS

from gankit import GankitWarning
from gankit.checkpoint import Checkpoint, latest_checkpoint, load_checkpoint, read_metadata, save_checkpoint
from gankit.cli import main
from gankit.errors import CorruptCheckpointError
from gankit.recipe import loads_recipe
from gankit.tensorfile import CHECKSUM_KEY
from gankit.training import train

TINY = """
[run]
steps = 4
batch_size = 16
log_every = 2
sample_every = 4
checkpoint_every = 2
""" + TINY_RING_PARTS

STEP2 = "step-00000002.safetensors"
STEP4 = "step-00000004.safetensors"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    out = tmp_path_factory.mktemp("runs") / "ring"
    assert train(loads_recipe(TINY), out, quiet=True).step == 4
    return out


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    """A fresh copy of the trained run, to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def header_span(data: bytes) -> tuple[int, int]:
    """Where a safetensors file's JSON header starts and ends."""
    (length,) = struct.unpack("<Q", data[:8])
    return 8, 8 + length


def rewrite_state(source: Path, target: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Write ``target``: ``source``'s tensors with its JSON state changed by ``change`` (no checksum)."""
    with safe_open(str(source), framework="pt") as handle:
        state = json.loads(handle.metadata()["gankit"])
    text = change(state)  # a new text, or None when ``change`` changed ``state`` in place
    save_file(load_file(str(source)), str(target), metadata={"gankit": text if isinstance(text, str) else
                                                             json.dumps(state)})


# --------------------------------------------------------------------------- the checksum


def small_checkpoint(path: Path) -> Path:
    ckpt = Checkpoint()
    ckpt.put("net", {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "bias": torch.ones(3)})
    ckpt.state = {"step": 7, "recipe": "", "optim": {"generator": {}, "discriminator": {}}}
    save_checkpoint(path, ckpt)
    return path


def test_a_checkpoint_carries_a_checksum_and_loads(tmp_path: Path) -> None:
    path = small_checkpoint(tmp_path / "a.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata()[CHECKSUM_KEY].startswith("sha256:")
    loaded = load_checkpoint(path)
    assert loaded.state["step"] == 7
    assert torch.equal(loaded.group("net")["weight"], torch.arange(6, dtype=torch.float32).reshape(2, 3))


@pytest.mark.parametrize(
    ("what", "old", "new"),
    [
        ("a tensor relabelled I32", b'"dtype":"F32"', b'"dtype":"I32"'),
        ("a tensor renamed", b'"net/bias"', b'"net/bia5"'),
        ("a shape changed", b'"shape":[2,3]', b'"shape":[3,2]'),
        ("the state changed", b'\\"step\\": 7', b'\\"step\\": 8'),
    ],
)
def test_the_checksum_covers_dtypes_names_shapes_and_state(tmp_path: Path, what: str, old: bytes, new: bytes) -> None:
    path = small_checkpoint(tmp_path / "a.safetensors")
    data = path.read_bytes()
    start, end = header_span(data)
    header = data[start:end]
    assert old in header, header
    path.write_bytes(data[:start] + header.replace(old, new, 1) + data[end:])
    with pytest.raises(CorruptCheckpointError, match=r"a\.safetensors: checksum mismatch"):
        load_checkpoint(path)


def test_a_flipped_bit_in_tensor_data_is_found(tmp_path: Path) -> None:
    path = small_checkpoint(tmp_path / "a.safetensors")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match=r"a\.safetensors: checksum mismatch: the file is damaged"):
        load_checkpoint(path)


def test_checkpoints_without_a_checksum_still_load(run: Path, recwarn: pytest.WarningsRecorder) -> None:
    old = run / "checkpoints" / STEP4
    rewrite_state(old, old, lambda state: None)  # the same tensors and state, written without a checksum
    with safe_open(str(old), framework="pt") as handle:
        assert CHECKSUM_KEY not in handle.metadata()
    assert load_checkpoint(old).state["step"] == 4
    assert main(["sample", str(run), "-n", "4", "-o", str(run / "a.png")]) == 0
    assert not [w for w in recwarn if issubclass(w.category, GankitWarning)]


def framed(header: bytes, length: int | None = None) -> bytes:
    """A safetensors-like file: the header's length (or ``length``), then the header."""
    return struct.pack("<Q", len(header) if length is None else length) + header


TENSOR = b'{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,%d]}}'


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated or empty file"),
        (framed(b"{}", 2**40), r"garbage header \(it claims 1099511627776 bytes of header"),
        (framed(b"{}", 50), "truncated file: its header claims 50 bytes"),
        (framed(b'{"a":' * 100_000 + b"1" + b"}" * 100_000), r"garbage header \(nested too deeply\)"),
        (framed(b"[]"), r"garbage header \(not a JSON object\)"),
        (framed(b'{"t":{"dtype":"F32","shape":[1],"data_off'), r"garbage header \(not JSON\)"),
        (framed(b'{"t":{"dtype":"F32","shape":"x","data_offsets":[0,4]}}'), "garbage header: tensor 't' has shape 'x'"),
        (framed(TENSOR % 4000) + b"\0" * 4, "truncated file: tensor 't' ends at byte 4000 of the data, the file holds"),
    ],
)
def test_a_header_that_is_not_safetensors_is_one_clear_error(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "odd.safetensors"
    path.write_bytes(data)
    with pytest.raises(CorruptCheckpointError, match=rf"odd\.safetensors: {message}"):
        load_checkpoint(path)


# --------------------------------------------------------------------------- damaged newest checkpoints


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage_header(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:8] + b"\xff" * 16 + data[24:])


def flip_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x10
    path.write_bytes(bytes(data))


DAMAGE = {"truncated": truncate, "garbage header": garbage_header, "flipped bit": flip_bit}


@pytest.mark.parametrize("damage", DAMAGE)
def test_sample_skips_a_damaged_newest_checkpoint(
    run: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    DAMAGE[damage](run / "checkpoints" / STEP4)
    with pytest.warns(GankitWarning, match=rf"skipping a damaged checkpoint: .*{STEP4}"):
        assert main(["sample", str(run), "-n", "4", "-o", str(run / "a.png")]) == 0
    assert f"(step 2 of {run / 'checkpoints' / STEP2})" in capsys.readouterr().out


def test_eval_skips_a_damaged_newest_checkpoint(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truncate(run / "checkpoints" / STEP4)
    with pytest.warns(GankitWarning, match=rf"skipping a damaged checkpoint: .*{STEP4}.*truncated"):
        assert main(["eval", str(run), "--metric", "modes", "-n", "50"]) == 0
    assert "score" in json.loads(capsys.readouterr().out)


def test_resume_skips_a_damaged_newest_checkpoint(run: Path) -> None:
    flip_bit(run / "checkpoints" / STEP4)
    with pytest.warns(GankitWarning, match=rf"skipping a damaged checkpoint: .*{STEP4}.*checksum mismatch"):
        assert main(["train", "--resume", str(run), "--steps", "6", "--quiet"]) == 0
    assert load_checkpoint(latest_checkpoint(run)).state["step"] == 6


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_named_explicitly_is_an_error(
    run: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = run / "checkpoints" / STEP4
    DAMAGE[damage](file)
    assert main(["sample", str(file), "-o", str(run / "a.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {file}: ") and err.count("\n") == 1
    assert not (run / "a.png").exists()


def test_every_checkpoint_damaged_is_an_error_naming_them(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truncate(run / "checkpoints" / STEP2)
    truncate(run / "checkpoints" / STEP4)
    with pytest.warns(GankitWarning):
        assert main(["sample", str(run), "-o", str(run / "a.png")]) == 1
    assert f"every checkpoint is damaged ({STEP4}, {STEP2})" in capsys.readouterr().err


# --------------------------------------------------------------------------- checkpoints/latest


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x81 garbage", b"", b"step-00000002.safetensors\x00junk",
                                     "step-00000002.safetensors\u00e9".encode("latin-1")])
def test_a_garbage_latest_pointer_is_ignored(run: Path, content: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    (run / "checkpoints" / "latest").write_bytes(content)
    with pytest.warns(GankitWarning, match="latest does not name a checkpoint file"):
        assert main(["sample", str(run), "-n", "4", "-o", str(run / "a.png")]) == 0
    assert f"(step 4 of {run / 'checkpoints' / STEP4})" in capsys.readouterr().out


@pytest.mark.parametrize("target", ["../../../etc/hostname", "../outside.safetensors", "/etc/hostname",
                                    "./../checkpoints/step-00000004.safetensors"])
def test_latest_is_never_followed_outside_the_folder(
    run: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # a good checkpoint of another step lies outside the checkpoints folder: it must not be loaded
    shutil.copy(run / "checkpoints" / STEP4, run / "outside.safetensors")
    (run / "checkpoints" / STEP4).unlink()
    (run / "checkpoints" / "latest").write_text(target + "\n")
    with pytest.warns(GankitWarning, match="latest does not name a checkpoint file"):
        assert main(["sample", str(run), "-n", "4", "-o", str(run / "a.png")]) == 0
    assert f"(step 2 of {run / 'checkpoints' / STEP2})" in capsys.readouterr().out


def test_latest_naming_a_symbolic_link_is_not_followed(run: Path) -> None:
    folder = run / "checkpoints"
    shutil.copy(folder / STEP4, run / "elsewhere.safetensors")
    (folder / STEP4).unlink()
    (folder / "step-00000009.safetensors").symlink_to(run / "elsewhere.safetensors")
    (folder / "latest").write_text("step-00000009.safetensors\n")
    with pytest.warns(GankitWarning, match="latest does not name a checkpoint file"):
        assert latest_checkpoint(run) == folder / STEP2


# --------------------------------------------------------------------------- metadata


def without(key: str):  # type: ignore[no-untyped-def]
    def change(state: dict) -> None:  # type: ignore[type-arg]
        del state[key]

    return change


def _nested(state: dict) -> str:  # type: ignore[type-arg]
    state["balance"] = json.loads("[" * 500 + "]" * 500)
    return json.dumps(state)


METADATA = {
    "optim is a string": (lambda s: s.update(optim="x"), "key 'optim' must be a table"),
    "recipe is a number": (lambda s: s.update(recipe=42), "key 'recipe' must be the recipe as TOML text, got 42"),
    "step is text": (lambda s: s.update(step="abc"), "key 'step' must be a non-negative integer, got 'abc'"),
    "step is negative": (lambda s: s.update(step=-3), "key 'step' must be a non-negative integer, got -3"),
    "world size 0": (lambda s: s.update(world_size=0), "key 'world_size' must be a positive integer"),
    "versions a list": (lambda s: s.update(part_versions=[1]), "key 'part_versions' must be a table of strings"),
    "no step": (without("step"), "has no key 'step'"),
    "no recipe": (without("recipe"), "has no key 'recipe'"),
    "no optimiser state": (without("optim"), "has no key 'optim'"),
    "nested 500 deep": (_nested, "nests deeper than 64 levels"),
    "a JSON bomb": (lambda s: '{"a":' * 100_000 + "1" + "}" * 100_000, "'gankit' is nested too deeply"),
    "not JSON": (lambda s: "{not json", "'gankit' is not valid JSON"),
    "a list": (lambda s: "[1, 2]", "'gankit' must be a JSON object, got [1, 2]"),
}


@pytest.mark.parametrize("case", METADATA)
def test_checkpoint_metadata_is_checked_key_by_key(
    run: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    change, message = METADATA[case]
    bad = run / "bad.safetensors"
    rewrite_state(run / "checkpoints" / STEP4, bad, change)
    assert main(["sample", str(bad), "-o", str(run / "a.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: checkpoint metadata") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(CorruptCheckpointError, match=message.replace("(", r"\(").replace("[", r"\[")):
        read_metadata(bad)


def test_resume_with_bad_metadata_in_every_checkpoint_is_one_line(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (STEP2, STEP4):
        path = run / "checkpoints" / name
        rewrite_state(path, path, lambda s: s.update(optim="x"))
    with pytest.warns(GankitWarning, match="key 'optim' must be a table"):
        assert main(["train", "--resume", str(run), "--quiet"]) == 1
    assert "every checkpoint is damaged" in capsys.readouterr().err
