#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The guest kernel driver virtio_ndp.ko across rosenbridged restarts: a
Linux guest (QEMU TCG, the device's chardev with reconnect=1) runs
restart_io on /dev/virtio-ndp/<disk> (librosen's kernel: transport) while
the host SIGKILLs and restarts the daemon.

Usage: test_guest_ndp_restart.py --build BUILD_DIR [--kills N] [--timeout S] [--keep]
Ends with "N passed, N failed"; exits 1 if anything failed.

In the guest, restart_io (BUILD/tests/restart/restart_io with its shared
libraries) writes numbered, generation-stamped blocks of mixed sizes
through the driver (8 in flight, raw disk I/O) and, on a second queue,
LOADs cq_sum once and runs synchronous READ_NDs with that handle, checking
every sum.  Each daemon restart loses the program: the device answers
STATE_LOST, the driver passes it on (and forgets the lost handle when
librosen unloads it), librosen loads the program again and retries.
Block requests in flight at a kill are resubmitted by the next daemon from
QEMU's inflight area.  The host then writes STOP into the control sector;
the guest must have seen no error and no kernel warning, and the image
must hold every writer block's last generation.
"""
import os
import random
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, HERE)
import guest  # noqa: E402
import stamp  # noqa: E402
import suite  # noqa: E402
from suite import check, note, timings  # noqa: E402
from ndp_guest import build_module, guest_libs, GUEST_ENV  # noqa: E402
from test_guest_restart import Daemon, ReconnectingBlk  # noqa: E402

MiB = 1 << 20
DISK = 16 * MiB
CTRL = 1 * MiB
BASE = 4 * MiB
REGION = 1 * MiB
KILLS = 4


def guest_script():
    return r""". /lib/e2e.sh
insmod /lib/virtio_ndp.ko || fail "insmod virtio_ndp"
V=""
for d in /sys/bus/virtio/devices/virtio*; do
  [ "$(cat $d/block/*/size 2>/dev/null)" = "%(sectors)d" ] && V=${d##*/}
done
[ -n "$V" ] || fail "no %(size)d-byte disk"
echo $V > /sys/bus/virtio/drivers/virtio_blk/unbind || fail unbind
echo $V > /sys/bus/virtio/drivers/virtio_ndp/bind || fail bind
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  N=$(ls /sys/bus/virtio/devices/$V/block 2>/dev/null)
  [ -n "$N" ] && [ -c /dev/virtio-ndp/$N ] && break
  sleep 0.1
done
[ -c /dev/virtio-ndp/$N ] || fail "no /dev/virtio-ndp/$N"
# Not under check: its "running" line must reach the console at once.
%(env)s /bin/restart_io kernel:/dev/virtio-ndp/$N - %(ctrl)d %(base)d %(region)d 1 /lib/rosen
rc=$?
check restart-io test $rc = 0
dmesg > /tmp/dmesg
check kernel-log-clean sh -c '! grep -E "WARNING|BUG|Oops|I/O error" /tmp/dmesg'
finish
""" % dict(env=GUEST_ENV, sectors=DISK // 512, size=DISK, ctrl=CTRL, base=BASE, region=REGION)


def run(args, tmp):
    build = os.path.abspath(args.build)
    rio = os.path.join(build, "tests", "restart", "restart_io")
    try:
        cache = guest.fetch_kernel(args.cache)
        t0 = time.monotonic()
        ko, release, warnings = build_module(cache, tmp)
        timings.append(("module build", time.monotonic() - t0))
        check("virtio_ndp.ko builds without warnings", not warnings, "\n".join(warnings[:10]))
        script = os.path.join(tmp, "test.sh")
        with open(script, "w") as f:
            f.write(guest_script())
        adds = [ko + ":/lib/virtio_ndp.ko", rio,
                os.path.join(build, "tests", "programs", "ndp_progs.o") + ":/lib/rosen/ndp_progs.o"]
        adds += guest_libs(rio)
        initrd = guest.make_initramfs(os.path.join(tmp, "initrd.gz"), script, cache=cache, adds=adds)
    except guest.GuestError as e:
        check("prepare guest", False, str(e))
        return
    img, sock = os.path.join(tmp, "disk.img"), os.path.join(tmp, "vhost.sock")
    with open(img, "wb") as f:
        f.truncate(DISK)
    d = Daemon(os.path.join(build, "app", "rosenbridged", "rosenbridged"), img, sock, tmp,
               extra=["--queues", "2", "--throttle", "bps-total=20000000"])
    suite.backends.append(d)
    err = d.start()
    if not check("daemon starts", err is None, err or ""):
        return
    console = os.path.join(tmp, "console.log")
    cmd = guest.qemu_command(guest.default_kernel(cache), initrd, [ReconnectingBlk(sock, num_queues=2)],
                             console, smp=args.smp, append="panic_on_warn=1 oops=panic")
    with open(os.path.join(tmp, "qemu.stderr"), "w") as qerr:
        qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qerr, stderr=qerr,
                                start_new_session=True)
    try:
        kills(args, d, qemu, console, img)
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()


def console_text(console):
    try:
        with open(console, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def kills(args, d, qemu, console, img):
    rnd = random.Random()
    deadline = time.monotonic() + args.timeout
    while "restart_io: running" not in console_text(console):
        if qemu.poll() is not None or time.monotonic() > deadline:
            check("restart_io runs in the guest", False, "console:\n" + console_text(console)[-2000:])
            return
        time.sleep(0.1)
    resub = []
    for i in range(KILLS):
        if not d.wait_serving(30):
            check("kill %d: the guest reconnected" % i, False, d.tail())
            return
        time.sleep(rnd.uniform(0.5, 1.5))
        d.stop(signal.SIGKILL)
        err = d.start()
        if not check("kill %d: daemon %d starts" % (i + 1, d.n), err is None, err or ""):
            return
        if not d.wait_serving(30):
            check("kill %d: the guest reconnected" % (i + 1), False, d.tail())
            return
        resub.append(sum(int(x) for x in re.findall(r"resubmitting (\d+) request", d.text())))
    time.sleep(2.0)  # READ_NDs after the last restart too
    with open(img, "r+b") as f:
        os.pwrite(f.fileno(), b"STOP" + bytes(508), CTRL)
        os.fsync(f.fileno())
    try:
        qemu.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        check("the guest finishes after STOP", False, "console:\n" + console_text(console)[-2000:])
        return
    text = console_text(console)
    for line in text.splitlines():
        if "restart_io:" in line:
            note(line.strip())
    note("requests resubmitted after each kill: %s" % resub)
    status, reason, checks = guest.parse_console(text)
    for ok, name, why in checks:
        check("guest: " + name, ok, why)
    check("guest result", status == "PASS", "%s %s; console:\n%s" % (status, reason, text[-2000:]))
    check("no kernel panic, BUG or WARNING on the console",
          not any(w in text for w in ("Kernel panic", "BUG:", "WARNING:", "Oops")), "see console")
    m = re.search(r"restart_io: ndp: (\d+) READ_NDs", text)
    check("READ_NDs ran across the restarts", m and int(m.group(1)) >= 2, "none counted")
    loads = 0
    for name in os.listdir(d.tmp):
        if name.startswith("daemon-"):
            with open(os.path.join(d.tmp, name), errors="replace") as f:
                loads += len(re.findall(r"loaded section 'cq_sum'", f.read()))
    check("librosen loaded the program again after restarts", loads >= 2, "%d LOADs" % loads)
    with open(img, "rb") as f:
        data = f.read()
    rec = stamp.done_record(data, CTRL, 0)
    if check("writer done record", rec is not None, "missing"):
        bad = stamp.check_region(data, 0, BASE, REGION, rec[0])
        check("every block holds generation %d on the image" % rec[0], bad is None, bad or "")
    rc = d.stop(signal.SIGTERM)
    check("the last daemon stops on SIGTERM", rc in (0, -15), "status %s" % rc)


if __name__ == "__main__":
    sys.exit(suite.main(__doc__, run, "rosen-e2e-kmod-restart-"))
