"""The small protocols every part satisfies.

They are runtime-checkable :class:`typing.Protocol` classes: a part need not
inherit from them, only have the attributes they name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor, nn


@runtime_checkable
class Generator(Protocol):
    """An ``nn.Module`` with ``latent_dim`` that maps a latent batch ``(N, latent_dim)`` to samples.

    Images are in [-1, 1]; points (2-D toy data) are unbounded. A multi-scale
    generator returns a list of images, coarsest first.
    """

    latent_dim: int

    def __call__(self, z: Tensor) -> Any: ...

    def parameters(self, recurse: bool = True) -> Any: ...


@runtime_checkable
class Discriminator(Protocol):
    """An ``nn.Module`` mapping a batch of samples (or a multi-scale list) to one logit per sample, shape ``(N,)``."""

    def __call__(self, x: Any) -> Tensor: ...

    def parameters(self, recurse: bool = True) -> Any: ...


@runtime_checkable
class Loss(Protocol):
    """A weighted loss term: what its methods return is already multiplied by ``weight``.

    (Regularizers are the exception: see :class:`Regularizer`.)
    """

    weight: float


@runtime_checkable
class AdversarialLoss(Loss, Protocol):
    """The GAN game: a discriminator loss from real and fake logits, a generator loss from fake logits.

    Real samples are labelled 1 and generated ones 0; the generator aims for 1.
    """

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor: ...

    def generator_loss(self, fake_logits: Tensor) -> Tensor: ...


@runtime_checkable
class Regularizer(Loss, Protocol):
    """A term added to the discriminator loss that may look at the discriminator itself (R1, gradient penalty).

    ``penalty`` returns the unweighted term; the trainer adds ``weight * every * penalty``
    every ``every`` discriminator steps (lazy regularisation). ``real`` and ``fake``
    are what the discriminator sees: tensors, or lists of tensors for multi-scale
    discriminators.
    """

    every: int

    def penalty(self, discriminator: nn.Module, real: Any, fake: Any) -> Tensor: ...


@runtime_checkable
class ImageLoss(Loss, Protocol):
    """A loss of an image against targets set once (content, Gram style, total variation).

    ``layers`` names the encoder layers it reads (the loop runs the encoder
    once for the union of every loss's layers); ``target_image`` says which
    image its targets come from (``"content"``, ``"style"`` or ``None``);
    ``set_target`` caches the targets from that image's features.
    """

    layers: Any
    target_image: str | None

    def set_target(self, features: dict[str, Tensor]) -> None: ...

    def __call__(self, image: Tensor, features: dict[str, Tensor]) -> Tensor: ...


@runtime_checkable
class Schedule(Protocol):
    """Maps a training step to a value: a learning-rate factor, a fade-in alpha."""

    def __call__(self, step: int) -> float: ...


@dataclass(frozen=True)
class Decision:
    """What a balance policy decided for one step, and why (logged verbatim)."""

    d_steps: int = 1
    g_steps: int = 1
    reason: str = ""

    @property
    def skips_discriminator(self) -> bool:
        """Whether the discriminator is not updated at this step."""
        return self.d_steps == 0


@runtime_checkable
class BalancePolicy(Protocol):
    """Decides, step by step, whether and how often each network trains, and says why.

    ``needs_losses`` tells the trainer whether :meth:`observe` needs the losses
    of every step (reading them costs a host sync each step); when false,
    ``observe`` is called only at logging steps. When a policy that needs
    losses skips the discriminator, the trainer still measures the
    discriminator's loss (without updating it) so the policy can see it rise.
    """

    needs_losses: bool

    def decide(self, step: int) -> Decision: ...

    def observe(self, step: int, d_loss: float | None, g_loss: float | None) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class DataSource(Protocol):
    """Training samples as float tensors (images in [-1, 1]; points unbounded).

    ``shape`` is one sample's shape: ``(C, H, W)`` for images, ``(D,)`` for points.
    ``sample`` draws a batch with the given random generator (so that runs are
    reproducible and resumable).

    Optional members, each used by the trainer when present:

    - ``num_classes: int`` (> 0 for labelled data) and ``class_names: list[str]``;
      ``sample_labelled(batch_size, generator) -> (samples, labels)`` with labels
      an ``int64`` tensor ``(N,)`` in ``[0, num_classes)``; ``label_frequencies()``,
      a float tensor ``(num_classes,)`` summing to 1.
    - ``shard(rank, world_size)``: keep only this process's share of the data
      (called once, before the first batch, when several processes train).
    - ``state_dict()`` / ``load_state_dict(state)``: a reading position
      (tensors and JSON data) saved in checkpoints, so that a resumed run
      continues the same order.
    """

    shape: tuple[int, ...]

    def sample(self, batch_size: int, generator: Any) -> Tensor: ...

    def __len__(self) -> int: ...


@runtime_checkable
class Trick(Protocol):
    """A training trick: hooks into the trainer at named events (see :mod:`gankit.training.events`).

    A trick implements any of ``setup``, ``before_step``, ``after_discriminator_step``,
    ``after_generator_step``, ``state_dict`` / ``load_state_dict``, and
    ``sampling_generator`` (the generator used for samples and exports).
    """


@runtime_checkable
class Metric(Protocol):
    """Scores a generator: returns a dict of named numbers (JSON-serialisable)."""

    def __call__(self, generator: Any, data: Any, *, device: Any, seed: int) -> dict[str, float]: ...
