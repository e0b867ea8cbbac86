"""Stylizing frame sequences with the optimisation loop: previous-output starts, flicker, videos and bad frames."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.errors import GankitError
from gankit.style import stylize
from gankit.style.video import flicker, open_frames, stylize_frames

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: The offline recipe, small; Adam with a tiny step barely moves the start image, which makes starts visible.
STILL = ["run.size=32", "run.multi_scale=1", "run.optimizer=adam", "run.lr=1e-9", "run.steps=1",
         "encoder.levels=2", "encoder.channels=8",
         "losses.1.layers=[\"relu1_2\", \"relu2_2\"]"]


def _frame(shift: int) -> Image.Image:
    y, x = torch.meshgrid(torch.arange(24.0), torch.arange(32.0), indexing="ij")
    stripes = (torch.sin((x + shift) / 2.0) > 0).float()
    array = torch.stack([stripes, 0.3 + 0.4 * (y / 24), 1 - stripes], dim=-1).mul(255).byte().numpy()
    return Image.fromarray(array)


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        _frame(3 * i).save(folder / f"frame-{i:02d}.png")
    (folder / ".hidden.png").write_bytes(b"ignored")
    (folder / "notes.txt").write_text("ignored")
    return folder


@pytest.fixture
def style(tmp_path: Path) -> Path:
    path = tmp_path / "style.png"
    Image.effect_noise((32, 32), 60).convert("RGB").save(path)
    return path


def test_each_frame_starts_from_the_previous_result(frames: Path, style: Path, tmp_path: Path) -> None:
    steady = stylize_frames(frames, tmp_path / "steady", style=style, recipe="style-transfer-offline",
                            overrides=STILL, quiet=True)
    fresh = stylize_frames(frames, tmp_path / "fresh", style=style, recipe="style-transfer-offline",
                           overrides=STILL, temporal=False, quiet=True)
    assert steady.frames == fresh.frames == 4
    assert [p.name for p in steady.paths] == [f"frame-{i:02d}.png" for i in range(4)]
    # Started from the first result, the later frames stay where it was; started afresh, they follow the input.
    assert steady.flicker.output < 0.01 * fresh.flicker.output
    assert fresh.flicker.ratio == pytest.approx(1.0, abs=0.05)
    assert steady.flicker.content == pytest.approx(fresh.flicker.content)
    assert steady.flicker.pairs == 3


def test_stylize_starts_from_a_given_image() -> None:
    content = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    start = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    result = stylize(content, content, "style-transfer-offline", overrides=[*STILL, "run.size=16"], start=start,
                     quiet=True)
    assert torch.allclose(result.image, start, atol=1e-4)


def test_flicker_compares_output_changes_with_input_changes() -> None:
    still = [torch.full((1, 3, 4, 4), 0.5)] * 3
    moving = [torch.full((1, 3, 4, 4), v) for v in (0.1, 0.3, 0.5)]
    measured = flicker(moving, still)
    assert measured.output == pytest.approx(0.2) and measured.content == 0 and measured.pairs == 2
    assert flicker(moving, moving).ratio == pytest.approx(1.0)


def test_cli_stylizes_frames_and_reports_flicker(frames: Path, style: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = ["stylize", "--style", str(style), "--frames-in", str(frames), "-o", str(out), "--weights", "random",
            "--size", "24", "--steps", "2", "--multi-scale", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert re.search(r"wrote 4 frames to .*out/ in [\d.]+ s \(\d+ ms per frame\)", printed)
    assert "flicker: stylized frames change by" in printed
    with Image.open(out / "frame-03.png") as image:
        assert image.size == (24, 18)


def test_an_unreadable_frame_is_named_before_any_work(frames: Path, style: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    (frames / "frame-02.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out"
    assert main(["stylize", "--style", str(style), "--frames-in", str(frames), "-o", str(out), "--weights",
                 "random", "--size", "24", "--steps", "1"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"error: frame .*frame-02.png: (not an image|cannot read)", err), err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "no such folder or video file"),
        (lambda p: p, "no frames in the folder"),
        (lambda p: p / "notes.txt", "not a folder of frames nor a video file"),
    ],
)
def test_frame_folder_mistakes(make: object, message: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(GankitError, match=message):
        open_frames(make(tmp_path))  # type: ignore[operator]


def test_frames_to_and_from_a_video_file(frames: Path, style: Path, tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg", reason="the video extra (gankit[video]) is not installed")
    clip = tmp_path / "clip.mp4"
    result = stylize_frames(frames, clip, style=style, recipe="style-transfer-offline", overrides=STILL, quiet=True)
    assert result.paths == [clip] and clip.stat().st_size > 0
    source = open_frames(clip)
    assert len(source) == 4
    first = next(iter(source))
    assert first.shape == (1, 3, 24, 32)
    again = stylize_frames(clip, tmp_path / "from-video", style=style, recipe="style-transfer-offline",
                           overrides=STILL, quiet=True)
    assert [p.name for p in again.paths] == [f"frame-{i:05d}.png" for i in range(4)]
    assert not list(tmp_path.glob(".*partial*"))


def test_frames_go_to_a_folder_or_a_video_not_an_image(frames: Path, style: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stylize", "--style", str(style), "--frames-in", str(frames), "-o", str(tmp_path / "out.png"),
                 "--weights", "random", "--size", "24", "--steps", "1"]) == 1
    assert "names an image file; stylized frames go into a folder" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()
