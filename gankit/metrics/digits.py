"""A digits classifier that gankit trains itself, caches, and uses to label and embed generated digits.

The classifier is a small CNN trained on scikit-learn's 1,797 handwritten
digits, rendered at the resolution of the data being scored exactly as the
``digits`` data source renders them. It is trained deterministically (fixed
seeds, a fixed stratified split) in a few seconds on a CPU, and cached as a
safetensors file (no pickle) under :func:`cache_dir`, keyed by every setting
that changes the weights. Its accuracy on the held-out quarter of the digits
is stored with the weights and reported by the metrics that use it.

It serves two metrics: ``stacked-digits`` reads one digit per channel with
:meth:`DigitsClassifier.predict`, and the ``digits`` feature extractor of
``fid`` / ``kid`` uses the activations of its penultimate layer
(:meth:`DigitsClassifier.embed`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError

#: Bumped whenever the architecture or the training procedure changes, so old cache files are not reused.
CLASSIFIER_VERSION = 1
#: Environment variable naming gankit's cache folder.
CACHE_ENV = "GANKIT_CACHE"
#: Default side of the images the network works on; inputs of any size are resized to it.
WORK_SIZE = 16


def cache_dir() -> Path:
    """gankit's cache folder: ``$GANKIT_CACHE``, else ``$XDG_CACHE_HOME/gankit``, else ``~/.cache/gankit``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "gankit"


