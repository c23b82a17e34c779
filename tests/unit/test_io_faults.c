/* SPDX-License-Identifier: MIT */
/*
 * lib/io under storage faults and flush storms, through the fault hooks of
 * test builds (lib/io/fault.c; built with -Dfault_hooks=true, the asan
 * build): a flush goes to the kernel only after the writes of its queue
 * completed, as fdatasync, one at a time per queue; EIO, ENOSPC, EAGAIN,
 * short transfers and a truncated image end as statuses, never hangs.  The
 * test plays the driver on rings in ordinary memory, as test_io.c does.
 */
#include <rosen/io.h>
#include <rosen/virtio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MAX_RETRIES 4 /* RB_IO_MAX_RETRIES (lib/io/io_internal.h) */
#define IMG_SIZE (1u << 20)
#define GPA_BASE 0x100000ull
#define MEM_SIZE (8u << 20)
#define QSIZE 256

static char err[512];

/* ---- a driver on rings in test memory ------------------------------------------- */

struct guest {
	uint8_t *mem;
	struct rb_vring_desc *desc;
	struct rb_vring_avail *avail;
	struct rb_vring_used *used;
	uint16_t avail_idx, published, used_seen, next_desc;
	uint64_t next_free;
	int kick, call;
};

struct env {
	struct rb_workers *w;
	struct rb_disk *d;
	struct guest g;
	char img[64];
};

static void *xlate(void *ctx, uint64_t gpa, uint64_t len)
{
	struct guest *g = ctx;
	if (gpa < GPA_BASE || gpa - GPA_BASE >= MEM_SIZE || len > MEM_SIZE - (gpa - GPA_BASE))
		return NULL;
	return g->mem + (gpa - GPA_BASE);
}

static uint64_t galloc(struct guest *g, size_t len)
{
	uint64_t off = (g->next_free + 511) & ~511ull;
	if (off + len > MEM_SIZE)
		off = 64 * 1024; /* wrap: past the rings; old requests are done */
	g->next_free = off + len;
	return GPA_BASE + off;
}

static void *gptr(struct guest *g, uint64_t gpa)
{
	return g->mem + (gpa - GPA_BASE);
}

/* Adds a request without publishing it: [hdr][data segments][status].
 * segs: lengths of the data descriptors (0-terminated) at data_gpa. */
static uint8_t *add(struct guest *g, uint32_t type, uint64_t sector, uint64_t data_gpa,
		    const uint32_t *segs, bool writable, uint16_t *head_out)
{
	uint64_t hdr_gpa = galloc(g, 16), st_gpa = galloc(g, 1);
	struct rb_virtio_blk_outhdr *h = gptr(g, hdr_gpa);
	uint16_t head = g->next_desc, d = head;

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	g->desc[d] = (struct rb_vring_desc){hdr_gpa, 16, RB_VRING_DESC_F_NEXT, 0};
	for (unsigned i = 0; segs && segs[i]; i++) {
		uint16_t n = (uint16_t)((d + 1) % QSIZE);
		g->desc[d].next = n;
		d = n;
		g->desc[d] = (struct rb_vring_desc){data_gpa, segs[i],
			RB_VRING_DESC_F_NEXT | (writable ? RB_VRING_DESC_F_WRITE : 0), 0};
		data_gpa += segs[i];
	}
	uint16_t n = (uint16_t)((d + 1) % QSIZE);
	g->desc[d].next = n;
	d = n;
	g->desc[d] = (struct rb_vring_desc){st_gpa, 1, RB_VRING_DESC_F_WRITE, 0};
	g->next_desc = (uint16_t)((d + 1) % QSIZE);
	*(uint8_t *)gptr(g, st_gpa) = 0xff;
	g->avail->ring[g->avail_idx % QSIZE] = head;
	g->avail_idx++;
	if (head_out)
		*head_out = head;
	return gptr(g, st_gpa);
}

/* Makes every added request visible at once (one batch for the worker). */
static void publish(struct guest *g)
{
	__atomic_store_n(&g->avail->idx, g->avail_idx, __ATOMIC_RELEASE);
	g->published = g->avail_idx;
	eventfd_write(g->kick, 1);
}

