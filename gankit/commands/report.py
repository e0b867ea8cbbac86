"""``gankit report RUN``: loss curves and sample grids over time in one HTML page."""

from __future__ import annotations

import argparse

NAME = "report"
HELP = "write a self-contained HTML report of a run (loss curves, samples over time)"
ORDER = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder")
    parser.add_argument("-o", "--output", help="HTML file (default RUN/report.html)")


def run(args: argparse.Namespace) -> int:
    from gankit.report import build_report

    path = build_report(args.run, args.output)
    print(f"wrote {path}")
    return 0
