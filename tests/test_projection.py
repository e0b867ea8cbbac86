"""Projection: finding the latent of a generated image whose latent is known, in z and in w, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from gankit.cli import main
from gankit.errors import GankitError
from gankit.plugins import get_registry
from gankit.projection import (
    ProjectionSettings,
    draw_latents,
    encoder_features,
    load_latents,
    noise_regularisation,
    project,
    save_latents,
)
from gankit.testing import tiny_recipe, train_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_generator() -> nn.Module:
    torch.manual_seed(0)
    part = get_registry().get("generator", "mlp")
    return part.build({"latent_dim": 4, "width": 32, "depth": 2}, shape=(1, 8, 8)).eval()


def test_projection_recovers_the_latent_of_a_generated_image() -> None:
    generator = small_generator()
    known = torch.randn(1, 4, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        target = generator(known)
    found = project(generator, target, settings=ProjectionSettings(steps=200, starts=1, seed=1))
    assert found.space == "z"
    assert found.distance < found.start_distance * 1e-4
    assert torch.allclose(found.latents, known, atol=0.02)
    assert found.history[-1]["distance"] < found.history[0]["distance"]
    assert all(p.requires_grad for p in generator.parameters())  # the generator is left as it was


class TinyStyle(nn.Module):
    """A generator with a mapping network (one w per layer, two layers) and a noise input, as StyleGAN has."""

    latent_dim = 4

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.map = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.2), nn.Linear(8, 8))
        self.synth = nn.Linear(8, 64)
        self.register_buffer("noise_const", torch.randn(1, 1, 16, 16))
        self.strength = nn.Parameter(torch.tensor(0.01))

    def mapping(self, z: Tensor) -> Tensor:
        return self.map(z).unsqueeze(1).repeat(1, 2, 1)

    def synthesis(self, w: Tensor) -> Tensor:
        noise = nn.functional.avg_pool2d(self.noise_const, 2)
        return torch.tanh(self.synth(w.mean(1)).view(-1, 1, 8, 8) + self.strength * noise)

    def noise_buffers(self) -> list[Tensor]:
        return [self.noise_const]

    def forward(self, z: Tensor) -> Tensor:
        return self.synthesis(self.mapping(z))


def test_projection_in_w_with_noise_inputs(tmp_path: Path) -> None:
    generator = TinyStyle().eval()
    buffer = generator.noise_const
    saved = buffer.clone()
    with torch.no_grad():
        known_w = generator.mapping(torch.randn(1, 4, generator=torch.Generator().manual_seed(3)))
        target = generator.synthesis(known_w)
    found = project(generator, target, settings=ProjectionSettings(steps=150, seed=2))
    assert found.space == "w"
    assert found.latents.shape == (1, 2, 8) and torch.equal(found.latents[:, 0], found.latents[:, 1])
    assert found.distance < found.start_distance * 0.2  # what is left is mostly the target's own noise
    assert torch.allclose(found.latents, known_w, atol=0.02)
    assert len(found.noise) == 1 and found.noise[0].shape == (1, 1, 16, 16)
    assert abs(float(found.noise[0].mean())) < 1e-4 and abs(float(found.noise[0].std()) - 1) < 0.01  # renormalised
    assert generator.noise_const is buffer and torch.equal(buffer, saved)  # the generator's own noise is back
    path = save_latents(tmp_path / "w.safetensors", found, image="target.png")
    latents = load_latents(path)
    assert latents.space == "w" and latents.info["image"] == "target.png"
    assert torch.allclose(draw_latents(generator, latents), found.image, atol=1e-6)


def test_noise_regularisation_is_zero_for_white_noise_and_high_for_smooth_noise() -> None:
    white = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    smooth = nn.functional.interpolate(torch.randn(1, 1, 8, 8), size=64, mode="bilinear")
    smooth = (smooth - smooth.mean()) / smooth.std()
    assert float(noise_regularisation([white])) < 0.01 < float(noise_regularisation([smooth]))


def test_a_perceptual_distance_with_an_encoder_falls_too() -> None:
    generator = small_generator()
    with torch.no_grad():
        target = generator(torch.randn(1, 4, generator=torch.Generator().manual_seed(7)))
    layers = ["relu1_2", "relu2_2"]
    encoder = get_registry().get("encoder", "vgg16").build({"weights": "random"}, layers=layers)
    found = project(generator, target, encoder=encoder_features(encoder, layers),
                    settings=ProjectionSettings(steps=40, starts=1, seed=1))
    assert found.feature_distance > 0
    assert found.distance < found.start_distance * 0.1


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    folder = tmp_path_factory.mktemp("project") / "run"
    train_for(tiny_recipe("images", run={"checkpoint_every": 4}), steps=4, out=folder)
    return folder


def test_gankit_project_writes_the_image_the_latent_and_a_video(run: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(run), "-n", "1", "--seed", "9", "-o", "photo.png"]) == 0
    assert main(["project", str(run), "photo.png", "--steps", "60", "--video", "search.gif", "--frames", "6"]) == 0
    out = capsys.readouterr().out
    assert "searched in z" in out
    start, end = (float(x) for x in out.split("distance ")[1].split(" after")[0].split(" at the start, "))
    assert end < start
    assert Image.open("photo-projected.png").size == Image.open("photo.png").size
    with Image.open("search.gif") as gif:
        assert gif.size == (22, 12)  # the photo and the projection side by side
        assert 2 <= gif.n_frames <= 7
    latents = load_latents(tmp_path / "photo-latent.safetensors")
    assert latents.space == "z" and latents.latents.shape == (1, 8)
    assert latents.info["step"] == 4
    assert main(["sample", str(run), "--latent", "photo-latent.safetensors", "-o", "again.png"]) == 0
    assert np.array_equal(np.asarray(Image.open("again.png")), np.asarray(Image.open("photo-projected.png")))


def test_gankit_project_mistakes(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["project", str(run), str(tmp_path / "none.png")]) == 1
    assert "no such image file" in capsys.readouterr().err
    (tmp_path / "bad.png").write_text("not an image")
    assert main(["project", str(run), str(tmp_path / "bad.png"), "--steps", "2"]) == 1
    assert "cannot read the image" in capsys.readouterr().err
    assert main(["sample", str(run), "--latent", str(tmp_path / "bad.png")]) == 1
    assert "not a safetensors file" in capsys.readouterr().err
    points = tmp_path / "points"
    train_for(tiny_recipe("points", run={"checkpoint_every": 1}), steps=1, out=points)
    Image.new("RGB", (8, 8)).save(tmp_path / "p.png")
    assert main(["project", str(points), str(tmp_path / "p.png")]) == 1
    assert "projection works on image generators" in capsys.readouterr().err
    with pytest.raises(GankitError, match="at least one step"):
        ProjectionSettings(steps=0).check()
