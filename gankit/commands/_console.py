"""Shared console helpers for the command line (rich, loaded on use)."""

from __future__ import annotations

import sys
from typing import Any


def stdout() -> Any:
    """A rich console on standard output."""
    from rich.console import Console

    return Console()


def stderr() -> Any:
    """A rich console on standard error."""
    from rich.console import Console

    return Console(stderr=True)


def print_error(message: str) -> None:
    """Print a user mistake on standard error, in red when it is a terminal."""
    from rich.markup import escape

    console = stderr()
    if console.is_terminal:
        console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    else:
        print(f"error: {message}", file=sys.stderr)


def print_warning(message: str) -> None:
    """Print a warning on standard error."""
    from rich.markup import escape

    console = stderr()
    if console.is_terminal:
        console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)
    else:
        print(f"warning: {message}", file=sys.stderr)
