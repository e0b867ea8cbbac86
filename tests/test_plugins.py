"""Plugins: real installed distributions (a dist-info on sys.path), broken ones, namespaces, disabling.

The plugins here are real distributions as far as ``importlib.metadata`` is
concerned: a package plus a ``*.dist-info`` folder with ``METADATA`` and
``entry_points.txt``, found on ``sys.path``. The command-line tests run gankit
in a subprocess with ``PYTHONPATH`` pointing at them, so this process's
registry is not touched; the in-process tests build their own registries.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import types
from pathlib import Path

import pytest

import gankit
from gankit import RegistrationError
from gankit.plugins import (
    DISABLE_ENV,
    BrokenPlugin,
    PluginWarning,
    build_registry,
    get_registry,
    plugins_disabled,
    register_plugin,
    reset_registry,
)
from gankit.recipe import loads_recipe
from gankit.registry import Provider, Registry

# --------------------------------------------------------------------------- fake installed plugins

TESTPLUG = '''
"""A tiny third-party gankit plugin."""
from pydantic import Field

import gankit


class HalfParams(gankit.Params):
    """Parameters of testplug.half."""

    factor: float = Field(0.5, gt=0, le=1, description="Multiply the learning rate by this.")


class Half:
    """Half the learning rate at every step (testplug)."""

    def __init__(self, params, **context):
        self.params = params

    def __call__(self, step):
        return self.params.factor


@gankit.hookimpl
def gankit_register_parts(register):
    register("schedule", "testplug.half", Half, HalfParams)
'''

BADIMPORT = """
raise RuntimeError("badimport is broken on purpose")
"""

HALFREG = '''
import gankit


def first(params, **context):
    """Registered before the failure."""
    return lambda step: 1.0


@gankit.hookimpl
def gankit_register_parts(register):
    register("schedule", "halfreg.first", first)
    register("trick", "halfreg.second", first)
    raise ValueError("halfreg fails half-way")
'''

SQUATTER = """
import gankit


@gankit.hookimpl
def gankit_register_parts(register):
    register("schedule", "squatter.fine", lambda p, **c: None, summary="fine")
    register("generator", "dcgan", lambda p, **c: None, summary="takes the built-in name")
"""

INTRUDER = """
import gankit


@gankit.hookimpl
def gankit_register_parts(register):
    register("schedule", "testplug.stolen", lambda p, **c: None, summary="into testplug's namespace")
"""

MY_MODULES = ("gankit_testplug", "gankit_badimport", "gankit_halfreg", "gankit_squatter", "gankit_intruder")


def install_dist(root: Path, name: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Write a distribution into ``root`` as pip would: modules plus ``<name>-<version>.dist-info``."""
    for module, source in modules.items():
        package = root / module
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    lines = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[gankit]\n{lines}", encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")


def install_testplug(root: Path) -> None:
    install_dist(root, "gankit-testplug", "0.3", {"testplug": "gankit_testplug"}, {"gankit_testplug": TESTPLUG})


def install_broken(root: Path) -> None:
    install_dist(root, "gankit-badimport", "1.0", {"badimport": "gankit_badimport"}, {"gankit_badimport": BADIMPORT})
    install_dist(root, "gankit-halfreg", "2.1", {"halfreg": "gankit_halfreg"}, {"gankit_halfreg": HALFREG})


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A folder on ``sys.path`` to install test plugins into (for this test only)."""
    get_registry()  # fill the process-wide registry first, so that it never sees these plugins
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    yield root
    for module in list(sys.modules):
        if module.split(".")[0] in MY_MODULES:
            del sys.modules[module]


def mine(broken: list[BrokenPlugin]) -> dict[str, BrokenPlugin]:
    """The broken plugins among this file's test plugins (a real plugin may be installed besides)."""
    names = {m.removeprefix("gankit_") for m in MY_MODULES}
    return {b.name: b for b in broken if b.name in names}


# --------------------------------------------------------------------------- in-process: entry points


def test_installed_plugin_parts_appear_with_their_provider(site: Path) -> None:
    install_testplug(site)
    registry, broken = build_registry()
    assert mine(broken) == {}
    part = registry.get("schedule", "testplug.half")
    assert part.provider == Provider("gankit-testplug", "0.3", "testplug")
    assert str(part.provider) == "gankit-testplug 0.3"
    assert part.summary == "Half the learning rate at every step (testplug)."
    assert part.build({"factor": 0.25})(100) == 0.25
    # built-in parts are all still there, from gankit itself
    assert registry.get("schedule", "constant").provider.name == "gankit"
    # and a recipe can use the plugin's part by its namespaced name
    recipe = loads_recipe(
        '[data]\ntype = "ring"\n[generator]\ntype = "mlp"\n[discriminator]\ntype = "mlp"\n'
        '[schedule.generator]\ntype = "testplug.half"\nfactor = 0.75\n',
        registry=registry,
    )
    assert recipe["schedule"]["generator"].build()(0) == 0.75
    assert recipe.part_versions()["schedule.generator"] == "testplug.half@v1 (gankit-testplug 0.3)"


