"""``gankit report``: one self-contained HTML page of a run — every logged number, metrics, samples over time."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gankit.checkpoint import atomic_write_bytes
from gankit.errors import GankitError

#: The longest line of metrics.jsonl read (a record is a few hundred bytes).
MAX_LINE_BYTES = 1 << 20


def _is_step(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _problem(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """A metrics line as a record, or ``None`` and what is wrong with it."""
    if len(line) > MAX_LINE_BYTES:
        return None, f"longer than {MAX_LINE_BYTES} bytes"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None, "not JSON (a line cut short by a crash?)"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    if "step" not in record:
        return None, "no step"
    if not _is_step(record["step"]):
        return None, f"step {str(record['step'])[:40]!r} is not a step number"
    return record, ""


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl.

    Lines that are not a JSON object with a step number (a line torn by a crash, invalid UTF-8,
    a record without a step, ...) are skipped, counted, and warned about once.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise GankitError(f"{run_dir}: no metrics.jsonl; is this a gankit run folder?")
    records = []
    bad = 0
    first = ""
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                record, problem = _problem(line.strip())
                if record is None:
                    bad += 1
                    first = first or f"line {number}: {problem}"
                    continue
                records.append(record)
    except OSError as error:
        raise GankitError(f"{path}: cannot read ({error.strerror or error})") from error
    if bad:
        import warnings

        from gankit.errors import GankitWarning

        lines = "line" if bad == 1 else "lines"
        warnings.warn(f"{path}: skipped {bad} unreadable {lines} (first: {first})", GankitWarning, stacklevel=2)
    return records


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------- what the records hold

#: Keys of a logging record that are not plotted as values of their own.
_RECORD_KEYS = frozenset({"step", "time", "event", "balance", "world_size"})
#: Fields of a metric that say how it was measured rather than how good the generator is (shown in a table).
_BOOKKEEPING = frozenset({"samples", "total_modes", "n_fake", "n_real", "real_baseline"})


@dataclass(frozen=True)
class Target:
    """The value a metric aims at, and why."""

    value: float
    label: str


def metric_target(key: str, record: dict[str, Any]) -> Target | None:
    """The target of the metric value ``key`` (``"<metric>.<field>"``) in ``record``, where gankit knows one.

    ``modes``: every mode (``total_modes``); ``high_quality`` and ``score``: 1;
    ``reverse_kl``: 0; Stacked-MNIST's ``kl``: ``(K - 1) / (2 n)``, what a
    perfect generator scores from sampling noise alone (docs/mode-collapse.md);
    ``sliced-wasserstein``'s ``distance``: ``real_baseline``, two real batches'
    distance; ``fid`` and ``kid``: 0.
    """
    name, _, field = key.rpartition(".")

    def number(suffix: str) -> float | None:
        value = record.get(f"{name}.{suffix}")
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    total, samples = number("total_modes"), number("samples")
    if field == "modes" and total is not None:
        return Target(total, f"all {total:g} modes")
    if field == "kl" and total is not None and samples:
        return Target((total - 1) / (2 * samples), "a perfect generator (sampling noise)")
    if field in ("high_quality", "score"):
        return Target(1.0, "1")
    if field == "reverse_kl":
        return Target(0.0, "0, every mode equally often")
    baseline = number("real_baseline")
    if field == "distance" and baseline is not None:
        return Target(baseline, "real data against real data")
    if field in ("fid", "kid"):
        return Target(0.0, "0")
    return None


@dataclass
class Series:
    """One number over the steps of a run."""

    key: str
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    targets: list[Target | None] = field(default_factory=list)

    def add(self, step: int, value: float, target: Target | None = None) -> None:
        self.steps.append(step)
        self.values.append(value)
        self.targets.append(target)

    @property
    def constant(self) -> bool:
        return len(set(self.values)) <= 1


#: The most numbers drawn, each kind (logged values, metric values): more is a damaged or hostile file.
MAX_SERIES = 50


def series_of(records: list[dict[str, Any]]) -> tuple[dict[str, Series], dict[str, Series]]:
    """Every finite number of the logging records (losses, rates, skips, trick values) and of the metric evaluations.

    At most :data:`MAX_SERIES` names of each kind, the first seen.
    """
    logged: dict[str, Series] = {}
    metrics: dict[str, Series] = {}
    for record in records:
        step = record.get("step")
        if not isinstance(step, int) or not _is_step(step):
            continue
        event = record.get("event")
        if event not in (None, "metrics"):
            continue
        into = logged if event is None else metrics
        for key, value in record.items():
            if key in _RECORD_KEYS or not _number(value) or (key not in into and len(into) >= MAX_SERIES):
                continue
            target = metric_target(key, record) if event == "metrics" else None
            into.setdefault(key, Series(key)).add(step, float(value), target)
    return logged, metrics


# --------------------------------------------------------------------------- drawing


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise GankitError("gankit report draws with matplotlib: pip install 'gankit[report]'") from error
    return plt


def _png(figure: Any) -> bytes:
    plt = _pyplot()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _small(title: str) -> tuple[Any, Any]:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(4.4, 2.9))
    shown = title if len(title) <= 60 else title[:57] + "..."
    axes.set_title(shown.replace("$", r"\$"), fontsize=10)  # a key is text, never matplotlib's maths
    axes.set_xlabel("step", fontsize=9)
    axes.tick_params(labelsize=8)
    axes.grid(alpha=0.3)
    return figure, axes


def _spread(values: list[float]) -> bool:
    """Whether positive values span more than a factor of 20 (then a log scale reads better)."""
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and bool(positive) and max(positive) / min(positive) > 20


def losses_plot(logged: dict[str, Series], skip_steps: list[int]) -> bytes | None:
    """The two losses on one axis (they share a scale), with the steps where the discriminator was skipped."""
    if "d_loss" not in logged and "g_loss" not in logged:
        return None
    figure, axes = _small("Losses")
    for key, label in (("d_loss", "discriminator"), ("g_loss", "generator")):
        if key in logged:
            axes.plot(logged[key].steps, logged[key].values, label=label, linewidth=1.2)
    if skip_steps:
        low = axes.get_ylim()[0]
        axes.plot(skip_steps, [low] * len(skip_steps), "|", color="grey", label="D skipped")
    axes.legend(fontsize=8)
    return _png(figure)


_NETWORK = {"lr_g": "generator", "lr_d": "discriminator"}


def rates_plot(logged: dict[str, Series]) -> bytes | None:
    """Both networks' learning rates over time."""
    keys = [k for k in ("lr_g", "lr_d") if k in logged]
    if not keys:
        return None
    figure, axes = _small("Learning rates")
    for key in keys:
        axes.plot(logged[key].steps, logged[key].values, label=_NETWORK[key], linewidth=1.2,
                  linestyle="--" if key == "lr_d" else "-")
    if _spread([v for k in keys for v in logged[k].values]):
        axes.set_yscale("log")
    axes.legend(fontsize=8)
    return _png(figure)


