#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Program CPU shared between VMs, and drains that do not wait for programs.

Usage: test_ndp_fairness.py [--daemon PATH] [--programs DIR] [--only REGEX]
                            [--keep] [--verbose]

Starts one rosenbridged (one worker) serving two disks, vm0 (the hostile
guest, "A") and vm1 ("B"), and checks what docs/rosenbridged.md promises
("Program CPU"): a request's program runs together get at most
RB_NDP_REQUEST_BUDGET instructions (then BUDGET); while A's ring is full of
READ_NDs whose program (tests/programs/ndp_busy.c) spins most of its
per-run budget on every one of many hops, B's 4 KiB reads stay under
50 ms (p99 of 100) and B's GET_FEATURES answers promptly; stopping A's
ring (GET_VRING_BASE), disconnecting A or SIGTERM ends A's chains at their
next hop (IO_ERROR, "the device stopped the queue") in well under 2 s, so
the control thread every VM shares is not held.

Prints "PASS name" / "FAIL name: reason" per case and ends with
"N passed, N failed"; exits 1 on failure.
"""
import argparse
import os
import re
import struct
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import vhost_client as vc  # noqa: E402
from vhost_client import (NDP_S_BUDGET, NDP_S_IO_ERROR, NDP_S_OK, NDP_T_READ_ND, S_OK,  # noqa: E402
                          Frontend, load_result, ndp_io, ndp_load)
from test_ndp_bad_input import Daemon, Failure, check  # noqa: E402

MiB = 1 << 20
REQUEST_BUDGET = 16_000_000  # RB_NDP_REQUEST_BUDGET
FLOOD = 1024                 # READ_NDs in A's ring (its size)
FLOOD_HOPS = 128
SPIN = 180_000               # loop rounds per run: ~0.93M of the 1M per-run budget
READS = 100
READ_MAX_S = 0.050
DRAIN_MAX_S = 2.0
STOPPED_MSG = "stopped the queue"


class Suite:
    def __init__(self, args):
        self.args = args
        self.passed = self.failed = 0
        self.only = re.compile(args.only) if args.only else None
        self.workdir = tempfile.mkdtemp(prefix="rb-fair-")
        with open(os.path.join(args.programs, "ndp_busy.o"), "rb") as f:
            self.elf = f.read()
        self.d = Daemon(args.daemon, self.workdir, args.verbose,
                        layout=(("a", False), ("b", False)))
        self.a, self.b = self.d.disks["a"], self.d.disks["b"]
        self.fes = []
        self.stopped = False

    def frontend(self, disk, **kw):
        kw.setdefault("timeout", 60.0)  # measured, not waited on: see the checks
        kw.setdefault("mem_size", 32 * MiB)
        kw.setdefault("queue_size", 64)
        kw.setdefault("queues", 1)
        fe = Frontend(disk.sock, **kw)
        self.fes.append(fe)
        return fe

    def close_frontends(self):
        for fe in self.fes:
            try:
                fe.close()
            except Exception:
                pass
        self.fes = []

    def close(self):
        self.close_frontends()
        if self.d:
            self.d.stop(timeout=60)
        if not self.args.keep:
            for f in os.listdir(self.workdir):
                os.unlink(os.path.join(self.workdir, f))
            os.rmdir(self.workdir)
        else:
            print("# kept " + self.workdir)

    def run(self, name, fn):
        if self.only and not self.only.search(name):
            return
        mark = self.d.mark()
        reason = None
        try:
            try:
                fn(self, mark)
            finally:
                self.close_frontends()
            check(self.stopped or self.d.alive(),
                  "the daemon died (exit status %s)" % self.d.proc.returncode)
        except Failure as e:
            reason = str(e)
        except Exception as e:
            reason = "%s: %s (line %d)" % (type(e).__name__, e,
                                           traceback.extract_tb(e.__traceback__)[-1].lineno)
        if reason is None:
            self.passed += 1
            print("PASS " + name, flush=True)
            return
        self.failed += 1
        print("FAIL %s: %s" % (name, reason), flush=True)
        for line in self.d.log_since(mark).splitlines()[-20:]:
            print("    | " + line)
        if not self.stopped and not self.d.alive():
            print("    (restarting rosenbridged)", flush=True)
            self.d.restart()

    # -- helpers --

    def load(self, fe):
        r = ndp_load(fe.mem, vc.NDP_PROG_CQ, self.elf, "cq_busy")
        fe.run(0, r, timeout=30.0)
        handle, st, log_len, log = load_result(r)
        check(st == NDP_S_OK, "LOAD of cq_busy: %s: %r" % (vc.ndp_status_name(st), log[:log_len]))
        return handle

    def busy(self, fe, handle, spin, hops, max_hops):
        return ndp_io(fe.mem, NDP_T_READ_ND, handle, 0, 512, meta=struct.pack("<II", spin, hops),
                      scratch=bytes(8), max_hops=max_hops)

    def flood(self, fe, handle, n=FLOOD):
        """n busy READ_NDs made available in A's ring (indirect: one
        descriptor each), kicked once.  Returns {head: req}."""
        vq = fe.vqs[0]
        reqs = {}
        for _ in range(n):
            r = self.busy(fe, handle, SPIN, FLOOD_HOPS, FLOOD_HOPS)
            reqs[vq.add_indirect(r.segs)] = r
        vq.kick()
        return reqs

    def flooded(self):
        """A with its ring full of busy chains (and time to get going), and
        B: (fe_a, reqs, fe_b)."""
        fa = self.frontend(self.a, queue_size=FLOOD, mem_size=64 * MiB)
        fb = self.frontend(self.b)
        reqs = self.flood(fa, self.load(fa))
        time.sleep(0.3)
        check(self.d.alive(), "the daemon died under the flood")
        return fa, reqs, fb


def reads(fe, n=READS):
    """n sequential 4 KiB reads: sorted latencies in seconds."""
    lat = []
    for i in range(n):
        t0 = time.monotonic()
        st, ulen, _ = fe.read(0, (i * 8) % 8000, 4096)
        lat.append(time.monotonic() - t0)
        check((st, ulen) == (S_OK, 4097), "read %d: status %d, used len %d" % (i, st, ulen))
    return sorted(lat)


def timed(fn, *a):
    t0 = time.monotonic()
    out = fn(*a)
    return out, time.monotonic() - t0


def stopped_results(fe, reqs):
    """Statuses of A's requests that came back (after a drain): {status: n},
    and whether a cut one says why in the result."""
    counts = {}
    for head, _ in fe.vqs[0].poll_used():
        st, hops, _, _ = reqs[head].result()
        counts[vc.ndp_status_name(st)] = counts.get(vc.ndp_status_name(st), 0) + 1
    return counts


# ---- cases ---------------------------------------------------------------------------------


def t_request_budget(s, mark):
    """A chain of full-budget runs ends with BUDGET once its runs together
    pass RB_NDP_REQUEST_BUDGET, long before its hops run out; a chain of
    cheap runs under it ends OK."""
    fe = s.frontend(s.a)
    h = s.load(fe)
    r = s.busy(fe, h, SPIN, 1000, 1024)
    _, took = timed(fe.run, 0, r, False, 30.0)
    st, hops, _, _ = r.result()
    runs = struct.unpack("<Q", r.wpart(1)[:8])[0]
    print("# long chain: %s after %d hops (%d runs) in %.2f s" % (vc.ndp_status_name(st), hops,
                                                                 runs, took), flush=True)
    check(st == NDP_S_BUDGET, "status %s, expected budget" % vc.ndp_status_name(st))
    # ~5.2 instructions a spin round: the budget holds ~17 such runs.
    check(5 <= hops < 100, "%d hops before BUDGET" % hops)
    check(s.d.find_log(mark, r"request budget of 16000000 instructions \(all runs together\) "
                       r"exhausted after \d+ hops"), "no log line naming the request budget")
    r = s.busy(fe, h, 1000, 200, 256)
    fe.run(0, r, timeout=30.0)
    st, hops, _, _ = r.result()
    check((st, hops) == (NDP_S_OK, 200), "cheap chain: %s after %d hops"
          % (vc.ndp_status_name(st), hops))


def t_flood_other_vm_reads(s, mark):
    """A floods its ring; B's 100 sequential 4 KiB reads complete in under
    50 ms (p99), and B's GET_FEATURES answers at once."""
    fa, reqs, fb = s.flooded()
    lat = reads(fb)
    _, gf = timed(fb.conn.get_features)
    done = (fa.vqs[0].used_idx() - fa.vqs[0].last_used) & 0xFFFF
    p99, worst = lat[int(len(lat) * 0.99) - 1], lat[-1]
    print("# B under A's flood: p50 %.2f ms, p99 %.2f ms, max %.2f ms; GET_FEATURES %.2f ms; "
          "A's requests done meanwhile: %d of %d" % (lat[len(lat) // 2] * 1e3, p99 * 1e3,
                                                     worst * 1e3, gf * 1e3, done, len(reqs)),
          flush=True)
    # p99 of 100 is the second slowest: one read the kernel's scheduler
    # held up on a busy shared machine does not fail the case (before the
    # device shared program CPU, every read took ~200 ms).
    check(p99 < READ_MAX_S, "B's p99 read latency was %.1f ms (bound %.0f ms)"
          % (p99 * 1e3, READ_MAX_S * 1e3))
    check(gf < 0.5, "B's GET_FEATURES took %.0f ms" % (gf * 1e3))
    check(done < len(reqs), "A's flood was over before B read (the test proves nothing)")


def t_flood_drain(s, mark):
    """GET_VRING_BASE of A's flooded ring returns in under 2 s; B's
    GET_FEATURES sent 20 ms after it answers in under 2 s too; A's cut chains end
    IO_ERROR with the reason logged."""
    time.sleep(1.1)  # the last case's log lines' rate-limit window is over
    fa, reqs, fb = s.flooded()
    out = {}

    def drain():
        try:
            out["base"], out["took"] = timed(fa.conn.get_vring_base, 0)
        except Exception as e:  # noqa: BLE001 - reported below
            out["err"] = repr(e)

    fa.conn.timeout = 60.0
    th = threading.Thread(target=drain)
    th.start()
    time.sleep(0.02)
    _, gf = timed(fb.conn.get_features)
    th.join()
    check("err" not in out, "GET_VRING_BASE: %s" % out.get("err"))
    counts = stopped_results(fa, reqs)
    print("# drain of A's flooded ring: %.1f ms; B's GET_FEATURES meanwhile %.1f ms; A's "
          "requests taken: %d, came back: %s" % (out["took"] * 1e3, gf * 1e3, out["base"] - 1, counts),
          flush=True)
    check(out["took"] < DRAIN_MAX_S, "the drain took %.2f s (bound %.0f s)"
          % (out["took"], DRAIN_MAX_S))
    check(gf < DRAIN_MAX_S, "B's GET_FEATURES took %.2f s" % gf)
    # The ones the device took (up to the ring index it answered, after
    # the LOAD) come back; the rest were never taken and stay in the ring.
    check(sum(counts.values()) == out["base"] - 1, "%d requests came back, the device took %d"
          % (sum(counts.values()), out["base"] - 1))
    check(counts.get("io-error", 0) >= 1, "no chain was cut: %s" % counts)
    # Guest-triggered lines are rate-limited (10 a second per queue): the
    # chains that ended BUDGET before the drain may have used them up.
    ended = len(re.findall(r"vm0: queue 0: NDP request ended", s.d.log_since(mark)))
    check(s.d.find_log(mark, STOPPED_MSG) or ended >= 10, "no log line for the cut chains")
    # B is still served.
    reads(fb, 10)


def t_flood_disconnect(s, mark):
    """A disconnects with its ring flooded: B's GET_FEATURES (the control
    thread drains A first) answers in under 2 s, and B reads."""
    fa, reqs, fb = s.flooded()
    fa.close()
    time.sleep(0.02)
    _, gf = timed(fb.conn.get_features)
    print("# A disconnected while flooded: B's GET_FEATURES %.1f ms" % (gf * 1e3), flush=True)
    check(gf < DRAIN_MAX_S, "B's GET_FEATURES took %.2f s" % gf)
    reads(fb, 10)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def t_flood_ndp_state_bounded(s, mark):
    """A's ring of 1024 READ_NDs holds at most --ndp-inflight (64) NDP
    states of ~28 KiB at once, not one per ring slot (28 MiB), and they
    are given back when A disconnects."""
    fa = s.frontend(s.a, queue_size=FLOOD, mem_size=64 * MiB)
    handle = s.load(fa)
    pid = s.d.proc.pid
    before = rss_kib(pid)
    s.flood(fa, handle)
    peak = before
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        peak = max(peak, rss_kib(pid))
        time.sleep(0.02)
    fa.close()
    time.sleep(0.5)
    after = rss_kib(pid)
    print("# daemon RSS: %d KiB before the flood, %d at most during, %d after A left"
          % (before, peak, after), flush=True)
    check(peak - before < 6 * 1024, "RSS grew by %d KiB under the flood" % (peak - before))
    check(after - before < 1024, "RSS stayed %d KiB above the start after A left" % (after - before))


def t_flood_sigterm(s, mark):
    """SIGTERM with A's ring flooded: exit status 0 within 2 s."""
    s.flooded()
    t0 = time.monotonic()
    rc = s.d.stop(timeout=60)
    took = time.monotonic() - t0
    s.stopped = True
    print("# SIGTERM while flooded: exit %s in %.2f s" % (rc, took), flush=True)
    check(rc == 0, "exit status %s" % rc)
    check(took < DRAIN_MAX_S + 1, "shutdown took %.2f s" % took)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build/app/rosenbridged/rosenbridged"))
    ap.add_argument("--programs", default=os.path.join(ROOT, "build/tests/programs"),
                    help="directory holding ndp_busy.o")
    ap.add_argument("--only", help="run the cases whose name matches this regex")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--verbose", action="store_true", help="start the daemon with --verbose")
    args = ap.parse_args()
    for path in (args.daemon, os.path.join(args.programs, "ndp_busy.o")):
        if not os.path.exists(path):
            print("missing %s (build it: scripts/build.sh)" % path)
            print("0 passed, 1 failed")
            return 1
    t_start = time.monotonic()
    s = None
    try:
        s = Suite(args)
        s.run("request_budget_ends_a_long_chain", t_request_budget)
        s.run("flood_leaves_other_vm_reads_fast", t_flood_other_vm_reads)
        s.run("drain_of_a_flooded_ring_is_prompt", t_flood_drain)
        s.run("disconnect_of_a_flooded_vm_is_prompt", t_flood_disconnect)
        s.run("ndp_state_bounded_per_queue_and_freed", t_flood_ndp_state_bounded)
        s.run("sigterm_while_flooded_exits_promptly", t_flood_sigterm)
    except Exception as e:
        if s is None:
            print("FAIL suite: %s: %s" % (type(e).__name__, e))
            print("0 passed, 1 failed")
            return 1
        s.failed += 1
        print("FAIL suite: %s: %s" % (type(e).__name__, e))
        traceback.print_exc(file=sys.stdout)
    finally:
        if s is not None:
            s.close()
    print("# %.1f s" % (time.monotonic() - t_start))
    print("%d passed, %d failed" % (s.passed, s.failed))
    return 1 if s.failed else 0


if __name__ == "__main__":
    sys.exit(main())