static bool wait_used(struct guest *g, uint16_t n)
{
	for (int i = 0; i < 10000; i++) {
		if ((uint16_t)(__atomic_load_n(&g->used->idx, __ATOMIC_ACQUIRE) - g->used_seen) >= n) {
			g->used_seen = (uint16_t)(g->used_seen + n);
			return true;
		}
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return false;
}

/* One request, published and waited for: its status byte. */
static uint8_t run1(struct guest *g, uint32_t type, uint64_t sector, uint64_t data_gpa,
		    uint32_t len, bool writable)
{
	uint32_t segs[2] = {len, 0};
	uint8_t *st = add(g, type, sector, data_gpa, len ? segs : NULL, writable, NULL);
	publish(g);
	if (!wait_used(g, 1))
		return 0xee; /* a hang: no status within 10 s */
	return *st;
}

static void fill(void *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)p)[i] = (uint8_t)(seed + i * 13 + (i >> 9));
}

static bool env_up(struct env *e, enum rb_disk_cache cache, unsigned queues)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->img, sizeof(e->img), "/tmp/rosen-faults-XXXXXX");
	int fd = mkstemp(e->img);
	if (fd < 0 || ftruncate(fd, IMG_SIZE) < 0)
		return false;
	close(fd);
	if (rb_workers_new(1, RB_IO_POLL, &e->w, err, sizeof(err)))
		return false;
	struct rb_disk_opts o = {.path = e->img, .queues = queues, .cache = cache};
	if (rb_disk_open(&o, e->w, &e->d, err, sizeof(err)))
		return false;
	struct guest *g = &e->g;
	g->mem = aligned_alloc(4096, MEM_SIZE);
	memset(g->mem, 0, MEM_SIZE);
	g->desc = gptr(g, galloc(g, rb_vring_desc_bytes(QSIZE)));
	g->avail = gptr(g, galloc(g, rb_vring_avail_bytes(QSIZE) + 2));
	g->used = gptr(g, galloc(g, rb_vring_used_bytes(QSIZE) + 2));
	g->next_free = 64 * 1024;
	g->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct rb_virtq vq;
	if (rb_virtq_init(&vq, QSIZE, g->desc, g->avail, g->used, 0, false, false, xlate, g))
		return false;
	return rb_disk_queue_start(e->d, 0, &vq, g->kick, g->call) == 0;
}

static void env_down(struct env *e)
{
	rb_io_fault_set("", err, sizeof(err));
	if (e->d) {
		rb_disk_queue_stop(e->d, 0);
		rb_disk_free(e->d);
	}
	rb_workers_free(e->w);
	free(e->g.mem);
	if (e->g.kick > 0)
		close(e->g.kick);
	if (e->g.call > 0)
		close(e->g.call);
	unlink(e->img);
}

static void arm(const char *spec)
{
	int rc = rb_io_fault_set(spec, err, sizeof(err));
	if (rc)
		fprintf(stderr, "    %s\n", err);
	REQUIRE(rc == 0);
}

static struct rb_io_fault_stats stats(void)
{
	struct rb_io_fault_stats s;
	rb_io_fault_get_stats(&s);
	return s;
}

static void file_read(const char *path, uint64_t off, void *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, buf, n, (off_t)off) == (ssize_t)n);
	close(fd);
}

/* ---- flush ordering ------------------------------------------------------------- */

/* Position of a head in the used ring among the last n entries (-1: absent). */
static int used_pos(struct guest *g, uint16_t first, uint16_t n, uint16_t head)
{
	for (uint16_t i = 0; i < n; i++)
		if (g->used->ring[(uint16_t)(first + i) % QSIZE].id == head)
			return i;
	return -1;
}

