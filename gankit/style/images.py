"""Reading, resizing, recolouring and writing the images of style transfer, with clear errors.

Images inside the style loop are float tensors of shape ``(1, 3, H, W)`` with
RGB values in [0, 1].
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.errors import GankitError
from gankit.files import write_bytes_atomic

if TYPE_CHECKING:
    from PIL import Image as PILImage

#: What the style functions accept as an image: a path, a PIL image, or a tensor (3, H, W) / (1, 3, H, W) in [0, 1].
ImageInput = Union[str, Path, "PILImage.Image", Tensor]

# Rows map RGB to YIQ: luminance Y, chrominance I and Q.
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)


def read_image(path: str | Path, *, what: str = "image") -> PILImage.Image:
    """Read an image file as RGB (EXIF orientation applied, transparency over white).

    A missing file, a folder, a file that is not an image or one too large to
    decode safely is a :class:`GankitError` that names ``what`` and the path.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    file = Path(path).expanduser()
    if not file.exists():
        raise GankitError(f"{what} {path}: no such file")
    if file.is_dir():
        raise GankitError(f"{what} {path}: is a folder, not an image file")
    try:
        with Image.open(file) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except Image.DecompressionBombError as error:
        raise GankitError(f"{what} {path}: too large to decode safely ({error})") from None
    except UnidentifiedImageError:
        raise GankitError(f"{what} {path}: not an image file that Pillow can read (PNG, JPEG, WebP, ...)") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise GankitError(f"{what} {path}: cannot read the image: {error}") from None
    return _flatten_to_rgb(image)


def _flatten_to_rgb(image: PILImage.Image) -> PILImage.Image:
    from PIL import Image

    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def pil_to_tensor(image: PILImage.Image) -> Tensor:
    """A PIL image as a float tensor ``(1, 3, H, W)`` in [0, 1]."""
    import numpy as np

    array = np.asarray(_flatten_to_rgb(image), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_pil(image: Tensor) -> PILImage.Image:
    """A tensor ``(1, 3, H, W)`` or ``(3, H, W)`` in [0, 1] as an RGB PIL image."""
    from PIL import Image

    pixels = image.detach().float().reshape(-1, *image.shape[-2:])
    array = pixels.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, mode="RGB")


def as_tensor(image: ImageInput, *, what: str = "image") -> Tensor:
    """Any :data:`ImageInput` as a float tensor ``(1, 3, H, W)`` in [0, 1] on the CPU."""
    if isinstance(image, Tensor):
        if image.dim() == 3:
            image = image.unsqueeze(0)
        if image.dim() != 4 or image.shape[:2] != (1, 3):
            raise GankitError(
                f"{what}: a tensor image must have shape (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}"
            )
        image = image.detach().float().cpu()
        if image.numel() and (image.min() < 0 or image.max() > 1):
            raise GankitError(f"{what}: tensor values must be in [0, 1]")
        return image
    if isinstance(image, str | Path):
        return pil_to_tensor(read_image(image, what=what))
    return pil_to_tensor(image)


def fit(height: int, width: int, longest: int) -> tuple[int, int]:
    """``(height, width)`` scaled so that the longer side is ``longest``, keeping the aspect ratio."""
    scale = longest / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """``image`` resized to ``(height, width)`` (bicubic, antialiased when shrinking), kept in [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    resized = F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True)
    return resized.clamp_(0.0, 1.0)


def preserve_colors(result: Tensor, content: Tensor) -> Tensor:
    """``result``'s luminance with ``content``'s chrominance (YIQ), so the content's colours are kept."""
    content = resize(content.to(result.device, result.dtype), tuple(result.shape[-2:]))  # type: ignore[arg-type]
    to_yiq = _RGB_TO_YIQ.to(result.device, result.dtype)
    to_rgb = torch.linalg.inv(to_yiq)
    luma = torch.einsum("ij,njhw->nihw", to_yiq[:1], result)
    chroma = torch.einsum("ij,njhw->nihw", to_yiq[1:], content)
    return torch.einsum("ij,njhw->nihw", to_rgb, torch.cat([luma, chroma], dim=1)).clamp(0.0, 1.0)


def check_output(path: str | Path) -> Path:
    """Check, before any work, that an image can be written to ``path``; returns it.

    The suffix must name a format Pillow writes, and the parent must be a
    folder or not exist yet (it is created on saving).
    """
    from gankit.images import check_picture_output

    return check_picture_output(path)


def save_image(image: Tensor, path: str | Path) -> Path:
    """Write a tensor image (``(1, 3, H, W)`` or ``(3, H, W)`` in [0, 1]) atomically; the suffix picks the format."""
    from PIL import Image

    file = check_output(path)
    fmt = Image.registered_extensions()[file.suffix.lower()]
    buffer = io.BytesIO()
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    tensor_to_pil(image).save(buffer, format=fmt, **options)
    try:
        return write_bytes_atomic(file, buffer.getvalue())
    except OSError as error:
        raise GankitError(f"{file}: cannot write the image ({error.strerror or error})") from error
