#!/usr/bin/env bash
# The performance suite (issue 8) on a CUDA machine, in one go, in about 4 to 6 minutes.
#
#   bash tests/benchmarks/run_gpu.sh            # results in $OUT/bench-cuda.json and $OUT/bench-cuda.log
#
# Run from the repository root. Nothing is installed: the machine's python3 must have torch, pytest,
# pytest-benchmark, numpy, pillow, pluggy, rich, safetensors and scikit-learn. gankit is used from the
# working tree (PYTHONPATH). If pydantic (or tomli-w) is missing there, the wheels in .whl/ (carried
# along: carry=[".whl"]) are unpacked into a temporary folder and put on PYTHONPATH; no pip, no network.
set -uo pipefail

# shellcheck source=tests/benchmarks/_gpu_env.sh
source "$(dirname "$0")/_gpu_env.sh"
LOG="$OUT/bench-cuda.log"

export GANKIT_BENCH_DEVICE=cuda
export GANKIT_BENCH_OUT="$OUT/bench-cuda.json"

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || true
    "$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
} 2>&1 | tee "$LOG"

# 330 s for the suite: it writes its JSON after every result, so a run cut short still reports.
# BENCH_TIMEOUT (seconds) and BENCH_SELECT (pytest arguments) narrow the run when device time is short.
# shellcheck disable=SC2086
timeout "${BENCH_TIMEOUT:-330}" "$PY" -m pytest ${BENCH_SELECT:-tests/benchmarks} --benchmark-only -p no:randomly \
    -p no:cacheprovider -q \
    --benchmark-json="$OUT/pytest-benchmark-cuda.json" 2>&1 | tee -a "$LOG"
status=${PIPESTATUS[0]}
echo "pytest exit status: $status" | tee -a "$LOG"
exit "$status"
