#!/usr/bin/env bash
# RosenGDS on a machine with an NVIDIA GPU (docs/gds.md, "On a GPU"): runs
# from a bundle made by tests/gpu/pack.sh (this script is copied into it),
# with the bundle's own loader and glibc, so the machine's glibc does not
# matter; libcuda.so.1 is the machine's driver.  Steps:
#   1. probe: the bundled binaries start; io_uring works (a plain read
#      through rosenbridged); CUDA is there (rosenbridged --gpu 0 says so)
#   2. the CUDA target: rosen-io gds-read --target cuda for 4 KiB..64 MiB,
#      each region's CRC-32 (GPU_SUM, after a device-to-host copy) checked
#      against the same range read the normal way; the host target too
#   3. bench/gds with --target cuda (RosenGDS vs pread + cuMemcpyHtoD)
# Output: stdout, and $OUT/gds-device.log, $OUT/gds-bench-cuda.csv when $OUT
# is set.  Exit 0 only when every check passed.  Bounded: ~2 minutes.
# Usage: run_on_device.sh [BUNDLE_DIR]   (default: this script's directory)
# GDS_ALLOW_NO_GPU=1: on a machine without a GPU, check the bundle and the
# host target only (and say so); the run still ends "NO GPU", exit 2.
set -uo pipefail
B=$(cd "${1:-$(dirname "$0")}" && pwd)
OUTDIR=${OUT:-$(mktemp -d)}
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gds-device.log"
exec > >(tee -a "$LOG") 2>&1
LD="$B/lib/ld-linux-x86-64.so.2"
run() { local bin=$1; shift; "$LD" --library-path "$B/lib" "$B/bin/$bin" "$@"; }
fail() { echo "run_on_device: FAIL: $*"; exit 1; }
echo "== RosenGDS device run: $(date -u +%FT%TZ) on $(uname -srm); bundle $(cat "$B/BUILT_ON" 2>/dev/null)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
[ -x "$LD" ] || fail "no bundled loader at $LD (make the bundle with tests/gpu/pack.sh)"
run rosen-io --help >/dev/null || fail "the bundled binaries do not start here (loader $LD)"

W=$(mktemp -d /var/tmp/rb-gds-dev.XXXXXX 2>/dev/null || mktemp -d)
DPID=
trap '[ -n "$DPID" ] && kill $DPID 2>/dev/null && wait $DPID 2>/dev/null; rm -rf "$W"' EXIT
head -c $((160 << 20)) /dev/urandom > "$W/disk.img" || fail "cannot write a 160 MiB image in $W"
# exec: $! is the daemon itself (its CPU is what the bench reads).
( exec "$LD" --library-path "$B/lib" "$B/bin/rosenbridged" --disk "$W/disk.img" --socket "$W/vm.sock" \
    --queues 4 --event --gpu 0 > "$W/d.log" 2>&1 ) &
DPID=$!
for _ in $(seq 100); do grep -q serving "$W/d.log" 2>/dev/null && break; kill -0 $DPID 2>/dev/null || break; sleep 0.1; done
if ! grep -q serving "$W/d.log"; then
  cat "$W/d.log"
  grep -qi "io_uring" "$W/d.log" && fail "io_uring does not work on this machine (kernel $(uname -r)): rosenbridged needs it"
  fail "rosenbridged did not start"
fi
grep -E "gpu|GPU" "$W/d.log"
U="vhost-user:$W/vm.sock"
# 1. io_uring really moves data: a plain read through the daemon.
run rosen-io "$U" read 0 65536 > "$W/r.bin" 2>"$W/r.err" || { cat "$W/r.err"; tail -5 "$W/d.log"; fail "a plain read through rosenbridged failed: io_uring unusable here?"; }
cmp -s "$W/r.bin" <(head -c 65536 "$W/disk.img") || fail "a plain read returned the wrong bytes"
echo "probe: io_uring ok"
targets="cuda host"
if grep -q "no GPU" "$W/d.log"; then
  [ "${GDS_ALLOW_NO_GPU:-0}" = 1 ] || fail "rosenbridged --gpu 0 found no GPU: $(grep 'no GPU' "$W/d.log" | head -1)"
  echo "NO GPU here (GDS_ALLOW_NO_GPU=1): the host target only; the CUDA path is NOT checked"
  targets=host
fi

# 2. the data path, both targets, 4 KiB .. 64 MiB, checked by GPU_SUM.
cd "$B/share/rosenbridge/progs"   # rosen-io finds gds_map.o here
bad=0
for target in $targets; do
  for size in 4096 65536 1048576 $((1048576 + 512)) $((4 << 20)) $((16 << 20)) $((64 << 20)); do
    off=$(( (size * 7) % (64 << 20) / 4096 * 4096 + 512 ))
    if out=$(run rosen-io "$U" gds-read "$off" "$size" --target "$target" 2>&1); then
      echo "PASS gds-read $target $size @$off: $(echo "$out" | grep -E 'gds_us|region_crc32' | tr '\n' ' ')"
    else
      echo "FAIL gds-read $target $size @$off: $out"; bad=$((bad + 1))
    fi
  done
done
[ $bad -eq 0 ] || fail "$bad GDS reads did not land the disk's bytes"

# 3. the benchmark (its own daemon: the default run.py is Python; this
# machine may have none, so the bench binary runs against ours).
bt=${targets%% *}
echo "== bench/gds --target $bt"
run gds_bench "$U" --daemon-pid $DPID --target "$bt" --seconds 1 --sizes 4k,16k,64k,256k,1m,4m \
  --threads 1,4 --prog "$B/share/rosenbridge/progs/gds_map.o" > "$OUTDIR/gds-bench-$bt.csv" || fail "gds_bench failed"
cat "$OUTDIR/gds-bench-$bt.csv"
if [ "$bt" != cuda ]; then
  echo "run_on_device: NO GPU: the bundle and the host target passed; the CUDA target was not run"
  exit 2
fi
echo "run_on_device: all checks passed"
