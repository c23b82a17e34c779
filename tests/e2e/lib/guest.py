#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Boots a Linux test guest under QEMU TCG with vhost-user-blk-pci devices.

Library use (Python 3 stdlib only):

    import guest
    cache = guest.fetch_kernel()                  # kernel, modules, busybox
    blkcheck = guest.build_static(guest.BLKCHECK_SRC, tmp + "/blkcheck")
    initrd = guest.make_initramfs(tmp + "/initrd.gz", "test.sh", adds=[blkcheck])
    res = guest.boot(initrd, [guest.VhostBlk("/tmp/x.sock", disable_legacy="on")],
                     console_log=tmp + "/console.log")
    res.passed, res.reason, res.elapsed, res.checks

The guest runs the script given to make_initramfs (see
tests/e2e/guest/mkinitramfs.sh) and prints `ROSEN-E2E-RESULT: PASS` or
`ROSEN-E2E-RESULT: FAIL <reason>` on its serial console, which QEMU writes
to console_log; boot() parses it.  Lines `ROSEN-E2E-CHECK: PASS name` /
`ROSEN-E2E-CHECK: FAIL name: reason` (from `check` in /lib/e2e.sh) come back
as res.checks.

Command line (one boot, for trying things by hand):

    tests/e2e/lib/guest.py --test SCRIPT --vhost SOCK[,prop=value...]...
        [--add FILE[:DEST]]... [--append "rosen.x=y"] [--timeout 120]
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

E2E_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST_DIR = os.path.join(E2E_DIR, "guest")
FETCH_KERNEL = os.path.join(GUEST_DIR, "fetch-kernel.sh")
MKINITRAMFS = os.path.join(GUEST_DIR, "mkinitramfs.sh")
BLKCHECK_SRC = os.path.join(GUEST_DIR, "blkcheck.c")

RESULT_RE = re.compile(r"ROSEN-E2E-RESULT: (PASS|FAIL)(?: (.*))?")
CHECK_RE = re.compile(r"ROSEN-E2E-CHECK: (PASS|FAIL) ([^:\s]+)(?:: (.*))?")

DEFAULT_APPEND = "console=ttyS0 quiet panic=-1"


class GuestError(Exception):
    """A harness step (fetching, building) failed; the message says why."""


def default_cache():
    base = os.environ.get("ROSEN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rosenbridge")
    return os.path.join(base, "guest")


def default_kernel(cache=None):
    """$ROSEN_GUEST_KERNEL, else the cache's PVH vmlinux (boots ~3 s faster
    under TCG than the bzImage, which decompresses itself), else vmlinuz."""
    if os.environ.get("ROSEN_GUEST_KERNEL"):
        return os.environ["ROSEN_GUEST_KERNEL"]
    cache = cache or default_cache()
    vmlinux = os.path.join(cache, "vmlinux")
    return vmlinux if os.path.isfile(vmlinux) else os.path.join(cache, "vmlinuz")


def fetch_kernel(cache=None):
    """Runs fetch-kernel.sh (a no-op when the cache is current); returns the cache dir."""
    cmd = [FETCH_KERNEL] + (["--cache", cache] if cache else [])
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise GuestError("fetch-kernel.sh failed:\n" + p.stderr.strip())
    return p.stdout.strip().splitlines()[-1]


def build_static(src, out, cc="gcc", cflags=("-O2", "-Wall", "-Wextra", "-Werror")):
    """Compiles one C file into a static binary for the guest; returns out."""
    cmd = [cc, "-static", *cflags, "-o", out, src]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise GuestError("building %s failed (%s):\n%s" % (src, " ".join(cmd), p.stdout.strip()))
    return out


def make_initramfs(out, test_script, adds=(), cache=None, modules=None):
    """Builds an initramfs running test_script; adds are 'SRC' or 'SRC:DEST'."""
    cmd = [MKINITRAMFS, "--out", out, "--test", test_script]
    if cache:
        cmd += ["--cache", cache]
    if modules is not None:
        cmd += ["--modules", " ".join(modules)]
    for a in adds:
        cmd += ["--add", a]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise GuestError("mkinitramfs.sh failed:\n" + p.stderr.strip())
    return out


