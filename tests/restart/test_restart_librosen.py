#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Restart without loss, with librosen's vhost-user transport as the
frontend: rosenbridged is killed and restarted under a client that keeps
writing and running an NDP program.

Usage: test_restart_librosen.py --build DIR [--kills N] [--sigterms N]
                                [--seed N] [--keep]
Ends with "N passed, N failed"; exits 1 if anything failed.

BUILD/tests/restart/restart_io runs 3 writer threads (one queue each, 8
requests in flight, blocks of 512 B to 128 KiB completed in any order:
numbered, generation-stamped, every generation read back and checked) and
an NDP thread that LOADs cq_sum once and runs READ_NDs with that handle,
synchronous and asynchronous, checking the sum.  The daemon (4 queues,
throttled so requests wait in it) is SIGKILLed --kills times at random
points and SIGTERMed --sigterms times; each time a new one starts on the
same socket and image.  The client must notice, reconnect, hand its
inflight area back (the new daemon resubmits what the old one had in
flight), get STATE_LOST for its program and load it again by itself, and
never see an error.  Then: every writer's region on the image holds its
last generation, the NDP thread's READ_NDs all came right, and the client
exits 0.
"""
import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import stamp  # noqa: E402
from test_guest_restart import Daemon  # noqa: E402

MiB = 1 << 20
DISK = 64 * MiB
CTRL = 1 * MiB
BASE = 4 * MiB
REGION = 2 * MiB
WRITERS = 3
THROTTLE = "bps-total=100000000"

results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + detail), flush=True)
    return bool(cond)


def note(msg):
    print("# " + msg, flush=True)


def run(args, tmp, procs):
    client_bin = os.path.join(args.build, "tests", "restart", "restart_io")
    daemon_bin = os.path.join(args.build, "app", "rosenbridged", "rosenbridged")
    progs = os.path.join(args.build, "tests", "programs")
    img, sock = os.path.join(tmp, "disk.img"), os.path.join(tmp, "vhost.sock")
    stop = os.path.join(tmp, "stop")
    with open(img, "wb") as f:
        f.truncate(DISK)
    d = Daemon(daemon_bin, img, sock, tmp, extra=["--queues", "4", "--throttle", THROTTLE])
    procs.append(d)
    err = d.start()
    if not check("daemon starts", err is None, err or ""):
        return
    out = open(os.path.join(tmp, "client.log"), "w")
    client = subprocess.Popen([client_bin, sock, stop, str(CTRL), str(BASE), str(REGION), str(WRITERS),
                               progs], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(client)
    rnd = random.Random(args.seed)
    plan = ["KILL"] * args.kills + ["TERM"] * args.sigterms
    rnd.shuffle(plan)
    resubmitted, lost = [], 0
    t0 = time.monotonic()
    for i, how in enumerate(plan):
        if not d.wait_serving(30):
            check("restart %d: the client (re)connected" % i, False, d.tail())
            return
        time.sleep(rnd.uniform(0.3, 1.0))
        if client.poll() is not None:
            break
        rc = d.stop(signal.SIGKILL if how == "KILL" else signal.SIGTERM)
        if how == "TERM" and not check("restart %d: SIGTERM drains and exits" % (i + 1), rc in (0, -15),
                                       "status %s" % rc):
            return
        text = d.text()
        lost += len(re.findall(r"NDP request ended with state-lost", text))
        handed = sum(int(x) for x in re.findall(r"(\d+) NDP requests? left in flight for the next daemon", text))
        err = d.start()
        if not check("restart %d (%s): daemon %d starts" % (i + 1, how, d.n), err is None, err or ""):
            return
        if not d.wait_serving(30):
            check("restart %d: the client reconnected" % (i + 1), False, "daemon log:\n" + d.tail())
            return
        time.sleep(0.05)
        n = sum(int(x) for x in re.findall(r"resubmitting (\d+) request", d.text()))
        resubmitted.append((how, n, handed))
    time.sleep(0.5)
    open(stop, "w").close()
    try:
        rc = client.wait(timeout=60)
    except subprocess.TimeoutExpired:
        client.kill()
        rc = "killed after 60 s"
    out.close()
    with open(os.path.join(tmp, "client.log"), errors="replace") as f:
        text = f.read()
    for line in text.splitlines():
        note(line)
    note("per restart (signal, resubmitted, NDP handed over): %s" % resubmitted)
    check("%d restarts done while the client ran" % len(plan), len(resubmitted) == len(plan),
          "only %d" % len(resubmitted))
    check("the client saw no error and exits 0", rc == 0, "exit status %s" % rc)
    check("SIGKILLs caught requests in flight (resubmitted)",
          sum(n for how, n, _ in resubmitted if how == "KILL") > 0, "none resubmitted")
    # A SIGTERM drains block I/O; an NDP chain it cuts short is left in
    # flight (logged) and is the only thing the next daemon resubmits.
    check("after a SIGTERM only the NDP requests it handed over are resubmitted",
          all(n == handed for how, n, handed in resubmitted if how == "TERM"), str(resubmitted))
    loads = 0
    for name in os.listdir(tmp):
        if name.startswith("daemon-"):
            with open(os.path.join(tmp, name), errors="replace") as f:
                loads += len(re.findall(r"loaded section 'cq_sum'", f.read()))
    check("the program was loaded again after restarts (by librosen itself)", loads >= 2,
          "%d LOADs of cq_sum in all daemon logs" % loads)
    note("cq_sum loaded %d times; %d requests answered STATE_LOST before the restarts seen" % (loads, lost))
    with open(img, "rb") as f:
        data = f.read()
    for w in range(WRITERS):
        rec = stamp.done_record(data, CTRL, w)
        if not check("writer %d done record" % w, rec is not None, "missing"):
            continue
        gen = rec[0]
        bad = stamp.check_region(data, w, BASE + w * REGION, REGION, gen)
        check("writer %d: every block holds generation %d on the image" % (w, gen), bad is None, bad or "")
    rc = d.stop(signal.SIGTERM)
    check("the last daemon stops on SIGTERM", rc in (0, -15), "status %s" % rc)
    note("client ran %.1f s" % (time.monotonic() - t0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--sigterms", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    note("seed %d" % args.seed)
    tmp = tempfile.mkdtemp(prefix="rosen-restart-")
    procs = []
    start = time.monotonic()
    try:
        run(args, tmp, procs)
    except Exception as e:
        import traceback
        traceback.print_exc()
        check("harness", False, "%s: %s" % (type(e).__name__, e))
    finally:
        for p in procs:
            if isinstance(p, Daemon):
                p.kill()
            elif p.poll() is None:
                p.kill()
                p.wait()
        failed = results.count(False)
        if args.keep or failed:
            if os.path.exists(os.path.join(tmp, "disk.img")) and not args.keep:
                os.unlink(os.path.join(tmp, "disk.img"))
            note("logs kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    note("total %.1f s" % (time.monotonic() - start))
    print("%d passed, %d failed" % (results.count(True), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
