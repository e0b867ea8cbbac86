"""A JSON Schema (draft 2020-12) of recipes, with every registered part's parameters, for editors."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from gankit.registry import Part, Registry
from gankit.slots import ModelMapSlot, ModelSlot, PartListSlot, PartMapSlot, PartSlot, Slot, TaskSchema


def _model_schema(model: type[BaseModel], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    safe = re.sub(r"[^A-Za-z0-9_]", "_", prefix)
    schema = model.model_json_schema(ref_template=f"#/$defs/{safe}__{{model}}")
    for name, sub in schema.pop("$defs", {}).items():
        defs[f"{safe}__{name}"] = sub
    return schema


def _part_schema(part: Part, defs: dict[str, Any], *, type_required: bool) -> dict[str, Any]:
    schema = _model_schema(part.params, f"{part.kind}_{part.name}_v{part.version}", defs)
    properties = {"type": {"enum": [part.name, part.ref], "description": part.summary}}
    properties.update(schema.get("properties", {}))
    required = list(schema.get("required", []))
    if type_required:
        required.insert(0, "type")
    out: dict[str, Any] = {
        "type": "object",
        "title": f"{part.kind} {part.ref}",
        "description": part.summary,
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    return out


def _parts_schema(registry: Registry, kind: str, role: str | None, default: str | None,
                  defs: dict[str, Any]) -> dict[str, Any]:
    options = []
    for part in registry.parts(kind, all_versions=True):
        if role is not None and part.role != role:
            continue
        options.append(_part_schema(part, defs, type_required=part.name != default))
    if not options:
        return {"type": "object"}
    return {"anyOf": options}


def _slot_schema(registry: Registry, name: str, slot: Slot, defs: dict[str, Any]) -> dict[str, Any]:
    if isinstance(slot, ModelSlot):
        schema = _model_schema(slot.model, name, defs)
    elif isinstance(slot, PartSlot):
        schema = _parts_schema(registry, slot.kind, slot.role, slot.default, defs)
    elif isinstance(slot, PartListSlot):
        schema = {"type": "array", "items": _parts_schema(registry, slot.kind, slot.role, None, defs)}
    elif isinstance(slot, PartMapSlot):
        item = _parts_schema(registry, slot.kind, None, slot.default, defs)
        schema = {"type": "object", "properties": dict.fromkeys(slot.keys, item), "additionalProperties": False}
    else:
        assert isinstance(slot, ModelMapSlot)
        item = _model_schema(slot.model, name, defs)
        schema = {"type": "object", "properties": dict.fromkeys(slot.keys, item), "additionalProperties": False}
    if slot.doc:
        schema["description"] = slot.doc
    return schema


def _task_schema(registry: Registry, task: TaskSchema, defs: dict[str, Any], default: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {"task": {"const": task.name, "description": task.doc}}
    required = [] if default else ["task"]
    for name, slot in task.slots.items():
        properties[name] = _slot_schema(registry, f"{task.name}_{name}", slot, defs)
        if isinstance(slot, PartSlot) and slot.required and slot.default is None:
            required.append(name)
    return {
        "type": "object",
        "title": f"gankit {task.name} recipe",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def recipe_json_schema(registry: Registry | None = None) -> dict[str, Any]:
    """The JSON Schema of every kind of recipe, with the parameters of every registered part."""
    from gankit.tasks import TASKS

    if registry is None:
        from gankit.plugins import get_registry

        registry = get_registry()
    defs: dict[str, Any] = {}
    tasks = [_task_schema(registry, task, defs, default=name == "gan") for name, task in TASKS.items()]
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://gankit.dev/schema/recipe.json",
        "title": "gankit recipe",
        "oneOf": tasks,
    }
    if defs:
        schema["$defs"] = defs
    return schema
