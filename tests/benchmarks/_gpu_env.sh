# Sourced by the GPU benchmark scripts: OUT, PY, PYTHONPATH (the working tree, and the carried wheels in
# .whl/ when the machine's python3 lacks pydantic or tomli-w), quiet and unbuffered Python.
OUT="${OUT:-${TMPDIR:-/tmp}/gankit-bench}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
ROOT="$(pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" -c "import pydantic, tomli_w" 2>/dev/null; then
    if ls .whl/*.whl >/dev/null 2>&1; then
        SITE="${TMPDIR:-/tmp}/gankit-bench-site"
        "$PY" - "$SITE" .whl/*.whl <<'PYEOF'
import sys, zipfile
site, wheels = sys.argv[1], sys.argv[2:]
for wheel in wheels:
    zipfile.ZipFile(wheel).extractall(site)
print(f"unpacked {len(wheels)} wheels into {site}")
PYEOF
        export PYTHONPATH="$SITE:$PYTHONPATH"
    else
        echo "pydantic is missing and there is no .whl/ folder of wheels to unpack" >&2
        exit 2
    fi
fi

export GANKIT_DISABLE_PLUGINS=1
export PYTHONUNBUFFERED=1
export PYTHONDONTWRITEBYTECODE=1
