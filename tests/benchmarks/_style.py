"""Style transfer for the performance suite: gankit's :func:`~gankit.style.stylize` against a hand-written Gatys loop.

Both sides run the ``style-transfer`` recipe's work on the same VGG19 encoder
(random weights, average pooling, trimmed after ``relu5_1``): targets from
one pass over the content image (``relu4_2``) and one over the style image
(Gram matrices of ``relu1_1`` ... ``relu5_1``), then ``steps`` iterations of
encoder forward → relative content + Gram losses (+ L-BFGS's range
penalty) → backward → optimiser step (L-BFGS with one evaluation per step, or
Adam followed by a clamp), from the same seeded noise image. The hand-written side does it in plain torch with the
encoder's convolutions; :func:`check_same_result` shows both end on the same
image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

RECIPE = "style-transfer"


@dataclass(frozen=True)
class GatysSettings:
    """What the hand-written loop needs from the ``style-transfer`` recipe (read from it, so both sides agree)."""

    content_layer: str
    content_weight: float
    style_layers: tuple[str, ...]
    style_weight: float
    lr: float
    history_size: int
    range_weight: float

    @property
    def layers(self) -> tuple[str, ...]:
        """Every encoder layer the losses read."""
        return (*self.style_layers, self.content_layer)


def gatys_settings(optimizer: str = "lbfgs") -> GatysSettings:
    """The shipped recipe's losses and run settings; an error if it is not one content + one Gram loss."""
    from gankit.style.loop import resolve_recipe

    recipe = resolve_recipe(RECIPE, [f"run.optimizer={optimizer}", "encoder.weights=random"])
    specs = {spec.name: spec.params for spec in recipe["losses"]}
    if set(specs) != {"content", "gram-style"} or len(recipe["losses"]) != 2:
        raise ValueError(f"the hand-written loop covers one content and one gram-style loss, not {list(specs)}")
    content, style = specs["content"], specs["gram-style"]
    for params in (content, style):
        if not params.relative or not isinstance(params.layers, list | tuple):
            raise ValueError("the hand-written loop covers relative losses with equally weighted layer lists")
    if len(content.layers) != 1:
        raise ValueError("the hand-written loop covers one content layer")
    run = recipe.run
    return GatysSettings(
        content_layer=content.layers[0], content_weight=float(content.weight),
        style_layers=tuple(style.layers), style_weight=float(style.weight),
        lr=run.learning_rate(), history_size=run.history_size,
        range_weight=float(getattr(run, "range_weight", 0.0)),
    )


def style_images(size: int, *, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A content and a style image ``(1, 3, size, size)`` in [0, 1]: smooth seeded noise with a 1/f spectrum."""
    from gankit.style.vgg import pink_noise

    pair = pink_noise(2, size, seed=seed)
    return pair[:1].contiguous(), pair[1:].contiguous()


def build_encoder(device: torch.device, *, seed: int = 0) -> Any:
    """VGG19, random weights, average pooling, trimmed after the recipe's deepest layer, frozen, on ``device``."""
    from gankit.style.vgg import VGGEncoder

    encoder = VGGEncoder("vgg19", pooling="avg", layers=gatys_settings().layers).init_random(seed)
    return encoder.eval().requires_grad_(False).to(device)


def recipe_overrides(optimizer: str, steps: int, size: int, device: torch.device) -> list[str]:
    """``--set`` strings that make the ``style-transfer`` recipe match the hand-written loop."""
    return [
        "encoder.weights=random",
        f"run.optimizer={optimizer}",
        f"run.steps={steps}",
        f"run.size={size}",
        f"run.device={device.type}",
        "run.init=noise",
        f"run.log_every={max(steps, 1)}",
    ]


def gankit_stylize(encoder: Any, content: Tensor, style: Tensor, *, optimizer: str, steps: int, size: int,
                   device: torch.device) -> Tensor:
    """gankit's loop: :func:`gankit.style.stylize` with a prebuilt encoder; returns the image."""
    from gankit.style import stylize

    result = stylize(content, style, RECIPE, overrides=recipe_overrides(optimizer, steps, size, device),
                     encoder=encoder, quiet=True)
    return result.image


def _gram(features: Tensor) -> Tensor:
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)).div(c * h * w)


