"""Opens a prepared dataset in one of several gloo processes, keeps this rank's shard and reports what it reads.

Usage: torchrun --nproc-per-node 2 tests/support/shard_worker.py DATASET OUT_JSON

Every image of the dataset carries its own number in its pixels (channel 0:
number % 256, channel 1: number // 256), so the numbers a rank reads say
which images its share holds. Rank 0 writes every rank's numbers as JSON.
"""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist

from gankit.plugins import get_registry


def numbers(pixels: torch.Tensor) -> list[int]:
    return (pixels[:, 0, 0, 0].long() + 256 * pixels[:, 1, 0, 0].long()).tolist()


def main() -> None:
    dataset, out = sys.argv[1:3]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    data = get_registry().get("data", "prepared").build({"path": dataset})
    data.shard(rank, world)
    share = numbers(data.pixels_at(range(len(data))))
    drawn = ((data.sample(200, torch.Generator().manual_seed(rank)) + 1) * 127.5).round().to(torch.uint8)
    report = {"rank": rank, "length": len(data), "share": share, "drawn": sorted(set(numbers(drawn)))}
    gathered: list[object] = [None] * world
    dist.all_gather_object(gathered, report)
    if rank == 0:
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(gathered, handle)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
