"""Photos to try style transfer with, offline: scikit-learn's two sample photos and crops of them.

scikit-learn ships two photos (640x427 px): ``china.jpg``, a pagoda among
trees, and ``flower.jpg``, an orange dahlia on a dark green background.
:func:`write_sample_photos` writes them to a folder; :func:`write_photo_folder`
writes a folder of square crops of them at several zooms, a small training
set for a fast stylizer::

    python -c "from gankit.style.sample_photos import write_photo_folder as w; w('photos')"
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gankit.files import write_bytes_atomic

if TYPE_CHECKING:
    from PIL import Image as PILImage


def sample_photos() -> dict[str, PILImage.Image]:
    """scikit-learn's sample photos by file name: ``{"china.jpg": ..., "flower.jpg": ...}``."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    return {Path(name).name: Image.fromarray(array) for name, array in zip(bunch.filenames, bunch.images)}


def _save(image: PILImage.Image, path: Path) -> Path:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if path.suffix.lower() == ".png" else "JPEG", quality=95)
    return write_bytes_atomic(path, buffer.getvalue())


def write_sample_photos(folder: str | Path) -> list[Path]:
    """Write ``china.jpg`` and ``flower.jpg`` into ``folder`` (created if needed); returns their paths."""
    folder = Path(folder)
    return [_save(image, folder / name) for name, image in sorted(sample_photos().items())]


def write_photo_folder(
    folder: str | Path,
    *,
    count: int = 24,
    size: int = 160,
    seed: int = 0,
    sources: tuple[str, ...] = ("china.jpg", "flower.jpg"),
) -> list[Path]:
    """Write ``count`` square crops (``size`` px) of the sample photos into ``folder``; returns their paths.

    Crops are taken at seeded random places and zooms (a side of 35% to 100%
    of the photo's height), so that a network trained on them sees the
    photos' shapes at several scales. ``sources`` names the photos to crop, in turn.
    """
    import random

    photos = sample_photos()
    unknown = [name for name in sources if name not in photos]
    if unknown:
        raise ValueError(f"unknown sample photo(s) {unknown}; known: {sorted(photos)}")
    rng = random.Random(seed)
    folder = Path(folder)
    out: list[Path] = []
    for i in range(count):
        photo = photos[sources[i % len(sources)]]
        side = int(photo.height * rng.uniform(0.35, 1.0))
        left = rng.randint(0, photo.width - side)
        top = rng.randint(0, photo.height - side)
        crop = photo.crop((left, top, left + side, top + side)).resize((size, size), resample=3)
        out.append(_save(crop, folder / f"crop-{i:03d}.png"))
    return out
