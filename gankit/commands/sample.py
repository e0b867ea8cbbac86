"""``gankit sample``: pictures and latent-walk videos from a trained generator."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

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
                        help=f"number of samples (default {DEFAULT_GRID}; in a video: tiles per frame, default "
                             f"{DEFAULT_VIDEO_TILES})")
    parser.add_argument("-o", "--output", default=None, help="PNG file to write (default samples.png, none with "
                                                             "--video alone)")
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
    parser.add_argument("--device", default="cpu", help="device to sample on (default cpu)")


def run(args: argparse.Namespace) -> int:
    from gankit.errors import GankitError

    if (args.n is not None and args.n <= 0) or args.steps <= 1:
        raise GankitError("-n must be positive and --steps at least 2")
    if args.video:
        from gankit.video import check_video_path

        check_video_path(args.video)
        if args.seconds <= 0 or args.fps <= 0:
            raise GankitError("--seconds and --fps must be positive")
        if round(args.seconds * args.fps) < 2:
            raise GankitError(f"--seconds {args.seconds} at --fps {args.fps} is fewer than 2 frames")
        if args.keys is not None and args.keys < 3:
            raise GankitError(f"--keys {args.keys}: a closed walk needs at least 3 latents")
        if args.latent:
            raise GankitError("--latent draws the latents of a file; a --video walks through random ones")
    from gankit.images import samples_picture, save_picture
    from gankit.training import interpolate, load_generator, sample

    loaded = load_generator(args.source, device=args.device, ema=not args.no_ema)
    output = args.output or (None if args.video else "samples.png")
    if output is not None:
        if args.latent:
            from gankit.projection import draw_latents, load_latents

            picture = samples_picture(draw_latents(loaded, load_latents(args.latent)))
        elif args.interpolate:
            rows = max(1, (args.n or DEFAULT_GRID) // args.steps)
            images = interpolate(loaded, args.steps, rows=rows, seed=args.seed)
            picture = samples_picture(images, columns=args.steps)
        else:
            picture = samples_picture(sample(loaded, args.n or DEFAULT_GRID, seed=args.seed))
        path = save_picture(picture, output)
        print(f"wrote {path} (step {loaded.step} of {loaded.source})")
    if args.video:
        video = _walk_video(loaded, args)
        print(f"wrote {video} ({round(args.seconds * args.fps)} frames at {args.fps:g} fps)")
    return 0


def _walk_video(loaded: LoadedGenerator, args: argparse.Namespace) -> Path:
    """A looping walk of ``-n`` tiles through ``--keys`` random latents, ``--seconds`` long at ``--fps``."""
    import math

    from gankit.images import samples_picture
    from gankit.training import sample
    from gankit.training.generate import walk_latents
    from gankit.video import write_video

    frames = round(args.seconds * args.fps)
    tiles = args.n or DEFAULT_VIDEO_TILES
    keys = args.keys or max(3, math.ceil(args.seconds / 2))
    latents = walk_latents(loaded.latent_dim, frames, paths=tiles, keys=keys, seed=args.seed)
    pictures = (samples_picture(sample(loaded, tiles, latents=latents[i])) for i in range(frames))
    return write_video(pictures, args.video, fps=args.fps)