static void flush_after_writes(enum rb_disk_cache cache)
{
	struct env e;
	REQUIRE(env_up(&e, cache, 1));
	struct guest *g = &e.g;
	struct rb_io_fault_stats s0 = stats();
	unsigned flushes = 0;

	/* Rounds of 12 writes of 64 KiB and a FLUSH, made visible together:
	 * a driver that pipelines them.  Before the fix the fsync went out in
	 * the same submission as the writes and io_uring ran them at once. */
	for (int round = 0; round < 8; round++) {
		uint16_t heads[13], first = g->used_seen;
		uint8_t *st[13];
		for (int i = 0; i < 12; i++) {
			uint64_t buf = galloc(g, 65536);
			fill(gptr(g, buf), 65536, (uint8_t)(round * 16 + i));
			uint32_t segs[2] = {65536, 0};
			st[i] = add(g, RB_VIRTIO_BLK_T_OUT, (uint64_t)i * 128, buf, segs, false, &heads[i]);
		}
		st[12] = add(g, RB_VIRTIO_BLK_T_FLUSH, 0, 0, NULL, false, &heads[12]);
		publish(g);
		REQUIRE(wait_used(g, 13));
		flushes++;
		for (int i = 0; i < 13; i++)
			CHECK_EQ_U64(*st[i], RB_VIRTIO_BLK_S_OK);
		/* Completed last: after every write it was pipelined behind. */
		int fpos = used_pos(g, first, 13, heads[12]);
		CHECK(fpos == 12);
	}
	struct rb_io_fault_stats s1 = stats();
	CHECK_EQ_U64(s1.flush_overtakes - s0.flush_overtakes, 0);
	CHECK_EQ_U64(s1.flush_sqes - s0.flush_sqes, flushes);
	/* fdatasync, not a full fsync. */
	CHECK_EQ_U64(s1.flush_datasync - s0.flush_datasync, s1.flush_sqes - s0.flush_sqes);
	/* The data is where the last round put it. */
	uint8_t want[4096], got[4096];
	uint64_t buf = galloc(g, 65536);
	fill(gptr(g, buf), 65536, 7 * 16 + 5);
	memcpy(want, gptr(g, buf), sizeof(want));
	file_read(e.img, 5 * 65536, got, sizeof(got));
	CHECK(memcmp(want, got, sizeof(got)) == 0);
	env_down(&e);
}

TEST(flush_waits_for_the_writes_pipelined_before_it_direct)
{
	flush_after_writes(RB_DISK_CACHE_DIRECT);
}

TEST(flush_waits_for_the_writes_pipelined_before_it_buffered)
{
	flush_after_writes(RB_DISK_CACHE_BUFFERED);
}

/* Writes after a flush do not wait for it, and it does not wait for them:
 * W1 F W2 — F covers W1 only, W2 may complete before or after F. */
TEST(flush_does_not_wait_for_writes_that_came_after_it)
{
	struct env e;
	REQUIRE(env_up(&e, RB_DISK_CACHE_BUFFERED, 1));
	struct guest *g = &e.g;
	uint64_t buf = galloc(&e.g, 4096);
	uint32_t segs[2] = {4096, 0};
	uint16_t h[3];
	uint16_t first = g->used_seen;
	uint8_t *s0 = add(g, RB_VIRTIO_BLK_T_OUT, 0, buf, segs, false, &h[0]);
	uint8_t *s1 = add(g, RB_VIRTIO_BLK_T_FLUSH, 0, 0, NULL, false, &h[1]);
	uint8_t *s2 = add(g, RB_VIRTIO_BLK_T_OUT, 8, buf, segs, false, &h[2]);
	publish(g);
	REQUIRE(wait_used(g, 3));
	CHECK(*s0 == 0 && *s1 == 0 && *s2 == 0);
	CHECK(used_pos(g, first, 3, h[0]) < used_pos(g, first, 3, h[1]));
	env_down(&e);
}

/* A guest sending hundreds of flushes at once gets every one answered, by
 * a few fdatasyncs: one in flight per queue, the rest share the next. */
