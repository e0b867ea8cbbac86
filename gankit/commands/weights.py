"""``gankit weights``: download, list and convert the encoders' pretrained weights."""

from __future__ import annotations

import argparse

NAME = "weights"
HELP = "download (gankit weights vgg19), list (--list) or convert (--convert FILE) VGG weights"
DESCRIPTION = (
    "Download torchvision's published ImageNet VGG weights into the torch hub cache ($TORCH_HOME/hub/checkpoints),"
    " checking their SHA-256; list what is found locally; or convert a .pth state dict to safetensors."
    " Style recipes find them with [encoder] weights = \"hub\"."
)
ORDER = 6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arch", nargs="?", choices=("vgg19", "vgg16"), help="the network whose weights to get")
    parser.add_argument("--list", action="store_true", help="show which weights are found locally (the default)")
    parser.add_argument("--dest", metavar="DIR", help="download into DIR (default: the torch hub cache)")
    parser.add_argument("--url-base", metavar="URL",
                        help="download from this URL prefix (a mirror; default $GANKIT_WEIGHTS_URL or torchvision's)")
    parser.add_argument("--force", action="store_true", help="download again even if a verified file is there")
    parser.add_argument("--convert", metavar="FILE",
                        help="convert this .pth (or .safetensors) file of ARCH to safetensors (convolutions only)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="with --convert: the file to write (default: gankit-ARCH.safetensors in the hub cache)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def _list() -> int:
    from gankit.style import weights

    folder = weights.hub_dir()
    print(f"torch hub cache: {folder}")
    for arch, filename in weights.TORCHVISION_FILES.items():
        found = False
        for name in (weights.converted_name(arch), filename):
            path = folder / name
            if path.is_file():
                found = True
                print(f"  {arch}: {path} ({_megabytes(path.stat().st_size)})")
        if not found:
            print(f"  {arch}: not found; get it with: gankit weights {arch}")
    return 0


def run(args: argparse.Namespace) -> int:
    from gankit.errors import GankitError

    if args.arch is None:
        if args.convert or args.dest or args.url_base or args.force or args.output:
            raise GankitError("name the network: gankit weights vgg19 ...")
        return _list()
    if args.list:
        raise GankitError("--list takes no network name: gankit weights --list")
    from pathlib import Path

    from gankit.style import weights

    if args.convert:
        if args.dest or args.url_base or args.force:
            raise GankitError("--convert reads a local file: --dest, --url-base and --force do not apply")
        target = Path(args.output) if args.output else weights.hub_dir() / weights.converted_name(args.arch)
        written = weights.convert(args.convert, target, arch=args.arch)
        print(f"wrote {written} ({_megabytes(written.stat().st_size)})")
        if written.parent == weights.hub_dir():
            print('style recipes use it with [encoder] weights = "hub"')
        else:
            print(f'use it with [encoder] weights = "{written}" (or --weights {written})')
        return 0
    if args.output:
        raise GankitError("-o applies to --convert; to choose the download folder use --dest DIR")
    fetched = weights.download(args.arch, args.dest, base=args.url_base, force=args.force, quiet=args.quiet)
    verb = "downloaded" if fetched.downloaded else "already there (checksum verified):"
    print(f"{verb} {fetched.path}")
    if fetched.path.parent == weights.hub_dir():
        print('style recipes use it with [encoder] weights = "hub"')
    else:
        print(f'use it with [encoder] weights = "{fetched.path}" (or --weights {fetched.path})')
    return 0
