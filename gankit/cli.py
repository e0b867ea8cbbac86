"""The ``gankit`` command line.

Each sub-command lives in its own module under :mod:`gankit.commands`, which
defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are found by name, and heavy imports happen inside ``run``, so
``gankit --help`` stays fast.

Exit codes:

====  =====================================================================
0     success
1     a user mistake: bad recipe, missing file, unknown part (message, no traceback)
2     bad command-line usage (argparse)
3     training stopped: a loss became NaN or infinite (the last good checkpoint stays)
4     distributed training: another process died or stopped answering
130   interrupted with Ctrl-C (training writes a checkpoint first)
====  =====================================================================
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

EXIT_CODES = {
    0: "success",
    1: "a user mistake (bad recipe, missing file, unknown part)",
    2: "bad command-line usage",
    3: "training stopped on a non-finite loss (the last good checkpoint stays)",
    4: "distributed training: another process died or stopped answering",
    130: "interrupted (Ctrl-C)",
}


def _command_modules() -> list[ModuleType]:
    from gankit import commands

    modules = []
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"gankit.commands.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 50), m.NAME))


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors quote at most a few hundred characters of what was typed."""

    def error(self, message: str) -> NoReturn:
        if len(message) > 500:
            message = message[:497] + "..."
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    from gankit import __version__

    epilog = "exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items())
    parser = _Parser(
        prog="gankit",
        description="Build, train and share GANs and neural style transfer from interchangeable parts.",
        epilog=epilog,
    )
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user mistakes too")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        sub = subparsers.add_parser(
            module.NAME, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
            epilog=getattr(module, "EPILOG", None), formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def _format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    line: str | None = None) -> str:
    """``warning: message``: what a user reads, without gankit's source file and line."""
    return f"warning: {message}\n"


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    return oom is not None and isinstance(error, oom)


def _print_file_names_as_given() -> None:
    """Let standard output print file names that are not valid UTF-8 (bytes the shell passed) as given."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None and getattr(sys.stdout, "errors", None) == "strict":
        with contextlib.suppress(Exception):
            reconfigure(errors="surrogateescape")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    A user mistake (:class:`~gankit.errors.GankitError`), an error of the file system (a full disk,
    a read-only folder) or running out of memory is printed as one line, with no traceback
    (``--debug`` shows it). Warnings are printed as ``warning: message``.
    """
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    from gankit.commands._console import print_error
    from gankit.errors import GankitError, describe_os_error

    _print_file_names_as_given()
    previous_format = warnings.formatwarning
    if not args.debug:
        warnings.formatwarning = _format_warning
    try:
        return int(args._run(args) or 0)
    except GankitError as error:
        if args.debug:
            raise
        print_error(str(error))
        return error.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # the machine, not gankit: a full disk, a read-only folder, a vanished file
        if args.debug:
            raise
        print_error(describe_os_error(error))
        return 1
    except Exception as error:
        if args.debug or not _is_out_of_memory(error):
            raise
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        print_error(f"out of memory: {first}. Lower the batch size or the size of the networks or pictures")
        return 1
    finally:
        warnings.formatwarning = previous_format


if __name__ == "__main__":
    raise SystemExit(main())
