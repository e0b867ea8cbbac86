"""``gankit report``: one self-contained HTML page of a run — loss curves and sample grids over time."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
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


def _figure_png(records: list[dict[str, Any]]) -> bytes | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise GankitError("gankit report draws with matplotlib: pip install 'gankit[report]'") from error
    losses = [r for r in records if "event" not in r and ("d_loss" in r or "g_loss" in r)]
    evals = [r for r in records if r.get("event") == "metrics"]
    if not losses and not evals:
        return None
    rows = 1 + (1 if evals else 0)
    fig, axes = plt.subplots(rows, 1, figsize=(9, 3.6 * rows), squeeze=False)
    ax = axes[0][0]
    for key, label in (("d_loss", "discriminator"), ("g_loss", "generator")):
        points = [(r["step"], r[key]) for r in losses if _number(r.get(key))]
        if points:
            ax.plot(*zip(*points, strict=True), label=label)
    skips = [r["step"] for r in records if r.get("event") == "skip"]
    if skips:
        ax.plot(skips, [0] * len(skips), "|", color="grey", label="discriminator skipped")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Losses (they oscillate in a healthy GAN; a discriminator loss at 0 is a warning)")
    ax.legend()
    if evals:
        ax2 = axes[1][0]
        keys = sorted({str(k) for r in evals for k in r if k not in ("step", "event")})[:50]
        for key in keys:
            points = [(r["step"], r[key]) for r in evals if _number(r.get(key))]
            if points:
                ax2.plot(*zip(*points, strict=True), marker="o", label=key)
        ax2.set_xlabel("step")
        ax2.set_title("Metrics")
        ax2.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _img(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def build_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write ``report.html`` (or ``output``) for a run folder and return its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GankitError(f"{run_dir}: no such run folder")
    records = read_metrics(run_dir)
    recipe_path = run_dir / "recipe.toml"
    recipe_text = recipe_path.read_text(encoding="utf-8", errors="replace") if recipe_path.is_file() else ""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>gankit run {html.escape(run_dir.name)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "img{image-rendering:pixelated;max-width:100%}figure{display:inline-block;margin:0.5em}"
        "figcaption{text-align:center;color:#555}pre{background:#f6f6f6;padding:1em;overflow:auto}</style>",
        "</head><body>",
        f"<h1>gankit run <code>{html.escape(run_dir.name)}</code></h1>",
    ]
    steps = [r["step"] for r in records if "step" in r]
    skips = sum(1 for r in records if r.get("event") == "skip")
    parts.append(f"<p>{max(steps) if steps else 0} steps logged; discriminator skipped {skips} times.</p>")
    figure = _figure_png(records)
    if figure:
        parts.append("<h2>Curves</h2>" + _img(figure, "loss curves"))
    samples = _sample_files(run_dir)
    if samples:
        parts.append("<h2>Samples over time (fixed latent batch)</h2>")
        for step, path in samples:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            parts.append(f"<figure>{_img(data, path.name)}<figcaption>step {step}</figcaption></figure>")
    if recipe_text:
        parts.append(f"<h2>Recipe</h2><pre>{html.escape(recipe_text)}</pre>")
    parts.append("</body></html>")
    out = Path(output) if output else run_dir / "report.html"
    if out.is_dir():
        raise GankitError(f"{out}: is a folder; give a file name like report.html")
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
