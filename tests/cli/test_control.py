#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""rosenbridged as an operator runs it: started from a --config file, driven
through its control socket (JSON-RPC 2.0, docs/control.md) and rosenctl.

Checks every method, the protocol's refusals (malformed JSON, unknown
methods, wrong parameter types, an oversized request, a client that stalls
mid-request while another is served), the socket's mode 0600 and another
uid refused, two disks from a config file served at once, a disk added and
removed at run time (I/O on the added one), a limit changed live and
measured, a resize announced on the vhost-user backend channel, NDP
programs listed and unloaded, JSON logs, config file errors naming the key
by its path and syntax errors by line, and rosenctl's tables, --json and
exit codes.

Usage: test_control.py --build BUILD_DIR
Ends with "N passed, N failed".
"""
import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vhost"))
import vhost_client as vc  # noqa: E402
import test_metrics as tm  # noqa: E402  (the strict Prometheus text checker)

results = []
MiB = 1 << 20


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)), flush=True)
    return bool(cond)


# ---- a control socket client ------------------------------------------------------

class Ctl:
    """One connection to the control socket; one JSON object per line."""

    def __init__(self, path, timeout=5.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.next_id = 1

    def close(self):
        self.s.close()

    def send_raw(self, data):
        self.s.sendall(data)

    def recv(self, timeout=5.0):
        """The next answer line, parsed (None: the daemon closed)."""
        self.s.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params=None, timeout=5.0):
        """The whole answer object ({"result": ...} or {"error": ...})."""
        req = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        self.next_id += 1
        if params is not None:
            req["params"] = params
        self.send_raw(json.dumps(req).encode() + b"\n")
        ans = self.recv(timeout)
        if ans is not None and ans.get("id") != req["id"]:
            raise RuntimeError("answer for id %r, asked %r" % (ans.get("id"), req["id"]))
        return ans

    def ok(self, method, params=None):
        ans = self.call(method, params)
        if not ans or "result" not in ans:
            raise RuntimeError("%s(%r): %r" % (method, params, ans))
        return ans["result"]


def scrape(c):
    """The `metrics` method's text, checked by the strict format checker."""
    text = c.ok("metrics")
    return tm.Scrape(tm.parse_exposition(text.encode()))


def err_code(ans):
    return ans.get("error", {}).get("code") if ans else None


def err_msg(ans):
    return ans.get("error", {}).get("message", "") if ans else ""


started = []  # every daemon, killed at exit whatever happened


@atexit.register
def _kill_daemons():
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


class Daemon:
    def __init__(self, build, tmp, args, wait_for, name="daemon"):
        self.log = os.path.join(tmp, name + ".log")
        self.logf = open(self.log, "w")
        self.p = subprocess.Popen([os.path.join(build, "app", "rosenbridged", "rosenbridged")] + args,
                                  stdout=self.logf, stderr=subprocess.STDOUT)
        started.append(self.p)
        end = time.time() + 10
        while not all(os.path.exists(s) for s in wait_for):
            if self.p.poll() is not None or time.time() > end:
                raise RuntimeError("daemon did not start: " + open(self.log).read())
            time.sleep(0.02)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()
        return self.p.returncode

    def text(self):
        with open(self.log) as f:
            return f.read()


