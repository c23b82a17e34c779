#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Durability: what a FLUSH promises survives a host crash.

Usage: test_durability.py --build DIR [--only REGEX] [--keep]

The disk is tests/fuse/fusedisk's disk.img: an image whose writes sit in
a volatile cache until fsync/fdatasync makes them durable, and which
forgets the rest when told "crash" (docs/robustness.md, "Durability").
Each case runs rosenbridged on it, writes and flushes through a vhost-user
frontend (tests/vhost/vhost_client.py), kills the daemon with SIGKILL,
crashes the disk and reads back what survived; for every --cache mode:

- a write acknowledged before a FLUSH that was answered OK survives; a
  write after it does not (the disk really forgets: the test can tell);
- a FLUSH pipelined behind a write the disk is slow to take (the driver
  does not wait for the write first) still covers it: the daemon sends
  the fdatasync only after the write completed;
- the same for the write round of a WRITE_ND;
- a FLUSH the disk fails is IOERR, and the next one works;
- FLUSH is advertised in every cache mode, and flushes reach the disk as
  fdatasync.

Needs the FUSE disk (built when libfuse3-dev is there) and permission to
mount; without either the cases say SKIP.  Ends with "N passed, N failed".
"""
import argparse
import os
import shutil
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vhost_client as vc  # noqa: E402
from fault_env import (MiB, SECTOR, Daemon, FuseDisk, Runner, Skip, check,  # noqa: E402
                       ndp_load_ok)

IMG = 4 * MiB
MODES = ("direct", "buffered")


class Env:
    def __init__(self, args, cache, queues=2):
        self.args = args
        self.cache = cache
        self.workdir = tempfile.mkdtemp(prefix="rb-dur-")
        fusedisk = os.path.join(args.build, "tests", "fuse", "fusedisk")
        if not os.path.exists(fusedisk):
            raise Skip("no %s (libfuse3-dev missing at build time)" % fusedisk)
        self.fuse = None
        self.daemon = None
        self.fe = None
        self.fuse = FuseDisk(fusedisk, self.workdir, IMG)
        self.start(queues)

    def start(self, queues=2):
        self.daemon = Daemon(os.path.join(self.args.build, "app", "rosenbridged", "rosenbridged"),
                             self.workdir, [(self.fuse.path, ["--cache", self.cache,
                                                              "--queues", str(queues)])])
        self.fe = vc.Frontend(self.daemon.sock[0], timeout=5.0, mem_size=8 * MiB, queue_size=64)

    def crash(self):
        """The host dies: the daemon without a chance to do anything,
        then the disk's cache."""
        self.daemon.kill()
        self.fe.close()
        self.fe = None
        self.fuse.ctl("crash")

    def close(self):
        if self.fe:
            self.fe.close()
        if self.daemon:
            self.daemon.stop()
        if self.fuse:
            self.fuse.close()
        if self.args.keep:
            print("# kept " + self.workdir)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def with_env(cache, fn, queues=2):
    def run(args):
        e = Env(args, cache, queues)
        try:
            fn(e)
        finally:
            e.close()
    return run


def data(tag, n=4096):
    return (tag.encode() * n)[:n]


def ok(st, what):
    check(st == vc.S_OK, "%s: virtio status %d" % (what, st))


# ---- cases ---------------------------------------------------------------------------------


def t_flush_advertised(args):
    """FLUSH in the features of every cache mode (a plain file here)."""
    work = tempfile.mkdtemp(prefix="rb-dur-")
    try:
        img = os.path.join(work, "plain.img")
        with open(img, "wb") as f:
            f.truncate(MiB)
        for cache in MODES:
            d = Daemon(os.path.join(args.build, "app", "rosenbridged", "rosenbridged"), work,
                       [(img, ["--cache", cache])])
            try:
                with vc.Frontend(d.sock[0], mem_size=4 * MiB, queue_size=16) as fe:
                    check(fe.offered & (1 << vc.BLK_F_FLUSH),
                          "--cache %s: VIRTIO_BLK_F_FLUSH not offered" % cache)
            finally:
                d.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def t_flushed_write_survives(e):
    a, b = data("A"), data("B")
    ok(e.fe.write(0, 0, a)[0], "write A")
    ok(e.fe.simple(0, vc.T_FLUSH)[0], "FLUSH")
    ok(e.fe.write(1, 64, b)[0], "write B")
    s = e.fuse.stats()
    check(s["fdatasyncs"] >= 1 and s["fsyncs"] == 0,
          "flushes should reach the disk as fdatasync: %r" % s)
    e.crash()
    check(e.fuse.read(0, 4096) == a, "a write acknowledged before a FLUSH was lost in the crash")
    check(e.fuse.read(64 * SECTOR, 4096) == bytes(4096),
          "the unflushed write survived: the FUSE disk did not forget it (test broken?)")
    # After the "reboot", a new daemon serves what survived.
    e.start()
    st, _, got = e.fe.read(0, 0, 4096)
    ok(st, "read after restart")
    check(got == a, "after restart the daemon reads something else at sector 0")


