#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end test of librosen's pci transport: a Linux guest (QEMU TCG)
drives virtio-blk / virtio-ndp PCI devices from user space, and the host
checks the backing images byte for byte.

Usage: test_guest_pci.py --build BUILD_DIR [--timeout S] [--keep] [--cache DIR]
Ends with "N passed, N failed"; exits 1 if anything failed.

One rosenbridged serves three disks to one guest:
  disk A  -device vhost-user-blk-pci (transitional, 1af4:1001): the guest
          kernel's virtio_blk makes it /dev/vda; blkcheck writes and reads it.
  disk B  -device vhost-user-blk-pci,disable-legacy=on (modern, 1af4:1042):
          the guest script finds it by its id, checks that librosen refuses
          it (and other wrong addresses) with clear errors while it is still
          bound to virtio-pci, binds it to uio_pci_generic with
          scripts/uio-bind.sh, checks the no-hugepages error, reserves
          hugepages and runs rosen_pci_check (BUILD_DIR/tests/e2e/guest,
          built by meson): sync and async QD 8 writes through librosen,
          read back and verified, argument errors, a close and reopen.
  disk C  -device vhost-user-blk-pci,disable-legacy=on: a BPF-KV database
          (bpfkv create --levels 3) followed by zeros.  The guest tells it
          from B by its size, binds it to uio_pci_generic too and runs
          rosen_pci_check ndp: virtio-ndp through the pci transport
          (info.ndp, the bpfkv_xrp_lookup xrp program against a guest-driven
          walk for 100 keys, hostile requests, unload, plain I/O after it).
  host    all images equal the expected contents; the daemon logged the
          program load and stops cleanly.
A sanitized build's rosen_pci_check is dynamic: its shared libraries go
into the initramfs with it, so it runs under ASan/UBSan in the guest.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, HERE)
import guest  # noqa: E402
from test_guest_blk import Layout, compare_image, pattern  # noqa: E402
from ndp_guest import RosenDisks, guest_libs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
UIO_BIND = os.path.join(ROOT, "scripts", "uio-bind.sh")

KiB = 1024
MiB = 1024 * KiB
DISK_A = 32 * MiB
DISK_B = 16 * MiB
DISK_C = 4 * MiB  # the BPF-KV database (2.4 MB at 3 levels), then zeros
KV_LEVELS = 3
QUEUES = 2
HUGEPAGES = 8  # rosen_pci_check asks for 16 MiB of DMA memory

# What rosen_pci_check writes (its `plan` and async regions), last write wins:
# (offset, length, seed); negative offsets count from the end of disk B.
PLAN = [
    (0, 4 * KiB, 41),
    (1 * MiB + 512, 3 * 512, 42),
    (2 * MiB, 1 * MiB, 43),
    (-64 * KiB, 64 * KiB, 44),
    (4 * MiB, 128 * KiB, 45),
    (4 * MiB + 64 * KiB, 8 * KiB, 46),
    (8 * MiB, 2 * MiB, 47),
    (10 * MiB, 2 * MiB, 48),
]
VDA_SEED = 51
# What rosen_pci_check ndp writes on disk C after the NDP checks (its
# NDP_TAIL_LEN and NDP_TAIL_SEED): the last 64 KiB, past the database.
NDP_TAIL = (DISK_C - 64 * KiB, 64 * KiB, 61)
LOAD_LINE = "loaded section 'bpfkv_xrp_lookup' as a xrp program"

results = []
timings = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + detail), flush=True)
    return bool(cond)


def note(msg):
    print("# " + msg, flush=True)


