#!/usr/bin/env bash
# Host side: builds the module and vndp_check, starts rosenbridged (disk A,
# NDP) and qemu-storage-daemon (disk B, plain), boots the e2e guest with
# guest_vndp.sh.  Usage: kernel/virtio_ndp/tests/run_guest.sh [BUILD]
set -euo pipefail
cd "$(dirname "$0")/../../.."
build=${1:-build}
kdir=${KDIR:-/usr/src/linux-headers-6.1.0-57-amd64}
tmp=$(mktemp -d /tmp/vndp-guest.XXXXXX)
make -s -C kernel/virtio_ndp KDIR="$kdir" >/dev/null
gcc -static -O2 -Wall -Wextra -Werror -I include -I kernel/virtio_ndp \
  -o "$tmp/vndp_check" kernel/virtio_ndp/tests/vndp_check.c
gcc -static -O2 -Wall -Wextra -o "$tmp/blkcheck" tests/e2e/guest/blkcheck.c
truncate -s 16M "$tmp/a.img"
truncate -s 16M "$tmp/b.img"
truncate -s 4M "$tmp/c.img"
mkfs.ext4 -q -F "$tmp/b.img"
"$build/app/rosenbridged/rosenbridged" --disk "$tmp/a.img" --socket "$tmp/a.sock" \
  --queues 2 --disk "$tmp/c.img" --socket "$tmp/c.sock" --readonly \
  >"$tmp/rosenbridged.log" 2>&1 &
rb=$!
qemu-storage-daemon --blockdev "driver=file,node-name=d0,filename=$tmp/b.img,discard=unmap" \
  --export "type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,addr.path=$tmp/b.sock,writable=on,num-queues=2" \
  >"$tmp/qsd.log" 2>&1 &
qsd=$!
trap 'kill $rb $qsd 2>/dev/null; wait 2>/dev/null' EXIT
for i in $(seq 50); do [ -S "$tmp/a.sock" ] && [ -S "$tmp/b.sock" ] && [ -S "$tmp/c.sock" ] && break; sleep 0.1; done
adds=(--add kernel/virtio_ndp/virtio_ndp.ko:/lib/virtio_ndp.ko
      --add "$tmp/vndp_check:/bin/vndp_check" --add "$tmp/blkcheck:/bin/blkcheck"
      --add "$build/tests/programs/ndp_progs.o:/lib/rosen/ndp_progs.o")
for m in ${VNDP_EXTRA_MODULES:-}; do adds+=(--add "$m:/lib/modules/$(basename "$m")"); done
python3 tests/e2e/lib/guest.py --test kernel/virtio_ndp/tests/guest_vndp.sh \
  --vhost "$tmp/a.sock" --vhost "$tmp/b.sock" --vhost "$tmp/c.sock,num-queues=1" "${adds[@]}" \
  --append "panic_on_warn=1 oops=panic" --timeout "${TIMEOUT:-300}" \
  --console-log "$tmp/console.log" && rc=0 || rc=$?
echo "console log: $tmp/console.log; rosenbridged log: $tmp/rosenbridged.log"
exit $rc
