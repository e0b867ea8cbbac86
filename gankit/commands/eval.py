"""``gankit eval``: score a trained generator with a metric and print the result as JSON."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "eval"
HELP = "score a run or checkpoint with a metric (modes, stacked-digits, fid, kid, precision-recall, ...) as JSON"
DESCRIPTION = (
    "Load the generator of a run folder, checkpoint or exported generator.safetensors (its moving average when "
    "the run had one), build the run's data source from its recipe, compute a metric and print its numbers as "
    "one JSON object on standard output. The metric starts from the parameters the run's recipe gave it under "
    "[[metrics]] (if any); --set and -n change them. The JSON holds the metric's numbers and how they were made "
    "(sample counts, feature extractor, its weights' SHA-256, resize mode, reference statistics)."
)
EPILOG = """examples (each works as written, one after the other, in an empty folder):
  gankit train ring-gan --steps 200 --out ring -q
  gankit eval ring --metric modes -n 1000
  gankit eval ring --metric sliced-wasserstein --set projections=64
  gankit train dcgan-digits --steps 10 --out digits -q
  gankit eval digits --metric fid -n 256 --indent 2

metrics: gankit list --kind metric; a metric's parameters: gankit show fid"""
ORDER = 3

#: Metric parameters that ``-n`` sets, in order of preference.
SAMPLE_COUNT_PARAMS = ("samples", "n_fake")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="run folder, checkpoint, or exported generator.safetensors")
    parser.add_argument("--metric", "-m", required=True, metavar="NAME", help="metric to compute (gankit list metric)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="set a parameter of the metric, e.g. --set threshold=2 (repeatable)")
    parser.add_argument("-n", type=int, metavar="N", help="number of generated samples (the metric's samples / n_fake)")
    parser.add_argument("--seed", type=int, help="seed of the metric's latent batch (default: the run's seed)")
    parser.add_argument("--best", action="store_true",
                        help="use the run's checkpoints/best.safetensors (kept by run.best_metric)")
    parser.add_argument("--no-ema", action="store_true", help="use the raw generator, not its moving average")
    parser.add_argument("--device", default="cpu", help="device to evaluate on: cpu (default), auto, cuda, cuda:N, mps")
    parser.add_argument("--indent", type=int, default=None, metavar="N", help="indent the JSON by N spaces")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")


def metric_params(
    recipe: Any, name: str, overrides: list[str], n: int | None, count: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """The metric part ``name`` and its parameters: the recipe's ``[[metrics]]`` entry (if a recipe is given), then
    ``--set``, then ``-n`` (which sets ``count``, or the first of :data:`SAMPLE_COUNT_PARAMS` the metric has)."""
    from gankit.errors import GankitError
    from gankit.plugins import get_registry
    from gankit.recipe import parse_override
    from gankit.registry import parse_ref

    part = get_registry().get("metric", name)
    params: dict[str, Any] = {}
    base = parse_ref(name)[0]
    for spec in (recipe.get("metrics") if recipe is not None else None) or []:
        if spec.name == base:
            params = spec.params.model_dump(exclude_none=True)
            break
    fields = part.params.model_fields
    for text in overrides:
        path, value = parse_override(text)
        key = ".".join(path)
        if key not in fields:
            known = ", ".join(sorted(fields)) or "(none)"
            raise GankitError(f"--set {text}: metric {part.name!r} has no parameter {key!r}; it takes: {known}")
        params[key] = value
    if n is not None:
        if n <= 0:
            raise GankitError(f"-n {n}: must be a positive number of samples")
        count = count or next((k for k in SAMPLE_COUNT_PARAMS if k in fields), None)
        if count is None:
            raise GankitError(f"-n: metric {part.name!r} has no sample count to set")
        params[count] = n
    try:
        validated = part.validate(params)
    except Exception as error:  # pydantic's ValidationError, reported as a user mistake
        from pydantic import ValidationError

        if isinstance(error, ValidationError):
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
            raise GankitError(f"metric {part.name!r}: {problems}") from error
        raise
    return part, validated.model_dump()


def run(args: argparse.Namespace) -> int:
    import json
    import math
    from pathlib import Path

    from gankit.devices import resolve_device
    from gankit.errors import GankitError
    from gankit.training import load_generator

    if args.seed is not None and not -(2**63) <= args.seed < 2**63:
        raise GankitError(f"--seed {args.seed}: must be a 64-bit integer, -2^63 to 2^63 - 1")
    if args.indent is not None and not 0 <= args.indent <= 16:
        raise GankitError(f"--indent {args.indent}: must be between 0 and 16")
    device = resolve_device(args.device)
    source = Path(args.source)
    if args.best:
        best = source / "checkpoints" / "best.safetensors"
        if not best.is_file():
            raise GankitError(f"--best: {best} does not exist (the run needs run.best_metric and [[metrics]])")
        source = best
    loaded = load_generator(source, device=device, ema=not args.no_ema)
    if loaded.recipe is None:
        raise GankitError(
            f"{args.source}: a shared model whose recipe names parts not installed here; evaluating needs the "
            "run's data source: install them, or evaluate the run folder"
        )
    part, params = metric_params(loaded.recipe, args.metric, list(args.overrides), args.n)
    metric = part.build(params)
    data = loaded.recipe["data"].build(seed=loaded.recipe.run.seed)
    seed = args.seed if args.seed is not None else int(loaded.recipe.run.seed)
    with PhaseProgress(quiet=args.quiet) as progress:
        if hasattr(metric, "progress"):
            metric.progress = progress
        results = metric(loaded.generator, data, device=device, seed=seed)
    provenance = metric.provenance() if callable(getattr(metric, "provenance", None)) else {}
    output = {**results, **provenance}
    clean = {k: (v if isinstance(v, float) and math.isfinite(v) else None if isinstance(v, float) else v)
             for k, v in output.items()}
    print(json.dumps(clean, indent=args.indent))
    return 0


class PhaseProgress:
    """A progress callback ``(done, total, what)`` that shows one bar per phase ("real", "generated", ...)."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self._what: str | None = None
        self._bar: Any = None

    def __enter__(self) -> PhaseProgress:
        return self

    def __call__(self, done: int, total: int, what: str) -> None:
        from gankit.progress import Progress

        if what != self._what:
            self.close()
            self._what = what
            self._bar = Progress(total, description=f"{what} images", quiet=self.quiet).__enter__()
        self._bar.update(done)

    def close(self) -> None:
        """End the current bar."""
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __exit__(self, *exc: object) -> None:
        self.close()
