#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""rosenbridged's metrics (docs/metrics.md) through --metrics-listen.

Every scrape is validated by a strict checker of the Prometheus text
exposition format 0.0.4 written here (and by promtool when one is on PATH
or named by $PROMTOOL: Debian ships it only inside the prometheus server
package, which scripts/setup.sh does not install).  A known workload then
moves the counters by exact amounts: 10 reads of 4 KiB, NDP LOADs,
READ_NDs with known hops, a LOAD the verifier rejects, an unknown request
type, connects, a throttled disk's waits; every histogram's count equals
its type's requests.  The HTTP endpoint is checked against stalled
clients (others are still served, the stalled one is closed after its
deadline, a flood evicts the oldest), bad requests, and its address:
loopback unless another is named.

Usage: test_metrics.py --build BUILD_DIR
Ends with "N passed, N failed".
"""
import argparse
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vhost"))
import vhost_client as vc  # noqa: E402

results = []
HTTP_TIMEOUT = 5.0  # RB_METRICS_HTTP_TIMEOUT_MS


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)), flush=True)
    return bool(cond)


# ---- a strict checker of the text format 0.0.4 -----------------------------------------

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
VALUE_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]Inf|NaN")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class FormatError(Exception):
    pass


def parse_value(s, where):
    if not VALUE_RE.fullmatch(s):
        raise FormatError("%s: value %r is not a number" % (where, s))
    return float(s.replace("Inf", "inf").replace("NaN", "nan"))


def parse_labels(line, i, where):
    """Parses {a="b",...} at line[i] == '{'; returns (labels, index after '}')."""
    labels = {}
    i += 1
    if line[i:i + 1] == "}":
        return labels, i + 1
    while True:
        m = LABEL_RE.match(line, i)
        if not m:
            raise FormatError("%s: bad label name at column %d" % (where, i))
        lname = m.group(0)
        if lname.startswith("__"):
            raise FormatError("%s: label %s is reserved" % (where, lname))
        i = m.end()
        if line[i:i + 2] != '="':
            raise FormatError("%s: label %s without =\"" % (where, lname))
        i += 2
        val = []
        while True:
            if i >= len(line):
                raise FormatError("%s: unterminated value of label %s" % (where, lname))
            c = line[i]
            if c == "\\":
                nxt = line[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise FormatError("%s: bad escape \\%s in label %s" % (where, nxt, lname))
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                val.append(c)
                i += 1
        if lname in labels:
            raise FormatError("%s: label %s twice" % (where, lname))
        labels[lname] = "".join(val)
        if line[i:i + 1] == ",":
            i += 1
            if line[i:i + 1] == "}":
                raise FormatError("%s: trailing comma in labels" % where)
            continue
        if line[i:i + 1] == "}":
            return labels, i + 1
        raise FormatError("%s: expected , or } after label %s" % (where, lname))


def family_of(name, fams):
    if name in fams:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[:-len(suffix)]
            if base in fams and fams[base]["type"] in ("histogram", "summary"):
                return base
    return None


def parse_exposition(data):
    """Checks bytes against the text format; returns {family: {type, help,
    samples: [(name, labels, value)]}}.  Raises FormatError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError("not UTF-8: %s" % e)
    if not text.endswith("\n"):
        raise FormatError("the text does not end with a newline")
    fams = {}
    closed = set()
    current = None
    series = set()
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d" % n
        if line == "":
            raise FormatError("%s: empty line" % where)
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME_RE.fullmatch(name):
                    raise FormatError("%s: bad metric name %r" % (where, name))
                f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
                if f["samples"] or name in closed:
                    raise FormatError("%s: %s %s after its samples" % (where, parts[1], name))
                if parts[1] == "HELP":
                    if f["help"] is not None:
                        raise FormatError("%s: second HELP for %s" % (where, name))
                    help_ = parts[3] if len(parts) > 3 else ""
                    if re.search(r"\\[^\\n]|\\$", help_):
                        raise FormatError("%s: bad escape in HELP of %s" % (where, name))
                    f["help"] = help_
                else:
                    if f["type"] is not None:
                        raise FormatError("%s: second TYPE for %s" % (where, name))
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise FormatError("%s: bad TYPE line %r" % (where, line))
                    f["type"] = parts[3]
                if current is not None and current != name:
                    closed.add(current)
                current = name
            continue
        m = NAME_RE.match(line)
        if not m:
            raise FormatError("%s: a sample must start with a metric name: %r" % (where, line))
        name = m.group(0)
        i = m.end()
        labels = {}
        if line[i:i + 1] == "{":
            labels, i = parse_labels(line, i, where)
        if line[i:i + 1] != " ":
            raise FormatError("%s: expected one space before the value" % where)
        rest = line[i + 1:].split(" ")
        if len(rest) > 2 or rest[0] == "":
            raise FormatError("%s: expected VALUE [TIMESTAMP]: %r" % (where, line[i + 1:]))
        value = parse_value(rest[0], where)
        if len(rest) == 2 and not re.fullmatch(r"-?[0-9]+", rest[1]):
            raise FormatError("%s: bad timestamp %r" % (where, rest[1]))
        fam = family_of(name, fams)
        if fam is None or fams[fam]["type"] is None:
            raise FormatError("%s: sample %s has no TYPE before it" % (where, name))
        if fam in closed:
            raise FormatError("%s: %s's samples are not together" % (where, fam))
        if current is not None and current != fam:
            closed.add(current)
        current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            raise FormatError("%s: series %s%r twice" % (where, name, labels))
        series.add(key)
        t = fams[fam]["type"]
        if t == "histogram":
            if name.endswith("_bucket") and name != fam and "le" not in labels:
                raise FormatError("%s: bucket without le" % where)
            if not name.endswith("_bucket") and "le" in labels:
                raise FormatError("%s: le outside a bucket" % where)
        if t in ("counter", "histogram") and (math.isnan(value) or value < 0):
            raise FormatError("%s: %s must not be negative or NaN" % (where, name))
        fams[fam]["samples"].append((name, labels, value))
    for name, f in fams.items():
        if f["type"] is None:
            raise FormatError("%s has HELP but no TYPE" % name)
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
    return fams


