"""The one GAN trainer: builds a recipe's parts and runs the training loop around the game.

The maths of a step lives in :mod:`gankit.training.game`; where batches come
from in :mod:`gankit.training.batches`; what a checkpoint holds in
:mod:`gankit.training.state`; the run folder and its lock in
:mod:`gankit.training.run_folder`; stopping on signals in
:mod:`gankit.training.signals`; several processes in
:mod:`gankit.training.distributed`. This module ties them together: a balance
policy decides how many phases each step runs, tricks hook in at the events
of :mod:`gankit.training.events`, and the loop writes samples, metrics and
checkpoints. Losses stay on the device: they are read (a host sync) only at
logging steps, unless the balance policy needs them every step.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit import __version__
from gankit.checkpoint import Checkpoint, checkpoint_path, save_checkpoint, write_run_checkpoint
from gankit.errors import GankitError, MissingLabelsError, TrainingError
from gankit.images import samples_picture, save_picture
from gankit.progress import Progress
from gankit.protocols import Decision
from gankit.recipe import Recipe
from gankit.threads import Choice, describe, thread_policy
from gankit.training import distributed
from gankit.training.batches import Batches, RandomStreams
from gankit.training.context import TrainingContext
from gankit.training.events import TrickHooks
from gankit.training.finetune import init_networks
from gankit.training.game import GanGame, Networks
from gankit.training.run_folder import EXPORT_FILE, RECIPE_FILE, SAMPLES_DIR, RunFolder
from gankit.training.run_log import RunLog
from gankit.training.signals import StopRequest
from gankit.training.state import (
    Counters,
    StatefulParts,
    data_description,
    from_checkpoint,
    to_checkpoint,
    weights_are_finite,
)


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


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else MPS when present, else CPU; other names as given (checked)."""
    from gankit.devices import resolve_device as resolve

    return resolve(name)


