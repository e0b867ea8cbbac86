"""Every bad input is one clear line, exit code 1, no traceback: recipes, output paths, disks, devices, reports.

The last section walks every sub-command of ``gankit`` with a table of hostile
inputs; a new command without its row fails ``test_every_command_has_hostile_cases``.
Read-only folders and full disks are simulated in-process (the atomic writer
raises the ``OSError``), since permissions do not stop root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from support.recipes import TINY_RING_PARTS

import gankit.files
from gankit import GankitWarning
from gankit.checkpoint import list_checkpoints
from gankit.cli import build_parser, main
from gankit.recipe import loads_recipe
from gankit.training import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = """
[run]
steps = 2
batch_size = 16
log_every = 1
sample_every = 2
checkpoint_every = 1
""" + TINY_RING_PARTS


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "ring"
    assert train(loads_recipe(TINY), out, quiet=True).step == 2
    return out


@pytest.fixture
def files(trained: Path, tmp_path: Path) -> dict[str, str]:
    """The inputs the tables below name: ``{run}``, ``{tiny}``, ``{dir}``, ``{png}``, ..."""
    tiny = tmp_path / "tiny.toml"
    tiny.write_text(TINY)
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    corrupt = tmp_path / "corrupt.safetensors"
    data = (trained / "checkpoints" / "step-00000002.safetensors").read_bytes()
    corrupt.write_bytes(data[: len(data) // 3])
    png = tmp_path / "photo.png"
    Image.fromarray((torch.rand(24, 24, 3) * 255).to(torch.uint8).numpy()).save(png)
    latin = tmp_path / "latin1.toml"
    latin.write_bytes(b"# caf\xe9\n[run]\nseed = 1\n")
    folder = tmp_path / "folder.png"
    folder.mkdir()
    text = tmp_path / "notes.txt"
    text.write_text("not weights, not a recipe")
    return {"run": str(trained), "tiny": str(tiny), "deep": str(deep), "corrupt": str(corrupt), "png": str(png),
            "latin": str(latin), "dir": str(folder), "file": str(text), "missing": str(tmp_path / "missing"),
            "tmp": str(tmp_path), "huge": "x" * 200_000}


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``gankit ARGV`` in this process: exit code, standard output, standard error."""
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit:  # argparse's usage errors
            code = int(exit.code or 0)
    return code, out.getvalue(), err.getvalue()


def fill(argv: list[str], files: dict[str, str]) -> list[str]:
    return [a.format(**files) for a in argv]


def assert_one_clear_line(code: int, err: str, expected: str, *, codes: tuple[int, ...] = (1,)) -> None:
    assert code in codes, err
    assert "Traceback" not in err
    assert re.search(expected, err), err
    assert len(err) < 2000, f"{len(err)} characters of error"
    if codes == (1,):  # one line; a recipe error lists its problems under a head line
        one_problem = re.match(r"error: .*: 1 problem\n  [^\n]*\n$", err)
        assert err.startswith("error: ") and (err.count("\n") == 1 or one_problem), err


# --------------------------------------------------------------------------- recipes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a = " + "[" * 100_000 + "]" * 100_000, "nest too deeply"),
        ("a = " + "{b = " * 100_000 + "1" + "}" * 100_000, "nest too deeply"),
        ("[run]\nx = " + "[" * 40 + "1" + "]" * 40, r"nest deeper than 32 levels"),
        ("[run]\nseed = " + "9" * 5000, "unreadable value: Exceeds the limit"),
        ("[run]\n" + "k" * 300_000 + " = 1\n", "unknown key 'kkkk.*\\.\\.\\."),
        ('[data]\ntype = "' + "x" * 300_000 + '"\n', "unknown data 'xxx.*\\.\\.\\."),
        ("[" + "s" * 300_000 + "]\n", "unknown slot 'sss.*\\.\\.\\."),
    ],
)
def test_hostile_recipes_are_one_short_message(tmp_path: Path, text: str, expected: str) -> None:
    recipe = tmp_path / "hostile.toml"
    recipe.write_text(text)
    code, _, err = run_cli(["check", str(recipe)])
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"error: {recipe}: ")
    assert re.search(expected, err), err[:500]
    assert len(err) < 3000  # a 300 KB name is cut, not echoed


