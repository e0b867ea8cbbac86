"""Prepared datasets: ``gankit data prepare``, the ``prepared`` data part, labels, sizes, memory and safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.data.prepared import PreparedImages, PreparedWriter
from gankit.errors import GankitError
from gankit.plugins import get_registry
from gankit.protocols import DataSource


def build(name: str, **params: Any) -> Any:
    return get_registry().get("data", name).build(params, seed=0)


def random_images(folder: Path, count: int, size: tuple[int, int] = (12, 16), seed: int = 0) -> list[np.ndarray]:
    """``count`` random RGB PNGs of ``size`` (height, width) named 000.png, 001.png, ...; returns their pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = []
    for i in range(count):
        array = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / f"{i:03d}.png")
        pixels.append(array)
    return pixels


def prepare(*args: str) -> int:
    return main(["data", "prepare", *args, "-q"])


def test_prepare_round_trips_pixels_exactly_across_shards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    originals = random_images(tmp_path / "photos", 7)
    out = tmp_path / "prepared"
    # 12x16 RGB is 576 bytes: a 1 MB shard holds them all, so force several shards through the Python API too
    assert prepare(str(tmp_path / "photos"), str(out), "--resolution", "12", "16") == 0
    assert "7 images of 3x12x16" in capsys.readouterr().out
    data = build("prepared", path=str(out))
    assert isinstance(data, DataSource) and data.shape == (3, 12, 16) and len(data) == 7
    expected = torch.from_numpy(np.stack(originals)).permute(0, 3, 1, 2)
    assert torch.equal(data.pixels_at(range(7)), expected)
    assert torch.equal(data.pixels_at([6, 0, 3]), expected[[6, 0, 3]])
    stored = np.load(out / "shard-00000.npy", allow_pickle=False)
    assert stored.dtype == np.uint8 and np.array_equal(stored, expected.numpy())
    assert PreparedImages(out).files() == [f"{i:03d}.png" for i in range(7)]


def test_writer_and_reader_agree_on_every_byte_in_many_shards(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (50, 1, 5, 7), dtype=np.uint8)
    with PreparedWriter(tmp_path / "set", (1, 5, 7), shard_bytes=35 * 8) as writer:
        for i, image in enumerate(images):
            writer.add(image, file=f"{i}.png")
        writer.commit(settings={})
    dataset = PreparedImages(tmp_path / "set")
    assert len(dataset.index["shards"]) == 7 and [s["count"] for s in dataset.index["shards"]][-1] == 2
    order = rng.permutation(50)
    assert np.array_equal(dataset.pixels(order).numpy(), images[order])
    assert np.array_equal(torch.cat(list(dataset.batches(16))).numpy(), images)
    assert dataset.verify() == []


def test_sampling_is_uniform_flips_and_follows_the_generator(tmp_path: Path) -> None:
    random_images(tmp_path / "photos", 4, size=(8, 8))
    assert prepare(str(tmp_path / "photos"), str(tmp_path / "out"), "-r", "8") == 0
    data = build("prepared", path=str(tmp_path / "out"), hflip=True)
    first = data.sample(64, torch.Generator().manual_seed(3))
    again = data.sample(64, torch.Generator().manual_seed(3))
    assert first.shape == (64, 3, 8, 8) and first.dtype == torch.float32 and torch.equal(first, again)
    assert first.min() >= -1 and first.max() <= 1
    stored = {tuple(x.flatten().tolist()) for x in data.pixels_at(range(4))}
    flipped = {tuple(x.flip(-1).flatten().tolist()) for x in data.pixels_at(range(4))}
    drawn = [tuple(((x + 1) * 127.5).round().to(torch.uint8).flatten().tolist()) for x in first]
    assert all(d in stored or d in flipped for d in drawn)
    assert any(d in flipped and d not in stored for d in drawn)


def test_unreadable_files_are_skipped_and_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "photos"
    random_images(photos, 3)
    (photos / "broken.png").write_bytes(b"not a png")
    (photos / "empty.jpg").write_bytes(b"")
    assert prepare(str(photos), str(tmp_path / "out"), "-r", "12", "16") == 0
    captured = capsys.readouterr()
    assert "skipped 2 of 5" in captured.err and "broken.png" in captured.err and "empty.jpg" in captured.err
    dataset = PreparedImages(tmp_path / "out")
    assert len(dataset) == 3 and dataset.index["skipped"] == 2
    assert sorted(Path(p).name for p, _ in dataset.skipped()) == ["broken.png", "empty.jpg"]

    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "a.png").write_text("text")
    assert prepare(str(only_bad), str(tmp_path / "none"), "-r", "8") == 1
    assert "none of the 1 image files" in capsys.readouterr().err and not (tmp_path / "none").exists()


