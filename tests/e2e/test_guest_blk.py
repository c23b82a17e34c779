#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end test: a Linux guest (QEMU TCG) does block I/O on a
vhost-user-blk-pci device served by a backend, and the host checks the
backing image byte for byte.

Usage: test_guest_blk.py --backend qsd
       test_guest_blk.py --backend rosenbridged --daemon PATH
Options: --timeout S (per boot, default 120), --smp N, --keep, --cache DIR,
         --no-discard-zeroes (do not require discarded ranges to read as zeros)
Ends with "N passed, N failed"; exits 1 if anything failed.

Steps:
  boot 1  O_DIRECT writes of known patterns at several offsets and sizes
          (first and last sectors, sub-page, unaligned to 4 KiB, 2 MiB,
          overwrites, one writer per vCPU so both queues carry requests),
          read back and verified, FLUSH (fsync), DISCARD (BLKDISCARD) and
          WRITE ZEROES (BLKZEROOUT) of ranges inside written data.
  host    the image equals the expected layout byte for byte.
  boot 2  a fresh QEMU (new frontend, same running backend) with the device
          modern-only (disable-legacy=on) reads the whole disk back through
          the guest and verifies it; a second device on a second backend
          appears as /dev/vdb, takes writes, and its image is checked too.
  boot 3  (rosenbridged) the image grows while the guest runs; `rosenctl
          disk-resize` re-reads it and announces the new capacity on the
          vhost-user backend channel (VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
          QEMU re-reads the config space and interrupts the guest, whose
          virtio_blk updates /sys/block/vda/size; the new space takes I/O.
  backend stops cleanly on SIGTERM (rosenbridged: and removes its socket).
"""
import argparse
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import guest  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
DISK_SIZE = 64 * MiB
DISK2_SIZE = 8 * MiB
M64 = (1 << 64) - 1

results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + detail), flush=True)
    return bool(cond)


def note(msg):
    print("# " + msg, flush=True)


# ---- the data pattern (same function as pattern_word in guest/blkcheck.c) ----

def pattern(seed, off, length):
    """Bytes blkcheck writes for SEED at absolute offset off (8-aligned)."""
    base = (seed * 0x9E3779B97F4A7C15) & M64
    first = off >> 3
    words = []
    for i in range(first, first + length // 8):
        x = (base + i) & M64
        x ^= x >> 31
        x = (x * 0xBF58476D1CE4E5B9) & M64
        x ^= x >> 29
        words.append(x)
    return struct.pack("<%dQ" % len(words), *words)


class Layout:
    """What the disk should hold: sorted non-overlapping (off, len, seed)
    extents covering it, seed 0 meaning zeros and None unknown contents
    (a discard that need not zero); put() applies writes in order."""

    def __init__(self, size):
        self.size = size
        self.extents = [(0, size, 0)]

    def put(self, off, length, seed):
        assert off % 512 == 0 and length % 512 == 0 and off + length <= self.size
        end = off + length
        new = []
        for (o, l, s) in self.extents:
            e = o + l
            if e <= off or o >= end:
                new.append((o, l, s))
                continue
            if o < off:
                new.append((o, off - o, s))
            if e > end:
                new.append((end, e - end, s))
        new.append((off, length, seed))
        new.sort()
        # merge neighbours with seed 0 (zeros are position-independent);
        # pattern extents need no merging: the pattern is offset-based.
        merged = []
        for ext in new:
            if merged and ext[2] == merged[-1][2] and merged[-1][0] + merged[-1][1] == ext[0]:
                merged[-1] = (merged[-1][0], merged[-1][1] + ext[1], ext[2])
            else:
                merged.append(ext)
        self.extents = merged

    def image(self):
        key = tuple(self.extents)
        if getattr(self, "_cached", (None,))[0] != key:
            img = bytearray(self.size)
            for (o, l, s) in self.extents:
                if s:
                    img[o:o + l] = pattern(s, o, l)
            self._cached = (key, bytes(img))
        return self._cached[1]


def compare_image(path, layout):
    """None if the file at path equals the layout, else a description."""
    want = layout.image()
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            got = f.read()
    except OSError as e:
        return "cannot read %s: %s" % (path, e)
    if size != layout.size:
        return "image is %d bytes, expected %d" % (size, layout.size)
    unknown = [(o, l) for (o, l, s) in layout.extents if s is None]
    if unknown:
        want = bytearray(want)
        for (o, l) in unknown:
            want[o:o + l] = got[o:o + l]
    if got == want:
        return None
    step = 4096
    bad_blocks = 0
    first = None
    for o in range(0, layout.size, step):
        if got[o:o + step] != want[o:o + step]:
            bad_blocks += 1
            if first is None:
                first = o
    i = first
    while got[i] == want[i]:
        i += 1
    what = next(("pattern seed %d extent %d+%d" % (s, o, l) if s else "zero extent %d+%d" % (o, l))
                for (o, l, s) in layout.extents if o <= i < o + l)
    return ("first difference at byte %d (in %s): got 0x%02x want 0x%02x; %d of %d 4-KiB blocks differ"
            % (i, what, got[i], want[i], bad_blocks, layout.size // step))


# ---- backends ----

class Backend:
    """A vhost-user-blk backend process serving one image on one socket."""
    name = "?"
    removes_socket = False

    def __init__(self, image, sock, log):
        self.image, self.sock, self.log = image, sock, log
        self.proc = None

    def command(self):
        raise NotImplementedError

    def start(self, timeout=15):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        cmd = self.command()
        self.logf = open(self.log, "w")
        self.logf.write("# " + " ".join(cmd) + "\n")
        self.logf.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "exited with status %d before creating %s" % (self.proc.returncode, self.sock)
            try:
                if stat.S_ISSOCK(os.stat(self.sock).st_mode):
                    return None
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        return "no socket %s after %d s" % (self.sock, timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM, wait; SIGKILL if needed.  Returns (clean, detail)."""
        if self.proc is None:
            return True, "not started"
        if self.proc.poll() is not None:
            rc = self.proc.returncode
            self._close()
            return False, "had already exited with status %d" % rc
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._close()
            return False, "still running %d s after SIGTERM; killed" % timeout
        self._close()
        # Killed by our SIGTERM (-15) counts as clean too: qsd exits that way.
        if rc not in (0, -signal.SIGTERM):
            return False, "exited with status %d after SIGTERM" % rc
        return True, "exit status %d" % rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self):
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None

    def log_tail(self, n=20):
        try:
            with open(self.log, errors="replace") as f:
                return f.read().splitlines()[-n:]
        except OSError:
            return []


