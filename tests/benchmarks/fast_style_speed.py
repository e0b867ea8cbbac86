"""Speed of style transfer: one pass of a trained stylizer against the optimisation loop.

Prints a Markdown table of:

- the ``johnson`` stylizer applied to one 256x256 and one 512x512 image, in
  milliseconds (median of ``--repeats`` calls after one warm-up call), at the
  ``fast-style`` recipe's size (16 channels, 3 residual blocks) and at
  Johnson et al.'s (32 channels, 5 blocks); the weights do not change the time;
- the optimisation loop on a 256-px photo (china.jpg, 256x171): the whole run
  of the ``style-transfer-fast`` recipe (VGG19 with random weights: the same
  work as with torchvision's), of ``style-transfer-offline``, and
  ``style-transfer``'s seconds per step times its 300 steps.

    python tests/benchmarks/fast_style_speed.py --threads 2            # a quiet 2-core CPU: about 5 minutes
    python tests/benchmarks/fast_style_speed.py --device cuda --gatys-steps 300
    python tests/benchmarks/fast_style_speed.py --quick                # a check that it runs (seconds)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from gankit.style import images, stylize
from gankit.style.sample_photos import write_sample_photos
from gankit.style.stylizer import TransformerNet


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def one_pass_ms(network: torch.nn.Module, size: int, device: torch.device, repeats: int) -> float:
    """Median milliseconds of one forward pass on a ``size`` x ``size`` image."""
    image = torch.rand(1, 3, size, size, device=device)
    network(image)
    _sync(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        network(image)
        _sync(device)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def loop_seconds(recipe: str, content: Path, style: Path, size: int, device: torch.device,
                 steps: int | None) -> tuple[float, int]:
    """Seconds of one whole stylize() run of ``recipe`` (VGG weights random) and its steps."""
    overrides = ["encoder.weights=random", f"run.device={device.type}"]
    extra = {"steps": steps} if steps else {}
    started = time.perf_counter()
    result = stylize(content, style, recipe, overrides=overrides, size=size, quiet=True, **extra)
    _sync(device)
    return time.perf_counter() - started, int(result.history[-1]["step"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--gatys-steps", type=int, default=5,
                        help="steps of style-transfer actually run; the table scales them to its 300")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and steps: check that the script runs")
    parser.add_argument("--photos", type=Path, default=Path("/tmp/gankit-bench-photos"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = (32, 64) if args.quick else (256, 512)
    loop_size = 48 if args.quick else 256
    repeats = 2 if args.quick else args.repeats
    china, flower = write_sample_photos(args.photos)

    where = f"{device}" + (f", {torch.get_num_threads()} thread(s)" if device.type == "cpu" else "")
    print(f"\n| what ({where}) | {sizes[0]} px | {sizes[1]} px |\n|---|---|---|")
    for label, channels, blocks in (("stylizer, fast-style recipe (16 ch, 3 blocks)", 16, 3),
                                    ("stylizer, Johnson et al. (32 ch, 5 blocks)", 32, 5)):
        network = TransformerNet(channels, blocks).eval().to(device)
        cells = [f"{one_pass_ms(network, size, device, repeats):.1f} ms" for size in sizes]
        print(f"| {label} | " + " | ".join(cells) + " |")

    height, width = images.fit(427, 640, loop_size)
    print(f"\n| optimisation loop, {width}x{height} px ({where}) | seconds | steps |\n|---|---|---|")
    quick_steps = 2 if args.quick else None
    for recipe in ("style-transfer-fast", "style-transfer-offline"):
        seconds, steps = loop_seconds(recipe, china, flower, loop_size, device, quick_steps)
        print(f"| {recipe} | {seconds:.1f} | {steps} |")
    seconds, steps = loop_seconds("style-transfer", china, flower, loop_size, device,
                                  quick_steps or args.gatys_steps)
    print(f"| style-transfer (300 steps, from {steps} timed) | {seconds / steps * 300:.0f} | 300 |")


if __name__ == "__main__":
    main()
