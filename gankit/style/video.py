"""Stylizing a sequence of frames (a folder of images or a video file) steadily, with a flicker measure.

Frames come from a folder of images, in the order of their names, or from a
video file (``.mp4``, ``.mov``, ``.mkv``, ``.avi``, ``.webm``, ``.m4v``) when
the ``video`` extra is installed (``pip install 'gankit[video]'``: imageio
and imageio-ffmpeg). Every frame of a folder is checked before any work, and
an unreadable one is an error naming the file.

Two ways to stylize, both steady:

- a trained stylizer (``model``): one forward pass per frame; a network
  trained with ``run.temporal_weight > 0`` changes its output little when
  the scene moves a little;
- the optimisation loop (``style``): each frame after the first starts from
  the previous stylized frame (Ruder, Dosovitskiy and Brox, "Artistic Style
  Transfer for Videos", 2016, without optical flow), so that the
  optimisation settles near the last result instead of somewhere new.

**Flicker** is the mean absolute change of a pixel (RGB in [0, 1]) from one
frame to the next, for the stylized frames (``output``) and for the input
frames at the same size (``content``). Their ratio says how much the
stylization adds: about 1 is as steady as the input, well above 1 flickers.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.progress import Progress
from gankit.style import images

#: File suffixes read and written as video (through imageio-ffmpeg).
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
#: Frames per second of a written video when the input does not say.
DEFAULT_FPS = 25.0
_EXTRA = "pip install 'gankit[video]' (imageio and imageio-ffmpeg)"


def is_video(path: str | Path) -> bool:
    """Whether ``path`` names a video file by its suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _imageio() -> Any:
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise GankitError(
            f"video files need the video extra: {_EXTRA}. Or turn the video into frames first"
            " (ffmpeg -i clip.mp4 frames/%05d.png) and give --frames-in frames/"
        ) from None
    return imageio


# --------------------------------------------------------------------------- flicker


@dataclass
class Flicker:
    """Mean absolute change of a pixel between consecutive frames: stylized (``output``) and input (``content``)."""

    output: float
    content: float
    pairs: int

    @property
    def ratio(self) -> float:
        """``output / content``: about 1 is as steady as the input; ``nan`` for a still input."""
        return self.output / self.content if self.content > 0 else float("nan")

    def describe(self) -> str:
        """One line for people."""
        if self.pairs == 0:
            return "flicker: one frame, nothing to compare"
        return (
            f"flicker: stylized frames change by {self.output:.4f} per pixel from frame to frame, the input by"
            f" {self.content:.4f} (ratio {self.ratio:.2f}; about 1 is as steady as the input)"
        )


class FlickerMeter:
    """Accumulates :class:`Flicker` over a stream of (stylized, input) frame pairs."""

    def __init__(self) -> None:
        self._previous: tuple[Tensor, Tensor] | None = None
        self._output = 0.0
        self._content = 0.0
        self.pairs = 0

    def add(self, output: Tensor, content: Tensor) -> None:
        """The next stylized frame and its input (any size: the input is resized to the output's)."""
        output = output.detach().float().cpu()
        content = images.resize(content.detach().float().cpu(), tuple(output.shape[-2:]))  # type: ignore[arg-type]
        if self._previous is not None:
            last_output, last_content = self._previous
            if last_output.shape == output.shape:
                self._output += float((output - last_output).abs().mean())
                self._content += float((content - last_content).abs().mean())
                self.pairs += 1
        self._previous = (output, content)

    def result(self) -> Flicker:
        """The mean changes so far."""
        n = max(self.pairs, 1)
        return Flicker(self._output / n, self._content / n, self.pairs)


def flicker(outputs: Sequence[Tensor], contents: Sequence[Tensor]) -> Flicker:
    """The :class:`Flicker` of stylized ``outputs`` against their input ``contents`` (tensors in [0, 1])."""
    if len(outputs) != len(contents):
        raise ValueError(f"{len(outputs)} stylized frames but {len(contents)} input frames")
    meter = FlickerMeter()
    for output, content in zip(outputs, contents):
        meter.add(output, content)
    return meter.result()


# --------------------------------------------------------------------------- reading


