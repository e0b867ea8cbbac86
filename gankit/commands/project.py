"""``gankit project RUN photo.png``: find the latent whose generated image matches a photo."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor, nn

NAME = "project"
HELP = "find the latent (or w) whose generated image matches a photo; save it, its image and a video"
DESCRIPTION = (
    "Project an image into a trained generator's latent space: gradient descent on the pixel distance between "
    "the generated image and the photo (centre-cropped and resized to the generator's size), plus a perceptual "
    "distance when an encoder is given (--encoder vgg16 --encoder-weights FILE: the VGG layers relu1_2 to "
    "relu4_3, LPIPS-style). Generators with a mapping network are searched in w, others in z; noise inputs are "
    "optimised and regularised as in StyleGAN2's projector. Writes the projected image, the latent as "
    "safetensors (gankit sample RUN --latent FILE draws it again) and, with --video, the optimisation."
)
EPILOG = """examples:
  gankit project runs/digits photo.png                              # photo-projected.png, photo-latent.safetensors
  gankit project runs/faces face.jpg --encoder vgg16 --encoder-weights vgg16.safetensors --video search.gif
  gankit sample runs/digits --latent photo-latent.safetensors -o again.png"""
ORDER = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="RUN", help="run folder, checkpoint, shared model folder or hf://owner/name")
    parser.add_argument("image", help="the image to project (PNG, JPEG, ...)")
    parser.add_argument("-o", "--output", help="projected image (default IMAGE-projected.png)")
    parser.add_argument("--latent-out", metavar="FILE", help="latent file (default IMAGE-latent.safetensors)")
    parser.add_argument("--video", metavar="FILE", help="a video of the search: the image and the projection, "
                                                        "side by side (.gif, or .mp4 with imageio-ffmpeg)")
    parser.add_argument("--fps", type=float, default=12.0, help="frames per second of the video (default 12)")
    parser.add_argument("--frames", type=int, default=60, help="frames in the video (default 60)")
    parser.add_argument("--steps", type=int, default=500, help="optimisation steps (default 500)")
    parser.add_argument("--lr", type=float, default=0.1, help="peak learning rate of Adam (default 0.1)")
    parser.add_argument("--starts", type=int, default=32,
                        help="z search: random latents tried, the closest starts the search (default 32)")
    parser.add_argument("--encoder", metavar="NAME", help="encoder for a perceptual distance (vgg16, vgg19)")
    parser.add_argument("--encoder-weights", metavar="FILE|hub|random", default=None,
                        help="the encoder's weights: a .safetensors/.pth file, 'hub' (gankit weights vgg16), or "
                             "'random' (seeded random features)")
    parser.add_argument("--layers", default=",".join(("relu1_2", "relu2_2", "relu3_3", "relu4_3")),
                        help="encoder layers the perceptual distance reads (comma-separated)")
    parser.add_argument("--feature-weight", type=float, default=1.0, help="weight of the perceptual distance")
    parser.add_argument("--noise-weight", type=float, default=1e5, help="weight of the noise regularisation")
    parser.add_argument("--label", type=int, help="class of the image, for a conditional generator")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search")
    parser.add_argument("--no-ema", action="store_true", help="use the raw generator, not its moving average")
    parser.add_argument("--device", default="cpu", help="device (default cpu)")


def run(args: argparse.Namespace) -> int:
    from gankit.errors import GankitError
    from gankit.images import check_picture_output, samples_picture, save_picture
    from gankit.projection import ProjectionSettings, encoder_features, project, save_latents
    from gankit.training import load_generator
    from gankit.video import check_video_path, write_video

    image = Path(args.image)
    if not image.is_file():
        raise GankitError(f"{_shown(image)}: no such image file")
    output = check_picture_output(args.output or f"{image.stem}-projected.png")
    latent_out = Path(args.latent_out or f"{image.stem}-latent.safetensors")
    if latent_out.is_dir():
        raise GankitError(f"{_shown(latent_out)}: is a folder; give a file name like latent.safetensors")
    if args.video:
        check_video_path(args.video)
        if args.frames < 2 or args.fps <= 0:
            raise GankitError("--frames must be at least 2 and --fps positive")
    settings = ProjectionSettings(
        steps=args.steps, lr=args.lr, starts=args.starts, feature_weight=args.feature_weight,
        noise_weight=args.noise_weight, seed=args.seed, label=args.label,
        frame_every=max(1, args.steps // args.frames) if args.video else 0,
    )
    settings.check()
    loaded = load_generator(args.source, device=args.device, ema=not args.no_ema)
    shape = loaded.shape
    if len(shape) != 3:
        raise GankitError(f"{args.source}: projection works on image generators; this one makes points {shape}")
    target = _read_target(image, shape).to(args.device)
    encoder = None
    if args.encoder:
        layers = [name.strip() for name in args.layers.split(",") if name.strip()]
        encoder = encoder_features(_encoder(args.encoder, args.encoder_weights, layers, args.device), layers)
    found = project(loaded, target, settings=settings, encoder=encoder)
    try:
        save_picture(samples_picture(found.image.cpu()), output)
    except OSError as error:
        raise GankitError(f"{output}: cannot write the projected image ({error.strerror or error})") from error
    save_latents(latent_out, found, source=str(loaded.source), step=loaded.step, image=str(image),
                 distance=found.distance, pixel_distance=found.pixel_distance)
    print(f"distance {found.start_distance:.4g} at the start, {found.distance:.4g} after {settings.steps} steps "
          f"(pixels {found.pixel_distance:.4g}); searched in {found.space}")
    print(f"wrote {output} and {latent_out} (gankit sample {args.source} --latent {latent_out})")
    if args.video:
        print(f"wrote {write_video(found.frames, args.video, fps=args.fps)} ({len(found.frames)} frames)")
    return 0


def _shown(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 200 else text[:197] + "..."


def _read_target(path: Path, shape: tuple[int, ...]) -> Tensor:
    """The image as the generator would make it: centre-cropped, resized, in [-1, 1], ``(1, C, H, W)``."""
    import torch

    from gankit.data.images import load_square, to_float
    from gankit.errors import GankitError

    channels, height, width = shape
    if height != width:
        raise GankitError(f"the generator makes {height}x{width} images; projection needs square ones")
    try:
        pixels = load_square(str(path), height, channels)
    except Exception as error:  # any decoder failure: one clear line
        raise GankitError(f"{path}: cannot read the image ({type(error).__name__}: {error})") from error
    return to_float(torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).contiguous())


def _encoder(name: str, weights: str | None, layers: list[str], device: str) -> nn.Module:
    """The encoder part ``name`` with ``weights``, trimmed after the deepest of ``layers``."""
    from pydantic import ValidationError

    from gankit.errors import GankitError
    from gankit.plugins import get_registry

    part = get_registry().get("encoder", name)
    params = {} if weights is None else {"weights": weights}
    try:
        encoder: nn.Module = part.build(params, layers=layers)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise GankitError(f"--encoder {name}: {problems}") from error
    return encoder.to(device)
