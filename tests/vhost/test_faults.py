#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Storage faults end as statuses, never as hangs: on the virtio-blk path
and in the middle of an NDP program's chain.

Usage: test_faults.py --build DIR [--only REGEX] [--keep]

Each case starts rosenbridged on its own image and drives it through a
vhost-user frontend (tests/vhost/vhost_client.py).  Faults come from two
places (docs/robustness.md, "Storage faults"):

- lib/io's fault hooks (test builds: -Dfault_hooks=true, the asan build;
  armed with SIGUSR1 from a file, see include/rosen/io.h): EIO, ENOSPC,
  EAGAIN and short transfers on the N-th read/write/flush, which is how a
  hop in the middle of a chain is hit.  Without the hooks (release) these
  cases say SKIP;
- the FUSE disk (tests/fuse/fusedisk.c): the same faults from a real
  filesystem under io_uring, and a file truncated under the daemon.

Every request must complete (within seconds), with IOERR (virtio-blk) or
IO_ERROR (NDP) where the storage failed and OK where the daemon could
retry (short transfers, a transient EAGAIN), with the right bytes; the
daemon must log the failure, stay up and serve the next request.  A
guest's FLUSH storm on every queue is answered while another VM reads.

Ends with "N passed, N failed".
"""
import argparse
import os
import shutil
import struct
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vhost_client as vc  # noqa: E402
from fault_env import (MiB, SECTOR, Daemon, FuseDisk, Runner, Skip, check, cq_sum,  # noqa: E402
                       has_fault_hooks, ndp_load_ok, pattern, run_nd)

IMG = 4 * MiB
MAX_RETRIES = 4  # RB_IO_MAX_RETRIES


class Env:
    """A daemon on one image (a plain file, or the FUSE disk), a frontend,
    and ndp_progs.o's cq_sum loaded."""

    def __init__(self, args, fuse=False, hooks=False, cache="direct", queues=2, extra_disks=0,
                 io_timeout=1):
        self.args = args
        if hooks and not args.hooks:
            raise Skip("this build has no fault hooks (-Dfault_hooks=true: the asan build)")
        self.workdir = tempfile.mkdtemp(prefix="rb-faults-")
        self.fuse = self.daemon = self.fe = None
        self.image = pattern(IMG)
        try:
            if fuse:
                fusedisk = os.path.join(args.build, "tests", "fuse", "fusedisk")
                if not os.path.exists(fusedisk):
                    raise Skip("no %s (libfuse3-dev missing at build time)" % fusedisk)
                self.fuse = FuseDisk(fusedisk, self.workdir, IMG)
                self.fuse.write(0, self.image)
                self.path = self.fuse.path
            else:
                self.path = os.path.join(self.workdir, "disk.img")
                with open(self.path, "wb") as f:
                    f.write(self.image)
            disks = [(self.path, ["--cache", cache, "--queues", str(queues)])]
            for i in range(extra_disks):
                p = os.path.join(self.workdir, "other%d.img" % i)
                with open(p, "wb") as f:
                    f.write(pattern(IMG, i + 1))
                disks.append((p, ["--queues", "1"]))
            self.daemon = Daemon(os.path.join(args.build, "app", "rosenbridged", "rosenbridged"),
                                 self.workdir, disks, extra=["--io-timeout", str(io_timeout)])
            self.fe = vc.Frontend(self.daemon.sock[0], timeout=5.0, mem_size=16 * MiB,
                                  queue_size=128)
        except BaseException:
            self.close()
            raise
        with open(os.path.join(args.build, "tests", "programs", "ndp_progs.o"), "rb") as f:
            self.elf = f.read()
        self._cq = None

    @property
    def cq(self):
        if self._cq is None:
            self._cq = ndp_load_ok(self.fe, self.elf, "cq_sum")
        return self._cq

    def sum_of(self, sector, nblocks):
        return sum(self.image[sector * SECTOR:(sector + nblocks) * SECTOR])

    def close(self):
        if self.fe:
            self.fe.close()
        if self.daemon:
            code = self.daemon.stop()
            if not self.args.keep_going:
                check(code == 0, "the daemon exited with %r on SIGTERM" % code)
        if self.fuse:
            self.fuse.close()
        if self.args.keep:
            print("# kept " + self.workdir)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def case(fn, **kw):
    def run(args):
        e = Env(args, **kw)
        try:
            fn(e)
            check(e.daemon.alive(), "the daemon died")
        finally:
            e.close()
    return run


