"""The style-transfer loop: optimise an image so that its features match a content and a style image.

:func:`stylize` reads a ``style`` recipe (``gankit/recipes/style-transfer.toml``
by default), checks everything it can before any work (images, output path,
encoder weights and layers, memory), then optimises the pixels:

- the encoder is built trimmed after the deepest layer any loss reads, and
  one forward pass per step feeds every loss;
- targets (content activations, style Gram matrices) are computed once per
  scale, without gradients, and cached in the losses;
- only the image receives gradients: the encoder's parameters are frozen;
- pixels are kept in [0, 1]: L-BFGS adds a quadratic penalty on values outside
  (``range_weight``, logged as ``range``), Adam clamps after every step, and
  the result is clamped;
- with ``multi_scale = n`` the image is optimised at ``size / 2^(n-1)``, upscaled,
  and optimised again, up to ``size``;
- with ``preserve_color`` the result keeps the content image's chrominance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import Tensor, nn

from gankit.devices import resolve_device
from gankit.errors import GankitError, TrainingError
from gankit.progress import Progress
from gankit.recipe import Recipe, load_recipe, recipe_from_dict
from gankit.resources import available_memory
from gankit.style import images
from gankit.style.images import ImageInput
from gankit.style.losses import required_layers
from gankit.style.schema import StyleRunSettings

#: The recipe :func:`stylize` uses when given none.
DEFAULT_RECIPE = "style-transfer"
#: Multiplies the activation estimate to cover convolution workspaces and allocator slack.
MEMORY_MARGIN = 1.5
_GIB = 1 << 30


@dataclass
class StyleResult:
    """What :func:`stylize` returns.

    ``image`` is ``(1, 3, H, W)`` in [0, 1] on the CPU; ``history`` holds one
    dict per logged step (``step``, ``scale``, ``height``, ``width``, ``total`` and
    each loss by name, weighted); ``path`` is where it was saved, if anywhere.
    """

    image: Tensor
    history: list[dict[str, float]]
    seconds: float
    device: str
    recipe: Recipe
    path: Path | None = None
    frames: list[Path] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the result."""
        return int(self.image.shape[-2]), int(self.image.shape[-1])

    def to_pil(self) -> Any:
        """The result as a PIL image."""
        return images.tensor_to_pil(self.image)

    def save(self, path: str | Path) -> Path:
        """Write the result to an image file (the suffix picks the format)."""
        return images.save_image(self.image, path)


# --------------------------------------------------------------------------- preparation


def resolve_recipe(
    recipe: Recipe | str | Path | Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    run: Mapping[str, Any] | None = None,
) -> Recipe:
    """A validated ``style`` recipe from a recipe, a file, a shipped name or a dict, with overrides applied."""
    overrides = list(overrides)
    if recipe is None:
        recipe = DEFAULT_RECIPE
    if isinstance(recipe, Recipe):
        resolved = recipe_from_dict(recipe.to_dict(), overrides, name=recipe.name) if overrides else recipe
    elif isinstance(recipe, Mapping):
        resolved = recipe_from_dict(dict(recipe), overrides, name="style")
    else:
        resolved = load_recipe(recipe, overrides)
    if resolved.task != "style":
        raise GankitError(
            f"{resolved.source}: is a {resolved.task!r} recipe; style transfer needs a recipe with task = \"style\""
            f" (e.g. {DEFAULT_RECIPE})"
        )
    if run:
        data = resolved.to_dict()
        data["run"] = {**data["run"], **run}
        resolved = recipe_from_dict(data, name=resolved.name)
    return resolved


def scale_sizes(height: int, width: int, longest: int, scales: int) -> list[tuple[int, int]]:
    """``(height, width)`` at each scale, smallest first: the longest side halves per scale below ``longest``."""
    return [images.fit(height, width, max(1, round(longest / 2**k))) for k in range(scales - 1, -1, -1)]


def _loss_names(recipe: Recipe) -> list[str]:
    names: list[str] = []
    for spec in recipe["losses"]:
        name, n = spec.name, 2
        while name in names:
            name, n = f"{spec.name}-{n}", n + 1
        names.append(name)
    return names