TEST(flush_storm_shares_fdatasyncs)
{
	struct env e;
	REQUIRE(env_up(&e, RB_DISK_CACHE_BUFFERED, 1));
	struct guest *g = &e.g;
	struct rb_io_fault_stats s0 = stats();
	uint64_t buf = galloc(g, 65536);
	uint32_t segs[2] = {65536, 0};
	uint8_t *st[120];

	st[0] = add(g, RB_VIRTIO_BLK_T_OUT, 0, buf, segs, false, NULL);
	for (int i = 1; i < 120; i++)
		st[i] = add(g, RB_VIRTIO_BLK_T_FLUSH, 0, 0, NULL, false, NULL);
	publish(g);
	REQUIRE(wait_used(g, 120));
	for (int i = 0; i < 120; i++)
		CHECK_EQ_U64(*st[i], RB_VIRTIO_BLK_S_OK);
	struct rb_io_fault_stats s1 = stats();
	CHECK(s1.flush_sqes - s0.flush_sqes <= 2);
	CHECK_EQ_U64(s1.flush_overtakes - s0.flush_overtakes, 0);
	struct rb_disk_stats ds;
	rb_disk_stats(e.d, &ds);
	CHECK_EQ_U64(ds.flushes, 119);
	/* Flushes with writes interleaved, many rounds: still all answered,
	 * still never ahead of a write. */
	for (int r = 0; r < 20; r++) {
		for (int i = 0; i < 10; i++) {
			if (i % 3 == 0)
				st[i] = add(g, RB_VIRTIO_BLK_T_OUT, (uint64_t)i * 8, buf, segs, false, NULL);
			else
				st[i] = add(g, RB_VIRTIO_BLK_T_FLUSH, 0, 0, NULL, false, NULL);
		}
		publish(g);
		REQUIRE(wait_used(g, 10));
		for (int i = 0; i < 10; i++)
			CHECK_EQ_U64(*st[i], RB_VIRTIO_BLK_S_OK);
	}
	CHECK_EQ_U64(stats().flush_overtakes - s0.flush_overtakes, 0);
	env_down(&e);
}

TEST(flush_error_is_ioerr_and_the_next_flush_works)
{
	struct env e;
	REQUIRE(env_up(&e, RB_DISK_CACHE_BUFFERED, 1));
	arm("flush:eio");
	CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), RB_VIRTIO_BLK_S_IOERR);
	CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), RB_VIRTIO_BLK_S_OK);
	/* Flushes sharing a failed fdatasync all fail: none may say OK. */
	uint64_t buf = galloc(&e.g, 65536);
	uint32_t segs[2] = {65536, 0};
	arm("flush:eio");
	uint8_t *st[6];
	st[0] = add(&e.g, RB_VIRTIO_BLK_T_OUT, 0, buf, segs, false, NULL);
	for (int i = 1; i < 6; i++)
		st[i] = add(&e.g, RB_VIRTIO_BLK_T_FLUSH, 0, 0, NULL, false, NULL);
	publish(&e.g);
	REQUIRE(wait_used(&e.g, 6));
	CHECK_EQ_U64(*st[0], RB_VIRTIO_BLK_S_OK);
	for (int i = 1; i < 6; i++)
		CHECK_EQ_U64(*st[i], RB_VIRTIO_BLK_S_IOERR);
	env_down(&e);
}

/* ---- errors become statuses ------------------------------------------------------ */

static void error_case(const char *spec, uint32_t type, bool writable)
{
	struct env e;
	REQUIRE(env_up(&e, RB_DISK_CACHE_DIRECT, 1));
	uint64_t buf = galloc(&e.g, 8192);
	arm(spec);
	CHECK_EQ_U64(run1(&e.g, type, 16, buf, 8192, writable), RB_VIRTIO_BLK_S_IOERR);
	/* Served as before once the fault is gone. */
	CHECK_EQ_U64(run1(&e.g, type, 16, buf, 8192, writable), RB_VIRTIO_BLK_S_OK);
	CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), RB_VIRTIO_BLK_S_OK);
	env_down(&e);
}

TEST(read_eio_is_ioerr)
{
	error_case("read:eio", RB_VIRTIO_BLK_T_IN, true);
}

