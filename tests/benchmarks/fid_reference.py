"""FID agreement with the reference implementations (issue 16): pytorch-fid, torch-fidelity and clean-fid.

gankit's FID, in each resize mode, against the implementation the mode
reproduces, on the same images and the same Inception-v3 weights:

====================  ==========================================================
gankit resize mode     reference
====================  ==========================================================
``legacy-pytorch``     pytorch-fid (``calculate_frechet_distance`` of its folder statistics)
``legacy-tensorflow``  torch-fidelity (``calculate_metrics(fid=True)``)
``clean``              clean-fid (``compute_fid(mode="clean")``)
====================  ==========================================================

The references run in a separate virtual environment where they install
(they need torchvision), for example::

    python3 -m venv /tmp/fidref
    /tmp/fidref/bin/pip install torch==2.14.1 torchvision==0.29.1 pytorch-fid torch-fidelity clean-fid

Then, from the repository root, in gankit's environment::

    python tests/benchmarks/fid_reference.py --reference-python /tmp/fidref/bin/python
    python tests/benchmarks/fid_reference.py --reference-python /tmp/fidref/bin/python --count 24   # a quick check

What it does:

1. Writes two sets of ``--count`` PNG images (``--size`` px): "real" smooth
   colour fields and "generated" ones with other statistics (sharper, shifted
   colours), so that the FID between them is far from zero.
2. Makes the feature network once: Inception-v3 (the FID variant) with random
   weights (seed 0) whose batch-norm statistics are set from the real images,
   so that every layer's activations are of order one and the features are
   not degenerate; saved as safetensors (gankit) and as a ``.pth`` state dict
   (the references, which load that format). Random weights are enough to compare the code paths;
   the published weights only change the numbers, not the arithmetic.
3. Runs the references in ``--reference-python`` on the two folders. pytorch-fid's
   weight download is replaced by this state dict; torch-fidelity takes it as
   ``feature_extractor_weights_path``; clean-fid gets it as its feature
   extractor (pytorch-fid's network with clean-fid's ``(x - 128) / 128``
   normalisation, that of its TorchScript Inception), so clean-fid's own image
   loading, resizing and statistics are what is compared.
4. Runs gankit: ``gankit data stats REAL`` for the real side, and the ``fid``
   metric with ``reference=`` that file on a generator that outputs the
   generated set as floats in [-1, 1] (so the generated side goes through
   gankit's quantisation).
5. Prints a table of the FIDs and their differences (target: below 1e-3),
   and the largest difference between pytorch-fid's and gankit's feature means.

With fewer images than features (2,048) the covariances are singular and the
references' matrix square roots become unreliable; use at least 2,100 images
(the default) for the real comparison. This script is not part of the test
suite (pytest does not collect it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

MODES = {"legacy-pytorch": "pytorch-fid", "legacy-tensorflow": "torch-fidelity", "clean": "clean-fid"}
TARGET = 1e-3


# --------------------------------------------------------------------------- the data and the weights (gankit side)


def make_images(folder: Path, count: int, size: int, *, generated: bool) -> None:
    """``count`` PNGs: smooth colour fields ("real"), or sharper ones with shifted colours ("generated")."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1 if generated else 0)
    for i in range(count):
        coarse = rng.integers(0, 256, (6 if generated else 4, 6 if generated else 4, 3)).astype(np.float64)
        if generated:
            coarse = 0.7 * coarse + 60
        image = Image.fromarray(coarse.clip(0, 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
        array = np.asarray(image).astype(np.float64) + rng.normal(0, 6 if generated else 3, (size, size, 3))
        Image.fromarray(array.round().clip(0, 255).astype(np.uint8)).save(folder / f"{i:05d}.png")


def make_weights(real: Path, out: Path) -> Path:
    """Random FID Inception-v3 weights, batch norms set from 32 real images; saved as safetensors."""
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    from gankit.metrics.inception import InceptionV3Features
    from gankit.metrics.pixels import network_input

    torch.manual_seed(0)
    network = InceptionV3Features("fid")
    files = sorted(real.glob("*.png"))[:32]
    pixels = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])).permute(0, 3, 1, 2)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: after one batch, exactly its statistics
    network.train()
    with torch.no_grad():
        network.trunk(network_input(pixels, "legacy-pytorch"))
    state = {k: v.contiguous() for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["fc.weight"] = torch.randn(1008, 2048) * 0.01
    state["fc.bias"] = torch.zeros(1008)
    save_file(state, str(out))
    full = dict(state)  # the references' torchvision-style modules also hold num_batches_tracked
    for key in state:
        if key.endswith("running_var"):
            full[key[: -len("running_var")] + "num_batches_tracked"] = torch.tensor(0)
    torch.save(full, out.with_suffix(".pth"))
    return out


class _Replay:
    """A generator that outputs the given images (floats in [-1, 1]) in order."""

    latent_dim = 1

    def __init__(self, images: Any) -> None:
        self.images = images
        self.position = 0
        self.training = False

    def eval(self) -> _Replay:
        return self

    def __call__(self, z: Any) -> Any:
        start = self.position
        self.position += z.shape[0]
        return self.images[start : start + z.shape[0]]


def gankit_fids(real: Path, generated: Path, weights: Path, size: int, work: Path) -> dict[str, Any]:
    """gankit's FID of the generated set against the real one, in each mode; the real statistics for comparison."""
    import numpy as np
    import torch
    from PIL import Image

    from gankit.cli import main
    from gankit.data.images import to_float
    from gankit.metrics.statistics import load_stats
    from gankit.plugins import get_registry

    files = sorted(generated.glob("*.png"))
    pixels = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])).permute(0, 3, 1, 2)
    images = to_float(pixels)

    class Shape:
        shape = (3, size, size)

    out: dict[str, Any] = {}
    for mode in MODES:
        stats = work / f"gankit-real-{mode}.npz"
        settings = ["--set", "features=inception", "--set", f"weights={weights}", "--set", f"resize={mode}"]
        start = time.perf_counter()
        code = main(["data", "stats", str(real), "-r", str(size), "-o", str(stats), "-q", *settings])
        if code != 0:
            raise SystemExit(f"gankit data stats failed ({code})")
        fid = get_registry().get("metric", "fid").build({
            "features": "inception", "weights": str(weights), "resize": mode, "reference": str(stats),
            "n_fake": len(files), "batch": 50,
        })
        result = fid(_Replay(images), Shape(), device="cpu", seed=0)
        mean = load_stats(stats)[0].mean
        out[mode] = {"fid": result["fid"], "n_fake": result["n_fake"], "n_real": result["n_real"],
                     "seconds": time.perf_counter() - start, "real_mean": mean.tolist(), **fid.provenance()}
        print(f"gankit {mode}: FID {result['fid']:.6f} ({out[mode]['seconds']:.0f} s)", flush=True)
    return out


