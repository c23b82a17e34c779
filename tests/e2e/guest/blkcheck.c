// SPDX-License-Identifier: MIT
// blkcheck: block device I/O checker run inside the e2e test guest.
// Built on the host with `gcc -static` and put into the initramfs.
//
//   blkcheck size    DEV                  print the size in bytes
//   blkcheck write   DEV OFF LEN SEED     O_DIRECT write of the pattern
//   blkcheck verify  DEV OFF LEN SEED     O_DIRECT read, compare with pattern
//   blkcheck zeros   DEV OFF LEN          O_DIRECT read, expect zero bytes
//   blkcheck flush   DEV                  fsync (a virtio-blk FLUSH) + BLKFLSBUF
//   blkcheck discard DEV OFF LEN          BLKDISCARD ioctl
//   blkcheck zeroout DEV OFF LEN          BLKZEROOUT ioctl
//
// OFF and LEN take a K, M or G suffix (powers of 1024) or 0x hex, and must be
// multiples of 512.  The pattern is a function of (SEED, absolute byte
// offset) so that the host can compute it too (see pattern_word and
// tests/e2e/test_guest_blk.py): every 8-byte little-endian word at offset o is
//   x = SEED * 0x9E3779B97F4A7C15 + o / 8
//   x ^= x >> 31;  x *= 0xBF58476D1CE4E5B9;  x ^= x >> 29
// Prints one line "blkcheck: OP ...: ok" or "blkcheck: OP ...: FAIL reason";
// exits 0 on success, 1 on failure, 2 on bad usage.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR 512u
#define CHUNK (1u << 20) // bytes per pread/pwrite call

static const char *op_desc;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    va_list ap;
    printf("blkcheck: %s: FAIL ", op_desc);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    exit(1);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: blkcheck size DEV | write DEV OFF LEN SEED | verify DEV OFF LEN SEED |\n"
            "       zeros DEV OFF LEN | flush DEV | discard DEV OFF LEN | zeroout DEV OFF LEN\n");
    exit(2);
}

static uint64_t parse_num(const char *s, const char *what)
{
    char *end;
    errno = 0;
    uint64_t v = strtoull(s, &end, 0);
    if (errno || end == s) {
        fprintf(stderr, "blkcheck: bad %s '%s'\n", what, s);
        exit(2);
    }
    uint64_t mul = 1;
    switch (*end) {
    case 'K': case 'k': mul = 1ull << 10; end++; break;
    case 'M': case 'm': mul = 1ull << 20; end++; break;
    case 'G': case 'g': mul = 1ull << 30; end++; break;
    default: break;
    }
    if (*end || (v && mul > UINT64_MAX / v)) {
        fprintf(stderr, "blkcheck: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v * mul;
}

static uint64_t pattern_word(uint64_t seed, uint64_t off)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + (off >> 3);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return x;
}

static void fill_pattern(unsigned char *buf, size_t len, uint64_t seed, uint64_t off)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t w = pattern_word(seed, off + i);
        for (int b = 0; b < 8; b++)
            buf[i + b] = (unsigned char)(w >> (8 * b));
    }
}

static int open_dev(const char *dev, int flags)
{
    int fd = open(dev, flags);
    if (fd < 0)
        fail("open %s: %s", dev, strerror(errno));
    return fd;
}

static uint64_t dev_size(int fd)
{
    uint64_t size;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) // a plain file: host-side self-test
        return (uint64_t)st.st_size;
    if (ioctl(fd, BLKGETSIZE64, &size) < 0)
        fail("BLKGETSIZE64: %s", strerror(errno));
    return size;
}

static void check_range(int fd, uint64_t off, uint64_t len)
{
    if (off % SECTOR || len % SECTOR || len == 0)
        fail("offset %" PRIu64 " and length %" PRIu64 " must be non-zero multiples of %u",
             off, len, SECTOR);
    uint64_t size = dev_size(fd);
    if (off > size || len > size - off)
        fail("range %" PRIu64 "+%" PRIu64 " is past the device end (%" PRIu64 " bytes)",
             off, len, size);
}

static unsigned char *alloc_buf(size_t len)
{
    void *p;
    int err = posix_memalign(&p, 4096, len);
    if (err)
        fail("posix_memalign(%zu): %s", len, strerror(err));
    return p;
}

// Reads exactly len bytes at off; a short read is a failure.
static void read_full(int fd, unsigned char *buf, size_t len, uint64_t off)
{
    memset(buf, 0xA5, len); // poison: shows up if the device returns nothing
    ssize_t n = pread(fd, buf, len, (off_t)off);
    if (n < 0)
        fail("pread %zu bytes at %" PRIu64 ": %s", len, off, strerror(errno));
    if ((size_t)n != len)
        fail("short pread at %" PRIu64 ": %zd of %zu bytes", off, n, len);
}

