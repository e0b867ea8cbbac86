"""``gankit check RECIPE``: validate a recipe; exit 0 when valid, 1 with every problem listed."""

from __future__ import annotations

import argparse

NAME = "check"
HELP = "validate a recipe (exit 0 valid, 1 invalid; problems on stderr)"
ORDER = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file or shipped recipe name")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a value, e.g. --set generator.width=32 (repeatable)")
    parser.add_argument("--print", dest="print_resolved", action="store_true",
                        help="print the resolved recipe (every default spelled out)")


def run(args: argparse.Namespace) -> int:
    from gankit.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if args.print_resolved:
        print(recipe.to_toml(), end="")
    else:
        print(f"{recipe.source}: valid {recipe.task} recipe")
    return 0
