#!/usr/bin/env bash
# Issue 14's and issue 20's GPU checks in one go (about 8 minutes on an H200):
#   1. tiny_graphs.py: ring-best's step eager, compiled, and with CUDA graphs (run.compile = "reduce-overhead");
#   2. stylegan2_reference.py: gankit's StyleGAN2 step against NVlabs' reference at 256 px (its kernels are
#      built in the background while 1 runs);
#   3. the GAN part of the performance suite (run_gpu.sh), with the time left.
#
#   REFERENCE=.ref/stylegan2-ada-pytorch bash tests/benchmarks/run_gpu_modern.sh   # results in $OUT
#
# REFERENCE is a checkout of NVlabs/stylegan2-ada-pytorch (carried along, never part of gankit); without
# it step 2 is skipped. TOTAL (seconds, default 500) bounds the whole run.
set -uo pipefail
# shellcheck source=tests/benchmarks/_gpu_env.sh
source "$(dirname "$0")/_gpu_env.sh"
START=$SECONDS
TOTAL="${TOTAL:-500}"
REFERENCE="${REFERENCE:-}"
LOG="$OUT/modern.log"
left() { echo $((TOTAL - (SECONDS - START))); }

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || true
    "$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
} 2>&1 | tee "$LOG"

BUILD=""
if [ -n "$REFERENCE" ]; then
    export TORCH_EXTENSIONS_DIR="${TMPDIR:-/tmp}/gankit-ref-kernels" MAX_JOBS=6
    "$PY" tests/benchmarks/stylegan2_reference.py --reference "$REFERENCE" --build-only >"$OUT/build.log" 2>&1 &
    BUILD=$!
fi

echo "== tiny network: eager, compile, CUDA graphs" | tee -a "$LOG"
timeout 170 "$PY" tests/benchmarks/tiny_graphs.py --device cuda --out "$OUT/tiny-graphs.json" 2>&1 \
    | grep -v "^\s*warnings.warn" | tee -a "$LOG"

if [ -n "$BUILD" ]; then
    echo "== waiting for the reference's kernels" | tee -a "$LOG"
    wait "$BUILD"
    tail -n 3 "$OUT/build.log" | tee -a "$LOG"
    echo "== StyleGAN2: gankit against the reference" | tee -a "$LOG"
    timeout $(( $(left) - 90 > 60 ? $(left) - 90 : 60 )) "$PY" tests/benchmarks/stylegan2_reference.py \
        --reference "$REFERENCE" --out "$OUT/stylegan2-reference.json" 2>&1 | grep -v "warn" | tee -a "$LOG"
fi

echo "== GAN suite ($(left) s left)" | tee -a "$LOG"
if [ "$(left)" -gt 40 ]; then
    BENCH_TIMEOUT=$(( $(left) - 10 )) BENCH_SELECT="tests/benchmarks/test_bench_gan.py" \
        bash tests/benchmarks/run_gpu.sh >/dev/null 2>&1
    grep -E "passed|failed|ratio|error" "$OUT/bench-cuda.log" | tail -n 20 | tee -a "$LOG"
fi
echo "== done in $((SECONDS - START)) s" | tee -a "$LOG"
