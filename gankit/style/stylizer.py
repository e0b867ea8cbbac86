"""The feed-forward stylizer: an image transformation network applied in one pass.

After Johnson, Alahi and Fei-Fei, "Perceptual Losses for Real-Time Style
Transfer and Super-Resolution" (ECCV 2016), with instance normalisation in
place of batch normalisation (Ulyanov, Vedaldi and Lempitsky, "Improved
Texture Networks", CVPR 2017) and nearest-neighbour upsampling followed by a
convolution in place of transposed convolutions (no checkerboard artefacts):

- a ``9x9`` convolution to ``channels``, then two stride-2 ``3x3`` convolutions
  to ``2 * channels`` and ``4 * channels``;
- ``residual_blocks`` residual blocks of two ``3x3`` convolutions at
  ``4 * channels``;
- two upsampling stages back to ``channels``, and a ``9x9`` convolution to RGB;
- every convolution but the last is followed by instance normalisation
  (with learnt scale and shift) and a ReLU; padding reflects the image.

It takes RGB images in [0, 1] of any size, ``(N, 3, H, W)``, and returns
images of the same size in [0, 1] (a sigmoid of the last convolution).
Sizes that are not multiples of 4 are padded by reflection and cropped back.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.ReflectionPad2d(kernel_size // 2),
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride),
    )


def _conv_norm_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        _conv(in_channels, out_channels, kernel_size, stride),
        nn.InstanceNorm2d(out_channels, affine=True),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """``x + IN(conv(ReLU(IN(conv(x)))))`` at a constant number of channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_norm_relu(channels, channels, 3),
            _conv(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling by 2, then a convolution, instance normalisation and a ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = _conv_norm_relu(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class TransformerNet(nn.Module):
    """Johnson et al.'s image transformation network with instance normalisation; see :mod:`gankit.style.stylizer`."""

    def __init__(self, channels: int = 32, residual_blocks: int = 5) -> None:
        super().__init__()
        self.channels = channels
        self.residual_blocks = residual_blocks
        c = channels
        self.down = nn.Sequential(
            _conv_norm_relu(3, c, 9),
            _conv_norm_relu(c, 2 * c, 3, stride=2),
            _conv_norm_relu(2 * c, 4 * c, 3, stride=2),
        )
        self.residual = nn.Sequential(*(ResidualBlock(4 * c) for _ in range(residual_blocks)))
        self.up = nn.Sequential(Upsample(4 * c, 2 * c), Upsample(2 * c, c))
        self.head = _conv(c, 3, 9)

    def forward(self, images: Tensor) -> Tensor:
        """Stylized ``images`` (RGB in [0, 1], any size), same shape, in [0, 1]."""
        height, width = images.shape[-2:]
        pad_h, pad_w = (-height) % 4, (-width) % 4
        x = images
        if pad_h or pad_w:
            mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        y = self.head(self.up(self.residual(self.down(x))))
        return y[..., :height, :width].sigmoid()

    def extra_repr(self) -> str:
        return f"channels={self.channels}, residual_blocks={self.residual_blocks}"