# --------------------------------------------------------------------------- the references (their environment)


def reference_fids(real: Path, generated: Path, weights: Path) -> dict[str, Any]:
    """FIDs from pytorch-fid, torch-fidelity and clean-fid with the given weights (runs in their environment)."""
    import numpy as np
    import torch

    pth = weights.with_suffix(".pth")
    full = torch.load(pth, weights_only=True)
    out: dict[str, Any] = {}

    import pytorch_fid.inception as pf_inception
    from pytorch_fid import fid_score

    pf_inception.load_state_dict_from_url = lambda *args, **kwargs: dict(full)
    model = pf_inception.InceptionV3([pf_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    start = time.perf_counter()
    m1, s1 = fid_score.compute_statistics_of_path(str(real), model, 50, 2048, "cpu", 0)
    m2, s2 = fid_score.compute_statistics_of_path(str(generated), model, 50, 2048, "cpu", 0)
    out["pytorch-fid"] = {"fid": float(fid_score.calculate_frechet_distance(m1, s1, m2, s2)),
                          "real_mean": np.asarray(m1).tolist(), "seconds": time.perf_counter() - start}
    print(f"pytorch-fid: FID {out['pytorch-fid']['fid']:.6f}", flush=True)

    import torch_fidelity

    start = time.perf_counter()
    metrics = torch_fidelity.calculate_metrics(
        input1=str(generated), input2=str(real), fid=True, cuda=False, batch_size=50, cache=False, verbose=False,
        feature_extractor="inception-v3-compat", feature_extractor_weights_path=str(pth), save_cpu_ram=True,
    )
    out["torch-fidelity"] = {"fid": float(metrics["frechet_inception_distance"]),
                             "seconds": time.perf_counter() - start}
    print(f"torch-fidelity: FID {out['torch-fidelity']['fid']:.6f}", flush=True)

    from cleanfid import fid as clean

    blocks = model.blocks

    def features(x: Any) -> Any:  # clean-fid's TorchScript Inception, without its resize: (x - 128) / 128
        y = (x - 128) / 128
        for block in blocks:
            y = block(y)
        return y.reshape(y.shape[0], -1)

    start = time.perf_counter()
    score = clean.compute_fid(str(generated), str(real), mode="clean", custom_feat_extractor=features,
                              num_workers=0, batch_size=50, device=torch.device("cpu"), verbose=False,
                              use_dataparallel=False)
    out["clean-fid"] = {"fid": float(score), "seconds": time.perf_counter() - start}
    print(f"clean-fid: FID {out['clean-fid']['fid']:.6f}", flush=True)
    return out


# --------------------------------------------------------------------------- driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-python", help="python of the environment with pytorch-fid, torch-fidelity "
                        "and clean-fid")
    parser.add_argument("--count", type=int, default=2100, help="images per set (default 2,100: more than 2,048)")
    parser.add_argument("--size", type=int, default=64, help="side of the images (default 64)")
    parser.add_argument("--work", type=Path, default=Path("fid-reference"), help="working folder (kept)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="write every number as JSON")
    parser.add_argument("--as-reference", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    real, generated, weights = args.work / "real", args.work / "generated", args.work / "inception.safetensors"
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.as_reference:
        (args.work / "reference.json").write_text(json.dumps(reference_fids(real, generated, weights)))
        return
    if not args.reference_python:
        parser.error("--reference-python is required (the environment with the reference implementations)")
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    make_images(real, args.count, args.size, generated=False)
    make_images(generated, args.count, args.size, generated=True)
    make_weights(real, weights)
    command = [args.reference_python, __file__, "--as-reference", "--work", str(args.work), "--count",
               str(args.count), "--size", str(args.size), "--threads", str(args.threads)]
    subprocess.run(command, check=True, env=dict(os.environ, PYTHONPATH=""))
    references = json.loads((args.work / "reference.json").read_text())
    ours = gankit_fids(real, generated, weights, args.size, args.work)
    rows = []
    for mode, name in MODES.items():
        delta = abs(ours[mode]["fid"] - references[name]["fid"])
        rows.append((mode, name, ours[mode]["fid"], references[name]["fid"], delta))
    import numpy as np

    mean_gap = float(np.max(np.abs(np.array(ours["legacy-pytorch"]["real_mean"])
                                   - np.array(references["pytorch-fid"]["real_mean"]))))
    print(f"\n{args.count:,} real and {args.count:,} generated {args.size}x{args.size} PNGs, random Inception "
          f"weights (sha256 {ours['clean']['weights_sha256'][:16]}...), {time.perf_counter() - start:.0f} s in all\n")
    print("| gankit resize mode | reference | gankit FID | reference FID | abs. difference |")
    print("|---|---|---|---|---|")
    for mode, name, mine, theirs, delta in rows:
        mark = "" if delta < TARGET else " (above 1e-3)"
        print(f"| `{mode}` | {name} | {mine:.6f} | {theirs:.6f} | {delta:.2e}{mark} |")
    print(f"\nlargest difference between gankit's and pytorch-fid's mean real feature: {mean_gap:.2e}")
    if args.json:
        for result in (*ours.values(), references.get("pytorch-fid", {})):
            result.pop("real_mean", None)
        args.json.write_text(json.dumps({"count": args.count, "size": args.size, "gankit": ours,
                                         "references": references, "mean_gap": mean_gap}, indent=1))


if __name__ == "__main__":
    main()
