#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NDP LOADs on rosenbridged's one loader thread, through the daemon.

Usage: test_ndp_load_queue.py [--daemon PATH] [--programs DIR] [--only REGEX]
                              [--keep] [--verbose]

Starts one rosenbridged serving ten disks (vm0..vm9) and checks what
docs/rosenbridged.md promises of LOADs: a LOAD built to explode the
verifier (tests/programs/state_explosion.c: local calls 7 deep, each
function branching 256 times on values reloaded from memory) answers within
a bounded CPU time and memory while another VM's reads keep completing; the
loader runs at nice 19; more LOADs than the daemon-wide cap (16) from many
VMs get LIMIT with the reason, none is lost, and the worker serves reads
while the loader is busy; a queue that stops (GET_VRING_BASE, disconnect,
SIGTERM) answers its LOADs still waiting at once.  The loader is kept busy
with a batch of explosion LOADs made available in one instant (Staged).

The explosion case needs the verifier to enforce the memory, work and CPU
limits of struct rb_bpf_verify_opts (the daemon passes them).

Prints "PASS name" / "FAIL name: reason" per case and ends with
"N passed, N failed"; exits 1 on failure.
"""
import argparse
import os
import re
import signal
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import vhost_client as vc  # noqa: E402
from vhost_client import (NDP_S_LIMIT, NDP_S_OK, NDP_S_REJECTED, S_OK, Frontend,  # noqa: E402
                          load_result, ndp_load)
from test_ndp_bad_input import Daemon, Failure, check  # noqa: E402

MiB = 1 << 20
VMS = 10
CQ = vc.NDP_PROG_CQ
XRP = vc.NDP_PROG_XRP
QUEUED_CAP = 16  # RB_NDP_LOADS_QUEUED
PER_VM = 2       # RB_NDP_LOADS_PER_VM
MAX_MEM = 64 * MiB  # RB_NDP_VERIFY_MAX_MEM
PER_VM_MSG = b"LOADs of this VM are already queued or being verified"
FULL_MSG = b"LOAD queue is full"
STOPPED_MSG = b"queue stopped"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- what /proc says of the daemon -------------------------------------------------------


def proc_status(pid):
    """VmRSS / VmHWM ... in bytes."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if v.strip().endswith("kB"):
                out[k] = int(v.split()[0]) * 1024
    return out


def loader_tid(pid):
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            if f.read().strip() == "rb-loader":
                return int(tid)
    raise Failure("the daemon has no thread named rb-loader")


def task_stat(pid, tid):
    """(state, utime + stime in seconds, nice) of one thread."""
    with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return fields[0], (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[16])