def _build_losses(recipe: Recipe) -> list[Any]:
    specs = recipe["losses"]
    if not specs:
        raise GankitError(
            f"{recipe.source}: no [[losses]]: add at least one, e.g. type = \"content\" and type = \"gram-style\""
        )
    losses = []
    for i, spec in enumerate(specs):
        loss = spec.build()
        if not callable(loss) or not hasattr(loss, "weight"):
            raise GankitError(f"losses.{i}: {spec.name!r} did not build an image loss (a callable with a weight)")
        losses.append(loss)
    return losses


def _start_image(init: str, content: Tensor, size: tuple[int, int], seed: int, start: Tensor | None) -> Tensor:
    if init == "noise":
        return torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(seed))
    if init == "content":
        return images.resize(content, size).clone()
    assert start is not None
    return images.resize(start, size).clone()


def _check_memory(
    encoder: nn.Module,
    layers: Sequence[str],
    size: tuple[int, int],
    style_size: tuple[int, int],
    settings: StyleRunSettings,
    device: torch.device,
    arch: str,
) -> None:
    estimate = getattr(encoder, "estimate_bytes", None)
    free = available_memory(device)
    if estimate is None or free is None or not layers:
        return
    pixels = 3 * size[0] * size[1]
    optimizer_bytes = pixels * 4 * (2 * settings.history_size + 4 if settings.optimizer == "lbfgs" else 6)
    needed = int(MEMORY_MARGIN * estimate(*size, layers)) + optimizer_bytes + 8 * pixels * 4
    needed = max(needed, int(MEMORY_MARGIN * estimate(*style_size, layers) / 2))
    if device.type != "cpu":
        needed += sum(p.numel() * p.element_size() for p in encoder.parameters())
    if needed <= free:
        return
    longest = max(size)
    fits = max(16, int(longest * math.sqrt(free / needed) * 0.95) // 16 * 16)
    raise GankitError(
        f"{size[1]}x{size[0]} px needs about {needed / _GIB:.1f} GiB of {device.type} memory ({arch} up to"
        f" {getattr(encoder, 'layer_names', layers)[-1]}, {settings.optimizer}),"
        f" but about {free / _GIB:.1f} GiB is free. About {fits} px fits: set run.size = {fits} (--size {fits})"
        f"{' or use optimizer = adam' if settings.optimizer == 'lbfgs' and settings.history_size > 10 else ''}."
    )


def _check_min_size(encoder: nn.Module, layers: Sequence[str], size: tuple[int, int], what: str, fix: str) -> None:
    plan = getattr(encoder, "layers", None)
    if not plan or not layers:
        return
    deepest = [layer for layer in plan if layer.name in set(layers)][-1]
    stride = deepest.stride
    if min(size) < stride:
        raise GankitError(
            f"{what} is {size[1]}x{size[0]} px, too small for layer {deepest.name} (stride {stride}):"
            f" every side must be at least {stride} px; {fix}"
        )


# --------------------------------------------------------------------------- the loop


def stylize(
    content: ImageInput,
    style: ImageInput,
    recipe: Recipe | str | Path | Mapping[str, Any] | None = None,
    *,
    overrides: Iterable[str] = (),
    output: str | Path | None = None,
    frames_dir: str | Path | None = None,
    encoder: nn.Module | None = None,
    start: ImageInput | None = None,
    quiet: bool = False,
    stream: TextIO | None = None,
    on_log: Callable[[dict[str, float], Tensor], None] | None = None,
    **run: Any,
) -> StyleResult:
    """Render ``content`` in the style of ``style``; returns a :class:`StyleResult`.

    ``content`` and ``style`` are image paths, PIL images or tensors in [0, 1].
    ``recipe`` is a :class:`~gankit.recipe.Recipe`, a recipe file, the name of
    a shipped recipe or a dict (default ``style-transfer``); ``overrides`` are
    ``--set`` strings (``"losses.1.weight=1e4"``) and keyword arguments set
    ``[run]`` values (``size=128, steps=50``). The result is written to
    ``output`` when given; frames (``run.frames_every``) go to ``frames_dir``
    (default ``<output name>-frames``). ``encoder`` reuses an encoder built
    before, deep enough for the recipe's layers; it is moved to the run's
    device and frozen, and the recipe's ``[encoder]`` is then ignored.
    ``start`` (an image) is where the optimisation starts, in place of
    ``run.init`` (a video's previous stylized frame, for instance).
    Progress goes to ``stream`` (standard error by default) unless
    ``quiet``; ``on_log`` is called at every logged step with the logged
    values and the image. On Ctrl-C the image so far is written to
    ``output`` before the interrupt propagates.

    Every problem that can be found before optimising (unreadable images,
    missing weights, unknown layers, a size too large for memory) raises a
    :class:`~gankit.GankitError` first; a loss that becomes NaN or infinite
    raises :class:`~gankit.TrainingError`.
    """
    started = time.perf_counter()
    resolved = resolve_recipe(recipe, overrides, run)
    settings: StyleRunSettings = resolved.run
    device = resolve_device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)

    content_image = images.as_tensor(content, what="content image")
    style_image = images.as_tensor(style, what="style image")
    start_image = None
    init = settings.init
    if start is not None:
        start_image, init = images.as_tensor(start, what="start image"), "start"
    elif settings.init not in ("noise", "content"):
        start_image = images.as_tensor(Path(settings.init), what="start image (run.init)")
    out_path = images.check_output(output) if output is not None else None
    frames_folder = _frames_folder(settings, frames_dir, out_path)

    losses = _build_losses(resolved)
    names = _loss_names(resolved)
    layers = required_layers(losses)
    if encoder is None:
        encoder = resolved["encoder"].build(layers=layers) if layers else nn.Module()
    assert encoder is not None
    arch = getattr(encoder, "arch", resolved["encoder"].name)
    available = getattr(encoder, "layer_names", None)
    if available is not None:
        unknown = [name for name in layers if name not in available]
        if unknown:
            from gankit.style.vgg import check_layers

            check_layers(arch, unknown, available=available)
    encoder.eval().requires_grad_(False)

    longest = settings.default_size(device.type != "cpu")
    height, width = content_image.shape[-2:]
    sizes = scale_sizes(height, width, longest, settings.multi_scale)
    style_height, style_width = style_image.shape[-2:]
    style_sizes = [images.fit(style_height, style_width, max(1, round(max(s) * settings.style_scale))) for s in sizes]
    for i, (size, style_size) in enumerate(zip(sizes, style_sizes, strict=True), start=1):
        _check_min_size(encoder, layers, size, f"scale {i}", "raise run.size or lower run.multi_scale")
        _check_min_size(encoder, layers, style_size, f"the style image at scale {i}", "raise run.style_scale")
    _check_memory(encoder, layers, sizes[-1], style_sizes[-1], settings, device, arch)

    encoder.to(device)
    history: list[dict[str, float]] = []
    frames: list[Path] = []
    total_steps = settings.steps * len(sizes)
    image: Tensor | None = None
    with Progress(total_steps, description="stylize", quiet=quiet, stream=stream) as progress:
        progress.log(
            f"stylize: {width}x{height} content -> {sizes[-1][1]}x{sizes[-1][0]} px on {device},"
            f" {arch} ({getattr(encoder, 'weights_source', 'weights')}), {settings.optimizer},"
            f" {settings.steps} steps x {len(sizes)} scale(s)"
        )
        try:
            for index, size in enumerate(sizes):
                _set_targets(encoder, losses, content_image, style_image, size, style_sizes[index], device)
                if image is None:
                    image = _start_image(init, content_image, size, settings.seed, start_image)
                else:
                    image = images.resize(image, size)
                image = image.to(device).detach().requires_grad_(True)
                image = _optimise(
                    image, encoder, losses, names, layers, settings, progress, history, frames, frames_folder,
                    content_image, scale=index, offset=index * settings.steps, total=total_steps, on_log=on_log,
                )
        except KeyboardInterrupt:
            if out_path is not None and image is not None:
                saved = images.save_image(_finish(image, content_image, settings), out_path)
                progress.log(f"interrupted: wrote the image so far to {saved}")
            raise
    assert image is not None
    result_image = _finish(image, content_image, settings).cpu()
    result = StyleResult(result_image, history, time.perf_counter() - started, str(device), resolved, None, frames)
    if out_path is not None:
        result.path = result.save(out_path)
    return result


