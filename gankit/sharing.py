"""Sharing a trained generator: a folder in the Hugging Face model layout, and the Hub.

``gankit export RUN DIR`` writes::

    DIR/config.json         the generator's part, parameters and version, the sample shape, the whole recipe
    DIR/model.safetensors   the generator's weights (its moving average when the run had the ema trick)
    DIR/README.md           a model card: sample grid, metrics, training, how to load it
    DIR/samples.png         the sample grid the card shows

:func:`gankit.load_generator` reads such a folder, and ``"hf://owner/name"``
(``pip install 'gankit[hub]'``): the Hub's files are downloaded with
``huggingface_hub`` into its usual cache (``HF_HOME``, ``HF_HUB_CACHE``;
``HF_HUB_OFFLINE=1`` uses the cache alone). ``gankit export RUN --push
owner/name`` uploads the folder. Loading builds only the generator: neither
the data nor the other parts of the recipe are needed.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from gankit import __version__
from gankit.errors import GankitError, GankitWarning, PartNotFoundError
from gankit.files import write_bytes_atomic

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
SAMPLES_FILE = "samples.png"
EXPORT_FILES = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, SAMPLES_FILE)
HUB_PREFIX = "hf://"
#: The version of the layout of config.json; a newer one is refused with a clear error.
FORMAT = 1

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


# --------------------------------------------------------------------------- reading


def is_hub_reference(path: Any) -> bool:
    """Whether ``path`` names a model on the Hugging Face Hub (``"hf://owner/name"``)."""
    return isinstance(path, str) and path.startswith(HUB_PREFIX)


def is_export(path: Any) -> bool:
    """Whether ``path`` is a folder written by ``gankit export`` (``config.json`` and ``model.safetensors``)."""
    if is_hub_reference(path):
        return False
    folder = Path(path)
    return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def read_config(folder: Path) -> dict[str, Any]:
    """A shared folder's ``config.json``, checked to be gankit's."""
    path = folder / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise GankitError(f"{path}: not a readable JSON file ({error})") from error
    if not isinstance(config, dict) or config.get("library_name") != "gankit":
        raise GankitError(f"{path}: not a gankit model (config.json has no library_name = 'gankit')")
    if int(config.get("format", 0)) > FORMAT:
        raise GankitError(f"{path}: written by a newer gankit (format {config['format']}); upgrade gankit")
    for key in ("generator", "sample_shape"):
        if key not in config:
            raise GankitError(f"{path}: has no {key!r}; the file is damaged or not gankit's")
    return config


def _generator_part(table: dict[str, Any], source: str) -> tuple[Any, Any]:
    """The registered generator part a shared config names (its newest version when the pinned one is gone)."""
    from gankit.plugins import get_registry
    from gankit.registry import parse_ref

    params = dict(table)
    ref = params.pop("type", None)
    if not isinstance(ref, str):
        raise GankitError(f"{source}: the generator has no 'type'")
    registry = get_registry()
    name, version = parse_ref(ref)
    try:
        part = registry.get("generator", ref)
    except PartNotFoundError:
        if version is None or name not in registry.names("generator"):
            raise
        part = registry.get("generator", name)
        warnings.warn(f"{source}: generator {name!r} v{version} is not installed; using {part.ref}", GankitWarning,
                      stacklevel=4)
    try:
        validated = part.validate(params)
    except Exception as error:  # pydantic's ValidationError: the config does not fit the installed part
        raise GankitError(f"{source}: the generator's parameters do not fit {part.ref}: {error}") from error
    return part, validated


def load_export(folder: str | Path, *, device: str | torch.device = "cpu") -> Any:
    """Rebuild the generator of a shared folder (see the module's docstring); returns a ``LoadedGenerator``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from gankit.training.generate import LoadedGenerator
    from gankit.training.resuming import _part_identity

    folder = Path(folder)
    config = read_config(folder)
    source = str(folder / CONFIG_FILE)
    part, params = _generator_part(config["generator"], source)
    shape = tuple(int(v) for v in config["sample_shape"])
    generator = part.build(params, shape=shape, num_classes=int(config.get("num_classes", 0)))
    recorded = config.get("part_version")
    now = f"{part.ref} ({part.provider})"
    if isinstance(recorded, str) and _part_identity(recorded) != _part_identity(now):
        warnings.warn(f"{source}: the generator was trained with {recorded}, now loading {now}", GankitWarning,
                      stacklevel=3)
    try:
        weights = load_file(str(folder / WEIGHTS_FILE))
        generator.load_state_dict(weights)
    except (SafetensorError, OSError) as error:
        raise GankitError(f"{folder / WEIGHTS_FILE}: not a readable safetensors file ({error})") from error
    except RuntimeError as error:
        raise GankitError(f"{folder / WEIGHTS_FILE}: weights do not fit the generator {part.ref}: {error}") from error
    generator.to(device).eval()
    names = config.get("class_names")
    class_names = [str(n) for n in names] if isinstance(names, list) and names else None
    return LoadedGenerator(generator, _recipe_of(config, source), int(config.get("step", 0)), folder, shape,
                           class_names)


def _recipe_of(config: dict[str, Any], source: str) -> Any:
    """The run's whole recipe, when every part it names is installed here; else None."""
    from gankit.recipe import loads_recipe

    text = config.get("recipe")
    if not isinstance(text, str):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return loads_recipe(text, source=f"{source} (recipe)", name=str(config.get("recipe_name", "recipe")),
                                upgrade_versions=True)
        except GankitError:
            return None


def parse_hub_reference(reference: str) -> tuple[str, str | None]:
    """``"hf://owner/name@revision"`` → ``("owner/name", "revision")`` (revision None when not given)."""
    body = reference.removeprefix(HUB_PREFIX)
    repo_id, _, revision = body.partition("@")
    repo_id = repo_id.strip("/")
    if not _REPO_ID.match(repo_id):
        raise GankitError(f"{reference}: name a Hub model as hf://owner/name (or hf://owner/name@revision)")
    return repo_id, revision or None


def require_hub() -> Any:
    """The huggingface_hub module, or a clear error saying how to install it."""
    try:
        import huggingface_hub
    except ImportError as error:
        raise GankitError(
            "the Hugging Face Hub needs huggingface_hub: pip install 'gankit[hub]'"
        ) from error
    return huggingface_hub


def download(reference: str) -> Path:
    """Download a shared model (``"hf://owner/name[@revision]"``) into the Hub's cache; returns its folder."""
    repo_id, revision = parse_hub_reference(reference)
    hub = require_hub()
    try:
        folder = hub.snapshot_download(repo_id, revision=revision, allow_patterns=list(EXPORT_FILES))
    except Exception as error:  # the Hub's many errors (not found, offline, no access) become one clear line
        raise GankitError(
            f"{reference}: cannot download ({type(error).__name__}: {error}). Check the name, your network, "
            "and for a private model your login (hf auth login, or HF_TOKEN)"
        ) from error
    path = Path(folder)
    if not is_export(path):
        raise GankitError(f"{reference}: the repository holds no {CONFIG_FILE} and {WEIGHTS_FILE}: not a gankit model")
    return path


# --------------------------------------------------------------------------- writing


def export(
    source: str | Path,
    out: str | Path,
    *,
    ema: bool = True,
    samples: int = 64,
    seed: int = 0,
    repo_id: str | None = None,
) -> Path:
    """Write a run's generator as a shared folder ``out`` (see the module's docstring); returns ``out``.

    ``source`` is a run folder (its latest checkpoint), a checkpoint file
    (``checkpoints/best.safetensors``) or an exported ``generator.safetensors``.
    ``out`` must be new, empty, or an earlier export (its files are replaced).
    ``repo_id`` (``owner/name``) is how the model card tells people to load it.
    """
    from gankit.images import samples_picture, save_picture
    from gankit.training.generate import load_generator, sample

    if samples <= 0:
        raise GankitError(f"--samples {samples}: must be positive")
    folder = _check_out(Path(out))
    loaded = load_generator(source, ema=ema)
    if loaded.recipe is None:
        raise GankitError(f"{source}: already a shared model; copy the folder instead")
    run_dir = _run_folder(Path(source))
    module = loaded.generator
    config = _config(loaded, ema=ema)
    picture = samples_picture(sample(loaded, samples, seed=seed))
    metrics = _metrics(run_dir) if run_dir is not None else {}
    card = model_card(config, metrics, repo_id=repo_id, folder=folder, samples=samples, seed=seed)
    from safetensors.torch import save

    weights = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    new = not folder.exists()
    written: list[Path] = []
    try:
        written.append(write_bytes_atomic(folder / WEIGHTS_FILE,
                                          save(weights, metadata={"format": "pt", "library": "gankit"})))
        written.append(save_picture(picture, folder / SAMPLES_FILE))
        written.append(write_bytes_atomic(folder / CARD_FILE, card.encode("utf-8")))
        written.append(write_bytes_atomic(folder / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode()))
    except OSError as error:
        if new:  # a half-written export is no export: take it away again
            for path in written:
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise GankitError(f"{folder}: cannot write the export ({error.strerror or error})") from error
    return folder


def _check_out(folder: Path) -> Path:
    if folder.exists() and not folder.is_dir():
        raise GankitError(f"{folder}: is a file; name a new folder to export into")
    if folder.is_dir():
        entries = sorted(p.name for p in folder.iterdir())
        earlier = (folder / CONFIG_FILE).is_file() and set(entries) <= set(EXPORT_FILES) | {".gitattributes"}
        if entries and not earlier:
            shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
            raise GankitError(
                f"{folder}: the folder is not empty ({shown}) and is not an earlier gankit export; "
                "gankit exports only into a new or empty folder"
            )
    return folder


def _run_folder(source: Path) -> Path | None:
    """The run folder a source belongs to (for its metrics), or None."""
    for candidate in (source, source.parent, source.parent.parent):
        if (candidate / "metrics.jsonl").is_file():
            return candidate
    return None


def _config(loaded: Any, *, ema: bool) -> dict[str, Any]:
    recipe = loaded.recipe
    spec = recipe["generator"]
    has_ema = any(t.name == "ema" for t in recipe["tricks"])
    return {
        "library_name": "gankit",
        "format": FORMAT,
        "gankit_version": __version__,
        "generator": spec.to_table(),
        "data": recipe["data"].to_table(),
        "part_version": f"{spec.part.ref} ({spec.part.provider})",
        "part_versions": recipe.part_versions(),
        "sample_shape": list(loaded.shape),
        "num_classes": int(getattr(loaded.generator, "num_classes", 0) or 0),
        "class_names": loaded.class_names,
        "latent_dim": loaded.latent_dim,
        "weights": "ema" if ema and has_ema else "raw",
        "step": loaded.step,
        "recipe_name": recipe.name,
        "recipe": recipe.to_toml(),
    }


def _metrics(run_dir: Path) -> dict[str, Any]:
    """The last metric values and the last losses of a run, from its metrics.jsonl."""
    from gankit.report import read_metrics

    try:
        records = read_metrics(run_dir)
    except GankitError:
        return {}
    out: dict[str, Any] = {}
    evaluations = [r for r in records if r.get("event") == "metrics"]
    if evaluations:
        last = evaluations[-1]
        out["metrics"] = {k: v for k, v in last.items() if k not in ("step", "event")}
        out["metrics_step"] = last.get("step")
    losses = [r for r in records if "event" not in r and ("d_loss" in r or "g_loss" in r)]
    if losses:
        out["losses"] = {k: losses[-1][k] for k in ("d_loss", "g_loss") if k in losses[-1]}
        out["losses_step"] = losses[-1].get("step")
    return out


def _table(table: Any) -> str:
    """A part's table on one line: ``digits`` (resolution 32, channels 1)."""
    if not isinstance(table, dict):
        return "?"
    params = ", ".join(f"{k} {v}" for k, v in table.items() if k != "type")
    return f"`{table.get('type')}`" + (f" ({params})" if params else "")


def _number(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


def model_card(
    config: dict[str, Any], metrics: dict[str, Any], *, repo_id: str | None, folder: Path, samples: int, seed: int
) -> str:
    """The README.md of a shared folder: Hub metadata, samples, how to use it, training, metrics, recipe."""
    images = len(config["sample_shape"]) == 3
    where = f"{HUB_PREFIX}{repo_id}" if repo_id else str(folder)
    generator = config["generator"]["type"]
    tags = ["gankit", "gan", "pytorch"] + (["unconditional-image-generation"] if images else [])
    front = ["---", "library_name: gankit", "tags:", *(f"- {t}" for t in tags)]
    if images:
        front.append("pipeline_tag: unconditional-image-generation")
    front.append("---")
    recipe = config["recipe_name"]
    shape = "x".join(str(v) for v in config["sample_shape"])
    weights = "the exponential moving average of its weights" if config["weights"] == "ema" else "its weights"
    lines = [
        *front,
        "",
        f"# {repo_id.split('/')[-1] if repo_id else recipe}",
        "",
        f"A `{generator}` generator trained with [gankit](https://github.com/gankit/gankit) for {config['step']} "
        f"steps (recipe `{recipe}`); samples of shape {shape}, latents of size {config['latent_dim']}. "
        f"This is {weights}.",
        "",
        f"![{samples} samples]({SAMPLES_FILE})",
        "",
        f"*{samples} samples, latents drawn with seed {seed}: `gankit sample {where} -n {samples} --seed {seed}`.*",
        "",
        "## Use it",
        "",
        "```bash",
        f"pip install {'gankit[hub]' if repo_id else 'gankit'}",
        f"gankit sample {where} -n 16 -o grid.png",
    ]
    if images:
        lines.append(f"gankit sample {where} --interpolate --video walk.gif     # a latent walk")
    lines += [
        "```",
        "",
        "```python",
        "import gankit",
        "",
        f'generator = gankit.load_generator("{where}")',
        "samples = gankit.sample(generator, 16, seed=0)   # a tensor" + (" in [-1, 1]" if images else ""),
        "```",
        "",
        "## Training",
        "",
        "| | |",
        "|---|---|",
        f"| steps | {config['step']} |",
        f"| recipe | `{recipe}` |",
        f"| data | {_table(config.get('data'))} |",
        f"| generator | `{config['part_version']}` |",
        f"| gankit | {config['gankit_version']} |",
        "",
    ]
    if metrics.get("metrics"):
        lines += [f"## Metrics (step {metrics.get('metrics_step')})", "", "| metric | value |", "|---|---|"]
        lines += [f"| `{k}` | {_number(v)} |" for k, v in metrics["metrics"].items()]
        lines.append("")
    if metrics.get("losses"):
        shown = ", ".join(f"{k} {_number(v)}" for k, v in metrics["losses"].items())
        lines += [f"Losses at step {metrics.get('losses_step')}: {shown}.", ""]
    lines += [
        "## Recipe",
        "",
        "<details><summary>The resolved recipe (train it again with <code>gankit train recipe.toml</code>)</summary>",
        "",
        "```toml",
        config["recipe"].rstrip(),
        "```",
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the Hub


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` when it is a Hub model name (``owner/name``), else a clear error."""
    if not _REPO_ID.match(repo_id) or len(repo_id) > 200:
        raise GankitError(f"--push {repo_id[:100]}: name the model as owner/name")
    return repo_id


def push(folder: str | Path, repo_id: str, *, private: bool = False) -> str:
    """Upload a shared folder to the Hub as the model ``repo_id`` (created when missing); returns its address."""
    check_repo_id(repo_id)
    hub = require_hub()
    try:
        api = hub.HfApi()
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                          commit_message="Upload a generator exported by gankit")
    except Exception as error:  # the Hub's many errors (no login, no access, offline) become one clear line
        raise GankitError(
            f"--push {repo_id}: upload failed ({type(error).__name__}: {error}). Log in with hf auth login "
            "(or set HF_TOKEN) with a token that can write"
        ) from error
    return f"https://huggingface.co/{repo_id}"


@contextlib.contextmanager
def temporary_folder() -> Iterator[Path]:
    """A temporary folder for an export that is only pushed."""
    with tempfile.TemporaryDirectory(prefix="gankit-export-") as name:
        yield Path(name) / "model"
