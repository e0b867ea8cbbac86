"""``gankit train``: train a GAN or fast-style recipe, or resume a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.errors import GankitError

NAME = "train"
HELP = "train a GAN or fast-style recipe (or --resume a run folder)"
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


def _run_folder_of(error: OSError) -> Path | None:
    """The run folder (marked by gankit) that holds the file an error names, if any."""
    from gankit.training.run_folder import MARKER_FILE

    if error.filename is None:
        return None
    for folder in Path(str(error.filename)).parents:
        if (folder / MARKER_FILE).is_file():
            return folder
    return None


def _stopped_by_the_machine(error: OSError) -> GankitError:
    """One line for a run stopped by the file system (a full disk, a read-only folder), and how to go on."""
    from gankit.checkpoint import list_checkpoints
    from gankit.errors import describe_os_error

    run_dir = _run_folder_of(error)
    if run_dir is not None and list_checkpoints(run_dir):
        then = (f"The checkpoints in {run_dir / 'checkpoints'} are intact: fix it (free some space) and continue "
                f"with: gankit train --resume {run_dir}")
    else:
        then = "No checkpoint was written yet: fix it and start again"
    return GankitError(f"{describe_os_error(error)}; training stopped. {then}")


def run(args: argparse.Namespace) -> int:
    if args.steps is not None and args.steps <= 0:
        raise GankitError(f"--steps {args.steps}: must be a positive number of steps")
    if args.resume:
        if args.recipe or args.out:
            raise GankitError("--resume continues a run in its own folder: give no recipe or --out with it")
        if _run_task(args.resume) == "fast-style":
            if args.overrides or args.from_step is not None:
                raise GankitError("--set and --from go with GAN runs; a fast-style run resumes as it was")
            from gankit.style.fast import resume_fast_style

            return _fast_style_done(resume_fast_style(args.resume, steps=args.steps, quiet=args.quiet), args.quiet)
        from gankit.training import resume

        try:
            result = resume(args.resume, steps=args.steps, overrides=list(args.overrides),
                            from_step=args.from_step, quiet=args.quiet)
        except OSError as error:
            raise _stopped_by_the_machine(error) from error
    else:
        if not args.recipe:
            raise GankitError("name a recipe (gankit recipes lists the shipped ones) or --resume RUN")
        if args.from_step is not None:
            raise GankitError("--from goes with --resume RUN")
        from gankit.devices import resolve_device
        from gankit.recipe import load_recipe
        from gankit.tasks import train_task
        from gankit.training.distributed import launched_by_torchrun

        overrides = list(args.overrides)
        if args.steps is not None:
            overrides.append(f"run.steps={args.steps}")
        recipe = load_recipe(args.recipe, overrides)
        device = getattr(recipe.run, "device", None)
        if isinstance(device, str) and not launched_by_torchrun():
            resolve_device(device)  # before a run folder is made
        if recipe.task == "fast-style":
            return _fast_style_done(train_task(recipe)(recipe, args.out, quiet=args.quiet), args.quiet)
        try:
            result = train_task(recipe)(recipe, args.out, quiet=args.quiet)
        except OSError as error:
            raise _stopped_by_the_machine(error) from error
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
