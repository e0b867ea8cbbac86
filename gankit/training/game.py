"""The GAN game of one training step, written as phases.

1. **Discriminator phase** — a real batch (label 1) and a generated batch
   (label 0, produced without a gradient graph) go through the discriminator;
   the adversarial loss, plus the discriminator's regularisers, is minimised
   by the discriminator's optimiser.
2. **Generator phase** — a new latent batch goes through the generator and the
   *frozen* discriminator; the generator's optimiser makes the discriminator say
   1, plus the generator's regularisers. A loss that needs real logits
   (relativistic losses) gets fresh ones: the frozen discriminator's judgement
   of the step's latest real batch. Frozen means: the discriminator's
   parameters receive no gradient, and every buffer it holds (BatchNorm running
   statistics, spectral-norm vectors) is restored afterwards, so this phase
   leaves the discriminator bit-for-bit unchanged. It stays in training mode, so
   BatchNorm normalises with the batch's own statistics exactly as in the
   discriminator phase.

Regularisers act on the network they name (``network``: the discriminator,
the generator, or ``"both"``, then in both phases). For class-conditional
networks, labels go with every batch; a regulariser that sets
``needs_class_logits`` (``acgan``) gets the class logits of a discriminator
with a classifier, computed in the same forward pass as the logits.

The loop (:mod:`gankit.training.trainer`) decides how many of each phase a step
runs; this module only does the maths. Losses stay on the device.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gankit.training.batches import Batches
from gankit.training.context import TrainingContext
from gankit.training.events import TrickHooks


class Freezer:
    """Runs a module without training it: no parameter gradients, every buffer restored afterwards.

    The lists of parameters and buffers, and the space for the buffers' copies,
    are made once, so freezing costs no allocation per step.
    """

    def __init__(self, module: nn.Module) -> None:
        self.params = list(module.parameters())
        self.buffers = list(module.buffers())
        self.saved = [b.detach().clone() for b in self.buffers]

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        trainable = [p for p in self.params if p.requires_grad]
        with torch.no_grad():
            for s, b in zip(self.saved, self.buffers, strict=True):
                s.copy_(b)
        for p in trainable:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in trainable:
                p.requires_grad_(True)
            with torch.no_grad():
                for b, s in zip(self.buffers, self.saved, strict=True):
                    b.copy_(s)


@dataclass
class Networks:
    """The networks of a run, and the callables each phase uses.

    ``generator`` and ``discriminator`` are what the phases call (DDP
    wrappers, compiled modules); ``frozen_discriminator`` is what the
    generator phase calls (the discriminator's own module under DDP, so that
    DDP's reducer sees only the discriminator phase). ``penalized_discriminator``
    is what the discriminator's regularisers call: never compiled, because
    gradient penalties differentiate twice and compiled graphs cannot (the
    DDP wrapper when distributed, so the penalty's gradients are reduced too).
    """

    generator_module: nn.Module
    discriminator_module: nn.Module
    generator: nn.Module
    discriminator: nn.Module
    frozen_discriminator: nn.Module
    penalized_discriminator: nn.Module

    @property
    def generator_classes(self) -> int:
        """Classes the generator is conditioned on (0: unconditional)."""
        return int(getattr(self.generator_module, "num_classes", 0) or 0)

    @property
    def discriminator_classes(self) -> int:
        """Classes the discriminator is conditioned on (0: unconditional)."""
        return int(getattr(self.discriminator_module, "num_classes", 0) or 0)


def _call(network: Any, x: Any, labels: Tensor | None) -> Any:
    return network(x) if labels is None else network(x, labels)


def _judged(network: Any, x: Any, labels: Tensor | None, classes: bool) -> tuple[Tensor, Tensor | None]:
    """The discriminator's logits of ``x`` in fp32, and its class logits when ``classes`` (one forward pass)."""
    if not classes:
        return _call(network, x, labels).float(), None
    logits, class_logits = network(x, labels, return_classes=True)
    return logits.float(), class_logits.float()


def _takes_two(method: Any) -> bool:
    """Whether a loss's ``generator_loss`` accepts ``(fake_logits, real_logits)``."""
    try:
        parameters = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return True
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return True
    return len([p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) >= 2


def _takes_context(method: Any) -> bool:
    """Whether a regulariser's ``penalty`` accepts context keywords (``**context``)."""
    try:
        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return False


#: The networks a regulariser may act on (``network = "both"`` means the two).
REGULARIZED_NETWORKS = ("discriminator", "generator")


class Regularization:
    """One regulariser acting on one network, with when it applies and how it is called.

    ``network`` defaults to the one the part names. The method called is
    ``<network>_penalty`` when the part has one, else ``penalty``.
    """

    def __init__(self, part: Any, network: str | None = None) -> None:
        self.part = part
        self.network: str = network or str(getattr(part, "network", "discriminator"))
        self.every = int(getattr(part, "every", 1))
        self.gain = float(part.weight) * self.every
        self.method = getattr(part, f"{self.network}_penalty", None) or part.penalty
        self.takes_context = _takes_context(self.method)
        self.needs_class_logits = bool(getattr(part, "needs_class_logits", False))

    def due(self, count: int) -> bool:
        """Whether it applies at this network's ``count``-th step."""
        return count % self.every == 0

    def penalty(self, *args: Any, **context: Any) -> Tensor:
        """``weight * every * penalty(...)``."""
        value: Tensor = self.method(*args, **context) if self.takes_context else self.method(*args)
        return self.gain * value


def regularizations(part: Any) -> list[Regularization]:
    """What a regulariser part does: one :class:`Regularization` per network it names (``"both"``: two)."""
    from gankit.errors import GankitError

    declared = getattr(part, "network", "discriminator")
    if declared not in (*REGULARIZED_NETWORKS, "both"):
        raise GankitError(
            f"regulariser {type(part).__name__} says network = {declared!r}; "
            "it must be 'discriminator', 'generator' or 'both'"
        )
    networks = REGULARIZED_NETWORKS if declared == "both" else (declared,)
    for network in networks:
        if not callable(getattr(part, f"{network}_penalty", None) or getattr(part, "penalty", None)):
            raise GankitError(
                f"regulariser {type(part).__name__} acts on the {network} but has neither {network}_penalty nor "
                "penalty"
            )
    return [Regularization(part, network) for network in networks]


class GanGame:
    """The phases of a GAN training step: the maths of the game, and nothing of the run around it."""

    def __init__(
        self,
        networks: Networks,
        *,
        loss: Any,
        regularizers: Sequence[Any],
        optimizers: dict[str, torch.optim.Optimizer],
        batches: Batches,
        hooks: TrickHooks,
        context: TrainingContext,
        autocast_dtype: torch.dtype | None,
        device: torch.device,
        scaler: torch.amp.GradScaler,
    ) -> None:
        self.nets = networks
        self.loss = loss
        regs = [reg for part in regularizers for reg in regularizations(part)]
        self.d_regularizers = [r for r in regs if r.network == "discriminator"]
        self.g_regularizers = [r for r in regs if r.network == "generator"]
        self.opt_g = optimizers["generator"]
        self.opt_d = optimizers["discriminator"]
        self.batches = batches
        self.hooks = hooks
        self.ctx = context
        self.autocast_dtype = autocast_dtype
        self.device = device
        self.scaler = scaler
        self.freeze_discriminator = Freezer(networks.discriminator_module)
        self.needs_real_logits = bool(getattr(loss, "needs_real_logits", False))
        self._generator_loss_two = _takes_two(loss.generator_loss)
        self._transforms = hooks.has("discriminator_input")
        self.d_step_count = 0
        self.g_step_count = 0
        self.last_real: tuple[Tensor, Tensor | None] | None = None

    # ------------------------------------------------------------------ helpers

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The run's autocast context (a no-op in fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _seen(self, x: Any) -> Any:
        """``x`` as the discriminator sees it (after the tricks' ``discriminator_input``)."""
        return self.hooks.transform("discriminator_input", self.ctx, x) if self._transforms else x

    def generate_detached(self, z: Tensor, labels: Tensor | None) -> Any:
        """Generated samples without a gradient graph, in fp32."""
        with torch.no_grad(), self.autocast():
            fake = _call(self.nets.generator, z, labels)
        if isinstance(fake, list | tuple):
            return [f.float() for f in fake]
        return fake.float()

    def _judge(self, network: Any, real_labels: Tensor | None) -> Any:
        """``judge(x, labels=None)``: the discriminator's logits, labels defaulting to the real batch's."""
        if self.nets.discriminator_classes == 0:
            return lambda x, labels=None: network(x)
        return lambda x, labels=None: network(x, real_labels if labels is None else labels)

    def _d_labels(self, labels: Tensor | None) -> Tensor | None:
        return labels if self.nets.discriminator_classes else None

    # ------------------------------------------------------------------ the phases

    def discriminator_phase(self) -> Tensor:
        """Phase 1: train the discriminator on a real (1) and a generated (0) batch; returns its loss, detached."""
        nets = self.nets
        real, real_labels = self.batches.real()
        self.last_real = (real, real_labels)
        z, fake_labels = self.batches.latents()
        fake = self.generate_detached(z, fake_labels)
        self.opt_d.zero_grad(set_to_none=True)
        self.ctx.phase = "discriminator"
        real_in = self._seen(real)
        fake_in = self._seen(fake)
        d_real, d_fake = self._d_labels(real_labels), self._d_labels(fake_labels)
        self.d_step_count += 1
        due = [reg for reg in self.d_regularizers if reg.due(self.d_step_count)]
        classes = any(reg.needs_class_logits for reg in due)
        with self.autocast():
            real_logits, real_classes = _judged(nets.discriminator, real_in, d_real, classes)
            fake_logits, fake_classes = _judged(nets.discriminator, fake_in, d_fake, classes)
            loss: Tensor = self.loss.discriminator_loss(real_logits, fake_logits)
        total = loss
        if due:
            judge = self._judge(nets.penalized_discriminator, d_real)
            for reg in due:
                total = total + reg.penalty(judge, real_in, fake_in, real_labels=d_real, fake_labels=d_fake,
                                            real_class_logits=real_classes, fake_class_logits=fake_classes)
        self.scaler.scale(total).backward()
        self.scaler.step(self.opt_d)
        self.scaler.update()
        self.ctx.real_logits = real_logits.detach()
        self.ctx.fake_logits = fake_logits.detach()
        self.ctx.phase = "idle"
        return loss.detach()

    def measure_discriminator(self) -> Tensor:
        """The discriminator's loss on fresh batches, without training it (for policies that skip it)."""
        nets = self.nets
        real, real_labels = self.batches.real()
        self.last_real = (real, real_labels)
        z, fake_labels = self.batches.latents()
        fake = self.generate_detached(z, fake_labels)
        with torch.no_grad(), self.freeze_discriminator():
            self.ctx.phase = "measure"
            real_in = self._seen(real)
            fake_in = self._seen(fake)
            with self.autocast():
                loss: Tensor = self.loss.discriminator_loss(
                    _call(nets.frozen_discriminator, real_in, self._d_labels(real_labels)).float(),
                    _call(nets.frozen_discriminator, fake_in, self._d_labels(fake_labels)).float(),
                )
            self.ctx.phase = "idle"
            return loss.detach()

    def generator_phase(self) -> Tensor:
        """Phase 2: train the generator to make the frozen discriminator say 1; returns its loss, detached."""
        nets = self.nets
        self.opt_g.zero_grad(set_to_none=True)
        with self.freeze_discriminator():
            self.ctx.phase = "generator"
            z, labels = self.batches.latents()
            with self.autocast():
                fake = _call(nets.generator, z, labels)
            fake_in = self._seen(fake)
            d_labels = self._d_labels(labels)
            real_logits = self._fresh_real_logits() if self.needs_real_logits else None
            self.g_step_count += 1
            due = [reg for reg in self.g_regularizers if reg.due(self.g_step_count)]
            classes = any(reg.needs_class_logits for reg in due)
            with self.autocast():
                fake_logits, fake_classes = _judged(nets.frozen_discriminator, fake_in, d_labels, classes)
                if self._generator_loss_two:
                    loss: Tensor = self.loss.generator_loss(fake_logits, real_logits)
                else:
                    loss = self.loss.generator_loss(fake_logits)
            total = loss
            if due:
                judge = self._judge(nets.frozen_discriminator, d_labels)
                for reg in due:
                    total = total + reg.penalty(nets.generator_module, z, labels=labels, discriminator=judge,
                                                fake_class_logits=fake_classes)
            self.scaler.scale(total).backward()
        self.scaler.step(self.opt_g)
        self.scaler.update()
        self.ctx.phase = "idle"
        return loss.detach()

    def _fresh_real_logits(self) -> Tensor:
        """The frozen discriminator's logits of the step's latest real batch (a new one when none was drawn)."""
        real, real_labels = self.last_real if self.last_real is not None else self.batches.real()
        with torch.no_grad():
            real_in = self._seen(real)
            with self.autocast():
                return _call(self.nets.frozen_discriminator, real_in, self._d_labels(real_labels)).float()
