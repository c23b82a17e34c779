#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end test of the guest kernel driver virtio_ndp.ko (kernel/virtio_ndp):
a Linux guest (QEMU TCG) binds vhost-user-blk disks to it, keeps a
filesystem on one, and reaches NDP through /dev/virtio-ndp/<disk>.

Usage: test_guest_ndp_driver.py --build BUILD_DIR [--timeout S] [--keep] [--cache DIR]
Ends with "N passed, N failed"; exits 1 if anything failed.

The module is built here against the headers of the kernel the guest
boots (/usr/src/linux-headers-<release>, scripts/setup.sh installs them),
in a copy of the sources.  One rosenbridged serves three disks and
qemu-storage-daemon a fourth; the guest tells them apart by size:
  FS   64 MiB  an ext4 image made here with `mkfs.ext4 -d`: mounted, files
               read and compared, a file written, fsync; NDP on files of it
               (vndp_check files); unmounted; the host then reads that file
               back with debugfs and runs e2fsck.
  KV    8 MiB  a BPF-KV database (bpfkv create --levels 3), then zeros: raw
               I/O, DISCARD/WRITE_ZEROES and rosen-io kernel: in the tail;
               bpfkv get/range/bench --mode ndp and vhost through the driver,
               every value checked; the verifier's log for a hostile program;
               the driver's bad-argument suite (vndp_check).
  RO    4 MiB  --readonly: writes refused by the block device and the driver.
  QSD   6 MiB  qemu-storage-daemon: a plain disk under virtio_ndp, NDP calls
               EOPNOTSUPP (vndp_check plain).
  SCR  16 MiB  scratch for the driver's own checks (vndp_check ndp, busy:
               kernel/virtio_ndp/tests/vndp_check.c, which writes where it
               likes); last, vndp_check unbind unbinds it under an open
               file and binds it again.
Then rmmod is refused while a char device is open, works once everything
is closed, and insmod brings the disks back.  The guest boots with
panic_on_warn=1 oops=panic; any BUG/WARNING/Oops in its log fails the test.
"""
import hashlib
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
from test_guest_blk import QsdBackend, pattern  # noqa: E402
from ndp_guest import RosenDisks, build_module, tool_adds, FS_MODULES, KMOD_SRC  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))

KiB = 1024
MiB = 1024 * KiB
FS_SIZE = 64 * MiB
KV_SIZE = 8 * MiB
RO_SIZE = 4 * MiB
QSD_SIZE = 6 * MiB
SCR_SIZE = 16 * MiB
KV_LEVELS = 3
QUEUES = 2
# Raw writes in the KV disk's tail (past the 2.4 MB database):
# (offset, length, seed), last write wins.
RAW_PLAN = [
    (5 * MiB, 256 * KiB, 71),          # blkcheck through /dev/<disk>
    (6 * MiB, 64 * KiB, 72),           # rosen-io kernel: write
    (7 * MiB, 1 * MiB, 73),            # discarded, then zeroed out (see below)
]
ZERO_RANGES = [(7 * MiB, 512 * KiB), (7 * MiB + 512 * KiB, 512 * KiB)]
GUEST_FILE_LEN = 1 * MiB





def make_fs_image(img, tmp):
    """An ext4 image with known files; returns {name: md5}."""
    root = os.path.join(tmp, "fsroot")
    os.makedirs(os.path.join(root, "dir"), exist_ok=True)
    files = {"hello.txt": b"hello from the host\n",
             "dir/big.bin": pattern(81, 0, 3 * MiB + 512)}
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    with open(img, "wb") as f:
        f.truncate(FS_SIZE)
    p = subprocess.run(["mkfs.ext4", "-q", "-F", "-d", root, img], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise guest.GuestError("mkfs.ext4 -d failed: " + p.stdout)
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


def guest_file_bytes():
    """What the guest writes to /mnt/guest.txt: 'rosenbridge\\n' repeated."""
    unit = b"rosenbridge\n"
    return (unit * (GUEST_FILE_LEN // len(unit) + 1))[:GUEST_FILE_LEN]


def guest_script(sums, hostile_obj_ok):
    return r""". /lib/e2e.sh