@dataclass(frozen=True)
class ClassifierSettings:
    """Everything that determines the classifier's weights (and so its cache key)."""

    resolution: int = 32
    epochs: int = 12
    batch_size: int = 64
    lr: float = 3e-3
    width: int = 32
    embedding: int = 128
    held_out: float = 0.25
    work_size: int = WORK_SIZE
    seed: int = 0
    version: int = CLASSIFIER_VERSION

    def key(self) -> str:
        """A short, stable hash of the settings."""
        text = json.dumps(self.__dict__, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def file_name(self) -> str:
        """The cache file's name: readable settings plus the hash."""
        return f"digits-classifier-r{self.resolution}-v{self.version}-{self.key()}.safetensors"


class DigitsNet(nn.Module):
    """Two convolution blocks and two linear layers for one-channel digits in [-1, 1].

    Input ``(N, 1, S, S)`` of any side ``S`` is resized (area averaging, or
    bilinear when enlarging) to ``work_size`` (a multiple of 4); then 3x3
    convolutions with ReLU and 2x2 max pooling (``width`` and ``2 * width``
    channels), a linear layer to the ``embedding`` features (ReLU) and a
    linear layer to ten logits.
    """

    def __init__(self, width: int = 32, embedding: int = 128, work_size: int = WORK_SIZE) -> None:
        super().__init__()
        if work_size < 4 or work_size % 4:
            raise ValueError(f"work_size must be a positive multiple of 4, got {work_size}")
        self.work_size = work_size
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * (work_size // 4) ** 2, embedding),
            nn.ReLU(),
        )
        self.head = nn.Linear(embedding, 10)
        self.embedding = embedding
        # Channels-last convolutions and pooling run about twice as fast on a CPU; the results are the same.
        self.features.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack it

    def resize(self, images: Tensor) -> Tensor:
        """Images ``(N, 1, S, S)`` at the working size."""
        size = self.work_size
        if images.shape[-1] == size and images.shape[-2] == size:
            return images
        mode = "area" if images.shape[-1] >= size else "bilinear"
        return F.interpolate(images, size=(size, size), mode=mode)

    def embed(self, images: Tensor) -> Tensor:
        """Penultimate features ``(N, embedding)`` of one-channel images."""
        out: Tensor = self.features(self.resize(images).contiguous(memory_format=torch.channels_last))
        return out

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``(N, 10)`` of one-channel images ``(N, 1, S, S)``."""
        out: Tensor = self.head(self.embed(images))
        return out


@dataclass
class DigitsClassifier:
    """A trained :class:`DigitsNet` with its held-out accuracy and settings."""

    net: DigitsNet
    accuracy: float
    settings: ClassifierSettings
    path: Path | None = None

    def _channels(self, images: Tensor, chunk: int) -> list[Tensor]:
        if images.ndim != 4:
            raise ValueError(f"expected images (N, C, H, W), got shape {tuple(images.shape)}")
        device = next(self.net.parameters()).device
        flat = images.reshape(-1, 1, *images.shape[-2:])
        return [flat[i : i + chunk].to(device, torch.float32) for i in range(0, flat.shape[0], chunk)]

    @torch.no_grad()
    def predict(self, images: Tensor, *, chunk: int = 2048) -> tuple[Tensor, Tensor]:
        """The digit in every channel of ``images`` ``(N, C, H, W)``: labels ``(N, C)`` and their probabilities."""
        labels, confidence = [], []
        for part in self._channels(images, chunk):
            probs = self.net(part).softmax(dim=1)
            best, index = probs.max(dim=1)
            labels.append(index.cpu())
            confidence.append(best.cpu())
        n, c = images.shape[0], images.shape[1]
        return torch.cat(labels).reshape(n, c), torch.cat(confidence).reshape(n, c)

    @torch.no_grad()
    def embed(self, images: Tensor, *, chunk: int = 2048) -> Tensor:
        """Features ``(N, C * embedding)``: every channel embedded on its own, concatenated, float64 on the CPU."""
        feats = [self.net.embed(part).double().cpu() for part in self._channels(images, chunk)]
        n = images.shape[0]
        return torch.cat(feats).reshape(n, -1)

    def to(self, device: str | torch.device) -> DigitsClassifier:
        """Move the network to ``device``; returns ``self``."""
        self.net.to(device)
        return self


def digits_dataset(resolution: int) -> tuple[Tensor, Tensor]:
    """scikit-learn's digits as the ``digits`` data source renders them: images ``(N, 1, R, R)`` and labels."""
    from gankit.parts.data_digits import Digits, DigitsParams

    data = Digits(DigitsParams(resolution=resolution))
    return data.images(), data.labels.clone()


def _split(labels: Tensor, held_out: float, seed: int) -> tuple[Tensor, Tensor]:
    """A stratified split: indices of the training and held-out samples."""
    generator = torch.Generator().manual_seed(seed)
    train, test = [], []
    for digit in range(10):
        index = torch.nonzero(labels == digit).flatten()
        index = index[torch.randperm(index.numel(), generator=generator)]
        n_test = round(held_out * index.numel())
        test.append(index[:n_test])
        train.append(index[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def _shift(images: Tensor, generator: torch.Generator, max_shift: int) -> Tensor:
    """Translate each image by up to ``max_shift`` pixels in x and y (background -1 fills the gap)."""
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4, value=-1.0)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(n, 1, h, padded.shape[-1])
    cropped = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, 1, h, w)
    return cropped.gather(3, cols)


@torch.no_grad()
def accuracy(net: nn.Module, images: Tensor, labels: Tensor) -> float:
    """Fraction of ``images`` that ``net`` labels correctly."""
    net.eval()
    predicted = torch.cat([net(images[i : i + 1024]).argmax(dim=1) for i in range(0, images.shape[0], 1024)])
    return float((predicted == labels).double().mean())


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one CPU thread: the small network trains as fast, and sums in one order on every machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_classifier(settings: ClassifierSettings) -> DigitsClassifier:
    """Train the classifier from scratch, deterministically (on one CPU thread), and measure its held-out accuracy.

    Training uses Adam, random shifts of up to one pixel at the working size
    and a cosine learning-rate decay; the split and every random choice come
    from ``settings.seed``.
    """
    with _one_thread():
        return _train(settings)


def _train(settings: ClassifierSettings) -> DigitsClassifier:
    images, labels = digits_dataset(settings.resolution)
    train_index, test_index = _split(labels, settings.held_out, settings.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        net = DigitsNet(settings.width, settings.embedding, settings.work_size)
    generator = torch.Generator().manual_seed(settings.seed + 1)
    x_train = net.resize(images[train_index])
    y_train = labels[train_index]
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
    steps_per_epoch = -(-x_train.shape[0] // settings.batch_size)
    total = settings.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + torch.cos(torch.tensor(step / total * torch.pi)).item())
    )
    net.train()
    for _ in range(settings.epochs):
        order = torch.randperm(x_train.shape[0], generator=generator)
        for start in range(0, order.numel(), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            x = _shift(x_train[batch], generator, max_shift=1)
            loss = F.cross_entropy(net(x), y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval().requires_grad_(False)
    held_out = accuracy(net, images[test_index], labels[test_index]) if test_index.numel() else float("nan")
    return DigitsClassifier(net, held_out, settings)


def save_classifier(classifier: DigitsClassifier, path: Path) -> Path:
    """Write the classifier as safetensors; accuracy and settings go into the metadata."""
    from safetensors.torch import save

    from gankit.checkpoint import atomic_write_bytes

    tensors = {k: v.detach().cpu().contiguous() for k, v in classifier.net.state_dict().items()}
    metadata = {
        "accuracy": repr(classifier.accuracy),
        "settings": json.dumps(classifier.settings.__dict__, sort_keys=True),
    }
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return path


def load_classifier(path: Path, settings: ClassifierSettings) -> DigitsClassifier:
    """Read a classifier written by :func:`save_classifier`; its settings must equal ``settings``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open has no iterator)
    stored = json.loads(metadata.get("settings", "{}"))
    if stored != settings.__dict__:
        raise GankitError(f"{path}: cached classifier was trained with other settings; delete the file")
    net = DigitsNet(settings.width, settings.embedding, settings.work_size)
    net.load_state_dict(tensors)
    net.eval().requires_grad_(False)
    return DigitsClassifier(net, float(metadata["accuracy"]), settings, path)


def digits_classifier(
    resolution: int = 32, *, cache: bool = True, folder: Path | None = None, **overrides: int | float
) -> DigitsClassifier:
    """The digits classifier for images of side ``resolution``: from the cache, or trained (seconds) and cached.

    ``overrides`` change other :class:`ClassifierSettings` fields. A cache
    file that cannot be read is replaced. With ``cache=False`` nothing is
    read or written.
    """
    settings = ClassifierSettings(resolution=resolution, **overrides)  # type: ignore[arg-type]
    path = (folder if folder is not None else cache_dir()) / settings.file_name()
    if cache and path.is_file():
        try:
            return load_classifier(path, settings)
        except (OSError, ValueError, KeyError, RuntimeError, GankitError):
            pass
    classifier = train_classifier(settings)
    if cache:
        try:
            save_classifier(classifier, path)
            classifier.path = path
        except OSError:
            classifier.path = None
    return classifier
