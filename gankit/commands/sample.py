"""``gankit sample``: pictures and latent-walk videos from a trained generator."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gankit.training.generate import LoadedGenerator

NAME = "sample"
HELP = "draw samples, a latent interpolation or a latent-walk video from a run, checkpoint or shared model"
EPILOG = """examples:
  gankit sample runs/digits -n 64 -o grid.png
  gankit sample runs/digits --interpolate -o walk.png               # rows of pictures between two latents
  gankit sample runs/digits --interpolate --video walk.gif          # a looping latent walk, 4 s at 24 fps
  gankit sample runs/digits --video walk.mp4 --seconds 10 --fps 30  # .mp4 needs pip install 'gankit[video]'
  gankit sample runs/digits --latent photo-latent.safetensors -o again.png   # a latent from gankit project
  gankit sample hf://owner/name -n 16 -o grid.png                   # a model shared with gankit export --push"""
ORDER = 2

#: Pictures in one grid, and tiles in one video frame, when -n is not given.
DEFAULT_GRID = 64
DEFAULT_VIDEO_TILES = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="run folder, checkpoint, exported generator.safetensors, a folder written by "
                                       "gankit export, or hf://owner/name")
    parser.add_argument("-n", type=int, default=None,
                        help=f"number of samples (default {DEFAULT_GRID}; one grid holds at most 10,000 images and "
                             "50 megapixels, a scatter of 2-D points at most 1,000,000); in a video: tiles per frame "
                             f"(default {DEFAULT_VIDEO_TILES})")
    parser.add_argument("-o", "--output", default=None,
                        help="picture to write (.png, .jpg, .webp; default samples.png, none with --video alone)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent batch")
    parser.add_argument("--interpolate", action="store_true",
                        help="a latent interpolation: rows of --steps pictures between two random points")
    parser.add_argument("--steps", type=int, default=10, help="pictures per interpolation row")
    parser.add_argument("--video", metavar="FILE", help="write a looping latent walk as a .gif (or .mp4 with "
                                                        "imageio-ffmpeg)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the video in seconds (default 4)")
    parser.add_argument("--fps", type=float, default=24.0, help="frames per second of the video (default 24)")
    parser.add_argument("--keys", type=int, default=None,
                        help="random latents each walk passes through (default: one per 2 seconds, at least 3)")
    parser.add_argument("--latent", metavar="FILE", help="draw the latents of a file written by gankit project")
    parser.add_argument("--no-ema", action="store_true", help="use the raw generator, not its moving average")
    parser.add_argument("--truncation", type=float, default=None, metavar="PSI",
                        help="pull samples towards the average w (0: the average image, 1: none); for generators "
                        "with a mapping network (stylegan2)")
    parser.add_argument("--class", dest="classes", action="append", metavar="CLASS",
                        help="class-conditional generators: draw this class (an index, or a class name of the run's "
                             "data such as a folder name); repeat for one grid row per class. Default: one row per "
                             "class")
    parser.add_argument("--device", default="cpu", help="device to sample on: cpu (default), auto, cuda, cuda:N, mps")


