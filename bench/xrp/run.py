#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/xrp: RosenXRP, the paper's BPF-KV experiment, on this machine.

BPF-KV lookups and range queries (bpfkv bench, every value checked) in
every mode, on page-cache-resident databases of 1..5 levels read without
O_DIRECT (the microsecond-class device here):

  bare metal      pread, uring (one SQE per level), local-ndp (our engine
                  and resubmission loop in-process on io_uring: the XRP-like
                  upper bound)
  rosenbridged    vhost (guest-driven: one virtio-blk read per level) and ndp
                  (one READ_ND per lookup), --event with client --notify
                  event, and --poll with client --notify poll, one worker
  qsd             qemu-storage-daemon's vhost-user-blk export (event-driven,
                  its defaults), vhost mode: the stock baseline

Suites: lookups at depths 1..5 (QD1, one client thread); range queries of
1..256 keys at the deepest depth; 1, 2 and 4 client threads in event mode
(polled runs keep one client thread and one worker: more spinning threads
than the cores measure the scheduler); one run with O_DIRECT on the
ordinary disk (rosenbridged --cache direct; bare metal with --direct).
CPU per KOPS = client + backend CPU seconds per 1000 operations.

Writes bench/xrp/results/xrp.csv, PNG plots (gnuplot) beside it and
docs/results/xrp.md (tables, ratios beside the paper's, the issue's targets
met or missed).  The databases are created once and cached in
~/.cache/rosenbridge/bpfkv (--db-dir).  --quick: under 3 minutes, stops at
depth 4 unless the 5-level database is already cached.
"""
import argparse
import csv
import importlib.util
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("blkbench", os.path.join(ROOT, "bench/blk/run.py"))
blk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(blk)  # spawn/stop/cleanup, fs_type, resident_fraction, wait_for_socket

BPFKV_COLS = ("mode,notify,levels,threads,qd,range,ops,ops_per_s,mean_us,p50_us,p99_us,p999_us,"
              "client_cpu_s_per_kop,backend_cpu_s_per_kop").split(",")
COLS = ["suite", "config", "backend", "cache", "round"] + BPFKV_COLS + ["cpu_s_per_kop", "others_cores"]
SIZES = {L: sum(31 ** i for i in range(L)) * 512 + (31 ** L + 7) // 8 * 512 for L in range(1, 7)}

# name -> (backend, backend mode, bpfkv mode, client notify)
CONFIGS = {
    "pread": (None, None, "pread", None),
    "uring": (None, None, "uring", None),
    "local-ndp": (None, None, "local-ndp", None),
    "rb-event/vhost": ("rosenbridged", "event", "vhost", "event"),
    "rb-event/ndp": ("rosenbridged", "event", "ndp", "event"),
    "rb-poll/vhost": ("rosenbridged", "poll", "vhost", "poll"),
    "rb-poll/ndp": ("rosenbridged", "poll", "ndp", "poll"),
    # The same with every read through io_uring (no inline page-cache
    # reads): what inline reads are worth, side by side (issue 16).
    "rb-poll/vhost-uring": ("rosenbridged", "poll", "vhost", "poll", ["--no-inline-reads"]),
    "rb-poll/ndp-uring": ("rosenbridged", "poll", "ndp", "poll", ["--no-inline-reads"]),
    "qsd-event/vhost": ("qsd", "event", "vhost", "event"),
}
LOOKUP_CONFIGS = list(CONFIGS)
RANGE_CONFIGS = ["uring", "local-ndp", "rb-event/vhost", "rb-event/ndp", "rb-poll/vhost",
                 "rb-poll/ndp", "rb-poll/ndp-uring", "qsd-event/vhost"]
THREAD_CONFIGS = ["uring", "local-ndp", "rb-event/vhost", "rb-event/ndp", "qsd-event/vhost"]
DIRECT_CONFIGS = ["uring", "local-ndp", "rb-event/vhost", "rb-event/ndp"]
RANGES = [1, 4, 16, 64, 256]
THREADS = [1, 2, 4]

# Rough time per block read (us), to size each run to about `seconds`.
PER_READ_US = {"pread": 2, "uring": 2, "local-ndp": 2, "rb-event/vhost": 70, "rb-event/ndp": 4,
               "rb-poll/vhost": 3, "rb-poll/ndp": 2.5, "qsd-event/vhost": 70,
               "rb-poll/vhost-uring": 3, "rb-poll/ndp-uring": 2.5}
PER_CALL_US = {"rb-event/ndp": 70, "rb-poll/ndp": 3, "rb-poll/ndp-uring": 3}

PAPER = {"vs_vhost_user": 2.021, "vs_bare_xrp": 0.65, "cpu_vs_vhost_user": 0.419,
         "range_cpu_vs_vhost_user": 0.224}
TARGETS = {"event_ndp_vs_vhost": 4.5, "poll_ndp_vs_vhost": 1.5, "poll_ndp_vs_local": 0.8,
           "event_ndp_vs_qsd": 4.5, "cpu_vs_event_vhost": 0.35}


def log(msg=""):
    print(msg, file=sys.stderr, flush=True)


def reads_per_op(levels, rng):
    if rng == 0:
        return levels + 1
    return levels + (rng + 7) // 8 + 1 + rng // 31


def calls_per_op(rng):
    return 1 if rng == 0 else (rng + 31) // 32


def ops_for(a, config, levels, rng, threads, direct=False):
    us = PER_READ_US[config] * reads_per_op(levels, rng) + PER_CALL_US.get(config, 0) * calls_per_op(rng)
    if direct:
        us += 60 * reads_per_op(levels, rng)
    ops = int(a.seconds * 1e6 / us) * min(threads, 2)
    return max(ops // 50 * 50, 200 if rng == 0 else 50)


class Bench:
    def __init__(self, a, logf):
        self.a = a
        self.logf = logf
        self.rows = []
        self.csvf = None

    def start_backend(self, backend, mode, db, sock, cache, extra=()):
        if os.path.exists(sock):
            os.unlink(sock)
        if backend == "rosenbridged":
            args = [self.a.rosenbridged, "--disk", db, "--socket", sock, "--queues", "4",
                    "--cache", cache, "--workers", "1", "--readonly", "--" + mode] + list(extra)
        else:
            args = [self.a.qsd, "--blockdev",
                    f"driver=file,node-name=d0,filename={db},cache.direct="
                    + ("on" if cache == "direct" else "off"),
                    "--export", "type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,"
                    f"addr.path={sock},writable=off,num-queues=4"]
        p = blk.spawn(args, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        blk.wait_for_socket(sock, p, backend)
        return p

    def one(self, suite, config, db, levels, rng=0, threads=1, rnd=1, direct=False, sum_=False):
        backend, bmode, mode, notify = CONFIGS[config][:4]
        extra = CONFIGS[config][4] if len(CONFIGS[config]) > 4 else []
        ops = ops_for(self.a, config, levels, rng, threads, direct)
        args = [self.a.bpfkv, "bench", "--mode", mode, "--levels", str(levels), "--ops", str(ops),
                "--threads", str(threads)]
        if rng:
            args += ["--range", str(rng)]
        if sum_:
            args += ["--sum"]
        p = None
        cache = "direct" if direct else "buffered"
        self.logf.write(f"==== {suite} {config} L={levels} range={rng} threads={threads} {cache}\n")
        self.logf.flush()
        if backend:
            p = self.start_backend(backend, bmode, db, self.a.sock, cache, extra)
            args += ["--uri", "vhost-user:" + self.a.sock, "--notify", notify, "--db", db,
                     "--backend-pid", str(p.pid)]
        else:
            args += ["--db", db] + (["--direct"] if direct else [])
        try:
            m0, w0 = blk.machine_busy_ticks(), time.monotonic()
            c = blk.spawn(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
            try:
                out, err = c.communicate(timeout=300)
            finally:
                blk.stop(c)
            m1, w1 = blk.machine_busy_ticks(), time.monotonic()
        finally:
            if p:
                blk.stop(p)
        rows = list(csv.reader(io.StringIO(out)))
        if c.returncode != 0 or len(rows) != 2 or rows[0] != BPFKV_COLS:
            raise RuntimeError(f"{' '.join(args)} failed (status {c.returncode}):\n{err.strip()}\n{out}")
        r = dict(zip(BPFKV_COLS, rows[1]))
        cpu = float(r["client_cpu_s_per_kop"]) + (float(r["backend_cpu_s_per_kop"])
                                                   if r["backend_cpu_s_per_kop"] else 0.0)
        # Cores the rest of the machine used meanwhile (other tenants): noise.
        ours = cpu * int(r["ops"]) / 1000
        others = max(0.0, ((m1 - m0) / blk.CLK_TCK - ours) / (w1 - w0))
        row = {"suite": suite, "config": config, "backend": backend or "bare-metal", "cache": cache,
               "round": rnd, **r, "cpu_s_per_kop": f"{cpu:.6f}", "others_cores": f"{others:.2f}"}
        self.rows.append(row)
        line = ",".join(str(row[k]) for k in COLS)
        if self.csvf:
            self.csvf.write(line + "\n")
            self.csvf.flush()
        log(f"  {suite:<7} {config:<16} L={levels} K={rng:<3} T={threads} {cache:<8}"
            f" {float(r['ops_per_s']):>9.0f} ops/s  mean {float(r['mean_us']):>8.1f} us"
            f"  cpu {cpu * 1000:>7.2f} ms/kop  others {others:.2f}")
        return row


def ensure_db(a, levels):
    path = os.path.join(a.db_dir, f"bpfkv-L{levels}.db")
    if os.path.exists(path) and os.path.getsize(path) == SIZES[levels]:
        return path
    log(f"bench/xrp: creating the {levels}-level database {path} (once; cached for later runs)...")
    tmp = path + ".part"
    p = subprocess.run([a.bpfkv, "create", tmp, "--levels", str(levels)], stdout=subprocess.DEVNULL)
    if p.returncode != 0 or os.path.getsize(tmp) != SIZES[levels]:
        raise RuntimeError(f"bpfkv create {tmp} failed")
    os.rename(tmp, path)
    return path


def warm(path):
    with open(path, "rb") as f:
        while f.read(8 << 20):
            pass


def med(rows, key, **match):
    vals = [float(r[key]) for r in rows if all(str(r[k]) == str(v) for k, v in match.items())]
    return statistics.median(vals) if vals else None


# ---- plots -----------------------------------------------------------------------------------

def gnuplot(a, script, name):
    gp = shutil.which("gnuplot")
    if not gp:
        log(f"bench/xrp: gnuplot not found, {name} not drawn (apt-get install gnuplot-nox)")
        return False
    p = subprocess.run([gp], input=script, text=True, capture_output=True)
    if p.returncode != 0:
        log(f"bench/xrp: gnuplot failed for {name}: {p.stderr.strip()}")
        return False
    return True


def terminal():
    gp = shutil.which("gnuplot")
    if gp:
        p = subprocess.run([gp, "-e", "set terminal"], capture_output=True, text=True)
        if "pngcairo" in p.stdout + p.stderr:
            return "pngcairo size 900,560 font ',10'"
    return "png size 900,560"


def plot_lines(a, tmpd, name, title, xlabel, ylabel, series, logx=False, logy=False, xtics1=False):
    """series: [(label, [(x, y), ...])]"""
    files = []
    for i, (label, pts) in enumerate(series):
        f = os.path.join(tmpd, f"{name}-{i}.dat")
        with open(f, "w") as fh:
            for x, y in pts:
                if y is not None:
                    fh.write(f"{x} {y}\n")
        files.append((label, f))
    out = os.path.join(a.out, name + ".png")
    plots = ", ".join(f"'{f}' using 1:2 with linespoints lw 2 pt {i % 7 + 1} title '{label}'"
                      for i, (label, f) in enumerate(files))
    script = (f"set terminal {terminal()}\nset output '{out}'\nset title '{title}'\n"
              f"set xlabel '{xlabel}'\nset ylabel '{ylabel}'\nset grid\nset key outside right\n"
              + ("set logscale x 2\n" if logx else "") + ("set logscale y\n" if logy else "")
              + ("set xtics 1\n" if xtics1 else "")
              + f"plot {plots}\n")
    return gnuplot(a, script, name)


def plots(a, rows, depths):
    tmpd = tempfile.mkdtemp(prefix="rosen-xrp-plot-")
    made = []
    try:
        lk = [r for r in rows if r["suite"] == "lookup"]
        series = [(c, [(L, med(lk, "ops_per_s", config=c, levels=L)) for L in depths]) for c in LOOKUP_CONFIGS]
        if plot_lines(a, tmpd, "lookup_throughput", "BPF-KV lookups, QD1, 1 client thread",
                      "B+-tree depth (levels)", "lookups/s", series, logy=True, xtics1=True):
            made.append(("lookup_throughput.png", "Lookups per second by depth, every mode"))
        series = [(c, [(L, med(lk, "mean_us", config=c, levels=L)) for L in depths]) for c in LOOKUP_CONFIGS]
        if plot_lines(a, tmpd, "lookup_latency", "BPF-KV lookup mean latency, QD1",
                      "B+-tree depth (levels)", "mean latency (us)", series, logy=True, xtics1=True):
            made.append(("lookup_latency.png", "Mean lookup latency by depth"))
        series = [(c, [(L, None if med(lk, "cpu_s_per_kop", config=c, levels=L) is None else
                        1000 * med(lk, "cpu_s_per_kop", config=c, levels=L)) for L in depths])
                  for c in LOOKUP_CONFIGS]
        if plot_lines(a, tmpd, "lookup_cpu", "CPU per 1000 lookups (client + backend)",
                      "B+-tree depth (levels)", "CPU ms per KOP", series, logy=True, xtics1=True):
            made.append(("lookup_cpu.png", "CPU per KOPS (client + backend) by depth"))
        rg = [r for r in rows if r["suite"] == "range"]
        series = [(c, [(k, None if med(rg, "ops_per_s", config=c, range=k) is None else
                        k * med(rg, "ops_per_s", config=c, range=k)) for k in RANGES]) for c in RANGE_CONFIGS]
        if plot_lines(a, tmpd, "range_throughput", f"BPF-KV range queries, depth {max(depths)}, QD1",
                      "keys per range query", "keys/s", series, logx=True, logy=True):
            made.append(("range_throughput.png", "Range queries: keys per second by range length"))
        th = [r for r in rows if r["suite"] == "threads"]
        series = [(c, [(t, med(th, "ops_per_s", config=c, threads=t)) for t in THREADS]) for c in THREAD_CONFIGS]
        if plot_lines(a, tmpd, "threads", f"Lookups, depth {max(depths)}, event-driven, 1 worker",
                      "client threads", "lookups/s", series, logy=True, xtics1=True):
            made.append(("threads.png", "Lookups per second by client threads (event-driven)"))
    finally:
        shutil.rmtree(tmpd, ignore_errors=True)
    return made


# ---- docs/results/xrp.md -----------------------------------------------------------------------------

def fnum(x, f="{:.0f}"):
    return "-" if x is None else f.format(x)


def ratio(x, y):
    return None if x is None or y is None or y == 0 else x / y


def report(a, rows, depths, made, meta):
    D = max(depths)
    lk = [r for r in rows if r["suite"] == "lookup"]

    def ops(c, L=D):
        return med(lk, "ops_per_s", config=c, levels=L)

    def cpu(c, L=D):
        return med(lk, "cpu_s_per_kop", config=c, levels=L)

    ev = ratio(ops("rb-event/ndp"), ops("rb-event/vhost"))
    po = ratio(ops("rb-poll/ndp"), ops("rb-poll/vhost"))
    po_local = ratio(ops("rb-poll/ndp"), ops("local-ndp"))
    ev_local = ratio(ops("rb-event/ndp"), ops("local-ndp"))
    ev_qsd = ratio(ops("rb-event/ndp"), ops("qsd-event/vhost"))
    cpu_ev = ratio(cpu("rb-event/ndp"), cpu("rb-event/vhost"))
    cpu_po = ratio(cpu("rb-poll/ndp"), cpu("rb-poll/vhost"))
    cpu_qsd = ratio(cpu("rb-event/ndp"), cpu("qsd-event/vhost"))
    rg = [r for r in rows if r["suite"] == "range"]
    kmax = max(RANGES)
    rcpu_ev = ratio(med(rg, "cpu_s_per_kop", config="rb-event/ndp", range=kmax),
                    med(rg, "cpu_s_per_kop", config="rb-event/vhost", range=kmax))
    rops_ev = ratio(med(rg, "ops_per_s", config="rb-event/ndp", range=kmax),
                    med(rg, "ops_per_s", config="rb-event/vhost", range=kmax))

    def verdict(x, target, le=False):
        if x is None:
            return "not measured"
        ok = x <= target if le else x >= target
        return "**met**" if ok else "**missed**"

    L = []
    w = L.append
    w("# RosenXRP results: BPF-KV on virtio-ndp")
    w("")
    w(f"Generated by `{meta['command']}` on {meta['date']} ({meta['elapsed']:.0f} s). "
      "Every lookup's and range query's values were checked. Raw numbers: "
      "[bench/xrp/results/xrp.csv](../../bench/xrp/results/xrp.csv); how to rerun: "
      "[bench/xrp/README.md](../../bench/xrp/README.md).")
    w("")
    w("## Setup")
    w("")
    w(f"- Machine: {meta['cpu']}, {meta['cores']} cores shared by client and backend (nothing pinned), "
      f"Linux {meta['kernel']}; load average before the run: {meta['load']}.")
    w(f"- Databases: BPF-KV files of 1..{D} levels in `{a.db_dir}` ({meta['fs']}), read once so they sit in "
      f"the page cache ({meta['resident']} of the {D}-level file resident), opened without O_DIRECT: "
      "the microsecond-class device here. The paper used an Optane P5800X with O_DIRECT.")
    w("- bare metal: `pread`, `uring` (one SQE per level), `local-ndp` (RosenBridge's NDP engine and "
      "resubmission loop in-process on io_uring: the XRP-like upper bound).")
    w("- `rb-event`: rosenbridged `--event` (1 worker), client `--notify event`; `rb-poll`: rosenbridged "
      "`--poll` (1 worker), client `--notify poll`; `qsd-event`: qemu-storage-daemon's vhost-user-blk "
      "export (its defaults). `vhost` = guest-driven walk, one virtio-blk read per level through "
      "librosen; `ndp` = one READ_ND per lookup, running the xrp-type program "
      "`progs/bpfkv_xrp_get.c` in the daemon.")
    w("- CPU per KOPS = client + backend CPU seconds per 1000 operations (backend from /proc/PID/stat).")
    if meta["rounds"] > 1:
        w(f"- Each number is the median of {meta['rounds']} rounds; the rounds run every suite in turn, "
          "so a burst of other load hits one round of each configuration, not all of them.")
    oth = [float(r["others_cores"]) for r in rows]
    if oth:
        w(f"- Other processes on the machine (this is a shared machine) used {statistics.median(oth):.2f} "
          f"cores in the median run, {max(oth):.2f} at most (`others_cores` in the CSV). Event-driven "
          "numbers depend on it: a wake-up costs tens of microseconds when the woken core is idle, "
          "much less when it is busy; polled numbers suffer when a spinning thread loses its core.")
    if meta.get("note"):
        w(f"- {meta['note']}")
    w("")
    w(f"## Depth {D}: ratios beside the paper's")
    w("")
    w("Compared only within one backend and one notification mode (see the issue: an eventfd "
      "wake-up costs tens of microseconds here, a polled round trip well under one).")
    w("")
    w("| | paper (Optane, QEMU, depth 6) | ours, event-driven | ours, polled |")
    w("|---|---|---|---|")
    w(f"| NDP throughput vs vhost-user-blk | +102% (2.02x) | {fnum(ev, '{:.2f}x')} "
      f"(vs qsd: {fnum(ev_qsd, '{:.2f}x')}) | {fnum(po, '{:.2f}x')} |")
    w(f"| NDP throughput vs bare-metal XRP (local-ndp) | 65% | {fnum(ev_local and ev_local * 100, '{:.0f}%')} | "
      f"{fnum(po_local and po_local * 100, '{:.0f}%')} |")
    w(f"| NDP CPU per KOPS vs vhost-user | 41.9% | {fnum(cpu_ev and cpu_ev * 100, '{:.1f}%')} "
      f"(vs qsd: {fnum(cpu_qsd and cpu_qsd * 100, '{:.1f}%')}) | {fnum(cpu_po and cpu_po * 100, '{:.1f}%')} |")
    w(f"| Range queries ({kmax} keys): NDP CPU per KOPS vs vhost-user | 22.4% | "
      f"{fnum(rcpu_ev and rcpu_ev * 100, '{:.1f}%')} (throughput {fnum(rops_ev, '{:.2f}x')}) | |")
    w("")
    w(f"## Targets (issue 7, depth {D}, one worker)")
    w("")
    rounds_seen = sorted({int(r["round"]) for r in lk})

    def spread(key, num, den):
        """The ratio within each round (its runs ran minutes apart at most)."""
        vals = []
        for rn in rounds_seen:
            x = med(lk, key, config=num, levels=D, round=rn)
            y = med(lk, key, config=den, levels=D, round=rn)
            if x is not None and y:
                vals.append(f"{x / y:.2f}")
        return ", ".join(vals) if len(vals) > 1 else "-"

    w("| target | measured (medians) | per round | verdict |")
    w("|---|---|---|---|")
    w(f"| event-driven ndp >= 4.5x vhost (rosenbridged) | {fnum(ev, '{:.2f}x')} "
      f"({fnum(ops('rb-event/ndp'))} vs {fnum(ops('rb-event/vhost'))} lookups/s) | "
      f"{spread('ops_per_s', 'rb-event/ndp', 'rb-event/vhost')} | {verdict(ev, 4.5)} |")
    w(f"| polled ndp >= 1.5x vhost (rosenbridged) | {fnum(po, '{:.2f}x')} "
      f"({fnum(ops('rb-poll/ndp'))} vs {fnum(ops('rb-poll/vhost'))}) | "
      f"{spread('ops_per_s', 'rb-poll/ndp', 'rb-poll/vhost')} | {verdict(po, 1.5)} |")
    w(f"| polled ndp >= 0.8x local-ndp | {fnum(po_local, '{:.2f}x')} "
      f"({fnum(ops('rb-poll/ndp'))} vs {fnum(ops('local-ndp'))}) | "
      f"{spread('ops_per_s', 'rb-poll/ndp', 'local-ndp')} | {verdict(po_local, 0.8)} |")
    w(f"| event-driven ndp >= 4.5x vhost on qemu-storage-daemon | {fnum(ev_qsd, '{:.2f}x')} "
      f"({fnum(ops('rb-event/ndp'))} vs {fnum(ops('qsd-event/vhost'))}) | "
      f"{spread('ops_per_s', 'rb-event/ndp', 'qsd-event/vhost')} | {verdict(ev_qsd, 4.5)} |")
    w(f"| CPU per KOPS <= 0.35x event-driven vhost | {fnum(cpu_ev, '{:.2f}x')} "
      f"({fnum(cpu('rb-event/ndp') and cpu('rb-event/ndp') * 1000, '{:.3f}')} vs "
      f"{fnum(cpu('rb-event/vhost') and cpu('rb-event/vhost') * 1000, '{:.3f}')} CPU ms per lookup) | "
      f"{spread('cpu_s_per_kop', 'rb-event/ndp', 'rb-event/vhost')} | {verdict(cpu_ev, 0.35, le=True)} |")
    w("")
    # Issue 16: the hop path and the engine, close to the physical limit.
    w(f"## Targets (issue 16: the hop path, depth {D}, one worker)")
    w("")
    w("`rb-poll/ndp` reads a cached block inline (preadv2 RWF_NOWAIT, one syscall) and goes to "
      "io_uring on a miss; `rb-poll/ndp-uring` is the same daemon with `--no-inline-reads` (every "
      "hop through io_uring, as `local-ndp` and `uring` do), measured in the same rounds.")
    w("")
    w("| target | measured (medians) | per round | verdict |")
    w("|---|---|---|---|")
    for d in [x for x in (3, 4, 5) if x in depths]:
        r = ratio(ops("local-ndp", d), ops("uring", d))
        w(f"| local-ndp >= 0.97x uring, depth {d} | {fnum(r, '{:.2f}x')} "
          f"({fnum(ops('local-ndp', d))} vs {fnum(ops('uring', d))}) | - | {verdict(r, 0.97)} |")
    t16 = {}
    for num, den, target, label in (("rb-poll/ndp", "local-ndp", 0.9, "polled ndp >= 0.9x local-ndp"),
                                    ("rb-poll/ndp-uring", "local-ndp", 0.9,
                                     "(same, every hop through io_uring)"),
                                    ("rb-event/ndp", "rb-event/vhost", 4.5, "event ndp >= 4.5x event vhost"),
                                    ("rb-poll/ndp", "pread", 0.8, "stretch: polled ndp >= 0.8x pread"),
                                    ("rb-poll/ndp-uring", "pread", 0.8, "(same, every hop through io_uring)")):
        r = ratio(ops(num), ops(den))
        t16[label] = r
        w(f"| {label} | {fnum(r, '{:.2f}x')} ({fnum(ops(num))} vs {fnum(ops(den))}) | "
          f"{spread('ops_per_s', num, den)} | {verdict(r, target)} |")
    for k in (64, 256):
        if k not in RANGES:
            continue
        for num in ("rb-poll/ndp", "rb-poll/ndp-uring"):
            r = ratio(med(rg, "ops_per_s", config=num, range=k), med(rg, "ops_per_s", config="local-ndp", range=k))
            w(f"| range {k} keys: {num} >= 0.9x local-ndp | {fnum(r, '{:.2f}x')} | - | {verdict(r, 0.9)} |")
    w("")
    hp = meta.get("guest_halt_poll_ns")
    w("Event-driven ratios move with the cost of a wake-up, which a virtual machine does not hold "
      "steady" + (f" (here the guest does no halt polling, `guest_halt_poll_ns` = {hp}, so an idle core "
                  "halts and the host's adaptive halt polling decides how fast it comes back)"
                  if hp == "0" else "") +
      ": the per-round column shows how far that moves each ratio (each round runs every "
      "configuration within a few seconds of the others); the verdicts use the medians.")
    w("")
    def lat(c, d):
        return med(lk, "mean_us", config=c, levels=d)

    def per_level(c):
        a1, aD = lat(c, min(depths)), lat(c, D)
        return None if a1 is None or aD is None or D == min(depths) else (aD - a1) / (D - min(depths))

    r_read, r_pv, r_ev = per_level("uring"), per_level("rb-poll/vhost"), per_level("rb-event/vhost")
    head = ratio(ops("local-ndp"), ops("rb-poll/vhost"))
    if None not in (r_read, r_pv, r_ev, head):
        w("Where the time goes (mean latency per extra level, from depth "
          f"{min(depths)} to {D}): a 512-byte page-cache read through io_uring costs {r_read:.1f} us; a "
          f"guest-driven level costs {r_pv:.1f} us polled and {r_ev:.1f} us event-driven, so one virtio "
          f"round trip adds about {max(r_pv - r_read, 0):.1f} us polled and {max(r_ev - r_read, 0):.1f} us "
          "event-driven. Event-driven, the crossings dominate and NDP removes all but one of them. Polled, "
          f"the reads dominate: even bare-metal local-ndp is only {head:.2f}x polled vhost at depth {D}, "
          f"so polled ndp >= 1.5x vhost would need ndp at {1.5 / head:.2f}x of local-ndp, i.e. the whole "
          "READ_ND round trip and the daemon's per-hop work for free.")
        w("")
    w("## Lookups by depth (QD1, one client thread)")
    w("")
    w("lookups/s (mean latency us, CPU ms per KOP):")
    w("")
    w("| config | " + " | ".join(f"depth {d}" for d in depths) + " |")
    w("|---|" + "---|" * len(depths))
    for c in LOOKUP_CONFIGS:
        cells = []
        for d in depths:
            o = ops(c, d)
            cells.append("-" if o is None else
                         f"{o:.0f} ({med(lk, 'mean_us', config=c, levels=d):.1f}, "
                         f"{1000 * cpu(c, d):.2f})")
        w(f"| {c} | " + " | ".join(cells) + " |")
    w("")
    w("ndp / vhost by depth, same backend and mode: " + "; ".join(
        f"depth {d}: event {fnum(ratio(ops('rb-event/ndp', d), ops('rb-event/vhost', d)), '{:.2f}x')}, "
        f"poll {fnum(ratio(ops('rb-poll/ndp', d), ops('rb-poll/vhost', d)), '{:.2f}x')}" for d in depths) + ".")
    w("")
    w(f"## Range queries (depth {D}, QD1, one client thread)")
    w("")
    w("keys/s (queries/s x keys), and CPU ms per query:")
    w("")
    w("| config | " + " | ".join(f"{k} keys" for k in RANGES) + " |")
    w("|---|" + "---|" * len(RANGES))
    for c in RANGE_CONFIGS:
        cells = []
        for k in RANGES:
            o = med(rg, "ops_per_s", config=c, range=k)
            cells.append("-" if o is None else
                         f"{o * k:.0f} ({1000 * med(rg, 'cpu_s_per_kop', config=c, range=k):.2f})")
        w(f"| {c} | " + " | ".join(cells) + " |")
    w("")
    w("A range query walks to the first key's leaf, then reads each value block once (it serves up to 8 "
      "keys) and the following leaves; `ndp` returns 32 pairs per READ_ND and resumes.")
    w("")
    th = [r for r in rows if r["suite"] == "threads"]
    w(f"## Client threads (depth {D}, event-driven, one rosenbridged worker)")
    w("")
    w("| config | " + " | ".join(f"{t} thread(s)" for t in THREADS) + " |")
    w("|---|" + "---|" * len(THREADS))
    for c in THREAD_CONFIGS:
        cells = [fnum(med(th, "ops_per_s", config=c, threads=t)) for t in THREADS]
        w(f"| {c} | " + " | ".join(cells) + " |")
    w("")
    w("Lookups/s. Polled runs keep one client thread and one worker: on "
      f"{meta['cores']} cores more spinning threads would measure the scheduler.")
    w("")
    dr = [r for r in rows if r["suite"] == "direct"]
    if dr:
        w(f"## O_DIRECT on the ordinary disk (depth {D})")
        w("")
        w("rosenbridged `--cache direct`, bare metal `--direct`: every read goes to the virtual disk "
          f"(`{meta['fs']}`), tens of microseconds each.")
        w("")
        w("| config | lookups/s | mean us | p99 us | CPU ms per KOP |")
        w("|---|---|---|---|---|")
        for c in DIRECT_CONFIGS:
            o = med(dr, "ops_per_s", config=c)
            if o is None:
                continue
            w(f"| {c} | {o:.0f} | {med(dr, 'mean_us', config=c):.1f} | {med(dr, 'p99_us', config=c):.1f} | "
              f"{1000 * med(dr, 'cpu_s_per_kop', config=c):.2f} |")
        dev = ratio(med(dr, "ops_per_s", config="rb-event/ndp"), med(dr, "ops_per_s", config="rb-event/vhost"))
        w("")
        w(f"On the slower device ndp / vhost (event) is {fnum(dev, '{:.2f}x')}, against "
          f"{fnum(ev, '{:.2f}x')} from the page cache: the gain fades as the device time per read "
          "grows beside the per-crossing cost, as XRP saw on NAND SSDs.")
        w("")
    if made:
        w("## Plots")
        w("")
        for f, title in made:
            w(f"![{title}](../../bench/xrp/results/{f})")
            w("")
    w("## Reading these numbers")
    w("")
    w("- The device is the page cache (about 1-2 us per 512-byte read through io_uring), so a lookup's "
      "cost is dominated by crossings: each guest-driven level pays one full virtio round trip, "
      "event-driven ones two eventfd wake-ups. NDP pays one per lookup whatever the depth.")
    w("- Client and backend share the cores with whatever else runs on the machine; the polled "
      "configurations spin one core each and suffer most from a busy machine.")
    w("")
    return "\n".join(L), {"event_ndp_vs_vhost": ev, "poll_ndp_vs_vhost": po, "poll_ndp_vs_local": po_local,
                          "event_ndp_vs_qsd": ev_qsd, "cpu_vs_event_vhost": cpu_ev}


# ---- main ------------------------------------------------------------------------------------------

def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def finish(a, rows, meta):
    """Plots, docs/results/xrp.md and the verdicts, from the rows of a run."""
    made = plots(a, rows, meta["depths"])
    md, verdicts = report(a, rows, meta["depths"], made, meta)
    with open(a.results_md, "w") as f:
        f.write(md)
    log("")
    log(f"bench/xrp: wrote {os.path.join(a.out, 'xrp.csv')}, {len(made)} plot(s) in {a.out}, "
        f"{a.results_md}")
    for k, v in verdicts.items():
        t = TARGETS[k]
        ok = v is not None and (v <= t if k.startswith("cpu") else v >= t)
        log(f"  target {k}: {'-' if v is None else f'{v:.2f}x'} "
            f"({'<=' if k.startswith('cpu') else '>='} {t}x) {'met' if ok else 'MISSED'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="under 3 minutes: shorter runs")
    ap.add_argument("--seconds", type=float, default=None, help="target seconds per run")
    ap.add_argument("--rounds", type=int, default=None,
                    help="rounds of every suite, interleaved; the report takes medians (default 3)")
    ap.add_argument("--max-levels", type=int, default=None, help="deepest tree (default 5)")
    ap.add_argument("--db-dir", default=os.path.expanduser("~/.cache/rosenbridge/bpfkv"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/xrp/results"))
    ap.add_argument("--results-md", default=os.path.join(ROOT, "docs/results/xrp.md"))
    ap.add_argument("--no-direct", action="store_true", help="skip the O_DIRECT run")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--qsd", default=shutil.which("qemu-storage-daemon") or "qemu-storage-daemon")
    ap.add_argument("--report-only", action="store_true",
                    help="redraw the plots and docs/results/xrp.md from --out's xrp.csv and meta.json")
    a = ap.parse_args()
    t_start = time.monotonic()
    if a.report_only:
        with open(os.path.join(a.out, "meta.json")) as f:
            meta = json.load(f)
        with open(os.path.join(a.out, "xrp.csv")) as f:
            rows = list(csv.DictReader(f))
        a.db_dir = meta["db_dir"]
        finish(a, rows, meta)
        return 0
    a.bpfkv = os.path.join(a.build, "app/bpfkv/bpfkv")
    a.rosenbridged = os.path.join(a.build, "app/rosenbridged/rosenbridged")
    for what, path in (("bpfkv", a.bpfkv), ("rosenbridged", a.rosenbridged), ("qsd", a.qsd)):
        if not (os.access(path, os.X_OK) or shutil.which(path)):
            ap.error(f"{what} not found at {path} (build first)")
    os.makedirs(a.db_dir, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    fs = blk.fs_type(a.db_dir)
    if fs == "tmpfs":
        ap.error(f"{a.db_dir} is tmpfs: io_uring hands tmpfs reads to worker threads; use --db-dir on a disk")
    note = ""
    maxl = a.max_levels or 5
    if a.quick and not a.max_levels:
        p5 = os.path.join(a.db_dir, "bpfkv-L5.db")
        if not (os.path.exists(p5) and os.path.getsize(p5) == SIZES[5]):
            maxl = 4
            note = ("--quick without a cached 5-level database stops at depth 4 (a full run creates "
                    "and caches it).")
            log(f"bench/xrp: {note}")
    if a.seconds is None:
        a.seconds = 0.3 if a.quick else 1.0
    rounds = a.rounds or 3
    depths = list(range(1, maxl + 1))

    for s in (blk.signal.SIGINT, blk.signal.SIGTERM, blk.signal.SIGHUP):
        blk.signal.signal(s, blk.on_signal)
    work = tempfile.mkdtemp(prefix="rosen-bench-xrp-")
    a.sock = os.path.join(work, "kv.sock")
    logpath = os.path.join(work, "backends.log")
    rc = 0
    try:
        # Run copies, so a rebuild during the run cannot pull binaries away;
        # the programs come from the build tree.
        os.environ["BPFKV_PROGS"] = os.path.join(a.build, "progs")
        for attr in ("bpfkv", "rosenbridged"):
            dst = os.path.join(work, os.path.basename(getattr(a, attr)))
            shutil.copy2(getattr(a, attr), dst)
            setattr(a, attr, dst)
        dbs = {L: ensure_db(a, L) for L in depths}
        for L in depths:
            warm(dbs[L])
        res = blk.resident_fraction(dbs[maxl])
        resident = "unknown" if res is None else f"{res * 100:.0f}%"
        load0 = " ".join(open("/proc/loadavg").read().split()[:3])
        cpu_model = "?"
        try:
            for line in open("/proc/cpuinfo"):
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        log(f"bench/xrp: databases 1..{maxl} levels in {a.db_dir} ({fs}), {resident} of L{maxl} cached;"
            f" {a.seconds} s per run, {rounds} round(s)")
        csvpath = os.path.join(a.out, "xrp.csv")
        with open(logpath, "w") as logf, open(csvpath, "w") as csvf:
            b = Bench(a, logf)
            csvf.write(",".join(COLS) + "\n")
            b.csvf = csvf
            for rnd in range(1, rounds + 1):
                log(f"round {rnd} of {rounds}: lookups by depth:")
                for L in depths:
                    for c in LOOKUP_CONFIGS:
                        b.one("lookup", c, dbs[L], L, rnd=rnd)
                log(f"round {rnd}: range queries, depth {maxl}:")
                for k in RANGES:
                    for c in RANGE_CONFIGS:
                        b.one("range", c, dbs[maxl], maxl, rng=k, rnd=rnd)
                log(f"round {rnd}: client threads, depth {maxl}, event-driven:")
                for t in THREADS:
                    for c in THREAD_CONFIGS:
                        b.one("threads", c, dbs[maxl], maxl, threads=t, rnd=rnd)
                if not a.no_direct:
                    log(f"round {rnd}: O_DIRECT on the ordinary disk, depth {maxl}:")
                    for c in DIRECT_CONFIGS:
                        b.one("direct", c, dbs[maxl], maxl, direct=True, rnd=rnd)
            rows = b.rows
        cmd = "bench/xrp/run.py" + (" --quick" if a.quick else "") + \
            "".join(f" {x}" for x in sys.argv[1:] if x != "--quick")
        meta = {"command": cmd.strip(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "elapsed": time.monotonic() - t_start, "cpu": cpu_model, "load": load0, "fs": fs,
                "resident": resident, "rounds": rounds, "note": note, "depths": depths,
                "db_dir": a.db_dir, "cores": os.cpu_count(), "kernel": platform.release(),
                "guest_halt_poll_ns": read_text("/sys/module/haltpoll/parameters/guest_halt_poll_ns")}
        with open(os.path.join(a.out, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        finish(a, rows, meta)
        log(f"bench/xrp: {time.monotonic() - t_start:.0f} s")
    except (RuntimeError, OSError) as e:
        log(f"bench/xrp: {e}")
        if os.path.exists(logpath):
            with open(logpath) as f:
                tail = f.read().splitlines()[-15:]
            log("backend log (last lines):\n  " + "\n  ".join(tail))
        rc = 1
    finally:
        blk.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
