"""Prepared data against the in-memory folder loader (issue 16): resident memory and images per second.

Run it from the repository root::

    python tests/benchmarks/prepared_data.py                        # 100,000 generated 64-px images
    python tests/benchmarks/prepared_data.py --count 2000 --json out.json

It writes ``--count`` generated JPEG images (``--size`` px square, smooth
random colour fields, as photos compress) into a temporary folder, then
measures, each in a fresh Python process:

- ``image-folder``: building the data source (decoding every image into one
  uint8 tensor in memory), then drawing training batches;
- ``gankit data prepare``: decoding the folder once into a prepared dataset;
- ``prepared``: opening the prepared dataset, then drawing training batches.

For each it reports the wall time of the build (or preparation), images per
second while drawing ``--batch``-image batches with ``sample`` for
``--seconds`` (float conversion included, as the trainer asks for them), and
the process's resident memory: after building, and the most while drawing
(``/proc/self/statm``, sampled after every batch; the peak over the
process's life from ``getrusage``). The prepared data is read right after
it was written, so the operating system's file cache holds it (the usual
case while training; a cold cache adds disk reads). This script is not part
of the test suite (pytest does not collect it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    from gankit.plugins import get_registry

    def rss():
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * resource.getpagesize()

    kind, path, resolution, batch, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \\
        float(sys.argv[5])
    get_registry()
    base = rss()
    start = time.perf_counter()
    params = {"path": path, "resolution": resolution} if kind == "image-folder" else {"path": path}
    data = get_registry().get("data", kind).build(params)
    built = time.perf_counter() - start
    after_build = rss()
    generator = torch.Generator().manual_seed(0)
    data.sample(batch, generator)
    drawn, peak, start = 0, after_build, time.perf_counter()
    while time.perf_counter() - start < seconds:
        data.sample(batch, generator)
        drawn += batch
        peak = max(peak, rss())
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "images": len(data), "build_s": built, "images_per_s": drawn / elapsed,
        "rss_base_mb": base / 1e6, "rss_after_build_mb": after_build / 1e6, "rss_peak_drawing_mb": peak / 1e6,
        "rss_lifetime_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
    }))
    """
)


def make_images(folder: Path, count: int, size: int) -> float:
    """``count`` JPEGs of smooth random colour fields; returns the seconds it took."""
    import numpy as np
    from PIL import Image

    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
        image.save(folder / f"{i:06d}.jpg", quality=90)
    return time.perf_counter() - start


PREPARE = textwrap.dedent(
    """
    import json, sys, time
    from gankit.data.prepare import PrepareSettings, prepare_folder

    start = time.perf_counter()
    prepare_folder(sys.argv[1], sys.argv[2], PrepareSettings(resolution=(int(sys.argv[3]),) * 2))
    print(json.dumps({"prepare_s": time.perf_counter() - start}))
    """
)


def prepare(folder: Path, out: Path, size: int, threads: int) -> float:
    """Seconds ``gankit data prepare`` takes (in a fresh process, its start-up not counted)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, "-c", PREPARE, str(folder), str(out), str(size)], capture_output=True,
                          text=True, env=env, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["prepare_s"])


def child(kind: str, path: Path, resolution: int, batch: int, seconds: float, threads: int) -> dict[str, float]:
    env = dict(os.environ, BENCH_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path), str(resolution), str(batch), str(seconds)],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="images to generate (default 100,000)")
    parser.add_argument("--size", type=int, default=64, help="side of the generated images and of the data")
    parser.add_argument("--batch", type=int, default=64, help="images per drawn batch (default 64)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to draw batches (default 20 s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the measuring processes")
    parser.add_argument("--folder", type=Path, help="use (or create) this folder of images; default: a temporary one")
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gankit-bench-") as tmp:
        folder = args.folder or Path(tmp) / "images"
        made = 0.0
        if not folder.is_dir() or len(list(folder.glob("*.jpg"))) < args.count:
            made = make_images(folder, args.count, args.size)
        prepared = Path(tmp) / "prepared"
        prepare_s = prepare(folder, prepared, args.size, args.threads)
        results = {
            "image-folder": child("image-folder", folder, args.size, args.batch, args.seconds, args.threads),
            "prepared": child("prepared", prepared, args.size, args.batch, args.seconds, args.threads),
        }
        results["prepared"]["prepare_s"] = prepare_s
        report = {
            "count": args.count, "size": args.size, "batch": args.batch, "seconds": args.seconds,
            "threads": args.threads, "generate_s": made, "machine": f"{platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}", "results": results,
        }
    print(f"{args.count:,} images of {args.size}x{args.size}, batches of {args.batch}, {args.threads} thread(s)")
    print(f"{'source':14} {'build s':>9} {'RSS built MB':>13} {'RSS drawing MB':>15} {'peak MB':>8} {'img/s':>9}")
    for name, r in results.items():
        build = r["build_s"] + r.get("prepare_s", 0.0)
        print(f"{name:14} {build:9.1f} {r['rss_after_build_mb']:13.0f} {r['rss_peak_drawing_mb']:15.0f} "
              f"{r['rss_lifetime_peak_mb']:8.0f} {r['images_per_s']:9.0f}")
    print(f"(prepared: build = gankit data prepare {results['prepared']['prepare_s']:.1f} s + opening)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
