"""Videos: latent walks from gankit sample (GIF, MP4), the writer itself, and a run's sample grids over time."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.errors import GankitError
from gankit.testing import tiny_recipe, train_for
from gankit.training.generate import slerp, walk_latents
from gankit.video import frame_duration_ms, same_size, timelapse, write_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    folder = tmp_path_factory.mktemp("video") / "run"
    train_for(tiny_recipe("images", run={"checkpoint_every": 6}), steps=6, out=folder)
    return folder


@pytest.fixture(scope="module")
def points_run(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    """A run on 2-D points: every frame of a walk differs (an untrained image generator barely moves)."""
    folder = tmp_path_factory.mktemp("video") / "points"
    train_for(tiny_recipe("points", run={"checkpoint_every": 2}), steps=2, out=folder)
    return folder


def frames_of(path: Path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        out = []
        for index in range(gif.n_frames):
            gif.seek(index)
            out.append(np.asarray(gif.convert("RGB")))
        return out


def test_sample_video_is_a_gif_of_the_requested_frames(points_run: Path, tmp_path: Path) -> None:
    video = tmp_path / "walk.gif"
    assert main(["sample", str(points_run), "--interpolate", "--video", str(video), "--seconds", "1.5", "--fps",
                 "10", "-n", "64"]) == 0
    frames = frames_of(video)
    assert len(frames) == 15
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(frames))
    with Image.open(video) as gif:
        assert gif.info["duration"] == 100 and gif.info["loop"] == 0
        assert gif.size == (256, 256)  # a scatter of the 64 points of each frame
    assert not (tmp_path / "samples.png").exists()  # --video alone writes no PNG


def test_an_image_walk_video_has_the_tiles_asked_for(run: Path, tmp_path: Path) -> None:
    video = tmp_path / "walk.gif"
    assert main(["sample", str(run), "--video", str(video), "--seconds", "1", "--fps", "5", "-n", "4",
                 "-o", str(tmp_path / "grid.png")]) == 0
    with Image.open(video) as gif:
        assert gif.size == (22, 22)  # 4 tiles of 8x8 in a 2x2 grid
    assert (tmp_path / "grid.png").is_file()


def test_identical_frames_in_a_row_keep_their_time_in_a_gif(tmp_path: Path) -> None:
    still, moved = np.zeros((4, 4, 1), np.uint8), np.full((4, 4, 1), 200, np.uint8)
    path = write_video([still, still, still, moved], tmp_path / "a.gif", fps=10)
    with Image.open(path) as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    assert durations == [300, 100]


def test_the_walk_is_closed_so_the_video_loops_without_a_jump() -> None:
    latents = walk_latents(4, 12, paths=3, keys=3, seed=1)
    with pytest.raises(GankitError, match="3 key latents"):
        walk_latents(4, 12, keys=2)
    assert latents.shape == (12, 3, 4)
    step = (latents[1:] - latents[:-1]).norm(dim=-1)
    closing = (latents[0] - latents[-1]).norm(dim=-1)
    assert torch.all(closing <= 2 * step.max(dim=0).values)
    keys = torch.randn(3, 3, 4, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(latents[0], keys[0]) and torch.allclose(latents[4], keys[1])
    assert torch.allclose(latents[2], slerp(keys[0], keys[1], torch.tensor(0.5)))


def test_sample_video_as_mp4(run: Path, tmp_path: Path) -> None:
    import imageio_ffmpeg

    video = tmp_path / "walk.mp4"
    assert main(["sample", str(run), "--video", str(video), "--seconds", "1", "--fps", "12", "-n", "9"]) == 0
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(video))
    assert frames == 12 and seconds == pytest.approx(1.0, abs=0.1)


def test_video_mistakes_are_caught_before_any_work(run: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", str(run), "--video", str(tmp_path / "walk.avi")]) == 1
    assert "gankit writes videos as .gif or .mp4" in capsys.readouterr().err
    assert main(["sample", str(run), "--video", str(tmp_path / "w.gif"), "--seconds", "0.05", "--fps", "10"]) == 1
    assert "fewer than 2 frames" in capsys.readouterr().err
    assert not (tmp_path / "w.gif").exists()


def test_write_video_checks_its_frames(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match="at least one frame"):
        write_video([], tmp_path / "a.gif")
    with pytest.raises(GankitError, match="different sizes"):
        write_video([np.zeros((4, 4, 3), np.uint8), np.zeros((6, 4, 3), np.uint8)], tmp_path / "a.gif")
    with pytest.raises(GankitError, match="uint8 array"):
        write_video([np.zeros((4, 4, 3), np.float32)], tmp_path / "a.gif")
    assert frame_duration_ms(24) == 40 and frame_duration_ms(10) == 100 and frame_duration_ms(1000) == 20


def test_an_odd_sized_mp4_is_padded(tmp_path: Path) -> None:
    import imageio_ffmpeg

    frames = [np.full((5, 7, 1), 40 * i, np.uint8) for i in range(5)]
    path = write_video(frames, tmp_path / "odd.mp4", fps=5)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert meta["size"] == (8, 6)


def test_timelapse_of_growing_grids_shows_them_at_the_largest_size(tmp_path: Path) -> None:
    grids = []
    for step, side in ((0, 10), (100, 20), (200, 40)):
        path = tmp_path / f"step-{step:08d}.png"
        Image.fromarray(np.full((side, side), step // 2 + 20, np.uint8)).save(path)
        grids.append((step, path))
    video = timelapse(grids, tmp_path / "growth.gif", fps=2)
    frames = frames_of(video)
    assert len(frames) == 3
    assert {f.shape for f in frames} == {(54, 40, 3)}  # a 14-pixel caption band above 40x40
    assert [int(f[-1, -1, 0]) for f in frames] == [20, 70, 120]
    assert same_size([np.zeros((2, 2, 1), np.uint8), np.zeros((4, 4, 3), np.uint8)])[0].shape == (4, 4, 3)