def test_plugin_failing_on_import_is_isolated(site: Path) -> None:
    install_testplug(site)
    install_broken(site)
    with pytest.warns(PluginWarning) as record:
        registry, broken = build_registry()
    messages = [str(w.message) for w in record]
    assert any(
        "gankit plugin 'badimport' (gankit-badimport 1.0) failed to load and is skipped: "
        "RuntimeError: badimport is broken on purpose" in m
        for m in messages
    ), messages
    bad = mine(broken)["badimport"]
    assert bad.provider == Provider("gankit-badimport", "1.0", "badimport")
    assert bad.error == "RuntimeError: badimport is broken on purpose"
    assert "Traceback" in bad.details
    # the good plugin and the built-in parts are unaffected
    assert registry.get("schedule", "testplug.half").provider.name == "gankit-testplug"
    assert ("generator", "dcgan") in registry


def test_plugin_failing_mid_registration_leaves_no_part_behind(site: Path) -> None:
    install_dist(site, "gankit-halfreg", "2.1", {"halfreg": "gankit_halfreg"}, {"gankit_halfreg": HALFREG})
    with pytest.warns(PluginWarning, match=r"'halfreg' \(gankit-halfreg 2.1\) failed to load.*halfreg fails half-way"):
        registry, broken = build_registry()
    assert mine(broken)["halfreg"].error == "ValueError: halfreg fails half-way"
    assert ("schedule", "halfreg.first") not in registry
    assert ("trick", "halfreg.second") not in registry
    assert not [p for p in registry.parts(all_versions=True) if p.name.startswith("halfreg.")]
    assert ("schedule", "constant") in registry


def test_plugin_registering_into_the_builtin_namespace_is_broken(site: Path) -> None:
    install_dist(site, "gankit-squatter", "0.1", {"squatter": "gankit_squatter"}, {"gankit_squatter": SQUATTER})
    with pytest.warns(PluginWarning, match="squatter"):
        registry, broken = build_registry()
    error = mine(broken)["squatter"].error
    assert "cannot register generator 'dcgan' into the built-in namespace" in error
    assert "'squatter.<name>'" in error
    assert registry.get("generator", "dcgan").provider.name == "gankit"
    assert ("schedule", "squatter.fine") not in registry


def test_plugin_registering_into_another_plugins_namespace_is_broken(site: Path) -> None:
    install_testplug(site)
    install_dist(site, "gankit-intruder", "0.1", {"intruder": "gankit_intruder"}, {"gankit_intruder": INTRUDER})
    with pytest.warns(PluginWarning, match="intruder"):
        registry, broken = build_registry()
    assert "cannot register schedule 'testplug.stolen' into namespace 'testplug'" in mine(broken)["intruder"].error
    assert ("schedule", "testplug.stolen") not in registry
    assert ("schedule", "testplug.half") in registry


def test_plugin_hook_with_a_wrong_signature_is_broken(site: Path) -> None:
    source = "import gankit\n\n@gankit.hookimpl\ndef gankit_register_parts(reg):\n    reg('trick', 'sig.x', None)\n"
    install_dist(site, "gankit-sig", "0.1", {"sig": "gankit_intruder"}, {"gankit_intruder": source})
    with pytest.warns(PluginWarning, match="'sig' \\(gankit-sig 0.1\\) failed to load"):
        registry, broken = build_registry()
    error = {b.name: b for b in broken}["sig"].error
    assert error.startswith("PluginValidationError")
    assert "reg" in error
    assert ("trick", "sig.x") not in registry


def test_two_distributions_with_one_namespace(site: Path) -> None:
    install_testplug(site)
    install_dist(site, "gankit-testplug-fork", "9.0", {"testplug": "gankit_intruder"}, {"gankit_intruder": INTRUDER})
    registry, broken = build_registry()
    clash = mine(broken)["testplug"]
    assert "another installed plugin already uses the namespace 'testplug'" in clash.error
    assert clash.provider.name in {"gankit-testplug", "gankit-testplug-fork"}
    assert len(registry.find("testplug.half")) + len(registry.find("testplug.stolen")) == 1


