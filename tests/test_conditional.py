"""Class-conditional generation: labels from the data, conditional networks and losses, sampling a class, metrics."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from gankit.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from gankit.cli import main
from gankit.errors import GankitError, GankitWarning, MissingLabelsError
from gankit.plugins import get_registry
from gankit.recipe import recipe_from_dict
from gankit.testing import check_part, tiny_recipe
from gankit.training import Trainer, load_generator, sample, train
from gankit.training.generate import interpolate

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_G = {"type": "dcgan", "latent_dim": 8, "width": 4, "max_width": 8}
TINY_D = {"type": "dcgan", "width": 4, "max_width": 8}


def conditional(data: dict[str, Any] | None = None, *, generator: str = "embedding", discriminator: str = "projection",
                acgan: bool = False, **run: Any) -> dict[str, Any]:
    """A tiny conditional recipe (dict) on 8x8 digits, unless ``data`` says otherwise."""
    recipe = tiny_recipe(
        "images",
        generator={**TINY_G, "condition": generator},
        discriminator={**TINY_D, "condition": discriminator},
        run={"samples": 10, **run},
    )
    if data is not None:
        recipe["data"] = data
    if acgan:
        recipe["regularizers"] = [{"type": "acgan"}]
    return recipe


def build_data(name: str, **params: Any) -> Any:
    return get_registry().get("data", name).build(params, seed=0)


def labelled_folder(root: Path, classes: dict[str, tuple[int, int, int]], per_class: int = 3) -> Path:
    """A folder with one sub-folder per class, each holding images of the class's own colour."""
    for name, colour in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("RGB", (8, 8), colour).save(root / name / f"{i}.png")
    return root


# --------------------------------------------------------------------------- labels from the data


