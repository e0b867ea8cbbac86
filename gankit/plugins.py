"""Loading parts: gankit's built-in ones and third-party plugins, through pluggy.

Nothing here runs on ``import gankit``: :func:`get_registry` fills the registry
the first time parts are needed. Each plugin is imported and asked for its
parts on its own, so one that fails is recorded in :func:`broken_plugins`,
warned about, and the others keep working.

A plugin is loaded in a thread of its own, so that whatever it does is
contained: any exception it raises, ``SystemExit`` and ``KeyboardInterrupt``
included, marks it broken, and a plugin that has not finished loading after
``GANKIT_PLUGIN_TIMEOUT`` seconds (default 30; ``0`` waits forever) is marked
broken and left behind, so that a plugin whose import hangs never hangs
gankit. A real Ctrl-C still interrupts: it reaches the main thread, which is
only waiting.
"""

from __future__ import annotations

import os
import threading
import traceback
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from gankit import hookspecs
from gankit.errors import GankitError, GankitWarning
from gankit.registry import BUILTIN_NAMESPACE, Part, Provider, Registry

ENTRY_POINT_GROUP = "gankit"
DISABLE_ENV = "GANKIT_DISABLE_PLUGINS"
TIMEOUT_ENV = "GANKIT_PLUGIN_TIMEOUT"
#: Seconds a plugin may take to import and register before it is reported broken.
DEFAULT_TIMEOUT = 30.0


class PluginWarning(GankitWarning):
    """A third-party plugin failed to load; gankit goes on without it."""


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that failed to import or register, and why."""

    name: str
    provider: Provider
    error: str
    details: str


_lock = threading.Lock()
_registry: Registry | None = None
_broken: list[BrokenPlugin] = []


def plugins_disabled() -> bool:
    """Whether ``GANKIT_DISABLE_PLUGINS`` asks for built-in parts only."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _gankit_provider() -> Provider:
    from gankit import __version__

    return Provider("gankit", __version__, BUILTIN_NAMESPACE)


def plugin_timeout() -> float | None:
    """Seconds a plugin may take to load (``GANKIT_PLUGIN_TIMEOUT``, default 30); ``None`` waits forever."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        warnings.warn(f"{TIMEOUT_ENV}={text[:40]!r} is not a number of seconds; using {DEFAULT_TIMEOUT:g}",
                      PluginWarning, stacklevel=2)
        return DEFAULT_TIMEOUT
    if seconds != seconds or seconds < 0:
        return DEFAULT_TIMEOUT
    return None if seconds == 0 else seconds


@dataclass
class _Attempt:
    """One plugin's registration: the parts it added so far, and whether it may still add any."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    open: bool = True
    added: list[Part] = field(default_factory=list)

    def close(self, registry: Registry, provider: Provider) -> None:
        """Stop the plugin from adding parts and recipes, and remove those it added."""
        with self.lock:
            if self.open:
                self.open = False
                for part in self.added:
                    registry.remove(part)
                registry.remove_recipes(provider)


class _AbandonedError(Exception):
    """The plugin took too long; what it registers now is refused."""


def _make_register(registry: Registry, provider: Provider, attempt: _Attempt) -> hookspecs.Register:
    def register(
        kind: str,
        name: str,
        factory: Any,
        params: Any = None,
        *,
        version: int = 1,
        role: str | None = None,
        summary: str | None = None,
    ) -> Part:
        with attempt.lock:
            if not attempt.open:
                raise _AbandonedError(f"{provider}: registered {name!r} after its time was up")
            part = registry.add(
                kind, name, factory, params, provider=provider, version=version, role=role, summary=summary
            )
            attempt.added.append(part)
        return part

    return register


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def _register(registry: Registry, plugin: ModuleType | object, provider: Provider, attempt: _Attempt) -> list[Part]:
    manager = _new_manager()
    manager.register(plugin, name=provider.namespace or provider.name)
    manager.check_pending()
    has_parts = bool(manager.hook.gankit_register_parts.get_hookimpls())
    has_recipes = bool(manager.hook.gankit_recipes.get_hookimpls())
    if not has_parts and not has_recipes:
        raise GankitError(
            f"{provider}: the plugin defines neither a gankit_register_parts nor a gankit_recipes hook; "
            "define one and decorate it with @gankit.hookimpl"
        )
    try:
        if has_parts:
            manager.hook.gankit_register_parts(register=_make_register(registry, provider, attempt))
        if has_recipes:
            for paths in manager.hook.gankit_recipes():
                with attempt.lock:
                    if not attempt.open:
                        raise _AbandonedError(f"{provider}: added recipes after its time was up")
                    registry.add_recipes(paths or [], provider=provider)
    except BaseException:
        attempt.close(registry, provider)
        raise
    return list(attempt.added)