def rosenctl(build, ctl, *args, timeout=30):
    p = subprocess.run([os.path.join(build, "app", "rosenctl", "rosenctl"), "--control", ctl] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def image(path, size, fill=None):
    with open(path, "wb") as f:
        if fill is None:
            f.truncate(size)
        else:
            f.write(fill * (size // len(fill)))


def read_rate(fe, seconds):
    """4 KiB reads at QD 1 for `seconds`: reads per second."""
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        st, _, _ = fe.read(0, (n * 8) % 4096, 4096)
        if st != vc.S_OK:
            raise RuntimeError("read status %d" % st)
        n += 1
    return n / (time.monotonic() - t0)


# ---- the cases ---------------------------------------------------------------------

def protocol(ctl_path, d):
    """Refusals of the protocol itself, on one connection."""
    c = Ctl(ctl_path)
    c.send_raw(b'{"jsonrpc": "2.0", "id": 7, "method": \n')
    a = c.recv()
    check("malformed JSON: -32700 with the column, id null",
          err_code(a) == -32700 and a["id"] is None and "column" in err_msg(a), a)
    c.send_raw(b'[{"jsonrpc": "2.0", "id": 1, "method": "version"}]\n')
    a = c.recv()
    check("a batch (array): -32600", err_code(a) == -32600 and "batch" in err_msg(a), a)
    c.send_raw(b'{"id": 3, "method": "version"}\n')
    a = c.recv()
    check("no \"jsonrpc\": \"2.0\": -32600 with the request's id", err_code(a) == -32600 and a["id"] == 3, a)
    c.send_raw(b'{"jsonrpc": "2.0", "id": "s", "method": 5}\n')
    a = c.recv()
    check("method not a string: -32600, string id echoed", err_code(a) == -32600 and a["id"] == "s", a)
    c.send_raw(b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "version"}\n')
    a = c.recv()
    check("id an object: -32600", err_code(a) == -32600, a)
    c.send_raw(b'{"jsonrpc": "2.0", "id": 4, "method": "version"} {"x": 1}\n')
    a = c.recv()
    check("two objects on one line: -32700", err_code(a) == -32700, a)
    c.send_raw(b'{"jsonrpc": "2.0", "id": 5, "method": "stats", "params": ["alpha"]}\n')
    a = c.recv()
    check("positional params: -32602", err_code(a) == -32602 and "named" in err_msg(a), a)
    a = c.call("no_such_method")
    check("unknown method: -32601 naming it", err_code(a) == -32601 and "no_such_method" in err_msg(a), a)
    a = c.call("metrics", {"disk": "alpha"})
    check("metrics takes no params: -32602 naming the unknown one", err_code(a) == -32602 and "disk" in err_msg(a), a)
    # Wrong parameter types: -32602, the parameter named.
    for method, params, name in (
            ("stats", {"name": 5}, "'name' must be a string"),
            ("stats", {}, "'name' is required"),
            ("stats", {"name": "alpha", "verbose": True}, "unknown parameter 'verbose'"),
            ("disk_remove", {"name": "alpha", "force": "yes"}, "'force' must be true or false"),
            ("program_unload", {"name": "alpha", "handle": -1}, "'handle' must be in"),
            ("program_unload", {"name": "alpha", "handle": 1.5}, "'handle' must be an integer"),
            ("throttle_set", {"name": "alpha", "limits": {"iops-total": "lots"}}, "limits.iops-total"),
            ("throttle_set", {"name": "alpha", "limits": {"iops": 5}}, "limits.iops"),
            ("throttle_set", {"name": "alpha"}, "'limits' is required"),
            ("throttle_get", {"name": "alpha", "group": "g"}, "either 'name'"),
            ("log_level", {"level": "loud"}, "'level' must be"),
            ("disk_add", {"disk": "x.img", "socket": "x.sock", "queues": 99}, "params.queues"),
            ("disk_add", {"disk": "x.img", "socket": "x.sock", "name": "9lives"}, "params.name"),
            ("disk_add", {"disk": "x.img"}, "'socket' is required"),
            ("disk_add", {"disk": "x.img", "socket": "x.sock", "colour": "red"}, "params.colour")):
        a = c.call(method, params)
        check("%s %s: -32602 naming it (%s)" % (method, json.dumps(params), err_msg(a)),
              err_code(a) == -32602 and name in err_msg(a), a)
    a = c.call("stats", {"name": "nobody"})
    check("no such disk: -32001", err_code(a) == -32001 and "nobody" in err_msg(a), a)
    # A notification (no id) gets no answer: the next answer is the next request's.
    c.send_raw(b'{"jsonrpc": "2.0", "method": "version"}\n')
    a = c.call("version")
    check("a notification is not answered", a and a.get("id") == c.next_id - 1 and "result" in a, a)
    c.send_raw(b'\n   \n')
    a = c.call("version")
    check("empty lines are skipped", a and "result" in a, a)
    check("the daemon survived all of it", d.alive())
    c.close()

    # Oversized: over 1 MiB without a newline -> -32600, then closed.
    c = Ctl(ctl_path)
    big = b'{"jsonrpc": "2.0", "id": 1, "method": "version", "params": {"pad": "' + b"x" * (1 << 20)
    try:
        c.send_raw(big)
    except OSError:
        pass
    a = c.recv(timeout=5)
    check("a request over 1 MiB: -32600", err_code(a) == -32600 and "1048576" in err_msg(a), a)
    check("... and the connection is closed", c.recv(timeout=5) is None)
    c.close()
    c = Ctl(ctl_path)
    check("the socket still serves after an oversized request", "result" in c.call("version"))
    c.close()

    # A client that stalls mid-request does not hold another.
    stall = Ctl(ctl_path)
    stall.send_raw(b'{"jsonrpc": "2.0", "id": 42, "meth')
    other = Ctl(ctl_path)
    t0 = time.monotonic()
    a = other.call("disk_list", timeout=2)
    dt = time.monotonic() - t0
    check("a stalled half request: another client is served meanwhile (%.3f s)" % dt,
          a and "result" in a and dt < 1.0, a)
    stall.send_raw(b'od": "version"}\n')
    a = stall.recv()
    check("... and the stalled client's request, once whole, is answered",
          a and a.get("id") == 42 and "result" in a, a)
    # Several clients, interleaved.
    cs = [Ctl(ctl_path) for _ in range(8)]
    for i, x in enumerate(cs):
        x.send_raw(json.dumps({"jsonrpc": "2.0", "id": 100 + i, "method": "version"}).encode() + b"\n")
    ids = sorted(x.recv()["id"] for x in cs)
    check("8 clients at once are all answered", ids == list(range(100, 108)), ids)
    for x in cs + [stall, other]:
        x.close()


def other_uid_refused(ctl_path):
    """A process of another uid cannot connect (mode 0600; SO_PEERCRED too)."""
    if os.geteuid() != 0:
        print("# not root: cannot arrange another uid; skipped")
        return
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = b"?"
        try:
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(3)
            try:
                s.connect(ctl_path)
                s.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "version"}\n')
                data = s.recv(4096)
                code = b"answered" if b'"result"' in data else b"refused-after-connect"
            except PermissionError:
                code = b"EACCES"
            except OSError as e:
                code = ("oserror %s" % e).encode()
        finally:
            os.write(w, code)
            os._exit(0)
    os.close(w)
    got = os.read(r, 100)
    os.close(r)
    os.waitpid(pid, 0)
    check("uid 65534 cannot use the control socket (%s)" % got.decode(), got in (b"EACCES", b"refused-after-connect"),
          got)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    daemon = os.path.join(build, "app", "rosenbridged", "rosenbridged")
    progs = os.path.join(build, "tests", "programs", "ndp_progs.o")
    tmp = tempfile.mkdtemp(prefix="rosen-control-")
    os.chmod(tmp, 0o755)  # for the other-uid case: the directory must not be what refuses
    t_start = time.monotonic()

    p = subprocess.run([daemon, "--help"], capture_output=True, text=True)
    check("rosenbridged --help explains --config, --control, --name, --log-format",
          p.returncode == 0 and all(k in p.stdout for k in ("--config FILE", "--control PATH", "--name NAME",
                                                            "--log-format")), p.stdout[:200])
    p = subprocess.run([os.path.join(build, "app", "rosenctl", "rosenctl"), "--help"], capture_output=True, text=True)
    check("rosenctl --help lists every command", p.returncode == 0 and all(
        k in p.stdout for k in ("disk-add", "disk-remove", "disk-resize", "program-list", "program-unload",
                                "mem-list", "throttle-get", "throttle-set", "stats", "log-level", "version",
                                "metrics", "disk-list", "--json")), p.stdout[:300])

    # ---- config file errors ----
    def cfg_run(obj_or_text, extra=()):
        path = os.path.join(tmp, "bad.json")
        with open(path, "w") as f:
            f.write(obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text, indent=2))
        return subprocess.run([daemon, "--config", path] + list(extra), capture_output=True, text=True, timeout=10)

    img_x = os.path.join(tmp, "x.img")
    image(img_x, 1 * MiB)
    disk_x = {"disk": img_x, "socket": os.path.join(tmp, "x.sock")}
    for what, cfg, want in (
            ("syntax error named by line", '{\n  "workers": 1,\n  "disks": [\n    {"disk": "a" "socket": "b"}\n  ]\n}\n',
             r"bad\.json:4:\d+: JSON syntax error"),
            ("file ending inside a value", '{"workers": 1,\n"disks": [\n', r"bad\.json:3:\d+: JSON syntax error"),
            ("unknown top-level key", {"workers": 1, "disk": []}, r"disk: unknown key"),
            ("workers of the wrong type", {"workers": "2", "disks": [disk_x]}, r"workers: must be an integer"),
            ("mode not poll/event", {"mode": "fast", "disks": [disk_x]}, r"mode: must be"),
            ("a disk's throttle key by its path", {"disks": [disk_x, dict(disk_x, socket="y.sock",
                                                                          throttle={"iops-total": "2000"})]},
             r"disks\[1\]\.throttle\.iops-total: "),
            ("a disk's unknown key by its path", {"disks": [dict(disk_x, colour="red")]}, r"disks\[0\]\.colour: unknown key"),
            ("a disk without a socket", {"disks": [{"disk": img_x}]}, r"disks\[0\]\.socket: required"),
            ("a bad disk name", {"disks": [dict(disk_x, name="-x")]}, r"disks\[0\]\.name: '-x'"),
            ("two disks with one name", {"disks": [dict(disk_x, name="a"), dict(disk_x, name="a", socket="z.sock")]},
             r"two disks are named 'a'"),
            ("a group no disk joins", {"groups": {"g": {"iops-total": 10}}, "disks": [disk_x]}, r"groups\.g: no disk joins"),
            ("io-timeout out of range", {"io-timeout": 7200, "disks": [disk_x]}, r"io-timeout: "),
            ("metrics-listen not [ADDR:]PORT", {"metrics-listen": "localhost:x", "disks": [disk_x]},
             r"metrics-listen: "),
            ("a group's limits by path", {"groups": {"g": {"iops-total": 10, "iops-read": 5}}, "disks": [disk_x]},
             r"groups\.g: iops-total and iops-read")):
        p = cfg_run(cfg)
        check("--config refused: %s (%s)" % (what, p.stderr.strip()[-110:]),
              p.returncode == 2 and re.search(want, p.stderr), p.stderr)

    p = cfg_run({"workers": 2, "disks": [disk_x]}, ["--check-config"])
    check("--check-config: a good file says so and exits 0 without opening anything",
          p.returncode == 0 and "config OK: 1 disk" in p.stdout and not os.path.exists(disk_x["socket"]),
          p.stdout + p.stderr)
    p = cfg_run("", ["--check-config"])
    check("--check-config: an empty file is refused (exit 2)", p.returncode == 2 and "empty" in p.stderr, p.stderr)

    # ---- a daemon from a config file: two disks, a group, JSON logs ----
    imgs = {n: os.path.join(tmp, n + ".img") for n in ("alpha", "beta", "gamma")}
    image(imgs["alpha"], 16 * MiB, bytes(range(256)))
    image(imgs["beta"], 8 * MiB)
    image(imgs["gamma"], 4 * MiB, b"\x5a")
    ctl = os.path.join(tmp, "control.sock")
    socks = {n: os.path.join(tmp, n + ".sock") for n in imgs}
    cfg = {
        "workers": 2,
        "mode": "poll",
        "control": ctl,
        "log-format": "json",
        "io-timeout": 30,
        "metrics-listen": "0",
        "groups": {"tenant-a": {"iops-total": 200}},
        "disks": [
            {"name": "alpha", "disk": imgs["alpha"], "socket": socks["alpha"], "queues": 2, "cache": "buffered"},
            {"name": "beta", "disk": imgs["beta"], "socket": socks["beta"], "queues": 1, "cache": "buffered",
             "throttle": {"group": "tenant-a"}},
        ],
    }
    cfg_path = os.path.join(tmp, "config.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
    d = Daemon(build, tmp, ["--config", cfg_path], [ctl, socks["alpha"], socks["beta"]])
    try:
        run_daemon(build, d, ctl, socks, imgs, progs, tmp)
    finally:
        rc = d.stop()
    check("SIGTERM: exit 0", rc == 0, rc)
    check("the control socket is removed at exit", not os.path.exists(ctl))
    lines = d.text().splitlines()
    parsed = []
    for ln in lines:
        try:
            parsed.append(json.loads(ln))
        except ValueError:
            parsed.append(None)
    check("--log-format json: every log line is one JSON object with time, level, subject, msg (%d lines)" % len(lines),
          lines and all(o and set(o) == {"time", "level", "subject", "msg"} for o in parsed),
          [ln for ln, o in zip(lines, parsed) if not o][:3])
    check("the logs name the disks", any(o and o["subject"] == "beta" for o in parsed)
          and any(o and o["subject"] == "alpha" for o in parsed))
    upto = next((i for i, o in enumerate(parsed) if o and "log level info -> debug" in o["msg"]), len(parsed))
    check("nothing per request at the default level (no line per control call before log_level debug)",
          upto < len(parsed) and not any(o and o["level"] == "debug" for o in parsed[:upto]))

    # ---- start-up refusals of the control socket ----
    plain = os.path.join(tmp, "plain-file")
    with open(plain, "w") as f:
        f.write("keep me")
    p = subprocess.run([daemon, "--disk", img_x, "--socket", os.path.join(tmp, "x1.sock"), "--control", plain],
                       capture_output=True, text=True, timeout=10)
    check("--control on an existing regular file: refused, the file kept",
          p.returncode != 0 and "not a socket" in p.stderr and open(plain).read() == "keep me", p.stderr)
    d2 = Daemon(build, tmp, ["--disk", img_x, "--socket", os.path.join(tmp, "x2.sock"), "--control", ctl],
                [ctl, os.path.join(tmp, "x2.sock")], name="d2")
    p = subprocess.run([daemon, "--disk", imgs["gamma"], "--socket", os.path.join(tmp, "x3.sock"), "--control", ctl],
                       capture_output=True, text=True, timeout=10)
    check("--control on a socket another daemon serves: refused", p.returncode != 0 and "in use" in p.stderr, p.stderr)
    d2.p.kill()
    d2.p.wait()
    d2.logf.close()
    d3 = Daemon(build, tmp, ["--control", ctl], [ctl], name="d3")
    answer = None
    end = time.time() + 5
    while answer is None and time.time() < end and d3.alive():
        try:  # the stale file is there before the new daemon replaces it
            answer = Ctl(ctl).call("version")
        except OSError:
            time.sleep(0.05)
    check("a stale control socket (daemon killed) is replaced; a daemon may start with no disk",
          d3.alive() and answer and answer["result"]["disks"] == 0, answer)
    d3.stop()

    print("# %.1f s" % (time.monotonic() - t_start))
    if all(results):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("# logs kept in %s" % tmp)
    print("%d passed, %d failed" % (results.count(True), results.count(False)))
    return 0 if all(results) else 1


def run_daemon(build, d, ctl, socks, imgs, progs, tmp):
    st = os.stat(ctl)
    check("control socket mode 0600 (%o)" % stat.S_IMODE(st.st_mode),
          stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600)
    other_uid_refused(ctl)

    c = Ctl(ctl)
    v = c.ok("version")
    check("version: name, version, workers 2, mode poll, 2 disks",
          v["name"] == "rosenbridged" and v["version"] and v["workers"] == 2 and v["mode"] == "poll"
          and v["disks"] == 2, v)
    lst = c.ok("disk_list")
    check("disk_list: the config file's two disks, by name, with sizes and queues",
          [(x["name"], x["capacity_bytes"], x["queues"], x["group"]) for x in lst]
          == [("alpha", 16 * MiB, 2, "alpha"), ("beta", 8 * MiB, 1, "tenant-a")], lst)
    g = c.ok("throttle_get", {"group": "tenant-a"})
    check("the file's group gave beta its limits", g["limits"] == {"iops-total": 200} and g["disks"] == 1, g)

    # Both disks serve I/O; the counters move by exactly what was done.
    fa = vc.Frontend(socks["alpha"], queues=2, mem_size=8 * MiB)
    fb = vc.Frontend(socks["beta"], queues=1, mem_size=8 * MiB)
    before = c.ok("stats", {"name": "alpha"})
    m0 = scrape(c)
    good = True
    for i in range(10):
        s_, _, data = fa.read(i % 2, i * 8, 4096)
        good &= s_ == vc.S_OK and data == bytes(range(256)) * 16
    after = c.ok("stats", {"name": "alpha"})
    check("alpha serves reads (10 x 4 KiB, both queues)", good)
    check("stats: reads +10, bytes_read +40960",
          after["reads"] - before["reads"] == 10 and after["bytes_read"] - before["bytes_read"] == 40960,
          (before["reads"], after["reads"], before["bytes_read"], after["bytes_read"]))
    m1 = scrape(c)
    port = re.search(r"serving metrics at http://127\.0\.0\.1:(\d+)/metrics", d.text())
    hs = tm.Scrape(tm.parse_exposition(tm.http(int(port.group(1)), b"GET /metrics HTTP/1.0\r\n\r\n")[2])) \
        if port else None
    check("the config file's metrics-listen serves the same families over HTTP (loopback)",
          hs is not None and set(hs.fams) == set(m1.fams)
          and hs.get("rosen_requests_total", disk="alpha", type="read", status="ok")
          == m1.get("rosen_requests_total", disk="alpha", type="read", status="ok"), port)
    d_req = m1.get("rosen_requests_total", disk="alpha", type="read", status="ok") - \
        m0.get("rosen_requests_total", disk="alpha", type="read", status="ok")
    d_bytes = m1.get("rosen_bytes_total", disk="alpha", direction="read") - \
        m0.get("rosen_bytes_total", disk="alpha", direction="read")
    d_hist = m1.get("rosen_request_duration_seconds_count", disk="alpha", type="read") - \
        m0.get("rosen_request_duration_seconds_count", disk="alpha", type="read")
    check("metrics (control socket): read requests +10, read bytes +40960, latency count +10 on alpha",
          (d_req, d_bytes, d_hist) == (10, 40960, 10), (d_req, d_bytes, d_hist))
    missing = [f for f, t in tm.REQUIRED.items() if m1.fams.get(f, {}).get("type") != t]
    check("metrics: every required family with its TYPE, both disks labelled",
          not missing and m1.get("rosen_frontend_connected", disk="alpha") == 1
          and m1.get("rosen_frontend_connected", disk="beta") == 1
          and m1.get("rosen_disk_capacity_bytes", disk="beta") == 8 * MiB, missing)
    rc, out, err = rosenctl(build, ctl, "metrics")
    try:
        ok_text = bool(tm.parse_exposition(out.encode())) and out.startswith("# HELP ")
    except tm.FormatError as e:
        ok_text = False
        err += str(e)
    check("rosenctl metrics prints the Prometheus text as is (valid)", rc == 0 and ok_text, (rc, out[:200], err))
    s_, _ = fb.write(0, 16, b"\xab" * 4096)
    s2, _, data = fb.read(0, 16, 4096)
    check("beta serves a write and reads it back", s_ == vc.S_OK and s2 == vc.S_OK and data == b"\xab" * 4096)
    lst = {x["name"]: x for x in c.ok("disk_list")}
    check("disk_list shows both frontends connected", lst["alpha"]["connected"] and lst["beta"]["connected"], lst)

    protocol(ctl, d)

    # ---- a limit changed live, measured on one connection ----
    c.ok("throttle_set", {"group": "tenant-a", "limits": {"iops-total": 200}})
    th0 = scrape(c).get("rosen_throttled_seconds_total", disk="beta")
    r1 = read_rate(fb, 1.5)
    th1 = scrape(c).get("rosen_throttled_seconds_total", disk="beta")
    g = c.ok("throttle_set", {"name": "beta", "limits": {"iops-total": 800}})
    r2 = read_rate(fb, 1.5)
    check("throttle_set live on a connected disk: %.0f reads/s at 200, %.0f at 800" % (r1, r2),
          150 <= r1 <= 260 and 600 <= r2 <= 950 and g["limits"] == {"iops-total": 800}, (r1, r2, g))
    check("metrics: beta's throttled time grew while it was held at 200 IOPS (+%.2f s)" % (th1 - th0),
          th1 - th0 > 0.2, (th0, th1))
    t = c.ok("throttle_get", {"name": "beta"})
    check("throttle_get by disk name: its group, the new limit, I/Os that waited",
          t["group"] == "tenant-a" and t["limits"] == {"iops-total": 800} and t["delayed"] > 0, t)
    a = c.call("throttle_set", {"name": "beta", "limits": {"iops-total": 100, "iops-read": 50}})
    check("throttle_set refuses an invalid set (QEMU's rules) and changes nothing",
          err_code(a) == -32602 and "iops-read" in err_msg(a)
          and c.ok("throttle_get", {"name": "beta"})["limits"] == {"iops-total": 800}, a)
    c.ok("throttle_set", {"name": "beta", "limits": {}})
    check("throttle_set {} lifts every limit", c.ok("throttle_get", {"name": "beta"})["limits"] == {})

    # ---- resize: announced on the backend channel ----
    fa.close()
    fr = vc.Frontend(socks["alpha"], queues=2, mem_size=8 * MiB, backend_req=True)
    with open(imgs["alpha"], "r+b") as f:
        f.truncate(24 * MiB)
    rs = c.ok("disk_resize", {"name": "alpha"})
    msg = fr.backend_msg(timeout=2)
    check("disk_resize: 16 MiB -> 24 MiB, announced", rs["old_bytes"] == 16 * MiB and rs["new_bytes"] == 24 * MiB
          and rs["announced"], rs)
    check("the frontend got VHOST_USER_BACKEND_CONFIG_CHANGE_MSG (2, no payload, no reply asked)",
          msg == (vc.BACKEND_CONFIG_CHANGE_MSG, vc.FLAG_VERSION, b""), msg)
    cap = struct.unpack_from("<Q", fr.conn.get_config(0, 8))[0]
    check("GET_CONFIG then says 24 MiB (%d sectors)" % cap, cap == 24 * MiB // 512)
    check("metrics: rosen_disk_capacity_bytes{disk=alpha} is 24 MiB after the resize",
          scrape(c).get("rosen_disk_capacity_bytes", disk="alpha") == 24 * MiB)
    s_, _ = fr.write(0, 20 * MiB // 512, b"\x77" * 4096)
    check("a write past the old end succeeds", s_ == vc.S_OK)
    with open(imgs["beta"], "r+b") as f:
        f.truncate(12 * MiB)
    rs = c.ok("disk_resize", {"name": "beta"})
    check("disk_resize of a frontend without a backend channel: resized, not announced, says why",
          rs["new_bytes"] == 12 * MiB and not rs["announced"] and "backend channel" in rs.get("note", ""), rs)
    rc, out, err = rosenctl(build, ctl, "disk-resize", "--name", "beta")
    check("rosenctl disk-resize prints old and new size", rc == 0 and "12 MiB -> 12 MiB" in out, out + err)

    # A frontend that never reads its backend channel cannot hold the
    # daemon: the channel fills, the announcement fails at once, the
    # channel is dropped, the disk and the VM go on.
    fr.close()
    fr = vc.Frontend(socks["alpha"], queues=2, mem_size=8 * MiB, backend_req=True, backend_sndbuf=1)
    slowest, last = 0.0, None
    for _ in range(2000):
        t0 = time.monotonic()
        last = c.ok("disk_resize", {"name": "alpha"})
        slowest = max(slowest, time.monotonic() - t0)
        if not last["announced"]:
            break
    check("a backend channel nobody reads: the announcement fails at once, never blocks (slowest %.3f s)" % slowest,
          not last["announced"] and "backend channel" in last.get("note", "") and slowest < 0.5, last)
    last = c.ok("disk_resize", {"name": "alpha"})
    s_, _, _ = fr.read(0, 0, 4096)
    check("... the channel is dropped, the frontend still served", not last["announced"] and s_ == vc.S_OK
          and "no backend channel" in last.get("note", ""), last)
    fr.close()
    fr = vc.Frontend(socks["alpha"], queues=2, mem_size=8 * MiB, backend_req=True)

    # ---- programs and memory ----
    with open(progs, "rb") as f:
        elf = f.read()
    r = vc.ndp_load(fr.mem, vc.NDP_PROG_XRP, elf, "xrp_peek")
    fr.run(0, r)
    handle, ndp_st, _, _ = vc.load_result(r)
    for i in range(3):
        rq = vc.ndp_io(fr.mem, vc.NDP_T_READ_ND, handle, i, 512, scratch=bytes(16))
        fr.run(0, rq)
    pl = c.ok("program_list", {"name": "alpha"})
    check("program_list: the loaded program (handle, type xrp, section, size, JIT, load time)",
          ndp_st == 0 and len(pl) == 1 and pl[0]["handle"] == handle and pl[0]["type"] == "xrp"
          and pl[0]["section"] == "xrp_peek" and pl[0]["insns"] > 0 and re.match(r"\d{4}-\d\d-\d\dT", pl[0]["loaded"]),
          pl)
    check("program_list: 3 requests, 3 hops, runs and instructions counted per request",
          pl and pl[0]["requests"] == 3 and pl[0]["hops"] == 3 and pl[0]["runs"] == 3 and pl[0]["executed"] > 0, pl)
    rq = vc.ndp_reg_mem(fr.mem, vc.GPA_BASE + 4 * MiB, 4096)
    fr.run(0, rq)
    m = c.ok("mem_list", {"name": "alpha"})
    check("mem_list: the guest memory region and the NDP registration",
          m["guest_memory"] == [{"gpa": vc.GPA_BASE, "size": 8 * MiB}]
          and [(x["gpa"], x["len"]) for x in m["registered"]] == [(vc.GPA_BASE + 4 * MiB, 4096)], m)
    rc, out, err = rosenctl(build, ctl, "program-list", "--name", "alpha")
    check("rosenctl program-list: a table with the program", rc == 0 and "HANDLE" in out and "xrp_peek" in out,
          out + err)
    rc, out, err = rosenctl(build, ctl, "program-unload", "--name", "alpha", "--handle", str(handle))
    check("rosenctl program-unload", rc == 0 and c.ok("program_list", {"name": "alpha"}) == [], out + err)
    rq = vc.ndp_io(fr.mem, vc.NDP_T_READ_ND, handle, 0, 512, scratch=bytes(16))
    fr.run(0, rq)
    check("the guest's handle is gone after program_unload (NO_PROGRAM)", rq.result()[0] == vc.NDP_S_NO_PROGRAM,
          rq.result())
    a = c.call("program_unload", {"name": "alpha", "handle": handle})
    check("program_unload of an unknown handle: -32001", err_code(a) == -32001, a)

    # ---- a disk added at run time, used, refused removal, forced removal ----
    delta = os.path.join(tmp, "delta.img")
    image(delta, 1 * MiB)
    added = c.ok("disk_add", {"name": "gamma", "disk": imgs["gamma"], "socket": socks["gamma"], "queues": 1,
                              "cache": "buffered", "throttle": {"iops-total": 5000}})
    check("disk_add: gamma served without a restart", added["name"] == "gamma" and os.path.exists(socks["gamma"]),
          added)
    fg = vc.Frontend(socks["gamma"], queues=1, mem_size=4 * MiB)
    s_, _, data = fg.read(0, 0, 4096)
    s2, _ = fg.write(0, 8, b"\x11" * 4096)
    with open(imgs["gamma"], "rb") as f:
        f.seek(4096)
        on_disk = f.read(4096)
    check("a client reads and writes the added disk", s_ == vc.S_OK and data == b"\x5a" * 4096 and s2 == vc.S_OK
          and on_disk == b"\x11" * 4096)
    mg = scrape(c)
    check("metrics: the added disk appears with its one read and one write",
          mg.get("rosen_requests_total", disk="gamma", type="read", status="ok") == 1
          and mg.get("rosen_requests_total", disk="gamma", type="write", status="ok") == 1
          and mg.get("rosen_frontend_connects_total", disk="gamma") == 1)
    for params, want in (({"name": "gamma", "disk": imgs["beta"], "socket": socks["gamma"] + "2"}, "exists already"),
                         ({"name": "delta", "disk": imgs["gamma"], "socket": socks["gamma"] + "3"}, "served as disk"),
                         ({"name": "delta", "disk": delta, "socket": socks["gamma"]}, "socket"),
                         ({"name": "delta", "disk": os.path.join(tmp, "missing.img"), "socket": socks["gamma"] + "4"},
                          "missing.img"),
                         ({"name": "tenant-a", "disk": delta, "socket": socks["gamma"] + "5"}, "throttle group")):
        a = c.call("disk_add", params)
        check("disk_add refused: %s" % err_msg(a)[:90], "error" in a and want in err_msg(a), a)
    a = c.call("disk_remove", {"name": "gamma"})
    check("disk_remove while a frontend is connected: refused (-32002)", err_code(a) == -32002
          and "force" in err_msg(a), a)
    rm = c.ok("disk_remove", {"name": "gamma", "force": True})
    check("disk_remove force: the frontend is disconnected", rm["disconnected"] and fg.conn.wait_closed(2.0), rm)
    fg.close()
    check("... its socket removed, gone from disk_list", not os.path.exists(socks["gamma"])
          and "gamma" not in [x["name"] for x in c.ok("disk_list")])
    mg = scrape(c)
    check("... and from the metrics", not any(ls.get("disk") == "gamma" for f in mg.fams.values()
                                             for _, ls, _ in f["samples"]))
    added = c.ok("disk_add", {"disk": imgs["gamma"], "socket": socks["gamma"]})
    check("disk_add without a name takes the first free vmN (%s)" % added["name"], added["name"] == "vm0", added)
    rc, out, err = rosenctl(build, ctl, "disk-remove", "--name", "vm0")
    check("rosenctl disk-remove of an idle disk", rc == 0 and "removed vm0" in out, out + err)

    # ---- log level ----
    ll = c.ok("log_level", {"level": "debug"})
    c.ok("version")
    ll2 = c.ok("log_level", {"level": "info"})
    check("log_level: info -> debug -> info", ll == {"previous": "info", "level": "debug"}
          and ll2 == {"previous": "debug", "level": "info"}, (ll, ll2))

    # ---- rosenctl: tables, --json, exit codes ----
    rc, out, err = rosenctl(build, ctl, "disk-list")
    check("rosenctl disk-list: a table, a header and one row per disk",
          rc == 0 and out.splitlines()[0].split()[:4] == ["NAME", "DISK", "SOCKET", "SIZE"]
          and len(out.splitlines()) == 3 and "alpha" in out and "tenant-a" in out, out + err)
    rc, out, err = rosenctl(build, ctl, "--json", "disk-list")
    try:
        j = json.loads(out)
    except ValueError:
        j = None
    check("rosenctl --json disk-list: the daemon's JSON", rc == 0 and j and [x["name"] for x in j] == ["alpha", "beta"],
          out + err)
    rc, out, err = rosenctl(build, ctl, "throttle-set", "--group", "tenant-a", "iops-total=300,bps-total=1048576")
    check("rosenctl throttle-set", rc == 0 and "bps-total=1048576,iops-total=300" in out, out + err)
    rc, out, err = rosenctl(build, ctl, "throttle-get", "--name", "beta")
    check("rosenctl throttle-get: the group and its buckets", rc == 0 and "group tenant-a" in out and "BUCKET" in out,
          out + err)
    rc, out, err = rosenctl(build, ctl, "stats", "--name", "alpha")
    check("rosenctl stats", rc == 0 and re.search(r"^reads: \d+$", out, re.M), out + err)
    rc, out, err = rosenctl(build, ctl, "version")
    check("rosenctl version", rc == 0 and out.startswith("rosenbridged "), out + err)
    rc, out, err = rosenctl(build, ctl, "mem-list", "--name", "alpha")
    check("rosenctl mem-list", rc == 0 and "REGION" in out and "KEY" in out, out + err)
    rc, out, err = rosenctl(build, ctl, "log-level")
    check("rosenctl log-level", rc == 0 and out.strip() == "log level info", out + err)
    rc, out, err = rosenctl(build, ctl, "disk-add", "--name", "z", "--disk", "/nonexistent.img", "--socket",
                            os.path.join(tmp, "z.sock"))
    check("rosenctl: a refusal exits 1 with the daemon's message", rc == 1 and "nonexistent.img" in err and not out,
          (rc, out, err))
    rc, out, err = rosenctl(build, ctl, "stats")
    check("rosenctl: a missing option is a usage error (exit 2)", rc == 2 and "--name" in err, (rc, err))
    rc, out, err = rosenctl(build, ctl, "frobnicate")
    check("rosenctl: an unknown command exits 2", rc == 2 and "unknown command" in err, (rc, err))
    rc, out, err = rosenctl(build, os.path.join(tmp, "nowhere.sock"), "version")
    check("rosenctl: no daemon there exits 1 and says so", rc == 1 and "cannot connect" in err, (rc, err))
    rc, out, err = rosenctl(build, ctl, "disk-add", "--disk", imgs["gamma"], "--socket", socks["gamma"],
                            "--name", "gamma", "--queues", "2", "--cache", "buffered", "--readonly",
                            "--throttle", "iops-total=100")
    check("rosenctl disk-add with every option", rc == 0 and "added gamma" in out, out + err)
    g = c.ok("disk_list")[-1]
    check("... as asked: read-only, 2 queues, buffered, its own group at 100 IOPS",
          g["readonly"] and g["queues"] == 2 and g["cache"] == "buffered"
          and c.ok("throttle_get", {"name": "gamma"})["limits"] == {"iops-total": 100}, g)
    rc, out, err = rosenctl(build, ctl, "disk-remove", "--name", "gamma", "--force")
    check("rosenctl disk-remove --force", rc == 0, out + err)

    for x in (fr, fb):
        x.close()
    c.close()
    check("the daemon is alive after all of it", d.alive())


if __name__ == "__main__":
    sys.exit(main())