TEST(write_eio_is_ioerr)
{
	error_case("write:eio", RB_VIRTIO_BLK_T_OUT, false);
}

TEST(write_enospc_is_ioerr)
{
	error_case("write:enospc", RB_VIRTIO_BLK_T_OUT, false);
}

TEST(discard_and_write_zeroes_eio_is_ioerr)
{
	struct env e;
	REQUIRE(env_up(&e, RB_DISK_CACHE_BUFFERED, 1));
	uint32_t types[2] = {RB_VIRTIO_BLK_T_DISCARD, RB_VIRTIO_BLK_T_WRITE_ZEROES};
	for (int k = 0; k < 2; k++) {
		uint64_t r = galloc(&e.g, 16);
		struct rb_virtio_blk_discard_wz *range = gptr(&e.g, r);
		*range = (struct rb_virtio_blk_discard_wz){.sector = 8, .num_sectors = 8};
		arm("discard:eio");
		CHECK_EQ_U64(run1(&e.g, types[k], 0, r, 16, false), RB_VIRTIO_BLK_S_IOERR);
		CHECK_EQ_U64(run1(&e.g, types[k], 0, r, 16, false), RB_VIRTIO_BLK_S_OK);
	}
	env_down(&e);
}

/* A short read is completed by reading the rest, into the right bytes of
 * the right descriptors (the cut falls inside the second of three). */
static void short_transfer(enum rb_disk_cache cache, bool write)
{
	struct env e;
	REQUIRE(env_up(&e, cache, 1));
	struct guest *g = &e.g;
	uint8_t want[4096], got[4096];
	fill(want, sizeof(want), write ? 0x31 : 0x77);
	if (!write) {
		int fd = open(e.img, O_WRONLY);
		REQUIRE(fd >= 0 && pwrite(fd, want, sizeof(want), 64 * 512) == (ssize_t)sizeof(want));
		close(fd);
	}
	uint64_t buf = galloc(g, 4096);
	if (write)
		memcpy(gptr(g, buf), want, sizeof(want));
	else
		memset(gptr(g, buf), 0, 4096);
	uint32_t segs[4] = {512, 2048, 1536, 0};
	struct rb_io_fault_stats s0 = stats();
	arm(write ? "write:short" : "read:short");
	uint8_t *st = add(g, write ? RB_VIRTIO_BLK_T_OUT : RB_VIRTIO_BLK_T_IN, 64, buf, segs, !write,
			  NULL);
	publish(g);
	REQUIRE(wait_used(g, 1));
	CHECK_EQ_U64(*st, RB_VIRTIO_BLK_S_OK);
	if (write) {
		file_read(e.img, 64 * 512, got, sizeof(got));
		CHECK(memcmp(got, want, sizeof(got)) == 0);
	} else {
		CHECK(memcmp(gptr(g, buf), want, sizeof(want)) == 0);
		/* The used length counts every byte read, not the last part. */
		CHECK_EQ_U64(g->used->ring[(uint16_t)(g->used_seen - 1) % QSIZE].len, 4097);
	}
	struct rb_io_fault_stats s1 = stats();
	CHECK_EQ_U64(s1.injected - s0.injected, 1);
	CHECK_EQ_U64(write ? s1.write_sqes - s0.write_sqes : s1.read_sqes - s0.read_sqes, 2);
	env_down(&e);
}

TEST(short_read_is_completed_by_reading_the_rest_direct)
{
	short_transfer(RB_DISK_CACHE_DIRECT, false);
}

TEST(short_read_is_completed_by_reading_the_rest_buffered)
{
	short_transfer(RB_DISK_CACHE_BUFFERED, false);
}

TEST(short_write_is_completed_by_writing_the_rest)
{
	short_transfer(RB_DISK_CACHE_DIRECT, true);
}

/* A device that keeps returning less (or EAGAIN) is given up on after a
 * bounded number of tries: IOERR, never a loop. */
