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

OUT="${OUT:-${TMPDIR:-/tmp}/gankit-bench}"
mkdir -p "$OUT"
LOG="$OUT/bench-cuda.log"
PY="${PYTHON:-python3}"
ROOT="$(pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" -c "import pydantic, tomli_w" 2>/dev/null; then
    if ls .whl/*.whl >/dev/null 2>&1; then
        SITE="${TMPDIR:-/tmp}/gankit-bench-site"
        "$PY" - "$SITE" .whl/*.whl <<'EOF'
import sys, zipfile
site, wheels = sys.argv[1], sys.argv[2:]
for wheel in wheels:
    zipfile.ZipFile(wheel).extractall(site)
print(f"unpacked {len(wheels)} wheels into {site}")
EOF
        export PYTHONPATH="$SITE:$PYTHONPATH"
    else
        echo "pydantic is missing and there is no .whl/ folder of wheels to unpack" >&2
        exit 2
    fi
fi

export GANKIT_BENCH_DEVICE=cuda
export GANKIT_BENCH_OUT="$OUT/bench-cuda.json"
export GANKIT_DISABLE_PLUGINS=1
export PYTHONUNBUFFERED=1
export PYTHONDONTWRITEBYTECODE=1

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
