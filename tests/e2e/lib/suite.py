# SPDX-License-Identifier: MIT
"""The frame of an e2e suite: PASS/FAIL lines, timings, a temp dir kept on
failure (logs) or with --keep, backends killed whatever happens, and the
closing "N passed, N failed" line.

    import suite
    def run(args, tmp): ... suite.check(name, cond, detail) ...
    sys.exit(suite.main(__doc__, run, "rosen-e2e-x-"))
"""
import argparse
import os
import shutil
import signal
import time
import traceback

results = []
timings = []
backends = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + detail), flush=True)
    return bool(cond)


def note(msg):
    print("# " + msg, flush=True)


def guest_checks(res, must=()):
    """Every check line the guest printed, plus a FAIL for each name in
    `must` that never came (a crash shows up here)."""
    names = set()
    for passed, name, reason in res.checks:
        check("guest: " + name, passed, reason)
        names.add(name)
    for name in must:
        if name not in names:
            check("guest: " + name, False, "no result line (crashed or never ran?)")
    note("guest: " + res.summary())
    check("guest result", res.passed, "%s (console log: %s)" % (res.summary(), res.console_log))
    try:
        with open(res.console_log, errors="replace") as f:
            console = f.read()
    except OSError:
        console = ""
    check("no kernel panic, BUG or WARNING on the console",
          not any(w in console for w in ("Kernel panic", "BUG:", "WARNING:", "Oops")), res.console_log)
    return names


def main(doc, run, prefix, timeout=300, big=(".img", ".gz", ".sock", ".db"), big_dirs=("ksrc",)):
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--build", default="build", help="meson build directory (default build)")
    ap.add_argument("--timeout", type=float, default=timeout, help="seconds for the guest boot")
    ap.add_argument("--smp", type=int, default=2, help="guest vCPUs")
    ap.add_argument("--cache", default=None, help="guest cache dir (default $ROSEN_CACHE/guest)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (images, logs)")
    args = ap.parse_args()

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    import tempfile
    tmp = tempfile.mkdtemp(prefix=prefix)
    note("build %s, temp dir %s" % (args.build, tmp))
    start = time.monotonic()
    try:
        run(args, tmp)
    except KeyboardInterrupt as e:
        check("interrupted", False, str(e) or "KeyboardInterrupt")
    except Exception as e:  # report, clean up, count it
        traceback.print_exc()
        check("harness", False, "%s: %s" % (type(e).__name__, e))
    finally:
        for b in backends:
            b.kill()
        failed = results.count(False)
        if args.keep:
            note("kept %s" % tmp)
        elif failed:
            for name in os.listdir(tmp):
                path = os.path.join(tmp, name)
                if os.path.isdir(path) and name in big_dirs:
                    shutil.rmtree(path, ignore_errors=True)
                elif name.endswith(big):
                    os.unlink(path)
            note("logs kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for what, secs in timings:
        note("%s: %.1f s" % (what, secs))
    note("total %.1f s" % (time.monotonic() - start))
    print("%d passed, %d failed" % (results.count(True), failed))
    return 1 if failed else 0
