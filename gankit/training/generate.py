"""Using a trained generator: load it from a run or checkpoint, sample, interpolate."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from gankit.checkpoint import load_source
from gankit.errors import GankitError
from gankit.recipe import Recipe


@dataclass
class LoadedGenerator:
    """A generator rebuilt from a checkpoint or a shared folder, with what it was trained with.

    ``recipe`` is the whole recipe of the run; it is None for a shared
    folder whose recipe names parts that are not installed here (the
    generator's own part is). ``shape`` is one sample's shape, the data's.
    """

    generator: nn.Module
    recipe: Recipe | None
    step: int
    source: Path
    shape: tuple[int, ...] = ()
    class_names: list[str] | None = None

    @property
    def latent_dim(self) -> int:
        return int(getattr(self.generator, "latent_dim", 0))

    @property
    def num_classes(self) -> int:
        """Classes the generator is conditioned on (0: unconditional)."""
        return num_classes_of(self.generator)


#: Samples generated per forward pass by :func:`sample` (bounds the memory of activations).
SAMPLE_BATCH = 256


def _generator_weights(ckpt_state: dict[str, Any], recipe: Recipe, ema: bool) -> tuple[str, str]:
    """The checkpoint prefix of the generator weights to load, and the prefix to strip from their keys."""
    if ema and not ckpt_state.get("exported"):
        for i, spec in enumerate(recipe["tricks"]):
            if spec.name == "ema":
                return f"trick.{i}/", "s.average."
    return "generator/", ""


def _sample_shape(ckpt_state: dict[str, Any], recipe: Recipe) -> tuple[int, ...]:
    """One sample's shape: recorded in the checkpoint, else that of the recipe's data source."""
    recorded = ckpt_state.get("data_shape")
    if isinstance(recorded, list) and recorded and all(isinstance(d, int) and 0 < d < 2**31 for d in recorded):
        return tuple(recorded)
    data = recipe["data"].build(seed=recipe.run.seed)
    return tuple(data.shape)


def _classes(ckpt_state: dict[str, Any], recipe: Recipe) -> tuple[int, list[str] | None]:
    """The data's class count and names: recorded in the checkpoint, else those of the recipe's data source."""
    recorded = ckpt_state.get("num_classes")
    if isinstance(recorded, int) and 0 <= recorded < 2**31:
        names = ckpt_state.get("class_names")
        valid = isinstance(names, list) and len(names) == recorded and all(isinstance(n, str) for n in names)
        return recorded, names if valid else None
    data = recipe["data"].build(seed=recipe.run.seed)
    count = int(getattr(data, "num_classes", 0) or 0)
    names = getattr(data, "class_names", None) if count else None
    return count, [str(n) for n in names] if names else None


def load_generator(path: str | Path, *, device: str | torch.device = "cpu", ema: bool = True) -> LoadedGenerator:
    """Rebuild the generator of a run folder, a checkpoint, an exported ``generator.safetensors``, or a shared model.

    A shared model is a folder written by ``gankit export`` (``config.json``
    and ``model.safetensors``), or ``"hf://owner/name"`` on the Hugging Face
    Hub (downloaded into the Hub's cache; needs ``pip install 'gankit[hub]'``).
    With ``ema`` (the default) the moving-average weights are used when the run had the ``ema`` trick.
    A run folder's newest damaged checkpoint is skipped with a warning (the previous one is used).
    Before the generator is built, the recipe's generator is built on the meta device and checked
    against the file's tensors and against the memory available, so a crafted recipe never
    allocates more than the file holds.
    """
    from gankit import sharing
    from gankit.devices import resolve_device
    from gankit.resources import build_on_meta, check_memory, check_weights_fit, estimate_sampling_memory
    from gankit.training.resuming import recipe_from_checkpoint

    if sharing.is_hub_reference(path):
        path = sharing.download(str(path))
    if sharing.is_export(path):
        return sharing.load_export(path, device=device)
    target = resolve_device(device)
    file, ckpt = load_source(path)
    recipe = recipe_from_checkpoint(ckpt.state, str(file))
    if recipe.task != "gan":
        hint = ""
        if recipe.task == "fast-style":
            hint = f": stylize photos with gankit stylize --model {path} --content photo.jpg"
        raise GankitError(f"{path}: a {recipe.task} run, not a GAN: it has no generator to sample{hint}")
    shape = _sample_shape(ckpt.state, recipe)
    prefix, strip = _generator_weights(ckpt.state, recipe, ema)
    weights = {k[len(prefix) :].removeprefix(strip): v for k, v in ckpt.tensors.items() if k.startswith(prefix)}
    spec = recipe["generator"]
    num_classes, class_names = _classes(ckpt.state, recipe)
    planned = build_on_meta(spec, shape=shape, num_classes=num_classes)
    if planned is not None:
        try:
            check_weights_fit(planned, {k: tuple(v.shape) for k, v in weights.items()}, "generator", str(file))
        except GankitError as error:
            if num_classes_of(planned):
                raise GankitError(f"{error}. The file records {num_classes} classes and its class-conditional "
                                  "generator was built for them: the file is damaged or was edited") from None
            raise
        estimate = estimate_sampling_memory(planned, 1, SAMPLE_BATCH, target, f"the generator of {file}")
        check_memory(estimate, target, "Sample on another device.")
    generator: nn.Module = spec.build(shape=shape, num_classes=num_classes)
    try:
        generator.load_state_dict(weights)
    except RuntimeError as error:
        raise GankitError(f"{file}: weights do not fit the recipe's generator: {error}") from error
    generator.to(target).eval()
    names = class_names if num_classes_of(generator) else None
    return LoadedGenerator(generator, recipe, int(ckpt.state.get("step", 0)), file, shape, names)


def num_classes_of(generator: Any) -> int:
    """Classes a generator (or :class:`LoadedGenerator`) is conditioned on; 0 when it is unconditional."""
    return int(getattr(_module(generator), "num_classes", 0) or 0)


def _not_conditional(what: str = "labels") -> GankitError:
    return GankitError(
        f"{what}: this generator is not class-conditional (it was trained without class labels), so it cannot be "
        "asked for a class"
    )


def _names_of(generator: Any) -> list[str] | None:
    return generator.class_names if isinstance(generator, LoadedGenerator) else None


def _valid_classes(count: int, names: list[str] | None, limit: int = 12) -> str:
    text = f"{count} classes, 0 to {count - 1}"
    if names and names != [str(i) for i in range(count)]:
        shown = ", ".join(names[:limit]) + (f", ... ({count - limit} more)" if count > limit else "")
        text += f" (names: {shown})"
    return text


def class_index(generator: Any, value: int | str, what: str = "class") -> int:
    """The class index ``value`` names for a conditional generator: a class name (from the run's data), or an index.

    A name wins over an index (a folder called ``"3"`` is the class named 3);
    anything else is a :class:`GankitError` naming the valid range and names
    (``what`` is how the message calls the value, ``"--class"`` say).
    """
    count = num_classes_of(generator)
    if not count:
        raise _not_conditional(what)
    names = _names_of(generator)
    if isinstance(value, str):
        if names and value in names:
            return names.index(value)
        try:
            index = int(value.strip())
        except ValueError:
            valid = _valid_classes(count, names)
            raise GankitError(f"{what} {value!r} is not one of the generator's {valid}") from None
    else:
        index = int(value)
    if not 0 <= index < count:
        raise GankitError(f"{what} {value!r} is out of range: the generator has {_valid_classes(count, names)}")
    return index


Labels = int | str | Sequence[int | str] | torch.Tensor


def class_labels(generator: Any, n: int, labels: Labels | None = None) -> torch.Tensor | None:
    """``n`` class labels for a generator: None when it is unconditional, ``labels`` checked and expanded otherwise.

    ``labels`` is one class for every sample (an index or a name), or one per
    sample; left out, the classes cycle ``0, 1, 2, ...``. Labels for an
    unconditional generator are a :class:`GankitError`.
    """
    count = num_classes_of(generator)
    if not count:
        if labels is not None:
            raise _not_conditional()
        return None
    if labels is None:
        return torch.arange(n) % count
    if isinstance(labels, int | str):
        return torch.full((n,), class_index(generator, labels), dtype=torch.int64)
    if isinstance(labels, torch.Tensor):
        values: list[int | str] = [int(v) for v in labels.flatten().tolist()]
    else:
        values = list(labels)
    if len(values) != n:
        raise GankitError(f"labels: give one class for all samples or one per sample ({n}), got {len(values)}")
    return torch.tensor([class_index(generator, v) for v in values], dtype=torch.int64)


def _module(generator: Any) -> nn.Module:
    module: nn.Module = generator.generator if isinstance(generator, LoadedGenerator) else generator
    return module


def _concatenate(outputs: list[Any]) -> Any:
    if len(outputs) == 1:
        return outputs[0]
    if isinstance(outputs[0], list | tuple):
        return [torch.cat(scale) for scale in zip(*outputs, strict=True)]
    return torch.cat(outputs)


def truncated(generator: Any, latents: torch.Tensor, psi: float, labels: torch.Tensor | None = None) -> Any:
    """Images of ``latents`` with their ``w`` pulled towards the average: ``w_avg + psi * (w - w_avg)``.

    ``psi = 1`` leaves ``w`` as it is, ``psi = 0`` gives the average image,
    values in between trade variety for typical samples (the truncation
    trick). Needs a generator with a mapping network: ``mapping``,
    ``synthesis`` and ``w_avg`` (see :class:`gankit.protocols.Generator`).
    """
    module = _module(generator)
    mapping, synthesis = getattr(module, "mapping", None), getattr(module, "synthesis", None)
    w_avg = getattr(module, "w_avg", None)
    if not (callable(mapping) and callable(synthesis) and isinstance(w_avg, torch.Tensor)):
        recipe = generator.recipe if isinstance(generator, LoadedGenerator) else None
        name = f"generator {recipe['generator'].name!r}" if recipe is not None else type(module).__name__
        raise GankitError(
            f"truncation needs a generator with a mapping network (mapping, synthesis and w_avg, as 'stylegan2' "
            f"has); {name} has none: sample without truncation"
        )
    if not math.isfinite(psi):
        raise GankitError(f"truncation = {psi}: give a finite number (0: the average image, 1: no truncation)")
    w = mapping(latents) if labels is None else mapping(latents, labels)
    if psi != 1.0:
        w = w_avg.to(w.dtype) + psi * (w - w_avg.to(w.dtype))
    return synthesis(w)


@torch.no_grad()
def sample(
    generator: Any,
    n: int,
    *,
    seed: int = 0,
    latents: torch.Tensor | None = None,
    batch_size: int = SAMPLE_BATCH,
    truncation: float | None = None,
    labels: Labels | None = None,
) -> Any:
    """``n`` samples from a generator (or a :class:`LoadedGenerator`) with seeded latents.

    The generator runs on ``batch_size`` latents at a time, so the memory its activations take
    stays bounded however many samples are drawn. A class-conditional generator is asked for
    ``labels`` (see :func:`class_labels`: one class, by index or name, or one per sample; by
    default the classes in turn); the latents are the same whatever the labels. ``truncation``
    (psi) pulls every sample towards the average one, for generators with a mapping network
    (see :func:`truncated`).
    """
    if batch_size <= 0:
        raise GankitError(f"batch_size {batch_size}: must be positive")
    module = _module(generator)
    device = next(module.parameters()).device
    latent_dim = int(cast(int, module.latent_dim))
    if latents is None:
        latents = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))
    classes = class_labels(generator, len(latents), labels)
    was_training = module.training
    module.eval()
    try:
        outputs = []
        for i in range(0, max(len(latents), 1), batch_size):
            z = latents[i : i + batch_size].to(device)
            y = None if classes is None else classes[i : i + batch_size].to(device)
            if truncation is not None:
                outputs.append(truncated(generator, z, float(truncation), y))
            else:
                outputs.append(module(z) if y is None else module(z, y))
    finally:
        module.train(was_training)
    return _concatenate(outputs)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors (better than linear for Gaussian latents)."""
    a_n = a / a.norm(dim=-1, keepdim=True)
    b_n = b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@torch.no_grad()
def interpolate(
    generator: Any,
    steps: int = 10,
    *,
    rows: int = 1,
    seed: int = 0,
    labels: Labels | None = None,
    truncation: float | None = None,
) -> Any:
    """``rows`` strips of ``steps`` samples each, walking the latent space between two random points.

    For a class-conditional generator each strip stays within one class:
    ``labels`` gives one class for every strip or one per strip (by index or
    name); by default strip ``i`` is class ``i`` (cycling). ``truncation`` as
    in :func:`sample`.
    """
    module = _module(generator)
    latent_dim = int(cast(int, module.latent_dim))
    rng = torch.Generator().manual_seed(seed)
    start = torch.randn(rows, 1, latent_dim, generator=rng)
    end = torch.randn(rows, 1, latent_dim, generator=rng)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    latents = slerp(start, end, t).reshape(rows * steps, latent_dim)
    per_row = class_labels(generator, rows, labels)
    classes = None if per_row is None else per_row.repeat_interleave(steps)
    return sample(generator, rows * steps, latents=latents, labels=classes, truncation=truncation)


def walk_latents(latent_dim: int, frames: int, *, paths: int = 1, keys: int = 3, seed: int = 0) -> torch.Tensor:
    """Latents of ``paths`` closed walks through the latent space, ``frames`` points each: ``(frames, paths, dim)``.

    Each walk passes through ``keys`` random latents and back to the first
    (spherical interpolation between them, at an even pace), so a video of it
    loops without a jump. Three keys at least: with two, the way back would
    retrace the way there.
    """
    if frames < 1 or paths < 1 or keys < 3:
        raise GankitError("a latent walk needs at least 1 frame, 1 path and 3 key latents")
    rng = torch.Generator().manual_seed(seed)
    points = torch.randn(keys, paths, latent_dim, generator=rng)
    position = torch.arange(frames, dtype=torch.float64) * keys / frames
    index = position.floor().long()
    t = (position - index).float().view(frames, 1, 1)
    start, end = points[index], points[(index + 1) % keys]
    return slerp(start, end, t)
