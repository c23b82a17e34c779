#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Inline reads (docs/rosenbridged.md, "Inline reads"): a read of a
buffered image is first tried at once with preadv2(RWF_NOWAIT); a
page-cache hit is served by that one syscall, a miss goes through io_uring.
Checks that both paths return the file's bytes (guest reads and NDP hops,
a round with one hit and one miss), that the counters say which path each
read took, and that --no-inline-reads and O_DIRECT disks never read inline.

usage: test_inline_reads.py [--build DIR]; ends with "N passed, N failed".
"""
import argparse
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vhost"))
import vhost_client as vc  # noqa: E402
import test_metrics as tm  # noqa: E402  (daemon with --metrics-listen, strict scrape)

results = []
PAGE = 4096


def check(name, cond, detail=""):
    results.append(bool(cond))
    print("%s %s" % ("PASS" if cond else "FAIL", name))
    if not cond and detail != "":
        print("     ", str(detail)[:400])


def evict(path, off=0, length=0):
    """Drops [off, off + length) of path from the page cache (0: all)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, off, length, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def hits(s, disk="vm0"):
    return s.get("rosen_inline_reads_total", disk=disk, result="hit")


def misses(s, disk="vm0"):
    return s.get("rosen_inline_reads_total", disk=disk, result="miss")


