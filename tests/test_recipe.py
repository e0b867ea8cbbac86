"""Recipes: validation into one error listing every problem, TOML syntax errors, overrides, versions."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gankit import GankitError, RecipeError
from gankit.recipe import (
    PartSpec,
    Recipe,
    builtin_recipes,
    load_recipe,
    loads_recipe,
    parse_override,
    recipe_from_dict,
)
from gankit.registry import Params, Provider, Registry

BASE = """\
[run]
seed = 1
steps = 10
batch_size = 8

[data]
type = "ring"

[generator]
type = "mlp"
latent_dim = 2
width = 16

[discriminator]
type = "mlp"
width = 16

[[tricks]]
type = "ema"
decay = 0.9
"""


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """The 1-based number of the ``nth`` line of ``text`` that contains ``needle``."""
    found = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return found[nth - 1]


def problems(text: str, registry: Registry, overrides=(), source: str = "bad.toml") -> RecipeError:
    with pytest.raises(RecipeError) as info:
        loads_recipe(text, overrides, registry=registry, source=source)
    return info.value


# --------------------------------------------------------------------------- valid recipes


def test_valid_recipe_with_defaults_filled_in(builtin_registry: Registry) -> None:
    recipe = loads_recipe(BASE, registry=builtin_registry, source="ok.toml", name="ok")
    assert isinstance(recipe, Recipe)
    assert (recipe.task, recipe.source, recipe.name) == ("gan", "ok.toml", "ok")
    assert (recipe.run.seed, recipe.run.steps, recipe.run.batch_size, recipe.run.device) == (1, 10, 8, "auto")
    generator = recipe["generator"]
    assert isinstance(generator, PartSpec)
    assert (generator.name, generator.params.width, generator.params.latent_dim) == ("mlp", 16, 2)
    assert generator.part.kind == "generator"
    assert recipe["discriminator"].part.kind == "discriminator"
    # slots left out take their defaults
    assert recipe["loss"].name == "non-saturating"
    assert recipe["balance"].name == "always"
    assert {k: v.name for k, v in recipe["schedule"].items()} == {"generator": "constant", "discriminator": "constant"}
    assert recipe["schedule"]["generator"].build(total_steps=10)(5) == 1.0
    assert recipe["optim"]["generator"].params.lr == pytest.approx(2e-4)
    assert recipe["regularizers"] == []
    assert recipe.get("metrics") == []
    assert [t.params.decay for t in recipe["tricks"]] == [0.9]
    assert recipe.get("nope", "default") == "default"


def test_part_versions_and_resolved_recipe_round_trip(builtin_registry: Registry) -> None:
    recipe = loads_recipe(BASE, registry=builtin_registry)
    versions = recipe.part_versions()
    assert versions["generator"].startswith("mlp@v")
    assert versions["generator"].endswith("(gankit 0.1.0)")
    assert "tricks.0" in versions
    data = recipe.to_dict()
    assert data["task"] == "gan"
    assert data["generator"]["type"] == recipe["generator"].part.ref
    assert data["generator"]["activation"] == "relu"  # every default spelled out
    assert data["run"]["seed"] == 1
    again = loads_recipe(recipe.to_toml(), registry=builtin_registry)
    assert again.to_dict() == data
    assert tomllib.loads(recipe.to_toml())["tricks"][0]["decay"] == 0.9


def test_recipe_from_dict_does_not_touch_its_input(builtin_registry: Registry) -> None:
    data = tomllib.loads(BASE)
    recipe = recipe_from_dict(data, ["generator.width=32"], registry=builtin_registry, name="mine")
    assert recipe["generator"].params.width == 32
    assert data["generator"]["width"] == 16
    assert recipe.source == "<mine>"
    with pytest.raises(RecipeError) as info:
        recipe_from_dict({**data, "generator": {"type": "mpl"}}, registry=builtin_registry, name="mine")
    assert str(info.value).startswith("<mine>: 1 problem")
    assert "generator.type: unknown generator 'mpl'. Did you mean 'mlp'" in str(info.value)


def test_inline_tables_and_dotted_keys(builtin_registry: Registry) -> None:
    text = BASE.replace('[generator]\ntype = "mlp"\nlatent_dim = 2\nwidth = 16\n', "")
    text = 'generator = { type = "mlp", width = 12 }\noptim.generator.lr = 0.001\n' + text
    recipe = loads_recipe(text, registry=builtin_registry)
    assert recipe["generator"].params.width == 12
    assert recipe["optim"]["generator"].params.lr == 0.001


@pytest.mark.parametrize("name", sorted(builtin_recipes()))
def test_shipped_recipes_are_valid(name: str, builtin_registry: Registry) -> None:
    by_name = load_recipe(name, registry=builtin_registry)
    assert by_name.name == name
    by_path = load_recipe(builtin_recipes()[name], registry=builtin_registry)
    assert by_path.to_dict() == by_name.to_dict()


def test_the_documented_shipped_recipes_exist() -> None:
    assert {"dcgan-digits", "ring-gan", "grid-gan", "folder-dcgan"} <= set(builtin_recipes())


# --------------------------------------------------------------------------- every kind of mistake

# mistake: ((old, new[, old, new]) changes to BASE, dotted path, a needle on the line to blame,
#           what the message says)
MISTAKES = {
    "unknown slot": (
        ("[[tricks]]", "[generatr]\nwidth = 3\n\n[[tricks]]"),
        "generatr",
        "[generatr]",
        ["unknown slot 'generatr' for a gan recipe.", "Did you mean 'generator'", "Slots: run, data, generator"],
    ),
    "unknown part": (
        ('type = "mlp"\nlatent_dim', 'type = "mpl"\nlatent_dim'),
        "generator.type",
        '"mpl"',
        ["unknown generator 'mpl'.", "Did you mean 'mlp'", "Available: ", "dcgan"],
    ),
    "unknown part in a list": (
        ('type = "ema"', 'type = "emma"'),
        "tricks.0.type",
        '"emma"',
        ["unknown trick 'emma'.", "Did you mean 'ema'", "Available: "],
    ),
    "part of the wrong role": (
        ("[[tricks]]", '[loss]\ntype = "r1"\n\n[[tricks]]'),
        "loss.type",
        '"r1"',
        ["unknown adversarial loss 'r1'.", "Available: ", "non-saturating"],
    ),
    "unknown key": (
        ("width = 16\n\n[disc", "widht = 16\n\n[disc"),
        "generator.widht",
        "widht",
        ["unknown key 'widht'.", "Did you mean 'width'?", "Known keys: ", "latent_dim", "width"],
    ),
    "unknown settings key": (
        ("seed = 1", "sead = 1"),
        "run.sead",
        "sead",
        ["unknown key 'sead'.", "Did you mean 'seed'", "Known keys: ", "batch_size"],
    ),
    "unknown part in a sub-table": (
        ("[[tricks]]", '[schedule.discriminator]\ntype = "cosin"\n\n[[tricks]]'),
        "schedule.discriminator.type",
        '"cosin"',
        ["unknown schedule 'cosin'.", "Did you mean 'cosine'", "Available: ", "constant"],
    ),
    "a value for a list": (
        ("[run]", "tricks = 3\n\n[run]", '[[tricks]]\ntype = "ema"\ndecay = 0.9\n', ""),
        "tricks",
        "tricks = 3",
        ["must be an array of tables ([[tricks]]), got 3"],
    ),
    "unknown sub-table": (
        ("[[tricks]]", '[schedule.gen]\ntype = "cosine"\n\n[[tricks]]'),
        "schedule.gen",
        "[schedule.gen]",
        ["unknown key 'gen'.", "Did you mean 'generator'?", "Known keys: generator, discriminator."],
    ),
    "wrong type": (
        ("batch_size = 8", 'batch_size = "big"'),
        "run.batch_size",
        "batch_size",
        ["Input should be a valid integer", "(got 'big')"],
    ),
    "wrong type in a part": (
        ("latent_dim = 2", "latent_dim = [2]"),
        "generator.latent_dim",
        "latent_dim",
        ["Input should be a valid integer", "(got [2])"],
    ),
    "a value for a table": (
        ("[run]", 'data = "ring"\n\n[run]', '[data]\ntype = "ring"\n', ""),
        "data",
        'data = "ring"',
        ["must be a table with a 'type' key naming a data, got 'ring'"],
    ),
    "type not a string": (
        ('type = "ring"', "type = 3"),
        "data.type",
        "type = 3",
        ["must be a string naming a data, got 3"],
    ),
    "not one of the choices": (
        ("width = 16\n\n[disc", 'activation = "sigmoid"\n\n[disc'),
        "generator.activation",
        "sigmoid",
        ["Input should be 'relu' or 'leaky-relu'", "(got 'sigmoid')"],
    ),
    "value out of range": (
        ("steps = 10", "steps = 0"),
        "run.steps",
        "steps = 0",
        ["Input should be greater than 0", "(got 0)"],
    ),
    "value out of range in a part": (
        ("decay = 0.9", "decay = 1.5"),
        "tricks.0.decay",
        "decay = 1.5",
        ["Input should be less than 1", "(got 1.5)"],
    ),
    "custom validation": (
        ("[[tricks]]", "[optim.generator]\nbetas = [0.5, 1.5]\n\n[[tricks]]"),
        "optim.generator.betas",
        "betas",
        ["betas must be two numbers in [0, 1)", "(got [0.5, 1.5])"],
    ),
    "bad device": (
        ("seed = 1", 'seed = 1\ndevice = "gpu"'),
        "run.device",
        "device",
        ["device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'", "(got 'gpu')"],
    ),
    "missing type": (
        ('[discriminator]\ntype = "mlp"\n', "[discriminator]\n"),
        "discriminator",
        "[discriminator]",
        ["missing key 'type': name the discriminator to use, one of: ", "mlp"],
    ),
    "unknown version": (
        ('type = "ring"', 'type = "ring@v9"'),
        "data.type",
        "ring@v9",
        ["data 'ring' has no version v9; available: v1"],
    ),
    "bad version": (
        ('type = "ring"', 'type = "ring@latest"'),
        "data.type",
        "ring@latest",
        ["bad version in 'ring@latest': write it as 'name@v2'"],
    ),
    "unknown task": (
        ("[run]", 'task = "gann"\n\n[run]'),
        "task",
        "gann",
        ["unknown task 'gann'.", "Did you mean 'gan'?", "Known tasks: gan"],
    ),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_mistake_is_reported_with_file_line_path_and_fix(mistake: str, builtin_registry: Registry) -> None:
    changes, path, needle, fragments = MISTAKES[mistake]
    text = BASE
    for old, new in zip(changes[::2], changes[1::2]):
        assert old in text
        text = text.replace(old, new, 1)
    error = problems(text, builtin_registry)
    assert len(error.issues) == 1, str(error)
    issue = error.issues[0]
    line = line_of(text, needle)
    assert (issue.path, issue.line) == (path, line)
    for fragment in fragments:
        assert fragment in issue.message
    message = str(error)
    assert message.splitlines()[0] == "bad.toml: 1 problem"
    assert f"bad.toml:line {line}: {path}: " in message.splitlines()[1]
    assert isinstance(error, GankitError)
    assert error.file == "bad.toml"


def test_missing_slot_names_the_choices(builtin_registry: Registry) -> None:
    text = BASE.replace('[data]\ntype = "ring"\n', "")
    error = problems(text, builtin_registry)
    [issue] = error.issues
    assert issue.path == "data"
    assert issue.line is None
    assert issue.message.startswith("missing [data] table: add one with type = one of ")
    assert "ring" in issue.message
    assert "digits" in issue.message
    assert "data: missing [data] table" in str(error)


def test_every_problem_in_one_error(builtin_registry: Registry) -> None:
    text = (
        BASE.replace("steps = 10", "steps = -5")
        .replace("batch_size = 8", 'batch_size = "big"')
        .replace('type = "ring"', 'type = "rung"')
        .replace("width = 16\n\n[disc", "widht = 16\n\n[disc")
        .replace('type = "ema"', 'type = "emma"')
        + '\n[los]\ntype = "hinge"\n'
    )
    error = problems(text, builtin_registry, source="recipes/broken.toml")
    message = str(error)
    lines = message.splitlines()
    assert lines[0] == "recipes/broken.toml: 6 problems"
    expected = {
        "los": (line_of(text, "[los]"), "unknown slot 'los' for a gan recipe. Did you mean 'loss'"),
        "run.steps": (line_of(text, "steps = -5"), "greater than 0 (got -5)"),
        "run.batch_size": (line_of(text, "batch_size"), "valid integer"),
        "data.type": (line_of(text, "rung"), "unknown data 'rung'. Did you mean 'ring'"),
        "generator.widht": (line_of(text, "widht"), "unknown key 'widht'. Did you mean 'width'?"),
        "tricks.0.type": (line_of(text, "emma"), "unknown trick 'emma'. Did you mean 'ema'"),
    }
    assert {i.path for i in error.issues} == set(expected)
    for issue in error.issues:
        line, fragment = expected[issue.path]
        assert issue.line == line
        assert fragment in issue.message
        [shown] = [text for text in lines[1:] if f": {issue.path}: " in text]
        assert shown.startswith(f"  recipes/broken.toml:line {line}: {issue.path}: ")
        assert fragment in shown
    assert len(lines) == 7


def test_lines_of_repeated_array_tables(builtin_registry: Registry) -> None:
    text = BASE + '\n[[tricks]]\ntype = "ema"\ndecay = 2.0\n'
    error = problems(text, builtin_registry)
    [issue] = error.issues
    assert issue.path == "tricks.1.decay"
    assert issue.line == line_of(text, "decay = 2.0")


def test_a_file_names_itself_in_the_error(tmp_path: Path, builtin_registry: Registry) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(BASE.replace("width = 16\n\n[disc", "widht = 16\n\n[disc"), encoding="utf-8")
    with pytest.raises(RecipeError) as info:
        load_recipe(path, registry=builtin_registry)
    assert info.value.file == str(path)
    assert f"{path}:line 12: generator.widht: unknown key 'widht'" in str(info.value)


def test_missing_recipe_file_suggests_a_shipped_one() -> None:
    with pytest.raises(GankitError) as info:
        load_recipe("ring-gn")
    message = str(info.value)
    assert message.startswith("ring-gn: no such recipe file.")
    assert "Did you mean 'ring-gan'" in message
    assert "Shipped recipes: " in message
    assert "dcgan-digits" in message


def test_a_folder_is_not_a_recipe(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match="is a folder, not a recipe file"):
        load_recipe(tmp_path)


# --------------------------------------------------------------------------- TOML syntax


@pytest.mark.parametrize(
    ("text", "line", "column", "what"),
    [
        ("[run]\nseed = \n", 2, 8, "Invalid value"),
        ('[run]\nseed = 1\n\n[generator\ntype = "mlp"\n', 4, 11, "Expected ']'"),
        ("[run]\nseed = 1\nseed = 2\n", 3, None, "Cannot overwrite a value"),
        ('[data]\ntype = "ring\n', 2, None, "Illegal character"),
    ],
)
def test_toml_syntax_errors_show_line_and_column(
    text: str, line: int, column: int | None, what: str, builtin_registry: Registry
) -> None:
    error = problems(text, builtin_registry, source="syntax.toml")
    [issue] = error.issues
    assert issue.line == line
    assert issue.message.startswith("TOML syntax error at column ")
    if column is not None:
        assert f"at column {column}: " in issue.message
    assert what in issue.message
    assert str(error).splitlines() == ["syntax.toml: 1 problem", f"  syntax.toml:line {line}: {issue.message}"]


def test_syntax_error_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[generator]\ntype = "mlp"\nwidth = = 3\n', encoding="utf-8")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert f"{path}:line 3: TOML syntax error at column 9" in str(info.value)


# --------------------------------------------------------------------------- overrides


def test_overrides_are_typed(builtin_registry: Registry) -> None:
    recipe = loads_recipe(
        BASE,
        [
            "generator.width=32",
            "run.seed=7",
            "optim.generator.lr=1e-3",
            "optim.discriminator.betas=[0.0, 0.99]",
            "tricks.0.decay=0.5",
            "generator.batch_norm=true",
            "data.type=grid",
            "schedule.generator.type=cosine",
            "schedule.generator.min_factor=0.1",
            "run.device = cpu",
        ],
        registry=builtin_registry,
    )
    assert recipe["generator"].params.width == 32
    assert isinstance(recipe["generator"].params.width, int)
    assert recipe.run.seed == 7
    assert recipe["optim"]["generator"].params.lr == 1e-3
    assert recipe["optim"]["discriminator"].params.betas == (0.0, 0.99)
    assert recipe["tricks"][0].params.decay == 0.5
    assert recipe["generator"].params.batch_norm is True
    assert recipe["data"].name == "grid"
    assert recipe["schedule"]["generator"].name == "cosine"
    assert recipe["schedule"]["generator"].params.min_factor == 0.1
    assert recipe.run.device == "cpu"


def test_override_of_a_string_field_with_digits(builtin_registry: Registry) -> None:
    recipe = loads_recipe(BASE, ["run.out=2024", "run.best_metric=true"], registry=builtin_registry)
    assert recipe.run.out == "2024"
    assert recipe.run.best_metric == "true"


def test_override_creating_an_unknown_slot_names_the_set_option(builtin_registry: Registry) -> None:
    error = problems(BASE, builtin_registry, ["generatr.width=3"], source="o.toml")
    [issue] = error.issues
    assert issue.path == "generatr"
    assert "unknown slot 'generatr'" in issue.message
    assert issue.source == "--set generatr.width=3"
    assert "--set generatr.width=3: generatr: unknown slot" in str(error)


def test_override_of_a_table_in_the_file_blames_the_set_option(builtin_registry: Registry) -> None:
    error = problems(BASE, builtin_registry, ["run=3"], source="o.toml")
    [issue] = error.issues
    assert (issue.path, issue.source) == ("run", "--set run=3")
    assert "--set run=3: run: must be a table, got 3" in str(error)


def test_quoted_override_is_a_string(builtin_registry: Registry) -> None:
    recipe = loads_recipe(BASE, ['run.out="2024"'], registry=builtin_registry)
    assert recipe.run.out == "2024"


def test_parse_override() -> None:
    assert parse_override("generator.width=32") == (("generator", "width"), 32)
    assert parse_override("data.path=photos/") == (("data", "path"), "photos/")
    assert parse_override('a."b.c"=1.5') == (("a", "b.c"), 1.5)
    assert parse_override("run.device=cuda:1") == (("run", "device"), "cuda:1")


def test_override_mistakes_name_the_set_option(builtin_registry: Registry) -> None:
    error = problems(BASE, builtin_registry, ["generator.widht=3", "run.seed=x"], source="o.toml")
    message = str(error)
    assert message.splitlines()[0] == "o.toml: 2 problems"
    by_path = {issue.path: issue for issue in error.issues}
    assert by_path["generator.widht"].source == "--set generator.widht=3"
    assert "unknown key 'widht'. Did you mean 'width'?" in by_path["generator.widht"].message
    assert by_path["run.seed"].source == "--set run.seed=x"
    assert "valid integer" in by_path["run.seed"].message
    assert "--set generator.widht=3: generator.widht: unknown key 'widht'" in message
    assert "--set run.seed=x: run.seed: Input should be a valid integer" in message


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("generator.width", "--set 'generator.width': write it as slot.key=value, e.g. --set generator.width=32"),
        ("=3", "write it as slot.key=value"),
        ("run.seed.x=1", "--set run.seed.x=1: run.seed is not a table"),
        ("tricks.3.decay=0.5", "--set tricks.3.decay=0.5: tricks.3 is not an item of a list of 1"),
        ("tricks.first.decay=0.5", "tricks.first is not an item of a list of 1"),
        ("tricks.5=1", "tricks.5 is not an item of a list of 1"),
    ],
)
def test_impossible_overrides(override: str, fragment: str, builtin_registry: Registry) -> None:
    with pytest.raises(GankitError) as info:
        loads_recipe(BASE, [override], registry=builtin_registry)
    assert fragment in str(info.value)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=-(2**62), max_value=2**62), width=st.integers(min_value=1, max_value=4096))
def test_set_any_seed_and_width(seed: int, width: int) -> None:
    from gankit.plugins import build_registry

    registry = _registry_cache.setdefault("r", build_registry(third_party=False)[0])
    recipe = loads_recipe(BASE, [f"run.seed={seed}", f"generator.width={width}"], registry=registry)
    assert (recipe.run.seed, recipe["generator"].params.width) == (seed, width)


_registry_cache: dict[str, Registry] = {}


# --------------------------------------------------------------------------- part versions


class HalfParams(Params):
    factor: float = 0.5


def _versioned_registry(base: Registry) -> Registry:
    provider = Provider("gankit-myplug", "1.0", "myplug")
    base.add("schedule", "myplug.half", lambda p, **c: ("v1", p), HalfParams, provider=provider, version=1)
    base.add("schedule", "myplug.half", lambda p, **c: ("v2", p), HalfParams, provider=provider, version=2)
    return base


def test_unpinned_part_is_the_newest_version(builtin_registry: Registry) -> None:
    registry = _versioned_registry(builtin_registry)
    text = BASE + '\n[schedule.generator]\ntype = "myplug.half"\nfactor = 0.25\n'
    recipe = loads_recipe(text, registry=registry)
    spec = recipe["schedule"]["generator"]
    assert spec.part.version == 2
    assert spec.build()[0] == "v2"
    assert spec.to_table() == {"type": "myplug.half@v2", "factor": 0.25}
    assert recipe.part_versions()["schedule.generator"] == "myplug.half@v2 (gankit-myplug 1.0)"


def test_pinned_part_version(builtin_registry: Registry) -> None:
    registry = _versioned_registry(builtin_registry)
    text = BASE + '\n[schedule.generator]\ntype = "myplug.half@v1"\n'
    recipe = loads_recipe(text, registry=registry)
    assert recipe["schedule"]["generator"].part.version == 1
    assert recipe["schedule"]["generator"].build()[0] == "v1"
    assert recipe.to_dict()["schedule"]["generator"]["type"] == "myplug.half@v1"
    error = problems(BASE + '\n[schedule.generator]\ntype = "myplug.half@v3"\n', registry)
    assert "schedule 'myplug.half' has no version v3; available: v1, v2" in str(error)


def test_pinned_builtin_version(builtin_registry: Registry) -> None:
    recipe = loads_recipe(BASE.replace('type = "ring"', 'type = "ring@v1"'), registry=builtin_registry)
    assert recipe["data"].part.ref == "ring@v1"


def test_override_of_an_item_the_recipe_does_not_have(builtin_registry: Registry) -> None:
    text = '[data]\ntype = "ring"\n[generator]\ntype = "mlp"\n[discriminator]\ntype = "mlp"\n'
    with pytest.raises(GankitError) as info:
        loads_recipe(text, ["tricks.0.decay=0.5"], registry=builtin_registry)
    assert "--set tricks.0.decay=0.5: tricks has no item 0 (the recipe has no [[tricks]] table)" in str(info.value)
