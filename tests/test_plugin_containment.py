"""Plugins cannot take gankit down: SystemExit, KeyboardInterrupt and hanging imports mark a plugin broken.

The plugins are real installed distributions (see ``test_plugins.install_dist``);
command-line tests run gankit in a subprocess with ``PYTHONPATH`` pointing at them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_plugins import install_dist

from gankit.plugins import DISABLE_ENV, TIMEOUT_ENV, PluginWarning, build_registry, get_registry

GOOD = """
import gankit


@gankit.hookimpl
def gankit_register_parts(register):
    register("schedule", "good.flat", lambda params, **context: (lambda step: 1.0))
"""

ON_REGISTER = """
import gankit


@gankit.hookimpl
def gankit_register_parts(register):
    register("schedule", "{name}.first", lambda params, **context: (lambda step: 1.0))
    raise {error}
"""

ON_IMPORT = "raise {error}\n"

HANGS = """
import pathlib, time
pathlib.Path({marker!r}).write_text("importing")
time.sleep(600)
"""

#: plugin name -> (module source, the error gankit reports)
PLUGINS = {
    "exitzero": (ON_IMPORT.format(error="SystemExit(0)"), "SystemExit: 0"),
    "exitthree": (ON_REGISTER.format(name="exitthree", error="SystemExit(3)"), "SystemExit: 3"),
    "ctrlc": (ON_IMPORT.format(error="KeyboardInterrupt()"), "KeyboardInterrupt"),
    "ctrlcreg": (ON_REGISTER.format(name="ctrlcreg", error="KeyboardInterrupt('from the plugin')"),
                 "KeyboardInterrupt: from the plugin"),
    "genexit": (ON_IMPORT.format(error="GeneratorExit()"), "GeneratorExit"),
}


def install(root: Path, name: str, source: str) -> None:
    install_dist(root, f"gankit-{name}", "1.0", {name: f"gankit_{name}"}, {f"gankit_{name}": source})


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    get_registry()  # fill the process-wide registry first, so that it never sees these plugins
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    yield root
    for module in list(sys.modules):
        if module.startswith("gankit_") and module.removeprefix("gankit_") in {*PLUGINS, "good", "hangs"}:
            del sys.modules[module]


def test_every_exception_a_plugin_raises_marks_it_broken(site: Path) -> None:
    install(site, "good", GOOD)
    for name, (source, _) in PLUGINS.items():
        install(site, name, source)
    with pytest.warns(PluginWarning) as record:
        registry, broken = build_registry()
    errors = {b.name: b.error for b in broken if b.name in PLUGINS}
    assert errors == {name: error for name, (_, error) in PLUGINS.items()}
    assert "Traceback" in next(b.details for b in broken if b.name == "exitzero")
    messages = " ".join(str(w.message) for w in record)
    assert "gankit plugin 'exitzero' (gankit-exitzero 1.0) failed to load and is skipped: SystemExit: 0" in messages
    # the parts registered before the failure are gone, the good plugin and the built-ins are there
    assert ("schedule", "exitthree.first") not in registry and ("schedule", "ctrlcreg.first") not in registry
    assert ("schedule", "good.flat") in registry and ("generator", "dcgan") in registry


def test_a_plugin_whose_import_hangs_is_broken_after_the_timeout(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(site, "hangs", HANGS.format(marker=str(tmp_path / "marker")))
    install(site, "good", GOOD)
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")
    started = time.monotonic()
    with pytest.warns(PluginWarning, match=r"'hangs' .* did not finish loading within 0\.5 s .*GANKIT_PLUGIN_TIMEOUT"):
        registry, broken = build_registry()
    assert time.monotonic() - started < 30
    assert [b.name for b in broken if b.name == "hangs"] == ["hangs"]
    assert ("schedule", "good.flat") in registry


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "site"
    for name, (source, _) in PLUGINS.items():
        install(root, name, source)
    env = {k: v for k, v in os.environ.items() if k != DISABLE_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    env["COLUMNS"] = "250"
    return env


def test_train_still_trains_with_plugins_that_exit_or_interrupt(
    plugin_env: dict[str, str], tmp_path: Path
) -> None:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text('[run]\nsteps = 1\nbatch_size = 8\ncheckpoint_every = 1\nsample_every = 1\n'
                      '[data]\ntype = "ring"\n[generator]\ntype = "mlp"\nwidth = 4\ndepth = 1\n'
                      '[discriminator]\ntype = "mlp"\nwidth = 4\ndepth = 1\n')
    result = subprocess.run([sys.executable, "-m", "gankit", "train", str(recipe), "--out", str(tmp_path / "run"),
                             "--quiet"], capture_output=True, text=True, env=plugin_env, cwd=tmp_path, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "checkpoints" / "step-00000001.safetensors").is_file()
    for name, (_, error) in PLUGINS.items():
        assert f"warning: gankit plugin {name!r} (gankit-{name} 1.0) failed to load and is skipped: {error}" \
            in result.stderr
    assert "Traceback" not in result.stderr and ".py:" not in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_a_real_ctrl_c_still_interrupts_while_a_plugin_loads(plugin_env: dict[str, str], tmp_path: Path) -> None:
    root = Path(plugin_env["PYTHONPATH"].split(os.pathsep)[0])
    marker = tmp_path / "marker"
    install(root, "hangs", HANGS.format(marker=str(marker)))
    # The plugin timeout is far longer than the wait for the exit: only the Ctrl-C can end the command in time,
    # however slow a busy machine makes the interpreter's exit.
    env = {**plugin_env, "GANKIT_PLUGIN_TIMEOUT": "900"}
    # A shell starts commands with Ctrl-C at its default; an ignored SIGINT would be inherited from this process.
    process = subprocess.Popen([sys.executable, "-m", "gankit", "list"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the hanging plugin was never imported"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=180)  # well before the 900 s plugin timeout
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert err.strip().endswith("interrupted") and "Traceback" not in err