. /lib/ndp.sh
echo "guest: kernel $(uname -r), $(nproc) cpu(s)"

for m in %(fs_modules)s; do insmod /lib/modules/$m.ko || fail "insmod $m failed"; done
check insmod-virtio-ndp insmod /lib/virtio_ndp.ko
check driver-registered test -d /sys/bus/virtio/drivers/virtio_ndp

# The virtio devices, by their size in 512-byte sectors (virtio_blk has
# them now); ndp_by_size and ndp_bind come from /lib/ndp.sh.
V_FS=$(ndp_by_size %(fs_sectors)d) || fail "no %(fs_size)d-byte disk"
V_KV=$(ndp_by_size %(kv_sectors)d) || fail "no %(kv_size)d-byte disk"
V_RO=$(ndp_by_size %(ro_sectors)d) || fail "no %(ro_size)d-byte disk"
V_QSD=$(ndp_by_size %(qsd_sectors)d) || fail "no %(qsd_size)d-byte disk"
V_SCR=$(ndp_by_size %(scr_sectors)d) || fail "no %(scr_size)d-byte disk"
echo "guest: fs=$V_FS kv=$V_KV ro=$V_RO qsd=$V_QSD scratch=$V_SCR"
check no-driver-override sh -c '! test -e /sys/bus/virtio/devices/'$V_KV'/driver_override'

FS=$(ndp_bind $V_FS) || fail "cannot bind $V_FS to virtio_ndp"
KVD=$(ndp_bind $V_KV) || fail "cannot bind $V_KV to virtio_ndp"
RO=$(ndp_bind $V_RO) || fail "cannot bind $V_RO to virtio_ndp"
QSD=$(ndp_bind $V_QSD) || fail "cannot bind $V_QSD to virtio_ndp"
SCR=$(ndp_bind $V_SCR) || fail "cannot bind $V_SCR to virtio_ndp"
echo "guest: virtio_ndp disks fs=$FS kv=$KVD ro=$RO qsd=$QSD scratch=$SCR"
check bound-driver test "$(basename $(readlink /sys/bus/virtio/devices/$V_KV/driver))" = virtio_ndp
check size-from-config test "$(cat /sys/block/$KVD/size)" = %(kv_sectors)d

# --- a filesystem lives on it ---
check fs-mount mount -t ext4 /dev/$FS /mnt
check fs-read-hello test "$(md5sum < /mnt/hello.txt | cut -d' ' -f1)" = %(hello)s
check fs-read-big test "$(md5sum < /mnt/dir/big.bin | cut -d' ' -f1)" = %(big)s
check fs-write-fsync sh -c 'yes rosenbridge | head -c %(glen)d | dd of=/mnt/guest.txt bs=64k conv=fsync 2>/dev/null'
check fs-sync sync
check fs-reread test "$(md5sum < /mnt/guest.txt | cut -d' ' -f1)" = %(guest)s
# NDP on files of that filesystem (kernel/virtio_ndp/tests/vndp_check.c
# files: refusals, keys, file offsets, holes, EOF, page-cache coherence,
# truncate/punch racing requests; it prints its own check lines)
vndp_check files /dev/virtio-ndp/$FS /mnt /lib/rosen/ndp_progs.o || E2E_FAILED=$((E2E_FAILED + 1))
check fs-files-cleaned-up sh -c '! test -e /mnt/vndp_hole.bin'
check rmmod-refused-while-mounted sh -c '! rmmod virtio_ndp'
check raw-write-refused-while-mounted sh -c '! $RIO kernel:/dev/virtio-ndp/'$FS' write 0 < /lib/rosen/sector.bin 2>/tmp/err; cat /tmp/err; grep -qi "busy" /tmp/err'
check fs-umount umount /mnt

