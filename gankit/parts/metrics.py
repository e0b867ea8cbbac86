"""Metrics (kind ``metric``) and the feature extractors they use (kind ``encoder``).

Metrics: ``modes`` (PacGAN's mode coverage on 2-D mixtures),
``stacked-digits`` (the Stacked-MNIST protocol on scikit-learn's digits),
``fid`` and ``kid``. Each is called as ``metric(generator, data, *, device,
seed)`` and returns a dict of numbers; the trainer logs them as
``"<name>.<key>"`` in ``metrics.jsonl`` and ``gankit eval`` prints them as
JSON. Encoders: ``digits-features`` and ``inception-v3``. The numerical work
lives in :mod:`gankit.metrics`; this module wires it to the registry, and
imports torch only when a part is built or called.
"""

from __future__ import annotations

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
        from gankit.metrics.sampling import generate

        centres, sigma = getattr(data, "modes", None), getattr(data, "sigma", None)
        if centres is None or sigma is None:
            raise GankitError(
                f"metric 'modes' needs data with known modes and sigma (ring, grid), not {type(data).__name__}"
            )
        seed = self.params.seed if self.params.seed is not None else seed
        points = generate(generator, self.params.samples, seed=seed, device=device)
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
        from gankit.metrics.sampling import iterate_samples
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
        counts = triple_counts(iterate_samples(generator, self.params.samples, seed=seed, device=device), classifier)
        return stacked_summary(counts, classifier.accuracy)


# --------------------------------------------------------------------------- FID and KID


class _DistanceParams(Params):
    """Parameters shared by ``fid`` and ``kid``."""

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
    n_fake: int = Field(2000, ge=2, le=MAX_METRIC_SAMPLES, description="generated samples (from a fixed latent batch)")
    n_real: int | None = Field(
        None,
        ge=2,
        le=MAX_METRIC_SAMPLES,
        description="real samples: default every stored image when the data has them (digits), else n_fake draws",
    )
    seed: Seed | None = Field(
        None, description="seed of the latent batch and of real draws; default: the run's seed"
    )


def build_extractor(params: _DistanceParams, shape: tuple[int, ...], device: Any) -> Any:
    """The feature extractor a ``fid`` / ``kid`` metric names, built for data of ``shape``."""
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
        settings.update(variant=params.variant, input_size=params.input_size)
    extractor = encoder.build(settings, shape=shape, device=device)
    if not callable(getattr(extractor, "features", None)):
        raise GankitError(f"encoder {name!r} has no features(images) method, so it cannot feed FID or KID")
    return extractor


class _FeatureDistance:
    """Shared work of ``fid`` and ``kid``: features of generated and real images, real ones cached per data."""

    def __init__(self, params: _DistanceParams, **context: Any) -> None:
        self.params = params
        self._extractors: dict[tuple[tuple[int, ...], str], Any] = {}
        self._real: tuple[Any, Any, int, Any] | None = None  # (data, extractor, seed, features) of the last call

    def _extractor(self, shape: tuple[int, ...], device: Any) -> Any:
        key = (shape, str(device))
        if key not in self._extractors:
            self._extractors[key] = build_extractor(self.params, shape, device)
        return self._extractors[key]

    def _real_images(self, data: Any, seed: int) -> Any:
        """The real images to compare with: every stored image, a seeded subset of them, or seeded draws."""
        import torch

        images_of = getattr(data, "images", None)
        stored = images_of() if callable(images_of) else None
        n_real = self.params.n_real
        if stored is not None and (n_real is None or n_real >= stored.shape[0]):
            return stored
        if stored is not None:
            order = torch.randperm(stored.shape[0], generator=torch.Generator().manual_seed(seed))
            return stored[order[:n_real]]
        return data.sample(n_real or self.params.n_fake, torch.Generator().manual_seed(seed + 1))

    def _real_features(self, data: Any, extractor: Any, seed: int) -> Any:
        """Features of the real images, computed once per data source, extractor and seed."""
        from gankit.metrics.features import extract

        cached = self._real
        if cached is None or cached[0] is not data or cached[1] is not extractor or cached[2] != seed:
            cached = self._real = (data, extractor, seed, extract(extractor, self._real_images(data, seed)))
        return cached[3]

    def features(self, generator: Any, data: Any, device: Any, seed: int) -> tuple[Any, Any, Any]:
        """Generated features, real features and the extractor."""
        from gankit.metrics.features import extract
        from gankit.metrics.sampling import generate

        shape = tuple(getattr(data, "shape", ()))
        if len(shape) != 3:
            raise GankitError(f"FID and KID compare images; this data's samples have shape {shape}")
        seed = self.params.seed if self.params.seed is not None else seed
        extractor = self._extractor(shape, device)
        fake = extract(extractor, generate(generator, self.params.n_fake, seed=seed, device=device))
        return fake, self._real_features(data, extractor, seed), extractor


