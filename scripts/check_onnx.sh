#!/usr/bin/env bash
# Checks the shipped ONNX files with onnx.checker and onnxruntime (from PyPI,
# in a venv under target/ so nothing is installed system-wide).
# Usage: scripts/check_onnx.sh [MODEL_DIR] [--time]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-models/default}"
shift || true
venv=target/onnx-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "onnx==1.17.0" "onnxruntime==1.20.1" "numpy<2.3"
fi
"$venv/bin/python" scripts/check_onnx.py "$dir" "$@"
