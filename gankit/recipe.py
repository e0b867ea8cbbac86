"""Recipes: TOML files that compose registered parts, validated into one :class:`Recipe`.

A recipe has one table per *slot*. In a part slot, ``type`` names a registered
part (``"dcgan"``, or ``"dcgan@v1"`` to pin a version) and the other keys are
that part's parameters. Lists of parts are arrays of tables (``[[tricks]]``).
Fixed settings (``[run]``, ``[optim.generator]``) are validated by their own
models. The top-level key ``task`` chooses the kind of recipe (``"gan"``, the
default, or ``"style"``).

Every problem in a recipe is collected into one :class:`RecipeError` that names
the file, the TOML line where it can be known, the dotted path, what is wrong
and how to fix it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gankit.errors import GankitError, PartNotFoundError
from gankit.registry import Part, Registry, did_you_mean, parse_ref, shown
from gankit.slots import ModelMapSlot, ModelSlot, PartListSlot, PartMapSlot, PartSlot, Slot, TaskSchema
from gankit.tasks import TASKS

__all__ = [
    "ModelMapSlot", "ModelSlot", "PartListSlot", "PartMapSlot", "PartSlot", "PartSpec", "Recipe", "RecipeError",
    "RecipeIssue", "Slot", "TaskSchema", "load_recipe", "loads_recipe", "recipe_from_dict", "validate",
]

#: The largest recipe file gankit reads (recipes are a few KB; this refuses a wrong or hostile file at once).
MAX_RECIPE_BYTES = 1 << 20
#: How deeply a recipe's tables and arrays may nest (gankit's recipes nest three levels).
MAX_RECIPE_DEPTH = 32
#: The most characters of a dotted path or message an error quotes.
_MAX_QUOTE = 1000


def _cut(text: str, limit: int = _MAX_QUOTE) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def nesting_depth(value: Any, limit: int = MAX_RECIPE_DEPTH) -> int:
    """How deeply tables and arrays nest in ``value`` (counted without recursion; stops past ``limit``)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            deepest = max(deepest, level)
            if level > limit:
                return level
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, level + 1) for child in children)
    return deepest

# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class RecipeIssue:
    """One problem in a recipe."""

    path: str
    message: str
    line: int | None = None
    source: str | None = None

    def format(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        if self.source:
            where = f"{_cut(self.source, 200)}: "
        path = f"{_cut(self.path, 200)}: " if self.path else ""
        return f"{where}{path}{_cut(self.message)}"


class RecipeError(GankitError):
    """A recipe with one or more problems; ``issues`` lists each with its place and fix."""

    def __init__(self, file: str, issues: Sequence[RecipeIssue]) -> None:
        self.file = file
        self.issues = list(issues)
        super().__init__(self._format())

    def _format(self) -> str:
        count = len(self.issues)
        head = f"{_cut(self.file, 200)}: {count} problem{'s' if count != 1 else ''}"
        lines = [head]
        for issue in self.issues:
            if issue.source:
                lines.append(f"  {issue.format()}")
            elif issue.line:
                lines.append(f"  {self.file}:{issue.format()}")
            else:
                lines.append(f"  {self.file}: {issue.format()}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- recipe


@dataclass(frozen=True)
class PartSpec:
    """A validated reference to a part: which part, which version, which parameters."""

    part: Part
    params: BaseModel

    @property
    def name(self) -> str:
        return self.part.name

    def build(self, **context: Any) -> Any:
        """Build the part with these parameters."""
        return self.part.factory(self.params, **context)

    def to_table(self) -> dict[str, Any]:
        """The TOML table for this part, version pinned, every parameter spelled out."""
        table: dict[str, Any] = {"type": self.part.ref}
        table.update(self.params.model_dump(mode="json", exclude_none=True))
        return table


@dataclass
class Recipe:
    """A validated recipe: parts, settings and where it came from.

    ``recipe["generator"]`` is a :class:`PartSpec`; list slots give lists and map
    slots give dicts of them; settings slots give their model instance
    (``recipe.run.seed``).
    """

    task: str
    slots: dict[str, Any]
    source: str = "<recipe>"
    name: str = "recipe"
    raw: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, slot: str) -> Any:
        return self.slots[slot]

    def get(self, slot: str, default: Any = None) -> Any:
        return self.slots.get(slot, default)

    @property
    def run(self) -> Any:
        """The ``[run]`` settings."""
        return self.slots["run"]

    def with_run(self, **changes: Any) -> Recipe:
        """A copy of this recipe with some ``[run]`` settings changed (validated like the recipe's own)."""
        run = self.slots["run"]
        try:
            new_run = type(run).model_validate({**run.model_dump(), **changes})
        except ValidationError as error:
            problems = "; ".join(f"run.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
            raise GankitError(f"{self.source}: {problems}") from None
        return replace(self, slots={**self.slots, "run": new_run})

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain data: every default spelled out, part versions pinned."""
        out: dict[str, Any] = {"task": self.task}
        for name, value in self.slots.items():
            out[name] = _to_data(value)
        return out

    def to_toml(self) -> str:
        """The resolved recipe as TOML text (see :meth:`to_dict`)."""
        import tomli_w

        return tomli_w.dumps(_drop_none(self.to_dict()))

    def part_versions(self) -> dict[str, str]:
        """``{"generator": "dcgan@v2 (gankit 0.1.0)", ...}`` for every part in the recipe."""
        out: dict[str, str] = {}
        for slot, value in self.slots.items():
            for key, spec in _iter_specs(slot, value):
                out[key] = f"{spec.part.ref} ({spec.part.provider})"
        return out


def _iter_specs(slot: str, value: Any) -> Iterable[tuple[str, PartSpec]]:
    if isinstance(value, PartSpec):
        yield slot, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _iter_specs(f"{slot}.{i}", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _iter_specs(f"{slot}.{key}", item)


def _to_data(value: Any) -> Any:
    if isinstance(value, PartSpec):
        return value.to_table()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_to_data(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_data(v) for k, v in value.items()}
    return value


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


# --------------------------------------------------------------------------- TOML lines


def _split_dotted(key: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)', key)
    return tuple(a or b or c for a, b, c in parts)


_KEY = r"""(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')"""
_ASSIGNMENT = re.compile(rf"^({_KEY}(?:\s*\.\s*{_KEY})*)\s*=")


def locate_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Map dotted key paths of a TOML document to the line that defines them (best effort)."""
    positions: dict[tuple[Any, ...], int] = {}
    arrays: dict[tuple[Any, ...], int] = {}
    current: tuple[Any, ...] = ()
    key: tuple[Any, ...]
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        array = re.match(r"^\[\[\s*([^\]]+?)\s*\]\]", stripped)
        table = re.match(r"^\[\s*([^\]]+?)\s*\]", stripped)
        if array:
            key = _split_dotted(array.group(1))
            index = arrays.get(key, -1) + 1
            arrays[key] = index
            current = (*key, index)
            positions.setdefault(key, lineno)
            positions[current] = lineno
            continue
        if table:
            key = _split_dotted(table.group(1))
            for array_key, index in arrays.items():
                if key[: len(array_key)] == array_key and len(key) > len(array_key):
                    key = (*array_key, index, *key[len(array_key) :])
                    break
            current = key
            for i in range(1, len(key) + 1):
                positions.setdefault(key[:i], lineno)
            continue
        assignment = _ASSIGNMENT.match(stripped)
        if assignment:
            key = (*current, *_split_dotted(assignment.group(1)))
            positions[key] = lineno
    return positions


# --------------------------------------------------------------------------- overrides


@dataclass(frozen=True)
class Override:
    """One ``--set`` as given: its text and the raw value text (for fields that want a string)."""

    text: str
    raw: str


#: The longest ``--set`` text accepted.
MAX_OVERRIDE_CHARS = 100_000


def parse_override(text: str) -> tuple[tuple[str, ...], Any]:
    """``"generator.width=32"`` → ``(("generator", "width"), 32)``; values are TOML, else strings.

    A field that wants a string gets the raw text back during validation, so
    ``--set data.path=2024`` means the folder ``"2024"``.
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise GankitError(f"--set {shown(text)}: write it as slot.key=value, e.g. --set generator.width=32")
    if len(text) > MAX_OVERRIDE_CHARS:
        raise GankitError(f"--set {shown(text)}: {len(text)} characters; a --set holds at most {MAX_OVERRIDE_CHARS}")
    path = _split_dotted(key)
    value = value.strip()
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except RecursionError:
        raise GankitError(f"--set {shown(text)}: the value nests too deeply") from None
    except ValueError:  # not TOML (TOMLDecodeError), or an integer too long: the text itself
        parsed = value
    if nesting_depth(parsed) > MAX_RECIPE_DEPTH:
        raise GankitError(f"--set {shown(text)}: the value nests deeper than {MAX_RECIPE_DEPTH} levels")
    return path, parsed


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[tuple[str, ...], Override]:
    """Apply ``--set`` overrides to a raw recipe in place; returns each path with its ``--set``."""
    applied: dict[tuple[str, ...], Override] = {}
    for text in overrides:
        path, value = parse_override(text)
        node: Any = raw
        for i, key in enumerate(path[:-1]):
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise GankitError(
                        f"--set {text}: {'.'.join(path[: i + 1])} is not an item of a list of {len(node)}"
                    )
                node = node[int(key)]
                continue
            if not isinstance(node, dict):
                raise GankitError(f"--set {text}: {'.'.join(path[:i])} is not a table")
            if key not in node and path[i + 1].isdigit():
                where = ".".join(path[: i + 1])
                raise GankitError(
                    f"--set {text}: {where} has no item {path[i + 1]} (the recipe has no [[{where}]] table)"
                )
            node = node.setdefault(key, {})
        last = path[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise GankitError(f"--set {text}: {'.'.join(path)} is not an item of a list of {len(node)}")
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise GankitError(f"--set {text}: {'.'.join(path[:-1])} is not a table")
        applied[path] = Override(f"--set {text}", text.partition("=")[2].strip())
    return applied


# --------------------------------------------------------------------------- validation


class _Collector:
    """Collects issues with their lines and ``--set`` sources."""

    def __init__(self, lines: dict[tuple[Any, ...], int], overrides: dict[tuple[str, ...], Override]) -> None:
        self.lines = lines
        self.overrides = overrides
        self.issues: list[RecipeIssue] = []
        self.notes: list[str] = []
        self.upgrade_versions = False

    def raw_string(self, path: Sequence[Any]) -> str | None:
        """The raw ``--set`` text of the value at ``path``, when an override set it."""
        override = self.overrides.get(tuple(str(p) for p in path))
        return override.raw if override else None

    def add(self, path: Sequence[Any], message: str) -> None:
        path = tuple(path)
        key_path = tuple(str(p) for p in path)
        line = None
        for n in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:n]))
            if line is not None:
                break
        source = None
        for key, override in self.overrides.items():
            if key_path[: len(key)] == key or (line is None and key[: len(key_path)] == key_path):
                source = override.text
        dotted = ".".join(str(p) for p in path)
        self.issues.append(RecipeIssue(dotted, message, line, source))


def _describe_input(value: Any) -> str:
    return shown(value)


def _pydantic_issues(
    collector: _Collector, base: Sequence[Any], error: ValidationError, model: type[BaseModel]
) -> None:
    for item in error.errors():
        loc = tuple(item["loc"])
        kind = item["type"]
        if kind == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            fields = sorted(owner.model_fields) if owner else []
            key = str(loc[-1])
            hint = did_you_mean(key, fields)
            known = f" Known keys: {', '.join(fields)}." if fields else " This table takes no keys."
            collector.add((*base, *loc), f"unknown key {shown(key)}.{hint}{known}")
        elif kind == "missing":
            collector.add((*base, *loc), "required key is missing: add it")
        else:
            message = item["msg"]
            collector.add((*base, *loc), f"{message} (got {_describe_input(item.get('input'))})")


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    current: Any = model
    for key in loc:
        if isinstance(key, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or key not in fields:
            return None
        annotation = fields[key].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _with_raw_strings(
    collector: _Collector, path: tuple[Any, ...], value: dict[str, Any], error: ValidationError
) -> dict[str, Any] | None:
    """``value`` with ``--set`` values put back as their raw text where a field wanted a string."""
    changed = False
    fixed = dict(value)
    for item in error.errors():
        loc = item["loc"]
        if item["type"] != "string_type" or len(loc) != 1:
            continue
        raw = collector.raw_string((*path, loc[0]))
        if raw is not None:
            fixed[str(loc[0])] = raw
            changed = True
    return fixed if changed else None


def _validate_with(
    collector: _Collector, path: tuple[Any, ...], model: type[BaseModel], value: dict[str, Any]
) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        retry = _with_raw_strings(collector, path, value, error)
        if retry is not None:
            try:
                return model.model_validate(retry)
            except ValidationError as second:
                error = second
        _pydantic_issues(collector, path, error, model)
        return None


def _validate_model(collector: _Collector, path: tuple[Any, ...], model: type[BaseModel], value: Any) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        collector.add(path, f"must be a table, got {_describe_input(value)}")
        return None
    return _validate_with(collector, path, model, value)


def _validate_part(
    collector: _Collector,
    registry: Registry,
    path: tuple[Any, ...],
    kind: str,
    role: str | None,
    value: Any,
    default: str | None,
) -> PartSpec | None:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        collector.add(path, f"must be a table with a 'type' key naming a {kind}, got {_describe_input(value)}")
        return None
    params = dict(value)
    ref = params.pop("type", default)
    if ref is None:
        names = registry.names(kind, role=role)
        collector.add(path, f"missing key 'type': name the {kind} to use, one of: {', '.join(names)}")
        return None
    if not isinstance(ref, str):
        collector.add((*path, "type"), f"must be a string naming a {kind}, got {_describe_input(ref)}")
        return None
    try:
        name, version = parse_ref(ref)
        part = registry.get(kind, ref, role=role)
    except PartNotFoundError as error:
        if not (collector.upgrade_versions and version is not None and name in registry.names(kind, role=role)):
            collector.add((*path, "type"), str(error))
            return None
        part = registry.get(kind, name, role=role)
        where = ".".join(str(p) for p in path)
        collector.notes.append(f"{where}: {kind} {name!r} v{version} is not installed; using {part.ref}")
    validated = _validate_with(collector, path, part.params, params)
    return None if validated is None else PartSpec(part, validated)


def _validate_slot(
    collector: _Collector, registry: Registry, name: str, slot: Slot, value: Any
) -> Any:
    path: tuple[Any, ...] = (name,)
    if isinstance(slot, ModelSlot):
        return _validate_model(collector, path, slot.model, value)
    if isinstance(slot, PartSlot):
        return _validate_part(collector, registry, path, slot.kind, slot.role, value, slot.default)
    if isinstance(slot, PartListSlot):
        if value is None:
            return []
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            collector.add(path, f"must be an array of tables ([[{name}]]), got {_describe_input(value)}")
            return None
        return [
            _validate_part(collector, registry, (name, i), slot.kind, slot.role, item, None)
            for i, item in enumerate(value)
        ]
    # map slots
    value = {} if value is None else value
    if not isinstance(value, dict):
        collector.add(path, f"must be a table with sub-tables {', '.join(slot.keys)}")
        return None
    out: dict[str, Any] = {}
    for key in value:
        if key not in slot.keys:
            hint = did_you_mean(key, slot.keys)
            collector.add((name, key), f"unknown key {shown(key)}.{hint} Known keys: {', '.join(slot.keys)}.")
    for key in slot.keys:
        sub = value.get(key)
        if isinstance(slot, PartMapSlot):
            if slot.upgrade is not None and isinstance(sub, dict):
                sub = slot.upgrade(sub)
            out[key] = _validate_part(collector, registry, (name, key), slot.kind, None, sub, slot.default)
        else:
            out[key] = _validate_model(collector, (name, key), slot.model, sub)
    return out


def validate(
    raw: Mapping[str, Any],
    *,
    registry: Registry | None = None,
    source: str = "<recipe>",
    name: str = "recipe",
    text: str | None = None,
    overrides: dict[tuple[str, ...], Override] | None = None,
    upgrade_versions: bool = False,
) -> Recipe:
    """Validate a recipe given as plain data; raise one :class:`RecipeError` listing every problem.

    With ``upgrade_versions`` (used when loading checkpoints), a pinned part
    version that is no longer installed is replaced by the newest one, and
    :attr:`Recipe.notes` says so.
    """
    if registry is None:
        from gankit.plugins import get_registry

        registry = get_registry()
    if nesting_depth(raw) > MAX_RECIPE_DEPTH:
        raise RecipeError(source, [RecipeIssue("", f"tables and arrays nest deeper than {MAX_RECIPE_DEPTH} levels; "
                                                   "no recipe does that: is this the right file?")])
    collector = _Collector(locate_lines(text) if text else {}, overrides or {})
    collector.upgrade_versions = upgrade_versions
    raw = dict(raw)
    tasks = TASKS
    task = raw.pop("task", "gan")
    if not isinstance(task, str) or task not in tasks:
        hint = did_you_mean(str(task), tasks)
        collector.add(("task",), f"unknown task {shown(task)}.{hint} Known tasks: {', '.join(tasks)}.")
        raise RecipeError(source, collector.issues)
    schema = tasks[task]
    for key in raw:
        if key not in schema.slots:
            hint = did_you_mean(key, schema.slots)
            collector.add(
                (key,), f"unknown slot {shown(key)} for a {task} recipe.{hint} Slots: {', '.join(schema.slots)}."
            )
    slots: dict[str, Any] = {}
    for slot_name, slot in schema.slots.items():
        value = raw.get(slot_name)
        if value is None and isinstance(slot, PartSlot) and slot.required and slot.default is None:
            names = registry.names(slot.kind, role=slot.role)
            collector.add(
                (slot_name,),
                f"missing [{slot_name}] table: add one with type = one of {', '.join(names) or '(none registered)'}",
            )
            continue
        if value is None and isinstance(slot, PartSlot) and not slot.required and slot.default is None:
            slots[slot_name] = None
            continue
        slots[slot_name] = _validate_slot(collector, registry, slot_name, slot, value)
    if collector.issues:
        raise RecipeError(source, collector.issues)
    return Recipe(task=task, slots=slots, source=source, name=name, raw=dict(raw, task=task),
                  notes=collector.notes)


def _toml_syntax_error(source: str, error: tomllib.TOMLDecodeError) -> RecipeError:
    message = str(error)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match:
        line, column = int(match.group(1)), int(match.group(2))
        what = message[: match.start()].strip()
        issue = RecipeIssue("", f"TOML syntax error at column {column}: {what}", line)
    else:
        issue = RecipeIssue("", f"TOML syntax error: {message}")
    return RecipeError(source, [issue])


def builtin_recipes_dir() -> Path:
    """The folder of recipes shipped with gankit."""
    return Path(__file__).parent / "recipes"


def builtin_recipes() -> dict[str, Path]:
    """Shipped recipes by name (``"dcgan-digits"`` → its path)."""
    folder = builtin_recipes_dir()
    return {p.stem: p for p in sorted(folder.glob("*.toml"))} if folder.is_dir() else {}


def shipped_recipes() -> dict[str, Path]:
    """Every recipe usable by name: gankit's own, then those installed plugins ship."""
    from gankit.plugins import get_registry

    shipped = builtin_recipes()
    shipped.update({name: recipe.path for name, recipe in get_registry().recipes.items()})
    return shipped


def resolve_recipe_path(ref: str | Path) -> Path:
    """A recipe file, or the name of a recipe shipped with gankit or a plugin (``dcgan-digits``)."""
    path = Path(ref)
    if path.is_file():
        return path
    builtin = builtin_recipes()
    stem = path.name.removesuffix(".toml")
    if stem in builtin and (len(path.parts) == 1 or path.parent.name == "recipes"):
        return builtin[stem]
    if path.is_dir():
        raise GankitError(f"{_cut(str(ref), 200)}: is a folder, not a recipe file")
    shipped = shipped_recipes()
    name = str(ref).removesuffix(".toml")
    if name in shipped:
        return shipped[name]
    if path.exists():
        raise GankitError(f"{_cut(str(ref), 200)}: not a regular file; a recipe is a TOML file")
    hint = did_you_mean(stem, shipped)
    raise GankitError(
        f"{_cut(str(ref), 200)}: no such recipe file.{hint} Shipped recipes: {', '.join(shipped) or '(none)'} "
        "(gankit recipes)."
    )


def load_recipe(
    path: str | Path,
    overrides: Iterable[str] = (),
    *,
    registry: Registry | None = None,
) -> Recipe:
    """Read, override and validate a recipe file (or a shipped recipe by name)."""
    file = resolve_recipe_path(path)
    source = str(path) if Path(path).is_file() else str(file)
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_RECIPE_BYTES + 1)
    except OSError as error:
        raise GankitError(f"{source}: cannot read recipe: {error.strerror or error}") from error
    if len(data) > MAX_RECIPE_BYTES:
        raise GankitError(f"{source}: larger than {MAX_RECIPE_BYTES:,} bytes; recipes are a few KB: is this the "
                          "right file?")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise GankitError(f"{source}: cannot read recipe: not UTF-8 text (byte {error.start})") from error
    return loads_recipe(text, overrides, registry=registry, source=source, name=file.stem)


def loads_recipe(
    text: str,
    overrides: Iterable[str] = (),
    *,
    registry: Registry | None = None,
    source: str = "<recipe>",
    name: str = "recipe",
    upgrade_versions: bool = False,
) -> Recipe:
    """Parse, override and validate recipe text (see :func:`validate`)."""
    if len(text) > MAX_RECIPE_BYTES:
        raise RecipeError(source, [RecipeIssue("", f"{len(text):,} characters; a recipe holds at most "
                                                   f"{MAX_RECIPE_BYTES:,}: is this the right file?")])
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _toml_syntax_error(source, error) from None
    except RecursionError:
        raise RecipeError(source, [RecipeIssue("", f"tables and arrays nest too deeply (at most "
                                                   f"{MAX_RECIPE_DEPTH} levels)")]) from None
    except ValueError as error:  # an integer too long for Python to read
        raise RecipeError(source, [RecipeIssue("", f"unreadable value: {_cut(str(error), 200)}")]) from None
    applied = apply_overrides(raw, overrides)
    return validate(raw, registry=registry, source=source, name=name, text=text, overrides=applied,
                    upgrade_versions=upgrade_versions)


def recipe_from_dict(
    data: Mapping[str, Any], overrides: Iterable[str] = (), *, registry: Registry | None = None, name: str = "recipe"
) -> Recipe:
    """Validate a recipe given as a Python dict (same layout as the TOML)."""
    import copy

    if nesting_depth(data) > MAX_RECIPE_DEPTH:
        raise RecipeError(f"<{name}>", [RecipeIssue("", f"tables and arrays nest deeper than {MAX_RECIPE_DEPTH} "
                                                        "levels")])
    raw = copy.deepcopy(dict(data))
    applied = apply_overrides(raw, overrides)
    return validate(raw, registry=registry, source=f"<{name}>", name=name, overrides=applied)
