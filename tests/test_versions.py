"""Part versions: several versions of a name, pinning in recipes, and checkpoints that remember them.

The versioned part comes from a real (if tiny) installed distribution,
``gankit-verdemo``: a package and a ``*.dist-info`` folder on ``sys.path``,
found through the ``gankit`` entry point group like any plugin. Its releases
register a generator ``verdemo.mlp``:

========  ==================  ==========================================
release   versions            what the generator looks like
========  ==================  ==========================================
0.1.0     v1                  one hidden layer
0.2.0     v1, v2              v1 as before; v2 has two hidden layers
0.3.0     v2                  v1 dropped
========  ==================  ==========================================

"Upgrading" installs another release into a fresh folder and puts it on
``sys.path`` instead, then resets gankit's process-wide registry, as a new
process would see it.
"""

from __future__ import annotations

import json
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import gankit
from gankit.cli import main as cli
from gankit.plugins import DISABLE_ENV, reset_registry

MODULE = "gankit_verdemo"
DIST = "gankit-verdemo"

PLUGIN = '''
"""gankit-verdemo: one generator name in several versions."""
import torch
from torch import nn

import gankit

VERSIONS = {versions!r}


class Params(gankit.Params):
    """Parameters of verdemo.mlp (every version)."""

    latent_dim: int = 2
    width: int = 8


class MLP(nn.Module):
    """A small fully connected generator; ``hidden`` hidden layers."""

    hidden = 1

    def __init__(self, params, *, shape=None, **context):
        super().__init__()
        self.latent_dim = params.latent_dim
        self.shape = tuple(shape)
        layers, features = [], params.latent_dim
        for _ in range(self.hidden):
            layers += [nn.Linear(features, params.width), nn.ReLU()]
            features = params.width
        layers.append(nn.Linear(features, self.shape[0]))
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class MLPv2(MLP):
    """verdemo.mlp v2: two hidden layers."""

    hidden = 2


@gankit.hookimpl
def gankit_register_parts(register):
    if 1 in VERSIONS:
        register("generator", "verdemo.mlp", MLP, Params, version=1)
    if 2 in VERSIONS:
        register("generator", "verdemo.mlp", MLPv2, Params, version=2)
'''

RELEASES = {"0.1.0": (1,), "0.2.0": (1, 2), "0.3.0": (2,)}


class Site:
    """Installs releases of gankit-verdemo, one at a time, and makes gankit see the current one."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.monkeypatch = monkeypatch
        self.current: Path | None = None

    def install(self, release: str) -> None:
        """Replace the installed release (if any) with ``release``."""
        folder = self.root / f"site-{release}"
        package = folder / MODULE
        package.mkdir(parents=True)
        source = PLUGIN.format(versions=RELEASES[release])
        (package / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = folder / f"{MODULE}-{release}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {release}\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[gankit]\nverdemo = {MODULE}\n", encoding="utf-8")
        (info / "RECORD").write_text("", encoding="utf-8")
        if self.current is not None:
            sys.path.remove(str(self.current))
        self.monkeypatch.syspath_prepend(str(folder))
        self.current = folder
        sys.modules.pop(MODULE, None)
        reset_registry()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A place to install gankit-verdemo releases; the process-wide registry is reset before and after."""
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    yield Site(tmp_path, monkeypatch)
    sys.modules.pop(MODULE, None)
    reset_registry()


def recipe(generator: str, **run: object) -> gankit.Recipe:
    """A ring recipe whose generator is ``generator`` (a name, maybe pinned)."""
    return gankit.recipe_from_dict(
        {
            "run": {"steps": 2, "batch_size": 16, "samples": 8, "log_every": 1, "checkpoint_every": 2, **run},
            "data": {"type": "ring"},
            "generator": {"type": generator},
            "discriminator": {"type": "mlp", "width": 8, "depth": 1},
            "loss": {"type": "non-saturating"},
        },
        name="verdemo",
    )


def hidden_layers(module: torch.nn.Module) -> int:
    return sum(isinstance(m, torch.nn.Linear) for m in module.modules()) - 1


