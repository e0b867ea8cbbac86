"""Using a trained generator: load it from a run or checkpoint, sample, interpolate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from gankit.checkpoint import load_checkpoint, resolve_checkpoint
from gankit.errors import GankitError
from gankit.recipe import Recipe


@dataclass
class LoadedGenerator:
    """A generator rebuilt from a checkpoint, with the recipe it was trained with."""

    generator: nn.Module
    recipe: Recipe
    step: int
    source: Path

    @property
    def latent_dim(self) -> int:
        return int(getattr(self.generator, "latent_dim", 0))


def load_generator(path: str | Path, *, device: str | torch.device = "cpu", ema: bool = True) -> LoadedGenerator:
    """Rebuild the generator of a run folder, a checkpoint, or an exported ``generator.safetensors``.

    With ``ema`` (the default) the moving-average weights are used when the run had the ``ema`` trick.
    """
    from gankit.training.resuming import recipe_from_checkpoint

    file = resolve_checkpoint(path)
    ckpt = load_checkpoint(file)
    recipe = recipe_from_checkpoint(ckpt.state, str(file))
    data = recipe["data"].build(seed=recipe.run.seed)
    generator: nn.Module = recipe["generator"].build(shape=tuple(data.shape))
    weights = ckpt.group("generator")
    if ema and not ckpt.state.get("exported"):
        for i, spec in enumerate(recipe["tricks"]):
            if spec.name == "ema":
                weights = {k.removeprefix("s.average."): v for k, v in ckpt.group(f"trick.{i}").items()}
    try:
        generator.load_state_dict(weights)
    except RuntimeError as error:
        raise GankitError(f"{file}: weights do not fit the recipe's generator: {error}") from error
    generator.to(device).eval()
    return LoadedGenerator(generator, recipe, int(ckpt.state.get("step", 0)), file)


def _module(generator: Any) -> nn.Module:
    module: nn.Module = generator.generator if isinstance(generator, LoadedGenerator) else generator
    return module


def truncated(generator: Any, latents: torch.Tensor, psi: float) -> Any:
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
        name = (f"generator {generator.recipe['generator'].name!r}" if isinstance(generator, LoadedGenerator)
                else f"{type(module).__name__}")
        raise GankitError(
            f"truncation needs a generator with a mapping network (mapping, synthesis and w_avg, as 'stylegan2' "
            f"has); {name} has none: sample without truncation"
        )
    if not math.isfinite(psi):
        raise GankitError(f"truncation = {psi}: give a finite number (0: the average image, 1: no truncation)")
    w = mapping(latents)
    if psi != 1.0:
        w = w_avg.to(w.dtype) + psi * (w - w_avg.to(w.dtype))
    return synthesis(w)


@torch.no_grad()
def sample(
    generator: Any, n: int, *, seed: int = 0, latents: torch.Tensor | None = None, truncation: float | None = None
) -> Any:
    """``n`` samples from a generator (or a :class:`LoadedGenerator`) with seeded latents.

    ``truncation`` (psi) pulls every sample towards the average one, for
    generators with a mapping network (see :func:`truncated`).
    """
    module = _module(generator)
    device = next(module.parameters()).device
    latent_dim = int(cast(int, module.latent_dim))
    if latents is None:
        latents = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))
    was_training = module.training
    module.eval()
    try:
        if truncation is None:
            return module(latents.to(device))
        return truncated(generator, latents.to(device), float(truncation))
    finally:
        module.train(was_training)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors (better than linear for Gaussian latents)."""
    a_n = a / a.norm(dim=-1, keepdim=True)
    b_n = b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@torch.no_grad()
def interpolate(
    generator: Any, steps: int = 10, *, rows: int = 1, seed: int = 0, truncation: float | None = None
) -> Any:
    """``rows`` strips of ``steps`` samples each, walking the latent space between two random points."""
    module = _module(generator)
    latent_dim = int(cast(int, module.latent_dim))
    rng = torch.Generator().manual_seed(seed)
    start = torch.randn(rows, 1, latent_dim, generator=rng)
    end = torch.randn(rows, 1, latent_dim, generator=rng)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    latents = slerp(start, end, t).reshape(rows * steps, latent_dim)
    return sample(generator, rows * steps, latents=latents, truncation=truncation)