# --- raw block I/O, DISCARD, WRITE_ZEROES (the KV disk's tail) ---
check blk-write blkcheck write /dev/$KVD 5M 256K 71
check blk-verify blkcheck verify /dev/$KVD 5M 256K 71
check blk-flush blkcheck flush /dev/$KVD
check blk-discard-supported test "$(cat /sys/block/$KVD/queue/discard_max_bytes)" -gt 0
check blk-write-zeroes-supported test "$(cat /sys/block/$KVD/queue/write_zeroes_max_bytes)" -gt 0
check blk-write-7m blkcheck write /dev/$KVD 7M 1M 73
check blk-discard blkcheck discard /dev/$KVD 7M 512K
check blk-zeroout blkcheck zeroout /dev/$KVD 7680K 512K
check blk-zeroout-reads-zeros blkcheck zeros /dev/$KVD 7680K 512K
check blk-discard-zeroout blkcheck zeroout /dev/$KVD 7M 512K
check blk-zeros blkcheck zeros /dev/$KVD 7M 1M

# --- rosen-io through the char device ---
$RIO kernel:/dev/virtio-ndp/$KVD info > /tmp/info 2>&1; cat /tmp/info
check rio-info-capacity grep -q "capacity_bytes: %(kv_size)d" /tmp/info
check rio-info-ndp grep -q "ndp: yes" /tmp/info
check rio-info-transport grep -q "transport: kernel" /tmp/info
check rio-write sh -c "$RIO kernel:/dev/virtio-ndp/$KVD write 6291456 < /lib/rosen/raw64k.bin"
check rio-read sh -c "$RIO kernel:/dev/virtio-ndp/$KVD read 6291456 65536 | cmp - /lib/rosen/raw64k.bin"
check blk-sees-rio-write blkcheck verify /dev/$KVD 6M 64K 72
$RIO kernel:/dev/virtio-ndp/$KVD bench --rw randread --bs 4096 --qd 8 --seconds 1 > /tmp/bench 2>&1; cat /tmp/bench
check rio-bench-qd8 sh -c "tail -n 1 /tmp/bench | awk -F, '\$7 > 0 { ok = 1 } END { exit !ok }'"

# --- NDP: BPF-KV through the driver ---
K="--db /dev/null --levels %(levels)d --uri kernel:/dev/virtio-ndp/$KVD"
KEYS="0 1 30 31 960 961 29790 29791 123456 4242 17000 5"
$KV get $K --mode ndp $KEYS > /tmp/ndp.out 2>/tmp/ndp.err; cat /tmp/ndp.out /tmp/ndp.err
$KV get $K --mode vhost $KEYS > /tmp/walk.out 2>/tmp/walk.err
check kv-get-ndp-values awk '$2 == "not" { if ($1 < 29791) bad = 1; next } $1 != $2 { bad = 1 } END { exit bad || NR != 12 }' /tmp/ndp.out
check kv-get-ndp-equals-walk cmp /tmp/ndp.out /tmp/walk.out
check kv-get-missing grep -q "^29791 not found" /tmp/ndp.out
$KV range $K --mode ndp 100 163 > /tmp/range.out 2>/tmp/range.err
check kv-range-64-keys awk '$1 != $2 { bad = 1 } END { exit bad || NR != 64 }' /tmp/range.out
$KV range $K --mode ndp 29700 29790 --sum > /tmp/sum.out 2>/tmp/sum.err; cat /tmp/sum.out /tmp/sum.err
check kv-range-sum grep -q "count 91 sum_keys %(sum)d sum_values %(sum)d" /tmp/sum.out
$KV bench $K --mode ndp --ops 2000 --qd 8 > /tmp/kvbench 2>&1; cat /tmp/kvbench
check kv-bench-ndp-qd8 sh -c "tail -n 1 /tmp/kvbench | grep -q '^ndp,'"
$KV bench $K --mode ndp --ops 500 --range 16 --qd 4 > /tmp/kvrbench 2>&1; cat /tmp/kvrbench
check kv-bench-ndp-range sh -c "tail -n 1 /tmp/kvrbench | grep -q '^ndp,'"
check rio-xrp sh -c "head -c 4096 /dev/zero > /tmp/key.bin; $RIO kernel:/dev/virtio-ndp/$KVD xrp /lib/rosen/bpfkv_xrp_lookup.o bpfkv_xrp_lookup 0 --scratch-in /tmp/key.bin --scratch-out /tmp/out.bin"
%(hostile)s
# the driver's own suite on the scratch disk: every ioctl and its bad
# arguments, NDP requests, foreign handles, raw writes while claimed
# (it prints its own check lines)
vndp_check ndp /dev/virtio-ndp/$SCR /lib/rosen/ndp_progs.o || E2E_FAILED=$((E2E_FAILED + 1))
vndp_check busy /dev/virtio-ndp/$SCR /dev/$SCR || E2E_FAILED=$((E2E_FAILED + 1))

