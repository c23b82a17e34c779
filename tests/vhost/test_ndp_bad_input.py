#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile virtio-ndp requests against rosenbridged, built raw.

Usage: test_ndp_bad_input.py [--daemon PATH] [--programs DIR] [--only REGEX]
                             [--keep] [--verbose]

Starts one rosenbridged serving three disks (8 MiB images filled with a
known pattern): vm0 (read-write, where most cases run), vm1 (another VM,
read-write) and vm2 (--readonly).  Each case lays out one kind of NDP
request over descriptors by hand (vhost_client.NdpReq: header and parts
split over descriptors as the case chooses) and asserts the exact outcome:
the virtio status byte, the NDP status in the result struct where one is
writable, the used length, the bytes the device must not have written, and
the warning the daemon logs where it logs one.  After every case: the
daemon is alive, holds as many fds as when idle and no guest memory, no
image differs from the model of the writes made, the programs and memory
registrations the case left are removed, and a well-behaved client still
writes, reads, probes, loads, runs READ_ND and unloads on the disk.

The programs come from tests/programs/ndp_progs.o (--programs: the build
directory holding it; default build/tests/programs).

Prints "PASS name" / "FAIL name: reason" per case and ends with
"N passed, N failed"; exits 1 on failure.
"""
import argparse
import os
import random
import re
import signal
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
from vhost_client import (NDP_IO, NDP_LOAD, NDP_LOAD_RESULT, NDP_PROBE, NDP_REG_MEM,  # noqa: E402
                          NDP_REG_RESULT, NDP_RESULT, NDP_T_LOAD, NDP_T_PROBE, NDP_T_READ_ND,
                          NDP_T_REG_MEM, NDP_T_UNLOAD, NDP_T_UNREG_MEM, NDP_T_WRITE_ND, NDP_UNLOAD,
                          NDP_UNREG_MEM, S_IOERR, S_OK, S_UNSUPP, SECTOR, U32, BlkReq, Frontend,
                          NdpReq, ndp_io, ndp_load, ndp_probe, ndp_reg_mem, ndp_unload,
                          ndp_unreg_mem, load_result, split_lengths, ndp_reg_file, ndp_unreg_file,
                          NDP_T_REG_FILE, NDP_T_UNREG_FILE, NDP_REG_FILE, NDP_EXTENT,
                          NDP_UNREG_FILE, NDP_IO_F_FILE)
from vhost_client import (NDP_S_BAD_REQUEST, NDP_S_HOP_LIMIT, NDP_S_LIMIT, NDP_S_NO_MEMORY,  # noqa: E402
                          NDP_S_NO_PROGRAM, NDP_S_OK, NDP_S_OUT_OF_RANGE, NDP_S_READ_ONLY,
                          NDP_S_REJECTED, NDP_S_STATE_LOST)

MiB = 1 << 20
IMG_SIZE = 8 * MiB
CAP = IMG_SIZE // SECTOR
QUEUES = 4
MEM = 8 * MiB
XRP = vc.NDP_PROG_XRP
M64 = (1 << 64) - 1
RES_LEN = NDP_RESULT.size
UNTOUCHED = 0xA5  # NdpReq pre-fills writable bytes with it


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def pattern(nbytes):
    """Initial image contents: each sector names itself."""
    out = bytearray()
    for s in range(nbytes // SECTOR):
        out += struct.pack("<QQ", s, 0x5A5A5A5A5A5A5A5A ^ s) * (SECTOR // 16)
    return out


# ---- the daemon, its disks and their images -------------------------------------------


class Image:
    """An image file and a model of what it must contain."""

    def __init__(self, path, size):
        self.path = path
        self.expect = pattern(size)
        with open(path, "wb") as f:
            f.write(self.expect)

    def update(self, off, data):
        self.expect[off:off + len(data)] = data

    def sectors(self, sector, n=1):
        return bytes(self.expect[sector * SECTOR:(sector + n) * SECTOR])

    def mismatch(self):
        with open(self.path, "rb") as f:
            data = f.read()
        if len(data) != len(self.expect):
            return "image %s is %d bytes, expected %d" % (self.path, len(data), len(self.expect))
        if data == self.expect:
            return None
        for off in range(0, len(data), SECTOR):
            if data[off:off + SECTOR] != self.expect[off:off + SECTOR]:
                return "image %s differs from the expected contents at sector %d" % (
                    os.path.basename(self.path), off // SECTOR)
        return "image differs"

    def reload(self):
        with open(self.path, "rb") as f:
            self.expect = bytearray(f.read())


class Disk:
    """One --disk/--socket group of the daemon."""

    def __init__(self, workdir, index, label, readonly):
        self.vm = "vm%d" % index       # the daemon's name for it in log lines
        self.label = label
        self.sock = os.path.join(workdir, label + ".sock")
        self.img = Image(os.path.join(workdir, label + ".img"), IMG_SIZE)
        self.readonly = readonly
        self.qlog = {q: [] for q in range(QUEUES)}

    def args(self):
        return ["--disk", self.img.path, "--socket", self.sock, "--queues", str(QUEUES)] + \
            (["--readonly"] if self.readonly else [])

    def pick_queue(self):
        """A queue whose guest-triggered log lines (10 a second per queue)
        still have room: at most 3 cases per queue in any 1.2 s."""
        while True:
            now = time.monotonic()
            for q in self.qlog:
                self.qlog[q] = [t for t in self.qlog[q] if now - t < 1.2]
            q = min(self.qlog, key=lambda k: len(self.qlog[k]))
            if len(self.qlog[q]) < 3:
                self.qlog[q].append(now)
                return q
            time.sleep(0.05)


class Daemon:
    LAYOUT = (("main", False), ("other", False), ("ro", True))

    def __init__(self, binary, workdir, verbose=False, layout=LAYOUT):
        """layout: (label, readonly) per disk, vm0 first."""
        self.disks = {}
        for i, (label, ro) in enumerate(layout):
            self.disks[label] = Disk(workdir, i, label, ro)
        self.log_path = os.path.join(workdir, "daemon.log")
        self.args = [binary]
        for d in self.disks.values():
            self.args += d.args()
        if verbose:
            self.args.append("--verbose")
        self.proc = None
        self.logf = None
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
                raise RuntimeError("rosenbridged exited with %d:\n%s" % (self.proc.returncode,
                                                                         self.log_since(mark)))
            time.sleep(0.01)
        else:
            raise RuntimeError("rosenbridged did not start:\n%s" % self.log_since(mark))
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
        if self.logf:
            self.logf.close()
            self.logf = None
        return self.proc.returncode if self.proc else None

    def restart(self):
        """After a crash: a fresh daemon on the images as they are (its
        program tables and registrations start empty)."""
        self.stop(signal.SIGKILL)
        for d in self.disks.values():
            d.img.reload()
        self.start()

    def mark(self):
        self.logf.flush()
        return os.path.getsize(self.log_path)

    def log_since(self, mark):
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")

    def find_log(self, mark, regex, levels=("error", "warn"), timeout=1.5):
        """The first line since `mark` at one of `levels` whose message
        matches regex."""
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


# ---- one case's context ---------------------------------------------------------------


class Ctx:
    def __init__(self, suite, daemon, disk):
        self.s = suite
        self.d = daemon
        self.disk = disk
        self.img = disk.img
        self.mark = daemon.mark()
        self.objs = []
        self.progs = []   # (disk, handle) loaded by this case
        self.regs = []    # (disk, key) registered by this case
        self.files = []   # (disk, key) of files registered by this case
        self._fe = None
        self.q = None

    def close_all(self):
        for o in reversed(self.objs):
            try:
                o.close()
            except Exception:
                pass
        self.objs = []
        self._fe = None

    def keep(self, o):
        self.objs.append(o)
        return o

    def frontend(self, disk=None, **kw):
        kw.setdefault("timeout", 3.0)
        kw.setdefault("mem_size", MEM)
        kw.setdefault("queue_size", 64)
        return self.keep(Frontend((disk or self.disk).sock, **kw))

    @property
    def fe(self):
        """The case's frontend on its disk (set up on first use)."""
        if self._fe is None:
            self._fe = self.frontend()
        return self._fe

    def queue(self):
        if self.q is None:
            self.q = self.disk.pick_queue()
        return self.q

    def submit(self, req, fe=None, q=None, timeout=3.0):
        """Submits one request; returns its used length."""
        fe = fe or self.fe
        q = self.queue() if q is None else q
        vq = fe.vqs[q]
        head = fe.submit(q, req)
        u = vq.wait_used(1, timeout)
        check(u, "queue %d: the request (type 0x%x) did not complete within %.0f s"
              % (q, req.type, timeout))
        check(u[0][0] == head, "queue %d: used id %d, expected %d" % (q, u[0][0], head))
        return u[0][1]

    def do(self, req, status, ulen, fe=None, q=None, timeout=3.0):
        """Submits a request and checks its virtio status byte and used len."""
        got_ulen = self.submit(req, fe, q, timeout)
        st = req.status_byte()
        check(st == status, "virtio status %d (0x%x), expected %d" % (st, st, status))
        check(got_ulen == ulen, "used len %d, expected %d" % (got_ulen, ulen))
        return req

    def log(self, regex, levels=("error", "warn"), timeout=1.5):
        line = self.d.find_log(self.mark, regex, levels, timeout)
        check(line, "no %s log line matching /%s/" % ("/".join(levels), regex))
        return line

    def track(self, handle, disk=None):
        self.progs.append((disk or self.disk, handle))
        return handle

    def load(self, section="xrp_peek", prog_type=XRP, fe=None, disk=None):
        """A proper LOAD of a section of ndp_progs.o: returns the handle."""
        fe = fe or self.fe
        r = ndp_load(fe.mem, prog_type, self.s.elf, section)
        ulen = self.submit(r, fe, None if fe is self._fe else 0)
        handle, st, log_len, log = load_result(r)
        if st == NDP_S_OK:
            self.track(handle, disk)
        check(r.status_byte() == S_OK and st == NDP_S_OK,
              "LOAD of %s: virtio status %d, NDP status %s: %r"
              % (section, r.status_byte(), vc.ndp_status_name(st), log[:min(log_len, 120)]))
        check(ulen == NDP_LOAD_RESULT.size + log_len + 1, "LOAD: used len %d, log_len %d"
              % (ulen, log_len))
        return handle

    def cleanup_ndp(self):
        """Unloads the programs and unregisters the memory this case left
        (the disk keeps them across frontends)."""
        by_disk = {}
        for disk, h in self.progs:
            by_disk.setdefault(disk.label, (disk, [], [], []))[1].append(h)
        for disk, k in self.regs:
            by_disk.setdefault(disk.label, (disk, [], [], []))[2].append(k)
        for disk, k in self.files:
            by_disk.setdefault(disk.label, (disk, [], [], []))[3].append(k)
        for disk, handles, keys, files in by_disk.values():
            with Frontend(disk.sock, timeout=3.0, mem_size=4 * MiB, queue_size=64) as fe:
                for h in handles:
                    r = ndp_unload(fe.mem, h)
                    fe.run(0, r)
                for k in keys:
                    r = ndp_unreg_mem(fe.mem, k)
                    fe.run(0, r)
                for k in files:
                    r = ndp_unreg_file(fe.mem, k)
                    fe.run(0, r)
        self.progs = []
        self.regs = []
        self.files = []


