#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tests of the rosenbridged command line as an operator meets it: errors
for bad arguments, missing disks, sockets in use, locked images, stale
socket files, and a clean shutdown on SIGINT/SIGTERM.

Usage: test_rosenbridged.py --build BUILD_DIR
Ends with "N passed, N failed".
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + detail))


def run(args, timeout=10):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def start(args):
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_socket(path, proc, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def stop(proc, sig=signal.SIGTERM, timeout=10):
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, err
    return proc.returncode, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    daemon = os.path.join(a.build, "app", "rosenbridged", "rosenbridged")
    tmp = tempfile.mkdtemp(prefix="rosen-cli-")
    img = os.path.join(tmp, "disk.img")
    with open(img, "wb") as f:
        f.truncate(4 << 20)
    sock = os.path.join(tmp, "vm0.sock")

    rc, out, err = run([daemon, "--help"])
    check("help_explains_options_and_qemu_usage", rc == 0 and "--disk PATH" in out
          and "--cache direct|buffered" in out and "vhost-user-blk-pci" in out
          and "share=on" in out, err)

    rc, out, err = run([daemon])
    check("no_disk_is_usage_error", rc == 2 and "no --disk" in err, err)

    rc, out, err = run([daemon, "--socket", sock])
    check("socket_before_disk_is_refused", rc == 2 and "must follow the --disk" in err, err)

    rc, out, err = run([daemon, "--disk", img])
    check("disk_without_socket_is_refused", rc == 2 and "has no --socket" in err, err)

    for bad in (["--queues", "0"], ["--queues", "17"], ["--queues", "x"], ["--queues", "-1"]):
        rc, out, err = run([daemon, "--disk", img, "--socket", sock] + bad)
        check("bad_queue_count_%s_is_refused" % bad[1], rc == 2 and "--queues needs a number in 1..16" in err, err)

    rc, out, err = run([daemon, "--disk", img, "--socket", sock, "--workers", "0"])
    check("bad_worker_count_is_refused", rc == 2 and "--workers" in err, err)

    rc, out, err = run([daemon, "--disk", img, "--socket", sock, "--cache", "writeback"])
    check("bad_cache_mode_is_refused", rc == 2 and "direct or buffered" in err, err)

    rc, out, err = run([daemon, "--disk", img, "--socket", sock, "--frobnicate"])
    check("unknown_option_is_named", rc == 2 and "--frobnicate" in err, err)

    rc, out, err = run([daemon, "--disk", img, "--socket", sock, "--disk", img, "--socket", sock])
    check("same_socket_twice_is_refused", rc == 2 and "given twice" in err, err)

    rc, out, err = run([daemon, "--disk", os.path.join(tmp, "missing.img"), "--socket", sock])
    check("missing_disk_is_named", rc == 1 and "missing.img" in err
          and "No such file" in err and not os.path.exists(sock), err)

    rc, out, err = run([daemon, "--disk", tmp, "--socket", sock])
    check("directory_disk_is_refused", rc == 1 and "not a regular file or block device" in err, err)

    notsock = os.path.join(tmp, "plainfile")
    open(notsock, "w").close()
    rc, out, err = run([daemon, "--disk", img, "--socket", notsock])
    check("socket_path_that_is_a_file_is_refused", rc == 1 and "not a socket" in err
          and os.path.isfile(notsock), err)

    # A stale socket file (nobody listening) is replaced.
    stale = os.path.join(tmp, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    p = start([daemon, "--disk", img, "--socket", stale])
    connected = False
    end = time.time() + 10
    while not connected and time.time() < end and p.poll() is None:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            c.connect(stale)
            connected = True
        except OSError:
            time.sleep(0.05)
        c.close()
    code, err = stop(p)
    check("stale_socket_file_is_replaced", connected and code == 0, err)

    # A live daemon: its socket and its image are both in use.
    p = start([daemon, "--disk", img, "--socket", sock])
    up = wait_for_socket(sock, p)
    other = os.path.join(tmp, "other.img")
    with open(other, "wb") as f:
        f.truncate(1 << 20)
    rc, out, err2 = run([daemon, "--disk", other, "--socket", sock])
    check("socket_in_use_is_refused", up and rc == 1 and "in use" in err2 and os.path.exists(sock), err2)
    rc, out, err3 = run([daemon, "--disk", img, "--socket", os.path.join(tmp, "vm1.sock")])
    check("image_in_use_is_refused", rc == 1 and "in use" in err3, err3)
    code, err = stop(p, signal.SIGINT)
    check("sigint_stops_cleanly_and_removes_socket", code == 0 and not os.path.exists(sock)
          and "shutting down" in err and "stopped" in err, f"code={code} err={err}")

    # Several disks from one process, each on its own socket.
    s1, s2 = os.path.join(tmp, "a.sock"), os.path.join(tmp, "b.sock")
    p = start([daemon, "--disk", img, "--socket", s1, "--queues", "2", "--disk", other,
               "--socket", s2, "--readonly", "--cache", "buffered", "--workers", "2", "--event"])
    up = wait_for_socket(s1, p) and wait_for_socket(s2, p)
    code, err = stop(p)
    check("several_disks_with_their_own_options", up and code == 0 and "2 queues" in err
          and "read-only" in err and "2 workers" in err and "event-driven" in err
          and not os.path.exists(s1) and not os.path.exists(s2), err)

    # An idle daemon uses (almost) no CPU.
    p = start([daemon, "--disk", img, "--socket", sock])
    wait_for_socket(sock, p)
    time.sleep(0.3)

    def cpu_ticks(pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    t0 = cpu_ticks(p.pid)
    time.sleep(2.0)
    used = (cpu_ticks(p.pid) - t0) / os.sysconf("SC_CLK_TCK")
    stop(p)
    check("idle_daemon_uses_no_cpu", used < 0.1, f"{used:.2f} s of CPU in 2 s idle")

    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
