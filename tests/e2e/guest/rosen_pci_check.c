// SPDX-License-Identifier: MIT
// rosen_pci_check: drives a virtio-blk device through librosen's public API
// inside the e2e test guest (tests/e2e/test_guest_pci.py); built by meson,
// statically linked.  It only reports: the host checks the image.
//
//   rosen_pci_check io URI DISK_BYTES QUEUES
//       sync and async (QD 8) writes of known patterns, read back and
//       verified, flush, argument errors, a close and reopen; the plan is
//       mirrored by PLAN in test_guest_pci.py, which checks the image.
//   rosen_pci_check open-error URI ERRNO SUBSTRING
//       rb_guest_open() must fail with -ERRNO (a name: ENOENT, EBUSY, ...)
//       and a message containing SUBSTRING.
//   rosen_pci_check ndp URI LOOKUP_OBJ TEST_OBJ LEVELS DISK_BYTES
//       virtio-ndp on a disk holding a BPF-KV database of LEVELS levels
//       (then zeros up to DISK_BYTES): the probe says ndp; LOOKUP_OBJ's
//       bpfkv_xrp_lookup (xrp) answers ~100 lookups in one READ_ND each,
//       the same as a walk with one rb_guest_read per level + the value
//       block; hostile requests (unknown handle, I/O past the disk, hop
//       limit, unloaded handle; TEST_OBJ is tests/programs/ndp_progs.o)
//       end with their own status; plain I/O still works after it all
//       (it writes NDP_TAIL_LEN bytes of seed NDP_TAIL_SEED at the end of
//       the disk, mirrored by test_guest_pci.py, which checks the image).
//
// Each check prints `ROSEN-E2E-CHECK: PASS name` or `ROSEN-E2E-CHECK: FAIL
// name: reason` (the harness collects them); exits 1 if any failed, 2 on
// bad usage.  The pattern is blkcheck's (seed, absolute byte offset).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <rosen/guest.h>
#include <rosen/virtio_ndp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../../progs/bpfkv_node.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define QD 8u
#define ASYNC_BS (16 * KiB)

static unsigned passed, failed;

static void report(int ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(int ok, const char *name, const char *fmt, ...)
{
    if (ok) {
        printf("ROSEN-E2E-CHECK: PASS %s\n", name);
        passed++;
    } else {
        va_list ap;
        printf("ROSEN-E2E-CHECK: FAIL %s: ", name);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        failed++;
    }
    fflush(stdout);
}

static uint64_t pattern_word(uint64_t seed, uint64_t off)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + (off >> 3);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return x;
}

static void fill(unsigned char *buf, size_t len, uint64_t seed, uint64_t off)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t w = pattern_word(seed, off + i);
        for (int b = 0; b < 8; b++)
            buf[i + b] = (unsigned char)(w >> (8 * b));
    }
}

// -1 when buf holds the pattern (seed 0: zeros), else the first bad byte.
static long long mismatch(const unsigned char *buf, size_t len, uint64_t seed, uint64_t off)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t w = seed ? pattern_word(seed, off + i) : 0;
        for (int b = 0; b < 8; b++)
            if (buf[i + b] != (unsigned char)(w >> (8 * b)))
                return (long long)(i + b);
    }
    return -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

// The synchronous writes: mirrored by PLAN in test_guest_pci.py.  queue
// -1 means the last queue.  Offsets < 0 count from the end of the disk.
struct step {
    const char *name;
    int queue;
    long long off;
    uint64_t len, seed;
};
static const struct step plan[] = {
    {"first-4k", 0, 0, 4 * KiB, 41},
    {"sub-page-unaligned", 0, 1 * MiB + 512, 3 * 512, 42},
    {"1m", 0, 2 * MiB, 1 * MiB, 43},
    {"last-64k", -1, -64 * (long long)KiB, 64 * KiB, 44},
    {"queue-last-128k", -1, 4 * MiB, 128 * KiB, 45},
    {"overwrite", 0, 4 * MiB + 64 * KiB, 8 * KiB, 46},
};
#define ASYNC_OFF (8 * MiB)
#define ASYNC_LEN (2 * MiB) /* per queue: seed 47 on queue 0, 48 on the last */

static unsigned qidx(int q, unsigned nq)
{
    return q < 0 ? nq - 1 : (unsigned)q;
}

static uint64_t step_off(const struct step *s, uint64_t disk)
{
    return s->off < 0 ? disk - (uint64_t)(-s->off) : (uint64_t)s->off;
}

