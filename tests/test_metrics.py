"""Metrics on constructed samples with known answers, their feature extractors, and minibatch std."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.linalg
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.metrics.digits import ClassifierSettings, DigitsClassifier, digits_classifier, digits_dataset
from gankit.metrics.frechet import (
    frechet_distance,
    frechet_distance_of,
    gaussian_statistics,
    kernel_distance,
    polynomial_mmd2,
)
from gankit.metrics.inception import InceptionV3Features
from gankit.metrics.modes import mode_coverage, reverse_kl_to_uniform
from gankit.metrics.stacked import stacked_summary, triple_counts
from gankit.nn.layers import MinibatchStd
from gankit.plugins import get_registry

LOG_1000 = math.log(1000)


def build(kind: str, name: str, params: dict[str, Any] | None = None, **context: Any) -> Any:
    return get_registry().get(kind, name).build(params or {}, **context)


def normal_to_index(z: Tensor, count: int) -> Tensor:
    """Map standard-normal values to indices 0..count-1, uniformly."""
    uniform = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    return (uniform * count).long().clamp_(0, count - 1)


class MixtureGenerator(nn.Module):
    """A perfect generator of a Gaussian mixture: z[0] picks a mode uniformly, z[1:] is the noise."""

    latent_dim = 3

    def __init__(self, centres: Tensor, sigma: float, only_mode: int | None = None) -> None:
        super().__init__()
        self.register_buffer("centres", centres.clone())
        self.sigma = sigma
        self.only_mode = only_mode

    def forward(self, z: Tensor) -> Tensor:
        index = normal_to_index(z[:, 0], self.centres.shape[0])
        if self.only_mode is not None:
            index = torch.full_like(index, self.only_mode)
        return self.centres[index] + self.sigma * z[:, 1:]


class ImageGenerator(nn.Module):
    """A generator that returns ``images[f(z)]``: a perfect generator of a finite image set."""

    def __init__(self, images: Tensor, channels_from_latent: bool = False) -> None:
        super().__init__()
        self.register_buffer("images", images)
        self.stacked = channels_from_latent
        self.latent_dim = 3 if channels_from_latent else 1

    def forward(self, z: Tensor) -> Tensor:
        if self.stacked:  # one stored one-channel image per output channel
            index = normal_to_index(z, self.images.shape[0])
            return self.images[index.flatten(), 0].reshape(z.shape[0], 3, *self.images.shape[-2:])
        return self.images[normal_to_index(z[:, 0], self.images.shape[0])]


class ConstantGenerator(nn.Module):
    """A fully collapsed generator: the same output whatever the latent."""

    latent_dim = 4

    def __init__(self, sample: Tensor) -> None:
        super().__init__()
        self.register_buffer("sample", sample)

    def forward(self, z: Tensor) -> Tensor:
        return self.sample.expand(z.shape[0], *self.sample.shape).clone()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def classifier8(gankit_cache: Path) -> DigitsClassifier:
    return digits_classifier(8)


# --- modes -----------------------------------------------------------------------------------------------------


def test_reverse_kl_to_uniform_exact_values() -> None:
    assert reverse_kl_to_uniform([5, 5, 5, 5]) == pytest.approx(0.0, abs=1e-15)
    assert reverse_kl_to_uniform([7, 0, 0, 0]) == pytest.approx(math.log(4))
    assert reverse_kl_to_uniform([1, 3]) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5))
    assert reverse_kl_to_uniform([0, 0, 0]) == pytest.approx(math.log(3))
    with pytest.raises(ValueError):
        reverse_kl_to_uniform([-1, 2])


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_modes_metric_on_a_perfect_generator_captures_every_mode(name: str) -> None:
    data = build("data", name, seed=0)
    metric = build("metric", "modes")
    result = metric(MixtureGenerator(data.modes, data.sigma), data, device="cpu", seed=0)
    k = data.modes.shape[0]
    assert result["modes"] == k
    assert result["total_modes"] == k and result["samples"] == 2500
    # 2-D Gaussian samples fall within 3 sigma with probability 1 - exp(-4.5) = 0.9889
    assert result["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert result["reverse_kl"] < 0.02
    assert result["score"] > 0.96


def test_modes_metric_on_one_mode_and_on_off_mode_noise() -> None:
    data = build("data", "ring", seed=0)
    metric = build("metric", "modes", {"samples": 1000})
    collapsed = metric(MixtureGenerator(data.modes, data.sigma, only_mode=3), data, device="cpu", seed=1)
    assert collapsed["modes"] == 1
    assert collapsed["high_quality"] > 0.97
    assert collapsed["reverse_kl"] == pytest.approx(math.log(8))
    # points on a circle of radius 0.5: every one is 50 sigma from the nearest mode
    noise = metric(MixtureGenerator(0.5 * data.modes, 0.0), data, device="cpu", seed=2)
    assert noise["modes"] == 0 and noise["high_quality"] == 0.0
    assert noise["reverse_kl"] == pytest.approx(math.log(8)) and noise["score"] == 0.0


def test_mode_coverage_counts_half_good_samples_and_ignores_non_finite_ones() -> None:
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    points = torch.tensor([[0.1, 0.0], [9.9, 0.0], [5.0, 0.0], [float("nan"), 0.0]])
    result = mode_coverage(points, centres, sigma=0.1, threshold=3.0)
    assert result["modes"] == 2 and result["high_quality"] == 0.5 and result["reverse_kl"] == pytest.approx(0.0)
    assert mode_coverage(points, centres, sigma=0.1, threshold=100.0)["high_quality"] == 0.75


def test_modes_metric_uses_a_fixed_latent_batch_and_its_own_seed() -> None:
    data = build("data", "grid", seed=0)
    generator = MixtureGenerator(data.modes, 3 * data.sigma)
    metric = build("metric", "modes", {"samples": 500})
    assert metric(generator, data, device="cpu", seed=4) == metric(generator, data, device="cpu", seed=4)
    assert metric(generator, data, device="cpu", seed=4) != metric(generator, data, device="cpu", seed=5)
    pinned = build("metric", "modes", {"samples": 500, "seed": 9})
    assert pinned(generator, data, device="cpu", seed=4) == pinned(generator, data, device="cpu", seed=5)


def test_modes_metric_needs_data_with_known_modes() -> None:
    digits = build("data", "digits", {"resolution": 8}, seed=0)
    with pytest.raises(GankitError, match="known modes"):
        build("metric", "modes")(ConstantGenerator(torch.zeros(1, 8, 8)), digits, device="cpu", seed=0)


# --- the digits classifier and stacked digits ----------------------------------------------------------------------


def test_digits_classifier_is_accurate_and_cached_as_safetensors(
    classifier8: DigitsClassifier, gankit_cache: Path
) -> None:
    assert classifier8.accuracy > 0.95
    assert classifier8.path is not None and classifier8.path.parent == gankit_cache
    assert classifier8.path.suffix == ".safetensors"
    with safe_open(str(classifier8.path), framework="pt") as handle:
        assert float(handle.metadata()["accuracy"]) == classifier8.accuracy
    again = digits_classifier(8)
    assert again.path == classifier8.path and again.accuracy == classifier8.accuracy
    for a, b in zip(again.net.state_dict().values(), classifier8.net.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert ClassifierSettings(resolution=8).key() != ClassifierSettings(resolution=16).key()


def exemplars(classifier: DigitsClassifier) -> Tensor:
    """One stored image per digit (0..9) that the classifier reads correctly, ``(10, 1, 8, 8)``."""
    images, labels = digits_dataset(8)
    predicted, _ = classifier.predict(images)
    chosen = [int(torch.nonzero((labels == d) & (predicted[:, 0] == d))[0]) for d in range(10)]
    return images[chosen]


def test_stacked_counts_on_every_triple_one_triple_and_blank_images(classifier8: DigitsClassifier) -> None:
    digit = exemplars(classifier8)[:, 0]
    triples = torch.cartesian_prod(torch.arange(10), torch.arange(10), torch.arange(10))
    every = digit[triples]  # (1000, 3, 8, 8), each triple once
    all_modes = stacked_summary(triple_counts([every[:500], every[500:]], classifier8), classifier8.accuracy)
    assert all_modes["modes"] == 1000 and all_modes["kl"] == pytest.approx(0.0, abs=1e-12)
    assert all_modes["samples"] == 1000 and all_modes["classifier_accuracy"] == classifier8.accuracy
    one = stacked_summary(triple_counts([digit[[4, 0, 7]].expand(300, 3, 8, 8)], classifier8), 1.0)
    counts = triple_counts([digit[[4, 0, 7]].unsqueeze(0)], classifier8)
    assert one["modes"] == 1 and one["kl"] == pytest.approx(LOG_1000) and int(counts.argmax()) == 407
    blank = stacked_summary(triple_counts([-torch.ones(200, 3, 8, 8)], classifier8), 1.0)
    assert blank["modes"] == 1 and blank["kl"] == pytest.approx(LOG_1000)


def test_stacked_digits_metric_on_a_perfect_and_a_collapsed_generator(classifier8: DigitsClassifier) -> None:
    data = build("data", "stacked-digits", {"resolution": 8}, seed=0)
    assert data.shape == (3, 8, 8)
    metric = build("metric", "stacked-digits", {"samples": 4000})
    perfect = metric(ImageGenerator(data.digits.images(), channels_from_latent=True), data, device="cpu", seed=0)
    # 4000 uniform draws over 1000 triples miss about 1000 * exp(-4) = 18 of them
    assert perfect["modes"] > 960 and perfect["kl"] < 0.25
    assert perfect["classifier_accuracy"] == classifier8.accuracy and perfect["samples"] == 4000
    collapsed = metric(ConstantGenerator(data.sample(1, torch.Generator().manual_seed(0))[0]), data, device="cpu",
                       seed=0)
    assert collapsed["modes"] == 1 and collapsed["kl"] == pytest.approx(LOG_1000)


def test_stacked_digits_data_stacks_three_independent_digits() -> None:
    data = build("data", "stacked-digits", {"resolution": 16}, seed=0)
    indices = data.sample_indices(5000, torch.Generator().manual_seed(0))
    images = data.images_of(indices)
    assert images.shape == (5000, 3, 16, 16) and images.min() >= -1 and images.max() <= 1
    labels = data.labels(indices)
    assert torch.equal(images[:, 1], data.digits.images()[indices[:, 1], 0])
    triples = labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2]
    assert triples.unique().numel() > 990  # 5000 draws: about 993 distinct triples expected
    first = data.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(first, data.sample(4, torch.Generator().manual_seed(3)))


# --- FID and KID ---------------------------------------------------------------------------------------------------


def test_frechet_distance_of_identical_sets_is_zero() -> None:
    features = torch.randn(500, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert frechet_distance_of(features, features) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_the_closed_form_for_two_gaussians() -> None:
    rng = np.random.default_rng(0)
    mean_1, mean_2 = rng.normal(size=6), rng.normal(size=6)
    var_1, var_2 = rng.uniform(0.5, 2.0, 6), rng.uniform(0.5, 2.0, 6)
    closed = float(np.sum((mean_1 - mean_2) ** 2) + np.sum((np.sqrt(var_1) - np.sqrt(var_2)) ** 2))
    assert frechet_distance(mean_1, np.diag(var_1), mean_2, np.diag(var_2)) == pytest.approx(closed, rel=1e-10)
    # full, non-commuting covariances against the textbook formula with scipy's sqrtm
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    cov_1, cov_2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    root = scipy.linalg.sqrtm(cov_1 @ cov_2).real
    textbook = float(np.sum((mean_1 - mean_2) ** 2) + np.trace(cov_1 + cov_2 - 2 * root))
    assert frechet_distance(mean_1, cov_1, mean_2, cov_2) == pytest.approx(textbook, rel=1e-8)
    # and from samples: the fitted Gaussians approach the closed form
    x = rng.normal(size=(40_000, 6)) * np.sqrt(var_1) + mean_1
    y = rng.normal(size=(40_000, 6)) * np.sqrt(var_2) + mean_2
    assert frechet_distance_of(x, y) == pytest.approx(closed, rel=0.05)
    stats = gaussian_statistics(x)
    assert stats.mean.dtype == np.float64 and stats.n == 40_000


def test_frechet_distance_from_fewer_samples_than_dimensions_is_exact() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 50)), rng.normal(size=(40, 50)) * 1.5 + 0.2
    sx, sy = gaussian_statistics(x), gaussian_statistics(y)
    root = scipy.linalg.sqrtm(sx.cov @ sy.cov).real
    textbook = float(np.sum((sx.mean - sy.mean) ** 2) + np.trace(sx.cov + sy.cov - 2 * root))
    assert frechet_distance_of(x, y) == pytest.approx(textbook, rel=1e-6)
    assert frechet_distance_of(x, y) == pytest.approx(frechet_distance(sx.mean, sx.cov, sy.mean, sy.cov), rel=1e-6)
    assert frechet_distance_of(x, x) == pytest.approx(0.0, abs=1e-9)


def test_kernel_distance_is_near_zero_for_one_distribution_and_positive_for_two() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
    same, same_std = kernel_distance(x, y, subsets=20, subset_size=500, seed=0)
    assert abs(same) < 0.01 and same_std < 0.01
    shifted, _ = kernel_distance(x, y + 0.5, subsets=20, subset_size=500, seed=0)
    assert shifted > 0.05 and shifted > 10 * abs(same)


def test_polynomial_mmd_is_the_unbiased_estimate() -> None:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[2.0, 0.0], [0.0, 0.5]])

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float((a @ b / 2 + 1) ** 3)

    within_x = sum(k(x[i], x[j]) for i in range(3) for j in range(3) if i != j) / 6
    within_y = sum(k(y[i], y[j]) for i in range(2) for j in range(2) if i != j) / 2
    between = sum(k(a, b) for a in x for b in y) / 6
    assert polynomial_mmd2(x, y) == pytest.approx(within_x + within_y - 2 * between, rel=1e-12)


def test_fid_and_kid_metrics_with_digits_features(gankit_cache: Path) -> None:
    data = build("data", "digits", {"resolution": 8}, seed=0)
    real = ImageGenerator(data.images())
    noise = ImageGenerator(torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    fid = build("metric", "fid", {"n_fake": 1000})
    good, bad = fid(real, data, device="cpu", seed=0), fid(noise, data, device="cpu", seed=0)
    assert good["n_fake"] == 1000 and good["n_real"] == 1797 and good["classifier_accuracy"] > 0.95
    assert bad["fid"] > 20 * good["fid"]
    kid = build("metric", "kid", {"n_fake": 1000, "n_real": 1000, "subsets": 10, "subset_size": 500})
    same, other = kid(real, data, device="cpu", seed=0), kid(noise, data, device="cpu", seed=0)
    assert same["n_real"] == 1000 and abs(same["kid"]) < 3 * same["kid_std"] + 1e-3
    assert other["kid"] > 50 * abs(same["kid"])


def test_fid_rejects_points_and_unknown_extractors() -> None:
    ring = build("data", "ring", seed=0)
    with pytest.raises(GankitError, match="images"):
        build("metric", "fid")(MixtureGenerator(ring.modes, ring.sigma), ring, device="cpu", seed=0)
    digits = build("data", "digits", {"resolution": 8}, seed=0)
    with pytest.raises(GankitError, match="unknown encoder"):
        build("metric", "fid", {"features": "no-such-net"})(ImageGenerator(digits.images()), digits, device="cpu",
                                                           seed=0)


# --- Inception-v3 --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Inception-v3 state dict with torchvision's names and heads, as safetensors."""
    torch.manual_seed(0)
    network = InceptionV3Features("fid")
    state = {k: v.contiguous() for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["fc.weight"] = torch.zeros(1008, 2048)
    state["fc.bias"] = torch.zeros(1008)
    path = tmp_path_factory.mktemp("weights") / "inception.safetensors"
    save_file(state, str(path))
    return path


def test_inception_matches_torchvision_layout() -> None:
    network = InceptionV3Features("torchvision")
    # torchvision's inception_v3 without its fc (2,049,000) and AuxLogits (3,326,696): 27,161,264 in all
    assert sum(p.numel() for p in network.parameters()) == 27_161_264 - 2_049_000 - 3_326_696
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in network.state_dict()


@pytest.mark.parametrize("variant", ["fid", "torchvision"])
def test_inception_encoder_loads_a_users_safetensors_file(inception_file: Path, variant: str) -> None:
    encoder = build("encoder", "inception-v3", {"weights": str(inception_file), "input_size": 75, "variant": variant})
    features = encoder.features(torch.rand(2, 1, 8, 8) * 2 - 1)
    assert features.shape == (2, 2048) and features.dtype == torch.float64
    assert torch.isfinite(features).all()


def test_inception_refuses_pickles_missing_files_and_wrong_dicts(inception_file: Path, tmp_path: Path) -> None:
    with pytest.raises(GankitError, match="safetensors"):
        build("encoder", "inception-v3", {"weights": str(tmp_path / "net.pth")})
    with pytest.raises(GankitError, match="no such"):
        build("encoder", "inception-v3", {"weights": str(tmp_path / "missing.safetensors")})
    wrong = tmp_path / "wrong.safetensors"
    save_file({"conv.weight": torch.zeros(3, 3)}, str(wrong))
    with pytest.raises(GankitError, match="missing"):
        build("encoder", "inception-v3", {"weights": str(wrong)})


def test_fid_metric_with_inception_features(inception_file: Path) -> None:
    data = build("data", "digits", {"resolution": 8, "classes": [0]}, seed=0)
    metric = build("metric", "fid", {"features": "inception", "weights": str(inception_file), "input_size": 75,
                                     "n_fake": 3, "n_real": 3})
    result = metric(ImageGenerator(data.images()), data, device="cpu", seed=0)
    assert result["n_fake"] == 3 and result["n_real"] == 3 and result["fid"] >= 0


# --- minibatch standard deviation ------------------------------------------------------------------------------


def test_minibatch_std_appends_each_groups_spread() -> None:
    layer = MinibatchStd(group_size=2)
    x = torch.tensor([[0.0, 0.0], [10.0, 10.0], [2.0, 4.0], [10.0, 10.0]])
    y = layer(x)
    # groups are samples {0, 2} and {1, 3}: std over the group of each feature, averaged over features
    assert y.shape == (4, 3)
    assert torch.allclose(y[:, 2], torch.tensor([1.5, 0.0, 1.5, 0.0]), atol=1e-3)
    images = torch.randn(6, 4, 5, 5)
    out = MinibatchStd(group_size=4)(images)  # 6 is not divisible by 4: groups of 3
    assert out.shape == (6, 5, 5, 5) and MinibatchStd(4).group_for(6) == 3
    assert torch.equal(out[:, :4], images)
    assert torch.allclose(out[0, 4], out[0, 4, 0, 0].expand(5, 5))


@pytest.mark.parametrize("name,shape", [("mlp", (2,)), ("dcgan", (3, 16, 16))])
def test_discriminators_take_a_minibatch_std_option(name: str, shape: tuple[int, ...]) -> None:
    params = {"minibatch_std": True, "minibatch_std_group": 2, "width": 8}
    if name == "dcgan":
        params["max_width"] = 16
    d = build("discriminator", name, params, shape=shape)
    assert any(isinstance(m, MinibatchStd) for m in d.modules())
    x = torch.randn(4, *shape, requires_grad=True)
    logits = d(x)
    assert logits.shape == (4,)
    logits.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in d.parameters())
    plain = build("discriminator", name, {k: v for k, v in params.items() if not k.startswith("minibatch")},
                  shape=shape)
    assert not any(isinstance(m, MinibatchStd) for m in plain.modules())
