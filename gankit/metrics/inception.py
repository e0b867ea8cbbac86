"""Inception-v3 as a feature extractor for FID and KID, with weights from a file the user supplies.

gankit downloads nothing. The network here is Inception-v3 (Szegedy et al.
2016) up to its 2048-dimensional global average pool ("pool3"), the
features FID is defined on. Its parameter names follow torchvision's
``Inception3`` (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``,
...), which the common FID weight files also use, so a state dict saved as
safetensors from either loads directly:

- ``variant="fid"``: the network of the reference FID implementation
  (TTUR / pytorch-fid, ``pt_inception-2015-12-05``): average pools that do
  not count padding, and a max pool in the last block's pooling branch.
- ``variant="torchvision"``: torchvision's ``inception_v3`` (ImageNet weights
  ``inception_v3_google``).

The classifier heads (``fc``, ``AuxLogits``) are not needed and are ignored
when present. :meth:`InceptionV3Features.trunk` takes the network's input
already resized and normalised to about [-1, 1] (the convention of the
original TensorFlow weights); the metrics prepare it from 8-bit images in one
of the named resize modes of :mod:`gankit.metrics.pixels`. ``forward`` takes
images in [-1, 1], repeats grayscale to three channels and resizes them
bilinearly to ``input_size`` (299 by default).

Convert a file once, e.g.
``safetensors.torch.save_file(torch.load("pt_inception.pth", weights_only=True), "inception.safetensors")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError

Variant = Literal["fid", "torchvision"]
FEATURES = 2048
_IGNORED_PREFIXES = ("fc.", "AuxLogits.")


class ConvBN(nn.Module):
    """Convolution without bias, batch normalisation (eps 0.001) and ReLU: Inception's basic unit."""

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int], **kwargs: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, bias=False, **kwargs)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: Tensor, fid: bool) -> Tensor:
    """3x3 average pool, stride 1, padding 1; the FID network leaves the padding out of the average."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=not fid)


class BlockA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled 1x1 branches (``Mixed_5b``-``Mixed_5d``)."""

    def __init__(self, c_in: int, pool_features: int, fid: bool) -> None:
        super().__init__()
        self.fid = fid
        self.branch1x1 = ConvBN(c_in, 64, 1)
        self.branch5x5_1 = ConvBN(c_in, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(c_in, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg3(x, self.fid)),
            ],
            1,
        )


class BlockB(nn.Module):
    """Reduction 35 → 17: strided 3x3, strided double 3x3 and max-pool branches (``Mixed_6a``)."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class BlockC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (``Mixed_6b``-``Mixed_6e``)."""

    def __init__(self, c_in: int, c7: int, fid: bool) -> None:
        super().__init__()
        self.fid = fid
        self.branch1x1 = ConvBN(c_in, 192, 1)
        self.branch7x7_1 = ConvBN(c_in, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(c_in, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        double = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
                double,
                self.branch_pool(_avg3(x, self.fid)),
            ],
            1,
        )


