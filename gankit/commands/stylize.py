"""``gankit stylize``: render a photo in the style of another image (neural style transfer)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "stylize"
HELP = "render a photo (or video frames) in the style of another image (neural style transfer)"
DESCRIPTION = (
    "Optimise an image so that its VGG features match the content photo's and its Gram matrices the style"
    " image's (Gatys et al. by default: content at relu4_2, style at relu1_1..relu5_1, L-BFGS; 512 px on a GPU,"
    " 256 px on a CPU). Weights: gankit weights vgg19 (once), or --weights random to work offline"
    " (the style-transfer-offline recipe: random filters on an image pyramid). With --model RUN, apply a"
    " stylizer trained by gankit train fast-style in one pass. --frames-in DIR (or a video file) stylizes"
    " every frame, steadily, and reports the flicker."
)
#: The recipe used when none is named, and the one used offline (``--weights random`` without ``--recipe``).
DEFAULT_RECIPE = "style-transfer"
OFFLINE_RECIPE = "style-transfer-offline"
ORDER = 5

_RUN_FLAGS = {
    "size": "run.size",
    "steps": "run.steps",
    "optimizer": "run.optimizer",
    "init": "run.init",
    "multi_scale": "run.multi_scale",
    "style_scale": "run.style_scale",
    "device": "run.device",
    "seed": "run.seed",
    "frames_every": "run.frames_every",
    "weights": "encoder.weights",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--content", metavar="IMAGE", help="the photo whose content is kept")
    parser.add_argument("--style", metavar="IMAGE", help="the image whose style is transferred")
    parser.add_argument("--model", metavar="RUN",
                        help="a stylizer trained with gankit train fast-style (its run folder or .safetensors file):"
                        " one forward pass, no --style")
    parser.add_argument("--frames-in", metavar="DIR|VIDEO",
                        help="stylize every frame of a folder of images (in name order) or of a video file"
                        " (needs pip install 'gankit[video]'); -o names a folder or a video file")
    parser.add_argument("--independent-frames", action="store_true",
                        help="with --frames-in and --style: start each frame afresh instead of from the previous"
                        " result (flickers more)")
    parser.add_argument("-o", "--output", metavar="IMAGE",
                        help="where to write the result (.png, .jpg, .webp; default <content>-<style>.png);"
                        " with --frames-in a folder (default <frames>-styled) or a video file")
    parser.add_argument("--recipe",
                        help=f"style recipe file or shipped name (default {DEFAULT_RECIPE}, or {OFFLINE_RECIPE}"
                        " with --weights random; try style-transfer-fast)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set losses.1.weight=30 (repeatable)")
    parser.add_argument("--size", type=int, metavar="PX", help="longest side of the result (run.size)")
    parser.add_argument("--steps", type=int, metavar="N", help="iterations per scale (run.steps)")
    parser.add_argument("--optimizer", choices=("lbfgs", "adam"), help="run.optimizer")
    parser.add_argument("--init", metavar="noise|content|IMAGE", help="start image (run.init)")
    parser.add_argument("--weights", metavar="hub|random|FILE",
                        help=f"encoder weights (encoder.weights); random without --recipe uses {OFFLINE_RECIPE}")
    parser.add_argument("--multi-scale", type=int, metavar="N", help="optimise at N scales, smallest first")
    parser.add_argument("--style-scale", type=float, metavar="F", help="style image size relative to the result")
    parser.add_argument("--preserve-color", action="store_true", help="keep the content photo's colours")
    parser.add_argument("--device", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps (run.device)")
    parser.add_argument("--seed", type=int, help="seed of the noise start image (run.seed)")
    parser.add_argument("--frames", metavar="DIR", help="save intermediate images into DIR")
    parser.add_argument("--frames-every", type=int, metavar="N", help="save a frame every N steps (run.frames_every)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """The ``--set`` overrides that ``args`` amount to: explicit ``--set`` first, then the shortcut flags."""
    overrides = list(args.overrides)
    for flag, key in _RUN_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={_toml_value(value)}")
    if args.preserve_color:
        overrides.append("run.preserve_color=true")
    if args.frames and args.frames_every is None:
        overrides.append("run.frames_every=10")
    return overrides


def default_output(content: str, style: str) -> Path:
    """``<content stem>-<style stem>.png`` in the current folder."""
    return Path(f"{Path(content).stem}-{Path(style).stem}.png")


def recipe_name(args: argparse.Namespace) -> str:
    """The recipe to run: ``--recipe``, else the offline recipe with ``--weights random``, else the default."""
    if args.recipe:
        return str(args.recipe)
    return OFFLINE_RECIPE if args.weights == "random" else DEFAULT_RECIPE


def _check_inputs(args: argparse.Namespace) -> None:
    from gankit.errors import GankitError

    if args.model is not None:
        loop_only = [flag for flag, value in (("--style", args.style), ("--recipe", args.recipe),
                                              ("--weights", args.weights), ("--steps", args.steps),
                                              ("--init", args.init), ("--set", args.overrides)) if value]
        if loop_only:
            raise GankitError(
                f"--model applies a trained stylizer, whose style is built in: leave out {', '.join(loop_only)}"
            )
    elif not args.style:
        raise GankitError("name the style image with --style IMAGE (or apply a trained stylizer with --model RUN)")
    if args.frames_in is None and not args.content:
        raise GankitError("name the photo with --content IMAGE (or a folder of video frames with --frames-in DIR)")
    if args.frames_in is not None and args.content:
        raise GankitError("give --content (one photo) or --frames-in (a sequence of frames), not both")
    for name in ("size", "steps", "multi_scale", "frames_every"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise GankitError(f"--{name.replace('_', '-')} {value}: must be a positive number")


def _warn_random_vgg(recipe: str, overrides: list[str], quiet: bool) -> None:
    import sys

    from gankit.style.loop import resolve_recipe

    spec = resolve_recipe(recipe, overrides)["encoder"]
    if not quiet and spec.name in ("vgg16", "vgg19") and getattr(spec.params, "weights", None) == "random":
        print(f"note: random {spec.name} weights give little more than colour noise; for an offline stylization"
              f" leave out --recipe (or use --recipe {OFFLINE_RECIPE})", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    _check_inputs(args)
    if args.frames_in is not None:
        return _run_frames(args)
    if args.model is not None:
        return _run_model(args)
    return _run_loop(args)


def _run_model(args: argparse.Namespace) -> int:
    import time

    from gankit.errors import GankitError
    from gankit.style import images
    from gankit.style.fast import load_stylizer

    output = Path(args.output) if args.output else Path(f"{Path(args.content).stem}-{Path(args.model).stem}.png")
    if Path(args.content).exists() and output.exists() and output.resolve() == Path(args.content).resolve():
        raise GankitError(f"-o {output}: would overwrite the content image; choose another output file")
    images.check_output(output)
    stylizer = load_stylizer(args.model, device=args.device or "auto")
    content = images.as_tensor(args.content, what="content image")
    started = time.perf_counter()
    result = stylizer(content, size=args.size)
    seconds = time.perf_counter() - started
    if args.preserve_color:
        result = images.preserve_colors(result, content)
    saved = images.save_image(result, output)
    if not args.quiet:
        print(f"wrote {saved} ({result.shape[-1]}x{result.shape[-2]} px) in {seconds * 1000:.0f} ms on"
              f" {stylizer.device}")
    return 0


def _run_frames(args: argparse.Namespace) -> int:
    from gankit.style.video import stylize_frames

    source = Path(args.frames_in)
    output = Path(args.output) if args.output else source.with_name(f"{source.stem}-styled")
    if args.model is None:
        _warn_random_vgg(recipe_name(args), overrides_from_args(args), args.quiet)
    result = stylize_frames(
        source, output, model=args.model, style=args.style,
        recipe=recipe_name(args) if args.model is None else None,
        overrides=overrides_from_args(args) if args.model is None else (),
        size=args.size, temporal=not args.independent_frames, device=args.device or "auto", quiet=args.quiet,
    )
    if not args.quiet:
        where = result.output if result.output.suffix else f"{result.output}/"
        print(f"wrote {result.frames} frames to {where} in {result.seconds:.1f} s"
              f" ({result.seconds_per_frame * 1000:.0f} ms per frame)")
        print(result.flicker.describe())
    return 0


def _run_loop(args: argparse.Namespace) -> int:
    from gankit.errors import GankitError
    from gankit.style.loop import stylize

    output = Path(args.output) if args.output else default_output(args.content, args.style)
    for what, source in (("content", args.content), ("style", args.style)):
        if Path(source).exists() and output.exists() and output.resolve() == Path(source).resolve():
            raise GankitError(f"-o {output}: would overwrite the {what} image; choose another output file")
    overrides = overrides_from_args(args)
    _warn_random_vgg(recipe_name(args), overrides, args.quiet)
    result = stylize(
        args.content,
        args.style,
        recipe_name(args),
        overrides=overrides,
        output=output,
        frames_dir=args.frames,
        quiet=args.quiet,
    )
    if not args.quiet:
        height, width = result.size
        last = result.history[-1] if result.history else {}
        loss = f", final loss {last['total']:.4g}" if "total" in last else ""
        frames = f"; {len(result.frames)} frames in {result.frames[0].parent}" if result.frames else ""
        print(f"wrote {result.path} ({width}x{height} px) in {result.seconds:.1f} s on {result.device}{loss}{frames}")
    return 0