def cq_sum_expected(img, first_sector, nblocks, stride):
    """What tests/programs/ndp_progs.c cq_sum does: its rounds (the block
    offsets each reads) and the byte sum of all the blocks."""
    data = open(img, "rb").read()
    rounds = [[first_sector * 512]]
    off, length, seen = first_sector * 512, 512, 0
    while True:
        seen += length // 512
        if seen >= nblocks:
            break
        nxt = off + (length // 512) * stride * 512
        two = seen + 2 <= nblocks
        rounds.append([nxt, nxt + stride * 512] if two else [nxt])
        off, length = nxt, 1024 if two else 512
    return sum(sum(data[b:b + 512]) for r in rounds for b in r), rounds


def guest_and_ndp(build, tmp):
    img = os.path.join(tmp, "buffered.img")
    with open(img, "wb") as f:
        f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
    ref = open(img, "rb").read()
    elf = open(os.path.join(build, "tests", "programs", "ndp_progs.o"), "rb").read()
    d = tm.Daemon(build, tmp, [(img, None)])
    try:
        fe = vc.Frontend(d.socks[0], mem_size=8 << 20)
        open(img, "rb").read()  # all of it in the page cache
        s0 = tm.scrape(d)
        ok = True
        for k in range(10):
            st, _, data = fe.read(0, 8 * k, 4096)
            ok = ok and st == vc.S_OK and data == ref[k * 4096:(k + 1) * 4096]
        s1 = tm.scrape(d)
        check("10 cached 4 KiB reads return the file's bytes", ok)
        check("... all 10 served inline (hits +10, misses +0)",
              (hits(s1) - hits(s0), misses(s1) - misses(s0)) == (10, 0),
              (hits(s1) - hits(s0), misses(s1) - misses(s0)))

        evict(img)
        st, _, data = fe.read(1, 64, 8192)
        s2 = tm.scrape(d)
        check("an uncached read: a miss, then io_uring returns the file's bytes",
              st == vc.S_OK and data == ref[64 * 512:64 * 512 + 8192] and misses(s2) - misses(s1) == 1
              and hits(s2) == hits(s1), (st, hits(s2) - hits(s1), misses(s2) - misses(s1)))
        st, _, data = fe.read(1, 64, 8192)
        s3 = tm.scrape(d)
        check("the same read again: now a hit", st == vc.S_OK and data == ref[64 * 512:64 * 512 + 8192]
              and hits(s3) - hits(s2) == 1, hits(s3) - hits(s2))

        # A read across a cached and an uncached page: short, so the whole
        # read goes to io_uring (never half from each).
        open(img, "rb").read()
        evict(img, 20 * PAGE, PAGE)
        st, _, data = fe.read(0, 19 * 8, 2 * PAGE)
        s4 = tm.scrape(d)
        check("a read half cached: one miss, the whole read correct",
              st == vc.S_OK and data == ref[19 * PAGE:21 * PAGE] and misses(s4) - misses(s3) == 1
              and hits(s4) == hits(s3), (st, hits(s4) - hits(s3), misses(s4) - misses(s3)))

        # NDP: cq_sum reads 7 blocks in 4 rounds (1, 2, 2, 2 reads), one
        # block per page (stride 8 sectors), and sums their bytes.
        r = vc.ndp_load(fe.mem, vc.NDP_PROG_CQ, elf, "cq_sum")
        fe.run(0, r, timeout=20)
        h, st_load = vc.load_result(r)[:2]
        check("cq_sum loads", st_load == vc.NDP_S_OK, st_load)
        want, rounds = cq_sum_expected(img, 16, 7, 8)

        def run_sum():
            r = vc.ndp_io(fe.mem, vc.NDP_T_READ_ND, h, 16, vc.SECTOR, meta=struct.pack("<II", 7, 8),
                          scratch=bytes(16))
            fe.run(0, r)
            res = r.result()
            # writable parts: data (512), scratch {sum, seen}, result
            return res, struct.unpack("<QQ", r.wpart(1))[0]

        open(img, "rb").read()
        s5 = tm.scrape(d)
        res, got = run_sum()
        s6 = tm.scrape(d)
        check("READ_ND through cq_sum, all cached: OK after 7 hops, every hop read inline (+7 hits)",
              res[0] == vc.NDP_S_OK and res[1] == 7 and hits(s6) - hits(s5) == 7 and misses(s6) == misses(s5),
              (res, hits(s6) - hits(s5), misses(s6) - misses(s5)))
        check("... the program summed the file's bytes (%d)" % want, got == want, (got, want))
        # Round 2 reads two pages; drop one: one I/O of the round inline,
        # the other through io_uring, the program sees both.
        evict(img, rounds[1][1], PAGE)
        res, got = run_sum()
        s7 = tm.scrape(d)
        check("a round with one hit and one miss: OK after 7 hops, 6 hits and 1 miss",
              res[0] == vc.NDP_S_OK and res[1] == 7 and (hits(s7) - hits(s6), misses(s7) - misses(s6)) == (6, 1),
              (res, hits(s7) - hits(s6), misses(s7) - misses(s6)))
        check("... and the sum is still the file's", got == want, (got, want))
        fe.close()
    finally:
        d.stop()


def inline_off(build, tmp):
    img = os.path.join(tmp, "off.img")
    with open(img, "wb") as f:
        f.write(os.urandom(1 << 20))
    ref = open(img, "rb").read()
    d = tm.Daemon(build, tmp, [(img, None)], extra=("--no-inline-reads",))
    try:
        fe = vc.Frontend(d.socks[0], mem_size=8 << 20)
        ok = True
        for k in range(5):
            st, _, data = fe.read(0, 8 * k, 4096)
            ok = ok and st == vc.S_OK and data == ref[k * 4096:(k + 1) * 4096]
        s = tm.scrape(d)
        check("--no-inline-reads: reads served, none tried inline", ok and hits(s) == 0 and misses(s) == 0,
              (ok, hits(s), misses(s)))
        fe.close()
    finally:
        d.stop()


def direct_disk(build, tmp):
    """O_DIRECT reads never go inline (they would wait for the device)."""
    img = os.path.join("/var/tmp", "rosen-inline-%d.img" % os.getpid())
    with open(img, "wb") as f:
        f.write(os.urandom(1 << 20))
    sock = os.path.join(tmp, "direct.sock")
    log = os.path.join(tmp, "direct.log")
    p = subprocess.Popen([os.path.join(build, "app", "rosenbridged", "rosenbridged"), "--metrics-listen", "0",
                          "--disk", img, "--socket", sock, "--cache", "direct"],
                         stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        end = time.time() + 10
        port = None
        while time.time() < end and port is None:
            m = re.search(r"serving metrics at http://127\.0\.0\.1:(\d+)/metrics", open(log).read())
            if m and os.path.exists(sock):
                port = int(m.group(1))
            time.sleep(0.02)
        if "no O_DIRECT" in open(log).read():
            print("     (/var/tmp has no O_DIRECT: the disk is buffered there; checking that instead)")
        fe = vc.Frontend(sock, mem_size=8 << 20)
        st, _, data = fe.read(0, 8, 4096)
        code, _, body = tm.http(port, b"GET /metrics HTTP/1.0\r\n\r\n")
        s = tm.Scrape(tm.parse_exposition(body))
        buffered = "no O_DIRECT" in open(log).read()
        check("--cache direct: an aligned read is correct and %s" % ("inline (buffered fallback)" if buffered
                                                                      else "never inline"),
              st == vc.S_OK and data == open(img, "rb").read()[4096:8192]
              and (hits(s) + misses(s) == 1 if buffered else hits(s) == 0 and misses(s) == 0),
              (st, hits(s), misses(s)))
        fe.close()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=15)
        os.unlink(img)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    tmp = tempfile.mkdtemp(prefix="rosen-inline-")
    try:
        for part in (guest_and_ndp, inline_off, direct_disk):
            try:
                part(build, tmp)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                check("%s ran to the end" % part.__name__, False, e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 1 if passed != len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