# --- read-only disk ---
check ro-sysfs test "$(cat /sys/block/$RO/ro)" = 1
check ro-blk-write-refused sh -c '! blkcheck write /dev/'$RO' 0 4K 1'
check ro-rio-write-refused sh -c '! $RIO kernel:/dev/virtio-ndp/'$RO' write 0 < /lib/rosen/sector.bin'
check ro-read blkcheck zeros /dev/$RO 0 1M
vndp_check ro /dev/virtio-ndp/$RO || E2E_FAILED=$((E2E_FAILED + 1))

# --- qemu-storage-daemon: a plain disk, no NDP ---
check qsd-write blkcheck write /dev/$QSD 4M 1M 91
check qsd-verify blkcheck verify /dev/$QSD 4M 1M 91
vndp_check plain /dev/virtio-ndp/$QSD || E2E_FAILED=$((E2E_FAILED + 1))
$RIO kernel:/dev/virtio-ndp/$QSD info > /tmp/qinfo 2>&1; cat /tmp/qinfo
check qsd-info-no-ndp grep -q "ndp: no" /tmp/qinfo
$RIO kernel:/dev/virtio-ndp/$QSD ndp-load /lib/rosen/bpfkv_xrp_lookup.o bpfkv_xrp_lookup xrp > /tmp/qload 2>&1; cat /tmp/qload
check qsd-ndp-eopnotsupp grep -qi "not supported\|virtio-ndp" /tmp/qload

# --- the scratch disk unbound under an open file (requests in flight, a
# mapping kept by a child, a LOAD stuck in a user fault), then bound again ---
vndp_check unbind /dev/virtio-ndp/$SCR /lib/rosen/ndp_progs.o || E2E_FAILED=$((E2E_FAILED + 1))

# --- rmmod while in use, then rmmod and insmod again ---
exec 3< /dev/virtio-ndp/$KVD
check rmmod-refused-while-open sh -c '! rmmod virtio_ndp'
exec 3<&-
check rmmod rmmod virtio_ndp
check disks-gone sh -c '! test -e /dev/virtio-ndp/'$KVD
check insmod-again insmod /lib/virtio_ndp.ko
check rebound sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do n=$(ls /sys/bus/virtio/devices/'$V_KV'/block 2>/dev/null); [ -n "$n" ] && [ -c /dev/virtio-ndp/$n ] && exit 0; sleep 0.1; done; exit 1'
KVD=$(ls /sys/bus/virtio/devices/$V_KV/block)
check after-reload-ndp sh -c "$KV get --db /dev/null --levels %(levels)d --uri kernel:/dev/virtio-ndp/$KVD --mode ndp 4242 2>/dev/null | grep -q '^4242 4242$'"
check fs-mount-again mount -t ext4 -o ro /dev/$(ls /sys/bus/virtio/devices/$V_FS/block) /mnt
check fs-reread-after-reload test "$(md5sum < /mnt/guest.txt | cut -d' ' -f1)" = %(guest)s
umount /mnt

# --- the kernel said nothing bad ---
dmesg > /tmp/dmesg
grep -E "BUG|WARNING|Oops|general protection" /tmp/dmesg
check kernel-log-clean sh -c '! grep -qE "BUG|WARNING|Oops|general protection" /tmp/dmesg'
finish
""" % dict(fs_modules=" ".join(FS_MODULES), fs_sectors=FS_SIZE // 512, fs_size=FS_SIZE,
           kv_sectors=KV_SIZE // 512, kv_size=KV_SIZE, ro_sectors=RO_SIZE // 512, ro_size=RO_SIZE,
           qsd_sectors=QSD_SIZE // 512, qsd_size=QSD_SIZE, scr_sectors=SCR_SIZE // 512,
           scr_size=SCR_SIZE, hello=sums["hello.txt"],
           big=sums["dir/big.bin"], glen=GUEST_FILE_LEN,
           guest=hashlib.md5(guest_file_bytes()).hexdigest(), levels=KV_LEVELS,
           sum=sum(range(29700, 29791)),
           hostile=(r"""$RIO kernel:/dev/virtio-ndp/$KVD ndp-load /lib/rosen/verifier_hostile.o cq_leak_data cq > /tmp/hload 2>&1; cat /tmp/hload
