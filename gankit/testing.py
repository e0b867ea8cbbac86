"""Testing parts and plugins in a few lines: check a part against its protocol, train a tiny recipe with it.

>>> from gankit.testing import check_part, tiny_recipe, train_for
>>> check_part("loss", "rpgan")                                    # doctest: +SKIP
>>> result = train_for(tiny_recipe(loss="rpgan"), steps=3)         # doctest: +SKIP
>>> assert result.step == 3                                        # doctest: +SKIP

:func:`check_part` builds a registered part (built-in or from any installed
plugin) and exercises it the way the trainer will: a loss on random logits, a
regulariser on a small network, a trick's events against a real training
context, an optimiser's step, a data source's batches. It raises an
``AssertionError`` that says what is wrong. :func:`train_for` trains a recipe
for a few steps in a temporary run folder.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gankit.errors import GankitError

__all__ = ["check_part", "tiny_recipe", "train_for"]

_POINTS = {
    "data": {"type": "ring"},
    "generator": {"type": "mlp", "latent_dim": 2, "width": 8, "depth": 1},
    "discriminator": {"type": "mlp", "width": 8, "depth": 1},
}
_IMAGES = {
    "data": {"type": "digits", "resolution": 8},
    "generator": {"type": "dcgan", "latent_dim": 8, "width": 4, "max_width": 8},
    "discriminator": {"type": "dcgan", "width": 4, "max_width": 8},
}


def tiny_recipe(data: str = "points", **slots: Any) -> dict[str, Any]:
    """A recipe (as a dict) with the smallest networks, for tests: points (``"points"``) or 8x8 digits (``"images"``).

    Keyword arguments fill or replace slots: a string names a part
    (``loss="rpgan"``), a dict is the whole table (``generator={...}``), and a
    list fills a list slot (``tricks=["ema", {"type": "progressive", ...}]``).

    >>> tiny_recipe(loss="hinge", regularizers=["r1"])["loss"]
    {'type': 'hinge'}
    """
    if data not in ("points", "images"):
        raise ValueError(f"data must be 'points' or 'images', got {data!r}")
    recipe: dict[str, Any] = copy.deepcopy(_POINTS if data == "points" else _IMAGES)
    recipe["run"] = {"steps": 2, "batch_size": 8, "log_every": 1, "sample_every": 1000, "samples": 4,
                     "checkpoint_every": 1000, "metrics_every": 1000, "threads": 1, "device": "cpu"}
    for slot, value in slots.items():
        if isinstance(value, str):
            value = {"type": value}
        elif isinstance(value, list):
            value = [{"type": v} if isinstance(v, str) else dict(v) for v in value]
        if slot == "run" and isinstance(value, Mapping):
            recipe["run"].update(value)
        else:
            recipe[slot] = value
    return recipe


def train_for(
    recipe: str | Path | Mapping[str, Any],
    *,
    steps: int = 2,
    overrides: tuple[str, ...] | list[str] = (),
    out: str | Path | None = None,
) -> Any:
    """Train ``recipe`` for ``steps`` steps in a temporary run folder (or ``out``); returns the ``TrainResult``.

    ``recipe`` is a dict (:func:`tiny_recipe`), a recipe file, a shipped
    recipe's name, or TOML text.
    """
    from gankit.recipe import load_recipe, loads_recipe, recipe_from_dict
    from gankit.training import train

    if isinstance(recipe, Mapping):
        loaded = recipe_from_dict(recipe, list(overrides))
    elif isinstance(recipe, str) and "\n" in recipe:
        loaded = loads_recipe(recipe, list(overrides))
    else:
        loaded = load_recipe(recipe, list(overrides))
    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="gankit-test-")) / "run"
    return train(loaded, folder, steps=steps, quiet=True)


def check_part(
    kind: str, name: str, params: Mapping[str, Any] | None = None, *, data: str = "images", **context: Any
) -> Any:
    """Build the registered part ``name`` of ``kind`` and exercise it as the trainer would; returns the part.

    ``params`` are its parameters (its defaults otherwise); ``context`` is
    passed to its factory (``shape=``, ``num_classes=``, ``total_steps=``, ...
    where the kind needs one; sensible defaults are used). A trick is also
    trained for two steps in a :func:`tiny_recipe` of ``data`` (``"images"``
    or ``"points"``). A class-conditional network (``{"condition": ...}``) is
    called with labels, checked with :data:`CHECK_CLASSES` classes unless
    ``num_classes`` is given, and must refuse unlabelled data (``num_classes=0``)
    with a :class:`~gankit.errors.GankitError`; a discriminator with a
    classifier must give class logits with ``return_classes=True``. A
    regulariser acting on ``"both"`` networks, or needing class logits, gets
    them.
    """
    import torch

    from gankit.plugins import get_registry

    torch.manual_seed(0)
    part = get_registry().get(kind, name)
    check = _CHECKS.get(kind)
    if check is None:
        return part.build(params or {}, **context)
    if kind == "trick":
        context["data"] = data
    return check(part, dict(params or {}), context)


# --------------------------------------------------------------------------- per kind


def _finite_scalar(value: Any, what: str) -> None:
    import torch

    assert isinstance(value, torch.Tensor), f"{what} must return a tensor, got {type(value).__name__}"
    assert value.dim() == 0, f"{what} must return a scalar, got shape {tuple(value.shape)}"
    assert torch.isfinite(value), f"{what} returned {value.item()}"


def _check_loss(part: Any, params: dict[str, Any], context: dict[str, Any]) -> Any:
    import torch

    from gankit import protocols

    loss = part.build(params, **context)
    assert isinstance(getattr(loss, "weight", None), int | float), "a loss needs a numeric `weight`"
    if part.role == "adversarial":
        assert isinstance(loss, protocols.AdversarialLoss), "an adversarial loss needs discriminator_loss and " \
                                                           "generator_loss"
        real = torch.randn(16, requires_grad=True)
        fake = torch.randn(16, requires_grad=True)
        d_loss = loss.discriminator_loss(real, fake)
        _finite_scalar(d_loss, "discriminator_loss")
        d_loss.backward()
        assert real.grad is not None and fake.grad is not None, "discriminator_loss must depend on both logits"
        needs_real = bool(getattr(loss, "needs_real_logits", False))
        g_loss = loss.generator_loss(fake, real.detach() if needs_real else None)
        _finite_scalar(g_loss, "generator_loss")
        # the generator wants its samples judged real: higher fake logits must not cost more
        low = loss.generator_loss(torch.full((16,), -3.0), torch.zeros(16) if needs_real else None)
        high = loss.generator_loss(torch.full((16,), 3.0), torch.zeros(16) if needs_real else None)
        assert high <= low, "generator_loss must fall as the discriminator judges fakes more real"
    elif part.role == "regularizer":
        _check_regularizer(loss)
    return loss


#: Classes of the labels the checks give class-conditional parts.
CHECK_CLASSES = 3


def _check_regularizer(reg: Any) -> None:
    import torch
    from torch import nn

    from gankit.training.game import REGULARIZED_NETWORKS, regularizations

    every = getattr(reg, "every", None)
    assert isinstance(every, int) and every >= 1, "a regulariser needs `every`, an int >= 1"
    network = getattr(reg, "network", "discriminator")
    assert network in (*REGULARIZED_NETWORKS, "both"), (
        f"network must be 'discriminator', 'generator' or 'both', got {network!r}"
    )
    classes = bool(getattr(reg, "needs_class_logits", False))
    k = CHECK_CLASSES
    for use in regularizations(reg):
        call = use.method if use.takes_context else (lambda *args, _m=use.method, **_: _m(*args))
        # a discriminator giving one logit and (for parts that need them) k class logits per sample
        d = nn.Sequential(nn.Flatten(), nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1 + k))
        judge = lambda x, labels=None, _d=d: _d(x)[:, 0]  # noqa: E731
        if use.network == "discriminator":
            real, fake = torch.randn(8, 2), torch.randn(8, 2)
            context: dict[str, Any] = {"real_labels": None, "fake_labels": None}
            if classes:
                context = {"real_labels": torch.randint(k, (8,)), "fake_labels": torch.randint(k, (8,)),
                           "real_class_logits": d(real)[:, 1:], "fake_class_logits": d(fake)[:, 1:]}
            penalty = call(judge, real, fake, **context)
            _finite_scalar(penalty, "the discriminator's penalty")
            penalty.backward()
            assert any(p.grad is not None for p in d.parameters()), \
                "a discriminator penalty must train the discriminator"
        else:
            g = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
            g.latent_dim = 4  # type: ignore[assignment]
            z = torch.randn(8, 4)
            context = {"labels": None, "discriminator": None}
            if classes:
                context = {"labels": torch.randint(k, (8,)), "discriminator": judge,
                           "fake_class_logits": d(g(z))[:, 1:]}
            penalty = call(g, z, **context)
            _finite_scalar(penalty, "the generator's penalty")
            penalty.backward()
            assert any(p.grad is not None for p in g.parameters()), "a generator penalty must train the generator"
    _check_state(reg, "regulariser")


def _check_state(obj: Any, what: str) -> None:
    state_dict, load = getattr(obj, "state_dict", None), getattr(obj, "load_state_dict", None)
    if state_dict is None and load is None:
        return
    assert callable(state_dict) and callable(load), f"a {what} with state needs both state_dict and load_state_dict"
    from gankit.checkpoint import Checkpoint, join_state, split_state

    ckpt = Checkpoint()
    data = split_state(state_dict(), "s", ckpt)
    import json

    json.dumps(data)  # what is not a tensor must be JSON data
    load(join_state(data, "s", ckpt))


def _check_trick(part: Any, params: dict[str, Any], context: dict[str, Any]) -> Any:
    from gankit.training.events import EVENTS, check_trick_events

    data = context.pop("data", "images")
    trick = part.build(params, **context)
    check_trick_events(trick, f"trick {part.name!r}")
    assert any(callable(getattr(trick, e, None)) for e in EVENTS), "a trick must implement at least one event"
    result = train_for(tiny_recipe(data, tricks=[{"type": part.ref, **params}]), steps=2)
    assert result.step == 2
    return trick


def _check_optimizer(part: Any, params: dict[str, Any], context: dict[str, Any]) -> Any:
    import torch
    from torch import nn

    model = nn.Linear(3, 1)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = part.build(params, parameters=model.parameters(), network="generator", **context)
    assert isinstance(optimizer, torch.optim.Optimizer), "an optimizer part must return a torch.optim.Optimizer"
    assert all(isinstance(g.get("lr"), int | float) for g in optimizer.param_groups), "param groups need an `lr`"
    model(torch.randn(4, 3)).square().mean().backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "a step must change the weights"
    optimizer.load_state_dict(optimizer.state_dict())
    return optimizer


def _check_data(part: Any, params: dict[str, Any], context: dict[str, Any]) -> Any:
    import torch

    data = part.build(params, **{"seed": 0, **context})
    shape = tuple(data.shape)
    assert len(data) > 0, "a data source must hold samples"
    batch = data.sample(4, torch.Generator().manual_seed(0))
    assert tuple(batch.shape) == (4, *shape), f"sample(4) gave {tuple(batch.shape)}, expected {(4, *shape)}"
    assert batch.dtype == torch.float32, f"samples must be float32, got {batch.dtype}"
    again = data.sample(4, torch.Generator().manual_seed(0))
    assert torch.equal(batch, again), "samples must depend only on the random generator passed in"
    classes = int(getattr(data, "num_classes", 0) or 0)
    if classes:
        images, labels = data.sample_labelled(4, torch.Generator().manual_seed(0))
        assert labels.dtype == torch.int64 and labels.shape == (4,), "labels must be int64 of shape (N,)"
        assert bool(((labels >= 0) & (labels < classes)).all()), f"labels must lie in [0, {classes})"
        assert torch.equal(images, batch), "sample_labelled must draw the same samples as sample"
        names = getattr(data, "class_names", None)
        assert names is None or len(names) == classes, f"class_names must name the {classes} classes"
        if callable(getattr(data, "label_frequencies", None)):
            frequencies = data.label_frequencies()
            assert tuple(frequencies.shape) == (classes,), f"label_frequencies() must have shape ({classes},)"
            assert abs(float(frequencies.sum()) - 1) < 1e-4, "label_frequencies() must sum to 1"
    return data


def _check_schedule(part: Any, params: dict[str, Any], context: dict[str, Any]) -> Any:
    total = int(context.pop("total_steps", 100))
    schedule = part.build(params, total_steps=total, **context)
    for step in range(0, total + 1, max(1, total // 10)):
        value = schedule(step)
        assert isinstance(value, int | float) and math.isfinite(value) and value >= 0, (
            f"schedule({step}) = {value!r}: a factor must be a finite number >= 0"
        )
    return schedule


def _check_network(part: Any, params: dict[str, Any], context: dict[str, Any]) -> Any:
    import torch

    from gankit.errors import MissingLabelsError

    shape = tuple(context.pop("shape", (1, 8, 8)))
    given = "num_classes" in context
    classes = int(context.pop("num_classes", 0))
    try:
        network = part.build(params, shape=shape, num_classes=classes, **context)
    except MissingLabelsError:
        if given:
            raise
        classes = CHECK_CLASSES  # a conditional network: checked with a few classes
        network = part.build(params, shape=shape, num_classes=classes, **context)
    assert isinstance(network, torch.nn.Module), f"a {part.kind} must be a torch.nn.Module"
    conditional = int(getattr(network, "num_classes", 0) or 0)
    assert conditional == 0 or classes, (
        f"built for unlabelled data (num_classes=0), the network says num_classes = {conditional}: a class-conditional "
        "network must raise a GankitError saying the data has no labels"
    )
    assert conditional in (0, classes), f"num_classes is {conditional}, but the network was built for {classes}"
    labels = torch.arange(3) % conditional if conditional else None

    def call(x: Any, **kwargs: Any) -> Any:
        return network(x, **kwargs) if labels is None else network(x, labels, **kwargs)

    if part.kind == "generator":
        latent_dim = int(getattr(network, "latent_dim", 0))
        assert latent_dim > 0, "a generator needs a positive `latent_dim`"
        out = call(torch.randn(3, latent_dim))
        out = out[-1] if isinstance(out, list | tuple) else out
        assert tuple(out.shape) == (3, *shape), f"the generator gave {tuple(out.shape)}, expected {(3, *shape)}"
    else:
        x = torch.randn(3, *shape)
        logits = call(x)
        assert tuple(logits.shape) == (3,), f"the discriminator must give one logit per sample, got {logits.shape}"
        if getattr(network, "has_classifier", False):
            assert conditional, "a discriminator with a classifier must set num_classes"
            both = call(x, return_classes=True)
            assert isinstance(both, tuple) and len(both) == 2, "return_classes=True must give (logits, class_logits)"
            assert tuple(both[0].shape) == (3,) and tuple(both[1].shape) == (3, conditional), (
                f"return_classes=True gave shapes {tuple(both[0].shape)} and {tuple(both[1].shape)}, expected (3,) "
                f"and (3, {conditional})"
            )
    if conditional and not given:
        try:
            part.build(params, shape=shape, num_classes=0, **context)
        except GankitError:
            pass
        else:
            raise AssertionError("a class-conditional network built for unlabelled data (num_classes=0) must raise "
                                 "a GankitError saying the data has no labels")
    return network


_CHECKS = {
    "loss": _check_loss,
    "trick": _check_trick,
    "optimizer": _check_optimizer,
    "data": _check_data,
    "schedule": _check_schedule,
    "generator": _check_network,
    "discriminator": _check_network,
}
