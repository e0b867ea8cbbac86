"""Class conditioning as layers any network can use: embeddings, conditional batch norm, projection, classifier.

A network is *conditional* when one of its parameters says so (``condition =
"embedding"``, ``"projection"``, ...); its factory receives the data's class
count as ``num_classes`` (0 for unlabelled data). A conditional network sets
``self.num_classes`` and is called ``generator(z, labels)`` /
``discriminator(x, labels)`` with ``int64`` labels ``(N,)``.

- :class:`ClassEmbedding`: the generator's latent with a learnt class
  embedding concatenated (the cGAN of Mirza & Osindero 2014).
- :class:`ConditionalBatchNorm`: batch normalisation whose scale and shift
  depend on the class (de Vries et al. 2017; Miyato & Koyama 2018), computed
  from a class embedding the network's layers share (BigGAN).
- :class:`Projection`: the projection discriminator's class term, the inner
  product of a class embedding with the discriminator's features
  (Miyato & Koyama 2018).
- :class:`ClassifierHead`: an auxiliary classifier giving class logits, for
  the ``acgan`` loss (Odena et al. 2017).

:func:`classes_for` checks a network's ``condition`` against the data's
classes, with the error every network gives for unlabelled data.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from gankit.errors import MissingLabelsError

#: What a built-in discriminator can condition on: the projection term, an auxiliary classifier, or both.
DiscriminatorCondition = Literal["none", "projection", "classifier", "projection-classifier"]

#: The description of a discriminator's ``condition`` parameter.
DISCRIMINATOR_CONDITION_HELP = (
    "class conditioning (needs labelled data): 'projection' adds the inner product of a learnt class embedding "
    "with the last features to the logit (Miyato & Koyama 2018); 'classifier' adds an auxiliary classifier head "
    "for the acgan loss (Odena et al. 2017), the real/fake logit staying unconditional; "
    "'projection-classifier' both"
)


def classes_for(condition: str, num_classes: int, what: str) -> int:
    """The classes a network with ``condition`` is conditioned on: 0 for ``"none"``, else ``num_classes``.

    A condition on data without labels (``num_classes == 0``) is a
    :class:`~gankit.errors.MissingLabelsError` naming ``what`` (``"generator
    'dcgan'"``) and the fix.
    """
    if condition == "none":
        return 0
    if num_classes <= 0:
        raise MissingLabelsError(what, condition)
    return int(num_classes)


def uses_projection(condition: str) -> bool:
    """Whether a discriminator's ``condition`` includes the projection term."""
    return condition in ("projection", "projection-classifier")


def uses_classifier(condition: str) -> bool:
    """Whether a discriminator's ``condition`` includes an auxiliary classifier."""
    return condition in ("classifier", "projection-classifier")


class ClassEmbedding(nn.Module):
    """``cat(z, embedding(labels))``: a latent batch ``(N, latent_dim)`` with its classes' learnt vectors appended.

    The embedding is initialised N(0, 1), the scale of the latent itself.
    ``out_features`` is ``latent_dim + dim``.
    """

    def __init__(self, num_classes: int, dim: int, latent_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_classes, dim)
        self.out_features = latent_dim + dim

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        """``(N, latent_dim + dim)``."""
        return torch.cat([z.flatten(1), self.embedding(labels).to(z.dtype)], dim=1)


class ConditionalBatchNorm(nn.Module):
    """Batch normalisation without its own affine transform, then a scale and a shift computed from the class.

    ``y = (1 + gain(c)) * BN(x) + bias(c)``, where ``c`` is the sample's class
    embedding ``(N, condition_dim)`` (one embedding shared by every layer of
    the network, as in BigGAN, Brock et al. 2019) and ``gain``, ``bias`` are
    linear maps, initialised near zero so that it starts close to plain batch
    normalisation. Computing the scale from an embedding, rather than looking
    it up in a table per layer, lets it learn as fast as the other weights
    (an optimiser moves a table entry by about the learning rate per step).
    The running statistics are shared by every class. Works on ``(N, C)``
    and ``(N, C, H, W)`` features (``dims`` 1 or 2).
    """

    def __init__(self, features: int, condition_dim: int, dims: Literal[1, 2] = 2) -> None:
        super().__init__()
        self.norm: nn.Module = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(features, affine=False)
        self.gain = nn.Linear(condition_dim, features)
        self.bias = nn.Linear(condition_dim, features)
        for layer in (self.gain, self.bias):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        """Normalise ``x`` and apply each sample's scale and shift, computed from its class embedding ``condition``."""
        out: Tensor = self.norm(x)
        shape = (x.shape[0], -1) + (1,) * (x.dim() - 2)
        condition = condition.to(out.dtype)
        return (1 + self.gain(condition)).view(shape) * out + self.bias(condition).view(shape)


class Projection(nn.Module):
    """The projection discriminator's class term: ``<embedding(label), features>`` per sample, ``(N,)``.

    Added to an unconditional logit ``psi(features)``, it makes the
    discriminator ``psi(phi(x)) + y^T V phi(x)`` of Miyato & Koyama (2018),
    the form their analysis of the optimal conditional discriminator gives.
    ``features`` are flattened, so on a feature map the embedding is a
    class-specific kernel added to the last layer. The embedding starts
    uniform in ``+-1/sqrt(features)``, like a linear layer; with
    ``spectral_norm`` it is spectrally normalised like the rest of the
    discriminator.
    """

    def __init__(self, num_classes: int, features: int, *, spectral_norm: bool = False) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_classes, features)
        bound = 1.0 / math.sqrt(features)
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        if spectral_norm:
            parametrizations.spectral_norm(self.embedding)

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        """``(N,)``: each sample's features against its class's embedding."""
        flat = features.flatten(1)
        return (self.embedding(labels).to(flat.dtype) * flat).sum(dim=1)


class ClassifierHead(nn.Module):
    """An auxiliary classifier on a discriminator's last features: class logits ``(N, num_classes)``.

    ``layer`` maps the features to ``num_classes`` values (a linear layer, or
    a convolution over the whole last feature map); its output is flattened.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, features: Tensor) -> Tensor:
        """``(N, num_classes)`` class logits."""
        out: Tensor = self.layer(features)
        return out.flatten(1)
