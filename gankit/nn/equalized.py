"""Layers with an equalised learning rate (Karras et al. 2018), as StyleGAN2 builds its networks from.

Weights are drawn from N(0, 1) and scaled at run time by He's constant
``1 / sqrt(fan_in)`` instead of at initialisation, so that Adam, which
normalises each parameter's step, moves every layer at the same relative
speed. A ``lr_multiplier`` scales a layer's effective learning rate
(StyleGAN's mapping network uses 0.01). The leaky ReLU is followed by a gain
of ``sqrt(2)`` that keeps activations at unit scale.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.nn.resample import BINOMIAL, conv2d_down, conv2d_up, fir_filter

Activation = Literal["linear", "lrelu"]

#: The gain after a leaky ReLU that keeps unit-variance inputs at unit variance.
LRELU_GAIN = math.sqrt(2.0)


def bias_act(x: Tensor, bias: Tensor | None, activation: Activation, gain: float = 1.0) -> Tensor:
    """``x + bias`` (broadcast over channels), then the activation and its gain, then ``gain``."""
    if bias is not None:
        x = x + bias.to(x.dtype).view(1, -1, *([1] * (x.dim() - 2)))
    if activation == "lrelu":
        return F.leaky_relu(x, 0.2) * (LRELU_GAIN * gain)
    return x * gain if gain != 1.0 else x


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Each row of ``x`` divided by its root mean square (StyleGAN's pixel norm of latents)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class EqualLinear(nn.Module):
    """A fully connected layer with an equalised learning rate and an optional leaky ReLU."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        bias_init: float = 0.0,
        activation: Activation = "linear",
        lr_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation: Activation = activation

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_features)`` → ``(N, out_features)``."""
        w = self.weight.to(x.dtype) * self.weight_gain
        b: Tensor | None = self.bias
        if b is not None and self.bias_gain != 1.0:
            b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.to(x.dtype).unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, self.activation)

    def extra_repr(self) -> str:
        out, inp = self.weight.shape
        return f"{inp}, {out}, activation={self.activation}, lr_multiplier={self.bias_gain:g}"


class EqualConv2d(nn.Module):
    """A ``k x k`` convolution with an equalised learning rate, optional resampling and leaky ReLU.

    ``up=2`` doubles and ``down=2`` halves the resolution through the binomial
    filter (:mod:`gankit.nn.resample`). ``forward(x, gain)`` multiplies the
    output by ``gain`` (``sqrt(0.5)`` on the two branches of a residual block).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        activation: Activation = "linear",
        up: int = 1,
        down: int = 1,
    ) -> None:
        super().__init__()
        if up not in (1, 2) or down not in (1, 2) or (up == 2 and down == 2):
            raise ValueError("a convolution resamples by 2 at most, either up or down")
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.activation: Activation = activation
        self.up = up
        self.down = down
        self.padding = kernel_size // 2
        self.resample_filter: Tensor
        self.register_buffer("resample_filter", fir_filter(BINOMIAL), persistent=False)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        """Convolve, resample, add the bias, activate, times ``gain``."""
        w = (self.weight * self.weight_gain).to(x.dtype)
        f = self.resample_filter
        if self.up == 2:
            x = conv2d_up(x, w, f)
        elif self.down == 2:
            x = conv2d_down(x, w, f)
        else:
            x = F.conv2d(x, w, padding=self.padding)
        return bias_act(x, self.bias, self.activation, gain)

    def extra_repr(self) -> str:
        out, inp, k, _ = self.weight.shape
        return f"{inp}, {out}, kernel_size={k}, activation={self.activation}, up={self.up}, down={self.down}"
