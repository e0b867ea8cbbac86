"""``gankit recipes``: the recipes shipped with gankit."""

from __future__ import annotations

import argparse

NAME = "recipes"
HELP = "list the recipes shipped with gankit and its plugins (use them by name: gankit train dcgan-digits)"
ORDER = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", action="store_true", help="print the file paths too")


def _description(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def run(args: argparse.Namespace) -> int:
    import warnings

    from gankit.plugins import PluginWarning, get_registry
    from gankit.recipe import builtin_recipes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        plugin_recipes = get_registry().recipes
    rows = [(name, path, "") for name, path in builtin_recipes().items()]
    rows += [(name, r.path, f"  [{r.provider}]") for name, r in sorted(plugin_recipes.items())]
    for name, path, provider in rows:
        try:
            summary = _description(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            summary = f"(unreadable: {error})"
        where = f"  {path}" if args.path else ""
        print(f"{name:28s} {summary}{provider}{where}")
    return 0
