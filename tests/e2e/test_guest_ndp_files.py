#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end test of NDP on files: a BPF-KV database file on the guest's
ext4, walked by the host in one round trip per lookup (file-level NDP
through virtio_ndp.ko and librosen's `file:` transport), checked against
the guest's normal path on the same file.

Usage: test_guest_ndp_files.py --build BUILD_DIR [--timeout S] [--keep] [--cache DIR]
Ends with "N passed, N failed"; exits 1 if anything failed.

Two ext4 images (made here with mkfs.ext4 -d and debugfs), each with the
3-level database as /kv.db: on disk A laid out contiguously, on disk B in
scattered 4 KiB blocks (filler files written first, every other one
deleted, the database written into the holes).  Every free block of both
images holds a marker text.  In the guest (QEMU TCG, panic_on_warn=1):
  - bpfkv get/range/bench --mode ndp --uri file:/x/kv.db against --mode
    pread --direct on the same file: the same output, every value checked,
    and the marker never appears;
  - the unchanged XRP programs (bpfkv_xrp_get, _range, _lookup through
    rosen-io file: xrp);
  - dirty data: a copy of the database made through the page cache and not
    synced (delayed allocation: its blocks do not exist yet) is looked up
    at once through NDP;
  - careless callers: file: on tmpfs, a directory, a missing file get
    clear errors; lookups past the end of the file fail cleanly;
  - one device round trip per lookup batch (the driver's nd_requests).
The host then checks both images with e2fsck.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, HERE)
import guest  # noqa: E402
import suite  # noqa: E402
from suite import check, note, timings, backends  # noqa: E402
import ndp_guest  # noqa: E402

MiB = 1024 * 1024
IMG_A = 32 * MiB
IMG_B = 40 * MiB
LEVELS = 3
MARKER = b"ROSEN-NOT-THE-FILE!\n"





def guest_script():
    keys = "0 1 30 31 960 961 4242 17000 29789 29790 29791 123456"
    return r""". /lib/e2e.sh
. /lib/ndp.sh
echo "guest: kernel $(uname -r), $(nproc) cpu(s)"
check modules ndp_modules
VA=$(ndp_by_size %(a_sectors)d) || fail "no disk A"
VB=$(ndp_by_size %(b_sectors)d) || fail "no disk B"
A=$(ndp_bind $VA) || fail "cannot bind $VA"
B=$(ndp_bind $VB) || fail "cannot bind $VB"
mkdir -p /a /b
check mount-a mount -t ext4 /dev/$A /a
check mount-b mount -t ext4 /dev/$B /b

# lookups NAME DIR: file-level NDP against the guest's normal path
lookups() {
  n=$1; f=$2/kv.db
  $KV get --db $f --levels %(levels)d --mode ndp --uri file:$f %(keys)s > /tmp/$n.ndp 2>/tmp/$n.ndp.err
  check $n-get-ndp-runs test $? = 0
  cat /tmp/$n.ndp /tmp/$n.ndp.err
  $KV get --db $f --levels %(levels)d --mode pread --direct %(keys)s > /tmp/$n.pread 2>/tmp/$n.pread.err
  check $n-get-pread-runs test $? = 0
  check $n-get-same-as-normal-path cmp /tmp/$n.ndp /tmp/$n.pread
  check $n-get-values awk '$2 == "not" { if ($1 < 29791) bad = 1; next } $1 != $2 { bad = 1 } END { exit bad || NR != 12 }' /tmp/$n.ndp
  check $n-get-one-round-trip grep -q "1 device round trip" /tmp/$n.ndp.err
  $KV range --db $f --levels %(levels)d --mode ndp --uri file:$f 900 1100 > /tmp/$n.rndp 2>/dev/null
  $KV range --db $f --levels %(levels)d --mode pread --direct 900 1100 > /tmp/$n.rpread 2>/dev/null
  check $n-range-same cmp /tmp/$n.rndp /tmp/$n.rpread
  check $n-range-201-keys awk '$1 != $2 { bad = 1 } END { exit bad || NR != 201 }' /tmp/$n.rndp
  $KV range --db $f --levels %(levels)d --mode ndp --uri file:$f 29700 29790 --sum > /tmp/$n.sum 2>/dev/null
  check $n-range-sum grep -q "count 91 sum_keys %(sum)d sum_values %(sum)d" /tmp/$n.sum
  $KV bench --db $f --levels %(levels)d --mode ndp --uri file:$f --ops 1000 --qd 4 > /tmp/$n.bench 2>&1
  check $n-bench-ndp-checked test $? = 0
  tail -n 1 /tmp/$n.bench
  $KV bench --db $f --levels %(levels)d --mode ndp --uri file:$f --ops 200 --range 32 > /tmp/$n.rbench 2>&1
  check $n-bench-range-checked test $? = 0
  head -c 4096 /dev/zero > /tmp/key.bin
  check $n-rosen-io-xrp sh -c "$RIO file:$f xrp /lib/rosen/bpfkv_xrp_lookup.o bpfkv_xrp_lookup 0 --scratch-in /tmp/key.bin --scratch-out /tmp/out.bin"
  check $n-no-marker sh -c '! cat /tmp/'$n'.* /tmp/out.bin | grep -q "ROSEN-NOT-THE-FILE"'
}
lookups contiguous /a
lookups fragmented /b

# rosen-io sees the file as the device
$RIO file:/b/kv.db info > /tmp/finfo 2>&1; cat /tmp/finfo
check file-info-size grep -q "capacity_bytes: %(dbsize)d" /tmp/finfo
check file-info-transport grep -q "transport: file" /tmp/finfo

# dirty data: a copy through the page cache, never synced (no blocks yet)
check dirty-copy cp /b/kv.db /b/kv2.db
$KV get --db /b/kv2.db --levels %(levels)d --mode ndp --uri file:/b/kv2.db %(keys)s > /tmp/dirty.ndp 2>/tmp/dirty.err
check dirty-copy-lookups sh -c 'test "$(wc -l < /tmp/dirty.ndp)" = 12 && cmp /tmp/dirty.ndp /tmp/contiguous.ndp'
cat /tmp/dirty.err | tail -n 2

# careless callers
mkdir -p /tmp/t; echo x > /tmp/t/f
$RIO file:/tmp/t/f info > /tmp/e1 2>&1; cat /tmp/e1
check tmpfs-refused grep -q "not on a disk driven by virtio_ndp" /tmp/e1
$RIO file:/a info > /tmp/e2 2>&1; cat /tmp/e2
check directory-refused grep -q "Is a directory\\|not a regular file" /tmp/e2
$RIO file:/a/missing info > /tmp/e3 2>&1; cat /tmp/e3
check missing-refused grep -q "No such file" /tmp/e3
head -c 4096 /dev/zero > /tmp/key.bin
$RIO file:/a/kv.db xrp /lib/rosen/bpfkv_xrp_lookup.o bpfkv_xrp_lookup %(past_end)d --scratch-in /tmp/key.bin --scratch-out /tmp/o.bin > /tmp/e4 2>&1; cat /tmp/e4
check past-eof-out-of-range grep -q "out-of-range\|Invalid argument" /tmp/e4

check umount-a umount /a
check umount-b umount /b
dmesg > /tmp/dmesg
check kernel-log-clean sh -c '! grep -qE "BUG|WARNING|Oops|general protection" /tmp/dmesg'
finish
""" % dict(a_sectors=IMG_A // 512, b_sectors=IMG_B // 512, levels=LEVELS, keys=keys,
           sum=sum(range(29700, 29791)), dbsize=DB_SIZE[0], past_end=(DB_SIZE[0] + 8192) // 512 * 512)


DB_SIZE = [0]


def run(args, tmp):
    build = os.path.abspath(args.build)
    daemon = os.path.join(build, "app", "rosenbridged", "rosenbridged")
    bpfkv = os.path.join(build, "app", "bpfkv", "bpfkv")
    for path in (daemon, bpfkv):
        if not check("built: %s" % os.path.basename(path), os.path.exists(path), "ninja -C %s" % args.build):
            return
    ndp_guest.RosenDisks.daemon = daemon
    db = os.path.join(tmp, "kv.db")
    p = subprocess.run([bpfkv, "create", db, "--levels", str(LEVELS)], capture_output=True, text=True)
    if not check("bpfkv create --levels %d" % LEVELS, p.returncode == 0, p.stderr):
        return
    DB_SIZE[0] = os.path.getsize(db)
    imgs = {"a": os.path.join(tmp, "a.img"), "b": os.path.join(tmp, "b.img")}
    try:
        cache = guest.fetch_kernel(args.cache)
        t0 = time.monotonic()
        ko, release, warnings = ndp_guest.build_module(cache, tmp)
        timings.append(("module build", time.monotonic() - t0))
        check("virtio_ndp.ko builds against linux-headers-%s" % release, not warnings, "\n".join(warnings[:5]))
        ext_a = ndp_guest.make_ext4(imgs["a"], IMG_A, {"kv.db": db})
        ext_b = ndp_guest.make_ext4(imgs["b"], IMG_B, {"kv.db": db}, fragment=("kv.db",))
        note("kv.db: %d bytes; %d extent(s) on disk A, %d on disk B" % (DB_SIZE[0], ext_a["kv.db"], ext_b["kv.db"]))
        check("disk A: the database is contiguous", ext_a["kv.db"] <= 2, "%d extents" % ext_a["kv.db"])
        check("disk B: the database is fragmented", ext_b["kv.db"] >= 100, "%d extents" % ext_b["kv.db"])
        for k in imgs:
            marked = ndp_guest.fill_free_space(imgs[k], MARKER)
            note("disk %s: %d MiB of free space holds the marker" % (k.upper(), marked >> 20))
        adds = ndp_guest.tool_adds(build, cache, ko, tmp)
        script = os.path.join(tmp, "test.sh")
        with open(script, "w") as f:
            f.write(guest_script())
        initrd = guest.make_initramfs(os.path.join(tmp, "initrd.gz"), script, cache=cache, adds=adds)
    except guest.GuestError as e:
        check("prepare guest", False, str(e))
        return
    check("prepare guest", True)
    socks = {k: os.path.join(tmp, k + ".sock") for k in imgs}
    backend = ndp_guest.RosenDisks([(imgs[k], socks[k], []) for k in ("a", "b")],
                                   os.path.join(tmp, "rosenbridged.log"))
    backends.append(backend)
    err = backend.start()
    if not check("rosenbridged start", err is None, "%s; log:\n%s" % (err, "\n".join(backend.log_tail()))):
        return
    res = guest.boot(initrd, [guest.VhostBlk(socks[k], num_queues=2) for k in ("a", "b")],
                     os.path.join(tmp, "console.log"), cache=cache, timeout=args.timeout, smp=args.smp,
                     append="panic_on_warn=1 oops=panic")
    timings.append(("boot", res.elapsed))
    suite.guest_checks(res, ("contiguous-get-same-as-normal-path", "fragmented-get-same-as-normal-path",
                             "fragmented-range-sum", "fragmented-no-marker", "dirty-copy-lookups",
                             "kernel-log-clean"))
    check("rosenbridged alive after the guest", backend.alive(), "\n".join(backend.log_tail()))
    clean, detail = backend.stop()
    check("rosenbridged stops on SIGTERM", clean, detail)
    for k in imgs:
        p = subprocess.run(["e2fsck", "-fn", imgs[k]], capture_output=True, text=True)
        check("disk %s: e2fsck -fn clean after the guest" % k.upper(), p.returncode == 0, p.stdout[-600:])


if __name__ == "__main__":
    sys.exit(suite.main(__doc__, run, "rosen-e2e-files-"))
