#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A frontend that vanishes mid-I/O frees everything.

Usage: test_vanish.py --build DIR [--cycles N] [--keep]

One rosenbridged (two disks, two workers) and N connect/vanish cycles
(default 1,000 on a build with the fault hooks' test report, i.e. the
asan build; 200 otherwise) on vm0, while vm1 is read now and then:
each cycle connects, sets up memory and rings and leaves with requests
in flight (64 KiB writes, reads, FLUSHes, READ_NDs whose program would
hop up to 1,024 times), or goes away in the middle of the set-up; it
vanishes by closing its socket and memory without a word, or, every
third cycle, as a process killed with SIGKILL.  Afterwards:

- the daemon's open fds are what they were before the cycles;
- (test builds) its live heap bytes, as ASan counts them
  (rosenbridged's SIGUSR2 test report), are what they were after the
  first cycle (which also makes one-time allocations: the log's time
  zone, the loaded program): nothing per cycle is kept;
- vm1 was served throughout; SIGTERM ends the daemon with status 0, which
  under ASan includes LeakSanitizer finding no leak at exit.

Ends with "N passed, N failed".
"""
import argparse
import os
import shutil
import signal
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vhost_client as vc  # noqa: E402
from fault_env import (MiB, Daemon, Runner, check, has_fault_hooks, ndp_load_ok,  # noqa: E402
                       pattern)

IMG = 8 * MiB


def setup_fe(sock, stage):
    """A frontend on sock, set up to `stage` (0: connected, 1: features,
    2: memory table, 3: rings running)."""
    fe = vc.Frontend(sock, timeout=5.0, mem_size=2 * MiB, queue_size=32, setup=False)
    if stage >= 1:
        fe.negotiate()
    if stage >= 2:
        fe.set_mem()
    if stage >= 3:
        fe.setup_rings()
    return fe


def load_io(fe, handle, k):
    """Requests left in flight on both queues: writes, reads, flushes and
    long NDP chains (xrp_forever: block 0 again and again, 1,024 hops)."""
    for q, vq in enumerate(fe.vqs):
        old = vq.avail_idx
        for i in range(6):
            kind = (i + k) % 4
            if kind == 0:
                r = vc.BlkReq(fe.mem, vc.T_OUT, 64 + 128 * i, data=bytes([k & 0xff]) * 65536)
            elif kind == 1:
                r = vc.BlkReq(fe.mem, vc.T_IN, 128 * i, in_len=65536)
            elif kind == 2:
                r = vc.BlkReq(fe.mem, vc.T_FLUSH)
            else:
                r = vc.ndp_io(fe.mem, vc.NDP_T_READ_ND, handle, 0, 512, max_hops=1024)
            vq.add_indirect(r.segs)
        vq.kick(old)


def vanish_close(sock, handle, k, stage):
    fe = setup_fe(sock, stage)
    if stage >= 3:
        load_io(fe, handle, k)
    fe.close()  # socket, memfd, kick/call fds: gone without a word


def vanish_killed(sock, handle, k, stage):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            fe = setup_fe(sock, stage)
            if stage >= 3:
                load_io(fe, handle, k)
            os.write(w, b"x")
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 1)
    os.close(r)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    check(got == b"x", "cycle %d: the frontend process failed to set up" % k)


def settle(d, sock):
    """Waits until the daemon has let the last frontend go: the next one
    is accepted only after that (one frontend per socket)."""
    with vc.Frontend(sock, timeout=10.0, mem_size=2 * MiB, queue_size=32) as fe:
        st, _, _ = fe.read(0, 0, 4096)
        check(st == vc.S_OK, "a frontend after the cycles could not read")
    time.sleep(0.3)  # its own disconnect
    return vc.proc_fd_count(d.pid)


def t_vanish(args):
    work = tempfile.mkdtemp(prefix="rb-vanish-")
    d = None
    try:
        imgs = []
        for i in range(2):
            p = os.path.join(work, "vm%d.img" % i)
            with open(p, "wb") as f:
                f.write(pattern(IMG, i))
            imgs.append((p, ["--queues", "2"]))
        d = Daemon(os.path.join(args.build, "app", "rosenbridged", "rosenbridged"), work, imgs,
                   extra=["--workers", "2"])
        hooks = has_fault_hooks(args.build)
        cycles = args.cycles if args.cycles else (1000 if hooks else 200)
        with open(os.path.join(args.build, "tests", "programs", "ndp_progs.o"), "rb") as f:
            elf = f.read()
        with vc.Frontend(d.sock[0], timeout=10.0, mem_size=2 * MiB, queue_size=32) as fe:
            handle = ndp_load_ok(fe, elf, "xrp_forever", vc.NDP_PROG_XRP)
        cold = d.report() if hooks else None
        vanish_close(d.sock[0], handle, 0, 3)
        fds0 = settle(d, d.sock[0])
        warm = d.report() if hooks else None
        other = vc.Frontend(d.sock[1], timeout=5.0, mem_size=2 * MiB, queue_size=32)
        t0 = time.monotonic()
        try:
            for k in range(1, cycles + 1):
                # Mostly with I/O in flight; every fifth in the middle of
                # the set-up (after features, or after the memory table).
                stage = 3 if k % 5 else 1 + (k // 5) % 2
                if k % 3 == 0:
                    vanish_killed(d.sock[0], handle, k, stage)
                else:
                    vanish_close(d.sock[0], handle, k, stage)
                if k % 50 == 0:
                    check(d.alive(), "the daemon died after %d cycles" % k)
                    st, _, _ = other.read(0, 8 * (k % 100), 4096)
                    check(st == vc.S_OK, "vm1's read failed during the cycles")
        finally:
            other.close()
        took = time.monotonic() - t0
        fds1 = settle(d, d.sock[0])
        check(fds1 == fds0, "open fds %d after %d cycles, %d before" % (fds1, cycles, fds0))
        if hooks:
            end = d.report()
            check(end["fds"] == warm["fds"], "the daemon counts %d fds, %d before"
                  % (end["fds"], warm["fds"]))
            grown = end["allocated"] - warm["allocated"]
            print("# %d cycles in %.1f s; heap: %d bytes before any frontend, %d after the first, "
                  "%d after the last (%+d)" % (cycles, took, cold["allocated"], warm["allocated"],
                                               end["allocated"], grown))
            check(grown == 0, "%+d bytes of heap after %d cycles" % (grown, cycles))
        else:
            print("# %d cycles in %.1f s (no test report in this build: fds only)" % (cycles, took))
        code = d.stop(timeout=60)
        check(code == 0, "SIGTERM: exit status %r (LeakSanitizer?):\n%s"
              % (code, "\n".join(d.log().splitlines()[-30:])))
    finally:
        if d:
            d.stop()
        if args.keep:
            print("# kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--cycles", type=int, default=0)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    r = Runner()
    r.run("frontend_vanishing_mid_io_frees_everything", t_vanish, args)
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