// Read [off, off+len) in pieces of at most 1 MiB and compare.
static int verify_range(struct rb_guest_dev *dev, unsigned q, unsigned char *buf, uint64_t off,
                        uint64_t len, uint64_t seed, char *why, size_t whylen)
{
    for (uint64_t done = 0; done < len;) {
        uint64_t n = len - done < MiB ? len - done : MiB;
        int rc = rb_guest_read(dev, q, buf, off + done, n);
        if (rc) {
            snprintf(why, whylen, "read %" PRIu64 "+%" PRIu64 ": %s (%s)", off + done, n,
                     strerror(-rc), rb_guest_errmsg());
            return -1;
        }
        long long bad = mismatch(buf, n, seed, off + done);
        if (bad >= 0) {
            snprintf(why, whylen, "byte %" PRIu64 " differs from pattern %" PRIu64,
                     off + done + (uint64_t)bad, seed);
            return -1;
        }
        done += n;
    }
    return 0;
}

// QD 8 on queue q over [off, off+len) in ASYNC_BS requests; writes fill
// the pattern, reads verify each completion.  Requests go out in an order
// that is not the disk order (odd blocks first) so completions interleave.
static int async_run(struct rb_guest_dev *dev, unsigned q, int write, uint64_t off, uint64_t len,
                     uint64_t seed, char *why, size_t whylen)
{
    unsigned nblk = (unsigned)(len / ASYNC_BS), next = 0, done = 0, inflight = 0;
    unsigned char *bufs[QD];
    unsigned slot_blk[QD];
    int free_slot[QD], nfree = QD, rc = 0;

    for (unsigned i = 0; i < QD; i++) {
        bufs[i] = rb_guest_dma_alloc(dev, ASYNC_BS);
        if (!bufs[i]) {
            snprintf(why, whylen, "rb_guest_dma_alloc: %s", rb_guest_errmsg());
            for (unsigned j = 0; j < i; j++)
                rb_guest_dma_free(dev, bufs[j]);
            return -1;
        }
        free_slot[i] = (int)i;
    }
    while (done < nblk && rc == 0) {
        while (next < nblk && nfree > 0) {
            // odd blocks first, then even ones
            unsigned blk = next < nblk / 2 ? 2 * next + 1 : 2 * (next - nblk / 2);
            int s = free_slot[--nfree];
            uint64_t o = off + (uint64_t)blk * ASYNC_BS;
            if (write)
                fill(bufs[s], ASYNC_BS, seed, o);
            else
                memset(bufs[s], 0xa5, ASYNC_BS);
            int r = rb_guest_submit(dev, q, write ? RB_GUEST_OP_WRITE : RB_GUEST_OP_READ, bufs[s],
                                    o, ASYNC_BS, (void *)(uintptr_t)s);
            if (r) {
                snprintf(why, whylen, "submit block %u: %s (%s)", blk, strerror(-r),
                         rb_guest_errmsg());
                rc = -1;
                nfree++;
                break;
            }
            slot_blk[s] = blk;
            inflight++;
            next++;
        }
        if (rc)
            break;
        if (inflight > QD || rb_guest_inflight(dev, q) != inflight) {
            snprintf(why, whylen, "in flight: librosen says %u, we count %u (QD %u)",
                     rb_guest_inflight(dev, q), inflight, QD);
            rc = -1;
            break;
        }
        struct rb_guest_cpl cpl[QD];
        int n = rb_guest_wait(dev, q, cpl, QD, 30000);
        if (n < 0) {
            snprintf(why, whylen, "rb_guest_wait: %s (%s)", strerror(-n), rb_guest_errmsg());
            rc = -1;
            break;
        }
        for (int i = 0; i < n; i++) {
            uintptr_t s = (uintptr_t)cpl[i].user;
            if (s >= QD) {
                snprintf(why, whylen, "completion with a user pointer we never gave");
                rc = -1;
                break;
            }
            uint64_t o = off + (uint64_t)slot_blk[s] * ASYNC_BS;
            if (cpl[i].status) {
                snprintf(why, whylen, "block at %" PRIu64 ": status %s", o, strerror(-cpl[i].status));
                rc = -1;
            } else if (!write) {
                long long bad = mismatch(bufs[s], ASYNC_BS, seed, o);
                if (cpl[i].len != ASYNC_BS) {
                    snprintf(why, whylen, "read at %" PRIu64 ": completion says %u bytes", o,
                             cpl[i].len);
                    rc = -1;
                } else if (bad >= 0) {
                    snprintf(why, whylen, "byte %" PRIu64 " differs from pattern %" PRIu64,
                             o + (uint64_t)bad, seed);
                    rc = -1;
                }
            }
            free_slot[nfree++] = (int)s;
            inflight--;
            done++;
        }
    }
    // Drain whatever is still out before the buffers go back.
    while (inflight > 0) {
        struct rb_guest_cpl cpl[QD];
        int n = rb_guest_wait(dev, q, cpl, QD, 30000);
        if (n <= 0)
            break;
        inflight -= (unsigned)n;
    }
    for (unsigned i = 0; i < QD; i++)
        rb_guest_dma_free(dev, bufs[i]);
    return rc;
}

