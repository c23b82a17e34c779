#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Guest memory that can shrink under the daemon (docs/robustness.md).

A frontend that hands a regular file (here one in /dev/shm) as guest RAM
and truncates it would make the daemon's next access raise SIGBUS and kill
every VM.  Checks:
  - without --allow-unsealed-memory such memory is refused at SET_MEM_TABLE
    with a log line naming the option; the daemon and the other VM go on;
  - with it, the frontend truncates its memory and kicks: the daemon
    survives, logs it, disconnects that VM (within a second, even if the
    frontend sends nothing), and keeps serving the other VM; the disk
    accepts a new frontend afterwards;
  - a memfd frontend is sealed against shrinking either way.

Usage: test_guest_memory.py --daemon PATH
Ends with "N passed, N failed".
"""
import argparse
import mmap
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vhost_client as vc  # noqa: E402

results = []
MiB = 1 << 20


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)), flush=True)
    return bool(cond)


class FileGuestMemory(vc.GuestMemory):
    """Guest RAM in a plain file: not a memfd, so it cannot be sealed."""

    def __init__(self, path, size=16 * MiB):
        self.size = size
        self.gpa = vc.GPA_BASE
        self.uva_base = vc.UVA_BASE
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(self.fd, size)
        self.mm = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.h = memoryview(self.mm).cast("H")
        self.ring_area = min(size // 4, 4 << 20)
        self.brk = 0
        self.data_next = self.ring_area

    def close(self):
        super().close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def file_frontend(sock, path):
    fe = vc.Frontend(sock, queues=1, setup=False, timeout=5.0)
    fe.mem.close()
    fe.mem = FileGuestMemory(path)
    fe.negotiate()
    fe.set_mem()
    fe.setup_rings()
    return fe


class Daemon:
    def __init__(self, daemon, tmp, extra=()):
        self.socks = [os.path.join(tmp, "m%d.sock" % i) for i in range(2)]
        cmd = [daemon] + list(extra)
        for i, s in enumerate(self.socks):
            img = os.path.join(tmp, "m%d.img" % i)
            with open(img, "wb") as f:
                f.write(os.urandom(4 * MiB))
            cmd += ["--disk", img, "--socket", s, "--cache", "buffered"]
        self.log = os.path.join(tmp, "daemon.log")
        self.logf = open(self.log, "w")
        self.p = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT)
        end = time.time() + 10
        while not all(os.path.exists(s) for s in self.socks):
            if self.p.poll() is not None or time.time() > end:
                raise RuntimeError("daemon did not start: " + open(self.log).read())
            time.sleep(0.02)

    def text(self):
        return open(self.log).read()

    def wait_log(self, what, timeout=5.0):
        end = time.time() + timeout
        while time.time() < end:
            if what in self.text():
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return None


def other_vm_reads(sock):
    fe = vc.Frontend(sock, queues=1)
    try:
        st, ulen, _ = fe.read(0, 8, 4096)
        return st == vc.S_OK and ulen == 4097
    finally:
        fe.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rb-mem-")
    shm = "/dev/shm/rb-mem-%d" % os.getpid()

    # Refused by default.
    d = Daemon(a.daemon, tmp)
    try:
        refused = False
        try:
            fe = file_frontend(d.socks[0], shm)
            fe.read(0, 0, 4096)
        except (vc.ProtocolError, OSError, ConnectionError):
            refused = True
        check("unsealed guest memory is refused without --allow-unsealed-memory",
              refused and d.wait_log("--allow-unsealed-memory"), d.text()[-400:])
        check("the daemon and the other VM go on", d.p.poll() is None and other_vm_reads(d.socks[1]))
        # A memfd is sealed against shrinking: truncating it fails.
        fe = vc.Frontend(d.socks[0], queues=1)
        try:
            os.ftruncate(fe.mem.fd, 4096)
            sealed = False
        except PermissionError:
            sealed = True
        st, ulen, _ = fe.read(0, 8, 4096)
        fe.close()
        check("a memfd frontend's memory is sealed against shrinking", sealed and st == vc.S_OK)
    finally:
        d.stop()

    # Allowed: the fault is confined to the VM that shrank its memory.
    d = Daemon(a.daemon, tmp, ("--allow-unsealed-memory",))
    try:
        fe = file_frontend(d.socks[0], shm)
        st, ulen, _ = fe.read(0, 8, 4096)
        check("with --allow-unsealed-memory a /dev/shm frontend is served", st == vc.S_OK and ulen == 4097,
              (st, ulen))
        # Truncate guest RAM under the daemon and kick (only the eventfd:
        # touching the mapping here would raise SIGBUS in this process).
        os.ftruncate(fe.mem.fd, 0)
        os.eventfd_write(fe.vqs[0].kick_fd, 1)
        ok = d.wait_log("guest memory shrank", 3.0)
        check("the daemon survives the truncation, logs it and disconnects that VM within a second",
              ok and d.p.poll() is None, d.text()[-600:])
        check("the other VM keeps being served", other_vm_reads(d.socks[1]))
        try:
            fe.close()
        except Exception:
            pass
        time.sleep(0.2)
        check("the disk takes a new frontend afterwards", other_vm_reads(d.socks[0]))
    finally:
        rc = d.stop()
        check("SIGTERM ends the daemon cleanly (exit 0)", rc == 0, rc)
        try:
            os.unlink(shm)
        except OSError:
            pass
    print("%d passed, %d failed" % (results.count(True), results.count(False)))
    return 1 if False in results else 0


if __name__ == "__main__":
    sys.exit(main())
