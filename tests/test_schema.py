"""The JSON Schema of recipes: a valid draft 2020-12 schema that accepts the shipped recipes and rejects mistakes."""

from __future__ import annotations

import copy
import json
import tomllib

import jsonschema
import pytest

from gankit.recipe import builtin_recipes
from gankit.registry import Params, Provider, Registry
from gankit.schema import recipe_json_schema

RECIPE = {
    "run": {"seed": 3, "steps": 10},
    "data": {"type": "ring"},
    "generator": {"type": "mlp", "width": 16},
    "discriminator": {"type": "mlp@v1"},
    "loss": {"type": "hinge"},
    "schedule": {"generator": {"type": "cosine", "min_factor": 0.1}},
    "optim": {"generator": {"lr": 0.001, "betas": [0.5, 0.9]}},
    "tricks": [{"type": "ema", "decay": 0.9}],
    "regularizers": [{"type": "r1", "weight": 1.0}],
}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    """A validator of the schema of the built-in parts (built once: it takes a while)."""
    from gankit.plugins import build_registry

    registry, _ = build_registry(third_party=False)
    return jsonschema.Draft202012Validator(recipe_json_schema(registry))


def test_schema_is_draft_2020_12_json(builtin_registry: Registry) -> None:
    schema = recipe_json_schema(builtin_registry)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads(json.dumps(schema)) == schema
    jsonschema.Draft202012Validator.check_schema(schema)
    titles = [task["title"] for task in schema["oneOf"]]
    assert "gankit gan recipe" in titles


def test_schema_describes_parts_and_their_parameters(builtin_registry: Registry) -> None:
    schema = recipe_json_schema(builtin_registry)
    gan = next(task for task in schema["oneOf"] if task["title"] == "gankit gan recipe")
    generators = {option["title"]: option for option in gan["properties"]["generator"]["anyOf"]}
    mlp = generators["generator mlp@v1"]
    assert mlp["properties"]["type"]["enum"] == ["mlp", "mlp@v1"]
    assert mlp["properties"]["width"]["type"] == "integer"
    assert mlp["properties"]["width"]["default"] == 128
    assert mlp["properties"]["width"]["description"]
    assert mlp["additionalProperties"] is False
    assert mlp["required"] == ["type"]
    # only adversarial losses in [loss], only regularizers in [[regularizers]]
    losses = {o["properties"]["type"]["enum"][0] for o in gan["properties"]["loss"]["anyOf"]}
    assert "hinge" in losses
    assert "r1" not in losses
    regularizers = {o["properties"]["type"]["enum"][0] for o in gan["properties"]["regularizers"]["items"]["anyOf"]}
    assert "r1" in regularizers
    assert "hinge" not in regularizers
    assert set(gan["required"]) == {"data", "generator", "discriminator"}


@pytest.mark.parametrize("name", sorted(builtin_recipes()))
def test_schema_validates_the_shipped_recipes(name: str, validator: jsonschema.Draft202012Validator) -> None:
    data = tomllib.loads(builtin_recipes()[name].read_text(encoding="utf-8"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert errors == []


def test_schema_accepts_a_full_recipe(validator: jsonschema.Draft202012Validator) -> None:
    assert list(validator.iter_errors(RECIPE)) == []


def _set(data: dict, path: str, value) -> dict:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("generatr", {"type": "mlp"}),  # unknown slot
        ("generator.type", "mpl"),  # unknown part
        ("generator.widht", 3),  # unknown key
        ("run.seed", "x"),  # wrong type
        ("run.steps", 0),  # out of range
        ("tricks.0.decay", 1.5),  # out of range in a part
        ("loss.type", "r1"),  # a regularizer is no adversarial loss
        ("schedule.gen", {"type": "cosine"}),  # unknown sub-table
        ("optim.generator.lrr", 1),  # unknown settings key
        ("data", "ring"),  # a value for a table
        ("task", "gann"),  # unknown task
    ],
)
def test_schema_rejects_mistakes(path: str, value, validator: jsonschema.Draft202012Validator) -> None:
    assert validator.is_valid(RECIPE)
    assert not validator.is_valid(_set(RECIPE, path, value))


def test_schema_requires_the_part_slots(validator: jsonschema.Draft202012Validator) -> None:
    data = copy.deepcopy(RECIPE)
    del data["generator"]
    assert not validator.is_valid(data)
    del data["loss"]  # has a default
    data["generator"] = {"type": "dcgan"}
    assert validator.is_valid(data)


def test_schema_includes_plugin_parts(builtin_registry: Registry) -> None:
    class HalfParams(Params):
        factor: float = 0.5

    provider = Provider("gankit-myplug", "1.0", "myplug")
    builtin_registry.add("schedule", "myplug.half", lambda p, **c: None, HalfParams, provider=provider, summary="Half.")
    builtin_registry.add("schedule", "myplug.half", lambda p, **c: None, HalfParams, provider=provider, version=2)
    validator = jsonschema.Draft202012Validator(recipe_json_schema(builtin_registry))
    for ref in ("myplug.half", "myplug.half@v1", "myplug.half@v2"):
        assert validator.is_valid(_set(RECIPE, "schedule.generator", {"type": ref, "factor": 0.25}))
    assert not validator.is_valid(_set(RECIPE, "schedule.generator", {"type": "myplug.half@v3"}))
    assert not validator.is_valid(_set(RECIPE, "schedule.generator", {"type": "myplug.half", "factr": 0.25}))