static const struct rb_guest_opts opts = {
    .num_queues = 0,      // all the device offers
    .queue_size = 0,      // 256, or what the device allows
    .notify = RB_GUEST_NOTIFY_POLL,
    .dma_bytes = 16 << 20, // 8 hugepages
};

static int cmd_io(const char *uri, uint64_t disk, unsigned want_nq)
{
    struct rb_guest_dev *dev;
    struct rb_guest_info info;
    char why[256];
    int rc;

    double t0 = now_s();
    rc = rb_guest_open(uri, &opts, &dev);
    report(rc == 0, "open", "rb_guest_open(%s): %s: %s", uri, strerror(-rc), rb_guest_errmsg());
    if (rc)
        return 1;
    printf("rosen_pci_check: open took %.3f s\n", now_s() - t0);
    rb_guest_info(dev, &info);
    printf("rosen_pci_check: transport %s capacity %" PRIu64 " block_size %u queues %u/%u "
           "queue_size %u features 0x%" PRIx64 " readonly %d\n",
           info.transport, info.capacity_bytes, info.block_size, info.num_queues,
           info.max_queues, info.queue_size, info.features, info.readonly);
    report(strcmp(info.transport, "pci") == 0, "info-transport", "transport is %s", info.transport);
    report(info.capacity_bytes == disk, "info-capacity", "capacity %" PRIu64 ", want %" PRIu64,
           info.capacity_bytes, disk);
    report(info.num_queues == want_nq && info.max_queues == want_nq, "info-queues",
           "queues %u/%u, want %u", info.num_queues, info.max_queues, want_nq);
    report((info.features >> 32) & 1, "info-version-1", "features 0x%" PRIx64, info.features);
    report(info.queue_size >= QD && (info.queue_size & (info.queue_size - 1)) == 0,
           "info-queue-size", "queue size %u", info.queue_size);
    unsigned nq = info.num_queues ? info.num_queues : 1;
    {
        struct rb_guest_dev *dev2 = NULL;
        rc = rb_guest_open(uri, &opts, &dev2);
        report(rc == -EBUSY, "second-open-ebusy", "got %d (%s)", rc, rc ? rb_guest_errmsg() : "opened");
        if (rc == 0)
            rb_guest_close(dev2);
    }

    unsigned char *buf = rb_guest_dma_alloc(dev, 1 * MiB);
    unsigned char *rbuf = rb_guest_dma_alloc(dev, 1 * MiB);
    report(buf && rbuf, "dma-alloc", "rb_guest_dma_alloc(1 MiB): %s", rb_guest_errmsg());
    if (!buf || !rbuf) {
        rb_guest_close(dev);
        return 1;
    }

    // Synchronous writes, each read back at once.
    for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]); i++) {
        const struct step *s = &plan[i];
        uint64_t off = step_off(s, disk);
        unsigned q = qidx(s->queue, nq);
        char name[64];

        fill(buf, s->len, s->seed, off);
        rc = rb_guest_write(dev, q, buf, off, s->len);
        snprintf(name, sizeof(name), "write-%s", s->name);
        report(rc == 0, name, "queue %u %" PRIu64 "+%" PRIu64 ": %s (%s)", q, off, s->len,
               strerror(-rc), rb_guest_errmsg());
        snprintf(name, sizeof(name), "verify-%s", s->name);
        rc = verify_range(dev, q, rbuf, off, s->len, s->seed, why, sizeof(why));
        report(rc == 0, name, "%s", why);
    }
    // The overwrite left the rest of the region intact.
    rc = verify_range(dev, 0, rbuf, 4 * MiB, 64 * KiB, 45, why, sizeof(why)) ||
         verify_range(dev, 0, rbuf, 4 * MiB + 72 * KiB, 56 * KiB, 45, why, sizeof(why));
    report(rc == 0, "overwrite-keeps-neighbours", "%s", why);
    rc = verify_range(dev, 0, rbuf, 12 * MiB, 1 * MiB, 0, why, sizeof(why));
    report(rc == 0, "untouched-reads-zeros", "%s", why);

    // Asynchronous, QD 8, on the first and the last queue.
    t0 = now_s();
    rc = async_run(dev, 0, 1, ASYNC_OFF, ASYNC_LEN, 47, why, sizeof(why));
    report(rc == 0, "async-qd8-write-q0", "%s", why);
    rc = async_run(dev, nq - 1, 1, ASYNC_OFF + ASYNC_LEN, ASYNC_LEN, 48, why, sizeof(why));
    report(rc == 0, "async-qd8-write-qlast", "%s", why);
    double tw = now_s() - t0;
    t0 = now_s();
    rc = async_run(dev, nq - 1, 0, ASYNC_OFF, ASYNC_LEN, 47, why, sizeof(why));
    report(rc == 0, "async-qd8-read-q0-data", "%s", why);
    rc = async_run(dev, 0, 0, ASYNC_OFF + ASYNC_LEN, ASYNC_LEN, 48, why, sizeof(why));
    report(rc == 0, "async-qd8-read-qlast-data", "%s", why);
    double tr = now_s() - t0;
    printf("rosen_pci_check: async QD%u %llu KiB requests: writes %.0f IOPS, reads %.0f IOPS "
           "(TCG guest: for orientation only)\n",
           QD, ASYNC_BS / KiB, 2.0 * ASYNC_LEN / ASYNC_BS / tw, 2.0 * ASYNC_LEN / ASYNC_BS / tr);

    rc = rb_guest_flush(dev, 0);
    report(rc == 0 || rc == -ENOTSUP, "flush", "%s (%s)", strerror(-rc), rb_guest_errmsg());

    // Argument errors: refused before anything reaches the device.
    static unsigned char not_dma[4096] __attribute__((aligned(4096)));
    rc = rb_guest_write(dev, 0, not_dma, 0, sizeof(not_dma));
    report(rc == -EFAULT, "non-dma-buffer-efault", "got %d (%s)", rc, rb_guest_errmsg());
    rc = rb_guest_read(dev, 0, rbuf, 100, 512);
    report(rc == -EINVAL, "unaligned-offset-einval", "got %d (%s)", rc, rb_guest_errmsg());
    rc = rb_guest_read(dev, 0, rbuf, disk, 512);
    report(rc == -EINVAL, "past-end-einval", "got %d (%s)", rc, rb_guest_errmsg());
    rc = rb_guest_read(dev, nq, rbuf, 0, 512);
    report(rc == -EINVAL, "bad-queue-einval", "got %d (%s)", rc, rb_guest_errmsg());

    // Fill a queue until librosen says -EAGAIN, then drain it all.
    {
        unsigned n = 0;
        while (n <= info.queue_size) {
            rc = rb_guest_submit(dev, 0, RB_GUEST_OP_READ, rbuf, 0, 4096, NULL);
            if (rc)
                break;
            n++;
        }
        report(rc == -EAGAIN && n > 0 && rb_guest_inflight(dev, 0) == n, "queue-full-eagain",
               "after %u submissions: %d (%s), in flight %u", n, rc, rb_guest_errmsg(),
               rb_guest_inflight(dev, 0));
        unsigned got = 0, bad = 0;
        while (got < n) {
            struct rb_guest_cpl cpl[QD];
            int k = rb_guest_wait(dev, 0, cpl, QD, 30000);
            if (k <= 0)
                break;
            for (int i = 0; i < k; i++)
                bad += cpl[i].status != 0;
            got += (unsigned)k;
        }
        report(got == n && bad == 0 && rb_guest_inflight(dev, 0) == 0, "queue-full-drains",
               "%u of %u completed, %u failed", got, n, bad);
    }
    rb_guest_dma_free(dev, buf);
    rb_guest_dma_free(dev, rbuf);
    rb_guest_close(dev);

    // A second open (device reset and set up again) sees all the data.
    rc = rb_guest_open(uri, &opts, &dev);
    report(rc == 0, "reopen", "%s (%s)", strerror(-rc), rb_guest_errmsg());
    if (rc == 0) {
        rbuf = rb_guest_dma_alloc(dev, 1 * MiB);
        rc = rbuf ? 0 : -1;
        snprintf(why, sizeof(why), "no DMA memory");
        for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]) && rc == 0; i++) {
            const struct step *s = &plan[i];
            uint64_t off = step_off(s, disk), len = s->len;
            if (i == 4) // the overwrite's region: its untouched head only
                len = 64 * KiB;
            rc = verify_range(dev, 0, rbuf, off, len, s->seed, why, sizeof(why));
        }
        if (rc == 0)
            rc = async_run(dev, 0, 0, ASYNC_OFF, ASYNC_LEN, 47, why, sizeof(why));
        report(rc == 0, "reopen-reads-back", "%s", why);
        rb_guest_dma_free(dev, rbuf);
        rb_guest_close(dev);
    }

    printf("rosen_pci_check: %u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}

static const struct {
    const char *name;
    int err;
} errnames[] = {
    {"ENOENT", ENOENT}, {"EINVAL", EINVAL}, {"EBUSY", EBUSY},     {"ENODEV", ENODEV},
    {"ENOMEM", ENOMEM}, {"EPERM", EPERM},   {"ENOTSUP", ENOTSUP}, {"EACCES", EACCES},
};

static int cmd_open_error(const char *uri, const char *ename, const char *substr)
{
    struct rb_guest_dev *dev;
    char name[96];
    int want = 0;

    for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
        if (strcmp(errnames[i].name, ename) == 0)
            want = errnames[i].err;
    if (!want) {
        fprintf(stderr, "rosen_pci_check: unknown errno name %s\n", ename);
        return 2;
    }
    int rc = rb_guest_open(uri, &opts, &dev);
    if (rc == 0)
        rb_guest_close(dev);
    printf("rosen_pci_check: open %s: %d %s\n", uri, rc, rc ? rb_guest_errmsg() : "(opened)");
    snprintf(name, sizeof(name), "open-error-%s", ename);
    report(rc == -want && strstr(rb_guest_errmsg(), substr), name,
           "want -%s and a message with '%s', got %d: %s", ename, substr, rc,
           rc ? rb_guest_errmsg() : "(opened)");
    return failed ? 1 : 0;
}

// ---- ndp ------------------------------------------------------------------

#define NDP_TAIL_LEN (64 * KiB) /* written at the end of the KV disk */
#define NDP_TAIL_SEED 61
#define NDP_KEYS 100

static void *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    void *b = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        b = malloc((size_t)n);
        if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
            free(b);
            b = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return b;
}