def expect_blk(e, st, want, what):
    check(st == want, "%s: virtio status %d, expected %d" % (what, st, want))


def still_serves(e):
    """The disk still reads and writes right, on the blk and NDP paths."""
    st, _, got = e.fe.read(0, 16, 4096)
    expect_blk(e, st, vc.S_OK, "read after the fault")
    check(got == e.image[16 * SECTOR:16 * SECTOR + 4096], "read after the fault: wrong bytes")
    st, nst, hops, scr = run_nd(e.fe, cq_sum(e.fe, e.cq, 32, 8))
    check(st == vc.S_OK and nst == vc.NDP_S_OK,
          "READ_ND after the fault: %s" % vc.ndp_status_name(nst))
    check(struct.unpack_from("<QQ", scr) == (e.sum_of(32, 8), 8), "READ_ND after the fault: wrong sum")


def chain_fails(e, nblocks=16, sector=64):
    """A cq_sum chain that must end IO_ERROR mid-chain (after a hop);
    the daemon logs why.  (Within seconds: the watchdog, at 1 s here,
    may be what ends it.)"""
    m = e.daemon.mark()
    st, nst, hops, _ = run_nd(e.fe, cq_sum(e.fe, e.cq, sector, nblocks), timeout=15.0)
    check(st == vc.S_OK, "READ_ND: virtio status %d" % st)
    check(nst == vc.NDP_S_IO_ERROR, "READ_ND: %s, expected io-error" % vc.ndp_status_name(nst))
    check(0 < hops < nblocks, "the chain should end mid-way, after %d hops" % hops)
    check(e.daemon.wait_log(r"error .*NDP read round", m), "no error line for the failed hop")
    return hops


def chain_ok(e, nblocks=16, sector=64):
    st, nst, hops, scr = run_nd(e.fe, cq_sum(e.fe, e.cq, sector, nblocks))
    check(st == vc.S_OK and nst == vc.NDP_S_OK, "READ_ND: %s" % vc.ndp_status_name(nst))
    check(struct.unpack_from("<QQ", scr) == (e.sum_of(sector, nblocks), nblocks),
          "READ_ND: the program summed other bytes than the image holds")


# ---- through lib/io's fault hooks ------------------------------------------------------------


def t_hook_blk_errors(e):
    for spec, write, name in (("read:eio", False, "EIO read"), ("write:eio", True, "EIO write"),
                              ("write:enospc", True, "ENOSPC write"),
                              ("read:eagain:count=0", False, "EAGAIN forever"),
                              ("read:short:count=0", False, "short forever")):
        e.daemon.arm(spec)
        m = e.daemon.mark()
        if write:
            st, _ = e.fe.write(0, 8, b"\x11" * 4096)
        else:
            st, _, _ = e.fe.read(0, 8, 4096)
        expect_blk(e, st, vc.S_IOERR, name)
        check(e.daemon.wait_log(r"error .*(write|read) of 4096 bytes at sector 8 failed", m),
              "%s: no error line" % name)
    e.daemon.arm("")
    still_serves(e)


def t_hook_blk_retries(e):
    data = bytes(range(256)) * 256
    # The read: short once, then EAGAIN until its last retry.
    e.daemon.arm("write:short,read:short,read:eagain:count=%d" % (MAX_RETRIES - 1))
    expect_blk(e, e.fe.write(1, 200, data)[0], vc.S_OK, "short write")
    e.image = e.image[:200 * SECTOR] + data + e.image[200 * SECTOR + len(data):]
    st, ulen, got = e.fe.read(1, 200, len(data))
    expect_blk(e, st, vc.S_OK, "short read, then EAGAIN up to the bound")
    check(got == data and ulen == len(data) + 1, "short read: wrong bytes or used length %d" % ulen)
    r = e.daemon.report()
    check(r["injected"] == 1 + MAX_RETRIES, "injected %d faults, expected %d"
          % (r["injected"], 1 + MAX_RETRIES))
    e.daemon.arm("")
    still_serves(e)


