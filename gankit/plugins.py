"""Loading parts: gankit's built-in ones and third-party plugins, through pluggy.

Nothing here runs on ``import gankit``: :func:`get_registry` fills the registry
the first time parts are needed. Each plugin is imported and asked for its
parts on its own, so one that fails is recorded in :func:`broken_plugins`,
warned about, and the others keep working.
"""

from __future__ import annotations

import os
import threading
import traceback
import warnings
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from gankit import hookspecs
from gankit.errors import GankitError
from gankit.registry import BUILTIN_NAMESPACE, Part, Provider, Registry

ENTRY_POINT_GROUP = "gankit"
DISABLE_ENV = "GANKIT_DISABLE_PLUGINS"


class PluginWarning(UserWarning):
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


def _make_register(registry: Registry, provider: Provider, added: list[Part]) -> hookspecs.Register:
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
        part = registry.add(
            kind, name, factory, params, provider=provider, version=version, role=role, summary=summary
        )
        added.append(part)
        return part

    return register


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def register_plugin(registry: Registry, plugin: ModuleType | object, provider: Provider) -> list[Part]:
    """Ask one plugin object (a module or any object with the hook) for its parts.

    The parts of a plugin that fails half-way are removed again, so a plugin
    is either wholly in the registry or not at all.
    """
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
    added: list[Part] = []
    try:
        if has_parts:
            manager.hook.gankit_register_parts(register=_make_register(registry, provider, added))
        if has_recipes:
            for paths in manager.hook.gankit_recipes():
                registry.add_recipes(paths or [], provider=provider)
    except BaseException:
        for part in added:
            registry.remove(part)
        registry.remove_recipes(provider)
        raise
    return added


def _entry_point_provider(entry_point: metadata.EntryPoint) -> Provider:
    dist = getattr(entry_point, "dist", None)
    if dist is not None:
        return Provider(dist.metadata["Name"] or entry_point.name, dist.version, entry_point.name)
    return Provider(entry_point.name, "unknown", entry_point.name)


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
        try:
            if entry_point.name == BUILTIN_NAMESPACE or "." in entry_point.name:
                raise GankitError(f"bad entry-point name {entry_point.name!r}: use a plain namespace")
            plugin = entry_point.load()
            register_plugin(registry, plugin, provider)
        except Exception as exc:  # a broken plugin must never break gankit
            error = f"{type(exc).__name__}: {exc}"
            broken.append(BrokenPlugin(entry_point.name, provider, error, traceback.format_exc()))
            warnings.warn(
                f"gankit plugin {entry_point.name!r} ({provider}) failed to load and is skipped: {error}",
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
