#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tests of the bpfkv tool: databases of 1..3 levels, get and range in every
mode (pread, uring, local-ndp; vhost and ndp against a real rosenbridged,
in event and poll mode, with the xrp and cq programs; vhost against
qemu-storage-daemon), bench's CSV (shape, columns, values), a corrupt
database caught by the value checks, and clear errors for bad arguments.

Usage: test_bpfkv.py --build BUILD_DIR [--qsd PATH]
Ends with "N passed, N failed"; exits nonzero when something failed.
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

COLS = ("mode,notify,levels,threads,qd,range,ops,ops_per_s,mean_us,p50_us,p99_us,p999_us,"
        "client_cpu_s_per_kop,backend_cpu_s_per_kop").split(",")
SIZES = {1: 2560, 2: 78336, 3: 2415104}  # index + value log, whole 512-byte blocks

results = []
procs = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)[:600]),
          flush=True)


def run(args, timeout=60):
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, "", "timed out"
    return p.returncode, p.stdout, p.stderr


def value(k):
    return str(k)


def expect_get(keys, nkeys):
    return "".join(f"{k} {value(k)}\n" if k < nkeys else f"{k} not found\n" for k in keys)


def expect_range(b, e, nkeys, excl_b=False, excl_e=False):
    first = b + 1 if excl_b else b
    last = min(e if not excl_e else e - 1, nkeys - 1)
    return list(range(first, last + 1))


