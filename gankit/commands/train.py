"""``gankit train``: train a GAN or fast-style recipe, or resume a run."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "train a GAN or fast-style recipe (or --resume a run folder)"
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


def run(args: argparse.Namespace) -> int:
    from gankit.errors import GankitError

    if args.steps is not None and args.steps <= 0:
        raise GankitError(f"--steps {args.steps}: must be a positive number of steps")
    if args.resume:
        if args.recipe or args.overrides or args.out:
            raise GankitError("--resume continues a run as it was: give no recipe, --set or --out with it")
        if _run_task(args.resume) == "fast-style":
            from gankit.style.fast import resume_fast_style

            return _fast_style_done(resume_fast_style(args.resume, steps=args.steps, quiet=args.quiet), args.quiet)
        from gankit.training import resume

        result = resume(args.resume, steps=args.steps, quiet=args.quiet)
    else:
        if not args.recipe:
            raise GankitError("name a recipe (gankit recipes lists the shipped ones) or --resume RUN")
        from gankit.recipe import load_recipe

        recipe = load_recipe(args.recipe, list(args.overrides))
        if recipe.task == "fast-style":
            from gankit.style.fast import train_fast_style

            return _fast_style_done(train_fast_style(recipe, args.out, steps=args.steps, quiet=args.quiet), args.quiet)
        if recipe.task == "style":
            raise GankitError(
                f"{recipe.source}: a style recipe optimises one picture and has nothing to train:"
                f" run it with gankit stylize --recipe {args.recipe} --content photo.jpg --style painting.jpg"
            )
        from gankit.training import train

        result = train(recipe, args.out, steps=args.steps, quiet=args.quiet)
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


def _run_task(run_dir: str) -> str:
    """The task a run folder was trained for; ``"gan"`` when it cannot tell (the GAN resume then explains)."""
    from gankit.errors import GankitError
    from gankit.style.fast import run_task

    try:
        return run_task(run_dir)
    except GankitError:
        return "gan"


def _fast_style_done(result: object, quiet: bool) -> int:
    from gankit.style.fast import FastStyleResult

    assert isinstance(result, FastStyleResult)
    if result.interrupted:
        print(f"interrupted at step {result.step}; resume with: gankit train --resume {result.run_dir}")
        return 130
    if not quiet:
        samples = sorted((result.run_dir / "samples").glob("*.png"))
        print(f"done: {result.step} steps in {result.run_dir}")
        if samples:
            print(f"latest samples: {samples[-1]}")
        print(f"stylize a photo: gankit stylize --model {result.run_dir} --content photo.jpg -o out.png")
    return 0