def _frames_folder(settings: StyleRunSettings, frames_dir: str | Path | None, output: Path | None) -> Path | None:
    if not settings.frames_every:
        return None
    folder: Path | None = None
    if frames_dir is not None:
        folder = Path(frames_dir)
    elif settings.frames_dir is not None:
        folder = Path(settings.frames_dir)
    elif output is not None:
        folder = output.with_name(f"{output.stem}-frames")
    if folder is None:
        raise GankitError("run.frames_every is set but there is no folder for frames: set run.frames_dir or an output")
    folder = folder.expanduser()
    if folder.exists() and not folder.is_dir():
        raise GankitError(f"frames folder {folder}: is a file")
    return folder


@torch.no_grad()
def _set_targets(
    encoder: nn.Module,
    losses: Sequence[Any],
    content: Tensor,
    style: Tensor,
    size: tuple[int, int],
    style_size: tuple[int, int],
    device: torch.device,
) -> None:
    for which, source, at in (("content", content, size), ("style", style, style_size)):
        group = [loss for loss in losses if getattr(loss, "target_image", None) == which]
        if group:
            features = encoder(images.resize(source, at).to(device), required_layers(group))
            for loss in group:
                loss.set_target(features)
            del features


def _finish(image: Tensor, content: Tensor, settings: StyleRunSettings) -> Tensor:
    image = image.detach().clamp(0.0, 1.0)
    if settings.preserve_color:
        image = images.preserve_colors(image, content)
    return image