// Compares got with want over len bytes at device offset off, failing with
// the first differing offset and the number of differing bytes.
static void compare(const unsigned char *got, const unsigned char *want, size_t len, uint64_t off)
{
    if (memcmp(got, want, len) == 0)
        return;
    size_t first = 0, bad = 0;
    for (size_t i = len; i-- > 0;)
        if (got[i] != want[i]) {
            first = i;
            bad++;
        }
    fail("mismatch at byte %" PRIu64 " (sector %" PRIu64 "): got 0x%02x want 0x%02x; "
         "%zu bad bytes in the %zu-byte block at %" PRIu64,
         off + first, (off + first) / SECTOR, got[first], want[first], bad, len, off);
}

static void do_io(const char *dev, uint64_t off, uint64_t len, uint64_t seed, int mode)
{
    // mode: 0 write pattern, 1 verify pattern, 2 verify zeros
    int fd = open_dev(dev, (mode == 0 ? O_WRONLY : O_RDONLY) | O_DIRECT);
    check_range(fd, off, len);
    size_t cap = len < CHUNK ? (size_t)len : CHUNK;
    unsigned char *buf = alloc_buf(cap);
    unsigned char *want = alloc_buf(cap);
    if (mode == 2)
        memset(want, 0, cap);
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < cap ? (size_t)(len - done) : cap;
        uint64_t at = off + done;
        if (mode == 0) {
            fill_pattern(buf, n, seed, at);
            ssize_t w = pwrite(fd, buf, n, (off_t)at);
            if (w < 0)
                fail("pwrite %zu bytes at %" PRIu64 ": %s", n, at, strerror(errno));
            if ((size_t)w != n)
                fail("short pwrite at %" PRIu64 ": %zd of %zu bytes", at, w, n);
        } else {
            if (mode == 1)
                fill_pattern(want, n, seed, at);
            read_full(fd, buf, n, at);
            compare(buf, want, n, at);
        }
        done += n;
    }
    if (close(fd) < 0)
        fail("close: %s", strerror(errno));
    free(buf);
    free(want);
}

static void do_range_ioctl(const char *dev, unsigned long req, const char *name,
                           uint64_t off, uint64_t len)
{
    int fd = open_dev(dev, O_WRONLY);
    check_range(fd, off, len);
    uint64_t range[2] = {off, len};
    if (ioctl(fd, req, range) < 0)
        fail("%s: %s", name, strerror(errno));
    close(fd);
}

int main(int argc, char **argv)
{
    static char desc[512];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3)
        usage();
    const char *op = argv[1], *dev = argv[2];
    snprintf(desc, sizeof desc, "%s %s", op, dev);
    for (int i = 3; i < argc; i++) {
        size_t l = strlen(desc);
        snprintf(desc + l, sizeof desc - l, " %s", argv[i]);
    }
    op_desc = desc;

    if (!strcmp(op, "size") && argc == 3) {
        int fd = open_dev(dev, O_RDONLY);
        printf("%" PRIu64 "\n", dev_size(fd));
        close(fd);
        return 0;
    } else if (!strcmp(op, "write") && argc == 6) {
        do_io(dev, parse_num(argv[3], "offset"), parse_num(argv[4], "length"),
              parse_num(argv[5], "seed"), 0);
    } else if (!strcmp(op, "verify") && argc == 6) {
        do_io(dev, parse_num(argv[3], "offset"), parse_num(argv[4], "length"),
              parse_num(argv[5], "seed"), 1);
    } else if (!strcmp(op, "zeros") && argc == 5) {
        do_io(dev, parse_num(argv[3], "offset"), parse_num(argv[4], "length"), 0, 2);
    } else if (!strcmp(op, "flush") && argc == 3) {
        int fd = open_dev(dev, O_WRONLY);
        if (fsync(fd) < 0)
            fail("fsync: %s", strerror(errno));
        if (ioctl(fd, BLKFLSBUF, 0) < 0)
            fail("BLKFLSBUF: %s", strerror(errno));
        close(fd);
    } else if (!strcmp(op, "discard") && argc == 5) {
        do_range_ioctl(dev, BLKDISCARD, "BLKDISCARD", parse_num(argv[3], "offset"),
                       parse_num(argv[4], "length"));
    } else if (!strcmp(op, "zeroout") && argc == 5) {
        do_range_ioctl(dev, BLKZEROOUT, "BLKZEROOUT", parse_num(argv[3], "offset"),
                       parse_num(argv[4], "length"));
    } else {
        usage();
    }
    printf("blkcheck: %s: ok\n", op_desc);
    return 0;
}
