"""The data parts: ring, grid, digits and image-folder, through the public registry."""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import UnreadableImagesWarning
from gankit.errors import GankitError
from gankit.plugins import get_registry
from gankit.protocols import DataSource

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)


def build(name: str, params: dict[str, Any] | None = None) -> Any:
    return get_registry().get("data", name).build(params or {}, seed=0)


def folder(path: Path, **params: Any) -> Any:
    return build("image-folder", {"path": str(path), "resolution": 16, **params})


def is_data_source(obj: object) -> bool:
    return isinstance(obj, DataSource)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def colour_at(images: torch.Tensor, row: slice, col: slice) -> tuple[float, ...]:
    """Mean colour of one region of the first image, back in 0..255."""
    region = images[0, :, row, col]
    return tuple(float(v) for v in ((region.mean(dim=(1, 2)) + 1) * 127.5))


def assert_close_colour(actual: tuple[float, ...], expected: tuple[int, ...], tol: float = 12) -> None:
    assert all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True)), (actual, expected)


# --- ring and grid ---------------------------------------------------------------------------------------------


def test_ring_defaults_are_pacgan_constants() -> None:
    ring = build("ring")
    assert ring.sigma == 0.01
    assert ring.modes.shape == (8, 2)
    assert torch.allclose(ring.modes.norm(dim=1), torch.ones(8))
    angles = torch.atan2(ring.modes[:, 1], ring.modes[:, 0]) % (2 * math.pi)
    assert torch.allclose(angles.sort().values, torch.arange(8) * (math.pi / 4), atol=1e-6)
    assert ring.shape == (2,)
    assert len(ring) == 8 * 1000


