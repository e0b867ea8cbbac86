"""Downloading weights: checksums, atomic writes and clear failures, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from gankit.cli import main
from gankit.errors import GankitError
from gankit.style import weights

PAYLOAD = b"pretend these are VGG weights\n" * 1000


def sha8(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.endswith("/truncated-00000000.pth"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"only a part")
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server serving the files of a folder: (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/models/", folder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def serve(folder: Path, name: str, data: bytes) -> None:
    (folder / "models").mkdir(exist_ok=True)
    (folder / "models" / name).write_bytes(data)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_download_is_verified_and_written_whole(server: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = server
    name = f"tiny-{sha8(PAYLOAD)}.pth"
    serve(folder, name, PAYLOAD)
    dest = tmp_path / "cache"
    fetched = weights.fetch(name, dest, base=base, quiet=True)
    assert fetched.downloaded
    assert fetched.path == dest / name
    assert fetched.path.read_bytes() == PAYLOAD
    assert fetched.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert fetched.url == base + name
    assert leftovers(dest) == [name]
    again = weights.fetch(name, dest, base=base.rstrip("/"), quiet=True)
    assert not again.downloaded
    assert weights.fetch(name, dest, base=base, quiet=True, force=True).downloaded


def test_a_checksum_mismatch_writes_nothing(server: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = server
    serve(folder, "tiny-deadbeef.pth", PAYLOAD)
    dest = tmp_path / "cache"
    with pytest.raises(GankitError, match=f"checksum mismatch .*starts with {sha8(PAYLOAD)}.*says deadbeef"):
        weights.fetch("tiny-deadbeef.pth", dest, base=base, quiet=True)
    assert leftovers(dest) == []


def test_a_corrupt_local_copy_is_replaced(server: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = server
    name = f"tiny-{sha8(PAYLOAD)}.pth"
    serve(folder, name, PAYLOAD)
    dest = tmp_path / "cache"
    dest.mkdir()
    (dest / name).write_bytes(b"half a file")
    assert weights.fetch(name, dest, base=base, quiet=True).downloaded
    assert (dest / name).read_bytes() == PAYLOAD


def test_vgg19_download_checks_torchvision_s_hash(server: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = server
    serve(folder, "vgg19-dcbb9e9d.pth", b"not the published file")
    with pytest.raises(GankitError, match=r"checksum mismatch.*says dcbb9e9d"):
        weights.download("vgg19", tmp_path / "cache", base=base, quiet=True)
    assert leftovers(tmp_path / "cache") == []
    assert weights.expected_hash("vgg16-397923af.pth") == "397923af"
    assert weights.expected_hash("weights.pth") is None


def test_http_errors_truncation_and_offline_machines_are_clear(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    dest = tmp_path / "cache"
    with pytest.raises(GankitError, match="HTTP 404"):
        weights.fetch("absent-00000000.pth", dest, base=base, quiet=True)
    with pytest.raises(GankitError, match="connection"):
        weights.fetch("truncated-00000000.pth", dest, base=base, quiet=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(GankitError, match=r"cannot download .*offline.*--url-base"):
        weights.fetch("vgg19-dcbb9e9d.pth", dest, base=f"http://127.0.0.1:{port}/", quiet=True, timeout=5)
    assert leftovers(dest) == []


def test_the_url_base_comes_from_the_environment(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, folder = server
    name = f"tiny-{sha8(PAYLOAD)}.pth"
    serve(folder, name, PAYLOAD)
    assert weights.url_base() == weights.DEFAULT_URL_BASE or weights.URL_ENV in __import__("os").environ
    monkeypatch.setenv(weights.URL_ENV, base)
    assert weights.url_base() == base
    assert weights.fetch(name, tmp_path, quiet=True).downloaded


def test_gankit_weights_downloads_into_the_torch_hub_cache(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base, folder = server
    name = f"vgg19-{sha8(PAYLOAD)}.pth"
    serve(folder, name, PAYLOAD)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setitem(weights.TORCHVISION_FILES, "vgg19", name)
    assert main(["weights", "vgg19", "--url-base", base, "--quiet"]) == 0
    target = tmp_path / "torch" / "hub" / "checkpoints" / name
    assert target.read_bytes() == PAYLOAD
    out = capsys.readouterr().out
    assert f"downloaded {target}" in out
    assert '[encoder] weights = "hub"' in out
    assert weights.find_in_hub("vgg19") == target
    assert main(["weights", "vgg19", "--url-base", base, "--quiet"]) == 0
    assert "already there (checksum verified)" in capsys.readouterr().out


def test_gankit_weights_reports_a_mismatch_without_a_traceback(
    server: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, folder = server
    serve(folder, "vgg16-397923af.pth", PAYLOAD)
    dest = tmp_path / "mine"
    assert main(["weights", "vgg16", "--dest", str(dest), "--url-base", base, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: checksum mismatch")
    assert "Traceback" not in err
    assert leftovers(dest) == []


def test_gankit_weights_converts_a_state_dict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from gankit.style.vgg import VGGEncoder

    encoder = VGGEncoder("vgg16", layers=["relu1_1"])
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.fill_(0.5)
    source = tmp_path / "tv.pth"
    weight, bias = encoder._parameters_of("conv1_1")
    torch.save({"features.0.weight": weight.clone(), "features.0.bias": bias.clone()}, source)
    out = tmp_path / "converted.safetensors"
    assert main(["weights", "vgg16", "--convert", str(source), "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert set(weights.read_tensors(out)) == {"conv1_1.weight", "conv1_1.bias"}
    assert main(["weights", "vgg16", "--convert", str(source), "-o", str(tmp_path / "x.pth")]) == 1
    assert "must end in .safetensors" in capsys.readouterr().err
    assert main(["weights", "vgg16", "--convert", str(tmp_path / "none.pth")]) == 1
    assert "no such weights file" in capsys.readouterr().err
