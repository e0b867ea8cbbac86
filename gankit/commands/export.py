"""``gankit export RUN DIR``: a run's generator as a folder in the Hugging Face model layout, optionally pushed."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = "write a run's generator as a shareable folder (Hugging Face layout, model card), or --push it to the Hub"
DESCRIPTION = (
    "Write the generator of a run (its moving average when the run had the ema trick) as a folder in the "
    "Hugging Face model layout: config.json (the generator's part, parameters and version, and the run's recipe), "
    "model.safetensors, a README.md model card with a sample grid, the metrics and how to load it, and "
    "samples.png. gankit sample DIR and gankit.load_generator(DIR) read it. With --push owner/name the folder is "
    "uploaded to the Hugging Face Hub (pip install 'gankit[hub]'; log in first with hf auth login), and "
    "hf://owner/name then loads it anywhere."
)
EPILOG = """examples:
  gankit export runs/digits shared/digits
  gankit export runs/digits --push me/digits-dcgan          # also: shared/digits --push me/digits-dcgan
  gankit sample hf://me/digits-dcgan -n 16 -o grid.png"""
ORDER = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="RUN", help="run folder, checkpoint, or generator.safetensors")
    parser.add_argument("out", metavar="DIR", nargs="?", help="folder to write (new, empty, or an earlier export)")
    parser.add_argument("--push", metavar="OWNER/NAME", help="upload the folder to the Hugging Face Hub as this model")
    parser.add_argument("--private", action="store_true", help="with --push: create the model as private")
    parser.add_argument("--best", action="store_true", help="export checkpoints/best.safetensors (run.best_metric)")
    parser.add_argument("--no-ema", action="store_true", help="export the raw generator, not its moving average")
    parser.add_argument("--samples", type=int, default=64, metavar="N", help="pictures in the card's grid (64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the card's grid (0)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gankit import sharing
    from gankit.errors import GankitError

    source = Path(args.source)
    if args.best:
        source = source / "checkpoints" / "best.safetensors"
        if not source.is_file():
            raise GankitError(f"--best: {source} does not exist (the run needs run.best_metric and [[metrics]])")
    if args.out is None and not args.push:
        raise GankitError("name the folder to export into (gankit export RUN DIR), or --push OWNER/NAME")
    if args.push:
        sharing.check_repo_id(args.push)
        sharing.require_hub()
    with sharing.temporary_folder() as scratch:
        folder = sharing.export(source, args.out or scratch, ema=not args.no_ema, samples=args.samples,
                                seed=args.seed, repo_id=args.push)
        if args.out:
            print(f"wrote {folder} (config.json, model.safetensors, README.md, samples.png)")
        if args.push:
            address = sharing.push(folder, args.push, private=args.private)
            print(f"pushed to {address}; load it with gankit.load_generator('hf://{args.push}')")
    return 0
