#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/fairness: the paper's fairness experiment (multi-path collaborative
throttling).

Two "VMs" = two librosen clients, each on its own disk (its own vhost-user
socket and memory) of one rosenbridged with one worker, event-driven (a
polling worker and polling clients on 2 cores would measure the
scheduler).  The disks are files on the ordinary disk read with O_DIRECT
(`--cache direct`): the real device here, where the contention is.
  VM A  NDP lookups: `bpfkv bench --mode ndp`, a 5-level BPF-KV database,
        QD 32 (6 device reads per lookup, far more outstanding I/O than B)
  VM B  plain 4 KiB random reads: `rosen-io bench --rw randread`, QD 4
Each VM is capped at half the IOPS one client alone gets from the device
(`--throttle iops-total=CAP`; together the caps ask for the whole device, as
in the paper).  Run twice: with collaborative throttling (every program hop
charged) and with `--uncharged-program-io` (program hops free, the leak).
Prints each VM's achieved device IOPS as a share of its cap and Jain's
fairness index over the two shares, as CSV and a summary; writes
docs/results/fairness.md and a plot.  The paper: the plain neighbour at
~30% of its cap without collaborative throttling, near its cap with it.

Usage: bench/fairness/run.py [--build DIR] [--seconds S] [--quick]
"""
import argparse
import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LEVELS = 5
READS_PER_LOOKUP = LEVELS + 1  # the levels, then the value block


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def start_daemon(daemon, disks, extra, logpath):
    """disks: [(image, socket, [options after --disk])]."""
    cmd = [daemon, "--workers", "1", "--event"] + extra
    for img, sock, opts in disks:
        if os.path.exists(sock):
            os.unlink(sock)
        cmd += ["--disk", img, "--socket", sock, "--cache", "direct"] + opts
    logf = open(logpath, "a")
    logf.write("# " + " ".join(cmd) + "\n")
    logf.flush()
    p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 15
    while not all(os.path.exists(s) for _, s, _ in disks):
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("rosenbridged did not start: see %s" % logpath)
        time.sleep(0.05)
    return p


def stop(p):
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def rio_bench(rio, sock, qd, seconds):
    return [rio, "vhost-user:" + sock, "bench", "--rw", "randread", "--bs", "4096", "--qd", str(qd),
            "--seconds", str(seconds), "--notify", "event"]


def kv_bench(bpfkv, sock, db, qd, seconds):
    return [bpfkv, "bench", "--mode", "ndp", "--db", db, "--levels", str(LEVELS), "--uri", "vhost-user:" + sock,
            "--qd", str(qd), "--ops", "2000000", "--seconds", str(seconds), "--notify", "event"]


def last_csv(text):
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise RuntimeError("no CSV row in:\n" + text)
    return rows[-1]


def jain(xs):
    s, q = sum(xs), sum(x * x for x in xs)
    return s * s / (len(xs) * q) if q else 0.0


def b_alone_iops(a, tmp, opts, qd):
    """B's disk alone (with opts after its --disk), random reads at qd."""
    d = start_daemon(a.daemon, [(a.data, os.path.join(tmp, "b.sock"), opts)], [],
                     os.path.join(tmp, "rosenbridged.log"))
    try:
        p = subprocess.run(rio_bench(a.rio, os.path.join(tmp, "b.sock"), qd, a.seconds),
                           capture_output=True, text=True)
    finally:
        stop(d)
    return float(last_csv(p.stdout)["iops"])


