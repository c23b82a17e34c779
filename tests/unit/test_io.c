/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/io: opening disks (errors a user meets), the virtio-blk
 * features and config a disk implies, and requests served end to end by a
 * real worker thread on a real io_uring, with the test playing the driver
 * on rings in ordinary memory.
 */
#include <rosen/io.h>
#include <rosen/virtio_ndp.h>
#include <rosen/virtio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/io/io_internal.h"
#include "harness.h"

static char err[512];

static char *temp_image(size_t bytes, uint8_t fill)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/rosen-io-test-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	uint8_t *buf = malloc(bytes ? bytes : 1);
	memset(buf, fill, bytes);
	if (write(fd, buf, bytes) != (ssize_t)bytes) {
		free(buf);
		close(fd);
		return NULL;
	}
	free(buf);
	close(fd);
	return path;
}

static struct rb_workers *workers(enum rb_io_notify mode)
{
	struct rb_workers *w = NULL;
	if (rb_workers_new(1, mode, &w, err, sizeof(err)))
		fprintf(stderr, "    %s\n", err);
	return w;
}

/* ---- opening ------------------------------------------------------------------ */

TEST(open_missing_disk_names_the_path)
{
	struct rb_workers *w = workers(RB_IO_POLL);
	struct rb_disk *d;
	struct rb_disk_opts o = {.path = "/nonexistent/disk.img", .queues = 1};
	REQUIRE(w);
	CHECK(rb_disk_open(&o, w, &d, err, sizeof(err)) == -ENOENT);
	CHECK_STR_CONTAINS(err, "/nonexistent/disk.img");
	rb_workers_free(w);
}

TEST(open_rejects_directories_and_bad_queue_counts)
{
	struct rb_workers *w = workers(RB_IO_POLL);
	struct rb_disk *d;
	struct rb_disk_opts o = {.path = "/tmp", .queues = 1};
	REQUIRE(w);
	CHECK(rb_disk_open(&o, w, &d, err, sizeof(err)) == -EINVAL);
	CHECK_STR_CONTAINS(err, "not a regular file or block device");
	char *img = temp_image(4096, 0);
	REQUIRE(img);
	o.path = img;
	o.queues = 0;
	CHECK(rb_disk_open(&o, w, &d, err, sizeof(err)) == -EINVAL);
	o.queues = 17;
	CHECK(rb_disk_open(&o, w, &d, err, sizeof(err)) == -EINVAL);
	unlink(img);
	rb_workers_free(w);
}

TEST(second_open_of_a_disk_in_use_is_refused)
{
	struct rb_workers *w = workers(RB_IO_POLL);
	struct rb_disk *a, *b;
	char *img = temp_image(8192, 0);
	REQUIRE(w && img);
	struct rb_disk_opts o = {.path = img, .queues = 1, .cache = RB_DISK_CACHE_BUFFERED};
	REQUIRE(rb_disk_open(&o, w, &a, err, sizeof(err)) == 0);
	CHECK(rb_disk_open(&o, w, &b, err, sizeof(err)) == -EBUSY);
	CHECK_STR_CONTAINS(err, "in use");
	rb_disk_free(a);
	CHECK(rb_disk_open(&o, w, &b, err, sizeof(err)) == 0);
	rb_disk_free(b);
	unlink(img);
	rb_workers_free(w);
}

TEST(capacity_exposes_whole_sectors_only)
{
	struct rb_workers *w = workers(RB_IO_POLL);
	struct rb_disk *d;
	char *img = temp_image(512 * 10 + 100, 0);
	REQUIRE(w && img);
	struct rb_disk_opts o = {.path = img, .queues = 2, .cache = RB_DISK_CACHE_BUFFERED};
	REQUIRE(rb_disk_open(&o, w, &d, err, sizeof(err)) == 0);
	CHECK_EQ_U64(rb_disk_capacity_sectors(d), 10);
	struct rb_virtio_blk_config c;
	rb_disk_blk_config(d, &c);
	CHECK_EQ_U64(c.capacity, 10);
	CHECK_EQ_U64(c.num_queues, 2);
	CHECK_EQ_U64(c.blk_size, 512);
	CHECK_EQ_U64(c.seg_max, RB_VIRTQ_MAX_SEGS - 2);
	CHECK_EQ_U64(c.max_discard_seg, 1);
	rb_disk_free(d);
	unlink(img);
	rb_workers_free(w);
}

