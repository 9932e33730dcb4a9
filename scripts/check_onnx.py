#!/usr/bin/env python3
"""Independent check of the exported ONNX files (CI runs it; see check_onnx.sh).

For each model file listed in MODEL_DIR/manifest.json:
  - onnx.checker.check_model(full_check=True) must pass;
  - the sha256 in the manifest must match the file;
  - onnxruntime at ORT_ENABLE_BASIC (its fused int8 kernels at higher levels
    drift on x86, see ../shared/STACK-NOTES.md) must reproduce the logits that
    tract produced at export (golden.json: the f32 file, the shipped QDQ int8
    file, and each other int8 form's own logits under `other_logits`; a
    golden file from before those holds only the QDQ file's, which the other
    forms then share) within the tolerances below, and give the same arg-max. One exception:
    on x86 CPUs with AVX2 but neither AVX-VNNI nor AVX-512 (e.g. AMD EPYC
    before Zen 4), onnxruntime's u8 x s8 kernels sum pairs of products in
    int16 with VPMADDUBSW, which saturates (onnxruntime issues #16105,
    #6004; PR #24220 adds a debug checker for it): its QLinearConv results
    are not exact there (measured 2026-12-03: 10.4 logits apart from tract
    on the QLinear file, the same arg-max on every input). On such a CPU the
    QLinear file is held to the arg-max only, and the difference is printed.
Then, with --time, per-image latency at batch 1 of onnxruntime on the same
files, one thread, at its default optimisation level (ORT_ENABLE_ALL, what a
user of onnxruntime gets) and at ORT_ENABLE_BASIC, printed as one JSON line
(scripts/latency.sh puts it next to tract's). --time-only skips the checks.
"""
import argparse
import hashlib
import json
import platform
import sys
import time

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort

# Same graph, other engine: f32 sums in another order, ~1e-5 apart.
F32_TOL = 1e-3
# int8: one rounding flip in a QuantizeLinear (the integer and QLinear forms)
# moves a logit by < 0.1; the weight-only QDQ file differs like f32.
INT8_TOL = 0.5
MEAN, STD = 0.1307, 0.3081


def output_quant_step(model, output_name):
    """The scale of the DequantizeLinear that writes the output, if any."""
    inits = {i.name: i for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    name = output_name
    # through shape-only ops (the QLinear file ends DequantizeLinear -> Flatten)
    while name in producer and producer[name].op_type in ("Flatten", "Reshape", "Squeeze"):
        name = producer[name].input[0]
    node = producer.get(name)
    if node is not None and node.op_type == "DequantizeLinear" and node.input[1] in inits:
        return float(np.abs(onnx.numpy_helper.to_array(inits[node.input[1]])).max())
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--time", action="store_true", help="also time batch-1 inference")
    ap.add_argument("--time-only", action="store_true", help="time batch-1 inference, skip the checks")
    args = ap.parse_args()
    manifest = json.load(open(f"{args.model_dir}/manifest.json"))
    golden = json.load(open(f"{args.model_dir}/golden.json"))
    x = np.stack(
        [
            ((np.frombuffer(bytes.fromhex(c["pixels_hex"]), dtype=np.uint8).astype(np.float32) / 255.0 - MEAN) / STD)
            .reshape(1, 28, 28)
            for c in golden["cases"]
        ]
    ).astype(np.float32)
    timings = {"default": {}, "basic": {}}
    for m in manifest["models"]:
        path = f"{args.model_dir}/{m['file']}"
        if not args.time_only:
            check(path, m, golden, x)
        if args.time or args.time_only:
            for level, opt in (("default", ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
                               ("basic", ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)):
                timings[level][m["file"]] = time_batch1(path, m, x, opt)
    if args.time or args.time_only:
        print(json.dumps({"onnxruntime_default_us": timings["default"], "onnxruntime_basic_us": timings["basic"]}))
    return 0


def session(path, level):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def exact_u8s8_kernels():
    """Whether onnxruntime's u8 x s8 integer kernels are exact on this CPU
    (see the module docstring): always off x86, and on x86 with AVX-VNNI or
    AVX-512 BW."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return True
    try:
        flags = set()
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
    except OSError:
        return True
    return bool(flags & {"avx512_vnni", "avx_vnni", "avx512bw"})


def check(path, m, golden, x):
    """onnx.checker, the manifest's sha256, and onnxruntime (basic) against
    the golden tract logits."""
    data = open(path, "rb").read()
    assert hashlib.sha256(data).hexdigest() == m["sha256"], f"{path}: sha256 differs from the manifest"
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    sess = session(path, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
    z = sess.run([m["output_name"]], {m["input_name"]: x})[0]
    key, tol = ("int8_logits", INT8_TOL) if m["precision"] == "int8" else ("f32_logits", F32_TOL)
    step = output_quant_step(model, m["output_name"])
    if step is not None:
        # quantised logits (QLinear) sit up to a step or two from the QDQ
        # file's float logits, which golden files from before `other_logits`
        # hold for every int8 form (kept for those; against its own logits
        # the QLinear file differs by 0 on the machines measured)
        tol = max(tol, 2.0 * step)
    if all(m["file"] in c.get("other_logits", {}) for c in golden["cases"]):
        # the integer and QLinear forms: their own tract logits (their
        # activations are quantised, the default int8 file's are not)
        key = f"other_logits[{m['file']}]"
        want = np.array([c["other_logits"][m["file"]] for c in golden["cases"]], dtype=np.float32)
    else:
        want = np.array([c[key] for c in golden["cases"]], dtype=np.float32)
    err = float(np.abs(z - want).max())
    assert (z.argmax(1) == want.argmax(1)).all(), f"{path}: arg-max differs from tract"
    saturating = any(n.op_type == "QLinearConv" for n in model.graph.node) and not exact_u8s8_kernels()
    if saturating:
        print(f"{m['file']}: onnx.checker ok, onnxruntime (basic) gives tract's arg-max on all {len(x)} inputs; "
              f"logits not compared: max |diff| {err:.2f} here, where onnxruntime's AVX2 u8s8 kernels saturate (no AVX-VNNI/AVX-512 on this CPU)")
        return
    assert err < tol, f"{path}: onnxruntime differs from tract by {err} (tolerance {tol})"
    print(f"{m['file']}: onnx.checker ok, onnxruntime (basic) vs the golden tract {key} max |diff| {err:.2e} over {len(x)} inputs")


def time_batch1(path, m, x, level):
    """Median over 5 rounds of the mean time per batch-1 call, microseconds."""
    sess = session(path, level)
    feed = [{m["input_name"]: x[i % len(x)][None]} for i in range(len(x))]
    for i in range(200):
        sess.run(None, feed[i % len(feed)])
    rounds = []
    for _ in range(5):
        n, t0 = 1000, time.perf_counter()
        for i in range(n):
            sess.run(None, feed[i % len(feed)])
        rounds.append((time.perf_counter() - t0) / n * 1e6)
    return sorted(rounds)[2]

if __name__ == "__main__":
    sys.exit(main())
