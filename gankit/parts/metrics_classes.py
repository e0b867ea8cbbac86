"""Metrics of class-conditional generators: ``class-accuracy`` and ``intra-fid``.

Both ask the generator for every class in turn and score each class on its
own. The numerical work is in :mod:`gankit.metrics.classes`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.parts.metrics import MAX_METRIC_SAMPLES, _FeatureMetric, _FeatureParams
from gankit.registry import Params, Seed


def _classes(generator: Any, data: Any, what: str) -> tuple[int, list[str]]:
    """The generator's class count, checked against the data's, and the classes' names."""
    from gankit.metrics.sampling import num_classes_of

    count = num_classes_of(generator)
    if not count:
        raise GankitError(
            f"metric {what!r} scores class-conditional generators; this one is not (train it with a condition on "
            "labelled data, e.g. the cdcgan-digits recipe)"
        )
    data_count = int(getattr(data, "num_classes", 0) or 0)
    if data_count != count:
        raise GankitError(
            f"metric {what!r}: the generator is conditioned on {count} classes but the data has {data_count}"
        )
    names = [str(n) for n in (getattr(data, "class_names", None) or range(count))]
    return count, names


def _per_class(prefix: str, names: list[str], values: Any) -> dict[str, float]:
    return {f"{prefix}{name}": float(v) for name, v in zip(names, values, strict=True)}


class ClassAccuracyParams(Params):
    """Parameters of ``class-accuracy``."""

    samples: int = Field(1000, gt=0, le=MAX_METRIC_SAMPLES, description="generated samples per class")
    batch: int = Field(500, ge=1, le=100_000, description="samples generated and classified at a time")
    seed: Seed | None = Field(None, description="seed of the latent batch; default: the run's seed")


class ClassAccuracyMetric:
    """Does a class-conditional generator draw the class it is asked for? Read by gankit's digits classifier.

    ``samples`` images of every class are generated and each channel is read by the digits classifier of
    :mod:`gankit.metrics.digits` (trained on first use for the data's
    resolution and cached). An image is right when it reads as its class:
    the digit of ``digits`` (``"7"``), or each channel's digit of a
    ``stacked-digits`` triple (``"372"``); any data whose classes are named
    so works (a folder of ``0/`` to ``9/``). Returns ``accuracy`` (all
    images), ``worst`` (the lowest class), ``class_<name>`` for every class,
    ``classifier_accuracy`` (the classifier's own on held-out real digits,
    the ceiling to compare with) and ``samples``.
    """

    def __init__(self, params: ClassAccuracyParams, **context: Any) -> None:
        self.params = params

    def __call__(self, generator: Any, data: Any, *, device: Any = None, seed: int = 0) -> dict[str, float]:
        """Generate ``samples`` images of every class and read them."""
        import torch

        from gankit.metrics.classes import class_accuracy, expected_digits
        from gankit.metrics.digits import digits_classifier
        from gankit.metrics.sampling import iterate_samples

        count, names = _classes(generator, data, "class-accuracy")
        shape = tuple(getattr(data, "shape", ()))
        if len(shape) != 3 or shape[-1] != shape[-2]:
            raise GankitError(f"metric 'class-accuracy' reads square images of digits; this data's shape is {shape}")
        expected = expected_digits(names, int(shape[0]))
        seed = self.params.seed if self.params.seed is not None else seed
        per = self.params.samples
        labels = torch.arange(count).repeat_interleave(per)
        classifier = digits_classifier(int(shape[-1]))
        if device is not None:
            classifier.to(device)
        batches = iterate_samples(generator, labels.numel(), seed=seed, device=device, chunk=self.params.batch,
                                  labels=labels)
        accuracy, per_class = class_accuracy(batches, labels, classifier, expected)
        return {
            "accuracy": accuracy,
            "worst": float(per_class.min()),
            **_per_class("class_", names, per_class.tolist()),
            "classifier_accuracy": float(classifier.accuracy),
            "samples": float(labels.numel()),
        }


class IntraFIDParams(_FeatureParams):
    """Parameters of ``intra-fid``."""

    n_fake: int = Field(1000, ge=2, le=MAX_METRIC_SAMPLES, description="generated samples per class")
    n_real: int | None = Field(
        None, ge=2, le=MAX_METRIC_SAMPLES, description="real samples per class: default every stored image of it"
    )


class IntraFIDMetric(_FeatureMetric):
    """Intra-class FID (Miyato & Koyama 2018): the FID of each class against the real images of that class, averaged.

    For every class, ``n_fake`` images generated for it (the same latents for
    every class) are compared with the stored real images of the class
    (``n_real`` of them, or all), with the features, quantisation and
    resizing of ``fid``. A conditional generator that draws good images of
    the wrong class scores well on ``fid`` and badly here. Returns
    ``intra_fid`` (the mean over classes), ``worst``, ``fid_<name>`` for
    every class, and ``n_fake`` / ``n_real`` (per class; ``n_real`` the
    smallest class's). Needs data that stores labelled images (digits,
    image-folder or prepared with labels).
    """

    name = "intra-fid"

    def __init__(self, params: IntraFIDParams, **context: Any) -> None:
        super().__init__(params, **context)  # type: ignore[arg-type]  # the distance parameters, per class
        self.params: Any = params

    def __call__(self, generator: Any, data: Any, *, device: Any = None, seed: int = 0) -> dict[str, float]:
        """The FID of every class, and their mean."""
        import torch

        from gankit.metrics.classes import real_pixels_of_class, stored_labels
        from gankit.metrics.frechet import frechet_distance_between
        from gankit.metrics.pixels import generated_pixels
        from gankit.metrics.statistics import RunningGaussian

        count, names = _classes(generator, data, "intra-fid")
        shape, extractor, seed = self._setup(data, device, seed)
        batch = self.params.batch

        def gather() -> list[Any]:
            labels = stored_labels(data, "metric 'intra-fid'")
            stats = []
            for k in range(count):
                members = int((labels == k).sum())
                total = members if self.params.n_real is None else min(members, self.params.n_real)
                if total < 2:
                    raise GankitError(
                        f"metric 'intra-fid': class {names[k]!r} has {members} real image(s); each class needs at "
                        "least two"
                    )
                running = RunningGaussian()
                pixels = real_pixels_of_class(data, labels, k, self.params.n_real, seed=seed, batch=batch)
                for features in self._features(extractor, pixels, total, f"class {names[k]}: real"):
                    running.update(features)
                stats.append(running.result())
            return stats

        real = self._cached_real(data, extractor, seed, gather)
        n = self.params.n_fake
        fids = []
        for k in range(count):
            labels = torch.full((n,), k, dtype=torch.int64)
            pixels = generated_pixels(generator, n, seed=seed, device=device, batch=batch, labels=labels)
            fake = RunningGaussian()
            for features in self._features(extractor, pixels, n, f"class {names[k]}: generated"):
                fake.update(features)
            fids.append(frechet_distance_between(fake.result(), real[k]))
        n_real = min(int(s.n) for s in real)
        self._describe(extractor, shape, n_fake=n, n_real=n_real, per_class=True)
        return {
            "intra_fid": float(sum(fids) / len(fids)),
            "worst": float(max(fids)),
            **_per_class("fid_", names, fids),
            "n_fake": float(n),
            "n_real": float(n_real),
        }


def register(register: Register) -> None:
    """Register the metrics of class-conditional generators."""
    register("metric", "class-accuracy", ClassAccuracyMetric, ClassAccuracyParams)
    register("metric", "intra-fid", IntraFIDMetric, IntraFIDParams)