static void retries_bounded(const char *spec, uint32_t type, bool writable)
{
	struct env e;
	REQUIRE(env_up(&e, RB_DISK_CACHE_DIRECT, 1));
	uint64_t buf = galloc(&e.g, 65536);
	struct rb_io_fault_stats s0 = stats();
	arm(spec);
	CHECK_EQ_U64(run1(&e.g, type, 0, buf, 65536, writable), RB_VIRTIO_BLK_S_IOERR);
	struct rb_io_fault_stats s1 = stats();
	uint64_t n = type == RB_VIRTIO_BLK_T_IN ? s1.read_sqes - s0.read_sqes
						: s1.write_sqes - s0.write_sqes;
	CHECK_EQ_U64(n, 1 + MAX_RETRIES);
	arm("");
	CHECK_EQ_U64(run1(&e.g, type, 0, buf, 65536, writable), RB_VIRTIO_BLK_S_OK);
	env_down(&e);
}

TEST(short_reads_forever_end_in_ioerr_after_bounded_retries)
{
	retries_bounded("read:short:count=0", RB_VIRTIO_BLK_T_IN, true);
}

TEST(eagain_forever_ends_in_ioerr_after_bounded_retries)
{
	retries_bounded("write:eagain:count=0", RB_VIRTIO_BLK_T_OUT, false);
}

TEST(eagain_is_retried)
{
	struct env e;
	REQUIRE(env_up(&e, RB_DISK_CACHE_DIRECT, 1));
	uint64_t buf = galloc(&e.g, 4096);
	arm("read:eagain:count=2,write:eagain:count=3,flush:eagain:count=1");
	CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_IN, 0, buf, 4096, true), RB_VIRTIO_BLK_S_OK);
	CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_OUT, 0, buf, 4096, false), RB_VIRTIO_BLK_S_OK);
	CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), RB_VIRTIO_BLK_S_OK);
	env_down(&e);
}

/* The image shrinks under the daemon: reads past its new end are IOERR
 * (not zeros, not a hang), writes there grow it again. */
TEST(truncated_image_reads_past_the_end_are_ioerr)
{
	static const enum rb_disk_cache modes[2] = {RB_DISK_CACHE_DIRECT, RB_DISK_CACHE_BUFFERED};
	for (int m = 0; m < 2; m++) {
		struct env e;
		REQUIRE(env_up(&e, modes[m], 1));
		uint64_t buf = galloc(&e.g, 65536);
		REQUIRE(truncate(e.img, 16384) == 0);
		/* Wholly past the end. */
		CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_IN, 64, buf, 4096, true), RB_VIRTIO_BLK_S_IOERR);
		/* Across the end: a short read, then nothing. */
		CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_IN, 24, buf, 8192, true), RB_VIRTIO_BLK_S_IOERR);
		/* Before it: fine. */
		CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_IN, 0, buf, 16384, true), RB_VIRTIO_BLK_S_OK);
		/* A write past the end extends the file; a flush makes it stay. */
		fill(gptr(&e.g, buf), 4096, 9);
		CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_OUT, 96, buf, 4096, false), RB_VIRTIO_BLK_S_OK);
		CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), RB_VIRTIO_BLK_S_OK);
		struct stat sb;
		CHECK(stat(e.img, &sb) == 0 && sb.st_size == 96 * 512 + 4096);
		/* Truncated to nothing: every read fails, the queue still drains. */
		REQUIRE(truncate(e.img, 0) == 0);
		for (int i = 0; i < 20; i++)
			CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_IN, (uint64_t)i * 8, buf, 4096, true),
				     RB_VIRTIO_BLK_S_IOERR);
		struct rb_disk_stats ds;
		rb_disk_stats(e.d, &ds);
		CHECK_EQ_U64(ds.errors, 22);
		env_down(&e);
	}
}

/* ---- the watchdog ------------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Storage that never answers: the I/O is cancelled after --io-timeout
 * (1 s here), the request fails, and a FLUSH behind the hung write is
 * answered once it is. */
