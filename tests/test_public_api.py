"""The public API: ``gankit.__all__``, frozen here and documented in docs/api.md.

Adding a public name is fine (add it to ``FROZEN`` and to docs/api.md);
removing or renaming one breaks users and fails ``test_no_public_name_disappears``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import gankit

ROOT = Path(__file__).resolve().parents[1]
API_DOC = ROOT / "docs" / "api.md"

#: Every public name at the time of writing. Names may be added to gankit.__all__, never removed.
FROZEN = frozenset(
    {
        "AdversarialLoss",
        "BalancePolicy",
        "DataSource",
        "Decision",
        "Discriminator",
        "GankitError",
        "GankitWarning",
        "Generator",
        "ImageLoss",
        "KINDS",
        "Logger",
        "Loss",
        "Metric",
        "NoParams",
        "Params",
        "Part",
        "PartNotFoundError",
        "PartSpec",
        "Provider",
        "Recipe",
        "Register",
        "RecipeError",
        "RecipeIssue",
        "RegistrationError",
        "Registry",
        "Regularizer",
        "Schedule",
        "StyleResult",
        "TrainResult",
        "Trainer",
        "TrainingContext",
        "TrainingError",
        "Trick",
        "__version__",
        "broken_plugins",
        "get_registry",
        "hookimpl",
        "interpolate",
        "load_generator",
        "load_recipe",
        "loads_recipe",
        "recipe_from_dict",
        "resume",
        "sample",
        "stylize",
        "train",
    }
)


def documented_names() -> list[str]:
    """The names in the first column of docs/api.md's tables (``| `name` | ... |``)."""
    return re.findall(r"^\|\s*`([^`]+)`\s*\|", API_DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)


def test_no_public_name_disappears() -> None:
    missing = sorted(FROZEN - set(gankit.__all__))
    assert not missing, f"public names removed from gankit.__all__: {missing}"


def test_all_has_no_duplicates() -> None:
    assert len(gankit.__all__) == len(set(gankit.__all__))


def test_every_public_name_resolves() -> None:
    for name in gankit.__all__:
        assert getattr(gankit, name) is not None, name
    assert set(gankit.__all__) <= set(dir(gankit))


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from gankit import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(gankit.__all__)


def test_every_public_name_is_documented_once_and_nothing_else_is() -> None:
    names = documented_names()
    assert sorted(set(gankit.__all__) - set(names)) == [], "add these to docs/api.md"
    assert sorted(set(names) - set(gankit.__all__)) == [], "docs/api.md documents names that are not public"
    assert len(names) == len(set(names)), "docs/api.md lists a name twice"


def test_unknown_names_raise_attribute_error() -> None:
    try:
        gankit.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("gankit.no_such_name resolved")


def test_public_names_resolve_in_a_fresh_interpreter() -> None:
    """Lazy names must resolve without anything imported first (no hidden import-order dependency)."""
    code = "import gankit\nfor n in gankit.__all__:\n    getattr(gankit, n)\nprint(len(gankit.__all__))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(gankit.__all__)
