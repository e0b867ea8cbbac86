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


def _limits(info: Any) -> str:
    """A field's limits as text: ``>= 0``, ``< 1``, ``one of: a, b``, ``at least 1 item``."""
    import typing

    out: list[str] = []
    for item in info.metadata:
        for attr, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            value = getattr(item, attr, None)
            if value is not None:
                out.append(f"{symbol} {value}")
        for attr, text in (("min_length", "length >= "), ("max_length", "length <= ")):
            value = getattr(item, attr, None)
            if value is not None:
                out.append(f"{text}{value}")
    choices: list[Any] = []
    stack = [info.annotation]
    while stack:
        annotation = stack.pop()
        if typing.get_origin(annotation) is typing.Literal:
            choices.extend(typing.get_args(annotation))
        else:
            stack.extend(a for a in typing.get_args(annotation) if a is not type(None))
    if choices:
        out.append("one of: " + ", ".join(str(c) for c in choices))
    return "; ".join(out)


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
        role = f" ({part.role})" if part.role else ""
        console.print(f"[bold]{part.kind}{role} {escape(part.name)}[/] v{part.version}  ({escape(str(part.provider))})")
        if part.doc:
            console.print(escape(part.doc), highlight=False)
        table = Table(show_header=True)
        for column in ("parameter", "type", "default", "limits", "description"):
            table.add_column(column)
        for field_name, info in part.params.model_fields.items():
            if info.default is not PydanticUndefined:
                default = repr(info.default)
            elif info.default_factory is not None:
                default = repr(info.default_factory())  # type: ignore[call-arg]
            else:
                default = "(required)"
            table.add_row(field_name, escape(_type_name(info.annotation)), escape(default),
                          escape(_limits(info)), escape(info.description or ""))
        if part.params.model_fields:
            console.print(table)
        else:
            console.print("takes no parameters")
        console.print()
    return 0
