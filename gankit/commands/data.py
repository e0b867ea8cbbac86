"""``gankit data``: prepare a folder of images once, describe a prepared dataset, precompute FID statistics."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "data"
HELP = "prepare a folder of images once (prepare), describe one (info), precompute FID statistics (stats)"
DESCRIPTION = (
    "gankit data prepare FOLDER OUT decodes a folder of images once into a prepared dataset (uint8 shards and a "
    "JSON index) that the 'prepared' data part reads from disk batch by batch; gankit data info OUT describes one; "
    "gankit data stats SOURCE -o stats.npz computes the real side of FID from a folder, a prepared dataset or a "
    "recipe's data, for gankit eval RUN --metric fid --set reference=stats.npz."
)
ORDER = 4


def _resolution(parser: argparse.ArgumentParser, *, required: bool = False, help_tail: str = "") -> None:
    parser.add_argument("--resolution", "-r", type=int, nargs="+", metavar="SIDE", required=required,
                        help="SIDE for square images, or HEIGHT WIDTH" + help_tail)
    parser.add_argument("--fit", choices=("crop", "pad"), default="crop",
                        help="other aspect ratios: crop the centre (default) or pad with black bars")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=3, help="3 for RGB (default), 1 for gray")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    prepare = sub.add_parser("prepare", help="decode a folder of images once into a prepared dataset",
                             description="Read every image of FOLDER (EXIF-oriented, any colour mode), size it by "
                             "the rules of image-folder and write OUT: uint8 shards and a JSON index (no pickle), "
                             "complete or not at all. Unreadable files are skipped and named.")
    prepare.add_argument("folder", help="folder of .png/.jpg/.jpeg/.webp/.bmp images")
    prepare.add_argument("out", help="the prepared dataset's folder (new or empty)")
    _resolution(prepare, required=True)
    prepare.add_argument("--labels", choices=("none", "folders"), default="none",
                         help="folders: each image's class is the sub-folder it lies in (cats/, dogs/, ...)")
    prepare.add_argument("--no-recursive", dest="recursive", action="store_false",
                         help="read only the images directly in FOLDER")
    prepare.add_argument("--max-images", type=int, metavar="N", help="prepare at most N images (the first readable)")
    prepare.add_argument("--shard-mb", type=int, default=256, metavar="MB", help="shard size in MB (default 256)")
    prepare.add_argument("--overwrite", action="store_true", help="replace OUT if it holds a prepared dataset")
    prepare.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    prepare.set_defaults(_action=_prepare)

    info = sub.add_parser("info", help="describe a prepared dataset", description="Print a prepared dataset's "
                          "size, image shape, classes and settings; --verify re-hashes every shard.")
    info.add_argument("path", help="a prepared dataset's folder")
    info.add_argument("--verify", action="store_true", help="check every shard's SHA-256 against the index")
    info.add_argument("--json", action="store_true", help="print the index as JSON")
    info.set_defaults(_action=_info)

    stats = sub.add_parser("stats", help="precompute the real images' FID statistics (stats.npz)",
                           description="Compute the mean and covariance of the real images' features, as the fid "
                           "metric would, and write them with how they were made (extractor, weights SHA-256, "
                           "resize mode, image size) to an .npz (no pickle). SOURCE is a prepared dataset, a "
                           "folder of images (give --resolution: the resolution you train at) or a recipe (file "
                           "or shipped name: its data, and its [[metrics]] fid settings). Use the file with "
                           "gankit eval RUN --metric fid --set reference=stats.npz.")
    stats.add_argument("source", help="prepared dataset, image folder, or recipe")
    stats.add_argument("-o", "--output", required=True, metavar="FILE", help="the .npz file to write")
    stats.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="a parameter of the fid metric, e.g. --set features=inception --set "
                       "weights=inception.safetensors --set resize=clean (repeatable)")
    stats.add_argument("-n", type=int, metavar="N", help="use N real images (default: all)")
    _resolution(stats, help_tail=" (a folder SOURCE only)")
    stats.add_argument("--seed", type=int, default=0, help="seed choosing the images when -n is smaller (default 0)")
    stats.add_argument("--device", default="cpu", help="device for the feature extractor (default cpu)")
    stats.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    stats.set_defaults(_action=_stats)


def run(args: argparse.Namespace) -> int:
    return int(args._action(args))


def _size(values: list[int] | None) -> tuple[int, int] | None:
    from gankit.errors import GankitError

    if values is None:
        return None
    if len(values) > 2 or any(v < 4 or v > 4096 for v in values):
        raise GankitError(f"--resolution {' '.join(map(str, values))}: give SIDE or HEIGHT WIDTH, each 4 to 4096")
    return (values[0], values[-1])


def _prepare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gankit.data.prepare import PrepareSettings, prepare_folder
    from gankit.errors import GankitError
    from gankit.progress import Progress

    size = _size(args.resolution)
    assert size is not None
    if args.max_images is not None and args.max_images < 1:
        raise GankitError(f"--max-images {args.max_images}: must be at least 1")
    if args.shard_mb < 1:
        raise GankitError(f"--shard-mb {args.shard_mb}: must be at least 1")
    settings = PrepareSettings(resolution=size, channels=args.channels, fit=args.fit, recursive=args.recursive,
                               labels=args.labels == "folders", max_images=args.max_images)
    bar: Progress | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = Progress(total, description="reading", quiet=args.quiet).__enter__()
        bar.update(done)

    try:
        result = prepare_folder(args.folder, args.out, settings, shard_bytes=args.shard_mb * 2**20,
                                overwrite=args.overwrite, progress=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    dataset = result.dataset
    channels, height, width = dataset.shape
    print(f"wrote {dataset.path}: {len(dataset):,} images of {channels}x{height}x{width} in "
          f"{len(dataset.index['shards'])} shard(s)")
    if dataset.class_names:
        counts = ", ".join(f"{n} ({c})" for n, c in zip(dataset.class_names, dataset.class_counts or []))
        print(f"classes: {counts}")
    if result.skipped:
        from gankit.commands._console import print_warning
        from gankit.data.images import describe_skipped

        print_warning(f"skipped {len(result.skipped)} of {result.listed} files that could not be read: "
                      f"{describe_skipped(result.skipped, Path(args.folder).expanduser().resolve())}")
    print(f'train from it with [data] type = "prepared", path = "{dataset.path}"')
    return 0


def _info(args: argparse.Namespace) -> int:
    import json

    from gankit.data.prepared import PreparedImages
    from gankit.errors import GankitError
    from gankit.resources import format_bytes

    dataset = PreparedImages(args.path)
    if args.json:
        print(json.dumps(dataset.index, indent=1))
    else:
        channels, height, width = dataset.shape
        size = sum((dataset.path / s["file"]).stat().st_size for s in dataset.index["shards"])
        print(f"{dataset.path}: {len(dataset):,} images of {channels}x{height}x{width} (uint8), "
              f"{len(dataset.index['shards'])} shard(s), {format_bytes(size)}")
        if dataset.class_names:
            counts = ", ".join(f"{n} ({c})" for n, c in zip(dataset.class_names, dataset.class_counts or []))
            print(f"classes: {counts}")
        print(f"settings: {json.dumps(dataset.settings)}")
        print(f"skipped when prepared: {dataset.index.get('skipped', 0)}; fingerprint {dataset.fingerprint[:16]}; "
              f"{dataset.index.get('created_by', '')}")
    if args.verify:
        bad = dataset.verify()
        if bad:
            raise GankitError(f"{dataset.path}: {len(bad)} shard(s) differ from the index: {', '.join(bad)}; "
                              "prepare the dataset again")
        print("verified: every shard matches its SHA-256", flush=True)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gankit.commands.eval import PhaseProgress, metric_params
    from gankit.data.prepared import is_prepared
    from gankit.errors import GankitError
    from gankit.metrics.statistics import save_stats
    from gankit.plugins import get_registry

    source = Path(args.source).expanduser()
    size = _size(args.resolution)
    recipe: Any = None
    described: dict[str, Any]
    if source.is_dir() and is_prepared(source):
        if args.resolution is not None:
            raise GankitError("--resolution applies to a folder of images; a prepared dataset has its own")
        data = get_registry().get("data", "prepared").build({"path": str(source)})
        described = {"kind": "prepared", "path": str(data.path), "fingerprint": data.dataset.fingerprint}
    elif source.is_dir():
        if size is None:
            raise GankitError(
                f"{source} is a folder of images: give --resolution (SIDE, or HEIGHT WIDTH), the resolution the "
                "generator makes, so real and generated images are compared at one size"
            )
        data = get_registry().get("data", "image-folder").build(
            {"path": str(source), "resolution": list(size), "channels": args.channels, "fit": args.fit})
        described = {"kind": "folder", "path": str(data.path), "fit": args.fit}
    else:
        from gankit.recipe import load_recipe

        if args.resolution is not None:
            raise GankitError("--resolution applies to a folder of images; a recipe's data has its own "
                              "(change it with the recipe, e.g. data.resolution)")
        recipe = load_recipe(args.source)
        data = recipe["data"].build(seed=recipe.run.seed)
        described = {"kind": "recipe", "recipe": str(args.source), "data": recipe["data"].name}
    part, params = metric_params(recipe, "fid", list(args.overrides), args.n, count="n_real")
    metric = part.build(params)
    with PhaseProgress(quiet=args.quiet) as progress:
        metric.progress = progress
        stats, provenance = metric.real_statistics(data, device=args.device, seed=args.seed)
    from gankit import __version__

    meta = {**provenance, "source": described, "created_by": f"gankit {__version__}"}
    path = save_stats(args.output, stats, meta)
    print(f"wrote {path}: statistics of {stats.n:,} real images, {stats.mean.size} features "
          f"({provenance.get('features')}{', resize ' + provenance['resize'] if 'resize' in provenance else ''})")
    print(f"use them with: gankit eval RUN --metric fid --set reference={path}" + "".join(
        f" --set {key}={value}" for key, value in _metric_settings(part, params).items()))
    return 0


def _metric_settings(part: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The fid parameters that must match between the statistics and the evaluation, where not the defaults."""
    fields = part.params.model_fields
    keys = ("features", "weights", "resize", "variant", "input_size")
    return {k: params[k] for k in keys if params.get(k) != fields[k].default}
