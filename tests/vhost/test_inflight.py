#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Inflight I/O tracking (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) and restart
without loss, driven by a vhost-user frontend in Python.
Usage: test_inflight.py [--daemon PATH] [--only REGEX] [--keep] [--verbose]

Control plane: GET_INFLIGHT_FD hands out a sealed memfd of the right size
and keeps nothing (100 GETs leak no fd); malformed GET/SET messages, areas
that are too small, too large, overflowing, shorter than they claim, not a
memory file or one that could shrink under the daemon are refused with a
log line naming the problem (an unsealed but sealable memfd gets sealed);
SET while a ring runs is refused.  Hostile region contents (unknown
version, desc_num, an inflight byte of 2, a marked head outside the ring,
a last batch longer than the ring or naming a head outside it, a ring
larger than its region) stop that ring from starting, with a log line.

Recovery: a region written as a crashed daemon leaves it (heads popped and
completed out of order, others in flight, a batch whose logging was cut
short, entries never popped) makes the next daemon complete exactly the
heads in flight and the never-popped ones, none twice, none that had
completed (their data must not reach the disk).  Then the real thing: a
throttled daemon SIGKILLed with requests in flight on two queues, a new
one started, the frontend reconnecting as QEMU does: every request
completes exactly once and the image is right; and SIGTERM: the daemon
completes what it popped before it exits, leaves the region with nothing
in flight, and the next daemon serves the rest.  After each test the
daemon must be alive, hold no fd or mapping of the frontend, and serve a
second frontend (the suite of test_bad_input.py).
"""
import argparse
import os
import random
import signal
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import test_bad_input as tb  # noqa: E402
import vhost_client as vc  # noqa: E402
from test_bad_input import MiB, QUEUES, SECTOR, S_OK, Failure, check  # noqa: E402
from vhost_client import BlkReq, Frontend, inflight_queue_bytes  # noqa: E402

PROTO = 0x209 | (1 << vc.PROTO_INFLIGHT_SHMFD)
M64 = (1 << 64) - 1


def negotiated(c):
    """A raw connection with INFLIGHT_SHMFD negotiated."""
    conn = c.conn(negotiate=False)
    f = conn.get_features()
    conn.get_protocol_features()
    conn.set_protocol_features(PROTO)
    conn.set_features(f)
    return conn


class Fd:
    def __init__(self, fd):
        self.fd = fd

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def memfd(c, size, sealable=True):
    fd = os.memfd_create("test-inflight", os.MFD_CLOEXEC | (os.MFD_ALLOW_SEALING if sealable else 0))
    os.ftruncate(fd, size)
    return c.keep(Fd(fd)).fd


# ==== GET_INFLIGHT_FD ===========================================================================


def t_get_gives_sealed_memfd(c):
    conn = negotiated(c)
    f0 = c.fds()
    size, off, fd = conn.get_inflight_fd(3, 64)
    c.keep(Fd(fd))
    check(size == 3 * inflight_queue_bytes(64) and off == 0, "size %d offset %d" % (size, off))
    check(os.fstat(fd).st_size == size, "memfd has %d bytes" % os.fstat(fd).st_size)
    import fcntl
    seals = fcntl.fcntl(fd, vc.F_GET_SEALS)
    want = vc.F_SEAL_SHRINK | vc.F_SEAL_GROW | vc.F_SEAL_SEAL
    check(seals & want == want, "seals 0x%x" % seals)
    check(os.pread(fd, size, 0) == bytes(size), "the area is not zeroed")
    for _ in range(100):
        s, _, fd2 = conn.get_inflight_fd(QUEUES, 32768)
        os.close(fd2)
    check(s == QUEUES * inflight_queue_bytes(32768), "size for %d x 32768: %d" % (QUEUES, s))
    c.still_open(conn)
    check(c.fds() == f0, "the daemon holds %d fds after 101 GETs (%d before)" % (c.fds(), f0))


def get_bad_case(payload, regex, fds=0):
    def t(c):
        conn = negotiated(c)
        f0 = c.fds()
        fl = [c.keep(Fd(os.eventfd(0, os.EFD_CLOEXEC))).fd for _ in range(fds)]
        conn.send(vc.GET_INFLIGHT_FD, payload, fl)
        c.closed(conn)
        c.log(regex, levels=("error",))
        check(c.fds() <= f0, "fds kept")
    return t


# ==== SET_INFLIGHT_FD ===========================================================================


def set_bad_case(make, regex):
    """make(c) -> (payload, fds) of a SET_INFLIGHT_FD the daemon must refuse
    by closing the connection."""
    def t(c):
        conn = negotiated(c)
        f0 = c.fds()
        payload, fds = make(c)
        conn.send(vc.SET_INFLIGHT_FD, payload, fds)
        c.closed(conn)
        c.log(regex, levels=("error",))
        time.sleep(0.05)
        check(c.fds() <= f0, "the daemon kept a fd (%d, %d before)" % (c.fds(), f0))
        check(c.d.memfd_maps() == 0, "the daemon kept a mapping")
    return t


NEED = 2 * inflight_queue_bytes(64)


def set_payload(size=NEED, off=0, nq=2, qs=64):
    return vc.INFLIGHT.pack(size, off, nq, qs, 0)


def t_set_unsealed_memfd_gets_sealed(c):
    conn = negotiated(c)
    fd = memfd(c, NEED)
    check(conn.ack(vc.SET_INFLIGHT_FD, set_payload(), [fd]) == 0, "refused")
    try:
        os.ftruncate(fd, 0)
        raise Failure("the frontend could still shrink the area the daemon mapped")
    except PermissionError:
        pass
    c.still_open(conn)


def t_set_while_ring_runs(c):
    fe = c.frontend(inflight=True, queue_size=16, mem_size=4 * MiB)
    a = fe.inflight
    check(fe.conn.ack(vc.SET_INFLIGHT_FD, set_payload(a.size, a.offset, a.nq, a.qsize), [a.fd]) == 1,
          "SET_INFLIGHT_FD while the rings run was accepted")
    c.log(r"SET_INFLIGHT_FD while ring \d+ runs; refused")
    st, _ = fe.write(0, 100, bytes(512))
    check(st == S_OK, "I/O after the refusal")
    c.d.img.update(100 * SECTOR, bytes(512))


# ==== hostile region contents ===================================================================


def region_case(mutate, regex, ring_size=16, area_qsize=16):
    """The region (already used once: version 1) is changed by `mutate`
    before the ring starts again: the ring must not start."""
    def t(c):
        fe = c.frontend(inflight=True, queue_size=area_qsize, queues=1, mem_size=4 * MiB,
                        setup=False)
        fe.negotiate()
        fe.set_mem()
        fe.setup_rings()            # version 1 from here on
        st, _ = fe.write(0, 200, bytes(512))
        check(st == S_OK, "first write")
        c.d.img.update(200 * SECTOR, bytes(512))
        fe.conn.get_vring_base(0)   # the ring stops (drained)
        vq = fe.vqs[0]
        mutate(fe.inflight, vq)
        c.mark = c.d.mark()
        try:
            vq.size = ring_size
            fe.start_ring(vq, base=vq.used_idx())
        except vc.Closed:
            pass
        c.closed(fe.conn)
        c.log(regex, levels=("error",))
    return t


def m_version(a, vq):
    a.set_header(0, version=7)


def m_desc_num(a, vq):
    a.set_header(0, desc_num=8)


def m_byte2(a, vq):
    a.set_desc(0, 3, inflight=2)


def m_head_outside(a, vq):
    a.set_desc(0, 12, inflight=1, counter=5)   # ring of 8 in a 16-entry region


def m_long_batch(a, vq):
    a.set_header(0, used_idx=(vq.used_idx() - 100) & 0xFFFF)


def m_batch_head_outside(a, vq):
    a.set_header(0, last_batch_head=40000, used_idx=(vq.used_idx() - 1) & 0xFFFF)


# ==== recovery from a log a crashed daemon left ==================================================


def write_req(fe, q, sector, data):
    """Makes a write available without kicking; returns (head, req)."""
    r = BlkReq(fe.mem, vc.T_OUT, sector, data=data)
    head = fe.vqs[q].add_chain(r.segs)
    return head, r


def t_recover_crafted_log(c):
    """What the dead daemon left: heads A..E popped; C and A completed (out
    of order); B, D, E in flight (E's completion published in the used
    ring but its logging cut short); F available, never popped."""
    fe = c.frontend(inflight=True, queue_size=32, queues=1, mem_size=4 * MiB)
    vq = fe.vqs[0]
    st, _ = fe.write(0, 300, bytes(512))   # the region in use, version 1
    check(st == S_OK, "first write")
    c.d.img.update(300 * SECTOR, bytes(512))
    fe.conn.close()                        # the daemon stops the ring
    fe.conn = None
    time.sleep(0.1)
    a = fe.inflight
    u0 = vq.used_idx()
    check(a.header(0)[4] == u0 and not a.marked(0), "the region after a clean stop: %r, marked %r"
          % (a.header(0), a.marked(0)))
    data = {}
    heads = {}
    for name, sector in zip("ABCDEF", (310, 311, 312, 313, 314, 315)):
        data[name] = os.urandom(512)
        heads[name], _ = write_req(fe, 0, sector, data[name])
    counter = 100
    for name in "ABCDE":
        a.set_desc(0, heads[name], inflight=1, counter=counter)
        counter += 1
    # C, then A completed: used elements, used->idx, then the log.
    for name in "CA":
        h = heads[name]
        a.set_desc(0, h, nxt=a.header(0)[3])
        a.set_header(0, last_batch_head=h)
        e = vq.used + 4 + 8 * (vq.used_idx() % vq.size)
        fe.mem.write(e, struct.pack("<II", h, 1))
        fe.mem.put_u16(vq.used + 2, vq.used_idx() + 1)
        a.set_desc(0, h, inflight=0)
        a.set_header(0, used_idx=vq.used_idx())
    # E: published, the log not updated (the crash came in between).
    h = heads["E"]
    a.set_desc(0, h, nxt=a.header(0)[3])
    a.set_header(0, last_batch_head=h)
    e = vq.used + 4 + 8 * (vq.used_idx() % vq.size)
    fe.mem.write(e, struct.pack("<II", h, 1))
    fe.mem.put_u16(vq.used + 2, vq.used_idx() + 1)
    done = vq.poll_used()                  # the driver saw C, A, E complete
    check(sorted(u for u, _ in done) == sorted(heads[n] for n in "CAE"), "set-up: %r" % done)
    check(a.marked(0) == [heads["B"], heads["D"], heads["E"]], "set-up marks %r" % a.marked(0))
    fe.reconnect()
    got = vq.wait_used(3, 3.0)
    time.sleep(0.2)
    got += vq.poll_used()                  # anything more would be a duplicate (and raise)
    check(sorted(u for u, _ in got) == sorted(heads[n] for n in "BDF"),
          "completed %r, expected B, D, F = %r" % (got, [heads[n] for n in "BDF"]))
    c.log(r"ring 0: resubmitting 2 requests in flight", levels=("info",))
    for name in "BDF":
        c.d.img.update((310 + "ABCDEF".index(name)) * SECTOR, data[name])
    bad = c.d.img.mismatch()
    check(bad is None, "%s (A, C and E completed before the crash: their data must not be written again)" % bad)
    check(not a.marked(0) and a.header(0)[4] == vq.used_idx(),
          "region after recovery: marks %r, header %r" % (a.marked(0), a.header(0)))


# ==== the real thing: kill and restart a daemon with requests in flight ===================


def submit_batch(fe, per_queue, rnd):
    """per_queue writes of 4 KiB on every queue, kicked; the model."""
    reqs = []
    for q, vq in enumerate(fe.vqs):
        old = vq.avail_idx
        for k in range(per_queue):
            sector = 1024 + 8 * (q * per_queue + k)
            data = rnd.randbytes(4096)
            head, r = write_req(fe, q, sector, data)
            reqs.append((q, head, sector, data, r))
        vq.kick(old)
    return reqs


def completed(fe, got, want_each=None, timeout=0.0):
    deadline = time.monotonic() + timeout
    while True:
        for q, vq in enumerate(fe.vqs):
            got[q] += [u for u, _ in vq.poll_used()]
        if want_each is None or all(len(g) >= want_each for g in got) or time.monotonic() > deadline:
            return got
        time.sleep(0.005)


def kill_case(sig):
    def t(c):
        rnd = random.Random(7 + sig)
        d = c.d
        fe = c.frontend(inflight=True, queue_size=64, queues=2, mem_size=4 * MiB)
        reqs = submit_batch(fe, 12, rnd)
        got = completed(fe, [[], []], 2, 5.0)       # at iops-total=20: ~0.1 s
        check(all(len(g) >= 2 for g in got) and sum(map(len, got)) < 24,
              "before the %s: %r completed" % (signal.Signals(sig).name, [len(g) for g in got]))
        rc = d.stop(sig)
        if sig == signal.SIGTERM:
            check(rc == 0, "exit status %s after SIGTERM" % rc)
        got = completed(fe, got)                    # what the dying daemon finished
        a = fe.inflight
        marks = [a.marked(q) for q in range(2)]
        if sig == signal.SIGTERM:
            for q, vq in enumerate(fe.vqs):
                check(not marks[q] and a.header(q)[4] == vq.used_idx(),
                      "queue %d after SIGTERM: in flight %r, log used_idx %d, used idx %d"
                      % (q, marks[q], a.header(q)[4], vq.used_idx()))
        else:
            tb_note("in flight at the SIGKILL: %r" % marks)
        d.start()
        mark = d.mark()
        fe.reconnect()
        got = completed(fe, got, 12, 10.0)
        time.sleep(0.2)
        got = completed(fe, got)                    # a duplicate would raise here
        for q in range(2):
            check(sorted(got[q]) == sorted(h for (qq, h, _, _, _) in reqs if qq == q),
                  "queue %d: completed %d of 12: %r" % (q, len(got[q]), got[q]))
        for (q, h, sector, data, r) in reqs:
            check(r.status_byte() == S_OK, "write at sector %d: status %d" % (sector, r.status_byte()))
            d.img.update(sector * SECTOR, data)
        bad = d.img.mismatch()
        check(bad is None, bad)
        n = sum(map(len, marks))
        resub = d.find_log(mark, r"resubmitting", levels=("info",), timeout=0.2)
        if sig == signal.SIGTERM:
            check(resub is None, "the daemon after a SIGTERM resubmitted: %s" % resub)
        else:
            check(n == 0 or resub is not None, "%d marked in flight, no resubmission logged" % n)
        for q, vq in enumerate(fe.vqs):
            check(not fe.inflight.marked(q) and fe.inflight.header(q)[4] == vq.used_idx(),
                  "queue %d: the region does not say 'nothing in flight' at the end" % q)
    return t


def tb_note(msg):
    print("# " + msg, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build/app/rosenbridged/rosenbridged"))
    ap.add_argument("--only")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if not os.access(args.daemon, os.X_OK):
        print("no daemon at %s" % args.daemon)
        print("0 passed, 1 failed")
        return 1
    random.seed(0x1F1)
    s = tb.Suite(args)
    t_start = time.monotonic()
    try:
        d = s.daemon("main")
        R = lambda name, fn, **kw: s.run(name, fn, d, **kw)  # noqa: E731
        R("get_inflight_fd_gives_a_sealed_memfd_and_keeps_nothing", t_get_gives_sealed_memfd)
        I = vc.INFLIGHT.pack  # noqa: E741
        R("get_zero_queues", get_bad_case(I(0, 0, 0, 64, 0), r"GET_INFLIGHT_FD: 0 queues"))
        R("get_more_queues_than_the_device", get_bad_case(I(0, 0, QUEUES + 1, 64, 0),
                                                          r"GET_INFLIGHT_FD: %d queues" % (QUEUES + 1)))
        R("get_queue_size_0", get_bad_case(I(0, 0, 2, 0, 0), r"queue size 0 is not a power of two"))
        R("get_queue_size_100", get_bad_case(I(0, 0, 2, 100, 0), r"queue size 100 is not a power of two"))
        R("get_queue_size_65535", get_bad_case(I(0, 0, 2, 65535, 0), r"queue size 65535"))
        R("get_payload_20_bytes", get_bad_case(I(0, 0, 2, 64, 0)[:20], r"payload of 20 bytes, expected 24"))
        R("get_with_an_fd", get_bad_case(I(0, 0, 2, 64, 0), r"1 file descriptors, expected 0", fds=1))
        R("set_without_fd", set_bad_case(lambda c: (set_payload(), []), r"0 file descriptors, expected 1"))
        R("set_with_two_fds", set_bad_case(lambda c: (set_payload(), [memfd(c, NEED)] * 2),
                                           r"2 file descriptors, expected 1"))
        R("set_area_too_small", set_bad_case(lambda c: (set_payload(size=NEED - 64), [memfd(c, NEED)]),
                                             r"bytes for 2 queues of 64 entries"))
        R("set_area_too_large", set_bad_case(lambda c: (set_payload(size=NEED + MiB), [memfd(c, NEED + MiB)]),
                                             r"bytes for 2 queues of 64 entries"))
        R("set_offset_overflows", set_bad_case(lambda c: (set_payload(off=M64 - 4095), [memfd(c, NEED)]),
                                               r"overflows"))
        R("set_file_shorter_than_offset_plus_size",
          set_bad_case(lambda c: (set_payload(off=4096), [memfd(c, NEED)]), r"file has \d+ bytes, the regions need"))
        R("set_queues_more_than_device", set_bad_case(lambda c: (set_payload(nq=QUEUES + 1), [memfd(c, NEED)]),
                                                      r"SET_INFLIGHT_FD: %d queues" % (QUEUES + 1)))
        R("set_unsealable_memfd", set_bad_case(lambda c: (set_payload(), [memfd(c, NEED, sealable=False)]),
                                               r"could shrink under us"))

        def regular_file(c):
            f = tempfile.TemporaryFile(dir=s.workdir)
            f.truncate(NEED)
            c.keep(f)
            return set_payload(), [f.fileno()]
        R("set_regular_file", set_bad_case(regular_file, r"could shrink under us"))
        R("set_eventfd", set_bad_case(lambda c: (set_payload(), [c.keep(Fd(os.eventfd(0))).fd]),
                                      r"not a memory file"))
        R("set_unsealed_memfd_is_sealed_by_the_daemon", t_set_unsealed_memfd_gets_sealed)
        R("set_while_a_ring_runs_is_refused", t_set_while_ring_runs)
        R("region_unknown_version", region_case(m_version, r"ring 0: inflight region version 7"))
        R("region_desc_num_mismatch", region_case(m_desc_num, r"says 8 entries, the frontend 16"))
        R("region_inflight_byte_2", region_case(m_byte2, r"entry 3 has inflight byte 2"))
        R("region_marks_head_outside_ring", region_case(m_head_outside, r"marks head 12, outside the 8-entry",
                                                        ring_size=8))
        R("region_last_batch_longer_than_ring", region_case(m_long_batch, r"100 entries past the inflight log"))
        R("region_last_batch_head_outside_ring", region_case(m_batch_head_outside, r"names head 40000"))
        R("ring_larger_than_its_region", region_case(lambda a, vq: None,
                                                     r"ring 0: 32 entries, but its inflight region was made for 16",
                                                     ring_size=32))
        R("recover_crafted_log_exactly_once", t_recover_crafted_log)
        d.stop()

        # Requests wait in the daemon for their budget: a kill finds them in flight.
        th = s.daemon("throttled", ["--throttle", "iops-total=20"], )
        s.run("sigkill_with_requests_in_flight_loses_none_repeats_none", kill_case(signal.SIGKILL), th)
        s.run("sigterm_drains_and_leaves_nothing_in_flight", kill_case(signal.SIGTERM), th)
        th.stop()
    except Exception as e:
        s.failed += 1
        print("FAIL suite: %s: %s" % (type(e).__name__, e))
        import traceback
        traceback.print_exc(file=sys.stdout)
    finally:
        s.close()
    print("# %.1f s" % (time.monotonic() - t_start))
    print("%d passed, %d failed" % (s.passed, s.failed))
    return 1 if s.failed else 0


if __name__ == "__main__":
    sys.exit(main())
