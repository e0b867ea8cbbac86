"""Projection: find the latent whose generated image matches a given image (GAN inversion).

The latent is found by gradient descent on a distance between the generated
and the target image: the mean squared pixel difference, plus (with an
encoder) a perceptual distance between the two images' features, each layer's
channel vectors scaled to unit length first, as in LPIPS. The procedure
follows the projector of StyleGAN2 (Karras et al. 2020):

- the search runs in ``w`` space for a generator with ``mapping`` and
  ``synthesis`` (from the average ``w``), in ``z`` space otherwise (from the
  best of ``starts`` random latents);
- Adam with a learning rate that warms up over the first 5 % of the steps and
  decays along a cosine over the last 25 %;
- Gaussian noise added to the latent, fading out over the first 75 % of the
  steps (so that the search does not settle in the first basin it finds);
- with ``noise_buffers()`` (StyleGAN's per-pixel noise inputs): the noise maps
  are optimised too, renormalised after every step, and regularised so that
  they stay noise (the squared autocorrelation at one pixel, at every scale).

The latent is saved as safetensors (:func:`save_latents`); ``gankit sample
--latent FILE`` draws it again.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError

Space = Literal["z", "w"]
Encoder = Callable[[Tensor], list[Tensor]]

#: Layers of a VGG encoder the perceptual distance reads by default (LPIPS's, without relu5_3).
VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
#: ``w`` samples used to estimate the average ``w`` when the generator keeps none (StyleGAN2's projector: 10,000).
W_AVG_SAMPLES = 10_000
#: The metadata key of a latent file.
LATENT_META = "gankit_latent"


@dataclass
class ProjectionSettings:
    """How a projection searches. The defaults are StyleGAN2's projector's, but for ``steps`` and ``starts``."""

    steps: int = 500
    lr: float = 0.1
    pixel_weight: float = 1.0
    feature_weight: float = 1.0
    noise_weight: float = 1e5
    latent_noise: float = 0.05
    starts: int = 32
    seed: int = 0
    label: int | None = None
    frame_every: int = 0

    def check(self) -> None:
        """Raise a :class:`GankitError` for a setting that can never make sense."""
        if self.steps < 1:
            raise GankitError(f"--steps {self.steps}: a projection needs at least one step")
        if self.lr <= 0:
            raise GankitError(f"--lr {self.lr}: must be positive")
        if self.starts < 1:
            raise GankitError(f"--starts {self.starts}: must be at least 1")
        for name in ("pixel_weight", "feature_weight", "noise_weight", "latent_noise"):
            if getattr(self, name) < 0:
                raise GankitError(f"{name.replace('_', '-')} = {getattr(self, name)}: must be 0 or more")
        if self.frame_every < 0:
            raise GankitError(f"--frame-every {self.frame_every}: must be 0 or more")


@dataclass
class Projection:
    """What a projection found: the latent, the noise maps, the image, and the distances along the way."""

    space: Space
    latents: Tensor
    noise: list[Tensor]
    image: Tensor
    target: Tensor
    labels: Tensor | None
    start_distance: float
    distance: float
    pixel_distance: float
    feature_distance: float
    history: list[dict[str, float]] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)


# --------------------------------------------------------------------------- the generator's side


def _module(generator: Any) -> nn.Module:
    from gankit.training.generate import LoadedGenerator

    module: nn.Module = generator.generator if isinstance(generator, LoadedGenerator) else generator
    return module


def has_mapping(generator: nn.Module) -> bool:
    """Whether the generator has a mapping network (``mapping`` and ``synthesis``): then projection works in ``w``."""
    return callable(getattr(generator, "mapping", None)) and callable(getattr(generator, "synthesis", None))


def noise_buffers(generator: nn.Module) -> list[Tensor]:
    """The generator's noise inputs (its ``noise_buffers()``), or none."""
    method = getattr(generator, "noise_buffers", None)
    return list(method()) if callable(method) else []


