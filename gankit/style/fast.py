"""Feed-forward style transfer: train a stylizer network for one style, then apply it in one pass.

Johnson, Alahi and Fei-Fei (2016) train an image transformation network so
that its output for any photo minimises the same losses the optimisation loop
minimises for one photo: content (against the photo itself), Gram style
(against the style image) and total variation. Once trained, stylizing is a
single forward pass: milliseconds instead of minutes.

:func:`train_fast_style` trains a ``fast-style`` recipe into a run folder, the
way GAN runs are trained: the folder is claimed and locked
(:class:`~gankit.training.run_folder.RunFolder`), checkpoints are atomic
safetensors files with the training state as JSON (network, Adam, random
generators, the resized style image), ``metrics.jsonl`` gets the losses,
``samples/`` pictures of stylized photos, and Ctrl-C (or SIGTERM) finishes
the step, writes a checkpoint and stops; :func:`resume_fast_style` continues
from the latest checkpoint. A finished run exports ``stylizer.safetensors``:
the network and its recipe, which :func:`load_stylizer` reads.

With ``run.temporal_weight > 0`` the network also learns to be stable for
video (after Huang et al., "Real-Time Neural Style Transfer for Videos",
CVPR 2017, with a known motion instead of optical flow): each photo is cut
into two crops ``run.temporal_shift`` pixels apart at most, the second with
a little pixel noise, and the outputs must agree where the crops overlap.
"""

from __future__ import annotations

import json
import math
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gankit.checkpoint import (
    Checkpoint,
    join_state,
    latest_checkpoint,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    split_state,
    write_run_checkpoint,
)
from gankit.errors import GankitError, TrainingError
from gankit.files import write_bytes_atomic
from gankit.progress import Progress
from gankit.recipe import Recipe, loads_recipe
from gankit.style import images
from gankit.style.images import ImageInput
from gankit.style.losses import required_layers
from gankit.threads import describe, thread_policy
from gankit.training.run_folder import METRICS_FILE, RECIPE_FILE, SAMPLES_DIR, RunFolder
from gankit.training.signals import StopRequest

TASK = "fast-style"
#: What a finished run exports: the network and its recipe.
STYLIZER_FILE = "stylizer.safetensors"
#: The style image as the run used it (resized to ``style.size``).
STYLE_FILE = "style.png"


@dataclass
class FastStyleResult:
    """What a finished (or interrupted) fast-style run leaves behind."""

    run_dir: Path
    step: int
    checkpoint: Path | None
    interrupted: bool = False
    last: dict[str, Any] | None = None

    @property
    def stylizer(self) -> Path:
        """The exported network (written when the run finishes)."""
        return self.run_dir / STYLIZER_FILE


def default_run_dir(recipe: Recipe) -> Path:
    """``runs/<recipe name>-<date>-<time>`` (unless the recipe's ``run.out`` names one)."""
    if recipe.run.out:
        return Path(recipe.run.out)
    return Path("runs") / f"{recipe.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _check_task(recipe: Recipe) -> None:
    if recipe.task != TASK:
        raise GankitError(f"{recipe.source}: is a {recipe.task!r} recipe, not a {TASK!r} one")


def read_style_image(recipe: Recipe) -> Tensor:
    """The recipe's style image, read and resized to ``style.size`` (longest side); errors name the file.

    Values are rounded to 8 bits, as the copy kept in checkpoints is, so that
    a resumed run sees exactly the style targets the run started with.
    """
    path = recipe["style"].image
    if not path:
        raise GankitError(
            f"{recipe.source}: no style image: name one with --set style.image=painting.jpg"
            " (or image = \"painting.jpg\" in the recipe's [style] table)"
        )
    image = images.as_tensor(Path(path), what="style image (style.image)")
    height, width = image.shape[-2:]
    return images.resize(image, images.fit(height, width, recipe["style"].size)).mul(255).round().div(255)