class VhostBlk:
    """One -device vhost-user-blk-pci on a unix socket.

    Keyword properties become device properties, '_' turning into '-':
    VhostBlk(sock, num_queues=2, disable_legacy="on").
    """

    def __init__(self, socket_path, num_queues=2, **props):
        self.socket_path = socket_path
        self.props = {"num-queues": str(num_queues)} if num_queues else {}
        for k, v in props.items():
            self.props[k.replace("_", "-")] = str(v)

    @classmethod
    def parse(cls, spec):
        """'SOCK[,prop=value...]' as given to --vhost."""
        parts = spec.split(",")
        props = dict(p.split("=", 1) for p in parts[1:])
        nq = props.pop("num-queues", "2")
        dev = cls(parts[0], num_queues=int(nq))
        dev.props.update(props)
        return dev

    def qemu_args(self, index):
        cid = "vhost%d" % index
        dev = ",".join(["vhost-user-blk-pci", "chardev=" + cid] +
                       ["%s=%s" % kv for kv in self.props.items()])
        return ["-chardev", "socket,id=%s,path=%s" % (cid, self.socket_path), "-device", dev]


class Result:
    """What one boot gave.  status: PASS, FAIL, TIMEOUT or NO-RESULT."""

    def __init__(self, status, reason, elapsed, console_log, qemu_rc, qemu_stderr, checks):
        self.status = status
        self.reason = reason
        self.elapsed = elapsed
        self.console_log = console_log
        self.qemu_rc = qemu_rc
        self.qemu_stderr = qemu_stderr
        self.checks = checks  # [(passed, name, reason)]

    @property
    def passed(self):
        return self.status == "PASS"

    def summary(self):
        s = self.status if not self.reason else "%s (%s)" % (self.status, self.reason)
        return "%s after %.1f s" % (s, self.elapsed)

    def tail(self, n=40):
        try:
            with open(self.console_log, "r", errors="replace") as f:
                lines = f.read().replace("\r", "").splitlines()
        except OSError as e:
            return ["(no console log: %s)" % e]
        return lines[-n:]

    def describe_failure(self, n=40):
        """Text to print when the boot did not pass: console tail and QEMU's stderr."""
        out = ["guest %s; console log %s, last %d lines:" % (self.summary(), self.console_log, n)]
        tail = self.tail(n)
        out += ["  | " + line for line in tail] if tail else ["  (the console log is empty)"]
        if self.qemu_stderr.strip():
            out.append("QEMU exit status %s, stderr:" % self.qemu_rc)
            out += ["  | " + line for line in self.qemu_stderr.strip().splitlines()[-20:]]
        return "\n".join(out)


def qemu_command(kernel, initrd, devices, console_log, mem="512M", smp=2, append="",
                 qemu="qemu-system-x86_64", machine="pc", extra_args=()):
    """The QEMU command line boot() runs."""
    cmd = [qemu, "-accel", "tcg", "-machine", machine, "-m", mem, "-smp", str(smp),
           # vhost-user needs guest RAM the backend can map: a shared memfd.
           "-object", "memory-backend-memfd,id=mem,size=%s,share=on" % mem,
           "-numa", "node,memdev=mem",
           "-nodefaults", "-no-user-config", "-display", "none",
           "-serial", "file:" + console_log, "-monitor", "none",
           "-no-reboot",
           "-kernel", kernel, "-initrd", initrd,
           "-append", (DEFAULT_APPEND + " " + append).strip()]
    for i, d in enumerate(devices):
        cmd += d.qemu_args(i)
    return cmd + list(extra_args)


def parse_console(text):
    """(status, reason, checks) from a console log's text."""
    text = text.replace("\r", "")
    checks = []
    for m in CHECK_RE.finditer(text):
        checks.append((m.group(1) == "PASS", m.group(2), (m.group(3) or "").strip()))
    found = RESULT_RE.findall(text)
    if not found:
        return None, None, checks
    status, reason = found[-1]
    return status, reason.strip(), checks


UNPACK_FLAKE = "Initramfs unpacking failed"