def load_fields(req):
    handle, st, log_len, log = load_result(req)
    return handle, st, log_len, log


def check_log_buffer(log, log_len, log_cap):
    """The log is log_len bytes, NUL-terminated, no NUL before its end,
    and nothing after it written.  Returns the text."""
    check(0 < log_len <= log_cap, "log_len %d (log buffer of %d)" % (log_len, log_cap))
    check(log[log_len - 1] == 0, "the log is not NUL-terminated at log_len %d" % log_len)
    check(0 not in log[:log_len - 1], "the log has a NUL before log_len %d" % log_len)
    check(all(b == UNTOUCHED for b in log[log_len:]),
          "bytes after the log's %d bytes were written" % log_len)
    return log[:log_len - 1].decode("utf-8", "replace")


def expect_load(c, req, ndp_status, log_regex=None, log_cap=4096, handle0=True):
    """A LOAD that must end with virtio OK and `ndp_status`; checks the
    result struct, the log buffer and the used length.  Returns (handle, text)."""
    ulen = c.submit(req)
    st = req.status_byte()
    check(st == S_OK, "virtio status %d, expected OK" % st)
    handle, nst, log_len, log = load_fields(req)
    if nst == NDP_S_OK:
        c.track(handle)
    check(nst == ndp_status, "NDP status %s, expected %s (log %r)"
          % (vc.ndp_status_name(nst), vc.ndp_status_name(ndp_status), log[:min(log_len, 120)]))
    if handle0 and ndp_status != NDP_S_OK:
        check(handle == 0, "handle %d given with status %s" % (handle, vc.ndp_status_name(nst)))
    if log_cap:
        text = check_log_buffer(log, log_len, log_cap)
    else:
        check(log_len == 0, "log_len %d without a log buffer" % log_len)
        text = ""
    check(ulen == NDP_LOAD_RESULT.size + log_len + 1, "used len %d, expected %d"
          % (ulen, NDP_LOAD_RESULT.size + log_len + 1))
    if log_regex:
        check(re.search(log_regex, text), "log %r does not match /%s/" % (text, log_regex))
    return handle, text


def untouched(req, part):
    """True when writable part `part` was not written at all."""
    return all(b == UNTOUCHED for b in req.wpart(part))


# ==== PROBE ====================================================================================


def t_probe_ok(c):
    r = c.do(ndp_probe(c.fe.mem), S_OK, NDP_PROBE.size + 1)
    f = NDP_PROBE.unpack(r.wpart(0))
    want = (vc.NDP_MAGIC, vc.NDP_VERSION, 16, 1 << 20, 4096, 4096, 4096, 1024, 0b1110,
            vc.NDP_CAP_FILES | vc.NDP_CAP_GDS, vc.NDP_MAX_FILES, vc.NDP_MAX_EXTENTS)
    check(f == want, "PROBE answered %r, expected %r" % (f, want))
    check(r.wpart(0)[48:] == bytes(16), "PROBE reserved words are not zero")


def probe_wlen_case(wlen):
    def t(c):
        r = c.do(ndp_probe(c.fe.mem, wlen), S_IOERR, 1)
        check(wlen == 0 or untouched(r, 0), "the device wrote into a wrong-sized PROBE reply")
        c.log(r"NDP PROBE: %d writable bytes, expected 65" % (wlen + 1))
    return t


def no_writable_case(type_, body, regex):
    """A request with readable descriptors only: nothing to answer in,
    used len 0."""
    def t(c):
        r = NdpReq(c.fe.mem, type_, [body], [], status=False)
        check(c.submit(r) == 0, "used len not 0")
        if regex:
            c.log(regex)
    return t


def t_probe_split_reply(c):
    """VALID: the 64-byte reply over 4 descriptors, status in the last one."""
    r = c.do(ndp_probe(c.fe.mem, wsplit=[1, 30, 20, 14]), S_OK, NDP_PROBE.size + 1)
    f = NDP_PROBE.unpack(r.wpart(0))
    check(f[0] == vc.NDP_MAGIC and f[8] == 0b1110, "split PROBE reply: %r" % (f,))


# ==== LOAD =====================================================================================


def t_load_truncated_fixed(c):
    fixed = NDP_LOAD.pack(XRP, 0, b"xrp_peek")[:40]
    r = ndp_load(c.fe.mem, XRP, b"", "", fixed=fixed)
    expect_load(c, r, NDP_S_BAD_REQUEST, r"LOAD request of 56 bytes is truncated")


def load_elf_len_case(delta=None, elf_len=None, status=NDP_S_BAD_REQUEST, regex=None):
    def t(c):
        elf = c.s.elf
        n = len(elf) + delta if elf_len is None else elf_len
        r = ndp_load(c.fe.mem, XRP, elf, "xrp_peek", elf_len=n)
        expect_load(c, r, status, regex or r"LOAD announces %d object bytes but carries %d"
                    % (n, len(elf)))
    return t


def t_load_over_1mib(c):
    """elf_len 1 MiB + 1 and that many bytes really there: LIMIT."""
    n = (1 << 20) + 1
    elf = c.s.elf + bytes(n - len(c.s.elf))
    r = ndp_load(c.fe.mem, XRP, elf, "xrp_peek")
    expect_load(c, r, NDP_S_LIMIT, r"object of 1048577 bytes exceeds the 1048576-byte limit")


def t_load_empty_object(c):
    """elf_len 0 and no object bytes: lengths agree, the loader refuses."""
    r = ndp_load(c.fe.mem, XRP, b"", "xrp_peek")
    _, text = expect_load(c, r, NDP_S_REJECTED)
    check(len(text) > 0, "empty log for a rejected object")


def t_load_missing_section(c):
    r = ndp_load(c.fe.mem, XRP, c.s.elf, "no_such_section")
    _, text = expect_load(c, r, NDP_S_REJECTED)
    check("no_such_section" in text, "the log does not name the section: %r" % text)
    c.log(r"vm0: LOAD of section 'no_such_section' \(xrp\) rejected")


def t_load_garbage_elf(c):
    junk = b"\x7fELF" + bytes(random.Random(7).randrange(256) for _ in range(3000))
    r = ndp_load(c.fe.mem, XRP, junk, "xrp_peek")
    _, text = expect_load(c, r, NDP_S_REJECTED)
    check(len(text) > 0, "empty log for a rejected object")
    c.log(r"vm0: LOAD of section 'xrp_peek' \(xrp\) rejected: ")


def t_load_tiny_log(c):
    """The same garbage with room for 8 log bytes: 7 of the text + NUL."""
    junk = b"not an ELF object at all " * 40
    full = ndp_load(c.fe.mem, XRP, junk, "xrp_peek")
    _, text = expect_load(c, full, NDP_S_REJECTED)
    check(len(text) > 8, "log %r too short for this case" % text)
    r = ndp_load(c.fe.mem, XRP, junk, "xrp_peek", log_cap=8)
    _, short = expect_load(c, r, NDP_S_REJECTED, log_cap=8)
    check(short == text[:7], "truncated log %r, expected %r" % (short, text[:7]))


def t_load_log_cap_1(c):
    r = ndp_load(c.fe.mem, XRP, b"garbage", "xrp_peek", log_cap=1)
    _, short = expect_load(c, r, NDP_S_REJECTED, log_cap=1)
    check(short == "", "1-byte log %r" % short)


def t_load_no_log_buffer(c):
    r = ndp_load(c.fe.mem, XRP, b"garbage", "xrp_peek", log_cap=0)
    expect_load(c, r, NDP_S_REJECTED, log_cap=0)


def t_load_no_room_for_result(c):
    r = NdpReq(c.fe.mem, NDP_T_LOAD, [NDP_LOAD.pack(XRP, len(c.s.elf), b"xrp_peek"), c.s.elf], [10])
    c.do(r, S_IOERR, 1)
    check(untouched(r, 0), "the device wrote into a too-small LOAD result")
    c.log(r"NDP LOAD without room for its result")


def t_load_section_not_terminated(c):
    r = ndp_load(c.fe.mem, XRP, c.s.elf, b"A" * 64)
    _, text = expect_load(c, r, NDP_S_REJECTED)
    check("A" * 64 not in text, "the log names a section of 64 'A's: %r" % text)
    line = c.log(r"vm0: LOAD of section 'A+' \(xrp\) rejected")
    m = re.search(r"section '(A+)'", line)
    check(m and len(m.group(1)) == 63, "the daemon used a section name of %d bytes"
          % (len(m.group(1)) if m else -1))


def load_type_case(prog_type):
    def t(c):
        r = ndp_load(c.fe.mem, prog_type, c.s.elf, "xrp_peek")
        expect_load(c, r, NDP_S_BAD_REQUEST, r"unknown program type %d" % prog_type)
    return t


