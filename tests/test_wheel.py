"""gankit as a pip dependency: build the wheel, install it into a fresh venv, use it there.

One module-scoped fixture does the slow part once (about 1-2 minutes on two
cores): it builds gankit's wheel and the wheels of the plugins in plugins/ from
copies of their sources (so the checkout gets no build/ or egg-info folders),
creates a brand-new venv, installs the CPU torch into it first (pinned to the
exact build this venv runs, so pip takes the wheel on disk and never resolves
another torch), then the gankit wheel with its dependencies. The tests then
run the installed ``gankit`` from a folder outside the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ("gankit-pacgan", "gankit-diffaugment", "gankit-extras")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".pytest_cache", ".mypy_cache")


@dataclass
class Fresh:
    """A fresh venv with the built gankit wheel installed, and a folder to work in."""

    work: Path
    venv: Path
    wheel: Path
    plugin_wheels: dict[str, Path]

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "GANKIT_DISABLE_PLUGINS")}
        env["VIRTUAL_ENV"] = str(self.venv)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["COLUMNS"] = "250"
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        return env

    def run(self, program: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``program`` (``python``, ``pip``, ``gankit``) of the fresh venv in the work folder."""
        done = subprocess.run(
            [str(self.bin / program), *args], cwd=self.work, env=self.env(), capture_output=True, text=True,
            timeout=timeout, check=False,
        )
        return done

    def ok(self, program: str, *args: str, timeout: float = 300) -> str:
        """Like :meth:`run`, asserting success; returns standard output."""
        done = self.run(program, *args, timeout=timeout)
        assert done.returncode == 0, f"{program} {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done.stdout


def check(command: Sequence[str | Path], cwd: Path, timeout: float = 300) -> None:
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


def build_wheel(source: Path, out: Path) -> Path:
    """``python -m build --wheel`` of a source folder, with this venv's setuptools (no isolation: no downloads)."""
    check([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check", "--outdir", out,
           source], cwd=source)
    wheels = sorted(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def copy_gankit_source(target: Path) -> Path:
    """The files that make gankit's distribution, copied (the build writes egg-info and build/ beside them)."""
    target.mkdir(parents=True)
    shutil.copytree(ROOT / "gankit", target / "gankit", ignore=SKIP)
    for name in ("pyproject.toml", "README.md", "LICENSE", "LICENSE.txt", "MANIFEST.in"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target / name)
    return target


def torch_requirement() -> str:
    """``torch==<the exact build this venv runs>``, e.g. ``torch==2.13.0+cpu``: a wheel on disk, never a download."""
    return f"torch=={metadata.version('torch')}"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Fresh:
    work = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(copy_gankit_source(work / "src" / "gankit"), work / "dist" / "gankit")
    plugin_wheels = {}
    for dist in PLUGINS:
        source = work / "src" / dist
        shutil.copytree(ROOT / "plugins" / dist, source, ignore=SKIP)
        plugin_wheels[dist] = build_wheel(source, work / "dist" / dist)
    venv = work / "venv"
    check([sys.executable, "-m", "venv", venv], cwd=work)
    env = Fresh(work, venv, wheel, plugin_wheels)
    env.ok("pip", "install", "--no-compile", torch_requirement(), timeout=600)
    env.ok("pip", "install", "--no-compile", str(wheel), timeout=600)
    return env


def test_wheel_holds_the_recipes_templates_and_type_marker(fresh: Fresh) -> None:
    names = set(zipfile.ZipFile(fresh.wheel).namelist())
    recipes = {f"gankit/recipes/{p.name}" for p in (ROOT / "gankit" / "recipes").glob("*.toml")}
    assert "gankit/recipes/dcgan-digits.toml" in recipes
    assert recipes <= names
    templates = {
        "gankit/" + p.relative_to(ROOT / "gankit").as_posix()
        for p in (ROOT / "gankit" / "templates").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "gankit/templates/plugin/pyproject.toml.tmpl" in templates
    assert templates <= names
    assert "gankit/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "plugins/", "docs/"))]


def test_import_gankit_from_the_installed_wheel(fresh: Fresh) -> None:
    out = fresh.ok("python", "-c", "import sys, gankit; print(gankit.__file__); print('torch' in sys.modules)")
    location, torch_loaded = out.split()
    assert Path(location).is_relative_to(fresh.venv), f"gankit imported from {location}, not the fresh venv"
    assert torch_loaded == "False"
    assert fresh.ok("gankit", "--version").strip() == f"gankit {metadata.version('gankit')}"
    assert "recipes" in fresh.ok("gankit", "--help")


def test_gankit_recipes_lists_the_shipped_recipes(fresh: Fresh) -> None:
    out = fresh.ok("gankit", "recipes")
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {p.stem for p in (ROOT / "gankit" / "recipes").glob("*.toml")} <= listed
    assert "dcgan-digits" in listed


def test_gankit_train_a_shipped_recipe_by_name(fresh: Fresh) -> None:
    fresh.ok("gankit", "train", "dcgan-digits", "--steps", "5", "--out", "run", "-q", timeout=600)
    run = fresh.work / "run"
    assert (run / "recipe.toml").is_file()
    assert list((run / "checkpoints").glob("*.safetensors"))
    assert (run / "generator.safetensors").is_file()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in records) == 5


def test_installing_plugins_adds_their_parts_with_the_distribution_as_provider(fresh: Fresh) -> None:
    fresh.ok("gankit", "plugin", "new", "demo", "--dir", "gankit-demo")
    demo = build_wheel(fresh.work / "gankit-demo", fresh.work / "dist" / "gankit-demo")
    before = json.loads(fresh.ok("gankit", "list", "--json"))
    assert not [row for row in before["parts"] if "." in row["name"]], "no plugin part before any plugin is installed"
    # With dependencies: they must all be satisfied by what is installed (gankit, torch, pydantic).
    fresh.ok("pip", "install", "--no-compile", *map(str, fresh.plugin_wheels.values()), str(demo), timeout=600)
    listing = json.loads(fresh.ok("gankit", "list", "--json"))
    providers = {row["name"]: row["provider"] for row in listing["parts"]}
    assert providers["pacgan.packed"] == "gankit-pacgan 0.1.0"
    assert providers["diffaugment.augment"] == "gankit-diffaugment 0.1.0"
    assert providers["extras.lion"] == "gankit-extras 0.1.0"
    assert providers["demo.instance-noise"] == "gankit-demo 0.1.0"
    assert providers["dcgan"] == f"gankit {metadata.version('gankit')}"
    assert listing["broken"] == []
    shown = fresh.ok("gankit", "show", "pacgan.packed")
    assert "gankit-pacgan 0.1.0" in shown
    recipes = fresh.ok("gankit", "recipes")  # recipes shipped inside the plugins' wheels
    assert "ring-pacgan" in recipes and "ring-extras" in recipes and "[gankit-extras 0.1.0]" in recipes
