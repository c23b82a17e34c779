#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The threaded stress test, for the ThreadSanitizer build (tests/run-tsan.sh).

One rosenbridged with two workers serving four disks (two in one throttle
group, so two workers charge one group), and at the same time:
  - random reads and writes on every disk (rosen-io bench, polled and
    event-driven clients),
  - NDP: LOAD, READ_ND through an xrp program, UNLOAD, over and over
    (workers hand LOADs to the loader thread and get them back),
  - frontends connecting and leaving (the control thread stops and starts
    rings on the workers),
  - SIGHUP reloads of the throttle file (the control thread changes a
    group's limits while workers charge it).
Passes when every client succeeded, the daemon exits 0 on SIGTERM and its
log has no ThreadSanitizer report.  Timing is not judged: TSan makes
everything 5-20x slower.

Usage: stress.py --build BUILD_DIR [--seconds S]
Ends with "N passed, N failed".
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)[-1500:]), flush=True)
    return bool(cond)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-tsan")
    ap.add_argument("--seconds", type=float, default=20.0)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    daemon = os.path.join(build, "app", "rosenbridged", "rosenbridged")
    rio = os.path.join(build, "app", "rosen-io", "rosen-io")
    progs = os.path.join(build, "tests", "programs", "ndp_progs.o")
    tmp = tempfile.mkdtemp(prefix="rb-tsan-")
    env = dict(os.environ)
    env.setdefault("TSAN_OPTIONS", "halt_on_error=0 second_deadlock_stack=1")
    tf = os.path.join(tmp, "throttle.json")
    with open(tf, "w") as f:
        f.write('{"groups": {"g": {"iops-total": 4000}}, "disks": {"vm0": {"group": "g"}, "vm1": {"group": "g"}}}')
    cmd = [daemon, "--workers", "2", "--throttle-file", tf, "--worker-depth", "16"]
    socks = []
    for i in range(4):
        img = os.path.join(tmp, "d%d.img" % i)
        with open(img, "wb") as f:
            f.write(os.urandom(8 << 20))
        s = os.path.join(tmp, "d%d.sock" % i)
        socks.append(s)
        cmd += ["--disk", img, "--socket", s, "--cache", "buffered", "--queues", "2"]
    log = os.path.join(tmp, "daemon.log")
    logf = open(log, "w")
    p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
    end = time.time() + 30
    while not all(os.path.exists(s) for s in socks):
        if p.poll() is not None or time.time() > end:
            print(open(log).read())
            check("the daemon starts", False)
            print("%d passed, %d failed" % (results.count(True), results.count(False)))
            return 1
        time.sleep(0.05)
    scratch = os.path.join(tmp, "scratch.bin")
    with open(scratch, "wb") as f:
        f.write(bytes(4096))

    failures = []
    counts = {"bench": 0, "ndp": 0, "connect": 0, "hup": 0}
    stop_at = time.monotonic() + a.seconds
    lock = threading.Lock()

    def run(kind, argv):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        with lock:
            if r.returncode != 0:
                failures.append("%s: %s: %s" % (kind, " ".join(argv[1:4]), r.stderr.strip()[-300:]))
            else:
                counts[kind] += 1

    def bench_loop(sock, rw, notify):
        while time.monotonic() < stop_at:
            run("bench", [rio, "vhost-user:" + sock, "bench", "--rw", rw, "--bs", "4096", "--qd", "8",
                          "--seconds", "2", "--notify", notify])

    def ndp_loop(sock):
        while time.monotonic() < stop_at:
            run("ndp", [rio, "vhost-user:" + sock, "xrp", progs, "xrp_peek", "4096", "--scratch-in", scratch,
                        "--scratch-out", os.path.join(tmp, "out-%d.bin" % threading.get_ident()),
                        "--max-hops", "4"])

    def connect_loop(sock):
        while time.monotonic() < stop_at:
            run("connect", [rio, "vhost-user:" + sock, "info"])

    def hup_loop():
        while time.monotonic() < stop_at:
            time.sleep(0.5)
            with open(tf, "w") as f:
                f.write('{"groups": {"g": {"iops-total": %d}}, "disks": {"vm0": {"group": "g"}, '
                        '"vm1": {"group": "g"}}}' % (2000 + 1000 * (counts["hup"] % 3)))
            p.send_signal(signal.SIGHUP)
            counts["hup"] += 1

    threads = [threading.Thread(target=bench_loop, args=(socks[0], "randread", "poll")),
               threading.Thread(target=bench_loop, args=(socks[1], "randwrite", "event")),
               threading.Thread(target=ndp_loop, args=(socks[2],)),
               threading.Thread(target=connect_loop, args=(socks[3],)),
               threading.Thread(target=hup_loop)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    logf.close()
    text = open(log).read()
    print("# %s in %.0f s" % (counts, a.seconds), flush=True)
    check("every client succeeded (%s)" % counts, not failures and all(counts[k] > 0 for k in counts),
          "; ".join(failures[:5]))
    check("the daemon exits 0 on SIGTERM", rc == 0, "exit %s" % rc)
    reports = text.count("WARNING: ThreadSanitizer")
    first = text[text.find("WARNING: ThreadSanitizer"):][:3000] if reports else ""
    check("no ThreadSanitizer report (%d)" % reports, reports == 0, first)
    print("%d passed, %d failed" % (results.count(True), results.count(False)))
    return 1 if False in results else 0


if __name__ == "__main__":
    sys.exit(main())