TEST(readonly_disk_advertises_ro_and_no_discard)
{
	struct rb_workers *w = workers(RB_IO_POLL);
	struct rb_disk *d;
	char *img = temp_image(4096, 0);
	REQUIRE(w && img);
	struct rb_disk_opts o = {.path = img, .queues = 1, .readonly = true};
	REQUIRE(rb_disk_open(&o, w, &d, err, sizeof(err)) == 0);
	uint64_t f = rb_disk_blk_features(d);
	CHECK(f & (1ull << RB_VIRTIO_BLK_F_RO));
	CHECK(!(f & (1ull << RB_VIRTIO_BLK_F_DISCARD)));
	CHECK(!(f & (1ull << RB_VIRTIO_BLK_F_WRITE_ZEROES)));
	CHECK(f & (1ull << RB_VIRTIO_BLK_F_FLUSH));
	rb_disk_free(d);
	unlink(img);
	rb_workers_free(w);
}

/* ---- requests through a worker ------------------------------------------------- */

/* The test's "guest": one block of memory at guest-physical GPA_BASE. */
#define GPA_BASE 0x100000ull
#define MEM_SIZE (1u << 20)
#define QSIZE 16

struct guest {
	uint8_t *mem;
	struct rb_vring_desc *desc;
	struct rb_vring_avail *avail;
	struct rb_vring_used *used;
	uint16_t avail_idx, used_seen;
	uint64_t next_free; /* bump allocator inside mem */
	int kick, call;
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
	uint64_t off = (g->next_free + 4095) & ~4095ull;
	g->next_free = off + len;
	return GPA_BASE + off;
}

static void *gptr(struct guest *g, uint64_t gpa)
{
	return g->mem + (gpa - GPA_BASE);
}