class QsdBackend(Backend):
    name = "qsd"

    def command(self):
        return ["qemu-storage-daemon",
                # discard=unmap: pass guest discards on as hole punches (else ignored)
                "--blockdev", "driver=file,node-name=d0,filename=%s,cache.direct=off,discard=unmap"
                % self.image,
                "--export", "type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,"
                "addr.path=%s,writable=on,num-queues=2" % self.sock]


class RosenBackend(Backend):
    name = "rosenbridged"
    removes_socket = True
    daemon = None

    @property
    def control(self):
        return self.sock + ".ctl"

    def command(self):
        return [self.daemon, "--disk", self.image, "--socket", self.sock, "--queues", "2",
                "--name", "disk1", "--control", self.control]


# ---- guest scripts ----

SCRIPT_HEAD = """. /lib/e2e.sh
echo "guest: kernel $(uname -r), $(nproc) cpu(s)"

# irq_count NAME: interrupts of the vector called NAME, summed over the CPUs
irq_count() {
  awk -v n="$1" '$NF == n { s = 0; for (i = 2; i <= NF; i++) { if ($i ~ /^[0-9]+$/) s += $i; else break }; print s }' /proc/interrupts
}

# queues_used DEV N: each of the N request queues of virtio device DEV
# (e.g. virtio0) completed something (its MSI-X vector fired)
queues_used() {
  q=0
  while [ "$q" -lt "$2" ]; do
    n=$(irq_count "$1-req.$q")
    echo "$1-req.$q: ${n:-no} interrupts"
    [ "${n:-0}" -gt 0 ] || return 1
    q=$((q + 1))
  done
}
"""


