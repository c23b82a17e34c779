#!/usr/bin/env bash
# Runs every test suite against each given build directory and adds up the
# results.  Usage: tests/run.sh BUILD_DIR...   (default: build)
# Each suite prints PASS/FAIL lines and its own "N passed, N failed"; this
# script ends with the grand total in the same form.
set -uo pipefail
cd "$(dirname "$0")/.."

# Undefined behaviour found by the sanitizer build is a failure, not a
# line in a log nobody reads.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

dirs=("$@")
[ ${#dirs[@]} -eq 0 ] && dirs=(build)

total_pass=0
total_fail=0
failed_suites=()
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

# run_suite NAME CMD...: runs a suite, shows its failures, adds its counts.
run_suite() {
  local name=$1; shift
  local log="$log_dir/suite.log"
  local start=$SECONDS
  "$@" >"$log" 2>&1
  local rc=$?
  local counts
  counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  local p=0 f=0
  if [ -n "$counts" ]; then
    p=$(echo "$counts" | awk '{print $1}')
    f=$(echo "$counts" | awk '{print $3}')
  fi
  if [ -z "$counts" ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
    # A suite that crashed or printed no count is one failure, not silence.
    f=$((f + 1))
    echo "  suite '$name' exited with status $rc without a clean count"
  fi
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  printf '%-44s %4d passed, %d failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - start))
  if [ "$f" -ne 0 ]; then
    failed_suites+=("$name")
    grep -E '^(FAIL|    )' "$log" | head -n 60 | sed 's/^/  | /'
    tail -n 15 "$log" | sed 's/^/  > /'
  fi
}

for dir in "${dirs[@]}"; do
  if [ ! -d "$dir" ]; then
    echo "tests: build directory '$dir' does not exist (run scripts/build.sh)" >&2
    exit 2
  fi
  kind=$(basename "$dir")
  echo "== $kind"
  for t in "$dir"/tests/unit/test_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    run_suite "$kind: unit/$(basename "$t")" "$t"
  done
  run_suite "$kind: conformance (rosen-bpf plugin)" \
    python3 tests/conformance/run.py -q --bpf "$dir/app/rosen-bpf/rosen-bpf"
  run_suite "$kind: conformance (rosen-bpf plugin --jit)" \
    python3 tests/conformance/run.py -q --jit --bpf "$dir/app/rosen-bpf/rosen-bpf"
  run_suite "$kind: cli (rosen-bpf)" \
    python3 tests/cli/test_rosen_bpf.py --build "$dir"
  run_suite "$kind: cli (rosenbridged)" \
    python3 tests/cli/test_rosenbridged.py --build "$dir"
  run_suite "$kind: cli (metrics: format, exact counters, HTTP endpoint)" \
    python3 tests/cli/test_metrics.py --build "$dir"
  run_suite "$kind: cli (control socket, rosenctl, --config)" \
    python3 tests/cli/test_control.py --build "$dir"
  run_suite "$kind: cli (inline page-cache reads: hits, misses, NDP rounds)" \
    python3 tests/cli/test_inline_reads.py --build "$dir"
  run_suite "$kind: cli (throttling: caps, bursts, NDP hops, groups, drains)" \
    python3 tests/cli/test_throttle.py --build "$dir"
  run_suite "$kind: cli (bpfkv: every mode, rosenbridged, qsd)" \
    python3 tests/cli/test_bpfkv.py --build "$dir"
  run_suite "$kind: rosen-io (rosenbridged, qsd)" \
    python3 tests/guest/test_rosen_io.py --build "$dir"
  run_suite "$kind: vhost bad input (hostile frontend)" \
    python3 tests/vhost/test_bad_input.py --daemon "$dir/app/rosenbridged/rosenbridged"
  run_suite "$kind: vhost ndp bad input (hostile frontend)" \
    python3 tests/vhost/test_ndp_bad_input.py --daemon "$dir/app/rosenbridged/rosenbridged" \
      --programs "$dir/tests/programs"
  run_suite "$kind: RosenGDS (GPU regions, GPU reads 4 KiB..64 MiB, hostile retargets)" \
    python3 tests/vhost/test_gds.py --daemon "$dir/app/rosenbridged/rosenbridged" \
      --programs "$dir/tests/programs" --progs "$dir/progs"
  run_suite "$kind: vhost inflight tracking (restart without loss, hostile areas)" \
    python3 tests/vhost/test_inflight.py --daemon "$dir/app/rosenbridged/rosenbridged"
  run_suite "$kind: librosen client across daemon kills (reconnect, STATE_LOST)" \
    python3 tests/restart/test_restart_librosen.py --build "$dir"
  run_suite "$kind: ndp LOAD queue (loader thread, limits)" \
    python3 tests/vhost/test_ndp_load_queue.py --daemon "$dir/app/rosenbridged/rosenbridged" \
      --programs "$dir/tests/programs"
  run_suite "$kind: ndp fairness (program CPU, drains)" \
    python3 tests/vhost/test_ndp_fairness.py --daemon "$dir/app/rosenbridged/rosenbridged" \
      --programs "$dir/tests/programs"
  # (The allocation-failure injector is an LD_PRELOAD: the plain build only.)
  if [ -f "$dir/tests/failalloc.so" ]; then
    run_suite "$kind: memory pressure (mmap and allocations failing)" \
      python3 tests/fault/test_memory_pressure.py --build "$dir"
  fi
  run_suite "$kind: guest memory that shrinks (sealing, SIGBUS confined)" \
    python3 tests/vhost/test_guest_memory.py --daemon "$dir/app/rosenbridged/rosenbridged"
  run_suite "$kind: storage faults (EIO, ENOSPC, EAGAIN, short, truncation, NDP chains)" \
    python3 tests/vhost/test_faults.py --build "$dir"
  run_suite "$kind: durability (FLUSH ordering, crash of a FUSE disk)" \
    python3 tests/vhost/test_durability.py --build "$dir"
  run_suite "$kind: frontends vanishing mid-I/O (heap and fds)" \
    python3 tests/vhost/test_vanish.py --build "$dir"
  run_suite "$kind: ndp (vhost-user, rosenbridged)" \
    "$dir/tests/ndp/test_ndp" "$dir/app/rosenbridged/rosenbridged" \
      "$dir/progs" "$dir/tests/programs"
  run_suite "$kind: e2e (QEMU guest on rosenbridged)" \
    python3 tests/e2e/test_guest_blk.py --backend rosenbridged \
      --daemon "$dir/app/rosenbridged/rosenbridged"
  run_suite "$kind: e2e (librosen pci:BDF in a QEMU guest)" python3 tests/e2e/test_guest_pci.py --build "$dir"
  # The guest kernel driver: the module and the guest's tools are the same
  # for every build, so the release build runs it (ASan cannot see into a
  # kernel module anyway).
  if [ "$kind" = build ]; then
    run_suite "$kind: e2e (virtio_ndp.ko in a QEMU guest)" \
      python3 tests/e2e/test_guest_ndp_driver.py --build "$dir"
    run_suite "$kind: e2e (NDP on files in a QEMU guest)" \
      python3 tests/e2e/test_guest_ndp_files.py --build "$dir"
    # Restart without loss: 10 SIGKILLs and 2 SIGTERMs of the daemon under
    # a QEMU guest's concurrent writers (about 30 s).
    run_suite "$kind: e2e (daemon killed under a QEMU guest)" \
      python3 tests/e2e/test_guest_restart.py --daemon "$dir/app/rosenbridged/rosenbridged"
    run_suite "$kind: e2e (virtio_ndp.ko across daemon kills)" \
      python3 tests/e2e/test_guest_ndp_restart.py --build "$dir"
  fi
done

# The libFuzzer targets, a fixed number of executions each, when the fuzz
# build exists (scripts/build.sh fuzz; docs/robustness.md).
if [ -x build-fuzz/tests/fuzz/fuzz_verifier ]; then
  echo "== build-fuzz"
  run_suite "build-fuzz: fuzz smoke (tests/fuzz/run.sh --smoke)" tests/fuzz/run.sh --smoke build-fuzz
fi

# ThreadSanitizer: the unit tests that start threads and the threaded
# stress test, when the tsan build exists (scripts/build.sh tsan).  A
# report fails the suite (TSan exits 66 after reporting).
if [ -x build-tsan/app/rosenbridged/rosenbridged ]; then
  echo "== build-tsan"
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1}
  for t in test_io test_io_loader test_qos test_vhost test_guest; do
    [ -x "build-tsan/tests/unit/$t" ] && run_suite "build-tsan: unit/$t" "build-tsan/tests/unit/$t"
  done
  run_suite "build-tsan: threaded stress (workers, loader, reconnects, SIGHUP)" \
    python3 tests/tsan/stress.py --build build-tsan --seconds 20
fi

echo
if [ ${#failed_suites[@]} -ne 0 ]; then
  echo "failing suites: ${failed_suites[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
