"""``gankit sample``: pictures from a trained generator."""

from __future__ import annotations

import argparse

NAME = "sample"
HELP = "draw samples (or a latent interpolation) from a run or checkpoint into a PNG grid"
ORDER = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="run folder, checkpoint, or exported generator.safetensors")
    parser.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("-o", "--output", default="samples.png", help="PNG file to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent batch")
    parser.add_argument("--interpolate", action="store_true",
                        help="a latent interpolation: rows of --steps pictures between two random points")
    parser.add_argument("--steps", type=int, default=10, help="pictures per interpolation row")
    parser.add_argument("--no-ema", action="store_true", help="use the raw generator, not its moving average")
    parser.add_argument("--truncation", type=float, default=None, metavar="PSI",
                        help="pull samples towards the average w (0: the average image, 1: none); for generators "
                        "with a mapping network (stylegan2)")
    parser.add_argument("--device", default="cpu", help="device to sample on (default cpu)")


def run(args: argparse.Namespace) -> int:
    from gankit.errors import GankitError

    if args.n <= 0 or args.steps <= 1:
        raise GankitError("-n must be positive and --steps at least 2")
    from gankit.images import samples_picture, save_picture
    from gankit.training import interpolate, load_generator, sample

    loaded = load_generator(args.source, device=args.device, ema=not args.no_ema)
    if args.interpolate:
        rows = max(1, args.n // args.steps)
        images = interpolate(loaded, args.steps, rows=rows, seed=args.seed, truncation=args.truncation)
        picture = samples_picture(images, columns=args.steps)
    else:
        picture = samples_picture(sample(loaded, args.n, seed=args.seed, truncation=args.truncation))
    path = save_picture(picture, args.output)
    print(f"wrote {path} (step {loaded.step} of {loaded.source})")
    return 0