def guest_script(dynamic):
    """The guest's test.sh."""
    env = "LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu " if dynamic else ""
    return r""". /lib/e2e.sh
echo "guest: kernel $(uname -r), $(nproc) cpu(s)"
CHECK="env %(env)s/bin/rosen_pci_check"
# prog CMD...: a rosen_pci_check run (it prints its own check lines)
prog() { "$@" || E2E_FAILED=$((E2E_FAILED + 1)); }

# The kernel's virtio_blk on the first (transitional) device; the two modern
# ones are vdb and vdc until they are handed to uio_pci_generic.
wait_dev /dev/vda
wait_dev /dev/vdc
check vda-write blkcheck write /dev/vda 0 1M %(vda_seed)d
check vda-verify blkcheck verify /dev/vda 0 1M %(vda_seed)d
check vda-flush blkcheck flush /dev/vda

# Two modern (1af4:1042) devices: disk B (io) and disk C (the BPF-KV
# database, for NDP), told apart by their size (512-byte sectors).
modern=""; kvdev=""; others=""
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor)" = 0x1af4 ] || continue
  drv=none; [ -e $d/driver ] && drv=$(basename $(readlink $d/driver))
  size=$(cat $d/virtio*/block/*/size 2>/dev/null)
  echo "pci: ${d##*/} $(cat $d/vendor):$(cat $d/device) driver $drv size ${size:-?} sectors"
  if [ "$(cat $d/device)" = 0x1042 ]; then
    case "$size" in
      %(disk_b_sectors)d) modern="$modern ${d##*/}" ;;
      %(disk_c_sectors)d) kvdev="$kvdev ${d##*/}" ;;
      *) fail "1af4:1042 device ${d##*/} has ${size:-no} sectors: neither disk B nor C" ;;
    esac
  else
    others="$others ${d##*/}"
  fi
done
set -- $modern
[ $# -eq 1 ] || fail "want exactly one 1af4:1042 device of %(disk_b)d bytes, found:${modern:- none}"
bdf=$1
set -- $kvdev
[ $# -eq 1 ] || fail "want exactly one 1af4:1042 device of %(disk_c)d bytes, found:${kvdev:- none}"
kv_bdf=$1
set -- $others
vda_bdf=$1
d=/sys/bus/pci/devices/$bdf
echo "pci: $bdf resources (start end flags):"; head -n 6 $d/resource
echo "pci: $bdf config space:"; od -A x -t x1 -v $d/config

# Wrong addresses fail before anything touches a device.
prog $CHECK open-error pci:0000:00:1f.7 ENOENT "no such PCI device"
prog $CHECK open-error pci:00:05 EINVAL "not a PCI address"
prog $CHECK open-error pci:$bdf EBUSY "scripts/uio-bind.sh $bdf"
check wrong-driver-kept-virtio-pci test "$(basename $(readlink $d/driver))" = virtio-pci

run sh /bin/uio-bind.sh --hugepages 0 $bdf
check bound-uio test "$(basename $(readlink $d/driver))" = uio_pci_generic
check uio-node ls $d/uio
check vda-bdf-untouched test "$(basename $(readlink /sys/bus/pci/devices/$vda_bdf/driver))" = virtio-pci
echo 0 > /proc/sys/vm/nr_hugepages
prog $CHECK open-error pci:$bdf ENOMEM "nr_hugepages"
run sh /bin/uio-bind.sh --hugepages %(hugepages)d $bdf
grep -i huge /proc/meminfo

prog $CHECK io pci:$bdf %(disk_b)d %(queues)d

# virtio-ndp through the pci transport, on the BPF-KV disk.
run sh /bin/uio-bind.sh --hugepages %(hugepages)d $kv_bdf
check kv-bound-uio test "$(basename $(readlink /sys/bus/pci/devices/$kv_bdf/driver))" = uio_pci_generic
prog $CHECK ndp pci:$kv_bdf /lib/rosen/bpfkv_xrp_lookup.o /lib/rosen/ndp_progs.o %(levels)d %(disk_c)d

# The kernel's disk is unharmed by the user-space driver beside it.
check vda-still-verifies blkcheck verify /dev/vda 0 1M %(vda_seed)d
finish
""" % dict(env=env, vda_seed=VDA_SEED, hugepages=HUGEPAGES, disk_b=DISK_B, queues=QUEUES,
           disk_c=DISK_C, disk_b_sectors=DISK_B // 512, disk_c_sectors=DISK_C // 512,
           levels=KV_LEVELS)


