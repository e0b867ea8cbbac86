"""``gankit sample``: pictures from a trained generator."""

from __future__ import annotations

import argparse
from typing import Any

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
    parser.add_argument("--class", dest="classes", action="append", metavar="CLASS",
                        help="class-conditional generators: draw this class (an index, or a class name of the run's "
                             "data such as a folder name); repeat for one grid row per class. Default: one row per "
                             "class")
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
    rows_of, columns = class_rows(loaded, args.classes, args.n)
    if rows_of is not None and not args.interpolate:
        count = len(rows_of)
    probe = sample(loaded, 1, seed=args.seed)
    scales = len(probe) if isinstance(probe, list | tuple) else 1
    shape = tuple((probe[-1] if scales > 1 else probe).shape[1:])
    check_picture_size(count, shape, columns=args.steps if args.interpolate else columns, scales=scales)
    per_sample = sum(t[0].numel() * t.element_size() for t in (probe if scales > 1 else [probe]))
    check_memory(MemoryEstimate(device.type, {"samples and their concatenation": 2 * count * per_sample},
                                f"-n {count}"), device, "Draw fewer samples.")
    if args.interpolate:
        chosen = None if rows_of is None else _row_classes(loaded, args, rows)
        images = interpolate(loaded, args.steps, rows=rows, seed=args.seed, labels=chosen)
        picture = samples_picture(images, columns=args.steps)
    else:
        latents = None
        if columns:  # one row per class: column j has the same latent in every row, so only the class changes
            import torch

            first = torch.randn(columns, loaded.latent_dim, generator=torch.Generator().manual_seed(args.seed))
            latents = first.repeat(count // columns, 1)
        picture = samples_picture(sample(loaded, count, seed=args.seed, latents=latents, labels=rows_of),
                                  columns=columns)
    path = save_picture(picture, output)
    print(f"wrote {path} (step {loaded.step} of {loaded.source})")
    return 0


def class_rows(loaded: Any, classes: list[str] | None, n: int) -> tuple[Any, int | None]:
    """The label of every sample of a class-conditional generator's grid, and the grid's columns.

    One class (``--class 7``): ``n`` samples of it. Several, or none given (every class): one row per
    class, ``n // classes`` samples each, the same latents in every row (at least one sample per class;
    rows of one are laid out as a square grid).
    An unconditional generator gets ``(None, None)``, or an error when classes were asked for.
    """
    import torch

    from gankit.training.generate import class_index, num_classes_of

    if not num_classes_of(loaded):
        if classes:
            class_index(loaded, classes[0], "--class")  # raises: the generator is not conditional
        return None, None
    chosen = [class_index(loaded, c, "--class") for c in classes] if classes else list(range(num_classes_of(loaded)))
    if len(chosen) == 1:
        return torch.full((n,), chosen[0], dtype=torch.int64), None
    per_row = max(1, n // len(chosen))
    labels = torch.tensor(chosen, dtype=torch.int64).repeat_interleave(per_row)
    return labels, per_row if per_row > 1 else None


def _row_classes(loaded: Any, args: argparse.Namespace, rows: int) -> list[int]:
    """The class of each interpolation row: the ``--class`` values (or every class) in turn."""
    from gankit.training.generate import class_index, num_classes_of

    chosen = [class_index(loaded, c, "--class") for c in args.classes] if args.classes else list(
        range(num_classes_of(loaded)))
    return [chosen[i % len(chosen)] for i in range(rows)]