def blk(*args):
    return "blkcheck " + " ".join(str(a) for a in args)


def write_plan(layout, discard_zeroes, smp):
    """Boot 1's script body; updates layout as the writes land."""
    d = "/dev/vda"
    lines = [
        "wait_dev %s" % d,
        'check size test "$(blkcheck size %s)" = %d' % (d, DISK_SIZE),
        'check queue-count test "$(ls /sys/block/vda/mq | wc -l)" = %d' % min(smp, 2),
    ]
    # (name, offset, length, seed): written then verified one by one.
    writes = [
        ("first-4k", 0, 4 * KiB, 1),
        ("sub-page-unaligned", 1 * MiB + 512, 3 * 512, 2),
        ("2m", 5 * MiB, 2 * MiB, 3),
        ("across-mib", 12 * MiB - 32 * KiB, 64 * KiB, 4),
        ("last-64k", DISK_SIZE - 64 * KiB, 64 * KiB, 5),
        ("overwrite-base", 20 * MiB, 256 * KiB, 6),
        ("overwrite-middle", 20 * MiB + 64 * KiB + 512, 4 * KiB, 7),
        ("discard-base", 40 * MiB, 1 * MiB, 10),
        ("zeroout-base", 48 * MiB, 1 * MiB, 11),
    ]
    for name, off, length, seed in writes:
        lines.append("check write-%s %s" % (name, blk("write", d, off, length, seed)))
        lines.append("check verify-%s %s" % (name, blk("verify", d, off, length, seed)))
        layout.put(off, length, seed)
    # the base region outside the overwrite is intact
    lines.append("check verify-overwrite-rest %s" % blk("verify", d, 20 * MiB, 64 * KiB, 6))
    lines.append("check verify-untouched-zeros %s" % blk("zeros", d, 60 * MiB, 1 * MiB))

    # one writer per vCPU at once: with 2 vCPUs and 2 queues both queues work
    par = [(0, 24 * MiB, 4 * MiB, 8), (1, 28 * MiB, 4 * MiB, 9)]
    lines.append("pids=''")
    for cpu, off, length, seed in par:
        lines.append("taskset -c %d %s > /tmp/par%d.out 2>&1 & pids=\"$pids $!\"" %
                     (cpu % smp, blk("write", d, off, length, seed), cpu))
    lines.append("st=0; for p in $pids; do wait $p || st=1; done; cat /tmp/par*.out")
    lines.append("check parallel-writes test $st = 0")
    for cpu, off, length, seed in par:
        lines.append("check verify-parallel-%d %s" % (cpu, blk("verify", d, off, length, seed)))
        layout.put(off, length, seed)
    if smp >= 2:
        lines.append("check both-queues-used queues_used virtio0 2")

    lines.append("check flush %s" % blk("flush", d))
    lines.append('echo "discard_max_bytes=$(cat /sys/block/vda/queue/discard_max_bytes) '
                 'write_zeroes_max_bytes=$(cat /sys/block/vda/queue/write_zeroes_max_bytes)"')
    lines.append("check discard-supported test \"$(cat /sys/block/vda/queue/discard_max_bytes)\" -gt 0")
    lines.append("check discard %s" % blk("discard", d, 40 * MiB + 256 * KiB, 512 * KiB))
    if discard_zeroes:
        lines.append("check discard-reads-zeros %s" % blk("zeros", d, 40 * MiB + 256 * KiB, 512 * KiB))
    layout.put(40 * MiB + 256 * KiB, 512 * KiB, 0 if discard_zeroes else None)
    lines.append("check discard-keeps-neighbours sh -c '%s && %s'" % (
        blk("verify", d, 40 * MiB, 256 * KiB, 10), blk("verify", d, 40 * MiB + 768 * KiB, 256 * KiB, 10)))
    lines.append("check zeroout %s" % blk("zeroout", d, 48 * MiB + 128 * KiB, 256 * KiB))
    lines.append("check zeroout-reads-zeros %s" % blk("zeros", d, 48 * MiB + 128 * KiB, 256 * KiB))
    layout.put(48 * MiB + 128 * KiB, 256 * KiB, 0)
    lines.append("check zeroout-keeps-neighbours sh -c '%s && %s'" % (
        blk("verify", d, 48 * MiB, 128 * KiB, 11), blk("verify", d, 48 * MiB + 384 * KiB, 640 * KiB, 11)))
    lines.append("check final-flush %s" % blk("flush", d))
    lines.append("finish")
    return SCRIPT_HEAD + "\n".join(lines) + "\n"


