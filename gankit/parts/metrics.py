"""Metrics (kind ``metric``) and the feature extractors they use (kind ``encoder``).

Metrics: ``modes`` (PacGAN's mode coverage on 2-D mixtures),
``stacked-digits`` (the Stacked-MNIST protocol on scikit-learn's digits),
``fid``, ``kid``, ``precision-recall`` and ``density-coverage``. Each is called as ``metric(generator, data, *, device,
seed)`` and returns a dict of numbers; the trainer logs them as
``"<name>.<key>"`` in ``metrics.jsonl`` and ``gankit eval`` prints them as
JSON (with the metric's ``provenance()``, when it has one). Encoders:
``digits-features`` and ``inception-v3``. The numerical work lives in
:mod:`gankit.metrics`; this module wires it to the registry, and imports
torch only when a part is built or called.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.registry import Params, Seed

#: The most samples a metric draws (FID's protocol takes 50,000).
MAX_METRIC_SAMPLES = 1_000_000

# --------------------------------------------------------------------------- modes


class ModesParams(Params):
    """Parameters of the ``modes`` metric."""

    samples: int = Field(2500, gt=0, le=MAX_METRIC_SAMPLES,
                         description="samples drawn from a fixed latent batch (PacGAN: 2500)")
    threshold: float = Field(3.0, gt=0, description="a sample is high quality within this many sigma of its mode")
    seed: Seed | None = Field(None, description="seed of the latent batch; default: the run's seed")


class ModesMetric:
    """Mode coverage on 2-D mixtures (PacGAN's protocol): ``modes``, ``high_quality``, ``reverse_kl``.

    ``samples`` points come from a fixed latent batch; each is assigned to
    the data's nearest mode and is high quality within ``threshold`` sigma of
    it. A mode is captured when it has at least one high-quality sample;
    ``reverse_kl`` is ``KL(p || uniform)`` of the histogram of high-quality
    samples over the modes (``log K`` when there is none). ``score`` is
    ``(modes / K) * high_quality * exp(-reverse_kl)``, one number to keep the
    best checkpoint by (``run.best_metric = "modes.score"``, ``best_mode =
    "max"``). Needs data with ``modes`` (centres ``(K, D)``) and ``sigma``:
    ``ring`` and ``grid``.
    """

    def __init__(self, params: ModesParams, **context: Any) -> None:
        self.params = params

    def __call__(self, generator: Any, data: Any, *, device: Any = None, seed: int = 0) -> dict[str, float]:
        """Score ``generator`` against the mixture ``data``."""
        from gankit.metrics.modes import mode_coverage
        from gankit.metrics.sampling import evaluation_labels, generate

        centres, sigma = getattr(data, "modes", None), getattr(data, "sigma", None)
        if centres is None or sigma is None:
            raise GankitError(
                f"metric 'modes' needs data with known modes and sigma (ring, grid), not {type(data).__name__}"
            )
        seed = self.params.seed if self.params.seed is not None else seed
        n = self.params.samples
        points = generate(generator, n, seed=seed, device=device, labels=evaluation_labels(generator, data, n, seed))
        return mode_coverage(points, centres, float(sigma), threshold=self.params.threshold)


# --------------------------------------------------------------------------- stacked digits


class StackedDigitsMetricParams(Params):
    """Parameters of the ``stacked-digits`` metric."""

    samples: int = Field(26_000, gt=0, le=MAX_METRIC_SAMPLES,
                         description="generated images to classify (Stacked-MNIST protocol: 26,000)")
    seed: Seed | None = Field(None, description="seed of the latent batch; default: the run's seed")


class StackedDigitsMetric:
    """Stacked-MNIST on scikit-learn digits: how many of the 1,000 digit triples a generator produces.

    Each channel of ``samples`` generated images is read by gankit's digits
    classifier (trained on first use for the data's resolution and cached,
    see :mod:`gankit.metrics.digits`); the triple of digits is the image's
    mode. Returns ``modes`` (distinct triples seen), ``kl`` (``KL(p ||
    uniform)`` of the triple histogram, in nats; a perfect generator scores
    about ``999 / (2 * samples)`` from sampling noise alone),
    ``classifier_accuracy`` (held-out accuracy of the classifier),
    ``total_modes`` and ``samples``. Works on any 3-channel image data;
    ``stacked-digits`` is what it is made for.
    """

    def __init__(self, params: StackedDigitsMetricParams, **context: Any) -> None:
        self.params = params

    def __call__(self, generator: Any, data: Any, *, device: Any = None, seed: int = 0) -> dict[str, float]:
        """Classify every channel of generated images and count the digit triples."""
        from gankit.metrics.digits import digits_classifier
        from gankit.metrics.sampling import evaluation_labels, iterate_samples
        from gankit.metrics.stacked import stacked_summary, triple_counts

        shape = tuple(getattr(data, "shape", ()))
        if len(shape) != 3 or shape[0] != 3:
            raise GankitError(
                f"metric 'stacked-digits' needs 3-channel image data such as stacked-digits, got shape {shape}"
            )
        seed = self.params.seed if self.params.seed is not None else seed
        classifier = digits_classifier(int(shape[-1]))
        if device is not None:
            classifier.to(device)
        n = self.params.samples
        labels = evaluation_labels(generator, data, n, seed)
        counts = triple_counts(iterate_samples(generator, n, seed=seed, device=device, labels=labels), classifier)
        return stacked_summary(counts, classifier.accuracy)


# --------------------------------------------------------------------------- feature metrics

ResizeMode = Literal["legacy-tensorflow", "legacy-pytorch", "clean", "friendly"]

#: The sample count of reported numbers (FID50k, KID50k, PR50k): the field's convention.
REPORTED_SAMPLES = 50_000


class _FeatureParams(Params):
    """Parameters shared by the metrics on features: the extractor, its weights and how images reach it."""

    features: str = Field(
        "digits",
        min_length=1,
        description="feature extractor: 'digits' (gankit's digits classifier), 'inception' (Inception-v3, needs "
        "weights), or the name of any encoder part with a features() method",
    )
    weights: str | None = Field(
        None, description="safetensors file of the extractor's weights (required by 'inception'; no downloads)"
    )
    variant: Literal["fid", "torchvision"] = Field(
        "fid", description="Inception only: the FID reference network (pytorch-fid) or torchvision's inception_v3"
    )
    input_size: int = Field(299, ge=75, le=1024, description="Inception only: side images are resized to")
    resize: ResizeMode = Field(
        "legacy-tensorflow",
        description="Inception only: how 8-bit images become the network's input: 'legacy-tensorflow' (TTUR, "
        "StyleGAN2-ADA, torch-fidelity), 'legacy-pytorch' (pytorch-fid), 'clean' (clean-fid), 'friendly' "
        "(StudioGAN)",
    )
    batch: int = Field(250, ge=1, le=100_000, description="images generated and passed to the extractor at a time")
    seed: Seed | None = Field(
        None, description="seed of the latent batch and of real draws; default: the run's seed"
    )


class _DistanceParams(_FeatureParams):
    """Parameters of the metrics comparing generated with real images."""

    n_fake: int = Field(REPORTED_SAMPLES, ge=2, le=MAX_METRIC_SAMPLES,
                        description="generated samples (from a fixed latent batch)")
    n_real: int | None = Field(
        None,
        ge=2,
        le=MAX_METRIC_SAMPLES,
        description="real samples: default every stored image when the data stores them (image-folder, prepared, "
        "digits), else n_fake draws",
    )


def build_extractor(params: _FeatureParams, shape: tuple[int, ...], device: Any) -> Any:
    """The feature extractor a metric names, built for data of ``shape``."""
    from gankit.metrics.features import ALIASES
    from gankit.plugins import get_registry

    name = ALIASES.get(params.features, params.features)
    encoder = get_registry().get("encoder", name)
    settings: dict[str, Any] = {}
    fields = encoder.params.model_fields
    if params.weights is not None:
        if "weights" not in fields:
            raise GankitError(f"feature extractor {name!r} takes no weights file")
        settings["weights"] = params.weights
    if name == "inception-v3":
        settings.update(variant=params.variant, input_size=params.input_size, resize=params.resize)
    extractor = encoder.build(settings, shape=shape, device=device)
    if not callable(getattr(extractor, "features", None)) and not callable(
        getattr(extractor, "features_from_pixels", None)
    ):
        raise GankitError(f"encoder {name!r} has no features(images) method, so it cannot feed a metric")
    return extractor


class _FeatureMetric:
    """Shared work of the metrics on features: extractors, 8-bit images of both sides, real features cached.

    Generated images are quantised to 8 bits, exactly as saving them would, and
    both sides reach the extractor through the same path
    (:func:`gankit.metrics.features.pixel_features`). Everything runs
    ``batch`` images at a time. After a call, :meth:`provenance` says how the
    numbers were made (extractor, weights hash, resize mode, sample counts);
    ``gankit eval`` prints it with them. Set :attr:`progress` to a callable
    ``(done, total, what)`` to follow long runs.
    """

    name = "feature metric"

    def __init__(self, params: _DistanceParams, **context: Any) -> None:
        self.params = params
        self._extractors: dict[tuple[tuple[int, ...], str], Any] = {}
        self._real: tuple[Any, Any, int, Any] | None = None  # (data, extractor, seed, value) of the last call
        self._provenance: dict[str, Any] = {}
        self.progress: Any = None

    def provenance(self) -> dict[str, Any]:
        """How the last numbers were made: extractor settings, weights hash, resize mode, sample counts."""
        return dict(self._provenance)

    def _extractor(self, shape: tuple[int, ...], device: Any) -> Any:
        key = (shape, str(device))
        if key not in self._extractors:
            self._extractors[key] = build_extractor(self.params, shape, device)
        return self._extractors[key]

    def _setup(self, data: Any, device: Any, seed: int) -> tuple[tuple[int, ...], Any, int]:
        shape = tuple(getattr(data, "shape", ()))
        if len(shape) != 3:
            raise GankitError(f"metric {self.name!r} compares images; this data's samples have shape {shape}")
        seed = self.params.seed if self.params.seed is not None else seed
        return shape, self._extractor(shape, device), seed

    def _features(self, extractor: Any, batches: Iterator[Any], total: int, what: str) -> Iterator[Any]:
        from gankit.metrics.features import pixel_features

        done = 0
        for pixels in batches:
            features = pixel_features(extractor, pixels)
            done += int(pixels.shape[0])
            if self.progress is not None:
                self.progress(done, total, what)
            yield features

    def fake_features(
        self, generator: Any, extractor: Any, seed: int, device: Any, data: Any = None, labels: Any = None
    ) -> Iterator[Any]:
        """Features of ``n_fake`` quantised generated images, batch by batch.

        A class-conditional generator is asked for ``labels``, else for classes drawn as often as ``data`` holds them.
        """
        from gankit.metrics.pixels import generated_pixels
        from gankit.metrics.sampling import evaluation_labels

        n = self.params.n_fake
        if labels is None:
            labels = evaluation_labels(generator, data, n, seed)
        batches = generated_pixels(generator, n, seed=seed, device=device, batch=self.params.batch, labels=labels)
        return self._features(extractor, batches, n, "generated")

    def real_count(self, data: Any) -> int:
        """How many real images the metric uses for ``data``."""
        from gankit.metrics.pixels import count_real

        return count_real(data, self.params.n_real, self.params.n_fake)

    def real_features(self, data: Any, extractor: Any, seed: int) -> Iterator[Any]:
        """Features of the real images (see :func:`gankit.metrics.pixels.real_pixels`), batch by batch."""
        from gankit.metrics.pixels import real_pixels

        n, default = self.params.n_real, self.params.n_fake
        batches = real_pixels(data, n, seed=seed, batch=self.params.batch, default=default)
        return self._features(extractor, batches, self.real_count(data), "real")

    def _cached_real(self, data: Any, extractor: Any, seed: int, compute: Any) -> Any:
        cached = self._real
        if cached is None or cached[0] is not data or cached[1] is not extractor or cached[2] != seed:
            cached = self._real = (data, extractor, seed, compute())
        return cached[3]

    def _describe(self, extractor: Any, shape: tuple[int, ...], **counts: Any) -> None:
        from gankit.metrics.features import ALIASES, extractor_settings

        name = ALIASES.get(self.params.features, self.params.features)
        self._provenance = {**extractor_settings(extractor, name), "image_shape": list(shape), **counts}


def _all_features(batches: Iterator[Any], total: int, what: str) -> Any:
    """Feature batches gathered into one float32 matrix ``(total, D)``, after checking that it fits in memory.

    float32 keeps 50,000 x 2,048 Inception features at 400 MB.
    """
    import torch

    from gankit.resources import available_host_memory, format_bytes

    first = next(batches, None)
    if first is None:
        raise GankitError(f"no {what} images to compute features of")
    need = total * first.shape[1] * 4
    free = available_host_memory()
    if free is not None and need > 0.8 * free:
        raise GankitError(
            f"the features of {total:,} {what} images ({first.shape[1]:,} each) need {format_bytes(need)} of memory "
            f"and {format_bytes(free)} is free: set a smaller {'n_real' if what == 'real' else 'n_fake'}"
        )
    out = torch.empty(total, first.shape[1], dtype=torch.float32)
    filled = 0
    for batch in (first, *batches):
        out[filled : filled + batch.shape[0]] = batch
        filled += batch.shape[0]
    return out[:filled]


class FIDParams(_DistanceParams):
    """Parameters of the ``fid`` metric."""

    reference: str | None = Field(
        None,
        description="statistics .npz of the real images (gankit data stats); made with the same features, "
        "weights and resize mode. Unset: computed from the run's data",
    )


class FIDMetric(_FeatureMetric):
    """Fréchet distance between Gaussians fitted to generated and real features (Heusel et al. 2017), float64.

    Returns ``fid`` with the sample counts it was computed from, ``n_fake``
    (50,000 by default, the convention of published numbers) and ``n_real``:
    FID is biased by the sample count, so numbers are only comparable at equal
    counts. Generated images are quantised to 8 bits and resized exactly like
    the real ones; means and covariances are gathered batch by batch, so
    memory does not grow with the count. The real side comes from the data or
    from ``reference``, a statistics file of ``gankit data stats`` whose
    settings (extractor, weights hash, resize mode, image size) must match.
    The features come from a pluggable extractor (``features``): gankit's
    digits classifier by default, Inception-v3 with a user's weights file for
    numbers comparable with the literature (see docs/metrics.md).
    """

    name = "fid"

    def __init__(self, params: FIDParams, **context: Any) -> None:
        super().__init__(params, **context)
        self.reference = params.reference
        self._loaded: tuple[Any, Any] | None = None  # (path and modification time, loaded statistics)

    def __call__(self, generator: Any, data: Any, *, device: Any = None, seed: int = 0) -> dict[str, float]:
        """FID of ``generator`` against ``data`` (or the reference statistics)."""
        from gankit.metrics.frechet import frechet_distance_between
        from gankit.metrics.statistics import RunningGaussian

        shape, extractor, seed = self._setup(data, device, seed)
        if self.reference is not None:
            real, reference = self._reference(extractor, shape), {"reference": self.reference}
        else:
            def gather() -> Any:
                running = RunningGaussian()
                for features in self.real_features(data, extractor, seed):
                    running.update(features)
                return running.result()

            real, reference = self._cached_real(data, extractor, seed, gather), {}
        fake = RunningGaussian()
        for features in self.fake_features(generator, extractor, seed, device, data):
            fake.update(features)
        stats = fake.result()
        out = {
            "fid": frechet_distance_between(stats, real),
            "n_fake": float(stats.n),
            "n_real": float(real.n),
        }
        if hasattr(extractor, "accuracy"):
            out["classifier_accuracy"] = float(extractor.accuracy)
        self._describe(extractor, shape, n_fake=stats.n, n_real=real.n, **reference)
        return out

    def real_statistics(self, data: Any, *, device: Any = None, seed: int = 0) -> tuple[Any, dict[str, Any]]:
        """Mean and covariance of the real images' features, and how they were made (what ``gankit data stats``
        writes)."""
        from gankit.metrics.statistics import RunningGaussian

        shape, extractor, seed = self._setup(data, device, seed)
        running = RunningGaussian()
        for features in self.real_features(data, extractor, seed):
            running.update(features)
        stats = running.result()
        self._describe(extractor, shape, n_real=stats.n)
        return stats, self.provenance()

    def _reference(self, extractor: Any, shape: tuple[int, ...]) -> Any:
        from pathlib import Path

        from gankit.metrics.features import ALIASES, extractor_settings
        from gankit.metrics.statistics import load_stats

        assert self.reference is not None
        file = Path(self.reference).expanduser()
        key = (str(file), file.stat().st_mtime_ns) if file.is_file() else None
        if key is None or self._loaded is None or self._loaded[0] != key:
            self._loaded = (key, load_stats(file))
        stats, meta = self._loaded[1]
        wanted = {**extractor_settings(extractor, ALIASES.get(self.params.features, self.params.features)),
                  "image_shape": list(shape)}
        differ = [f"{key} is {meta[key]!r} there but {value!r} here" for key, value in wanted.items()
                  if key in meta and meta[key] != value]
        if differ:
            raise GankitError(
                f"reference statistics {self.reference} were made differently from this FID: {'; '.join(differ)}. "
                "Make them again with the same settings: gankit data stats SOURCE -o FILE --set features=... "
                "--set weights=... --set resize=... (and the data's resolution)"
            )
        if stats.n and stats.n < 2:
            raise GankitError(f"reference statistics {self.reference} come from fewer than two images")
        return stats


class KIDParams(_DistanceParams):
    """Parameters of the ``kid`` metric."""

    subsets: int = Field(100, ge=1, le=100_000, description="random subsets the estimate is averaged over")
    subset_size: int = Field(1000, ge=2, le=MAX_METRIC_SAMPLES,
                             description="samples per subset (capped at n_fake and n_real)")


class KIDMetric(_FeatureMetric):
    """Kernel distance: unbiased squared MMD with the cubic polynomial kernel (Bińkowski et al. 2018), float64.

    ``k(x, y) = (x . y / d + 1)^3`` on the features of generated and real
    images (quantised and resized like FID's), averaged over ``subsets``
    random subsets of ``subset_size``. Returns ``kid``, its standard
    deviation over subsets ``kid_std``, and ``n_fake`` / ``n_real``.
    Unbiased: near 0 (possibly slightly negative) when both sets come from
    the same distribution.
    """

    name = "kid"

    def __init__(self, params: KIDParams, **context: Any) -> None:
        super().__init__(params, **context)
        self.subsets = params.subsets
        self.subset_size = params.subset_size

    def __call__(self, generator: Any, data: Any, *, device: Any = None, seed: int = 0) -> dict[str, float]:
        """KID of ``generator`` against ``data``."""
        from gankit.metrics.frechet import kernel_distance

        shape, extractor, seed = self._setup(data, device, seed)
        real = self._cached_real(data, extractor, seed,
                                 lambda: _all_features(self.real_features(data, extractor, seed),
                                                       self.real_count(data), "real"))
        fake = _all_features(self.fake_features(generator, extractor, seed, device, data), self.params.n_fake,
                             "generated")
        mean, std = kernel_distance(fake.double(), real.double(), subsets=self.subsets,
                                    subset_size=self.subset_size, seed=seed)
        self._describe(extractor, shape, n_fake=fake.shape[0], n_real=real.shape[0])
        return {"kid": mean, "kid_std": std, "n_fake": float(fake.shape[0]), "n_real": float(real.shape[0])}


class _NeighbourhoodMetric(_FeatureMetric):
    """All real and generated features, then two numbers from ``k``-nearest-neighbour balls (``_measure``)."""

    #: The names of the two numbers ``_measure`` returns.
    outputs: tuple[str, str]

    def __init__(self, params: Any, **context: Any) -> None:
        super().__init__(params, **context)
        self.k: int = params.k

    def _measure(self, real: Any, fake: Any) -> tuple[float, float]:
        raise NotImplementedError

    def __call__(self, generator: Any, data: Any, *, device: Any = None, seed: int = 0) -> dict[str, float]:
        """The metric's two numbers for ``generator`` against ``data``, with the sample counts."""
        shape, extractor, seed = self._setup(data, device, seed)
        real = self._cached_real(data, extractor, seed,
                                 lambda: _all_features(self.real_features(data, extractor, seed),
                                                       self.real_count(data), "real"))
        fake = _all_features(self.fake_features(generator, extractor, seed, device, data), self.params.n_fake,
                             "generated")
        first, second = self._measure(real, fake)
        self._describe(extractor, shape, n_fake=fake.shape[0], n_real=real.shape[0], k=self.k)
        return {self.outputs[0]: first, self.outputs[1]: second, "n_fake": float(fake.shape[0]),
                "n_real": float(real.shape[0])}


class PrecisionRecallParams(_DistanceParams):
    """Parameters of the ``precision-recall`` metric."""

    k: int = Field(3, ge=1, description="neighbourhood size: a sample's ball reaches its k-th nearest neighbour")


class PrecisionRecallMetric(_NeighbourhoodMetric):
    """Improved precision and recall (Kynkäänniemi et al. 2019) on any feature extractor.

    Each set's support is the union of balls around its samples reaching
    their ``k``-th nearest neighbour (k = 3, as in the paper and
    StyleGAN2-ADA's ``pr50k3``). ``precision``: the share of generated
    samples inside the real support (fidelity); ``recall``: the share of real
    samples inside the generated support (diversity). Returns them with
    ``n_fake`` and ``n_real``. Features are those of FID (quantised images,
    any extractor); the paper used VGG-16, which a plugin encoder can supply.
    """

    name = "precision-recall"
    outputs = ("precision", "recall")

    def _measure(self, real: Any, fake: Any) -> tuple[float, float]:
        from gankit.metrics.manifold import precision_recall

        return precision_recall(real, fake, k=self.k)


class DensityCoverageParams(_DistanceParams):
    """Parameters of the ``density-coverage`` metric."""

    n_fake: int = Field(10_000, ge=2, description="generated samples (Naeem et al. use 10,000)")
    k: int = Field(5, ge=1, description="neighbourhood size of the real balls (Naeem et al.: 5)")


class DensityCoverageMetric(_NeighbourhoodMetric):
    """Density and coverage (Naeem et al. 2020) on any feature extractor.

    Around every real sample, a ball reaching its ``k``-th nearest real
    neighbour. ``density``: how many balls hold each generated sample on
    average, divided by ``k`` (about 1 for matching distributions, robust to
    outliers among the real samples); ``coverage``: the share of real
    samples whose ball holds at least one generated sample. Returns them
    with ``n_fake`` and ``n_real``.
    """

    name = "density-coverage"
    outputs = ("density", "coverage")

    def _measure(self, real: Any, fake: Any) -> tuple[float, float]:
        from gankit.metrics.manifold import density_coverage

        return density_coverage(real, fake, k=self.k)


# --------------------------------------------------------------------------- encoders


class DigitsFeaturesParams(Params):
    """Parameters of the ``digits-features`` encoder."""

    resolution: int | None = Field(
        None, ge=8, le=1024, description="resolution the classifier is trained at; default: the data's (or 32)"
    )


def digits_features(params: DigitsFeaturesParams, *, shape: Any = None, device: Any = None, **context: Any) -> Any:
    """Penultimate features of gankit's digits classifier, per channel (``(N, C * 128)``); trained once, cached.

    The classifier is a small CNN trained in seconds on scikit-learn's
    digits at the data's resolution and cached as safetensors under
    ``$GANKIT_CACHE`` (default ``~/.cache/gankit``); see
    :mod:`gankit.metrics.digits`. Its held-out accuracy is ``.accuracy``.
    """
    from gankit.metrics.features import DigitsFeatures

    resolution = params.resolution or (int(shape[-1]) if shape else 32)
    return DigitsFeatures(resolution, device=device or "cpu")


class InceptionParams(Params):
    """Parameters of the ``inception-v3`` encoder."""

    weights: str = Field(
        ..., min_length=1, description="safetensors file of a torchvision-style Inception-v3 state dict (required)"
    )
    variant: Literal["fid", "torchvision"] = Field(
        "fid", description="'fid': the FID reference network (pytorch-fid weights); 'torchvision': inception_v3"
    )
    input_size: int = Field(299, ge=75, le=1024, description="side images are resized to")
    resize: ResizeMode = Field(
        "legacy-tensorflow",
        description="how 8-bit images become the network's input (see gankit.metrics.pixels): 'legacy-tensorflow',"
        " 'legacy-pytorch', 'clean' or 'friendly'",
    )


def inception_features(params: InceptionParams, *, device: Any = None, **context: Any) -> Any:
    """Inception-v3 pool3 features (``(N, 2048)``) with weights from the user's safetensors file.

    The network is defined in gankit (:mod:`gankit.metrics.inception`) with
    torchvision's parameter names, so torchvision's or pytorch-fid's weights,
    saved as safetensors, load as they are. Nothing is downloaded.
    """
    from gankit.metrics.features import InceptionFeatures

    return InceptionFeatures(
        params.weights, variant=params.variant, input_size=params.input_size, device=device or "cpu",
        resize=params.resize,
    )


def register(register: Register) -> None:
    """Register the metrics and their feature extractors."""
    register("metric", "modes", ModesMetric, ModesParams)
    register("metric", "stacked-digits", StackedDigitsMetric, StackedDigitsMetricParams)
    register("metric", "fid", FIDMetric, FIDParams)
    register("metric", "kid", KIDMetric, KIDParams)
    register("metric", "precision-recall", PrecisionRecallMetric, PrecisionRecallParams)
    register("metric", "density-coverage", DensityCoverageMetric, DensityCoverageParams)
    register("encoder", "digits-features", digits_features, DigitsFeaturesParams)
    register("encoder", "inception-v3", inception_features, InceptionParams)
