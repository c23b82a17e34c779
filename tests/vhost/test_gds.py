#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""RosenGDS against rosenbridged, built raw (docs/gds.md, docs/virtio-ndp.md).

Usage: test_gds.py [--daemon PATH] [--programs DIR] [--progs DIR] [--only REGEX]
                   [--keep] [--verbose]

Starts one rosenbridged (with --gpu 0: on a machine without a GPU or
without libcuda.so.1 it must answer NO_GPU, never fail) serving two 80 MiB
disks filled with a pattern that names every sector: vm0, where the cases
run, and vm1, another VM.  Each case sends REG_GPU / UNREG_GPU / GPU_SUM or
a GPU READ_ND (RB_NDP_IO_F_GPU) laid out by hand and asserts the exact
outcome: virtio status, used length, NDP status, hops and bytes, the
helper's return code where the program reports it, the daemon's log line,
and, through GPU_SUM, what a region holds (the CRC-32 that Python's
zlib.crc32 computes) -- the data of the disk where a read was to land,
zeros everywhere a refused read must not have written.  After every case
the daemon is alive and the regions the case registered are gone.

Programs: progs/gds_map.o (--progs: the build's progs directory) and
tests/programs/gds_progs.o (--programs).  Prints "PASS name" / "FAIL name:
reason" per case and ends with "N passed, N failed"; exits 1 on failure.
"""
import argparse
import os
import re
import struct
import sys
import tempfile
import time
import traceback
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import vhost_client as vc  # noqa: E402
import test_ndp_bad_input as nbi  # noqa: E402  (its Daemon, Disk and Image)
from vhost_client import (NDP_IO_F_FILE, NDP_IO_F_GPU, NDP_PROBE, NDP_REG_RESULT,  # noqa: E402
                          NDP_GPU_SUM_RESULT, NDP_RESULT, NDP_T_READ_ND, NDP_T_WRITE_ND,
                          NDP_T_REG_GPU, NDP_T_UNREG_GPU, NDP_T_GPU_SUM, NDP_REG_GPU,
                          NDP_UNREG_GPU, NDP_GPU_SUM, S_IOERR, S_OK, SECTOR, U32, Frontend, NdpReq,
                          ndp_gpu_sum, ndp_io, ndp_load, ndp_probe, ndp_reg_gpu, ndp_unreg_gpu,
                          load_result)
from vhost_client import (NDP_S_BAD_REQUEST, NDP_S_FAULT, NDP_S_LIMIT, NDP_S_NO_GPU,  # noqa: E402
                          NDP_S_NO_MEMORY, NDP_S_OK, NDP_S_OUT_OF_RANGE, NDP_S_REJECTED,
                          NDP_S_STATE_LOST, NDP_S_WRONG_TYPE)

KiB = 1 << 10
MiB = 1 << 20
IMG_SIZE = 80 * MiB
SQ, CQ, XRP = vc.NDP_PROG_SQ, vc.NDP_PROG_CQ, vc.NDP_PROG_XRP
HOST, CUDA = vc.NDP_GPU_HOST, vc.NDP_GPU_CUDA
RES_LEN = NDP_RESULT.size
M64 = (1 << 64) - 1
GDS_ENTRY = struct.Struct("<QQQII")   # phony len region_off key reserved
GDS_META_HDR = struct.Struct("<QII")  # dest n reserved
RAW_META = struct.Struct("<IIQQQ")    # key calls off len_after src_after
ENOENT, ERANGE, ESTALE = 2, 34, 116


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def gds_meta(dest, entries):
    """progs/gds_map.h: the phony destination and (phony, len, key, region_off) entries."""
    return GDS_META_HDR.pack(dest, len(entries), 0) + b"".join(
        GDS_ENTRY.pack(ph, ln, off, key, 0) for ph, ln, key, off in entries)


class Case:
    """One case: a frontend on vm0 (and vm1 on demand), the regions it
    registered (removed after it), the daemon log from its start."""

    def __init__(self, suite):
        self.s = suite
        self.d = suite.d
        self.mark = self.d.mark()
        self.fes = {}
        self.regs = []  # (disk label, key)
        self.progs = []  # handles loaded on vm0

    def fe(self, label="main"):
        if label not in self.fes:
            self.fes[label] = Frontend(self.d.disks[label].sock, timeout=5.0, mem_size=16 * MiB,
                                       queue_size=64)
        return self.fes[label]

    def close(self):
        for label, key in list(self.regs):
            try:
                self.unreg(key, label)
            except Exception:
                pass
        for h in self.progs:
            try:
                self.run(vc.ndp_unload(self.fe().mem, h))
            except Exception:
                pass
        self.progs = []
        for fe in self.fes.values():
            fe.close()

    def run(self, req, label="main", timeout=30.0):
        return self.fe(label).run(0, req, timeout=timeout)

    def log(self, regex, levels=("error", "warn", "info")):
        line = self.d.find_log(self.mark, regex, levels)
        check(line, "no log line matching /%s/" % regex)
        return line

    # -- requests --

    def reg(self, size, target=HOST, flags=0, label="main", track=True):
        r = ndp_reg_gpu(self.fe(label).mem, size, target, flags)
        st, ulen = self.run(r, label)
        check((st, ulen) == (S_OK, NDP_REG_RESULT.size + 1), "REG_GPU: virtio %d, used %d" % (st, ulen))
        nst, key = NDP_REG_RESULT.unpack(r.wpart(0))
        if nst == NDP_S_OK and track:
            self.regs.append((label, key))
        check(nst == NDP_S_OK or key == 0, "REG_GPU answered %s with key %d"
              % (vc.ndp_status_name(nst), key))
        return nst, key

    def reg_ok(self, size, label="main"):
        nst, key = self.reg(size, label=label)
        check(nst == NDP_S_OK and key, "REG_GPU of %d bytes: %s" % (size, vc.ndp_status_name(nst)))
        return key

    def unreg(self, key, label="main"):
        r = ndp_unreg_gpu(self.fe(label).mem, key)
        st, ulen = self.run(r, label)
        check((st, ulen) == (S_OK, 5), "UNREG_GPU: virtio %d, used %d" % (st, ulen))
        self.regs = [x for x in self.regs if x != (label, key)]
        return U32.unpack(r.wpart(0))[0]

    def sum(self, key, off, n, label="main", reserved=0):
        r = ndp_gpu_sum(self.fe(label).mem, key, off, n, reserved)
        st, ulen = self.run(r, label)
        check((st, ulen) == (S_OK, NDP_GPU_SUM_RESULT.size + 1), "GPU_SUM: virtio %d, used %d"
              % (st, ulen))
        nst, rsv, crc = NDP_GPU_SUM_RESULT.unpack(r.wpart(0))
        check(rsv == 0 and (nst == NDP_S_OK or crc == 0), "GPU_SUM result (%d, %d, %d)" % (nst, rsv, crc))
        return nst, crc

    def expect_sum(self, key, off, data, what):
        nst, crc = self.sum(key, off, len(data))
        check(nst == NDP_S_OK, "%s: GPU_SUM %s" % (what, vc.ndp_status_name(nst)))
        check(crc == zlib.crc32(data), "%s: the region's CRC-32 0x%08x, expected 0x%08x"
              % (what, crc, zlib.crc32(data)))

    def zeros(self, key, off, n, what):
        if n:
            self.expect_sum(key, off, bytes(n), what + " (bytes that must not have been written)")

    def load(self, obj, section, prog_type=SQ, expect=NDP_S_OK):
        r = ndp_load(self.fe().mem, prog_type, obj, section)
        st, _ = self.run(r)
        h, nst, log_len, log = load_result(r)
        text = log[:max(log_len - 1, 0)].decode("utf-8", "replace")
        if nst == NDP_S_OK:
            self.progs.append(h)
        check(st == S_OK and nst == expect, "LOAD %s: %s (expected %s): %s"
              % (section, vc.ndp_status_name(nst), vc.ndp_status_name(expect), text[:200]))
        return h if nst == NDP_S_OK else text

    def gread(self, handle, offset, length, meta, scratch_len=8, flags=NDP_IO_F_GPU, data_len=0,
              type_=NDP_T_READ_ND, label="main", file_key=None):
        """A GPU READ_ND: (result tuple, scratch bytes)."""
        r = ndp_io(self.fe(label).mem, type_, handle, offset // SECTOR, length, meta=meta,
                   scratch=bytes(scratch_len), data_len=data_len, flags=flags, file_key=file_key)
        st, ulen = self.run(r, label, timeout=60.0)
        check(st == S_OK, "GPU READ_ND: virtio status %d" % st)
        want = (data_len if type_ == NDP_T_READ_ND else 0) + scratch_len + RES_LEN + 1
        check(ulen == want, "GPU READ_ND: used len %d, expected %d" % (ulen, want))
        return r.result(), r.wpart(1 if type_ == NDP_T_READ_ND else 0) if scratch_len else b""

    def disk(self, off, n, label="main"):
        return bytes(self.d.disks[label].img.expect[off:off + n])


# ==== probe and the wire format ===============================================================


def t_probe_v4_caps(c):
    r = ndp_probe(c.fe().mem)
    check(c.run(r) == (S_OK, 65), "PROBE failed")
    f = NDP_PROBE.unpack(r.wpart(0))
    check(f[1] == 4, "PROBE version %d, expected 4" % f[1])
    caps = f[9]
    check(caps & vc.NDP_CAP_FILES and caps & vc.NDP_CAP_GDS, "PROBE caps 0x%x lack FILES|GDS" % caps)
    check(caps & ~(vc.NDP_CAP_FILES | vc.NDP_CAP_GDS | vc.NDP_CAP_CUDA) == 0, "unknown caps 0x%x" % caps)
    c.s.cuda = bool(caps & vc.NDP_CAP_CUDA)
    print("# the daemon %s (caps 0x%x)" % ("has a GPU" if c.s.cuda else "has no GPU", caps))


def t_no_gpu(c):
    """REG_GPU's CUDA target without a GPU: NO_GPU (15), key 0, a warning at
    start naming the missing GPU; with one (caps CUDA): a region, whose
    bytes start zeroed."""
    nst, key = c.reg(64 * KiB, CUDA)
    if c.s.cuda:
        check(nst == NDP_S_OK, "REG_GPU cuda on a GPU daemon: %s" % vc.ndp_status_name(nst))
        c.zeros(key, 0, 64 * KiB, "a fresh CUDA region")
        return
    check(nst == NDP_S_NO_GPU, "REG_GPU cuda without a GPU: %s, expected no-gpu" % vc.ndp_status_name(nst))
    c.log(r"REG_GPU refused \(no-gpu\): no GPU")
    line = c.d.find_log(0, r"--gpu 0: no GPU", ("warn",))
    check(line, "no start-up warning naming the missing GPU")


def reg_bad_case(size, target=HOST, flags=0, regex=None):
    def t(c):
        nst, key = c.reg(size, target, flags)
        check(nst == NDP_S_BAD_REQUEST, "REG_GPU(size %d, target %d, flags %d): %s"
              % (size, target, flags, vc.ndp_status_name(nst)))
        c.log(regex or r"REG_GPU refused \(bad-request\)", ("warn",))
    return t


def lengths_case(type_, body, wlen, regex):
    """A control request whose descriptor lengths are wrong: IOERR, used 1,
    nothing written into the reply."""
    def t(c):
        r = NdpReq(c.fe().mem, type_, [body], [wlen] if wlen else [])
        st, ulen = c.run(r)
        check((st, ulen) == (S_IOERR, 1), "virtio %d, used %d (expected IOERR, 1)" % (st, ulen))
        check(wlen == 0 or all(b == 0xA5 for b in r.wpart(0)), "the device wrote into a wrong-sized reply")
        c.log(regex, ("warn",))
    return t


def t_no_status_byte(c):
    for type_, body in ((NDP_T_REG_GPU, NDP_REG_GPU.pack(4096, HOST, 0)),
                        (NDP_T_UNREG_GPU, NDP_UNREG_GPU.pack(1, 0)),
                        (NDP_T_GPU_SUM, NDP_GPU_SUM.pack(1, 0, 0, 512))):
        r = NdpReq(c.fe().mem, type_, [body], [], status=False)
        head = c.fe().submit(0, r)
        u = c.fe().vqs[0].wait_used(1, 5.0)
        check(u and u[0] == (head, 0), "type 0x%x without a writable part: used %r" % (type_, u))
    c.log(r"NDP (REG_GPU|UNREG_GPU|GPU_SUM) without a status byte", ("warn",))


def t_reg_limits(c):
    """8 regions per VM, 512 MiB of regions per VM: LIMIT past either,
    room again after UNREG_GPU; another VM has its own budget."""
    keys = [c.reg_ok(4096) for _ in range(8)]
    check(len(set(keys)) == 8 and 0 not in keys, "keys %r" % keys)
    nst, _ = c.reg(4096)
    check(nst == NDP_S_LIMIT, "9th region: %s" % vc.ndp_status_name(nst))
    c.log(r"REG_GPU refused \(limit\): this VM already has 8 GPU regions", ("warn",))
    other = c.reg_ok(4096, label="other")  # vm1's own budget
    for k in keys:
        check(c.unreg(k) == NDP_S_OK, "UNREG_GPU of a live key")
    big = [c.reg_ok(256 * MiB), c.reg_ok(256 * MiB)]
    nst, _ = c.reg(512)
    check(nst == NDP_S_LIMIT, "past 512 MiB: %s" % vc.ndp_status_name(nst))
    c.log(r"would take this VM's GPU regions past 536870912 bytes", ("warn",))
    check(c.unreg(big[0]) == NDP_S_OK, "UNREG_GPU")
    c.reg_ok(128 * MiB)
    check(c.unreg(other, "other") == NDP_S_OK, "vm1's UNREG_GPU")


def t_unreg_keys(c):
    key = c.reg_ok(4096)
    check(c.unreg(nbi.other_epoch(key)) == NDP_S_STATE_LOST, "UNREG_GPU of an earlier daemon's key")
    check(c.unreg(key) == NDP_S_OK, "UNREG_GPU")
    check(c.unreg(key) == NDP_S_NO_MEMORY, "UNREG_GPU twice")
    for k in (0, 1, 0xFFFFFFFF, key & 0xFFFFF):
        check(c.unreg(k) == NDP_S_NO_MEMORY, "UNREG_GPU of never-valid key 0x%x" % k)
    c.log(r"UNREG_GPU: no GPU region with key %d on this disk \(a key from before the daemon restarted\)"
          % nbi.other_epoch(key), ("warn",))


def t_other_vms_key(c):
    """vm1's key names nothing on vm0: UNREG_GPU, GPU_SUM, and a read into
    it (NO_MEMORY); vm1's region keeps its bytes."""
    key = c.reg_ok(64 * KiB, label="other")
    check(c.unreg(key) == NDP_S_NO_MEMORY, "vm0 unregistered vm1's region")
    check(c.sum(key, 0, 4096)[0] == NDP_S_NO_MEMORY, "vm0 summed vm1's region")
    h = c.load(c.s.gds_map, "gds_map")
    res, _ = c.gread(h, 0, 4096, gds_meta(0x10000, [(0x10000, 64 * KiB, key, 0)]))
    check(res == (NDP_S_NO_MEMORY, 0, 1, 0), "read into vm1's region: %r" % (res,))
    c.log(r"no GPU region with key %d on this VM" % key, ("warn",))
    nst, crc = c.sum(key, 0, 64 * KiB, label="other")
    check(nst == NDP_S_OK and crc == zlib.crc32(bytes(64 * KiB)), "vm1's region was written")


def t_sum_bad(c):
    key = c.reg_ok(8192)
    for off, n, rsv, want in ((0, 0, 0, NDP_S_BAD_REQUEST),
                              (0, vc.NDP_MAX_GPU_READ + 1, 0, NDP_S_BAD_REQUEST),
                              (0, 512, 7, NDP_S_BAD_REQUEST),
                              (M64 - 100, 512, 0, NDP_S_BAD_REQUEST),
                              (8192 - 100, 200, 0, NDP_S_OUT_OF_RANGE),
                              (8192, 1, 0, NDP_S_OUT_OF_RANGE),
                              (1 << 40, 512, 0, NDP_S_OUT_OF_RANGE),
                              (8191, 1, 0, NDP_S_OK)):
        nst, _ = c.sum(key, off, n, reserved=rsv)
        check(nst == want, "GPU_SUM(off %d, len %d, reserved %d): %s, expected %s"
              % (off, n, rsv, vc.ndp_status_name(nst), vc.ndp_status_name(want)))
    check(c.sum(nbi.other_epoch(key), 0, 512)[0] == NDP_S_STATE_LOST, "GPU_SUM of an earlier key")
    check(c.sum(key + 1, 0, 512)[0] == NDP_S_NO_MEMORY, "GPU_SUM of an unknown key")
    c.log(r"GPU_SUM refused \(out-of-range\): 200 bytes at offset 8092 leave the 8192-byte region",
          ("warn",))


def t_nd_over_64mib(c):
    h = c.load(c.s.gds_map, "gds_map")
    key = c.reg_ok(4096)
    res, _ = c.gread(h, 0, vc.NDP_MAX_GPU_READ + 512, gds_meta(0, [(0, 1 << 40, key, 0)]))
    check(res == (NDP_S_BAD_REQUEST, 0, 0, 0), "a 64 MiB + 512 read: %r" % (res,))
    c.log(r"first I/O 67109376 \(512\.\.67108864, multiple of 512\)", ("warn",))
    res, _ = c.gread(h, 0, 8192, gds_meta(0, []), flags=0, data_len=8192)
    check(res[0] == NDP_S_BAD_REQUEST, "an 8 KiB READ_ND without the GPU flag: %r" % (res,))
    c.zeros(key, 0, 4096, "region")


def t_nd_gpu_wire_rules(c):
    h = c.load(c.s.gds_map, "gds_map")
    meta = gds_meta(0, [])
    for kw, regex in (({"data_len": 512}, r"GPU read \(flags 0x2\): READ_ND only, not on a file, with data_len 0 \(got 512\)"),
                      ({"flags": NDP_IO_F_GPU | NDP_IO_F_FILE, "file_key": 1}, r"GPU read \(flags 0x3\)"),
                      ({"type_": NDP_T_WRITE_ND}, r"GPU read \(flags 0x2\)"),
                      ({"flags": 1 << 2}, r"reserved fields set \(flags 0x4"),
                      ({"length": 1000}, r"first I/O 1000 \(512\.\.67108864")):
        length = kw.pop("length", 4096)
        res, _ = c.gread(h, 0, length, meta, **kw)
        check(res[0] == NDP_S_BAD_REQUEST and res[1] == 0, "%r: %r" % (kw, res))
        c.log(regex, ("warn",))


# ==== the data path through progs/gds_map.c ===================================================


def e2e_case(size, disk_off, region_off=0, region_size=None):
    """One GDS read of `size` bytes at disk_off into region_off of a host
    region, through gds_map: OK, 1 hop, `size` bytes; GPU_SUM equals the
    disk's bytes; the bytes around it are still zero."""
    def t(c):
        rs = region_size or region_off + size
        key = c.reg_ok(rs)
        h = c.load(c.s.gds_map, "gds_map")
        phony = 0x7F0000000000
        # Entry 1 is the one that holds the address; entry 0 a decoy.
        meta = gds_meta(phony + region_off, [(0x1000, 4096, key + 1, 0), (phony, rs, key, 0)])
        t0 = time.monotonic()
        res, _ = c.gread(h, disk_off, size, meta)
        dt = time.monotonic() - t0
        check(res == (NDP_S_OK, 1, 1, size), "result %r, expected (ok, 1 hop, r0 1, %d bytes)" % (res, size))
        c.expect_sum(key, region_off, c.disk(disk_off, size), "%d bytes at %d" % (size, disk_off))
        c.zeros(key, 0, region_off, "before the read")
        c.zeros(key, region_off + size, rs - region_off - size, "after the read")
        if size >= 16 * MiB:
            print("# %d MiB GDS read in %.3f s" % (size // MiB, dt))
    return t


def raw_case(calls, off_fn, want_status, want_rc, size=4096, region=64 * KiB, len_after=0,
             src_after=0, regex=None, key_fn=None):
    """sq_gds_raw retargets to (key_fn(key), off_fn(region)) `calls` times;
    the request must end with want_status and the helper's last return
    code be want_rc; the region stays zero unless the read was OK."""
    def t(c):
        key = c.reg_ok(region)
        h = c.load(c.s.gds_progs, "sq_gds_raw")
        k = key_fn(c, key) if key_fn else key
        meta = RAW_META.pack(k, calls, off_fn(region) & M64, len_after, src_after)
        res, scratch = c.gread(h, 5 * SECTOR, size, meta)
        rc = struct.unpack("<q", scratch)[0]
        check(res[0] == want_status, "status %s, expected %s (result %r)"
              % (vc.ndp_status_name(res[0]), vc.ndp_status_name(want_status), res))
        check(rc == want_rc, "the helper returned %d, expected %d" % (rc, want_rc))
        if want_status == NDP_S_OK:
            final = len_after or size
            check(res == (NDP_S_OK, 1, 1, final), "result %r" % (res,))
            c.expect_sum(key, off_fn(region), c.disk(src_after or 5 * SECTOR, final), "retargeted read")
        else:
            check(res[1] in (0,) and res[3] == 0, "a refused read did I/O: %r" % (res,))
            c.zeros(key, 0, region, "a refused read's region")
            if regex:
                c.log(regex, ("warn",))
    return t


def t_stale_key(c):
    """A key unregistered before the read (a stale key) names nothing."""
    key = c.reg_ok(64 * KiB)
    check(c.unreg(key) == NDP_S_OK, "UNREG_GPU")
    h = c.load(c.s.gds_progs, "sq_gds_raw")
    res, scratch = c.gread(h, 0, 4096, RAW_META.pack(key, 1, 0, 0, 0))
    check(res == (NDP_S_NO_MEMORY, 0, 1, 0), "read into an unregistered region: %r" % (res,))
    check(struct.unpack("<q", scratch)[0] == -ENOENT, "helper rc %r" % scratch)
    new = c.reg_ok(64 * KiB)  # the same slot again: another key
    check(new != key, "a new region got the stale key")
    res, _ = c.gread(h, 0, 4096, RAW_META.pack(key, 1, 0, 0, 0))
    check(res[0] == NDP_S_NO_MEMORY, "the stale key reached the new region: %r" % (res,))
    c.zeros(new, 0, 64 * KiB, "the new region")


def t_restart_key(c):
    """A key from before a real daemon restart: STATE_LOST on the read,
    GPU_SUM and UNREG_GPU; registering again works."""
    key = c.reg_ok(64 * KiB)
    c.regs = []
    c.progs = []
    for fe in c.fes.values():
        fe.close()
    c.fes = {}
    c.d.restart()
    c.mark = c.d.mark()
    h = c.load(c.s.gds_progs, "sq_gds_raw")
    res, scratch = c.gread(h, 0, 4096, RAW_META.pack(key, 1, 0, 0, 0))
    check(res == (NDP_S_STATE_LOST, 0, 1, 0), "read with a key from before the restart: %r" % (res,))
    check(struct.unpack("<q", scratch)[0] == -ESTALE, "helper rc %r" % scratch)
    c.log(r"GPU region key %d is from before the daemon restarted" % key, ("warn",))
    check(c.sum(key, 0, 512)[0] == NDP_S_STATE_LOST, "GPU_SUM of a pre-restart key")
    check(c.unreg(key) == NDP_S_STATE_LOST, "UNREG_GPU of a pre-restart key")
    new = c.reg_ok(64 * KiB)
    res, _ = c.gread(h, 0, 4096, RAW_META.pack(new, 1, 0, 0, 0))
    check(res == (NDP_S_OK, 1, 1, 4096), "read after registering again: %r" % (res,))


def t_mem_trans_no_pointer(c):
    """A program that tries to reach the region through mem_trans (with the
    GPU key) gets NULL; its read has no destination: FAULT; region zero."""
    key = c.reg_ok(64 * KiB)
    h = c.load(c.s.gds_progs, "sq_gds_mem_trans")
    res, scratch = c.gread(h, 0, 4096, struct.pack("<I", key))
    check(struct.unpack("<Q", scratch)[0] == 0, "mem_trans gave the program a pointer to a GPU region")
    check(res == (NDP_S_FAULT, 0, 1, 0), "result %r, expected fault" % (res,))
    c.log(r"asked for a GPU read without a destination \(rb_ndp_gpu_target\)", ("warn",))
    c.zeros(key, 0, 64 * KiB, "region")


def t_phony_pointer_rejected(c):
    text = c.load(c.s.gds_progs, "sq_gds_phony_ptr", SQ, NDP_S_REJECTED)
    check(re.search(r"is a number, not a pointer: memory cannot be written through it", text),
          "verifier log: %r" % text)


def t_cq_cannot_retarget(c):
    text = c.load(c.s.gds_progs, "cq_gds_target", CQ, NDP_S_REJECTED)
    check("helper 205 (rb_ndp_gpu_target) is not callable from cq programs" in text,
          "verifier log: %r" % text)


def t_gpu_read_needs_sq(c):
    key = c.reg_ok(4096)
    for section, obj, ptype in (("cq_sum", c.s.ndp_progs, CQ), ("xrp_peek", c.s.ndp_progs, XRP)):
        h = c.load(obj, section, ptype)
        res, _ = c.gread(h, 0, 4096, gds_meta(0, [(0, 4096, key, 0)]))
        check(res == (NDP_S_WRONG_TYPE, 0, 0, 0), "%s: %r" % (section, res))
    c.log(r"a GPU read needs an sq program that names its destination", ("warn",))
    c.zeros(key, 0, 4096, "region")


def t_sq_skip(c):
    h = c.load(c.s.gds_progs, "sq_gds_skip")
    res, _ = c.gread(h, 0, 1 * MiB, gds_meta(0, []))
    check(res == (NDP_S_OK, 0, 0, 0), "an sq program that reads nothing: %r" % (res,))


def t_map_miss(c):
    """gds_map: a destination no entry holds, or an entry too short for the
    read: no destination, FAULT, nothing written."""
    key = c.reg_ok(64 * KiB)
    h = c.load(c.s.gds_map, "gds_map")
    for meta in (gds_meta(0x5000, [(0x1000, 4096, key, 0)]),
                 gds_meta(0x1000, [(0x1000, 2048, key, 0)]),
                 gds_meta(0x1000, [(0x1000, 4096, key, 0)] * 0)):
        res, _ = c.gread(h, 0, 4096, meta)
        check(res == (NDP_S_FAULT, 0, 1, 0), "result %r" % (res,))
    c.zeros(key, 0, 64 * KiB, "region")


def t_unreg_then_sum_region_freed(c):
    """A region unregistered is gone for GPU_SUM; a new one starts zeroed
    (the daemon's memory, not the earlier region's bytes)."""
    key = c.reg_ok(1 * MiB)
    h = c.load(c.s.gds_map, "gds_map")
    res, _ = c.gread(h, 0, 1 * MiB, gds_meta(0, [(0, MiB, key, 0)]))
    check(res == (NDP_S_OK, 1, 1, MiB), "read: %r" % (res,))
    check(c.unreg(key) == NDP_S_OK, "UNREG_GPU")
    check(c.sum(key, 0, 512)[0] == NDP_S_NO_MEMORY, "GPU_SUM after UNREG_GPU")
    new = c.reg_ok(1 * MiB)
    c.zeros(new, 0, MiB, "a new region")


def t_gpu_sum_flood_does_not_starve_other_vms(c):
    """A VM that fills its ring with 64 MiB GPU_SUMs (each tens of ms of the
    worker it shares with other VMs) must not hold that worker for all of
    them at once: another VM's read is served after about one, not after
    the whole flood (each sum is charged to its queue's program credit)."""
    key = c.reg_ok(64 * MiB)
    t0 = time.monotonic()
    check(c.sum(key, 0, 64 * MiB)[0] == NDP_S_OK, "GPU_SUM")
    one = max(time.monotonic() - t0, 0.001)
    fe, other = c.fe(), c.fe("other")
    n = 32
    reqs = [ndp_gpu_sum(fe.mem, key, 0, 64 * MiB) for _ in range(n)]
    for r in reqs:
        fe.submit(0, r, indirect=True)
    time.sleep(min(one / 2, 0.05))  # the worker is in the flood now
    blk = vc.BlkReq(other.mem, vc.T_IN, 8, in_len=4096)
    t1 = time.monotonic()
    other.submit(0, blk)
    got = other.vqs[0].wait_used(1, timeout=n * one * 4 + 30)
    waited = time.monotonic() - t1
    check(got and blk.status_byte() == S_OK, "the other VM's read did not complete")
    done = fe.vqs[0].wait_used(n, timeout=n * one * 4 + 30)
    check(len(done) == n, "%d of %d GPU_SUMs completed" % (len(done), n))
    for r in reqs:
        check(NDP_GPU_SUM_RESULT.unpack(r.wpart(0))[0] == NDP_S_OK, "a flooded GPU_SUM failed")
    print("# one 64 MiB GPU_SUM %.3f s; the other VM's read waited %.3f s behind %d" % (one, waited, n))
    check(waited < 6 * one, "the other VM's read waited %.3f s behind %d GPU_SUMs of %.3f s each: "
          "one VM's GPU_SUMs hold the shared worker" % (waited, n, one))


def t_unreg_in_flight_still_counts(c):
    """A region unregistered while a GPU read into it is in flight lives
    until the read ends (reference counted); until then it must still
    count against the VM's 512 MiB, or REG_GPU, read, UNREG_GPU over and
    over holds the memory of any number of regions.  A daemon of its own
    throttles the disk (1 MiB/s) so that the read stays in flight."""
    import shutil
    tmp = tempfile.mkdtemp(prefix="rb-gds-held-")
    d = fe = None
    try:
        d = nbi.Daemon(c.s.args.daemon, tmp, c.s.args.verbose, layout=(("main", False),))
        d.stop()
        d.args += ["--throttle", "bps-total=1048576"]
        d.start()

        def connect():
            return Frontend(d.disks["main"].sock, timeout=5.0, mem_size=16 * MiB, queue_size=64)

        def reg(fe, size):
            r = ndp_reg_gpu(fe.mem, size, HOST, 0)
            check(fe.run(1, r) == (S_OK, NDP_REG_RESULT.size + 1), "REG_GPU")
            return NDP_REG_RESULT.unpack(r.wpart(0))

        fe = connect()
        ra, a = reg(fe, 256 * MiB)
        rb, b = reg(fe, 256 * MiB)
        check(ra == rb == NDP_S_OK, "two regions of 256 MiB")
        r = ndp_load(fe.mem, SQ, c.s.gds_map, "gds_map")
        fe.run(1, r, timeout=30)
        h, nst = load_result(r)[:2]
        check(nst == NDP_S_OK, "LOAD gds_map")
        rd = ndp_io(fe.mem, NDP_T_READ_ND, h, 0, 64 * MiB, meta=gds_meta(0, [(0, 64 * MiB, a, 0)]),
                    scratch=bytes(8), data_len=0, flags=NDP_IO_F_GPU)
        fe.submit(0, rd)
        time.sleep(0.3)
        check(not fe.vqs[0].poll_used(), "the throttled 64 MiB read ended at once")
        u = ndp_unreg_gpu(fe.mem, a)
        check(fe.run(1, u) == (S_OK, 5) and U32.unpack(u.wpart(0))[0] == NDP_S_OK, "UNREG_GPU")
        nst, key = reg(fe, 256 * MiB)
        check(nst == NDP_S_LIMIT, "REG_GPU of 256 MiB while an unregistered 256 MiB region is still "
              "held by a read: %s (the VM would hold 768 MiB)" % vc.ndp_status_name(nst))
        fe.close()  # the queue stops: the read ends, the region goes
        fe = None
        fe = connect()
        nst, key = reg(fe, 256 * MiB)
        check(nst == NDP_S_OK, "REG_GPU once the read ended: %s" % vc.ndp_status_name(nst))
    finally:
        if fe:
            fe.close()
        if d:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


class Suite:
    def __init__(self, args):
        self.args = args
        self.passed = self.failed = 0
        self.only = re.compile(args.only) if args.only else None
        self.workdir = tempfile.mkdtemp(prefix="rb-gds-")
        with open(os.path.join(args.progs, "gds_map.o"), "rb") as f:
            self.gds_map = f.read()
        with open(os.path.join(args.programs, "gds_progs.o"), "rb") as f:
            self.gds_progs = f.read()
        with open(os.path.join(args.programs, "ndp_progs.o"), "rb") as f:
            self.ndp_progs = f.read()
        self.cuda = False
        self.d = None

    def run(self, name, fn):
        if self.only and not self.only.search(name):
            return
        c = Case(self)
        try:
            fn(c)
            c.close()
            check(self.d.alive(), "the daemon died")
            deadline = time.monotonic() + 3
            while vc.proc_fd_count(self.d.pid) > self.d.idle_fds and time.monotonic() < deadline:
                time.sleep(0.02)  # the frontends' disconnects are handled asynchronously
            n = vc.proc_fd_count(self.d.pid)
            check(n <= self.d.idle_fds, "the daemon holds %d fds, %d when idle" % (n, self.d.idle_fds))
            self.passed += 1
            print("PASS " + name, flush=True)
        except Exception as e:
            c.close()
            self.failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
            if not isinstance(e, Failure):
                traceback.print_exc(file=sys.stdout)
            if not self.d.alive():
                print("# daemon log:\n" + self.d.log_since(0)[-3000:])
                self.d.restart()

    def close(self):
        if self.d:
            self.d.stop()
        if not self.args.keep:
            for f in os.listdir(self.workdir):
                os.unlink(os.path.join(self.workdir, f))
            os.rmdir(self.workdir)
        else:
            print("# kept " + self.workdir)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build/app/rosenbridged/rosenbridged"))
    ap.add_argument("--programs", default=os.path.join(ROOT, "build/tests/programs"))
    ap.add_argument("--progs", default=None, help="directory holding gds_map.o (default: the "
                    "daemon's build's progs/)")
    ap.add_argument("--only")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.progs is None:
        args.progs = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(args.daemon)))), "progs")
    for path in (args.daemon, os.path.join(args.progs, "gds_map.o"),
                 os.path.join(args.programs, "gds_progs.o")):
        if not os.path.exists(path):
            print("no %s (build it: ninja -C build)" % path)
            print("0 passed, 1 failed")
            return 1
    nbi.IMG_SIZE = IMG_SIZE  # its Disk makes images of this size
    s = Suite(args)
    t_start = time.monotonic()
    try:
        s.d = nbi.Daemon(args.daemon, s.workdir, args.verbose,
                         layout=(("main", False), ("other", False)))
        s.d.args += ["--gpu", "0"]
        s.d.stop()
        s.d.start()
        R = s.run
        R("probe_version_4_caps_gds", t_probe_v4_caps)
        R("reg_gpu_cuda_without_gpu_is_no_gpu", t_no_gpu)
        R("reg_gpu_size_0", reg_bad_case(0, regex=r"REG_GPU of 0 bytes: a region is 512\.\.268435456"))
        R("reg_gpu_size_511", reg_bad_case(511))
        R("reg_gpu_size_not_multiple_of_512", reg_bad_case(4096 + 100))
        R("reg_gpu_size_over_256mib", reg_bad_case(256 * MiB + 512))
        R("reg_gpu_size_2_64_minus_512", reg_bad_case(M64 - 511))
        R("reg_gpu_target_0", reg_bad_case(4096, 0, regex=r"REG_GPU target 0: 1 \(host\) or 2 \(cuda\)"))
        R("reg_gpu_target_3", reg_bad_case(4096, 3))
        R("reg_gpu_flags_set", reg_bad_case(4096, HOST, 1, regex=r"REG_GPU flags 0x1: none are defined"))
        R("reg_gpu_readable_short", lengths_case(NDP_T_REG_GPU, NDP_REG_GPU.pack(4096, 1, 0)[:8], 8,
                                                 r"NDP REG_GPU with wrong lengths: readable 24"))
        R("reg_gpu_readable_long", lengths_case(NDP_T_REG_GPU, NDP_REG_GPU.pack(4096, 1, 0) + bytes(8), 8,
                                                r"NDP REG_GPU with wrong lengths: readable 40"))
        R("reg_gpu_writable_short", lengths_case(NDP_T_REG_GPU, NDP_REG_GPU.pack(4096, 1, 0), 4,
                                                 r"NDP REG_GPU with wrong lengths: .*writable 5 \(expected 9\)"))
        R("unreg_gpu_writable_long", lengths_case(NDP_T_UNREG_GPU, NDP_UNREG_GPU.pack(1, 0), 8,
                                                  r"NDP UNREG_GPU with wrong lengths"))
        R("gpu_sum_readable_short", lengths_case(NDP_T_GPU_SUM, NDP_GPU_SUM.pack(1, 0, 0, 512)[:16], 16,
                                                 r"NDP GPU_SUM with wrong lengths: readable 32 \(expected 40\)"))
        R("gpu_sum_writable_short", lengths_case(NDP_T_GPU_SUM, NDP_GPU_SUM.pack(1, 0, 0, 512), 8,
                                                 r"NDP GPU_SUM with wrong lengths"))
        R("gpu_control_without_status_byte", t_no_status_byte)
        R("reg_gpu_limits_count_and_bytes_per_vm", t_reg_limits)
        R("unreg_gpu_unknown_stale_earlier_keys", t_unreg_keys)
        R("gpu_sum_bad_lengths_and_bounds", t_sum_bad)
        R("read_nd_gpu_over_64mib", t_nd_over_64mib)
        R("read_nd_gpu_wire_rules", t_nd_gpu_wire_rules)
        # the data path: host region, gds_map.c, 4 KiB .. 64 MiB
        R("gds_read_4k", e2e_case(4 * KiB, 7 * 4096))
        R("gds_read_4k_unaligned_region_offset", e2e_case(4 * KiB, 3 * 4096 + 512, region_off=512,
                                                          region_size=64 * KiB))
        R("gds_read_64k", e2e_case(64 * KiB, 1 * MiB + 512))
        R("gds_read_1m", e2e_case(1 * MiB, 2 * MiB))
        R("gds_read_1m_plus_512_two_chunks", e2e_case(MiB + 512, 5 * MiB - 512, region_off=4096,
                                                      region_size=4 * MiB))
        R("gds_read_4m", e2e_case(4 * MiB, 3 * MiB))
        R("gds_read_16m_several_rounds", e2e_case(16 * MiB + 4096, 4096))
        R("gds_read_64m", e2e_case(64 * MiB, 8 * MiB))
        # hostile retargets
        R("retarget_outside_region", raw_case(1, lambda rs: rs, NDP_S_OUT_OF_RANGE, -ERANGE,
                                              regex=r"are not inside it"))
        R("retarget_straddles_the_end", raw_case(1, lambda rs: rs - 512, NDP_S_OUT_OF_RANGE, -ERANGE))
        R("retarget_offset_not_512_aligned", raw_case(1, lambda rs: 100, NDP_S_OUT_OF_RANGE, -ERANGE))
        R("retarget_offset_wraps", raw_case(1, lambda rs: M64 - 511, NDP_S_OUT_OF_RANGE, -ERANGE))
        R("retarget_then_grow_the_read_past_the_end",
          raw_case(1, lambda rs: rs - 4096, NDP_S_OUT_OF_RANGE, 0, len_after=8192,
                   regex=r"GPU read of 8192 bytes into offset 61440 of GPU region \d+ \(65536 bytes\) leaves the region"))
        R("retarget_then_source_outside_disk",
          raw_case(1, lambda rs: 0, NDP_S_OUT_OF_RANGE, 0, src_after=IMG_SIZE,
                   regex=r"leaves the 83886080-byte disk"))
        R("retarget_then_grow_within_region_ok", raw_case(1, lambda rs: 0, NDP_S_OK, 0, len_after=8192))
        R("retarget_twice_ok", raw_case(2, lambda rs: 4096, NDP_S_OK, 0))
        R("retarget_last_byte_fits_ok", raw_case(1, lambda rs: rs - 4096, NDP_S_OK, 0))
        R("no_retarget_is_fault", raw_case(0, lambda rs: 0, NDP_S_FAULT, 1,
                                           regex=r"without a destination"))
        R("retarget_unknown_key", raw_case(1, lambda rs: 0, NDP_S_NO_MEMORY, -ENOENT,
                                           key_fn=lambda c, k: k ^ 0x10))
        R("retarget_key_of_an_earlier_daemon", raw_case(1, lambda rs: 0, NDP_S_STATE_LOST, -ESTALE,
                                                        key_fn=lambda c, k: nbi.other_epoch(k)))
        R("retarget_stale_key", t_stale_key)
        R("retarget_other_vms_key", t_other_vms_key)
        R("no_pointer_through_mem_trans", t_mem_trans_no_pointer)
        R("phony_address_as_pointer_rejected", t_phony_pointer_rejected)
        R("cq_program_cannot_retarget", t_cq_cannot_retarget)
        R("gpu_read_needs_sq_program", t_gpu_read_needs_sq)
        R("sq_program_may_skip_the_read", t_sq_skip)
        R("gds_map_miss_and_short_entry", t_map_miss)
        R("unreg_frees_region_new_one_zeroed", t_unreg_then_sum_region_freed)
        R("key_from_before_a_daemon_restart", t_restart_key)
        R("gpu_sum_flood_does_not_starve_other_vms", t_gpu_sum_flood_does_not_starve_other_vms)
        R("unreg_while_read_in_flight_still_counts", t_unreg_in_flight_still_counts)
        name = "daemon_exits_0_on_sigterm"
        if not s.only or s.only.search(name):
            rc = s.d.stop()
            ok = rc == 0
            s.passed += ok
            s.failed += not ok
            print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": exit status %s" % rc), flush=True)
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