static void guest_init(struct guest *g)
{
	memset(g, 0, sizeof(*g));
	g->mem = aligned_alloc(4096, MEM_SIZE);
	memset(g->mem, 0, MEM_SIZE);
	g->desc = gptr(g, galloc(g, rb_vring_desc_bytes(QSIZE)));
	g->avail = gptr(g, galloc(g, rb_vring_avail_bytes(QSIZE) + 2));
	g->used = gptr(g, galloc(g, rb_vring_used_bytes(QSIZE) + 2));
	g->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static void guest_fini(struct guest *g)
{
	free(g->mem);
	close(g->kick);
	close(g->call);
}

/* Submits a blk request: header, optional data (read or write), status. */
static uint8_t *submit(struct guest *g, uint32_t type, uint64_t sector, uint64_t data_gpa,
		       uint32_t data_len, bool data_writable)
{
	/* Three descriptors per request, never wrapping past the table. */
	uint16_t head = (uint16_t)((g->avail_idx % (QSIZE / 3)) * 3), d = head;
	uint64_t hdr_gpa = galloc(g, 16), st_gpa = galloc(g, 1);
	struct rb_virtio_blk_outhdr *h = gptr(g, hdr_gpa);

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	g->desc[d] = (struct rb_vring_desc){hdr_gpa, 16, RB_VRING_DESC_F_NEXT, (uint16_t)(d + 1)};
	if (data_len) {
		d++;
		g->desc[d] = (struct rb_vring_desc){data_gpa, data_len,
			RB_VRING_DESC_F_NEXT | (data_writable ? RB_VRING_DESC_F_WRITE : 0), (uint16_t)(d + 1)};
	}
	d++;
	g->desc[d] = (struct rb_vring_desc){st_gpa, 1, RB_VRING_DESC_F_WRITE, 0};
	*(uint8_t *)gptr(g, st_gpa) = 0xff;
	g->avail->ring[g->avail_idx % QSIZE] = head;
	__atomic_store_n(&g->avail->idx, (uint16_t)(g->avail_idx + 1), __ATOMIC_RELEASE);
	g->avail_idx++;
	eventfd_write(g->kick, 1);
	return gptr(g, st_gpa);
}

/* Waits until the device used `n` more requests; returns false on timeout. */
static bool wait_used(struct guest *g, uint16_t n)
{
	for (int i = 0; i < 5000; i++) {
		if ((uint16_t)(__atomic_load_n(&g->used->idx, __ATOMIC_ACQUIRE) - g->used_seen) >= n) {
			g->used_seen += n;
			return true;
		}
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return false;
}

static void run_requests(enum rb_io_notify mode)
{
	struct rb_workers *w = workers(mode);
	struct rb_disk *d;
	struct guest g;
	struct rb_virtq vq;
	char *img = temp_image(64 * 1024, 0xab);
	REQUIRE(w && img);
	struct rb_disk_opts o = {.path = img, .queues = 1, .cache = RB_DISK_CACHE_DIRECT};
	REQUIRE(rb_disk_open(&o, w, &d, err, sizeof(err)) == 0);
	guest_init(&g);
	REQUIRE(rb_virtq_init(&vq, QSIZE, g.desc, g.avail, g.used, 0, true, true, xlate, &g) == 0);
	REQUIRE(rb_disk_queue_start(d, 0, &vq, g.kick, g.call) == 0);

	/* Write 4 KiB at sector 8, read it back. */
	uint64_t buf = galloc(&g, 4096);
	for (int i = 0; i < 4096; i++)
		((uint8_t *)gptr(&g, buf))[i] = (uint8_t)(i * 7);
	uint8_t *st = submit(&g, RB_VIRTIO_BLK_T_OUT, 8, buf, 4096, false);
	REQUIRE(wait_used(&g, 1));
	CHECK_EQ_U64(*st, RB_VIRTIO_BLK_S_OK);
	uint64_t rbuf = galloc(&g, 4096);
	st = submit(&g, RB_VIRTIO_BLK_T_IN, 8, rbuf, 4096, true);
	REQUIRE(wait_used(&g, 1));
	CHECK_EQ_U64(*st, RB_VIRTIO_BLK_S_OK);
	CHECK(memcmp(gptr(&g, buf), gptr(&g, rbuf), 4096) == 0);
	/* The used element says how much the device wrote: data + status. */
	CHECK_EQ_U64(g.used->ring[1].len, 4097);

	/* The image holds it; the sectors around it are untouched. */
	int fd = open(img, O_RDONLY);
	uint8_t file[64 * 1024];
	REQUIRE(fd >= 0 && read(fd, file, sizeof(file)) == (ssize_t)sizeof(file));
	close(fd);
	CHECK(memcmp(file + 8 * 512, gptr(&g, buf), 4096) == 0);
	CHECK(file[8 * 512 - 1] == 0xab && file[8 * 512 + 4096] == 0xab);

	/* Past the end: IOERR and nothing written. */
	st = submit(&g, RB_VIRTIO_BLK_T_OUT, 127, buf, 1024, false);
	REQUIRE(wait_used(&g, 1));
	CHECK_EQ_U64(*st, RB_VIRTIO_BLK_S_IOERR);
	st = submit(&g, RB_VIRTIO_BLK_T_IN, UINT64_MAX / 256, rbuf, 512, true);
	REQUIRE(wait_used(&g, 1));
	CHECK_EQ_U64(*st, RB_VIRTIO_BLK_S_IOERR);

	/* Flush works; an unknown type is unsupported; GET_ID names the image. */
	st = submit(&g, RB_VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	REQUIRE(wait_used(&g, 1));
	CHECK_EQ_U64(*st, RB_VIRTIO_BLK_S_OK);
	st = submit(&g, 77, 0, 0, 0, false);
	REQUIRE(wait_used(&g, 1));
	CHECK_EQ_U64(*st, RB_VIRTIO_BLK_S_UNSUPP);
	uint64_t idbuf = galloc(&g, 20);
	st = submit(&g, RB_VIRTIO_BLK_T_GET_ID, 0, idbuf, 20, true);
	REQUIRE(wait_used(&g, 1));
	CHECK_EQ_U64(*st, RB_VIRTIO_BLK_S_OK);
	CHECK(strncmp(gptr(&g, idbuf), strrchr(img, '/') + 1, 20) == 0);

	/* A misaligned buffer still works (page cache path under O_DIRECT). */
	uint64_t odd = galloc(&g, 1024) + 3;
	st = submit(&g, RB_VIRTIO_BLK_T_IN, 8, odd, 512, true);
	REQUIRE(wait_used(&g, 1));
	CHECK_EQ_U64(*st, RB_VIRTIO_BLK_S_OK);
	CHECK(memcmp(gptr(&g, odd), gptr(&g, buf), 512) == 0);

	/* Stopping returns the next avail index to resume from. */
	CHECK_EQ_U64(rb_disk_queue_stop(d, 0), g.avail_idx);
	struct rb_disk_stats s;
	rb_disk_stats(d, &s);
	CHECK_EQ_U64(s.writes, 1);
	CHECK_EQ_U64(s.reads, 2);
	CHECK_EQ_U64(s.errors, 3);

	/* Metrics: each request once, by type and outcome; the histogram of
	 * each type holds as many as its counters; bytes as transferred. */
	struct rb_disk_metrics *m = calloc(1, sizeof(*m));
	REQUIRE(m);
	rb_disk_metrics(d, m);
	CHECK_EQ_U64(m->requests[RB_IO_RT_WRITE][RB_IO_RS_OK], 1);
	CHECK_EQ_U64(m->requests[RB_IO_RT_WRITE][RB_IO_RS_IOERR], 1);
	CHECK_EQ_U64(m->requests[RB_IO_RT_READ][RB_IO_RS_OK], 2);
	CHECK_EQ_U64(m->requests[RB_IO_RT_READ][RB_IO_RS_IOERR], 1);
	CHECK_EQ_U64(m->requests[RB_IO_RT_FLUSH][RB_IO_RS_OK], 1);
	CHECK_EQ_U64(m->requests[RB_IO_RT_GET_ID][RB_IO_RS_OK], 1);
	CHECK_EQ_U64(m->requests[RB_IO_RT_OTHER][RB_IO_RS_UNSUPP], 1);
	uint64_t all = 0;
	for (unsigned t = 0; t < RB_IO_NR_RTYPES; t++) {
		uint64_t n = 0, h = 0;
		for (unsigned k = 0; k < RB_IO_NR_RSTATUS; k++)
			n += m->requests[t][k];
		for (unsigned b = 0; b <= RB_IO_LAT_BUCKETS; b++)
			h += m->latency[t][b];
		CHECK_EQ_U64(h, n);
		CHECK(n == 0 || m->latency_sum_ns[t] > 0);
		all += n;
	}
	CHECK_EQ_U64(all, g.avail_idx);
	CHECK_EQ_U64(m->bytes_read, 4096 + 512);
	CHECK_EQ_U64(m->bytes_written, 4096);
	CHECK_EQ_U64(m->inflight, 0);
	CHECK_EQ_U64(rb_workers_count(w), 1);
	CHECK(rb_workers_busy_ns(w, 0) > 0);
	free(m);
	if (mode == RB_IO_EVENT) {
		eventfd_t v = 0;
		CHECK(eventfd_read(g.call, &v) == 0 && v > 0); /* the driver was interrupted */
	}
	rb_disk_free(d);
	guest_fini(&g);
	unlink(img);
	rb_workers_free(w);
}

TEST(metrics_names_and_latency_buckets_are_fixed)
{
	CHECK(strcmp(rb_io_rtype_name(RB_IO_RT_READ), "read") == 0);
	CHECK(strcmp(rb_io_rtype_name(RB_IO_RT_WRITE_ZEROES), "write_zeroes") == 0);
	CHECK(strcmp(rb_io_rtype_name(RB_IO_RT_READ_ND), "read_nd") == 0);
	CHECK(strcmp(rb_io_rtype_name(RB_IO_RT_OTHER), "other") == 0);
	CHECK(strcmp(rb_io_rstatus_name(RB_IO_RS_IOERR), "ioerr") == 0);
	CHECK(strcmp(rb_io_rstatus_name(RB_IO_RS_MALFORMED), "malformed") == 0);
	CHECK(strcmp(rb_io_rstatus_name(RB_IO_RS_NDP + RB_NDP_S_HOP_LIMIT - 1), "hop-limit") == 0);
	CHECK(strcmp(rb_io_rstatus_name(RB_IO_NR_RSTATUS - 1), "no-gpu") == 0);
	CHECK(strcmp(rb_io_rtype_name(RB_IO_RT_GPU_SUM), "gpu_sum") == 0);
	CHECK_EQ_U64(rb_io_lat_bound_ns[0], 10000);
	CHECK_EQ_U64(rb_io_lat_bound_ns[RB_IO_LAT_BUCKETS - 1], 10000000000ull);
	for (unsigned b = 1; b < RB_IO_LAT_BUCKETS; b++)
		CHECK(rb_io_lat_bound_ns[b] > rb_io_lat_bound_ns[b - 1]);
}

TEST(latency_bucket_agrees_with_a_linear_search)
{
	uint64_t probes[200];
	unsigned n = 0;

	for (unsigned b = 0; b < RB_IO_LAT_BUCKETS; b++) {
		probes[n++] = rb_io_lat_bound_ns[b] - 1;
		probes[n++] = rb_io_lat_bound_ns[b];
		probes[n++] = rb_io_lat_bound_ns[b] + 1;
	}
	for (unsigned k = 0; k < 64; k++)
		probes[n++] = 1ull << k;
	probes[n++] = 0;
	probes[n++] = UINT64_MAX;
	for (unsigned i = 0; i < n; i++) {
		unsigned lin = 0;
		while (lin < RB_IO_LAT_BUCKETS && probes[i] > rb_io_lat_bound_ns[lin])
			lin++;
		CHECK_EQ_U64(rb_io_lat_bucket(probes[i]), lin);
	}
}

TEST(requests_are_served_by_a_polling_worker)
{
	run_requests(RB_IO_POLL);
}

TEST(requests_are_served_by_an_event_driven_worker)
{
	run_requests(RB_IO_EVENT);
}

TEST_MAIN()