def start_daemon(exe, disk, sock, extra, logf):
    if os.path.exists(sock):
        os.unlink(sock)
    p = subprocess.Popen(exe + extra, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
    procs.append(p)
    end = time.time() + 10
    while time.time() < end:
        if os.path.exists(sock):
            return p
        if p.poll() is not None:
            break
        time.sleep(0.02)
    stop(p)
    return None


def stop(p):
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in procs:
        procs.remove(p)


def parse_csv(out):
    rows = list(csv.reader(io.StringIO(out)))
    return rows


def bench_ok(name, rc, out, err, mode, notify, levels, threads, qd, rng, ops, backend):
    rows = parse_csv(out)
    ok = rc == 0 and len(rows) == 2 and rows[0] == COLS and len(rows[1]) == len(COLS)
    if ok:
        r = dict(zip(COLS, rows[1]))
        try:
            ok = (r["mode"] == mode and r["notify"] == notify and int(r["levels"]) == levels
                  and int(r["threads"]) == threads and int(r["qd"]) == qd
                  and int(r["range"]) == rng and int(r["ops"]) == ops
                  and float(r["ops_per_s"]) > 0
                  and 0 < float(r["p50_us"]) <= float(r["p99_us"]) <= float(r["p999_us"])
                  and float(r["mean_us"]) > 0 and float(r["client_cpu_s_per_kop"]) >= 0
                  and ((r["backend_cpu_s_per_kop"] != "" and float(r["backend_cpu_s_per_kop"]) >= 0)
                       if backend else r["backend_cpu_s_per_kop"] == ""))
        except ValueError:
            ok = False
    check(name, ok, f"rc={rc} out={out!r} err={err[-300:]!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--qsd", default=shutil.which("qemu-storage-daemon"))
    a = ap.parse_args()
    bpfkv = os.path.join(a.build, "app", "bpfkv", "bpfkv")
    daemon = os.path.join(a.build, "app", "rosenbridged", "rosenbridged")
    tmp = tempfile.mkdtemp(prefix="rosen-bpfkv-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None)
    sockdir = tempfile.mkdtemp(prefix="rosen-bpfkv-")
    logf = open(os.path.join(tmp, "daemons.log"), "w")
    try:
        body(a, bpfkv, daemon, tmp, sockdir, logf)
    finally:
        for p in list(procs):
            stop(p)
        logf.close()
        if any(not r for r in results):
            with open(os.path.join(tmp, "daemons.log")) as f:
                tail = f.read().splitlines()[-20:]
            print("daemon log (last lines):\n  " + "\n  ".join(tail))
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(sockdir, ignore_errors=True)
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


def body(a, bpfkv, daemon, tmp, sockdir, logf):
    dbs = {}
    # ---- create -------------------------------------------------------------
    for L in (1, 2, 3):
        db = os.path.join(tmp, f"L{L}.db")
        rc, out, err = run([bpfkv, "create", db, "--levels", str(L)])
        check(f"create_L{L}_has_bpfkv_size", rc == 0 and os.path.getsize(db) == SIZES[L]
              and out == "", f"rc={rc} size={os.path.getsize(db) if os.path.exists(db) else None} {err}")
        dbs[L] = db
    with open(dbs[1], "rb") as f:
        root = f.read(512)
    check("create_L1_root_is_a_leaf_with_tagged_value_pointers",
          int.from_bytes(root[8:16], "little") == 1
          and int.from_bytes(root[16:24], "little") == 0
          and int.from_bytes(root[16 + 31 * 8:16 + 32 * 8], "little") == (1 << 63) | 512,
          root[:32].hex())

    # ---- get / range, local modes ----------------------------------------------
    local = [("pread", []), ("uring", []), ("local-ndp", []), ("local-ndp", ["--prog", "cq"])]
    for L in (1, 2, 3):
        n = 31 ** L
        keys = [0, 1, n // 2, n - 1, n, n + 12345]
        for mode, extra in local:
            tag = mode + ("-cq" if extra else "")
            rc, out, err = run([bpfkv, "get", "--db", dbs[L], "--levels", str(L), "--mode", mode]
                               + extra + [str(k) for k in keys])
            check(f"get_L{L}_{tag}", rc == 0 and out == expect_get(keys, n), f"rc={rc} {out!r} {err}")
    n3 = 31 ** 3
    many = list(range(0, 70 * 400, 400))  # 70 keys: three batches of up to 32
    for mode, extra in local:
        tag = mode + ("-cq" if extra else "")
        rc, out, err = run([bpfkv, "get", "--db", dbs[3], "--levels", "3", "--mode", mode] + extra
                           + [str(k) for k in many])
        check(f"get_70_keys_in_batches_{tag}", rc == 0 and out == expect_get(many, n3)
              and "3 call(s)" in err, f"rc={rc} {err}")
    range_cases = [
        ("within_a_leaf", 3, 2, 9, False, False),
        ("across_leaves_and_calls", 3, 20, 120, False, False),
        ("exclusive_bounds", 3, 30, 62, True, True),
        ("past_the_last_key", 2, 900, 5000, False, False),
        ("empty", 3, 50, 50, True, False),
        ("single_key", 1, 7, 7, False, False),
        ("whole_L2_tree", 2, 0, 960, False, False),
    ]
    for name, L, b, e, xb, xe in range_cases:
        n = 31 ** L
        want = expect_range(b, e, n, xb, xe)
        flags = (["--exclude-begin"] if xb else []) + (["--exclude-end"] if xe else [])
        for mode, extra in local:
            tag = mode + ("-cq" if extra else "")
            base = [bpfkv, "range", "--db", dbs[L], "--levels", str(L), "--mode", mode] + extra \
                + flags + [str(b), str(e)]
            rc, out, err = run(base)
            check(f"range_{name}_{tag}", rc == 0 and out == "".join(f"{k} {k}\n" for k in want),
                  f"rc={rc} {out[:200]!r} {err}")
            rc, out, err = run(base + ["--sum"])
            check(f"range_{name}_sum_{tag}",
                  rc == 0 and out == f"count {len(want)} sum_keys {sum(want)} sum_values {sum(want)}\n",
                  f"rc={rc} {out!r} {err}")
    # A SUM over more blocks than one call may read: resumed transparently.
    rc, out, err = run([bpfkv, "range", "--db", dbs[3], "--levels", "3", "--mode", "local-ndp",
                        "0", "29790", "--sum"])
    check("range_sum_whole_L3_tree_resumes", rc == 0 and out ==
          f"count {n3} sum_keys {n3 * (n3 - 1) // 2} sum_values {n3 * (n3 - 1) // 2}\n",
          f"rc={rc} {out!r} {err}")

    # ---- bench, local modes -------------------------------------------------------
    for mode, extra in [("pread", []), ("uring", ["--qd", "4"]), ("local-ndp", ["--qd", "4"]),
                        ("local-ndp", ["--prog", "cq"])]:
        qd = int(extra[1]) if extra and extra[0] == "--qd" else 1
        rc, out, err = run([bpfkv, "bench", "--mode", mode, "--db", dbs[3], "--levels", "3",
                            "--ops", "3000"] + extra)
        bench_ok(f"bench_csv_{mode}{'_cq' if 'cq' in extra else ''}", rc, out, err, mode, "", 3, 1, qd,
                 0, 3000, False)
    rc, out, err = run([bpfkv, "bench", "--mode", "uring", "--db", dbs[3], "--levels", "3",
                        "--ops", "400", "--range", "50", "--threads", "2", "--qd", "2"])
    bench_ok("bench_csv_uring_range_2_threads", rc, out, err, "uring", "", 3, 2, 2, 50, 400, False)
    rc, out, err = run([bpfkv, "bench", "--mode", "local-ndp", "--db", dbs[3], "--levels", "3",
                        "--ops", "300", "--range", "100", "--sum"])
    bench_ok("bench_csv_local_ndp_range_sum", rc, out, err, "local-ndp", "", 3, 1, 1, 100, 300, False)

    # ---- a corrupt value is an error ---------------------------------------------------
    bad = os.path.join(tmp, "bad.db")
    shutil.copy(dbs[2], bad)
    nodes = 1 + 31
    with open(bad, "r+b") as f:  # key 100's value: "...100" -> "...101"
        f.seek(nodes * 512 + 100 * 64 + 62)
        f.write(b"1")
    for mode in ("pread", "local-ndp"):
        rc, out, err = run([bpfkv, "get", "--db", bad, "--levels", "2", "--mode", mode, "99", "100"])
        check(f"corrupt_value_get_fails_{mode}", rc == 1 and "99 99" in out
              and "key 100: wrong value" in err, f"rc={rc} {out!r} {err}")
        rc, out, err = run([bpfkv, "range", "--db", bad, "--levels", "2", "--mode", mode, "90", "110"])
        check(f"corrupt_value_range_fails_{mode}", rc == 1 and "key 100: wrong value" in err,
              f"rc={rc} {err}")
        rc, out, err = run([bpfkv, "range", "--db", bad, "--levels", "2", "--mode", mode, "90", "110",
                            "--sum"])
        check(f"corrupt_value_range_sum_fails_{mode}", rc == 1 and "expected" in err, f"rc={rc} {err}")
    rc, out, err = run([bpfkv, "bench", "--mode", "uring", "--db", bad, "--levels", "2", "--ops", "20000"])
    check("corrupt_value_bench_fails", rc == 1 and "key 100: wrong value" in err and
          not out.strip().splitlines()[1:], f"rc={rc} {out!r} {err}")

    # ---- bad arguments ------------------------------------------------------------------
    bad_args = [
        ("no_levels", ["get", "--db", dbs[1], "1"], "--levels is required"),
        ("unknown_mode", ["get", "--db", dbs[1], "--levels", "1", "--mode", "spdk", "1"],
         "not pread, uring, local-ndp, vhost or ndp"),
        ("unknown_command", ["lookup", "--levels", "1"], "unknown command"),
        ("unknown_option", ["get", "--db", dbs[1], "--levels", "1", "--bogus", "1"], "unknown option"),
        ("qd_zero", ["bench", "--db", dbs[1], "--levels", "1", "--mode", "uring", "--qd", "0"],
         "--qd takes an integer"),
        ("qd_with_pread", ["bench", "--db", dbs[1], "--levels", "1", "--qd", "4"],
         "needs an asynchronous mode"),
        ("too_many_threads", ["bench", "--db", dbs[1], "--levels", "1", "--threads", "99"],
         "--threads takes an integer"),
        ("levels_out_of_range", ["get", "--db", dbs[1], "--levels", "9", "1"], "--levels takes"),
        ("key_not_a_number", ["get", "--db", dbs[1], "--levels", "1", "12x"], "'12x' is not a key"),
        ("negative_key", ["get", "--db", dbs[1], "--levels", "1", "-3"], "'-3' is not a key"),
        ("device_mode_without_uri", ["get", "--levels", "1", "--mode", "ndp", "1"], "needs --uri"),
        ("local_mode_without_db", ["get", "--levels", "1", "--mode", "uring", "1"], "--db is required"),
        ("notify_for_local_mode", ["bench", "--db", dbs[1], "--levels", "1", "--notify", "event"],
         "--notify is for the device modes"),
        ("notify_bad_value", ["bench", "--db", dbs[1], "--levels", "1", "--mode", "vhost",
                              "--uri", "vhost-user:/nonexistent", "--notify", "irq"], "event or poll"),
        ("sum_without_range", ["bench", "--db", dbs[1], "--levels", "1", "--sum"], "--sum goes with --range"),
        ("range_too_long", ["bench", "--db", dbs[1], "--levels", "1", "--range", "40"], "more than the 31 keys"),
        ("range_needs_two_keys", ["range", "--db", dbs[1], "--levels", "1", "5"], "usage: bpfkv range"),
        ("wrong_levels_for_db", ["get", "--db", dbs[1], "--levels", "3", "1"], "too small for a 3-level"),
        ("missing_db", ["get", "--db", os.path.join(tmp, "nope.db"), "--levels", "1", "1"],
         "No such file"),
        ("no_keys", ["get", "--db", dbs[1], "--levels", "1"], "no keys"),
        ("value_missing", ["bench", "--db", dbs[1], "--levels", "1", "--ops"], "--ops needs a value"),
        ("no_socket", ["get", "--levels", "1", "--mode", "vhost", "--uri",
                       "vhost-user:" + os.path.join(sockdir, "none.sock"), "1"], "none.sock"),
    ]
    for name, args, msg in bad_args:
        rc, out, err = run([bpfkv] + args)
        check(f"bad_args_{name}", rc in (1, 2) and msg in err and out == "", f"rc={rc} {out!r} {err!r}")
    rc, out, err = run([bpfkv, "--help"])
    check("help_lists_modes_and_csv", rc == 0 and "local-ndp" in out and "backend_cpu_s_per_kop" in out
          and "--range K" in out, err)

    # ---- rosenbridged: vhost and ndp, event and poll -------------------------------------------
    sock = os.path.join(sockdir, "rb.sock")
    for notify in ("event", "poll"):
        p = start_daemon([daemon], dbs[3], sock, ["--disk", dbs[3], "--socket", sock, "--queues", "2",
                                                  "--cache", "buffered", "--" + notify], logf)
        check(f"rosenbridged_{notify}_starts", p is not None)
        if not p:
            continue
        uri = "vhost-user:" + sock
        keys = [0, 17, 29790, 29791, 12345]
        for mode, extra in [("vhost", []), ("ndp", []), ("ndp", ["--prog", "cq"])]:
            tag = f"{mode}{'-cq' if extra else ''}_{notify}"
            dev = ["--levels", "3", "--mode", mode, "--uri", uri, "--notify", notify] + extra
            rc, out, err = run([bpfkv, "get"] + dev + [str(k) for k in keys])
            check(f"rosenbridged_get_{tag}", rc == 0 and out == expect_get(keys, n3), f"rc={rc} {out!r} {err}")
            rc, out, err = run([bpfkv, "range"] + dev + ["29700", "29800"])
            check(f"rosenbridged_range_{tag}", rc == 0 and out == "".join(f"{k} {k}\n" for k in range(29700, n3)),
                  f"rc={rc} {out[:200]!r} {err}")
            rc, out, err = run([bpfkv, "range"] + dev + ["100", "355", "--sum", "--exclude-end"])
            ks = range(100, 355)
            check(f"rosenbridged_range_sum_{tag}",
                  rc == 0 and out == f"count {len(ks)} sum_keys {sum(ks)} sum_values {sum(ks)}\n",
                  f"rc={rc} {out!r} {err}")
            rc, out, err = run([bpfkv, "bench"] + dev + ["--db", dbs[3], "--ops", "2000", "--backend-pid",
                                                         str(p.pid)])
            bench_ok(f"rosenbridged_bench_csv_{tag}", rc, out, err, mode, notify, 3, 1, 1, 0, 2000, True)
        if notify == "event":
            for mode in ("vhost", "ndp"):
                rc, out, err = run([bpfkv, "bench", "--levels", "3", "--mode", mode, "--uri", uri,
                                    "--notify", notify, "--ops", "2000", "--threads", "2", "--qd", "4",
                                    "--backend-pid", str(p.pid)])
                bench_ok(f"rosenbridged_bench_2_threads_qd4_{mode}", rc, out, err, mode, notify, 3, 2, 4, 0,
                         2000, True)
                rc, out, err = run([bpfkv, "bench", "--levels", "3", "--mode", mode, "--uri", uri,
                                    "--notify", notify, "--ops", "200", "--range", "64", "--qd", "2"])
                bench_ok(f"rosenbridged_bench_range_{mode}", rc, out, err, mode, notify, 3, 1, 2, 64, 200, False)
            rc, out, err = run([bpfkv, "bench", "--levels", "3", "--mode", "vhost", "--uri", uri,
                                "--threads", "3", "--ops", "100"])
            check("rosenbridged_more_threads_than_queues_is_refused", rc == 1 and "offers 2" in err,
                  f"rc={rc} {err}")
            rc, out, err = run([bpfkv, "get", "--levels", "4", "--mode", "ndp", "--uri", uri, "1"])
            check("device_too_small_for_levels", rc == 1 and "too small for a 4-level" in err, f"rc={rc} {err}")
        stop(p)

    # ---- qemu-storage-daemon: vhost works, ndp is refused clearly --------------------------------
    if not a.qsd or not os.access(a.qsd, os.X_OK):
        check("qsd_available", False, "qemu-storage-daemon not found (--qsd PATH)")
        return
    qsock = os.path.join(sockdir, "qsd.sock")
    p = start_daemon([a.qsd], dbs[3], qsock, [
        "--blockdev", f"driver=file,node-name=d0,filename={dbs[3]},cache.direct=off",
        "--export", f"type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,addr.path={qsock},"
        "writable=off,num-queues=2"], logf)
    check("qsd_starts", p is not None)
    if not p:
        return
    uri = "vhost-user:" + qsock
    keys = [3, 29790, 30000]
    dev = ["--levels", "3", "--mode", "vhost", "--uri", uri, "--notify", "event"]
    rc, out, err = run([bpfkv, "get"] + dev + [str(k) for k in keys])
    check("qsd_get_vhost", rc == 0 and out == expect_get(keys, n3), f"rc={rc} {out!r} {err}")
    rc, out, err = run([bpfkv, "range"] + dev + ["61", "130"])
    check("qsd_range_vhost", rc == 0 and out == "".join(f"{k} {k}\n" for k in range(61, 131)),
          f"rc={rc} {err}")
    rc, out, err = run([bpfkv, "bench"] + dev + ["--ops", "1000", "--threads", "2", "--qd", "2",
                                                 "--backend-pid", str(p.pid)])
    bench_ok("qsd_bench_csv_vhost", rc, out, err, "vhost", "event", 3, 2, 2, 0, 1000, True)
    rc, out, err = run([bpfkv, "get", "--levels", "3", "--mode", "ndp", "--uri", uri, "3"])
    check("qsd_ndp_is_refused_clearly", rc == 1 and "does not speak virtio-ndp" in err, f"rc={rc} {err}")
    stop(p)


if __name__ == "__main__":
    sys.exit(main())