class HandWrittenGatys:
    """Gatys et al.'s optimisation written by hand: a plain VGG forward over the encoder's convolutions."""

    def __init__(self, encoder: Any, device: torch.device) -> None:
        self.device = device
        self.settings = gatys_settings()
        self.plan: list[tuple[str, str, Any]] = []
        for layer in encoder.layers:
            module = encoder.conv(layer.name) if layer.kind == "conv" else None
            self.plan.append((layer.name, layer.kind, module))
        self.mean = encoder.mean
        self.std = encoder.std
        self.wanted = set(self.settings.layers)

    def features(self, image: Tensor, wanted: frozenset[str] | set[str] | None = None) -> dict[str, Tensor]:
        """The activations at ``wanted`` (default: the content and style layers), from one forward pass."""
        wanted = set(self.wanted if wanted is None else wanted)
        out: dict[str, Tensor] = {}
        x = (image - self.mean) / self.std
        previous = ""
        for name, kind, conv in self.plan:
            if not wanted:
                break
            if kind == "conv":
                x = conv(x)
            elif kind == "relu":
                x = F.relu(x, inplace=previous not in out)
            else:
                x = F.avg_pool2d(x, 2, 2)
            if name in wanted:
                out[name] = x
                wanted.discard(name)
            previous = name
        return out

    def run(self, content: Tensor, style: Tensor, *, optimizer: str, steps: int, seed: int = 0) -> Tensor:
        """``steps`` iterations from seeded noise at the content's size; returns the image in [0, 1].

        As in gankit's loop, L-BFGS keeps pixels in range with a penalty
        (``range_weight`` times the mean squared excess) and Adam clamps after
        each step; the result is clamped.
        """
        cfg = gatys_settings(optimizer)
        with torch.no_grad():
            target = self.features(content.to(self.device), {cfg.content_layer})[cfg.content_layer].clone()
            content_scale = target.square().mean().clamp_min(1e-12)
            style_feats = self.features(style.to(self.device), set(cfg.style_layers))
            grams = {name: _gram(style_feats[name]).mean(dim=0, keepdim=True) for name in cfg.style_layers}
            gram_scales = {name: g.square().sum().clamp_min(1e-12) for name, g in grams.items()}
            del style_feats
        size = tuple(content.shape[-2:])
        image = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(seed)).to(self.device)
        image.requires_grad_(True)
        opt: torch.optim.Optimizer
        lbfgs = optimizer == "lbfgs"
        if lbfgs:
            opt = torch.optim.LBFGS([image], lr=cfg.lr, max_iter=1, history_size=cfg.history_size)
        else:
            opt = torch.optim.Adam([image], lr=cfg.lr)
        layer_weight = 1.0 / len(cfg.style_layers)
        penalise = lbfgs and cfg.range_weight > 0

        def closure() -> Tensor:
            opt.zero_grad(set_to_none=True)
            feats = self.features(image)
            mse = (feats[cfg.content_layer] - target).square().mean() / content_scale
            content_loss = image.new_zeros(()) + 1.0 * mse
            style_loss = image.new_zeros(())
            for name in cfg.style_layers:
                diff = (_gram(feats[name]) - grams[name]).square().sum(dim=(1, 2)).mean() / gram_scales[name]
                style_loss = style_loss + layer_weight * diff
            values = [cfg.content_weight * content_loss, cfg.style_weight * style_loss]
            if penalise:
                values.append(cfg.range_weight * (image - image.clamp(0.0, 1.0)).square().mean())
            total = torch.stack(values).sum()
            total.backward()
            return total

        for _ in range(steps):
            if lbfgs:
                opt.step(closure)  # type: ignore[arg-type]
            else:
                closure()
                opt.step()
                with torch.no_grad():
                    image.clamp_(0.0, 1.0)
        with torch.no_grad():
            image.clamp_(0.0, 1.0)
        return image.detach()


def check_same_result(encoder: Any, content: Tensor, style: Tensor, device: torch.device,
                      optimizers: Sequence[str] = ("lbfgs", "adam"), steps: int = 2) -> dict[str, float]:
    """Largest pixel difference between gankit's and the hand-written result, per optimiser."""
    hand = HandWrittenGatys(encoder, device)
    size = int(content.shape[-1])
    out: dict[str, float] = {}
    for optimizer in optimizers:
        ours = gankit_stylize(encoder, content, style, optimizer=optimizer, steps=steps, size=size, device=device)
        theirs = hand.run(content, style, optimizer=optimizer, steps=steps).cpu()
        out[optimizer] = float((ours - theirs).abs().max())
    return out
