"""The ``pacgan.packed`` discriminator: any registered discriminator, judging packs of ``m`` samples.

PacGAN (Lin, Khetan, Fanti and Oh, "PacGAN: The power of two samples in
generative adversarial networks", NeurIPS 2018) changes only the
discriminator's input: it sees ``m`` samples at once, concatenated, and says
whether the whole pack is real or generated. A generator that has collapsed
onto a few modes produces packs with tell-tale repeats that a packed
discriminator can see and a one-sample discriminator cannot, so packing
penalises mode collapse without touching the generator or the loss.

Here the packing wraps an *inner* discriminator chosen from the registry like
any other part: the wrapper builds it for the packed shape — ``(m * D,)`` for
points of shape ``(D,)``, ``(m * C, H, W)`` for images of shape ``(C, H, W)`` —
and groups ``m`` consecutive samples of each batch into one pack, so a batch of
``N`` samples gives ``N / m`` logits.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import gankit
from gankit import GankitError, Params
from pydantic import Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from torch import Tensor, nn

NAME = "pacgan.packed"
DEFAULT_INNER: dict[str, Any] = {"type": "mlp"}


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return (" Did you mean " + " or ".join(repr(c) for c in close) + "?") if close else ""


def _invalid(title: str, errors: list[InitErrorDetails]) -> ValidationError:
    return ValidationError.from_exception_data(title, errors)


def _inner_error(loc: tuple[str | int, ...], value: Any, message: str) -> InitErrorDetails:
    # PydanticCustomError formats ``{name}`` placeholders from its context; with none given the text is kept as is.
    return InitErrorDetails(type=PydanticCustomError("inner_discriminator", message), loc=loc, input=value)


def resolve_inner(table: Any) -> dict[str, Any]:
    """Validate an ``inner`` table against the registered discriminator it names.

    Returns the table with the part's version pinned (``"mlp@v1"``) and every
    parameter spelled out, so that a resolved recipe (and a checkpoint) rebuilds
    exactly this inner discriminator. Problems are raised as a pydantic
    :class:`~pydantic.ValidationError` whose locations are relative to
    ``inner``, so a recipe reports them as ``discriminator.inner.width``.
    """
    title = "inner discriminator"
    if not isinstance(table, Mapping):
        raise _invalid(title, [_inner_error((), table, "must be a table such as {type = \"mlp\", width = 128}")])
    params = dict(table)
    ref = params.pop("type", None)
    registry = gankit.get_registry()
    names = [n for n in registry.names("discriminator") if n != NAME]
    if ref is None:
        message = f"missing key 'type': name the discriminator that judges packs, one of: {', '.join(names)}"
        raise _invalid(title, [_inner_error(("type",), table, message)])
    if not isinstance(ref, str):
        raise _invalid(title, [_inner_error(("type",), ref, "must be a string naming a discriminator")])
    try:
        part = registry.get("discriminator", ref)
    except GankitError as error:
        raise _invalid(title, [_inner_error(("type",), ref, str(error))]) from None
    if part.name == NAME:
        raise _invalid(title, [_inner_error(("type",), ref, "a packed discriminator cannot pack another one")])
    try:
        validated = part.params.model_validate(params)
    except ValidationError as error:
        issues = [_translate(item, part.name, part.params.model_fields) for item in error.errors()]
        raise _invalid(title, issues) from None
    return {"type": part.ref, **validated.model_dump(mode="json")}


def _translate(item: Any, part: str, fields: Mapping[str, Any]) -> InitErrorDetails:
    """One error of the inner part's own validation, kept at its location, with a helpful text for unknown keys."""
    loc = tuple(item["loc"])
    if item["type"] == "extra_forbidden" and len(loc) == 1:
        key = str(loc[0])
        known = sorted(fields)
        message = (
            f"unknown key {key!r} for discriminator {part!r}.{_suggest(key, known)} "
            f"Known keys: type, {', '.join(known)}."
        )
        return _inner_error(loc, item.get("input"), message)
    if item["type"] == "missing":
        return InitErrorDetails(type="missing", loc=loc, input=item.get("input"))
    return _inner_error(loc, item.get("input"), str(item["msg"]))


