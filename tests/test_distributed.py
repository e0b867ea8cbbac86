"""Several training processes with torch.distributed (gloo on this CPU machine)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from support.recipes import TINY_DIGITS_PARTS

from gankit.checkpoint import latest_checkpoint, load_checkpoint

WORKER = Path(__file__).parent / "support" / "dist_worker.py"

RECIPE = """
[run]
seed = 5
steps = 8
batch_size = 16
log_every = 2
sample_every = 4
samples = 16
checkpoint_every = 4
dist_timeout = 60
""" + TINY_DIGITS_PARTS + """[balance]
type = "discriminator-skip"
threshold = 1.2
[[regularizers]]
type = "r1"
every = 2
[[tricks]]
type = "ema"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(free_port()), *args]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("dist")
    recipe = base / "recipe.toml"
    recipe.write_text(RECIPE)
    out = torchrun(str(WORKER), str(recipe), str(base / "run"), str(base), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return base


def test_two_processes_end_with_identical_parameters(two_process_run: Path) -> None:
    rank0 = load_file(str(two_process_run / "rank0.safetensors"))
    rank1 = load_file(str(two_process_run / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    infos = []
    for rank in (0, 1):
        with safe_open(str(two_process_run / f"rank{rank}.safetensors"), framework="pt") as handle:
            infos.append(json.loads(handle.metadata()["info"]))
    assert [i["world_size"] for i in infos] == [2, 2]
    assert infos[0]["backend"] == "gloo"
    assert infos[0]["skips"] == infos[1]["skips"], "balance decisions must agree on every rank"
    assert infos[0]["step"] == infos[1]["step"] == 8


def test_rank_zero_alone_writes_and_records_every_rank(two_process_run: Path) -> None:
    run = two_process_run / "run"
    ckpt = load_checkpoint(latest_checkpoint(run))
    assert ckpt.state["world_size"] == 2
    assert {"rng.0/data", "rng.1/data"} <= ckpt.tensors.keys()
    assert not torch.equal(ckpt.tensors["rng.0/data"], ckpt.tensors["rng.1/data"]), "each rank its own data stream"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "d_loss" in r]
    assert [r["step"] for r in logged] == [2, 4, 6, 8], "exactly one process writes metrics"
    assert all(r["world_size"] == 2 for r in logged)
    assert len(list((run / "samples").glob("*.png"))) == 3


def test_two_process_checkpoint_resumes_in_one(two_process_run: Path) -> None:
    run = two_process_run / "run"
    out = subprocess.run(
        [sys.executable, "-m", "gankit", "train", "--resume", str(run), "--steps", "10", "-q"],
        capture_output=True, text=True, timeout=240,
    )
    assert out.returncode == 0, out.stderr
    assert "resuming a checkpoint of 2 process(es) on 1" in out.stderr
    ckpt = load_checkpoint(latest_checkpoint(run))
    assert ckpt.state["step"] == 10 and ckpt.state["world_size"] == 1


def test_cli_under_torchrun_reports_effective_batch(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.replace("steps = 8", "steps = 2"))
    out = torchrun("-m", "gankit", "train", str(recipe), "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 processes (gloo): effective batch size 32 (16 per process)" in out.stderr
    assert out.stdout.count("done: 2 steps") == 1, "only rank 0 talks"


def test_dead_rank_makes_the_other_exit_with_a_clear_error(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.replace("steps = 8", "steps = 1000000").replace("dist_timeout = 60",
                                                                            "dist_timeout = 20"))
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=str(rank), LOCAL_RANK=str(rank),
                   WORLD_SIZE="2", LOCAL_WORLD_SIZE="2", OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "gankit", "train", str(recipe), "--out", str(tmp_path / "run"),
             "--set", "run.log_every=1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        ))
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.is_file() and metrics.read_text().count("\n") >= 3):
        time.sleep(0.2)
    assert metrics.is_file(), procs[0].communicate(timeout=5)
    procs[1].send_signal(signal.SIGKILL)
    started = time.time()
    try:
        _, err = procs[0].communicate(timeout=90)
    finally:
        for proc in procs:
            proc.kill()
    assert time.time() - started < 90
    assert procs[0].returncode == 4, err[-2000:]
    assert "another training process failed or stopped answering" in err
    assert "Traceback" not in err


def test_prepared_data_shards_are_disjoint_across_two_processes(tmp_path: Path) -> None:
    import numpy as np

    from gankit.data.prepared import PreparedWriter

    count = 37
    images = np.zeros((count, 3, 4, 4), dtype=np.uint8)
    images[:, 0] = (np.arange(count) % 256)[:, None, None]
    images[:, 1] = (np.arange(count) // 256)[:, None, None]
    with PreparedWriter(tmp_path / "numbers", (3, 4, 4), shard_bytes=10 * 48) as writer:
        writer.add_batch(images, files=[f"{i}.png" for i in range(count)])
        writer.commit(settings={})
    out = torchrun(str(Path(__file__).parent / "support" / "shard_worker.py"), str(tmp_path / "numbers"),
                   str(tmp_path / "shares.json"))
    assert out.returncode == 0, out.stderr[-3000:]
    first, second = json.loads((tmp_path / "shares.json").read_text())
    assert (first["length"], second["length"]) == (19, 18)
    assert not set(first["share"]) & set(second["share"]), "no image belongs to both processes"
    assert sorted(first["share"] + second["share"]) == list(range(count)), "together they hold every image once"
    for report in (first, second):
        assert set(report["drawn"]) <= set(report["share"]), "a process draws only from its own share"
