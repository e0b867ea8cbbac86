"""Differentiable augmentation (Zhao, Liu, Lin, Zhu and Han, "Differentiable Augmentation for
Data-Efficient GAN Training", NeurIPS 2020), as the gankit trick ``diffaugment.augment``.

With a few hundred training images a discriminator memorises them and its
feedback to the generator becomes useless. Augmenting only the real images
would teach the generator to produce augmented images; DiffAugment instead
applies the *same kind* of random augmentation to every batch that enters the
discriminator — real and generated, in both training phases — and makes it
differentiable, so the generator is still trained through it.

Operations, each drawn independently per sample from torch's global random
generator (which the trainer seeds and checkpoints, so runs are reproducible
and resumable):

- ``color``: brightness ``x + U(-0.5, 0.5)``, then saturation (distance to the
  per-pixel channel mean scaled by ``U(0, 2)``), then contrast (distance to the
  image mean scaled by ``U(0.5, 1.5)``);
- ``translation``: a shift by a whole number of pixels up to
  ``translation_ratio`` of the size in each direction, zero-filled;
- ``cutout``: a square hole of ``cutout_ratio`` of the size, zero-filled, at a
  uniformly random place (it may be clipped at the border).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import torch
from gankit import GankitError, Params
from pydantic import Field, model_validator
from torch import Tensor

Operation = Literal["translation", "cutout", "color"]
DEFAULT_POLICY: tuple[Operation, ...] = ("color", "translation", "cutout")


class DiffAugmentParams(Params):
    """Parameters of ``diffaugment.augment``."""

    policy: list[Operation] = Field(
        default_factory=lambda: list(DEFAULT_POLICY),
        min_length=1,
        description="operations, applied in this order: any of color, translation, cutout",
    )
    translation_ratio: float = Field(
        default=0.125, ge=0, le=1, description="largest shift, as a fraction of the image's height and width"
    )
    cutout_ratio: float = Field(
        default=0.5, ge=0, le=1, description="side of the cut-out square, as a fraction of the image's size"
    )
    probability: float = Field(
        default=1.0, ge=0, le=1, description="chance that a sample is augmented at all (1: every sample, always)"
    )

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        repeated = sorted({op for op in self.policy if self.policy.count(op) > 1})
        if repeated:
            raise ValueError(f"policy names {', '.join(repeated)} more than once")
        return self


Batch = Tensor | list[Tensor]


def _scales(x: Any) -> list[Tensor]:
    scales = list(x) if isinstance(x, list | tuple) else [x]
    for t in scales:
        if not isinstance(t, Tensor) or t.dim() != 4:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise GankitError(
                f"diffaugment.augment augments image batches (N, C, H, W), got {shape}; "
                "remove the trick for point data"
            )
    if len({t.shape[0] for t in scales}) != 1:
        raise GankitError("diffaugment.augment: the scales of a multi-scale batch hold different numbers of samples")
    return scales


def _rescale(offset: Tensor, size: int, largest: int) -> Tensor:
    """A pixel offset drawn for the largest scale, at a scale of ``size`` pixels."""
    if size == largest:
        return offset
    return torch.round(offset.to(torch.float32) * (size / largest)).to(torch.long)


def color(xs: list[Tensor]) -> list[Tensor]:
    """Random brightness, saturation and contrast per sample (the same factors at every scale)."""
    ref = xs[0]
    n = ref.shape[0]
    brightness = torch.rand(n, 1, 1, 1, dtype=ref.dtype, device=ref.device) - 0.5
    saturation = torch.rand(n, 1, 1, 1, dtype=ref.dtype, device=ref.device) * 2.0
    contrast = torch.rand(n, 1, 1, 1, dtype=ref.dtype, device=ref.device) + 0.5
    out = []
    for x in xs:
        x = x + brightness.to(x.dtype)
        pixel_mean = x.mean(dim=1, keepdim=True)
        x = (x - pixel_mean) * saturation.to(x.dtype) + pixel_mean
        image_mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - image_mean) * contrast.to(x.dtype) + image_mean
        out.append(x)
    return out


def shift(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Move each image by ``(rows[i], cols[i])`` pixels: ``out[i, :, r, c] = x[i, :, r + rows[i], c + cols[i]]``.

    Pixels that come from outside the image are zero. Differentiable in ``x``.
    """
    n, c, h, w = x.shape
    src_r = torch.arange(h, device=x.device).view(1, h) + rows.view(n, 1)
    src_c = torch.arange(w, device=x.device).view(1, w) + cols.view(n, 1)
    inside = ((src_r >= 0) & (src_r < h)).view(n, 1, h, 1) & ((src_c >= 0) & (src_c < w)).view(n, 1, 1, w)
    x = x.gather(2, src_r.clamp(0, h - 1).view(n, 1, h, 1).expand(n, c, h, w))
    x = x.gather(3, src_c.clamp(0, w - 1).view(n, 1, 1, w).expand(n, c, h, w))
    return x * inside.to(x.dtype)


