"""gankit's StyleGAN2 training step against NVlabs' reference implementation, on one GPU (issue 14).

Run from the repository root on a CUDA machine, with a checkout of
NVlabs/stylegan2-ada-pytorch (its ``dnnlib``, ``torch_utils`` and ``training``
folders; it is not part of gankit and is never imported by it)::

    python tests/benchmarks/stylegan2_reference.py --reference PATH/stylegan2-ada-pytorch --out results.json

Both sides train the reference's ``--cfg=auto`` configuration for one GPU at
``--resolution`` (256: batch 16, channel base 16384, channel cap 512, a
2-layer mapping network, minibatch-std groups of 4, R1 gamma 0.0002 res^2 /
batch every 16 steps, path length every 4 steps on half the batch, style
mixing 0.9, EMA half-life batch * 10 / 32 kimg with ramp-up 0.05, Adam 0.0025
with betas (0, 0.99)), without augmentation, on the same images. The reference
side is driven by a loop that does what its ``training_loop.py`` does per batch
(the phases Gmain, Greg every 4, Dmain, Dreg every 16, gradient clean-up, the
optimiser steps and the EMA update); gankit's side is
:meth:`gankit.training.Trainer.train_step`.

Precision, per row:

* ``fp32``: the reference with ``num_fp16_res=0`` and no clamping, gankit with
  ``precision = "fp32"``;
* ``mixed``: the reference as it ships (fp16 in the 4 highest resolutions,
  activations clamped to 256), gankit with ``precision = "bf16"`` (autocast).

Both run under the reference's global settings (cuDNN benchmark on, TF32
off); one more row times gankit with PyTorch's defaults. The contenders are
timed in interleaved rounds (``--rounds``, each ``--steps`` steps after
``--warmup``), and the script reports seconds per thousand images (sec/kimg,
the unit of the reference's README) and gankit / reference ratios.

First it checks that both compute the same function: gankit's weights
copied into the reference's networks by name give the same mapping,
synthesis and discriminator outputs (largest differences reported).

The reference builds its CUDA kernels (bias_act, upfirdn2d) with the
machine's compiler on first use; where that fails it falls back to plain
PyTorch ops, and the result records which path it used. On a CPU the script
runs on tiny settings (``--tiny``) only to check itself. It is not part of
the test suite (pytest does not collect it).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from _harness import synchronize  # noqa: E402

from gankit.recipe import loads_recipe  # noqa: E402
from gankit.training import Trainer  # noqa: E402


def auto_config(resolution: int) -> dict[str, Any]:
    """The reference's ``--cfg=auto`` settings for one GPU at ``resolution`` (its train.py)."""
    batch = max(min(min(4096 // resolution, 32), 64), 1)
    return {
        "batch": batch,
        "mbstd": min(batch, 4),
        "channel_base": int((1 if resolution >= 512 else 0.5) * 32768),
        "channel_max": 512,
        "lr": 0.002 if resolution >= 1024 else 0.0025,
        "gamma": 0.0002 * resolution**2 / batch,
        "ema_kimg": batch * 10 / 32,
        "mapping_layers": 2,
    }


def write_images(folder: Path, count: int, resolution: int, seed: int = 0) -> np.ndarray:
    """``count`` smooth random RGB pictures as PNG files; returns them as uint8 ``(N, 3, H, W)``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pictures = []
    for i in range(count):
        coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((resolution, resolution), Image.Resampling.BICUBIC)
        image.save(folder / f"{i:05d}.png")
        pictures.append(np.asarray(image).transpose(2, 0, 1))
    return np.stack(pictures)


def gankit_recipe(cfg: dict[str, Any], resolution: int, folder: Path, precision: str, device: str,
                  tiny: bool) -> Any:
    """gankit's recipe for the reference's configuration (no augmentation)."""
    text = f"""
[run]
seed = 0
steps = 1000000
batch_size = {cfg['batch']}
device = "{device}"
precision = "{precision}"
{"threads = 4" if device == "cpu" else ""}
log_every = 1000000
sample_every = 1000000
checkpoint_every = 1000000
[data]
type = "image-folder"
path = "{folder.as_posix()}"
resolution = {resolution}
channels = 3
hflip = false
[generator]
type = "stylegan2"
latent_dim = {16 if tiny else 512}
w_dim = {16 if tiny else 512}
mapping_layers = {cfg['mapping_layers']}
channel_base = {cfg['channel_base']}
channel_max = {cfg['channel_max']}
[discriminator]
type = "stylegan2"
channel_base = {cfg['channel_base']}
channel_max = {cfg['channel_max']}
minibatch_std_group = {cfg['mbstd']}
[loss]
type = "non-saturating"
[[regularizers]]
type = "r1"
weight = {cfg['gamma']}
every = 16
[[regularizers]]
type = "path-length"
weight = 2.0
every = 4
batch_shrink = 2
[optim.generator]
lr = {cfg['lr']}
betas = [0.0, 0.99]
[optim.discriminator]
lr = {cfg['lr']}
betas = [0.0, 0.99]
[[tricks]]
type = "style-mixing"
probability = 0.9
[[tricks]]
type = "ema"
half_life_images = {int(cfg['ema_kimg'] * 1000)}
rampup = 0.05
"""
    return loads_recipe(text, [])


def _import_reference(path: Path) -> dict[str, Any]:
    """The reference's modules, imported from ``path`` (with a stand-in for ``distutils`` where Python lacks it)."""
    try:
        import distutils.util
    except ImportError:  # Python 3.12 dropped distutils; the reference only needs strtobool from it
        distutils = types.ModuleType("distutils")
        util = types.ModuleType("distutils.util")
        util.strtobool = lambda v: {"y": 1, "yes": 1, "t": 1, "true": 1, "on": 1, "1": 1}.get(str(v).lower(), 0)  # type: ignore[attr-defined]
        distutils.util = util  # type: ignore[attr-defined]
        sys.modules["distutils"], sys.modules["distutils.util"] = distutils, util
    sys.path.insert(0, str(path))
    from torch_utils import misc  # type: ignore[import-not-found]
    from torch_utils.ops import bias_act, conv2d_gradfix, upfirdn2d  # type: ignore[import-not-found]
    from training.loss import StyleGAN2Loss  # type: ignore[import-not-found]
    from training.networks import Discriminator, Generator  # type: ignore[import-not-found]

    return {"misc": misc, "bias_act": bias_act, "upfirdn2d": upfirdn2d, "conv2d_gradfix": conv2d_gradfix,
            "StyleGAN2Loss": StyleGAN2Loss, "Generator": Generator, "Discriminator": Discriminator}


def _reference_name(name: str, resolution: int) -> str:
    """The reference's name of a gankit StyleGAN2 parameter or buffer (its blocks are named by resolution)."""
    name = re.sub(r"^synthesis\.blocks\.(\d+)\.", lambda m: f"synthesis.b{4 * 2 ** int(m.group(1))}.", name)
    name = re.sub(r"^mapping\.layers\.(\d+)\.", lambda m: f"mapping.fc{m.group(1)}.", name)
    name = re.sub(r"^blocks\.(\d+)\.", lambda m: f"b{resolution // 2 ** int(m.group(1))}.", name)
    return re.sub(r"^(conv|fc|out)\.", r"b4.\1.", name)


def same_function(ref: dict[str, Any], resolution: int = 32, seed: int = 0) -> dict[str, float]:
    """Largest differences between gankit's and the reference's networks given the same weights.

    Both generators and discriminators are built at ``resolution`` (3
    channels, small widths), every parameter and buffer of gankit's networks
    is copied into the reference's by name, and the outputs on the same
    latents and images (noise fixed, evaluation mode) are compared.
    """
    from gankit.plugins import get_registry

    registry = get_registry()
    torch.manual_seed(seed)
    width = {"channel_base": 256, "channel_max": 32}
    shape = (3, resolution, resolution)
    g = registry.get("generator", "stylegan2").build(
        {"latent_dim": 16, "w_dim": 16, "mapping_layers": 2, **width}, shape=shape).eval()
    d = registry.get("discriminator", "stylegan2").build(dict(width), shape=shape).eval()
    rg = ref["Generator"](z_dim=16, c_dim=0, w_dim=16, img_resolution=resolution, img_channels=3,
                          mapping_kwargs={"num_layers": 2}, synthesis_kwargs=dict(width)).eval()
    rd = ref["Discriminator"](c_dim=0, img_resolution=resolution, img_channels=3, **width).eval()
    for ours, theirs in ((g, rg), (d, rd)):
        target = {**dict(theirs.named_parameters()), **dict(theirs.named_buffers())}
        with torch.no_grad():
            for name, tensor in [*ours.named_parameters(), *ours.named_buffers()]:
                if name.endswith("resample_filter"):
                    continue  # a constant both build from the same [1, 3, 3, 1] filter
                target[_reference_name(name, resolution)].copy_(tensor)
    z, images, c = torch.randn(8, 16), torch.randn(8, 3, resolution, resolution), torch.zeros(8, 0)
    with torch.no_grad():
        w, rw = g.mapping(z), rg.mapping(z, c)
        return {
            "mapping": float((w - rw).abs().max()),
            "synthesis": float((g.synthesis(w) - rg.synthesis(rw, noise_mode="const")).abs().max()),
            "discriminator": float((d(images) - rd(images, c).flatten()).abs().max()),
        }


class ReferenceLoop:
    """One batch of the reference's training loop (its training_loop.py), without augmentation or logging."""

    def __init__(self, ref: dict[str, Any], cfg: dict[str, Any], resolution: int, images: np.ndarray,
                 device: torch.device, mixed: bool, tiny: bool) -> None:
        torch.manual_seed(0)
        self.device, self.batch, self.misc = device, cfg["batch"], ref["misc"]
        z_dim = 16 if tiny else 512
        self.z_dim = z_dim
        fp16 = {"num_fp16_res": 4 if mixed else 0, "conv_clamp": 256 if mixed else None}
        self.G = ref["Generator"](z_dim=z_dim, c_dim=0, w_dim=z_dim, img_resolution=resolution, img_channels=3,
                                  mapping_kwargs={"num_layers": cfg["mapping_layers"]},
                                  synthesis_kwargs={"channel_base": cfg["channel_base"],
                                                    "channel_max": cfg["channel_max"], **fp16}).to(device)
        self.D = ref["Discriminator"](c_dim=0, img_resolution=resolution, img_channels=3,
                                      channel_base=cfg["channel_base"], channel_max=cfg["channel_max"],
                                      epilogue_kwargs={"mbstd_group_size": cfg["mbstd"]}, **fp16).to(device)
        self.G.train().requires_grad_(False)
        self.D.train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.loss = ref["StyleGAN2Loss"](device=device, G_mapping=self.G.mapping, G_synthesis=self.G.synthesis,
                                         D=self.D, r1_gamma=cfg["gamma"])
        self.phases = []
        for name, module, interval in (("G", self.G, 4), ("D", self.D, 16)):
            ratio = interval / (interval + 1)
            opt = torch.optim.Adam(module.parameters(), lr=cfg["lr"] * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)
            self.phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]
        self.ema_nimg_full = cfg["ema_kimg"] * 1000
        self.images = torch.from_numpy(images).pin_memory() if device.type == "cuda" else torch.from_numpy(images)
        self.batch_idx = 0
        self.cur_nimg = 0

    def step(self) -> None:
        """Phases Gmain, Greg, Dmain, Dreg (each on its interval), then the EMA update."""
        index = torch.randint(len(self.images), (self.batch,))
        real = self.images[index].to(self.device, non_blocking=True).to(torch.float32) / 127.5 - 1
        c = torch.zeros(self.batch, 0, device=self.device)
        for name, module, opt, interval in self.phases:
            if self.batch_idx % interval != 0:
                continue
            z = torch.randn(self.batch, self.z_dim, device=self.device)
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            self.loss.accumulate_gradients(phase=name, real_img=real, real_c=c, gen_z=z, gen_c=c, sync=True,
                                           gain=interval)
            module.requires_grad_(False)
            for param in module.parameters():
                if param.grad is not None:
                    self.misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            opt.step()
        ema_nimg = min(self.ema_nimg_full, self.cur_nimg * 0.05)
        beta = 0.5 ** (self.batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                b_ema.copy_(b)
        self.cur_nimg += self.batch
        self.batch_idx += 1


def timed(step: Callable[[], Any], steps: int, device: torch.device) -> float:
    """Seconds per step over ``steps`` steps."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def set_reference_flags(on: bool) -> None:
    """The reference's global settings (cuDNN benchmark, no TF32) when ``on``; PyTorch's defaults otherwise."""
    torch.backends.cudnn.benchmark = on
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = not on


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--steps", type=int, default=32, help="timed steps per contender per round")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny networks (a self-check on a CPU)")
    parser.add_argument("--precisions", default="fp32,mixed")
    parser.add_argument("--out", type=Path, default=Path("stylegan2-reference.json"))
    parser.add_argument("--build-only", action="store_true", help="only build the reference's CUDA kernels")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cfg = auto_config(args.resolution)
    if args.tiny:
        cfg.update(channel_base=64, channel_max=16)
    started = time.perf_counter()
    ref = _import_reference(args.reference)
    if device.type == "cuda":
        ref["bias_act"]._init()
        ref["upfirdn2d"]._init()
    kernels = {"bias_act": ref["bias_act"]._plugin is not None, "upfirdn2d": ref["upfirdn2d"]._plugin is not None}
    print(f"reference CUDA kernels built: {kernels} ({time.perf_counter() - started:.1f} s)", flush=True)
    if args.build_only:
        return 0
    differences = same_function(ref)
    print(f"largest differences with the same weights: {differences}", flush=True)
    result: dict[str, Any] = {
        "config": {**cfg, "resolution": args.resolution, "steps": args.steps, "warmup": args.warmup,
                   "rounds": args.rounds, "tiny": args.tiny},
        "torch": torch.__version__, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "reference_kernels": kernels, "same_weights_max_difference": differences, "rows": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        images = write_images(folder, args.images, args.resolution)
        for precision in args.precisions.split(","):
            set_reference_flags(True)
            mixed = precision == "mixed"
            contenders: dict[str, Callable[[], Any]] = {}
            recipe = gankit_recipe(cfg, args.resolution, folder, "bf16" if mixed else "fp32", args.device,
                                   args.tiny)
            trainer = Trainer(recipe, Path(tmp) / f"run-{precision}", quiet=True)
            contenders["gankit"] = trainer.train_step
            loop = ReferenceLoop(ref, cfg, args.resolution, images, device, mixed, args.tiny)
            contenders["reference"] = loop.step
            g_params = sum(p.numel() for p in trainer.generator_module.parameters())
            r_params = sum(p.numel() for p in loop.G.parameters())
            d_params = sum(p.numel() for p in trainer.discriminator_module.parameters())
            rd_params = sum(p.numel() for p in loop.D.parameters())
            print(f"[{precision}] parameters G gankit {g_params:,} reference {r_params:,}; "
                  f"D gankit {d_params:,} reference {rd_params:,}", flush=True)
            for name, step in contenders.items():
                t0 = time.perf_counter()
                for _ in range(args.warmup):
                    step()
                synchronize(device)
                print(f"[{precision}] {name}: warm-up {time.perf_counter() - t0:.1f} s", flush=True)
            times: dict[str, list[float]] = {name: [] for name in contenders}
            order = list(contenders)
            for r in range(args.rounds):
                for name in order if r % 2 == 0 else order[::-1]:
                    times[name].append(timed(contenders[name], args.steps, device))
            row = {"precision": precision, "flags": "reference",
                   "parameters": {"gankit_G": g_params, "reference_G": r_params,
                                  "gankit_D": d_params, "reference_D": rd_params}}
            for name, values in times.items():
                median = statistics.median(values)
                row[name] = {"sec_per_step": values, "sec_per_kimg": median * 1000 / cfg["batch"]}
            row["ratio"] = statistics.median(times["gankit"]) / statistics.median(times["reference"])
            if precision == "fp32" and device.type == "cuda":
                set_reference_flags(False)
                for _ in range(5):
                    trainer.train_step()
                value = statistics.median(timed(trainer.train_step, args.steps, device) for _ in range(args.rounds))
                row["gankit_torch_defaults"] = {"sec_per_kimg": value * 1000 / cfg["batch"]}
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
            args.out.write_text(json.dumps(result, indent=1))
            del trainer, loop, contenders
            if device.type == "cuda":
                torch.cuda.empty_cache()
    result["seconds"] = time.perf_counter() - started
    args.out.write_text(json.dumps(result, indent=1))
    for row in result["rows"]:
        print(f"{row['precision']}: gankit {row['gankit']['sec_per_kimg']:.2f} sec/kimg, reference "
              f"{row['reference']['sec_per_kimg']:.2f} sec/kimg, ratio {row['ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