def test_an_absurdly_large_recipe_file_is_refused_unread(tmp_path: Path) -> None:
    recipe = tmp_path / "big.toml"
    with open(recipe, "wb") as handle:
        handle.write(b"[run]\n" + b"k" * (50 << 20) + b" = 1\n")
    code, _, err = run_cli(["check", str(recipe)])
    assert_one_clear_line(code, err, rf"{re.escape(str(recipe))}: larger than 1,048,576 bytes")


def test_a_hostile_recipe_inside_a_checkpoint_is_one_line(trained: Path, tmp_path: Path) -> None:
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    source = trained / "checkpoints" / "step-00000002.safetensors"
    with safe_open(str(source), framework="pt") as handle:
        state = json.loads(handle.metadata()["gankit"])
    state["recipe"] = "a = " + "[" * 50_000 + "]" * 50_000
    bad = tmp_path / "deep-recipe.safetensors"
    save_file(load_file(str(source)), str(bad), metadata={"gankit": json.dumps(state)})
    code, _, err = run_cli(["sample", str(bad), "-o", str(tmp_path / "a.png")])
    assert code == 1 and "Traceback" not in err
    assert f"{bad} (recipe)" in err and "nest too deeply" in err


# --------------------------------------------------------------------------- devices


@pytest.mark.parametrize("device", ["cuda:999", "nonsense", "cuda:x", "CPU"])
@pytest.mark.parametrize("command", [
    ["sample", "{run}", "-o", "{tmp}/a.png", "--device", "DEVICE"],
    ["eval", "{run}", "--metric", "modes", "--device", "DEVICE"],
    ["train", "{tiny}", "--out", "{tmp}/new", "--set", "run.device=DEVICE"],
    ["stylize", "--content", "{png}", "--style", "{png}", "-o", "{tmp}/s.png", "--weights", "random", "--device",
     "DEVICE"],
])
def test_devices_that_do_not_exist_are_named(files: dict[str, str], command: list[str], device: str) -> None:
    code, _, err = run_cli([a.replace("DEVICE", device) for a in fill(command, files)])
    assert code == 1 and "Traceback" not in err, err
    assert repr(device) in err or f"got {device!r}" in err, err
    assert not Path(files["tmp"], "a.png").exists() and not Path(files["tmp"], "new", "checkpoints").exists()


# --------------------------------------------------------------------------- output paths and disks


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sample", "{run}", "-o", "{dir}"], r"folder\.png: is a folder; give a file name like out\.png"),
        (["sample", "{run}", "-o", "{tmp}/x.txt"], r"x\.txt: unknown image format '\.txt'; use \.png"),
        (["sample", "{run}", "-o", "{file}/a.png"], r"notes\.txt is a file, not a folder"),
        (["report", "{run}", "-o", "{dir}"], r"is a folder; give a file name like report\.html"),
        (["schema", "-o", "{dir}"], r"is a folder; give a file name like recipe\.schema\.json"),
        (["stylize", "--content", "{png}", "--style", "{png}", "-o", "{tmp}/x.txt"], r"unknown image format '\.txt'"),
        (["stylize", "--content", "{png}", "--style", "{png}", "-o", "{dir}"], r"is a folder"),
        (["train", "{tiny}", "--out", "{file}"], r"notes\.txt: is a file, not a folder"),
    ],
)
def test_bad_output_paths_are_refused_before_work(files: dict[str, str], argv: list[str], expected: str) -> None:
    code, _, err = run_cli(fill(argv, files))
    assert_one_clear_line(code, err, expected)


@contextlib.contextmanager
def failing_writes(monkeypatch: pytest.MonkeyPatch, number: int, when: Any = None) -> Iterator[None]:
    """Every atomic write (``when(path)`` ones only, if given) fails with ``OSError(number)``, as a disk would."""
    real = gankit.files.atomic_writer

    @contextlib.contextmanager
    def writer(path: str | Path) -> Iterator[Any]:
        if when is None or when(Path(path)):
            raise OSError(number, os.strerror(number), str(path))
        with real(path) as handle:
            yield handle

    monkeypatch.setattr(gankit.files, "atomic_writer", writer)
    yield
    monkeypatch.setattr(gankit.files, "atomic_writer", real)