def run_peek(c, handle, sector, fe=None, q=None, io_len=SECTOR):
    """READ_ND through xrp_peek: checks data, scratch and result."""
    fe = fe or c.fe
    r = ndp_io(fe.mem, NDP_T_READ_ND, handle, sector, io_len, scratch=bytes(16))
    c.do(r, S_OK, io_len + 16 + RES_LEN + 1, fe, q)
    res = r.result()
    check(res == (NDP_S_OK, 1, 0, io_len), "READ_ND result %r" % (res,))
    want = c.img.sectors(sector, io_len // SECTOR)
    check(r.wpart(0) == want, "READ_ND returned the wrong data")
    check(r.wpart(1) == want[:16], "xrp_peek scratch %r" % r.wpart(1))
    return r


def t_load_valid(c):
    r = ndp_load(c.fe.mem, XRP, c.s.elf, "xrp_peek")
    h, _ = expect_load(c, r, NDP_S_OK, r"loaded section 'xrp_peek' as a xrp program: \d+ instructions")
    check(h != 0, "handle 0")
    run_peek(c, h, 777)


def t_load_17th(c):
    """16 programs per VM (the table is empty after every earlier case):
    the 17th is LIMIT, and after an UNLOAD a LOAD fits again."""
    handles = []
    for i in range(16):
        r = ndp_load(c.fe.mem, XRP, c.s.elf, "xrp_peek")
        h, _ = expect_load(c, r, NDP_S_OK)
        handles.append(h)
    check(len(set(handles)) == 16, "handles not distinct: %r" % handles)
    r = ndp_load(c.fe.mem, XRP, c.s.elf, "xrp_peek")
    expect_load(c, r, NDP_S_LIMIT, r"already has 16 programs")
    run_peek(c, handles[15], 3)
    u = c.do(ndp_unload(c.fe.mem, handles[4]), S_OK, 5)
    check(U32.unpack(u.wpart(0))[0] == NDP_S_OK, "UNLOAD failed")
    r = ndp_load(c.fe.mem, XRP, c.s.elf, "xrp_peek")
    h, _ = expect_load(c, r, NDP_S_OK)
    check(h not in handles, "a new program got the handle %d of an unloaded one" % h)


def t_load_split_many(c):
    """VALID: header, struct and ELF over ~240 descriptors of odd sizes,
    some of them empty (the header's type over a 1-byte and a 15-byte
    descriptor, the struct split too)."""
    fe = c.frontend(queue_size=256)
    c.q = c.disk.pick_queue()
    total = 16 + NDP_LOAD.size + len(c.s.elf)
    rsplit = split_lengths(total, [1, 15, 100, 211, 0, 3, 77, 130, 29, 64, 180, 150])
    check(len(rsplit) + 5 <= 256, "%d descriptors: too many for this case" % len(rsplit))
    r = ndp_load(fe.mem, XRP, c.s.elf, "xrp_peek", rsplit=rsplit, wsplit=[7, 9, 100, 3996, 1])
    ulen = c.submit(r, fe)
    h, st, log_len, log = load_fields(r)
    check(r.status_byte() == S_OK and st == NDP_S_OK, "status %d/%s: %r" % (
        r.status_byte(), vc.ndp_status_name(st), log[:min(log_len, 120)]))
    c.track(h)
    check(ulen == 16 + log_len + 1, "used len %d" % ulen)
    check_log_buffer(log, log_len, 4096)
    run_peek(c, h, 4000, fe)


# ==== UNLOAD ===================================================================================


def unload_len_case(rlen, wlen):
    def t(c):
        r = NdpReq(c.fe.mem, NDP_T_UNLOAD, [NDP_UNLOAD.pack(1, 0)[:rlen] + bytes(max(0, rlen - 8))],
                   [wlen])
        c.do(r, S_IOERR, 1)
        check(untouched(r, 0), "the device wrote the NDP status of a malformed UNLOAD")
        c.log(r"NDP UNLOAD with wrong lengths")
    return t


def t_unload_unknown(c):
    for h in (0, 0xFFFFFFFF, 12345):
        r = c.do(ndp_unload(c.fe.mem, h), S_OK, 5)
        st = U32.unpack(r.wpart(0))[0]
        check(st == NDP_S_NO_PROGRAM, "UNLOAD of %d: %s" % (h, vc.ndp_status_name(st)))


def t_unload_valid(c):
    h = c.load()
    r = c.do(ndp_unload(c.fe.mem, h), S_OK, 5)
    check(U32.unpack(r.wpart(0))[0] == NDP_S_OK, "UNLOAD: %s" % vc.ndp_status_name(U32.unpack(r.wpart(0))[0]))
    r = c.do(ndp_unload(c.fe.mem, h), S_OK, 5)
    check(U32.unpack(r.wpart(0))[0] == NDP_S_NO_PROGRAM, "second UNLOAD of the same handle: %s"
          % vc.ndp_status_name(U32.unpack(r.wpart(0))[0]))
    r = ndp_io(c.fe.mem, NDP_T_READ_ND, h, 5, SECTOR, scratch=bytes(16))
    c.do(r, S_OK, SECTOR + 16 + RES_LEN + 1)
    check(r.result()[0] == NDP_S_NO_PROGRAM, "READ_ND with an unloaded handle: %r" % (r.result(),))


def t_unload_while_running(c):
    """UNLOAD of a program a request is running: READ_ND (1024 hops of
    xrp_forever) and UNLOAD published together on one queue, so the worker
    starts the READ_ND first.  The UNLOAD succeeds at once, the request
    finishes with the program."""
    h = c.load("xrp_forever")
    vq = c.fe.vqs[c.queue()]
    r = ndp_io(c.fe.mem, NDP_T_READ_ND, h, 0, SECTOR, max_hops=1024)
    u = ndp_unload(c.fe.mem, h)
    old = vq.avail_idx
    h_nd = vq.add_chain(r.segs)
    h_un = vq.add_chain(u.segs)
    vq.kick(old)
    got = dict(vq.wait_used(2, 5.0))
    check(len(got) == 2, "%d of 2 requests completed" % len(got))
    check(got[h_un] == 5 and u.status_byte() == S_OK and U32.unpack(u.wpart(0))[0] == NDP_S_OK,
          "UNLOAD while running: status %d, used %d, NDP %s" % (
              u.status_byte(), got[h_un], vc.ndp_status_name(U32.unpack(u.wpart(0))[0])))
    check(got[h_nd] == SECTOR + RES_LEN + 1 and r.status_byte() == S_OK, "READ_ND: status %d used %d"
          % (r.status_byte(), got[h_nd]))
    check(r.result() == (NDP_S_HOP_LIMIT, 1024, 0, SECTOR), "READ_ND result %r" % (r.result(),))
    r = ndp_io(c.fe.mem, NDP_T_READ_ND, h, 0, SECTOR)
    c.do(r, S_OK, SECTOR + RES_LEN + 1)
    check(r.result()[0] == NDP_S_NO_PROGRAM, "READ_ND after the UNLOAD: %r" % (r.result(),))


# ==== READ_ND / WRITE_ND ======================================================================


def expect_bad_request(c, r, regex, wb):
    """Malformed READ_ND/WRITE_ND: virtio OK, BAD_REQUEST in the result
    struct (the last 24 bytes before the status), used len = the writable
    bytes, nothing else written."""
    c.do(r, S_OK, wb)
    res = r.result()
    check(res == (NDP_S_BAD_REQUEST, 0, 0, 0), "result %r, expected BAD_REQUEST" % (res,))
    rest = r.read_w(0, r.wlen - 1 - RES_LEN)
    check(all(b == UNTOUCHED for b in rest), "the device wrote more than the result")
    c.log(r"vm0: queue \d+: malformed NDP request: " + regex)


def nd_bad(regex, type_=NDP_T_READ_ND, **kw):
    """A READ_ND/WRITE_ND built with ndp_io(**kw) (handle 1: never checked
    before the lengths) that must come back BAD_REQUEST."""
    def t(c):
        kw.setdefault("io_len", SECTOR)
        r = ndp_io(c.fe.mem, type_, 1, kw.pop("sector", 10), **kw)
        expect_bad_request(c, r, regex, r.wlen)
    return t


LIMITS = r"limits: "
MISMATCH = r"descriptor lengths do not match the request"


def t_nd_meta_short(c):
    """meta_len says 100, 50 bytes are there."""
    r = ndp_io(c.fe.mem, NDP_T_READ_ND, 1, 10, SECTOR, meta=bytes(50), meta_len=100)
    expect_bad_request(c, r, MISMATCH + r": readable 98 \(expected 148\)", r.wlen)


def t_nd_readable_shorter_than_fixed(c):
    """On a ring of a size not used before (fresh per-request NDP state):
    the log names the real problem, not a stale request type."""
    c._fe = c.frontend(queue_size=32)
    io = NDP_IO.pack(1, SECTOR, 0, 0, SECTOR, 0, 0, 0)[:20]
    r = NdpReq(c.fe.mem, NDP_T_READ_ND, [io], [SECTOR, RES_LEN])
    expect_bad_request(c, r, r"readable part of 36 bytes \(expected 48\.\.", r.wlen)


def t_nd_readable_over_max(c):
    io = NDP_IO.pack(1, SECTOR, 4096, 4096, 4096, 0, 0, 0)
    r = NdpReq(c.fe.mem, NDP_T_WRITE_ND, [io, bytes(4096 * 3 + 1)], [4096, RES_LEN])
    expect_bad_request(c, r, r"readable part of 12337 bytes \(expected 48\.\.12336\)", r.wlen)


def t_nd_status_only(c):
    """A writable part of 1 byte: no room for a result, the status says IOERR."""
    io = NDP_IO.pack(1, SECTOR, 0, 0, 0, 0, 0, 0)
    r = NdpReq(c.fe.mem, NDP_T_READ_ND, [io], [])
    c.do(r, S_IOERR, 1)
    c.log(r"malformed NDP request: no room for the result and status \(1 writable bytes\)")


def t_nd_result_too_small(c):
    """Writable 20 + 1 bytes: no room for the 24-byte result: IOERR."""
    io = NDP_IO.pack(1, SECTOR, 0, 0, 0, 0, 0, 0)
    r = NdpReq(c.fe.mem, NDP_T_READ_ND, [io], [20])
    c.do(r, S_IOERR, 1)
    check(untouched(r, 0), "the device wrote into a too-small result")
    c.log(r"malformed NDP request: no room for the result and status \(21 writable bytes\)")


def t_nd_header_split_1_15(c):
    """VALID: the header's type over a 1-byte descriptor (and an empty one)."""
    h = c.load()
    sector = 4321
    r = ndp_io(c.fe.mem, NDP_T_READ_ND, h, sector, SECTOR, scratch=bytes(16),
               rsplit=[1, 0, 15, 32, 16])
    c.do(r, S_OK, SECTOR + 16 + RES_LEN + 1)
    check(r.result() == (NDP_S_OK, 1, 0, SECTOR), "result %r" % (r.result(),))
    check(r.wpart(0) == c.img.sectors(sector), "wrong data")


def t_probe_header_split(c):
    """VALID: PROBE's header over 2 + 14 bytes."""
    r = c.do(ndp_probe(c.fe.mem, rsplit=[2, 14]), S_OK, NDP_PROBE.size + 1)
    check(NDP_PROBE.unpack(r.wpart(0))[0] == vc.NDP_MAGIC, "no magic")


def t_nd_result_split(c):
    """VALID: data over 2 descriptors, scratch over 2, the result over 2
    (10 + 14), the status byte alone; the header split 5 + 11."""
    h = c.load()
    sector = 1234
    r = ndp_io(c.fe.mem, NDP_T_READ_ND, h, sector, 1024, scratch=bytes(16), meta=b"m" * 8,
               rsplit=[5, 11, 20, 12, 8, 16], wsplit=[100, 924, 5, 11, 10, 14, 1])
    c.do(r, S_OK, 1024 + 16 + RES_LEN + 1)
    check(r.result() == (NDP_S_OK, 1, 0, 1024), "result %r" % (r.result(),))
    want = c.img.sectors(sector, 2)
    check(r.wpart(0) == want, "wrong data")
    check(r.wpart(1) == want[:16], "wrong scratch")


def t_nd_unknown_handle(c):
    # 0xBCDEF: epoch field 0, a value no daemon gives out (0xABCDEF would
    # name epoch 10: "from an earlier daemon", STATE_LOST).
    r = ndp_io(c.fe.mem, NDP_T_READ_ND, 0xBCDEF, 10, SECTOR, scratch=bytes(8))
    c.do(r, S_OK, SECTOR + 8 + RES_LEN + 1)
    check(r.result() == (NDP_S_NO_PROGRAM, 0, 0, 0), "result %r" % (r.result(),))
    c.log(r"vm0: queue \d+: NDP request ended with no-program: no program with handle 773615")


def other_epoch(v):
    """v as an earlier daemon would have given it: another epoch (1..0xffe)."""
    e = v >> 20
    check(1 <= e <= 0xFFE, "handle/key 0x%x has epoch %d" % (v, e))
    return ((e % 0xFFE) + 1) << 20 | (v & 0xFFFFF)


def t_state_lost_other_epoch(c):
    """Handles and keys of another daemon instance answer STATE_LOST on
    every request that names one; values no instance gives out stay
    NO_PROGRAM / NO_MEMORY."""
    h = c.load()
    old = other_epoch(h)
    r = ndp_io(c.fe.mem, NDP_T_READ_ND, old, 10, SECTOR, scratch=bytes(8))
    c.do(r, S_OK, SECTOR + 8 + RES_LEN + 1)
    check(r.result() == (NDP_S_STATE_LOST, 0, 0, 0), "READ_ND of an earlier handle: %r" % (r.result(),))
    c.log(r"NDP request ended with state-lost: handle %d is from before the daemon restarted" % old)
    r = c.do(ndp_unload(c.fe.mem, old), S_OK, 5)
    check(U32.unpack(r.wpart(0))[0] == NDP_S_STATE_LOST, "UNLOAD: %s" % vc.ndp_status_name(U32.unpack(r.wpart(0))[0]))
    m = c.fe.mem
    st, key = reg(c, m.gpa + m.size - 65536, 4096)
    check(st == NDP_S_OK, "REG_MEM")
    check(unreg(c, other_epoch(key)) == NDP_S_STATE_LOST, "UNREG_MEM of an earlier key")
    check(unreg(c, key & 0xFFFFF) == NDP_S_NO_MEMORY, "UNREG_MEM of a never-valid key")
    st, fkey = reg_file(c, 8 * K4, [(0, 0, K4)])
    check(st == NDP_S_OK, "REG_FILE")
    check(unreg_file(c, other_epoch(fkey)) == NDP_S_STATE_LOST, "UNREG_FILE of an earlier key")
    res, _ = file_peek(c, h, other_epoch(fkey), 0)
    check(res == (NDP_S_STATE_LOST, 0, 0, 0), "file READ_ND with an earlier key: %r" % (res,))
    run_peek(c, h, 42)  # the real one still runs


def t_never_valid_handles_no_program(c):
    """Epoch fields 0 and 0xfff are never given out: NO_PROGRAM, not
    STATE_LOST (0, small numbers and 0xffffffff are covered elsewhere)."""
    h = c.load()
    for never in (0xFFFFF, 0xFFF00000 | (h & 0xFFFFF)):
        r = ndp_io(c.fe.mem, NDP_T_READ_ND, never, 10, SECTOR, scratch=bytes(8))
        c.do(r, S_OK, SECTOR + 8 + RES_LEN + 1)
        check(r.result()[0] == NDP_S_NO_PROGRAM, "handle 0x%x: %r" % (never, r.result()))


def t_state_lost_across_restart(c):
    """A program, memory and a file registered, then the daemon is killed
    and restarted: every request naming them answers STATE_LOST; loading
    and registering again works, under new handles and keys."""
    h = c.load()
    m = c.fe.mem
    st, key = reg(c, m.gpa + m.size - 65536, 4096)
    check(st == NDP_S_OK, "REG_MEM")
    st, fkey = reg_file(c, 8 * K4, [(0, 0, K4)])
    check(st == NDP_S_OK, "REG_FILE")
    c.close_all()
    c.d.restart()
    c.mark = c.d.mark()
    fe = c.fe  # a new frontend, the case's from here on
    r = ndp_io(fe.mem, NDP_T_READ_ND, h, 10, SECTOR, scratch=bytes(8))
    c.do(r, S_OK, SECTOR + 8 + RES_LEN + 1, fe, 0)
    check(r.result() == (NDP_S_STATE_LOST, 0, 0, 0), "READ_ND after the restart: %r" % (r.result(),))
    r = c.do(ndp_unload(fe.mem, h), S_OK, 5, fe, 0)
    check(U32.unpack(r.wpart(0))[0] == NDP_S_STATE_LOST, "UNLOAD after the restart")
    check(unreg(c, key, fe) == NDP_S_STATE_LOST, "UNREG_MEM after the restart")
    check(unreg_file(c, fkey, fe) == NDP_S_STATE_LOST, "UNREG_FILE after the restart")
    c.progs, c.regs, c.files = [], [], []
    h2 = c.load(fe=fe)
    check(h2 != h and h2 >> 20 != h >> 20, "new handle 0x%x, old 0x%x (the epoch must differ)" % (h2, h))
    res, _ = file_peek(c, h2, fkey, 0, fe=fe)
    check(res == (NDP_S_STATE_LOST, 0, 0, 0), "file READ_ND with the old key: %r" % (res,))
    run_peek(c, h2, 42, fe, 0)


def t_nd_other_vms_handle(c):
    """A handle LOADed through vm1's socket means nothing on vm0."""
    other = c.d.disks["other"]
    fe1 = c.frontend(other)
    h = c.load(fe=fe1, disk=other)
    run_peek_other = ndp_io(fe1.mem, NDP_T_READ_ND, h, 42, SECTOR, scratch=bytes(16))
    c.do(run_peek_other, S_OK, SECTOR + 16 + RES_LEN + 1, fe1, 0)
    check(run_peek_other.result()[0] == NDP_S_OK, "the program does not run on its own VM")
    r = ndp_io(c.fe.mem, NDP_T_READ_ND, h, 42, SECTOR, scratch=bytes(16))
    c.do(r, S_OK, SECTOR + 16 + RES_LEN + 1)
    check(r.result() == (NDP_S_NO_PROGRAM, 0, 0, 0), "vm1's handle on vm0: result %r" % (r.result(),))
    c.log(r"vm0: queue \d+: NDP request ended with no-program")
    u = c.do(ndp_unload(c.fe.mem, h), S_OK, 5)
    check(U32.unpack(u.wpart(0))[0] == NDP_S_NO_PROGRAM, "vm0 unloaded vm1's program")
    run_peek_other = ndp_io(fe1.mem, NDP_T_READ_ND, h, 42, SECTOR, scratch=bytes(16))
    c.do(run_peek_other, S_OK, SECTOR + 16 + RES_LEN + 1, fe1, 0)
    check(run_peek_other.result()[0] == NDP_S_OK, "vm1's program is gone after vm0's UNLOAD")


def nd_range_case(sector, io_len=SECTOR, regex=None):
    def t(c):
        h = c.load()
        r = ndp_io(c.fe.mem, NDP_T_READ_ND, h, sector, io_len)
        c.do(r, S_OK, io_len + RES_LEN + 1)
        check(r.result() == (NDP_S_OUT_OF_RANGE, 0, 0, 0), "result %r, expected out-of-range"
              % (r.result(),))
        if regex:
            c.log(regex)
    return t


def t_nd_hop_limit(c, max_hops=1024, hops=1024):
    h = c.load("xrp_forever")
    r = ndp_io(c.fe.mem, NDP_T_READ_ND, h, 0, SECTOR, max_hops=max_hops)
    c.do(r, S_OK, SECTOR + RES_LEN + 1, timeout=10)
    check(r.result() == (NDP_S_HOP_LIMIT, hops, 0, SECTOR), "result %r" % (r.result(),))
    check(r.wpart(0) == c.img.sectors(0), "wrong data")
    c.log(r"NDP request ended with hop-limit: hop limit of %d reached" % hops)


def t_nd_default_hops(c):
    t_nd_hop_limit(c, 0, 64)


def t_load_section_newline(c):
    """A section name with a newline and a forged prefix: logged escaped
    (\\x0a), on one line; no line of the log starts the forged way."""
    r = ndp_load(c.fe.mem, XRP, c.s.elf, b"x\n2026-01-01T00:00:00.000Z error vm1: forged\x1b[31m")
    expect_load(c, r, NDP_S_REJECTED)
    line = c.log(r"vm0: LOAD of section 'x\\x0a2026-01-01T00:00:00\.000Z error vm1: forged\\x1b\[31m' \(xrp\)")
    text = c.d.log_since(c.mark)
    check(not any(l.startswith("2026-01-01") or "vm1: forged" in l.split("vm0:")[0]
                  for l in text.splitlines()), "a forged line in the log: %r" % text[-300:])
    check("\x1b" not in text, "an escape byte reached the log")
    return line


def t_load_reject_log_flood(c):
    """200 LOADs of garbage in a few seconds: each answered REJECTED, but
    the VM's log lines stay bounded (50 a second, then one line saying how
    many were suppressed)."""
    t0 = time.monotonic()
    for _ in range(200):
        r = ndp_load(c.fe.mem, XRP, b"garbage", "xrp_peek")
        expect_load(c, r, NDP_S_REJECTED)
    took = time.monotonic() - t0
    time.sleep(1.1)  # the window ends: the suppressed count is logged with the next line
    r = ndp_load(c.fe.mem, XRP, b"garbage", "xrp_peek")
    expect_load(c, r, NDP_S_REJECTED)
    lines = [l for l in c.d.log_since(c.mark).splitlines() if " vm0: " in l]
    rejected = [l for l in lines if "LOAD of section 'xrp_peek' (xrp) rejected" in l]
    allowed = 50 * (int(took) + 2) + 1
    check(len(rejected) <= allowed, "%d log lines for 201 rejected LOADs in %.1f s" % (len(rejected), took))
    check(any("more such messages suppressed" in l for l in lines), "no line says lines were suppressed")
    time.sleep(1.1)  # later cases count on their log lines


def t_load_flood(c):
    """Eight LOADs of a program that takes milliseconds to verify, in the
    ring at once: at most two per VM are verified at a time, the rest get
    LIMIT with a reason, none is lost, and the queue keeps serving."""
    path = os.path.join(c.s.args.programs, "..", "..", "progs", "bpfkv_range.o")
    with open(path, "rb") as f:
        elf = f.read()
    fe, q = c.fe, c.queue()
    vq = fe.vqs[q]
    old = vq.avail_idx
    reqs = [ndp_load(fe.mem, 2, elf, "bpfkv_range") for _ in range(8)]
    heads = [vq.add_chain(r.segs) for r in reqs]
    vq.kick(old)
    used = vq.wait_used(len(reqs), 10.0)
    check(sorted(u[0] for u in used) == sorted(heads), "used ids %r, submitted %r"
          % ([u[0] for u in used], heads))
    loaded = limited = 0
    for r in reqs:
        handle, st, log_len, log = load_result(r)
        check(r.status_byte() == S_OK, "virtio status %d" % r.status_byte())
        if st == NDP_S_OK:
            c.track(handle)
            loaded += 1
        elif st == NDP_S_LIMIT:
            check(b"already queued or being verified" in log, "LIMIT without its reason: %r" % log[:120])
            limited += 1
        else:
            check(False, "unexpected NDP status %s: %r" % (vc.ndp_status_name(st), log[:120]))
    check(loaded >= 2 and limited >= 1 and loaded + limited == 8,
          "%d loaded, %d refused" % (loaded, limited))
    st, ulen, _ = fe.read(q, 0, 4096)
    check(st == S_OK and ulen == 4097, "read after the flood: status %d len %d" % (st, ulen))


def t_write_nd_readonly(c):
    data = os.urandom(1024)
    h = c.load()
    r = ndp_io(c.fe.mem, NDP_T_WRITE_ND, h, 8, 1024, data=data, scratch=bytes(16))
    c.do(r, S_OK, 16 + RES_LEN + 1)
    check(r.result() == (NDP_S_READ_ONLY, 0, 0, 0), "result %r" % (r.result(),))
    c.log(r"vm2: queue \d+: NDP request ended with read-only: WRITE_ND on a read-only disk")
    bad = c.img.mismatch()
    check(bad is None, "read-only image written: %s" % bad)


def t_write_nd_len_mismatch(c):
    r = ndp_io(c.fe.mem, NDP_T_WRITE_ND, 1, 8, 1024, data=os.urandom(512))
    expect_bad_request(c, r, r"WRITE_ND carries 512 data bytes for a 1024-byte write", r.wlen)


def t_write_nd_valid(c):
    h = c.load()
    sector = 3000
    data = os.urandom(1024)
    r = ndp_io(c.fe.mem, NDP_T_WRITE_ND, h, sector, 1024, data=data, scratch=bytes(16))
    c.do(r, S_OK, 16 + RES_LEN + 1)
    check(r.result() == (NDP_S_OK, 1, 0, 1024), "result %r" % (r.result(),))
    c.img.update(sector * SECTOR, data)
    check(r.wpart(0) == data[:16], "scratch %r: the program did not see the written data"
          % r.wpart(0))


# ==== REG_MEM / UNREG_MEM =====================================================================


def reg_bad_case(gpa_fn, length, regex=r"REG_MEM of .*: not memory this guest has"):
    def t(c):
        gpa = gpa_fn(c.fe.mem)
        r = c.do(ndp_reg_mem(c.fe.mem, gpa, length), S_OK, NDP_REG_RESULT.size + 1)
        res = NDP_REG_RESULT.unpack(r.wpart(0))
        if res[0] == NDP_S_OK:
            c.regs.append((c.disk, res[1]))
        check(res == (NDP_S_NO_MEMORY, 0), "REG_MEM 0x%x+%d: %r" % (gpa, length, res))
        if regex:
            c.log(regex)
    return t


def reg(c, gpa, length, fe=None):
    fe = fe or c.fe
    r = c.do(ndp_reg_mem(fe.mem, gpa, length), S_OK, NDP_REG_RESULT.size + 1, fe)
    st, key = NDP_REG_RESULT.unpack(r.wpart(0))
    if st == NDP_S_OK:
        c.regs.append((c.disk, key))
    return st, key


def unreg(c, key, fe=None):
    fe = fe or c.fe
    r = c.do(ndp_unreg_mem(fe.mem, key), S_OK, 5, fe)
    return U32.unpack(r.wpart(0))[0]


def t_reg_5th(c):
    m = c.fe.mem
    keys = []
    for i in range(4):
        st, key = reg(c, m.gpa + m.size - (i + 1) * 65536, 4096)
        check(st == NDP_S_OK and key != 0, "registration %d: %s key %d" % (i, vc.ndp_status_name(st), key))
        keys.append(key)
    check(len(set(keys)) == 4, "keys not distinct: %r" % keys)
    st, key = reg(c, m.gpa + 8192, 4096)
    check((st, key) == (NDP_S_LIMIT, 0), "5th registration: %s key %d" % (vc.ndp_status_name(st), key))
    for k in keys:
        st = unreg(c, k)
        check(st == NDP_S_OK, "UNREG_MEM %d: %s" % (k, vc.ndp_status_name(st)))
        st = unreg(c, k)
        check(st == NDP_S_NO_MEMORY, "second UNREG_MEM %d: %s" % (k, vc.ndp_status_name(st)))
    st, key = reg(c, m.gpa + 8192, 4096)
    check(st == NDP_S_OK, "registration after UNREG_MEM: %s" % vc.ndp_status_name(st))


def t_unreg_unknown(c):
    for key in (0, 1, 0xFFFFFFFF, 777):
        st = unreg(c, key)
        check(st == NDP_S_NO_MEMORY, "UNREG_MEM of unknown key %d: %s" % (key, vc.ndp_status_name(st)))


def reg_len_case(type_, rlen, wlen, regex):
    def t(c):
        body = NDP_REG_MEM.pack(c.fe.mem.gpa + 8192, 4096) if type_ == NDP_T_REG_MEM else \
            NDP_UNREG_MEM.pack(1, 0)
        body = (body + bytes(32))[:rlen]
        r = NdpReq(c.fe.mem, type_, [body], [wlen])
        c.do(r, S_IOERR, 1)
        check(wlen == 0 or untouched(r, 0), "the device wrote the result of a malformed request")
        c.log(regex)
    return t


# ==== REG_FILE / UNREG_FILE and file requests ==================================================

K4 = 4096


def reg_file(c, size, extents, fe=None, **kw):
    """REG_FILE that must come back virtio OK with a result: (status, key)."""
    fe = fe or c.fe
    r = c.do(ndp_reg_file(fe.mem, size, extents, **kw), S_OK, NDP_REG_RESULT.size + 1, fe,
             None if fe is c.fe else 0)
    st, key = NDP_REG_RESULT.unpack(r.wpart(0))
    if st == NDP_S_OK:
        c.files.append((c.disk, key))
    return st, key


def unreg_file(c, key, fe=None):
    fe = fe or c.fe
    r = c.do(ndp_unreg_file(fe.mem, key), S_OK, 5, fe, None if fe is c.fe else 0)
    st = U32.unpack(r.wpart(0))[0]
    if st == NDP_S_OK:
        c.files = [(d, k) for d, k in c.files if k != key]
    return st


def file_peek(c, handle, key, file_off, io_len=SECTOR, fe=None):
    """A file READ_ND through xrp_peek: returns (result, data)."""
    fe = fe or c.fe
    r = ndp_io(fe.mem, NDP_T_READ_ND, handle, file_off // SECTOR, io_len, scratch=bytes(16),
               flags=NDP_IO_F_FILE, file_key=key)
    c.do(r, S_OK, io_len + 16 + RES_LEN + 1, fe, None if fe is c.fe else 0)
    return r.result(), r.wpart(0)


def reg_file_bad(regex, size=8 * K4, extents=((0, 0, K4),), status=NDP_S_BAD_REQUEST, **kw):
    """A REG_FILE the device must refuse with `status`, key 0 and a log line."""
    def t(c):
        st, key = reg_file(c, size, extents, **kw)
        check((st, key) == (status, 0), "REG_FILE: %s key %d, expected %s"
              % (vc.ndp_status_name(st), key, vc.ndp_status_name(status)))
        c.log(r"vm0: queue \d+: REG_FILE refused.*" + regex)
    return t


def t_reg_file_valid(c):
    """VALID: a two-extent map; a READ_ND across both extents reads the
    right disk sectors; UNREG_FILE; the key is then dead."""
    h = c.load()
    st, key = reg_file(c, 2 * K4, [(0, 100 * SECTOR, K4), (K4, 40 * SECTOR, K4)])
    check(st == NDP_S_OK and key != 0, "REG_FILE: %s key %d" % (vc.ndp_status_name(st), key))
    res, data = file_peek(c, h, key, K4 - 2 * SECTOR, 4 * SECTOR)
    check(res == (NDP_S_OK, 1, 0, 4 * SECTOR), "file READ_ND result %r" % (res,))
    want = c.img.sectors(106, 2) + c.img.sectors(40, 2)
    check(data == want, "file READ_ND read the wrong sectors")
    check(unreg_file(c, key) == NDP_S_OK, "UNREG_FILE failed")
    check(unreg_file(c, key) == NDP_S_NO_PROGRAM, "second UNREG_FILE did not answer no-program")
    res, _ = file_peek(c, h, key, 0)
    check(res == (NDP_S_NO_PROGRAM, 0, 0, 0), "READ_ND with a stale key: %r" % (res,))
    c.log(r"vm0: queue \d+: NDP request ended with no-program: no file with key %d on this disk" % key)


def t_reg_file_max_extents(c):
    """VALID: 16384 one-sector extents, backwards over the whole disk (a
    393 KiB request); a 4096-byte read through it is 8 disk I/Os."""
    n = vc.NDP_MAX_EXTENTS
    exts = [(i * SECTOR, (CAP - 1 - i) * SECTOR, SECTOR) for i in range(n)]
    st, key = reg_file(c, n * SECTOR, exts)
    check(st == NDP_S_OK, "REG_FILE of %d extents: %s" % (n, vc.ndp_status_name(st)))
    h = c.load()
    res, data = file_peek(c, h, key, 16 * SECTOR, 8 * SECTOR)
    check(res == (NDP_S_OK, 1, 0, 8 * SECTOR), "result %r" % (res,))
    want = b"".join(c.img.sectors(CAP - 1 - 16 - i) for i in range(8))
    check(data == want, "the 8 pieces did not land in order")


def t_reg_file_split_many(c):
    """VALID: the request over many small descriptors."""
    exts = [(i * K4, (200 + 3 * i) * K4, K4) for i in range(10)]
    total = 16 + NDP_REG_FILE.size + 10 * NDP_EXTENT.size
    st, key = reg_file(c, 10 * K4, exts, rsplit=split_lengths(total, [5, 11, 3, 24]))
    check(st == NDP_S_OK, "REG_FILE over many descriptors: %s" % vc.ndp_status_name(st))


def t_reg_file_17th(c):
    keys = []
    for i in range(vc.NDP_MAX_FILES):
        st, key = reg_file(c, K4, [(0, i * K4, K4)])
        check(st == NDP_S_OK, "file %d: %s" % (i, vc.ndp_status_name(st)))
        keys.append(key)
    check(len(set(keys)) == len(keys), "keys not distinct: %r" % keys)
    st, key = reg_file(c, K4, [(0, 0, K4)])
    check((st, key) == (NDP_S_LIMIT, 0), "17th file: %s key %d" % (vc.ndp_status_name(st), key))
    c.log(r"vm0: queue \d+: REG_FILE refused \(limit\): this VM already has 16 files registered")
    check(unreg_file(c, keys[3]) == NDP_S_OK, "UNREG_FILE failed")
    st, key = reg_file(c, K4, [(0, 0, K4)])
    check(st == NDP_S_OK and key not in keys, "registration after UNREG_FILE: %s key %d"
          % (vc.ndp_status_name(st), key))


def t_reg_file_truncated_fixed(c):
    r = NdpReq(c.fe.mem, NDP_T_REG_FILE, [NDP_REG_FILE.pack(K4, 1, 0)[:8]], [NDP_REG_RESULT.size])
    c.do(r, S_OK, NDP_REG_RESULT.size + 1)
    check(NDP_REG_RESULT.unpack(r.wpart(0)) == (NDP_S_BAD_REQUEST, 0), "result %r"
          % (NDP_REG_RESULT.unpack(r.wpart(0)),))
    c.log(r"REG_FILE refused: request of 24 bytes is truncated")


def reg_file_wlen_case(wlen):
    def t(c):
        r = NdpReq(c.fe.mem, NDP_T_REG_FILE, [NDP_REG_FILE.pack(K4, 1, 0), NDP_EXTENT.pack(0, 0, K4)],
                   [wlen] if wlen else [])
        c.do(r, S_IOERR, 1)
        check(wlen == 0 or untouched(r, 0), "the device wrote into a wrong-sized REG_FILE result")
        c.log(r"NDP REG_FILE: %d writable bytes, expected 9" % (wlen + 1))
    return t


def unreg_file_len_case(rlen, wlen):
    def t(c):
        body = (NDP_UNREG_FILE.pack(1, 0) + bytes(16))[:rlen]
        r = NdpReq(c.fe.mem, NDP_T_UNREG_FILE, [body], [wlen] if wlen else [])
        c.do(r, S_IOERR, 1)
        check(wlen == 0 or untouched(r, 0), "the device wrote the result of a malformed UNREG_FILE")
        c.log(r"NDP UNREG_FILE with wrong lengths")
    return t


def t_unreg_file_unknown(c):
    for key in (0, 1, 0xFFFFFFFF, 777):
        st = unreg_file(c, key)
        check(st == NDP_S_NO_PROGRAM, "UNREG_FILE of unknown key %d: %s" % (key, vc.ndp_status_name(st)))
    c.log(r"UNREG_FILE: no file with key 777 on this disk")


def t_file_unknown_key(c):
    h = c.load()
    for key in (12345, 0xFFFFFFFF):
        res, data = file_peek(c, h, key, 0)
        check(res == (NDP_S_NO_PROGRAM, 0, 0, 0), "key %d: result %r" % (key, res))
    c.log(r"no file with key 12345 on this disk")


def t_file_other_vms_key(c):
    """A key registered through vm1's socket means nothing on vm0."""
    other = c.d.disks["other"]
    fe1 = c.frontend(other)
    r = ndp_reg_file(fe1.mem, K4, [(0, 0, K4)])
    c.do(r, S_OK, NDP_REG_RESULT.size + 1, fe1, 0)
    st, key = NDP_REG_RESULT.unpack(r.wpart(0))
    check(st == NDP_S_OK, "REG_FILE on vm1: %s" % vc.ndp_status_name(st))
    c.files.append((other, key))
    h = c.load()
    res, _ = file_peek(c, h, key, 0)
    check(res == (NDP_S_NO_PROGRAM, 0, 0, 0), "vm1's key on vm0: %r" % (res,))


def t_file_first_io_in_hole(c):
    h = c.load()
    st, key = reg_file(c, 4 * K4, [(0, 0, K4), (2 * K4, 8 * K4, K4)])
    check(st == NDP_S_OK, "REG_FILE: %s" % vc.ndp_status_name(st))
    for off, ln in ((K4, SECTOR), (K4 - SECTOR, 2 * SECTOR), (3 * K4, SECTOR), (4 * K4, SECTOR)):
        res, data = file_peek(c, h, key, off, ln)
        check(res == (NDP_S_OUT_OF_RANGE, 0, 0, 0), "file offset %d: %r" % (off, res))
    c.log(r"I/O of 512 bytes at file offset 4096 of file %d is not in the file's map" % key)


# ==== other ======================================================================================


def t_unknown_vendor_type(c):
    for t in (0x52420042, 0x52420000, 0x524200FF):
        r = NdpReq(c.fe.mem, t, [bytes(16)], [64])
        c.do(r, S_UNSUPP, 1)
        check(untouched(r, 0), "the device wrote into an UNSUPP request's buffer")
        c.log(r"NDP request type 0x%x is not supported" % t)


def t_interleaved(c):
    """Normal I/O and NDP requests published together on one queue, in
    rounds; each completes with its own outcome."""
    fe = c.fe
    h = c.load()
    q = c.queue()
    vq = fe.vqs[q]
    rng = random.Random(11)
    for rnd in range(4):
        base = 5000 + rnd * 64
        reqs = []   # (req, checker)
        wdata = os.urandom(2048)
        w = BlkReq(fe.mem, vc.T_OUT, base, data=wdata)
        reqs.append((w, lambda r, u: (r.status_byte(), u) == (S_OK, 1)))
        nd = ndp_io(fe.mem, NDP_T_READ_ND, h, base + 8, SECTOR, scratch=bytes(16))
        want_nd = c.img.sectors(base + 8)
        reqs.append((nd, lambda r, u, want=want_nd: (r.status_byte(), u) == (S_OK, SECTOR + 16 + RES_LEN + 1)
                     and r.result() == (0, 1, 0, SECTOR) and r.wpart(0) == want and r.wpart(1) == want[:16]))
        rd = BlkReq(fe.mem, vc.T_IN, base + 16, in_len=4096)
        want_rd = c.img.sectors(base + 16, 8)
        reqs.append((rd, lambda r, u, want=want_rd: (r.status_byte(), u) == (S_OK, 4097)
                     and r.data_in() == want))
        pr = ndp_probe(fe.mem)
        reqs.append((pr, lambda r, u: (r.status_byte(), u) == (S_OK, 65)
                     and NDP_PROBE.unpack(r.wpart(0))[0] == vc.NDP_MAGIC))
        wnd_data = os.urandom(SECTOR)
        wnd = ndp_io(fe.mem, NDP_T_WRITE_ND, h, base + 32, SECTOR, data=wnd_data, scratch=bytes(16))
        reqs.append((wnd, lambda r, u, d=wnd_data: (r.status_byte(), u) == (S_OK, 16 + RES_LEN + 1)
                     and r.result() == (0, 1, 0, SECTOR) and r.wpart(0) == d[:16]))
        bad = ndp_io(fe.mem, NDP_T_READ_ND, h, base, SECTOR, flags=4)
        reqs.append((bad, lambda r, u: (r.status_byte(), u) == (S_OK, r.wlen)
                     and r.result()[0] == NDP_S_BAD_REQUEST))
        unk = ndp_io(fe.mem, NDP_T_READ_ND, 0xFFFF0, base, SECTOR)
        reqs.append((unk, lambda r, u: (r.status_byte(), u) == (S_OK, SECTOR + RES_LEN + 1)
                     and r.result()[0] == NDP_S_NO_PROGRAM))
        fl = BlkReq(fe.mem, vc.T_FLUSH, 0)
        reqs.append((fl, lambda r, u: (r.status_byte(), u) == (S_OK, 1)))
        rng.shuffle(reqs)
        heads = {}
        old = vq.avail_idx
        for r, chk in reqs:
            heads[vq.add_chain(r.segs)] = (r, chk)
        vq.kick(old)
        got = vq.wait_used(len(reqs), 5.0)
        check(len(got) == len(reqs), "round %d: %d of %d requests completed" % (rnd, len(got), len(reqs)))
        for head, ulen in got:
            r, chk = heads.pop(head)
            check(chk(r, ulen), "round %d: request type 0x%x: status %d used len %d%s"
                  % (rnd, r.type, r.status_byte(), ulen,
                     " result %r" % (r.result(),) if isinstance(r, NdpReq) and r.type in
                     (NDP_T_READ_ND, NDP_T_WRITE_ND) else ""))
        c.img.update(base * SECTOR, wdata)
        c.img.update((base + 32) * SECTOR, wnd_data)


def t_disconnect_mid_hops(c):
    """READ_NDs of 1024 hops each (xrp_forever) on every queue; the
    frontend vanishes while they run."""
    fe = c.frontend(queue_size=64)
    h = c.load("xrp_forever", fe=fe)
    per_q = 8
    for q in range(len(fe.vqs)):
        vq = fe.vqs[q]
        for _ in range(per_q):
            r = ndp_io(fe.mem, NDP_T_READ_ND, h, 0, SECTOR, max_hops=1024, scratch=bytes(64))
            vq.add_chain(r.segs)
        vq.kick()
    time.sleep(0.01)
    done = sum(vq.used_idx() for vq in fe.vqs)
    check(done < per_q * len(fe.vqs), "all %d requests had completed before the disconnect" % done)
    fe.close()
    c.log(r"vm0: frontend disconnected", levels=("info", "warn", "error"), timeout=5)


def t_reconnect_programs_survive(c):
    """Programs belong to the disk: a handle loaded by one frontend runs
    for the next one."""
    fe = c.frontend()
    h = c.load(fe=fe)
    fe.close()
    c.objs.remove(fe)
    fe2 = c.frontend()
    run_peek(c, h, 99, fe2, c.queue())


# ==== the runner ==================================================================================


class Suite:
    def __init__(self, args):
        self.args = args
        self.passed = 0
        self.failed = 0
        self.only = re.compile(args.only) if args.only else None
        self.workdir = tempfile.mkdtemp(prefix="rb-ndp-")
        with open(os.path.join(args.programs, "ndp_progs.o"), "rb") as f:
            self.elf = f.read()
        self.d = None

    def close(self):
        if self.d:
            self.d.stop()
        if not self.args.keep:
            for f in os.listdir(self.workdir):
                os.unlink(os.path.join(self.workdir, f))
            os.rmdir(self.workdir)
        else:
            print("# kept " + self.workdir)

    def second_client(self, disk):
        """A well-behaved frontend: write (unless read-only) + read back on
        another queue; PROBE, LOAD, READ_ND, UNLOAD; the images checked."""
        with Frontend(disk.sock, timeout=3.0, mem_size=4 * MiB, queue_size=64) as fe:
            sector = random.randrange(0, CAP - 16)
            qa, qb = 0, fe.device_queues - 1
            if disk.readonly:
                data = disk.img.sectors(sector, 16)
            else:
                data = os.urandom(16 * SECTOR)
                st, ulen = fe.write(qa, sector, data)
                check((st, ulen) == (S_OK, 1), "second client: write gave status %d, used len %d"
                      % (st, ulen))
                disk.img.update(sector * SECTOR, data)
            st, ulen, got = fe.read(qb, sector, len(data))
            check((st, ulen) == (S_OK, len(data) + 1), "second client: read gave status %d, used len %d"
                  % (st, ulen))
            check(got == data, "second client: read back different data")
            p = ndp_probe(fe.mem)
            check(fe.run(qa, p) == (S_OK, 65) and NDP_PROBE.unpack(p.wpart(0))[0] == vc.NDP_MAGIC,
                  "second client: PROBE failed")
            ld = ndp_load(fe.mem, XRP, self.elf, "xrp_peek")
            st, _ = fe.run(qb, ld)
            h, nst, log_len, log = load_result(ld)
            check(st == S_OK and nst == NDP_S_OK, "second client: LOAD gave %d/%s: %r"
                  % (st, vc.ndp_status_name(nst), log[:min(log_len, 120)]))
            try:
                r = ndp_io(fe.mem, NDP_T_READ_ND, h, sector, SECTOR, scratch=bytes(16))
                st, ulen = fe.run(qa, r)
                check((st, ulen, r.result()) == (S_OK, SECTOR + 16 + RES_LEN + 1, (0, 1, 0, SECTOR))
                      and r.wpart(0) == data[:SECTOR] and r.wpart(1) == data[:16],
                      "second client: READ_ND gave %d, used %d, result %r" % (st, ulen, r.result()))
            finally:
                u = ndp_unload(fe.mem, h)
                st, _ = fe.run(qb, u)
            check(st == S_OK and U32.unpack(u.wpart(0))[0] == NDP_S_OK, "second client: UNLOAD failed")
        for dk in self.d.disks.values():
            bad = dk.img.mismatch()
            check(bad is None, "second client: " + str(bad))

    def no_leftovers(self):
        """Once the frontends are gone, the daemon holds as many fds as
        when it started and no guest memory mapping."""
        d = self.d
        deadline = time.monotonic() + 3.0
        while True:
            n, m = vc.proc_fd_count(d.pid), vc.proc_maps_count(d.pid, "/memfd:")
            if n == d.idle_fds and m == 0:
                return
            if time.monotonic() > deadline:
                raise Failure("after the frontends left the daemon holds %d fds (%d when idle) "
                              "and %d guest memory mappings" % (n, d.idle_fds, m))
            time.sleep(0.02)

    def run(self, name, fn, disk="main"):
        if self.only and not self.only.search(name):
            return
        d = self.d
        dk = d.disks[disk]
        c = Ctx(self, d, dk)
        reason = None
        try:
            try:
                fn(c)
            finally:
                c.close_all()
            check(d.alive(), "the daemon died (exit status %s)" % d.proc.returncode)
            self.no_leftovers()
            c.cleanup_ndp()
            for other in d.disks.values():
                bad = other.img.mismatch()
                check(bad is None, bad)
            self.second_client(dk)
            self.no_leftovers()
        except Failure as e:
            reason = str(e)
        except Exception as e:
            reason = "%s: %s (line %d)" % (type(e).__name__, e,
                                           traceback.extract_tb(e.__traceback__)[-1].lineno)
        if reason is None:
            self.passed += 1
            print("PASS " + name, flush=True)
            return
        self.failed += 1
        print("FAIL %s: %s" % (name, reason), flush=True)
        for line in d.log_since(c.mark).splitlines()[-20:]:
            print("    | " + line)
        # Leave a working daemon (with empty program tables) for the next case.
        ok = d.alive()
        if ok:
            try:
                c.close_all()
                c.cleanup_ndp()
                self.second_client(dk)
            except Exception:
                ok = False
        if not ok:
            print("    (restarting rosenbridged)", flush=True)
            d.restart()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build/app/rosenbridged/rosenbridged"))
    ap.add_argument("--programs", default=os.path.join(ROOT, "build/tests/programs"),
                    help="directory holding ndp_progs.o")
    ap.add_argument("--only", help="run the cases whose name matches this regex")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--verbose", action="store_true", help="start the daemon with --verbose")
    args = ap.parse_args()
    for path, what in ((args.daemon, "daemon"), (os.path.join(args.programs, "ndp_progs.o"), "program")):
        if not os.path.exists(path):
            print("no %s at %s (build it: ninja -C build)" % (what, path))
            print("0 passed, 1 failed")
            return 1
    random.seed(0x5EED)
    s = Suite(args)
    t_start = time.monotonic()
    try:
        s.d = Daemon(args.daemon, s.workdir, args.verbose)
        R = s.run

        # -- PROBE
        R("probe_ok", t_probe_ok)
        R("probe_reply_split_over_4_descs", t_probe_split_reply)
        R("probe_writable_too_short", probe_wlen_case(32))
        R("probe_writable_too_long", probe_wlen_case(128))
        R("probe_status_byte_only", probe_wlen_case(0))
        R("probe_no_writable_part", no_writable_case(NDP_T_PROBE, b"", r"NDP PROBE without a status byte"))
        R("probe_header_split_2_14", t_probe_header_split)

        # -- LOAD
        R("load_truncated_fixed_struct", t_load_truncated_fixed)
        R("load_elf_len_larger_than_readable", load_elf_len_case(delta=100))
        R("load_elf_len_smaller_than_readable", load_elf_len_case(delta=-100))
        R("load_elf_len_0_with_object", load_elf_len_case(elf_len=0))
        R("load_elf_len_over_1mib", t_load_over_1mib)
        R("load_elf_len_0xffffffff", load_elf_len_case(elf_len=0xFFFFFFFF, status=NDP_S_LIMIT,
                                                       regex=r"object of 4294967295 bytes exceeds"))
        R("load_garbage_elf_rejected_with_log", t_load_garbage_elf)
        R("load_empty_object", t_load_empty_object)
        R("load_missing_section", t_load_missing_section)
        R("load_tiny_log_buffer_truncated", t_load_tiny_log)
        R("load_log_buffer_1_byte", t_load_log_cap_1)
        R("load_no_log_buffer", t_load_no_log_buffer)
        R("load_no_room_for_result", t_load_no_room_for_result)
        R("load_no_writable_part", no_writable_case(NDP_T_LOAD, NDP_LOAD.pack(XRP, 0, b"x"),
                                                    r"NDP LOAD without room for its result"))
        R("load_section_not_nul_terminated", t_load_section_not_terminated)
        R("load_unknown_prog_type_0", load_type_case(0))
        R("load_unknown_prog_type_9", load_type_case(9))
        R("load_valid", t_load_valid)
        R("load_17th_limit", t_load_17th)
        R("load_elf_split_over_many_descs", t_load_split_many)
        R("load_programs_survive_reconnect", t_reconnect_programs_survive)

        # -- UNLOAD
        R("unload_readable_too_short", unload_len_case(4, 4))
        R("unload_readable_too_long", unload_len_case(16, 4))
        R("unload_writable_too_long", unload_len_case(8, 8))
        R("unload_writable_status_only", unload_len_case(8, 0))
        R("unload_no_writable_part", no_writable_case(NDP_T_UNLOAD, NDP_UNLOAD.pack(1, 0), None))
        R("unload_unknown_handle", t_unload_unknown)
        R("unload_valid_then_stale", t_unload_valid)
        R("state_lost_for_handles_and_keys_of_another_epoch", t_state_lost_other_epoch)
        R("state_lost_across_a_daemon_restart", t_state_lost_across_restart)
        R("never_valid_handles_answer_no_program", t_never_valid_handles_no_program)
        R("unload_while_running", t_unload_while_running)

        # -- READ_ND / WRITE_ND
        R("read_nd_meta_shorter_than_declared", t_nd_meta_short)
        R("read_nd_writable_data_shorter", nd_bad(MISMATCH, wdata_len=256))
        R("read_nd_writable_data_longer", nd_bad(MISMATCH, wdata_len=1024))
        R("read_nd_scratch_out_shorter", nd_bad(MISMATCH, scratch=bytes(64), wscratch_len=32))
        R("read_nd_data_len_over_4096", nd_bad(LIMITS + r".*data 4097", data_len=4097))
        R("read_nd_meta_len_over_4096", nd_bad(LIMITS + r"meta 4097", meta=bytes(4097)))
        R("read_nd_scratch_len_over_4096", nd_bad(LIMITS + r".*scratch 4097", scratch=bytes(4097)))
        R("read_nd_io_len_0", nd_bad(LIMITS + r".*first I/O 0 ", io_len=0, data_len=512))
        R("read_nd_io_len_700", nd_bad(LIMITS + r".*first I/O 700 ", io_len=700, data_len=512))
        R("read_nd_io_len_4608", nd_bad(LIMITS + r".*first I/O 4608 ", io_len=4608, data_len=512))
        R("read_nd_max_hops_1025", nd_bad(LIMITS + r".*hops 1025 ", max_hops=1025))
        R("read_nd_file_flag_without_key", nd_bad(r"file request \(flags 0x1\) without a file key", flags=1))
        # (bit 1 is RB_NDP_IO_F_GPU since version 4: tests/vhost/test_gds.py)
        R("read_nd_reserved_flags", nd_bad(r"reserved fields set \(flags 0x4, file_key 0\)", flags=4))
        R("read_nd_gpu_flag_with_data", nd_bad(
            r"GPU read \(flags 0x2\): READ_ND only, not on a file, with data_len 0 \(got 512\)", flags=2))
        R("read_nd_gpu_flag_on_a_file", nd_bad(r"GPU read \(flags 0x3\)", flags=3, file_key=5))
        R("read_nd_reserved_flags_high", nd_bad(r"reserved fields set \(flags 0x80000000, file_key 0\)",
                                                flags=0x80000000))
        R("read_nd_reserved_flags_with_file", nd_bad(r"reserved fields set \(flags 0x5, file_key 5\)",
                                                     flags=5, file_key=5))
        R("read_nd_file_key_without_flag", nd_bad(r"reserved fields set \(flags 0x0, file_key 1\)",
                                                  reserved=1))
        R("read_nd_readable_shorter_than_fixed", t_nd_readable_shorter_than_fixed)
        R("write_nd_readable_over_max", t_nd_readable_over_max)
        R("read_nd_status_byte_only", t_nd_status_only)
        R("read_nd_no_room_for_result", t_nd_result_too_small)
        R("read_nd_no_writable_part", no_writable_case(
            NDP_T_READ_ND, NDP_IO.pack(1, SECTOR, 0, 0, SECTOR, 0, 0, 0),
            r"malformed NDP request: no room for the result and status \(0 writable bytes\)"))
        R("read_nd_header_split_1_15", t_nd_header_split_1_15)
        R("read_nd_result_split_across_descs", t_nd_result_split)
        R("read_nd_unknown_handle", t_nd_unknown_handle)
        R("read_nd_other_vms_handle", t_nd_other_vms_handle)
        R("read_nd_first_io_at_capacity", nd_range_case(CAP, regex=r"NDP request ended with out-of-range: I/O of 512 bytes at offset 8388608"))
        R("read_nd_first_io_crosses_end", nd_range_case(CAP - 1, 1024, regex=r"ended with out-of-range"))
        R("read_nd_sector_times_512_wraps", nd_range_case(1 << 55))
        R("read_nd_sector_max", nd_range_case(M64))
        R("read_nd_sector_wraps_to_end", nd_range_case((1 << 55) - 1, regex=r"ended with out-of-range"))
        R("read_nd_hop_limit_1024", t_nd_hop_limit)
        R("read_nd_max_hops_0_means_64", t_nd_default_hops)
        R("write_nd_readonly_disk", t_write_nd_readonly, disk="ro")
        R("load_flood_two_verified_at_a_time", t_load_flood)
        R("write_nd_data_len_ne_io_len", t_write_nd_len_mismatch)
        R("write_nd_valid", t_write_nd_valid)

        # -- REG_MEM / UNREG_MEM
        R("reg_mem_gpa_below_memory", reg_bad_case(lambda m: 0x1000, 4096))
        R("reg_mem_gpa_above_memory", reg_bad_case(lambda m: m.end + 4096, 4096))
        R("reg_mem_crosses_memory_end", reg_bad_case(lambda m: m.end - 4096, 8192))
        R("reg_mem_gpa_len_overflow", reg_bad_case(lambda m: M64 - 4095, 8192))
        R("reg_mem_len_0", reg_bad_case(lambda m: m.gpa + 8192, 0))
        R("reg_mem_len_over_1gib", reg_bad_case(lambda m: m.gpa, (1 << 30) + 4096))
        R("reg_mem_len_huge", reg_bad_case(lambda m: m.gpa + 4096, M64))
        R("reg_mem_5th_limit", t_reg_5th)
        R("unreg_mem_unknown_key", t_unreg_unknown)
        R("reg_mem_readable_too_short", reg_len_case(NDP_T_REG_MEM, 8, 8, r"NDP REG_MEM with wrong lengths"))
        R("reg_mem_writable_too_short", reg_len_case(NDP_T_REG_MEM, 16, 4, r"NDP REG_MEM with wrong lengths"))
        R("unreg_mem_writable_too_long", reg_len_case(NDP_T_UNREG_MEM, 8, 8, r"NDP UNREG_MEM with wrong lengths"))
        R("unreg_mem_readable_too_long", reg_len_case(NDP_T_UNREG_MEM, 16, 4, r"NDP UNREG_MEM with wrong lengths"))

        # -- REG_FILE / UNREG_FILE, file requests
        R("reg_file_valid_read_through_it_unreg", t_reg_file_valid)
        R("reg_file_16384_extents", t_reg_file_max_extents)
        R("reg_file_split_over_many_descs", t_reg_file_split_many)
        R("reg_file_17th_limit", t_reg_file_17th)
        R("reg_file_flags_set", reg_file_bad(r"flags 0x1 set", flags=1))
        R("reg_file_flags_high", reg_file_bad(r"flags 0x80000000 set", flags=0x80000000))
        R("reg_file_0_extents", reg_file_bad(r": 0 extents \(1\.\.16384\)", extents=()))
        R("reg_file_16385_extents", reg_file_bad(r": 16385 extents", n_extents=16385))
        R("reg_file_n_extents_huge", reg_file_bad(r": 4294967295 extents", n_extents=0xFFFFFFFF))
        R("reg_file_n_extents_more_than_carried", reg_file_bad(
            r"announces 3 extents \(72 bytes\) but carries 48 bytes", extents=((0, 0, K4), (K4, K4, K4)),
            n_extents=3))
        R("reg_file_n_extents_fewer_than_carried", reg_file_bad(
            r"announces 1 extents \(24 bytes\) but carries 48 bytes", extents=((0, 0, K4), (K4, K4, K4)),
            n_extents=1))
        R("reg_file_extent_array_truncated", reg_file_bad(
            r"announces 2 extents \(48 bytes\) but carries 36 bytes", extents=((0, 0, K4),), n_extents=2,
            tail=NDP_EXTENT.pack(K4, K4, K4)[:12]))
        R("reg_file_fixed_struct_truncated", t_reg_file_truncated_fixed)
        R("reg_file_extent_len_0", reg_file_bad(r"extent 1 .*empty or not in whole",
                                                extents=((0, 0, K4), (K4, K4, 0))))
        R("reg_file_file_off_misaligned", reg_file_bad(r"extent 0 \(file 100,.*not in whole",
                                                       extents=((100, 0, K4),)))
        R("reg_file_disk_off_misaligned", reg_file_bad(r"extent 0 .*disk 4097,.*not in whole",
                                                       extents=((0, K4 + 1, K4),)))
        R("reg_file_len_misaligned", reg_file_bad(r"extent 0 .*1000 bytes\): empty or not in whole",
                                                  extents=((0, 0, 1000),)))
        R("reg_file_not_sorted", reg_file_bad(r"extent 1 \(file 0\) is not after extent 0",
                                              extents=((K4, 0, K4), (0, 2 * K4, K4))))
        R("reg_file_overlap_in_file", reg_file_bad(r"extent 1 \(file 4096\) is not after extent 0",
                                                   size=4 * K4, extents=((0, 0, 2 * K4), (K4, 8 * K4, K4))))
        R("reg_file_overlap_on_disk", reg_file_bad(
            r"extents 0 and 2 overlap on the disk", size=4 * K4,
            extents=((0, 8 * K4, K4), (K4, 100 * K4, K4), (2 * K4, 8 * K4 + 2048, K4))))
        R("reg_file_same_disk_block_twice", reg_file_bad(
            r"overlap on the disk", extents=((0, 5 * K4, K4), (K4, 5 * K4, K4))))
        R("reg_file_outside_the_disk", reg_file_bad(r"leaves the 8388608-byte disk",
                                                    extents=((0, IMG_SIZE - SECTOR, K4),)))
        R("reg_file_disk_end_wraps", reg_file_bad(r"leaves the 8388608-byte disk",
                                                  extents=((0, M64 - 511, K4),)))
        R("reg_file_extent_past_file_size", reg_file_bad(r"ends past the file's 1000 bytes \(1024",
                                                         size=1000, extents=((0, 0, K4),)))
        R("reg_file_file_end_wraps", reg_file_bad(r"ends past the file's", extents=((M64 - 511, 0, 1024),)))
        R("reg_file_file_size_wraps", reg_file_bad(r"is not a size", size=M64))
        R("reg_file_writable_too_short", reg_file_wlen_case(4))
        R("reg_file_writable_too_long", reg_file_wlen_case(16))
        R("reg_file_status_byte_only", reg_file_wlen_case(0))
        R("reg_file_no_writable_part", no_writable_case(
            NDP_T_REG_FILE, NDP_REG_FILE.pack(K4, 1, 0) + NDP_EXTENT.pack(0, 0, K4),
            r"NDP REG_FILE without a status byte"))
        R("unreg_file_readable_too_short", unreg_file_len_case(4, 4))
        R("unreg_file_readable_too_long", unreg_file_len_case(16, 4))
        R("unreg_file_writable_too_long", unreg_file_len_case(8, 8))
        R("unreg_file_no_writable_part", no_writable_case(
            NDP_T_UNREG_FILE, NDP_UNREG_FILE.pack(1, 0), r"NDP UNREG_FILE without a status byte"))
        R("unreg_file_unknown_key", t_unreg_file_unknown)
        R("read_nd_unknown_file_key", t_file_unknown_key)
        R("read_nd_other_vms_file_key", t_file_other_vms_key)
        R("read_nd_file_hole_eof_outside_map", t_file_first_io_in_hole)

        # -- other
        R("unknown_vendor_types_unsupp", t_unknown_vendor_type)
        R("unknown_vendor_type_no_writable_part", no_writable_case(
            0x52420042, bytes(8), r"NDP request type 0x52420042 is not supported"))
        R("reg_mem_no_writable_part", no_writable_case(NDP_T_REG_MEM, NDP_REG_MEM.pack(0, 0), None))
        R("ndp_interleaved_with_normal_io", t_interleaved)
        R("disconnect_mid_ndp_hops", t_disconnect_mid_hops)
        R("load_section_with_newline_cannot_forge_a_line", t_load_section_newline)
        R("load_rejections_flood_logs_are_rate_limited", t_load_reject_log_flood)

        # -- last: a clean shutdown after all of the above
        name = "daemon_exits_0_on_sigterm"
        if not s.only or s.only.search(name):
            rc = s.d.stop()
            left = [dk.sock for dk in s.d.disks.values() if os.path.exists(dk.sock)]
            ok = rc == 0 and not left
            s.passed += ok
            s.failed += not ok
            print(("PASS " if ok else "FAIL ") + name +
                  ("" if ok else ": exit status %s, sockets left: %s" % (rc, left)), flush=True)
    except Exception as e:
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
