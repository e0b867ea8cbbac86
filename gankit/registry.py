"""The registry of parts: every generator, loss, schedule, data source, ... by kind and name.

A *part* is a factory with a pydantic model of its parameters. Built-in parts
and third-party plugins fill the registry the same way, through the
``gankit_register_parts`` hook (see :mod:`gankit.hookspecs`). Recipes name parts
by ``type``; the registry finds them, validates their parameters and builds
them.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from gankit.errors import PartNotFoundError, RegistrationError
from gankit.kinds import KINDS

__all__ = ["KINDS", "NoParams", "Params", "Part", "PartNotFoundError", "Provider", "RegistrationError", "Registry"]

BUILTIN_NAMESPACE = ""
_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*(?:\.[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*)?$")


class Params(BaseModel):
    """Base class for a part's parameters: unknown keys are errors, values are immutable, numbers finite.

    ``inf`` and ``nan`` are refused in every number (a part that wants them sets
    ``model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=True)``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


#: The seeds gankit accepts: 64-bit integers (torch takes -2^63 to 2^64 - 1, and gankit adds offsets to seeds).
MIN_SEED = -(2**63)
MAX_SEED = 2**63 - 1
#: The type of a seed parameter: ``seed: Seed = Field(0, description=...)``.
Seed = Annotated[int, Field(ge=MIN_SEED, le=MAX_SEED)]
#: The largest channel width, hidden width or latent size a built-in network accepts.
MAX_WIDTH = 65_536
#: The largest batch size a run accepts.
MAX_BATCH_SIZE = 1 << 20


def check_device(value: str) -> str:
    """Validate a device name in settings: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    from gankit.devices import DEVICE_CHOICES, DEVICE_PATTERN

    if not DEVICE_PATTERN.match(value):
        raise ValueError(f"device must be {DEVICE_CHOICES}")
    return value


class NoParams(Params):
    """The parameters of a part that takes none."""


@dataclass(frozen=True)
class Provider:
    """Who registered a part: a distribution name and its version."""

    name: str
    version: str
    namespace: str = BUILTIN_NAMESPACE

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True)
class Part:
    """One registered part: what it is called, how to build it, what it accepts."""

    kind: str
    name: str
    factory: Callable[..., Any]
    params: type[BaseModel]
    provider: Provider
    version: int = 1
    role: str | None = None
    summary: str = ""
    doc: str = field(default="", repr=False)

    @property
    def ref(self) -> str:
        """``name`` or ``name@vN``: how a recipe refers to this exact version."""
        return f"{self.name}@v{self.version}"

    def validate(self, params: Mapping[str, Any] | BaseModel | None = None) -> BaseModel:
        """Validate ``params`` against this part's model and return the model instance."""
        if isinstance(params, self.params):
            return params
        if isinstance(params, BaseModel):
            params = params.model_dump()
        return self.params.model_validate(dict(params or {}))

    def build(self, params: Mapping[str, Any] | BaseModel | None = None, /, **context: Any) -> Any:
        """Build the part: ``factory(validated_params, **context)``."""
        return self.factory(self.validate(params), **context)


def _docstring(obj: Any) -> str:
    return inspect.cleandoc(inspect.getdoc(obj) or "")


