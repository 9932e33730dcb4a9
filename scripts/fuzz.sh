#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder (fuzz/fuzz_targets, cargo fuzz on
# nightly, libFuzzer + AddressSanitizer).
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  per target (default 60); each target also stops at 1,000,000 runs
#   TARGET   default: every target in fuzz/Cargo.toml
#
# Corpora live in fuzz/corpus/<target> (kept between runs, not in git),
# seeded by scripts/fuzz_seeds.py from the project's real files. Prints one
# line per target: executions, coverage (edges), corpus size, crashes; a
# crash leaves its input in fuzz/artifacts/<target>/ and the script exits 1
# after the table. Reproduce one: cargo +nightly fuzz run TARGET FILE (in fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^ood-fuzz$')
fi

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
python3 scripts/fuzz_seeds.py "$seeds" >/dev/null

echo "== building the fuzz targets (nightly, release + debug assertions, ASan)"
(cd fuzz && cargo +nightly fuzz build -O)

rows=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  [[ -d "$seeds/$t" ]] && cp -n "$seeds/$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
  # inputs that once crashed (each also a test in the normal suite)
  [[ -d "fuzz/regressions/$t" ]] && cp -n "fuzz/regressions/$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
  log="fuzz/artifacts/$t.log"
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  echo "== $t: up to $secs s or 1,000,000 runs"
  rc=0
  (cd fuzz && cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
      -max_total_time="$secs" -runs=1000000 -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=1024 -print_final_stats=1) > "$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  crashes=$(( $(find "fuzz/artifacts/$t" -type f | wc -l) - before ))
  if [[ $rc -ne 0 && $crashes -eq 0 ]]; then crashes="fuzzer exit $rc (see $log)"; failed=1; fi
  [[ "$crashes" != 0 ]] && failed=1
  rows+=("$(printf '| %s | %s | %s | %s | %s |' "$t" "${runs:-?}" "${cov:-?}" "$corpus" "$crashes")")
done

echo
echo "fuzzing, $(date -u +%Y-%m-%d), up to ${secs} s or 1,000,000 runs per target, $(nproc) cores"
echo "| target | executions | coverage (edges) | corpus | crashes |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit "$failed"