def sanitized(binary):
    """ASan builds take ~2-3x the CPU and much more memory (shadow,
    redzones, quarantine): their bounds are scaled."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


# ---- requests staged in several rings, then made available at once -----------------------


class Staged:
    """Chains written into a ring but not yet made available: release()
    publishes every staged ring's index back to back, so many VMs' LOADs
    reach the worker within microseconds of each other."""

    def __init__(self):
        self.rings = {}  # vq -> [(head, descs, wbytes)]

    def add(self, vq, req):
        idx = vq.alloc_desc(len(req.segs))
        for k, (addr, length, w) in enumerate(req.segs):
            flags = (vc.DESC_F_WRITE if w else 0) | (vc.DESC_F_NEXT if k + 1 < len(req.segs) else 0)
            vq.set_desc(idx[k], addr, length, flags, idx[k + 1] if k + 1 < len(req.segs) else 0)
        wbytes = sum(length for _, length, w in req.segs if w)
        self.rings.setdefault(vq, []).append((idx[0], idx, wbytes, req))
        return idx[0]

    def release(self):
        for vq, chains in self.rings.items():
            for head, descs, wbytes, _ in chains:
                vq.mem.put_u16(vq.avail + 4 + 2 * (vq.avail_idx % vq.size), head)
                vq.avail_idx = (vq.avail_idx + 1) & 0xFFFF
                vq.outstanding.setdefault(head, []).append((list(descs), wbytes))
        for vq in self.rings:
            if vq.event_idx:
                vq.mem.put_u16(vq.used_event_addr, vq.last_used)
            vq.mem.put_u16(vq.avail + 2, vq.avail_idx)
        for vq in self.rings:
            vq.kick()


# ---- the suite ---------------------------------------------------------------------------


class Suite:
    def __init__(self, args):
        self.args = args
        self.passed = self.failed = 0
        self.only = re.compile(args.only) if args.only else None
        self.workdir = tempfile.mkdtemp(prefix="rb-loadq-")
        self.elf = self.read("ndp_progs.o")
        self.explode = self.read("state_explosion.o")
        self.asan = sanitized(args.daemon)
        if self.asan:
            # ASan keeps up to 256 MiB of freed memory in quarantine by
            # default: the RSS bound would measure that, not the verifier.
            opts = os.environ.get("ASAN_OPTIONS", "")
            os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=16"
        layout = tuple(("vm%d" % i, False) for i in range(VMS))
        self.d = Daemon(args.daemon, self.workdir, args.verbose, layout=layout)
        self.disks = [self.d.disks["vm%d" % i] for i in range(VMS)]
        self.fes = []
        self.stopped = False  # by a case, on purpose

    def read(self, name):
        with open(os.path.join(self.args.programs, name), "rb") as f:
            return f.read()

    def frontend(self, i, **kw):
        kw.setdefault("timeout", 5.0)
        kw.setdefault("mem_size", 8 * MiB)
        kw.setdefault("queue_size", 64)
        fe = Frontend(self.disks[i].sock, **kw)
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
            self.d.stop()
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

    def wait_loader_idle(self, timeout=60.0):
        """Until the loader has nothing queued (its thread sleeps)."""
        tid = loader_tid(self.d.pid)
        deadline = time.monotonic() + timeout
        idle = 0
        while time.monotonic() < deadline:
            state, _, _ = task_stat(self.d.pid, tid)
            idle = idle + 1 if state == "S" else 0
            if idle >= 5:
                return
            time.sleep(0.02)
        raise Failure("the loader thread is still busy after %.0f s" % timeout)


def outcome(req):
    """'ok', 'rejected', 'per_vm', 'full', 'stopped' or a Failure."""
    handle, st, log_len, log = load_result(req)
    check(req.status_byte() == S_OK, "virtio status %d" % req.status_byte())
    text = log[:max(log_len - 1, 0)]
    if st == NDP_S_OK:
        return "ok"
    if st == NDP_S_REJECTED:
        return "rejected"
    check(st == NDP_S_LIMIT, "NDP status %s: %r" % (vc.ndp_status_name(st), text[:160]))
    check(handle == 0, "handle %d with LIMIT" % handle)
    for key, msg in (("per_vm", PER_VM_MSG), ("full", FULL_MSG), ("stopped", STOPPED_MSG)):
        if msg in text:
            return key
    raise Failure("LIMIT without a reason the guest can act on: %r" % text[:160])


# ---- cases ---------------------------------------------------------------------------------


def t_state_explosion(s, mark):
    """The explosion LOAD answers (REJECTED as too complex, or accepted)
    within ~1-2 s of loader CPU, the daemon's peak RSS grows by at most
    the verifier's 64 MiB (plus slack), and vm1's reads keep completing
    meanwhile, none slower than 0.5 s.  The loader runs at nice 19."""
    pid = s.d.pid
    tid = loader_tid(pid)
    _, cpu0, nice = task_stat(pid, tid)
    check(nice == 19, "the loader thread runs at nice %d, expected 19" % nice)
    st0 = proc_status(pid)
    base = max(st0["VmRSS"], st0["VmHWM"])
    fe0, fe1 = s.frontend(0), s.frontend(1)
    stop = threading.Event()
    reads, slow, errors = [0], [0.0], []

    def reader():
        sector = 0
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                st, ulen, _ = fe1.read(1, sector, 4096)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
                return
            slow[0] = max(slow[0], time.monotonic() - t0)
            if (st, ulen) != (S_OK, 4097):
                errors.append("read: status %d, used len %d" % (st, ulen))
                return
            reads[0] += 1
            sector = (sector + 8) % 16000

    th = threading.Thread(target=reader)
    th.start()
    t0 = time.monotonic()
    try:
        r = ndp_load(fe0.mem, CQ, s.explode, "cq_explode")
        fe0.submit(0, r)
        used = fe0.vqs[0].wait_used(1, 120.0)
        wall = time.monotonic() - t0
        time.sleep(0.2)  # reads after the LOAD too
    finally:
        stop.set()
        th.join()
    check(used, "the LOAD did not complete within 120 s")
    _, cpu1, _ = task_stat(pid, tid)
    hwm = proc_status(pid)["VmHWM"]
    kind = outcome(r)
    _, _, log_len, log = load_result(r)
    text = log[:max(log_len - 1, 0)].decode("utf-8", "replace")
    cpu = cpu1 - cpu0
    grew = max(0, hwm - base)
    print("# explosion LOAD: %s in %.2f s wall, %.2f s loader CPU, peak RSS +%.1f MiB "
          "(baseline %.1f MiB); vm1: %d reads, slowest %.0f ms; log: %s"
          % (kind, wall, cpu, grew / MiB, base / MiB, reads[0], slow[0] * 1e3,
             text.splitlines()[0][:160] if text else ""), flush=True)
    check(not errors, "vm1's reads failed during the LOAD: %s" % errors[:1])
    check(reads[0] >= 10, "vm1 completed only %d reads during the LOAD" % reads[0])
    check(slow[0] < 0.5, "a read of vm1 took %.0f ms during the LOAD" % (slow[0] * 1e3))
    check(kind in ("rejected", "ok"), "the LOAD answered %s" % kind)
    if kind == "rejected":
        check(re.search(r"too complex|limit", text), "rejected without naming the limit: %r"
              % text[:200])
    scale = 3 if s.asan else 1
    check(cpu <= 2.0 * scale, "the LOAD took %.2f s of loader CPU (bound %.1f s)"
          % (cpu, 2.0 * scale))
    bound = MAX_MEM * scale + 16 * MiB
    check(grew <= bound, "the daemon's peak RSS grew by %.0f MiB during the LOAD (bound %.0f MiB)"
          % (grew / MiB, bound / MiB))


def fill_loader(s, st, fes, vms, per_vm):
    """Stages per_vm explosion LOADs (queues 0..per_vm-1) of each of vms:
    each is refused in ~40 ms (0.2 s with ASan), so together they keep the
    loader busy for a while.  Returns [(fe, q, req)]."""
    out = []
    for i in vms:
        for q in range(per_vm):
            r = ndp_load(fes[i].mem, CQ, s.explode, "cq_explode")
            st.add(fes[i].vqs[q], r)
            out.append((fes[i], q, r))
    return out


def pending(reqs):
    """How many of [(fe, q, req)] are not answered yet (one per ring)."""
    return sum(1 for fe, q, _ in reqs if fe.vqs[q].used_idx() == fe.vqs[q].last_used)


def t_flood(s, mark):
    """vm0..vm7 send one explosion LOAD (the loader is busy for a while),
    then at once two small ones each, and vm8 and vm9 three small ones each:
    30 LOADs, more than the daemon-wide 16.  Each VM's LOADs past 2 get
    LIMIT (per VM); those past 16 get LIMIT (queue full), with a log line;
    none is lost; a read completes while the loader is still busy; the
    queued ones are verified."""
    fes = [s.frontend(i) for i in range(VMS)]
    st = Staged()
    busy = fill_loader(s, st, fes, range(8), 1)
    # The explosions first, the small ones 5 ms later: the worker takes
    # rings in an order that rotates, and small LOADs taken first would be
    # verified (in microseconds) before the queue could fill.
    st.release()
    time.sleep(0.005)
    st = Staged()
    flood = []
    for i in range(VMS):
        for q in range(1 if i < 8 else 0, 3):
            r = ndp_load(fes[i].mem, XRP, s.elf, "xrp_peek")
            st.add(fes[i].vqs[q], r)
            flood.append((fes[i], q, r))
    st.release()
    # The worker serves I/O while the loader works through the queue.
    t0 = time.monotonic()
    rst, rlen, _ = fes[9].read(3, 0, 4096)
    read_ms = (time.monotonic() - t0) * 1e3
    still = pending(busy)
    check((rst, rlen) == (S_OK, 4097), "read during the flood: status %d, used len %d"
          % (rst, rlen))
    check(still >= 1, "the explosion LOADs were all done before the read: the loader was "
          "not busy (the test proves nothing)")
    counts = {}
    busy_out = {}
    for fe, q, r in busy + flood:
        u = fe.vqs[q].wait_used(1, 120.0)
        check(u, "a LOAD on %s queue %d was never answered" % (fe.path, q))
        k = outcome(r)
        counts[k] = counts.get(k, 0) + 1
        if (fe, q, r) in busy:
            busy_out[k] = busy_out.get(k, 0) + 1
    print("# flood: %s; a read during it took %.1f ms, %d explosion LOADs still queued then"
          % (counts, read_ms, still), flush=True)
    check(sum(counts.values()) == 30, "%d answers for 30 LOADs" % sum(counts.values()))
    check(counts.get("full", 0) >= 1, "no LOAD was refused by the daemon-wide cap: %s" % counts)
    check(counts.get("per_vm", 0) >= 1, "no LOAD was refused by the per-VM cap: %s" % counts)
    queued = counts.get("ok", 0) + counts.get("rejected", 0)
    check(queued <= QUEUED_CAP + 4, "%d LOADs were verified" % queued)
    # The worker takes the rings in an order that rotates (fairness), so
    # some explosion LOADs may find the queue full, or their VM's two
    # places taken, already: each is either verified (and rejected) or
    # refused, and only explosions are rejected.
    check(busy_out.get("rejected", 0) + busy_out.get("full", 0) + busy_out.get("per_vm", 0) == 8 and
          counts.get("rejected", 0) == busy_out.get("rejected", 0) >= 1,
          "explosion LOADs: %s, all: %s" % (busy_out, counts))
    check(counts.get("stopped", 0) == 0, "LOADs answered 'queue stopped': %s" % counts)
    check(s.d.find_log(mark, r"NDP LOAD refused \(limit\): the device's LOAD queue is full"),
          "no log line for the daemon-wide refusals")
    check(s.d.find_log(mark, r"NDP LOAD refused \(limit\): 2 LOADs of this VM"),
          "no log line for the per-VM refusals")


def busy_then(s, fes, last):
    """vm0..vm6 queue two explosion LOADs each (14: ~0.5 s of loader work),
    and 5 ms later fes[last] one small LOAD on queue 2, behind them.
    Returns (busy, (fe, q, req))."""
    st = Staged()
    busy = fill_loader(s, st, fes, range(7), 2)
    st.release()
    # The small LOAD goes behind them: the worker takes its rings in an
    # order that rotates, so published together it could be taken first.
    time.sleep(0.005)
    st = Staged()
    r = ndp_load(fes[last].mem, XRP, s.elf, "xrp_peek")
    st.add(fes[last].vqs[2], r)
    st.release()
    return busy, (fes[last], 2, r)


def t_stop_answers_queued(s, mark):
    """GET_VRING_BASE on a queue whose LOAD waits behind other VMs' answers
    it at once (LIMIT, 'queue stopped'), without waiting for the loader."""
    s.wait_loader_idle()
    fes = [s.frontend(i) for i in range(8)]
    busy, (fe, q, r) = busy_then(s, fes, 7)
    time.sleep(0.01)
    t0 = time.monotonic()
    fe.conn.get_vring_base(q)
    stop_ms = (time.monotonic() - t0) * 1e3
    still = pending(busy)
    u = fe.vqs[q].wait_used(1, 1.0)
    check(u, "the stopped queue's LOAD was not answered")
    k = outcome(r)
    print("# queue stopped in %.1f ms with %d explosion LOADs still queued" % (stop_ms, still),
          flush=True)
    check(still >= 1, "the explosion LOADs were done before the stop (the test proves nothing)")
    check(k == "stopped", "the waiting LOAD answered %s" % k)
    check(s.d.find_log(mark, r"answered unverified: its queue stopped", levels=("info",)),
          "no log line for the answered LOAD")
    for bfe, bq, _ in busy:
        check(bfe.vqs[bq].wait_used(1, 120.0), "a busy LOAD never answered")


def t_disconnect_with_queued(s, mark):
    """A VM disconnects while its LOAD waits: its queue stops at once,
    nothing crashes, and after reconnecting it loads into the same table."""
    s.wait_loader_idle()
    fes = [s.frontend(i) for i in range(8)]
    busy, (fe, q, r) = busy_then(s, fes, 7)
    time.sleep(0.01)
    fe.close()
    # Counted at once: waiting for the log line below takes longer than the
    # loader needs for the rest of the batch on an idle machine.
    still = pending(busy)
    check(s.d.find_log(mark, r"answered unverified: its queue stopped", levels=("info",),
                       timeout=5.0), "the queued LOAD was not answered on disconnect")
    check(still >= 1, "the explosion LOADs were done before the disconnect "
          "(the test proves nothing)")
    for bfe, bq, _ in busy:
        check(bfe.vqs[bq].wait_used(1, 120.0), "a busy LOAD never answered")
    fe = s.frontend(7)
    r = ndp_load(fe.mem, XRP, s.elf, "xrp_peek")
    fe.run(0, r, timeout=30.0)
    check(outcome(r) == "ok", "LOAD after reconnecting: %s" % outcome(r))


def t_sigterm_with_queued(s, mark):
    """SIGTERM with LOADs running and waiting: the waiting ones are
    answered at once, the running one finishes, exit status 0, sockets
    removed."""
    s.wait_loader_idle()
    fes = [s.frontend(i) for i in range(8)]
    busy_then(s, fes, 7)
    time.sleep(0.01)
    t0 = time.monotonic()
    rc = s.d.stop(timeout=60)
    took = time.monotonic() - t0
    left = [d.sock for d in s.disks if os.path.exists(d.sock)]
    line = s.d.find_log(mark, r"LOADs? answered unverified at shutdown", levels=("info",))
    n = int(re.search(r"(\d+) LOADs? answered", line).group(1)) if line else 0
    print("# SIGTERM with LOADs queued: exit %s in %.2f s, %d LOADs answered unverified"
          % (rc, took, n), flush=True)
    s.stopped = True
    check(rc == 0, "exit status %s" % rc)
    check(not left, "sockets left: %s" % left)
    check(n >= 2, "%d queued LOADs answered at shutdown" % n)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build/app/rosenbridged/rosenbridged"))
    ap.add_argument("--programs", default=os.path.join(ROOT, "build/tests/programs"),
                    help="directory holding ndp_progs.o and state_explosion.o")
    ap.add_argument("--only", help="run the cases whose name matches this regex")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--verbose", action="store_true", help="start the daemon with --verbose")
    args = ap.parse_args()
    for path in (args.daemon, os.path.join(args.programs, "ndp_progs.o"),
                 os.path.join(args.programs, "state_explosion.o")):
        if not os.path.exists(path):
            print("missing %s (build it: scripts/build.sh)" % path)
            print("0 passed, 1 failed")
            return 1
    t_start = time.monotonic()
    s = None
    try:
        s = Suite(args)
        # First, on a fresh daemon: its peak RSS is the baseline.
        s.run("state_explosion_load_is_bounded", t_state_explosion)
        s.run("load_flood_over_the_daemon_wide_cap", t_flood)
        s.run("stopping_a_queue_answers_its_queued_load", t_stop_answers_queued)
        s.run("disconnect_with_a_queued_load", t_disconnect_with_queued)
        s.run("sigterm_with_loads_queued_exits_0", t_sigterm_with_queued)
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
