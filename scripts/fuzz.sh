#!/usr/bin/env bash
# Coverage-guided fuzzing on stable Rust: AFL++ through cargo-afl (no nightly toolchain).
#
#   scripts/fuzz.sh [--seconds N] [TARGET…]      targets: signature envelope config template
#
# Builds the targets in fuzz/ with `cargo afl build --release` (installing cargo-afl and
# building AFL++ the first time), runs each for N seconds (default 300) from the seeds in
# fuzz/seeds/TARGET, keeps AFL's findings in fuzz/out/TARGET (git-ignored), and exits 1 if
# any target found a crash or a hang; the offending inputs are listed so each can become a
# regression test. CI runs `scripts/fuzz.sh --seconds 20`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=300 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(signature envelope config template)

if ! cargo afl --version >/dev/null 2>&1; then
  echo "== installing cargo-afl"
  cargo install --locked cargo-afl
fi
# Builds AFL++ for this toolchain once; "already built" is fine.
cargo afl config --build >/dev/null 2>&1 || true

echo "== building fuzz targets"
(cd fuzz && cargo afl build --release --quiet)

# Without a core-dump handler configured for AFL, and on a machine where the CPU governor
# cannot be read, AFL refuses to start unless told these are fine.
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_QUIET=1

failed=0
for t in "${targets[@]}"; do
  [ -d "fuzz/seeds/$t" ] || { echo "no seeds for target $t" >&2; exit 2; }
  out="fuzz/out/$t"
  rm -rf "$out"
  mkdir -p fuzz/out
  echo "== fuzzing $t for ${seconds}s"
  cargo afl fuzz -V "$seconds" -i "fuzz/seeds/$t" -o "$out" "fuzz/target/release/$t" >"$out.log" 2>&1 \
    || { echo "afl-fuzz failed for $t:"; tail -20 "$out.log"; exit 1; }
  stats="$out/default/fuzzer_stats"
  execs=$(awk -F: '/^execs_done/ {gsub(/ /,"",$2); print $2}' "$stats")
  paths=$(awk -F: '/^corpus_count/ {gsub(/ /,"",$2); print $2}' "$stats")
  crashes=$(find "$out/default/crashes" -type f -name 'id:*' | wc -l)
  hangs=$(find "$out/default/hangs" -type f -name 'id:*' | wc -l)
  echo "   $t: $execs executions, $paths inputs in the corpus, $crashes crashes, $hangs hangs"
  if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
    failed=1
    find "$out/default/crashes" "$out/default/hangs" -type f -name 'id:*' -printf '   found: %p\n'
  fi
done
exit $failed