def test_pinned_recipe_builds_that_version_and_unpinned_builds_the_newest(site: Site) -> None:
    site.install("0.2.0")
    pinned = recipe("verdemo.mlp@v1")
    newest = recipe("verdemo.mlp")
    assert pinned["generator"].part.version == 1
    assert newest["generator"].part.version == 2
    assert hidden_layers(pinned["generator"].build(shape=(2,))) == 1
    assert hidden_layers(newest["generator"].build(shape=(2,))) == 2
    assert recipe("verdemo.mlp@2")["generator"].part.version == 2
    assert pinned.to_dict()["generator"]["type"] == "verdemo.mlp@v1"
    assert newest.to_dict()["generator"]["type"] == "verdemo.mlp@v2"


def test_a_missing_version_is_a_recipe_error_listing_the_versions(site: Site) -> None:
    site.install("0.2.0")
    with pytest.raises(gankit.RecipeError, match=r"generator\.type: generator 'verdemo\.mlp' has no version v3; "
                       r"available: v1, v2"):
        recipe("verdemo.mlp@v3")


def test_list_shows_every_version_with_its_provider(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.install("0.2.0")
    assert cli(["list", "--kind", "generator", "--json", "--all-versions"]) == 0
    rows = [row for row in json.loads(capsys.readouterr().out)["parts"] if row["name"] == "verdemo.mlp"]
    assert [(row["version"], row["provider"]) for row in rows] == [(1, f"{DIST} 0.2.0"), (2, f"{DIST} 0.2.0")]
    assert cli(["list", "--kind", "generator", "--json"]) == 0
    rows = [row for row in json.loads(capsys.readouterr().out)["parts"] if row["name"] == "verdemo.mlp"]
    assert [row["version"] for row in rows] == [2]


def train(site: Site, out: Path) -> Path:
    """Train the unpinned recipe with release 0.1.0 installed (so it resolves to v1); returns the run folder."""
    site.install("0.1.0")
    result = gankit.train(recipe("verdemo.mlp"), out, quiet=True)
    assert result.step == 2
    return out


def test_checkpoints_record_the_exact_versions_and_pin_them(site: Site, tmp_path: Path) -> None:
    from gankit.checkpoint import load_checkpoint, resolve_checkpoint

    run = train(site, tmp_path / "run")
    state = load_checkpoint(resolve_checkpoint(run)).state
    assert state["part_versions"]["generator"] == f"verdemo.mlp@v1 ({DIST} 0.1.0)"
    assert state["part_versions"]["discriminator"] == f"mlp@v1 (gankit {gankit.__version__})"
    assert 'type = "verdemo.mlp@v1"' in state["recipe"]
    assert 'type = "verdemo.mlp@v1"' in (run / "recipe.toml").read_text()


def test_loading_with_the_same_versions_is_silent(site: Site, tmp_path: Path) -> None:
    run = train(site, tmp_path / "run")
    reset_registry()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = gankit.load_generator(run)
    assert loaded.recipe["generator"].part.version == 1


def test_an_upgrade_that_keeps_the_version_rebuilds_it_silently(site: Site, tmp_path: Path) -> None:
    run = train(site, tmp_path / "run")
    site.install("0.2.0")  # v2 is now the newest, v1 still there
    assert gankit.get_registry().get("generator", "verdemo.mlp").version == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = gankit.load_generator(run)
        result = gankit.resume(run, steps=3, quiet=True)
    assert loaded.recipe["generator"].part.version == 1
    assert hidden_layers(loaded.generator) == 1
    assert gankit.sample(loaded, 4).shape == (4, 2)
    assert result.step == 3


def test_a_checkpoint_whose_version_is_gone_loads_the_newest_with_a_warning(site: Site, tmp_path: Path) -> None:
    run = train(site, tmp_path / "run")
    site.install("0.3.0")  # v1 dropped
    expected = (
        rf"generator was trained with verdemo\.mlp@v1 \({DIST} 0\.1\.0\), "
        rf"now loading verdemo\.mlp@v2 \({DIST} 0\.3\.0\)"
    )
    with pytest.warns(gankit.GankitWarning, match=expected), pytest.raises(
        gankit.GankitError, match="weights do not fit the recipe's generator"
    ):
        gankit.load_generator(run)
