#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Memory pressure: failed allocations answer the frontend and keep other
VMs running (docs/robustness.md).

  - SET_MEM_TABLE whose mmap fails (the daemon runs under an address-space
    limit, RLIMIT_AS, and a frontend offers more guest memory than fits):
    refused with a log line; the daemon and the other VM go on, and the
    same disk takes a frontend that fits.
  - Allocations failing at random (tests/fault/failalloc.so, LD_PRELOAD,
    5% of malloc/calloc/realloc/aligned_alloc/posix_memalign/mmap while a
    switch file exists) while VM A connects, LOADs, runs READ_NDs, UNLOADs
    and registers memory in a loop, and VM B, connected before, reads:
    the daemon stays up, every request A got an answer for is well formed,
    B's reads all succeed, and once the pressure is off A works again.

Usage: test_memory_pressure.py --build BUILD_DIR
Ends with "N passed, N failed".
"""
import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "vhost"))
import vhost_client as vc  # noqa: E402

results = []
MiB = 1 << 20


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)[-800:]), flush=True)
    return bool(cond)


class Daemon:
    def __init__(self, daemon, tmp, env=None, as_limit=None):
        self.socks = [os.path.join(tmp, "p%d.sock" % i) for i in range(2)]
        cmd = [daemon]
        for i, s in enumerate(self.socks):
            img = os.path.join(tmp, "p%d.img" % i)
            with open(img, "wb") as f:
                f.write(os.urandom(4 * MiB))
            cmd += ["--disk", img, "--socket", s, "--cache", "buffered", "--queues", "1"]
        self.log = os.path.join(tmp, "daemon-%d.log" % time.monotonic_ns())
        self.logf = open(self.log, "w")

        def limit():
            if as_limit:
                resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))
        self.p = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT, env=env, preexec_fn=limit)
        end = time.time() + 10
        while not all(os.path.exists(s) for s in self.socks):
            if self.p.poll() is not None or time.time() > end:
                raise RuntimeError("daemon did not start: " + open(self.log).read())
            time.sleep(0.02)

    def text(self):
        return open(self.log).read()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return None


def vm_read_ok(fe, sector=8):
    st, ulen, _ = fe.read(0, sector, 4096)
    return st == vc.S_OK and ulen == 4097


def ndp_round(fe, elf):
    """LOAD xrp_peek, one READ_ND, UNLOAD, a REG_MEM: each answer must be
    well formed (OK, or a clean refusal).  Returns (answers, bad)."""
    bad = []
    r = vc.ndp_load(fe.mem, vc.NDP_PROG_XRP, elf, "xrp_peek")
    fe.run(0, r, timeout=5.0)
    handle, st, _, log = vc.load_result(r)
    if r.status_byte() != vc.S_OK or st not in (vc.NDP_S_OK, vc.NDP_S_LIMIT, vc.NDP_S_REJECTED):
        bad.append("LOAD: virtio %d, ndp %s" % (r.status_byte(), vc.ndp_status_name(st)))
    if st == vc.NDP_S_OK:
        rr = vc.ndp_io(fe.mem, vc.NDP_T_READ_ND, handle, 8, 512, scratch=bytes(16))
        fe.run(0, rr, timeout=5.0)
        if rr.status_byte() != vc.S_OK or rr.result()[0] != vc.NDP_S_OK:
            bad.append("READ_ND: virtio %d, %r" % (rr.status_byte(), rr.result()))
        u = vc.ndp_unload(fe.mem, handle)
        fe.run(0, u, timeout=5.0)
    g = vc.ndp_reg_mem(fe.mem, fe.mem.gpa + fe.mem.size // 2, 8192)
    fe.run(0, g, timeout=5.0)
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    daemon = os.path.join(build, "app", "rosenbridged", "rosenbridged")
    shim = os.path.join(build, "tests", "failalloc.so")
    with open(os.path.join(build, "tests", "programs", "ndp_progs.o"), "rb") as f:
        elf = f.read()
    tmp = tempfile.mkdtemp(prefix="rb-mem-pressure-")

    # 1. mmap of guest memory fails: an address-space limit the daemon runs under.
    d = Daemon(daemon, tmp, as_limit=1536 * MiB)
    try:
        fb = vc.Frontend(d.socks[1], queues=1)
        refused = False
        try:
            fe = vc.Frontend(d.socks[0], queues=1, mem_size=2048 * MiB)
            fe.read(0, 8, 4096)
            fe.close()
        except (vc.ProtocolError, OSError):
            refused = True
        check("SET_MEM_TABLE whose mmap fails (2 GiB under a 1.5 GiB address-space limit) is refused",
              refused and "mmap of" in d.text() and d.p.poll() is None, d.text()[-500:])
        check("the other VM keeps reading", vm_read_ok(fb))
        fe = vc.Frontend(d.socks[0], queues=1, mem_size=32 * MiB)
        check("the same disk takes a frontend whose memory fits", vm_read_ok(fe))
        fe.close()
        fb.close()
    finally:
        check("the daemon exits 0 on SIGTERM", d.stop() == 0)

    # 2. Allocations failing at random under load.
    if not os.path.exists(shim):
        check("tests/failalloc.so is built", False, shim)
    else:
        switch = os.path.join(tmp, "pressure-on")
        env = dict(os.environ, LD_PRELOAD=shim, RB_FAILALLOC_FILE=switch, RB_FAILALLOC_PCT="5")
        d = Daemon(daemon, tmp, env=env)
        try:
            fb = vc.Frontend(d.socks[1], queues=1)
            open(switch, "w").close()
            time.sleep(0.05)
            t_end = time.monotonic() + 4.0
            rounds = answered = setups_failed = 0
            bad = []
            b_reads = b_bad = 0
            while time.monotonic() < t_end:
                rounds += 1
                try:
                    fe = vc.Frontend(d.socks[0], queues=1, timeout=3.0)
                    try:
                        bad += ndp_round(fe, elf)
                        answered += 1
                    finally:
                        fe.close()
                except (vc.ProtocolError, OSError):
                    setups_failed += 1  # refused or dropped under pressure: allowed
                for _ in range(5):
                    b_reads += 1
                    if not vm_read_ok(fb, 8 + b_reads % 100):
                        b_bad += 1
                if d.p.poll() is not None:
                    break
            # LOADs alone, many: the verifier's and the JIT's allocation
            # failure paths (a failed realloc of the JIT's fix-up table
            # once left its capacity doubled: the next jump wrote past it).
            loads = {}
            fe = None
            for _ in range(50):  # a set-up may be refused under pressure (allowed): again
                try:
                    fe = vc.Frontend(d.socks[0], queues=1, timeout=5.0)
                    break
                except (vc.ProtocolError, OSError):
                    fe = None
            try:
                if fe is None:
                    raise vc.ProtocolError("no set-up went through in 50 tries")
                for _ in range(300):
                    r = vc.ndp_load(fe.mem, vc.NDP_PROG_XRP, elf, "xrp_peek")
                    fe.run(0, r, timeout=5.0)
                    handle, st, _, log = vc.load_result(r)
                    k = vc.ndp_status_name(st)
                    loads[k] = loads.get(k, 0) + 1
                    if st == vc.NDP_S_OK:
                        fe.run(0, vc.ndp_unload(fe.mem, handle), timeout=5.0)
                fe.close()
            except (vc.ProtocolError, OSError) as e:
                loads["dropped: %s" % e] = 1
            print("# 300 LOADs under pressure: %s" % loads, flush=True)
            check("300 LOADs under 5%% allocation failures: each answered OK or REJECTED (%s)" % loads,
                  d.p.poll() is None and set(loads) <= {"ok", "rejected", "limit"} and sum(loads.values()) == 300,
                  d.text()[-600:])
            os.unlink(switch)
            time.sleep(0.05)
            print("# under 5%% allocation failures: %d rounds of A, %d answered, %d set-ups refused; "
                  "B: %d reads, %d bad" % (rounds, answered, setups_failed, b_reads, b_bad), flush=True)
            check("the daemon stays up under allocation failures", d.p.poll() is None, d.text()[-800:])
            check("every NDP answer A got was well formed", not bad, "; ".join(bad[:5]))
            check("B, connected before, read throughout (%d reads)" % b_reads, b_reads > 0 and b_bad == 0)
            fe = vc.Frontend(d.socks[0], queues=1)
            bad = ndp_round(fe, elf)
            fe.close()
            check("with the pressure off A connects and runs LOAD, READ_ND, UNLOAD, REG_MEM again", not bad,
                  "; ".join(bad))
            check("the log says what failed", "out of memory" in d.text() or "Cannot allocate" in d.text()
                  or "mmap" in d.text(), d.text()[-500:])
            fb.close()
        finally:
            check("the daemon exits 0 on SIGTERM after the pressure", d.stop() == 0)
    print("%d passed, %d failed" % (results.count(True), results.count(False)))
    return 1 if False in results else 0


if __name__ == "__main__":
    sys.exit(main())
