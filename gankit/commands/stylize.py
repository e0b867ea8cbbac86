"""``gankit stylize``: render a photo in the style of another image (neural style transfer)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "stylize"
HELP = "render a photo in the style of another image (neural style transfer)"
DESCRIPTION = (
    "Optimise an image so that its VGG features match the content photo's and its Gram matrices the style"
    " image's (Gatys et al. by default: content at relu4_2, style at relu1_1..relu5_1, L-BFGS; 512 px on a GPU,"
    " 256 px on a CPU). Weights: gankit weights vgg19 (once), or --weights random for an offline demo."
)
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
    parser.add_argument("--content", required=True, metavar="IMAGE", help="the photo whose content is kept")
    parser.add_argument("--style", required=True, metavar="IMAGE", help="the image whose style is transferred")
    parser.add_argument("-o", "--output", metavar="IMAGE",
                        help="where to write the result (.png, .jpg, .webp; default <content>-<style>.png)")
    parser.add_argument("--recipe", default="style-transfer",
                        help="style recipe file or shipped name (default style-transfer; try style-transfer-fast)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set losses.1.weight=30 (repeatable)")
    parser.add_argument("--size", type=int, metavar="PX", help="longest side of the result (run.size)")
    parser.add_argument("--steps", type=int, metavar="N", help="iterations per scale (run.steps)")
    parser.add_argument("--optimizer", choices=("lbfgs", "adam"), help="run.optimizer")
    parser.add_argument("--init", metavar="noise|content|IMAGE", help="start image (run.init)")
    parser.add_argument("--weights", metavar="hub|random|FILE", help="encoder weights (encoder.weights)")
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


def run(args: argparse.Namespace) -> int:
    from gankit.errors import GankitError
    from gankit.style.loop import stylize

    output = Path(args.output) if args.output else default_output(args.content, args.style)
    for what, source in (("content", args.content), ("style", args.style)):
        if Path(source).exists() and output.exists() and output.resolve() == Path(source).resolve():
            raise GankitError(f"-o {output}: would overwrite the {what} image; choose another output file")
    for name in ("size", "steps", "multi_scale", "frames_every"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise GankitError(f"--{name.replace('_', '-')} {value}: must be a positive number")
    result = stylize(
        args.content,
        args.style,
        args.recipe,
        overrides=overrides_from_args(args),
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