def series_plot(series: Series, title: str | None = None) -> bytes:
    """One small plot of one number over time, with its target (a dashed line) when it has one."""
    figure, axes = _small(title or series.key)
    marker = "o" if len(series.steps) <= 30 else None
    axes.plot(series.steps, series.values, marker=marker, markersize=3, linewidth=1.2, color="C0")
    targets = [t for t in series.targets if t is not None]
    if targets:
        target = targets[-1]
        axes.axhline(target.value, color="C2", linestyle="--", linewidth=1, label=f"target: {target.label}")
        axes.legend(fontsize=8)
    if _spread(series.values + [t.value for t in targets]):
        axes.set_yscale("log")
    return _png(figure)


def points_plot(real: Any, fake: Any, title: str) -> bytes:
    """Generated 2-D points over the real data, with axes."""
    figure, axes = _small(title)
    axes.scatter(real[:, 0], real[:, 1], s=3, color="0.75", label="real data", linewidths=0)
    axes.scatter(fake[:, 0], fake[:, 1], s=5, color="C1", label="generated", linewidths=0)
    axes.set_aspect("equal", adjustable="datalim")
    axes.set_xlabel("x", fontsize=9)
    axes.legend(fontsize=8, markerscale=3)
    return _png(figure)


# --------------------------------------------------------------------------- 2-D samples