def _owners(generator: nn.Module, buffers: Sequence[Tensor]) -> list[tuple[nn.Module, str]]:
    """The module and name each buffer is registered under."""
    where: dict[int, tuple[nn.Module, str]] = {}
    for module in generator.modules():
        for name, buffer in module._buffers.items():
            if buffer is not None:
                where.setdefault(id(buffer), (module, name))
    owners = []
    for buffer in buffers:
        if id(buffer) not in where:
            raise GankitError(
                f"{type(generator).__name__}.noise_buffers() returned a tensor that is not one of its buffers"
            )
        owners.append(where[id(buffer)])
    return owners


@contextlib.contextmanager
def noise_in_use(generator: nn.Module, noise: Sequence[Tensor]) -> Iterator[None]:
    """The generator reads ``noise`` (tensors that may need gradients) for its noise inputs, inside the block."""
    buffers = noise_buffers(generator)
    if not noise:
        yield
        return
    if len(noise) != len(buffers):
        raise GankitError(f"{len(noise)} noise maps given, but the generator has {len(buffers)} noise inputs")
    owners = _owners(generator, buffers)
    for (module, name), value, old in zip(owners, noise, buffers, strict=True):
        if tuple(value.shape) != tuple(old.shape):
            raise GankitError(f"noise map {name}: shape {tuple(value.shape)}, the generator's is {tuple(old.shape)}")
        module._buffers[name] = value
    try:
        yield
    finally:
        for (module, name), old in zip(owners, buffers, strict=True):
            module._buffers[name] = old


def _last(images: Any) -> Tensor:
    """The largest image of a multi-scale output, or the output itself."""
    out: Tensor = images[-1] if isinstance(images, list | tuple) else images
    return out


def synthesize(generator: nn.Module, latents: Tensor, space: Space, labels: Tensor | None = None) -> Tensor:
    """Images of ``latents``: ``synthesis(w)`` in ``w`` space, the generator itself in ``z`` space."""
    if space == "w":
        return _last(generator.synthesis(latents))  # type: ignore[operator]
    return _last(generator(latents) if labels is None else generator(latents, labels))


def _map(generator: nn.Module, z: Tensor, labels: Tensor | None) -> Tensor:
    mapping: Any = generator.mapping
    w: Tensor = mapping(z) if labels is None else mapping(z, labels)
    return w


def average_w(generator: nn.Module, labels: Tensor | None, *, seed: int, device: torch.device) -> tuple[Tensor, float]:
    """The average ``w`` (the generator's ``w_avg`` when it keeps one) and the spread of ``w`` around it."""
    latent_dim = int(generator.latent_dim)  # type: ignore[arg-type]
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(W_AVG_SAMPLES, latent_dim, generator=rng).to(device)
    batch_labels = None if labels is None else labels.expand(W_AVG_SAMPLES)
    with torch.no_grad():
        w = torch.cat([_map(generator, z[i : i + 1000], None if batch_labels is None else batch_labels[i : i + 1000])
                       for i in range(0, W_AVG_SAMPLES, 1000)])
    kept = getattr(generator, "w_avg", None)
    mean = kept.to(device).float().expand_as(w[:1]).clone() if isinstance(kept, Tensor) else w.mean(0, keepdim=True)
    first = (w - mean)[:, :1] if w.dim() == 3 else w - mean  # one w of a broadcast (N, num_ws, w_dim)
    spread = float(first.pow(2).sum(dim=tuple(range(1, first.dim()))).mean().sqrt())
    return mean, spread


# --------------------------------------------------------------------------- distances