def test_grid_defaults_are_pacgan_constants() -> None:
    grid = build("grid")
    assert grid.sigma == 0.05
    assert grid.modes.shape == (25, 2)
    expected = {(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(m) for m in grid.modes.tolist()} == expected


def test_ring_and_grid_parameters() -> None:
    ring = build("ring", {"modes": 5, "radius": 3.0, "sigma": 0.1})
    assert ring.modes.shape == (5, 2)
    assert torch.allclose(ring.modes.norm(dim=1), torch.full((5,), 3.0))
    grid = build("grid", {"spacing": 1.0, "extent": 1, "sigma": 0.2})
    assert grid.modes.shape == (9, 2)
    assert grid.modes.abs().max() == 1.0
    with pytest.raises(ValueError):
        build("ring", {"sigma": 0})
    with pytest.raises(ValueError):
        build("grid", {"extent": 2, "unknown": 1})


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_mixture_samples_near_modes_and_cover_them_uniformly(name: str) -> None:
    source = build(name)
    assert is_data_source(source)
    n = 8000
    points = source.sample(n, gen(1))
    assert points.shape == (n, 2)
    assert points.dtype == torch.float32
    index, distance = source.nearest_mode(points)
    assert distance.max() < 5 * source.sigma
    counts = torch.bincount(index, minlength=source.modes.shape[0]).float()
    expected = n / source.modes.shape[0]
    assert counts.min() > 0
    assert (counts - expected).abs().max() < 5 * math.sqrt(expected)
    spread = (points - source.modes[index]).std(dim=0)
    assert torch.allclose(spread, torch.full((2,), source.sigma), rtol=0.1)


@pytest.mark.parametrize("name", ["ring", "grid", "digits"])
def test_sampling_is_deterministic_given_the_generator(name: str) -> None:
    source = build(name)
    assert torch.equal(source.sample(64, gen(7)), source.sample(64, gen(7)))
    assert not torch.equal(source.sample(64, gen(7)), source.sample(64, gen(8)))


# --- digits ----------------------------------------------------------------------------------------------------


def test_digits_default() -> None:
    digits = build("digits")
    assert is_data_source(digits)
    assert digits.shape == (1, 32, 32)
    assert len(digits) == 1797
    batch = digits.sample(16, gen())
    assert batch.shape == (16, 1, 32, 32)
    assert batch.dtype == torch.float32
    images = digits.images()
    assert images.shape == (1797, 1, 32, 32)
    assert images.min() >= -1 and images.max() <= 1
    assert images.max() > 0.9
    assert images[:, :, :, :2].mean() < -0.95
    assert (images == -1).float().mean() > 0.3


def test_digits_classes_channels_and_resolution() -> None:
    digits = build("digits", {"classes": [3, 1], "channels": 3, "resolution": 20})
    assert digits.shape == (3, 20, 20)
    assert set(digits.labels.tolist()) == {1, 3}
    assert len(digits) == int(((digits.labels == 1) | (digits.labels == 3)).sum())
    assert 300 < len(digits) < 400
    batch = digits.sample(8, gen())
    assert batch.shape == (8, 3, 20, 20)
    assert torch.equal(batch[:, 0], batch[:, 1]) and torch.equal(batch[:, 1], batch[:, 2])
    assert build("digits", {"resolution": 8}).shape == (1, 8, 8)


@pytest.mark.parametrize(
    "bad", [{"classes": [10]}, {"classes": [-1]}, {"classes": []}, {"resolution": 7}, {"channels": 2}]
)
def test_digits_rejects_bad_params(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build("digits", bad)


def test_digits_without_scikit_learn_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(GankitError, match="pip install scikit-learn"):
        build("digits")


# --- image-folder ----------------------------------------------------------------------------------------------


def solid(colour: tuple[int, ...], size: tuple[int, int] = (24, 24), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def halves(left: tuple[int, int, int], right: tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def test_reads_many_colour_modes(tmp_path: Path) -> None:
    solid((128,), mode="L").save(tmp_path / "a_gray.png")
    rgba = Image.new("RGBA", (24, 24), (255, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 12, 24))
    rgba.save(tmp_path / "b_rgba.png")
    solid((0, 255, 255, 0), mode="CMYK").save(tmp_path / "c_cmyk.jpg", quality=95)
    palette = Image.new("P", (24, 24), 0)
    palette.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    palette.paste(1, (12, 0, 24, 24))
    palette.save(tmp_path / "d_palette.png", transparency=1)
    Image.fromarray(np.full((24, 24), 65535, dtype=np.uint16)).save(tmp_path / "e_white16.png")
    Image.fromarray(np.full((24, 24), 32896, dtype=np.uint16)).save(tmp_path / "f_mid16.png")
    solid((0,), mode="1").save(tmp_path / "g_bilevel.bmp")
    solid(GREEN).save(tmp_path / "h_green.webp", lossless=True)
    rgba.convert("LA").save(tmp_path / "i_la.png")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        source = folder(tmp_path)
    assert [f.name for f in source.files] == sorted(p.name for p in tmp_path.iterdir())
    assert source.skipped == []
    images = source.images()
    assert images.shape == (9, 3, 16, 16)
    assert images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    left, right, everywhere = (slice(None), slice(0, 6)), (slice(None), slice(10, 16)), (slice(None), slice(None))
    by_name = {f.stem: images[i : i + 1] for i, f in enumerate(source.files)}
    assert_close_colour(colour_at(by_name["a_gray"], *everywhere), (128, 128, 128))
    assert_close_colour(colour_at(by_name["b_rgba"], *left), RED)
    assert_close_colour(colour_at(by_name["b_rgba"], *right), (255, 255, 255))
    assert_close_colour(colour_at(by_name["c_cmyk"], *everywhere), RED, tol=30)
    assert_close_colour(colour_at(by_name["d_palette"], *left), BLUE)
    assert_close_colour(colour_at(by_name["d_palette"], *right), (255, 255, 255))
    assert_close_colour(colour_at(by_name["e_white16"], *everywhere), (255, 255, 255), tol=1)
    assert_close_colour(colour_at(by_name["f_mid16"], *everywhere), (128, 128, 128), tol=1)
    assert_close_colour(colour_at(by_name["g_bilevel"], *everywhere), (0, 0, 0), tol=1)
    assert_close_colour(colour_at(by_name["h_green"], *everywhere), GREEN, tol=1)
    assert_close_colour(colour_at(by_name["i_la"], *right), (255, 255, 255))


def test_grayscale_channels(tmp_path: Path) -> None:
    solid(RED).save(tmp_path / "red.png")
    solid((200,), mode="L").save(tmp_path / "gray.png")
    source = folder(tmp_path, channels=1)
    assert source.shape == (1, 16, 16)
    assert source.sample(4, gen()).shape == (4, 1, 16, 16)
    gray, red = source.images()
    assert abs(float((gray.mean() + 1) * 127.5) - 200) < 1
    assert abs(float((red.mean() + 1) * 127.5) - 0.299 * 255) < 2


def test_gray_image_becomes_equal_rgb_channels(tmp_path: Path) -> None:
    Image.fromarray(np.tile(np.arange(0, 240, 10, dtype=np.uint8), (24, 1))).save(tmp_path / "ramp.png")
    (image,) = folder(tmp_path).images()
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    assert image[0, :, 0].mean() < image[0, :, -1].mean()


@pytest.mark.parametrize(("orientation", "top", "bottom"), [(1, None, None), (6, RED, BLUE), (8, BLUE, RED)])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, top: Any, bottom: Any) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    halves(RED, BLUE, (64, 32)).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    images = folder(tmp_path).images()
    upper, lower = (slice(0, 6), slice(None)), (slice(10, 16), slice(None))
    if orientation == 1:
        assert_close_colour(colour_at(images, slice(None), slice(0, 6)), RED, tol=30)
        assert_close_colour(colour_at(images, slice(None), slice(10, 16)), BLUE, tol=30)
    else:
        assert_close_colour(colour_at(images, *upper), top, tol=30)
        assert_close_colour(colour_at(images, *lower), bottom, tol=30)


def test_non_square_image_is_centre_cropped(tmp_path: Path) -> None:
    for name, size in (("wide.png", (90, 30)), ("tall.png", (30, 90))):
        image = Image.new("RGB", size, RED)
        w, h = size
        image.paste(GREEN, (w // 3, 0, 2 * w // 3, h) if w > h else (0, h // 3, w, 2 * h // 3))
        image.save(tmp_path / name)
    images = folder(tmp_path).images()
    for i in range(2):
        assert_close_colour(colour_at(images[i : i + 1], slice(2, 14), slice(2, 14)), GREEN, tol=1)
        assert_close_colour(colour_at(images[i : i + 1], slice(None), slice(None)), GREEN, tol=5)


def test_large_jpeg_downscaled_with_draft_keeps_content(tmp_path: Path) -> None:
    halves(RED, BLUE, (800, 400)).save(tmp_path / "big.jpg", quality=95)
    images = folder(tmp_path).images()
    assert_close_colour(colour_at(images, slice(None), slice(0, 6)), RED, tol=30)
    assert_close_colour(colour_at(images, slice(None), slice(10, 16)), BLUE, tol=30)


def test_recursive_hidden_and_extension_case(tmp_path: Path) -> None:
    solid(RED).save(tmp_path / "top.PNG")
    (tmp_path / "a" / "b").mkdir(parents=True)
    solid(GREEN).save(tmp_path / "a" / "b" / "deep.JPEG")
    solid(BLUE).save(tmp_path / "a" / "mid.jpg")
    solid(BLUE).save(tmp_path / ".hidden.png")
    (tmp_path / ".cache").mkdir()
    solid(BLUE).save(tmp_path / ".cache" / "thumb.png")
    (tmp_path / "notes.txt").write_text("not an image")

    source = folder(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in source.files] == ["a/b/deep.JPEG", "a/mid.jpg", "top.PNG"]
    assert len(source) == 3
    flat = folder(tmp_path, recursive=False)
    assert [f.name for f in flat.files] == ["top.PNG"]


def test_max_images_takes_the_first_readable_files(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"broken")
    for name in ("b.png", "c.png", "d.png"):
        solid(RED).save(tmp_path / name)
    with pytest.warns(UnreadableImagesWarning):
        source = folder(tmp_path, max_images=2)
    assert [f.name for f in source.files] == ["b.png", "c.png"]
    assert source.pixels.shape == (2, 3, 16, 16)


def test_unreadable_files_are_skipped_with_one_warning(tmp_path: Path) -> None:
    solid(RED).save(tmp_path / "good.png")
    halves(RED, BLUE, (64, 64)).save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "corrupt.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "x.png").write_text("this is not a picture")
    (tmp_path / "empty.webp").write_bytes(b"")

    with pytest.warns(UnreadableImagesWarning) as record:
        source = folder(tmp_path)
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 3 of 5" in message
    for name in ("corrupt.jpg", "x.png", "empty.webp"):
        assert name in message
    assert str(tmp_path.resolve()) in message
    assert sorted(Path(p).name for p, _ in source.skipped) == ["corrupt.jpg", "empty.webp", "x.png"]
    assert all(reason for _, reason in source.skipped)
    assert [f.name for f in source.files] == ["good.png", "whole.jpg"]


def test_warning_names_at_most_ten_files(tmp_path: Path) -> None:
    solid(RED).save(tmp_path / "good.png")
    for i in range(13):
        (tmp_path / f"bad{i:02d}.jpg").write_text("nope")
    with pytest.warns(UnreadableImagesWarning) as record:
        source = folder(tmp_path)
    message = str(record[0].message)
    assert "skipped 13 of 14" in message
    assert "bad09.jpg" in message and "bad10.jpg" not in message
    assert "and 3 more" in message
    assert len(source.skipped) == 13


def test_folder_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(GankitError, match="does not exist") as info:
        folder(missing)
    assert str(missing) in str(info.value) and "--set data.path=" in str(info.value)

    file = tmp_path / "one.png"
    solid(RED).save(file)
    with pytest.raises(GankitError, match="is a file, not a folder") as info:
        folder(file)
    assert str(file) in str(info.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GankitError, match="no images found") as info:
        folder(empty)
    for text in (str(empty), ".png", ".jpg", ".jpeg", ".webp", ".bmp", "--set data.path="):
        assert text in str(info.value)

    others = tmp_path / "others"
    others.mkdir()
    (others / "clip.gif").write_bytes(b"GIF89a")
    with pytest.raises(GankitError, match=r"\.gif \(1\)"):
        folder(others)

    nested = tmp_path / "nested"
    (nested / "sub").mkdir(parents=True)
    solid(RED).save(nested / "sub" / "a.png")
    with pytest.raises(GankitError, match=r"1 images are in sub-folders.*data\.recursive=true"):
        folder(nested, recursive=False)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_text("text")
    with pytest.raises(GankitError, match="none of the 1 image files") as info:
        folder(broken)
    assert "a.jpg" in str(info.value)


def test_folder_params_are_validated(tmp_path: Path) -> None:
    for bad in ({"channels": 2}, {"resolution": 2}, {"max_images": 0}, {"colour": "rgb"}):
        with pytest.raises(ValueError):
            folder(tmp_path, **bad)
    with pytest.raises(ValueError):
        build("image-folder", {})


def test_sampling_and_hflip(tmp_path: Path) -> None:
    halves(RED, BLUE, (32, 32)).save(tmp_path / "a.png")
    solid(GREEN).save(tmp_path / "b.png")
    source = folder(tmp_path)
    assert is_data_source(source)
    assert source.shape == (3, 16, 16)
    batch = source.sample(32, gen())
    assert batch.shape == (32, 3, 16, 16) and batch.dtype == torch.float32
    assert torch.equal(batch, source.sample(32, gen()))
    halved = batch[batch[:, 1].mean(dim=(1, 2)) < 0]
    assert len(halved) > 0 and bool((halved[:, 0, :, :4] > 0.5).all())

    flipping = folder(tmp_path, hflip=True)
    batch = flipping.sample(200, gen())
    assert torch.equal(batch, flipping.sample(200, gen()))
    halved = batch[batch[:, 1].mean(dim=(1, 2)) < 0]
    left_red = (halved[:, 0, :, :4].mean(dim=(1, 2)) > 0.5).float().mean()
    assert 0.3 < left_red < 0.7
    assert torch.equal(flipping.images(), source.images())