def check_histogram(fam, samples):
    groups = {}
    for name, labels, value in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            g["buckets"].append((labels["le"], value))
        elif name == fam + "_sum":
            g["sum"] = value
        elif name == fam + "_count":
            g["count"] = value
        else:
            raise FormatError("%s: sample %s in a histogram" % (fam, name))
    for key, g in groups.items():
        b = g["buckets"]
        if not b or b[-1][0] != "+Inf":
            raise FormatError("%s%r: no +Inf bucket last" % (fam, key))
        les = [parse_value(le, fam) for le, _ in b]
        if les != sorted(les) or len(set(les)) != len(les):
            raise FormatError("%s%r: le not strictly increasing" % (fam, key))
        counts = [v for _, v in b]
        if counts != sorted(counts):
            raise FormatError("%s%r: buckets not cumulative" % (fam, key))
        if g["count"] is None or g["sum"] is None:
            raise FormatError("%s%r: _sum or _count missing" % (fam, key))
        if g["count"] != counts[-1]:
            raise FormatError("%s%r: _count %s != +Inf bucket %s" % (fam, key, g["count"], counts[-1]))


REQUIRED = {
    "rosen_requests_total": "counter",
    "rosen_bytes_total": "counter",
    "rosen_ndp_hops_total": "counter",
    "rosen_program_run_seconds_total": "counter",
    "rosen_verifier_rejections_total": "counter",
    "rosen_throttled_seconds_total": "counter",
    "rosen_inflight_requests": "gauge",
    "rosen_request_duration_seconds": "histogram",
    "rosen_frontend_connects_total": "counter",
    "rosen_worker_busy_seconds_total": "counter",
}


