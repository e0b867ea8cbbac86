"""The plugin packages in plugins/, the plugin template, and what plugins cost at import.

Each folder in plugins/ is a separately installable distribution with its own
pyproject.toml, README and tests. ``make setup`` installs them (editable, no
dependencies) into the venv; here their own test suites run, each in its own
pytest process started in the plugin's folder (so with the plugin's own
configuration, exactly as the plugin's maintainers would run them), against
the installed distribution.

``gankit plugin new`` is checked the honest way: the generated package is
built and installed by pip (into a folder put on ``PYTHONPATH``) and its own
tests run against that installed copy.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from gankit.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
PLUGINS_DIR = ROOT / "plugins"

#: distribution name -> (import package, namespace = entry point name, a part it registers)
PLUGINS = {
    "gankit-pacgan": ("gankit_pacgan", "pacgan", ("discriminator", "pacgan.packed")),
    "gankit-diffaugment": ("gankit_diffaugment", "diffaugment", ("trick", "diffaugment.augment")),
    "gankit-extras": ("gankit_extras", "extras", ("optimizer", "extras.lion")),
    "gankit-wandb": ("gankit_wandb", "wandb", ("logger", "wandb.logger")),
}


def env(**extra: str) -> dict[str, str]:
    """This process's environment, with plugins enabled and a wide terminal."""
    out = dict(os.environ)
    out.pop("GANKIT_DISABLE_PLUGINS", None)
    out["COLUMNS"] = "250"
    out.update(extra)
    return out


def python(code: str, *, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env(), cwd=cwd, timeout=timeout, check=False
    )


def require_installed(dist: str) -> None:
    """Fail with the fix when ``dist`` is not installed from this checkout."""
    module = PLUGINS[dist][0]
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{dist} is not installed: run `make setup` (or pip install --no-deps -e plugins/{dist})")
    spec = importlib.util.find_spec(module)
    origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
    source = (PLUGINS_DIR / dist / "src").resolve()
    if origin is None or source not in origin.parents:
        pytest.fail(f"{module} is imported from {origin}, not from {source}: reinstall it with `make setup`")


# --------------------------------------------------------------------------- the packages in plugins/


def test_the_plugins_folder_holds_exactly_the_known_plugins() -> None:
    found = sorted(p.name for p in PLUGINS_DIR.iterdir() if (p / "pyproject.toml").is_file())
    assert found == sorted(PLUGINS)


@pytest.mark.parametrize("dist", sorted(PLUGINS))
def test_plugin_package_layout(dist: str) -> None:
    module, namespace, _ = PLUGINS[dist]
    folder = PLUGINS_DIR / dist
    project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == dist
    assert project["version"] == "0.1.0"
    assert any(dep.split(">")[0].split("=")[0].strip() == "gankit" for dep in project["dependencies"])
    assert project["entry-points"]["gankit"] == {namespace: f"{module}.plugin"}
    assert len((folder / "README.md").read_text(encoding="utf-8")) > 500
    assert list((folder / "tests").glob("test_*.py"))
    assert (folder / "src" / module / "py.typed").is_file()


@pytest.mark.parametrize("dist", sorted(PLUGINS))
def test_plugin_is_installed_through_the_gankit_entry_point_group(dist: str) -> None:
    require_installed(dist)
    module, namespace, _ = PLUGINS[dist]
    entry_points = [ep for ep in metadata.distribution(dist).entry_points if ep.group == "gankit"]
    assert [(ep.name, ep.value) for ep in entry_points] == [(namespace, f"{module}.plugin")]


@pytest.mark.parametrize("dist", sorted(PLUGINS))
def test_plugin_passes_its_own_tests(dist: str) -> None:
    require_installed(dist)
    folder = PLUGINS_DIR / dist
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env(),
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{dist}'s tests failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    assert " passed" in done.stdout


