"""Where the DCGAN step's FLOP rate goes: every layer of ``dcgan-digits`` timed on its own (issue 8).

Run it from the repository root (it is not part of the test suite)::

    python tests/benchmarks/dcgan_layers.py                    # 32 px, batch 64, one torch thread
    python tests/benchmarks/dcgan_layers.py --channels-last

Each convolution, linear and normalisation layer of the recipe's generator and
discriminator gets the input shape it sees in training and is timed alone,
forward and backward (gradients for its weights and its input), with the FLOPs
counted by ``torch.utils.flop_counter``. Rates are given as a fraction of a
2048³ float32 ``torch.mm`` measured in the same run, as in the benchmark suite.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import torch
from _harness import DCGAN_WIDTHS, count_flops, matmul_burst
from torch import nn

from gankit.recipe import load_recipe
from gankit.training import Trainer

TIMED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d)


def matmul_rate(seconds: float = 0.3) -> float:
    """float32 FLOP/s of square ``torch.mm`` products on the CPU (the suite's own measurement)."""
    burst, flops = matmul_burst(torch.device("cpu"), seconds)
    start = time.perf_counter()
    burst()
    return flops / (time.perf_counter() - start)


def layer_inputs(network: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module, torch.Size]]:
    """Every timed layer of ``network`` with the shape of its input in one forward pass."""
    seen: list[tuple[str, nn.Module, torch.Size]] = []
    hooks = [
        module.register_forward_hook(lambda m, args, out, name=name: seen.append((name, m, args[0].shape)))
        for name, module in network.named_modules()
        if isinstance(module, TIMED)
    ]
    with torch.no_grad():
        network(x)
    for hook in hooks:
        hook.remove()
    return seen


def time_layer(module: nn.Module, shape: torch.Size, channels_last: bool, repeats: int = 10) -> tuple[int, float]:
    """FLOPs and seconds of one forward and backward pass of ``module`` alone."""
    x = torch.randn(shape)
    if channels_last and x.dim() == 4:
        module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)

    def step() -> None:
        y = module(x)
        y.backward(torch.ones_like(y))

    step()
    flops = count_flops(step)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return flops, (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = load_recipe("dcgan-digits", [f"data.resolution={args.resolution}", f"run.batch_size={args.batch}",
                                          "run.device=cpu", *DCGAN_WIDTHS])
    trainer: Any = Trainer(recipe, tempfile.mkdtemp(prefix="gankit-layers-"), quiet=True)
    z = trainer.game.batches.latents(args.batch)[0]
    with torch.no_grad():
        images = trainer.generator_module(z)
    layers = [("G " + n, m, s) for n, m, s in layer_inputs(trainer.generator_module, z)]
    layers += [("D " + n, m, s) for n, m, s in layer_inputs(trainer.discriminator_module, images)]
    rate = matmul_rate()
    print(f"float32 matmul: {rate / 1e9:.0f} GFLOP/s; {'channels-last' if args.channels_last else 'NCHW'}, "
          f"{args.threads} thread(s), batch {args.batch}, {args.resolution} px")
    print(f"{'layer':44s} {'input':>18s} {'MFLOP':>8s} {'ms':>7s} {'of matmul':>9s}")
    total_flops, total_seconds = 0, 0.0
    for name, module, shape in layers:
        flops, seconds = time_layer(module, shape, args.channels_last)
        total_flops += flops
        total_seconds += seconds
        label = f"{name} {type(module).__name__}"
        print(f"{label:44s} {'x'.join(map(str, shape)):>18s} {flops / 1e6:8.1f} {seconds * 1e3:7.2f} "
              f"{flops / seconds / rate:9.1%}")
    print(f"{'all layers, once each':44s} {'':>18s} {total_flops / 1e6:8.1f} {total_seconds * 1e3:7.2f} "
          f"{total_flops / total_seconds / rate:9.1%}")


if __name__ == "__main__":
    main()
