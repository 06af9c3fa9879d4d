#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for a bounded time (docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 seconds, every target)
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`); not part of
# scripts/test.sh, which stays on stable. The committed seeds in fuzz/corpus/TARGET are read
# but never written: what a run discovers goes to fuzz/target/corpus/TARGET (ignored by git).
# Exits non-zero when any target crashed, printing each reproducer; replay one with
#   cargo +nightly fuzz run -s none TARGET PATH
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
case "$seconds" in
  '' | *[!0-9]*) echo "fuzz.sh: SECONDS_PER_TARGET must be a whole number of seconds, got '$seconds'" >&2; exit 2 ;;
esac

rustup toolchain list | grep -q '^nightly' || {
  echo "fuzz.sh: the nightly toolchain is required: rustup toolchain install nightly" >&2
  exit 1
}
cargo +nightly fuzz --version >/dev/null 2>&1 || {
  echo "fuzz.sh: cargo-fuzz is required: cargo install cargo-fuzz --locked" >&2
  exit 1
}

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# No sanitizer: the workspace forbids unsafe code, and without ASan the targets run several
# times faster. Release mode with debug assertions, so integer overflow is a crash.
echo "== building ${targets[*]} (nightly)"
cargo +nightly fuzz build -s none

failed=()
for target in "${targets[@]}"; do
  work="fuzz/target/corpus/$target"
  seeds="fuzz/corpus/$target"
  mkdir -p "$work" "$seeds" "fuzz/artifacts/$target"
  log="fuzz/target/$target.log"
  dict=()
  [ -f "fuzz/dict/$target.dict" ] && dict=("-dict=fuzz/dict/$target.dict")
  before=$(ls "fuzz/artifacts/$target" | wc -l)
  echo "== $target for ${seconds}s"
  status=0
  cargo +nightly fuzz run -s none "$target" "$work" "$seeds" -- \
    -max_total_time="$seconds" -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || status=$?
  # libFuzzer's last status line: runs executed, coverage (cov) and features (ft).
  grep -E '^#[0-9]+' "$log" | tail -n 1 || true
  grep -E '^stat::number_of_executed_units' "$log" || true
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    echo "fuzz.sh: $target failed (exit $status); log: $log" >&2
    grep -E 'panicked at|Test unit written to' "$log" >&2 || tail -n 20 "$log" >&2
  elif [ "$(ls "fuzz/artifacts/$target" | wc -l)" -ne "$before" ]; then
    failed+=("$target")
    echo "fuzz.sh: $target left new artifacts in fuzz/artifacts/$target" >&2
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: no crashes in ${targets[*]}"