def verify_plan(layout, layout2):
    """Boot 2's script: verify all of vda; write and verify vdb."""
    lines = ["wait_dev /dev/vda", "wait_dev /dev/vdb",
             'check size-vda test "$(blkcheck size /dev/vda)" = %d' % DISK_SIZE,
             'check size-vdb test "$(blkcheck size /dev/vdb)" = %d' % DISK2_SIZE]
    # Every extent of the disk, so the whole of vda is read back.
    reads = []
    for (o, l, s) in layout.extents:
        if s is None:
            continue  # a discarded range with unspecified contents
        reads.append(blk("verify", "/dev/vda", o, l, s) if s else blk("zeros", "/dev/vda", o, l))
    lines.append("check reread-whole-vda sh -c '%s'" % " && ".join(reads))
    lines.append("check vdb-initially-zeros %s" % blk("zeros", "/dev/vdb", 0, DISK2_SIZE))
    for name, off, length, seed in [("vdb-head", 0, 128 * KiB, 21), ("vdb-tail", DISK2_SIZE - 1 * MiB, 1 * MiB, 22)]:
        lines.append("check write-%s %s" % (name, blk("write", "/dev/vdb", off, length, seed)))
        lines.append("check verify-%s %s" % (name, blk("verify", "/dev/vdb", off, length, seed)))
        layout2.put(off, length, seed)
    lines.append("check flush-vdb %s" % blk("flush", "/dev/vdb"))
    lines.append("finish")
    return SCRIPT_HEAD + "\n".join(lines) + "\n"


RESIZED = 96 * MiB
READY = "ROSEN-E2E-RESIZE-READY"


def resize_plan():
    """Boot 3's script: wait for the host to grow the disk, see it."""
    old, new = DISK_SIZE // 512, RESIZED // 512
    return SCRIPT_HEAD + """wait_dev /dev/vda
check size-before test "$(cat /sys/block/vda/size)" = {old}
echo {ready}
i=0
while [ "$(cat /sys/block/vda/size)" = {old} ] && [ $i -lt 600 ]; do usleep 100000; i=$((i + 1)); done
echo "guest: /sys/block/vda/size is $(cat /sys/block/vda/size) after $i polls"
check size-after-resize test "$(cat /sys/block/vda/size)" = {new}
check blkcheck-size-after-resize test "$(blkcheck size /dev/vda)" = {newb}
check new-space-reads-zeros {zeros}
check write-new-space {write}
check verify-new-space {verify}
check flush-after-resize {flush}
finish
""".format(old=old, new=new, newb=RESIZED, ready=READY,
           zeros=blk("zeros", "/dev/vda", DISK_SIZE, 1 * MiB),
           write=blk("write", "/dev/vda", RESIZED - 1 * MiB, 1 * MiB, 31),
           verify=blk("verify", "/dev/vda", RESIZED - 1 * MiB, 1 * MiB, 31),
           flush=blk("flush", "/dev/vda"))


