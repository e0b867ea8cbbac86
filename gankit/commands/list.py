"""``gankit list``: every registered part, and plugins that failed to load."""

from __future__ import annotations

import argparse
import json
import warnings

NAME = "list"
HELP = "list registered parts (kind, name, provider, summary) and broken plugins"
ORDER = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gankit.kinds import KINDS

    parser.add_argument("--kind", choices=KINDS, help="only parts of this kind")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--all-versions", action="store_true", help="list every version of each part")


def run(args: argparse.Namespace) -> int:
    from gankit.plugins import PluginWarning, broken_plugins, get_registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        registry = get_registry()
        broken = broken_plugins()
    parts = registry.parts(args.kind, all_versions=args.all_versions)
    if args.json:
        rows = [
            {"kind": p.kind, "role": p.role, "name": p.name, "version": p.version, "provider": str(p.provider),
             "summary": p.summary}
            for p in parts
        ]
        print(json.dumps({"parts": rows, "broken": [
            {"name": b.name, "provider": str(b.provider), "error": b.error} for b in broken
        ]}, indent=2))
        return 0
    from rich.markup import escape
    from rich.table import Table

    from gankit.commands._console import stdout

    table = Table(title="gankit parts", show_lines=False)
    for column in ("kind", "role", "name", "version", "provider"):
        table.add_column(column, no_wrap=True)
    table.add_column("summary", overflow="fold")
    for p in parts:
        table.add_row(p.kind, p.role or "", escape(p.name), f"v{p.version}", escape(str(p.provider)),
                      escape(p.summary))
    for b in broken:
        table.add_row("[red]plugin[/]", "", f"[red]{escape(b.name)}[/]", "", f"[red]{escape(str(b.provider))}[/]",
                      f"[red]failed to load: {escape(b.error)}[/]")
    stdout().print(table)
    return 0