def unit_channels(features: Tensor) -> Tensor:
    """Each position's channel vector scaled to unit length (LPIPS's normalisation)."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).add(1e-10).sqrt())


def feature_distance(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    """Mean over layers of the mean squared difference of unit-length channel vectors."""
    terms = [(unit_channels(x) - unit_channels(y)).pow(2).sum(dim=1).mean() for x, y in zip(a, b, strict=True)]
    return torch.stack(terms).mean()


def encoder_features(
    encoder: nn.Module, layers: Sequence[str] | None, *, size: int | None = None
) -> Encoder:
    """A function from images in [-1, 1] to a list of feature maps, for an encoder part.

    Images become RGB in [0, 1] (the VGG encoders' input), resized so the
    shorter side is ``size`` (default: the image's, but at least 64, so that
    the deeper layers still see a few positions). ``layers`` are passed to
    encoders that take them (VGG); a dict of outputs gives its values in
    order, a tensor gives one feature map.
    """

    def features(images: Tensor) -> list[Tensor]:
        x = (images.clamp(-1, 1) + 1) / 2
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        side = size or max(64, min(x.shape[-2:]))
        if min(x.shape[-2:]) != side:
            x = F.interpolate(x, scale_factor=side / min(x.shape[-2:]), mode="bilinear", align_corners=False,
                              antialias=side < min(x.shape[-2:]))
        out = encoder(x, list(layers)) if layers else encoder(x)
        if isinstance(out, dict):
            return [v if v.dim() > 2 else v[..., None, None] for v in out.values()]
        return [out if out.dim() > 2 else out[..., None, None]]

    return features


def noise_regularisation(noise: Sequence[Tensor]) -> Tensor:
    """StyleGAN2's: the squared mean autocorrelation at a one-pixel shift, each way, at every scale down to 8x8."""
    total = torch.zeros((), device=noise[0].device)
    for n in noise:
        x = n.reshape(1, 1, *n.shape[-2:]) if n.dim() == 2 else n.reshape(-1, 1, *n.shape[-2:])
        while True:
            across = (x * torch.roll(x, 1, dims=3)).mean().square()
            down = (x * torch.roll(x, 1, dims=2)).mean().square()
            total = total + across + down
            if min(x.shape[-2:]) <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return total


def _learning_rate(base: float, t: float) -> float:
    """StyleGAN2's projector: a 5 % warm-up, a cosine decay over the last 25 %."""
    ramp = min(1.0, (1.0 - t) / 0.25)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return base * ramp * min(1.0, t / 0.05)


# --------------------------------------------------------------------------- the search


def project(
    generator: Any,
    target: Tensor,
    *,
    settings: ProjectionSettings | None = None,
    encoder: Encoder | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> Projection:
    """Find the latent whose image is closest to ``target`` ``(1, C, H, W)`` in [-1, 1] (see the module's docstring).

    ``generator`` is a module or a :class:`~gankit.training.generate.LoadedGenerator`;
    ``encoder`` maps images in [-1, 1] to feature maps (:func:`encoder_features`),
    or None for the pixel distance alone. ``progress(step, values)`` is
    called after every step.
    """
    settings = settings or ProjectionSettings()
    settings.check()
    module = _module(generator)
    if int(getattr(module, "latent_dim", 0) or 0) <= 0:
        raise GankitError("projection needs a generator with a positive latent_dim")
    device = next(module.parameters()).device
    target = target.to(device).float()
    with torch.no_grad():
        probe = synthesize(module, torch.zeros(1, int(module.latent_dim), device=device), "z",  # type: ignore[arg-type]
                           _labels(module, settings, device))
    if probe.dim() != 4:
        raise GankitError("projection works on image generators; this one makes points, not images")
    if tuple(probe.shape[1:]) != tuple(target.shape[1:]):
        raise GankitError(
            f"the target image is {tuple(target.shape[1:])}, the generator makes {tuple(probe.shape[1:])}"
        )
    was_training = module.training
    module.eval()
    requires = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        return _search(module, target, settings, encoder, device, progress)
    finally:
        for p, flag in zip(module.parameters(), requires, strict=True):
            p.requires_grad_(flag)
        module.train(was_training)


def _labels(module: nn.Module, settings: ProjectionSettings, device: torch.device) -> Tensor | None:
    classes = int(getattr(module, "num_classes", 0) or 0)
    if classes == 0:
        if settings.label is not None:
            raise GankitError("--label: this generator is not conditional (it has no classes)")
        return None
    if settings.label is None or not 0 <= settings.label < classes:
        raise GankitError(
            f"the generator is conditional: give the class of the image with --label (0 to {classes - 1})"
        )
    return torch.tensor([settings.label], device=device)


def _search(
    module: nn.Module, target: Tensor, s: ProjectionSettings, encoder: Encoder | None, device: torch.device,
    progress: Callable[[int, dict[str, float]], None] | None,
) -> Projection:
    labels = _labels(module, s, device)
    space: Space = "w" if has_mapping(module) else "z"
    target_features = [f.detach() for f in encoder(target)] if encoder is not None and s.feature_weight > 0 else None

    def distances(images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        pixel = (images - target).pow(2).flatten(1).mean(1)
        if target_features is None:
            return pixel, pixel, torch.zeros_like(pixel)
        features = encoder(images)  # type: ignore[misc]
        feature = torch.stack([feature_distance([f[i : i + 1] for f in features], target_features)
                               for i in range(images.shape[0])])
        return s.pixel_weight * pixel + s.feature_weight * feature, pixel, feature

    rng = torch.Generator().manual_seed(s.seed)
    buffers = noise_buffers(module)
    noise = [torch.randn(b.shape, generator=rng).to(device).requires_grad_(True) for b in buffers]
    if space == "w":
        start, spread = average_w(module, labels, seed=s.seed, device=device)
    else:
        start = _best_start(module, labels, s, rng, device, distances, noise)
        spread = math.sqrt(start.shape[-1])  # the length of a typical z
    # a mapping network that gives one w per layer (N, num_ws, w_dim) is searched with one w for all layers (W)
    broadcast = int(start.shape[1]) if space == "w" and start.dim() == 3 else 0
    if broadcast:
        start = start[:, :1]

    def full(w: Tensor) -> Tensor:
        return w.expand(-1, broadcast, -1) if broadcast else w

    latent = start.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent, *noise], lr=s.lr, betas=(0.9, 0.999))
    with torch.no_grad(), noise_in_use(module, [n.detach() for n in noise]):
        start_distance = float(distances(synthesize(module, full(latent), space, labels))[0])
    history: list[dict[str, float]] = []
    frames: list[np.ndarray] = []
    for step in range(s.steps):
        t = step / s.steps
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(s.lr, t)
        jitter = spread * s.latent_noise * max(0.0, 1.0 - t / 0.75) ** 2
        noisy = latent + torch.randn(latent.shape, generator=rng).to(device) * jitter
        with noise_in_use(module, noise):
            images = synthesize(module, full(noisy), space, labels)
        distance, pixel, feature = distances(images)
        loss = distance.sum()
        if noise:
            loss = loss + s.noise_weight * noise_regularisation(noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for n in noise:
                n.sub_(n.mean()).mul_(n.pow(2).mean().add(1e-8).rsqrt())
        values = {"distance": float(distance.detach().sum()), "pixel": float(pixel.detach().sum()),
                  "feature": float(feature.detach().sum())}
        history.append(values)
        if progress is not None:
            progress(step + 1, values)
        if s.frame_every and (step % s.frame_every == 0 or step == s.steps - 1):
            frames.append(_frame(target, images.detach()))
    final_noise = [n.detach() for n in noise]
    with torch.no_grad(), noise_in_use(module, final_noise):
        image = synthesize(module, full(latent.detach()), space, labels)
        distance, pixel, feature = distances(image)
    return Projection(
        space=space, latents=full(latent.detach()).clone(), noise=final_noise, image=image, target=target,
        labels=labels,
        start_distance=start_distance, distance=float(distance.sum()), pixel_distance=float(pixel.sum()),
        feature_distance=float(feature.sum()), history=history, frames=frames,
    )


def _best_start(
    module: nn.Module, labels: Tensor | None, s: ProjectionSettings, rng: torch.Generator, device: torch.device,
    distances: Callable[[Tensor], tuple[Tensor, Tensor, Tensor]], noise: Sequence[Tensor],
) -> Tensor:
    """The closest of ``starts`` random latents (``z`` space)."""
    latent_dim = int(module.latent_dim)  # type: ignore[arg-type]
    candidates = torch.randn(s.starts, latent_dim, generator=rng).to(device)
    best, best_distance = candidates[:1], math.inf
    with torch.no_grad(), noise_in_use(module, [n.detach() for n in noise]):
        for i in range(0, s.starts, 16):
            chunk = candidates[i : i + 16]
            chunk_labels = None if labels is None else labels.expand(chunk.shape[0])
            found = distances(synthesize(module, chunk, "z", chunk_labels))[0]
            j = int(found.argmin())
            if float(found[j]) < best_distance:
                best, best_distance = chunk[j : j + 1], float(found[j])
    return best


def _frame(target: Tensor, image: Tensor) -> np.ndarray:
    from gankit.images import make_grid

    return make_grid(torch.cat([target, image]).cpu(), columns=2)


# --------------------------------------------------------------------------- latent files


@dataclass
class Latents:
    """Latents read from a file written by :func:`save_latents`."""

    space: Space
    latents: Tensor
    noise: list[Tensor]
    labels: Tensor | None
    info: dict[str, Any]


def save_latents(path: str | Path, projection: Projection, **info: Any) -> Path:
    """Write a projection's latent (``z`` or ``w``), noise maps and label as safetensors, atomically."""
    from safetensors.torch import save

    from gankit.files import write_bytes_atomic

    tensors: dict[str, Tensor] = {projection.space: projection.latents.detach().cpu().contiguous()}
    for i, n in enumerate(projection.noise):
        tensors[f"noise.{i}"] = n.detach().cpu().contiguous()
    if projection.labels is not None:
        tensors["labels"] = projection.labels.detach().cpu().contiguous()
    meta = {"space": projection.space, **info}
    try:
        return write_bytes_atomic(path, save(tensors, metadata={LATENT_META: json.dumps(meta)}))
    except OSError as error:
        raise GankitError(f"{path}: cannot write the latent ({error.strerror or error})") from error


def load_latents(path: str | Path) -> Latents:
    """Read a latent file (:func:`save_latents`); a clear error for anything else."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise GankitError(f"--latent {path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise GankitError(f"--latent {path}: not a safetensors file ({error})") from error
    if LATENT_META not in meta:
        raise GankitError(f"--latent {path}: not a latent file written by gankit project")
    info: dict[str, Any] = json.loads(meta[LATENT_META])
    space = info.get("space")
    if space not in ("z", "w") or space not in tensors:
        raise GankitError(f"--latent {path}: holds no 'z' or 'w' latent")
    noise = [tensors[f"noise.{i}"] for i in range(sum(1 for k in tensors if k.startswith("noise.")))]
    return Latents(space, tensors[space], noise, tensors.get("labels"), info)


def draw_latents(generator: Any, latents: Latents) -> Tensor:
    """The images of a latent file's latents, with its noise maps and labels."""
    module = _module(generator)
    device = next(module.parameters()).device
    if latents.space == "w" and not has_mapping(module):
        raise GankitError("the latent file holds w latents, but this generator has no mapping/synthesis")
    latent_dim = int(getattr(module, "latent_dim", 0) or 0)
    if latents.space == "z" and latents.latents.shape[-1] != latent_dim:
        raise GankitError(
            f"the latent file holds z of size {latents.latents.shape[-1]}, the generator takes {latent_dim}"
        )
    was_training = module.training
    module.eval()
    try:
        noise = [n.to(device) for n in latents.noise] if noise_buffers(module) else []
        labels = None if latents.labels is None else latents.labels.to(device)
        with torch.no_grad(), noise_in_use(module, noise):
            return synthesize(module, latents.latents.to(device), latents.space, labels)
    finally:
        module.train(was_training)
