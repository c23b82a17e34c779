# SPDX-License-Identifier: MIT
"""A small vhost-user frontend for tests (Python 3 standard library only).

It speaks the control protocol over the unix socket (messages with file
descriptors as SCM_RIGHTS), keeps guest memory in a memfd, lays out split
virtqueues in it and drives them as a virtio driver would: descriptors,
avail entries, kicks, the used ring.  Nothing here trusts the device: every
reply header and used element is checked.  Every layer is also usable raw,
so a test can send any bytes, any fds, any descriptor it likes.

Layers:
  Conn          one connection: send()/recv_reply(), typed requests
  GuestMemory   a memfd mapped here; guest-physical (gpa) and frontend
                virtual (uva) addresses of its bytes; a bump allocator
  VirtQueue     driver side of one split ring (EVENT_IDX or not)
  blk_*         virtio-blk request layouts (segments for a chain)
  Frontend      a well-behaved frontend: negotiation, memory, rings, I/O

Addresses: guest-physical addresses start at GPA_BASE; the frontend
virtual address of the same byte is UVA_BASE + (gpa - GPA_BASE).  The two
differ on purpose, so a backend that mixes them up fails.
"""
import errno
import mmap
import os
import select
import socket
import struct
import time

# ---- protocol constants -----------------------------------------------------

GET_FEATURES = 1
SET_FEATURES = 2
SET_OWNER = 3
RESET_OWNER = 4
SET_MEM_TABLE = 5
SET_LOG_BASE = 6
SET_LOG_FD = 7
SET_VRING_NUM = 8
SET_VRING_ADDR = 9
SET_VRING_BASE = 10
GET_VRING_BASE = 11
SET_VRING_KICK = 12
SET_VRING_CALL = 13
SET_VRING_ERR = 14
GET_PROTOCOL_FEATURES = 15
SET_PROTOCOL_FEATURES = 16
GET_QUEUE_NUM = 17
SET_VRING_ENABLE = 18
SET_BACKEND_REQ_FD = 21
GET_CONFIG = 24
SET_CONFIG = 25
GET_INFLIGHT_FD = 31
SET_INFLIGHT_FD = 32
RESET_DEVICE = 34

FLAG_VERSION = 0x1
FLAG_REPLY = 0x4
FLAG_NEED_REPLY = 0x8
HDR = struct.Struct("<III")
MAX_PAYLOAD = 4096
VRING_NOFD = 1 << 8

F_PROTOCOL_FEATURES = 30
PROTO_MQ = 0
PROTO_REPLY_ACK = 3
PROTO_BACKEND_REQ = 5
PROTO_CONFIG = 9
PROTO_INFLIGHT_SHMFD = 12

BACKEND_CONFIG_CHANGE_MSG = 2  # backend -> frontend, on the backend channel

VIRTIO_F_INDIRECT_DESC = 28
VIRTIO_F_EVENT_IDX = 29
VIRTIO_F_VERSION_1 = 32

BLK_F_SEG_MAX = 2
BLK_F_RO = 5
BLK_F_BLK_SIZE = 6
BLK_F_FLUSH = 9
BLK_F_MQ = 12
BLK_F_DISCARD = 13
BLK_F_WRITE_ZEROES = 14

DESC_F_NEXT = 1
DESC_F_WRITE = 2
DESC_F_INDIRECT = 4
USED_F_NO_NOTIFY = 1
AVAIL_F_NO_INTERRUPT = 1

T_IN = 0
T_OUT = 1
T_FLUSH = 4
T_GET_ID = 8
T_DISCARD = 11
T_WRITE_ZEROES = 13
S_OK = 0
S_IOERR = 1
S_UNSUPP = 2
SECTOR = 512

GPA_BASE = 0x100000
UVA_BASE = 0x7F5A00000000

U64 = struct.Struct("<Q")
VRING_STATE = struct.Struct("<II")
VRING_ADDR = struct.Struct("<IIQQQQ")
MEM_REGION = struct.Struct("<QQQQ")
CONFIG_HDR = struct.Struct("<III")
DESC = struct.Struct("<QIHH")
INFLIGHT = struct.Struct("<QQHHI")      # QEMU's VhostUserInflight: 24 bytes
INFLIGHT_HDR = struct.Struct("<QHHHH")  # features, version, desc_num, last_batch_head, used_idx
INFLIGHT_DESC = struct.Struct("<B5xHQ")  # inflight, padding, next, counter
F_GET_SEALS = 1034
F_ADD_SEALS = 1033
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW = 1, 2, 4


def inflight_queue_bytes(qsize):
    """One queue's inflight region: header + entries, rounded up to 64."""
    return (16 + 16 * qsize + 63) & ~63
BLK_HDR = struct.Struct("<IIQ")
BLK_RANGE = struct.Struct("<QII")


class ProtocolError(Exception):
    """The device broke the protocol (or did not answer)."""


class Closed(ProtocolError):
    """The device closed the connection."""


# ---- connection -------------------------------------------------------------


