"""Fully connected generator and discriminator, for 2-D toy points and small images."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from gankit.hookspecs import Register
from gankit.nn.layers import (
    ActivationName,
    MinibatchStd,
    MinibatchStdParams,
    activation,
    apply_spectral_norm,
    sample_shape,
)
from gankit.registry import MAX_WIDTH, Params


class MLPGeneratorParams(Params):
    """Parameters of the ``mlp`` generator."""

    latent_dim: int = Field(default=8, ge=1, le=MAX_WIDTH, description="size of the latent vector z")
    width: int = Field(default=128, ge=1, le=MAX_WIDTH, description="units in each hidden layer")
    depth: int = Field(default=3, ge=1, le=64, description="number of hidden layers")
    activation: ActivationName = Field(
        default="relu",
        description="hidden nonlinearity: relu or leaky-relu (slope 0.2)",
    )
    batch_norm: bool = Field(default=False, description="batch normalisation after every hidden layer")
    output: Literal["auto", "tanh", "linear"] = Field(
        default="auto",
        description="output activation: auto is tanh for images and linear for points (toy data is not in [-1, 1])",
    )


class MLPDiscriminatorParams(MinibatchStdParams):
    """Parameters of the ``mlp`` discriminator."""

    width: int = Field(default=128, ge=1, le=MAX_WIDTH, description="units in each hidden layer")
    depth: int = Field(default=3, ge=1, le=64, description="number of hidden layers")
    activation: ActivationName = Field(
        default="leaky-relu", description="hidden nonlinearity: relu or leaky-relu (slope 0.2)"
    )
    batch_norm: bool = Field(default=False, description="batch normalisation after every hidden layer but the first")
    spectral_norm: bool = Field(default=False, description="spectral normalisation on every linear layer")


class MLPGenerator(nn.Module):
    """Fully connected generator: z -> hidden layers -> one sample of any shape.

    Each hidden layer is a linear map, optional batch normalisation and the
    chosen nonlinearity. The last linear layer produces ``prod(shape)`` values
    that are reshaped to ``(N, *shape)``; with ``output="auto"`` images go
    through tanh (into [-1, 1]) and points stay unbounded.
    """

    latent_dim: int

    def __init__(self, params: MLPGeneratorParams, *, shape: Any = None, **context: Any) -> None:
        super().__init__()
        self.shape = sample_shape(shape, "generator 'mlp'")
        self.latent_dim = params.latent_dim
        output = params.output
        if output == "auto":
            output = "tanh" if len(self.shape) >= 3 else "linear"
        self.output = output
        layers: list[nn.Module] = []
        features = params.latent_dim
        for _ in range(params.depth):
            layers.append(nn.Linear(features, params.width, bias=not params.batch_norm))
            if params.batch_norm:
                layers.append(nn.BatchNorm1d(params.width))
            layers.append(activation(params.activation))
            features = params.width
        layers.append(nn.Linear(features, math.prod(self.shape)))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """Map latents ``(N, latent_dim)`` to samples ``(N, *shape)``."""
        x = self.net(z.flatten(1)).reshape(z.shape[0], *self.shape)
        return torch.tanh(x) if self.output == "tanh" else x


class MLPDiscriminator(nn.Module):
    """Fully connected discriminator: flattened sample -> hidden layers -> one logit.

    Hidden layers are linear, optional batch normalisation (not on the first
    layer, which sees the raw data) and the chosen nonlinearity; with
    ``spectral_norm`` every linear weight is spectrally normalised
    (Miyato et al. 2018). With ``minibatch_std`` the output layer also sees the
    standard deviation of the last hidden features across a group of
    samples (Karras et al. 2018). Do not combine batch normalisation with the
    gradient penalty: the penalty assumes each logit depends on its own sample
    only.
    """

    def __init__(self, params: MLPDiscriminatorParams, *, shape: Any = None, **context: Any) -> None:
        super().__init__()
        self.shape = sample_shape(shape, "discriminator 'mlp'")
        layers: list[nn.Module] = []
        features = math.prod(self.shape)
        for index in range(params.depth):
            norm = params.batch_norm and index > 0
            layers.append(nn.Linear(features, params.width, bias=not norm))
            if norm:
                layers.append(nn.BatchNorm1d(params.width))
            layers.append(activation(params.activation))
            features = params.width
        if params.minibatch_std:
            layers.append(MinibatchStd(params.minibatch_std_group))
            features += 1
        layers.append(nn.Linear(features, 1))
        self.net = nn.Sequential(*layers)
        if params.spectral_norm:
            apply_spectral_norm(self.net)

    def forward(self, x: Tensor) -> Tensor:
        """Map samples ``(N, *shape)`` to logits ``(N,)``."""
        return self.net(x.flatten(1)).squeeze(1)


def register(register: Register) -> None:
    """Register the fully connected generator and discriminator."""
    register("generator", "mlp", MLPGenerator, MLPGeneratorParams)
    register("discriminator", "mlp", MLPDiscriminator, MLPDiscriminatorParams)