#: Names longer than this get no did-you-mean suggestions (no part or key name is that long).
SUGGEST_MAX_LENGTH = 100


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: what an error message quotes of a user's input."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def suggest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The names in ``choices`` closest to ``name``, best first (none for a name too long to be a typo)."""
    if not isinstance(name, str) or len(name) > SUGGEST_MAX_LENGTH:
        return []
    choices = list(choices)
    found = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    lowered = name.lower()
    for choice in choices:
        if choice not in found and (lowered in choice or choice in lowered) and len(found) < n:
            found.append(choice)
    return found


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` or an empty string."""
    close = suggest(name, choices)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``"dcgan@v2"`` into ``("dcgan", 2)``; ``"dcgan"`` gives ``("dcgan", None)``."""
    name, sep, version = ref.partition("@")
    if not sep:
        return ref, None
    match = re.fullmatch(r"v?(\d{1,9})", version)
    if not match:
        raise PartNotFoundError(f"bad version in {shown(ref)}: write it as 'name@v2'")
    return name, int(match.group(1))


@dataclass(frozen=True)
class ShippedRecipe:
    """A recipe file a plugin ships (see :func:`gankit.hookspecs.gankit_recipes`)."""

    name: str
    path: Path
    provider: Provider


class Registry:
    """Parts by kind, name and version (and the recipes plugins ship).

    >>> from gankit.registry import Registry, Provider, NoParams
    >>> reg = Registry()
    >>> part = reg.add("schedule", "one", lambda p: (lambda step: 1.0), NoParams,
    ...                provider=Provider("example", "1.0"))
    >>> reg.get("schedule", "one").build()(10)
    1.0
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[str, str], dict[int, Part]] = {}
        self.recipes: dict[str, ShippedRecipe] = {}

    def add_recipes(self, paths: Iterable[Any], *, provider: Provider, taken: Iterable[str] = ()) -> None:
        """Add a plugin's recipe files (``.toml`` files, or folders of them) under their file names.

        A name already taken (by a built-in recipe, or another plugin) is
        added as ``namespace/name`` instead.
        """
        from gankit.recipe import builtin_recipes

        builtin = set(builtin_recipes()) | set(taken)
        if isinstance(paths, str | Path):
            paths = [paths]
        files: list[Path] = []
        for entry in paths:
            path = Path(entry)
            if path.is_dir():
                files.extend(sorted(path.glob("*.toml")))
            elif path.suffix == ".toml" and path.is_file():
                files.append(path)
            else:
                raise RegistrationError(
                    f"{provider}: gankit_recipes returned {str(path)!r}, not a .toml file or a folder"
                )
        for file in files:
            name = file.stem
            if name in builtin or name in self.recipes:
                name = f"{provider.namespace or provider.name}/{file.stem}"
            self.recipes[name] = ShippedRecipe(name, file, provider)

    def remove_recipes(self, provider: Provider) -> None:
        """Take every recipe of ``provider`` out again."""
        for name in [n for n, r in self.recipes.items() if r.provider == provider]:
            del self.recipes[name]

    def add(
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        params: type[BaseModel] | None = None,
        *,
        provider: Provider,
        version: int = 1,
        role: str | None = None,
        summary: str | None = None,
    ) -> Part:
        """Register a part. A name (and version) that exists already is an error naming both providers."""
        if kind not in KINDS:
            raise RegistrationError(
                f"{provider}: unknown kind {kind!r} for part {name!r}.{did_you_mean(kind, KINDS)}"
                f" Kinds: {', '.join(KINDS)}."
            )
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise RegistrationError(
                f"{provider}: bad part name {name!r}: use lower-case letters, digits and '-', "
                "with one optional 'namespace.' prefix"
            )
        namespace, _, _ = name.rpartition(".")
        if namespace != provider.namespace:
            if provider.namespace == BUILTIN_NAMESPACE:
                raise RegistrationError(
                    f"{provider}: built-in part names carry no namespace, got {name!r}"
                )
            owner = "the built-in namespace" if not namespace else f"namespace {namespace!r}"
            raise RegistrationError(
                f"{provider}: cannot register {kind} {name!r} into {owner}; "
                f"this plugin's parts must be named '{provider.namespace}.<name>'"
            )
        if not isinstance(version, int) or version < 1:
            raise RegistrationError(f"{provider}: version of {kind} {name!r} must be an int >= 1")
        if params is None:
            params = NoParams
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise RegistrationError(f"{provider}: params of {kind} {name!r} must be a pydantic model class")
        if params.model_config.get("extra") != "forbid":
            raise RegistrationError(
                f"{provider}: params model of {kind} {name!r} must forbid unknown keys "
                "(subclass gankit.Params, or set model_config = ConfigDict(extra='forbid'))"
            )
        if kind == "trick" and isinstance(factory, type):
            from gankit.training.events import check_trick_events

            check_trick_events(factory, f"{provider}: trick {name!r}")
        doc = _docstring(factory)
        first_line = doc.splitlines()[0] if doc else ""
        part = Part(
            kind=kind,
            name=name,
            factory=factory,
            params=params,
            provider=provider,
            version=version,
            role=role,
            summary=summary if summary is not None else first_line,
            doc=doc,
        )
        versions = self._parts.setdefault((kind, name), {})
        if version in versions:
            other = versions[version].provider
            raise RegistrationError(
                f"{kind} {name!r} (v{version}) is registered twice: by {other} and by {provider}. "
                "Uninstall one of them, or set GANKIT_DISABLE_PLUGINS=1 to use the built-in parts only."
            )
        versions[version] = part
        return part

    def remove(self, part: Part) -> None:
        """Take a part out of the registry (a plugin that failed half-way is removed whole)."""
        versions = self._parts.get((part.kind, part.name), {})
        if versions.get(part.version) is part:
            del versions[part.version]
        if not versions:
            self._parts.pop((part.kind, part.name), None)

    def get(self, kind: str, ref: str, version: int | None = None, *, role: str | None = None) -> Part:
        """The part ``ref`` (``name`` or ``name@vN``) of ``kind``; the newest version unless pinned."""
        if kind not in KINDS:
            raise PartNotFoundError(
                f"unknown kind {shown(kind)}.{did_you_mean(kind, KINDS)} Kinds: {', '.join(KINDS)}."
            )
        name, pinned = parse_ref(ref)
        version = version if version is not None else pinned
        versions = self._parts.get((kind, name))
        if versions and role is not None:
            versions = {v: p for v, p in versions.items() if p.role == role}
        if not versions:
            available = self.names(kind, role=role)
            what = f"{role} {kind}" if role else kind
            message = f"unknown {what} {shown(name)}.{did_you_mean(name, available)}"
            message += f" Available: {', '.join(available) if available else '(none)'}."
            raise PartNotFoundError(message + self._missing_namespace(name))
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            have = ", ".join(f"v{v}" for v in sorted(versions))
            raise PartNotFoundError(f"{kind} {shown(name)} has no version v{version}; available: {have}")
        return versions[version]

    def namespaces(self) -> set[str]:
        """The plugin namespaces that registered at least one part."""
        return {name.rpartition(".")[0] for (_, name) in self._parts if "." in name}

    def _missing_namespace(self, name: str) -> str:
        """A hint when ``name`` belongs to a plugin namespace that no installed plugin provides."""
        namespace, dot, _ = name.rpartition(".")
        if not dot or namespace in self.namespaces() or len(namespace) > SUGGEST_MAX_LENGTH:
            return ""
        import os

        hint = (f" No installed plugin provides the namespace {namespace!r}: install the plugin that does "
                f"(often the distribution 'gankit-{namespace}'), then check with gankit list.")
        if os.environ.get("GANKIT_DISABLE_PLUGINS", "").strip().lower() not in ("", "0", "false", "no"):
            hint += " GANKIT_DISABLE_PLUGINS is set, so no third-party plugin is loaded: unset it."
        return hint

    def names(self, kind: str, *, role: str | None = None) -> list[str]:
        """Sorted names of the parts of ``kind`` (and ``role``, when given)."""
        return sorted(
            {n for (k, n), versions in self._parts.items() if k == kind and any(
                role is None or p.role == role for p in versions.values())}
        )

    def parts(self, kind: str | None = None, *, all_versions: bool = False) -> list[Part]:
        """Registered parts (the newest version of each unless ``all_versions``), sorted by kind and name."""
        out: list[Part] = []
        for (k, _), versions in self._parts.items():
            if kind is not None and k != kind:
                continue
            out.extend(versions.values() if all_versions else [versions[max(versions)]])
        order = {k: i for i, k in enumerate(KINDS)}
        return sorted(out, key=lambda p: (order[p.kind], p.name, p.version))

    def find(self, name: str) -> list[Part]:
        """Parts of any kind named ``name`` (newest versions)."""
        base, _ = parse_ref(name)
        return [p for p in self.parts() if p.name == base]

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._parts

    def __len__(self) -> int:
        return sum(len(v) for v in self._parts.values())