def resize_boot(args, tmp, cache, blkcheck, backend, img, sock, boot_args):
    """Boot 3: grow the image under a running guest, announce it with
    rosenctl disk-resize, the guest sees the new size."""
    script = os.path.join(tmp, "boot3.sh")
    with open(script, "w") as f:
        f.write(resize_plan())
    initrd = guest.make_initramfs(os.path.join(tmp, "initrd3.gz"), script, adds=[blkcheck], cache=cache)
    console = os.path.join(tmp, "console3.log")
    box = {}
    t = threading.Thread(target=lambda: box.update(res=guest.boot(
        initrd, [guest.VhostBlk(sock, num_queues=2)], console, **boot_args)))
    t.start()
    deadline = time.monotonic() + args.timeout
    ready = False
    while not ready and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            with open(console, errors="replace") as f:
                ready = READY in f.read()
        except OSError:
            pass
    if check("boot3: the guest saw the old size and waits", ready, "no %s on the console" % READY):
        with open(img, "r+b") as f:
            f.truncate(RESIZED)
        rosenctl = args.rosenctl or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
            RosenBackend.daemon))), "rosenctl", "rosenctl")
        p = subprocess.run([rosenctl, "--control", backend.control, "disk-resize", "--name", "disk1"],
                           capture_output=True, text=True, timeout=30)
        check("rosenctl disk-resize announces 64 MiB -> 96 MiB",
              p.returncode == 0 and "64 MiB -> 96 MiB; announced to the frontend" in p.stdout,
              "rc %d: %s %s" % (p.returncode, p.stdout.strip(), p.stderr.strip()))
    t.join()
    res = box.get("res")
    if res is None:
        check("boot3: guest result", False, "the boot raised")
        return
    timings.append(("boot 3 (resize)", res.elapsed))
    report_boot("boot3", res)
    want = bytearray(RESIZED)
    want[RESIZED - 1 * MiB:] = pattern(31, RESIZED - 1 * MiB, 1 * MiB)
    with open(img, "rb") as f:
        f.seek(DISK_SIZE)
        got = f.read()
    check("host: the grown part of the image holds the guest's write, zeros elsewhere",
          got == bytes(want[DISK_SIZE:]), "%d bytes differ" % sum(1 for a, b in zip(got, want[DISK_SIZE:]) if a != b))


def report_boot(tag, res):
    """PASS/FAIL lines for the guest's checks and the boot itself."""
    for passed, name, reason in res.checks:
        check("%s: %s" % (tag, name), passed, reason)
    note("%s: %s" % (tag, res.summary()))
    return check("%s: guest result" % tag, res.passed, "%s (console log: %s)" % (res.summary(), res.console_log))