class PackedParams(Params):
    """Parameters of ``pacgan.packed``."""

    pack: int = Field(
        default=2,
        ge=1,
        le=64,
        description="m: how many samples the discriminator judges together (PacGAN2, PacGAN3, ...); "
        "the batch size must be a multiple of it",
    )
    inner: dict[str, Any] = Field(
        default_factory=lambda: dict(DEFAULT_INNER),
        validate_default=True,
        description="the discriminator that judges each pack: a table naming any registered discriminator and "
        'its parameters, e.g. {type = "mlp", width = 128}; it is built for the packed shape',
    )

    @field_validator("inner", mode="before")
    @classmethod
    def _check_inner(cls, value: Any) -> dict[str, Any]:
        return resolve_inner(value)


def packed_shape(shape: Any, pack: int) -> tuple[int, ...]:
    """The shape of one pack of ``pack`` samples of ``shape``: ``(m*D,)`` for points, ``(m*C, H, W)`` for images."""
    if shape is None:
        raise GankitError(f"discriminator {NAME!r} needs the shape of one sample (context 'shape')")
    sizes = (shape,) if isinstance(shape, int) else tuple(shape)
    if not sizes or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise GankitError(f"discriminator {NAME!r}: bad sample shape {shape!r}: every size must be a positive integer")
    if len(sizes) not in (1, 3):
        raise GankitError(
            f"discriminator {NAME!r} packs points (D,) or images (C, H, W), got a sample shape {sizes}"
        )
    return (pack * sizes[0], *sizes[1:])


class PackedDiscriminator(nn.Module):
    """PacGAN: an inner discriminator judges packs of m consecutive samples, one logit per pack.

    A batch ``(N, *shape)`` becomes ``(N / m, m * shape[0], *shape[1:])`` —
    samples ``0 .. m-1`` form the first pack, and so on — and the inner
    discriminator, built for that packed shape, returns ``N / m`` logits. The
    real and the generated batches are packed separately, so a pack is all real
    or all generated (Lin et al. 2018). ``N`` must be a multiple of ``m``: set
    ``run.batch_size`` accordingly. The inner discriminator's capacity grows only
    in its first layer, as in the paper.
    """

    def __init__(self, params: PackedParams, *, shape: Any = None, **context: Any) -> None:
        super().__init__()
        self.pack = params.pack
        self.packed_shape = packed_shape(shape, params.pack)
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        inner_table = dict(params.inner)
        part = gankit.get_registry().get("discriminator", inner_table.pop("type"))
        self.inner_ref = part.ref
        self.inner: nn.Module = part.build(inner_table, shape=self.packed_shape, **context)

    def forward(self, x: Tensor) -> Tensor:
        """Map samples ``(N, *shape)`` to one logit per pack, shape ``(N / pack,)``."""
        if not isinstance(x, Tensor):
            raise GankitError(
                f"discriminator {NAME!r} packs one batch tensor, got {type(x).__name__}: "
                "multi-scale generators are not supported"
            )
        n = x.shape[0]
        if tuple(x.shape[1:]) != self.shape:
            raise GankitError(
                f"discriminator {NAME!r} was built for samples of shape {self.shape}, got a batch of shape "
                f"{tuple(x.shape)}"
            )
        if n % self.pack:
            raise GankitError(
                f"discriminator {NAME!r} with pack = {self.pack} needs a batch size that is a multiple of "
                f"{self.pack}, got {n} samples: set run.batch_size to a multiple of {self.pack}"
            )
        logits: Tensor = self.inner(pack_batch(x, self.pack))
        return logits.reshape(n // self.pack)

    def extra_repr(self) -> str:
        return f"pack={self.pack}, inner={self.inner_ref}, packed_shape={self.packed_shape}"


def pack_batch(x: Tensor, pack: int) -> Tensor:
    """Group ``pack`` consecutive samples of ``x`` ``(N, *shape)`` into ``(N / pack, pack * shape[0], *shape[1:])``.

    Samples ``0 .. pack-1`` become the first pack, their features (points) or
    channels (images) concatenated in order.
    """
    if x.shape[0] % pack:
        raise GankitError(f"cannot pack {x.shape[0]} samples into packs of {pack}")
    return x.reshape(x.shape[0] // pack, pack * x.shape[1], *x.shape[2:])


__all__ = ["PackedDiscriminator", "PackedParams", "pack_batch", "packed_shape", "resolve_inner"]
