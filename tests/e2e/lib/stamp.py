# SPDX-License-Identifier: MIT
"""Numbered, generation-stamped blocks: the layout tests/e2e/guest/restartcheck.c
and tests/restart/restart_io.c write, checked on the host image.

Writer w owns [base + w*length, +length), cut into blocks whose sizes cycle
through SIZES (rotated by 3*w); every 512-byte sector j of block k in
generation g holds
    u64 MAGIC, u32 w, u32 k, u32 g, u32 j, u64 block offset,
    then bytes 32..511: (w*31 + k*7 + g*13 + j + i) & 0xff at byte i.
The writer's done record (sector ctrl + 512*(1+w)) is
    u64 DONE_MAGIC, u64 (last generation << 32 | w), u64 blocks, u64 writes.
"""
import struct

SECTOR = 512
MAGIC = 0x5452545352425221
DONE_MAGIC = 0x454E4F4453524252
SIZES = (4096, 1024, 65536, 8192, 512, 131072, 16384, 2048, 32768, 12288)
_RAMP = bytes(i & 0xFF for i in range(1024))


def blocks(w, base, length):
    """[(offset, size)] of writer w's blocks."""
    out, at, n = [], 0, 0
    while n < length // SECTOR:
        sz = SIZES[(n + w * 3) % len(SIZES)]
        if at + sz > length:
            break
        out.append((base + at, sz))
        at += sz
        n += 1
    return out


def sector(w, k, g, j, off):
    v = (w * 31 + k * 7 + g * 13 + j) & 0xFF
    return struct.pack("<QIIIIQ", MAGIC, w, k, g, j, off) + _RAMP[v + 32:v + SECTOR]


def block(w, k, g, off, size):
    return b"".join(sector(w, k, g, j, off) for j in range(size // SECTOR))


def done_record(img, ctrl, w):
    """(last generation, blocks, writes) from writer w's done record, or None."""
    rec = img[ctrl + SECTOR * (1 + w):ctrl + SECTOR * (2 + w)]
    magic, gw, n, writes = struct.unpack_from("<QQQQ", rec)
    if magic != DONE_MAGIC or gw & 0xFFFFFFFF != w:
        return None
    return gw >> 32, n, writes


def check_region(img, w, base, length, gen):
    """None when every block of writer w holds generation gen, else what differs."""
    bl = blocks(w, base, length)
    bad = 0
    first = None
    for k, (off, size) in enumerate(bl):
        if img[off:off + size] != block(w, k, gen, off, size):
            bad += 1
            if first is None:
                got = img[off:off + SECTOR]
                m, gw, gk, gg = struct.unpack_from("<QIII", got)
                first = ("block %d (%d bytes at %d): %s" %
                         (k, size, off, "holds generation %d" % gg if m == MAGIC and gw == w and gk == k
                          else "holds no stamp of this block"))
    if bad:
        return "writer %d: %d of %d blocks are not generation %d; first: %s" % (w, bad, len(bl), gen, first)
    return None