class Trainer:
    """Trains a GAN recipe: see :mod:`gankit.training.game` for the two phases of a step.

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
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(recipe)
        self.progress_stream = progress_stream
        self.folder = folder
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device_name = self.settings.device
        if distributed.launched_by_torchrun():
            device_name = distributed.device_for(device_name, local_rank)
        self.device = resolve_device(device_name)
        self.dist = distributed.init(self.device, self.settings.dist_timeout)
        self.quiet = quiet or not self.dist.is_main
        if isinstance(self.settings.threads, int):
            torch.set_num_threads(self.settings.threads)
        self._thread_choices: list[Choice] = []
        self.counters = Counters()
        self.stop = StopRequest()
        self.run_log: RunLog | None = None
        self._build()

    @property
    def settings(self) -> Any:
        """The ``[run]`` settings of the recipe."""
        return self.recipe.run

    @property
    def step(self) -> int:
        """Steps completed so far."""
        return self.counters.step

    # ------------------------------------------------------------------ construction

    def _build(self) -> None:
        s = self.settings
        recipe = self.recipe
        torch.manual_seed(s.seed)
        self.data = recipe["data"].build(seed=s.seed)
        shape = tuple(self.data.shape)
        num_classes = int(getattr(self.data, "num_classes", 0) or 0)
        from gankit.resources import check_training_resources  # issue 19 (helper wt-19): resource check
        try:
            check_training_resources(recipe, shape, self.device, num_classes=num_classes)  # issue 19: before any build
            generator: nn.Module = recipe["generator"].build(shape=shape, num_classes=num_classes).to(self.device)
            discriminator: nn.Module = recipe["discriminator"].build(shape=shape, num_classes=num_classes).to(
                self.device)
        except MissingLabelsError as error:
            raise MissingLabelsError(error.network, error.condition, recipe["data"].name) from None
        if s.init_from is not None and not RunFolder(self.run_dir).has_checkpoints():  # not when resuming
            init_networks(s.init_from, recipe, generator, discriminator)
        if s.channels_last and len(shape) == 3:
            generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            discriminator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.latent_dim = int(getattr(generator, "latent_dim", 0))
        if self.latent_dim <= 0:
            raise GankitError(f"generator {recipe['generator'].name!r} has no positive latent_dim")
        self.loss = recipe["loss"].build()
        self.regularizers = [spec.build() for spec in recipe["regularizers"]]
        _check_conditioning(recipe, generator, discriminator, self.regularizers)
        self.balance = recipe["balance"].build()
        self.tricks = [spec.build() for spec in recipe["tricks"]]
        self.metrics = [(spec.name, spec.build()) for spec in recipe["metrics"]]
        _warn_about_slow_metrics(recipe["metrics"], s.metrics_every)
        self.hooks = TrickHooks(self.tricks, [spec.name for spec in recipe["tricks"]])
        self.optimizers = {
            key: recipe["optim"][key].build(parameters=module.parameters(), network=key)
            for key, module in (("generator", generator), ("discriminator", discriminator))
        }
        self.base_lrs = {key: [float(g["lr"]) for g in opt.param_groups] for key, opt in self.optimizers.items()}
        self._build_schedules()
        self.nets = self._wrap_networks(generator, discriminator)
        generator, discriminator = self.nets.generator_module, self.nets.discriminator_module
        if self.dist.enabled and callable(getattr(self.data, "shard", None)):
            self.data.shard(self.dist.rank, self.dist.world_size)
        self.streams = RandomStreams(s.seed, self.dist.rank, self.device)
        fixed_rng = torch.Generator().manual_seed(s.seed + 3)
        self.fixed_latents = torch.randn(s.samples, self.latent_dim, generator=fixed_rng).to(self.device)
        g_classes = self.nets.generator_classes
        self.fixed_labels = grid_labels(s.samples, g_classes).to(self.device) if g_classes else None
        self.context = TrainingContext(
            generator=generator, discriminator=discriminator, optimizers=self.optimizers, data=self.data,
            run=s, device=self.device, total_steps=s.steps, rank=self.dist.rank, world_size=self.dist.world_size,
            _sampling_generator=self.sampling_generator, _all_reduce=distributed.all_reduce,
        )
        batches = Batches(
            self.data, self.streams, batch_size=s.batch_size, latent_dim=self.latent_dim, device=self.device,
            channels_last=s.channels_last, num_classes=g_classes,
            real_labels=self.nets.discriminator_classes > 0,
            label_frequencies=self._label_frequencies() if g_classes and s.latent_labels == "data" else None,
            transform_real=(lambda x: self.hooks.transform("real_batch", self.context, x))
            if self.hooks.has("real_batch") else None,
        )
        autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[s.precision]
        if s.precision == "fp16" and self.device.type != "cuda":
            raise GankitError("run.precision = 'fp16' needs CUDA; use 'bf16' on a CPU")
        self.scaler = torch.amp.GradScaler("cuda", enabled=s.precision == "fp16")
        self.game = GanGame(
            self.nets, loss=self.loss, regularizers=self.regularizers, optimizers=self.optimizers,
            batches=batches, hooks=self.hooks, context=self.context, autocast_dtype=autocast_dtype,
            device=self.device, scaler=self.scaler,
        )
        self.best_value: float | None = None
        self._reset_accumulators()
        self.hooks.call("setup", self.context)

    def _label_frequencies(self) -> torch.Tensor:
        """The data's class frequencies, for ``run.latent_labels = "data"``."""
        frequencies = getattr(self.data, "label_frequencies", None)
        if not callable(frequencies):
            raise GankitError(
                f"run.latent_labels = \"data\" draws generated classes as often as the data holds them, but the data "
                f"source {self.recipe['data'].name!r} does not say how often (it has no label_frequencies()); "
                "use run.latent_labels = \"uniform\""
            )
        return torch.as_tensor(frequencies(), dtype=torch.float32)

    def _build_schedules(self) -> None:
        total = self.settings.steps
        self.schedules = {key: spec.build(total_steps=total) for key, spec in self.recipe["schedule"].items()}

    def _wrap_networks(self, g: nn.Module, d: nn.Module) -> Networks:
        """The callables each phase uses: DDP wrappers when distributed, compiled when asked.

        The generator phase calls the discriminator's own module, not its DDP
        wrapper: it is frozen there, and DDP's gradient reducer must only see
        the discriminator phase's backward pass.
        """
        if not self.dist.enabled:
            compiled_d = self._maybe_compile(d)
            return Networks(g, d, self._maybe_compile(g), compiled_d, compiled_d, d)
        from torch.nn.parallel import DistributedDataParallel

        if self.settings.sync_batchnorm:
            if self.device.type != "cuda":
                raise GankitError("run.sync_batchnorm needs CUDA (PyTorch's SyncBatchNorm runs on GPUs only)")
            g = nn.SyncBatchNorm.convert_sync_batchnorm(g)
            d = nn.SyncBatchNorm.convert_sync_batchnorm(d)
        ids = [self.device.index] if self.device.type == "cuda" else None
        d_ddp = DistributedDataParallel(d, device_ids=ids)
        return Networks(
            g, d,
            self._maybe_compile(DistributedDataParallel(g, device_ids=ids)),
            self._maybe_compile(d_ddp),
            self._maybe_compile(d),
            d_ddp,
        )

    def _maybe_compile(self, module: nn.Module) -> nn.Module:
        setting = self.settings.compile
        if setting is False:
            return module
        mode = None if setting is True or setting == "default" else setting
        compiled: nn.Module = torch.compile(module, mode=mode)  # type: ignore[assignment]
        return compiled

    @property
    def _replays_cuda_graphs(self) -> bool:
        """Whether compiled networks replay CUDA graphs (their outputs live until the next step begins)."""
        return self.device.type == "cuda" and self.settings.compile in ("reduce-overhead", "max-autotune")

    @property
    def generator_module(self) -> nn.Module:
        """The generator being trained (never a DDP wrapper)."""
        return self.nets.generator_module

    @property
    def discriminator_module(self) -> nn.Module:
        """The discriminator being trained (never a DDP wrapper)."""
        return self.nets.discriminator_module

    def set_total_steps(self, steps: int) -> None:
        """Make the run ``steps`` long: the recipe's ``run.steps`` changes, and the schedules follow the new total."""
        if steps <= 0:
            raise GankitError(f"steps = {steps}: must be a positive number of steps")
        if steps == self.settings.steps:
            return
        self.recipe = self.recipe.with_run(steps=steps)
        self.context.run = self.settings
        self.context.total_steps = steps
        self._build_schedules()

    def _threads_chosen(self, choice: Choice) -> None:
        """Note a choice of the thread tuner; the loop reports it."""
        self._thread_choices.append(choice)

    def _reset_accumulators(self) -> None:
        zero = torch.zeros((), device=self.device)
        self._d_sum = zero.clone()
        self._g_sum = zero.clone()
        self._d_count = 0
        self._g_count = 0

    # ------------------------------------------------------------------ one step

    def _set_learning_rates(self, step: int) -> None:
        for key, opt in self.optimizers.items():
            factor = self.schedules[key](step)
            for group, base in zip(opt.param_groups, self.base_lrs[key], strict=False):
                group["lr"] = base * factor

    def train_step(self) -> dict[str, Any]:
        """One step: the balance policy's decision, the discriminator phase(s), the generator phase(s)."""
        step = self.counters.step
        decision = self.balance.decide(step)
        if self.dist.enabled:
            decision = self._agree(decision)
        self._set_learning_rates(step)
        if self._replays_cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        self.context.step = step
        self.context.real_logits = self.context.fake_logits = None
        self.game.last_real = None
        self.hooks.call("before_step", self.context)
        if not self.generator_module.training:
            self.nets.generator.train()
        if not self.discriminator_module.training:
            self.nets.discriminator.train()
        d_loss: torch.Tensor | None = None
        for _ in range(decision.d_steps):
            d_loss = self.game.discriminator_phase()
        if decision.d_steps == 0:
            self.counters.skips += 1
            if self.balance.needs_losses:
                d_loss = self.game.measure_discriminator()
        self.hooks.call("after_discriminator_step", self.context)
        g_loss: torch.Tensor | None = None
        for _ in range(decision.g_steps):
            g_loss = self.game.generator_phase()
        self.counters.step = self.context.step = step + 1
        self.hooks.call("after_generator_step", self.context)
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
        mine = [float(self.stop.requested), 0.0, 0.0]
        if self.dist.is_main:
            mine[1:] = [float(decision.d_steps), float(decision.g_steps)]
        agreed = distributed.all_reduce(torch.tensor(mine, device=self.device), "max").tolist()
        self.stop.requested = bool(agreed[0])
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
        answer: nn.Module | None = self.hooks.first("sampling_generator", self.context)
        return answer if answer is not None else self.generator_module

    def _stateful(self) -> StatefulParts:
        return StatefulParts(self.generator_module, self.discriminator_module, self.optimizers, self.tricks,
                             self.regularizers, self.loss, self.balance, self.data, self.scaler)

    def state(self) -> Checkpoint:
        """The whole training state as a checkpoint (a collective when distributed)."""
        self.counters.d_steps = self.game.d_step_count
        self.counters.g_steps = self.game.g_step_count
        self.counters.best_value = self.best_value
        return to_checkpoint(self._stateful(), self.counters, self._rng_states(), recipe=self.recipe,
                             world_size=self.dist.world_size)

    def load_state(self, ckpt: Checkpoint) -> None:
        """Restore the training state of a checkpoint (the recipe must build the same networks)."""
        self._check_classes(ckpt)
        self.counters = from_checkpoint(self._stateful(), ckpt)
        self.game.d_step_count = self.counters.d_steps
        self.game.g_step_count = self.counters.g_steps
        self.best_value = self.counters.best_value
        self.context.step = self.counters.step
        saved_world = int(ckpt.state.get("world_size", 1))
        if saved_world == self.dist.world_size:
            self.streams.restore(ckpt.group(f"rng.{self.dist.rank}"))
            return
        self.streams.reseed(self.counters.step)
        if self.dist.is_main:
            import warnings

            from gankit.errors import GankitWarning

            warnings.warn(
                f"resuming a checkpoint of {saved_world} process(es) on {self.dist.world_size}: weights and "
                "optimiser state are exact, the random streams are re-seeded from the step",
                GankitWarning,
                stacklevel=2,
            )

    def _check_classes(self, ckpt: Checkpoint) -> None:
        """A conditional run resumes only on data with the classes it was trained on."""
        if not (self.nets.generator_classes or self.nets.discriminator_classes):
            return
        saved = ckpt.state.get("num_classes")
        names = ckpt.state.get("class_names")
        current = data_description(self.data)
        if saved is None or (int(saved), names) == (current["num_classes"], current["class_names"]):
            return
        raise GankitError(
            f"the checkpoint's networks are conditioned on {int(saved)} classes ({_names(names)}), but the data "
            f"({self.recipe['data'].name!r}) now has {current['num_classes']} ({_names(current['class_names'])}): "
            "train on the data the run was trained on (the same classes, in the same order), or start a new run"
        )

    def _rng_states(self) -> list[dict[str, torch.Tensor]]:
        """Every process's random-generator states (a collective when distributed)."""
        local = self.streams.state()
        if not self.dist.enabled:
            return [local]
        return distributed.gather_states(local, self.device if self.dist.backend == "nccl" else torch.device("cpu"))

    # ------------------------------------------------------------------ outputs

    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[nn.Module]:
        """The sampling generator in eval mode (and schedule-free optimisers in eval mode) for the block."""
        modal = [opt for opt in self.optimizers.values()
                 if callable(getattr(opt, "eval", None)) and callable(getattr(opt, "train", None))]
        for opt in modal:
            opt.eval()
        generator = self.sampling_generator()
        was_training = generator.training
        generator.eval()
        try:
            yield generator
        finally:
            generator.train(was_training)
            for opt in modal:
                opt.train()

    def save_samples(self) -> Path:
        """A grid of samples from the fixed latent batch, saved as samples/step-N.png."""
        with self._evaluating() as generator, torch.no_grad():
            if self.fixed_labels is None:
                samples = generator(self.fixed_latents)
            else:
                samples = generator(self.fixed_latents, self.fixed_labels)
        path = self.run_dir / SAMPLES_DIR / f"step-{self.step:08d}.png"
        picture = samples_picture(samples)
        save_picture(picture, path)
        if self.run_log is not None:
            self.run_log.picture(self.step, "samples", picture)
        return path

    def checkpoint(self) -> Path:
        """Write a checkpoint of the current step, only when the losses and the weights are finite.

        Every process takes part (their random states are gathered); rank 0 writes.
        """
        self._check_finite()
        if not weights_are_finite(self.generator_module, self.discriminator_module):
            raise self._diverged("a network's weights became NaN or infinite")
        state = self.state()
        if not self.dist.is_main:
            return checkpoint_path(self.run_dir, self.step)
        return write_run_checkpoint(self.run_dir, self.step, state, self.settings.keep_checkpoints)

    def export_generator(self) -> Path:
        """Write the sampling generator alone, with its recipe, as generator.safetensors."""
        ckpt = Checkpoint()
        with self._evaluating() as generator:
            ckpt.put("generator", generator.state_dict())
        ckpt.state = {
            "step": self.step,
            "gankit_version": __version__,
            "recipe": self.recipe.to_toml(),
            "recipe_name": self.recipe.name,
            "part_versions": self.recipe.part_versions(),
            "exported": True,
            **data_description(self.data),
        }
        path = self.run_dir / EXPORT_FILE
        save_checkpoint(path, ckpt)
        return path

    def evaluate(self) -> dict[str, float]:
        """Compute every metric of the recipe on the sampling generator: ``{"name.key": value}``."""
        results: dict[str, float] = {}
        if not self.metrics:
            return results
        with self._evaluating() as generator:
            for name, metric in self.metrics:
                for key, value in metric(generator, self.data, device=self.device, seed=self.settings.seed).items():
                    results[f"{name}.{key}"] = value
        return results

    def _share_best(self, results: dict[str, float]) -> dict[str, float]:
        """Rank 0's value of ``run.best_metric`` for every process (metrics are computed on rank 0 only)."""
        key = self.settings.best_metric
        if key is None:
            return results
        value = torch.tensor([float(results.get(key, math.nan)) if self.dist.is_main else 0.0], device=self.device)
        shared = float(distributed.broadcast(value).item())
        if self.dist.is_main:
            return results
        return {} if math.isnan(shared) else {key: shared}

    def _provenance(self) -> dict[str, Any]:
        """How each metric made its last numbers (sample counts, feature weights, resize mode), when it says."""
        found = {name: metric.provenance() for name, metric in self.metrics
                 if callable(getattr(metric, "provenance", None))}
        return {"provenance": found} if found else {}

    def _keep_best(self, results: dict[str, float]) -> Path | None:
        key = self.settings.best_metric
        if key is None:
            return None
        if key not in results:
            if not self.dist.is_main:
                return None
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
        self.best_value = value
        path = self.run_dir / "checkpoints" / "best.safetensors"
        state = self.state()
        if self.dist.is_main:
            save_checkpoint(path, state)
        return path

    def _diverged(self, what: str) -> TrainingError:
        run = self.run_dir
        return TrainingError(
            f"{what} before step {self.step}; training stopped and no checkpoint was written from that state. "
            f"The kept checkpoints are in {run / 'checkpoints'}. Resume from one before the trouble with a lower "
            f"learning rate: gankit train --resume {run} --from STEP --set optim.generator.lr=... "
            "--set optim.discriminator.lr=... (or add a regulariser, or use precision = \"fp32\")"
        )

    def _check_finite(self) -> None:
        flag = ~(torch.isfinite(self._d_sum) & torch.isfinite(self._g_sum))
        if self.dist.enabled:
            flag = distributed.all_reduce(flag.float(), "max")
        if bool(flag):
            raise self._diverged("a loss became NaN or infinite")

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
        record["lr_g"] = self.optimizers["generator"].param_groups[0]["lr"]
        record["lr_d"] = self.optimizers["discriminator"].param_groups[0]["lr"]
        record["skips"] = self.counters.skips
        record["balance"] = decision_reason
        record.update(self.hooks.logs(self.context))
        self._reset_accumulators()
        return record

    # ------------------------------------------------------------------ the loop

    def _prepare_run_dir(self, resumed: bool) -> None:
        """Lock the run folder (claiming it for a new run) and write the resolved recipe."""
        if self.folder is None or not self.folder.locked:
            folder = RunFolder(self.run_dir)
            self.folder = folder.open_existing() if resumed else folder.claim_new(self.recipe.name)
        from gankit.files import write_bytes_atomic

        write_bytes_atomic(self.run_dir / RECIPE_FILE, self.recipe.to_toml().encode())

    def fit(self, steps: int | None = None, *, resumed: bool = False) -> TrainResult:
        """Train until the run's total (``run.steps``, or ``steps`` when given) is done.

        ``steps`` changes the run's total, schedules included (see
        :meth:`set_total_steps`). Writes samples, metrics and checkpoints into
        the run folder (rank 0 only, when distributed). Ctrl-C (or SIGTERM)
        finishes the step in progress, writes a checkpoint and returns with
        ``interrupted=True``.
        """
        if steps is not None:
            self.set_total_steps(steps)
        total = self.settings.steps
        main = self.dist.is_main
        self._t0 = time.time()
        self._last_ckpt: Path | None = None
        self._last_record: dict[str, Any] | None = None
        interrupted = False
        try:
            if main:
                self._prepare_run_dir(resumed)
            with (
                self._metrics_file() as metrics,
                self.stop.handling(),
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
                interrupted = self.stop.requested and self.step < total
                if interrupted:
                    progress.log(f"interrupted at step {self.step}: writing a checkpoint")
                    self._last_ckpt = self.checkpoint()
            if not interrupted and main:
                self.export_generator()
        except (RuntimeError, OSError) as error:
            if self.dist.enabled and distributed.is_collective_failure(error):
                raise distributed.peer_failure(error) from error
            raise
        finally:
            if self.folder is not None:
                self.folder.release()
        return TrainResult(self.run_dir, self.step, self._last_ckpt, interrupted, self._last_record,
                           self.dist.is_main)

    def _report_threads(self, metrics: Any, progress: Progress) -> None:
        while self._thread_choices:
            choice = self._thread_choices.pop(0)
            progress.log(f"step {self.step}: {describe(choice)}")
            self._write(metrics, {"step": self.step, "event": "threads", "threads": choice.threads,
                                  "reason": choice.reason,
                                  "seconds": {str(n): round(t, 6) for n, t in sorted(choice.seconds.items())}})

    def _metrics_file(self) -> contextlib.AbstractContextManager[RunLog | None]:
        """metrics.jsonl and the recipe's loggers (rank 0), where every record and sample grid goes."""
        if not self.dist.is_main:
            return contextlib.nullcontext(None)
        self.run_log = RunLog(self.run_dir, self.recipe, start_step=self.step)
        return self.run_log

    def _write(self, metrics: RunLog | None, record: dict[str, Any]) -> None:
        if metrics is not None:
            metrics.write(record)

    def _loop(self, total: int, metrics: Any, progress: Progress) -> None:
        s = self.settings
        main = self.dist.is_main
        tuner = thread_policy(s.threads, self.device, self._threads_chosen)
        while self.step < total and not self.stop.requested:
            started = time.perf_counter() if tuner is not None else 0.0
            decision = self.train_step()["decision"]
            if tuner is not None:
                tuner.step_done(time.perf_counter() - started)
                self._report_threads(metrics, progress)
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
                                skips=self.counters.skips)
            if step % s.sample_every == 0 or step == total:
                self._check_finite()
                if main:
                    self.save_samples()
            if self.metrics and (step % s.metrics_every == 0 or step == total):
                self._check_finite()
                results = self.evaluate() if main else {}
                if self.dist.enabled:
                    results = self._share_best(results)
                if main:
                    self._write(metrics, {"step": step, "event": "metrics", **results, **self._provenance()})
                    progress.log(f"step {step}: " + "  ".join(f"{k} {v:.4g}" for k, v in results.items()))
                self._keep_best(results)
            if step % s.checkpoint_every == 0 or step == total:
                self._last_ckpt = self.checkpoint()


