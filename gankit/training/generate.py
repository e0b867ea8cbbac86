"""Using a trained generator: load it from a run or checkpoint, sample, interpolate."""

from __future__ import annotations

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
    from gankit.training.trainer import recipe_from_checkpoint

    file = resolve_checkpoint(path)
    ckpt = load_checkpoint(file)
    recipe = recipe_from_checkpoint(ckpt.state, str(file))
    if recipe.task != "gan":
        hint = ""
        if recipe.task == "fast-style":
            hint = f": stylize photos with gankit stylize --model {path} --content photo.jpg"
        raise GankitError(f"{path}: a {recipe.task} run, not a GAN: it has no generator to sample{hint}")
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


@torch.no_grad()
def sample(generator: Any, n: int, *, seed: int = 0, latents: torch.Tensor | None = None) -> Any:
    """``n`` samples from a generator (or a :class:`LoadedGenerator`) with seeded latents."""
    module = _module(generator)
    device = next(module.parameters()).device
    latent_dim = int(cast(int, module.latent_dim))
    if latents is None:
        latents = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))
    was_training = module.training
    module.eval()
    out = module(latents.to(device))
    module.train(was_training)
    return out


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors (better than linear for Gaussian latents)."""
    a_n = a / a.norm(dim=-1, keepdim=True)
    b_n = b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@torch.no_grad()
def interpolate(generator: Any, steps: int = 10, *, rows: int = 1, seed: int = 0) -> Any:
    """``rows`` strips of ``steps`` samples each, walking the latent space between two random points."""
    module = _module(generator)
    latent_dim = int(cast(int, module.latent_dim))
    rng = torch.Generator().manual_seed(seed)
    start = torch.randn(rows, 1, latent_dim, generator=rng)
    end = torch.randn(rows, 1, latent_dim, generator=rng)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    latents = slerp(start, end, t).reshape(rows * steps, latent_dim)
    return sample(module, rows * steps, latents=latents)
