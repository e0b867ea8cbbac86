"""Filtered up- and downsampling (upsample, FIR-filter, downsample), as StyleGAN2 and R3GAN resample.

A finite impulse response filter ``taps`` (a 1-D list, applied separably
along both axes, normalised to sum 1) low-passes the image so that changing
its resolution neither aliases nor blurs more than it must. StyleGAN2 and
R3GAN use the binomial ``[1, 3, 3, 1]`` (bilinear); ADA's geometric
augmentations use a wavelet filter. Everything is written with ordinary
(differentiable, twice differentiable) convolutions, so gradient penalties
and the path-length regulariser can differentiate through it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

#: The binomial filter of StyleGAN2's and R3GAN's resampling layers.
BINOMIAL = (1.0, 3.0, 3.0, 1.0)


def fir_filter(taps: Sequence[float], *, device: torch.device | None = None) -> Tensor:
    """``taps`` as a 1-D float32 tensor normalised to sum 1."""
    f = torch.as_tensor(list(taps), dtype=torch.float32, device=device)
    if f.dim() != 1 or f.numel() == 0:
        raise ValueError("a FIR filter is a non-empty list of taps")
    return f / f.sum()


def upfirdn2d(
    x: Tensor,
    f: Tensor,
    *,
    up: int = 1,
    down: int = 1,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
    flip: bool = True,
) -> Tensor:
    """Upsample ``x`` by inserting zeros, pad, filter with ``f`` along both axes, keep every ``down``-th pixel.

    ``x``: ``(N, C, H, W)``; ``f``: 1-D taps (see :func:`fir_filter`);
    ``padding``: ``(left, right, top, bottom)`` after upsampling (negative values
    crop); ``gain`` multiplies the result (``up ** 2`` keeps the mean level when
    upsampling). ``flip`` makes it a true convolution (the filter is flipped);
    without it, a correlation. Pixels outside the image are zero.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    left, right, top, bottom = padding
    x = F.pad(x, (max(left, 0), max(right, 0), max(top, 0), max(bottom, 0)))
    x = x[:, :, max(-top, 0) : x.shape[2] - max(-bottom, 0), max(-left, 0) : x.shape[3] - max(-right, 0)]
    taps = (f.flip(0) if flip else f).to(dtype=x.dtype, device=x.device) * (gain**0.5)
    x = _separable(x, taps)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


#: From this many channels on, filtering is a depthwise convolution; below, a sum of shifted copies.
_DEPTHWISE_CHANNELS = 16


def _separable(x: Tensor, taps: Tensor) -> Tensor:
    """``x`` correlated with ``taps`` along the width, then along the height (no padding)."""
    c, k = x.shape[1], taps.numel()
    if c >= _DEPTHWISE_CHANNELS:
        if x.device.type == "cpu":  # oneDNN's depthwise convolutions are several times faster channels-last
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.conv2d(x, taps.view(1, 1, 1, k).expand(c, 1, 1, k).contiguous(), groups=c)
        return F.conv2d(x, taps.view(1, 1, k, 1).expand(c, 1, k, 1).contiguous(), groups=c)
    width, height = x.shape[3] - k + 1, x.shape[2] - k + 1
    y = x[..., 0:width] * taps[0]
    for j in range(1, k):
        y = y + x[..., j : j + width] * taps[j]
    z = y[..., 0:height, :] * taps[0]
    for j in range(1, k):
        z = z + y[..., j : j + height, :] * taps[j]
    return z


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """``x`` at twice the resolution, ``(N, C, 2H, 2W)``, interpolated through ``f``."""
    k = f.numel()
    return upfirdn2d(x, f, up=2, padding=((k + 1) // 2, (k - 2) // 2, (k + 1) // 2, (k - 2) // 2), gain=4.0)


def downsample2d(x: Tensor, f: Tensor) -> Tensor:
    """``x`` at half the resolution, ``(N, C, H/2, W/2)``, low-passed through ``f`` first."""
    k = f.numel()
    return upfirdn2d(x, f, down=2, padding=((k - 1) // 2, (k - 2) // 2, (k - 1) // 2, (k - 2) // 2))


def conv2d_up(x: Tensor, weight: Tensor, f: Tensor) -> Tensor:
    """A ``k x k`` convolution that doubles the resolution: a strided transposed convolution, then ``f``.

    Equal (up to borders) to upsampling with ``f`` and then convolving, at a
    quarter of the cost.
    """
    k = weight.shape[-1]
    x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
    t = f.numel()
    pad0 = (t + 1) // 2 + k // 2 - (k - 1)
    pad1 = (t - 2) // 2 + k // 2 - (k - 2)
    return upfirdn2d(x, f, padding=(pad0, pad1, pad0, pad1), gain=4.0)


def conv2d_down(x: Tensor, weight: Tensor, f: Tensor) -> Tensor:
    """A convolution that halves the resolution: ``f`` first, then the convolution with stride 2.

    A ``1 x 1`` kernel downsamples first and convolves at the low resolution.
    """
    k = weight.shape[-1]
    if k == 1:
        return F.conv2d(downsample2d(x, f), weight)
    t = f.numel()
    pad0 = k // 2 + (t - 1) // 2
    pad1 = k // 2 + (t - 2) // 2
    x = upfirdn2d(x, f, padding=(pad0, pad1, pad0, pad1))
    return F.conv2d(x, weight, stride=2)