def translation(xs: list[Tensor], ratio: float) -> list[Tensor]:
    """Shift every sample by up to ``ratio`` of the height and width, zero-filled (DiffAugment's ``translation``)."""
    ref = max(xs, key=lambda t: t.shape[2] * t.shape[3])
    n, _, h, w = ref.shape
    max_r, max_c = int(h * ratio + 0.5), int(w * ratio + 0.5)
    rows = torch.randint(-max_r, max_r + 1, (n,), device=ref.device)
    cols = torch.randint(-max_c, max_c + 1, (n,), device=ref.device)
    return [shift(x, _rescale(rows, x.shape[2], h), _rescale(cols, x.shape[3], w)) for x in xs]


def hole(x: Tensor, top: Tensor, left: Tensor, height: int, width: int) -> Tensor:
    """Zero the ``height`` x ``width`` rectangle at ``(top[i], left[i])`` of each image (clipped at the border)."""
    n, _, h, w = x.shape
    r = torch.arange(h, device=x.device).view(1, h)
    c = torch.arange(w, device=x.device).view(1, w)
    in_r = (r >= top.view(n, 1)) & (r < top.view(n, 1) + height)
    in_c = (c >= left.view(n, 1)) & (c < left.view(n, 1) + width)
    keep = ~(in_r.view(n, 1, h, 1) & in_c.view(n, 1, 1, w))
    return x * keep.to(x.dtype)


def cutout(xs: list[Tensor], ratio: float) -> list[Tensor]:
    """Cut a hole of ``ratio`` of the size out of every sample, centred at random (DiffAugment's ``cutout``)."""
    ref = max(xs, key=lambda t: t.shape[2] * t.shape[3])
    n, _, h, w = ref.shape
    size_r, size_c = int(h * ratio + 0.5), int(w * ratio + 0.5)
    centre_r = torch.randint(0, h + (1 - size_r % 2), (n,), device=ref.device)
    centre_c = torch.randint(0, w + (1 - size_c % 2), (n,), device=ref.device)
    out = []
    for x in xs:
        xh, xw = x.shape[2], x.shape[3]
        height, width = int(xh * ratio + 0.5), int(xw * ratio + 0.5)
        top = _rescale(centre_r, xh, h) - height // 2
        left = _rescale(centre_c, xw, w) - width // 2
        out.append(hole(x, top, left, height, width))
    return out


def diff_augment(
    x: Batch,
    policy: Sequence[str] = DEFAULT_POLICY,
    *,
    translation_ratio: float = 0.125,
    cutout_ratio: float = 0.5,
    probability: float = 1.0,
) -> Batch:
    """Augment an image batch ``(N, C, H, W)`` (or a multi-scale list of them) differentiably.

    Randomness comes from torch's global random generator. A multi-scale list
    gets the same augmentation at every scale (offsets scaled to each size).
    With ``probability < 1`` each sample is augmented (by the whole policy)
    with that chance and left alone otherwise.
    """
    xs = _scales(x)
    if probability <= 0 or not policy:
        return x
    chosen: Tensor | None = None
    if probability < 1:
        chosen = torch.rand(xs[0].shape[0], device=xs[0].device) < probability
    out = xs
    for op in policy:
        if op == "color":
            out = color(out)
        elif op == "translation":
            out = translation(out, translation_ratio)
        elif op == "cutout":
            out = cutout(out, cutout_ratio)
        else:
            raise GankitError(f"diffaugment: unknown operation {op!r}; use color, translation or cutout")
    if chosen is not None:
        out = [torch.where(chosen.view(-1, 1, 1, 1), a, b) for a, b in zip(out, xs, strict=True)]
    return out if isinstance(x, list | tuple) else out[0]


class DiffAugment:
    """DiffAugment: the same random, differentiable augmentation for real and generated batches entering D.

    Implements the trainer event ``discriminator_input``, which every batch
    passes on its way into the discriminator: real and generated ones in the
    discriminator phase, generated ones in the generator phase (whose
    gradients flow back through the augmentation); the discriminator's
    regularisers see the same augmented batches as its loss. Translation, cutout and colour follow Zhao et al.
    (2020) with their ratios (0.125 and 0.5); it is the standard remedy for
    small data sets, such as a folder of a few hundred pictures.
    """

    def __init__(self, params: DiffAugmentParams, **context: Any) -> None:
        self.params = params

    def setup(self, ctx: Any) -> None:
        """Check that the run trains on images."""
        shape = tuple(getattr(getattr(ctx, "data", None), "shape", ()) or ())
        if len(shape) != 3:
            raise GankitError(
                f"trick 'diffaugment.augment' augments images (C, H, W), but the data gives samples of shape "
                f"{shape}: remove it from [[tricks]] for point data"
            )

    def discriminator_input(self, ctx: Any, x: Batch) -> Batch:
        """Augment a batch about to enter the discriminator."""
        return self(x)

    def __call__(self, x: Batch) -> Batch:
        p = self.params
        return diff_augment(
            x,
            p.policy,
            translation_ratio=p.translation_ratio,
            cutout_ratio=p.cutout_ratio,
            probability=p.probability,
        )

    def __repr__(self) -> str:
        p = self.params
        return (
            f"DiffAugment(policy={','.join(p.policy)}, translation_ratio={p.translation_ratio}, "
            f"cutout_ratio={p.cutout_ratio}, probability={p.probability})"
        )
