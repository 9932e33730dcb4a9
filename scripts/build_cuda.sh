#!/usr/bin/env bash
# Builds `trainer --features cuda` on a machine WITHOUT a CUDA install (no
# nvcc, no GPU): nvcc 13.0 and the CUDA libraries come from NVIDIA's PyPI
# wheels, and a stub libcuda.so (the driver API's symbols, returning an
# error) satisfies the linker. The binary then runs wherever a CUDA 13 driver
# and the CUDA 13 runtime libraries are installed (LD_LIBRARY_PATH).
# Where CUDA is installed, plain `cargo build -p trainer --release --features
# cuda` is enough.
#
#   bash scripts/build_cuda.sh [COMPUTE_CAP]   # default 90 (H100/H200)
#
# Output: target-cuda/release/trainer. Needs pip, gcc and about 1.5 GB of disk;
# the first build compiles candle's CUDA kernels (14 minutes on 2 cores here).
set -euo pipefail
cd "$(dirname "$0")/.."
CAP="${1:-90}"
TOOLS="${CUDA_WHEELS_DIR:-target-cuda/toolkit}"
mkdir -p "$TOOLS"
TOOLS="$(cd "$TOOLS" && pwd)"
ROOT="$TOOLS/nvidia/cu13"
if [ ! -x "$ROOT/bin/nvcc" ]; then
  mkdir -p "$TOOLS/wheels"
  python3 -m pip download --no-deps --only-binary=:all: -d "$TOOLS/wheels" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --python-version 3.11 \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.0.2.14 \
    nvidia-curand==10.4.0.35 nvidia-cuda-cccl==13.0.85
  for w in "$TOOLS"/wheels/*.whl; do unzip -q -o "$w" -d "$TOOLS"; done
fi
# the linker wants unversioned names and a libcuda.so; the real libcuda.so.1
# comes with the driver on the GPU machine
( cd "$ROOT/lib"
  for f in cublas cublasLt cudart nvrtc; do ln -sf "lib$f.so.13" "lib$f.so"; done
  ln -sf libcurand.so.10 libcurand.so )
mkdir -p "$ROOT/lib/stubs"
CUDARC=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name 'cudarc-*' | sort | tail -1)
if [ -z "$CUDARC" ]; then cargo fetch; CUDARC=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name 'cudarc-*' | sort | tail -1); fi
grep -ohE "pub (unsafe )?fn cu[A-Za-z0-9_]+" "$CUDARC/src/driver/sys/mod.rs" | awk '{print $NF}' | sort -u \
  | sed 's/.*/int &(void){return 999;}/' > "$ROOT/lib/stubs/cuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$ROOT/lib/stubs/libcuda.so" "$ROOT/lib/stubs/cuda_stub.c"
export CUDA_HOME="$ROOT" PATH="$ROOT/bin:$PATH" CUDA_COMPUTE_CAP="$CAP"
CARGO_TARGET_DIR=target-cuda cargo build -p trainer --release --features cuda
echo "built target-cuda/release/trainer for sm_$CAP; run it with LD_LIBRARY_PATH holding libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10"
