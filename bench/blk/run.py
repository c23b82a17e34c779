#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/blk: 4 KiB random reads at QD1 and QD32 through the same client
(rosen-io bench, librosen's vhost-user transport) against rosenbridged and
against qemu-storage-daemon, both serving the same page-cache-resident
image without O_DIRECT, in one run.  Each run's backend CPU time comes from
/proc/PID/stat (utime + stime of every thread).

Configurations, each a fresh backend process per run:
  rosenbridged --event  + client --notify event   compared with
  qemu-storage-daemon   + client --notify event   (qsd never polls; its
                          defaults, aio=threads: the named baseline) and
  qsd with aio=io_uring + client --notify event   (qsd's fastest file
                          backend, a second reference; --no-qsd-io-uring)
  rosenbridged --poll   + client --notify poll    reported apart, and the
                          same with --no-inline-reads (every read through
                          io_uring) to show what inline reads are worth
  fio, no backend: its own io_uring loop (and psync, pread, at QD1) on the
                          same file, --invalidate=0: the ceiling a
                          vhost-user backend is measured against (issue 16:
                          polled rosenbridged >= 0.9x fio io_uring at QD1);
                          skipped with a note when fio is missing (--no-fio)

CSV on stdout (one row per run), a summary with the ratios on stderr.
Target (issue 4): rosenbridged >= 1.5x qsd IOPS per backend core.
The backend and the client share the machine's cores; nothing is pinned.
"""
import argparse
import csv
import ctypes
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = 1.5  # issue 4: rosenbridged >= 1.5x qsd IOPS per backend core
BS = 4096
QDS = (1, 32)
CLK_TCK = os.sysconf("SC_CLK_TCK")

CLIENT_COLS = ["rw", "bs", "qd", "threads", "notify", "seconds", "ios", "iops", "mbps",
               "mean_us", "p50_us", "p99_us", "p999_us", "client_cpu_us_per_io"]
COLS = ["backend", "mode", "notify", "round", "bs", "qd", "threads", "seconds", "ios",
        "iops", "mean_us", "p50_us", "p99_us", "p999_us", "client_cpu_us_per_io",
        "backend_cpu_us_per_io", "backend_cores", "iops_per_backend_core", "others_cores"]

# (name, backend, backend mode, client notify)
CONFIGS = [
    ("rosenbridged/event", "rosenbridged", "event", "event"),
    ("qsd/event", "qsd", "event", "event"),
    ("qsd-io_uring/event", "qsd-io_uring", "event", "event"),
    ("rosenbridged/poll", "rosenbridged", "poll", "poll"),
    ("rosenbridged/poll-uring", "rosenbridged", "poll-uring", "poll"),
    ("fio-io_uring/none", "fio", "io_uring", "none"),
    ("fio-psync/none", "fio", "psync", "none"),
]
FIO_TARGET = 0.9  # issue 16: polled rosenbridged >= 0.9x fio io_uring, QD1

children = []  # every process we started, for cleanup on any exit


def log(msg=""):
    print(msg, file=sys.stderr, flush=True)


def die_with_parent():
    # The backends must not outlive this script, even when it is killed.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def spawn(args, **kw):
    p = subprocess.Popen(args, preexec_fn=die_with_parent, **kw)
    children.append(p)
    return p


def stop(p, timeout=10):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in children:
        children.remove(p)


def cleanup():
    for p in list(children):
        try:
            stop(p, timeout=5)
        except Exception:
            pass


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def fs_type(path):
    """Filesystem type of the mount holding path, from /proc/mounts."""
    path = os.path.realpath(path)
    best, kind = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                mnt = parts[1].replace("\\040", " ")
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def resident_fraction(path):
    """Fraction of the file's pages in the page cache (mincore), or None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
        size = os.path.getsize(path)
        page = os.sysconf("SC_PAGE_SIZE")
        fd = os.open(path, os.O_RDONLY)
        try:
            addr = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
            if addr in (None, ctypes.c_void_p(-1).value):
                return None
            try:
                vec = ctypes.create_string_buffer((size + page - 1) // page)
                if libc.mincore(addr, size, vec) != 0:
                    return None
                return sum(b & 1 for b in vec.raw) / len(vec.raw)
            finally:
                libc.munmap(addr, size)
        finally:
            os.close(fd)
    except Exception:
        return None


def make_image(path, size):
    """Real data on every block (no sparse holes), synced, then read once
    so the whole file sits in the page cache."""
    chunk = bytearray(os.urandom(1 << 20))
    with open(path, "wb") as f:
        for i in range(size >> 20):
            chunk[0:8] = i.to_bytes(8, "little")
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())  # no writeback running during the benchmark
    with open(path, "rb") as f:  # cat IMG > /dev/null
        while f.read(4 << 20):
            pass


def wait_for_socket(path, proc, what, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening")
        time.sleep(0.01)
    raise RuntimeError(f"{what} did not create {path} within {timeout} s")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def machine_busy_ticks():
    """Non-idle ticks of all CPUs together, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:8]) - v[3] - v[4]  # minus idle and iowait; guest is inside user


def start_backend(a, backend, mode, image, sock, logf):
    if os.path.exists(sock):
        os.unlink(sock)
    if backend == "rosenbridged":
        args = [a.rosenbridged, "--disk", image, "--socket", sock, "--queues", "1",
                "--cache", "buffered", "--workers", "1",
                "--poll" if mode == "poll-uring" else "--" + mode]
        if mode == "poll-uring":
            args.append("--no-inline-reads")
    else:
        args = [a.qsd,
                "--blockdev", f"driver=file,node-name=d0,filename={image},cache.direct=off"
                + (",aio=io_uring" if backend == "qsd-io_uring" else ""),
                "--export", "type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,"
                f"addr.path={sock},writable=on,num-queues=1"]
    p = spawn(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    wait_for_socket(sock, p, backend)
    return p


def run_client(a, sock, qd, notify):
    args = [a.rosen_io, "vhost-user:" + sock, "bench", "--rw", "randread", "--bs", str(BS),
            "--qd", str(qd), "--seconds", str(a.seconds), "--threads", "1", "--notify", notify]
    p = spawn(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
              text=True)
    try:
        out, err = p.communicate(timeout=a.seconds + 60)
    finally:
        stop(p)
    rows = list(csv.reader(io.StringIO(out)))
    if p.returncode != 0 or len(rows) != 2 or rows[0] != CLIENT_COLS:
        raise RuntimeError(f"rosen-io bench failed (status {p.returncode}):\n{err.strip()}\n{out}")
    return dict(zip(rows[0], rows[1]))


def run_fio(a, image, qd, engine):
    """fio's own loop on the image: no backend, the ceiling.  A row like
    one_run's (its CPU is the client's; there is no backend)."""
    args = [a.fio, "--name=ceiling", f"--filename={image}", "--rw=randread", f"--bs={BS}",
            f"--iodepth={qd}", f"--ioengine={engine}", "--direct=0", "--invalidate=0",
            "--time_based", f"--runtime={a.seconds}", "--norandommap", "--randrepeat=0",
            "--output-format=json"]
    m0, w0 = machine_busy_ticks(), time.monotonic()
    p = spawn(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=a.seconds + 60)
    finally:
        stop(p)
    m1, w1 = machine_busy_ticks(), time.monotonic()
    if p.returncode != 0:
        raise RuntimeError(f"fio failed (status {p.returncode}): {err.strip()}")
    job = json.loads(out[out.index("{"):])["jobs"][0]
    rd = job["read"]
    ios = int(rd["total_ios"])
    secs = job["job_runtime"] / 1000.0
    cpu_s = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * secs
    others = max(0.0, ((m1 - m0) / CLK_TCK - cpu_s) / (w1 - w0))
    pct = rd["clat_ns"].get("percentile", {})
    return {
        "backend": f"fio-{engine}", "mode": "none", "notify": "none", "round": 0, "bs": BS, "qd": qd,
        "threads": 1, "seconds": secs, "ios": ios, "iops": float(rd["iops"]),
        "mean_us": rd["lat_ns"]["mean"] / 1000.0, "p50_us": pct.get("50.000000", 0) / 1000.0,
        "p99_us": pct.get("99.000000", 0) / 1000.0, "p999_us": pct.get("99.900000", 0) / 1000.0,
        "client_cpu_us_per_io": cpu_s * 1e6 / ios if ios else float("nan"),
        "backend_cpu_us_per_io": 0.0, "backend_cores": 0.0, "iops_per_backend_core": float("inf"),
        "others_cores": others,
    }


def one_run(a, name, backend, mode, notify, qd, rnd, image, sock, logf):
    if backend == "fio":
        row = run_fio(a, image, qd, mode)  # backend "fio-ENGINE", mode "none": its name
        row["round"] = rnd
        return row
    logf.write(f"==== {name} qd={qd} round={rnd}\n")
    logf.flush()
    p = start_backend(a, backend, mode, image, sock, logf)
    try:
        m0, w0, t0 = machine_busy_ticks(), time.monotonic(), cpu_ticks(p.pid)
        r = run_client(a, sock, qd, notify)
        t1, w1, m1 = cpu_ticks(p.pid), time.monotonic(), machine_busy_ticks()
    finally:
        stop(p)
    ios = int(r["ios"])
    secs = float(r["seconds"])
    cpu_s = (t1 - t0) / CLK_TCK
    client_s = float(r["client_cpu_us_per_io"]) * ios / 1e6
    # CPU the rest of the machine took meanwhile (other tenants): noise.
    others = max(0.0, ((m1 - m0) / CLK_TCK - cpu_s - client_s) / (w1 - w0))
    row = {
        "backend": backend, "mode": mode, "notify": notify, "round": rnd, "bs": BS, "qd": qd,
        "threads": int(r["threads"]), "seconds": secs, "ios": ios, "iops": float(r["iops"]),
        "mean_us": float(r["mean_us"]), "p50_us": float(r["p50_us"]),
        "p99_us": float(r["p99_us"]), "p999_us": float(r["p999_us"]),
        "client_cpu_us_per_io": float(r["client_cpu_us_per_io"]),
        "backend_cpu_us_per_io": cpu_s * 1e6 / ios if ios else float("nan"),
        "backend_cores": cpu_s / secs if secs else float("nan"),
        # iops / (backend CPU s / wall s) = I/Os per backend CPU second
        "iops_per_backend_core": ios / cpu_s if cpu_s > 0 else float("inf"),
        "others_cores": others,
    }
    return row


def fmt(row):
    out = []
    for c in COLS:
        v = row[c]
        if isinstance(v, float):
            v = f"{v:.0f}" if c in ("iops", "iops_per_backend_core") else \
                f"{v:.3f}" if c in ("backend_cpu_us_per_io", "client_cpu_us_per_io",
                                    "backend_cores", "others_cores") else f"{v:.2f}"
        out.append(str(v))
    return ",".join(out)


def median_of(rows, key):
    return statistics.median(r[key] for r in rows)


def summary(a, rows, image_mib, resident, load0):
    by = {}
    for r in rows:
        by.setdefault((f"{r['backend']}/{r['mode']}", r["qd"]), []).append(r)
    rounds = f", median of {a.repeat} rounds" if a.repeat > 1 else ""
    log()
    log(f"bench/blk: 4 KiB random reads, {image_mib} MiB image in the page cache"
        f" ({'%.0f%%' % (resident * 100) if resident is not None else 'residency unknown'}"
        f" resident), {a.seconds} s per run{rounds}, one rosen-io client thread,")
    log(f"backend and client share {os.cpu_count()} cores, nothing pinned;"
        f" load average before the run: {load0}")
    log()
    log(f"  {'backend / client notify':<30} {'QD':>3} {'IOPS':>9} {'mean us':>8} {'p99 us':>8}"
        f" {'backend us/IO':>13} {'backend cores':>13} {'IOPS/backend core':>17} {'others':>6}")
    for name, backend, mode, notify in CONFIGS:
        for qd in QDS:
            rs = by.get((name, qd))
            if not rs:
                continue
            label = {"qsd": "qsd", "qsd-io_uring": "qsd aio=io_uring", "fio": f"fio {mode} (no backend)"}.get(
                backend, "rosenbridged --poll --no-inline-reads" if mode == "poll-uring"
                else f"rosenbridged --{mode}") + ("" if backend == "fio" else f" / {notify}")
            label = label[:40]
            log(f"  {label:<30} {qd:>3} {median_of(rs, 'iops'):>9.0f} {median_of(rs, 'mean_us'):>8.1f}"
                f" {median_of(rs, 'p99_us'):>8.1f} {median_of(rs, 'backend_cpu_us_per_io'):>13.2f}"
                f" {median_of(rs, 'backend_cores'):>13.2f} {median_of(rs, 'iops_per_backend_core'):>17.0f}"
                f" {median_of(rs, 'others_cores'):>6.2f}")
    log()
    def ratios(mine, base, qd):
        rb, q = by.get((mine, qd)), by.get((base, qd))
        if not rb or not q:
            return None
        return (median_of(rb, "iops") / median_of(q, "iops"),
                median_of(rb, "iops_per_backend_core") / median_of(q, "iops_per_backend_core"))

    verdicts = {}
    for base, title in (("qsd/event", "qsd (its defaults: aio=threads), the named baseline"),
                        ("qsd-io_uring/event", "qsd with aio=io_uring")):
        lines = []
        for qd in QDS:
            r = ratios("rosenbridged/event", base, qd)
            if r:
                verdicts.setdefault(base, []).append((qd, r[1], r[1] >= TARGET))
                lines.append(f"  QD{qd:<3} IOPS {r[0]:5.2f}x   IOPS per backend core {r[1]:5.2f}x")
        if lines:
            log(f"rosenbridged --event vs {title}; both event-driven, client --notify event:")
            for line in lines:
                log(line)
    log("rosenbridged --poll (client --notify poll), reported apart: both sides spin, so")
    log("its CPU per I/O includes polling and it suffers most from a busy machine:")
    for qd in QDS:
        r = ratios("rosenbridged/poll", "qsd/event", qd)
        if r:
            log(f"  QD{qd:<3} IOPS {r[0]:5.2f}x qsd   IOPS per backend core {r[1]:5.2f}x qsd")
    log()
    fio = by.get(("fio-io_uring/none", 1))
    if fio:
        log("the ceiling: fio's own loop on the same file (no backend, no virtqueue), QD1:")
        for mine, what in (("rosenbridged/poll", "rosenbridged --poll"),
                           ("rosenbridged/poll-uring", "rosenbridged --poll --no-inline-reads")):
            for base, bwhat in (("fio-io_uring/none", "fio io_uring"), ("fio-psync/none", "fio psync")):
                r = ratios(mine, base, 1)
                if r:
                    verdict = ""
                    if base == "fio-io_uring/none" and mine == "rosenbridged/poll":
                        verdict = f"   target (issue 16) >= {FIO_TARGET}x: " + \
                            ("met" if r[0] >= FIO_TARGET else "MISSED")
                    mine_r = {x["round"]: x["iops"] for x in by.get((mine, 1), [])}
                    base_r = {x["round"]: x["iops"] for x in by.get((base, 1), [])}
                    per = ", ".join(f"{mine_r[k] / base_r[k]:.2f}" for k in sorted(mine_r) if k in base_r)
                    log(f"  {what:<40} vs {bwhat:<13} IOPS {r[0]:5.2f}x (per round {per}){verdict}")
        log()
    noisy = max(r["others_cores"] for r in rows)
    log(f"others = cores used by other processes during the run (shared machine);"
        f" highest: {noisy:.2f}" + (": the machine was busy, numbers are noisy"
                                    " (poll mode suffers most)" if noisy > 0.2 else ""))
    for base, what in (("qsd/event", "qsd"), ("qsd-io_uring/event", "qsd aio=io_uring")):
        if verdicts.get(base):
            parts = ", ".join(f"QD{qd} {r:.2f}x {'met' if m else 'MISSED'}"
                              for qd, r, m in verdicts[base])
            log(f"target (issue 4): rosenbridged --event >= {TARGET}x {what} IOPS per backend"
                f" core: {parts}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=None, help="seconds per run (default 5)")
    ap.add_argument("--quick", action="store_true", help="2 s per run, 256 MiB image")
    ap.add_argument("--image-mib", type=int, default=None, help="image size (default 1024)")
    ap.add_argument("--image-dir", default="/var/tmp",
                    help="where the image goes: an ordinary disk filesystem, not tmpfs "
                         "(default /var/tmp)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of every configuration, interleaved; the summary takes medians")
    ap.add_argument("--rosenbridged", default=os.path.join(ROOT, "build/app/rosenbridged/rosenbridged"))
    ap.add_argument("--rosen-io", default=os.path.join(ROOT, "build/app/rosen-io/rosen-io"))
    ap.add_argument("--qsd", default=shutil.which("qemu-storage-daemon") or "qemu-storage-daemon")
    ap.add_argument("--no-qsd-io-uring", action="store_true",
                    help="skip the second qsd configuration (aio=io_uring)")
    ap.add_argument("--fio", default=shutil.which("fio") or "fio", help="fio binary (the ceiling)")
    ap.add_argument("--no-fio", action="store_true", help="skip the fio ceiling runs")
    ap.add_argument("--csv", help="also write the CSV to this file")
    ap.add_argument("--keep-logs", action="store_true", help="keep the backends' logs")
    a = ap.parse_args()
    if a.seconds is None:
        a.seconds = 2 if a.quick else 5
    if a.image_mib is None:
        a.image_mib = 256 if a.quick else 1024
    if a.seconds < 1 or a.image_mib < 1 or a.repeat < 1:
        ap.error("--seconds, --image-mib and --repeat must be positive")
    for what, path in (("rosenbridged", a.rosenbridged), ("rosen-io", a.rosen_io), ("qsd", a.qsd)):
        if not (os.access(path, os.X_OK) or shutil.which(path)):
            ap.error(f"{what} not found at {path} (build first, or pass --{what})")

    if not a.no_fio and not (os.access(a.fio, os.X_OK) or shutil.which(a.fio)):
        log(f"bench/blk: fio not found ({a.fio}): the ceiling runs are skipped "
            "(scripts/setup.sh installs it; --no-fio says so explicitly)")
        a.no_fio = True
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    kind = fs_type(a.image_dir)
    if kind == "tmpfs":
        log(f"bench/blk: warning: {a.image_dir} is tmpfs; reads from tmpfs through io_uring "
            "are not the fast path this benchmark wants (use --image-dir on a disk)")
    work = tempfile.mkdtemp(prefix="rosen-bench-blk-", dir=a.image_dir)
    sockdir = tempfile.mkdtemp(prefix="rosen-bench-blk-")  # short paths for sockets
    image = os.path.join(work, "disk.img")
    sock = os.path.join(sockdir, "blk.sock")
    logpath = os.path.join(work, "backends.log")
    rc = 0
    try:
        # Run copies: a rebuild of the tree during the run must not pull
        # the binaries from under it.
        for attr in ("rosenbridged", "rosen_io"):
            src = getattr(a, attr)
            dst = os.path.join(work, os.path.basename(src))
            shutil.copy2(shutil.which(src) or src, dst)
            setattr(a, attr, dst)
        log(f"bench/blk: writing a {a.image_mib} MiB image in {work} ({kind}) and caching it...")
        make_image(image, a.image_mib << 20)
        resident = resident_fraction(image)
        load0 = " ".join(open("/proc/loadavg").read().split()[:3])
        rows = []
        print(",".join(COLS), flush=True)
        csvf = open(a.csv, "w") if a.csv else None
        if csvf:
            csvf.write(",".join(COLS) + "\n")
        with open(logpath, "w") as logf:
            for rnd in range(1, a.repeat + 1):
                for qd in QDS:
                    for name, backend, mode, notify in CONFIGS:
                        if backend == "qsd-io_uring" and a.no_qsd_io_uring:
                            continue
                        if backend == "fio" and (a.no_fio or (mode == "psync" and qd != 1)):
                            continue
                        row = one_run(a, name, backend, mode, notify, qd, rnd, image, sock, logf)
                        rows.append(row)
                        line = fmt(row)
                        print(line, flush=True)
                        if csvf:
                            csvf.write(line + "\n")
                            csvf.flush()
                        log(f"  {name:<20} qd={qd:<3} {row['iops']:>9.0f} IOPS"
                            f"  {row['backend_cpu_us_per_io']:6.2f} backend us/IO")
        if csvf:
            csvf.close()
        summary(a, rows, a.image_mib, resident, load0)
    except (RuntimeError, OSError) as e:
        log(f"bench/blk: {e}")
        if os.path.exists(logpath):
            with open(logpath) as f:
                tail = f.read().splitlines()[-15:]
            log("backend log (last lines):\n  " + "\n  ".join(tail))
        rc = 1
    finally:
        cleanup()
        if a.keep_logs and os.path.exists(logpath):
            kept = os.path.join(tempfile.gettempdir(), "rosen-bench-blk-backends.log")
            shutil.copy(logpath, kept)
            log(f"bench/blk: backend logs in {kept}")
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(sockdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