class Scrape:
    def __init__(self, fams):
        self.fams = fams

    def get(self, name, **labels):
        """The sample's value (0 when absent: series appear once they move)."""
        fam = family_of(name, self.fams)
        if fam is None:
            return 0.0
        for n, ls, v in self.fams[fam]["samples"]:
            if n == name and ls == labels:
                return v
        return 0.0

    def total(self, name, **labels):
        """Sum over the samples whose labels include `labels`."""
        fam = family_of(name, self.fams)
        if fam is None:
            return 0.0
        return sum(v for n, ls, v in self.fams[fam]["samples"]
                   if n == name and all(ls.get(k) == x for k, x in labels.items()))


# ---- the daemon and its endpoint -------------------------------------------------------


class Daemon:
    def __init__(self, build, tmp, disks, listen="0", extra=()):
        """disks: [(image, throttle or None)], named vm0, vm1, ..."""
        self.socks = []
        cmd = [os.path.join(build, "app", "rosenbridged", "rosenbridged"), "--metrics-listen", listen]
        cmd += list(extra)
        for i, (img, thr) in enumerate(disks):
            sock = os.path.join(tmp, "vm%d.sock" % i)
            self.socks.append(sock)
            cmd += ["--disk", img, "--socket", sock, "--cache", "buffered", "--queues", "2"]
            if thr:
                cmd += ["--throttle", thr]
        self.log = os.path.join(tmp, "daemon-%d.log" % time.monotonic_ns())
        self.logf = open(self.log, "w")
        self.p = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT)
        end = time.time() + 10
        self.port = None
        while time.time() < end:
            m = re.search(r"serving metrics at http://(\S+):(\d+)/metrics", open(self.log).read())
            if m and all(os.path.exists(s) for s in self.socks):
                self.host, self.port = m.group(1).strip("[]"), int(m.group(2))
                break
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        if self.port is None:
            raise RuntimeError("daemon did not start: " + open(self.log).read())

    def logtext(self):
        return open(self.log).read()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None