def tiny_vgg(path: Path) -> Path:
    from gankit.style.vgg import VGGEncoder

    encoder = VGGEncoder("vgg16", layers=["relu1_1"])
    weight, bias = encoder._parameters_of("conv1_1")
    torch.save({"features.0.weight": weight.clone(), "features.0.bias": bias.clone()}, path)
    return path


WRITERS = {
    "train": ["train", "{tiny}", "--out", "{tmp}/new", "--quiet"],
    "train --resume": ["train", "--resume", "{copy}", "--steps", "3", "--quiet"],
    "sample": ["sample", "{run}", "-n", "4", "-o", "{tmp}/out/a.png"],
    "report": ["report", "{run}", "-o", "{tmp}/out/r.html"],
    "export": ["export", "{run}", "{tmp}/out/shared"],
    "sample --video": ["sample", "{run}", "--video", "{tmp}/out/walk.gif", "--seconds", "0.5", "--fps", "6"],
    "schema": ["schema", "-o", "{tmp}/out/s.json"],
    "stylize": ["stylize", "--content", "{png}", "--style", "{png}", "-o", "{tmp}/out/s.png", "--weights", "random",
                "--size", "32", "--steps", "1", "--quiet"],
    "data stats": ["data", "stats", "dcgan-digits", "-o", "{tmp}/out/s.npz", "-n", "8", "--set", "features=digits",
                   "-q"],
    "weights": ["weights", "vgg16", "--convert", "{vgg}", "-o", "{tmp}/out/w.safetensors"],
}


