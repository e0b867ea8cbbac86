"""Offline style transfer, before and after: pictures for the docs and losses measured by independent encoders.

Stylizes scikit-learn's ``china.jpg`` (content) with ``flower.jpg`` (style)
twice, offline:

- *before*: the ``style-transfer`` recipe with random VGG19 weights, started
  from the photo at two scales (the command of issue 17);
- *after*: the ``style-transfer-offline`` recipe (the ``random-pyramid`` encoder);

then scores both results, the photo and the style image with encoders whose
random weights were drawn from other seeds than any run used (the
``random-pyramid`` design with seed 1 and VGG19 with seed 1): the content loss
against the photo and the Gram style loss against the flower (relative, as in
the recipes; lower is nearer). It writes ``offline-before-after.png`` (photo,
style, before, after side by side) and prints a Markdown table.

    python tests/benchmarks/offline_quality.py --size 256 --out docs/images     # about 10 min on 2 cores
    python tests/benchmarks/offline_quality.py --size 256 --before-size 128 --before-steps 100 --out /tmp/q
    python tests/benchmarks/offline_quality.py --size 64 --steps 10 --out /tmp/q   # a check that it runs
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gankit.style import images, stylize
from gankit.style.losses import ContentLoss, GramStyleLoss
from gankit.style.pyramid import RandomPyramidEncoder
from gankit.style.sample_photos import write_sample_photos
from gankit.style.vgg import VGGEncoder

PYRAMID_CONTENT, PYRAMID_STYLE = ["relu2_2"], ["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"]
VGG_CONTENT, VGG_STYLE = ["relu4_2"], ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def score(encoder: torch.nn.Module, image: torch.Tensor, content: torch.Tensor, style: torch.Tensor,
          content_layers: list[str], style_layers: list[str]) -> tuple[float, float]:
    """(content loss, style loss) of ``image`` for ``encoder``, relative as in the recipes."""
    keep, gram = ContentLoss(content_layers), GramStyleLoss(style_layers)
    with torch.no_grad():
        keep.set_target(encoder(content, content_layers))
        gram.set_target(encoder(style, style_layers))
        features = encoder(image, [*content_layers, *style_layers])
        return float(keep(image, features)), float(gram(image, features))


def strip(pictures: list[torch.Tensor], height: int) -> torch.Tensor:
    """Pictures side by side at one height, 4 px of white between them."""
    resized = [images.resize(p, (height, round(p.shape[-1] * height / p.shape[-2]))) for p in pictures]
    gap = torch.ones(1, 3, height, 4)
    parts: list[torch.Tensor] = []
    for picture in resized:
        parts += [picture, gap]
    return torch.cat(parts[:-1], dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="longest side of the results (default 256)")
    parser.add_argument("--steps", type=int, help="steps per scale for both runs (default: each recipe's)")
    parser.add_argument("--before-size", type=int, help="size of the random-VGG run (default --size)")
    parser.add_argument("--before-steps", type=int, help="steps per scale of the random-VGG run (default --steps)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="folder for the pictures")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    china, flower = write_sample_photos(args.out / "photos")
    steps = {"steps": args.steps} if args.steps else {}
    before_steps = {"steps": args.before_steps} if args.before_steps else steps

    started = time.perf_counter()
    before = stylize(china, flower, "style-transfer",
                     overrides=["encoder.weights=random", "run.init=content", "run.multi_scale=2"],
                     size=args.before_size or args.size, quiet=True, output=args.out / "before-random-vgg19.png",
                     **before_steps)
    before_seconds = time.perf_counter() - started
    started = time.perf_counter()
    after = stylize(china, flower, "style-transfer-offline", size=args.size, quiet=True,
                    output=args.out / "after-random-pyramid.png", **steps)
    after_seconds = time.perf_counter() - started

    size = after.size
    content = images.resize(images.as_tensor(china), size)
    style = images.resize(images.as_tensor(flower), images.fit(*images.as_tensor(flower).shape[-2:], args.size))
    judges = {
        "random-pyramid, seed 1": (RandomPyramidEncoder(seed=1), PYRAMID_CONTENT, PYRAMID_STYLE),
        "VGG19 random, seed 1": (VGGEncoder("vgg19", pooling="avg", layers=VGG_CONTENT + VGG_STYLE).init_random(1),
                                 VGG_CONTENT, VGG_STYLE),
    }
    rows = {
        "the photo itself": content,
        "the style image": images.resize(images.as_tensor(flower), size),
        f"before: random VGG19, {max(before.size)} px ({before.seconds:.0f} s)": images.resize(before.image, size),
        f"after: random-pyramid, {max(after.size)} px ({after.seconds:.0f} s)": after.image,
    }
    print(f"\n{size[1]}x{size[0]} px; before {before_seconds:.0f} s, after {after_seconds:.0f} s"
          f" on {args.threads} thread(s)\n")
    print("| image | " + " | ".join(f"content / style ({name})" for name in judges) + " |")
    print("|---|" + "---|" * len(judges))
    for label, image in rows.items():
        cells = []
        for encoder, content_layers, style_layers in judges.values():
            c, s = score(encoder.eval(), image, content, style, content_layers, style_layers)
            cells.append(f"{c:.3f} / {s:.3f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    picture = strip([content, images.as_tensor(flower), before.image, after.image], height=min(size[0], 170))
    print("\nwrote", images.save_image(picture, args.out / "offline-before-after.png"))


if __name__ == "__main__":
    main()
