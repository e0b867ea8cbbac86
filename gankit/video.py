"""Writing videos: animated GIFs with Pillow, MP4 with imageio-ffmpeg (the ``video`` extra).

Frames are ``uint8`` arrays ``(H, W, C)`` with one (gray) or three (RGB)
channels, all of one size (:func:`same_size` makes them so). The file is
written atomically: a reader sees the old file or the whole new one.

>>> write_video(frames, "walk.gif", fps=24)            # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from gankit.errors import GankitError
from gankit.files import write_bytes_atomic

#: File extensions :func:`write_video` writes.
FORMATS = (".gif", ".mp4")


def check_video_path(path: str | Path) -> Path:
    """``path`` when gankit can write a video there (by its extension), else a :class:`GankitError` saying why.

    Checked before any work starts: an ``.mp4`` needs imageio-ffmpeg.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise GankitError(f"{path}: gankit writes videos as {' or '.join(FORMATS)}; name the file walk.gif or walk.mp4")
    if suffix == ".mp4":
        _ffmpeg()
    return path


def _ffmpeg() -> object:
    try:
        import imageio_ffmpeg
    except ImportError as error:
        raise GankitError(
            "an .mp4 video needs imageio-ffmpeg: pip install 'gankit[video]' (or write a .gif)"
        ) from error
    return imageio_ffmpeg


def frame_duration_ms(fps: float) -> int:
    """How long a GIF shows each frame, in milliseconds (GIF counts in hundredths of a second)."""
    return max(20, round(100.0 / fps) * 10)


def write_video(frames: Iterable[np.ndarray], path: str | Path, *, fps: float = 24.0, loop: bool = True) -> Path:
    """Write ``frames`` as an animated GIF or an MP4 (H.264) video, by ``path``'s extension; returns the path.

    A GIF shows each frame for a whole number of hundredths of a second (the
    format's unit), so ``fps`` is rounded to one of 50, 33, 25, 20, 16.7 ...
    frames per second; it ``loop``s forever unless told not to. Pillow stores
    two identical frames in a row as one frame shown twice as long. An MP4
    has exactly ``fps``; odd widths and heights are padded by one black pixel
    (H.264 needs even sizes).
    """
    if fps <= 0:
        raise GankitError(f"fps = {fps}: must be positive")
    path = check_video_path(path)
    pictures = [_rgb(frame) for frame in frames]
    if not pictures:
        raise GankitError(f"{path}: a video needs at least one frame")
    shapes = {picture.shape for picture in pictures}
    if len(shapes) > 1:
        raise GankitError(f"{path}: frames of different sizes {sorted(shapes)}; resize them first (same_size)")
    try:
        if path.suffix.lower() == ".gif":
            return _write_gif(pictures, path, fps, loop)
        return _write_mp4(pictures, path, fps)
    except OSError as error:
        raise GankitError(f"{path}: cannot write the video ({error.strerror or error})") from error


def _rgb(frame: np.ndarray) -> np.ndarray:
    array = np.asarray(frame)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise GankitError(f"a video frame must be a uint8 array (H, W, 1 or 3), got {array.dtype} {array.shape}")
    return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array


def _write_gif(pictures: Sequence[np.ndarray], path: Path, fps: float, loop: bool) -> Path:
    from PIL import Image

    images = [Image.fromarray(picture) for picture in pictures]
    buffer = io.BytesIO()
    options: dict[str, object] = {"duration": frame_duration_ms(fps), "disposal": 1}
    if loop:
        options["loop"] = 0
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], **options)
    return write_bytes_atomic(path, buffer.getvalue())


def _write_mp4(pictures: Sequence[np.ndarray], path: Path, fps: float) -> Path:
    imageio_ffmpeg = _ffmpeg()
    height, width = pictures[0].shape[:2]
    pad_h, pad_w = height % 2, width % 2
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    mask = os.umask(0)
    os.umask(mask)
    os.fchmod(fd, 0o666 & ~mask)
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(  # type: ignore[attr-defined]
            temporary, (width + pad_w, height + pad_h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
            macro_block_size=1, quality=8, ffmpeg_log_level="error",
        )
        writer.send(None)
        for picture in pictures:
            if pad_h or pad_w:
                picture = np.pad(picture, ((0, pad_h), (0, pad_w), (0, 0)))
            writer.send(np.ascontiguousarray(picture))
        writer.close()
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def same_size(pictures: Sequence[np.ndarray], size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Pictures resized (nearest neighbour, so pixels stay crisp) to ``size`` ``(H, W)``, default the largest's.

    Gray and colour pictures are mixed by turning gray ones into colour.
    """
    from PIL import Image

    if not pictures:
        return []
    colour = any(p.shape[-1] == 3 for p in pictures)
    height, width = size or max((p.shape[0], p.shape[1]) for p in pictures)
    out = []
    for picture in pictures:
        if colour and picture.shape[-1] == 1:
            picture = np.repeat(picture, 3, axis=-1)
        if picture.shape[:2] != (height, width):
            image = Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture)
            resized = np.asarray(image.resize((width, height), Image.Resampling.NEAREST))
            picture = resized[..., None] if resized.ndim == 2 else resized
        out.append(picture)
    return out


def with_caption(picture: np.ndarray, text: str, *, height: int = 14) -> np.ndarray:
    """``picture`` with a dark band above it holding ``text`` (Pillow's built-in font)."""
    from PIL import Image, ImageDraw

    channels = picture.shape[-1]
    band = Image.new("L" if channels == 1 else "RGB", (picture.shape[1], height), 0)
    ImageDraw.Draw(band).text((2, max(0, (height - 11) // 2)), text, fill=255 if channels == 1 else (255, 255, 255))
    top = np.asarray(band)
    if top.ndim == 2:
        top = top[..., None]
    return np.concatenate([top, picture], axis=0)


def read_picture(path: str | Path) -> np.ndarray:
    """A PNG (or any image Pillow reads) as a ``uint8`` array ``(H, W, 1 or 3)``."""
    from PIL import Image

    with Image.open(path) as image:
        mode = "L" if image.mode in ("L", "1", "I;16", "I") else "RGB"
        array = np.asarray(image.convert(mode))
    return array[..., None] if array.ndim == 2 else array


def timelapse(pictures: Sequence[tuple[int, Path]], path: str | Path, *, fps: float = 4.0) -> Path:
    """A video of a run's sample grids over time (``(step, png)`` pairs, oldest first), each captioned with its step.

    Grids of different sizes (a progressive run grows) are shown at the size
    of the largest, so the growth is visible.
    """
    if not pictures:
        raise GankitError(f"{path}: no sample grids to make a video of")
    frames = same_size([read_picture(png) for _, png in pictures])
    captioned = [with_caption(frame, f"step {step}") for (step, _), frame in zip(pictures, frames, strict=True)]
    return write_video(captioned, path, fps=fps)
