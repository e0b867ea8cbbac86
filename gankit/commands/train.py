"""``gankit train``: train a GAN recipe, or resume a run."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "train a GAN recipe (or --resume a run folder)"
ORDER = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", help="recipe file or shipped recipe name (gankit recipes)")
    parser.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its latest checkpoint")
    parser.add_argument("--from", dest="from_step", type=int, metavar="STEP",
                        help="with --resume: go back to the kept checkpoint of this step (after a NaN stop, say); "
                             "later checkpoints are moved aside, not deleted")
    parser.add_argument("--out", metavar="DIR", help="run folder (default: runs/<recipe>-<date>-<time>)")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="total steps of the run, the same as --set run.steps=N (schedules follow it); "
                             "with --resume: the run's new total")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set data.path=photos/ (repeatable); with --resume "
                             "only optim.*, schedule.* and run settings that keep the networks, e.g. "
                             "--set optim.generator.lr=1e-4")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    from gankit.errors import GankitError

    if args.steps is not None and args.steps <= 0:
        raise GankitError(f"--steps {args.steps}: must be a positive number of steps")
    if args.resume:
        if args.recipe or args.out:
            raise GankitError("--resume continues a run in its own folder: give no recipe or --out with it")
        from gankit.training import resume

        result = resume(args.resume, steps=args.steps, overrides=list(args.overrides), from_step=args.from_step,
                        quiet=args.quiet)
    else:
        if not args.recipe:
            raise GankitError("name a recipe (gankit recipes lists the shipped ones) or --resume RUN")
        if args.from_step is not None:
            raise GankitError("--from goes with --resume RUN")
        from gankit.recipe import load_recipe
        from gankit.tasks import train_task

        overrides = list(args.overrides)
        if args.steps is not None:
            overrides.append(f"run.steps={args.steps}")
        recipe = load_recipe(args.recipe, overrides)
        result = train_task(recipe)(recipe, args.out, quiet=args.quiet)
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