check hostile-rejected-with-log grep -q "pointer is stored into the data" /tmp/hload"""
                    if hostile_obj_ok else "check hostile-object-present false"))


def make_kv_image(bpfkv, img):
    db = img + ".db"
    p = subprocess.run([bpfkv, "create", db, "--levels", str(KV_LEVELS)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        return "bpfkv create failed (%d): %s" % (p.returncode, p.stdout.strip())
    with open(db, "rb") as f:
        data = f.read()
    os.unlink(db)
    if len(data) > RAW_PLAN[0][0]:
        return "database of %d bytes overlaps the raw tests at %d" % (len(data), RAW_PLAN[0][0])
    with open(img, "wb") as f:
        f.write(data)
        f.truncate(KV_SIZE)
    return data


def expected_kv(db):
    want = bytearray(KV_SIZE)
    want[:len(db)] = db
    for off, length, seed in RAW_PLAN:
        want[off:off + length] = pattern(seed, off, length)
    with open(RAW64K, "rb") as f:
        raw = f.read()
    want[RAW_PLAN[1][0]:RAW_PLAN[1][0] + len(raw)] = raw
    for off, length in ZERO_RANGES:
        want[off:off + length] = bytes(length)
    return bytes(want)


RAW64K = None


def first_diff(got, want):
    if len(got) != len(want):
        return "%d bytes, expected %d" % (len(got), len(want))
    if got == want:
        return None
    i = next(i for i in range(len(want)) if got[i] != want[i])
    return "first difference at byte %d" % i


def run(args, tmp):
    global RAW64K
    build = os.path.abspath(args.build)
    daemon = os.path.join(build, "app", "rosenbridged", "rosenbridged")
    rio = os.path.join(build, "app", "rosen-io", "rosen-io")
    bpfkv = os.path.join(build, "app", "bpfkv", "bpfkv")
    lookup_obj = os.path.join(build, "progs", "bpfkv_xrp_lookup.o")
    hostile_obj = os.path.join(build, "tests", "programs", "verifier_hostile.o")
    test_obj = os.path.join(build, "tests", "programs", "ndp_progs.o")
    for path, what in ((daemon, "rosenbridged"), (rio, "rosen-io"), (bpfkv, "bpfkv"),
                       (lookup_obj, "bpfkv_xrp_lookup.o"), (hostile_obj, "verifier_hostile.o"),
                       (test_obj, "ndp_progs.o")):
        if not check("built: %s" % what, os.path.exists(path), "%s missing: ninja -C %s" % (path, args.build)):
            return
    RosenDisks.daemon = daemon
    try:
        cache = guest.fetch_kernel(args.cache)
        check("fetch-kernel", True)
        t0 = time.monotonic()
        ko, release, warnings = build_module(cache, tmp)
        timings.append(("module build", time.monotonic() - t0))
        check("virtio_ndp.ko builds against linux-headers-%s" % release, True)
        check("virtio_ndp.ko builds without warnings", not warnings, "\n".join(warnings[:10]))
        vcheck = guest.build_static(os.path.join(KMOD_SRC, "tests", "vndp_check.c"),
                                    os.path.join(tmp, "vndp_check"),
                                    cflags=("-O2", "-Wall", "-Wextra", "-Werror",
                                            "-I" + os.path.join(ROOT, "include"), "-I" + KMOD_SRC))
        sums = make_fs_image(os.path.join(tmp, "fs.img"), tmp)
        RAW64K = os.path.join(tmp, "raw64k.bin")
        with open(RAW64K, "wb") as f:
            f.write(pattern(72, RAW_PLAN[1][0], RAW_PLAN[1][1]))
        sector = os.path.join(tmp, "sector.bin")
        with open(sector, "wb") as f:
            f.write(b"\x5a" * 512)
        adds = tool_adds(build, cache, ko, tmp) + [
            vcheck, test_obj + ":/lib/rosen/ndp_progs.o", hostile_obj + ":/lib/rosen/verifier_hostile.o",
            RAW64K + ":/lib/rosen/raw64k.bin", sector + ":/lib/rosen/sector.bin"]
        script = os.path.join(tmp, "test.sh")
        with open(script, "w") as f:
            f.write(guest_script(sums, True))
        initrd = guest.make_initramfs(os.path.join(tmp, "initrd.gz"), script, cache=cache, adds=adds)
    except guest.GuestError as e:
        check("prepare guest", False, str(e))
        return
    check("prepare guest", True)

    imgs = {k: os.path.join(tmp, k + ".img") for k in ("fs", "kv", "ro", "qsd", "scr")}
    socks = {k: os.path.join(tmp, k + ".sock") for k in imgs}
    for k, size in (("ro", RO_SIZE), ("qsd", QSD_SIZE), ("scr", SCR_SIZE)):
        with open(imgs[k], "wb") as f:
            f.truncate(size)
    db = make_kv_image(bpfkv, imgs["kv"])
    if not check("bpfkv create --levels %d" % KV_LEVELS, isinstance(db, bytes), db):
        return
    backend = RosenDisks([(imgs["fs"], socks["fs"], []), (imgs["kv"], socks["kv"], []),
                          (imgs["ro"], socks["ro"], ["--readonly"]), (imgs["scr"], socks["scr"], [])],
                         os.path.join(tmp, "rosenbridged.log"))
    qsd = QsdBackend(imgs["qsd"], socks["qsd"], os.path.join(tmp, "qsd.log"))
    backends.extend([backend, qsd])
    err = backend.start()
    if not check("rosenbridged start (four disks)", err is None,
                 "%s; log:\n%s" % (err, "\n".join(backend.log_tail()))):
        return
    err = qsd.start()
    if not check("qemu-storage-daemon start", err is None, "%s; log:\n%s" % (err, "\n".join(qsd.log_tail()))):
        return

    res = guest.boot(initrd, [guest.VhostBlk(socks[k], num_queues=QUEUES)
                              for k in ("fs", "kv", "ro", "qsd", "scr")],
                     os.path.join(tmp, "console.log"), cache=cache, timeout=args.timeout, smp=args.smp,
                     append="panic_on_warn=1 oops=panic")
    timings.append(("boot", res.elapsed))
    suite.guest_checks(res, ("insmod-virtio-ndp", "fs-umount", "blk-zeros", "rio-bench-qd8", "kv-get-ndp-values",
                 "kv-range-sum", "hostile-rejected-with-log", "ro-rio-write-refused", "qsd-ndp-eopnotsupp",
                 "rmmod", "insmod-again", "after-reload-ndp", "kernel-log-clean"))

    # The host's view of what the guest did.
    out = os.path.join(tmp, "guest.txt")
    p = subprocess.run(["debugfs", "-R", "dump /guest.txt %s" % out, imgs["fs"]], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    got = open(out, "rb").read() if os.path.exists(out) else b""
    check("fs: the file the guest wrote is in the image", got == guest_file_bytes(),
          "debugfs: %s; %d bytes" % (p.stdout.strip()[-200:], len(got)))
    p = subprocess.run(["e2fsck", "-fn", imgs["fs"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check("fs: e2fsck -fn finds the image clean", p.returncode == 0, p.stdout[-800:])
    with open(imgs["kv"], "rb") as f:
        diff = first_diff(f.read(), expected_kv(db))
    check("kv disk: database, raw writes and zeroed ranges as expected", diff is None, diff or "")
    with open(imgs["ro"], "rb") as f:
        check("ro disk untouched", f.read() == bytes(RO_SIZE), "the read-only image changed")
    with open(imgs["qsd"], "rb") as f:
        data = f.read()
    check("qsd disk holds the guest's write", data[4 * MiB:5 * MiB] == pattern(91, 4 * MiB, MiB), "")
    check("rosenbridged alive after the guest", backend.alive(), "\n".join(backend.log_tail()))
    clean, detail = backend.stop()
    check("rosenbridged stops on SIGTERM", clean, detail)
    qsd.stop()




if __name__ == "__main__":
    sys.exit(suite.main(__doc__, run, "rosen-e2e-kmod-"))