def test_labels_from_sub_folders(tmp_path: Path) -> None:
    colours = {"cats": (255, 0, 0), "dogs": (0, 0, 255)}
    for name, colour in colours.items():
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(3 if name == "cats" else 1):
            Image.new("RGB", (10, 10), colour).save(tmp_path / "photos" / name / f"{i}.png")
    assert prepare(str(tmp_path / "photos"), str(tmp_path / "out"), "-r", "8", "--labels", "folders") == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        folder = build("image-folder", path=str(tmp_path / "photos"), resolution=8, labels="folders")
    prepared = build("prepared", path=str(tmp_path / "out"))
    for data in (folder, prepared):
        assert data.num_classes == 2 and data.class_names == ["cats", "dogs"]
        assert torch.allclose(data.label_frequencies(), torch.tensor([0.75, 0.25]))
        images, labels = data.sample_labelled(32, torch.Generator().manual_seed(0))
        assert labels.dtype == torch.int64 and set(labels.tolist()) == {0, 1}
        red = images[:, 0].mean(dim=(1, 2)) > 0
        assert torch.equal(red, labels == 0), "each image carries its own folder's class"
        same = data.sample(32, torch.Generator().manual_seed(0))
        assert torch.equal(same, images), "sample and sample_labelled draw the same batch"
    unlabelled = build("prepared", path=str(tmp_path / "out"), labels="none")
    assert unlabelled.num_classes == 0
    with pytest.raises(GankitError, match="no labels"):
        unlabelled.sample_labelled(2, torch.Generator())

    Image.new("RGB", (10, 10)).save(tmp_path / "photos" / "loose.png")
    with pytest.raises(GankitError, match=r"loose\.png.*no class folder"):
        build("image-folder", path=str(tmp_path / "photos"), resolution=8, labels="folders")


def test_non_square_crop_and_pad(tmp_path: Path) -> None:
    wide = Image.new("RGB", (40, 10), (0, 255, 0))  # 4:1, to be framed as 3:4 (height 6, width 8)
    wide.paste((255, 0, 0), (0, 0, 10, 10))
    wide.save(tmp_path / "wide.png")
    cropped = build("image-folder", path=str(tmp_path), resolution=[6, 8])
    padded = build("image-folder", path=str(tmp_path), resolution=[6, 8], fit="pad")
    assert cropped.shape == padded.shape == (3, 6, 8)
    crop, pad = cropped.pixels[0].int(), padded.pixels[0].int()
    assert (crop[1] > 200).all() and (crop[0] < 60).all(), "crop keeps the green centre, cuts the red end"
    assert (pad[:, 0].sum() == 0) and (pad[:, -1].sum() == 0), "pad adds black bars above and below"
    assert pad[0, 3, 0] > 150 and pad[1, 3, 4] > 150, "the whole image, red end included, is inside"
    with pytest.raises(ValueError):
        build("image-folder", path=str(tmp_path), resolution=[6, 8, 3])


