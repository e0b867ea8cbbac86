"""The images a metric sees: 8-bit pixels, from a generator or from the data, and how they are resized.

Published FIDs feed the feature network *files*: 8-bit images. A generator's
float output must therefore be quantised exactly as a saved PNG would be
(:func:`quantize`) before it meets the same resizing and normalisation as the
real images, or the two sides differ by a systematic rounding error that FID
reads as a difference between the sets.

Each resize mode reproduces one reference implementation's way from 8-bit
pixels to the 299 x 299 input of Inception-v3, normalisation included:

``legacy-tensorflow``
    TensorFlow 1's ``resize_bilinear`` without half-pixel centres (output
    pixel ``j`` samples the input at ``j * in / out``, edges clamped), then
    ``(x - 128) / 128``: the original TTUR code, StyleGAN2-ADA's metrics and
    torch-fidelity (and so torchmetrics).
``legacy-pytorch``
    ``x / 255``, ``torch.nn.functional.interpolate(..., "bilinear",
    align_corners=False)`` (no antialiasing), then ``2 x - 1``: pytorch-fid.
``clean``
    Each channel resized as a 32-bit float image by Pillow's bicubic filter
    (antialiased), clipped to 0..255, then ``(x - 128) / 128``: clean-fid's
    ``clean`` mode (Parmar et al. 2022).
``friendly``
    Pillow's bilinear filter on 32-bit float channels, then ``x / 255`` and
    ``(x - 0.5) / 0.5``: StudioGAN's "architecture-friendly" resizer for its
    ``InceptionV3_tf`` backbone.

Grayscale images are repeated to three channels first, as converting the
file to RGB would.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.errors import GankitError

ResizeMode = Literal["legacy-tensorflow", "legacy-pytorch", "clean", "friendly"]
RESIZE_MODES: tuple[str, ...] = ("legacy-tensorflow", "legacy-pytorch", "clean", "friendly")


def quantize(images: Tensor) -> Tensor:
    """Images in [-1, 1] as 8-bit pixels: ``floor(127.5 x + 128)`` clamped to 0..255 (round half up), uint8.

    This is what writing the image to a PNG does, and what StyleGAN2-ADA's
    metrics do (``(x * 127.5 + 128).clamp(0, 255).to(torch.uint8)``).
    :func:`gankit.data.images.to_float` followed by :func:`quantize` gives
    back the same pixels. A non-finite value is an error.
    """
    if images.is_floating_point() and not bool(torch.isfinite(images).all()):
        raise GankitError("the generator produced NaN or infinite values; it cannot be scored")
    if images.dtype == torch.uint8:
        return images
    return (images.float() * 127.5 + 128.0).clamp_(0.0, 255.0).floor_().to(torch.uint8)


def as_rgb(pixels: Tensor) -> Tensor:
    """``(N, 1 or 3, H, W)`` images as three channels (gray repeated)."""
    if pixels.ndim != 4 or pixels.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, 1 or 3, H, W), got shape {tuple(pixels.shape)}")
    return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels


def _tf1_bilinear(x: Tensor, size: tuple[int, int]) -> Tensor:
    """TensorFlow 1 ``resize_bilinear(align_corners=False, half_pixel_centers=False)`` of float ``(N, C, H, W)``."""
    out_h, out_w = size

    def taps(length: int, out: int) -> tuple[Tensor, Tensor, Tensor]:
        position = torch.arange(out, dtype=torch.float32, device=x.device) * torch.tensor(
            length / out, dtype=torch.float32
        )
        low = position.long()
        high = (low + 1).clamp_max(length - 1)
        return low, high, position - low.float()

    low_x, high_x, dx = taps(x.shape[-1], out_w)
    low_y, high_y, dy = taps(x.shape[-2], out_h)
    left, right = x[..., low_x], x[..., high_x]
    rows = left + (right - left) * dx.view(1, 1, 1, out_w)
    top, bottom = rows[..., low_y, :], rows[..., high_y, :]
    return top + (bottom - top) * dy.view(1, 1, out_h, 1)


def _pil_resize(x: Tensor, size: tuple[int, int], resample: Any) -> Tensor:
    """Every channel of float ``(N, C, H, W)`` resized by Pillow as a 32-bit float image (mode ``F``)."""
    from PIL import Image

    height, width = size
    array = x.detach().cpu().numpy().astype(np.float32, copy=False)

    def one(image: np.ndarray) -> np.ndarray:
        channels = [
            np.asarray(Image.fromarray(np.ascontiguousarray(c), mode="F").resize((width, height), resample=resample))
            for c in image
        ]
        return np.stack(channels)

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="gankit-resize") as pool:
        out = np.stack(list(pool.map(one, array))) if len(array) else np.zeros((0, x.shape[1], height, width))
    return torch.from_numpy(out.astype(np.float32, copy=False)).to(x.device)


def network_input(pixels: Tensor, mode: ResizeMode, size: tuple[int, int] = (299, 299)) -> Tensor:
    """8-bit images ``(N, C, H, W)`` (uint8, or float on the 0..255 scale) as Inception's float32 input.

    Three channels, resized to ``size`` and normalised as ``mode`` says (see
    the module docstring).
    """
    from PIL import Image

    x = as_rgb(pixels).to(torch.float32)
    if mode == "legacy-pytorch":
        x = F.interpolate(x / 255, size=size, mode="bilinear", align_corners=False)
        return 2 * x - 1
    if mode == "legacy-tensorflow":
        return (_tf1_bilinear(x, size) - 128) / 128
    if mode == "clean":
        return (_pil_resize(x, size, Image.Resampling.BICUBIC).clamp(0, 255) - 128) / 128
    if mode == "friendly":
        return (_pil_resize(x, size, Image.Resampling.BILINEAR) / 255 - 0.5) / 0.5
    raise ValueError(f"unknown resize mode {mode!r}: use one of {', '.join(RESIZE_MODES)}")


def generated_pixels(
    generator: Any, n: int, *, seed: int, device: Any = None, batch: int = 250, labels: Tensor | None = None
) -> Iterator[Tensor]:
    """``n`` samples of ``generator`` from the fixed latent batch of ``seed`` (and ``labels``), quantised, ``batch``
    at a time."""
    from gankit.metrics.sampling import iterate_samples

    for images in iterate_samples(generator, n, seed=seed, device=device, chunk=batch, labels=labels):
        yield quantize(images)


def real_pixels(data: Any, n: int | None, *, seed: int, batch: int = 250, default: int = 50_000) -> Iterator[Tensor]:
    """Real images of ``data`` as 8-bit pixels, ``batch`` at a time: every stored one, a subset, or fresh draws.

    A source that stores images (``pixels_at`` as ``image-folder`` and
    ``prepared`` have, or ``images()`` as ``digits``) gives all of them in
    order when ``n`` is None or at least their number, else ``n`` of them
    chosen at random from ``seed`` (read in stored order). Any other source is
    sampled: ``n`` (or ``default``) draws from a generator seeded with
    ``seed + 1``. Float images are quantised.
    """
    pixels_at = getattr(data, "pixels_at", None)
    if callable(pixels_at):
        total = len(data)
        chosen = _choose(total, n, seed)
        for start in range(0, len(chosen), batch):
            yield pixels_at(chosen[start : start + batch])
        return
    images_of = getattr(data, "images", None)
    if callable(images_of):
        stored = images_of()
        chosen = _choose(stored.shape[0], n, seed)
        for start in range(0, len(chosen), batch):
            yield quantize(stored[chosen[start : start + batch]])
        return
    generator = torch.Generator().manual_seed(seed + 1)
    count = n if n is not None else default
    for start in range(0, count, batch):
        yield quantize(data.sample(min(batch, count - start), generator))


def count_real(data: Any, n: int | None, default: int = 50_000) -> int:
    """How many images :func:`real_pixels` yields for ``data`` and ``n``."""
    if callable(getattr(data, "pixels_at", None)):
        total = len(data)
    elif callable(getattr(data, "images", None)):
        total = int(data.images().shape[0])
    else:
        return n if n is not None else default
    return total if n is None else min(n, total)


def _choose(total: int, n: int | None, seed: int) -> np.ndarray:
    """All of ``range(total)``, or ``n`` of them drawn without replacement from ``seed``, sorted."""
    if n is None or n >= total:
        return np.arange(total)
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(order[:n])
