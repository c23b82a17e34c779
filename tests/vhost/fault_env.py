# SPDX-License-Identifier: MIT
"""What the fault, durability and vanish tests share: a rosenbridged with
its log (and, in test builds, its fault hooks and test report), the FUSE
disk of tests/fuse/fusedisk.c, NDP helpers, and a small case runner that
prints "PASS name" / "FAIL name: reason" / "SKIP name: why" and ends with
"N passed, N failed".
"""
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vhost_client as vc  # noqa: E402

MiB = 1 << 20
SECTOR = 512


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def build_dir_of(daemon):
    """build/app/rosenbridged/rosenbridged -> build."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(daemon))))


def has_fault_hooks(build):
    """Whether the build has lib/io's fault hooks (-Dfault_hooks=true)."""
    try:
        with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
            opts = json.load(f)
    except OSError:
        return False
    return any(o["name"] == "fault_hooks" and o["value"] is True for o in opts)


def pattern(nbytes, seed=0):
    """Image contents where each sector names itself (and the seed)."""
    out = bytearray()
    for s in range(nbytes // SECTOR):
        out += struct.pack("<QQ", s, (0x5A5A5A5A5A5A5A5A ^ s ^ (seed << 32)) & (2**64 - 1)) \
            * (SECTOR // 16)
    return bytes(out)


# ---- the daemon ---------------------------------------------------------------------


class Daemon:
    """rosenbridged serving `disks` ([(image path, [extra args])]); vmN are
    the sockets sock[N].  Its log goes to a file the test can search."""

    def __init__(self, binary, workdir, disks, extra=(), env=None, verbose=False):
        self.binary = binary
        self.workdir = workdir
        self.log_path = os.path.join(workdir, "daemon-%d.log" % int(time.monotonic() * 1e6))
        self.sock = []
        self.args = [binary]
        for i, (path, dargs) in enumerate(disks):
            s = os.path.join(workdir, "vm%d.sock" % i)
            self.sock.append(s)
            self.args += ["--disk", path, "--socket", s] + list(dargs)
        self.args += list(extra)
        if verbose:
            self.args.append("--verbose")
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.faults_file = os.path.join(workdir, "faults")
        self.env["ROSEN_FAULTS_FILE"] = self.faults_file
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf, env=self.env)
        deadline = time.monotonic() + 10
        while "serving" not in self.log():
            if self.proc.poll() is not None:
                raise RuntimeError("rosenbridged exited with %d:\n%s"
                                   % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise RuntimeError("rosenbridged did not start:\n%s" % self.log())
            time.sleep(0.01)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def mark(self):
        self.logf.flush()
        return os.path.getsize(self.log_path)

    def log(self, mark=0):
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, regex, mark=0, timeout=5.0):
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log(mark).splitlines():
                if rx.search(line):
                    return line
            if time.monotonic() > deadline or not self.alive():
                return None
            time.sleep(0.01)

    def arm(self, spec):
        """Test builds: the fault hooks take `spec` (ROSEN_FAULTS syntax)."""
        with open(self.faults_file, "w") as f:
            f.write(spec)
        m = self.mark()
        self.proc.send_signal(signal.SIGUSR1)
        check(self.wait_log(r"fault injection armed", m), "the daemon did not arm '%s'" % spec)

    def report(self):
        """Test builds: the daemon's test report as a dict of ints."""
        m = self.mark()
        self.proc.send_signal(signal.SIGUSR2)
        line = self.wait_log(r"test report:", m)
        check(line, "no test report from the daemon")
        return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", line.split("test report:")[1])}

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.logf.closed:
            self.logf.close()
        return self.proc.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)


# ---- the FUSE disk ------------------------------------------------------------------


class FuseDisk:
    """tests/fuse/fusedisk mounted in a fresh directory: disk.img is an
    image with a volatile write cache (see fusedisk.c for the commands)."""

    def __init__(self, binary, workdir, size):
        self.mnt = tempfile.mkdtemp(prefix="mnt-", dir=workdir)
        self.path = os.path.join(self.mnt, "disk.img")
        self.ctl_path = os.path.join(self.mnt, "ctl")
        self.logf = open(os.path.join(workdir, "fusedisk.log"), "ab")
        self.proc = subprocess.Popen([binary, str(size), self.mnt], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + 5
        while not os.path.exists(self.ctl_path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise Skip("fusedisk did not mount (no /dev/fuse or no permission to mount?)")
            time.sleep(0.01)

    def ctl(self, *cmds):
        fd = os.open(self.ctl_path, os.O_WRONLY)
        try:
            for c in cmds:
                os.write(fd, (c + "\n").encode())
        finally:
            os.close(fd)

    def stats(self):
        with open(self.ctl_path) as f:
            return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", f.read())}

    def read(self, off, n):
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return os.pread(fd, n, off)
        finally:
            os.close(fd)

    def write(self, off, data, sync=True):
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, off)
            if sync:
                os.fdatasync(fd)
        finally:
            os.close(fd)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["umount", "-l", self.mnt], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        try:
            os.rmdir(self.mnt)
        except OSError:
            pass
        self.logf.close()


# ---- NDP -----------------------------------------------------------------------------


def ndp_load_ok(fe, elf, section, prog_type=vc.NDP_PROG_CQ, q=0):
    r = vc.ndp_load(fe.mem, prog_type, elf, section)
    fe.run(q, r, timeout=30.0)
    handle, st, log_len, log = vc.load_result(r)
    check(st == vc.NDP_S_OK, "LOAD of %s: %s: %r" % (section, vc.ndp_status_name(st), log[:log_len]))
    return handle


def cq_sum(fe, handle, sector, nblocks, stride=1, first_len=1024, max_hops=64):
    """A READ_ND running tests/programs/ndp_progs.c's cq_sum: reads
    `nblocks` 512-byte blocks from `sector` on (the first I/O reads
    first_len bytes, each hop two blocks `stride` apart), summing every
    byte.  Scratch holds (sum, blocks seen)."""
    return vc.ndp_io(fe.mem, vc.NDP_T_READ_ND, handle, sector, first_len,
                     meta=struct.pack("<II", nblocks, stride), scratch=bytes(16),
                     max_hops=max_hops)


def run_nd(fe, req, q=0, timeout=5.0):
    """Runs an NDP request: (virtio status, NDP status, hops, scratch)."""
    vq = fe.vqs[q]
    head = fe.submit(q, req)
    u = vq.wait_used(1, timeout)
    check(u, "the NDP request did not complete within %.0f s" % timeout)
    check(u[0][0] == head, "used id %d, expected %d" % (u[0][0], head))
    st = req.status_byte()
    status, hops, retval, nbytes = req.result()
    scratch = req.wpart(len(req.wparts) - 2) if len(req.wparts) >= 2 else b""
    return st, status, hops, scratch


# ---- cases ---------------------------------------------------------------------------


class Runner:
    def __init__(self, only=None):
        self.only = re.compile(only) if only else None
        self.passed = self.failed = self.skipped = 0

    def run(self, name, fn, *args):
        if self.only and not self.only.search(name):
            return
        t0 = time.monotonic()
        try:
            fn(*args)
        except Skip as e:
            self.skipped += 1
            print("SKIP %s: %s" % (name, e), flush=True)
            return
        except Failure as e:
            self.failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
            return
        except Exception as e:
            self.failed += 1
            tb = traceback.extract_tb(e.__traceback__)[-1]
            print("FAIL %s: %s: %s (%s:%d)" % (name, type(e).__name__, e,
                                               os.path.basename(tb.filename), tb.lineno),
                  flush=True)
            return
        self.passed += 1
        print("PASS %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0