def run(args: argparse.Namespace) -> int:
    from gankit.errors import GankitError
    from gankit.images import MAX_GRID_IMAGES, MAX_SCATTER_POINTS, check_picture_output, check_picture_size

    if args.n is not None and args.n <= 0:
        raise GankitError(f"-n {args.n}: must be a positive number of samples")
    if args.steps <= 1:
        raise GankitError(f"--steps {args.steps}: an interpolation row needs at least 2 pictures")
    if not -(2**63) <= args.seed < 2**63:
        raise GankitError(f"--seed {args.seed}: must be a 64-bit integer, -2^63 to 2^63 - 1")
    output = args.output or (None if args.video else "samples.png")
    if output is not None:
        output = check_picture_output(output)
    if args.video:
        _check_video_arguments(args)
    from gankit.devices import resolve_device
    from gankit.images import samples_picture, save_picture
    from gankit.resources import MemoryEstimate, check_memory
    from gankit.training import interpolate, load_generator, sample

    device = resolve_device(args.device)
    n = args.n or DEFAULT_GRID
    rows = max(1, n // args.steps)
    count = rows * args.steps if args.interpolate else n
    if output is not None and count > MAX_SCATTER_POINTS:  # more than any picture holds, whatever the generator makes
        raise GankitError(f"-n {count}: one picture holds at most {MAX_GRID_IMAGES:,} images or "
                          f"{MAX_SCATTER_POINTS:,} points")
    loaded = load_generator(args.source, device=device, ema=not args.no_ema)
    if output is not None and args.latent:
        from gankit.projection import draw_latents, load_latents

        picture = samples_picture(draw_latents(loaded, load_latents(args.latent)))
    elif output is not None:
        rows_of, columns = class_rows(loaded, args.classes, n)
        if rows_of is not None and not args.interpolate:
            count = len(rows_of)
        probe = sample(loaded, 1, seed=args.seed, truncation=args.truncation)
        scales = len(probe) if isinstance(probe, list | tuple) else 1
        shape = tuple((probe[-1] if scales > 1 else probe).shape[1:])
        check_picture_size(count, shape, columns=args.steps if args.interpolate else columns, scales=scales)
        per_sample = sum(t[0].numel() * t.element_size() for t in (probe if scales > 1 else [probe]))
        check_memory(MemoryEstimate(device.type, {"samples and their concatenation": 2 * count * per_sample},
                                    f"-n {count}"), device, "Draw fewer samples.")
        if args.interpolate:
            chosen = None if rows_of is None else _row_classes(loaded, args, rows)
            images = interpolate(loaded, args.steps, rows=rows, seed=args.seed, labels=chosen,
                                 truncation=args.truncation)
            picture = samples_picture(images, columns=args.steps)
        else:
            latents = None
            if columns:  # one row per class: column j has the same latent in every row, so only the class changes
                import torch

                first = torch.randn(columns, loaded.latent_dim, generator=torch.Generator().manual_seed(args.seed))
                latents = first.repeat(count // columns, 1)
            images = sample(loaded, count, seed=args.seed, latents=latents, labels=rows_of,
                            truncation=args.truncation)
            picture = samples_picture(images, columns=columns)
    if output is not None:
        path = save_picture(picture, output)
        print(f"wrote {path} (step {loaded.step} of {loaded.source})")
    if args.video:
        video = _walk_video(loaded, args)
        print(f"wrote {video} ({round(args.seconds * args.fps)} frames at {args.fps:g} fps)")
    return 0


def _check_video_arguments(args: argparse.Namespace) -> None:
    """Mistakes in the video options, before any work."""
    from gankit.errors import GankitError
    from gankit.video import check_video_path

    check_video_path(args.video)
    if not 0 < args.seconds <= 3600 or not 0 < args.fps <= 120:
        raise GankitError("--seconds must be in (0, 3600] and --fps in (0, 120]")
    if round(args.seconds * args.fps) < 2:
        raise GankitError(f"--seconds {args.seconds} at --fps {args.fps} is fewer than 2 frames")
    if args.keys is not None and not 3 <= args.keys <= 10_000:
        raise GankitError(f"--keys {args.keys}: a closed walk needs 3 to 10,000 latents")
    if args.latent:
        raise GankitError("--latent draws the latents of a file; a --video walks through random ones")


def _walk_video(loaded: LoadedGenerator, args: argparse.Namespace) -> Path:
    """A looping walk of ``-n`` tiles through ``--keys`` random latents, ``--seconds`` long at ``--fps``."""
    import math

    import torch

    from gankit.images import check_picture_size, picture_size, samples_picture
    from gankit.resources import MemoryEstimate, check_memory
    from gankit.training import sample
    from gankit.training.generate import walk_latents
    from gankit.video import write_video

    frames = round(args.seconds * args.fps)
    tiles = args.n or DEFAULT_VIDEO_TILES
    probe = sample(loaded, 1, seed=args.seed, truncation=args.truncation)
    scales = len(probe) if isinstance(probe, list | tuple) else 1
    shape = tuple((probe[-1] if scales > 1 else probe).shape[1:])
    check_picture_size(tiles, shape, scales=scales)
    frame_bytes = 3 * picture_size(tiles, shape, scales=scales)
    check_memory(MemoryEstimate("cpu", {"the video's frames": frames * frame_bytes}, f"--video of {frames} frames"),
                 torch.device("cpu"), "Make it shorter, slower or with fewer tiles (-n).")
    keys = args.keys or max(3, math.ceil(args.seconds / 2))
    latents = walk_latents(loaded.latent_dim, frames, paths=tiles, keys=keys, seed=args.seed)
    pictures = (samples_picture(sample(loaded, tiles, latents=latents[i], truncation=args.truncation))
                for i in range(frames))
    return write_video(pictures, args.video, fps=args.fps)


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
