#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What the metrics cost the data path: two rosenbridged binaries (one
built without the metrics, one with) serve the same page-cache-resident
image and BPF-KV database, alternately, round after round; the same
clients (rosen-io bench, bpfkv bench --mode ndp) measure each.  Reports
per configuration the median IOPS / ops per second and the backend's CPU
per I/O (utime + stime of the daemon from /proc/PID/stat, in clock ticks).

On a shared machine those swing by 10-20 % from run to run; --callgrind
runs each daemon under valgrind's callgrind instead and counts the
instructions executed inside the workers' loop (worker_main and all it
calls, user space) per I/O: a measure that other processes on the machine
do not move (poll mode is left out there: its idle spinning would count).

Usage: metrics_overhead.py --base OLD_ROSENBRIDGED --new NEW_ROSENBRIDGED
                           [--build BUILD] [--rounds N] [--seconds S] [--callgrind]
The clients come from BUILD (default build/).  docs/metrics.md quotes a run.
"""
import argparse
import csv
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_ticks(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def start(binary, img, sock, mode, log, cg_out=None):
    pre = []
    if cg_out:
        pre = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg_out,
               "--toggle-collect=worker_main"]
    p = subprocess.Popen(pre + [binary, "--disk", img, "--socket", sock, "--cache", "buffered", "--queues", "1",
                          "--" + mode], stdout=log, stderr=subprocess.STDOUT)
    end = time.time() + 10
    while not os.path.exists(sock):
        if p.poll() is not None or time.time() > end + (50 if cg_out else 0):
            raise RuntimeError("%s did not start" % binary)
        time.sleep(0.02)
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)


def callgrind_total(path):
    for line in open(path):
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError("no totals in " + path)


def run_client(cmd, pid, timeout):
    c0 = cpu_ticks(pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout
    c1 = cpu_ticks(pid)
    rows = list(csv.DictReader(io.StringIO(out)))
    return rows[-1] if rows else None, (c1 - c0) * 1e6 / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--image-dir", default="/var/tmp")
    ap.add_argument("--callgrind", action="store_true",
                    help="instructions per I/O in the worker loop, under valgrind")
    a = ap.parse_args()
    rio = os.path.join(a.build, "app", "rosen-io", "rosen-io")
    kv = os.path.join(a.build, "app", "bpfkv", "bpfkv")
    tmp = tempfile.mkdtemp(prefix="rb-metrics-overhead-", dir=a.image_dir)
    img = os.path.join(tmp, "img")
    with open(img, "wb") as f:
        for _ in range(256):
            f.write(os.urandom(1 << 20))
        os.fsync(f.fileno())
    db = os.path.join(tmp, "kv.db")
    subprocess.run([kv, "create", db, "--levels", "3"], check=True, capture_output=True)
    subprocess.run(["cat", img, db], stdout=subprocess.DEVNULL, check=True)
    configs = [
        ("blk randread 4k qd1 event", "event", "blk", 1),
        ("blk randread 4k qd32 event", "event", "blk", 32),
        ("blk randread 4k qd1 poll", "poll", "blk", 1),
        ("ndp bpfkv 3 levels qd8 event", "event", "kv", 8),
    ]
    if a.callgrind:
        configs = [c for c in configs if c[1] != "poll"]
    res = {(c[0], v): {"rate": [], "cpu": []} for c in configs for v in ("base", "new")}
    log = open(os.path.join(tmp, "daemon.log"), "w")
    try:
        for r in range(a.rounds):
            order = ("base", "new") if r % 2 == 0 else ("new", "base")
            for name, mode, kind, qd in configs:
                for v in order:
                    binary = a.base if v == "base" else a.new
                    sock = os.path.join(tmp, "s.sock")
                    cg = os.path.join(tmp, "cg.out") if a.callgrind else None
                    p = start(binary, db if kind == "kv" else img, sock, mode, log, cg)
                    try:
                        if kind == "blk":
                            row, cpu_us = run_client([rio, "vhost-user:" + sock, "bench", "--rw", "randread",
                                                      "--bs", "4096", "--qd", str(qd), "--seconds",
                                                      str(a.seconds), "--notify", mode], p.pid, a.seconds + 60)
                            rate = float(row["iops"])
                            n = float(row["ios"])
                        else:
                            row, cpu_us = run_client([kv, "bench", "--mode", "ndp", "--db", db, "--levels", "3",
                                                      "--uri", "vhost-user:" + sock, "--ops", "100000000",
                                                      "--seconds", str(a.seconds), "--qd", str(qd),
                                                      "--notify", mode], p.pid, a.seconds + 60)
                            rate = float(row["ops_per_s"])
                            n = rate * a.seconds
                    finally:
                        stop(p)
                    res[(name, v)]["rate"].append(rate)
                    if cg:
                        res[(name, v)]["cpu"].append(callgrind_total(cg) / max(n, 1))
                        os.unlink(cg)
                    else:
                        res[(name, v)]["cpu"].append(cpu_us / max(n, 1))
            print("round %d done" % (r + 1), file=sys.stderr, flush=True)
    finally:
        log.close()
        subprocess.run(["rm", "-rf", tmp])
    print("config,variant,median_rate,median_%s,rates"
          % ("worker_insns_per_op" if a.callgrind else "backend_cpu_us_per_op"))
    for name, _, _, _ in configs:
        for v in ("base", "new"):
            x = res[(name, v)]
            print("%s,%s,%.0f,%.2f,%s" % (name, v, statistics.median(x["rate"]), statistics.median(x["cpu"]),
                                          " ".join("%.0f" % y for y in (x["cpu"] if a.callgrind else x["rate"]))))
        b, n = res[(name, "base")], res[(name, "new")]
        print("%s,new/base,%.3f,%.3f," % (name, statistics.median(n["rate"]) / statistics.median(b["rate"]),
                                          statistics.median(n["cpu"]) / statistics.median(b["cpu"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
