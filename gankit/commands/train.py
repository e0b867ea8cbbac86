"""``gankit train``: train a GAN recipe, or resume a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.errors import GankitError

NAME = "train"
HELP = "train a GAN recipe (or --resume a run folder)"
ORDER = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", help="recipe file or shipped recipe name (gankit recipes)")
    parser.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its latest checkpoint")
    parser.add_argument("--out", metavar="DIR", help="run folder (default: runs/<recipe>-<date>-<time>)")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="total steps of the run (with --resume: train up to N in total)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set data.path=photos/ (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _stopped_by_the_machine(error: OSError, run_dir: Path) -> GankitError:
    """One line for a run stopped by the file system (a full disk, a read-only folder), and how to go on."""
    from gankit.checkpoint import list_checkpoints
    from gankit.errors import describe_os_error

    if list_checkpoints(run_dir):
        then = (f"The checkpoints in {run_dir / 'checkpoints'} are intact: fix it (free some space) and continue "
                f"with: gankit train --resume {run_dir}")
    else:
        then = "No checkpoint was written yet: fix it and start again"
    return GankitError(f"{describe_os_error(error)}; training stopped. {then}")


def run(args: argparse.Namespace) -> int:
    if args.steps is not None and args.steps <= 0:
        raise GankitError(f"--steps {args.steps}: must be a positive number of steps")
    if args.resume:
        if args.recipe or args.overrides or args.out:
            raise GankitError("--resume continues a run as it was: give no recipe, --set or --out with it")
        from gankit.training import resume

        run_dir = Path(args.resume)
        try:
            result = resume(run_dir, steps=args.steps, quiet=args.quiet)
        except OSError as error:
            raise _stopped_by_the_machine(error, run_dir) from error
    else:
        if not args.recipe:
            raise GankitError("name a recipe (gankit recipes lists the shipped ones) or --resume RUN")
        from gankit.devices import resolve_device
        from gankit.recipe import load_recipe
        from gankit.training import train
        from gankit.training.distributed import launched_by_torchrun
        from gankit.training.trainer import default_run_dir

        recipe = load_recipe(args.recipe, list(args.overrides))
        if not launched_by_torchrun():
            resolve_device(recipe.run.device)
        run_dir = Path(args.out) if args.out else default_run_dir(recipe)
        try:
            result = train(recipe, run_dir, steps=args.steps, quiet=args.quiet)
        except OSError as error:
            raise _stopped_by_the_machine(error, run_dir) from error
    if not result.is_main:
        return 130 if result.interrupted else 0
    if result.interrupted:
        print(f"interrupted at step {result.step}; resume with: gankit train --resume {result.run_dir}")
        return 130
    if not args.quiet:
        samples = sorted((result.run_dir / "samples").glob("*.png"))
        print(f"done: {result.step} steps in {result.run_dir}")
        if samples:
            print(f"latest samples: {samples[-1]}")
        print(f"more pictures: gankit sample {result.run_dir} -o grid.png; report: gankit report {result.run_dir}")
    return 0
