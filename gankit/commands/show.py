"""``gankit show NAME``: a part's parameters (types, defaults, descriptions) and documentation."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "show"
HELP = "show a part's parameters and documentation"
ORDER = 11


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gankit.kinds import KINDS

    parser.add_argument("name", help="part name, optionally name@vN")
    parser.add_argument("--kind", choices=KINDS, help="the kind, when several kinds share the name")


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "")


def run(args: argparse.Namespace) -> int:
    from pydantic_core import PydanticUndefined
    from rich.markup import escape
    from rich.table import Table

    from gankit.commands._console import stdout
    from gankit.errors import PartNotFoundError
    from gankit.plugins import get_registry
    from gankit.registry import did_you_mean, parse_ref, shown

    registry = get_registry()
    name, _ = parse_ref(args.name)
    if args.kind:
        parts = [registry.get(args.kind, args.name)]
    else:
        parts = [registry.get(p.kind, args.name) for p in registry.find(name)]
    if not parts:
        names = sorted({p.name for p in registry.parts()})
        raise PartNotFoundError(f"no part named {shown(name)}.{did_you_mean(name, names)} See: gankit list")
    console = stdout()
    for part in parts:
        console.print(f"[bold]{part.kind} {escape(part.name)}[/] v{part.version}  ({escape(str(part.provider))})")
        if part.doc:
            console.print(escape(part.doc), highlight=False)
        table = Table(show_header=True)
        for column in ("parameter", "type", "default", "description"):
            table.add_column(column)
        for field_name, info in part.params.model_fields.items():
            if info.default is not PydanticUndefined:
                default = repr(info.default)
            elif info.default_factory is not None:
                default = repr(info.default_factory())  # type: ignore[call-arg]
            else:
                default = "(required)"
            table.add_row(field_name, escape(_type_name(info.annotation)), escape(default),
                          escape(info.description or ""))
        if part.params.model_fields:
            console.print(table)
        else:
            console.print("takes no parameters")
        console.print()
    return 0