def test_gankit_list_shows_plugin_parts_with_their_distribution_as_provider() -> None:
    for dist in PLUGINS:
        require_installed(dist)
    done = subprocess.run(
        [sys.executable, "-m", "gankit", "list", "--json"], capture_output=True, text=True, env=env(), timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    rows = {(row["kind"], row["name"]): row for row in listing["parts"]}
    for dist, (_, namespace, key) in PLUGINS.items():
        assert rows[key]["provider"] == f"{dist} {metadata.version(dist)}"
        assert namespace not in {broken["name"] for broken in listing["broken"]}


# --------------------------------------------------------------------------- import cost


LOADED = """
import sys
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numpy', 'pydantic', 'rich', %s})
print(' '.join(heavy))
"""


def test_import_gankit_loads_no_plugin_and_no_torch() -> None:
    plugins = ", ".join(repr(module) for module, _, _ in PLUGINS.values())
    done = python("import gankit\n" + LOADED % plugins)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def test_gankit_help_loads_no_plugin_and_no_torch() -> None:
    plugins = ", ".join(repr(module) for module, _, _ in PLUGINS.values())
    code = (
        "import contextlib, io\nfrom gankit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
        "assert 'plugin' in out.getvalue()\n" + LOADED % plugins
    )
    done = python(code)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert not loaded & {"torch", *(module for module, _, _ in PLUGINS.values())}, loaded


# --------------------------------------------------------------------------- gankit plugin new


def test_plugin_new_makes_a_package_that_installs_and_passes_its_own_tests(tmp_path: Path) -> None:
    package = tmp_path / "gankit-demo-noise"
    assert cli(["plugin", "new", "demo-noise", "--dir", str(package)]) == 0
    project = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "gankit-demo-noise"
    assert project["entry-points"]["gankit"] == {"demo-noise": "gankit_demo_noise.plugin"}
    assert (package / ".gitignore").is_file()
    assert (package / "src" / "gankit_demo_noise" / "py.typed").is_file()
    leftovers = [p for p in package.rglob("*") if p.suffix == ".tmpl" or "{{" in p.name]
    assert leftovers == []
    for path in package.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text(encoding="utf-8"), path

    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-compile", "--target", str(site), str(package)],
        capture_output=True, text=True, env=env(), timeout=300, check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (site / "gankit_demo_noise-0.1.0.dist-info" / "entry_points.txt").is_file()

    # The tests import the installed copy: src/ is not on the path, the pip --target folder is.
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=package, capture_output=True, text=True, env=env(PYTHONPATH=str(site)), timeout=300, check=False,
    )
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-3000:]
    assert "5 passed" in tests.stdout

    shown = subprocess.run(
        [sys.executable, "-m", "gankit", "list", "--kind", "trick", "--json"],
        capture_output=True, text=True, env=env(PYTHONPATH=str(site)), timeout=120, check=False,
    )
    rows = {row["name"]: row for row in json.loads(shown.stdout)["parts"]}
    assert rows["demo-noise.instance-noise"]["provider"] == "gankit-demo-noise 0.1.0"


def test_plugin_new_code_passes_ruff(tmp_path: Path) -> None:
    pytest.importorskip("ruff")
    package = tmp_path / "gankit-lint"
    assert cli(["plugin", "new", "lint", "--dir", str(package)]) == 0
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(package)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Jitter", "bad plugin name 'Jitter'"),
        ("my.aug", "bad plugin name 'my.aug'"),
        ("gankit-jitter", "leave out the 'gankit' prefix"),
    ],
)
def test_plugin_new_refuses_bad_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    assert cli(["plugin", "new", name, "--dir", str(tmp_path / "x")]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_plugin_new_refuses_a_folder_that_is_not_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("mine", encoding="utf-8")
    assert cli(["plugin", "new", "jitter", "--dir", str(tmp_path)]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert cli(["plugin", "new", "jitter", "--dir", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "keep.txt").read_text(encoding="utf-8") == "mine"
    assert (tmp_path / "src" / "gankit_jitter" / "parts.py").is_file()


def test_plugin_new_defaults_to_a_folder_named_after_the_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli(["plugin", "new", "my_aug"]) == 0
    assert (tmp_path / "gankit-my-aug" / "src" / "gankit_my_aug" / "plugin.py").is_file()
    text = (tmp_path / "gankit-my-aug" / "src" / "gankit_my_aug" / "plugin.py").read_text(encoding="utf-8")
    assert '"my_aug.instance-noise"' in text