class FIDParams(_DistanceParams):
    """Parameters of the ``fid`` metric."""


class FIDMetric(_FeatureDistance):
    """Fréchet distance between Gaussians fitted to generated and real features (Heusel et al. 2017), float64.

    Returns ``fid`` with the sample counts it was computed from, ``n_fake``
    and ``n_real``: FID is biased by the sample count, so numbers are only
    comparable at equal counts. The features come from a pluggable extractor
    (``features``): gankit's digits classifier by default, Inception-v3 with
    a user's weights file for numbers comparable with the literature.
    """

    def __call__(self, generator: Any, data: Any, *, device: Any = None, seed: int = 0) -> dict[str, float]:
        """FID of ``generator`` against ``data``."""
        from gankit.metrics.frechet import frechet_distance_of

        fake, real, extractor = self.features(generator, data, device, seed)
        out = {"fid": frechet_distance_of(fake, real), "n_fake": float(fake.shape[0]), "n_real": float(real.shape[0])}
        if hasattr(extractor, "accuracy"):
            out["classifier_accuracy"] = float(extractor.accuracy)
        return out


class KIDParams(_DistanceParams):
    """Parameters of the ``kid`` metric."""

    subsets: int = Field(100, ge=1, le=100_000, description="random subsets the estimate is averaged over")
    subset_size: int = Field(1000, ge=2, le=MAX_METRIC_SAMPLES,
                             description="samples per subset (capped at n_fake and n_real)")


class KIDMetric(_FeatureDistance):
    """Kernel distance: unbiased squared MMD with the cubic polynomial kernel (Bińkowski et al. 2018), float64.

    ``k(x, y) = (x . y / d + 1)^3`` on the features of generated and real
    images, averaged over ``subsets`` random subsets of ``subset_size``.
    Returns ``kid``, its standard deviation over subsets ``kid_std``, and
    ``n_fake`` / ``n_real``. Unbiased: near 0 (possibly slightly negative)
    when both sets come from the same distribution.
    """

    def __init__(self, params: KIDParams, **context: Any) -> None:
        super().__init__(params, **context)
        self.subsets = params.subsets
        self.subset_size = params.subset_size

    def __call__(self, generator: Any, data: Any, *, device: Any = None, seed: int = 0) -> dict[str, float]:
        """KID of ``generator`` against ``data``."""
        from gankit.metrics.frechet import kernel_distance

        fake, real, _ = self.features(generator, data, device, seed)
        mean, std = kernel_distance(
            fake, real, subsets=self.subsets, subset_size=self.subset_size,
            seed=self.params.seed if self.params.seed is not None else seed,
        )
        return {"kid": mean, "kid_std": std, "n_fake": float(fake.shape[0]), "n_real": float(real.shape[0])}


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
    input_size: int = Field(299, ge=75, le=1024, description="side images are resized to (bilinear)")


def inception_features(params: InceptionParams, *, device: Any = None, **context: Any) -> Any:
    """Inception-v3 pool3 features (``(N, 2048)``) with weights from the user's safetensors file.

    The network is defined in gankit (:mod:`gankit.metrics.inception`) with
    torchvision's parameter names, so torchvision's or pytorch-fid's weights,
    saved as safetensors, load as they are. Nothing is downloaded.
    """
    from gankit.metrics.features import InceptionFeatures

    return InceptionFeatures(
        params.weights, variant=params.variant, input_size=params.input_size, device=device or "cpu"
    )


def register(register: Register) -> None:
    """Register the metrics and their feature extractors."""
    register("metric", "modes", ModesMetric, ModesParams)
    register("metric", "stacked-digits", StackedDigitsMetric, StackedDigitsMetricParams)
    register("metric", "fid", FIDMetric, FIDParams)
    register("metric", "kid", KIDMetric, KIDParams)
    register("encoder", "digits-features", digits_features, DigitsFeaturesParams)
    register("encoder", "inception-v3", inception_features, InceptionParams)