def register_plugin(registry: Registry, plugin: ModuleType | object, provider: Provider) -> list[Part]:
    """Ask one plugin object (a module or any object with the hook) for its parts.

    The parts of a plugin that fails half-way are removed again, so a plugin
    is either wholly in the registry or not at all.
    """
    return _register(registry, plugin, provider, _Attempt())


def _entry_point_provider(entry_point: metadata.EntryPoint) -> Provider:
    dist = getattr(entry_point, "dist", None)
    if dist is not None:
        return Provider(dist.metadata["Name"] or entry_point.name, dist.version, entry_point.name)
    return Provider(entry_point.name, "unknown", entry_point.name)


def _describe(error: BaseException) -> str:
    text = str(error)
    if len(text) > 500:
        text = text[:497] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _load_entry_point(entry_point: metadata.EntryPoint, registry: Registry, provider: Provider) -> BrokenPlugin | None:
    """Import and register one plugin in a thread of its own; what went wrong, or ``None``."""
    attempt = _Attempt()
    outcome: dict[str, Any] = {}

    def load() -> None:
        try:
            if entry_point.name == BUILTIN_NAMESPACE or "." in entry_point.name:
                raise GankitError(f"bad entry-point name {entry_point.name!r}: use a plain namespace")
            _register(registry, entry_point.load(), provider, attempt)
        except BaseException as exc:  # everything a plugin raises: SystemExit and KeyboardInterrupt too
            outcome["error"] = _describe(exc)
            outcome["details"] = traceback.format_exc()

    timeout = plugin_timeout()
    thread = threading.Thread(target=load, name=f"gankit-plugin-{entry_point.name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        attempt.close(registry, provider)
        error = f"did not finish loading within {timeout:g} s (its import hangs?); {TIMEOUT_ENV} sets the limit"
        return BrokenPlugin(entry_point.name, provider, error, "")
    if "error" in outcome:
        return BrokenPlugin(entry_point.name, provider, outcome["error"], outcome["details"])
    return None


def _load_third_party(registry: Registry) -> list[BrokenPlugin]:
    broken: list[BrokenPlugin] = []
    seen: set[str] = set()
    for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        provider = _entry_point_provider(entry_point)
        if entry_point.name in seen:
            error = f"another installed plugin already uses the namespace {entry_point.name!r}"
            broken.append(BrokenPlugin(entry_point.name, provider, error, ""))
            continue
        seen.add(entry_point.name)
        failure = _load_entry_point(entry_point, registry, provider)
        if failure is not None:
            broken.append(failure)
            warnings.warn(
                f"gankit plugin {entry_point.name!r} ({provider}) failed to load and is skipped: {failure.error}",
                PluginWarning,
                stacklevel=3,
            )
    return broken


def build_registry(*, third_party: bool | None = None) -> tuple[Registry, list[BrokenPlugin]]:
    """A new registry with the built-in parts and, unless disabled, every installed plugin's."""
    from gankit import parts

    registry = Registry()
    register_plugin(registry, parts, _gankit_provider())
    if third_party is None:
        third_party = not plugins_disabled()
    broken = _load_third_party(registry) if third_party else []
    return registry, broken


def get_registry() -> Registry:
    """The process-wide registry, filled on first use."""
    global _registry, _broken
    if _registry is None:
        with _lock:
            if _registry is None:
                registry, broken = build_registry()
                _broken = broken
                _registry = registry
    return _registry


def broken_plugins() -> list[BrokenPlugin]:
    """Plugins that failed to load into :func:`get_registry`'s registry."""
    get_registry()
    return list(_broken)


def reset_registry() -> None:
    """Forget the process-wide registry, so that the next use loads plugins again (for tests)."""
    global _registry, _broken
    with _lock:
        _registry = None
        _broken = []