TEST(stuck_io_is_cancelled_after_the_io_timeout)
{
	struct env e;
	REQUIRE(env_up(&e, RB_DISK_CACHE_DIRECT, 1));
	rb_workers_set_io_timeout(e.w, 1);
	uint64_t buf = galloc(&e.g, 4096);
	arm("read:hang");
	double t0 = now_s();
	CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_IN, 0, buf, 4096, true), RB_VIRTIO_BLK_S_IOERR);
	double took = now_s() - t0;
	CHECK(took >= 0.9 && took < 4.0);
	arm("write:hang");
	uint32_t segs[2] = {4096, 0};
	uint8_t *w = add(&e.g, RB_VIRTIO_BLK_T_OUT, 8, buf, segs, false, NULL);
	uint8_t *f = add(&e.g, RB_VIRTIO_BLK_T_FLUSH, 0, 0, NULL, false, NULL);
	publish(&e.g);
	REQUIRE(wait_used(&e.g, 2));
	CHECK_EQ_U64(*w, RB_VIRTIO_BLK_S_IOERR);
	CHECK_EQ_U64(*f, RB_VIRTIO_BLK_S_OK);
	CHECK_EQ_U64(stats().flush_overtakes, 0);
	arm("");
	CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_IN, 0, buf, 4096, true), RB_VIRTIO_BLK_S_OK);
	env_down(&e);
}

/* A queue stop (GET_VRING_BASE, a disconnect: the control thread every VM
 * shares) waits for the hung I/O only until the watchdog cancels it. */
TEST(drain_of_a_queue_with_stuck_io_ends)
{
	struct env e;
	REQUIRE(env_up(&e, RB_DISK_CACHE_BUFFERED, 1));
	rb_workers_set_io_timeout(e.w, 1);
	uint64_t buf = galloc(&e.g, 4096);
	uint32_t segs[2] = {4096, 0};
	arm("any:hang:count=0");
	uint8_t *st = add(&e.g, RB_VIRTIO_BLK_T_IN, 0, buf, segs, true, NULL);
	publish(&e.g);
	struct timespec ts = {0, 50000000};
	nanosleep(&ts, NULL);
	double t0 = now_s();
	CHECK_EQ_U64(rb_disk_queue_stop(e.d, 0), 1);
	CHECK(now_s() - t0 < 4.0);
	CHECK_EQ_U64(*st, RB_VIRTIO_BLK_S_IOERR);
	arm("");
	/* Started again, it serves. */
	struct rb_virtq vq;
	REQUIRE(rb_virtq_init(&vq, QSIZE, e.g.desc, e.g.avail, e.g.used, 1, false, false, xlate,
			      &e.g) == 0);
	e.g.used_seen = 1;
	REQUIRE(rb_disk_queue_start(e.d, 0, &vq, e.g.kick, e.g.call) == 0);
	CHECK_EQ_U64(run1(&e.g, RB_VIRTIO_BLK_T_IN, 0, buf, 4096, true), RB_VIRTIO_BLK_S_OK);
	env_down(&e);
}

/* 0: never cancel (the I/O is left to complete; here the pipe is
 * written... never, so the test only checks it is still in flight). */
TEST(io_timeout_zero_never_cancels)
{
	struct env e;
	REQUIRE(env_up(&e, RB_DISK_CACHE_BUFFERED, 1));
	rb_workers_set_io_timeout(e.w, 0);
	uint64_t buf = galloc(&e.g, 4096);
	arm("read:hang");
	uint32_t segs[2] = {4096, 0};
	uint8_t *st = add(&e.g, RB_VIRTIO_BLK_T_IN, 0, buf, segs, true, NULL);
	publish(&e.g);
	struct timespec ts = {2, 500000000};
	nanosleep(&ts, NULL);
	CHECK_EQ_U64(*st, 0xff);
	/* Let it go: the timeout back on, the watchdog ends it. */
	rb_workers_set_io_timeout(e.w, 1);
	REQUIRE(wait_used(&e.g, 1));
	CHECK_EQ_U64(*st, RB_VIRTIO_BLK_S_IOERR);
	env_down(&e);
}

TEST_MAIN()
