"""``gankit recipes``: the recipes shipped with gankit."""

from __future__ import annotations

import argparse

NAME = "recipes"
HELP = "list the recipes shipped with gankit (use them by name: gankit train dcgan-digits)"
ORDER = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", action="store_true", help="print the file paths too")


def _description(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def run(args: argparse.Namespace) -> int:
    from gankit.recipe import builtin_recipes

    for name, path in builtin_recipes().items():
        summary = _description(path.read_text(encoding="utf-8"))
        where = f"  {path}" if args.path else ""
        print(f"{name:28s} {summary}{where}")
    return 0