class Conn:
    """One vhost-user connection.  send() writes any header/payload/fds;
    the typed helpers speak the protocol properly."""

    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.sock.connect(path)
        self.protocol_features = 0

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # -- raw i/o --

    def send_raw(self, data, fds=()):
        """Writes bytes (with fds attached to the first byte)."""
        fds = list(fds)
        if fds:
            n = socket.send_fds(self.sock, [data], fds)
            data = data[n:]
        if data:
            self.sock.sendall(data)

    def send(self, req, payload=b"", fds=(), flags=FLAG_VERSION, need_reply=False,
             size=None):
        """Sends one message; `size` overrides the header's payload size."""
        if need_reply:
            flags |= FLAG_NEED_REPLY
        hdr = HDR.pack(req, flags, len(payload) if size is None else size)
        self.send_raw(hdr + bytes(payload), fds)

    def _recv_exact(self, n, timeout):
        buf = b""
        self.sock.settimeout(timeout)
        try:
            while len(buf) < n:
                try:
                    chunk = self.sock.recv(n - len(buf))
                except socket.timeout:
                    raise ProtocolError("no reply within %.1f s" % timeout) from None
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    raise Closed("connection closed by the device")
                buf += chunk
        finally:
            self.sock.settimeout(self.timeout)
        return buf

    def recv_reply(self, req, timeout=None):
        """Reads one reply to `req` and checks its header."""
        timeout = self.timeout if timeout is None else timeout
        r, flags, size = HDR.unpack(self._recv_exact(HDR.size, timeout))
        if r != req:
            raise ProtocolError("reply to request %d has request code %d" % (req, r))
        if flags != FLAG_VERSION | FLAG_REPLY:
            raise ProtocolError("reply to request %d has flags 0x%x" % (req, flags))
        if size > MAX_PAYLOAD:
            raise ProtocolError("reply to request %d has size %d" % (req, size))
        return self._recv_exact(size, timeout) if size else b""

    def recv_reply_fds(self, req, timeout=None):
        """Like recv_reply(), keeping the fds that came with the header."""
        timeout = self.timeout if timeout is None else timeout
        self.sock.settimeout(timeout)
        try:
            msg, fds, _, _ = socket.recv_fds(self.sock, HDR.size, 8)
        except socket.timeout:
            raise ProtocolError("no reply within %.1f s" % timeout) from None
        finally:
            self.sock.settimeout(self.timeout)
        if not msg:
            raise Closed("connection closed by the device")
        if len(msg) < HDR.size:
            msg += self._recv_exact(HDR.size - len(msg), timeout)
        r, flags, size = HDR.unpack(msg)
        if r != req or flags != FLAG_VERSION | FLAG_REPLY or size > MAX_PAYLOAD:
            for fd in fds:
                os.close(fd)
            raise ProtocolError("reply to request %d: request %d flags 0x%x size %d" % (req, r, flags, size))
        return (self._recv_exact(size, timeout) if size else b""), fds

    def get_inflight_fd(self, num_queues, queue_size):
        """GET_INFLIGHT_FD: (mmap_size, mmap_offset, fd)."""
        self.send(GET_INFLIGHT_FD, INFLIGHT.pack(0, 0, num_queues, queue_size, 0))
        p, fds = self.recv_reply_fds(GET_INFLIGHT_FD)
        if len(p) != INFLIGHT.size:
            for fd in fds:
                os.close(fd)
            raise ProtocolError("GET_INFLIGHT_FD reply of %d bytes" % len(p))
        size, off, nq, qs, _ = INFLIGHT.unpack(p)
        if size and len(fds) != 1 or not size and fds:
            for fd in fds:
                os.close(fd)
            raise ProtocolError("GET_INFLIGHT_FD: size %d with %d fds" % (size, len(fds)))
        if (nq, qs) != (num_queues, queue_size):
            os.close(fds[0])
            raise ProtocolError("GET_INFLIGHT_FD reply for %d queues of %d" % (nq, qs))
        return size, off, fds[0] if fds else None

    def set_inflight_fd(self, mmap_size, mmap_offset, num_queues, queue_size, fd):
        self.request(SET_INFLIGHT_FD, INFLIGHT.pack(mmap_size, mmap_offset, num_queues, queue_size, 0),
                     [fd] if fd is not None else [])

    def call(self, req, payload=b"", fds=()):
        """A request that always has a reply (GET_*)."""
        self.send(req, payload, fds)
        return self.recv_reply(req)

    def ack(self, req, payload=b"", fds=(), timeout=None):
        """A request sent with NEED_REPLY; returns the ack value (0 = ok)."""
        self.send(req, payload, fds, need_reply=True)
        p = self.recv_reply(req, timeout)
        if len(p) != 8:
            raise ProtocolError("ack to request %d has %d bytes" % (req, len(p)))
        return U64.unpack(p)[0]

    def request(self, req, payload=b"", fds=()):
        """A set-type request: acked (and checked) when REPLY_ACK was
        negotiated, else sent blind."""
        if self.protocol_features & (1 << PROTO_REPLY_ACK):
            a = self.ack(req, payload, fds)
            if a != 0:
                raise ProtocolError("request %d refused (ack %d)" % (req, a))
        else:
            self.send(req, payload, fds)

    def wait_closed(self, timeout=2.0):
        """True when the device closes the connection within `timeout`
        (anything it sends meanwhile is discarded)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    if not self.sock.recv(4096):
                        return True
                except socket.timeout:
                    return False
                except (ConnectionResetError, BrokenPipeError):
                    return True
        finally:
            self.sock.settimeout(self.timeout)

    def responsive(self):
        """True when the connection still answers GET_FEATURES."""
        try:
            return len(self.call(GET_FEATURES)) == 8
        except (ProtocolError, OSError):
            return False

    # -- typed requests --

    def get_features(self):
        return U64.unpack(self.call(GET_FEATURES))[0]

    def set_features(self, f):
        self.request(SET_FEATURES, U64.pack(f))

    def get_protocol_features(self):
        return U64.unpack(self.call(GET_PROTOCOL_FEATURES))[0]

    def set_protocol_features(self, f):
        self.send(SET_PROTOCOL_FEATURES, U64.pack(f))
        self.protocol_features = f

    def get_queue_num(self):
        return U64.unpack(self.call(GET_QUEUE_NUM))[0]

    def set_owner(self):
        self.request(SET_OWNER)

    def get_config(self, offset, size, flags=0):
        """Returns the config bytes; checks the reply echoes the request."""
        p = self.call(GET_CONFIG, CONFIG_HDR.pack(offset, size, flags) + bytes(size))
        if len(p) != CONFIG_HDR.size + size:
            raise ProtocolError("GET_CONFIG reply of %d bytes for %d" % (len(p), size))
        off, sz, _ = CONFIG_HDR.unpack_from(p)
        if (off, sz) != (offset, size):
            raise ProtocolError("GET_CONFIG reply for offset %d size %d" % (off, sz))
        return p[CONFIG_HDR.size:]

    def set_mem_table(self, regions, fds):
        """regions: [(gpa, size, uva, mmap_offset)], one fd each."""
        self.request(SET_MEM_TABLE, mem_table_payload(regions), fds)

    def set_vring_num(self, index, num):
        self.request(SET_VRING_NUM, VRING_STATE.pack(index, num))

    def set_vring_base(self, index, base):
        self.request(SET_VRING_BASE, VRING_STATE.pack(index, base))

    def get_vring_base(self, index):
        idx, base = VRING_STATE.unpack(self.call(GET_VRING_BASE, VRING_STATE.pack(index, 0)))
        if idx != index:
            raise ProtocolError("GET_VRING_BASE reply for ring %d, asked %d" % (idx, index))
        return base

    def set_vring_addr(self, index, desc_uva, used_uva, avail_uva, flags=0, log=0):
        self.request(SET_VRING_ADDR, VRING_ADDR.pack(index, flags, desc_uva, used_uva,
                                                     avail_uva, log))

    def set_vring_fd(self, req, index, fd):
        """SET_VRING_KICK/CALL/ERR; fd None sends the no-fd flag."""
        if fd is None:
            self.request(req, U64.pack(index | VRING_NOFD))
        else:
            self.request(req, U64.pack(index), [fd])

    def set_vring_enable(self, index, on):
        self.request(SET_VRING_ENABLE, VRING_STATE.pack(index, 1 if on else 0))


def mem_table_payload(regions, nregions=None):
    """SET_MEM_TABLE payload; nregions overrides the count field."""
    n = len(regions) if nregions is None else nregions
    return struct.pack("<II", n, 0) + b"".join(MEM_REGION.pack(*r) for r in regions)


# ---- guest memory ----------------------------------------------------------------


class GuestMemory:
    """A memfd mapped here: bytes [0, size) are guest-physical
    [gpa, gpa + size) and frontend-virtual [uva, uva + size)."""

    def __init__(self, size=32 << 20, gpa=GPA_BASE, uva=UVA_BASE, name="guest-ram",
                 ring_area=None):
        self.size = size
        self.gpa = gpa
        self.uva_base = uva
        self.fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(self.fd, size)
        self.mm = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        # Ring indexes the device reads while we write them must be stored
        # in one 16-bit access: struct.pack_into() zeroes its target before
        # packing, and a device can see that 0 (a corrupt avail index).
        self.h = memoryview(self.mm).cast("H")
        # Rings come from [0, ring_area), request buffers from the rest.
        if ring_area is None:
            ring_area = min(size // 4, 4 << 20)
        self.ring_area = ring_area
        self.brk = 0
        self.data_next = ring_area

    def unmap(self):
        if self.mm is not None:
            self.h.release()
            self.mm.close()
            self.mm = None

    def close(self):
        self.unmap()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def region(self):
        """(gpa, size, uva, mmap_offset) of the whole memfd."""
        return (self.gpa, self.size, self.uva_base, 0)

    @property
    def end(self):
        return self.gpa + self.size

    def off(self, gpa, n=0):
        o = gpa - self.gpa
        if o < 0 or o + n > self.size:
            raise ValueError("gpa 0x%x (+%d) is outside the test's memory" % (gpa, n))
        return o

    def uva(self, gpa):
        return self.uva_base + (gpa - self.gpa)

    def alloc(self, n, align=64):
        """Bump allocation for long-lived things (rings)."""
        start = (self.brk + align - 1) & ~(align - 1)
        if start + n > self.ring_area:
            raise MemoryError("ring area of guest memory exhausted")
        self.brk = start + n
        return self.gpa + start

    def alloc_data(self, n, align=4096):
        """Buffers for requests: a ring allocator over the rest of memory,
        wrapping around (callers complete requests before it laps them)."""
        start = (self.data_next + align - 1) & ~(align - 1)
        if start + n > self.size:
            start = self.ring_area
            if start + n > self.size:
                raise MemoryError("request of %d bytes does not fit" % n)
        self.data_next = start + n
        return self.gpa + start

    def write(self, gpa, data):
        o = self.off(gpa, len(data))
        self.mm[o:o + len(data)] = bytes(data)

    def read(self, gpa, n):
        o = self.off(gpa, n)
        return bytes(self.mm[o:o + n])

    def fill(self, gpa, n, byte):
        self.write(gpa, bytes([byte]) * n)

    def u16(self, gpa):
        """One 16-bit load (gpa even)."""
        return self.h[self.off(gpa, 2) >> 1]

    def put_u16(self, gpa, v):
        """One 16-bit store (gpa even)."""
        self.h[self.off(gpa, 2) >> 1] = v & 0xFFFF

    def u32(self, gpa):
        return struct.unpack_from("<I", self.mm, self.off(gpa, 4))[0]


class InflightArea:
    """The inflight area a frontend keeps (GET_INFLIGHT_FD's memfd, mapped
    here): one region per queue, read and written as the spec lays it out."""

    def __init__(self, fd, size, nq, qsize, offset=0):
        self.fd, self.size, self.nq, self.qsize, self.offset = fd, size, nq, qsize, offset
        self.mm = mmap.mmap(fd, size + offset, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

    def close(self):
        if self.mm is not None:
            self.mm.close()
            self.mm = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def base(self, q):
        return self.offset + q * inflight_queue_bytes(self.qsize)

    def header(self, q):
        """(features, version, desc_num, last_batch_head, used_idx)"""
        return INFLIGHT_HDR.unpack_from(self.mm, self.base(q))

    def set_header(self, q, features=None, version=None, desc_num=None, last_batch_head=None,
                   used_idx=None):
        h = list(self.header(q))
        for i, v in enumerate((features, version, desc_num, last_batch_head, used_idx)):
            if v is not None:
                h[i] = v
        INFLIGHT_HDR.pack_into(self.mm, self.base(q), *h)

    def desc(self, q, i):
        """(inflight, next, counter) of entry i."""
        return INFLIGHT_DESC.unpack_from(self.mm, self.base(q) + 16 + 16 * i)

    def set_desc(self, q, i, inflight=None, nxt=None, counter=None):
        d = list(self.desc(q, i))
        for k, v in enumerate((inflight, nxt, counter)):
            if v is not None:
                d[k] = v
        INFLIGHT_DESC.pack_into(self.mm, self.base(q) + 16 + 16 * i, *d)

    def marked(self, q):
        """Heads marked in flight, by counter."""
        e = [(self.desc(q, i)[2], i) for i in range(self.qsize) if self.desc(q, i)[0]]
        return [i for _, i in sorted(e)]


# ---- driver side of a split virtqueue ------------------------------------------------


def need_event(event, new, old):
    """vring_need_event(): did [old, new) step over `event`?"""
    return ((new - event - 1) & 0xFFFF) < ((new - old) & 0xFFFF)


class VirtQueue:
    """Driver side of one split ring in `mem`.  Descriptors come from a free
    list; add_chain()/add_indirect() build proper chains, set_desc() and
    publish() let a test write anything."""

    def __init__(self, mem, index, size=128, event_idx=False):
        self.mem = mem
        self.index = index
        self.size = size
        self.event_idx = event_idx
        self.desc = mem.alloc(16 * size, 4096)
        self.avail = mem.alloc(6 + 2 * size, 64)
        self.used = mem.alloc(6 + 8 * size, 4096)
        mem.write(self.desc, bytes(16 * size))
        mem.write(self.avail, bytes(6 + 2 * size))
        mem.write(self.used, bytes(6 + 8 * size))
        self.kick_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.call_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.avail_idx = 0      # shadow of avail->idx
        self.last_used = 0      # next used element to read
        self.free = list(range(size))
        self.outstanding = {}   # head -> (descriptor indices, writable bytes)
        self.always_kick = False

    def close(self):
        for fd in (self.kick_fd, self.call_fd):
            if fd is not None:
                os.close(fd)
        self.kick_fd = self.call_fd = None

    # addresses
    def desc_addr(self, i):
        return self.desc + 16 * i

    @property
    def used_event_addr(self):
        return self.avail + 4 + 2 * self.size

    @property
    def avail_event_addr(self):
        return self.used + 4 + 8 * self.size

    def uvas(self):
        """(desc, used, avail) frontend virtual addresses, SET_VRING_ADDR order."""
        return self.mem.uva(self.desc), self.mem.uva(self.used), self.mem.uva(self.avail)

    def resume(self, base):
        """After a stop: continue from avail index `base` (all used)."""
        self.avail_idx = base
        self.last_used = base
        self.mem.put_u16(self.avail + 2, base)
        self.mem.put_u16(self.used + 2, base)
        self.free = list(range(self.size))
        self.outstanding = {}

    # descriptors
    def set_desc(self, i, addr, length, flags=0, nxt=0):
        self.mem.write(self.desc_addr(i), DESC.pack(addr, length, flags, nxt))

    def alloc_desc(self, n):
        if n > len(self.free):
            raise RuntimeError("queue %d: %d descriptors wanted, %d free"
                               % (self.index, n, len(self.free)))
        got, self.free = self.free[:n], self.free[n:]
        return got

    def add_chain(self, segs):
        """segs: [(gpa, len, writable)] -> head (published, not kicked)."""
        idx = self.alloc_desc(len(segs))
        for k, (addr, length, w) in enumerate(segs):
            flags = (DESC_F_WRITE if w else 0) | (DESC_F_NEXT if k + 1 < len(segs) else 0)
            self.set_desc(idx[k], addr, length, flags, idx[k + 1] if k + 1 < len(segs) else 0)
        wbytes = sum(length for _, length, w in segs if w)
        self.publish(idx[0], idx, wbytes)
        return idx[0]

    def add_indirect(self, segs):
        """The same chain as an indirect table in guest memory."""
        table = self.mem.alloc_data(16 * len(segs), 16)
        raw = b""
        for k, (addr, length, w) in enumerate(segs):
            flags = (DESC_F_WRITE if w else 0) | (DESC_F_NEXT if k + 1 < len(segs) else 0)
            raw += DESC.pack(addr, length, flags, k + 1 if k + 1 < len(segs) else 0)
        self.mem.write(table, raw)
        (i,) = self.alloc_desc(1)
        self.set_desc(i, table, len(raw), DESC_F_INDIRECT, 0)
        wbytes = sum(length for _, length, w in segs if w)
        self.publish(i, [i], wbytes)
        return i

    def publish(self, head, descs=(), wbytes=None):
        """Makes `head` available (ring entry, then index).  descs go back
        to the free list when the device uses the head; wbytes bounds the
        used length the device may report (None: no bound known)."""
        if self.event_idx:
            # Ask for an interrupt at the next used element.
            self.mem.put_u16(self.used_event_addr, self.last_used)
        self.mem.put_u16(self.avail + 4 + 2 * (self.avail_idx % self.size), head)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.mem.put_u16(self.avail + 2, self.avail_idx)
        self.outstanding.setdefault(head, []).append((list(descs), wbytes))

    def set_avail_idx(self, v):
        """Writes avail->idx as is (for corrupt-index tests)."""
        self.mem.put_u16(self.avail + 2, v)

    # notifications
    def kick(self, old_idx=None):
        """Kicks unless the device asked not to be (pass the avail index
        before publishing for EVENT_IDX suppression; None = always)."""
        if not self.always_kick and old_idx is not None:
            if self.event_idx:
                if not need_event(self.mem.u16(self.avail_event_addr), self.avail_idx, old_idx):
                    return False
            elif self.mem.u16(self.used) & USED_F_NO_NOTIFY:
                return False
        os.eventfd_write(self.kick_fd, 1)
        return True

    def wait_call(self, timeout=1.0):
        """True when the device signalled the call eventfd."""
        r, _, _ = select.select([self.call_fd], [], [], timeout)
        if not r:
            return False
        try:
            os.eventfd_read(self.call_fd)
        except BlockingIOError:
            return False
        return True

    # completions
    def used_idx(self):
        return self.mem.u16(self.used + 2)

    def poll_used(self):
        """Used elements published since the last call: [(id, len)], each
        checked (id < size, id outstanding, len within the buffers)."""
        out = []
        idx = self.used_idx()
        pending = (idx - self.last_used) & 0xFFFF
        if pending > self.size:
            raise ProtocolError("queue %d: used idx %d is %d past %d" % (self.index, idx, pending,
                                                                         self.last_used))
        while self.last_used != idx:
            e = self.used + 4 + 8 * (self.last_used % self.size)
            uid, ulen = struct.unpack("<II", self.mem.read(e, 8))
            if uid >= self.size:
                raise ProtocolError("queue %d: used id %d >= size %d" % (self.index, uid, self.size))
            lst = self.outstanding.get(uid)
            if not lst:
                raise ProtocolError("queue %d: used id %d was not made available" % (self.index, uid))
            descs, wbytes = lst.pop(0)
            if not lst:
                del self.outstanding[uid]
            if wbytes is not None and ulen > wbytes:
                raise ProtocolError("queue %d: used len %d > %d writable bytes" % (self.index, ulen, wbytes))
            self.free.extend(descs)
            out.append((uid, ulen))
            self.last_used = (self.last_used + 1) & 0xFFFF
        return out

    def wait_used(self, n=1, timeout=2.0):
        """Waits for n used elements; returns what came (maybe fewer)."""
        got = []
        deadline = time.monotonic() + timeout
        delay = 0.0001
        while True:
            got += self.poll_used()
            if len(got) >= n or time.monotonic() >= deadline:
                return got
            time.sleep(delay)
            delay = min(delay * 2, 0.005)


# ---- virtio-blk requests -----------------------------------------------------------


class BlkReq:
    """Buffers of one virtio-blk request in guest memory and its segments
    ([(gpa, len, writable)]).  The status byte is pre-set to 0xff, so
    'untouched' can be told from any status the device writes."""

    def __init__(self, mem, type_, sector=0, data=None, in_len=0, ioprio=0, status_len=1):
        self.mem = mem
        self.type = type_
        self.hdr = mem.alloc_data(16, 16)
        mem.write(self.hdr, BLK_HDR.pack(type_, ioprio, sector))
        self.segs = [(self.hdr, 16, False)]
        self.data = None
        self.in_len = in_len
        if data is not None:
            self.data = mem.alloc_data(len(data))
            mem.write(self.data, data)
            self.segs.append((self.data, len(data), False))
        elif in_len:
            self.data = mem.alloc_data(in_len)
            mem.fill(self.data, in_len, 0xA5)
            self.segs.append((self.data, in_len, True))
        self.status = mem.alloc_data(status_len, 1)
        self.status_gpa = self.status + status_len - 1
        mem.fill(self.status, status_len, 0xFF)
        self.segs.append((self.status, status_len, True))

    def status_byte(self):
        return self.mem.read(self.status_gpa, 1)[0]

    def data_in(self, n=None):
        return self.mem.read(self.data, self.in_len if n is None else n)


def blk_range(mem, sector, num, flags=0):
    """A DISCARD/WRITE_ZEROES range segment (readable)."""
    g = mem.alloc_data(16, 16)
    mem.write(g, BLK_RANGE.pack(sector, num, flags))
    return (g, 16, False)


# ---- a well-behaved frontend -------------------------------------------------------


class Frontend:
    """Connects and sets a device up the way QEMU does (negotiation,
    GET_CONFIG, memory table, every ring), then does virtio-blk I/O."""

    def __init__(self, path, queues=None, queue_size=128, event_idx=True, indirect=True,
                 mem_size=32 << 20, timeout=5.0, setup=True, inflight=False,
                 backend_req=False, backend_sndbuf=None):
        self.path = path
        self.want_inflight = inflight
        self.inflight = None
        self.want_backend_req = backend_req
        self.backend_sndbuf = backend_sndbuf  # the backend's end: a small one fills fast
        self.backend = None  # our end of the backend channel (backend_req)
        self.conn = Conn(path, timeout)
        self.conn_timeout = timeout
        self.mem = GuestMemory(mem_size)
        self.queue_size = queue_size
        self.want_event_idx = event_idx
        self.want_indirect = indirect
        self.vqs = []
        self.nqueues_wanted = queues
        self.config = None
        if setup:
            try:
                self.negotiate()
                self.set_mem()
                self.setup_rings()
            except BaseException:
                self.close()
                raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        for vq in self.vqs:
            vq.close()
        self.vqs = []
        if self.inflight is not None:
            self.inflight.close()
            self.inflight = None
        if self.mem is not None:
            self.mem.close()
            self.mem = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def negotiate(self):
        c = self.conn
        self.offered = c.get_features()
        if not self.offered & (1 << F_PROTOCOL_FEATURES):
            raise ProtocolError("PROTOCOL_FEATURES not offered")
        pf = c.get_protocol_features()
        want = (1 << PROTO_MQ) | (1 << PROTO_REPLY_ACK) | (1 << PROTO_CONFIG)
        if self.want_inflight:
            want |= 1 << PROTO_INFLIGHT_SHMFD
        if self.want_backend_req:
            want |= 1 << PROTO_BACKEND_REQ
        if pf & want != want:
            raise ProtocolError("protocol features 0x%x lack 0x%x" % (pf, want & ~pf))
        c.set_protocol_features(want)
        if self.want_backend_req:
            # As QEMU does: a socketpair, one end to the backend.
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            if self.backend_sndbuf:
                theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.backend_sndbuf)
            try:
                c.request(SET_BACKEND_REQ_FD, b"", [theirs.fileno()])
            finally:
                theirs.close()
            self.backend = mine
        self.device_queues = c.get_queue_num()
        c.set_owner()
        cfg = c.get_config(0, 60)
        self.config = cfg
        self.capacity = struct.unpack_from("<Q", cfg, 0)[0]
        f = self.offered
        if not self.want_event_idx:
            f &= ~(1 << VIRTIO_F_EVENT_IDX)
        if not self.want_indirect:
            f &= ~(1 << VIRTIO_F_INDIRECT_DESC)
        self.features = f
        c.set_features(f)
        self.event_idx = bool(f & (1 << VIRTIO_F_EVENT_IDX))
        self.indirect = bool(f & (1 << VIRTIO_F_INDIRECT_DESC))

    def set_mem(self):
        self.conn.set_mem_table([self.mem.region()], [self.mem.fd])

    def setup_rings(self):
        n = self.device_queues if self.nqueues_wanted is None else self.nqueues_wanted
        for i in range(n):
            self.vqs.append(VirtQueue(self.mem, i, self.queue_size, self.event_idx))
        if self.want_inflight:
            # What QEMU does once: the backend's area, kept across restarts.
            size, off, fd = self.conn.get_inflight_fd(n, self.queue_size)
            self.inflight = InflightArea(fd, size, n, self.queue_size, off)
            self.conn.set_inflight_fd(size, off, n, self.queue_size, fd)
        for vq in self.vqs:
            self.conn.set_vring_fd(SET_VRING_CALL, vq.index, vq.call_fd)
        for vq in self.vqs:
            self.start_ring(vq)

    def reconnect(self, path=None, timeout=10.0):
        """After the backend died: a new connection, set up as QEMU 7.2
        does it (the kept inflight area handed back, every ring's base set
        to its used index), the rings and requests left as they were."""
        if self.conn is not None:
            self.conn.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.conn = Conn(path or self.path, self.conn_timeout)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.negotiate()
        self.set_mem()
        if self.inflight is not None:
            a = self.inflight
            self.conn.set_inflight_fd(a.size, a.offset, a.nq, a.qsize, a.fd)
        for vq in self.vqs:
            self.conn.set_vring_fd(SET_VRING_CALL, vq.index, vq.call_fd)
        for vq in self.vqs:
            self.start_ring(vq, base=vq.used_idx())

    def start_ring(self, vq, base=0):
        c = self.conn
        c.set_vring_num(vq.index, vq.size)
        c.set_vring_base(vq.index, base)
        c.set_vring_addr(vq.index, *vq.uvas())
        c.set_vring_fd(SET_VRING_KICK, vq.index, vq.kick_fd)
        c.set_vring_enable(vq.index, True)

    # -- I/O --

    def submit(self, q, req, indirect=False, segs=None):
        vq = self.vqs[q]
        old = vq.avail_idx
        segs = req.segs if segs is None else segs
        head = vq.add_indirect(segs) if indirect else vq.add_chain(segs)
        vq.kick(old)
        return head

    def run(self, q, req, indirect=False, timeout=2.0, check_call=False):
        """Submits one request and waits for it: (status byte, used len)."""
        vq = self.vqs[q]
        head = self.submit(q, req, indirect)
        used = vq.wait_used(1, timeout)
        if not used:
            raise ProtocolError("queue %d: request (type %d) not completed within %.1f s"
                                % (q, req.type, timeout))
        if used[0][0] != head:
            raise ProtocolError("queue %d: used id %d, expected %d" % (q, used[0][0], head))
        if check_call and not vq.wait_call(1.0):
            raise ProtocolError("queue %d: no interrupt after a completion" % q)
        return req.status_byte(), used[0][1]

    def write(self, q, sector, data, indirect=False, check_call=False):
        return self.run(q, BlkReq(self.mem, T_OUT, sector, data=data), indirect,
                        check_call=check_call)

    def read(self, q, sector, n, indirect=False, check_call=False):
        r = BlkReq(self.mem, T_IN, sector, in_len=n)
        st, ulen = self.run(q, r, indirect, check_call=check_call)
        return st, ulen, r.data_in()

    def simple(self, q, type_, sector=0, indirect=False, check_call=False):
        return self.run(q, BlkReq(self.mem, type_, sector), indirect, check_call=check_call)

    def range_op(self, q, type_, sector, num, flags=0, indirect=False, check_call=False):
        r = BlkReq(self.mem, type_, 0)
        r.segs.insert(1, blk_range(self.mem, sector, num, flags))
        return self.run(q, r, indirect, check_call=check_call)

    def backend_msg(self, timeout=2.0):
        """One message the backend sent on the backend channel:
        (request, flags, payload), or None after timeout."""
        self.backend.settimeout(timeout)
        try:
            hdr = self.backend.recv(HDR.size, socket.MSG_WAITALL)
        except socket.timeout:
            return None
        if len(hdr) != HDR.size:
            raise Closed("backend channel closed")
        req, flags, size = HDR.unpack(hdr)
        payload = self.backend.recv(size, socket.MSG_WAITALL) if size else b""
        return req, flags, payload

    def get_id(self, q, indirect=False):
        r = BlkReq(self.mem, T_GET_ID, 0, in_len=20)
        st, ulen = self.run(q, r, indirect)
        return st, ulen, r.data_in()


def proc_fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError as e:
        if e.errno == errno.ENOENT:
            return -1
        raise


def proc_cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def proc_maps_count(pid, name):
    with open("/proc/%d/maps" % pid) as f:
        return sum(1 for line in f if name in line)


# ---- virtio-ndp requests (docs/virtio-ndp.md, include/rosen/virtio_ndp.h) -----------

NDP_T_BASE = 0x52420000
NDP_T_PROBE = NDP_T_BASE + 1
NDP_T_LOAD = NDP_T_BASE + 2
NDP_T_UNLOAD = NDP_T_BASE + 3
NDP_T_READ_ND = NDP_T_BASE + 4
NDP_T_WRITE_ND = NDP_T_BASE + 5
NDP_T_REG_MEM = NDP_T_BASE + 6
NDP_T_UNREG_MEM = NDP_T_BASE + 7
NDP_T_REG_FILE = NDP_T_BASE + 8
NDP_T_UNREG_FILE = NDP_T_BASE + 9
NDP_T_REG_GPU = NDP_T_BASE + 10
NDP_T_UNREG_GPU = NDP_T_BASE + 11
NDP_T_GPU_SUM = NDP_T_BASE + 12
NDP_MAGIC = 0x5044534E
NDP_VERSION = 4

NDP_PROG_SQ = 1
NDP_PROG_CQ = 2
NDP_PROG_XRP = 3

NDP_MAX_PROGRAMS = 16
NDP_MAX_ELF_BYTES = 1 << 20
NDP_MAX_META = 4096
NDP_MAX_SCRATCH = 4096
NDP_MAX_DATA = 4096
NDP_MAX_HOPS = 1024
NDP_DEFAULT_HOPS = 64
NDP_SECTION_MAX = 64
NDP_MAX_REGIONS = 4
NDP_MAX_REGION_BYTES = 1 << 30
NDP_MAX_FILES = 16
NDP_MAX_EXTENTS = 16384
NDP_CAP_FILES = 1 << 0
NDP_CAP_GDS = 1 << 1
NDP_CAP_CUDA = 1 << 2
NDP_IO_F_FILE = 1 << 0
NDP_IO_F_GPU = 1 << 1
NDP_GPU_HOST = 1
NDP_GPU_CUDA = 2
NDP_MAX_GPU_REGIONS = 8
NDP_MAX_GPU_REGION_BYTES = 256 << 20
NDP_MAX_GPU_BYTES = 512 << 20
NDP_MAX_GPU_READ = 64 << 20

NDP_S_OK = 0
NDP_S_BAD_REQUEST = 1
NDP_S_NO_PROGRAM = 2
NDP_S_HOP_LIMIT = 3
NDP_S_BUDGET = 4
NDP_S_FAULT = 5
NDP_S_IO_ERROR = 6
NDP_S_OUT_OF_RANGE = 7
NDP_S_REJECTED = 8
NDP_S_LIMIT = 9
NDP_S_WRONG_TYPE = 10
NDP_S_NO_MEMORY = 11
NDP_S_READ_ONLY = 12
NDP_S_STALE_LAYOUT = 13
NDP_S_STATE_LOST = 14
NDP_S_NO_GPU = 15
NDP_STATUS_NAMES = ("ok", "bad-request", "no-program", "hop-limit", "budget", "fault",
                    "io-error", "out-of-range", "rejected", "limit", "wrong-type", "no-memory",
                    "read-only", "stale-layout", "state-lost", "no-gpu")

NDP_PROBE = struct.Struct("<12I16x")       # magic version max_programs max_elf_bytes
                                           # max_meta max_scratch max_data max_hops prog_types
                                           # caps max_files max_extents
NDP_LOAD = struct.Struct("<II64s")         # prog_type elf_len section
NDP_LOAD_RESULT = struct.Struct("<IIII")   # handle status log_len reserved
NDP_UNLOAD = struct.Struct("<II")          # handle reserved
NDP_IO = struct.Struct("<8I")              # handle io_len meta_len scratch_len data_len
                                           # max_hops flags file_key
NDP_RESULT = struct.Struct("<IIQQ")        # status hops retval bytes
NDP_REG_MEM = struct.Struct("<QQ")         # gpa len
NDP_REG_RESULT = struct.Struct("<II")      # status key
NDP_UNREG_MEM = struct.Struct("<II")       # key reserved
NDP_REG_FILE = struct.Struct("<QII")       # file_size n_extents flags
NDP_EXTENT = struct.Struct("<QQQ")         # file_off disk_off len
NDP_UNREG_FILE = struct.Struct("<II")      # key reserved
NDP_REG_GPU = struct.Struct("<QII")        # size target flags
NDP_UNREG_GPU = struct.Struct("<II")       # key reserved
NDP_GPU_SUM = struct.Struct("<IIQQ")       # key reserved offset len
NDP_GPU_SUM_RESULT = struct.Struct("<IIQ")  # status reserved sum (CRC-32)
U32 = struct.Struct("<I")


def ndp_status_name(s):
    return NDP_STATUS_NAMES[s] if 0 <= s < len(NDP_STATUS_NAMES) else "unknown(%d)" % s


def split_lengths(total, sizes):
    """Descriptor lengths covering `total` bytes: `sizes` repeated (cycled)
    until the bytes run out, the last one cut to fit."""
    out, left, k = [], total, 0
    while left > 0:
        n = min(sizes[k % len(sizes)], left)
        out.append(n)
        left -= n
        k += 1
    return out


class NdpReq:
    """One NDP request laid out raw in guest memory, usable with
    Frontend.run()/submit() like a BlkReq.

    Readable bytes: the 16-byte virtio-blk header {type, ioprio, sector}
    followed by `rparts` (bytes objects, sent as given: lengths need not
    match anything).  Writable bytes: `wparts` (byte counts, pre-filled
    with 0xA5 so untouched bytes can be told) followed by the status byte
    (pre-set to 0xff) unless status=False.

    Layout: by default one descriptor for the header, one per non-empty
    readable part, one per non-empty writable part and one for the status
    byte.  rsplit / wsplit (lists of lengths, which must add up to the
    readable / writable byte count) lay the bytes out over any descriptors
    instead: parts may be split across descriptors or share one.  Every
    descriptor's buffer is allocated separately (`gap` bytes apart), so a
    device that assumes contiguity reads the wrong bytes."""

    def __init__(self, mem, type_, rparts=(), wparts=(), sector=0, ioprio=0, status=True,
                 rsplit=None, wsplit=None, gap=64):
        self.mem = mem
        self.type = type_
        self.sector = sector
        self.rbytes = BLK_HDR.pack(type_ & 0xFFFFFFFF, ioprio, sector & (2**64 - 1)) + \
            b"".join(bytes(p) for p in rparts)
        self.wparts = list(wparts)
        self.has_status = status
        self.wlen = sum(self.wparts) + (1 if status else 0)
        if rsplit is None:
            rsplit = [16] + [len(p) for p in rparts if len(p)]
        if wsplit is None:
            wsplit = [n for n in self.wparts if n] + ([1] if status else [])
        if sum(rsplit) != len(self.rbytes) or any(n < 0 for n in rsplit):
            raise ValueError("rsplit %r does not cover %d readable bytes" % (rsplit, len(self.rbytes)))
        if sum(wsplit) != self.wlen or any(n < 0 for n in wsplit):
            raise ValueError("wsplit %r does not cover %d writable bytes" % (wsplit, self.wlen))
        self.segs = []
        at = 0
        for n in rsplit:
            g = mem.alloc_data(n + gap, 64)
            mem.write(g, self.rbytes[at:at + n])
            self.segs.append((g, n, False))
            at += n
        self.wsegs = []   # (gpa, len) of the writable descriptors, in order
        for n in wsplit:
            g = mem.alloc_data(n + gap, 64)
            mem.fill(g, n, 0xA5)
            self.segs.append((g, n, True))
            self.wsegs.append((g, n))
        if status:
            g, n = self.wsegs[-1]
            mem.write(g + n - 1, b"\xff")

    # -- reading what the device wrote --

    def read_w(self, off, n):
        """n bytes at offset `off` of the writable part (across descriptors)."""
        out = b""
        for g, ln in self.wsegs:
            if off >= ln:
                off -= ln
                continue
            c = min(ln - off, n - len(out))
            out += self.mem.read(g + off, c)
            off = 0
            if len(out) == n:
                break
        if len(out) != n:
            raise ValueError("writable part has no %d bytes at that offset" % n)
        return out

    def wpart(self, i):
        """The bytes of writable part i, as they are now."""
        return self.read_w(sum(self.wparts[:i]), self.wparts[i])

    def status_byte(self):
        if not self.has_status:
            raise ValueError("request without a status byte")
        return self.read_w(self.wlen - 1, 1)[0]

    def before_status(self, n):
        """The n writable bytes right before the status byte."""
        return self.read_w(self.wlen - 1 - n, n)

    def result(self):
        """READ_ND/WRITE_ND: (status, hops, retval, bytes) before the status byte."""
        return NDP_RESULT.unpack(self.before_status(NDP_RESULT.size))


def ndp_probe(mem, wlen=NDP_PROBE.size, **kw):
    return NdpReq(mem, NDP_T_PROBE, (), [wlen] if wlen else [], **kw)


def ndp_load(mem, prog_type, elf, section, log_cap=4096, elf_len=None, fixed=None, **kw):
    """LOAD: writable parts = result (16), log (log_cap).  `fixed` replaces
    the packed struct rb_ndp_load (to truncate it); section: str or bytes
    (packed into 64 bytes, NUL-padded, not necessarily terminated)."""
    if isinstance(section, str):
        section = section.encode()
    if fixed is None:
        fixed = NDP_LOAD.pack(prog_type, len(elf) if elf_len is None else elf_len, section)
    wparts = [NDP_LOAD_RESULT.size] + ([log_cap] if log_cap else [])
    return NdpReq(mem, NDP_T_LOAD, [fixed, elf], wparts, **kw)


def load_result(req):
    """(handle, status, log_len, log bytes as written (log_cap of them))."""
    handle, status, log_len, _ = NDP_LOAD_RESULT.unpack(req.wpart(0))
    log = req.wpart(1) if len(req.wparts) > 1 else b""
    return handle, status, log_len, log


def ndp_unload(mem, handle, **kw):
    return NdpReq(mem, NDP_T_UNLOAD, [NDP_UNLOAD.pack(handle, 0)], [4], **kw)


def ndp_io(mem, type_, handle, sector, io_len, meta=b"", scratch=b"", data=None, data_len=None,
           max_hops=0, flags=0, reserved=0, file_key=None, meta_len=None, scratch_len=None, wdata_len=None,
           wscratch_len=None, **kw):
    """READ_ND / WRITE_ND.  By default consistent: data_len = io_len for
    READ_ND, len(data) for WRITE_ND; every *_len override only changes the
    struct field (the parts stay as given) or, for wdata_len/wscratch_len,
    the writable part's size.  Writable parts: [data (READ_ND)], scratch,
    result (24)."""
    write = type_ == NDP_T_WRITE_ND
    if data_len is None:
        data_len = len(data) if write and data is not None else (0 if write else io_len)
    io = NDP_IO.pack(handle, io_len, len(meta) if meta_len is None else meta_len,
                     len(scratch) if scratch_len is None else scratch_len, data_len, max_hops,
                     flags, reserved if file_key is None else file_key)
    rparts = [io, meta, scratch] + ([data] if write and data is not None else [])
    sl = (len(scratch) if scratch_len is None else scratch_len) if wscratch_len is None else wscratch_len
    wparts = ([] if write else [data_len if wdata_len is None else wdata_len]) + \
        [sl, NDP_RESULT.size]
    return NdpReq(mem, type_, rparts, wparts, sector=sector, **kw)


def ndp_reg_mem(mem, gpa, length, **kw):
    return NdpReq(mem, NDP_T_REG_MEM, [NDP_REG_MEM.pack(gpa, length)], [NDP_REG_RESULT.size], **kw)


def ndp_unreg_mem(mem, key, **kw):
    return NdpReq(mem, NDP_T_UNREG_MEM, [NDP_UNREG_MEM.pack(key, 0)], [4], **kw)


def ndp_reg_file(mem, file_size, extents, n_extents=None, flags=0, tail=b"", **kw):
    """REG_FILE: extents = [(file_off, disk_off, len)]; n_extents overrides
    the count field only; tail is appended to the extent bytes (to
    truncate or pad the array, pass raw bytes there with fewer extents)."""
    body = b"".join(NDP_EXTENT.pack(*e) for e in extents) + tail
    fixed = NDP_REG_FILE.pack(file_size, len(extents) if n_extents is None else n_extents, flags)
    return NdpReq(mem, NDP_T_REG_FILE, [fixed, body], [NDP_REG_RESULT.size], **kw)


def ndp_unreg_file(mem, key, **kw):
    return NdpReq(mem, NDP_T_UNREG_FILE, [NDP_UNREG_FILE.pack(key, 0)], [4], **kw)


def ndp_reg_gpu(mem, size, target=NDP_GPU_HOST, flags=0, **kw):
    return NdpReq(mem, NDP_T_REG_GPU, [NDP_REG_GPU.pack(size, target, flags)], [NDP_REG_RESULT.size],
                  **kw)


def ndp_unreg_gpu(mem, key, **kw):
    return NdpReq(mem, NDP_T_UNREG_GPU, [NDP_UNREG_GPU.pack(key, 0)], [4], **kw)


def ndp_gpu_sum(mem, key, offset, length, reserved=0, **kw):
    return NdpReq(mem, NDP_T_GPU_SUM, [NDP_GPU_SUM.pack(key, reserved, offset, length)],
                  [NDP_GPU_SUM_RESULT.size], **kw)
