#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Restart without loss, with a real QEMU guest (TCG): rosenbridged is
killed and restarted under concurrent O_DIRECT writers.

Usage: test_guest_restart.py --daemon PATH [--kills N] [--sigterms N]
       [--timeout S] [--keep] [--cache DIR] [--seed N]
Ends with "N passed, N failed"; exits 1 if anything failed.

The guest (2 vCPUs, a 2-queue vhost-user-blk-pci device whose chardev has
reconnect=1) runs guest/restartcheck: 4 writer processes pinned to the
vCPUs write numbered, generation-stamped blocks of mixed sizes (512 B to
128 KiB) in shuffled order, and after each generation read their whole
region back and check it (every acknowledged write must still be there).
Meanwhile the host kills the daemon with SIGKILL at random points (after it
served the reconnected guest for 0.2..1.2 s) and starts a new one on the
same socket and image, --kills times; --sigterms more of the restarts stop
it with SIGTERM instead, which must drain: the daemon after a SIGTERM finds
nothing in flight in the inflight region (it logs no resubmission) and the
one after a SIGKILL may.  Then the host writes STOP into the control
sector; the writers finish their generation, write done records and the
guest checks its kernel log for I/O errors.  On the host: every writer's
region holds its last generation in every block (stamp.py), and the last
daemon stops cleanly.

QEMU needs reconnect=N on the chardev to come back after the backend dies
(docs/robustness.md): without it the device stays disconnected.
"""
import argparse
import glob
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import guest  # noqa: E402
import stamp  # noqa: E402

MiB = 1024 * 1024
DISK_SIZE = 64 * MiB
CTRL = 1 * MiB            # control sector; done records follow it
WRITERS = 4
BASE = 4 * MiB
REGION = 3 * MiB // 2     # per writer
# Requests wait in the daemon for their budget, so a kill nearly always
# finds some in flight (a TCG guest is otherwise much slower than the
# daemon, which would sit idle at most kills).
THROTTLE = "bps-total=12000000"
RESTARTCHECK_SRC = os.path.join(HERE, "guest", "restartcheck.c")

results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + detail), flush=True)
    return bool(cond)


def note(msg):
    print("# " + msg, flush=True)


class ReconnectingBlk(guest.VhostBlk):
    """A vhost-user-blk-pci whose chardev reconnects (QEMU retries every
    `reconnect` seconds after the backend goes away)."""

    def qemu_args(self, index):
        args = super().qemu_args(index)
        args[1] += ",reconnect=1"
        return args


class Daemon:
    """rosenbridged on one image and socket; each start logs to its own file."""

    def __init__(self, path, image, sock, tmp, extra=None):
        self.path, self.image, self.sock, self.tmp = path, image, sock, tmp
        self.extra = ["--queues", "2", "--throttle", THROTTLE] if extra is None else extra
        self.proc = None
        self.n = 0
        self.log = None

    def start(self, timeout=15):
        self.n += 1
        self.log = os.path.join(self.tmp, "daemon-%02d.log" % self.n)
        with open(self.log, "w") as f:
            self.proc = subprocess.Popen([self.path, "--disk", self.image, "--socket", self.sock] +
                                         self.extra, stdin=subprocess.DEVNULL, stdout=f,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "exited with status %d: %s" % (self.proc.returncode, self.tail())
            try:
                if stat.S_ISSOCK(os.stat(self.sock).st_mode) and "listening on" in self.text():
                    return None
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        return "no socket after %d s" % timeout

    def text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def tail(self, n=15):
        return "\n".join(self.text().splitlines()[-n:])

    def wait_serving(self, timeout):
        """True once the guest reconnected to this daemon (its memory table came)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "guest memory" in self.text():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def stop(self, sig):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def guest_script(smp):
    return """. /lib/e2e.sh
wait_dev /dev/vda
check queue-count test "$(ls /sys/block/vda/mq | wc -l)" = {smp}
check writers restartcheck /dev/vda {ctrl} {w} {base} {region} 200
dmesg > /tmp/dmesg
if grep -iE "I/O error|blk_update_request|Buffer I/O|critical" /tmp/dmesg; then
  check no-io-errors-in-kernel-log false
else
  check no-io-errors-in-kernel-log true
fi
finish
""".format(smp=min(smp, 2), ctrl=CTRL, w=WRITERS, base=BASE, region=REGION)


def run(args, tmp, daemons):
    try:
        cache = guest.fetch_kernel(args.cache)
        rc_bin = guest.build_static(RESTARTCHECK_SRC, os.path.join(tmp, "restartcheck"))
        script = os.path.join(tmp, "test.sh")
        with open(script, "w") as f:
            f.write(guest_script(args.smp))
        initrd = guest.make_initramfs(os.path.join(tmp, "initrd.gz"), script, adds=[rc_bin], cache=cache)
    except guest.GuestError as e:
        check("guest set-up", False, str(e))
        return
    img, sock = os.path.join(tmp, "disk.img"), os.path.join(tmp, "vhost.sock")
    with open(img, "wb") as f:
        f.truncate(DISK_SIZE)
    d = Daemon(os.path.abspath(args.daemon), img, sock, tmp)
    daemons.append(d)
    err = d.start()
    if not check("daemon starts", err is None, err or ""):
        return

    console = os.path.join(tmp, "console.log")
    cmd = guest.qemu_command(guest.default_kernel(cache), initrd, [ReconnectingBlk(sock, num_queues=2)],
                             console, smp=args.smp)
    qerr = open(os.path.join(tmp, "qemu.stderr"), "w")
    t0 = time.monotonic()
    qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qerr, stderr=qerr,
                            start_new_session=True)
    try:
        restarts(args, d, qemu, console, t0, img)
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
        qerr.close()


