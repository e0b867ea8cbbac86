"""The one GAN trainer: any recipe's parts, trained in two phases per step.

Each step follows the textbook:

1. **Discriminator phase** — a real batch (label 1) and a generated batch
   (label 0, produced without a gradient graph) go through the discriminator;
   the adversarial loss plus any regularisers is minimised by the
   discriminator's optimiser.
2. **Generator phase** — a new latent batch goes through the generator and the
   *frozen* discriminator; the generator's optimiser makes the discriminator say
   1. Frozen means: the discriminator's parameters receive no gradient, and
   every buffer it holds (BatchNorm running statistics, spectral-norm vectors)
   is restored afterwards, so this phase leaves the discriminator bit-for-bit
   unchanged. It stays in training mode, so BatchNorm normalises with the
   batch's own statistics exactly as in the discriminator phase.

A balance policy decides how many of each phase a step runs; tricks hook in at
the events of :mod:`gankit.training.events`. Losses stay on the device: they are
read (a host sync) only at logging steps, unless the balance policy needs them
every step.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit import __version__
from gankit.checkpoint import (
    Checkpoint,
    join_state,
    latest_checkpoint,
    load_checkpoint,
    split_state,
    write_run_checkpoint,
)
from gankit.errors import GankitError, TrainingError
from gankit.images import samples_picture, save_picture
from gankit.progress import Progress
from gankit.protocols import Decision
from gankit.recipe import PartSpec, Recipe, loads_recipe
from gankit.training import distributed
from gankit.training.events import TrickHooks
from gankit.training.run_folder import EXPORT_FILE, METRICS_FILE, RECIPE_FILE, SAMPLES_DIR, RunFolder


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else MPS when present, else CPU; other names as given (checked)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"run.device = {name!r} but CUDA is not available here; use 'auto' or 'cpu'")
    return device


def build_optimizer(settings: Any, params: Any) -> torch.optim.Optimizer:
    """A torch optimiser from ``[optim.*]`` settings."""
    name = settings.name
    fused = settings.fused or None
    if name == "adam":
        return torch.optim.Adam(params, lr=settings.lr, betas=settings.betas, eps=settings.eps,
                                weight_decay=settings.weight_decay, fused=fused)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=settings.lr, betas=settings.betas, eps=settings.eps,
                                 weight_decay=settings.weight_decay, fused=fused)
    if name == "sgd":
        return torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum,
                               weight_decay=settings.weight_decay)
    return torch.optim.RMSprop(params, lr=settings.lr, momentum=settings.momentum, eps=settings.eps,
                               weight_decay=settings.weight_decay)


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


def frozen(module: nn.Module) -> contextlib.AbstractContextManager[None]:
    """Run ``module`` without training it: no parameter gradients, every buffer restored on exit."""
    return Freezer(module)()


@dataclass
class TrainResult:
    """What a finished (or interrupted) run leaves behind."""

    run_dir: Path
    step: int
    checkpoint: Path | None
    interrupted: bool = False
    last: dict[str, Any] | None = None
    is_main: bool = True


def default_run_dir(recipe: Recipe) -> Path:
    """``runs/<recipe name>-<date>-<time>`` (unless the recipe's ``run.out`` names one)."""
    if recipe.run.out:
        return Path(recipe.run.out)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{recipe.name}-{stamp}"


class Trainer:
    """Trains a GAN recipe; see the module docstring for the two phases.

    >>> trainer = Trainer(recipe, run_dir="runs/demo")   # doctest: +SKIP
    >>> trainer.fit()                                     # doctest: +SKIP
    """

    def __init__(
        self,
        recipe: Recipe,
        run_dir: str | Path | None = None,
        *,
        quiet: bool = False,
        progress_stream: Any = None,
        folder: RunFolder | None = None,
    ) -> None:
        if recipe.task != "gan":
            raise GankitError(f"{recipe.source}: a {recipe.task!r} recipe cannot be trained as a GAN")
        self.recipe = recipe
        self.settings = recipe.run
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(recipe)
        self.progress_stream = progress_stream
        self.folder = folder
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = resolve_device(distributed.device_for(self.settings.device, local_rank)
                                     if distributed.launched_by_torchrun() else self.settings.device)
        self.dist = distributed.init(self.device, self.settings.dist_timeout)
        self.quiet = quiet or not self.dist.is_main
        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        self.step = 0
        self._stop_requested = False
        self._build()

    # ------------------------------------------------------------------ construction

    def _build(self) -> None:
        s = self.settings
        recipe = self.recipe
        rank = self.dist.rank
        torch.manual_seed(s.seed)
        self.data = recipe["data"].build(seed=s.seed)
        shape = tuple(self.data.shape)
        from gankit.resources import check_training_resources  # issue 19 (helper wt-19): resource check, re-apply
        check_training_resources(recipe, shape, self.device)  # issue 19 (helper wt-19): before any network is built
        self.generator_module: nn.Module = recipe["generator"].build(shape=shape).to(self.device)
        self.discriminator_module: nn.Module = recipe["discriminator"].build(shape=shape).to(self.device)
        if s.channels_last and len(shape) == 3:
            self.generator_module.to(memory_format=torch.channels_last)
            self.discriminator_module.to(memory_format=torch.channels_last)
        self.latent_dim = int(getattr(self.generator_module, "latent_dim", 0))
        if self.latent_dim <= 0:
            raise GankitError(f"generator {recipe['generator'].name!r} has no positive latent_dim")
        self.loss = recipe["loss"].build()
        self.regularizers = [spec.build() for spec in recipe["regularizers"]]
        self.balance = recipe["balance"].build()
        self.tricks = [spec.build() for spec in recipe["tricks"]]
        self.metrics = [(spec.name, spec.build()) for spec in recipe["metrics"]]
        self.best_value: float | None = None
        self.hooks = TrickHooks(self.tricks)
        self.opt_g = build_optimizer(recipe["optim"]["generator"], self.generator_module.parameters())
        self.opt_d = build_optimizer(recipe["optim"]["discriminator"], self.discriminator_module.parameters())
        self.base_lr = {"generator": recipe["optim"]["generator"].lr,
                        "discriminator": recipe["optim"]["discriminator"].lr}
        self.schedules = {key: spec.build(total_steps=s.steps) for key, spec in recipe["schedule"].items()}
        self._wrap_networks()
        self.data_rng = torch.Generator().manual_seed(s.seed + 1 + 1000 * rank)
        self.latent_rng = torch.Generator(device=self.device).manual_seed(s.seed + 2 + 1000 * rank)
        if rank:
            torch.manual_seed(s.seed + 1000 * rank)
        fixed_rng = torch.Generator().manual_seed(s.seed + 3)
        self.fixed_latents = torch.randn(s.samples, self.latent_dim, generator=fixed_rng).to(self.device)
        self.freeze_discriminator = Freezer(self.discriminator_module)
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[s.precision]
        if s.precision == "fp16" and self.device.type != "cuda":
            raise GankitError("run.precision = 'fp16' needs CUDA; use 'bf16' on a CPU")
        self.scaler = torch.amp.GradScaler("cuda", enabled=s.precision == "fp16")
        self.d_step_count = 0
        self.skips = 0
        self._reset_accumulators()
        self.hooks.call("setup", self)

    def _wrap_networks(self) -> None:
        """Set up the modules each phase calls: DDP wrappers when distributed, compiled when asked.

        The generator phase calls the discriminator's own module, not its DDP
        wrapper: it is frozen there, and DDP's gradient reducer must only see
        the discriminator phase's backward pass.
        """
        g, d = self.generator_module, self.discriminator_module
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            if self.settings.sync_batchnorm:
                if self.device.type != "cuda":
                    raise GankitError("run.sync_batchnorm needs CUDA (PyTorch's SyncBatchNorm runs on GPUs only)")
                g = self.generator_module = nn.SyncBatchNorm.convert_sync_batchnorm(g)
                d = self.discriminator_module = nn.SyncBatchNorm.convert_sync_batchnorm(d)
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.generator = self._maybe_compile(DistributedDataParallel(g, device_ids=ids))
            self.discriminator = self._maybe_compile(DistributedDataParallel(d, device_ids=ids))
            self.frozen_discriminator = self._maybe_compile(d)
        else:
            self.generator = self._maybe_compile(g)
            self.discriminator = self._maybe_compile(d)
            self.frozen_discriminator = self.discriminator

    def _maybe_compile(self, module: nn.Module) -> nn.Module:
        if not self.settings.compile:
            return module
        compiled: nn.Module = torch.compile(module)  # type: ignore[assignment]
        return compiled

    def _reset_accumulators(self) -> None:
        zero = torch.zeros((), device=self.device)
        self._d_sum = zero.clone()
        self._g_sum = zero.clone()
        self._d_count = 0
        self._g_count = 0

    # ------------------------------------------------------------------ batches

    def latents(self, n: int) -> torch.Tensor:
        """A latent batch drawn from the run's latent random generator."""
        return torch.randn(n, self.latent_dim, device=self.device, generator=self.latent_rng)

    def real_batch(self) -> torch.Tensor:
        """A real batch on the device, after tricks that transform real batches."""
        batch = self.data.sample(self.settings.batch_size, self.data_rng)
        batch = batch.to(self.device, non_blocking=True)
        if self.settings.channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return self.hooks.transform("real_batch", self, batch)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    # ------------------------------------------------------------------ the two phases

    def discriminator_loss(self, real: torch.Tensor, fake: Any) -> torch.Tensor:
        """The adversarial discriminator loss on a real (label 1) and a generated (label 0) batch."""
        real_in = self.hooks.transform("discriminator_input", self, real)
        fake_in = self.hooks.transform("discriminator_input", self, fake)
        with self._autocast():
            loss: torch.Tensor = self.loss.discriminator_loss(
                self.discriminator(real_in).float(), self.discriminator(fake_in).float()
            )
        return loss

    def _generate_detached(self) -> Any:
        with torch.no_grad(), self._autocast():
            fake = self.generator(self.latents(self.settings.batch_size))
        if isinstance(fake, list | tuple):
            return [f.float() for f in fake]
        return fake.float()

    def discriminator_step(self) -> torch.Tensor:
        """Phase 1: train the discriminator on real (1) versus generated (0) samples."""
        real = self.real_batch()
        fake = self._generate_detached()
        self.opt_d.zero_grad(set_to_none=True)
        loss = self.discriminator_loss(real, fake)
        total = loss
        self.d_step_count += 1
        for reg in self.regularizers:
            if self.d_step_count % reg.every == 0:
                real_in = self.hooks.transform("discriminator_input", self, real)
                fake_in = self.hooks.transform("discriminator_input", self, fake)
                total = total + (reg.weight * reg.every) * reg.penalty(self.discriminator, real_in, fake_in)
        self.scaler.scale(total).backward()
        self.scaler.step(self.opt_d)
        self.scaler.update()
        return loss.detach()

    def measure_discriminator_loss(self) -> torch.Tensor:
        """The discriminator's loss on fresh batches, without training it (for policies that skip it)."""
        real = self.real_batch()
        fake = self._generate_detached()
        with torch.no_grad(), self.freeze_discriminator():
            real_in = self.hooks.transform("discriminator_input", self, real)
            fake_in = self.hooks.transform("discriminator_input", self, fake)
            with self._autocast():
                loss: torch.Tensor = self.loss.discriminator_loss(
                    self.frozen_discriminator(real_in).float(), self.frozen_discriminator(fake_in).float()
                )
            return loss.detach()

    def generator_step(self) -> torch.Tensor:
        """Phase 2: train the generator to make the frozen discriminator say 1."""
        self.opt_g.zero_grad(set_to_none=True)
        with self.freeze_discriminator():
            with self._autocast():
                fake = self.generator(self.latents(self.settings.batch_size))
            fake_in = self.hooks.transform("discriminator_input", self, fake)
            with self._autocast():
                loss: torch.Tensor = self.loss.generator_loss(self.frozen_discriminator(fake_in).float())
            self.scaler.scale(loss).backward()
        self.scaler.step(self.opt_g)
        self.scaler.update()
        return loss.detach()

    def _set_learning_rates(self, step: int) -> None:
        for key, opt in (("generator", self.opt_g), ("discriminator", self.opt_d)):
            lr = self.base_lr[key] * self.schedules[key](step)
            for group in opt.param_groups:
                group["lr"] = lr

    def train_step(self) -> dict[str, Any]:
        """One step: the balance policy's decision, the discriminator phase(s), the generator phase(s)."""
        step = self.step
        decision = self.balance.decide(step)
        if self.dist.enabled:
            decision = self._agree(decision)
        self.hooks.call("before_step", self, step)
        self._set_learning_rates(step)
        if not self.generator_module.training:
            self.generator.train()
        if not self.discriminator_module.training:
            self.discriminator.train()
        d_loss: torch.Tensor | None = None
        for _ in range(decision.d_steps):
            d_loss = self.discriminator_step()
        if decision.d_steps == 0:
            self.skips += 1
            if self.balance.needs_losses:
                d_loss = self.measure_discriminator_loss()
        self.hooks.call("after_discriminator_step", self, step)
        g_loss: torch.Tensor | None = None
        for _ in range(decision.g_steps):
            g_loss = self.generator_step()
        self.step = step + 1
        self.hooks.call("after_generator_step", self, self.step)
        if d_loss is not None:
            self._d_sum += d_loss
            self._d_count += 1
        if g_loss is not None:
            self._g_sum += g_loss
            self._g_count += 1
        if self.balance.needs_losses:
            d_value, g_value = self._shared_losses(d_loss, g_loss)
            self.balance.observe(step, d_value, g_value)
        return {"decision": decision}

    def _agree(self, decision: Decision) -> Decision:
        """Every process takes rank 0's decision, and stops when any process was asked to stop."""
        mine = [float(self._stop_requested), 0.0, 0.0]
        if self.dist.is_main:
            mine[1:] = [float(decision.d_steps), float(decision.g_steps)]
        agreed = distributed.all_reduce(torch.tensor(mine, device=self.device), "max").tolist()
        self._stop_requested = bool(agreed[0])
        d_steps, g_steps = int(agreed[1]), int(agreed[2])
        if (d_steps, g_steps) != (decision.d_steps, decision.g_steps):
            decision = Decision(d_steps, g_steps, decision.reason + " (rank 0's decision)")
        return decision

    def _shared_losses(
        self, d_loss: torch.Tensor | None, g_loss: torch.Tensor | None
    ) -> tuple[float | None, float | None]:
        """This step's losses as floats, averaged over every process when distributed."""
        zero = torch.zeros((), device=self.device)
        values = torch.stack([zero if x is None else x.float() for x in (d_loss, g_loss)])
        if self.dist.enabled:
            values = distributed.all_reduce(torch.nan_to_num(values, nan=math.inf), "avg")
        averaged = values.tolist()
        return (None if d_loss is None else averaged[0], None if g_loss is None else averaged[1])

    # ------------------------------------------------------------------ state

    def sampling_generator(self) -> nn.Module:
        """The generator used for samples and exports (a trick's EMA copy when there is one)."""
        answer: nn.Module | None = self.hooks.first("sampling_generator", self)
        return answer if answer is not None else self.generator_module

    def state(self) -> Checkpoint:
        """The whole training state as a checkpoint."""
        ckpt = Checkpoint()
        ckpt.put("generator", self.generator_module.state_dict())
        ckpt.put("discriminator", self.discriminator_module.state_dict())
        optim_state = {
            "generator": split_state(self.opt_g.state_dict(), "optim.generator", ckpt),
            "discriminator": split_state(self.opt_d.state_dict(), "optim.discriminator", ckpt),
        }
        tricks_state = [
            split_state(t.state_dict(), f"trick.{i}", ckpt) if hasattr(t, "state_dict") else None
            for i, t in enumerate(self.tricks)
        ]
        for rank, rng in enumerate(self._rng_states()):
            ckpt.put(f"rng.{rank}", rng)
        ckpt.state = {
            "step": self.step,
            "world_size": self.dist.world_size,
            "d_step_count": self.d_step_count,
            "skips": self.skips,
            "best_value": self.best_value,
            "gankit_version": __version__,
            "recipe": self.recipe.to_toml(),
            "recipe_name": self.recipe.name,
            "part_versions": self.recipe.part_versions(),
            "optim": optim_state,
            "balance": self.balance.state_dict(),
            "tricks": tricks_state,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
        }
        return ckpt

    def load_state(self, ckpt: Checkpoint) -> None:
        """Restore the training state of a checkpoint (the recipe must build the same networks)."""
        state = ckpt.state
        try:
            self.generator_module.load_state_dict(ckpt.group("generator"))
            self.discriminator_module.load_state_dict(ckpt.group("discriminator"))
            self.opt_g.load_state_dict(join_state(state["optim"]["generator"], "optim.generator", ckpt))
            self.opt_d.load_state_dict(
                join_state(state["optim"]["discriminator"], "optim.discriminator", ckpt)
            )
        except (RuntimeError, KeyError, ValueError) as error:
            raise GankitError(f"checkpoint does not match the recipe's networks: {error}") from error
        self.balance.load_state_dict(state.get("balance") or {})
        for i, (trick, data) in enumerate(zip(self.tricks, state.get("tricks") or [], strict=False)):
            if data is not None and hasattr(trick, "load_state_dict"):
                trick.load_state_dict(join_state(data, f"trick.{i}", ckpt))
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        saved_world = int(state.get("world_size", 1))
        if saved_world == self.dist.world_size:
            self._set_rng_states(ckpt.group(f"rng.{self.dist.rank}"))
        else:
            self._reseed(self.step)
            if self.dist.is_main:
                import warnings

                from gankit.errors import GankitWarning

                warnings.warn(
                    f"resuming a checkpoint of {saved_world} process(es) on {self.dist.world_size}: weights and "
                    "optimiser state are exact, the random streams are re-seeded from the step",
                    GankitWarning,
                    stacklevel=2,
                )
        self.d_step_count = int(state.get("d_step_count", 0))
        self.skips = int(state.get("skips", 0))
        self.best_value = state.get("best_value")

    def _local_rng_state(self) -> dict[str, torch.Tensor]:
        rng = {"torch": torch.get_rng_state(), "data": self.data_rng.get_state(),
               "latent": self.latent_rng.get_state().cpu()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _rng_states(self) -> list[dict[str, torch.Tensor]]:
        """Every process's random-generator states (a collective when distributed)."""
        local = self._local_rng_state()
        if not self.dist.enabled:
            return [local]
        return distributed.gather_states(local, self.device if self.dist.backend == "nccl" else torch.device("cpu"))

    def _set_rng_states(self, rng: dict[str, torch.Tensor]) -> None:
        torch.set_rng_state(rng["torch"])
        self.data_rng.set_state(rng["data"])
        self.latent_rng.set_state(rng["latent"].to(self.latent_rng.get_state().device))
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def _reseed(self, step: int) -> None:
        base = self.settings.seed + 7919 * step + 1000 * self.dist.rank
        torch.manual_seed(base)
        self.data_rng.manual_seed(base + 1)
        self.latent_rng.manual_seed(base + 2)

    # ------------------------------------------------------------------ outputs

    def save_samples(self) -> Path:
        """A grid of samples from the fixed latent batch, saved as samples/step-N.png."""
        generator = self.sampling_generator()
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            samples = generator(self.fixed_latents)
        generator.train(was_training)
        path = self.run_dir / SAMPLES_DIR / f"step-{self.step:08d}.png"
        return save_picture(samples_picture(samples), path)

    def checkpoint(self) -> Path:
        """Write a checkpoint of the current step (after checking that the losses are finite).

        Every process takes part (their random states are gathered); rank 0 writes.
        """
        self._check_finite()
        state = self.state()
        path = write_run_checkpoint if self.dist.is_main else None
        if path is None:
            from gankit.checkpoint import checkpoint_path

            return checkpoint_path(self.run_dir, self.step)
        return path(self.run_dir, self.step, state, self.settings.keep_checkpoints)

    def export_generator(self) -> Path:
        """Write the sampling generator alone, with its recipe, as generator.safetensors."""
        from gankit.checkpoint import save_checkpoint

        ckpt = Checkpoint()
        ckpt.put("generator", self.sampling_generator().state_dict())
        ckpt.state = {
            "step": self.step,
            "gankit_version": __version__,
            "recipe": self.recipe.to_toml(),
            "recipe_name": self.recipe.name,
            "part_versions": self.recipe.part_versions(),
            "exported": True,
        }
        path = self.run_dir / EXPORT_FILE
        save_checkpoint(path, ckpt)
        return path

    def evaluate(self) -> dict[str, float]:
        """Compute every metric of the recipe on the sampling generator: ``{"name.key": value}``."""
        results: dict[str, float] = {}
        if not self.metrics:
            return results
        generator = self.sampling_generator()
        was_training = generator.training
        generator.eval()
        try:
            for name, metric in self.metrics:
                for key, value in metric(generator, self.data, device=self.device, seed=self.settings.seed).items():
                    results[f"{name}.{key}"] = value
        finally:
            generator.train(was_training)
        return results

    def _keep_best(self, results: dict[str, float]) -> Path | None:
        key = self.settings.best_metric
        if key is None:
            return None
        if key not in results:
            raise GankitError(
                f"run.best_metric = {key!r} is not computed; the metrics give: {', '.join(results) or '(none)'}"
            )
        value = float(results[key])
        better = (
            self.best_value is None
            or (self.settings.best_mode == "min" and value < self.best_value)
            or (self.settings.best_mode == "max" and value > self.best_value)
        )
        if not better:
            return None
        from gankit.checkpoint import save_checkpoint

        self.best_value = value
        path = self.run_dir / "checkpoints" / "best.safetensors"
        state = self.state()
        if self.dist.is_main:
            save_checkpoint(path, state)
        return path

    def _check_finite(self) -> None:
        flag = ~(torch.isfinite(self._d_sum) & torch.isfinite(self._g_sum))
        if self.dist.enabled:
            flag = distributed.all_reduce(flag.float(), "max")
        if bool(flag):
            raise TrainingError(
                f"a loss became NaN or infinite before step {self.step}; training stopped. "
                f"The last good checkpoint is in {self.run_dir / 'checkpoints'}. Try a lower learning rate "
                "(--set optim.discriminator.lr=...), a regulariser ([[regularizers]] type = \"r1\"), "
                "or precision = \"fp32\"."
            )

    def _log_record(self, decision_reason: str) -> dict[str, Any]:
        self._check_finite()
        record: dict[str, Any] = {"step": self.step, "time": round(time.time() - self._t0, 3)}
        sums = torch.stack([self._d_sum, self._g_sum])
        if self.dist.enabled:
            sums = distributed.all_reduce(sums, "avg")
        d_sum, g_sum = sums.tolist()
        if self._d_count:
            record["d_loss"] = d_sum / self._d_count
        if self._g_count:
            record["g_loss"] = g_sum / self._g_count
        record["lr_g"] = self.opt_g.param_groups[0]["lr"]
        record["lr_d"] = self.opt_d.param_groups[0]["lr"]
        record["skips"] = self.skips
        record["balance"] = decision_reason
        record.update(self.hooks.logs(self, self.step))
        self._reset_accumulators()
        return record

    # ------------------------------------------------------------------ the loop

    def _prepare_run_dir(self, resumed: bool) -> None:
        """Lock the run folder (claiming it for a new run) and write the resolved recipe."""
        if self.folder is None or not self.folder.locked:
            folder = RunFolder(self.run_dir)
            self.folder = folder.open_existing() if resumed else folder.claim_new(self.recipe.name)
        from gankit.checkpoint import atomic_write_bytes

        atomic_write_bytes(self.run_dir / RECIPE_FILE, self.recipe.to_toml().encode())

    @contextlib.contextmanager
    def _interrupt_handler(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum: int, frame: Any) -> None:
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def fit(self, steps: int | None = None, *, resumed: bool = False) -> TrainResult:
        """Train until ``steps`` (default: the recipe's ``run.steps``) steps in total are done.

        Writes samples, metrics and checkpoints into the run folder (rank 0
        only, when distributed). Ctrl-C (or SIGTERM) finishes the step in
        progress, writes a checkpoint and returns with ``interrupted=True``.
        """
        total = steps if steps is not None else self.settings.steps
        main = self.dist.is_main
        if main:
            self._prepare_run_dir(resumed)
        self._t0 = time.time()
        self._last_ckpt: Path | None = None
        self._last_record: dict[str, Any] | None = None
        try:
            with (
                self._metrics_file() as metrics,
                self._interrupt_handler(),
                Progress(total, description="train", start=self.step, quiet=self.quiet,
                         stream=self.progress_stream) as progress,
            ):
                if self.dist.enabled:
                    progress.log(
                        f"{self.dist.world_size} processes ({self.dist.backend}): effective batch size "
                        f"{self.settings.batch_size * self.dist.world_size} "
                        f"({self.settings.batch_size} per process)"
                    )
                if self.step == 0 and main:
                    self.save_samples()
                self._loop(total, metrics, progress)
                interrupted = self._stop_requested and self.step < total
                if interrupted:
                    progress.log(f"interrupted at step {self.step}: writing a checkpoint")
                    self._last_ckpt = self.checkpoint()
            if not interrupted and main:
                self.export_generator()
        except (RuntimeError, OSError) as error:
            if self.dist.enabled and _is_collective_failure(error):
                raise distributed.peer_failure(error) from error
            raise
        finally:
            if self.folder is not None:
                self.folder.release()
        return TrainResult(self.run_dir, self.step, self._last_ckpt, interrupted, self._last_record,
                           self.dist.is_main)

    def _metrics_file(self) -> contextlib.AbstractContextManager[Any]:
        if not self.dist.is_main:
            return contextlib.nullcontext(None)
        return open(self.run_dir / METRICS_FILE, "a", encoding="utf-8")

    def _write(self, metrics: Any, record: dict[str, Any]) -> None:
        if metrics is not None:
            metrics.write(json.dumps(record) + "\n")
            metrics.flush()

    def _loop(self, total: int, metrics: Any, progress: Progress) -> None:
        s = self.settings
        main = self.dist.is_main
        while self.step < total and not self._stop_requested:
            decision = self.train_step()["decision"]
            step = self.step
            if decision.skips_discriminator:
                self._write(metrics, {"step": step, "event": "skip", "reason": decision.reason})
            if step % s.log_every == 0 or step == total:
                record = self._log_record(decision.reason)
                if self.dist.enabled:
                    record["world_size"] = self.dist.world_size
                self._last_record = record
                self._write(metrics, record)
                progress.update(step, D=record.get("d_loss", math.nan), G=record.get("g_loss", math.nan),
                                skips=self.skips)
            if step % s.sample_every == 0 or step == total:
                self._check_finite()
                if main:
                    self.save_samples()
            if self.metrics and (step % s.metrics_every == 0 or step == total):
                self._check_finite()
                results = self.evaluate()
                self._write(metrics, {"step": step, "event": "metrics", **results})
                progress.log(f"step {step}: " + "  ".join(f"{k} {v:.4g}" for k, v in results.items()))
                self._keep_best(results)
            if step % s.checkpoint_every == 0 or step == total:
                self._last_ckpt = self.checkpoint()


def _is_collective_failure(error: BaseException) -> bool:
    """Whether an exception came from a collective whose peer died or hung."""
    import torch.distributed as dist

    dist_error = getattr(dist, "DistError", None)
    if dist_error is not None and isinstance(error, dist_error):
        return True
    text = str(error).lower()
    return any(word in text for word in ("gloo", "nccl", "connection", "timed out", "timeout", "peer"))


def recipe_from_checkpoint(ckpt_state: dict[str, Any], source: str) -> Recipe:
    """The recipe a checkpoint was trained with, rebuilt from the installed parts.

    The recipe pins every part's version; a version no longer installed is
    replaced by the newest one. Either way, a part whose version or provider
    differs from the one the checkpoint records is warned about.
    """
    text = ckpt_state.get("recipe")
    if not text:
        raise GankitError(f"{source}: checkpoint carries no recipe, cannot rebuild its networks")
    recipe = loads_recipe(text, source=f"{source} (recipe)", name=ckpt_state.get("recipe_name", "recipe"),
                          upgrade_versions=True)
    warn_part_versions(ckpt_state.get("part_versions", {}), recipe, source)
    return recipe


def _part_identity(text: str) -> tuple[str, str]:
    """``"dcgan@v1 (gankit 0.1.0)"`` → ``("dcgan@v1", "gankit")``: the part version and its provider's name."""
    ref, _, provider = text.partition(" (")
    return ref, provider.rstrip(")").rsplit(" ", 1)[0]


def warn_part_versions(recorded: dict[str, str], recipe: Recipe, source: str) -> None:
    """Warn when parts are loaded in another version, or from another provider, than they were trained with.

    A new release of the same provider with the same part version is not warned about.
    """
    import warnings

    from gankit.errors import GankitWarning

    current = recipe.part_versions()
    for slot, was in recorded.items():
        now = current.get(slot)
        if now is not None and _part_identity(now) != _part_identity(was):
            warnings.warn(f"{source}: {slot} was trained with {was}, now loading {now}", GankitWarning,
                          stacklevel=3)


def resume(run_dir: str | Path, *, steps: int | None = None, quiet: bool = False,
           progress_stream: Any = None) -> TrainResult:
    """Continue a run from its latest checkpoint, up to ``steps`` in total (default: the recipe's)."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    if distributed.is_main_process():
        folder.open_existing()
    try:
        path = latest_checkpoint(run_dir)
        ckpt = load_checkpoint(path)
        recipe = recipe_from_checkpoint(ckpt.state, str(path))
        trainer = Trainer(recipe, run_dir, quiet=quiet, progress_stream=progress_stream, folder=folder)
    except BaseException:
        folder.release()
        raise
    try:
        trainer.load_state(ckpt)
        result = trainer.fit(steps, resumed=True)
    except BaseException:
        distributed.shutdown(trainer.dist)
        raise
    distributed.shutdown(trainer.dist, together=True)
    return result


def train(recipe: Recipe, out: str | Path | None = None, *, steps: int | None = None, quiet: bool = False,
          progress_stream: Any = None) -> TrainResult:
    """Train ``recipe`` into the run folder ``out``; see :class:`Trainer`."""
    run_dir = Path(out) if out is not None else default_run_dir(recipe)
    folder = RunFolder(run_dir)
    if distributed.is_main_process():
        folder.claim_new(recipe.name)
    try:
        trainer = Trainer(recipe, run_dir, quiet=quiet, progress_stream=progress_stream, folder=folder)
    except BaseException:
        folder.release()
        raise
    try:
        result = trainer.fit(steps)
    except BaseException:
        distributed.shutdown(trainer.dist)
        raise
    distributed.shutdown(trainer.dist, together=True)
    return result


def part_spec(recipe: Recipe, slot: str) -> PartSpec:
    """The :class:`PartSpec` in ``slot`` of a recipe."""
    spec: PartSpec = recipe[slot]
    return spec
