#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (fuzz/fuzz_targets), from the project's
own real files where they are small (the shipped model's ONNX files and
manifest, the wire protocol's golden frames, the presets, PNG screenshots,
CIFAR-10 JPEGs) and generated in each format's official layout where the
real ones are large or absent here (IDX cut from MNIST, gzipped too;
CIFAR-10 binary records; SVHN level-5 MAT-files, compressed and not).

usage: scripts/fuzz_seeds.py OUT_DIR   (one folder per target)
"""
import gzip
import json
import os
import shutil
import struct
import sys
import zlib

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = sys.argv[1]


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def copy(target, path):
    if os.path.isfile(path):
        put(target, os.path.basename(path), open(path, "rb").read())


def idx(dims, data, code=0x08):
    return struct.pack(">HBB", 0, code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


# IDX: a few real MNIST digits and labels when the data is there, else a synthetic stroke
mnist = os.path.join(root, "data", "mnist")
imgs = os.path.join(mnist, "t10k-images-idx3-ubyte")
labs = os.path.join(mnist, "t10k-labels-idx1-ubyte")
if os.path.isfile(imgs) and os.path.isfile(labs):
    raw = open(imgs, "rb").read()[16 : 16 + 3 * 784]
    lab = open(labs, "rb").read()[8:11]
else:
    raw = bytes((255 if 10 <= i % 28 <= 14 else 0) for i in range(3 * 784))
    lab = bytes([1, 1, 1])
put("idx", "images3.idx", idx([3, 28, 28], raw))
put("idx", "labels3.idx", idx([3], lab))
put("idx", "images3.idx.gz", gzip.compress(idx([3, 28, 28], raw), mtime=0))
put("idx", "labels3.idx.gz", gzip.compress(idx([3], lab), mtime=0))
put("idx", "float.idx", idx([2, 2], struct.pack(">4f", 0.0, 1.0, 2.0, 3.0), code=0x0D))

# CIFAR-10 binary: label byte + 3x32x32 planes per record
rec = lambda label, v: bytes([label]) + bytes([v]) * 3072
put("cifar", "two-records.bin", rec(3, 40) + rec(9, 200))
put("cifar", "one-record.bin", rec(0, 128))


# SVHN: level-5 MAT-file with uint8 X [h, w, 3, n] and double y [n, 1]
def element(dtype, payload):
    pad = (-len(payload)) % 8
    return struct.pack("<II", dtype, len(payload)) + payload + b"\0" * pad


def matrix(name, dims, cls, dtype, payload):
    body = element(6, struct.pack("<II", cls, 0))  # array flags
    body += element(5, b"".join(struct.pack("<i", d) for d in dims))
    body += element(1, name.encode())
    body += element(dtype, payload)
    return element(14, body)


def mat(h, w, n, compress):
    header = b"MATLAB 5.0 MAT-file, fuzz seed".ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
    x = matrix("X", [h, w, 3, n], 9, 2, bytes((i * 7) % 256 for i in range(h * w * 3 * n)))  # uint8 class 9, miUINT8
    y = matrix("y", [n, 1], 6, 9, b"".join(struct.pack("<d", float(1 + i % 10)) for i in range(n)))  # double class 6
    if compress:
        return header + b"".join(element(15, zlib.compress(e)) for e in (x, y))
    return header + x + y


put("svhn_mat", "plain.mat", mat(4, 4, 2, False))
put("svhn_mat", "compressed.mat", mat(4, 4, 2, True))

# images: PNG screenshots of the simulator and a few CIFAR-10 JPEGs
for f in sorted(os.listdir(os.path.join(root, "firmware-sim", "tests", "golden")))[:2]:
    copy("image", os.path.join(root, "firmware-sim", "tests", "golden", f))
cifar = os.path.join(os.path.dirname(root), "shared", "datasets", "cifar10-test")
for cls in ("airplane", "cat"):
    d = os.path.join(cifar, cls)
    if os.path.isdir(d):
        for f in sorted(os.listdir(d))[:2]:
            put("image", cls + "-" + f, open(os.path.join(d, f), "rb").read())

# model folder: the shipped ONNX files and manifest
model = os.path.join(root, "models", "default")
for f in ("classifier.onnx", "classifier.int8.onnx", "classifier.int8-integer.onnx", "classifier.int8-qlinear.onnx"):
    copy("onnx", os.path.join(model, f))
copy("manifest", os.path.join(model, "manifest.json"))
copy("golden_json", os.path.join(model, "golden.json"))

# wire: the protocol's golden frames (hex), whole and as one stream
frames = []
for line in open(os.path.join(root, "ood-core", "golden", "wire.txt")):
    parts = line.split()
    if len(parts) >= 2:
        frames.append(bytes.fromhex(parts[1]))
        put("wire_rx", parts[0], frames[-1])
put("wire_rx", "all", b"".join(frames))
put("wire_tx", "empty", b"\0")

# camera frames: width, height (u16 LE), flags (bit 0 yuv420, bit 1 roi), roi x/y/w/h, pixels
def frame(w, h, flags, roi, pixels):
    return struct.pack("<HHB4H", w, h, flags, *roi) + pixels


put("frame", "gray-32x24", frame(32, 24, 0, (0, 0, 0, 0), bytes(200 if 12 <= x <= 14 else 30 for y in range(24) for x in range(32))))
put("frame", "yuv-32x24-roi", frame(32, 24, 3, (4, 2, 20, 20), bytes(32 * 24 * 3 // 2)))

# trainer: the presets and a progress.json of a run
for f in sorted(os.listdir(os.path.join(root, "configs"))):
    copy("config_toml", os.path.join(root, "configs", f))
progress = {"epochs_done": 0, "generated_seen": 0, "log": [], "before": None, "wall_seconds": 0.0}
put("progress_json", "fresh.json", bytes([23]) + json.dumps(progress).encode())
print(f"seeds written to {out}")
