"""ADA's differentiable augmentation pipeline (Karras et al. 2020, "Training GANs with limited data").

Each augmentation is applied to each image independently with probability
``p``; the parameters and their ranges are the paper's (appendix B, and the
reference implementation's defaults). Because every image the discriminator
sees (real and generated) goes through the same pipeline with ``p < 1``, the
discriminator learns the *augmented* distributions and the generator is not
pushed to produce augmented images: the augmentations do not "leak". Every
operation is differentiable with respect to the images, so the generator's
gradients flow back through it.

Groups:

- ``blit`` (pixel blitting): horizontal flip, rotation by a multiple of 90
  degrees (square images only), integer translation up to 1/8 of the size.
- ``geom`` (general geometric): isotropic scaling (log2 std 0.2), arbitrary
  rotation (before and after an anisotropic scaling, log2 std 0.2),
  fractional translation (std 1/8 of the size). Geometric transforms of
  both groups are combined into one matrix and applied once, with reflection
  padding, at twice the resolution through a symlet-6 wavelet filter, so
  they neither alias nor blur.
- ``color``: brightness (std 0.2), contrast (log2 std 0.5), luma flip, hue
  rotation (up to a full turn) and saturation (log2 std 1); the last two only
  for RGB images.
- ``noise``: additive Gaussian noise (std |N(0, 0.1)|).
- ``cutout``: a square of half the image's size set to 0.

Random draws use torch's default generator on the images' device (saved in
gankit's checkpoints). The image-space filtering group of the paper is not
implemented.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.nn.resample import fir_filter, upfirdn2d, upsample2d

Group = Literal["blit", "geom", "color", "noise", "cutout"]
GROUPS: tuple[Group, ...] = ("blit", "geom", "color", "noise", "cutout")

#: The symlet-6 wavelet's low-pass filter: the geometric group's interpolation filter, as in the reference.
SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)

# The paper's ranges.
XINT_MAX = 0.125
SCALE_STD = 0.2
ROTATE_MAX = 1.0
ANISO_STD = 0.2
XFRAC_STD = 0.125
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5
HUE_MAX = 1.0
SATURATION_STD = 1.0
NOISE_STD = 0.1
CUTOUT_SIZE = 0.5


def _eye(n: int, size: int, device: torch.device) -> Tensor:
    return torch.eye(size, device=device).expand(n, size, size).clone()


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    m = _eye(tx.shape[0], 3, tx.device)
    m[:, 0, 2] = tx
    m[:, 1, 2] = ty
    return m


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    m = _eye(sx.shape[0], 3, sx.device)
    m[:, 0, 0] = sx
    m[:, 1, 1] = sy
    return m


def _rotate2d(theta: Tensor) -> Tensor:
    m = _eye(theta.shape[0], 3, theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def _translate3d(t: Tensor) -> Tensor:
    m = _eye(t.shape[0], 4, t.device)
    m[:, 0, 3] = m[:, 1, 3] = m[:, 2, 3] = t
    return m


def _scale3d(s: Tensor) -> Tensor:
    m = _eye(s.shape[0], 4, s.device)
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = s
    return m


def _rotate3d(axis: Tensor, theta: Tensor) -> Tensor:
    """Rotation by ``theta`` around the unit ``axis`` (Rodrigues), as homogeneous 4x4 matrices."""
    x, y, z = axis[0], axis[1], axis[2]
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    m = _eye(theta.shape[0], 4, theta.device)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s
    m[:, 2, 0], m[:, 2, 1], m[:, 2, 2] = z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c
    return m


def _maybe(values: Tensor, identity: float, p: float) -> Tensor:
    """``values`` where a uniform draw falls below ``p``, else ``identity`` (per sample, along dimension 0)."""
    keep = torch.rand(values.shape[0], *([1] * (values.dim() - 1)), device=values.device) < p
    return torch.where(keep, values, torch.full_like(values, identity))


class Augment:
    """The pipeline: ``augment(images, p)`` returns the images, each augmented with probability ``p`` per operation.

    ``groups`` chooses the groups (see the module's docstring); images are
    ``(N, C, H, W)`` in [-1, 1]. ``p = 0`` returns the images untouched.
    """

    def __init__(self, groups: Sequence[Group] = ("blit", "geom", "color")) -> None:
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise ValueError(f"unknown augmentation groups {unknown}: choose from {', '.join(GROUPS)}")
        self.groups = tuple(groups)
        self._filters: dict[torch.device, Tensor] = {}

    def _sym6(self, device: torch.device) -> Tensor:
        if device not in self._filters:
            self._filters[device] = fir_filter(SYM6, device=device)
        return self._filters[device]

    def __call__(self, images: Tensor, p: float) -> Tensor:
        """Augment ``images`` with probability ``p`` (0 to 1) per operation and image."""
        if images.dim() != 4:
            raise ValueError(f"augmentation takes images (N, C, H, W), got a tensor of shape {tuple(images.shape)}")
        if p <= 0.0:
            return images
        dtype = images.dtype
        x = images.float()
        if "blit" in self.groups or "geom" in self.groups:
            x = self._geometric(x, p)
        if "color" in self.groups:
            x = self._color(x, p)
        if "noise" in self.groups:
            sigma = _maybe(torch.randn(x.shape[0], 1, 1, 1, device=x.device).abs() * NOISE_STD, 0.0, p)
            x = x + torch.randn_like(x) * sigma
        if "cutout" in self.groups:
            x = self._cutout(x, p)
        return x.to(dtype)

    # ------------------------------------------------------------------ geometric

    def _geometric(self, x: Tensor, p: float) -> Tensor:
        n, _, h, w = x.shape
        device = x.device
        g_inv = _eye(n, 3, device)
        if "blit" in self.groups:
            flip = _maybe(torch.floor(torch.rand(n, device=device) * 2), 0.0, p)
            g_inv = g_inv @ _scale2d(1 - 2 * flip, torch.ones_like(flip))
            if h == w:
                quarter = _maybe(torch.floor(torch.rand(n, device=device) * 4), 0.0, p)
                g_inv = g_inv @ _rotate2d(math.pi / 2 * quarter)
            t = _maybe((torch.rand(n, 2, device=device) * 2 - 1) * XINT_MAX, 0.0, p)
            g_inv = g_inv @ _translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
        if "geom" in self.groups:
            s = _maybe(torch.exp2(torch.randn(n, device=device) * SCALE_STD), 1.0, p)
            g_inv = g_inv @ _scale2d(1 / s, 1 / s)
            p_rot = 1 - math.sqrt(min(max(1 - p, 0.0), 1.0))  # P(pre- or post-rotation) = p
            theta = _maybe((torch.rand(n, device=device) * 2 - 1) * math.pi * ROTATE_MAX, 0.0, p_rot)
            g_inv = g_inv @ _rotate2d(theta)
            s = _maybe(torch.exp2(torch.randn(n, device=device) * ANISO_STD), 1.0, p)
            g_inv = g_inv @ _scale2d(1 / s, s)
            theta = _maybe((torch.rand(n, device=device) * 2 - 1) * math.pi * ROTATE_MAX, 0.0, p_rot)
            g_inv = g_inv @ _rotate2d(theta)
            t = _maybe(torch.randn(n, 2, device=device) * XFRAC_STD, 0.0, p)
            g_inv = g_inv @ _translate2d(-t[:, 0] * w, -t[:, 1] * h)
        moved = (g_inv - torch.eye(3, device=device)).abs().amax(dim=(1, 2)) > 0
        index = moved.nonzero().squeeze(1)
        if index.numel() == 0:
            return x
        if index.numel() == n:
            return self._resample(x, g_inv)
        return x.index_copy(0, index, self._resample(x.index_select(0, index), g_inv.index_select(0, index)))

    def _resample(self, x: Tensor, g_inv: Tensor) -> Tensor:
        """Apply the inverse transforms ``g_inv`` ``(N, 3, 3)`` (output pixel → input pixel, centred coordinates)."""
        n, c, h, w = x.shape
        device = x.device
        f = self._sym6(device)
        pad = f.numel() // 4
        cx, cy = (w - 1) / 2, (h - 1) / 2
        corners = torch.tensor([[-cx, -cy, 1.0], [cx, -cy, 1.0], [cx, cy, 1.0], [-cx, cy, 1.0]], device=device)
        reach = (g_inv @ corners.t())[:, :2, :].permute(1, 0, 2).flatten(1)  # (2, N * 4): x and y
        margin = torch.cat([-reach, reach]).max(dim=1).values  # how far left, up, right, down the input is read
        margin = margin + torch.tensor([pad * 2 - cx, pad * 2 - cy] * 2, device=device)
        margin = margin.clamp(min=0).minimum(torch.tensor([w - 1, h - 1] * 2, device=device, dtype=margin.dtype))
        mx0, my0, mx1, my1 = (int(v) for v in margin.ceil().tolist())
        x = F.pad(x, [mx0, mx1, my0, my1], mode="reflect")
        shift = torch.full((n,), 1.0, device=device)
        g_inv = _translate2d(shift * (mx0 - mx1) / 2, shift * (my0 - my1) / 2) @ g_inv
        x = upsample2d(x, f)
        two, half = shift * 2, shift * 0.5
        g_inv = _scale2d(two, two) @ g_inv @ _scale2d(half, half)
        g_inv = _translate2d(-half, -half) @ g_inv @ _translate2d(half, half)
        out_h, out_w = (h + pad * 2) * 2, (w + pad * 2) * 2
        g_inv = (_scale2d(2 / x.shape[3] * shift, 2 / x.shape[2] * shift) @ g_inv
                 @ _scale2d(out_w / 2 * shift, out_h / 2 * shift))
        grid = F.affine_grid(g_inv[:, :2, :], [n, c, out_h, out_w], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return upfirdn2d(x, f, down=2, padding=(-1, -1, -1, -1), flip=False)

    # ------------------------------------------------------------------ colour

    def _color(self, x: Tensor, p: float) -> Tensor:
        n, c, h, w = x.shape
        if c not in (1, 3):
            raise ValueError(f"colour augmentation takes 1 or 3 channels, got {c}")
        device = x.device
        m = _eye(n, 4, device)
        b = _maybe(torch.randn(n, device=device) * BRIGHTNESS_STD, 0.0, p)
        m = _translate3d(b) @ m
        k = _maybe(torch.exp2(torch.randn(n, device=device) * CONTRAST_STD), 1.0, p)
        m = _scale3d(k) @ m
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)
        outer = torch.outer(luma, luma)
        flip = _maybe(torch.floor(torch.rand(n, 1, 1, device=device) * 2), 0.0, p)
        m = (torch.eye(4, device=device) - 2 * outer * flip) @ m
        if c == 3:
            theta = _maybe((torch.rand(n, device=device) * 2 - 1) * math.pi * HUE_MAX, 0.0, p)
            m = _rotate3d(luma, theta) @ m
            s = _maybe(torch.exp2(torch.randn(n, 1, 1, device=device) * SATURATION_STD), 1.0, p)
            m = (outer + (torch.eye(4, device=device) - outer) * s) @ m
        flat = x.reshape(n, c, h * w)
        if c == 3:
            flat = m[:, :3, :3] @ flat + m[:, :3, 3:]
        else:
            gray = m[:, :3, :].mean(dim=1, keepdim=True)
            flat = flat * gray[:, :, :3].sum(dim=2, keepdim=True) + gray[:, :, 3:]
        return flat.reshape(n, c, h, w)

    # ------------------------------------------------------------------ cutout

    def _cutout(self, x: Tensor, p: float) -> Tensor:
        n, _, h, w = x.shape
        device = x.device
        size = _maybe(torch.full((n, 2, 1, 1), CUTOUT_SIZE, device=device), 0.0, p)
        centre = torch.rand(n, 2, 1, 1, device=device)
        xs = (torch.arange(w, device=device).view(1, 1, -1) + 0.5) / w
        ys = (torch.arange(h, device=device).view(1, -1, 1) + 0.5) / h
        outside_x = (xs - centre[:, 0]).abs() >= size[:, 0] / 2
        outside_y = (ys - centre[:, 1]).abs() >= size[:, 1] / 2
        keep = (outside_x | outside_y).unsqueeze(1).to(x.dtype)
        return x * keep