def grid_labels(count: int, num_classes: int) -> torch.Tensor:
    """Labels for a sample grid of ``count`` images: one class per row of the grid, in order, then again."""
    columns = max(1, math.ceil(math.sqrt(count)))
    return (torch.arange(count) // columns) % num_classes


def _names(names: Any, limit: int = 6) -> str:
    if not names:
        return "unnamed"
    shown = ", ".join(str(n) for n in list(names)[:limit])
    return shown + (f", ... {len(names) - limit} more" if len(names) > limit else "")


def _check_conditioning(recipe: Recipe, generator: nn.Module, discriminator: nn.Module, regularizers: Sequence[Any]
                        ) -> None:
    """Refuse networks and parts that cannot play a conditional game together; warn when labels go unused."""
    import warnings

    from gankit.errors import GankitWarning

    g_classes = int(getattr(generator, "num_classes", 0) or 0)
    d_classes = int(getattr(discriminator, "num_classes", 0) or 0)
    g_name, d_name = recipe["generator"].name, recipe["discriminator"].name
    if d_classes and not g_classes:
        raise GankitError(
            f"{recipe.source}: discriminator {d_name!r} is class-conditional but generator {g_name!r} is not, so "
            "generated samples would have no class to be judged by: condition the generator too (e.g. "
            "generator.condition = \"embedding\"), or set discriminator.condition = \"none\""
        )
    if d_classes and g_classes != d_classes:
        raise GankitError(
            f"{recipe.source}: generator {g_name!r} is conditioned on {g_classes} classes and discriminator "
            f"{d_name!r} on {d_classes}: both must take the data's classes"
        )
    specs = recipe["regularizers"]
    for spec, part in zip(specs, regularizers, strict=False):
        if getattr(part, "needs_class_logits", False) and not getattr(discriminator, "has_classifier", False):
            raise GankitError(
                f"{recipe.source}: regulariser {spec.name!r} needs class logits from the discriminator, but "
                f"discriminator {d_name!r} has no classifier: set discriminator.condition = \"classifier\" (or "
                "\"projection-classifier\")"
            )
    if g_classes and not d_classes:
        warnings.warn(
            f"{recipe.source}: generator {g_name!r} is class-conditional but discriminator {d_name!r} is not: unless "
            "a part of the recipe uses the labels, nothing teaches the generator what a class looks like. Condition "
            "the discriminator (discriminator.condition = \"projection\", or \"classifier\" with the acgan loss)",
            GankitWarning,
            stacklevel=4,
        )


def _warn_about_slow_metrics(specs: Sequence[Any], every: int) -> None:
    """Warn when a metric computed during training uses its large default sample count (meant for reported numbers)."""
    import warnings

    from gankit.errors import GankitWarning

    for spec in specs:
        params = spec.params
        if "n_fake" in type(params).model_fields and "n_fake" not in params.model_fields_set and params.n_fake > 10_000:
            warnings.warn(
                f"[[metrics]] {spec.name}: n_fake is not set, so each evaluation (every {every} steps) generates "
                f"{params.n_fake:,} samples, the count for a reported number; set n_fake (e.g. 2000) for metrics "
                "during training, and compute the reported one with gankit eval",
                GankitWarning,
                stacklevel=3,
            )


def _run(trainer_factory: Any, folder: RunFolder, fit: Any, *, new: bool = False) -> TrainResult:
    """Build a trainer and fit it, releasing the folder and leaving the process group on every exit.

    When a new run cannot even be built (a recipe the machine cannot hold, say), the folder it
    claimed is given back as it was.
    """
    try:
        trainer = trainer_factory()
    except BaseException:
        if new:
            folder.abandon()
        else:
            folder.release()
        raise
    try:
        result: TrainResult = fit(trainer)
    except BaseException:
        distributed.shutdown(trainer.dist)
        raise
    distributed.shutdown(trainer.dist, together=True)
    return result


def train(recipe: Recipe, out: str | Path | None = None, *, steps: int | None = None, quiet: bool = False,
          progress_stream: Any = None) -> TrainResult:
    """Train ``recipe`` into the run folder ``out``; ``steps`` is the same as setting ``run.steps``."""
    if steps is not None:
        if steps <= 0:
            raise GankitError(f"steps = {steps}: must be a positive number of steps")
        recipe = recipe.with_run(steps=steps)
    run_dir = Path(out) if out is not None else default_run_dir(recipe)
    folder = RunFolder(run_dir)
    if distributed.is_main_process():
        folder.claim_new(recipe.name)
    return _run(lambda: Trainer(recipe, run_dir, quiet=quiet, progress_stream=progress_stream, folder=folder),
                folder, lambda trainer: trainer.fit(), new=True)


#: ``--set`` keys that may change when a run is resumed: none of them changes what the networks are.
RESUMABLE_KEYS = (
    "optim.", "schedule.", "run.steps", "run.log_every", "run.sample_every", "run.checkpoint_every",
    "run.keep_checkpoints", "run.metrics_every", "run.threads", "run.device", "run.dist_timeout",
)


def resume(
    run_dir: str | Path,
    *,
    steps: int | None = None,
    overrides: Sequence[str] = (),
    from_step: int | None = None,
    quiet: bool = False,
    progress_stream: Any = None,
) -> TrainResult:
    """Continue a run from its latest checkpoint (or the one of ``from_step``).

    ``steps`` sets the run's new total (the schedules follow it from here on);
    ``overrides`` are ``--set`` values among :data:`RESUMABLE_KEYS` (a lower
    learning rate after a NaN stop, say). With ``from_step``, the run goes back
    to that kept checkpoint: later checkpoints move to ``checkpoints/abandoned-N/``
    and metrics.jsonl keeps only the records up to that step (the whole old
    file is kept beside it), so nothing is lost.
    """
    from gankit.training.resuming import checkpoint_to_resume, recipe_for_resume, rewind

    run_dir = Path(run_dir)
    bad = [o for o in overrides if not o.split("=", 1)[0].strip().startswith(RESUMABLE_KEYS)]
    if bad:
        raise GankitError(
            f"--set {bad[0]}: a resumed run keeps its parts; only these can change: "
            + ", ".join(k.rstrip(".") + ("..." if k.endswith(".") else "") for k in RESUMABLE_KEYS)
        )
    folder = RunFolder(run_dir)
    main = distributed.is_main_process()
    if main:
        folder.open_existing()
    try:
        path, ckpt = checkpoint_to_resume(run_dir, from_step)
        if from_step is not None and main:
            rewind(run_dir, int(ckpt.state["step"]))
        recipe = recipe_for_resume(ckpt.state, str(path), overrides, steps)
    except BaseException:
        folder.release()
        raise

    def build() -> Trainer:
        trainer = Trainer(recipe, run_dir, quiet=quiet, progress_stream=progress_stream, folder=folder)
        trainer.load_state(ckpt)
        return trainer

    return _run(build, folder, lambda trainer: trainer.fit(resumed=True))