def test_a_half_written_dataset_never_looks_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    random_images(tmp_path / "photos", 6)
    import gankit.data.images as images

    real = images.iter_decoded

    def dies_midway(*args: Any, **kwargs: Any) -> Any:
        for i, item in enumerate(real(*args, **kwargs)):
            if i == 3:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(images, "iter_decoded", dies_midway)
    assert prepare(str(tmp_path / "photos"), str(tmp_path / "out"), "-r", "8") == 130, "Ctrl-C"
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["photos"], "the temporary folder is removed"
    monkeypatch.setattr(images, "iter_decoded", real)

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.partial-{dead.pid}-0000"  # left by a prepare that was killed
    (stale / "shard-00000.npy").parent.mkdir()
    (stale / "shard-00000.npy").write_bytes(b"half")
    assert prepare(str(tmp_path / "photos"), str(tmp_path / "out"), "-r", "8") == 0
    assert not stale.exists(), "temporary folders of dead processes are removed"
    assert prepare(str(tmp_path / "photos"), str(tmp_path / "out"), "-r", "8") == 1, "no silent overwrite"
    assert prepare(str(tmp_path / "photos"), str(tmp_path / "out"), "-r", "4", "--overwrite") == 0
    assert PreparedImages(tmp_path / "out").shape == (3, 4, 4)

    shard = tmp_path / "out" / "shard-00000.npy"
    shard.write_bytes(shard.read_bytes()[:-5])
    with pytest.raises(GankitError, match="damaged"):
        build("prepared", path=str(tmp_path / "out"))
    (tmp_path / "out" / "dataset.json").unlink()
    with pytest.raises(GankitError, match="not a prepared dataset"):
        build("prepared", path=str(tmp_path / "out"))
    assert prepare(str(tmp_path / "photos"), str(tmp_path / "o2"), "-r", "4") == 0
    with pytest.raises(GankitError, match=r"holds 4x4 images.*--resolution 8 8"):
        build("prepared", path=str(tmp_path / "o2"), resolution=8)
    with pytest.raises(GankitError, match=r"holds 3-channel images.*--channels 1"):
        build("prepared", path=str(tmp_path / "o2"), channels=1)
    with pytest.raises(GankitError, match=r"has no labels.*--labels folders"):
        build("prepared", path=str(tmp_path / "o2"), labels="folders")
    assert build("prepared", path=str(tmp_path / "o2"), resolution=4, channels=3).shape == (3, 4, 4)


def test_info_describes_and_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    random_images(tmp_path / "photos", 2)
    assert prepare(str(tmp_path / "photos"), str(tmp_path / "out"), "-r", "8") == 0
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "out"), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "2 images of 3x8x8" in out and "verified" in out
    assert main(["data", "info", str(tmp_path / "out"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 2
    shard = tmp_path / "out" / "shard-00000.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert main(["data", "info", str(tmp_path / "out"), "--verify"]) == 1
    assert "shard-00000.npy" in capsys.readouterr().err


def test_image_folder_refuses_more_than_memory_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    random_images(tmp_path / "photos", 3, size=(8, 8))
    import gankit.resources as resources

    monkeypatch.setattr(resources, "available_host_memory", lambda: 100 * 2**20)
    with pytest.raises(GankitError) as info:
        build("image-folder", path=str(tmp_path / "photos"), resolution=4096)
    message = str(info.value)
    for text in ("3 images of 3x4096x4096", "48.0 MiB each", "144.0 MiB", "enough for 1", "gankit data prepare",
                 '"prepared"'):
        assert text in message, (text, message)
    assert len(build("image-folder", path=str(tmp_path / "photos"), resolution=4096, max_images=1)) == 1


READER = textwrap.dedent(
    """
    import json, resource, sys, torch
    from gankit.plugins import get_registry

    def rss():
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * resource.getpagesize()

    data = get_registry().get("data", "prepared").build({"path": sys.argv[1]})
    generator = torch.Generator().manual_seed(0)
    data.sample(256, generator)
    before = peak = rss()
    for _ in range(2):
        for start in range(0, len(data), 1024):
            data.pixels_at(range(start, min(start + 1024, len(data))))
            peak = max(peak, rss())
    for _ in range(80):
        data.sample(512, generator)
        peak = max(peak, rss())
    print(json.dumps({"growth": peak - before}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads resident memory from /proc")
def test_resident_memory_stays_flat_while_reading(tmp_path: Path) -> None:
    count, shape = 30_000, (3, 32, 32)  # 92 MB of pixels, read twice in order and 41,000 draws at random
    block = np.random.default_rng(0).integers(0, 256, (count, *shape), dtype=np.uint8)
    with PreparedWriter(tmp_path / "many", shape) as writer:
        writer.add_batch(block, files=[f"{i}.png" for i in range(count)])
        writer.commit(settings={})
    out = subprocess.run([sys.executable, "-c", READER, str(tmp_path / "many")], capture_output=True, text=True,
                         timeout=300, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    growth = json.loads(out.stdout)["growth"]
    assert growth < 40 * 2**20, f"resident memory grew by {growth / 2**20:.0f} MB while reading 92 MB of images"