def test_digits_yield_each_images_own_digit() -> None:
    data = build_data("digits", resolution=8)
    assert data.num_classes == 10 and data.class_names == [str(d) for d in range(10)]
    images, labels = data.sample_labelled(64, torch.Generator().manual_seed(3))
    index = torch.randint(len(data), (64,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(labels, data.labels[index]), "the class of a full digits set is the digit itself"
    assert torch.equal(images, data.sample(64, torch.Generator().manual_seed(3))), "the same draws as sample()"
    frequencies = data.label_frequencies()
    assert frequencies.shape == (10,) and frequencies.sum().item() == pytest.approx(1)
    assert frequencies[0].item() == pytest.approx(float((data.labels == 0).sum()) / len(data))


def test_a_digits_subset_numbers_its_classes_from_zero() -> None:
    data = build_data("digits", resolution=8, classes=[7, 3])
    assert data.num_classes == 2 and data.class_names == ["3", "7"]
    _, labels = data.sample_labelled(200, torch.Generator().manual_seed(0))
    index = torch.randint(len(data), (200,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(labels, (data.labels[index] == 7).long()), "3 is class 0 and 7 is class 1"


def test_stacked_digits_are_labelled_with_their_triple() -> None:
    data = build_data("stacked-digits", resolution=8)
    assert data.num_classes == 1000 and data.class_names[372] == "372"
    images, labels = data.sample_labelled(32, torch.Generator().manual_seed(1))
    indices = data.sample_indices(32, torch.Generator().manual_seed(1))
    triples = data.labels(indices)
    assert torch.equal(labels, triples[:, 0] * 100 + triples[:, 1] * 10 + triples[:, 2])
    assert torch.equal(images, data.images_of(indices))
    frequencies = data.label_frequencies()
    assert frequencies.shape == (1000,) and frequencies.sum().item() == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("source", ["digits", "stacked-digits", "image-folder", "prepared"])
def test_labels_reach_the_discriminator_from_every_labelled_source(source: str, tmp_path: Path) -> None:
    """The real batch's labels are the data's own: a recording discriminator sees them next to their images."""
    data: dict[str, Any] = {"type": source, "resolution": 8}
    if source in ("image-folder", "prepared"):
        folder = labelled_folder(tmp_path / "photos", {"black": (0, 0, 0), "white": (255, 255, 255)})
        data = {"type": "image-folder", "path": str(folder), "resolution": 8, "labels": "folders"}
        if source == "prepared":
            assert main(["data", "prepare", str(folder), str(tmp_path / "set"), "-r", "8", "--labels", "folders",
                         "-q"]) == 0
            data = {"type": "prepared", "path": str(tmp_path / "set")}
    trainer = Trainer(recipe_from_dict(conditional(data)), tmp_path / "run", quiet=True)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = trainer.game.batches.real

    def recording() -> Any:
        batch, labels = real()
        seen.append((batch, labels))
        return batch, labels

    trainer.game.batches.real = recording  # type: ignore[method-assign]
    trainer.train_step()
    batch, labels = seen[0]
    assert labels is not None and labels.dtype == torch.int64 and labels.shape == (8,)
    assert bool((labels < trainer.data.num_classes).all())
    if source in ("image-folder", "prepared"):  # black is class 0, white class 1
        assert torch.equal(labels, (batch.mean(dim=(1, 2, 3)) > 0).long())


def test_conditional_networks_on_unlabelled_data_name_the_data_and_the_fix(tmp_path: Path) -> None:
    recipe = conditional({"type": "ring"})
    recipe["generator"] = {"type": "mlp", "latent_dim": 2, "width": 8, "depth": 1, "condition": "embedding"}
    recipe["discriminator"] = {"type": "mlp", "width": 8, "depth": 1}
    with pytest.raises(MissingLabelsError, match=r"generator 'mlp': condition = 'embedding' needs class labels, "
                                                 r"but the data \('ring'\) has none.*labels = \"folders\""):
        Trainer(recipe_from_dict(recipe), tmp_path / "run", quiet=True)
    (tmp_path / "r.toml").write_text(recipe_from_dict(recipe).to_toml())
    assert main(["train", str(tmp_path / "r.toml"), "--out", str(tmp_path / "cli"), "-q"]) == 1


# --------------------------------------------------------------------------- networks and losses


#: Small settings of the networks whose only class condition is an embedding (generators) or a projection.
MODERN = {
    ("generator", "stylegan2"): {"latent_dim": 8, "w_dim": 8, "mapping_layers": 2, "channel_base": 32,
                                 "channel_max": 8},
    ("discriminator", "stylegan2"): {"channel_base": 32, "channel_max": 8},
    ("generator", "r3gan"): {"latent_dim": 8, "width": 16, "max_width": 16},
    ("discriminator", "r3gan"): {"width": 16, "max_width": 16, "blocks": 1},
}


@pytest.mark.parametrize(("kind", "network"), sorted(MODERN))
def test_stylegan2_and_r3gan_take_a_condition(kind: str, network: str) -> None:
    condition = "embedding" if kind == "generator" else "projection"
    part = check_part(kind, network, {**MODERN[kind, network], "condition": condition})
    assert part.num_classes == 3


@pytest.mark.parametrize("network", ["dcgan", "mlp"])
@pytest.mark.parametrize("condition", ["embedding", "batchnorm"])
def test_conditional_generators_pass_check_part(network: str, condition: str) -> None:
    params: dict[str, Any] = {"condition": condition}
    if network == "mlp":
        params["batch_norm"] = True
    generator = check_part("generator", network, params)
    assert generator.num_classes == 3
    generator = check_part("generator", network, params, num_classes=5)
    assert generator.num_classes == 5


@pytest.mark.parametrize("network", ["dcgan", "mlp"])
@pytest.mark.parametrize("condition", ["projection", "classifier", "projection-classifier"])
def test_conditional_discriminators_pass_check_part(network: str, condition: str) -> None:
    d = check_part("discriminator", network, {"condition": condition, "spectral_norm": True})
    assert d.num_classes == 3 and d.has_classifier == ("classifier" in condition)


def test_the_label_changes_what_a_conditional_network_computes() -> None:
    torch.manual_seed(0)
    g = get_registry().get("generator", "dcgan").build(
        {"latent_dim": 8, "width": 4, "max_width": 8, "condition": "embedding"}, shape=(1, 8, 8), num_classes=4
    ).eval()
    z = torch.randn(1, 8).expand(4, 8)
    out = g(z, torch.arange(4))
    assert not torch.allclose(out[0], out[1]), "the same latent with another class must give another image"
    d = get_registry().get("discriminator", "dcgan").build({"width": 4, "max_width": 8, "condition": "projection"},
                                                           shape=(1, 8, 8), num_classes=4)
    x = torch.randn(1, 1, 8, 8).expand(4, -1, -1, -1)
    logits = d(x, torch.arange(4))
    assert len(set(logits.tolist())) == 4, "the projection term depends on the class"


MLP_G = {"type": "mlp", "latent_dim": 4, "width": 8, "depth": 1}
MLP_D = {"type": "mlp", "width": 8, "depth": 1}


@pytest.mark.parametrize(("generator", "discriminator", "loss"), [
    ({**MLP_G, "condition": "embedding", "embedding_dim": 3}, {**MLP_D, "condition": "projection"}, "hinge"),
    ({**MLP_G, "condition": "batchnorm", "batch_norm": True}, {**MLP_D, "condition": "classifier"}, "rpgan"),
    ({**TINY_G, "condition": "embedding"}, {**TINY_D, "condition": "classifier", "spectral_norm": True}, "wgan"),
], ids=["mlp-projection-hinge", "mlp-batchnorm-acgan-rpgan", "dcgan-acgan-wgan"])
def test_conditional_parts_train_with_any_adversarial_loss(generator: dict[str, Any], discriminator: dict[str, Any],
                                                           loss: str, tmp_path: Path) -> None:
    recipe = conditional(steps=2)
    recipe.update(generator=generator, discriminator=discriminator, loss={"type": loss})
    if discriminator["condition"] == "classifier":
        recipe["regularizers"] = [{"type": "acgan"}, {"type": "r1"}]
    result = train(recipe_from_dict(recipe), tmp_path / "run", quiet=True)
    assert result.step == 2
    assert sample(load_generator(tmp_path / "run"), 3, labels=[0, 5, 9]).shape == (3, 1, 8, 8)


def test_check_part_catches_a_conditional_network_that_accepts_unlabelled_data(
    builtin_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torch import nn

    import gankit
    from gankit.registry import Params, Provider

    class Lenient(nn.Module):
        """Says it is conditional but never checks that the data has labels."""

        latent_dim = 4

        def __init__(self, params: Any, *, shape: Any = None, num_classes: int = 0, **context: Any) -> None:
            super().__init__()
            self.num_classes = max(num_classes, 3)
            self.embed = nn.Embedding(self.num_classes, 4)
            self.out = nn.Linear(8, 64)

        def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return self.out(torch.cat([z, self.embed(labels)], 1)).view(-1, 1, 8, 8)

    class NoParams(Params):
        pass

    builtin_registry.add("generator", "lenient", Lenient, NoParams, provider=Provider("gankit", gankit.__version__))
    monkeypatch.setattr("gankit.plugins.get_registry", lambda: builtin_registry)
    check_part("generator", "lenient", num_classes=3)  # it works when given classes
    with pytest.raises(AssertionError, match="must raise a GankitError"):
        check_part("generator", "lenient")


def test_a_conditional_discriminator_needs_a_conditional_generator(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match="discriminator 'dcgan' is class-conditional but generator 'dcgan' is not"):
        Trainer(recipe_from_dict(conditional(generator="none")), tmp_path / "run", quiet=True)


def test_acgan_needs_a_discriminator_with_a_classifier(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match=r"regulariser 'acgan' needs class logits.*condition = \"classifier\""):
        Trainer(recipe_from_dict(conditional(acgan=True)), tmp_path / "run", quiet=True)


def test_a_conditional_generator_alone_is_warned_about(tmp_path: Path) -> None:
    with pytest.warns(GankitWarning, match="nothing teaches the generator what a class looks like"):
        Trainer(recipe_from_dict(conditional(discriminator="none")), tmp_path / "run", quiet=True)


def test_acgan_trains_the_classifier_and_the_generator(tmp_path: Path) -> None:
    """With acgan alone (no adversarial loss), the discriminator's classifier learns the real classes."""
    recipe = conditional(discriminator="classifier", acgan=True, steps=40, batch_size=32)
    recipe["loss"] = {"type": "non-saturating", "weight": 0.0}
    recipe["regularizers"] = [{"type": "acgan", "classify_fakes": False, "weight": 1.0}]
    recipe["optim"] = {"discriminator": {"type": "adam", "lr": 3e-3}}
    trainer = Trainer(recipe_from_dict(recipe), tmp_path / "run", quiet=True)
    data = trainer.data
    images, labels = data.sample_labelled(256, torch.Generator().manual_seed(9))
    d = trainer.discriminator_module

    def accuracy() -> float:
        with torch.no_grad():
            _, classes = d(images, labels, return_classes=True)
        return float((classes.argmax(1) == labels).float().mean())

    before = accuracy()
    generator_before = [p.detach().clone() for p in trainer.generator_module.parameters()]
    for _ in range(40):
        trainer.train_step()
    assert accuracy() > max(0.5, before + 0.3)
    assert any(not torch.equal(a, b) for a, b in zip(generator_before, trainer.generator_module.parameters()))


def test_a_part_for_both_networks_is_called_in_both_phases(tmp_path: Path) -> None:
    calls: list[tuple[str, set[str]]] = []

    class Both:
        network = "both"
        weight = 1.0
        every = 1

        def discriminator_penalty(self, judge: Any, real: Any, fake: Any, **context: Any) -> torch.Tensor:
            calls.append(("discriminator", set(context)))
            return judge(real).square().mean()

        def generator_penalty(self, generator: Any, latents: Any, **context: Any) -> torch.Tensor:
            calls.append(("generator", set(context)))
            return generator(latents, context["labels"]).square().mean()

    trainer = Trainer(recipe_from_dict(conditional()), tmp_path / "run", quiet=True)
    from gankit.training.game import regularizations

    regs = regularizations(Both())
    trainer.game.d_regularizers = [r for r in regs if r.network == "discriminator"]
    trainer.game.g_regularizers = [r for r in regs if r.network == "generator"]
    trainer.train_step()
    assert [c[0] for c in calls] == ["discriminator", "generator"]
    assert {"real_labels", "fake_labels", "real_class_logits", "fake_class_logits"} <= calls[0][1]
    assert {"labels", "discriminator", "fake_class_logits"} <= calls[1][1]


def test_a_regulariser_naming_no_known_network_is_refused() -> None:
    from gankit.training.game import regularizations

    class Odd:
        network = "critic"
        weight = 1.0

        def penalty(self, *args: Any) -> torch.Tensor:
            return torch.zeros(())

    with pytest.raises(GankitError, match="'discriminator', 'generator' or 'both'"):
        regularizations(Odd())


# --------------------------------------------------------------------------- training and resuming


@pytest.mark.parametrize("latent_labels", ["uniform", "data"])
def test_conditional_runs_resume_bit_exactly(tmp_path: Path, latent_labels: str) -> None:
    recipe = conditional(generator="batchnorm", discriminator="projection-classifier", acgan=True, steps=4,
                         checkpoint_every=2, latent_labels=latent_labels)
    recipe["tricks"] = [{"type": "ema", "decay": 0.9}]
    train(recipe_from_dict(recipe), tmp_path / "straight", quiet=True)
    train(recipe_from_dict(recipe), tmp_path / "resumed", steps=2, quiet=True)
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--steps", "4", "-q"]) == 0
    a = load_checkpoint(latest_checkpoint(tmp_path / "straight")).tensors
    b = load_checkpoint(latest_checkpoint(tmp_path / "resumed")).tensors
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_latent_labels_follow_the_datas_frequencies(tmp_path: Path) -> None:
    folder = labelled_folder(tmp_path / "photos", {"rare": (255, 0, 0)}, per_class=1)
    labelled_folder(folder, {"common": (0, 0, 255)}, per_class=9)
    data = {"type": "image-folder", "path": str(folder), "resolution": 8, "labels": "folders"}
    counts = {}
    for mode in ("uniform", "data"):
        trainer = Trainer(recipe_from_dict(conditional(data, batch_size=4000, latent_labels=mode)),
                          tmp_path / mode, quiet=True)
        _, labels = trainer.game.batches.latents()
        counts[mode] = torch.bincount(labels, minlength=2).tolist()
    # classes are sorted: common (9 of 10 images) is 0, rare is 1
    assert counts["uniform"][0] == pytest.approx(2000, abs=150)
    assert counts["data"][0] == pytest.approx(3600, abs=150)


def test_latent_labels_data_needs_frequencies(tmp_path: Path) -> None:
    class Plain:
        pass

    trainer = Trainer(recipe_from_dict(conditional()), tmp_path / "run", quiet=True)
    trainer.data = Plain()
    with pytest.raises(GankitError, match="does not say how often"):
        trainer._label_frequencies()


def test_resuming_on_data_with_other_classes_is_a_clear_error(tmp_path: Path) -> None:
    folder = labelled_folder(tmp_path / "photos", {"cats": (200, 90, 0), "dogs": (0, 90, 200)})
    data = {"type": "image-folder", "path": str(folder), "resolution": 8, "labels": "folders"}
    train(recipe_from_dict(conditional(data, steps=2)), tmp_path / "run", quiet=True)
    labelled_folder(folder, {"birds": (90, 200, 0)})
    with pytest.raises(GankitError, match=r"conditioned on 2 classes \(cats, dogs\), but the data \('image-folder'\) "
                                          r"now has 3 \(birds, cats, dogs\)"):
        from gankit.training import resume

        resume(tmp_path / "run", steps=4, quiet=True)


def test_a_checkpoint_with_a_wrong_class_count_is_a_clear_error(tmp_path: Path) -> None:
    train(recipe_from_dict(conditional(steps=2)), tmp_path / "run", quiet=True)
    ckpt = load_checkpoint(tmp_path / "run" / "generator.safetensors")
    ckpt.state["num_classes"] = 7
    ckpt.state["class_names"] = None
    save_checkpoint(tmp_path / "edited.safetensors", ckpt)
    with pytest.raises(GankitError, match=r"embed\.embedding\.weight is \[10, 8\] in the file but \[7, 8\].*"
                                          "records 7 classes"):
        load_generator(tmp_path / "edited.safetensors")


# --------------------------------------------------------------------------- using a conditional generator


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cdigits") / "run"
    recipe = conditional(generator="batchnorm", discriminator="projection-classifier", acgan=True, steps=2)
    train(recipe_from_dict(recipe), out, quiet=True)
    return out


def test_sampling_is_reproducible_by_seed_and_label(digits_run: Path) -> None:
    loaded = load_generator(digits_run)
    assert loaded.num_classes == 10 and loaded.class_names == [str(d) for d in range(10)]
    sevens = sample(loaded, 6, seed=3, labels=7)
    assert torch.equal(sevens, sample(loaded, 6, seed=3, labels=7))
    assert torch.equal(sevens, sample(loaded, 6, seed=3, labels="7")), "a class name is as good as its index"
    assert torch.equal(sevens, sample(loaded, 6, seed=3, labels=[7] * 6))
    assert not torch.equal(sevens, sample(loaded, 6, seed=3, labels=1)), "the label changes the samples"
    assert not torch.equal(sevens, sample(loaded, 6, seed=4, labels=7)), "so does the seed"
    mixed = sample(loaded, 6, seed=3, labels=torch.tensor([7, 1, 7, 1, 7, 1]))
    ones = sample(loaded, 6, seed=3, labels=1)
    assert torch.equal(mixed[0::2], sevens[0::2]) and torch.equal(mixed[1::2], ones[1::2])
    with pytest.raises(GankitError, match="out of range: the generator has 10 classes, 0 to 9"):
        sample(loaded, 2, labels=10)
    with pytest.raises(GankitError, match="one per sample"):
        sample(loaded, 3, labels=[1, 2])


def test_interpolation_stays_within_a_class(digits_run: Path) -> None:
    loaded = load_generator(digits_run)
    strip = interpolate(loaded, 5, rows=2, seed=1, labels=4)
    assert strip.shape == (10, 1, 8, 8)
    # the same walk asked of class 4 sample by sample gives the same pictures
    from gankit.training.generate import slerp

    rng = torch.Generator().manual_seed(1)
    start, end = torch.randn(2, 1, 8, generator=rng), torch.randn(2, 1, 8, generator=rng)
    latents = slerp(start, end, torch.linspace(0, 1, 5).view(1, 5, 1)).reshape(10, 8)
    assert torch.equal(strip, sample(loaded, 10, latents=latents, labels=4))
    rows = interpolate(loaded, 5, rows=2, seed=1, labels=[4, 9])
    assert torch.equal(rows[:5], strip[:5]) and not torch.equal(rows[5:], strip[5:])


def test_gankit_sample_class(digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sevens.png"
    assert main(["sample", str(digits_run), "--class", "7", "-n", "6", "--seed", "2", "-o", str(out)]) == 0
    again = tmp_path / "again.png"
    assert main(["sample", str(digits_run), "--class", "7", "-n", "6", "--seed", "2", "-o", str(again)]) == 0
    assert out.read_bytes() == again.read_bytes()
    grid = tmp_path / "grid.png"
    assert main(["sample", str(digits_run), "-n", "30", "-o", str(grid)]) == 0
    width, height = Image.open(grid).size
    assert (width, height) == (2 + 3 * 10, 2 + 10 * 10), "one row of three per class"
    assert main(["sample", str(digits_run), "--class", "3", "--class", "5", "-n", "8", "-o", str(grid)]) == 0
    assert Image.open(grid).size == (2 + 4 * 10, 2 + 2 * 10)
    assert main(["sample", str(digits_run), "--interpolate", "--class", "3", "-n", "8", "--steps", "4",
                 "-o", str(grid)]) == 0
    capsys.readouterr()
    assert main(["sample", str(digits_run), "--class", "10", "-o", str(grid)]) == 1
    assert "--class '10' is out of range: the generator has 10 classes, 0 to 9" in capsys.readouterr().err
    assert main(["sample", str(digits_run), "--class", "seven", "-o", str(grid)]) == 1
    assert "--class 'seven' is not one of the generator's 10 classes" in capsys.readouterr().err


def test_gankit_sample_class_by_folder_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = labelled_folder(tmp_path / "photos", {"cats": (200, 90, 0), "dogs": (0, 90, 200)})
    data = {"type": "image-folder", "path": str(folder), "resolution": 8, "labels": "folders"}
    train(recipe_from_dict(conditional(data, steps=2)), tmp_path / "run", quiet=True)
    shutil.rmtree(folder)  # the class names are in the checkpoint
    out = tmp_path / "dogs.png"
    assert main(["sample", str(tmp_path / "run"), "--class", "dogs", "-n", "4", "-o", str(out)]) == 0
    by_index = tmp_path / "one.png"
    assert main(["sample", str(tmp_path / "run"), "--class", "1", "-n", "4", "-o", str(by_index)]) == 0
    assert out.read_bytes() == by_index.read_bytes()
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "run"), "--class", "birds", "-o", str(out)]) == 1
    assert "2 classes, 0 to 1 (names: cats, dogs)" in capsys.readouterr().err


def test_an_unconditional_generator_cannot_be_asked_for_a_class(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    train(recipe_from_dict(tiny_recipe("images")), tmp_path / "run", quiet=True)
    assert main(["sample", str(tmp_path / "run"), "--class", "3", "-o", str(tmp_path / "x.png")]) == 1
    assert "--class: this generator is not class-conditional" in capsys.readouterr().err
    with pytest.raises(GankitError, match="not class-conditional"):
        sample(load_generator(tmp_path / "run"), 2, labels=3)


# --------------------------------------------------------------------------- metrics


def test_class_accuracy_reads_what_the_generator_was_asked_for(gankit_cache: Path) -> None:
    """A generator that returns real digits of the asked class scores the classifier's accuracy; a shifted one 0."""
    from torch import nn

    data = build_data("digits", resolution=8)
    images = data.images()

    class Oracle(nn.Module):
        latent_dim = 2
        num_classes = 10

        def __init__(self, shift: int) -> None:
            super().__init__()
            self.shift = shift
            self.anchor = nn.Parameter(torch.zeros(()))

        def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            wanted = (labels + self.shift) % 10
            picks = [torch.nonzero(data.labels == int(c)).flatten()[i % 20] for i, c in enumerate(wanted)]
            return images[torch.stack(picks)]

    metric = get_registry().get("metric", "class-accuracy").build({"samples": 20})
    right = metric(Oracle(0), data, seed=0)
    assert right["accuracy"] > 0.9 and right["samples"] == 200
    assert set(right) >= {f"class_{d}" for d in range(10)} | {"worst", "classifier_accuracy"}
    wrong = metric(Oracle(1), data, seed=0)
    assert wrong["accuracy"] < 0.1


def test_class_metrics_refuse_an_unconditional_generator(gankit_cache: Path, tmp_path: Path) -> None:
    train(recipe_from_dict(tiny_recipe("images")), tmp_path / "run", quiet=True)
    for metric in ("class-accuracy", "intra-fid"):
        with pytest.raises(GankitError, match="scores class-conditional generators"):
            main_or_raise(["eval", str(tmp_path / "run"), "--metric", metric, "-n", "4", "-q"])


def main_or_raise(args: list[str]) -> None:
    from gankit.cli import build_parser
    from gankit.commands import eval as eval_command

    eval_command.run(build_parser().parse_args(args))


def test_class_metrics_in_eval_and_during_training(digits_run: Path, gankit_cache: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import json

    capsys.readouterr()
    assert main(["eval", str(digits_run), "--metric", "class-accuracy", "-n", "10", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 100 and 0 <= result["accuracy"] <= 1 and "class_9" in result
    assert main(["eval", str(digits_run), "--metric", "intra-fid", "-n", "8", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    fids = [result[f"fid_{d}"] for d in range(10)]
    assert result["intra_fid"] == pytest.approx(sum(fids) / 10) and result["n_fake"] == 8
    assert result["per_class"] is True


def test_intra_fid_is_zero_for_the_real_images_of_each_class(gankit_cache: Path) -> None:
    """Asked for class k, a generator returning the real images of k (in order) scores 0 on every class."""
    from torch import nn

    data = build_data("digits", resolution=8, classes=[1, 5])  # 182 images each
    images = data.images()

    class Replay(nn.Module):
        latent_dim = 1
        num_classes = 2

        def __init__(self) -> None:
            super().__init__()
            self.anchor = nn.Parameter(torch.zeros(()))
            self.next = {0: 0, 1: 0}

        def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            picks = []
            for label in labels.tolist():
                members = torch.nonzero(data.class_labels == label).flatten()
                picks.append(members[self.next[label] % members.numel()])
                self.next[label] += 1
            return images[torch.stack(picks)]

    metric = get_registry().get("metric", "intra-fid").build({"n_fake": 182})
    result = metric(Replay(), data, seed=0)
    assert result["n_real"] == 182 and set(result) >= {"fid_1", "fid_5"}
    assert result["intra_fid"] == pytest.approx(0, abs=1e-6)
    swapped = Replay()
    swapped_forward = swapped.forward
    swapped.forward = lambda z, labels: swapped_forward(z, 1 - labels)  # type: ignore[method-assign]
    wrong = metric(swapped, data, seed=0)
    assert wrong["intra_fid"] > 10, "good images of the wrong class score badly"


def test_fid_of_a_conditional_generator_draws_the_datas_classes(digits_run: Path, gankit_cache: Path) -> None:
    from gankit.metrics.sampling import evaluation_labels, fixed_labels

    loaded = load_generator(digits_run)
    data = build_data("digits", resolution=8, classes=[0, 1])
    skewed = type("Skewed", (), {"num_classes": 10, "label_frequencies": lambda self: torch.eye(10)[3]})()
    assert torch.equal(evaluation_labels(loaded.generator, skewed, 20, seed=0), torch.full((20,), 3))
    assert torch.equal(evaluation_labels(loaded.generator, data, 20, seed=0), fixed_labels(20, 10, 0)), \
        "data with other classes: uniform"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = get_registry().get("metric", "fid").build({"n_fake": 16})(loaded.generator, build_data(
            "digits", resolution=8), seed=0)
    assert result["n_fake"] == 16
