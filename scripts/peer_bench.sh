#!/usr/bin/env bash
# The trainer's training steps against PyTorch on the same work, side by side
# in one run: the classifier step and the generator (inversion) step at batch
# 64, at 1 thread and at every core, alternating engines so that machine
# noise hits both. PyTorch comes from PyPI into a venv under target/ (nothing
# is installed system-wide). Benchmarks measure; no test asserts a time.
# Usage: scripts/peer_bench.sh [SECONDS_PER_MEASUREMENT] (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-3}"
venv=target/torch-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "torch==2.15.0" "numpy<2.4"
fi
cargo bench -q -p trainer --bench peer --no-run
out=$(mktemp)
for threads in 1 "$(nproc)"; do
  for round in 1 2; do
    # the trainer as it runs by default: its own CPU path on $threads cores,
    # candle's remaining ops (the generator's layers) on one, because
    # candle's pool busy-waits against our threads (measured: see README)
    TRAINER_THREADS=$threads CANDLE_NUM_THREADS=1 cargo bench -q -p trainer --bench peer -- "$secs" >>"$out"
    "$venv/bin/python" scripts/peer_train.py --threads "$threads" --seconds "$secs" >>"$out"
  done
done
python3 - "$out" <<'PY'
import json, sys, statistics, platform
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"machine: {cpu}; batch 64; best of 2 rounds, engines alternating")
print("| step | threads | trainer samples/s | PyTorch samples/s | trainer / PyTorch |")
print("|---|---|---|---|---|")
torch_name = next(r["engine"] for r in rows if r["engine"] != "trainer")
for step in ("classifier", "generator"):
    for threads in sorted({r["threads"] for r in rows}, key=int):
        pick = lambda e: max(r["samples_per_sec"] for r in rows
                             if r["step"] == step and r["threads"] == threads and (r["engine"] == "trainer") == (e == "trainer"))
        t, p = pick("trainer"), pick("torch")
        print(f"| {step} | {threads} | {t:,.0f} | {p:,.0f} | {t / p:.2f}x |")
print(f"(PyTorch: {torch_name})")
PY
rm -f "$out"
