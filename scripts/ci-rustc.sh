#!/usr/bin/env bash
# CI's RUSTC_WORKSPACE_WRAPPER (see .ci/run): cargo calls it as
# `ci-rustc.sh <rustc> <args...>` for this workspace's own crates only
# (dependencies are compiled by plain rustc).
#
# It folds two CI checks into the one optimised build that the tests use,
# so that neither needs a build of its own (clippy and `cargo doc` each
# need a "check" build of every dependency that nothing else uses):
#  1. clippy: the crate is compiled by clippy-driver, i.e. rustc plus the
#     clippy lints, exactly as `cargo clippy` runs it but emitting code
#     (CLIPPY_ARGS, set by .ci/run, carries `-D warnings`; clippy-driver
#     registers it, so cargo rebuilds when it changes).
#  2. rustdoc: after a library compiles, rustdoc documents it with the
#     same crate name, edition, cfgs, lint flags and --extern dependencies
#     (the dependencies' metadata from this build) that `cargo doc` would
#     give it, with `-D warnings`, into $CI_DOC_OUT/<crate>. A stamp
#     $CI_DOC_OUT/.done/<crate> says it passed; .ci/run checks the stamps.
#     Unset CI_DOC_OUT to skip this part.
set -euo pipefail

rustc="$1"
shift
# cargo passes the absolute path of its toolchain's rustc: clippy-driver and
# rustdoc of the same toolchain sit beside it
toolchain_bin=$(dirname "$rustc")

"$toolchain_bin/clippy-driver" "$rustc" "$@"

[[ -n "${CI_DOC_OUT:-}" ]] || exit 0

# What `cargo doc --workspace --no-deps` documents: each library, for the
# host. Test builds (--test), build scripts, binaries, cross builds
# (--target) and the cargo probes (no source file) are left out.
doc_args=()
crate=""
is_lib=0
has_src=0
while [[ $# -gt 0 ]]; do
  arg="$1"
  shift
  case "$arg" in
    --test | --target | --target=*) exit 0 ;;
    --crate-type)
      [[ "$1" == lib || "$1" == rlib ]] && is_lib=1
      doc_args+=(--crate-type "$1")
      shift
      ;;
    --crate-name)
      crate="$1"
      doc_args+=(--crate-name "$1")
      shift
      ;;
    --edition=* | --cap-lints=* | --warn=* | --deny=* | --allow=* | --forbid=*)
      doc_args+=("$arg")
      ;;
    --cfg | --check-cfg | -L | --extern | --cap-lints | -W | -D | -A | -F)
      doc_args+=("$arg" "$1")
      shift
      ;;
    -C)
      # codegen options do not apply to rustdoc, except the crate's
      # metadata hash (cargo doc passes it too)
      [[ "$1" == metadata=* ]] && doc_args+=(-C "$1")
      shift
      ;;
    --out-dir | --emit | --error-format | --json | --diagnostic-width | -o)
      shift
      ;;
    -*) ;;
    *.rs)
      has_src=1
      doc_args+=("$arg")
      ;;
  esac
done
[[ $is_lib == 1 && $has_src == 1 && -n "$crate" && "$crate" != build_script_* ]] || exit 0

# one output folder per crate: nothing shared between parallel rustdocs
if ! "$toolchain_bin/rustdoc" "${doc_args[@]}" -o "$CI_DOC_OUT/$crate" -D warnings \
  --crate-version "${CARGO_PKG_VERSION:-0.0.0}"; then
  echo "ci-rustc.sh: rustdoc -D warnings failed on $crate (compiled and linted fine)" >&2
  exit 1
fi
mkdir -p "$CI_DOC_OUT/.done"
touch "$CI_DOC_OUT/.done/$crate"