static int load_obj(struct rb_guest_dev *dev, const char *path, const char *section, uint32_t *h,
                    char *log, size_t loglen)
{
    size_t len = 0;
    void *elf = read_whole(path, &len);

    if (!elf) {
        snprintf(log, loglen, "cannot read %s: %s", path, strerror(errno));
        return -ENOENT;
    }
    log[0] = 0;
    int rc = rb_guest_ndp_load(dev, 0, elf, len, section, RB_NDP_PROG_XRP, h, log, loglen);
    free(elf);
    return rc;
}

// What bpfkv_xrp_lookup keeps in its scratch.
struct kv_scratch {
    uint64_t key, stage, value_off, found;
    char value[64];
};

// The lookup as an application without NDP does it: one 512-byte read per
// level, then the value block.  1 found, 0 not, -errno on an I/O error.
static int walk(struct rb_guest_dev *dev, unsigned q, unsigned char *buf, uint64_t key,
                char value[64], unsigned *reads)
{
    uint64_t off = 0;

    *reads = 0;
    for (unsigned depth = 0; depth < 16; depth++) {
        int rc = rb_guest_read(dev, q, buf, off, 512);
        if (rc)
            return rc;
        ++*reads;
        const struct bpfkv_node *n = (const void *)buf;
        uint64_t next = bpfkv_node_child(n, key);
        if (n->type == BPFKV_NODE_LEAF) {
            if (next == BPFKV_NOT_FOUND)
                return 0;
            rc = rb_guest_read(dev, q, buf, next & ~511ull, 512);
            if (rc)
                return rc;
            ++*reads;
            memcpy(value, buf + (next & 511), 64);
            return 1;
        }
        off = next;
    }
    return -ELOOP;
}