def http(port, request, host="127.0.0.1", timeout=5.0):
    """Sends raw bytes, reads to EOF; (status code, headers text, body bytes)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(request)
        data = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    first = head.split(b"\r\n", 1)[0].decode()
    code = int(first.split(" ")[1]) if first.startswith("HTTP/") else 0
    return code, head.decode(), body


def scrape(d, name="scrape"):
    code, head, body = http(d.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
    if code != 200:
        raise FormatError("GET /metrics: HTTP %d" % code)
    if "Content-Type: text/plain; version=0.0.4" not in head:
        raise FormatError("Content-Type is not text/plain; version=0.0.4: %r" % head)
    m = re.search(r"Content-Length: (\d+)", head)
    if not m or int(m.group(1)) != len(body):
        raise FormatError("Content-Length does not match the body")
    fams = parse_exposition(body)
    for fam, t in REQUIRED.items():
        if fam not in fams or fams[fam]["type"] != t or not fams[fam]["help"]:
            raise FormatError("family %s missing, or without HELP, or not a %s" % (fam, t))
    promtool = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                           timeout=30)
        if p.returncode:
            raise FormatError("promtool check metrics: %s" % (p.stdout + p.stderr).decode())
    return Scrape(fams)


def hist_matches_requests(s, disk):
    """For every type: _count == sum of rosen_requests_total over statuses."""
    bad = []
    types = {ls["type"] for n, ls, v in s.fams["rosen_requests_total"]["samples"] if ls["disk"] == disk}
    for t in types:
        n = s.total("rosen_requests_total", disk=disk, type=t)
        c = s.get("rosen_request_duration_seconds_count", disk=disk, type=t)
        if n != c:
            bad.append("%s: %d requests, histogram count %d" % (t, n, c))
    return bad


# ---- the workload ---------------------------------------------------------------------------


def workload_checks(build, tmp):
    imgs = []
    for i in range(2):
        imgs.append(os.path.join(tmp, "d%d.img" % i))
        with open(imgs[-1], "wb") as f:
            f.write(os.urandom(8 << 20))
    progs = os.path.join(build, "tests", "programs")
    ndp_elf = open(os.path.join(progs, "ndp_progs.o"), "rb").read()
    hostile_elf = open(os.path.join(progs, "verifier_hostile.o"), "rb").read()
    d = Daemon(build, tmp, [(imgs[0], None), (imgs[1], "iops-total=20")])
    try:
        s0 = scrape(d)
        check("a scrape of an idle daemon passes the format checker%s"
              % (" and promtool" if (os.environ.get("PROMTOOL") or shutil.which("promtool")) else ""), True)
        busy0 = s0.total("rosen_worker_busy_seconds_total")

        fe = vc.Frontend(d.socks[0], mem_size=8 << 20)
        ok = True
        for k in range(10):
            st, ulen, _ = fe.read(0, 8 * k, 4096)
            ok = ok and st == vc.S_OK and ulen == 4097
        check("10 reads of 4 KiB served", ok)
        s1 = scrape(d)
        dv = lambda a, b, name, **kw: b.get(name, **kw) - a.get(name, **kw)  # noqa: E731
        check("reads: rosen_requests_total{type=read,status=ok} +10",
              dv(s0, s1, "rosen_requests_total", disk="vm0", type="read", status="ok") == 10,
              dv(s0, s1, "rosen_requests_total", disk="vm0", type="read", status="ok"))
        check("reads: rosen_bytes_total{direction=read} +40960",
              dv(s0, s1, "rosen_bytes_total", disk="vm0", direction="read") == 40960,
              dv(s0, s1, "rosen_bytes_total", disk="vm0", direction="read"))
        check("reads: nothing written", dv(s0, s1, "rosen_bytes_total", disk="vm0", direction="write") == 0)
        check("reads: the read histogram counts 10, its sum > 0",
              s1.get("rosen_request_duration_seconds_count", disk="vm0", type="read") == 10
              and s1.get("rosen_request_duration_seconds_sum", disk="vm0", type="read") > 0)
        check("a connect: rosen_frontend_connects_total +1, connected 1",
              dv(s0, s1, "rosen_frontend_connects_total", disk="vm0") == 1
              and s1.get("rosen_frontend_connected", disk="vm0") == 1)
        check("nothing in flight after the reads", s1.get("rosen_inflight_requests", disk="vm0") == 0)

        # NDP: a LOAD, READ_NDs with known hops, a LOAD the verifier
        # rejects, a malformed object (rejected, but not by the verifier),
        # UNLOADs, an unknown request type.
        def load(elf, section, ptype):
            r = vc.ndp_load(fe.mem, ptype, elf, section)
            fe.run(0, r, timeout=20)
            return vc.load_result(r)[:2]

        h_forever, st_a = load(ndp_elf, "xrp_forever", vc.NDP_PROG_XRP)
        h_sum, st_b = load(ndp_elf, "cq_sum", vc.NDP_PROG_CQ)
        check("LOADs of xrp_forever and cq_sum succeed", st_a == vc.NDP_S_OK and st_b == vc.NDP_S_OK,
              (st_a, st_b))
        hops = 0
        results_ok = True
        for _ in range(3):
            r = vc.ndp_io(fe.mem, vc.NDP_T_READ_ND, h_forever, 0, vc.SECTOR, max_hops=5)
            fe.run(1, r)
            res = r.result()
            results_ok = results_ok and res[0] == vc.NDP_S_HOP_LIMIT and res[1] == 5
            hops += res[1]
        r = vc.ndp_io(fe.mem, vc.NDP_T_READ_ND, h_sum, 16, vc.SECTOR,
                      meta=struct.pack("<II", 7, 1), scratch=bytes(16))
        fe.run(1, r)
        res = r.result()
        results_ok = results_ok and res[0] == vc.NDP_S_OK and res[1] == 7
        hops += res[1]
        check("READ_NDs: 3 x hop-limit after 5 hops, 1 x ok after 7", results_ok, res)
        _, st_rej = load(hostile_elf, "cq_data_fwd", vc.NDP_PROG_CQ)
        _, st_bad = load(b"\x7fELF" + bytes(60), "x", vc.NDP_PROG_CQ)
        check("the hostile LOAD and the malformed object are REJECTED",
              st_rej == vc.NDP_S_REJECTED and st_bad == vc.NDP_S_REJECTED, (st_rej, st_bad))
        for h in (h_forever, h_sum):
            fe.run(0, vc.ndp_unload(fe.mem, h))
        st, _ = fe.simple(0, 77)
        check("an unknown request type is UNSUPP", st == vc.S_UNSUPP, st)
        s2 = scrape(d)
        check("NDP: rosen_ndp_hops_total + exactly the hops the results report (%d)" % hops,
              dv(s1, s2, "rosen_ndp_hops_total", disk="vm0") == hops,
              dv(s1, s2, "rosen_ndp_hops_total", disk="vm0"))
        check("NDP: read_nd hop-limit +3, ok +1",
              dv(s1, s2, "rosen_requests_total", disk="vm0", type="read_nd", status="hop-limit") == 3
              and dv(s1, s2, "rosen_requests_total", disk="vm0", type="read_nd", status="ok") == 1)
        check("NDP: every hop's 512 bytes counted as read (%d)" % (hops * 512),
              dv(s1, s2, "rosen_bytes_total", disk="vm0", direction="read") == hops * 512,
              dv(s1, s2, "rosen_bytes_total", disk="vm0", direction="read"))
        check("NDP: ndp_load ok +2, rejected +2, ndp_unload ok +2",
              dv(s1, s2, "rosen_requests_total", disk="vm0", type="ndp_load", status="ok") == 2
              and dv(s1, s2, "rosen_requests_total", disk="vm0", type="ndp_load", status="rejected") == 2
              and dv(s1, s2, "rosen_requests_total", disk="vm0", type="ndp_unload", status="ok") == 2)
        check("a rejected LOAD: rosen_verifier_rejections_total +1 (the malformed object is not the verifier's)",
              dv(s1, s2, "rosen_verifier_rejections_total", disk="vm0") == 1,
              dv(s1, s2, "rosen_verifier_rejections_total", disk="vm0"))
        check("programs ran: instructions > 0, run seconds > 0, at least one timed request",
              dv(s1, s2, "rosen_program_instructions_total", disk="vm0") > 0
              and dv(s1, s2, "rosen_program_run_seconds_total", disk="vm0") > 0
              and s2.get("rosen_program_timed_requests_total", disk="vm0") >= 1,
              (dv(s1, s2, "rosen_program_instructions_total", disk="vm0"),
               dv(s1, s2, "rosen_program_run_seconds_total", disk="vm0")))
        check("an unknown type: rosen_requests_total{type=other,status=unsupp} +1",
              dv(s1, s2, "rosen_requests_total", disk="vm0", type="other", status="unsupp") == 1)
        bad = hist_matches_requests(s2, "vm0")
        check("every type's histogram count equals its requests", not bad, bad)
        fe.close()

        # A throttled disk: 12 reads at once against iops-total=20.
        fe1 = vc.Frontend(d.socks[1], mem_size=8 << 20)
        vq = fe1.vqs[0]
        reqs = [vc.BlkReq(fe1.mem, vc.T_IN, 8 * k, in_len=4096) for k in range(12)]
        old = vq.avail_idx
        for r in reqs:
            vq.add_chain(r.segs)
        vq.kick(old)
        time.sleep(0.15)
        sm = scrape(d)
        check("throttled: requests in flight while they wait (%d)" % sm.get("rosen_inflight_requests", disk="vm1"),
              sm.get("rosen_inflight_requests", disk="vm1") >= 1)
        used = vq.wait_used(12, 10.0)
        check("throttled: all 12 reads served", used and len(used) == 12 and
              all(r.status_byte() == vc.S_OK for r in reqs))
        s3 = scrape(d)
        thr = s3.get("rosen_throttled_seconds_total", disk="vm1")
        check("throttled: rosen_throttled_seconds_total grew (%.3f s)" % thr, thr > 0.2)
        check("the unthrottled disk waited for nothing", s3.get("rosen_throttled_seconds_total", disk="vm0") == 0)
        check("throttled: nothing in flight after, reads +12",
              s3.get("rosen_inflight_requests", disk="vm1") == 0
              and s3.get("rosen_requests_total", disk="vm1", type="read", status="ok") == 12)
        fe1.close()

        # A second frontend on vm0; the first one is gone.
        with vc.Frontend(d.socks[0], mem_size=4 << 20) as fe2:
            fe2.read(0, 0, 512)
            s4 = scrape(d)
        check("a reconnect: rosen_frontend_connects_total counts 2", s4.get("rosen_frontend_connects_total", disk="vm0") == 2)
        busy = s4.total("rosen_worker_busy_seconds_total")
        check("rosen_worker_busy_seconds_total grew (%.6f s)" % (busy - busy0), busy > busy0)
        bad = hist_matches_requests(s4, "vm0") + hist_matches_requests(s4, "vm1")
        check("histogram counts equal request counts on both disks", not bad, bad)
        check("the daemon stops cleanly", d.stop() == 0)
    finally:
        if d.p.poll() is None:
            d.stop()


# ---- the HTTP endpoint --------------------------------------------------------------------


def proc_net_listen(port):
    """Local addresses (hex, as /proc/net/tcp{,6} write them) listening on port."""
    out = []
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(f).read().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            parts = ln.split()
            addr, p = parts[1].split(":")
            if int(p, 16) == port and parts[3] == "0A":
                out.append(addr)
    return out


def http_checks(build, tmp):
    img = os.path.join(tmp, "h.img")
    with open(img, "wb") as f:
        f.truncate(4 << 20)
    d = Daemon(build, tmp, [(img, None)])
    try:
        check("--metrics-listen PORT: listens on 127.0.0.1 only",
              d.host == "127.0.0.1" and proc_net_listen(d.port) == ["0100007F"], proc_net_listen(d.port))

        # A client that stalls mid-request and one that sends nothing:
        # others are still served, at once; the VM is still served.
        stalled = socket.create_connection(("127.0.0.1", d.port))
        stalled.sendall(b"GET /metr")
        t_stall = time.monotonic()
        silent = socket.create_connection(("127.0.0.1", d.port))
        t0 = time.monotonic()
        try:
            scrape(d)
            ok = True
        except Exception as e:  # noqa: BLE001
            ok = False
            print("    ", e)
        dt = time.monotonic() - t0
        check("a stalled and a silent client: another scrape is served (%.0f ms)" % (dt * 1e3), ok and dt < 1.0)
        with vc.Frontend(d.socks[0], mem_size=4 << 20) as fe:
            st, _, _ = fe.read(0, 0, 4096)
        check("a stalled client: the VM is still served", st == vc.S_OK)
        stalled.settimeout(HTTP_TIMEOUT + 3)
        try:
            gone = stalled.recv(100) == b""
        except (ConnectionResetError, socket.timeout):
            gone = False
        waited = time.monotonic() - t_stall
        check("the stalled client is closed after its deadline (%.1f s)" % waited,
              gone and HTTP_TIMEOUT - 0.5 <= waited <= HTTP_TIMEOUT + 2.5)
        stalled.close()
        silent.close()

        # A flood of idle connections: the oldest make room, scrapes go on.
        flood = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(20)]
        time.sleep(0.1)
        try:
            scrape(d)
            ok = True
        except Exception as e:  # noqa: BLE001
            ok = False
            print("    ", e)
        check("20 idle connections open: a scrape is still served", ok)
        for s in flood:
            s.close()

        code, head, body = http(d.port, b"GET /metrics HTTP/1.0\r\n" + b"X: " + b"a" * 5000 + b"\r\n\r\n")
        check("an oversized request: 431", code == 431, code)
        code, _, _ = http(d.port, b"GET / HTTP/1.1\r\n\r\n")
        check("another path: 404", code == 404, code)
        code, head, _ = http(d.port, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        check("POST: 405 with Allow", code == 405 and "Allow: GET, HEAD" in head, head)
        code, _, _ = http(d.port, b"GARBAGE\r\n\r\n")
        check("a malformed request line: 400", code == 400, code)
        code, head, body = http(d.port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
        m = re.search(r"Content-Length: (\d+)", head)
        check("HEAD: the headers of a GET, no body", code == 200 and m and int(m.group(1)) > 0 and body == b"",
              (code, head, len(body)))
        code, _, body = http(d.port, b"GET /metrics?x=1 HTTP/1.1\r\n\r\n")
        check("a query string is ignored", code == 200 and body.startswith(b"# HELP"))
        check("the daemon stops cleanly with the endpoint", d.stop() == 0)
    finally:
        if d.p.poll() is None:
            d.stop()

    # Another address only when named, with a warning.
    d = Daemon(build, tmp, [(img, None)], listen="0.0.0.0:0")
    try:
        check("--metrics-listen 0.0.0.0:PORT: all addresses, with a warning",
              proc_net_listen(d.port) == ["00000000"] and "not a loopback address" in d.logtext(),
              proc_net_listen(d.port))
    finally:
        d.stop()
    daemon = os.path.join(build, "app", "rosenbridged", "rosenbridged")
    for spec, what in (("localhost:9100", "not a numeric"), ("99999", "0..65535"),
                       ("::1:9100", "[ADDR]:PORT")):
        p = subprocess.run([daemon, "--metrics-listen", spec, "--disk", img, "--socket",
                            os.path.join(tmp, "x.sock")], capture_output=True, text=True, timeout=10)
        check("--metrics-listen %s refused at start" % spec, p.returncode == 2 and what in p.stderr,
              (p.returncode, p.stderr))
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    p = subprocess.run([daemon, "--metrics-listen", str(port), "--disk", img, "--socket",
                        os.path.join(tmp, "y.sock")], capture_output=True, text=True, timeout=10)
    busy.close()
    check("--metrics-listen on a port in use: exits 1 saying so",
          p.returncode == 1 and "cannot listen" in p.stderr, (p.returncode, p.stderr[-300:]))


def checker_self_test():
    """The checker refuses what the format forbids (so its passes mean something)."""
    bad = [
        b"# TYPE a counter\na 1",                                   # no final newline
        b"a 1\n",                                                   # no TYPE
        b"# TYPE a counter\na{x=\"1\"} 1\n# TYPE b gauge\nb 1\na{x=\"2\"} 1\n",  # not together
        b"# TYPE a counter\na{x=\"a\\tb\"} 1\n",                      # bad escape
        b"# TYPE a counter\na{x=\"1\",x=\"2\"} 1\n",                  # label twice
        b"# TYPE a counter\na 1\na 2\n",                            # series twice
        b"# TYPE a counter\na -1\n",                                # negative counter
        b"# TYPE a counter\na one\n",                               # not a number
        b"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        b"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",   # no +Inf
        b"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",  # count != +Inf
        b"# TYPE a counter\n# TYPE a counter\na 1\n",               # TYPE twice
        b"# TYPE a counter\n\na 1\n",                               # empty line
        b"# TYPE a counter\na{x=\"1\",} 1\n",                        # trailing comma
        b"# TYPE a counter\na  1\n",                                # two spaces
    ]
    caught = 0
    for t in bad:
        try:
            parse_exposition(t)
        except FormatError:
            caught += 1
    check("the format checker refuses %d/%d broken texts" % (caught, len(bad)), caught == len(bad))
    good = (b"# HELP a x\n# TYPE a counter\na{x=\"q\\\"\\\\\\n\"} 1.5e3\n"
            b"# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n")
    try:
        f = parse_exposition(good)
        ok = f["a"]["samples"][0][1]["x"] == "q\"\\\n"
    except FormatError as e:
        ok = False
        print("    ", e)
    check("the format checker accepts a valid text and unescapes labels", ok)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    tmp = tempfile.mkdtemp(prefix="rosen-metrics-")
    try:
        checker_self_test()
        for part in (workload_checks, http_checks):
            try:
                part(build, tmp)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                check("%s ran to the end" % part.__name__, False, e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(results)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