def points_over_real(run_dir: Path, samples: int = 0) -> list[tuple[int, bytes]]:
    """For a run on 2-D points: each kept checkpoint's samples (the fixed latent batch) over the real data.

    Empty for image runs, and when the run's parts cannot be built here.
    """
    import torch

    from gankit.checkpoint import list_checkpoints
    from gankit.recipe import load_recipe
    from gankit.training.generate import load_generator, sample

    recipe_path = run_dir / "recipe.toml"
    if not recipe_path.is_file():
        return []
    try:
        recipe = load_recipe(recipe_path)
        data = recipe["data"].build(seed=recipe.run.seed)
    except GankitError:
        return []
    if tuple(data.shape) != (2,):
        return []
    real = data.sample(2000, torch.Generator().manual_seed(recipe.run.seed + 11)).float().cpu().numpy()
    count = samples or int(recipe.run.samples)
    plots: list[tuple[int, bytes]] = []
    for step, path in list_checkpoints(run_dir):
        try:
            loaded = load_generator(path)
        except GankitError:
            continue
        latents = torch.randn(count, loaded.latent_dim, generator=torch.Generator().manual_seed(recipe.run.seed + 3))
        fake = sample(loaded, count, latents=latents).float().cpu().numpy()
        plots.append((step, points_plot(real, fake, f"step {step}")))
    return plots


# --------------------------------------------------------------------------- the page


def _img(data: bytes, alt: str, kind: str = "png") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/{kind};base64,{encoded}">'


def _figure(data: bytes, caption: str) -> str:
    return f"<figure>{_img(data, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _plot(data: bytes, alt: str) -> str:
    """A plot (it carries its own title)."""
    return f"<figure>{_img(data, alt)}</figure>"


def _grid(figures: list[str]) -> str:
    return "<div class='grid'>" + "".join(figures) + "</div>"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}"
    "img{max-width:100%}figure{margin:0}figcaption{text-align:center;color:#555;font-size:0.9em}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:1em}"
    ".samples figure{display:inline-block;margin:0.4em}.samples img{image-rendering:pixelated}"
    "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:0.2em 0.6em;text-align:right}"
    "pre{background:#f6f6f6;padding:1em;overflow:auto}"
)


def _metrics_section(metrics: dict[str, Series]) -> list[str]:
    plotted = [s for s in metrics.values() if s.key.rpartition(".")[2] not in _BOOKKEEPING
               and not s.key.endswith("_std")]
    if not plotted:
        return []
    parts = ["<h2>Metrics</h2>", "<p>One plot per number; a dashed line is its target where gankit knows one.</p>"]
    parts.append(_grid([_plot(series_plot(s), s.key) for s in plotted]))
    kept = [s for s in metrics.values() if s not in plotted]
    if kept:
        rows = "".join(f"<tr><th>{html.escape(s.key)}</th><td>{s.values[-1]:.6g}</td></tr>" for s in kept)
        parts.append(f"<p>How they were measured (last evaluation):</p><table>{rows}</table>")
    return parts


def _training_section(logged: dict[str, Series], skip_steps: list[int]) -> list[str]:
    figures = []
    losses = losses_plot(logged, skip_steps)
    if losses:
        figures.append(_plot(losses, "losses"))
    rates = rates_plot(logged)
    if rates:
        figures.append(_plot(rates, "learning rates"))
    if "skips" in logged and logged["skips"].values[-1] > 0:
        figures.append(_plot(series_plot(logged["skips"], "Discriminator updates skipped (in total)"),
                             "balance skips"))
    others = [s for k, s in logged.items() if k not in ("d_loss", "g_loss", "lr_g", "lr_d", "skips")]
    figures += [_plot(series_plot(s), s.key) for s in others]
    if not figures:
        return []
    note = ("<p>Losses oscillate in a healthy GAN; a discriminator loss near 0 is a warning. Other plots: every "
            "number the run logs (a trick's values too).</p>")
    return ["<h2>Training</h2>", note, _grid(figures)]