def boot(initrd, devices, console_log, **kw):
    """Boots the guest once and waits (up to timeout s, then kills QEMU).

    Returns a Result; on anything but PASS with verbose_failure, prints the
    last 40 console lines and QEMU's stderr to out.  A boot whose kernel
    could not unpack the initramfs (seen about once in ten boots of the
    larger initramfs of the virtio_ndp suites on a loaded machine, never
    reproduced alone; the initrd file checks out with gzip -t) ran no test
    at all: it is booted once more, and says so.
    """
    res = _boot(initrd, devices, console_log, **kw)
    try:
        with open(console_log, errors="replace") as f:
            flake = UNPACK_FLAKE in f.read()
    except OSError:
        flake = False
    if flake and not res.passed:
        out = kw.get("out", sys.stdout)
        out.write("# guest: the kernel could not unpack the initramfs (%s); booting again\n" % console_log)
        os.replace(console_log, console_log + ".unpack-failed")
        res = _boot(initrd, devices, console_log, **kw)
    return res


def _boot(initrd, devices, console_log, kernel=None, cache=None, timeout=120, mem="512M",
          smp=2, append="", qemu="qemu-system-x86_64", machine="pc", extra_args=(),
          verbose_failure=True, out=sys.stdout):
    if kernel is None:
        kernel = default_kernel(cache)
    if not os.path.isfile(kernel):
        raise GuestError("no kernel at %s: run tests/e2e/guest/fetch-kernel.sh" % kernel)
    if os.path.exists(console_log):
        os.unlink(console_log)
    cmd = qemu_command(kernel, initrd, devices, console_log, mem=mem, smp=smp, append=append,
                       qemu=qemu, machine=machine, extra_args=extra_args)
    stderr_path = console_log + ".qemu-stderr"
    start = time.monotonic()
    timed_out = False
    with open(stderr_path, "w") as err:
        err.write("# " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        err.flush()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    start_new_session=True)
        except OSError as e:
            raise GuestError("cannot run %s: %s (apt-get install qemu-system-x86)" % (qemu, e))
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            rc = proc.wait()
        finally:
            # Exceptions (KeyboardInterrupt, SystemExit from a signal) must not leave QEMU behind.
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    elapsed = time.monotonic() - start
    with open(stderr_path, errors="replace") as f:
        qemu_stderr = "".join(f.readlines()[1:])
    try:
        with open(console_log, errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    status, reason, checks = parse_console(text)
    if status is None:
        if timed_out:
            status, reason = "TIMEOUT", "no result within %d s, QEMU killed" % timeout
        else:
            status, reason = "NO-RESULT", "QEMU exited with status %s without a result line" % rc
    res = Result(status, reason, elapsed, console_log, rc, qemu_stderr, checks)
    if not res.passed and verbose_failure:
        print(res.describe_failure(), file=out)
        out.flush()
    return res


def main():
    ap = argparse.ArgumentParser(description="Boot the e2e test guest once.")
    ap.add_argument("--test", required=True, help="busybox sh script run as /test.sh")
    ap.add_argument("--vhost", action="append", default=[], metavar="SOCK[,prop=value...]",
                    help="a vhost-user-blk-pci device on socket SOCK (repeatable)")
    ap.add_argument("--add", action="append", default=[], metavar="SRC[:DEST]",
                    help="extra file for the initramfs (repeatable)")
    ap.add_argument("--blkcheck", action="store_true", help="build and add /bin/blkcheck")
    ap.add_argument("--append", default="", help="extra kernel command line words")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--mem", default="512M")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--console-log", default=None, help="where to keep the console log")
    args = ap.parse_args()

    cache = fetch_kernel(args.cache)
    with tempfile.TemporaryDirectory(prefix="rosen-guest-") as tmp:
        adds = list(args.add)
        if args.blkcheck:
            adds.append(build_static(BLKCHECK_SRC, os.path.join(tmp, "blkcheck")))
        initrd = make_initramfs(os.path.join(tmp, "initrd.gz"), args.test, adds=adds, cache=cache)
        log = args.console_log or os.path.join(tmp, "console.log")
        res = boot(initrd, [VhostBlk.parse(v) for v in args.vhost], log, cache=cache,
                   timeout=args.timeout, mem=args.mem, smp=args.smp, append=args.append)
        if res.passed:
            sys.stdout.write("".join("  | " + l + "\n" for l in res.tail(40)))
        print("guest: " + res.summary())
        return 0 if res.passed else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GuestError as e:
        print("guest: error: %s" % e, file=sys.stderr)
        sys.exit(1)