@dataclass
class FrameSource:
    """Frames to stylize: their names (for output files), how many, the frame rate, and the frames themselves."""

    path: Path
    names: list[str]
    fps: float | None
    _files: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[Tensor]:
        if self._files:
            for file in self._files:
                yield images.as_tensor(file, what="frame")
            return
        reader = _imageio().get_reader(str(self.path), format="FFMPEG")
        try:
            for array in reader:
                yield torch.from_numpy(array[..., :3].copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        finally:
            reader.close()


def list_frames(folder: str | Path) -> list[Path]:
    """The image files in ``folder`` in name order (hidden files skipped); an error if there are none."""
    from gankit.data.images import accepted_extensions, is_image_name

    folder = Path(folder).expanduser()
    if not folder.exists():
        raise GankitError(f"--frames-in {folder}: no such folder or video file")
    if not folder.is_dir():
        raise GankitError(
            f"--frames-in {folder}: not a folder of frames nor a video file ({', '.join(VIDEO_SUFFIXES)})"
        )
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_image_name(p.name))
    if not files:
        raise GankitError(f"--frames-in {folder}: no frames in the folder (image files: {accepted_extensions()})")
    return files


def check_frames(files: Sequence[Path]) -> None:
    """Open every frame before any work; the first that cannot be read is an error naming it."""
    from PIL import Image, UnidentifiedImageError

    for file in files:
        try:
            with Image.open(file) as image:
                image.verify()
        except UnidentifiedImageError:
            raise GankitError(f"frame {file}: not an image file that Pillow can read (PNG, JPEG, WebP, ...)") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            raise GankitError(f"frame {file}: cannot read the image: {error}") from None


def open_frames(path: str | Path) -> FrameSource:
    """A folder of frames (every one checked) or a video file, ready to iterate."""
    path = Path(path).expanduser()
    if is_video(path):
        if not path.is_file():
            raise GankitError(f"--frames-in {path}: no such video file")
        imageio = _imageio()
        try:
            reader = imageio.get_reader(str(path), format="FFMPEG")
            fps = float(reader.get_meta_data().get("fps") or DEFAULT_FPS)
            count = reader.count_frames()
            reader.close()
        except Exception as error:
            raise GankitError(f"--frames-in {path}: cannot read the video ({type(error).__name__}: {error})") from None
        if count == 0:
            raise GankitError(f"--frames-in {path}: the video has no frames")
        return FrameSource(path, [f"frame-{i:05d}" for i in range(count)], fps)
    files = list_frames(path)
    check_frames(files)
    return FrameSource(path, [file.stem for file in files], None, files)


# --------------------------------------------------------------------------- writing