def run_pair(a, tmp, cap, uncharged, depth=0):
    """A (NDP, QD 32) and B (plain, QD 4) together, each capped at cap (None:
    no limits), the worker's device depth limited to depth (0: none);
    returns device IOPS of each."""
    extra = ["--uncharged-program-io"] if uncharged else []
    extra += ["--worker-depth", str(depth)] if depth else []
    th = ["--throttle", "iops-total=%d" % cap] if cap else []
    d = start_daemon(a.daemon, [(a.db, os.path.join(tmp, "a.sock"), th), (a.data, os.path.join(tmp, "b.sock"), th)],
                     extra, os.path.join(tmp, "rosenbridged.log"))
    try:
        # A floods from 1 s before B starts to 1 s after B ends.
        pa = subprocess.Popen(kv_bench(a.bpfkv, os.path.join(tmp, "a.sock"), a.db, 32, a.seconds + 2),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        pb = subprocess.run(rio_bench(a.rio, os.path.join(tmp, "b.sock"), 4, a.seconds),
                            capture_output=True, text=True)
        out_a, err_a = pa.communicate(timeout=a.seconds + 120)
    finally:
        stop(d)
    rb = last_csv(pb.stdout)
    b_iops = float(rb["iops"])
    try:
        ra = last_csv(out_a)
        a_iops = float(ra["ops_per_s"]) * READS_PER_LOOKUP
    except RuntimeError:
        raise RuntimeError("VM A's bench printed no row (stderr: %s)" % err_a.strip()[-500:])
    return a_iops, b_iops


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=int, default=10, help="length of B's run")
    ap.add_argument("--db-dir", default=os.path.expanduser("~/.cache/rosenbridge/bpfkv"))
    ap.add_argument("--quick", action="store_true", help="3-second runs, results not written")
    ap.add_argument("--worker-depth", type=int, default=8,
                    help="rosenbridged --worker-depth of the last configuration (default 8: twice B's QD)")
    ap.add_argument("--results-md", default=os.path.join(ROOT, "docs", "results", "fairness.md"))
    a = ap.parse_args()
    if a.quick:
        a.seconds = 3
    b = os.path.abspath(a.build)
    a.daemon = os.path.join(b, "app", "rosenbridged", "rosenbridged")
    a.rio = os.path.join(b, "app", "rosen-io", "rosen-io")
    a.bpfkv = os.path.join(b, "app", "bpfkv", "bpfkv")
    os.makedirs(a.db_dir, exist_ok=True)
    a.db = os.path.join(a.db_dir, "bpfkv-L%d.db" % LEVELS)
    if not os.path.exists(a.db):
        log("bench/fairness: creating %s (once, cached)..." % a.db)
        subprocess.run([a.bpfkv, "create", a.db + ".tmp", "--levels", str(LEVELS)], check=True,
                       capture_output=True)
        os.rename(a.db + ".tmp", a.db)
    tmp = tempfile.mkdtemp(prefix="rosen-fairness-", dir="/var/tmp")
    t0 = time.monotonic()
    try:
        a.data = os.path.join(tmp, "b.img")
        with open(a.data, "wb") as f:  # B's disk: real blocks, not a sparse file
            chunk = os.urandom(1 << 20)
            for _ in range(512):
                f.write(chunk)
        # Calibrate: one client alone, no cap, the whole device.
        alone = b_alone_iops(a, tmp, [], 32)
        cap = max(10, int(alone / 2))
        log("bench/fairness: one client alone: %.0f IOPS (4 KiB random reads, QD 32, O_DIRECT); "
            "each VM capped at %d" % (alone, cap))
        # B alone, capped, at its own QD 4: what B can reach at all here.
        b_alone = b_alone_iops(a, tmp, ["--throttle", "iops-total=%d" % cap], 4)
        log("bench/fairness: B alone at QD 4 under its cap: %.0f IOPS (%.2f of the cap)" % (b_alone, b_alone / cap))
        # B alone, no cap, at QD 4: the reference for the run without limits.
        b_free = b_alone_iops(a, tmp, [], 4)
        log("bench/fairness: B alone at QD 4 without a cap: %.0f IOPS" % b_free)
        rows = []
        depth_cfg = "no limits, --worker-depth %d" % a.worker_depth
        for config in ("collaborative", "uncharged", "no limits", depth_cfg):
            ai, bi = run_pair(a, tmp, cap if config in ("collaborative", "uncharged") else None,
                              config == "uncharged", a.worker_depth if config == depth_cfg else 0)
            sa, sb = ai / cap, bi / cap
            rows.append({"config": config, "cap": cap,
                         "a_iops": round(ai), "b_iops": round(bi), "a_share": round(sa, 3),
                         "b_share": round(sb, 3), "jain": round(jain([min(sa, 1.0), min(sb, 1.0)]), 3)})
            log("  %-13s A (NDP) %6.0f IOPS = %.2f of its cap; B (plain) %6.0f IOPS = %.2f of its cap; Jain %.3f"
                % (rows[-1]["config"], ai, sa, bi, sb, rows[-1]["jain"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
    if a.quick:
        return 0
    secs = int(time.monotonic() - t0)
    with open(a.results_md, "w") as f:
        f.write("# Fairness between VMs: multi-path collaborative throttling (bench/fairness)\n\n")
        f.write("Generated by `bench/fairness/run.py` on %s (%d s). One rosenbridged, one worker, event-driven; "
                "two clients on their own disks (files on the ordinary disk, O_DIRECT). One client alone: "
                "%.0f IOPS; each VM capped at `iops-total=%d` (half of it). VM A: NDP lookups on a %d-level "
                "BPF-KV database, QD 32 (%d device reads per lookup); VM B: 4 KiB random reads, QD 4, %d s.\n\n"
                % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), secs, alone, cap, LEVELS,
                   READS_PER_LOOKUP, a.seconds))
        f.write("B alone, capped, at its QD 4: %.0f IOPS (%.2f of its cap): B's own ceiling on this device; "
                "B's share below is best read against it.\n\n" % (b_alone, b_alone / cap))
        f.write("| configuration | A device IOPS | A share of cap | B IOPS | B share of cap | Jain (shares capped at 1) |\n")
        f.write("|---|---|---|---|---|---|\n")
        for r in rows:
            f.write("| %s | %d | %.2f | %d | %.2f | %.3f |\n" % (r["config"], r["a_iops"], r["a_share"],
                                                             r["b_iops"], r["b_share"], r["jain"]))
        nl = rows[2]
        f.write("\n`no limits`: the same pair without any `--throttle`, where only the worker's fair sharing "
                "(deficit round robin by bytes between the disks it serves) stands between A and B; shares are "
                "still of half the device. B alone without a cap at QD 4: %.0f IOPS; next to A it keeps %.0f "
                "(%.0f%%).\n" % (b_free, nl["b_iops"], 100 * nl["b_iops"] / b_free))
        dp = rows[3]
        f.write("\n`%s`: the same without limits, the worker keeping at most %d I/Os in the device and handing "
                "the slots out in turns (docs/throttling.md, \"Fairness on a worker\"): B keeps %.0f IOPS "
                "(%.0f%% of what it gets alone), the two together %.0f IOPS against %.0f without the depth "
                "limit: fairness bought with device throughput.\n" % (
                    dp["config"], a.worker_depth, dp["b_iops"], 100 * dp["b_iops"] / b_free,
                    dp["a_iops"] + dp["b_iops"], nl["a_iops"] + nl["b_iops"]))
        f.write("\nThe paper (QEMU, Optane): without collaborative throttling the plain neighbour fell to about "
                "30%% of its cap; with it both stayed near their caps. Here, without it the plain neighbour gets "
                "%.0f%% of its cap (%.0f%% of what it gets alone), with it %.0f%% (%.0f%%)." % (
                    100 * rows[1]["b_share"], 100 * rows[1]["b_iops"] / b_alone, 100 * rows[0]["b_share"],
                    100 * rows[0]["b_iops"] / b_alone) + " `uncharged` is rosenbridged "
                "`--uncharged-program-io`, which exists for this experiment only: program hops skip the throttle.\n")
    log("bench/fairness: wrote %s" % a.results_md)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.CalledProcessError) as e:
        log("bench/fairness: %s" % e)
        sys.exit(1)
