"""Fully connected generator and discriminator, for 2-D toy points and small images."""

from __future__ import annotations

import math
from typing import Any, Literal, Self

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from gankit.hookspecs import Register
from gankit.nn.conditioning import (
    DISCRIMINATOR_CONDITION_HELP,
    ClassEmbedding,
    ClassifierHead,
    ConditionalBatchNorm,
    DiscriminatorCondition,
    Projection,
    classes_for,
    uses_classifier,
    uses_projection,
)
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
    condition: Literal["none", "embedding", "batchnorm"] = Field(
        default="none",
        description="class conditioning (needs labelled data): 'embedding' appends a learnt class embedding to z; "
        "'batchnorm' gives every batch normalisation a scale and shift per class (needs batch_norm = true)",
    )
    embedding_dim: int | None = Field(
        default=None, ge=1, le=MAX_WIDTH,
        description="size of the learnt class embedding (both conditions); default: latent_dim",
    )

    @model_validator(mode="after")
    def _batchnorm_condition_needs_norm(self) -> Self:
        if self.condition == "batchnorm" and not self.batch_norm:
            raise ValueError("condition = 'batchnorm' needs batch_norm = true (it conditions the batch normalisation)")
        return self


class MLPDiscriminatorParams(MinibatchStdParams):
    """Parameters of the ``mlp`` discriminator."""

    width: int = Field(default=128, ge=1, le=MAX_WIDTH, description="units in each hidden layer")
    depth: int = Field(default=3, ge=1, le=64, description="number of hidden layers")
    activation: ActivationName = Field(
        default="leaky-relu", description="hidden nonlinearity: relu or leaky-relu (slope 0.2)"
    )
    batch_norm: bool = Field(default=False, description="batch normalisation after every hidden layer but the first")
    spectral_norm: bool = Field(default=False, description="spectral normalisation on every linear layer")
    condition: DiscriminatorCondition = Field(default="none", description=DISCRIMINATOR_CONDITION_HELP)


class MLPGenerator(nn.Module):
    """Fully connected generator: z -> hidden layers -> one sample of any shape.

    Each hidden layer is a linear map, optional batch normalisation and the
    chosen nonlinearity. The last linear layer produces ``prod(shape)`` values
    that are reshaped to ``(N, *shape)``; with ``output="auto"`` images go
    through tanh (into [-1, 1]) and points stay unbounded.

    Class-conditional (``condition``, with labelled data), it is called
    ``generator(z, labels)``: ``"embedding"`` appends a learnt class embedding
    to z, ``"batchnorm"`` makes every batch normalisation conditional (a scale
    and shift per class).
    """

    latent_dim: int

    def __init__(self, params: MLPGeneratorParams, *, shape: Any = None, num_classes: int = 0, **context: Any) -> None:
        super().__init__()
        self.shape = sample_shape(shape, "generator 'mlp'")
        self.latent_dim = params.latent_dim
        self.condition = params.condition
        classes = classes_for(params.condition, num_classes, "generator 'mlp'")
        if classes:
            self.num_classes = classes
        output = params.output
        if output == "auto":
            output = "tanh" if len(self.shape) >= 3 else "linear"
        self.output = output
        features = params.latent_dim
        embedding_dim = params.embedding_dim or params.latent_dim
        if params.condition == "embedding":
            self.embed = ClassEmbedding(classes, embedding_dim, params.latent_dim)
            features = self.embed.out_features
        elif params.condition == "batchnorm":
            self.class_embedding = nn.Embedding(classes, embedding_dim)
        layers: list[nn.Module] = []
        for _ in range(params.depth):
            layers.append(nn.Linear(features, params.width, bias=not params.batch_norm))
            if params.batch_norm:
                conditional = params.condition == "batchnorm"
                layers.append(ConditionalBatchNorm(params.width, embedding_dim, 1) if conditional
                              else nn.BatchNorm1d(params.width))
            layers.append(activation(params.activation))
            features = params.width
        layers.append(nn.Linear(features, math.prod(self.shape)))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Map latents ``(N, latent_dim)`` (and classes ``(N,)`` when conditional) to samples ``(N, *shape)``."""
        if self.condition == "none":
            x = self.net(z.flatten(1))
        else:
            if labels is None:
                raise ValueError("this generator is class-conditional: call it as generator(z, labels)")
            if self.condition == "embedding":
                x = self.net(self.embed(z, labels))
            else:
                condition, x = self.class_embedding(labels), z.flatten(1)
                for layer in self.net:
                    x = layer(x, condition) if isinstance(layer, ConditionalBatchNorm) else layer(x)
        x = x.reshape(z.shape[0], *self.shape)
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

    Class-conditional (``condition``, with labelled data), it is called
    ``discriminator(x, labels)``: ``"projection"`` adds ``<embedding(label),
    features>`` on the last hidden features (Miyato & Koyama 2018);
    ``"classifier"`` adds a linear auxiliary classifier on them, whose class
    logits ``return_classes=True`` returns too (for the ``acgan`` loss).
    """

    def __init__(
        self, params: MLPDiscriminatorParams, *, shape: Any = None, num_classes: int = 0, **context: Any
    ) -> None:
        super().__init__()
        classes = classes_for(params.condition, num_classes, "discriminator 'mlp'")
        if classes:
            self.num_classes = classes
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
        self.has_classifier = uses_classifier(params.condition)
        if self.has_classifier:
            self.classifier = ClassifierHead(nn.Linear(features, classes))
        if params.spectral_norm:
            apply_spectral_norm(self)
        if uses_projection(params.condition):
            self.projection = Projection(classes, features, spectral_norm=params.spectral_norm)

    def forward(
        self, x: Tensor, labels: Tensor | None = None, *, return_classes: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Map samples ``(N, *shape)`` (and classes ``(N,)`` when conditional) to logits ``(N,)``.

        With ``return_classes`` (a discriminator with a classifier), also the class logits ``(N, num_classes)``.
        """
        if not hasattr(self, "num_classes"):
            return self.net(x.flatten(1)).squeeze(1)
        *body, last = self.net
        features = x.flatten(1)
        for layer in body:
            features = layer(features)
        logits = last(features).squeeze(1)
        if hasattr(self, "projection"):
            if labels is None:
                raise ValueError("this discriminator is class-conditional: call it as discriminator(x, labels)")
            logits = logits + self.projection(features, labels)
        if not return_classes:
            return logits
        if not self.has_classifier:
            raise ValueError("this discriminator has no classifier: set condition = 'classifier'")
        return logits, self.classifier(features)


def register(register: Register) -> None:
    """Register the fully connected generator and discriminator."""
    register("generator", "mlp", MLPGenerator, MLPGeneratorParams)
    register("discriminator", "mlp", MLPDiscriminator, MLPDiscriminatorParams)
