"""Image-folder speed (issue 8): decoding 2,000 JPEGs at 64 px, and whether loading ever stalls training.

``image-folder`` decodes every image once, in threads, into one uint8 tensor
in memory; a training step then draws its real batch by indexing that tensor
and converting to float. So decoding is paid once (reported as images/s,
against a plain single-threaded Pillow loop doing the same resize and crop),
and "never stalls" is measured as the share of a training step spent drawing
the real batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from _harness import (
    JPEG_COUNT,
    Interleaver,
    gan_recipe,
    is_cuda,
    make_trainer,
    rounds,
    run_interleaved,
    synchronize,
)
from _report import Report

RESOLUTION = 64
#: The share of a step that drawing the real batch may take for loading to count as never stalling.
STALL_TARGET = 0.05


def _pillow_loop(folder: Path, resolution: int) -> np.ndarray:
    """Decode every JPEG of ``folder`` in turn: RGB, shorter side to ``resolution`` (Lanczos), centre crop."""
    from PIL import Image

    files = sorted(folder.glob("*.jpg"))
    out = np.empty((len(files), resolution, resolution, 3), dtype=np.uint8)
    for i, path in enumerate(files):
        with Image.open(path) as image:
            image = image.convert("RGB")
            w, h = image.size
            scale = resolution / min(w, h)
            image = image.resize((max(resolution, round(w * scale)), max(resolution, round(h * scale))),
                                 Image.Resampling.LANCZOS)
            w, h = image.size
            left, top = (w - resolution) // 2, (h - resolution) // 2
            out[i] = np.asarray(image.crop((left, top, left + resolution, top + resolution)))
    return out


def test_image_folder_decode(benchmark: Any, report: Report, jpeg_folder: Path) -> None:
    """Images decoded per second by ``image-folder`` (threads) and by a plain Pillow loop, interleaved."""
    from gankit.parts.data_folder import ImageFolder, ImageFolderParams

    group = f"image folder: {JPEG_COUNT} JPEGs 96px -> {RESOLUTION}px"
    params = ImageFolderParams(path=str(jpeg_folder), resolution=RESOLUTION)
    loaded: dict[str, Any] = {}

    def gankit_decode() -> None:
        loaded["data"] = ImageFolder(params)

    def pillow_decode() -> None:
        _pillow_loop(jpeg_folder, RESOLUTION)

    interleaver = Interleaver({"image-folder": gankit_decode, "pillow loop": pillow_decode}, calls=1,
                              device=torch.device("cpu"))
    timing = run_interleaved(benchmark, interleaver, rounds(3), warmup_calls=1).using("wall")
    assert len(loaded["data"]) == JPEG_COUNT
    for name in ("image-folder", "pillow loop"):
        report.add(group, f"{name}: images/s decoded (wall)", JPEG_COUNT / timing.median(name), kind="rate",
                   unit="img/s")
    report.add(group, "image-folder / pillow loop: decode time (wall)", timing.ratio("image-folder", "pillow loop"),
               kind="ratio", details={"workers": _workers()})


def _workers() -> int:
    from gankit.data.images import default_workers

    return default_workers()


def test_image_folder_training(benchmark: Any, report: Report, device: torch.device, jpeg_folder: Path,
                               tmp_path: Path) -> None:
    """Steps/s of ``folder-dcgan`` at 64 px on the JPEG folder, and the share of a step spent drawing real batches."""
    group = f"image folder training: folder-dcgan {RESOLUTION}px b64"
    recipe = gan_recipe("folder-dcgan", f"data.path={jpeg_folder}", f"data.resolution={RESOLUTION}", device=device)
    trainer = make_trainer(recipe, tmp_path / "run")

    def draw() -> None:
        trainer.game.batches.real()[0]

    # four steps per sample: the recipe's R1 penalty runs every fourth discriminator step
    interleaver = Interleaver({"train step": trainer.train_step, "real batch": draw}, calls=4, device=device)
    timing = run_interleaved(benchmark, interleaver, rounds(4 if not is_cuda(device) else 10), warmup_calls=4)
    synchronize(device)
    step, batch = timing.median("train step"), timing.median("real batch")
    wall = timing.using("wall")
    report.add(group, "steps/s", 1.0 / step, kind="rate", unit="steps/s",
               details={"clock": timing.clock, "wall_steps_per_s": 1.0 / wall.median("train step")})
    report.add(group, "real batch: time", batch, kind="seconds",
               details={"images_per_s": recipe.run.batch_size / batch})
    report.add(group, "real batch / step", batch / step, kind="fraction", target=("<=", STALL_TARGET),
               details={"wall": wall.median("real batch") / wall.median("train step")})