def _optimise(
    image: Tensor,
    encoder: nn.Module,
    losses: Sequence[Any],
    names: Sequence[str],
    layers: Sequence[str],
    settings: StyleRunSettings,
    progress: Any,
    history: list[dict[str, float]],
    frames: list[Path],
    frames_folder: Path | None,
    content: Tensor,
    *,
    scale: int,
    offset: int,
    total: int,
    on_log: Callable[[dict[str, float], Tensor], None] | None,
) -> Tensor:
    lr = settings.learning_rate()
    optimizer: torch.optim.Optimizer
    if settings.optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS([image], lr=lr, max_iter=1, history_size=settings.history_size)
    else:
        optimizer = torch.optim.Adam([image], lr=lr)
    last: dict[str, Tensor] = {}
    penalise = isinstance(optimizer, torch.optim.LBFGS) and settings.range_weight > 0

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        features = encoder(image, layers) if layers else {}
        values = [loss(image, features).reshape(()) for loss in losses]
        if penalise:
            values.append(settings.range_weight * (image - image.clamp(0.0, 1.0)).square().mean())
        stacked = torch.stack(values)
        loss_sum = stacked.sum()
        loss_sum.backward()
        last["values"] = stacked.detach()
        last["total"] = loss_sum.detach()
        return loss_sum

    height, width = image.shape[-2:]
    for step in range(1, settings.steps + 1):
        if isinstance(optimizer, torch.optim.LBFGS):
            optimizer.step(closure)
        else:
            closure()
            optimizer.step()
            with torch.no_grad():
                image.clamp_(0.0, 1.0)
        done = offset + step
        # The loss is read (one host sync) only on logging steps: reading it every step would stall a GPU.
        logging_step = step == 1 or done % settings.log_every == 0 or step == settings.steps
        if not logging_step:
            progress.update(done)
        else:
            value = float(last["total"])
            if not math.isfinite(value):
                raise TrainingError(
                    f"the loss became {value} by step {done}: lower run.lr, or the loss weights,"
                    " or use optimizer = adam"
                )
            progress.update(done, loss=value)
            entry: dict[str, float] = {"step": done, "scale": scale + 1, "height": height, "width": width}
            entry.update(zip([*names, "range"] if penalise else names, last["values"].tolist(), strict=True))
            entry["total"] = value
            history.append(entry)
            shown = "  ".join(f"{name} {entry[name]:.4g}" for name in [*names, "range"] if name in entry)
            progress.log(f"step {done}/{total} [{width}x{height}]  {shown}  total {value:.4g}")
            if on_log is not None:
                on_log(dict(entry), image.detach())
        if frames_folder is not None and done % settings.frames_every == 0:
            frame = _finish(image, content, settings)
            frames.append(images.save_image(frame, frames_folder / f"frame-{done:05d}.png"))
    with torch.no_grad():
        image.clamp_(0.0, 1.0)
    return image.detach()
