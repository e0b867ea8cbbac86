"""The core command line: help, list, show, check (with --set and --debug), schema, recipes; a light import."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import gankit
from gankit.cli import main
from gankit.recipe import builtin_recipes

RING = """\
[run]
seed = 1
steps = 10

[data]
type = "ring"

[generator]
type = "mlp"
width = 16

[discriminator]
type = "mlp"
width = 16
"""

BROKEN = RING.replace("width = 16\n\n[disc", "widht = 16\n\n[disc").replace('"ring"', '"rung"') + "\n[los]\n"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich tables as wide as they need, so that no cell is wrapped."""
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


def table_rows(text: str) -> list[list[str]]:
    """The cells of each body row of a rich table."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


@pytest.fixture
def ring(tmp_path: Path) -> Path:
    path = tmp_path / "ring.toml"
    path.write_text(RING, encoding="utf-8")
    return path


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(BROKEN, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- import and help


def test_import_gankit_is_light_and_the_registry_lazy(run_gankit) -> None:
    code = """
import json, sys
import gankit
loaded = sorted(m for m in ("gankit.plugins", "gankit.parts", "gankit.registry", "pydantic", "torch", "rich")
                if m in sys.modules)
hookimpl = gankit.hookimpl.project_name
registry = gankit.get_registry()
print(json.dumps({
    "loaded_on_import": loaded,
    "hookimpl": hookimpl,
    "parts": len(registry),
    "schedules": registry.names("schedule"),
    "plugins_after": "gankit.plugins" in sys.modules and "gankit.parts" in sys.modules,
    "same": gankit.get_registry() is registry,
}))
"""
    result = run_gankit(code=code, env={"GANKIT_DISABLE_PLUGINS": "1"})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["loaded_on_import"] == []
    assert data["hookimpl"] == "gankit"
    assert data["parts"] > 10
    assert "constant" in data["schedules"]
    assert data["plugins_after"] is True
    assert data["same"] is True


def test_public_api_resolves_lazily() -> None:
    for name in gankit.__all__:
        assert getattr(gankit, name) is not None, name
    assert set(gankit.__all__) <= set(dir(gankit))
    assert gankit.Registry is __import__("gankit.registry").registry.Registry
    with pytest.raises(AttributeError, match="module 'gankit' has no attribute 'nope'"):
        gankit.nope  # noqa: B018


def test_python_m_gankit_help(run_gankit) -> None:
    result = run_gankit(["--help"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: gankit")
    for command in ("list", "show", "check", "schema", "recipes"):
        assert f"    {command} " in result.stdout
    assert "exit codes: 0 success; 1 a user mistake" in " ".join(result.stdout.split())


def test_gankit_script_help() -> None:
    script = Path(sys.executable).with_name("gankit")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: gankit")
    assert "check" in result.stdout


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("usage: gankit")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gankit {gankit.__version__}"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["lst"])
    assert info.value.code == 2
    assert "invalid choice: 'lst'" in capsys.readouterr().err


# --------------------------------------------------------------------------- list


def test_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "gankit parts" in out
    header = next(line for line in out.splitlines() if "kind" in line and "provider" in line)
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "kind", "role", "name", "version", "provider", "summary"]
    rows = {(row[0], row[2]): row for row in table_rows(out)}
    ema = rows[("trick", "ema")]
    assert ema[1] == ""
    assert ema[3] == "v1"
    assert ema[4] == f"gankit {gankit.__version__}"
    assert ema[5] == gankit.get_registry().get("trick", "ema").summary
    assert ("generator", "dcgan") in rows
    assert ("discriminator", "dcgan") in rows
    assert rows[("loss", "r2")][1] == "regularizer" and rows[("loss", "rpgan")][1] == "adversarial"


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"parts", "broken"}
    assert isinstance(data["broken"], list)
    rows = {(p["kind"], p["name"]): p for p in data["parts"]}
    assert rows[("schedule", "cosine")] == {
        "kind": "schedule",
        "role": None,
        "name": "cosine",
        "version": 1,
        "provider": f"gankit {gankit.__version__}",
        "summary": gankit.get_registry().get("schedule", "cosine").summary,
    }
    assert all(set(p) == {"kind", "role", "name", "version", "provider", "summary"} for p in data["parts"])
    assert rows[("loss", "ragan")]["role"] == "adversarial"
    assert {p["kind"] for p in data["parts"]} >= {"generator", "discriminator", "loss", "schedule", "data"}


def test_list_one_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--kind", "schedule", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {p["kind"] for p in data["parts"]} == {"schedule"}
    assert {"constant", "cosine", "step", "linear-warmup"} <= {p["name"] for p in data["parts"]}
    assert main(["list", "--kind", "schedule"]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows
    assert {row[0] for row in rows} <= {"schedule", "plugin"}


def test_list_unknown_kind(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["list", "--kind", "schedul"])
    assert info.value.code == 2
    assert "invalid choice: 'schedul'" in capsys.readouterr().err


# --------------------------------------------------------------------------- show


def test_show_params_with_types_defaults_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "cosine"]) == 0
    out = capsys.readouterr().out
    assert f"schedule cosine v1  (gankit {gankit.__version__})" in out
    assert "Cosine decay" in out
    rows = {row[0]: row for row in table_rows(out)}
    assert rows["min_factor"] == ["min_factor", "float", "0.0", ">= 0; <= 1", "Factor reached at the last step."]
    assert rows["steps"][1:4] == ["int | None", "None", "> 0"]
    assert rows["steps"][4].startswith("Length of the decay")


def test_show_required_and_factory_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "image-folder"]) == 0
    rows = {row[0]: row for row in table_rows(capsys.readouterr().out)}
    assert rows["path"][1:3] == ["str", "(required)"]
    assert main(["show", "step"]) == 0
    rows = {row[0]: row for row in table_rows(capsys.readouterr().out)}
    assert rows["milestones"][1:3] == ["list[int]", "[]"]


def test_show_a_name_of_several_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "dcgan"]) == 0
    out = capsys.readouterr().out
    assert "generator dcgan v1" in out
    assert "discriminator dcgan v1" in out
    assert main(["show", "dcgan", "--kind", "discriminator"]) == 0
    out = capsys.readouterr().out
    assert "discriminator dcgan v1" in out
    assert "generator dcgan" not in out


def test_show_part_without_params_and_pinned(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "constant@v1"]) == 0
    out = capsys.readouterr().out
    assert "schedule constant v1" in out
    assert "takes no parameters" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "cosin"], "error: no part named 'cosin'. Did you mean 'cosine'"),
        (["show", "constant@v9"], "error: schedule 'constant' has no version v9; available: v1"),
        (["show", "constant@latest"], "error: bad version in 'constant@latest': write it as 'name@v2'"),
        (["show", "dcgan", "--kind", "schedule"], "error: unknown schedule 'dcgan'."),
    ],
)
def test_show_mistakes(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(message)
    assert "Traceback" not in captured.err
    assert captured.out == ""


# --------------------------------------------------------------------------- check


def test_check_valid(ring: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ring)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{ring}: valid gan recipe\n"
    assert "error" not in captured.err


@pytest.mark.parametrize("name", ["ring-gan", "dcgan-digits"])
def test_check_shipped_recipe_by_name(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", name]) == 0
    assert capsys.readouterr().out == f"{builtin_recipes()[name]}: valid gan recipe\n"


def test_check_invalid_lists_every_problem_on_stderr(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(broken)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0] == f"error: {broken}: 3 problems"
    err = captured.err
    assert f"{broken}:line 6: data.type: unknown data 'rung'. Did you mean 'ring'" in err
    assert f"{broken}:line 10: generator.widht: unknown key 'widht'. Did you mean 'width'?" in err
    assert f"{broken}:line 16: los: unknown slot 'los' for a gan recipe. Did you mean 'loss'" in err
    assert "Traceback" not in err


def test_check_debug_raises(broken: Path) -> None:
    with pytest.raises(gankit.RecipeError, match="3 problems"):
        main(["--debug", "check", str(broken)])
    with pytest.raises(gankit.RecipeError, match="3 problems"):
        main(["check", "--debug", str(broken)])


def test_check_in_a_real_process_traceback_only_with_debug(tmp_path: Path, run_gankit) -> None:
    path = tmp_path / "syntax.toml"
    path.write_text("[run]\nseed = 1\nsteps = = 3\n", encoding="utf-8")
    plain = run_gankit(["check", str(path)])
    assert plain.returncode == 1
    assert plain.stdout == ""
    assert plain.stderr == f"error: {path}: 1 problem\n  {path}:line 3: TOML syntax error at column 9: Invalid value\n"
    debug = run_gankit(["--debug", "check", str(path)])
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "gankit.recipe.RecipeError" in debug.stderr
    assert "TOML syntax error at column 9" in debug.stderr


def test_check_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "ring-gn"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ring-gn: no such recipe file. Did you mean 'ring-gan'")
    assert "Traceback" not in err


def test_check_set_is_typed_by_the_schema(ring: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "check",
        str(ring),
        "--set",
        "generator.width=32",
        "--set",
        "run.seed=7",
        "--set",
        "tricks=[]",
        "--set",
        "optim.generator.lr=0.001",
        "--print",
    ]
    assert main(argv) == 0
    resolved = tomllib.loads(capsys.readouterr().out)
    assert resolved["generator"]["width"] == 32
    assert resolved["run"]["seed"] == 7
    assert resolved["optim"]["generator"]["lr"] == 0.001
    assert resolved["discriminator"]["width"] == 16
    assert resolved["generator"]["type"] == "mlp@v1"  # versions pinned
    assert resolved["loss"]["type"].startswith("non-saturating@v")  # defaults spelled out
    assert resolved["run"]["batch_size"] == 64


def test_check_print_round_trips(ring: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ring), "--print"]) == 0
    resolved = tmp_path / "resolved.toml"
    resolved.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["check", str(resolved), "--print"]) == 0
    assert tomllib.loads(capsys.readouterr().out) == tomllib.loads(resolved.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("generator.width=abc", "--set generator.width=abc: generator.width: Input should be a valid integer"),
        ("generator.widht=3", "--set generator.widht=3: generator.widht: unknown key 'widht'. Did you mean 'width'?"),
        ("run.steps=0", "--set run.steps=0: run.steps: Input should be greater than 0"),
        ("generator.type=mpl", "--set generator.type=mpl: generator.type: unknown generator 'mpl'"),
        ("generator.width", "error: --set 'generator.width': write it as slot.key=value"),
    ],
)
def test_check_bad_set(override: str, message: str, ring: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ring), "--set", override]) == 1
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
    assert "Traceback" not in captured.err


# --------------------------------------------------------------------------- schema and recipes


def test_schema_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "gankit recipe"
    output = tmp_path / "recipe.schema.json"
    assert main(["schema", "-o", str(output)]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(output.read_text(encoding="utf-8")) == schema


def test_recipes_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    shipped = list(builtin_recipes())
    assert names[: len(shipped)] == shipped  # gankit's own first, then the installed plugins' recipes
    plugin_lines = lines[len(shipped):]
    assert all("[gankit-" in line for line in plugin_lines)
    assert "ring-pacgan" in names[len(shipped):]
    ring_line = lines[names.index("ring-gan")]
    assert "ring of 8 Gaussians" in ring_line
    assert main(["recipes", "--path"]) == 0
    assert str(builtin_recipes()["ring-gan"]) in capsys.readouterr().out


def test_schema_to_an_unwritable_path_is_a_user_mistake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a-file").write_text("")
    target = tmp_path / "a-file" / "recipe.schema.json"  # its folder is a file
    assert main(["schema", "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert str(target) in err


def test_check_unreadable_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00")
    assert main(["check", str(path)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {path}: cannot read recipe: ")
    assert main(["check", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path}: is a folder, not a recipe file\n"
