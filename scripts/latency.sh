#!/usr/bin/env bash
# Batch-1 latency on this machine, one thread each: tract (`edge bench`, the
# plans the edge runs) and onnxruntime at its default optimisation level
# (ORT_ENABLE_ALL, what its users get) and at ORT_ENABLE_BASIC, on the same
# files, plus the 640x480 frame -> verdict time. The engines alternate for
# ROUNDS rounds (default 5) so that both see the same machine; each figure is
# the median over rounds, with the range. Prints a Markdown table (the
# README's is this output). Never gates CI.
# Usage: scripts/latency.sh [MODEL_DIR] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-models/default}"
rounds="${2:-5}"
# --bin keeps the workspace selected: the build `cargo test --release` made
cargo build -q --release --bin edge
scripts/check_onnx.sh "$dir" > /dev/null # makes the venv, checks the files
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq "$rounds"); do
  echo "round $r/$rounds" >&2
  ./target/release/edge bench --model "$dir" --iters 1000 > "$out/tract$r.json"
  target/onnx-venv/bin/python scripts/check_onnx.py "$dir" --time-only | tail -1 > "$out/ort$r.json"
done
target/onnx-venv/bin/python - "$dir" "$out" "$rounds" <<'PY'
import json, statistics, sys, platform
d, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
manifest = json.load(open(f"{d}/manifest.json"))
tr = [json.load(open(f"{out}/tract{r}.json")) for r in range(1, n + 1)]
on = [json.load(open(f"{out}/ort{r}.json")) for r in range(1, n + 1)]
def stat(xs):
    return statistics.median(xs), min(xs), max(xs)
def fmt(xs):
    m, lo, hi = stat(xs)
    return f"{m:.1f} [{lo:.1f}, {hi:.1f}]"
print(f"{platform.machine()}, one thread, {n} alternating rounds; median [min, max] over rounds, us per image, batch 1")
print()
print("| file | bytes | tract | onnxruntime default (ALL) | onnxruntime basic | tract / ort default | tract / ort basic | tract / tract f32 |")
print("|---|---|---|---|---|---|---|---|")
f32 = [t["tract_us_per_image_batch1"]["classifier.onnx"] for t in tr]
arch = platform.machine()
runs_here = next((t["file"] for t in manifest.get("targets", []) if t["arch"] == arch), manifest["default_model"])
for m in manifest["models"]:
    f = m["file"]
    t = [x["tract_us_per_image_batch1"][f] for x in tr]
    a = [x["onnxruntime_default_us"][f] for x in on]
    b = [x["onnxruntime_basic_us"][f] for x in on]
    # ratios per round (the engines ran back to back): median [min, max]
    def ratio(xs, ys):
        m, lo, hi = stat([x / y for x, y in zip(xs, ys)])
        return f"{m:.2f} [{lo:.2f}, {hi:.2f}]"
    notes = []
    if f == runs_here:
        notes.append(f"runs on {arch}")
    if f == manifest["default_model"]:
        notes.append("default")
    note = f" ({', '.join(notes)})" if notes else ""
    print(f"| `{f}`{note} | {m['bytes']:,} | {fmt(t)} | {fmt(a)} | {fmt(b)} | {ratio(t, a)} | {ratio(t, b)} | {ratio(t, f32)} |")
fr = [x["frame_640x480_to_verdict_us"] for x in tr]
print()
print(f"640x480 gray frame -> verdict ({tr[0]['frame_model']}, tract): {fmt(fr)} us")
PY