class FastStyleTrainer:
    """Trains the stylizer of a ``fast-style`` recipe; see :mod:`gankit.style.fast`.

    ``style_image`` (``(1, 3, H, W)`` in [0, 1]) replaces reading
    ``style.image``: a resumed run uses the copy in its checkpoint.
    """

    def __init__(
        self,
        recipe: Recipe,
        run_dir: str | Path | None = None,
        *,
        quiet: bool = False,
        progress_stream: Any = None,
        folder: RunFolder | None = None,
        style_image: Tensor | None = None,
    ) -> None:
        from gankit.style.loop import _build_losses, _loss_names, resolve_device

        _check_task(recipe)
        self.recipe = recipe
        self.settings = settings = recipe.run
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(recipe)
        self.quiet = quiet
        self.progress_stream = progress_stream
        self.folder = folder
        self.device = resolve_device(settings.device)
        if isinstance(settings.threads, int):
            torch.set_num_threads(settings.threads)
        self.style_image = style_image if style_image is not None else read_style_image(recipe)
        self.losses = _build_losses(recipe)
        self.names = _loss_names(recipe)
        self.layers = required_layers(self.losses)
        self.content_layers = required_layers(
            loss for loss in self.losses if getattr(loss, "target_image", None) == "content"
        )
        self.data = recipe["data"].build()
        shape = getattr(self.data, "shape", None)
        if not hasattr(self.data, "sample") or shape is None or len(shape) != 3 or shape[0] != 3:
            raise GankitError(
                f"{recipe.source}: [data] must give RGB images (channels = 3), got samples of shape {shape}"
            )
        torch.manual_seed(settings.seed)
        self.network: nn.Module = recipe["network"].build().to(self.device)
        self.encoder: nn.Module = recipe["encoder"].build(layers=self.layers).to(self.device)
        self.encoder.eval().requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=settings.lr)
        self.data_rng = torch.Generator().manual_seed(settings.seed + 1)
        self.augment_rng = torch.Generator().manual_seed(settings.seed + 2)
        self.step = 0
        self._stop = StopRequest()
        self._set_style_targets()
        self.sample_photos = self._sample_photos()

    # ------------------------------------------------------------------ setup

    @torch.no_grad()
    def _set_style_targets(self) -> None:
        group = [loss for loss in self.losses if getattr(loss, "target_image", None) == "style"]
        if group:
            features = self.encoder(self.style_image.to(self.device), required_layers(group))
            for loss in group:
                loss.set_target(features)

    def _sample_photos(self) -> Tensor:
        count = self.settings.samples
        if hasattr(self.data, "images"):
            photos = self.data.images()[:count]
        else:
            photos = self.data.sample(count, generator=torch.Generator().manual_seed(self.settings.seed))
        return photos.add(1).div(2).clamp(0, 1)

    def _batch(self) -> Tensor:
        batch = self.data.sample(self.settings.batch_size, generator=self.data_rng)
        return batch.add(1).div(2).clamp(0, 1).to(self.device)

    # ------------------------------------------------------------------ one step

    def _temporal_pair(self, batch: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """Two crops of ``batch``, the second shifted by ``(dy, dx)`` and noisier."""
        shift = min(self.settings.temporal_shift, batch.shape[-1] // 4, batch.shape[-2] // 4)
        if shift < 1:
            raise GankitError(f"photos of {batch.shape[-1]} px are too small for the temporal loss: raise the size")
        dy, dx = (int(v) for v in torch.randint(0, shift + 1, (2,), generator=self.augment_rng))
        if dy == dx == 0:
            dx = shift
        height, width = batch.shape[-2] - shift, batch.shape[-1] - shift
        first = batch[..., :height, :width]
        second = batch[..., dy : dy + height, dx : dx + width]
        if self.settings.temporal_noise:
            noise = torch.randn(second.shape, generator=self.augment_rng).to(second.device)
            second = (second + self.settings.temporal_noise * noise).clamp(0, 1)
        return first, second, (dy, dx)

    def train_step(self) -> dict[str, Tensor]:
        """One optimiser step on one batch of photos; returns each loss by name (detached, weighted)."""
        self.network.train()
        batch = self._batch()
        temporal = self.settings.temporal_weight > 0
        if temporal:
            photos, shifted, (dy, dx) = self._temporal_pair(batch)
            outputs = self.network(torch.cat([photos, shifted]))
            output, shifted_output = outputs[: len(photos)], outputs[len(photos) :]
        else:
            photos, output = batch, self.network(batch)
        if self.content_layers:
            with torch.no_grad():
                targets = self.encoder(photos, self.content_layers)
            for loss in self.losses:
                if getattr(loss, "target_image", None) == "content":
                    loss.set_target(targets)
        features = self.encoder(output, self.layers) if self.layers else {}
        values = {name: loss(output, features).reshape(()) for name, loss in zip(self.names, self.losses)}
        if temporal:
            height, width = output.shape[-2:]
            margin = min(8, (height - dy) // 4, (width - dx) // 4)
            moved = output[..., dy + margin : height - margin, dx + margin : width - margin]
            again = shifted_output[..., margin : height - dy - margin, margin : width - dx - margin]
            values["temporal"] = self.settings.temporal_weight * (moved - again).square().mean()
        total = torch.stack(list(values.values())).sum()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.step += 1
        out = {name: value.detach() for name, value in values.items()}
        out["total"] = total.detach()
        return out

    # ------------------------------------------------------------------ state

    def state(self) -> Checkpoint:
        """The whole training state as a checkpoint."""
        from gankit import __version__

        ckpt = Checkpoint()
        ckpt.put("network", self.network.state_dict())
        ckpt.put("style", {"image": self.style_image.mul(255).round().to(torch.uint8)})
        ckpt.put("rng", {"torch": torch.get_rng_state(), "data": self.data_rng.get_state(),
                         "augment": self.augment_rng.get_state()})
        ckpt.state = {
            "task": TASK,
            "step": self.step,
            "gankit_version": __version__,
            "recipe": self.recipe.to_toml(),
            "recipe_name": self.recipe.name,
            "part_versions": self.recipe.part_versions(),
            "optim": split_state(self.optimizer.state_dict(), "optim", ckpt),
        }
        return ckpt

    def load_state(self, ckpt: Checkpoint) -> None:
        """Restore the training state of a checkpoint written by :meth:`state`."""
        try:
            self.network.load_state_dict(ckpt.group("network"))
            self.optimizer.load_state_dict(join_state(ckpt.state["optim"], "optim", ckpt))
        except (RuntimeError, KeyError, ValueError) as error:
            raise GankitError(f"checkpoint does not match the recipe's network: {error}") from error
        rng = ckpt.group("rng")
        torch.set_rng_state(rng["torch"])
        self.data_rng.set_state(rng["data"])
        self.augment_rng.set_state(rng["augment"])
        self.step = int(ckpt.state["step"])

    def checkpoint(self) -> Path:
        """Write a checkpoint of the current step."""
        return write_run_checkpoint(self.run_dir, self.step, self.state(), self.settings.keep_checkpoints)

    def export(self) -> Path:
        """Write the network alone, with its recipe, as ``stylizer.safetensors``."""
        from gankit import __version__

        ckpt = Checkpoint()
        ckpt.put("network", self.network.state_dict())
        ckpt.state = {
            "task": TASK,
            "step": self.step,
            "gankit_version": __version__,
            "recipe": self.recipe.to_toml(),
            "recipe_name": self.recipe.name,
            "part_versions": self.recipe.part_versions(),
            "exported": True,
        }
        path = self.run_dir / STYLIZER_FILE
        save_checkpoint(path, ckpt)
        return path

    @torch.no_grad()
    def save_samples(self) -> Path:
        """The sample photos (top row) and their stylized versions (bottom row), as samples/step-N.png."""
        from gankit.images import samples_picture, save_picture

        self.network.eval()
        photos = self.sample_photos.to(self.device)
        styled = self.network(photos).cpu()
        grid = torch.cat([photos.cpu(), styled]).mul(2).sub(1)
        path = self.run_dir / SAMPLES_DIR / f"step-{self.step:08d}.png"
        return save_picture(samples_picture(grid, columns=len(photos)), path)

    # ------------------------------------------------------------------ the loop

    def _prepare_run_dir(self, resumed: bool) -> None:
        if self.folder is None or not self.folder.locked:
            folder = RunFolder(self.run_dir)
            self.folder = folder.open_existing() if resumed else folder.claim_new(self.recipe.name)
        write_bytes_atomic(self.run_dir / RECIPE_FILE, self.recipe.to_toml().encode())
        if not resumed:
            images.save_image(self.style_image, self.run_dir / STYLE_FILE)

    def fit(self, steps: int | None = None, *, resumed: bool = False) -> FastStyleResult:
        """Train until ``steps`` (default: the recipe's ``run.steps``) steps in total are done."""
        total = steps if steps is not None else self.settings.steps
        self._prepare_run_dir(resumed)
        last_checkpoint: Path | None = None
        last: dict[str, Any] | None = None
        started = time.perf_counter()
        try:
            with (
                open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") as metrics,
                self._stop.handling(),
                Progress(total, description="fast-style", start=self.step, quiet=self.quiet,
                         stream=self.progress_stream) as progress,
            ):
                photos = f"{len(self.data)} photos" if hasattr(self.data, "__len__") else "photos"
                progress.log(
                    f"fast-style: {photos} of {self.data.shape[-1]} px, style"
                    f" {self.style_image.shape[-1]}x{self.style_image.shape[-2]} px,"
                    f" {getattr(self.encoder, 'arch', 'encoder')} ({getattr(self.encoder, 'weights_source', '')}),"
                    f" {sum(p.numel() for p in self.network.parameters()) / 1e6:.2f} M parameters, on {self.device}"
                )
                if self.step == 0:
                    self.save_samples()
                tuner = thread_policy(self.settings.threads, self.device,
                                      lambda choice: progress.log(f"step {self.step}: {describe(choice)}"))
                while self.step < total and not self._stop.requested:
                    began = time.perf_counter()
                    values = self.train_step()
                    if tuner is not None:
                        tuner.step_done(time.perf_counter() - began)
                    step = self.step
                    if step % self.settings.log_every == 0 or step == total or step == 1:
                        record = {"step": step, **{k: float(v) for k, v in values.items()},
                                  "seconds": round(time.perf_counter() - started, 3)}
                        if not math.isfinite(record["total"]):
                            raise TrainingError(
                                f"the loss became {record['total']} at step {step}: lower run.lr or the loss weights;"
                                f" the last good checkpoint stays in {self.run_dir}"
                            )
                        metrics.write(json.dumps(record) + "\n")
                        metrics.flush()
                        last = record
                        progress.update(step, loss=record["total"])
                    else:
                        progress.update(step)
                    if step % self.settings.sample_every == 0 or step == total:
                        self.save_samples()
                    if step % self.settings.checkpoint_every == 0 or step == total:
                        last_checkpoint = self.checkpoint()
                interrupted = self._stop.requested and self.step < total
                if interrupted:
                    progress.log(f"interrupted at step {self.step}: writing a checkpoint")
                    last_checkpoint = self.checkpoint()
            if not interrupted:
                self.export()
        finally:
            if self.folder is not None:
                self.folder.release()
        return FastStyleResult(self.run_dir, self.step, last_checkpoint, interrupted, last)


def train_fast_style(
    recipe: Recipe, out: str | Path | None = None, *, steps: int | None = None, quiet: bool = False,
    progress_stream: Any = None,
) -> FastStyleResult:
    """Train a ``fast-style`` recipe into the run folder ``out``; see :class:`FastStyleTrainer`."""
    _check_task(recipe)
    run_dir = Path(out) if out is not None else default_run_dir(recipe)
    # Everything is built (and every input read) before the run folder is claimed: a mistake leaves no folder.
    trainer = FastStyleTrainer(recipe, run_dir, quiet=quiet, progress_stream=progress_stream)
    return trainer.fit(steps)


def _recipe_from_state(state: dict[str, Any], source: str) -> Recipe:
    text = state.get("recipe")
    if not text:
        raise GankitError(f"{source}: carries no recipe, cannot rebuild its network")
    recipe = loads_recipe(text, source=f"{source} (recipe)", name=state.get("recipe_name", "fast-style"),
                          upgrade_versions=True)
    _check_task(recipe)
    return recipe


def resume_fast_style(
    run_dir: str | Path, *, steps: int | None = None, quiet: bool = False, progress_stream: Any = None
) -> FastStyleResult:
    """Continue a fast-style run from its latest checkpoint, up to ``steps`` in total (default: the recipe's)."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir).open_existing()
    try:
        path = latest_checkpoint(run_dir)
        ckpt = load_checkpoint(path)
        recipe = _recipe_from_state(ckpt.state, str(path))
        style = ckpt.group("style").get("image")
        if style is None:
            raise GankitError(f"{path}: holds no style image; is this a fast-style checkpoint?")
        trainer = FastStyleTrainer(recipe, run_dir, quiet=quiet, progress_stream=progress_stream, folder=folder,
                                   style_image=style.float().div(255).unsqueeze(0) if style.dim() == 3 else
                                   style.float().div(255))
        trainer.load_state(ckpt)
    except BaseException:
        folder.release()
        raise
    return trainer.fit(steps, resumed=True)


def run_task(run_dir: str | Path) -> str:
    """The task of the recipe a run folder was trained with (``"gan"`` when it does not say)."""
    path = latest_checkpoint(Path(run_dir))
    text = read_metadata(path).get("recipe") or ""
    try:
        return str(tomllib.loads(text).get("task", "gan"))
    except tomllib.TOMLDecodeError:
        return "gan"


# --------------------------------------------------------------------------- applying


class Stylizer:
    """A trained stylizer, ready to apply: ``stylizer(image)`` returns the stylized image.

    ``image`` is a path, a PIL image or a tensor in [0, 1]; the result is a
    ``(1, 3, H, W)`` tensor in [0, 1] on the CPU, at ``size`` (longest side)
    when given, else at the image's own size.
    """

    def __init__(self, network: nn.Module, recipe: Recipe, source: str, device: torch.device) -> None:
        self.network = network.eval().requires_grad_(False).to(device)
        self.recipe = recipe
        self.source = source
        self.device = device

    @torch.no_grad()
    def __call__(self, image: ImageInput, *, size: int | None = None, what: str = "content image") -> Tensor:
        tensor = images.as_tensor(image, what=what)
        if size is not None:
            tensor = images.resize(tensor, images.fit(int(tensor.shape[-2]), int(tensor.shape[-1]), size))
        if min(tensor.shape[-2:]) < 4:
            size_text = f"{tensor.shape[-1]}x{tensor.shape[-2]} px"
            raise GankitError(f"{what}: {size_text} is too small to stylize (4 px at least)")
        return self.network(tensor.to(self.device)).float().cpu()

    def __repr__(self) -> str:
        return f"Stylizer({self.source!r}, device={self.device})"


def resolve_model(path: str | Path) -> Path:
    """A stylizer file: the file itself, or a run folder's ``stylizer.safetensors``, else its latest checkpoint."""
    path = Path(path).expanduser()
    if path.is_dir():
        exported = path / STYLIZER_FILE
        if exported.is_file():
            return exported
        if (path / "checkpoints").is_dir():
            return latest_checkpoint(path)
        raise GankitError(f"--model {path}: not a fast-style run folder (no {STYLIZER_FILE} and no checkpoints/)")
    if not path.exists():
        raise GankitError(f"--model {path}: no such run folder or stylizer file")
    return path


def load_stylizer(path: str | Path, *, device: str = "auto") -> Stylizer:
    """The stylizer of a fast-style run folder, its ``stylizer.safetensors`` or one of its checkpoints."""
    from gankit.style.loop import resolve_device

    file = resolve_model(path)
    ckpt = load_checkpoint(file)
    if ckpt.state.get("task") != TASK:
        raise GankitError(
            f"--model {path}: {file.name} is not a fast-style stylizer (train one with: gankit train fast-style"
            " --set data.path=photos/ --set style.image=painting.jpg)"
        )
    recipe = _recipe_from_state(ckpt.state, str(file))
    network = recipe["network"].build()
    try:
        network.load_state_dict(ckpt.group("network"))
    except RuntimeError as error:
        raise GankitError(f"{file}: the weights do not fit the recipe's network: {error}") from error
    return Stylizer(network, recipe, str(file), resolve_device(device))
