#!/usr/bin/env bash
# libFuzzer campaigns and the fuzz smoke test (docs/robustness.md).
#   tests/fuzz/run.sh TARGET SECONDS [BUILD_DIR]   a campaign: the corpus in
#       tests/fuzz/corpus/TARGET/ plus new finds in a scratch dir (printed;
#       merge what is worth keeping by hand), crashes saved under
#       tests/fuzz/crashes/TARGET/.  RB_FUZZ_RUNS=N also ends it after N
#       executions (the issue's "10 million executions or one CPU-hour":
#       RB_FUZZ_RUNS=10000000 tests/fuzz/run.sh TARGET 3600).
#   tests/fuzz/run.sh --smoke [BUILD_DIR]          every target over its corpus
#       and RUNS more executions, then every input in
#       tests/fuzz/regressions/TARGET/ (inputs that once found a bug, kept
#       after the fix) replayed once, and every input in
#       tests/fuzz/selftest/TARGET/ run with RB_FUZZ_SELFTEST=1, where the
#       target must report it (a test of the target's own checks): PASS/FAIL
#       lines and "N passed, N failed".
# BUILD_DIR defaults to build-fuzz (scripts/build.sh fuzz).
set -uo pipefail
cd "$(dirname "$0")/../.."

TARGETS=(verifier jit_diff qos_config vhost virtq blk ndp elf)
# Smoke executions per target (about 45 s for all of them on a 2-core VM;
# RB_FUZZ_SMOKE_RUNS=N sets every target's), and the largest input each
# target is given (the ELF seeds are whole objects).
declare -A SMOKE_RUNS=([verifier]=40000 [jit_diff]=40000 [qos_config]=20000 [vhost]=30000
                       [virtq]=30000 [blk]=50000 [ndp]=40000 [elf]=50000)
declare -A MAX_LEN=([elf]=16384)
# A leak report at exit is a finding too; UBSan stops at the first error.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# The seed corpus is generated from the accepted test programs when missing.
seed_corpus() {
  local target=$1 bin=$2 dir=tests/fuzz/corpus/$1
  if [ -z "$(ls -A "$dir" 2>/dev/null)" ]; then
    mkdir -p "$dir"
    RB_FUZZ_WRITE_SEEDS=$dir "$bin" || { echo "fuzz: cannot write the $target seeds" >&2; return 1; }
  fi
}

if [ "${1:-}" = --smoke ]; then
  build=${2:-build-fuzz}
  pass=0 fail=0
  for t in "${TARGETS[@]}"; do
    RUNS=${RB_FUZZ_SMOKE_RUNS:-${SMOKE_RUNS[$t]:-20000}}
    bin=$build/tests/fuzz/fuzz_$t
    scratch=$(mktemp -d)
    log=$scratch/log
    mkdir -p "$scratch/new"
    if seed_corpus "$t" "$bin" && "$bin" -runs="$RUNS" -seed=1 -max_len="${MAX_LEN[$t]:-8192}" \
        -artifact_prefix="$scratch/" "$scratch/new" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
      echo "PASS fuzz_$t ($RUNS runs)"
      pass=$((pass + 1))
    else
      echo "FAIL fuzz_$t ($RUNS runs)"
      grep -E "FUZZ BUG|VERIFIER BUG|JIT BUG|ERROR:|SUMMARY|^ +[0-9]+: |^ +#[0-6] " "$log" | head -n 60 | sed 's/^/    /'
      fail=$((fail + 1))
    fi
    # Inputs that found a bug once: each must now run clean (and fast).
    reg=tests/fuzz/regressions/$t
    if [ -n "$(ls -A "$reg" 2>/dev/null)" ]; then
      n=$(ls -A "$reg" | wc -l)
      if "$bin" -timeout=30 "$reg"/* >"$log.reg" 2>&1; then
        echo "PASS fuzz_$t regressions ($n inputs)"
        pass=$((pass + 1))
      else
        echo "FAIL fuzz_$t regressions ($n inputs)"
        grep -E "FUZZ BUG|VERIFIER BUG|JIT BUG|ERROR:|SUMMARY|Running:|^ +#[0-6] " "$log.reg" | head -n 60 | sed 's/^/    /'
        fail=$((fail + 1))
      fi
    fi
    # The target's own checks, tested: with RB_FUZZ_SELFTEST=1 each input
    # in tests/fuzz/selftest/TARGET/ must be reported as a bug.
    for f in tests/fuzz/selftest/$t/*; do
      [ -e "$f" ] || continue
      RB_FUZZ_SELFTEST=1 "$bin" "$f" >"$log.self" 2>&1
      if grep -q "BUG" "$log.self"; then
        echo "PASS fuzz_$t self-test $(basename "$f") (caught)"
        pass=$((pass + 1))
      else
        echo "FAIL fuzz_$t self-test $(basename "$f") (not caught)"
        fail=$((fail + 1))
      fi
    done
    rm -rf "$scratch"
  done
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
  exit
fi

if [ $# -lt 2 ]; then
  echo "usage: tests/fuzz/run.sh TARGET SECONDS [BUILD_DIR] | --smoke [BUILD_DIR]" >&2
  exit 2
fi
target=$1 seconds=$2 build=${3:-build-fuzz}
bin=$build/tests/fuzz/fuzz_$target
if [ ! -x "$bin" ]; then
  echo "fuzz: $bin missing (scripts/build.sh fuzz)" >&2
  exit 2
fi
seed_corpus "$target" "$bin" || exit 1
new=$(mktemp -d "/tmp/fuzz-$target-XXXXXX")
crashes=tests/fuzz/crashes/$target
mkdir -p "$crashes"
echo "fuzz: $target for ${seconds}s${RB_FUZZ_RUNS:+ or $RB_FUZZ_RUNS executions}; new inputs in $new, crashes in $crashes/"
"$bin" -max_total_time="$seconds" ${RB_FUZZ_RUNS:+-runs="$RB_FUZZ_RUNS"} \
  -max_len="${MAX_LEN[$target]:-8192}" -print_final_stats=1 \
  -artifact_prefix="$crashes/" "$new" "tests/fuzz/corpus/$target"
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "fuzz: $target FOUND A BUG (exit $rc): the input is in $crashes/ (crash-*);" \
       "replay it with: $bin $crashes/crash-<hash>; once fixed, keep it in" \
       "tests/fuzz/regressions/$target/ (the smoke run replays it)" >&2
fi
exit "$rc"