def test_entry_point_name_must_be_a_plain_namespace(site: Path) -> None:
    install_dist(site, "gankit-dotted", "0.1", {"dotted.name": "gankit_testplug"}, {"gankit_testplug": TESTPLUG})
    with pytest.warns(PluginWarning, match="bad entry-point name 'dotted.name'"):
        registry, broken = build_registry()
    assert (
        "bad entry-point name 'dotted.name': use a plain namespace" in {b.name: b for b in broken}["dotted.name"].error
    )
    assert ("schedule", "testplug.half") not in registry


@pytest.mark.parametrize("value", ["1", "true", "yes", " YES "])
def test_disable_plugins_env(site: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    install_testplug(site)
    install_broken(site)
    monkeypatch.setenv(DISABLE_ENV, value)
    assert plugins_disabled()
    registry, broken = build_registry()
    assert broken == []
    assert ("schedule", "testplug.half") not in registry
    assert ("schedule", "constant") in registry


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_plugins_enabled_env(site: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    install_testplug(site)
    monkeypatch.setenv(DISABLE_ENV, value)
    assert not plugins_disabled()
    registry, _ = build_registry()
    assert ("schedule", "testplug.half") in registry


def test_third_party_argument_overrides_the_env(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_testplug(site)
    monkeypatch.setenv(DISABLE_ENV, "1")
    registry, _ = build_registry(third_party=True)
    assert ("schedule", "testplug.half") in registry
    monkeypatch.delenv(DISABLE_ENV)
    registry, _ = build_registry(third_party=False)
    assert ("schedule", "testplug.half") not in registry


def test_process_registry_is_filled_once_and_can_be_reset(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert gankit.get_registry() is get_registry()
    install_testplug(site)
    install_broken(site)
    # already filled: plugins installed afterwards are not seen until reset
    assert ("schedule", "testplug.half") not in get_registry()
    try:
        reset_registry()
        with pytest.warns(PluginWarning):
            registry = get_registry()
        assert ("schedule", "testplug.half") in registry
        assert set(mine(gankit.broken_plugins())) == {"badimport", "halfreg"}
        assert get_registry() is registry
    finally:
        monkeypatch.undo()
        reset_registry()
    assert ("schedule", "testplug.half") not in get_registry()


def test_list_shows_broken_plugins_in_red(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gankit.cli import main

    install_testplug(site)
    install_broken(site)
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "250")
    try:
        reset_registry()
        assert main(["list", "--kind", "schedule"]) == 0
    finally:
        monkeypatch.undo()
        reset_registry()
    lines = capsys.readouterr().out.splitlines()
    red = "\x1b[31m"
    bad = next(line for line in lines if "badimport" in line)
    assert red in bad
    assert "failed to load: RuntimeError: badimport is broken on purpose" in bad
    assert red in next(line for line in lines if "halfreg" in line)
    good = next(line for line in lines if "testplug.half" in line)
    assert "gankit-testplug 0.3" in good
    assert red not in good


BRACKETS = """
import gankit


@gankit.hookimpl
def gankit_register_parts(register):
    register("schedule", "brackets.half", lambda p, **c: None, summary="Halves the [run] learning rate.")
"""


def test_list_table_prints_square_brackets_verbatim(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gankit.cli import main

    install_dist(site, "gankit-brackets", "0.1", {"brackets": "gankit_intruder"}, {"gankit_intruder": BRACKETS})
    install_dist(
        site,
        "gankit-badbrackets",
        "0.1",
        {"badbrackets": "gankit_badimport"},
        {"gankit_badimport": "raise ValueError('needs the [data] table')"},
    )
    monkeypatch.setenv("COLUMNS", "250")
    try:
        reset_registry()
        assert main(["list", "--kind", "schedule"]) == 0
    finally:
        monkeypatch.undo()
        reset_registry()
    lines = capsys.readouterr().out.splitlines()
    assert "Halves the [run] learning rate." in next(line for line in lines if "brackets.half" in line)
    assert "ValueError: needs the [data] table" in next(line for line in lines if "badbrackets" in line)


# --------------------------------------------------------------------------- in-process: register_plugin


def _module(name: str, hook) -> types.ModuleType:
    module = types.ModuleType(name)
    module.gankit_register_parts = gankit.hookimpl(hook)
    return module


def test_register_plugin_with_a_module() -> None:
    def hook(register):
        register("trick", "myplug.jitter", lambda p, **c: "built", summary="Jitter inputs.")
        register("trick", "myplug.jitter", lambda p, **c: "v2", version=2)

    registry = Registry()
    provider = Provider("gankit-myplug", "1.0", "myplug")
    added = register_plugin(registry, _module("myplug_mod", hook), provider)
    assert [(p.name, p.version) for p in added] == [("myplug.jitter", 1), ("myplug.jitter", 2)]
    assert all(p.provider == provider for p in added)
    assert registry.get("trick", "myplug.jitter").build() == "v2"
    assert registry.get("trick", "myplug.jitter@v1").build() == "built"


def test_register_plugin_with_an_object() -> None:
    class Plugin:
        def __init__(self, width: int) -> None:
            self.width = width

        @gankit.hookimpl
        def gankit_register_parts(self, register):
            register("metric", "objplug.width", lambda p, **c: self.width)

    registry = Registry()
    register_plugin(registry, Plugin(7), Provider("objplug", "0.0.1", "objplug"))
    part = registry.get("metric", "objplug.width")
    assert part.build() == 7
    assert str(part.provider) == "objplug 0.0.1"


def test_register_plugin_is_all_or_nothing() -> None:
    def hook(register):
        register("trick", "myplug.one", lambda p, **c: None)
        register("trick", "myplug.two", lambda p, **c: None)
        register("trick", "myplug.one", lambda p, **c: None)  # the same name and version again

    registry = Registry()
    provider = Provider("gankit-myplug", "1.0", "myplug")
    with pytest.raises(RegistrationError) as info:
        register_plugin(registry, _module("myplug_dup", hook), provider)
    assert "trick 'myplug.one' (v1) is registered twice: by gankit-myplug 1.0 and by gankit-myplug 1.0" in str(
        info.value
    )
    assert len(registry) == 0
    assert registry.parts() == []


def test_register_plugin_keeps_other_plugins_parts_on_failure() -> None:
    def good(register):
        register("trick", "myplug.keep", lambda p, **c: None)

    def bad(register):
        register("trick", "badplug.gone", lambda p, **c: None)
        raise KeyError("oops")

    registry = Registry()
    register_plugin(registry, _module("good_mod", good), Provider("good", "1", "myplug"))
    with pytest.raises(KeyError, match="oops"):
        register_plugin(registry, _module("bad_mod", bad), Provider("bad", "1", "badplug"))
    assert registry.names("trick") == ["myplug.keep"]


def test_register_plugin_clash_between_providers_names_both(builtin_registry: Registry) -> None:
    def hook(register):
        register("schedule", "cosine", lambda p, **c: None)

    with pytest.raises(RegistrationError) as info:
        register_plugin(builtin_registry, _module("dup_builtin", hook), Provider("gankit-fork", "0.9"))
    message = str(info.value)
    assert f"schedule 'cosine' (v1) is registered twice: by gankit {gankit.__version__} and by gankit-fork 0.9" in (
        message
    )
    assert builtin_registry.get("schedule", "cosine").provider.name == "gankit"


# --------------------------------------------------------------------------- the command line, in a subprocess

# One interpreter runs several real `gankit` commands in a row (starting one costs seconds). The
# registry is built by the first command, so that is the one that must print the plugin warnings;
# a step with environment changes applies them and forgets the registry, as a new process would.
_CLI_SCRIPT = """
import contextlib, io, json, os, sys
from gankit.cli import main
from gankit.plugins import reset_registry

results = []
for env, argv in json.loads(sys.argv[1]):
    if env:
        os.environ.update(env)
        reset_registry()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    results.append({"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
"""


def _pythonpath(root: Path) -> str:
    return os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)


@pytest.fixture(scope="module")
def plugin_cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Several `gankit` commands run with test plugins installed; the last with GANKIT_DISABLE_PLUGINS=1."""
    import subprocess

    root = tmp_path_factory.mktemp("site")
    install_testplug(root)
    install_broken(root)
    recipe = root / "half.toml"
    recipe.write_text(
        '[data]\ntype = "ring"\n[generator]\ntype = "mlp"\n[discriminator]\ntype = "mlp"\n'
        '[schedule.discriminator]\ntype = "testplug.half"\nfactor = 0.25\n',
        encoding="utf-8",
    )
    commands = {
        "check": ({}, ["check", str(recipe), "--print"]),
        "json": ({}, ["list", "--json"]),
        "table": ({}, ["list", "--kind", "schedule"]),
        "show": ({}, ["show", "testplug.half"]),
        "disabled": ({DISABLE_ENV: "1"}, ["list", "--json"]),
    }
    env = {k: v for k, v in os.environ.items() if k != DISABLE_ENV}
    env.update(PYTHONPATH=_pythonpath(root), COLUMNS="250")
    process = subprocess.run(
        [sys.executable, "-c", _CLI_SCRIPT, json.dumps(list(commands.values()))],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    return dict(zip(commands, json.loads(process.stdout)))


def test_cli_lists_plugin_parts_and_broken_plugins(plugin_cli: dict[str, dict]) -> None:
    result = plugin_cli["json"]
    assert result["rc"] == 0, result["stderr"]
    data = json.loads(result["stdout"])
    parts = {(p["kind"], p["name"]): p for p in data["parts"]}
    half = parts[("schedule", "testplug.half")]
    assert half["provider"] == "gankit-testplug 0.3"
    assert half["version"] == 1
    assert half["summary"] == "Half the learning rate at every step (testplug)."
    # the broken plugins are reported, and the half-registered one left nothing behind
    broken = {b["name"]: b for b in data["broken"]}
    assert broken["badimport"] == {
        "name": "badimport",
        "provider": "gankit-badimport 1.0",
        "error": "RuntimeError: badimport is broken on purpose",
    }
    assert broken["halfreg"]["provider"] == "gankit-halfreg 2.1"
    assert broken["halfreg"]["error"] == "ValueError: halfreg fails half-way"
    assert not [name for _, name in parts if name.startswith("halfreg.")]
    # built-in parts are all still listed
    builtin = {k for k, p in parts.items() if p["provider"] == f"gankit {gankit.__version__}"}
    assert {("generator", "dcgan"), ("discriminator", "mlp"), ("schedule", "constant"), ("trick", "ema")} <= builtin


def test_cli_table_shows_plugin_provider_and_broken_rows(plugin_cli: dict[str, dict]) -> None:
    result = plugin_cli["table"]
    assert result["rc"] == 0, result["stderr"]
    rows = {line.split("│")[3].strip(): line for line in result["stdout"].splitlines() if line.count("│") >= 5}
    assert "gankit-testplug 0.3" in rows["testplug.half"]
    assert "plugin" in rows["badimport"]
    assert "failed to load: RuntimeError: badimport is broken on purpose" in rows["badimport"]
    assert "gankit-halfreg 2.1" in rows["halfreg"]
    assert "failed to load: ValueError: halfreg fails half-way" in rows["halfreg"]
    assert f"gankit {gankit.__version__}" in rows["constant"]
    assert "ema" not in rows  # --kind schedule


def test_cli_warns_about_broken_plugins_and_keeps_working(plugin_cli: dict[str, dict]) -> None:
    result = plugin_cli["check"]
    assert result["rc"] == 0, result["stderr"]
    assert "gankit plugin 'badimport' (gankit-badimport 1.0) failed to load and is skipped" in result["stderr"]
    assert "gankit plugin 'halfreg' (gankit-halfreg 2.1) failed to load and is skipped" in result["stderr"]
    assert 'type = "testplug.half@v1"' in result["stdout"]
    assert "factor = 0.25" in result["stdout"]


def test_cli_shows_plugin_part_with_its_provider(plugin_cli: dict[str, dict]) -> None:
    result = plugin_cli["show"]
    assert result["rc"] == 0, result["stderr"]
    out = result["stdout"]
    assert "schedule testplug.half v1  (gankit-testplug 0.3)" in out
    assert "Half the learning rate at every step (testplug)." in out
    row = next(line for line in out.splitlines() if "factor" in line)
    assert [cell.strip() for cell in row.split("│")[1:6]] == [
        "factor",
        "float",
        "0.5",
        "> 0; <= 1",
        "Multiply the learning rate by this.",
    ]


def test_cli_honours_gankit_disable_plugins(plugin_cli: dict[str, dict]) -> None:
    result = plugin_cli["disabled"]
    assert result["rc"] == 0, result["stderr"]
    data = json.loads(result["stdout"])
    names = {p["name"] for p in data["parts"]}
    assert "testplug.half" not in names
    assert {"dcgan", "mlp", "constant", "ema"} <= names
    assert data["broken"] == []
    assert {p["provider"] for p in data["parts"]} == {f"gankit {gankit.__version__}"}
    assert "failed to load" not in result["stderr"]


def test_plugin_without_a_marked_hook_is_reported() -> None:
    plugin = types.ModuleType("unmarked")

    def gankit_register_parts(register):  # type: ignore[no-untyped-def]
        register("schedule", "unmarked.half", lambda p, **c: (lambda step: 0.5))

    plugin.gankit_register_parts = gankit_register_parts  # type: ignore[attr-defined]
    registry = Registry()
    with pytest.raises(gankit.GankitError, match=r"neither a gankit_register_parts nor .*@gankit\.hookimpl"):
        register_plugin(registry, plugin, Provider("unmarked", "1", "unmarked"))
    assert len(registry) == 0