def pipelined(e, first_segs, q=0, delay_ms=300):
    """first_segs then a FLUSH on queue q, both in the ring before the
    kick; the disk takes the write `delay_ms` to accept.  Returns their
    used entries in completion order and the flush request."""
    vq = e.fe.vqs[q]
    e.fuse.ctl("delay write %d 1" % delay_ms)
    old = vq.avail_idx
    hw = vq.add_chain(first_segs)
    fr = vc.BlkReq(e.fe.mem, vc.T_FLUSH)
    hf = vq.add_chain(fr.segs)
    vq.kick(old)
    used = vq.wait_used(2, 5.0)
    check(used and len(used) == 2, "write + FLUSH did not complete")
    order = [u[0] for u in used]
    check(order == [hw, hf], "the FLUSH completed before the write it followed (%r)" % order)
    return fr


def t_flush_covers_pipelined_write(e):
    w = data("W", 65536)
    wr = vc.BlkReq(e.fe.mem, vc.T_OUT, 128, data=w)
    fr = pipelined(e, wr.segs)
    ok(wr.status_byte(), "write")
    ok(fr.status_byte(), "FLUSH")
    e.crash()
    check(e.fuse.read(128 * SECTOR, len(w)) == w,
          "a FLUSH answered OK did not cover the write pipelined before it")


def t_flush_covers_pipelined_write_nd(e):
    with open(os.path.join(e.args.build, "tests", "programs", "ndp_progs.o"), "rb") as f:
        elf = f.read()
    h = ndp_load_ok(e.fe, elf, "cq_sum")
    w = data("N", 512)
    # cq_sum with nblocks 1: the program runs once on the written block
    # and ends the request.
    r = vc.ndp_io(e.fe.mem, vc.NDP_T_WRITE_ND, h, 300, 512, meta=struct.pack("<II", 1, 1),
                  scratch=bytes(16), data=w)
    fr = pipelined(e, r.segs)
    ok(r.status_byte(), "WRITE_ND")
    check(r.result()[0] == vc.NDP_S_OK, "WRITE_ND: %s" % vc.ndp_status_name(r.result()[0]))
    ok(fr.status_byte(), "FLUSH")
    e.crash()
    check(e.fuse.read(300 * SECTOR, 512) == w,
          "a FLUSH answered OK did not cover the WRITE_ND pipelined before it")


def t_flush_error_is_ioerr(e):
    x = data("X")
    ok(e.fe.write(0, 8, x)[0], "write")
    e.fuse.ctl("fail fsync eio 1")
    m = e.daemon.mark()
    st, _ = e.fe.simple(0, vc.T_FLUSH)
    check(st == vc.S_IOERR, "a FLUSH the disk failed answered %d, not IOERR" % st)
    check(e.daemon.wait_log(r"error .*flush \(fdatasync of .*\) failed: Input/output error", m),
          "no error line for the failed flush")
    ok(e.fe.simple(0, vc.T_FLUSH)[0], "the next FLUSH")
    e.crash()
    check(e.fuse.read(8 * SECTOR, 4096) == x, "the write the second FLUSH covered was lost")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--only")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    r = Runner(args.only)
    r.run("flush_is_advertised_in_every_cache_mode", t_flush_advertised, args)
    for cache in MODES:
        r.run("flushed_write_survives_a_crash_unflushed_does_not_%s" % cache,
              with_env(cache, t_flushed_write_survives), args)
        r.run("flush_covers_a_write_pipelined_before_it_%s" % cache,
              with_env(cache, t_flush_covers_pipelined_write), args)
        r.run("flush_covers_a_write_nd_pipelined_before_it_%s" % cache,
              with_env(cache, t_flush_covers_pipelined_write_nd), args)
        r.run("flush_the_disk_fails_is_ioerr_%s" % cache,
              with_env(cache, t_flush_error_is_ioerr), args)
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