def t_hook_chain_eio(e):
    e.daemon.arm("read:eio:skip=3")
    chain_fails(e)
    e.daemon.arm("")
    chain_ok(e)
    still_serves(e)


def t_hook_chain_short_retried(e):
    e.daemon.arm("read:short:skip=3,read:short:skip=6")
    chain_ok(e)
    e.daemon.arm("read:short:skip=3:count=0")
    chain_fails(e)
    e.daemon.arm("")
    still_serves(e)


def t_hook_chain_eagain(e):
    e.daemon.arm("read:eagain:skip=2:count=%d" % MAX_RETRIES)
    chain_ok(e)
    e.daemon.arm("read:eagain:skip=2:count=0")
    chain_fails(e)
    e.daemon.arm("")
    still_serves(e)


def t_hook_write_nd_enospc(e):
    e.daemon.arm("write:enospc")
    r = vc.ndp_io(e.fe.mem, vc.NDP_T_WRITE_ND, e.cq, 400, 512, meta=struct.pack("<II", 1, 1),
                  scratch=bytes(16), data=b"\x77" * 512)
    st, nst, hops, _ = run_nd(e.fe, r)
    check(st == vc.S_OK and nst == vc.NDP_S_IO_ERROR,
          "WRITE_ND on a full disk: %s" % vc.ndp_status_name(nst))
    # A FLUSH after the failed write is answered (it waited for nothing).
    expect_blk(e, e.fe.simple(0, vc.T_FLUSH)[0], vc.S_OK, "FLUSH after a failed WRITE_ND")
    e.daemon.arm("")
    still_serves(e)


def t_flush_storm(e):
    """A guest floods every queue with FLUSHes between writes while
    another VM reads: every flush answered; the other VM's reads
    unaffected; with the fault hooks' trace, none went out before the
    writes of its queue and they shared a handful of fdatasyncs."""
    other = vc.Frontend(e.daemon.sock[1], timeout=5.0, mem_size=4 * MiB, queue_size=32)
    try:
        stop = threading.Event()
        lat = []

        def reader():
            while not stop.is_set():
                t0 = time.monotonic()
                st, _, _ = other.read(0, 0, 4096)
                lat.append(time.monotonic() - t0)
                if st != vc.S_OK:
                    lat.append(99.0)

        t = threading.Thread(target=reader)
        t.start()
        flushes = 0
        try:
            w = vc.BlkReq(e.fe.mem, vc.T_OUT, 0, data=b"\x5a" * 65536)
            for rnd in range(10):
                reqs = []
                for q, vq in enumerate(e.fe.vqs):
                    old = vq.avail_idx
                    for i in range(60):
                        r = w if i % 20 == 0 else vc.BlkReq(e.fe.mem, vc.T_FLUSH)
                        if r is not w:
                            flushes += 1
                        vq.add_chain(r.segs)
                        reqs.append((q, r))
                    vq.kick(old)
                for q, vq in enumerate(e.fe.vqs):
                    check(len(vq.wait_used(60, 10.0)) == 60, "queue %d: the storm was not answered" % q)
                for q, r in reqs:
                    check(r.status_byte() == vc.S_OK, "a FLUSH of the storm failed")
        finally:
            stop.set()
            t.join()
        lat.sort()
        check(lat and lat[-1] < 1.0, "the other VM's reads stalled (max %.3f s)" % (lat[-1] if lat else -1))
        if e.args.hooks:
            r = e.daemon.report()
            check(r["overtakes"] == 0,
                  "%d fdatasyncs went out while a write of their queue was in flight"
                  % r["overtakes"])
            check(r["flushes"] < flushes / 4,
                  "%d fdatasyncs for %d FLUSHes: not shared" % (r["flushes"], flushes))
            check(r["datasync"] == r["flushes"], "flushes that were not fdatasync")
    finally:
        other.close()


