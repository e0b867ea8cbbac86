"""The offline fast-style walk-through, timed: photos, training, one photo and a frame sequence.

What a person with no network does, from scratch:

1. a folder of 24 photos (160-px crops of scikit-learn's china.jpg and flower.jpg);
2. ``gankit train fast-style --set data.path=photos --set style.image=flower.jpg`` (the shipped recipe);
3. ``gankit stylize --model RUN --content china.jpg`` (640x427, the whole photo);
4. ``gankit stylize --model RUN --frames-in frames`` on 16 frames (256x170) of a slow pan over china.jpg.

It prints the time of each part, the milliseconds per frame and the flicker,
and writes ``fast-style-demo.png`` (the photo and its stylization) into ``--out``.

    python tests/benchmarks/fast_style_demo.py --threads 2 --out /tmp/demo          # the recipe as shipped
    python tests/benchmarks/fast_style_demo.py --threads 2 --out /tmp/demo-video --temporal-weight 50
    python tests/benchmarks/fast_style_demo.py --steps 4 --out /tmp/demo-check      # a check that it runs
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gankit.cli import main as gankit
from gankit.style import images
from gankit.style.fast import load_stylizer
from gankit.style.sample_photos import sample_photos, write_photo_folder, write_sample_photos
from gankit.style.video import stylize_frames


def write_pan(folder: Path, count: int = 16) -> Path:
    """``count`` frames of a slow pan (3 px a frame) over china.jpg, 256x170 each."""
    folder.mkdir(parents=True, exist_ok=True)
    china = sample_photos()["china.jpg"]
    for i in range(count):
        left = 120 + 3 * i
        china.crop((left, 80, left + 384, 335)).resize((256, 170), resample=3).save(folder / f"{i:03d}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="a new folder for everything")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, help="training steps (default: the recipe's)")
    parser.add_argument("--temporal-weight", type=float, help="train with the temporal loss (run.temporal_weight)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out: Path = args.out
    times: dict[str, float] = {}

    started = time.perf_counter()
    write_photo_folder(out / "photos")
    china, flower = write_sample_photos(out)
    frames = write_pan(out / "frames")
    times["photos"] = time.perf_counter() - started

    run = out / "run"
    sets = ["--set", f"data.path={out / 'photos'}", "--set", f"style.image={flower}",
            "--set", f"run.threads={args.threads}"]
    if args.temporal_weight is not None:
        sets += ["--set", f"run.temporal_weight={args.temporal_weight}"]
    steps = ["--steps", str(args.steps)] if args.steps else []
    started = time.perf_counter()
    assert gankit(["train", "fast-style", *sets, *steps, "--out", str(run), "-q"]) == 0
    times["training"] = time.perf_counter() - started

    started = time.perf_counter()
    stylizer = load_stylizer(run)
    photo = images.as_tensor(china)
    styled = stylizer(photo)
    times["one photo, 640x427 (load included)"] = time.perf_counter() - started

    result = stylize_frames(frames, out / "frames-styled", model=run, quiet=True)
    times[f"{result.frames} frames, 256x170"] = result.seconds

    picture = torch.cat([photo, torch.ones(1, 3, photo.shape[-2], 6), styled], dim=-1)
    images.save_image(images.resize(picture, (214, round(picture.shape[-1] * 214 / picture.shape[-2]))),
                      out / "fast-style-demo.png")
    total = sum(times.values())
    print(f"\n| part ({args.threads} thread(s)) | seconds |\n|---|---|")
    for label, seconds in times.items():
        print(f"| {label} | {seconds:.1f} |")
    print(f"| total | {total:.1f} |")
    print(f"\n{result.seconds_per_frame * 1000:.0f} ms per frame; {result.flicker.describe()}")
    print(f"wrote {out / 'fast-style-demo.png'}")


if __name__ == "__main__":
    main()