@pytest.mark.parametrize("number", [errno.EROFS, errno.ENOSPC], ids=["read-only", "disk-full"])
@pytest.mark.parametrize("command", WRITERS)
def test_a_read_only_folder_or_a_full_disk_is_one_line(
    files: dict[str, str], trained: Path, tmp_path: Path, command: str, number: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = dict(files, copy=str(shutil.copytree(trained, tmp_path / "copy")), vgg=str(tiny_vgg(tmp_path / "v.pth")))
    with failing_writes(monkeypatch, number):
        code, _, err = run_cli(fill(WRITERS[command], files))
    assert_one_clear_line(code, err, re.escape(os.strerror(number)))
    assert str(tmp_path) in err  # the file it could not write
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_disk_that_fills_up_mid_run_stops_with_a_way_to_go_on(
    files: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    with failing_writes(monkeypatch, errno.ENOSPC, when=lambda path: path.name == "step-00000002.safetensors"):
        code, _, err = run_cli(["train", files["tiny"], "--out", str(run), "--quiet"])
    assert_one_clear_line(code, err, "No space left on device; training stopped")
    assert "step-00000002.safetensors: No space left on device" in err
    assert f"continue with: gankit train --resume {run}" in err
    assert [step for step, _ in list_checkpoints(run)] == [1]
    assert not list((run / "checkpoints").glob(".*.tmp"))
    code, _, err = run_cli(["train", "--resume", str(run), "--quiet"])  # space freed
    assert code == 0, err
    assert [step for step, _ in list_checkpoints(run)] == [1, 2]


# --------------------------------------------------------------------------- gankit report on damaged metrics


def damaged_metrics(run: Path) -> int:
    """Append hostile lines to a run's metrics.jsonl; returns how many are bad."""
    bad = [
        b"[1, 2, 3]",
        b"42",
        b'"a string"',
        b'{"step": "abc", "d_loss": 1.0}',
        b'{"d_loss": 1.0}',
        b'{"step": ' + b"9" * 400 + b', "d_loss": 1.0}',
        b'{"step": 3, "d_loss": "\xff\xfe not utf-8"}',
        b"[" * 100_000,
        b'{"step": 4, "d_loss": 0.5, "g_l',  # the last line, cut short by a crash
    ]
    with open(run / "metrics.jsonl", "ab") as handle:
        handle.write(b'{"step": 3, "d_loss": "text", "g_loss": 1e999}\n')  # odd values, but a good record
        handle.write(b"\n".join(bad))
    (run / "samples" / "step-abc.png").write_bytes(b"not a picture")
    (run / "samples" / "step-.png").write_bytes(b"")
    return len(bad)


def test_report_skips_and_counts_bad_lines_and_still_writes_the_page(trained: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    count = damaged_metrics(run)
    with pytest.warns(GankitWarning) as record:
        code, _, err = run_cli(["report", str(run)])
    assert code == 0, err
    messages = [str(w.message) for w in record if "metrics.jsonl" in str(w.message)]
    assert len(messages) == 1, messages
    assert f"skipped {count} unreadable lines (first: line " in messages[0]
    page = (run / "report.html").read_text()
    assert "3 steps logged" in page and "step 2</figcaption>" in page and "step-abc" not in page


def test_warnings_on_the_command_line_show_no_source_file(trained: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    damaged_metrics(run)
    env = {k: v for k, v in os.environ.items() if k != "GANKIT_DISABLE_PLUGINS"}
    result = subprocess.run([sys.executable, "-m", "gankit", "report", str(run)], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "metrics.jsonl" in line]
    assert lines == [f"warning: {run / 'metrics.jsonl'}: skipped 9 unreadable lines (first: line 4: "
                     "not a JSON object)"], result.stderr
    assert not re.search(r"\.py:\d+", result.stderr), result.stderr


# --------------------------------------------------------------------------- every command, hostile inputs

#: Per command: (arguments, what the error must say). ``{name}`` are the fixture ``files``.
HOSTILE: dict[str, list[tuple[list[str], str]]] = {
    "train": [
        (["{deep}"], "nest too deeply"),
        (["{missing}"], "missing: no such recipe file"),
        (["{tiny}", "--set", "run.seed=-99999999999999999999"], "run.seed: Input should be greater than or equal"),
        (["{tiny}", "--set", "x=" + "[" * 5000], "the value nests too deeply"),
        (["--resume", "{missing}"], "missing: no such run folder"),
        (["--resume", "{file}"], "no such run folder"),
        (["{latin}"], r"latin1\.toml: cannot read recipe: not UTF-8 text"),
    ],
    "sample": [
        (["{missing}"], "no such run folder or checkpoint file"),
        (["{corrupt}", "-o", "{tmp}/a.png"], r"corrupt\.safetensors: truncated file"),
        (["{tiny}", "-o", "{tmp}/a.png"], r"tiny\.toml: garbage header"),
        (["{run}", "-n", "0"], "-n 0: must be a positive number"),
        (["{run}", "--seed", "-99999999999999999999"], "--seed -99999999999999999999: must be a 64-bit integer"),
        (["{run}", "--video", "{tmp}/v.avi"], "gankit writes videos as .gif or .mp4"),
        (["{run}", "--video", "{tmp}/v.gif", "--seconds", "99999999"], "--seconds must be in"),
        (["{run}", "--latent", "{file}"], "not a safetensors file"),
        (["{run}", "--latent", "{missing}"], "no such file"),
        (["{run}", "--class", "3", "-o", "{tmp}/a.png"], "--class: this generator is not class-conditional"),
    ],
    "eval": [
        (["{run}", "--metric", "class-accuracy"], "'class-accuracy' scores class-conditional generators"),
        (["{run}", "--metric", "nope"], "unknown metric 'nope'"),
        (["{run}", "--metric", "modes", "-n", "-3"], "-n -3: must be a positive number"),
        (["{run}", "--metric", "modes", "--set", "samples=99999999999"], "samples: Input should be less than"),
        (["{corrupt}", "--metric", "modes"], "truncated file"),
    ],
    "report": [
        (["{missing}"], "missing: no such run folder"),
        (["{tmp}"], "no metrics.jsonl"),
    ],
    "export": [
        (["{missing}", "{tmp}/x"], "no such run folder or checkpoint file"),
        (["{corrupt}", "{tmp}/x"], r"corrupt\.safetensors: truncated file"),
        (["{run}", "{file}"], "is a file; name a new folder"),
        (["{run}", "{tmp}"], "the folder is not empty"),
        (["{run}"], "name the folder to export into"),
        (["{run}", "--push", "not a name"], "--push not a name: name the model as owner/name"),
        (["{run}", "{tmp}/x", "--samples", "0"], "--samples 0: must be positive"),
    ],
    "project": [
        (["{run}", "{missing}"], "missing: no such image file"),
        (["{missing}", "{png}"], "no such run folder or checkpoint file"),
        (["{run}", "{png}"], "projection works on image generators"),
        (["{run}", "{png}", "--steps", "0"], "--steps 0: a projection needs at least one step"),
        (["{run}", "{png}", "--video", "{tmp}/v.avi"], "gankit writes videos as .gif or .mp4"),
        (["{run}", "{png}", "-o", "{dir}"], "is a folder"),
    ],
    "stylize": [
        (["--content", "{missing}", "--style", "{png}"], "content image .*missing: no such file"),
        (["--content", "{file}", "--style", "{png}"], "not an image file"),
        (["--content", "{png}", "--style", "{png}", "--size", "0"], "--size 0: must be a positive number"),
        (["--content", "{png}", "--style", "{png}", "--set", "run.seed=" + "9" * 30], "run.seed: Input should be"),
    ],
    "check": [
        (["{deep}"], "nest too deeply"),
        (["{latin}"], "not UTF-8 text"),
        (["{dir}"], "is a folder, not a recipe file"),
        (["{tiny}", "--set", "generator.width=1000000000"], "generator.width: Input should be less than"),
        (["{tiny}", "--set", "{huge}=1"], "a --set holds at most 100000"),
    ],
    "show": [
        (["{huge}"], "no part named 'xxx.*\\.\\.\\."),
        (["dcgan@v99999999999999999999"], "bad version in 'dcgan@v9999"),
    ],
    "list": [(["--kind", "{huge}"], "invalid choice")],
    "recipes": [(["--path", "{huge}"], "unrecognized arguments")],
    "schema": [(["-o", "{file}/s.json"], "notes.txt")],
    "plugin": [
        (["new", "{huge}"], "bad plugin name 'xxx.*\\.\\.\\."),
        (["new", "Bad Name"], "bad plugin name 'Bad Name'"),
        (["new", "okname", "--dir", "{file}"], "is a file, not a folder"),
        (["new", "okname", "--dir", "{file}/sub"], "notes.txt"),
    ],
    "data": [
        (["prepare", "{missing}", "{tmp}/out", "-r", "8"], "missing' does not exist"),
        (["prepare", "{file}", "{tmp}/out", "-r", "8"], r"notes\.txt' is a file, not a folder"),
        (["prepare", "{dir}", "{tmp}/out", "-r", "0"], "resolution"),
        (["info", "{file}"], r"notes\.txt' is a file, not a prepared dataset"),
        (["info", "{tmp}"], "is not a prepared dataset"),
        (["stats", "{missing}", "-o", "{tmp}/s.npz"], "no such recipe file"),
    ],
    "weights": [
        (["vgg19", "--convert", "{missing}"], "no such weights file"),
        (["vgg19", "--convert", "{file}"], r"notes\.txt: cannot read weights"),
        (["--list", "vgg19"], "--list takes no network name"),
    ],
}


def command_names() -> set[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if a.dest == "command"]
    return set(actions[0].choices or {})


def test_every_command_has_hostile_cases() -> None:
    assert command_names() == set(HOSTILE), "add the new command's hostile inputs to HOSTILE"


@pytest.mark.parametrize(("command", "argv", "expected"),
                         [(c, argv, e) for c, cases in HOSTILE.items() for argv, e in cases],
                         ids=[f"{c}-{i}" for c, cases in HOSTILE.items() for i in range(len(cases))])
def test_hostile_input(files: dict[str, str], command: str, argv: list[str], expected: str) -> None:
    code, _, err = run_cli([command, *fill(argv, files)])
    usage = command in ("list", "recipes")  # argparse's own usage errors: exit code 2
    assert_one_clear_line(code, err, expected, codes=(2,) if usage else (1,))


@pytest.mark.parametrize("command", sorted(HOSTILE))
def test_a_huge_argument_is_never_echoed_whole(files: dict[str, str], command: str) -> None:
    code, _, err = run_cli([command, files["huge"]])
    assert code in (1, 2) and "Traceback" not in err, err[:500]
    assert len(err) < 2000, f"{command}: {len(err)} characters of error"