def restarts(args, d, qemu, console, t0, img):
    rnd = random.Random(args.seed)
    plan = ["KILL"] * args.kills + ["TERM"] * args.sigterms
    rnd.shuffle(plan)
    # The first restart waits for the writers to be running.
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and qemu.poll() is None:
        try:
            with open(console, errors="replace") as f:
                if "ROSEN-E2E-START" in f.read():
                    break
        except OSError:
            pass
        time.sleep(0.1)
    resubmitted = []   # per SIGKILL restart: requests the next daemon resubmitted
    after_term = []    # per SIGTERM restart: the same (must be 0)
    for i, how in enumerate(plan):
        if qemu.poll() is not None:
            check("guest still running at restart %d" % (i + 1), False, "QEMU exited with %s" % qemu.returncode)
            return
        if not d.wait_serving(30):
            check("restart %d: the guest reconnected" % i, False, d.tail())
            return
        time.sleep(rnd.uniform(0.2, 1.2))
        rc = d.stop(signal.SIGKILL if how == "KILL" else signal.SIGTERM)
        if how == "TERM" and not check("restart %d: SIGTERM drains and exits" % (i + 1), rc in (0, -15),
                                       "status %s; %s" % (rc, d.tail())):
            return
        err = d.start()
        if not check("restart %d (%s): daemon %d starts" % (i + 1, how, d.n), err is None, err or ""):
            return
        if not d.wait_serving(30):
            check("restart %d: the guest reconnected" % (i + 1), False, d.tail())
            return
        time.sleep(0.05)
        m = re.findall(r"resubmitting (\d+) request", d.text())
        n = sum(int(x) for x in m)
        (resubmitted if how == "KILL" else after_term).append(n)
    note("requests resubmitted after each SIGKILL: %s; after each SIGTERM: %s" % (resubmitted, after_term))
    check("%d SIGKILL restarts, %d SIGTERM restarts" % (len(resubmitted), len(after_term)),
          len(resubmitted) == args.kills and len(after_term) == args.sigterms)
    check("some SIGKILL hit requests in flight (they were resubmitted)", sum(resubmitted) > 0,
          "no restart resubmitted anything: the kills never caught I/O in flight")
    check("nothing in flight after a SIGTERM (it drained)", all(n == 0 for n in after_term),
          "resubmissions after SIGTERM: %s" % after_term)
    with open(img, "r+b") as f:
        os.pwrite(f.fileno(), b"STOP" + bytes(508), CTRL)
        os.fsync(f.fileno())
    try:
        qemu.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        check("guest finishes after STOP", False, "QEMU still running %d s later" % args.timeout)
        return
    elapsed = time.monotonic() - t0
    with open(console, errors="replace") as f:
        text = f.read()
    status, reason, checks = guest.parse_console(text)
    for ok, name, why in checks:
        check("guest: " + name, ok, why)
    for line in text.splitlines():
        if line.startswith("restartcheck:"):
            note(line.strip())
    if not check("guest result", status == "PASS", "%s %s; console tail:\n%s" %
                 (status, reason, "\n".join(text.replace("\r", "").splitlines()[-30:]))):
        return
    note("guest ran %.1f s" % elapsed)
    with open(img, "rb") as f:
        data = f.read()
    for w in range(WRITERS):
        rec = stamp.done_record(data, CTRL, w)
        if not check("writer %d done record" % w, rec is not None, "missing"):
            continue
        gen, n, writes = rec
        note("writer %d: %d generations, %d blocks, %d writes" % (w, gen, n, writes))
        bad = stamp.check_region(data, w, BASE + w * REGION, REGION, gen)
        check("writer %d: every block holds generation %d on the host image" % (w, gen), bad is None, bad or "")
    rc = d.stop(signal.SIGTERM)
    check("the last daemon stops on SIGTERM", rc in (0, -15), "status %s" % rc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--kills", type=int, default=10, help="SIGKILL restarts")
    ap.add_argument("--sigterms", type=int, default=2, help="SIGTERM restarts")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    note("seed %d" % args.seed)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    tmp = tempfile.mkdtemp(prefix="rosen-e2e-restart-")
    daemons = []
    start = time.monotonic()
    try:
        run(args, tmp, daemons)
    except KeyboardInterrupt as e:
        check("interrupted", False, str(e))
    except Exception as e:
        import traceback
        traceback.print_exc()
        check("harness", False, "%s: %s" % (type(e).__name__, e))
    finally:
        for d in daemons:
            d.kill()
        failed = results.count(False)
        if args.keep or failed:
            for p in glob.glob(os.path.join(tmp, "*.img")) + glob.glob(os.path.join(tmp, "*.gz")):
                if not args.keep:
                    os.unlink(p)
            note("logs kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    note("total %.1f s" % (time.monotonic() - start))
    print("%d passed, %d failed" % (results.count(True), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
