"""FID you can compare: quantised images, named resize modes, statistics files, provenance; manifold metrics."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from gankit.cli import main
from gankit.data.images import to_float
from gankit.data.prepared import PreparedWriter
from gankit.errors import GankitError
from gankit.metrics.inception import InceptionV3Features
from gankit.metrics.manifold import density_coverage, knn_radii, precision_recall
from gankit.metrics.pixels import generated_pixels, network_input, quantize
from gankit.metrics.statistics import RunningGaussian, load_stats, save_stats
from gankit.plugins import get_registry

pytestmark = pytest.mark.usefixtures("one_torch_thread", "gankit_cache")


def build(kind: str, name: str, params: dict[str, Any] | None = None, **context: Any) -> Any:
    return get_registry().get(kind, name).build(params or {}, **context)


class Replay(nn.Module):
    """A generator that returns the given images in order, one batch after the other (whatever the latents)."""

    latent_dim = 1

    def __init__(self, images: Tensor) -> None:
        super().__init__()
        self.register_buffer("images", images)
        self.position = 0

    def forward(self, z: Tensor) -> Tensor:
        start = self.position % self.images.shape[0]
        self.position += z.shape[0]
        return self.images[start : start + z.shape[0]]


@pytest.fixture(scope="module")
def digits_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 of scikit-learn's digits at 8 px, 3 channels, as a prepared dataset."""
    data = build("data", "digits", {"resolution": 8, "channels": 3}, seed=0)
    pixels = quantize(data.images()[:400]).expand(-1, 3, -1, -1).contiguous().numpy()
    out = tmp_path_factory.mktemp("prepared") / "digits"
    with PreparedWriter(out, (3, 8, 8)) as writer:
        writer.add_batch(pixels, files=[f"{i}.png" for i in range(len(pixels))])
        writer.commit(settings={})
    return out


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    state = {k: v for k, v in InceptionV3Features("fid").state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("weights") / "inception.safetensors"
    save_file(state, str(path))
    return path


# --- quantisation and resize modes ------------------------------------------------------------------------------


def test_quantize_rounds_like_saving_a_png_and_inverts_to_float() -> None:
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(quantize(to_float(pixels)), pixels)
    levels = torch.tensor([-1.0, -1 + 0.49 / 127.5, -1 + 0.5 / 127.5, 0.0, 1.0, 1.5, -3.0])
    assert quantize(levels).tolist() == [0, 0, 1, 128, 255, 255, 0]
    with pytest.raises(GankitError, match="NaN"):
        quantize(torch.tensor([0.0, float("nan")]))


def _tf1_reference(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TensorFlow 1's resize_bilinear (no half-pixel centres), written out pixel by pixel."""
    in_h, in_w = x.shape
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            y, x_ = i * in_h / out_h, j * in_w / out_w
            y0, x0 = int(np.floor(y)), int(np.floor(x_))
            y1, x1 = min(y0 + 1, in_h - 1), min(x0 + 1, in_w - 1)
            dy, dx = y - y0, x_ - x0
            top = x[y0, x0] + (x[y0, x1] - x[y0, x0]) * dx
            bottom = x[y1, x0] + (x[y1, x1] - x[y1, x0]) * dx
            out[i, j] = top + (bottom - top) * dy
    return out


def test_resize_modes_reproduce_their_reference_implementations() -> None:
    pixels = torch.randint(0, 256, (2, 3, 5, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    size = (9, 6)
    tf = network_input(pixels, "legacy-tensorflow", size)
    expected = np.stack([[_tf1_reference(c.double().numpy(), *size) for c in image] for image in pixels])
    assert np.allclose(tf.numpy(), (expected - 128) / 128, atol=1e-5)

    torch_mode = network_input(pixels, "legacy-pytorch", size)
    assert torch.equal(torch_mode, 2 * F.interpolate(pixels.float() / 255, size=size, mode="bilinear") - 1)

    for mode, resample in (("clean", Image.Resampling.BICUBIC), ("friendly", Image.Resampling.BILINEAR)):
        got = network_input(pixels, mode, size)  # type: ignore[arg-type]
        channel = pixels[1, 2].numpy().astype(np.float32)
        resized = np.asarray(Image.fromarray(channel, mode="F").resize(size[::-1], resample=resample))
        if mode == "clean":
            assert np.array_equal(got[1, 2].numpy(), (resized.clip(0, 255) - 128) / 128)
        else:
            assert np.array_equal(got[1, 2].numpy(), (resized / 255 - 0.5) / 0.5)

    gray = network_input(pixels[:, :1], "legacy-tensorflow", size)
    assert gray.shape == (2, 3, 9, 6) and torch.equal(gray[:, 0], gray[:, 2])
    same = network_input(pixels, "legacy-tensorflow", (5, 7))
    assert torch.equal(same, (pixels.float() - 128) / 128), "resizing to the same size changes nothing"


# --- statistics -------------------------------------------------------------------------------------------------


def test_running_gaussian_matches_numpy_over_uneven_batches() -> None:
    features = np.random.default_rng(0).normal(3.0, 2.0, (103, 6))
    running = RunningGaussian()
    for start, stop in ((0, 1), (1, 40), (40, 41), (41, 103)):
        running.update(torch.from_numpy(features[start:stop]))
    stats = running.result()
    assert stats.n == 103
    assert np.allclose(stats.mean, features.mean(axis=0), rtol=1e-12)
    assert np.allclose(stats.cov, np.cov(features, rowvar=False), rtol=1e-10)


def test_frechet_distance_uses_the_samples_of_low_rank_sides_exactly() -> None:
    from gankit.metrics.frechet import GaussianStats, frechet_distance, frechet_distance_between

    rng = np.random.default_rng(2)
    few, many = rng.normal(0.5, 1.0, (12, 20)), rng.normal(0.0, 1.3, (60, 20))
    stats = []
    for features in (few, many):
        running = RunningGaussian()
        for batch in np.array_split(features, 3):
            running.update(batch)
        stats.append(running.result())
    low, full = stats
    assert low.features is not None and np.array_equal(low.features, few), "12 samples of 20 features are kept"
    assert full.features is None, "60 samples of 20 features are not"
    expected = frechet_distance(low.mean, low.cov, full.mean, full.cov)
    assert frechet_distance_between(low, full) == pytest.approx(expected, rel=1e-7)
    assert frechet_distance_between(full, low) == pytest.approx(expected, rel=1e-7)
    second = RunningGaussian()
    second.update(many[:15])
    other = second.result()
    assert other.features is not None
    assert frechet_distance_between(low, other) == pytest.approx(
        frechet_distance(low.mean, low.cov, other.mean, other.cov), rel=1e-7
    )
    without = GaussianStats(other.mean, other.cov, other.n)
    assert frechet_distance_between(low, without) == pytest.approx(frechet_distance_between(low, other), rel=1e-7)


def test_statistics_files_round_trip_without_pickle(tmp_path: Path) -> None:
    running = RunningGaussian()
    running.update(np.random.default_rng(1).normal(size=(10, 3)))
    stats = running.result()
    path = save_stats(tmp_path / "stats.npz", stats, {"features": "x", "image_shape": [3, 8, 8]})
    loaded, meta = load_stats(path)
    assert np.array_equal(loaded.mean, stats.mean) and np.array_equal(loaded.cov, stats.cov) and loaded.n == 10
    assert meta == {"features": "x", "image_shape": [3, 8, 8]}
    np.savez(tmp_path / "pytorch-fid.npz", mu=stats.mean, sigma=stats.cov)  # what pytorch-fid writes
    assert load_stats(tmp_path / "pytorch-fid.npz")[1] == {}
    np.savez(tmp_path / "pickled.npz", mu=np.array([object()]), sigma=np.zeros((1, 1)))
    with pytest.raises(GankitError, match="without pickled data"):
        load_stats(tmp_path / "pickled.npz")
    with pytest.raises(GankitError, match="gankit data stats"):
        load_stats(tmp_path / "missing.npz")


# --- FID ----------------------------------------------------------------------------------------------------------


def test_fid_of_a_set_against_its_own_statistics_is_zero(digits_set: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "stats", str(digits_set), "-o", str(tmp_path / "stats.npz"), "-q"]) == 0
    assert "400 real images" in capsys.readouterr().out
    data = build("data", "prepared", {"path": str(digits_set)})
    images = to_float(data.pixels_at(range(len(data))))
    fid = build("metric", "fid", {"reference": str(tmp_path / "stats.npz"), "n_fake": len(data)})
    result = fid(Replay(images), data, device="cpu", seed=0)
    assert result["fid"] < 1e-6 and result["n_real"] == result["n_fake"] == 400
    other = fid(Replay(images.flip(-1)), data, device="cpu", seed=0)
    assert other["fid"] > 1.0, "mirrored digits are measurably different"
    provenance = fid.provenance()
    assert provenance["features"] == "digits-features" and len(provenance["weights_sha256"]) == 64
    assert provenance["reference"] == str(tmp_path / "stats.npz") and provenance["image_shape"] == [3, 8, 8]


def test_generated_images_are_quantised_before_the_features(digits_set: Path) -> None:
    data = build("data", "prepared", {"path": str(digits_set)})
    stored = data.pixels_at(range(len(data)))
    # off by 0.45 of a level: saved as PNGs, these are exactly the stored images
    nudged = to_float(stored) + 0.45 / 127.5 * torch.sign(torch.randn(stored.shape, generator=torch.Generator()))
    pixels = torch.cat(list(generated_pixels(Replay(nudged), len(data), seed=0, batch=500)))
    assert torch.equal(pixels, stored)
    fid = build("metric", "fid", {"n_fake": len(data)})
    assert fid(Replay(nudged), data, device="cpu", seed=0)["fid"] < 1e-6
    extractor = fid._extractor(data.shape, "cpu")
    unquantised = extractor.features(nudged.float())
    exact = extractor.features(to_float(stored))
    assert not torch.allclose(unquantised, exact, atol=1e-6, rtol=0), "the nudge is visible without quantising"


def test_reference_made_with_other_settings_is_refused(digits_set: Path, tmp_path: Path,
                                                       inception_file: Path) -> None:
    settings = ["--set", "features=inception", "--set", f"weights={inception_file}", "--set", "input_size=75"]
    stats = str(tmp_path / "inception.npz")
    assert main(["data", "stats", str(digits_set), "-o", stats, "-n", "40", "-q", "--set", "resize=clean",
                 *settings]) == 0
    data = build("data", "prepared", {"path": str(digits_set)})
    images = to_float(data.pixels_at(range(len(data))))
    params = {"features": "inception", "weights": str(inception_file), "input_size": 75, "reference": stats,
              "n_fake": 8}
    with pytest.raises(GankitError, match="resize is 'clean' there but 'legacy-tensorflow' here"):
        build("metric", "fid", params)(Replay(images), data, device="cpu", seed=0)
    with pytest.raises(GankitError, match=r"weights_sha256 is '[0-9a-f]{64}' there but '[0-9a-f]{64}' here"):
        other = tmp_path / "other.safetensors"  # the same weights, saved with other metadata: other bytes
        save_file(load_file(str(inception_file)), str(other), metadata={"note": "a copy"})
        build("metric", "fid", {**params, "resize": "clean", "weights": str(other)})(Replay(images), data,
                                                                                   device="cpu", seed=0)
    with pytest.raises(GankitError, match="features is 'inception-v3' there but 'digits-features' here"):
        build("metric", "fid", {"reference": stats, "n_fake": 8})(Replay(images), data, device="cpu", seed=0)


def test_eval_prints_fid_with_how_it_was_made(digits_set: Path, tmp_path: Path, inception_file: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.recipe import loads_recipe
    from gankit.training import train

    recipe = loads_recipe(f"""
[run]
steps = 1
batch_size = 8
samples = 4
[data]
type = "prepared"
path = "{digits_set}"
[generator]
type = "dcgan"
latent_dim = 8
width = 4
max_width = 8
[discriminator]
type = "dcgan"
width = 4
max_width = 8
""")
    train(recipe, tmp_path / "run", quiet=True)
    stats = tmp_path / "stats.npz"
    assert main(["data", "stats", str(tmp_path / "run" / "recipe.toml"), "-o", str(stats), "-n", "30", "-q"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--metric", "fid", "-n", "12", "-q",
                 "--set", f"reference={stats}"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fid"] > 0 and out["n_fake"] == 12 and out["n_real"] == 30 and out["reference"] == str(stats)
    assert out["features"] == "digits-features" and len(out["weights_sha256"]) == 64

    inception = ["--set", "features=inception", "--set", f"weights={inception_file}", "--set", "input_size=75",
                 "--set", "resize=clean", "--set", "n_real=20"]
    assert main(["eval", str(tmp_path / "run"), "--metric", "precision-recall", "-n", "12", "-q", *inception]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 <= out["precision"] <= 1 and out["n_fake"] == 12 and out["n_real"] == 20 and out["k"] == 3
    assert out["features"] == "inception-v3" and out["resize"] == "clean" and out["input_size"] == 75
    assert out["weights_sha256"] == hashlib.sha256(inception_file.read_bytes()).hexdigest()


def test_fid_defaults_to_fifty_thousand_samples() -> None:
    fid = get_registry().get("metric", "fid")
    assert fid.params.model_fields["n_fake"].default == 50_000
    assert fid.params.model_fields["resize"].default == "legacy-tensorflow"


# --- precision, recall, density, coverage --------------------------------------------------------------------------


def test_manifold_metrics_on_a_worked_example() -> None:
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.tensor([[0.5], [10.0]])
    assert knn_radii(real, 1).tolist() == [1.0, 1.0, 1.0, 1.0]
    assert precision_recall(real, fake, k=1) == (0.5, 1.0)
    assert density_coverage(real, fake, k=1) == (1.0, 0.5)


def test_identical_sets_score_one_and_disjoint_sets_zero() -> None:
    points = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    assert precision_recall(points, points.clone()) == (1.0, 1.0)
    density, coverage = density_coverage(points, points.clone(), k=5)
    assert coverage == 1.0 and density == pytest.approx(6 / 5), "each real ball holds its own twin and 5 others"
    far = points + 100.0
    assert precision_recall(points, far) == (0.0, 0.0)
    assert density_coverage(points, far) == (0.0, 0.0)


def test_precision_recall_and_density_coverage_metric_parts(digits_set: Path) -> None:
    data = build("data", "prepared", {"path": str(digits_set)})
    images = to_float(data.pixels_at(range(len(data))))
    pr = build("metric", "precision-recall", {"n_fake": len(data)})
    same = pr(Replay(images), data, device="cpu", seed=0)
    assert (same["precision"], same["recall"]) == (1.0, 1.0) and same["n_real"] == 400
    dc = build("metric", "density-coverage", {"n_fake": len(data)})
    assert dc(Replay(images), data, device="cpu", seed=0)["coverage"] == 1.0
    blank = torch.ones(64, 3, 8, 8)  # white squares: nothing like a digit
    collapsed = pr(Replay(blank), data, device="cpu", seed=0)
    assert collapsed["precision"] == 0.0 and collapsed["recall"] < 0.01
    assert dc.provenance()["k"] == 5 and pr.provenance()["k"] == 3