class BlockD(nn.Module):
    """Reduction 17 → 8: strided 3x3, strided 7x7-then-3x3 and max-pool branches (``Mixed_7a``)."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(c_in, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(c_in, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        seven = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), seven, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):
    """8x8 block with split 1x3 / 3x1 branches (``Mixed_7b``, ``Mixed_7c``).

    ``pool`` is the pooling of the last branch: torchvision averages
    (counting padding); the FID network averages without padding in
    ``Mixed_7b`` and takes the maximum in ``Mixed_7c``.
    """

    def __init__(self, c_in: int, pool: Literal["avg", "avg-no-pad", "max"]) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = ConvBN(c_in, 320, 1)
        self.branch3x3_1 = ConvBN(c_in, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(c_in, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        no_pad = self.pool == "avg-no-pad"
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.pool == "max" else _avg3(x, no_pad)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(single),
                self.branch3x3_2b(single),
                self.branch3x3dbl_3a(double),
                self.branch3x3dbl_3b(double),
                self.branch_pool(pooled),
            ],
            1,
        )


class InceptionV3Features(nn.Module):
    """Inception-v3 from the input to the 2048-d pool3 features; see the module docstring.

    ``forward(images)`` takes ``(N, C, H, W)`` in [-1, 1] with C = 1 or 3 and
    returns ``(N, 2048)``. Built untrained; use :meth:`load_weights`.
    """

    def __init__(self, variant: Variant = "fid", input_size: int = 299) -> None:
        super().__init__()
        if variant not in ("fid", "torchvision"):
            raise ValueError(f"unknown Inception variant {variant!r}: use 'fid' or 'torchvision'")
        if input_size < 75:
            raise ValueError("Inception-v3 needs inputs of at least 75x75 pixels")
        fid = variant == "fid"
        self.variant = variant
        self.input_size = input_size
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32, fid)
        self.Mixed_5c = BlockA(256, 64, fid)
        self.Mixed_5d = BlockA(288, 64, fid)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, 128, fid)
        self.Mixed_6c = BlockC(768, 160, fid)
        self.Mixed_6d = BlockC(768, 160, fid)
        self.Mixed_6e = BlockC(768, 192, fid)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, "avg-no-pad" if fid else "avg")
        self.Mixed_7c = BlockE(2048, "max" if fid else "avg")

    def prepare(self, images: Tensor) -> Tensor:
        """Images in [-1, 1] as the network's input: three channels, ``input_size`` square, float32."""
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"Inception takes images (N, 1 or 3, H, W), got shape {tuple(images.shape)}")
        x = images.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return x

    def forward(self, images: Tensor) -> Tensor:
        """Pool3 features ``(N, 2048)`` of images in [-1, 1] (resized bilinearly by :meth:`prepare`)."""
        return self.trunk(self.prepare(images))

    def trunk(self, x: Tensor) -> Tensor:
        """Pool3 features ``(N, 2048)`` of an input already resized and normalised (``(N, 3, S, S)`` float32)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))

    def load_weights(self, state: Mapping[str, Tensor], *, source: str = "state dict") -> InceptionV3Features:
        """Load a torchvision-style Inception-v3 state dict (heads ignored); every feature weight must be there."""
        wanted = self.state_dict()
        kept = {k: v for k, v in state.items() if not k.startswith(_IGNORED_PREFIXES)}
        for key in wanted:
            if key.endswith("num_batches_tracked") and key not in kept:
                kept[key] = wanted[key]  # older files predate this buffer; it plays no part in evaluation
        missing = sorted(set(wanted) - set(kept))
        unexpected = sorted(set(kept) - set(wanted))
        if missing or unexpected:
            raise GankitError(
                f"{source} is not an Inception-v3 state dict with torchvision's names: "
                f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
            )
        bad = [k for k, v in kept.items() if tuple(v.shape) != tuple(wanted[k].shape)]
        if bad:
            raise GankitError(f"{source}: wrong shapes for {bad[:3]} (and {max(0, len(bad) - 3)} more)")
        self.load_state_dict(kept)
        return self


def load_inception(path: str | Path, *, variant: Variant = "fid", input_size: int = 299) -> InceptionV3Features:
    """An Inception-v3 feature network with the weights of the safetensors file ``path``, in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = Path(path).expanduser()
    if file.suffix != ".safetensors":
        raise GankitError(
            f"{file}: Inception weights must be a .safetensors file (gankit loads no pickle); convert a .pth with "
            "safetensors.torch.save_file(torch.load(path, weights_only=True), 'inception.safetensors')"
        )
    if not file.is_file():
        raise GankitError(f"{file}: no such Inception weights file")
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as error:
        raise GankitError(f"{file}: cannot read safetensors: {error}") from error
    network = InceptionV3Features(variant, input_size)
    network.load_weights(state, source=str(file))
    return network.eval().requires_grad_(False)
