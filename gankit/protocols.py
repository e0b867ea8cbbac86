"""The small protocols every part satisfies.

They are runtime-checkable :class:`typing.Protocol` classes: a part need not
inherit from them, only have the attributes they name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor


@runtime_checkable
class Generator(Protocol):
    """An ``nn.Module`` with ``latent_dim`` that maps a latent batch ``(N, latent_dim)`` to samples.

    Images are in [-1, 1]; points (2-D toy data) are unbounded. A multi-scale
    generator returns a list of images, coarsest first.

    Optional members:

    - ``num_classes: int`` > 0 makes it *conditional*: it is called as
      ``generator(z, labels)`` with ``int64`` labels ``(N,)``.
    - ``mapping(z[, labels]) -> w`` and ``synthesis(w) -> images`` (a mapping
      network, as in StyleGAN), with ``w_avg``, the tracked average ``w``: then
      sampling can truncate (``truncation=psi``) and the ``path-length``
      regulariser works in ``w`` space; ``gankit project`` optimises ``w``.
    - ``noise_buffers() -> list[Tensor]``: the per-pixel noise inputs the
      synthesis adds (StyleGAN's), as buffers it reads on every call;
      ``gankit project`` optimises them too, with StyleGAN2's noise
      regularisation.
    """

    latent_dim: int

    def __call__(self, z: Tensor) -> Any: ...

    def parameters(self, recurse: bool = True) -> Any: ...


@runtime_checkable
class Discriminator(Protocol):
    """An ``nn.Module`` mapping a batch of samples (or a multi-scale list) to one logit per sample, shape ``(N,)``.

    With ``num_classes: int`` > 0 it is *conditional*, called as ``discriminator(x, labels)``.
    With ``has_classifier = True`` as well (an auxiliary classifier, for the
    ``acgan`` loss), ``discriminator(x, labels, return_classes=True)`` returns
    ``(logits, class_logits)``, the class logits ``(N, num_classes)`` from the
    same forward pass.

    Built-in networks are conditional when their ``condition`` parameter says
    so; their factories get the data's class count as ``num_classes`` (0 for
    unlabelled data, which a condition then refuses with a
    :class:`gankit.errors.MissingLabelsError`).

    Optional: ``input_blocks() -> list[nn.Module]``, its blocks in the order an
    input passes through them (the first reads the image), for the
    ``freeze-d`` trick. Without it, every layer with a weight matrix or kernel
    starts a block, in the order the layers were registered.
    """

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
    """The GAN game on raw logits: real samples are labelled 1, generated ones 0; the generator aims for 1.

    ``discriminator_loss(real_logits, fake_logits)`` in the discriminator phase;
    ``generator_loss(fake_logits, real_logits=None)`` in the generator phase.
    A loss that sets ``needs_real_logits = True`` (relativistic losses) gets
    fresh real logits there: the frozen discriminator's judgement of the
    step's real batch, computed after the discriminator's update. Otherwise
    ``real_logits`` is None and no real batch is judged in that phase. (A
    loss written before this contract, with ``generator_loss(fake_logits)``
    only, keeps working.)
    """

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor: ...

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Regularizer(Loss, Protocol):
    """A term added to a network's loss that may look at the network itself (R1, R2, path length, ACGAN).

    ``network`` says which: ``"discriminator"`` (the default when absent),
    ``"generator"``, or ``"both"`` (a term of each network's loss, as the
    ``acgan`` loss is). In each phase it applies to, the trainer calls
    ``discriminator_penalty`` / ``generator_penalty`` when the part has that
    method, else ``penalty``; it returns the unweighted term, and the trainer
    adds ``weight * every * penalty`` every ``every`` steps of that network
    (lazy regularisation). A regulariser with ``state_dict``/``load_state_dict``
    (a moving mean) has its state saved in checkpoints. One that sets
    ``needs_class_logits = True`` gets the discriminator's class logits (the
    discriminator must have a classifier; see :class:`Discriminator`).

    - discriminator: ``penalty(discriminator, real, fake, **context)``, where
      ``discriminator(x, labels=None)`` judges ``x`` (labels default to the
      real batch's for conditional discriminators), and ``real``/``fake`` are
      the batches the discriminator saw in that phase (after tricks'
      ``discriminator_input``; lists of tensors for multi-scale ones).
      ``context``: ``real_labels``, ``fake_labels`` (None when unconditional),
      ``real_class_logits``, ``fake_class_logits`` (None unless it needs them).
    - generator: ``penalty(generator, latents, **context)`` with the generator
      module and a fresh latent batch; ``context``: ``labels``,
      ``discriminator`` (the frozen discriminator, as above), and
      ``fake_class_logits`` (the frozen discriminator's class logits of the
      phase's generated batch, with their graph to the generator; None unless
      it needs them).

    Accept unknown ``context`` keywords (``**context``): gankit may pass more.
    """

    every: int

    def penalty(self, network: Any, *args: Any, **context: Any) -> Tensor: ...


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
      an ``int64`` tensor ``(N,)`` in ``[0, num_classes)``, the samples being those
      ``sample`` draws with the same generator; ``label_frequencies()``, a float
      tensor ``(num_classes,)`` summing to 1 (for ``run.latent_labels = "data"``
      and for metrics). Sources that store their images give
      ``labels_at(indices)`` too (per-class metrics such as ``intra-fid`` use it).
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

    A trick implements any of the events; each receives a
    :class:`gankit.training.context.TrainingContext`, never the trainer. It may
    also implement ``state_dict`` / ``load_state_dict`` (saved in checkpoints).
    A public method whose name looks like an event but is not one is a
    registration error.
    """


@runtime_checkable
class Metric(Protocol):
    """Scores a generator: returns a dict of named numbers (JSON-serialisable)."""

    def __call__(self, generator: Any, data: Any, *, device: Any, seed: int) -> dict[str, float]: ...


@runtime_checkable
class Logger(Protocol):
    """Receives what a training run logs, besides metrics.jsonl (which stays the record): a dashboard, a tracker.

    ``log(record)`` gets every record the trainer writes to metrics.jsonl, as
    the same dict: losses, learning rates and trick values at logging steps
    (``{"step": ..., "d_loss": ...}``), skip events (``"event": "skip"``) and
    metric evaluations (``"event": "metrics"``, keys ``"<metric>.<key>"``).

    Optional members: ``image(step, name, picture)`` with a sample grid as a
    ``uint8`` array ``(H, W, C)``, and ``close()`` at the end of the run.

    A logger that raises is warned about once and dropped for the rest of the
    run; training never stops for a logger.
    """

    def log(self, record: dict[str, Any]) -> None: ...
