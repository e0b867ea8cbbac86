"""``gankit sample``: pictures from a trained generator."""

from __future__ import annotations

import argparse

NAME = "sample"
HELP = "draw samples (or a latent interpolation) from a run or checkpoint into a PNG grid"
ORDER = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="run folder, checkpoint, or exported generator.safetensors")
    parser.add_argument("-n", type=int, default=64,
                        help="number of samples (default 64; one grid holds at most 10,000 images and 50 megapixels,"
                             " a scatter of 2-D points at most 1,000,000)")
    parser.add_argument("-o", "--output", default="samples.png", help="picture to write (.png, .jpg, .webp)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent batch")
    parser.add_argument("--interpolate", action="store_true",
                        help="a latent interpolation: rows of --steps pictures between two random points")
    parser.add_argument("--steps", type=int, default=10, help="pictures per interpolation row")
    parser.add_argument("--no-ema", action="store_true", help="use the raw generator, not its moving average")
    parser.add_argument("--device", default="cpu", help="device to sample on: cpu (default), auto, cuda, cuda:N, mps")


def run(args: argparse.Namespace) -> int:
    from gankit.errors import GankitError
    from gankit.images import MAX_GRID_IMAGES, MAX_SCATTER_POINTS, check_picture_output, check_picture_size

    if args.n <= 0:
        raise GankitError(f"-n {args.n}: must be a positive number of samples")
    if args.steps <= 1:
        raise GankitError(f"--steps {args.steps}: an interpolation row needs at least 2 pictures")
    if not -(2**63) <= args.seed < 2**63:
        raise GankitError(f"--seed {args.seed}: must be a 64-bit integer, -2^63 to 2^63 - 1")
    output = check_picture_output(args.output)
    from gankit.devices import resolve_device
    from gankit.images import samples_picture, save_picture
    from gankit.resources import MemoryEstimate, check_memory
    from gankit.training import interpolate, load_generator, sample

    device = resolve_device(args.device)
    rows = max(1, args.n // args.steps)
    count = rows * args.steps if args.interpolate else args.n
    if count > MAX_SCATTER_POINTS:  # more than any picture holds, whatever the generator makes
        raise GankitError(f"-n {count}: one picture holds at most {MAX_GRID_IMAGES:,} images or "
                          f"{MAX_SCATTER_POINTS:,} points")
    loaded = load_generator(args.source, device=device, ema=not args.no_ema)
    probe = sample(loaded, 1, seed=args.seed)
    scales = len(probe) if isinstance(probe, list | tuple) else 1
    shape = tuple((probe[-1] if scales > 1 else probe).shape[1:])
    check_picture_size(count, shape, columns=args.steps if args.interpolate else None, scales=scales)
    per_sample = sum(t[0].numel() * t.element_size() for t in (probe if scales > 1 else [probe]))
    check_memory(MemoryEstimate(device.type, {"samples and their concatenation": 2 * count * per_sample},
                                f"-n {count}"), device, "Draw fewer samples.")
    if args.interpolate:
        images = interpolate(loaded, args.steps, rows=rows, seed=args.seed)
        picture = samples_picture(images, columns=args.steps)
    else:
        picture = samples_picture(sample(loaded, args.n, seed=args.seed))
    path = save_picture(picture, output)
    print(f"wrote {path} (step {loaded.step} of {loaded.source})")
    return 0