class _FrameSink:
    """Writes stylized frames into a folder (PNG, one per input frame) or a video file, atomically."""

    def __init__(self, output: Path, fps: float | None) -> None:
        self.output = output
        self.paths: list[Path] = []
        self._writer: Any = None
        self._partial: Path | None = None
        if is_video(output):
            imageio = _imageio()
            output.parent.mkdir(parents=True, exist_ok=True)
            self._partial = output.with_name(f".{output.stem}.partial{output.suffix}")
            self._writer = imageio.get_writer(str(self._partial), format="FFMPEG", fps=fps or DEFAULT_FPS,
                                              macro_block_size=1)
        else:
            if output.exists() and not output.is_dir():
                raise GankitError(f"-o {output}: is a file; stylized frames go into a folder (or a video file)")
            output.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, frame: Tensor) -> None:
        if self._writer is not None:
            array = frame[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            self._writer.append_data(array)
        else:
            self.paths.append(images.save_image(frame, self.output / f"{name}.png"))

    def close(self, *, keep: bool) -> None:
        if self._writer is None:
            return
        self._writer.close()
        assert self._partial is not None
        if keep:
            os.replace(self._partial, self.output)
            self.paths = [self.output]
        else:
            with contextlib.suppress(OSError):
                self._partial.unlink()


def check_output(output: str | Path) -> Path:
    """Check, before any work, that stylized frames can be written to ``output`` (a folder or a video file)."""
    from PIL import Image

    path = Path(output).expanduser()
    if is_video(path):
        _imageio()
        if path.is_dir():
            raise GankitError(f"-o {path}: is a folder; name a video file like out.mp4, or a folder for frames")
    elif path.exists() and not path.is_dir():
        raise GankitError(f"-o {path}: is a file; stylized frames go into a folder (or a video file)")
    elif path.suffix.lower() in Image.registered_extensions():
        raise GankitError(
            f"-o {path}: names an image file; stylized frames go into a folder (e.g. -o {path.with_suffix('')}/)"
            f" or a video file ({', '.join(VIDEO_SUFFIXES)})"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise GankitError(f"-o {path}: {parent} is a file, not a folder")
            break
    return path


# --------------------------------------------------------------------------- stylizing


@dataclass
class FramesResult:
    """What :func:`stylize_frames` did: where the frames went, how steady they are, how long it took."""

    output: Path
    paths: list[Path]
    frames: int
    flicker: Flicker
    seconds: float
    seconds_per_frame: float


def stylize_frames(
    frames_in: str | Path,
    output: str | Path,
    *,
    model: str | Path | None = None,
    style: images.ImageInput | None = None,
    recipe: Any = None,
    overrides: Sequence[str] = (),
    run: Mapping[str, Any] | None = None,
    size: int | None = None,
    temporal: bool = True,
    device: str = "auto",
    quiet: bool = False,
    stream: TextIO | None = None,
) -> FramesResult:
    """Stylize every frame of ``frames_in`` (a folder or a video) into ``output`` (a folder or a video file).

    With ``model`` (a fast-style run folder or stylizer file) each frame is
    one forward pass, at ``size`` (longest side) when given. With ``style``
    the optimisation loop runs on each frame with ``recipe``, ``overrides``
    and ``run`` values as in :func:`gankit.style.stylize`; with ``temporal``
    every frame after the first starts from the previous result. Returns a
    :class:`FramesResult` with the :class:`Flicker` of the result.
    """
    if (model is None) == (style is None):
        raise GankitError("stylize frames with a trained model (--model RUN) or a style image (--style IMAGE)")
    started = time.perf_counter()
    source = open_frames(frames_in)
    out_path = check_output(output)
    stylizer = None
    if model is not None:
        from gankit.style.fast import load_stylizer

        stylizer = load_stylizer(model, device=device)
        describe = f"with {stylizer.source}"
    else:
        assert style is not None
        loop_state = _LoopState(style, recipe, overrides, dict(run or {}), size, device)
        describe = f"in the style of {style if isinstance(style, str | Path) else 'the style image'}"
    meter = FlickerMeter()
    sink = _FrameSink(out_path, source.fps)
    working = 0.0
    finished = False
    try:
        with Progress(len(source), description="frames", quiet=quiet, stream=stream) as progress:
            progress.log(f"stylizing {len(source)} frames of {source.path} {describe}")
            previous: Tensor | None = None
            for index, (name, frame) in enumerate(zip(source.names, source)):
                tick = time.perf_counter()
                if stylizer is not None:
                    styled = stylizer(frame, size=size, what=f"frame {name}")
                else:
                    styled = loop_state.stylize(frame, previous if temporal else None)
                working += time.perf_counter() - tick
                meter.add(styled, frame)
                sink.write(name, styled)
                previous = styled
                progress.update(index + 1)
        finished = True
    finally:
        sink.close(keep=finished)
    count = len(source)
    return FramesResult(out_path, sink.paths, count, meter.result(), time.perf_counter() - started,
                        working / max(count, 1))


class _LoopState:
    """The optimisation loop for frames: one recipe and one encoder for every frame."""

    def __init__(self, style: images.ImageInput, recipe: Any, overrides: Sequence[str], run: dict[str, Any],
                 size: int | None, device: str) -> None:
        from gankit.style.loop import _build_losses, resolve_recipe
        from gankit.style.losses import required_layers

        if size is not None:
            run["size"] = size
        run.setdefault("device", device)
        self.recipe = resolve_recipe(recipe, overrides, run)
        self.style = images.as_tensor(style, what="style image")
        layers = required_layers(_build_losses(self.recipe))
        self.encoder = self.recipe["encoder"].build(layers=layers) if layers else None

    def stylize(self, frame: Tensor, previous: Tensor | None) -> Tensor:
        from gankit.style.loop import stylize

        extra: dict[str, Any] = {"multi_scale": 1} if previous is not None else {}
        result = stylize(frame, self.style, self.recipe, encoder=self.encoder, start=previous, quiet=True, **extra)
        return result.image