# ---- through the FUSE disk --------------------------------------------------------------------


def t_fuse_errors(e):
    for cmd, write, name in (("fail read eio 1", False, "EIO read"),
                             ("fail write eio 1", True, "EIO write"),
                             ("fail write enospc 1", True, "ENOSPC write")):
        e.fuse.ctl(cmd)
        if write:
            st, _ = e.fe.write(0, 8, b"\x11" * 4096)
        else:
            st, _, _ = e.fe.read(0, 8, 4096)
        expect_blk(e, st, vc.S_IOERR, name)
        e.fuse.ctl("clear")
    e.fuse.ctl("fail fsync enospc 1")
    expect_blk(e, e.fe.simple(0, vc.T_FLUSH)[0], vc.S_IOERR, "ENOSPC fdatasync")
    still_serves(e)


def t_fuse_eagain_forever(e):
    """io_uring reissues an async read of a regular file that failed with
    EAGAIN, in the kernel, forever: the daemon never sees it.  The
    watchdog (--io-timeout 1 here) cancels it: IOERR within seconds, and
    the queue drains (SIGTERM at the end of the case)."""
    e.fuse.ctl("fail read eagain 0")
    m = e.daemon.mark()
    t0 = time.monotonic()
    r = vc.BlkReq(e.fe.mem, vc.T_IN, 8, in_len=4096)
    e.fe.submit(0, r)
    u = e.fe.vqs[0].wait_used(1, 15.0)
    check(u, "a read the disk answers EAGAIN forever did not complete in 15 s")
    expect_blk(e, r.status_byte(), vc.S_IOERR, "EAGAIN forever")
    # 1-2 s of timeout, then cancels every second until one lands (a
    # busy shared machine: up to ~5 s measured).
    check(time.monotonic() - t0 < 10.0, "took %.1f s" % (time.monotonic() - t0))
    check(e.daemon.wait_log(r"error .*(cancelled|failed: Resource temporarily unavailable)", m),
          "no error line for the read that never completed")
    e.fuse.ctl("clear", "fail read eagain 2")
    st, _, got = e.fe.read(1, 8, 4096)
    expect_blk(e, st, vc.S_OK, "EAGAIN twice (retried)")
    e.fuse.ctl("clear")
    still_serves(e)


def t_fuse_retries(e):
    data = bytes(range(256)) * 128
    e.image = e.image[:100 * SECTOR] + data + e.image[100 * SECTOR + len(data):]
    e.fuse.write(100 * SECTOR, data)
    e.fuse.ctl("fail read short 2")
    st, _, got = e.fe.read(1, 100, len(data))
    expect_blk(e, st, vc.S_OK, "short reads")
    check(got == data, "short reads: wrong bytes")
    # The kernel's FUSE turns a short write under io_uring into EIO; if it
    # ever passes it on, the daemon writes the rest.  Never OK with less.
    other = bytes(reversed(data))
    e.fuse.ctl("fail write short 1")
    st, _ = e.fe.write(1, 100, other)
    check(st in (vc.S_OK, vc.S_IOERR), "short write: status %d" % st)
    if st == vc.S_OK:
        check(e.fuse.read(100 * SECTOR, len(other)) == other, "short write OK, the rest missing")
    e.fuse.ctl("clear")
    e.fuse.write(100 * SECTOR, data)
    still_serves(e)


def t_fuse_chain(e):
    e.fuse.ctl("fail read eio 1 3")
    chain_fails(e)
    e.fuse.ctl("clear", "fail read short 1 3")
    chain_ok(e)
    e.fuse.ctl("clear", "fail read eagain 0 2")
    chain_fails(e)
    e.fuse.ctl("clear")
    still_serves(e)


