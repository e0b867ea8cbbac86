"""``gankit plugin new NAME``: a new plugin package, ready to install, test and publish.

The package is rendered from the template folder shipped inside gankit
(``gankit/templates/plugin``): every ``*.tmpl`` file has its ``{{key}}``
placeholders filled in and loses the suffix, the folder ``__module__`` becomes
the import package, and ``gitignore`` becomes ``.gitignore``. The result holds
an example part, ``NAME.instance-noise``, a README and tests that pass once the
package is installed (``pip install -e DIR``).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.resources is imported on use, to keep `gankit --help` fast
    from importlib.resources.abc import Traversable

NAME = "plugin"
HELP = "create a new plugin package: gankit plugin new NAME"
DESCRIPTION = "Work with gankit plugins. 'gankit plugin new NAME' creates an installable plugin package."
ORDER = 40

TEMPLATE = ("templates", "plugin")
SUFFIX = ".tmpl"
MODULE_DIR = "__module__"
RENAMES = {"gitignore": ".gitignore"}
#: A plugin's namespace: the part-name prefix the registry accepts (see gankit.registry).
NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="plugin_action", metavar="ACTION", required=True)
    new = actions.add_parser(
        "new",
        help="create a plugin package with an example part, a README and tests",
        description="Create a plugin package NAME: distribution gankit-NAME, import package gankit_NAME, "
        "entry point NAME in the 'gankit' group, parts named NAME.<part>.",
    )
    new.add_argument("name", help="the plugin's namespace: lower-case letters and digits, words joined by - or _")
    new.add_argument("--dir", metavar="DIR", help="the package folder to create (default: ./gankit-NAME)")
    new.add_argument("--force", action="store_true", help="write into DIR even if it is not empty")


def names_for(namespace: str) -> dict[str, str]:
    """The names a plugin package uses, from its namespace: ``{"name", "dist", "module", "title", ...}``.

    >>> names_for("my-aug")["module"]
    'gankit_my_aug'
    """
    from gankit import __version__
    from gankit.errors import GankitError
    from gankit.registry import shown

    if not NAMESPACE_RE.match(namespace) or len(namespace) > 64:
        raise GankitError(
            f"bad plugin name {shown(namespace)}: use at most 64 lower-case letters and digits, words joined by "
            "'-' or '_', starting with a letter (e.g. 'jitter' or 'my-aug')"
        )
    if namespace == "gankit" or namespace.startswith(("gankit-", "gankit_")):
        raise GankitError(f"bad plugin name {shown(namespace)}: leave out the 'gankit' prefix, it is added for you")
    words = re.split(r"[-_]", namespace)
    return {
        "name": namespace,
        "dist": "gankit-" + "-".join(words),
        "module": "gankit_" + "_".join(words),
        "title": "gankit-" + "-".join(words),
        "gankit_version": __version__,
    }


def template_root() -> Traversable:
    """The template folder inside the installed gankit package."""
    from importlib import resources

    root = resources.files("gankit")
    for part in TEMPLATE:
        root = root.joinpath(part)
    return root


def _walk(folder: Traversable, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            yield from _walk(entry, (*prefix, entry.name))
        else:
            yield (*prefix, entry.name), entry


def fill(text: str, values: dict[str, str], where: str) -> str:
    """Replace every ``{{key}}`` in ``text``; an unknown key is a bug in the template."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template {where}: unknown placeholder {{{{{key}}}}}")
        return values[key]

    return _PLACEHOLDER_RE.sub(replace, text)


def render(target: Path, values: dict[str, str]) -> list[Path]:
    """Write the plugin template into ``target`` with ``values``; returns the files written."""
    written: list[Path] = []
    for parts, entry in _walk(template_root()):
        names = [values["module"] if p == MODULE_DIR else p for p in parts]
        leaf = names[-1]
        templated = leaf.endswith(SUFFIX)
        leaf = leaf.removesuffix(SUFFIX)
        names[-1] = RENAMES.get(leaf, leaf)
        path = target.joinpath(*names)
        path.parent.mkdir(parents=True, exist_ok=True)
        if templated:
            path.write_text(fill(entry.read_text(encoding="utf-8"), values, "/".join(parts)), encoding="utf-8")
        else:
            path.write_bytes(entry.read_bytes())
        written.append(path)
    return written


def create_plugin(namespace: str, directory: str | Path | None = None, *, force: bool = False) -> Path:
    """Create the plugin package for ``namespace`` in ``directory`` (default ``./gankit-<namespace>``)."""
    from gankit.errors import GankitError

    values = names_for(namespace)
    target = Path(directory) if directory is not None else Path(values["dist"])
    if target.exists() and not target.is_dir():
        raise GankitError(f"--dir {target}: is a file, not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise GankitError(f"{target} is not empty: choose another --dir, or add --force to write into it")
    render(target, values)
    return target


def _namespace_taken(namespace: str) -> str | None:
    """The distribution that already provides the ``gankit`` entry point ``namespace``, if one is installed."""
    from importlib import metadata

    for entry_point in metadata.entry_points(group="gankit"):
        if entry_point.name == namespace:
            dist = getattr(entry_point, "dist", None)
            return dist.metadata["Name"] if dist is not None else "an installed distribution"
    return None


def run(args: argparse.Namespace) -> int:
    if args.plugin_action != "new":  # argparse allows only "new"; kept for later actions
        return 2
    target = create_plugin(args.name, args.dir, force=args.force)
    values = names_for(args.name)
    taken = _namespace_taken(args.name)
    if taken:
        from gankit.commands._console import print_warning

        print_warning(
            f"the namespace {args.name!r} is already used by the installed {taken}: two plugins with one "
            "namespace cannot both load, so choose another name or uninstall that one"
        )
    print(f"created {values['dist']} in {target} (example part: trick {args.name}.instance-noise)")
    print("next:")
    print(f"  pip install -e '{target}[test]'")
    print(f"  cd {target} && python -m pytest")
    print(f"  gankit show {args.name}.instance-noise")
    return 0