def run(args, tmp):
    try:
        cache = guest.fetch_kernel(args.cache)
    except guest.GuestError as e:
        check("fetch-kernel", False, str(e))
        return
    check("fetch-kernel", True)
    try:
        blkcheck = guest.build_static(guest.BLKCHECK_SRC, os.path.join(tmp, "blkcheck"))
    except guest.GuestError as e:
        check("build-blkcheck", False, str(e))
        return
    check("build-blkcheck", True)

    backend_cls = QsdBackend if args.backend == "qsd" else RosenBackend
    if args.backend == "rosenbridged":
        RosenBackend.daemon = os.path.abspath(args.daemon)
    discard_zeroes = not args.no_discard_zeroes

    img1, sock1 = os.path.join(tmp, "disk1.img"), os.path.join(tmp, "vhost1.sock")
    img2, sock2 = os.path.join(tmp, "disk2.img"), os.path.join(tmp, "vhost2.sock")
    for path, size in ((img1, DISK_SIZE), (img2, DISK2_SIZE)):
        with open(path, "wb") as f:
            f.truncate(size)
    layout, layout2 = Layout(DISK_SIZE), Layout(DISK2_SIZE)

    script1 = os.path.join(tmp, "boot1.sh")
    with open(script1, "w") as f:
        f.write(write_plan(layout, discard_zeroes, args.smp))
    script2 = os.path.join(tmp, "boot2.sh")
    with open(script2, "w") as f:
        f.write(verify_plan(layout, layout2))
    try:
        initrd1 = guest.make_initramfs(os.path.join(tmp, "initrd1.gz"), script1, adds=[blkcheck], cache=cache)
        initrd2 = guest.make_initramfs(os.path.join(tmp, "initrd2.gz"), script2, adds=[blkcheck], cache=cache)
    except guest.GuestError as e:
        check("mkinitramfs", False, str(e))
        return
    check("mkinitramfs", True)

    b1 = backend_cls(img1, sock1, os.path.join(tmp, "backend1.log"))
    b2 = backend_cls(img2, sock2, os.path.join(tmp, "backend2.log"))
    backends.extend([b1, b2])
    err = b1.start()
    if not check("backend start (%s)" % b1.name, err is None, "%s; log:\n%s" % (err, "\n".join(b1.log_tail()))):
        return

    boot_args = dict(cache=cache, timeout=args.timeout, smp=args.smp)
    res1 = guest.boot(initrd1, [guest.VhostBlk(sock1, num_queues=2)],
                      os.path.join(tmp, "console1.log"), **boot_args)
    timings.append(("boot 1 (write)", res1.elapsed))
    report_boot("boot1", res1)
    check("backend alive after boot 1", b1.alive(), "\n".join(b1.log_tail()))

    diff = compare_image(img1, layout)
    check("image matches after boot 1", diff is None, diff or "")
    if res1.status in ("TIMEOUT", "NO-RESULT"):
        note("boot 1 gave no result: skipping boot 2")
        return

    err = b2.start()
    if not check("second backend start", err is None, "%s; log:\n%s" % (err, "\n".join(b2.log_tail()))):
        return
    res2 = guest.boot(initrd2, [guest.VhostBlk(sock1, num_queues=2, disable_legacy="on"),
                                guest.VhostBlk(sock2, num_queues=2)],
                      os.path.join(tmp, "console2.log"), **boot_args)
    timings.append(("boot 2 (verify, 2 devices)", res2.elapsed))
    report_boot("boot2", res2)
    check("backends alive after boot 2", b1.alive() and b2.alive(),
          "\n".join(b1.log_tail() + b2.log_tail()))
    diff = compare_image(img1, layout)
    check("image unchanged by boot 2", diff is None, diff or "")
    diff = compare_image(img2, layout2)
    check("second image matches after boot 2", diff is None, diff or "")

    if args.backend == "rosenbridged":
        resize_boot(args, tmp, cache, blkcheck, b1, img1, sock1, boot_args)

    for b, sock in ((b1, sock1), (b2, sock2)):
        clean, detail = b.stop()
        check("%s stops on SIGTERM (%s)" % (b.name, os.path.basename(sock)), clean,
              detail + "; log:\n" + "\n".join(b.log_tail()))
        if b.removes_socket:
            check("%s removed %s" % (b.name, os.path.basename(sock)), not os.path.exists(sock),
                  "socket still there after exit")


backends = []
timings = []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=["qsd", "rosenbridged"], default="qsd")
    ap.add_argument("--daemon", help="path of rosenbridged (with --backend rosenbridged)")
    ap.add_argument("--rosenctl", help="path of rosenctl (default: next to the daemon in its build)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per guest boot")
    ap.add_argument("--smp", type=int, default=2, help="guest vCPUs (2 exercises both queues)")
    ap.add_argument("--cache", default=None, help="guest cache dir (default $ROSEN_CACHE/guest)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (images, logs)")
    ap.add_argument("--no-discard-zeroes", action="store_true",
                    help="do not require discarded ranges to read back as zeros")
    args = ap.parse_args()
    if args.backend == "rosenbridged":
        if not args.daemon:
            ap.error("--backend rosenbridged needs --daemon PATH")
        if not os.access(args.daemon, os.X_OK):
            ap.error("--daemon %s is not an executable file" % args.daemon)
    if args.backend == "qsd" and not shutil.which("qemu-storage-daemon"):
        print("FAIL qsd backend: qemu-storage-daemon not found (apt-get install qemu-system-x86)")
        print("0 passed, 1 failed")
        return 1

    # SIGTERM/SIGHUP unwind like Ctrl-C so the cleanup below always runs.
    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    tmp = tempfile.mkdtemp(prefix="rosen-e2e-blk-")
    note("backend %s, temp dir %s" % (args.backend, tmp))
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
            # keep the logs for a look, drop the images
            for name in os.listdir(tmp):
                if name.endswith((".img", ".gz", ".sock")) or name == "blkcheck":
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
