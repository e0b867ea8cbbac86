"""StyleGAN2 as parts: the networks, truncation, style mixing, EMA ramp-up, path length, exact resuming."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from gankit.checkpoint import latest_checkpoint, load_checkpoint
from gankit.cli import main
from gankit.errors import GankitError
from gankit.parts.nets_stylegan2 import modulated_conv2d
from gankit.plugins import get_registry
from gankit.testing import tiny_recipe, train_for
from gankit.training import load_generator, sample
from gankit.training.context import TrainingContext

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL_G = {"latent_dim": 8, "w_dim": 8, "mapping_layers": 2, "channel_base": 64, "channel_max": 8}
SMALL_D = {"channel_base": 64, "channel_max": 8}


def generator(shape: tuple[int, ...] = (1, 16, 16), num_classes: int = 0, **params: Any) -> Any:
    torch.manual_seed(0)
    return get_registry().get("generator", "stylegan2").build({**SMALL_G, **params}, shape=shape,
                                                               num_classes=num_classes)


def discriminator(shape: tuple[int, ...] = (1, 16, 16), num_classes: int = 0, **params: Any) -> Any:
    torch.manual_seed(0)
    return get_registry().get("discriminator", "stylegan2").build({**SMALL_D, **params}, shape=shape,
                                                                   num_classes=num_classes)


def stylegan_recipe(**slots: Any) -> dict[str, Any]:
    return tiny_recipe(
        "images",
        generator={"type": "stylegan2", **SMALL_G},
        discriminator={"type": "stylegan2", **SMALL_D},
        **slots,
    )


# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 16), (1, 32, 32), (3, 24, 32), (3, 48, 64)])
def test_shapes_and_resolutions(shape: tuple[int, int, int]) -> None:
    g, d = generator(shape), discriminator(shape)
    images = g(torch.randn(5, 8))
    assert images.shape == (5, *shape)
    assert d(images).shape == (5,)
    levels = g.synthesis.blocks.__len__()
    assert g.num_ws == 2 * levels  # one w per convolution (1 + 2 per doubling) and one for the last toRGB
    assert g.mapping(torch.randn(2, 8)).shape == (2, g.num_ws, 8)


@pytest.mark.parametrize(("shape", "message"), [
    ((3, 4, 4), "from 8 to 1024 pixels"),
    ((3, 2048, 2048), "from 8 to 1024 pixels"),
    ((3, 66, 66), "33x33"),
    ((3, 9, 9), "9x9"),
    ((2,), "(C, H, W)"),
])
def test_unsupported_sizes_are_clear_errors(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(GankitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        generator(shape)
    with pytest.raises(GankitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        discriminator(shape)


def test_conditional_networks_take_labels() -> None:
    g = generator(num_classes=10, condition="embedding")
    d = discriminator(num_classes=10, condition="projection", mapping_layers=2)
    assert g.num_classes == 10 and d.num_classes == 10
    z = torch.randn(4, 8)
    labels = torch.tensor([0, 1, 2, 3])
    images = g(z, labels)
    assert images.shape == (4, 1, 16, 16)
    assert not torch.equal(g.eval()(z, labels), g(z, torch.tensor([9, 9, 9, 9])))
    assert d(images, labels).shape == (4,)
    with pytest.raises(GankitError, match="labels"):
        d(images)


def test_a_condition_without_labelled_data_is_a_clear_error() -> None:
    with pytest.raises(GankitError, match="condition = 'embedding' needs class labels"):
        generator(condition="embedding")
    with pytest.raises(GankitError, match="condition = 'projection' needs class labels"):
        discriminator(condition="projection")


@pytest.mark.parametrize("style_scale", [0.1, 1.0, 10.0])
def test_demodulation_keeps_activations_at_unit_scale(style_scale: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 64, 16, 16)
    weight = torch.randn(32, 64, 3, 3)
    styles = style_scale * (1.0 + torch.rand(16, 64))
    out = modulated_conv2d(x, weight, styles)
    per_map = out.square().mean(dim=(2, 3)).sqrt()  # (N, O): each output feature map's RMS
    assert per_map.mean().item() == pytest.approx(1.0, abs=0.1)
    assert per_map.min().item() > 0.7 and per_map.max().item() < 1.3
    raw = modulated_conv2d(x, weight, styles, demodulate=False)
    assert raw.std().item() > 5 * style_scale  # without demodulation the scale follows the styles and weights


# --------------------------------------------------------------------------- w_avg and truncation


def test_w_avg_tracks_training_batches_only() -> None:
    g = generator()
    assert torch.count_nonzero(g.w_avg) == 0
    g.train()
    g(torch.randn(16, 8))
    moved = g.w_avg.clone()
    assert torch.count_nonzero(moved) > 0
    g.eval()
    g(torch.randn(16, 8))
    assert torch.equal(g.w_avg, moved)
    g.train()
    torch.manual_seed(1)
    z = torch.randn(4, 8)
    g.mapping(z)
    with torch.no_grad():
        w = g.mapping.layers(z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt())
    assert torch.allclose(g.w_avg, w.mean(0).lerp(moved, 0.995), atol=1e-6)


def test_truncation_zero_gives_the_average_image_and_one_the_untruncated(tmp_path: Path) -> None:
    g = generator()
    g.train()
    for _ in range(5):
        g(torch.randn(32, 8))  # give w_avg a value
    plain = sample(g, 6, seed=1)
    untruncated = sample(g, 6, seed=1, truncation=1.0)
    assert torch.allclose(plain, untruncated)
    average = sample(g, 6, seed=1, truncation=0.0)
    g.eval()
    with torch.no_grad():
        expected = g.synthesis(g.w_avg.view(1, 1, -1).expand(1, g.num_ws, -1))
    assert torch.allclose(average, expected.expand(6, -1, -1, -1), atol=1e-6)
    half = sample(g, 6, seed=1, truncation=0.5)
    assert (half - average).abs().mean() < (plain - average).abs().mean()
    assert g.training is False


def test_truncation_of_a_conditional_generator_keeps_the_class() -> None:
    g = generator(num_classes=3, condition="embedding")
    g.train()
    for _ in range(5):
        g(torch.randn(32, 8), torch.randint(0, 3, (32,)))  # give w_avg a value
    for label in range(3):
        plain = sample(g, 4, seed=1, labels=label)
        assert torch.allclose(sample(g, 4, seed=1, labels=label, truncation=1.0), plain)
        g.eval()
        with torch.no_grad():
            z = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
            w = g.mapping(z, torch.full((4,), label))
            expected = g.synthesis(g.w_avg + 0.5 * (w - g.w_avg))
        assert torch.allclose(sample(g, 4, seed=1, labels=label, truncation=0.5), expected, atol=1e-6)
    assert not torch.allclose(sample(g, 4, seed=1, labels=0, truncation=0.5),
                              sample(g, 4, seed=1, labels=1, truncation=0.5))


def test_truncation_needs_a_mapping_network() -> None:
    dcgan = get_registry().get("generator", "dcgan").build({"latent_dim": 8, "width": 4, "max_width": 8},
                                                            shape=(1, 8, 8))
    with pytest.raises(GankitError, match="truncation needs a generator with a mapping network"):
        sample(dcgan, 4, truncation=0.7)


def test_sample_truncation_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = train_for(stylegan_recipe(tricks=["ema"]), steps=2, out=tmp_path / "run")
    out = tmp_path / "truncated.png"
    assert main(["sample", str(result.run_dir), "-n", "4", "--truncation", "0.7", "-o", str(out)]) == 0
    assert out.is_file()
    assert main(["sample", str(result.run_dir), "--interpolate", "-n", "6", "--steps", "3", "--truncation", "0.5",
                 "-o", str(tmp_path / "walk.png")]) == 0
    loaded = load_generator(result.run_dir)
    assert torch.equal(loaded.generator.w_avg, load_checkpoint(latest_checkpoint(result.run_dir)).group(
        "trick.0")["s.average.mapping.w_avg"])  # the EMA copy carries the trained generator's w_avg

    dcgan = train_for(tiny_recipe("images"), steps=1, out=tmp_path / "dcgan")
    capsys.readouterr()
    assert main(["sample", str(dcgan.run_dir), "--truncation", "0.7", "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "generator 'dcgan' has none" in err and "Traceback" not in err


# --------------------------------------------------------------------------- style mixing


def _context(g: Any) -> TrainingContext:
    data = SimpleNamespace(shape=(1, 16, 16))
    return TrainingContext(generator=g, discriminator=torch.nn.Identity(), optimizers={}, data=data,
                           run=SimpleNamespace(batch_size=8), device=torch.device("cpu"), total_steps=10)


def test_style_mixing_cuts_the_latents_in_training_only() -> None:
    g = generator()
    trick = get_registry().get("trick", "style-mixing").build({"probability": 1.0})
    trick.setup(_context(g))
    g.train()
    torch.manual_seed(3)
    ws = g.mapping(torch.randn(4, 8))
    first = ws[:, :1]
    same_as_first = (ws - first).abs().amax(dim=(0, 2)) == 0
    assert bool(same_as_first[0]) and not bool(same_as_first.all())  # a cut: the later layers differ
    cut = int(same_as_first.float().argmin())
    assert bool(same_as_first[:cut].all()) and not bool(same_as_first[cut:].any())
    after_mixing = g.w_avg.clone()
    g.eval()
    ws = g.mapping(torch.randn(4, 8))
    assert torch.equal(ws, ws[:, :1].expand_as(ws))  # sampling never mixes
    assert torch.equal(g.w_avg, after_mixing)


def test_style_mixing_leaves_w_avg_to_the_first_pass() -> None:
    g = generator()
    twin = generator()
    trick = get_registry().get("trick", "style-mixing").build({"probability": 1.0})
    trick.setup(_context(g))
    g.train()
    twin.train()
    z = torch.randn(4, 8)
    g.mapping(z)
    twin.mapping(z)
    assert torch.equal(g.w_avg, twin.w_avg)


def test_style_mixing_needs_a_mapping_network() -> None:
    dcgan = get_registry().get("generator", "dcgan").build({"latent_dim": 8, "width": 4, "max_width": 8},
                                                            shape=(1, 8, 8))
    trick = get_registry().get("trick", "style-mixing").build({})
    with pytest.raises(GankitError, match="needs a generator with a mapping network"):
        trick.setup(_context(dcgan))


def test_style_mixing_does_not_follow_copies_of_the_generator() -> None:
    import copy

    g = generator()
    trick = get_registry().get("trick", "style-mixing").build({"probability": 1.0})
    trick.setup(_context(g))
    twin = copy.deepcopy(g).train()
    ws = twin.mapping(torch.randn(4, 8))
    assert torch.equal(ws, ws[:, :1].expand_as(ws))


# --------------------------------------------------------------------------- EMA ramp-up, path length


def test_ema_half_life_with_rampup_follows_the_reference() -> None:
    trick = get_registry().get("trick", "ema").build({"half_life_images": 10_000, "rampup": 0.05})
    ctx = _context(generator())
    ctx.run = SimpleNamespace(batch_size=32)
    ctx.step = 1
    assert trick.decay_at(ctx) == 0.0  # the first update copies the weights
    ctx.step = 101  # 3,200 images seen before the step: the half-life is 0.05 * 3,200 = 160 images
    assert trick.decay_at(ctx) == pytest.approx(0.5 ** (32 / 160))
    ctx.step = 100_001
    assert trick.decay_at(ctx) == pytest.approx(0.5 ** (32 / 10_000))
    plain = get_registry().get("trick", "ema").build({"decay": 0.99})
    assert plain.decay_at(ctx) == 0.99
    with pytest.raises(Exception, match="rampup needs half_life_images"):
        get_registry().get("trick", "ema").validate({"rampup": 0.05})


def test_path_length_trains_the_mapping_network() -> None:
    g = generator()
    g.train()
    penalty = get_registry().get("loss", "path-length").build({})
    value = penalty.penalty(g, torch.randn(8, 8))
    value.backward()
    mapping_grad = sum(p.grad.abs().sum() for p in g.mapping.parameters() if p.grad is not None)
    synthesis_grad = sum(p.grad.abs().sum() for p in g.synthesis.parameters() if p.grad is not None)
    assert mapping_grad > 0 and synthesis_grad > 0
    assert penalty.mean > 0


# --------------------------------------------------------------------------- resuming


def test_w_avg_path_length_mean_and_ada_p_resume_bit_exactly(tmp_path: Path) -> None:
    recipe = stylegan_recipe(
        regularizers=[{"type": "r1", "weight": 0.1, "every": 2}, {"type": "path-length", "every": 2}],
        tricks=[{"type": "ada", "interval": 1, "speed_images": 100, "p": 0.2}, "style-mixing",
                {"type": "ema", "half_life_images": 100, "rampup": 0.05}],
        run={"checkpoint_every": 2, "steps": 4},
    )
    straight = train_for(recipe, steps=4, out=tmp_path / "straight")
    halves = train_for(recipe, steps=2, out=tmp_path / "halves")
    assert main(["train", "--resume", str(halves.run_dir), "--steps", "4", "--quiet"]) == 0
    a = load_checkpoint(latest_checkpoint(straight.run_dir))
    b = load_checkpoint(latest_checkpoint(tmp_path / "halves"))
    assert a.state["step"] == b.state["step"] == 4
    w_avg = a.group("generator")["mapping.w_avg"]
    assert torch.count_nonzero(w_avg) > 0
    assert torch.equal(w_avg, b.group("generator")["mapping.w_avg"])
    pl_mean = a.group("regularizer.1")["s.mean"]
    assert pl_mean > 0 and torch.equal(pl_mean, b.group("regularizer.1")["s.mean"])
    p = dict(a.state["tricks"][0]["__map__"])["p"]
    assert p != 0.2 and p == dict(b.state["tricks"][0]["__map__"])["p"]
    for key, value in a.group("generator").items():
        assert torch.equal(value, b.group("generator")[key]), key
    for key, value in a.group("discriminator").items():
        assert torch.equal(value, b.group("discriminator")[key]), key


def test_the_parts_pass_gankits_own_part_checks() -> None:
    from gankit.testing import check_part

    check_part("generator", "stylegan2", SMALL_G, shape=(1, 8, 8))
    check_part("discriminator", "stylegan2", SMALL_D, shape=(3, 16, 16))
    check_part("generator", "r3gan", {"width": 16, "max_width": 16, "latent_dim": 8}, shape=(1, 8, 8))
    check_part("discriminator", "r3gan", {"width": 16, "max_width": 16}, shape=(1, 8, 8))
    check_part("trick", "ada", {"p": 0.5})
