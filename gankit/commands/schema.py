"""``gankit schema``: a JSON Schema of recipes, with every registered part's parameters."""

from __future__ import annotations

import argparse
import json

NAME = "schema"
HELP = "print a JSON Schema of recipes (for editors)"
ORDER = 21


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")


def run(args: argparse.Namespace) -> int:
    from gankit.schema import recipe_json_schema

    text = json.dumps(recipe_json_schema(), indent=2)
    if args.output:
        from pathlib import Path

        from gankit.errors import GankitError
        from gankit.files import write_bytes_atomic

        if Path(args.output).is_dir():
            raise GankitError(f"{args.output}: is a folder; give a file name like recipe.schema.json")
        try:
            write_bytes_atomic(args.output, (text + "\n").encode("utf-8"))
        except OSError as error:
            raise GankitError(f"{args.output}: cannot write the schema: {error.strerror or error}") from error
    else:
        print(text)
    return 0