def _samples_section(run_dir: Path, out: Path) -> list[str]:
    grids: list[tuple[int, Path, bytes]] = []
    for step, path in _sample_files(run_dir):
        try:
            grids.append((step, path, path.read_bytes()))
        except OSError:
            continue
    if not grids:
        return []
    parts = ["<h2>Samples over time (fixed latent batch)</h2>"]
    if len(grids) >= 2:
        parts += _timelapse([(step, path) for step, path, _ in grids], out)
    parts.append("<div class='samples'>")
    parts += [_figure(data, f"step {step}") for step, _, data in grids]
    parts.append("</div>")
    return parts


def _timelapse(grids: list[tuple[int, Path]], out: Path) -> list[str]:
    """The grids as one video beside the report, linked and shown (nothing when a grid cannot be read)."""
    from PIL import UnidentifiedImageError

    from gankit.video import timelapse

    video = out.parent / TIMELAPSE_FILE
    try:
        timelapse(grids, video)
        data = video.read_bytes()
    except (OSError, UnidentifiedImageError, ValueError, GankitError):
        return []
    link = html.escape(os.path.relpath(video, out.parent))
    return [f"<p>The grids below as one video: <a href='{link}'>{html.escape(video.name)}</a></p>",
            f"<figure>{_img(data, 'samples over time', 'gif')}</figure>"]


#: The video of a run's sample grids that the report writes beside itself.
TIMELAPSE_FILE = "samples-over-time.gif"


def build_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write ``report.html`` (or ``output``) for a run folder and return its path.

    The page holds one small plot per number the run logged (losses,
    learning rates, balance skips, trick values such as a fade-in's alpha or
    an augmentation's strength) and per metric (with its target), the 2-D
    samples of each kept checkpoint over the real data, the sample grids over
    time and, beside the page, a video of them (``samples-over-time.gif``).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GankitError(f"{run_dir}: no such run folder")
    records = read_metrics(run_dir)
    out = Path(output) if output else run_dir / "report.html"
    if out.is_dir():
        raise GankitError(f"{out}: is a folder; give a file name like report.html")
    recipe_path = run_dir / "recipe.toml"
    recipe_text = recipe_path.read_text(encoding="utf-8", errors="replace") if recipe_path.is_file() else ""
    logged, metrics = series_of(records)
    skip_steps = [r["step"] for r in records if r.get("event") == "skip" and _is_step(r.get("step"))]
    steps = [r["step"] for r in records if _is_step(r.get("step"))]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>gankit run {html.escape(run_dir.name)}</title>",
        f"<style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>gankit run <code>{html.escape(run_dir.name)}</code></h1>",
        f"<p>{max(steps) if steps else 0} steps logged; discriminator skipped {len(skip_steps)} times.</p>",
    ]
    parts += _training_section(logged, skip_steps)
    parts += _metrics_section(metrics)
    points = points_over_real(run_dir)
    if points:
        parts.append("<h2>Generated points over the real data (kept checkpoints)</h2>")
        parts.append(_grid([_plot(png, f"step {step}") for step, png in points]))
    parts += _samples_section(run_dir, out)
    if recipe_text:
        parts.append(f"<h2>Recipe</h2><pre>{html.escape(recipe_text)}</pre>")
    parts.append("</body></html>")
    try:
        atomic_write_bytes(out, "\n".join(parts).encode("utf-8"))
    except OSError as error:
        raise GankitError(f"{out}: cannot write the report ({error.strerror or error})") from error
    return out


_SAMPLE_RE = re.compile(r"^step-(\d{1,18})\.png$")


def _sample_files(run_dir: Path) -> list[tuple[int, Path]]:
    """The run's sample grids by step (files not named ``step-N.png`` are left out)."""
    folder = run_dir / "samples"
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _SAMPLE_RE.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)
