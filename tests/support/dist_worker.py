"""Trains a recipe in one of several processes and saves this rank's weights (for tests/test_distributed.py).

Usage: torchrun --nproc-per-node 2 tests/support/dist_worker.py RECIPE RUN_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from safetensors.torch import save_file

from gankit.recipe import load_recipe
from gankit.training import Trainer
from gankit.training.distributed import shutdown


def main() -> None:
    recipe_path, run_dir, out_dir = sys.argv[1:4]
    trainer = Trainer(load_recipe(recipe_path), run_dir, quiet=True)
    trainer.fit()
    rank = trainer.dist.rank
    tensors = {f"generator/{k}": v.detach().contiguous() for k, v in trainer.generator_module.named_parameters()}
    tensors.update({f"discriminator/{k}": v.detach().contiguous()
                    for k, v in trainer.discriminator_module.named_parameters()})
    info = {"rank": rank, "world_size": trainer.dist.world_size, "skips": trainer.counters.skips,
            "backend": trainer.dist.backend, "step": trainer.step}
    save_file(tensors, str(Path(out_dir) / f"rank{rank}.safetensors"), metadata={"info": json.dumps(info)})
    shutdown(trainer.dist, together=True)


if __name__ == "__main__":
    main()