def expected_layouts():
    a, b = Layout(DISK_A), Layout(DISK_B)
    a.put(0, 1 * MiB, VDA_SEED)
    for off, length, seed in PLAN:
        b.put(off if off >= 0 else DISK_B + off, length, seed)
    return a, b


def make_kv_image(bpfkv, img):
    """Disk C: `bpfkv create` writes the database, zeros pad it to DISK_C.
    Returns the database's bytes, or a string saying what went wrong."""
    db = img + ".db"
    p = subprocess.run([bpfkv, "create", db, "--levels", str(KV_LEVELS)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        return "bpfkv create failed (%d): %s" % (p.returncode, p.stdout.strip())
    with open(db, "rb") as f:
        data = f.read()
    os.unlink(db)
    if len(data) % 512 or len(data) > NDP_TAIL[0]:
        return "database of %d bytes does not fit before the tail write at %d" % (len(data), NDP_TAIL[0])
    with open(img, "wb") as f:
        f.write(data)
        f.truncate(DISK_C)
    return data


def compare_kv_image(path, db):
    """None if disk C holds the database, zeros, and rosen_pci_check ndp's
    tail write; else a description."""
    want = bytearray(DISK_C)
    want[:len(db)] = db
    off, length, seed = NDP_TAIL
    want[off:off + length] = pattern(seed, off, length)
    try:
        with open(path, "rb") as f:
            got = f.read()
    except OSError as e:
        return "cannot read %s: %s" % (path, e)
    if len(got) != DISK_C:
        return "image is %d bytes, expected %d" % (len(got), DISK_C)
    if got == want:
        return None
    i = next(i for i in range(DISK_C) if got[i] != want[i])
    what = ("the database" if i < len(db) else "the tail write" if i >= off else "zeros")
    return "first difference at byte %d (in %s)" % (i, what)


def describe_device(console_log):
    """Notes on the modern device's virtio capabilities, from the config
    space dump the guest printed (for people; not a check)."""
    try:
        with open(console_log, errors="replace") as f:
            lines = f.read().replace("\r", "").splitlines()
    except OSError:
        return
    cfg = bytearray()
    res = []
    mode = None
    for line in lines:
        if line.startswith("pci: ") and "config space" in line:
            mode = "cfg"
            continue
        if line.startswith("pci: ") and "resources" in line:
            mode = "res"
            continue
        if mode == "cfg":
            w = line.split()
            if len(w) > 1 and all(len(x) == 2 for x in w[1:]):
                cfg += bytes(int(x, 16) for x in w[1:])
                continue
            mode = None
        elif mode == "res":
            w = line.split()
            if len(w) == 3 and all(x.startswith("0x") for x in w):
                res.append(tuple(int(x, 16) for x in w))
                continue
            mode = None
    if len(cfg) < 256:
        return
    names = {1: "common", 2: "notify", 3: "ISR", 4: "device", 5: "pci-cfg", 8: "shm"}
    pos, caps, n = cfg[0x34] & ~3, [], 0
    while pos and n < 48:
        n += 1
        if cfg[pos] == 0x09:
            t, bar = cfg[pos + 3], cfg[pos + 4]
            off = int.from_bytes(cfg[pos + 8:pos + 12], "little")
            ln = int.from_bytes(cfg[pos + 12:pos + 16], "little")
            s = "%s@0x%02x: BAR %d +0x%x len 0x%x" % (names.get(t, t), pos, bar, off, ln)
            if t == 2:
                s += " mult %d" % int.from_bytes(cfg[pos + 16:pos + 20], "little")
            caps.append(s)
        elif cfg[pos] == 0x11:
            caps.append("MSI-X@0x%02x" % pos)
        pos = cfg[pos + 1] & ~3
    bars = ["BAR%d %s %d KiB" % (i, "mem" if r[2] & 0x200 else "io", (r[1] - r[0] + 1) // 1024)
            for i, r in enumerate(res) if r[1] > r[0]]
    note("device: " + "; ".join(caps))
    note("device: " + ", ".join(bars))


def run(args, tmp):
    build = os.path.abspath(args.build)
    daemon = os.path.join(build, "app", "rosenbridged", "rosenbridged")
    checker = os.path.join(build, "tests", "e2e", "guest", "rosen_pci_check")
    bpfkv = os.path.join(build, "app", "bpfkv", "bpfkv")
    lookup_obj = os.path.join(build, "progs", "bpfkv_xrp_lookup.o")
    test_obj = os.path.join(build, "tests", "programs", "ndp_progs.o")
    for path, what, mode in ((daemon, "rosenbridged", os.X_OK), (checker, "rosen_pci_check", os.X_OK),
                             (bpfkv, "bpfkv", os.X_OK), (lookup_obj, "bpfkv_xrp_lookup.o", os.R_OK),
                             (test_obj, "ndp_progs.o", os.R_OK)):
        if not check("built: %s" % what, os.access(path, mode),
                     "%s missing: ninja -C %s" % (path, args.build)):
            return
    RosenDisks.daemon = daemon
    try:
        cache = guest.fetch_kernel(args.cache)
        check("fetch-kernel", True)
        blkcheck = guest.build_static(guest.BLKCHECK_SRC, os.path.join(tmp, "blkcheck"))
        libs = guest_libs(checker)
        if libs:
            note("rosen_pci_check is dynamic (sanitized build): %d libraries go along" % len(libs))
        script = os.path.join(tmp, "test.sh")
        with open(script, "w") as f:
            f.write(guest_script(bool(libs)))
        initrd = guest.make_initramfs(os.path.join(tmp, "initrd.gz"), script, cache=cache,
                                      adds=[blkcheck, checker, UIO_BIND + ":/bin/uio-bind.sh",
                                            lookup_obj + ":/lib/rosen/bpfkv_xrp_lookup.o",
                                            test_obj + ":/lib/rosen/ndp_progs.o"] + libs)
    except guest.GuestError as e:
        check("prepare guest", False, str(e))
        return
    check("prepare guest", True)

    img_a, img_b = os.path.join(tmp, "diskA.img"), os.path.join(tmp, "diskB.img")
    img_c = os.path.join(tmp, "diskC.img")
    sock_a, sock_b = os.path.join(tmp, "a.sock"), os.path.join(tmp, "b.sock")
    sock_c = os.path.join(tmp, "c.sock")
    for path, size in ((img_a, DISK_A), (img_b, DISK_B)):
        with open(path, "wb") as f:
            f.truncate(size)
    kv_db = make_kv_image(bpfkv, img_c)
    if not check("bpfkv create --levels %d (disk C)" % KV_LEVELS, isinstance(kv_db, bytes), kv_db):
        return
    note("disk C: BPF-KV database of %d bytes (%d levels), zeros up to %d" %
         (len(kv_db), KV_LEVELS, DISK_C))
    log = os.path.join(tmp, "rosenbridged.log")
    backend = RosenDisks([(img_a, sock_a, []), (img_b, sock_b, []), (img_c, sock_c, [])], log, queues=QUEUES)
    backends.append(backend)
    err = backend.start()
    if not check("rosenbridged start (three disks)", err is None,
                 "%s; log:\n%s" % (err, "\n".join(backend.log_tail()))):
        return

    res = guest.boot(initrd, [guest.VhostBlk(sock_a, num_queues=QUEUES),
                              guest.VhostBlk(sock_b, num_queues=QUEUES, disable_legacy="on"),
                              guest.VhostBlk(sock_c, num_queues=QUEUES, disable_legacy="on")],
                     os.path.join(tmp, "console.log"), cache=cache, timeout=args.timeout,
                     smp=args.smp)
    timings.append(("boot", res.elapsed))
    names = set()
    for passed, name, reason in res.checks:
        check("guest: " + name, passed, reason)
        names.add(name)
    # The checks rosen_pci_check must have printed: a crash shows up here.
    for must in ("open", "reopen-reads-back", "async-qd8-read-qlast-data", "queue-full-drains",
                 "open-error-ENOMEM", "open-error-EBUSY", "vda-still-verifies",
                 "ndp-info-ndp-yes", "ndp-load-bpfkv-xrp-lookup", "ndp-lookup-matches-walk",
                 "ndp-lookup-hops", "ndp-unknown-handle-no-program",
                 "ndp-io-beyond-disk-out-of-range", "ndp-hop-limit",
                 "ndp-unloaded-handle-no-program", "ndp-plain-write-read-after"):
        if must not in names:
            check("guest: " + must, False, "no result line (crashed or never ran?)")
    note("guest: " + res.summary())
    check("guest result", res.passed, "%s (console log: %s)" % (res.summary(), res.console_log))
    describe_device(res.console_log)
    check("rosenbridged alive after the guest", backend.alive(), "\n".join(backend.log_tail()))
    try:
        with open(log, errors="replace") as f:
            daemon_log = f.read()
    except OSError as e:
        daemon_log = str(e)
    check("rosenbridged logged the bpfkv_xrp_lookup load", LOAD_LINE in daemon_log,
          "no line with \"%s\" in %s" % (LOAD_LINE, log))
    check("rosenbridged logged the out-of-range I/O", "leaves the" in daemon_log,
          "no \"leaves the\" line in %s" % log)

    layout_a, layout_b = expected_layouts()
    diff = compare_image(img_a, layout_a)
    check("disk A (virtio_blk) matches", diff is None, diff or "")
    diff = compare_image(img_b, layout_b)
    check("disk B (librosen over pci) matches byte for byte", diff is None, diff or "")
    diff = compare_kv_image(img_c, kv_db)
    check("disk C (NDP over pci) holds the database and the tail write", diff is None, diff or "")

    clean, detail = backend.stop()
    check("rosenbridged stops on SIGTERM", clean, detail + "; log:\n" + "\n".join(backend.log_tail()))
    check("rosenbridged removed its sockets",
          not any(os.path.exists(s) for s in (sock_a, sock_b, sock_c)), "a socket is still there")


backends = []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="meson build directory (default build)")
    ap.add_argument("--timeout", type=float, default=180, help="seconds for the guest boot")
    ap.add_argument("--smp", type=int, default=2, help="guest vCPUs")
    ap.add_argument("--cache", default=None, help="guest cache dir (default $ROSEN_CACHE/guest)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (images, logs)")
    args = ap.parse_args()

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    tmp = tempfile.mkdtemp(prefix="rosen-e2e-pci-")
    note("build %s, temp dir %s" % (args.build, tmp))
    start = time.monotonic()
    try:
        run(args, tmp)
    except KeyboardInterrupt as e:
        check("interrupted", False, str(e) or "KeyboardInterrupt")
    except Exception as e:  # report, clean up, count it
        import traceback
        traceback.print_exc()
        check("harness", False, "%s: %s" % (type(e).__name__, e))
    finally:
        for b in backends:
            b.kill()
        failed = results.count(False)
        if args.keep:
            note("kept %s" % tmp)
        elif failed:
            for name in os.listdir(tmp):
                if name.endswith((".img", ".gz", ".sock")) or name in ("blkcheck",):
                    os.unlink(os.path.join(tmp, name))
            note("logs kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for what, secs in timings:
        note("%s: %.1f s" % (what, secs))
    note("total %.1f s" % (time.monotonic() - start))
    print("%d passed, %d failed" % (results.count(True), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