static const char *ndp_status_name(uint32_t st)
{
    static const char *const names[] = {"OK",        "BAD_REQUEST", "NO_PROGRAM", "HOP_LIMIT",
                                        "BUDGET",    "FAULT",       "IO_ERROR",   "OUT_OF_RANGE",
                                        "REJECTED",  "LIMIT",       "WRONG_TYPE", "NO_MEMORY",
                                        "READ_ONLY"};
    return st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

// One READ_ND of an xrp program: first I/O io_len bytes at off.
static int xrp_read(struct rb_guest_dev *dev, unsigned q, uint32_t h, uint64_t off,
                    uint32_t max_hops, void *scratch, struct rb_guest_nd_result *res)
{
    static unsigned char data[4096];
    struct rb_guest_nd nd = {.handle = h, .offset = off, .io_len = 512, .scratch = scratch,
                             .scratch_len = 4096, .data = data, .data_len = sizeof(data),
                             .max_hops = max_hops};
    memset(res, 0xff, sizeof(*res));
    return rb_guest_read_nd(dev, q, &nd, res);
}

static int cmd_ndp(const char *uri, const char *lookup_obj, const char *test_obj, unsigned levels,
                   uint64_t disk)
{
    struct rb_guest_dev *dev;
    struct rb_guest_info info;
    struct rb_guest_nd_result res;
    static unsigned char scratch[4096];
    char log[RB_NDP_LOG_MAX], why[256];
    int rc;

    if (levels < 1 || levels > 4) {
        fprintf(stderr, "rosen_pci_check: LEVELS %u: want 1..4\n", levels);
        return 2;
    }
    rc = rb_guest_open(uri, &opts, &dev);
    report(rc == 0, "ndp-open", "rb_guest_open(%s): %s: %s", uri, strerror(-rc), rb_guest_errmsg());
    if (rc)
        return 1;
    rb_guest_info(dev, &info);
    printf("rosen_pci_check: transport %s capacity %" PRIu64 " queues %u ndp %s\n", info.transport,
           info.capacity_bytes, info.num_queues, info.ndp ? "yes" : "no");
    report(info.ndp, "ndp-info-ndp-yes", "rb_guest_info().ndp is false: no NDP over pci");
    report(strcmp(info.transport, "pci") == 0 && info.capacity_bytes == disk, "ndp-info-device",
           "transport %s capacity %" PRIu64 ", want pci and %" PRIu64, info.transport,
           info.capacity_bytes, disk);
    unsigned nq = info.num_queues ? info.num_queues : 1;
    unsigned char *buf = rb_guest_dma_alloc(dev, NDP_TAIL_LEN);
    if (!buf || !info.ndp) {
        report(0, "ndp-setup", "%s", buf ? "the device does not speak NDP" : rb_guest_errmsg());
        rb_guest_close(dev);
        return 1;
    }

    // Garbage is refused with a log, and the device keeps serving.
    {
        static const char junk[] = "this is not an ELF object";
        uint32_t h = 0;
        log[0] = 0;
        rc = rb_guest_ndp_load(dev, 0, junk, sizeof(junk), "x", RB_NDP_PROG_XRP, &h, log,
                               sizeof(log));
        report(rc == -EINVAL && log[0], "ndp-load-garbage-rejected", "got %d, log '%s'", rc, log);
    }

    uint32_t kv = 0;
    rc = load_obj(dev, lookup_obj, "bpfkv_xrp_lookup", &kv, log, sizeof(log));
    printf("rosen_pci_check: load bpfkv_xrp_lookup: %d, handle %" PRIu32 ", log: %s\n", rc, kv, log);
    report(rc == 0, "ndp-load-bpfkv-xrp-lookup", "%s (%s): %s", strerror(-rc), rb_guest_errmsg(),
           log);

    // The lookups: one READ_ND each against the guest-driven walk.
    uint64_t nkeys = 1;
    for (unsigned l = 0; l < levels; l++)
        nkeys *= BPFKV_FANOUT;
    unsigned ran = 0, n_ok = 0, n_found = 0, n_missing = 0, bad_match = 0, bad_hops = 0, bad_value = 0;
    int first_ok = 0, last_ok = 0, missing_ok = 1;
    char match_why[200] = "", hops_why[200] = "", value_why[200] = "";
    double t_nd = 0, t_walk = 0;
    unsigned walk_reads = 0;
    uint64_t rng = 42;
    for (unsigned i = 0; rc == 0 && i < NDP_KEYS; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t key = i == 0   ? 0
                       : i == 1 ? nkeys - 1
                       : i == 2 ? nkeys // the first missing key
                       : i == 3 ? UINT64_MAX
                       : i == 4 ? BPFKV_FANOUT - 1 // both sides of a leaf boundary
                       : i == 5 ? BPFKV_FANOUT
                       : i % 10 == 9 ? nkeys + (rng >> 20) % 100000 // missing
                                     : (rng >> 11) % nkeys;
        unsigned qn = i % nq, qw = (i + 1) % nq; // both queues, crosswise
        struct kv_scratch *s = (void *)scratch;
        char want[64], walked[64];
        unsigned reads = 0;

        memset(scratch, 0, sizeof(scratch));
        s->key = key;
        double t0 = now_s();
        int r = xrp_read(dev, qn, kv, 0, 0, scratch, &res);
        t_nd += now_s() - t0;
        if (r) {
            report(0, "ndp-lookup-read-nd", "key %" PRIu64 ": rb_guest_read_nd: %s (%s)", key,
                   strerror(-r), rb_guest_errmsg());
            break;
        }
        t0 = now_s();
        int found = walk(dev, qw, buf, key, walked, &reads);
        t_walk += now_s() - t0;
        walk_reads += reads;
        if (found < 0) {
            report(0, "ndp-lookup-walk", "key %" PRIu64 ": rb_guest_read: %s (%s)", key,
                   strerror(-found), rb_guest_errmsg());
            break;
        }
        int should = key < nkeys;
        snprintf(want, sizeof(want), "%63" PRIu64, key);
        int same = res.status == RB_NDP_S_OK && s->key == key && s->found == (uint64_t)found &&
                   (!found || memcmp(s->value, walked, 64) == 0);
        if (!same && !bad_match++)
            snprintf(match_why, sizeof(match_why),
                     "key %" PRIu64 ": READ_ND status %s found %" PRIu64 ", walk found %d%s", key,
                     ndp_status_name(res.status), s->found, found,
                     found && s->found ? " but the values differ" : "");
        unsigned want_hops = found ? levels + 1 : levels;
        if ((res.hops != want_hops || reads != want_hops) && !bad_hops++)
            snprintf(hops_why, sizeof(hops_why),
                     "key %" PRIu64 ": READ_ND hops %" PRIu32 ", walk reads %u, want %u", key,
                     res.hops, reads, want_hops);
        int value_ok = found == should && (!found || memcmp(walked, want, 64) == 0);
        if (!value_ok && !bad_value++)
            snprintf(value_why, sizeof(value_why),
                     "key %" PRIu64 ": found %d (want %d), value '...%.19s'", key, found, should,
                     found ? walked + 44 : "");
        int ok = same && value_ok && res.hops == want_hops && reads == want_hops;
        ran++;
        n_ok += ok;
        if (i == 0)
            first_ok = ok && found;
        if (i == 1)
            last_ok = ok && found;
        if (!should) {
            n_missing++;
            missing_ok &= ok && !found;
        } else {
            n_found++;
        }
    }
    printf("rosen_pci_check: %u lookups (%u present, %u missing), %u agree; READ_ND %.0f us, "
           "walk %.0f us (%.1f reads) per lookup (TCG guest: for orientation only)\n",
           ran, n_found, n_missing, n_ok, 1e6 * t_nd / (ran ? ran : 1), 1e6 * t_walk / (ran ? ran : 1),
           (double)walk_reads / (ran ? ran : 1));
    report(first_ok, "ndp-lookup-first-key", "key 0 did not agree / was not found");
    report(last_ok, "ndp-lookup-last-key", "key %" PRIu64 " did not agree / was not found",
           nkeys - 1);
    report(missing_ok && n_missing >= 10, "ndp-lookup-missing-keys",
           "%u missing keys, not all reported missing by both", n_missing);
    report(ran == NDP_KEYS && !bad_match, "ndp-lookup-matches-walk",
           "%u of %u lookups ran, %u differ; first: %s", ran, NDP_KEYS, bad_match, match_why);
    report(!bad_hops, "ndp-lookup-hops", "%u of %u wrong; first: %s", bad_hops, NDP_KEYS, hops_why);
    report(!bad_value, "ndp-lookup-values", "%u of %u wrong; first: %s", bad_value, NDP_KEYS,
           value_why);

    // Hostile requests, each with its own status.
    rc = xrp_read(dev, 0, 0xdead, 0, 0, scratch, &res);
    report(rc == 0 && res.status == RB_NDP_S_NO_PROGRAM && res.hops == 0,
           "ndp-unknown-handle-no-program", "rc %d status %s hops %" PRIu32, rc,
           ndp_status_name(res.status), res.hops);

    uint32_t oor = 0, forever = 0;
    rc = load_obj(dev, test_obj, "xrp_out_of_range", &oor, log, sizeof(log));
    report(rc == 0, "ndp-load-xrp-out-of-range", "%s: %s", strerror(-rc), log);
    if (rc == 0) {
        rc = xrp_read(dev, 0, oor, 0, 0, scratch, &res);
        report(rc == 0 && res.status == RB_NDP_S_OUT_OF_RANGE && res.hops == 1,
               "ndp-io-beyond-disk-out-of-range", "rc %d status %s hops %" PRIu32, rc,
               ndp_status_name(res.status), res.hops);
        rc = xrp_read(dev, nq - 1, oor, disk, 0, scratch, &res);
        report(rc == 0 && res.status == RB_NDP_S_OUT_OF_RANGE && res.hops == 0,
               "ndp-first-io-past-end-out-of-range", "rc %d status %s hops %" PRIu32, rc,
               ndp_status_name(res.status), res.hops);
        rc = rb_guest_ndp_unload(dev, 0, oor);
        report(rc == 0, "ndp-unload-out-of-range", "%d (%s)", rc, rb_guest_errmsg());
    }
    rc = load_obj(dev, test_obj, "xrp_forever", &forever, log, sizeof(log));
    report(rc == 0, "ndp-load-xrp-forever", "%s: %s", strerror(-rc), log);
    if (rc == 0) {
        rc = xrp_read(dev, 0, forever, 0, 10, scratch, &res);
        report(rc == 0 && res.status == RB_NDP_S_HOP_LIMIT && res.hops == 10, "ndp-hop-limit",
               "max_hops 10: rc %d status %s hops %" PRIu32, rc, ndp_status_name(res.status),
               res.hops);
        rc = rb_guest_ndp_unload(dev, 0, forever);
        report(rc == 0, "ndp-unload-forever", "%d (%s)", rc, rb_guest_errmsg());
    }

    // Unload, then use: the handle is gone; a second unload finds nothing.
    rc = rb_guest_ndp_unload(dev, nq - 1, kv);
    report(rc == 0, "ndp-unload-bpfkv", "%d (%s)", rc, rb_guest_errmsg());
    memset(scratch, 0, sizeof(scratch));
    rc = xrp_read(dev, 0, kv, 0, 0, scratch, &res);
    report(rc == 0 && res.status == RB_NDP_S_NO_PROGRAM && res.hops == 0,
           "ndp-unloaded-handle-no-program", "rc %d status %s hops %" PRIu32, rc,
           ndp_status_name(res.status), res.hops);
    rc = rb_guest_ndp_unload(dev, 0, kv);
    report(rc == -ENOENT, "ndp-unload-twice-enoent", "got %d (%s)", rc, rb_guest_errmsg());

    // Plain I/O after all of it: a write at the end of the disk (past the
    // database) read back on the other queue, and the tree still there.
    uint64_t tail = disk - NDP_TAIL_LEN;
    fill(buf, NDP_TAIL_LEN, NDP_TAIL_SEED, tail);
    rc = rb_guest_write(dev, 0, buf, tail, NDP_TAIL_LEN);
    if (rc == 0 && (rc = rb_guest_flush(dev, 0)) == -ENOTSUP)
        rc = 0;
    if (rc)
        snprintf(why, sizeof(why), "write %" PRIu64 "+%llu: %s (%s)", tail, NDP_TAIL_LEN,
                 strerror(-rc), rb_guest_errmsg());
    else
        rc = verify_range(dev, nq - 1, buf, tail, NDP_TAIL_LEN, NDP_TAIL_SEED, why, sizeof(why));
    report(rc == 0, "ndp-plain-write-read-after", "%s", why);
    {
        char v[64], want[64];
        unsigned reads;
        int f = walk(dev, 0, buf, nkeys / 2, v, &reads);
        snprintf(want, sizeof(want), "%63" PRIu64, nkeys / 2);
        report(f == 1 && memcmp(v, want, 64) == 0, "ndp-plain-lookup-after",
               "key %" PRIu64 ": walk says %d", nkeys / 2, f);
    }
    rb_guest_dma_free(dev, buf);
    rb_guest_close(dev);
    printf("rosen_pci_check: %u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 5 && strcmp(argv[1], "io") == 0)
        return cmd_io(argv[2], strtoull(argv[3], NULL, 0), (unsigned)strtoul(argv[4], NULL, 0));
    if (argc == 5 && strcmp(argv[1], "open-error") == 0)
        return cmd_open_error(argv[2], argv[3], argv[4]);
    if (argc == 7 && strcmp(argv[1], "ndp") == 0)
        return cmd_ndp(argv[2], argv[3], argv[4], (unsigned)strtoul(argv[5], NULL, 0),
                       strtoull(argv[6], NULL, 0));
    fprintf(stderr, "usage: rosen_pci_check io URI DISK_BYTES QUEUES\n"
                    "       rosen_pci_check open-error URI ERRNO SUBSTRING\n"
                    "       rosen_pci_check ndp URI LOOKUP_OBJ TEST_OBJ LEVELS DISK_BYTES\n");
    return 2;
}