def truncated(e, shrink):
    """The image shrinks under the daemon to 1 MiB (+ one sector)."""
    end = 1 * MiB + SECTOR
    shrink(end)
    m = e.daemon.mark()
    st, _, _ = e.fe.read(0, 3000, 4096)
    expect_blk(e, st, vc.S_IOERR, "read past the new end")
    check(e.daemon.wait_log(r"error .*end of .* the image is shorter than the disk", m),
          "no error line naming the truncated image")
    st, _, _ = e.fe.read(0, end // SECTOR - 1, 4096)
    expect_blk(e, st, vc.S_IOERR, "read across the new end")
    st, _, got = e.fe.read(0, 0, 4096)
    expect_blk(e, st, vc.S_OK, "read before the new end")
    # A chain that walks off the end ends IO_ERROR mid-way.
    st, nst, hops, _ = run_nd(e.fe, cq_sum(e.fe, e.cq, end // SECTOR - 5, 16))
    check(nst == vc.NDP_S_IO_ERROR and hops > 0, "a chain past the new end: %s after %d hops"
          % (vc.ndp_status_name(nst), hops))
    # Writes there grow the image again and read back.
    expect_blk(e, e.fe.write(0, 4000, b"\x42" * 4096)[0], vc.S_OK, "write past the new end")
    st, _, got = e.fe.read(0, 4000, 4096)
    check(st == vc.S_OK and got == b"\x42" * 4096, "read of what was written past the end")
    expect_blk(e, e.fe.simple(0, vc.T_FLUSH)[0], vc.S_OK, "FLUSH")
    # Hostile: hammer the hole in parallel on both queues; every request
    # answered, the log rate-limited (50 lines a second per VM).
    m = e.daemon.mark()
    for q in range(2):
        vq = e.fe.vqs[q]
        old = vq.avail_idx
        for i in range(100):
            vq.add_indirect(vc.BlkReq(e.fe.mem, vc.T_IN, 2100 + i * 8, in_len=4096).segs)
        vq.kick(old)
    for q in range(2):
        check(len(e.fe.vqs[q].wait_used(100, 10.0)) == 100, "reads of the hole were not all answered")
    lines = [ln for ln in e.daemon.log(m).splitlines() if " error " in ln]
    check(len(lines) <= 50 + 2, "%d error lines for 200 reads of the hole: not rate-limited"
          % len(lines))


def t_truncated_file(e):
    truncated(e, lambda n: os.truncate(e.path, n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--only")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.keep_going = False
    args.hooks = has_fault_hooks(args.build)
    r = Runner(args.only)
    r.run("hook_blk_eio_enospc_eagain_short_are_ioerr", case(t_hook_blk_errors, hooks=True), args)
    r.run("hook_blk_short_and_eagain_are_retried", case(t_hook_blk_retries, hooks=True), args)
    r.run("hook_eio_mid_chain_is_io_error", case(t_hook_chain_eio, hooks=True), args)
    r.run("hook_short_hop_is_retried_forever_short_is_io_error",
          case(t_hook_chain_short_retried, hooks=True), args)
    r.run("hook_eagain_hop_is_retried_bounded", case(t_hook_chain_eagain, hooks=True), args)
    r.run("hook_write_nd_enospc_is_io_error", case(t_hook_write_nd_enospc, hooks=True), args)
    r.run("flush_storm_on_every_queue_other_vm_unaffected",
          case(t_flush_storm, queues=4, extra_disks=1), args)
    r.run("fuse_eio_enospc_are_ioerr", case(t_fuse_errors, fuse=True), args)
    for cache in ("direct", "buffered"):
        r.run("fuse_eagain_forever_is_cancelled_and_ioerr_%s" % cache,
              case(t_fuse_eagain_forever, fuse=True, cache=cache), args)
        r.run("fuse_short_reads_are_completed_%s" % cache,
              case(t_fuse_retries, fuse=True, cache=cache), args)
    r.run("fuse_faults_mid_chain", case(t_fuse_chain, fuse=True), args)
    r.run("fuse_truncated_under_the_daemon",
          case(lambda e: truncated(e, lambda n: os.truncate(e.path, n)), fuse=True), args)
    r.run("file_truncated_under_the_daemon_direct", case(t_truncated_file), args)
    r.run("file_truncated_under_the_daemon_buffered", case(t_truncated_file, cache="buffered"), args)
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
