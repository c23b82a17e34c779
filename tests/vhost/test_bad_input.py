#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Bad-input suite for rosenbridged, driven by a hostile vhost-user frontend.

Usage: test_bad_input.py [--daemon PATH] [--only REGEX] [--keep] [--verbose]

Starts rosenbridged on temporary images (8 MiB, filled with a known
pattern) and runs one named test per kind of bad input listed in
shared/reference/vhost-user.md ("Bad input that has broken real
backends"), plus normal I/O in --poll and --event mode and an idle-CPU
check.  Each bad-input test asserts the specific outcome (connection
closed or kept, ack value, status byte, used length), that the daemon
logged a line naming the problem, and afterwards that the daemon is alive,
holds no file descriptor or mapping of the gone frontend, and that a
second, well-behaved frontend can connect and write + read + verify (the
image checked on the host too, against a model of every write made).

Prints "PASS name" / "FAIL name: reason" per test (with the daemon's log
on failure) and ends with "N passed, N failed"; exits 1 on failure.
"""
import argparse
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import vhost_client as vc  # noqa: E402
from vhost_client import (DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, S_IOERR, blk_range,  # noqa: E402
                          S_OK, S_UNSUPP, SECTOR, BlkReq, Conn, Frontend, GuestMemory)

MiB = 1 << 20
IMG_SIZE = 8 * MiB
CAP = IMG_SIZE // SECTOR
QUEUES = 4
HOSTILE_QSIZE = 16
U64 = struct.Struct("<Q")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def pattern(nbytes):
    """Initial image contents: each sector names itself."""
    out = bytearray()
    for s in range(nbytes // SECTOR):
        out += (struct.pack("<QQ", s, 0x5A5A5A5A5A5A5A5A ^ s) * (SECTOR // 16))
    return out


# ---- the daemon and its image ------------------------------------------------------


class Image:
    """The image file and a model of what it must contain."""

    def __init__(self, path, size):
        self.path = path
        self.expect = pattern(size)
        with open(path, "wb") as f:
            f.write(self.expect)

    def read(self, off, n):
        with open(self.path, "rb") as f:
            f.seek(off)
            return f.read(n)

    def update(self, off, data):
        self.expect[off:off + len(data)] = data

    def mismatch(self):
        """None, or where the file differs from the model."""
        with open(self.path, "rb") as f:
            data = f.read()
        if len(data) != len(self.expect):
            return "image is %d bytes, expected %d" % (len(data), len(self.expect))
        if data == self.expect:
            return None
        for off in range(0, len(data), SECTOR):
            if data[off:off + SECTOR] != self.expect[off:off + SECTOR]:
                return "image differs from the expected contents at sector %d" % (off // SECTOR)
        return "image differs"

    def reload(self):
        with open(self.path, "rb") as f:
            self.expect = bytearray(f.read())


class Daemon:
    def __init__(self, binary, workdir, name, extra=(), queues=QUEUES, verbose=False):
        self.name = name
        self.sock = os.path.join(workdir, name + ".sock")
        self.log_path = os.path.join(workdir, name + ".log")
        self.img = Image(os.path.join(workdir, name + ".img"), IMG_SIZE)
        self.queues = queues
        self.readonly = "--readonly" in extra
        self.args = [binary, "--disk", self.img.path, "--socket", self.sock,
                     "--queues", str(queues)] + list(extra)
        if verbose:
            self.args.append("--verbose")
        self.proc = None
        self.qlog = {q: [] for q in range(queues)}
        self.start()

    def start(self):
        self.logf = open(self.log_path, "ab")
        mark = self.mark()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if "serving" in self.log_since(mark):
                break
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %d:\n%s" % (self.name, self.proc.returncode,
                                                               self.log_since(mark)))
            time.sleep(0.01)
        else:
            raise RuntimeError("%s did not start:\n%s" % (self.name, self.log_since(mark)))
        time.sleep(0.05)
        self.idle_fds = vc.proc_fd_count(self.pid)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=5):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode

    def restart(self):
        self.stop(signal.SIGKILL)
        self.img.reload()
        self.start()

    def mark(self):
        self.logf.flush()
        return os.path.getsize(self.log_path)

    def log_since(self, mark):
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")

    def find_log(self, mark, regex, levels=("error", "warn"), timeout=1.5):
        """The first line since `mark` at one of `levels` matching regex."""
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_since(mark).splitlines():
                parts = line.split(None, 2)
                if len(parts) == 3 and parts[1] in levels and rx.search(parts[2]):
                    return line
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def memfd_maps(self):
        return vc.proc_maps_count(self.pid, "/memfd:")

    def pick_queue(self):
        """A queue whose guest-triggered log lines (rate-limited to 10 a
        second per queue by the daemon) still have room: at most 4 cases
        per queue in any 1.2 s, each causing at most 2 lines."""
        while True:
            now = time.monotonic()
            for q in self.qlog:
                self.qlog[q] = [t for t in self.qlog[q] if now - t < 1.2]
            q = min(self.qlog, key=lambda k: len(self.qlog[k]))
            if len(self.qlog[q]) < 4:
                self.qlog[q].append(now)
                return q
            time.sleep(0.05)


# ---- one test case's context ---------------------------------------------------------


class Ctx:
    def __init__(self, daemon):
        self.d = daemon
        self.mark = daemon.mark()
        self.objs = []

    def close_all(self):
        for o in reversed(self.objs):
            try:
                o.close()
            except Exception:
                pass
        self.objs = []

    def keep(self, o):
        self.objs.append(o)
        return o

    def conn(self, negotiate=True, timeout=3.0):
        """A raw connection; negotiated: features, protocol features
        MQ|REPLY_ACK|CONFIG (so acks work)."""
        c = self.keep(Conn(self.d.sock, timeout))
        if negotiate:
            f = c.get_features()
            c.get_protocol_features()
            c.set_protocol_features(0x209)
            c.set_features(f)
        return c

    def mem(self, size=1 * MiB, **kw):
        return self.keep(GuestMemory(size, **kw))

    def frontend(self, **kw):
        kw.setdefault("timeout", 3.0)
        return self.keep(Frontend(self.d.sock, **kw))

    def hostile(self, event_idx=True, indirect=True, size=HOSTILE_QSIZE):
        """A set-up frontend (small rings) and the queue to misuse."""
        fe = self.frontend(queue_size=size, event_idx=event_idx, indirect=indirect,
                           mem_size=4 * MiB)
        return fe, fe.vqs[self.d.pick_queue()]

    def log(self, regex, levels=("error", "warn"), timeout=1.5):
        line = self.d.find_log(self.mark, regex, levels, timeout)
        check(line, "no %s log line matching /%s/" % ("/".join(levels), regex))
        return line

    def closed(self, conn, timeout=2.5):
        check(conn.wait_closed(timeout), "the daemon kept the connection open")

    def still_open(self, conn):
        check(conn.responsive(), "the daemon closed the connection")

    def fds(self):
        return vc.proc_fd_count(self.d.pid)


def chain(vq, descs, wbytes=None, kick=True):
    """Writes a raw chain and makes it available.  descs: [(addr, len,
    flags[, next])]; next is an index into descs (default: the following
    one when NEXT is set) or ("raw", n) for a literal ring index."""
    idx = vq.alloc_desc(len(descs))
    for k, d in enumerate(descs):
        addr, ln, fl = d[:3]
        nk = d[3] if len(d) > 3 else (k + 1 if fl & DESC_F_NEXT else 0)
        nxt = nk[1] if isinstance(nk, tuple) else idx[nk]
        vq.set_desc(idx[k], addr, ln, fl, nxt)
    vq.publish(idx[0], idx, wbytes)
    if kick:
        vq.kick()
    return idx[0]


def expect_used(vq, head, ulen, timeout=2.0):
    u = vq.wait_used(1, timeout)
    check(u, "queue %d: nothing came back in the used ring within %.0f s" % (vq.index, timeout))
    check(u[0] == (head, ulen), "queue %d: used element %r, expected (%d, %d)"
          % (vq.index, u[0], head, ulen))


def expect_nothing_used(vq, wait=0.3):
    u = vq.wait_used(1, wait)
    check(not u, "queue %d: a used element came back: %r" % (vq.index, u))


# ---- the runner -------------------------------------------------------------------------


class Suite:
    def __init__(self, args):
        self.args = args
        self.passed = 0
        self.failed = 0
        self.only = re.compile(args.only) if args.only else None
        self.workdir = tempfile.mkdtemp(prefix="rb-vhost-")
        self.daemons = []

    def daemon(self, name, extra=()):
        d = Daemon(self.args.daemon, self.workdir, name, extra, verbose=self.args.verbose)
        self.daemons.append(d)
        return d

    def close(self):
        for d in self.daemons:
            d.stop()
        if not self.args.keep:
            for f in os.listdir(self.workdir):
                os.unlink(os.path.join(self.workdir, f))
            os.rmdir(self.workdir)
        else:
            print("# kept " + self.workdir)

    def second_client(self, d):
        """A well-behaved frontend writes (unless read-only), reads back on
        another queue and verifies; the host checks the whole image."""
        with Frontend(d.sock, timeout=3.0, mem_size=4 * MiB) as fe:
            sector = random.randrange(0, CAP - 16)
            qa, qb = 0, fe.device_queues - 1
            if d.readonly:
                data = bytes(d.img.expect[sector * SECTOR:(sector + 16) * SECTOR])
            else:
                data = os.urandom(16 * SECTOR)
                st, ulen = fe.write(qa, sector, data)
                check((st, ulen) == (S_OK, 1), "second client: write gave status %d, used len %d"
                      % (st, ulen))
                d.img.update(sector * SECTOR, data)
            st, ulen, got = fe.read(qb, sector, len(data))
            check((st, ulen) == (S_OK, len(data) + 1), "second client: read gave status %d, used len %d"
                  % (st, ulen))
            check(got == data, "second client: read back different data")
        bad = d.img.mismatch()
        check(bad is None, "second client: " + str(bad))

    def no_leftovers(self, d):
        """Once the frontends are gone, the daemon holds as many fds as
        when it started and no guest memory mapping."""
        deadline = time.monotonic() + 2.0
        while True:
            n, m = vc.proc_fd_count(d.pid), d.memfd_maps()
            if n == d.idle_fds and m == 0:
                return
            if time.monotonic() > deadline:
                raise Failure("after the frontend left the daemon holds %d fds (%d when idle) "
                              "and %d guest memory mappings" % (n, d.idle_fds, m))
            time.sleep(0.02)

    def run(self, name, fn, d, second=True):
        if self.only and not self.only.search(name):
            return
        ctx = Ctx(d)
        reason = None
        try:
            try:
                fn(ctx)
            finally:
                ctx.close_all()
            check(d.alive(), "the daemon died (exit status %s)" % d.proc.returncode)
            self.no_leftovers(d)
            if second:
                self.second_client(d)
        except Failure as e:
            reason = str(e)
        except Exception as e:
            reason = "%s: %s (%s)" % (type(e).__name__, e,
                                      traceback.extract_tb(e.__traceback__)[-1].lineno)
        if reason is None:
            self.passed += 1
            print("PASS " + name, flush=True)
            return
        self.failed += 1
        print("FAIL %s: %s" % (name, reason), flush=True)
        lines = d.log_since(ctx.mark).splitlines()
        for line in lines[-20:]:
            print("    | " + line)
        # Leave a working daemon for the next test.
        ok = d.alive()
        if ok:
            try:
                self.second_client(d)
            except Exception:
                ok = False
        if not ok:
            print("    (restarting %s)" % d.name, flush=True)
            d.restart()


# ==== control plane ==========================================================================


def hdr_case(flags=vc.FLAG_VERSION, size=None, payload=b"", regex=""):
    def t(c):
        conn = c.conn(negotiate=False)
        conn.send(vc.GET_FEATURES, payload, flags=flags, size=size)
        c.closed(conn)
        c.log(regex)
    return t


def t_truncated_payload_close(c):
    conn = c.conn()
    conn.send_raw(struct.pack("<III", vc.SET_FEATURES, 1, 8) + b"\0\0\0\0")
    conn.sock.shutdown(socket.SHUT_WR)
    c.closed(conn)
    c.log(r"request 2: payload of 8 bytes not received")


def t_truncated_payload_stall(c):
    conn = c.conn()
    t0 = time.monotonic()
    conn.send_raw(struct.pack("<III", vc.SET_VRING_ADDR, 1, 40) + bytes(10))
    c.closed(conn, timeout=3.0)
    dt = time.monotonic() - t0
    check(0.5 < dt < 2.9, "closed after %.2f s (expected about 1 s)" % dt)
    c.log(r"request 9: payload of 40 bytes not received")


def t_truncated_header_stall(c):
    conn = c.conn()
    conn.send_raw(struct.pack("<III", vc.GET_FEATURES, 1, 0)[:6])
    c.closed(conn, timeout=3.0)
    c.log(r"message header truncated after 6 of 12 bytes")


def t_truncated_header_close(c):
    conn = c.conn()
    conn.send_raw(struct.pack("<III", vc.GET_FEATURES, 1, 0)[:7])
    conn.sock.shutdown(socket.SHUT_WR)
    c.closed(conn)
    c.log(r"message header truncated after 7 of 12 bytes")


def mem_case(regions, nfds=None, memsize=1 * MiB, nregions=None, payload_cut=None, regex="SET_MEM_TABLE",
             fd_kind="memfd"):
    def t(c):
        conn = c.conn()
        m = c.mem(memsize)
        fds = []
        for _ in range(len(regions) if nfds is None else nfds):
            if fd_kind == "memfd":
                fds.append(m.fd)
            elif fd_kind == "unsealable-memfd":
                # A memfd created without MFD_ALLOW_SEALING could be shrunk
                # under the daemon at any time.
                e = os.memfd_create("unsealable", os.MFD_CLOEXEC)
                os.ftruncate(e, memsize)
                c.keep(FdCloser(e))
                fds.append(e)
            else:
                e = os.eventfd(0, os.EFD_CLOEXEC)
                c.keep(FdCloser(e))
                fds.append(e)
        payload = vc.mem_table_payload(regions, nregions)
        if payload_cut is not None:
            payload = payload[:payload_cut]
        conn.send(vc.SET_MEM_TABLE, payload, fds, need_reply=True)
        c.closed(conn)
        c.log(regex)
    return t


class FdCloser:
    def __init__(self, fd):
        self.fd = fd

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


G, U = vc.GPA_BASE, vc.UVA_BASE
REG = (G, MiB, U, 0)
M64 = (1 << 64) - 1


def t_mem_table_repeated(c):
    fe = c.frontend(mem_size=4 * MiB)
    first = os.urandom(4096)
    st, _ = fe.write(0, 100, first)
    check(st == S_OK, "first write failed")
    c.d.img.update(100 * SECTOR, first)
    f1, m1 = c.fds(), c.d.memfd_maps()
    for i in range(60):
        fe.conn.set_mem_table([fe.mem.region()], [fe.mem.fd])
    f2, m2 = c.fds(), c.d.memfd_maps()
    check(f2 == f1, "fd count went from %d to %d after 60 SET_MEM_TABLE" % (f1, f2))
    check(m2 == m1, "guest memory mappings went from %d to %d after 60 SET_MEM_TABLE" % (m1, m2))
    data = os.urandom(8192)
    for q in range(len(fe.vqs)):
        st, _ = fe.write(q, 200 + 16 * q, data)
        check(st == S_OK, "write on queue %d after remapping: status %d" % (q, st))
        st, _, got = fe.read(q, 200 + 16 * q, len(data))
        check(st == S_OK and got == data, "read back on queue %d after remapping" % q)
        c.d.img.update((200 + 16 * q) * SECTOR, data)
    st, _, got = fe.read(1, 100, 4096)
    check(st == S_OK and got == first, "data written before the remapping reads back wrong")


def t_mem_table_two_regions(c):
    """Valid: two regions of one memfd (mmap_offset), data in the second."""
    conn = c.conn()
    m = c.mem(4 * MiB)
    g2 = 0x40000000
    u2 = 0x7F6B00000000
    conn.set_mem_table([(G, 2 * MiB, U, 0), (g2, 2 * MiB, u2, 2 * MiB)], [m.fd, m.fd])
    # Rings in region 0 (allocated from offset 0), data in region 1.
    vq = vc.VirtQueue(m, 0, 16, True)
    c.keep(vq)
    conn.set_vring_fd(vc.SET_VRING_CALL, 0, vq.call_fd)
    conn.set_vring_num(0, 16)
    conn.set_vring_base(0, 0)
    conn.set_vring_addr(0, *vq.uvas())
    conn.set_vring_fd(vc.SET_VRING_KICK, 0, vq.kick_fd)
    conn.set_vring_enable(0, True)
    data = os.urandom(4096)
    off = 2 * MiB + 8192          # memfd offset inside region 1
    m.mm[off:off + 4096] = data
    hdr, st = G + 0x100000, G + 0x100100
    m.write(hdr, vc.BLK_HDR.pack(vc.T_OUT, 0, 300))
    m.write(st, b"\xff")
    head = chain(vq, [(hdr, 16, DESC_F_NEXT), (g2 + 8192, 4096, DESC_F_NEXT), (st, 1, DESC_F_WRITE)], 1)
    expect_used(vq, head, 1)
    check(m.read(st, 1)[0] == S_OK, "status %d" % m.read(st, 1)[0])
    c.d.img.update(300 * SECTOR, data)
    check(c.d.img.read(300 * SECTOR, 4096) == data, "image does not hold the data")


def vring_state_case(req, index, num, regex, size=8):
    def t(c):
        conn = c.conn()
        conn.send(req, vc.VRING_STATE.pack(index, num)[:size], need_reply=True)
        c.closed(conn)
        c.log(regex)
    return t


def kick_case(value, nfds, regex, req=vc.SET_VRING_KICK):
    def t(c):
        conn = c.conn()
        fds = []
        for _ in range(nfds):
            e = os.eventfd(0, os.EFD_CLOEXEC)
            c.keep(FdCloser(e))
            fds.append(e)
        conn.send(req, U64.pack(value), fds, need_reply=True)
        c.closed(conn)
        c.log(regex)
    return t


def setup_ring_raw(c, m, conn, index=0, size=16, addrs=None, last_raw=True):
    """NUM, BASE, ADDR, KICK acked; ENABLE sent raw (the ring starts then)."""
    vq = c.keep(vc.VirtQueue(m, index, size, True))
    conn.set_vring_fd(vc.SET_VRING_CALL, index, vq.call_fd)
    conn.set_mem_table([m.region()], [m.fd])
    conn.set_vring_num(index, size)
    conn.set_vring_base(index, 0)
    conn.set_vring_addr(index, *(addrs or vq.uvas()))
    conn.set_vring_fd(vc.SET_VRING_KICK, index, vq.kick_fd)
    if last_raw:
        conn.send(vc.SET_VRING_ENABLE, vc.VRING_STATE.pack(index, 1), need_reply=True)
    else:
        conn.set_vring_enable(index, True)
    return vq


def ring_addr_case(which, how):
    """which: desc/avail/used; how: outside (start outside memory) or
    crossing (starts inside, ends past the region end)."""
    sizes = {"desc": 16 * 16, "avail": 6 + 2 * 16, "used": 6 + 8 * 16}

    def t(c):
        conn = c.conn()
        m = c.mem(1 * MiB)
        probe = vc.VirtQueue(m, 0, 16, True)
        c.keep(probe)
        a = {"desc": probe.desc, "used": probe.used, "avail": probe.avail}
        if how == "outside":
            a[which] = m.end + 0x10000
        else:
            a[which] = m.end - (sizes[which] // 2 & ~15)
        uvas = (m.uva(a["desc"]), m.uva(a["used"]), m.uva(a["avail"]))
        setup_ring_raw(c, m, conn, addrs=uvas)
        c.closed(conn)
        c.log(r"ring 0: %s table at 0x[0-9a-f]+ is not inside guest memory"
              % {"desc": "descriptor", "avail": "avail", "used": "used"}[which])
    return t


def t_ring_addr_end_exact(c):
    """Valid boundary: each ring part may end exactly at the region end."""
    fe = c.frontend(setup=False, mem_size=1 * MiB)
    fe.negotiate()
    m = fe.mem
    n = 16
    # desc table last, avail ring ending at the end; used ring 4-aligned
    # as near the end as it can be (its size is 2 mod 4).
    vq = vc.VirtQueue(m, 0, n, fe.event_idx)
    fe.vqs.append(vq)
    vq.avail = m.end - (6 + 2 * n)
    vq.desc = m.end - 4096 - 16 * n
    vq.used = (m.end - 8192 - (6 + 8 * n)) & ~3
    for a, ln in ((vq.avail, 6 + 2 * n), (vq.desc, 16 * n), (vq.used, 6 + 8 * n)):
        m.write(a, bytes(ln))
    fe.set_mem()
    fe.conn.set_vring_fd(vc.SET_VRING_CALL, 0, vq.call_fd)
    try:
        fe.start_ring(vq)
    except vc.Closed:
        raise Failure("a ring whose avail ring ends exactly at the region end was refused")
    data = os.urandom(1024)
    st, _ = fe.write(0, 400, data)
    check(st == S_OK, "write status %d" % st)
    c.d.img.update(400 * SECTOR, data)
    st, _, got = fe.read(0, 400, 1024)
    check(st == S_OK and got == data, "read back")


def t_ring_misaligned(c):
    conn = c.conn()
    m = c.mem(1 * MiB)
    probe = c.keep(vc.VirtQueue(m, 0, 16, True))
    uvas = (m.uva(probe.desc + 8), m.uva(probe.used), m.uva(probe.avail))
    setup_ring_raw(c, m, conn, addrs=uvas)
    c.closed(conn)
    c.log(r"ring 0: device refused to start it")


def config_case(offset, size, data_len, regex=r"GET_CONFIG"):
    def t(c):
        conn = c.conn()
        conn.send(vc.GET_CONFIG, vc.CONFIG_HDR.pack(offset, size, 0) + bytes(data_len))
        c.closed(conn)
        c.log(regex)
    return t


def t_get_config_valid(c):
    conn = c.conn()
    cfg = conn.get_config(0, 57)     # what QEMU 7.2 asks
    cap, = struct.unpack_from("<Q", cfg, 0)
    seg_max, = struct.unpack_from("<I", cfg, 12)
    blk_size, = struct.unpack_from("<I", cfg, 20)
    nq, = struct.unpack_from("<H", cfg, 34)
    check(cap == CAP, "capacity %d, expected %d" % (cap, CAP))
    check(nq == c.d.queues, "num_queues %d" % nq)
    check(blk_size == 512 and seg_max >= 1, "blk_size %d seg_max %d" % (blk_size, seg_max))
    tail = conn.get_config(200, 56)  # inside the 256-byte space, past the struct
    check(tail == bytes(56), "config bytes past the struct are not zero")
    c.still_open(conn)


def t_unknown_request(c):
    conn = c.conn()
    a = conn.ack(99, b"\1\2\3\4")
    check(a == 1, "ack %d, expected 1 (refused)" % a)
    conn.send(98)           # no NEED_REPLY: no answer, still fine
    c.still_open(conn)
    c.log(r"request 99 is not supported")


def t_set_log_base(c):
    conn = c.conn()
    m = c.mem(64 * 1024)
    f0 = c.fds()
    # mmap_size + mmap_offset overflows: must not be acted on at all.
    a = conn.ack(vc.SET_LOG_BASE, struct.pack("<QQ", M64 - 4095, 8192), [m.fd])
    check(a == 1, "ack %d, expected 1 (refused)" % a)
    c.still_open(conn)
    check(c.fds() == f0, "the log fd was kept (%d fds, %d before)" % (c.fds(), f0))
    c.log(r"request 6 is not supported")


def t_extra_fds_no_fd_message(c):
    conn = c.conn()
    fds = [c.keep(FdCloser(os.eventfd(0, os.EFD_CLOEXEC))).fd for _ in range(3)]
    f0 = c.fds()
    conn.send(vc.GET_FEATURES, b"", fds)
    conn.recv_reply(vc.GET_FEATURES)
    c.still_open(conn)
    check(c.fds() == f0, "unexpected fds were kept (%d fds, %d before)" % (c.fds(), f0))
    c.log(r"request 1 carried 3 unexpected file descriptors")


def t_nine_fds(c):
    conn = c.conn()
    m = c.mem(64 * 1024)
    conn.send(vc.SET_MEM_TABLE, vc.mem_table_payload([(G, 65536, U, 0)] * 8, 9)[:8 + 8 * 32],
              [m.fd] * 9)
    c.closed(conn)
    c.log(r"more than 8 file descriptors")


def t_set_features_unoffered(c):
    conn = c.conn(negotiate=False)
    f = conn.get_features()
    conn.send(vc.SET_FEATURES, U64.pack(f | (1 << 34)))
    c.closed(conn)
    c.log(r"SET_FEATURES: .*never offered")


def t_set_features_short(c):
    conn = c.conn(negotiate=False)
    conn.send(vc.SET_FEATURES, b"\0" * 4)
    c.closed(conn)
    c.log(r"SET_FEATURES: payload of 4 bytes")


def t_vring_addr_index(c):
    conn = c.conn()
    conn.send(vc.SET_VRING_ADDR, vc.VRING_ADDR.pack(QUEUES, 0, 0, 0, 0, 0))
    c.closed(conn)
    c.log(r"SET_VRING_ADDR: ring %d does not exist" % QUEUES)


def t_set_protocol_features_unoffered(c):
    conn = c.conn(negotiate=False)
    conn.get_features()
    conn.send(vc.SET_PROTOCOL_FEATURES, U64.pack(0x209 | (1 << 13)))
    c.closed(conn)
    c.log(r"SET_PROTOCOL_FEATURES: .*never offered")


def t_refused_while_running(c):
    fe = c.frontend(queue_size=16, mem_size=4 * MiB)
    conn = fe.conn
    vq = fe.vqs[0]
    a = conn.ack(vc.SET_VRING_NUM, vc.VRING_STATE.pack(0, 32))
    check(a == 1, "SET_VRING_NUM on a running ring: ack %d, expected 1" % a)
    c.log(r"ring 0: SET_VRING_NUM while the ring runs")
    a = conn.ack(vc.SET_VRING_BASE, vc.VRING_STATE.pack(0, 5))
    check(a == 1, "SET_VRING_BASE on a running ring: ack %d, expected 1" % a)
    a = conn.ack(vc.SET_VRING_ADDR, vc.VRING_ADDR.pack(0, 0, *vq.uvas(), 0))
    check(a == 1, "SET_VRING_ADDR on a running ring: ack %d, expected 1" % a)
    c.log(r"ring 0: SET_VRING_ADDR while the ring runs")
    data = os.urandom(2048)
    st, _ = fe.write(0, 500, data)
    check(st == S_OK, "the ring stopped working: status %d" % st)
    c.d.img.update(500 * SECTOR, data)


def t_set_config_refused(c):
    conn = c.conn()
    a = conn.ack(vc.SET_CONFIG, vc.CONFIG_HDR.pack(32, 1, 0) + b"\1")
    check(a == 1, "ack %d, expected 1 (nothing is writable)" % a)
    c.still_open(conn)
    c.log(r"SET_CONFIG")


def t_repeated_call_kick(c):
    fe = c.frontend(queue_size=16, mem_size=4 * MiB)
    vq = fe.vqs[0]
    f1 = c.fds()
    for i in range(50):
        for req in (vc.SET_VRING_CALL, vc.SET_VRING_KICK):
            e = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            fe.conn.set_vring_fd(req, 0, e)
            if i == 49:  # the last ones stay in use
                old = vq.call_fd if req == vc.SET_VRING_CALL else vq.kick_fd
                os.close(old)
                if req == vc.SET_VRING_CALL:
                    vq.call_fd = e
                else:
                    vq.kick_fd = e
            else:
                os.close(e)
    f2 = c.fds()
    check(f2 == f1, "fd count went from %d to %d after 50 SET_VRING_CALL + 50 SET_VRING_KICK"
          % (f1, f2))
    # ERR fds are not used: they must not be kept either.
    for i in range(20):
        e = os.eventfd(0, os.EFD_CLOEXEC)
        fe.conn.set_vring_fd(vc.SET_VRING_ERR, 0, e)
        os.close(e)
    check(c.fds() == f1, "SET_VRING_ERR fds were kept (%d fds, %d before)" % (c.fds(), f1))
    data = os.urandom(1024)
    st, _ = fe.write(0, 600, data, check_call=True)
    check(st == S_OK, "write with the last kick/call fds: status %d" % st)
    c.d.img.update(600 * SECTOR, data)


def t_repeated_vring_num(c):
    """Stop/resize/restart a ring many times (GET_VRING_BASE, NUM, ...):
    no fd or memory growth, and it serves at every size."""
    fe = c.frontend(queue_size=16, mem_size=8 * MiB)
    f1 = c.fds()
    rss = []
    for i, size in enumerate([16, 32, 64, 128, 256] * 8):
        base = fe.conn.get_vring_base(0)
        old = fe.vqs[0]
        check(base == old.avail_idx, "GET_VRING_BASE %d, driver made %d available"
              % (base, old.avail_idx))
        vq = vc.VirtQueue(fe.mem, 0, size, fe.event_idx)
        vq.kick_fd, old.kick_fd = old.kick_fd, vq.kick_fd
        vq.call_fd, old.call_fd = old.call_fd, vq.call_fd
        old.close()
        fe.vqs[0] = vq
        vq.resume(base)
        fe.start_ring(vq, base)
        data = os.urandom(512)
        st, _ = fe.write(0, 700 + i, data)
        check(st == S_OK, "write at ring size %d: status %d" % (size, st))
        c.d.img.update((700 + i) * SECTOR, data)
        if i % 5 == 4:
            with open("/proc/%d/status" % c.d.pid) as f:
                rss.append(int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)))
    check(c.fds() == f1, "fd count went from %d to %d" % (f1, c.fds()))
    # (ASan's quarantine holds freed memory: RSS says nothing there.)
    if not vc.proc_maps_count(c.d.pid, "libasan"):
        check(rss[-1] - rss[1] < 8 * 1024, "RSS grew from %d to %d KiB over the cycles"
              % (rss[1], rss[-1]))


def t_disconnect_mid_io(c):
    fe = c.frontend(queue_size=256, mem_size=40 * MiB)
    n = 0
    for q in range(len(fe.vqs)):
        for k in range(48):
            sector = random.randrange(0, CAP - 128)
            if k % 2:
                r = BlkReq(fe.mem, vc.T_IN, sector, in_len=64 * 1024)
            else:   # rewrite what is there: the image stays as modelled
                r = BlkReq(fe.mem, vc.T_OUT, sector,
                           data=bytes(c.d.img.expect[sector * SECTOR:sector * SECTOR + 64 * 1024]))
            vq = fe.vqs[q]
            vq.add_chain(r.segs)
            n += 1
        fe.vqs[q].kick()
    fe.close()      # the frontend vanishes with the requests in flight
    c.log(r"frontend disconnected", levels=("info", "warn", "error"))


def t_get_vring_base_drains(c):
    n = 80
    fe = c.frontend(queue_size=256, mem_size=40 * MiB)
    vq = fe.vqs[1]
    for k in range(n):
        r = BlkReq(fe.mem, vc.T_IN, random.randrange(0, CAP - 128), in_len=64 * 1024)
        vq.add_chain(r.segs)
    vq.kick()
    base = fe.conn.get_vring_base(1)
    used = vq.used_idx()
    check(used == base, "GET_VRING_BASE replied %d while used idx was %d: in-flight requests "
          "were not drained" % (base, used))
    # The rest is served once the ring runs again from that base.
    vq.wait_used(base, 0.5)
    fe.start_ring(vq, base)
    vq.wait_used(n - base, 5.0)
    check(vq.last_used == n, "after the restart %d of %d requests came back" % (vq.last_used, n))


def t_blocking_saturated_call_fd(c):
    """A frontend's call eventfd in blocking mode with its counter at the
    maximum: a worker that writes it must not block (and hang every VM)."""
    fe = c.frontend(setup=False, mem_size=4 * MiB)
    fe.negotiate()
    fe.set_mem()
    vq = vc.VirtQueue(fe.mem, 0, 16, fe.event_idx)
    fe.vqs.append(vq)
    bad = os.eventfd(0, os.EFD_CLOEXEC)
    os.eventfd_write(bad, 0xFFFFFFFFFFFFFFFE)
    os.close(vq.call_fd)
    vq.call_fd = bad
    fe.conn.set_vring_fd(vc.SET_VRING_CALL, 0, bad)
    fe.start_ring(vq)
    for i in range(3):
        st, _ = fe.write(0, 800 + i, bytes(512))
        check(st == S_OK, "write status %d" % st)
        c.d.img.update((800 + i) * SECTOR, bytes(512))
    fe.close()
    # The control thread stops the ring, which needs the worker.
    with Frontend(c.d.sock, timeout=3.0, mem_size=4 * MiB) as fe2:
        st, _ = fe2.write(1, 810, bytes(512))
        check(st == S_OK, "the next frontend's write failed")
        c.d.img.update(810 * SECTOR, bytes(512))


def kick_fd_spin_case(kind):
    """A kick fd that stays readable forever (a pipe whose writer is
    closed; a semaphore-mode eventfd with a huge count) must not keep a
    worker spinning; the other queues keep working."""
    def t(c):
        fe = c.frontend(setup=False, mem_size=4 * MiB)
        fe.negotiate()
        fe.set_mem()
        for i in range(c.d.queues):
            vq = vc.VirtQueue(fe.mem, i, 16, fe.event_idx)
            fe.vqs.append(vq)
            fe.conn.set_vring_fd(vc.SET_VRING_CALL, i, vq.call_fd)
        vq = fe.vqs[0]
        os.close(vq.kick_fd)
        if kind == "pipe":
            r, w = os.pipe2(os.O_CLOEXEC)
            os.close(w)
            vq.kick_fd = r
        else:
            vq.kick_fd = os.eventfd(0, os.EFD_SEMAPHORE | os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            os.eventfd_write(vq.kick_fd, 1 << 62)
        for q in fe.vqs:
            fe.start_ring(q)
        time.sleep(0.2)
        t0, w0 = vc.proc_cpu_ticks(c.d.pid), time.monotonic()
        time.sleep(1.0)
        t1, w1 = vc.proc_cpu_ticks(c.d.pid), time.monotonic()
        cpu = (t1 - t0) / CLK_TCK
        check(cpu < 0.1 * (w1 - w0), "the daemon used %.2f s of CPU in %.2f s with nothing to do"
              % (cpu, w1 - w0))
        data = os.urandom(1024)
        st, _ = fe.write(1, 1700, data, check_call=True)
        check(st == S_OK, "queue 1: status %d" % st)
        c.d.img.update(1700 * SECTOR, data)
        if kind != "pipe":   # this one can still be kicked
            st, _, got = fe.read(0, 1700, 1024)
            check(st == S_OK and got == data, "queue 0 read back")
    return t


def t_memfd_shrunk_after_mapping(c):
    """The frontend shrinks its memfd after SET_MEM_TABLE: touching the
    lost pages raises SIGBUS in the daemon unless it guards against it."""
    fe = c.frontend(queue_size=16, mem_size=4 * MiB)
    st, _ = fe.write(0, 900, bytes(512))
    check(st == S_OK, "first write")
    c.d.img.update(900 * SECTOR, bytes(512))
    vq = fe.vqs[0]
    r = BlkReq(fe.mem, vc.T_OUT, 901, data=bytes(512))
    data_off = fe.mem.off(r.data)
    head = vq.add_chain(r.segs)
    # Drop everything past the rings (the data buffer lives there).
    try:
        os.ftruncate(fe.mem.fd, data_off & ~4095)
    except PermissionError:
        # The memory file is sealed against shrinking (the daemon insists
        # on it): the request is an ordinary write and must complete.
        os.eventfd_write(vq.kick_fd, 1)
        expect_used(vq, head, 1)
        c.d.img.update(901 * SECTOR, bytes(512))
        return
    fe.mem.unmap()
    os.eventfd_write(vq.kick_fd, 1)
    time.sleep(0.3)
    check(c.d.alive(), "the daemon died (SIGBUS) when the frontend shrank its memory file")


# ==== data plane =================================================================================


def bad_chain_case(build, regex, wlen=None, **hk):
    """build(fe, vq) -> (head, status_gpa); the chain must come back with
    used len 0, its status byte untouched, and a warning logged."""
    def t(c):
        fe, vq = c.hostile(**hk)
        head, status = build(fe, vq)
        expect_used(vq, head, 0)
        if status is not None:
            check(fe.mem.read(status, 1)[0] == 0xFF, "status byte of a rejected chain was written")
        c.log(regex)
        # The queue keeps serving.
        data = os.urandom(512)
        st, _ = fe.write(vq.index, 1000, data)
        check(st == S_OK, "the queue stopped serving after the bad chain")
        c.d.img.update(1000 * SECTOR, data)
    return t


def b_cross_region(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0)
    return chain(vq, [(r.hdr, 16, DESC_F_NEXT), (fe.mem.end - 256, 512, DESC_F_WRITE | DESC_F_NEXT),
                      (r.status, 1, DESC_F_WRITE)]), r.status


def b_zero_len_bad_addr(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0, in_len=512)
    return chain(vq, [(r.hdr, 16, DESC_F_NEXT), (0xDEAD00000000, 0, DESC_F_NEXT),
                      (r.data, 512, DESC_F_WRITE | DESC_F_NEXT), (r.status, 1, DESC_F_WRITE)]), r.status


def b_self_loop(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0, in_len=512)
    return chain(vq, [(r.hdr, 16, DESC_F_NEXT, 1), (r.data, 512, DESC_F_WRITE | DESC_F_NEXT, 1)]), None


def b_two_cycle(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0, in_len=512)
    return chain(vq, [(r.hdr, 16, DESC_F_NEXT, 1), (r.data, 512, DESC_F_WRITE | DESC_F_NEXT, 2),
                      (r.status, 1, DESC_F_WRITE | DESC_F_NEXT, 1)]), r.status


def b_longer_than_queue(fe, vq):
    # Every descriptor of the ring, the last pointing back to the first.
    r = BlkReq(fe.mem, vc.T_IN, 0)
    descs = [(r.hdr, 16, DESC_F_NEXT)]
    for k in range(1, vq.size):
        descs.append((r.status, 1, DESC_F_WRITE | DESC_F_NEXT, (k + 1) % vq.size))
    return chain(vq, descs), None


def b_next_out_of_ring(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0)
    return chain(vq, [(r.hdr, 16, DESC_F_NEXT, ("raw", vq.size + 3)), (r.status, 1, DESC_F_WRITE)]), r.status


def indirect_table(fe, entries):
    t = fe.mem.alloc_data(16 * max(len(entries), 1), 16)
    fe.mem.write(t, b"".join(vc.DESC.pack(*e) for e in entries))
    return t


def std_entries(r, data_len=512, data_gpa=None):
    return [(r.hdr, 16, DESC_F_NEXT, 1),
            (r.data if data_gpa is None else data_gpa, data_len, DESC_F_WRITE | DESC_F_NEXT, 2),
            (r.status, 1, DESC_F_WRITE, 0)]


def b_nested_indirect(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0, in_len=512)
    inner = indirect_table(fe, std_entries(r))
    outer = indirect_table(fe, [(r.hdr, 16, DESC_F_NEXT, 1), (inner, 48, DESC_F_INDIRECT, 0)])
    return chain(vq, [(outer, 32, DESC_F_INDIRECT)]), r.status


def b_indirect_with_next(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0, in_len=512)
    t = indirect_table(fe, std_entries(r))
    return chain(vq, [(t, 48, DESC_F_INDIRECT | DESC_F_NEXT), (r.status, 1, DESC_F_WRITE)]), r.status


def b_indirect_len_not_16(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0, in_len=512)
    t = indirect_table(fe, std_entries(r))
    return chain(vq, [(t, 40, DESC_F_INDIRECT)]), r.status


def b_indirect_cross_region(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0, in_len=512)
    t = fe.mem.end - 32          # 2 entries fit, the third is past the end
    fe.mem.write(t, b"".join(vc.DESC.pack(*e) for e in std_entries(r)[:2]))
    return chain(vq, [(t, 48, DESC_F_INDIRECT)]), r.status


def b_indirect_too_long(fe, vq):
    # 300 linked entries: more segments than a chain may have.
    r = BlkReq(fe.mem, vc.T_IN, 0, in_len=512)
    ents = [(r.hdr, 16, DESC_F_NEXT, 1)]
    for k in range(1, 299):
        ents.append((r.data, 512, DESC_F_WRITE | DESC_F_NEXT, k + 1))
    ents.append((r.status, 1, DESC_F_WRITE, 0))
    return chain(vq, [(indirect_table(fe, ents), 16 * 300, DESC_F_INDIRECT)]), r.status


def b_indirect_loop(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0, in_len=512)
    t = indirect_table(fe, [(r.hdr, 16, DESC_F_NEXT, 1), (r.data, 512, DESC_F_WRITE | DESC_F_NEXT, 0)])
    return chain(vq, [(t, 32, DESC_F_INDIRECT)]), None


def b_indirect_not_negotiated(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0, in_len=512)
    t = indirect_table(fe, std_entries(r))
    return chain(vq, [(t, 48, DESC_F_INDIRECT)]), r.status


def b_write_before_read(fe, vq):
    r = BlkReq(fe.mem, vc.T_OUT, 0, data=bytes(512))
    return chain(vq, [(r.hdr, 16, DESC_F_NEXT), (r.status, 1, DESC_F_WRITE | DESC_F_NEXT),
                      (r.data, 512, 0)]), r.status


def b_no_status(fe, vq):
    r = BlkReq(fe.mem, vc.T_OUT, 0, data=bytes(512))
    return chain(vq, [(r.hdr, 16, DESC_F_NEXT), (r.data, 512, 0)]), r.status


def t_too_many_segments(c):
    """seg_max: 254 data segments are served, 255 are refused."""
    fe, vq = c.hostile()
    for nseg, ok in ((254, True), (255, False)):
        r = BlkReq(fe.mem, vc.T_IN, 0, in_len=512 * nseg)
        ents = [(r.hdr, 16, DESC_F_NEXT, 1)]
        for k in range(nseg):
            ents.append((r.data + 512 * k, 512, DESC_F_WRITE | DESC_F_NEXT, k + 2))
        ents.append((r.status, 1, DESC_F_WRITE, 0))
        head = chain(vq, [(indirect_table(fe, ents), 16 * len(ents), DESC_F_INDIRECT)])
        if ok:
            expect_used(vq, head, 512 * nseg + 1)
            check(r.status_byte() == S_OK, "%d segments: status %d" % (nseg, r.status_byte()))
            check(r.data_in() == bytes(c.d.img.expect[:512 * nseg]), "%d segments: wrong data" % nseg)
        else:
            expect_used(vq, head, 0)
    c.log(r"256")


def ring_broken_case(kind):
    def t(c):
        fe, vq = c.hostile()
        data = os.urandom(512)
        st, _ = fe.write(vq.index, 1100, data)       # one good request first
        check(st == S_OK, "first write")
        c.d.img.update(1100 * SECTOR, data)
        before = vq.avail_idx
        if kind == "avail_jump":
            vq.set_avail_idx(before + vq.size + 1)
        else:
            r = BlkReq(fe.mem, vc.T_IN, 0, in_len=512)
            i = vq.alloc_desc(1)
            vq.set_desc(i[0], r.hdr, 16)
            vq.publish(vq.size + 3, [], None)
        vq.kick()
        c.log(r"queue %d: ring is corrupt" % vq.index)
        expect_nothing_used(vq)
        # Another queue of the same device still works.
        other = (vq.index + 1) % len(fe.vqs)
        data = os.urandom(1024)
        st, _ = fe.write(other, 1110, data)
        check(st == S_OK, "queue %d stopped working too" % other)
        c.d.img.update(1110 * SECTOR, data)
        st, _, got = fe.read(other, 1110, 1024)
        check(st == S_OK and got == data, "read on queue %d" % other)
        # The broken ring takes nothing more, even valid requests.
        vq.set_avail_idx(before)
        vq.avail_idx = before
        vq.outstanding = {}
        vq.free = list(range(vq.size))
        r = BlkReq(fe.mem, vc.T_OUT, 1120, data=bytes(512))
        vq.add_chain(r.segs)
        vq.kick()
        expect_nothing_used(vq, 0.2)
        # Reset the ring (as a driver reset does): it works again.
        base = fe.conn.get_vring_base(vq.index)
        check(base == before, "GET_VRING_BASE %d, expected %d" % (base, before))
        vq.resume(base)
        fe.start_ring(vq, base)
        data = os.urandom(512)
        st, _ = fe.write(vq.index, 1130, data)
        check(st == S_OK, "the ring does not work after a reset")
        c.d.img.update(1130 * SECTOR, data)
    return t


def status_case(build, status, ulen, regex, untouched=True, daemon_attr=None):
    """build(fe, vq) -> (head, BlkReq): the request must complete with
    `status` and used len `ulen`, logged; the image untouched."""
    def t(c):
        fe, vq = c.hostile()
        head, r = build(fe, vq)
        expect_used(vq, head, ulen)
        got = r.status_byte()
        check(got == status, "status %d, expected %d" % (got, status))
        if regex:
            c.log(regex)
        if untouched:
            bad = c.d.img.mismatch()
            check(bad is None, bad)
    return t


def req_chain(vq, r, segs=None):
    segs = r.segs if segs is None else segs
    head = vq.add_chain(segs)
    vq.kick()
    return head, r


def s_short_header(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0)
    return req_chain(vq, r, [(r.hdr, 10, False), (r.status, 1, True)])


def s_header_at_region_end(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0)
    hdr = fe.mem.end - 8
    fe.mem.write(hdr, vc.BLK_HDR.pack(vc.T_IN, 0, 0)[:8])
    return req_chain(vq, r, [(hdr, 8, False), (r.status, 1, True)])


def s_data_not_multiple(type_):
    def b(fe, vq):
        if type_ == vc.T_IN:
            r = BlkReq(fe.mem, vc.T_IN, 10, in_len=700)
        else:
            r = BlkReq(fe.mem, vc.T_OUT, 10, data=os.urandom(700))
        return req_chain(vq, r)
    return b


def s_rw(type_, sector, nbytes):
    def b(fe, vq):
        if type_ == vc.T_IN:
            r = BlkReq(fe.mem, vc.T_IN, sector, in_len=nbytes)
        else:
            r = BlkReq(fe.mem, vc.T_OUT, sector, data=os.urandom(nbytes))
        return req_chain(vq, r)
    return b


def s_in_with_readable_data(fe, vq):
    r = BlkReq(fe.mem, vc.T_IN, 0, data=bytes(512))
    return req_chain(vq, r)


def s_range(type_, ranges, flags=0, split=False):
    def b(fe, vq):
        r = BlkReq(fe.mem, type_, 0)
        g = fe.mem.alloc_data(16 * len(ranges), 16)
        fe.mem.write(g, b"".join(vc.BLK_RANGE.pack(s, n, flags) for s, n in ranges))
        if split:
            segs = [r.segs[0], (g, 8, False), (g + 8, 8, False), r.segs[-1]]
        else:
            segs = [r.segs[0], (g, 16 * len(ranges), False), r.segs[-1]]
        return req_chain(vq, r, segs)
    return b


def s_short_range(fe, vq):
    r = BlkReq(fe.mem, vc.T_DISCARD, 0)
    g, _, _ = blk_range(fe.mem, 0, 8)
    return req_chain(vq, r, [r.segs[0], (g, 8, False), r.segs[-1]])


def s_type(type_, in_len=0):
    def b(fe, vq):
        return req_chain(vq, BlkReq(fe.mem, type_, 0, in_len=in_len))
    return b


def t_header_split_3(c):
    """VALID: the 16-byte header over three descriptors (5 + 5 + 6)."""
    fe, vq = c.hostile()
    sector = 1200
    r = BlkReq(fe.mem, vc.T_IN, sector, in_len=1024)
    h = fe.mem.alloc_data(64, 16)
    raw = vc.BLK_HDR.pack(vc.T_IN, 0, sector)
    fe.mem.write(h, raw[:5])
    fe.mem.write(h + 24, raw[5:10])
    fe.mem.write(h + 48, raw[10:])
    head, _ = req_chain(vq, r, [(h, 5, False), (h + 24, 5, False), (h + 48, 6, False),
                                (r.data, 1024, True), (r.status, 1, True)])
    expect_used(vq, head, 1025)
    check(r.status_byte() == S_OK, "status %d" % r.status_byte())
    check(r.data_in() == bytes(c.d.img.expect[sector * SECTOR:(sector + 2) * SECTOR]),
          "read returned the wrong data")


def t_header_data_one_desc(c):
    """VALID: header and data in one readable descriptor (OUT); data and
    status in one writable descriptor (IN)."""
    fe, vq = c.hostile()
    sector = 1300
    data = os.urandom(1024)
    g = fe.mem.alloc_data(16 + 1024, 16)
    fe.mem.write(g, vc.BLK_HDR.pack(vc.T_OUT, 0, sector) + data)
    st = fe.mem.alloc_data(1, 1)
    fe.mem.write(st, b"\xff")
    head = chain(vq, [(g, 16 + 1024, DESC_F_NEXT), (st, 1, DESC_F_WRITE)], 1)
    expect_used(vq, head, 1)
    check(fe.mem.read(st, 1)[0] == S_OK, "OUT status %d" % fe.mem.read(st, 1)[0])
    c.d.img.update(sector * SECTOR, data)
    check(c.d.img.read(sector * SECTOR, 1024) == data, "image does not hold the data")
    h = fe.mem.alloc_data(16, 16)
    fe.mem.write(h, vc.BLK_HDR.pack(vc.T_IN, 0, sector))
    buf = fe.mem.alloc_data(1025, 1)
    fe.mem.fill(buf, 1025, 0xEE)
    head = chain(vq, [(h, 16, DESC_F_NEXT), (buf, 1025, DESC_F_WRITE)], 1025)
    expect_used(vq, head, 1025)
    check(fe.mem.read(buf + 1024, 1)[0] == S_OK, "IN status %d" % fe.mem.read(buf + 1024, 1)[0])
    check(fe.mem.read(buf, 1024) == data, "IN returned the wrong data")


def t_in_stays_within_descriptors(c):
    """VALID: an IN fills its data descriptors and nothing around them."""
    fe, vq = c.hostile()
    sector = 1800
    g = fe.mem.alloc_data(4096 + 1024 + 4096)
    fe.mem.fill(g, 4096 + 1024 + 4096, 0xC3)
    h = fe.mem.alloc_data(16, 16)
    fe.mem.write(h, vc.BLK_HDR.pack(vc.T_IN, 0, sector))
    st = fe.mem.alloc_data(1, 1)
    fe.mem.write(st, b"\xff")
    # Two 512-byte pieces with a gap between them.
    head = chain(vq, [(h, 16, DESC_F_NEXT), (g + 4096, 512, DESC_F_WRITE | DESC_F_NEXT),
                      (g + 4096 + 768, 512, DESC_F_WRITE | DESC_F_NEXT), (st, 1, DESC_F_WRITE)], 1025)
    expect_used(vq, head, 1025)
    check(fe.mem.read(st, 1)[0] == S_OK, "status %d" % fe.mem.read(st, 1)[0])
    want = bytes(c.d.img.expect[sector * SECTOR:(sector + 2) * SECTOR])
    check(fe.mem.read(g + 4096, 512) + fe.mem.read(g + 4096 + 768, 512) == want, "wrong data")
    for off, n in ((0, 4096), (4096 + 512, 256), (4096 + 1280, 4096 - 256)):
        check(fe.mem.read(g + off, n) == b"\xc3" * n, "bytes outside the buffers were written")


def t_get_id(c):
    fe, vq = c.hostile()
    r = BlkReq(fe.mem, vc.T_GET_ID, 0, in_len=20)
    head, _ = req_chain(vq, r)
    expect_used(vq, head, 21)
    check(r.status_byte() == S_OK, "status %d" % r.status_byte())
    want = os.path.basename(c.d.img.path).encode()[:20].ljust(20, b"\0")
    check(r.data_in() == want, "id %r, expected %r" % (r.data_in(), want))


def t_discard_split_range(c):
    """VALID: the discard range over two descriptors (8 + 8 bytes)."""
    fe, vq = c.hostile()
    head, r = s_range(vc.T_DISCARD, [(1400, 8)], split=True)(fe, vq)
    expect_used(vq, head, 1)
    check(r.status_byte() == S_OK, "status %d" % r.status_byte())
    c.d.img.update(1400 * SECTOR, bytes(8 * SECTOR))


# ==== normal I/O ===============================================================================


def normal_io(event_idx, indirect):
    def t(c):
        fe = c.frontend(event_idx=event_idx, indirect=indirect, queue_size=128, mem_size=24 * MiB)
        check(fe.event_idx == event_idx and fe.indirect == indirect, "features not as negotiated")
        img = c.d.img
        nq = len(fe.vqs)
        check(nq == c.d.queues, "%d queues" % nq)
        base = 2048 + (event_idx * 2 + indirect) * 1024
        for q in range(nq):
            s = base + q * 128
            data = os.urandom(16 * 1024 + 512 * q)
            st, ulen = fe.write(q, s, data, indirect, check_call=True)
            check((st, ulen) == (S_OK, 1), "queue %d write: status %d used %d" % (q, st, ulen))
            img.update(s * SECTOR, data)
            st, ulen, got = fe.read((q + 1) % nq, s, len(data), indirect, check_call=True)
            check((st, ulen) == (S_OK, len(data) + 1), "queue %d read: status %d used %d"
                  % (q, st, ulen))
            check(got == data, "queue %d: read back different data" % q)
        st, ulen = fe.simple(0, vc.T_FLUSH, 0, indirect, check_call=True)
        check((st, ulen) == (S_OK, 1), "flush: status %d used %d" % (st, ulen))
        # Write-zeroes (plain and may-unmap) and discard read back as zeros.
        for q, (typ, s, n, fl) in enumerate(((vc.T_WRITE_ZEROES, base + 4, 8, 0),
                                             (vc.T_WRITE_ZEROES, base + 130, 16, 1),
                                             (vc.T_DISCARD, base + 256, 24, 0))):
            q %= nq
            st, ulen = fe.range_op(q, typ, s, n, fl, indirect, check_call=True)
            check((st, ulen) == (S_OK, 1), "type %d: status %d used %d" % (typ, st, ulen))
            img.update(s * SECTOR, bytes(n * SECTOR))
            st, _, got = fe.read(q, s - 1, (n + 2) * SECTOR, indirect)
            check(st == S_OK and got == bytes(img.expect[(s - 1) * SECTOR:(s + n + 1) * SECTOR]),
                  "type %d: range does not read back as zeros within its neighbours" % typ)
        st, ulen, ident = fe.get_id(nq - 1, indirect)
        check((st, ulen) == (S_OK, 21), "GET_ID: status %d used %d" % (st, ulen))
        # Many requests in flight on every queue at once.
        reqs = []
        for q in range(nq):
            vq = fe.vqs[q]
            old = vq.avail_idx
            for k in range(40):
                s = 4096 + 64 * (q * 40 + k) % (CAP - 4096 - 64)
                data = os.urandom(4096)
                r = BlkReq(fe.mem, vc.T_OUT, s, data=data)
                (vq.add_indirect if indirect else vq.add_chain)(r.segs)
                reqs.append((q, s, data, r))
            vq.kick(old)
        for q in range(nq):
            got = fe.vqs[q].wait_used(40, 5.0)
            check(len(got) == 40, "queue %d: %d of 40 concurrent writes came back" % (q, len(got)))
        for q, s, data, r in reqs:
            check(r.status_byte() == S_OK, "concurrent write: status %d" % r.status_byte())
            img.update(s * SECTOR, data)
        bad = img.mismatch()
        check(bad is None, bad)
    return t


def t_reconnect_resume(c):
    """A new frontend resumes a ring where the last one stopped (base)."""
    fe = c.frontend(queue_size=64, mem_size=4 * MiB)
    for i in range(5):
        st, _ = fe.write(0, 1500 + i, bytes([i]) * 512)
        check(st == S_OK, "write %d" % i)
        c.d.img.update((1500 + i) * SECTOR, bytes([i]) * 512)
    check(fe.conn.get_vring_base(0) == 5, "GET_VRING_BASE")


def idle_cpu(c):
    fe = c.frontend(queue_size=128, mem_size=4 * MiB)
    data = os.urandom(4096)
    st, _ = fe.write(0, 1600, data)
    check(st == S_OK, "write")
    c.d.img.update(1600 * SECTOR, data)
    time.sleep(0.2)                      # past the poll back-off
    t0, w0 = vc.proc_cpu_ticks(c.d.pid), time.monotonic()
    time.sleep(2.0)
    t1, w1 = vc.proc_cpu_ticks(c.d.pid), time.monotonic()
    cpu = (t1 - t0) / CLK_TCK
    print("# %s: idle daemon used %.2f s of CPU in %.2f s" % (c.d.name, cpu, w1 - w0))
    check(cpu < 0.1 * (w1 - w0), "the idle daemon used %.2f s of CPU in %.2f s" % (cpu, w1 - w0))
    # A kick wakes it.
    for q in range(len(fe.vqs)):
        st, _, got = fe.read(q, 1600, 4096, check_call=True)
        check(st == S_OK and got == data, "queue %d: no service after the idle period" % q)


# ==== the list =========================================================================================


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build/app/rosenbridged/rosenbridged"))
    ap.add_argument("--only", help="run the tests whose name matches this regex")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--verbose", action="store_true", help="start the daemons with --verbose")
    args = ap.parse_args()
    if not os.access(args.daemon, os.X_OK):
        print("no daemon at %s (build it: ninja -C build)" % args.daemon)
        print("0 passed, 1 failed")
        return 1
    random.seed(0x5EED)
    s = Suite(args)
    t_start = time.monotonic()
    try:
        d = s.daemon("main")
        R = lambda name, fn, **kw: s.run(name, fn, d, **kw)  # noqa: E731

        # -- normal I/O, poll mode
        for ei in (True, False):
            for ind in (True, False):
                R("io_poll_%s_%s" % ("eventidx" if ei else "noeventidx",
                                     "indirect" if ind else "direct"), normal_io(ei, ind))
        R("io_get_config", t_get_config_valid)
        R("io_two_memory_regions", t_mem_table_two_regions)
        R("io_reconnect_resume", t_reconnect_resume)
        R("io_get_vring_base_drains_in_flight", t_get_vring_base_drains)
        R("io_ring_end_exactly_at_region_end", t_ring_addr_end_exact)

        # -- message header and framing
        R("hdr_version_0", hdr_case(flags=0, regex=r"protocol version 0, expected 1"))
        R("hdr_version_2", hdr_case(flags=2, regex=r"protocol version 2, expected 1"))
        R("hdr_version_3_need_reply", hdr_case(flags=0xB, regex=r"protocol version 3"))
        R("hdr_reply_flag_from_frontend", hdr_case(flags=5, regex=r"must not carry the reply flag"))
        R("hdr_payload_over_4096", hdr_case(size=4097, regex=r"payload of 4097 bytes exceeds 4096"))
        R("hdr_payload_huge", hdr_case(size=0xFFFFFFFF, regex=r"exceeds 4096"))
        R("truncated_payload_then_close", t_truncated_payload_close)
        R("truncated_payload_stall_1s", t_truncated_payload_stall)
        R("truncated_header_stall_1s", t_truncated_header_stall)
        R("truncated_header_then_close", t_truncated_header_close)
        R("nine_fds", t_nine_fds)
        R("extra_fds_on_get_features", t_extra_fds_no_fd_message)
        R("unknown_request_code", t_unknown_request)
        R("set_log_base_unsupported", t_set_log_base)
        R("set_config_refused", t_set_config_refused)
        R("set_features_unoffered_bit", t_set_features_unoffered)
        R("set_protocol_features_unoffered_bit", t_set_protocol_features_unoffered)
        R("set_features_short_payload", t_set_features_short)

        # -- SET_MEM_TABLE
        R("mem_table_0_regions", mem_case([], nfds=0, nregions=0, regex=r"SET_MEM_TABLE: 0 regions"))
        R("mem_table_9_regions", mem_case([(G + i * MiB, 4096, U + i * MiB, 0) for i in range(8)],
                                          nfds=8, nregions=9, regex=r"SET_MEM_TABLE: 9 regions"))
        R("mem_table_fewer_fds", mem_case([REG, (G + 2 * MiB, 4096, U + 2 * MiB, 0)], nfds=1,
                                          regex=r"SET_MEM_TABLE: 2 regions but 1 file descriptors"))
        R("mem_table_no_fd", mem_case([REG], nfds=0, regex=r"1 regions but 0 file descriptors"))
        R("mem_table_more_fds", mem_case([REG], nfds=3, regex=r"1 regions but 3 file descriptors"))
        R("mem_table_truncated_payload", mem_case([REG, REG], payload_cut=8 + 32,
                                                  regex=r"SET_MEM_TABLE: .*too short for 2 regions"))
        R("mem_table_gpa_size_overflow", mem_case([(M64 - 4095, 8192, U, 0)], regex=r"overflows"))
        R("mem_table_uva_size_overflow", mem_case([(G, 8192, M64 - 4095, 0)], regex=r"overflows"))
        R("mem_table_offset_size_overflow", mem_case([(G, 8192, U, M64 - 4095)], regex=r"overflows"))
        R("mem_table_size_0", mem_case([(G, 0, U, 0)], regex=r"region 0 has size 0"))
        R("mem_table_memfd_shorter_than_size", mem_case([(G, 2 * MiB, U, 0)], memsize=MiB,
                                                        regex=r"SET_MEM_TABLE: region 0: file has"))
        R("mem_table_memfd_shorter_than_offset_size",
          mem_case([(G, MiB, U, MiB // 2)], memsize=MiB, regex=r"SET_MEM_TABLE: region 0: file has"))
        R("mem_table_overlapping_regions",
          mem_case([(G, MiB, U, 0), (G + MiB // 2, MiB // 2, U + 4 * MiB, 0)], memsize=MiB,
                   regex=r"SET_MEM_TABLE: regions 0 and 1 overlap"))
        R("mem_table_fd_not_memory", mem_case([REG], fd_kind="eventfd", regex=r"not a memory file"))
        R("mem_table_unsealable_memfd", mem_case([REG], fd_kind="unsealable-memfd",
                                                 regex=r"cannot be sealed"))
        R("mem_table_repeated_no_leak", t_mem_table_repeated)

        # -- rings: SET_VRING_*
        R("vring_num_0", vring_state_case(vc.SET_VRING_NUM, 0, 0, r"SET_VRING_NUM: ring 0 size 0"))
        R("vring_num_not_power_of_2", vring_state_case(vc.SET_VRING_NUM, 0, 100, r"size 100 is not a power of two"))
        R("vring_num_over_32768", vring_state_case(vc.SET_VRING_NUM, 0, 65536, r"size 65536 is not"))
        R("vring_num_index_out_of_range", vring_state_case(vc.SET_VRING_NUM, QUEUES, 16,
                                                           r"SET_VRING_NUM: ring %d does not exist" % QUEUES))
        R("vring_num_index_0x10000", vring_state_case(vc.SET_VRING_NUM, 0x10000, 16,
                                                      r"SET_VRING_NUM: ring 65536 does not exist"))
        R("vring_num_short_payload", vring_state_case(vc.SET_VRING_NUM, 0, 16, r"payload of 4 bytes", size=4))
        R("vring_base_over_0xffff", vring_state_case(vc.SET_VRING_BASE, 0, 0x10000, r"base 65536 exceeds 16 bits"))
        R("vring_enable_2", vring_state_case(vc.SET_VRING_ENABLE, 0, 2, r"SET_VRING_ENABLE: ring 0 value 2"))
        R("get_vring_base_index_out_of_range",
          vring_state_case(vc.GET_VRING_BASE, 200, 0, r"GET_VRING_BASE: ring 200 does not exist"))
        R("vring_addr_index_out_of_range", t_vring_addr_index)
        R("vring_kick_reserved_bits", kick_case(0x200, 1, r"reserved bits set in 0x200"))
        R("vring_kick_index_0x10000", kick_case(0x10000, 1, r"reserved bits set in 0x10000"))
        R("vring_kick_index_out_of_range", kick_case(QUEUES, 1, r"ring %d does not exist" % QUEUES))
        R("vring_kick_fd_missing", kick_case(0, 0, r"ring 0: 0 fds, expected 1"))
        R("vring_kick_extra_fd", kick_case(0, 2, r"ring 0: 2 fds, expected 1"))
        R("vring_kick_nofd_with_fd", kick_case(vc.VRING_NOFD, 1, r"ring 0: 1 fds, expected 0"))
        R("vring_call_extra_fd", kick_case(1, 3, r"ring 1: 3 fds, expected 1", req=vc.SET_VRING_CALL))
        R("vring_err_fd_missing", kick_case(0, 0, r"0 fds, expected 1", req=vc.SET_VRING_ERR))
        for which in ("desc", "avail", "used"):
            for how in ("outside", "crossing"):
                R("vring_addr_%s_%s_memory" % (which, how), ring_addr_case(which, how))
        R("vring_addr_misaligned_desc", t_ring_misaligned)
        R("config_offset_size_overflow", config_case(0xFFFFFFF0, 0x20, 0x20, r"CONFIG: offset 4294967280"))
        R("config_beyond_256", config_case(250, 16, 16, r"outside the 256-byte config space"))
        R("config_size_over_256", config_case(0, 300, 300, r"size 300 is outside"))
        R("config_size_larger_than_payload", config_case(0, 60, 8, r"60 data bytes announced, 8 sent"))
        R("refused_while_ring_runs", t_refused_while_running)
        R("repeated_vring_call_kick_err_no_leak", t_repeated_call_kick)
        R("repeated_vring_num_resize", t_repeated_vring_num)
        R("disconnect_mid_io", t_disconnect_mid_io)
        R("kick_fd_hup_pipe_no_spin", kick_fd_spin_case("pipe"))
        R("kick_fd_semaphore_eventfd_no_spin", kick_fd_spin_case("semaphore"))
        R("blocking_saturated_call_eventfd", t_blocking_saturated_call_fd)

        # -- data plane: malformed chains (used len 0)
        R("chain_desc_crosses_region_end", bad_chain_case(b_cross_region, r"not inside one guest memory region"))
        R("chain_zero_len_invalid_addr", bad_chain_case(b_zero_len_bad_addr, r"\[0xdead00000000, \+0\) is not inside"))
        R("chain_self_loop", bad_chain_case(b_self_loop, r"a loop"))
        R("chain_two_cycle", bad_chain_case(b_two_cycle, r"a loop"))
        R("chain_longer_than_queue", bad_chain_case(b_longer_than_queue, r"longer than the queue"))
        R("chain_next_outside_ring", bad_chain_case(b_next_out_of_ring, r"next %d is outside" % (HOSTILE_QSIZE + 3)))
        R("indirect_nested", bad_chain_case(b_nested_indirect, r"nested INDIRECT"))
        R("indirect_with_next", bad_chain_case(b_indirect_with_next, r"both INDIRECT and NEXT"))
        R("indirect_len_not_multiple_of_16", bad_chain_case(b_indirect_len_not_16, r"40 bytes .*multiple of 16"))
        R("indirect_table_crosses_region_end", bad_chain_case(b_indirect_cross_region, r"indirect table .* not inside"))
        R("indirect_chain_over_256_segments", bad_chain_case(b_indirect_too_long, r"256"))
        R("indirect_loop", bad_chain_case(b_indirect_loop, r"loop"))
        R("indirect_not_negotiated", bad_chain_case(b_indirect_not_negotiated, r"INDIRECT_DESC was not negotiated",
                                                    indirect=False))
        R("chain_writable_before_readable", bad_chain_case(b_write_before_read, r"readable buffer after a device-writable"))
        R("chain_no_status_byte", bad_chain_case(b_no_status, r"no device-writable byte for the status"))
        R("chain_seg_max_254_ok_255_refused", t_too_many_segments)
        R("avail_idx_jump_over_queue_size", ring_broken_case("avail_jump"))
        R("avail_head_ge_size", ring_broken_case("head"))

        # -- data plane: requests (status byte)
        R("req_header_split_over_3_descs", t_header_split_3)
        R("req_header_and_data_in_one_desc", t_header_data_one_desc)
        R("req_short_header", status_case(s_short_header, S_IOERR, 1, r"request header is 10"))
        R("req_header_at_region_end", status_case(s_header_at_region_end, S_IOERR, 1, r"request header is 8"))
        R("req_in_not_multiple_of_512", status_case(s_data_not_multiple(vc.T_IN), S_IOERR, 1, r"IN data of 700 bytes"))
        R("req_out_not_multiple_of_512", status_case(s_data_not_multiple(vc.T_OUT), S_IOERR, 1, r"OUT data of 700 bytes"))
        R("req_in_with_readable_data", status_case(s_in_with_readable_data, S_IOERR, 1, r"wrong direction"))
        R("req_read_past_capacity", status_case(s_rw(vc.T_IN, CAP - 1, 1024), S_IOERR, 1, r"outside the disk"))
        R("req_write_past_capacity", status_case(s_rw(vc.T_OUT, CAP - 1, 1024), S_IOERR, 1, r"outside the disk"))
        R("req_write_at_capacity", status_case(s_rw(vc.T_OUT, CAP, 512), S_IOERR, 1, r"outside the disk"))
        R("req_write_sector_times_512_wraps", status_case(s_rw(vc.T_OUT, 1 << 55, 512), S_IOERR, 1, r"outside the disk"))
        R("req_read_sector_max", status_case(s_rw(vc.T_IN, M64, 512), S_IOERR, 1, r"outside the disk"))
        R("discard_two_segments", status_case(s_range(vc.T_DISCARD, [(0, 8), (16, 8)]), S_IOERR, 1,
                                              r"DISCARD request with 2 ranges"))
        R("write_zeroes_two_segments", status_case(s_range(vc.T_WRITE_ZEROES, [(0, 8), (16, 8)]), S_IOERR, 1,
                                                   r"WRITE_ZEROES request with 2 ranges"))
        R("discard_reserved_flags", status_case(s_range(vc.T_DISCARD, [(0, 8)], flags=0x2), S_UNSUPP, 1,
                                                r"unsupported flags 0x2"))
        R("discard_unmap_flag", status_case(s_range(vc.T_DISCARD, [(0, 8)], flags=0x1), S_UNSUPP, 1,
                                            r"unsupported flags 0x1"))
        R("write_zeroes_reserved_flags", status_case(s_range(vc.T_WRITE_ZEROES, [(0, 8)], flags=0x80000000),
                                                     S_UNSUPP, 1, r"unsupported flags"))
        R("discard_huge_num_sectors", status_case(s_range(vc.T_DISCARD, [(0, 0xFFFFFFFF)]), S_IOERR, 1,
                                                  r"discard of 4294967295 sectors .*outside the disk"))
        R("write_zeroes_sector_overflow", status_case(s_range(vc.T_WRITE_ZEROES, [(M64 - 3, 8)]), S_IOERR, 1,
                                                      r"write-zeroes .*outside the disk"))
        R("discard_short_range", status_case(s_short_range, S_IOERR, 1, r"DISCARD range data is 8 bytes"))
        R("discard_range_split_over_2_descs", t_discard_split_range)
        R("req_unknown_type", status_case(s_type(99), S_UNSUPP, 1, r"unknown request type 99"))
        R("req_get_id_buffer_too_small", status_case(s_type(vc.T_GET_ID, in_len=10), S_IOERR, 1, r"GET_ID buffer is 10"))
        R("req_get_id", t_get_id)
        R("req_in_writes_only_its_buffers", t_in_stays_within_descriptors)

        # -- idle CPU, poll mode
        R("idle_cpu_poll", idle_cpu)

        # -- read-only disk
        ro = s.daemon("ro", ["--readonly"])
        for name, b, regex in (("readonly_write", s_rw(vc.T_OUT, 8, 1024), r"read-only disk"),
                               ("readonly_discard", s_range(vc.T_DISCARD, [(8, 8)]), r"read-only disk"),
                               ("readonly_write_zeroes", s_range(vc.T_WRITE_ZEROES, [(8, 8)]), r"read-only disk")):
            s.run(name, status_case(b, S_IOERR, 1, regex), ro)

        def ro_features(c):
            conn = c.conn(negotiate=False)
            f = conn.get_features()
            check(f & (1 << vc.BLK_F_RO), "RO not offered")
            check(not f & ((1 << vc.BLK_F_DISCARD) | (1 << vc.BLK_F_WRITE_ZEROES)),
                  "DISCARD/WRITE_ZEROES offered on a read-only disk")
        s.run("readonly_features", ro_features, ro)
        ro.stop()

        # -- event mode
        ev = s.daemon("event", ["--event"])
        for ei in (True, False):
            for ind in (True, False):
                s.run("io_event_%s_%s" % ("eventidx" if ei else "noeventidx",
                                          "indirect" if ind else "direct"), normal_io(ei, ind), ev)
        s.run("event_chain_two_cycle", bad_chain_case(b_two_cycle, r"a loop"), ev)
        s.run("event_avail_idx_jump", ring_broken_case("avail_jump"), ev)
        s.run("event_disconnect_mid_io", t_disconnect_mid_io, ev)
        s.run("idle_cpu_event", idle_cpu, ev)
        s.run("event_kick_fd_hup_pipe_no_spin", kick_fd_spin_case("pipe"), ev)
        s.run("event_kick_fd_semaphore_eventfd_no_spin", kick_fd_spin_case("semaphore"), ev)
        ev.stop()

        # -- last: may take the daemon down
        s.run("memfd_shrunk_after_mem_table", t_memfd_shrunk_after_mapping, d)

        rc = d.stop()
        check_name = "daemon_exits_0_on_sigterm"
        if not s.only or s.only.search(check_name):
            ok = rc == 0 and not os.path.exists(d.sock)
            s.passed += ok
            s.failed += not ok
            print(("PASS " if ok else "FAIL ") + check_name +
                  ("" if ok else ": exit status %s, socket %s" % (rc, "left" if os.path.exists(d.sock) else "removed")))
    except Exception as e:
        # The suite itself broke (a daemon that cannot start...): one failure.
        s.failed += 1
        print("FAIL suite: %s: %s" % (type(e).__name__, e))
        traceback.print_exc(file=sys.stdout)
    finally:
        s.close()
    print("# %.1f s" % (time.monotonic() - t_start))
    print("%d passed, %d failed" % (s.passed, s.failed))
    return 1 if s.failed else 0


if __name__ == "__main__":
    sys.exit(main())
