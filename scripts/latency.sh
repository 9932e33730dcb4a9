#!/usr/bin/env bash
# Batch-1 latency on this machine, tract (f32, int8) and onnxruntime (basic
# optimisation, one thread) on the same files, back to back in one run, and
# the 640x480 frame -> verdict time. Prints JSON and the ratios. Never gates CI.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-models/default}"
cargo build -q --release -p edge
tract_json=$(./target/release/edge bench --model "$dir")
ort_json=$(scripts/check_onnx.sh "$dir" --time | tail -1)
target/onnx-venv/bin/python - "$tract_json" "$ort_json" <<'PY'
import json, sys
t, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])["onnxruntime_us_per_image_batch1"]
print("| file | tract us/image | onnxruntime us/image | tract / onnxruntime |")
print("|---|---|---|---|")
for f, us in t["tract_us_per_image_batch1"].items():
    print(f"| {f} | {us:.1f} | {o[f]:.1f} | {us / o[f]:.2f} |")
tr = t["tract_us_per_image_batch1"]
for f, us in tr.items():
    if f != "classifier.onnx":
        print(f"tract {f} / tract f32: {us / tr['classifier.onnx']:.2f}")
print(f"640x480 frame -> verdict ({t['frame_model']}): {t['frame_640x480_to_verdict_us']:.0f} us")
PY
