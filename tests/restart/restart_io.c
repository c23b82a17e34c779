/* SPDX-License-Identifier: MIT */
/*
 * restart_io: a librosen client that keeps writing while rosenbridged is
 * killed and restarted under it (tests/restart/test_restart_librosen.py).
 *
 *   restart_io SOCK|URI STOP_FILE CTRL_OFF BASE LEN WRITERS [PROGS_DIR]
 *
 * SOCK is a vhost-user socket; a URI (kernel:/dev/virtio-ndp/vndpa, in a
 * guest) names any librosen device.  STOP_FILE "-": stop once the sector
 * at CTRL_OFF starts with "STOP" (what a host can write into a guest's
 * disk image).  "restart_io: running" is printed once the program is
 * loaded and the writers started.
 * Writer w (a thread with queue w) owns [BASE + w*LEN, +LEN), cut into
 * blocks of mixed sizes, and writes generation after generation of
 * numbered, generation-stamped blocks (tests/e2e/lib/stamp.py: the layout
 * guest/restartcheck.c writes) with up to 8 requests in flight, completed
 * in any order; after each generation it reads its region back (8 in
 * flight too) and checks every sector.  Once STOP_FILE exists it writes its
 * done record at CTRL_OFF + 512 * (1 + w) and ends.  With PROGS_DIR a last
 * thread (queue WRITERS) loads cq_sum from ndp_progs.o ONCE and runs it
 * with that handle over and over (synchronous and asynchronous READ_NDs)
 * over 32 blocks it wrote first, checking the sum: after each restart the
 * program is gone and librosen must load it again by itself.  Any error
 * ends the program with status 1 and a line saying what.
 */
#include <rosen/guest.h>
#include <rosen/virtio_ndp.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SECTOR 512u
#define MAGIC 0x5452545352425221ull
#define DONE_MAGIC 0x454e4f4453524252ull
#define QD 8u
#define MAX_BLOCK (128u * 1024)
#define NDP_SECTOR 4096u /* 2 MiB */
#define NDP_BLOCKS 32u

static const uint32_t sizes[] = {4096, 1024, 65536, 8192, 512, 131072, 16384, 2048, 32768, 12288};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static struct rb_guest_dev *dev;
static const char *stop_file;
static uint64_t ctrl, base, len;
static atomic_int failed;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("restart_io: FAIL %s\n", msg);
	atomic_store(&failed, 1);
}

static bool kernel_uri;

/* Queue q's thread: time to stop?  (The control sector is read on q.) */
static bool stopping(unsigned q, uint8_t *sector)
{
	if (atomic_load(&failed))
		return true;
	if (strcmp(stop_file, "-"))
		return access(stop_file, F_OK) == 0;
	if (rb_guest_read(dev, q, sector, ctrl, SECTOR)) {
		fail("queue %u: control sector: %s", q, rb_guest_errmsg());
		return true;
	}
	return !memcmp(sector, "STOP", 4);
}

static void stamp(uint8_t *p, uint32_t w, uint32_t k, uint32_t g, uint64_t off, uint32_t n)
{
	for (uint32_t j = 0; j < n / SECTOR; j++) {
		uint8_t *s = p + (size_t)j * SECTOR;
		uint64_t magic = MAGIC;
		memcpy(s, &magic, 8);
		memcpy(s + 8, &w, 4);
		memcpy(s + 12, &k, 4);
		memcpy(s + 16, &g, 4);
		memcpy(s + 20, &j, 4);
		memcpy(s + 24, &off, 8);
		for (uint32_t i = 32; i < SECTOR; i++)
			s[i] = (uint8_t)(w * 31 + k * 7 + g * 13 + j + i);
	}
}

struct block {
	uint64_t off;
	uint32_t len;
};

/* Runs one pass (writes or reads) over every block, QD in flight. */
static bool pass(unsigned q, uint32_t w, uint32_t g, const struct block *b, uint32_t n,
		 uint8_t *const *buf, bool write, uint8_t *want)
{
	unsigned next = 0, done = 0, inflight = 0;
	int slot_of[QD];
	bool busy[QD] = {false};

	for (unsigned i = 0; i < QD; i++)
		slot_of[i] = -1;
	while (done < n) {
		while (next < n && inflight < QD) {
			unsigned s = 0;
			while (busy[s])
				s++;
			if (write)
				stamp(buf[s], w, next, g, b[next].off, b[next].len);
			int rc = rb_guest_submit(dev, q, write ? RB_GUEST_OP_WRITE : RB_GUEST_OP_READ, buf[s],
						 b[next].off, b[next].len, (void *)(uintptr_t)s);
			if (rc) {
				fail("writer %u gen %u: submit: %s", w, g, rb_guest_errmsg());
				return false;
			}
			busy[s] = true;
			slot_of[s] = (int)next++;
			inflight++;
		}
		struct rb_guest_cpl cpl[QD];
		int m = rb_guest_wait(dev, q, cpl, QD, 60000);
		if (m < 0) {
			fail("writer %u gen %u: wait: %s", w, g, rb_guest_errmsg());
			return false;
		}
		for (int i = 0; i < m; i++) {
			unsigned s = (unsigned)(uintptr_t)cpl[i].user;
			unsigned k = (unsigned)slot_of[s];
			if (cpl[i].status) {
				fail("writer %u gen %u block %u: %s failed: %s", w, g, k, write ? "write" : "read",
				     strerror(-cpl[i].status));
				return false;
			}
			if (!write) {
				stamp(want, w, k, g, b[k].off, b[k].len);
				if (memcmp(buf[s], want, b[k].len)) {
					uint32_t got;
					memcpy(&got, buf[s] + 16, 4);
					fail("writer %u gen %u block %u (%u bytes at %" PRIu64 "): acknowledged data lost (reads generation %u)",
					     w, g, k, b[k].len, b[k].off, got);
					return false;
				}
			}
			busy[s] = false;
			inflight--;
			done++;
		}
	}
	return true;
}

static void *writer_run(uint32_t w, struct block *b, uint8_t **buf, uint8_t *want);

static void *writer(void *arg)
{
	uint32_t w = (uint32_t)(uintptr_t)arg;
	struct block *b = calloc(len / SECTOR, sizeof(*b));
	uint8_t *buf[QD], *want = malloc(MAX_BLOCK);

	for (unsigned i = 0; i < QD; i++)
		buf[i] = rb_guest_dma_alloc(dev, MAX_BLOCK);
	if (!b || !want || !buf[QD - 1])
		fail("writer %u: out of memory", w);
	else
		writer_run(w, b, buf, want);
	for (unsigned i = 0; i < QD; i++)
		rb_guest_dma_free(dev, buf[i]);
	free(b);
	free(want);
	return NULL;
}

static void *writer_run(uint32_t w, struct block *b, uint8_t **buf, uint8_t *want)
{
	uint32_t n = 0, g = 0;
	uint64_t at = 0, my = base + (uint64_t)w * len, writes = 0;

	for (; n < len / SECTOR; n++) {
		uint32_t sz = sizes[(n + w * 3) % NSIZES];
		if (at + sz > len)
			break;
		b[n].off = my + at;
		b[n].len = sz;
		at += sz;
	}
	do {
		g++;
		if (!pass(w, w, g, b, n, buf, true, NULL) || !pass(w, w, g, b, n, buf, false, want))
			return NULL;
		writes += n;
	} while (!stopping(w, buf[0]));
	uint64_t rec[SECTOR / 8] = {DONE_MAGIC, ((uint64_t)g << 32) | w, n, writes};
	memcpy(buf[0], rec, SECTOR);
	if (rb_guest_write(dev, w, buf[0], ctrl + SECTOR * (1 + w), SECTOR)) {
		fail("writer %u: done record: %s", w, rb_guest_errmsg());
		return NULL;
	}
	printf("restart_io: writer %u: %u generations of %u blocks, %" PRIu64 " writes\n", w, g, n, writes);
	return NULL;
}

/* ---- the NDP thread: one LOAD, then READ_NDs across restarts -------------- */

struct ndp_arg {
	unsigned q;
	const char *dir;
};

static void *ndp_thread(void *arg)
{
	struct ndp_arg *a = arg;
	char path[512];
	snprintf(path, sizeof(path), "%s/ndp_progs.o", a->dir);
	FILE *f = fopen(path, "rb");
	static uint8_t elf[1 << 20];
	size_t elen = f ? fread(elf, 1, sizeof(elf), f) : 0;
	if (f)
		fclose(f);
	if (!elen) {
		fail("ndp: cannot read %s", path);
		return NULL;
	}
	uint8_t *blk = rb_guest_dma_alloc(dev, NDP_BLOCKS * SECTOR);
	uint64_t want = 0;
	for (unsigned i = 0; i < NDP_BLOCKS * SECTOR; i++) {
		blk[i] = (uint8_t)(i * 7 + i / SECTOR);
		want += blk[i];
	}
	if (rb_guest_write(dev, a->q, blk, (uint64_t)NDP_SECTOR * SECTOR, NDP_BLOCKS * SECTOR)) {
		fail("ndp: write: %s", rb_guest_errmsg());
		return NULL;
	}
	char log[1024];
	uint32_t h;
	if (rb_guest_ndp_load(dev, a->q, elf, elen, "cq_sum", RB_NDP_PROG_CQ, &h, log, sizeof(log))) {
		fail("ndp: LOAD: %s", rb_guest_errmsg());
		return NULL;
	}
	printf("restart_io: running\n");
	unsigned runs = 0;
	do {
		struct {
			uint32_t nblocks, stride;
		} meta = {NDP_BLOCKS, 1};
		uint64_t scratch[2] = {0, 0};
		struct rb_guest_nd nd = {.handle = h, .offset = (uint64_t)NDP_SECTOR * SECTOR,
					 .io_len = SECTOR, .meta = &meta, .meta_len = sizeof(meta),
					 .scratch = scratch, .scratch_len = sizeof(scratch)};
		struct rb_guest_nd_result r = {0};
		int rc;
		/* Asynchronous STATE_LOST is retried by librosen on rings it
		 * drives; a kernel driver's completions come as they are. */
		if (runs % 2 == 0 || kernel_uri) {
			rc = rb_guest_read_nd(dev, a->q, &nd, &r);
		} else {
			struct rb_guest_cpl c;
			rc = rb_guest_submit_nd(dev, a->q, false, &nd, &r, NULL);
			if (rc == 0) {
				rc = rb_guest_wait(dev, a->q, &c, 1, 60000);
				rc = rc < 0 ? rc : c.status;
			}
		}
		if (rc) {
			fail("ndp: READ_ND %u (%s): %s", runs, runs % 2 ? "async" : "sync", rb_guest_errmsg());
			return NULL;
		}
		/* Run from its start however often the device restarted in
		 * the middle: the sum is whole or the status says why not. */
		if (r.status != RB_NDP_S_OK || scratch[0] != want || scratch[1] != NDP_BLOCKS) {
			fail("ndp: READ_ND %u (%s): status %s, sum %" PRIu64 " of %" PRIu64 " blocks (want %" PRIu64 " of %u)",
			     runs, runs % 2 ? "async" : "sync", rb_ndp_status_name(r.status), scratch[0],
			     scratch[1], want, NDP_BLOCKS);
			return NULL;
		}
		runs++;
		usleep(20000);
	} while (!stopping(a->q, blk));
	if (rb_guest_ndp_unload(dev, a->q, h))
		fail("ndp: UNLOAD of the handle first given: %s", rb_guest_errmsg());
	printf("restart_io: ndp: %u READ_NDs with handle %u, all right\n", runs, h);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: restart_io SOCK STOP_FILE CTRL_OFF BASE LEN WRITERS [PROGS_DIR]\n");
		return 2;
	}
	char uri[512];
	if (strchr(argv[1], ':'))
		snprintf(uri, sizeof(uri), "%s", argv[1]);
	else
		snprintf(uri, sizeof(uri), "vhost-user:%s", argv[1]);
	kernel_uri = !strncmp(uri, "kernel:", 7);
	stop_file = argv[2];
	ctrl = strtoull(argv[3], NULL, 0);
	base = strtoull(argv[4], NULL, 0);
	len = strtoull(argv[5], NULL, 0);
	unsigned nw = (unsigned)atoi(argv[6]);
	const char *progs = argc > 7 ? argv[7] : NULL;
	struct rb_guest_opts o = {.num_queues = nw + (progs ? 1 : 0), .queue_size = 64,
				  .notify = RB_GUEST_NOTIFY_EVENT,
				  .dma_bytes = (kernel_uri ? 4u : 32u) << 20, .reconnect_ms = 20000};
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (rb_guest_open(uri, &o, &dev)) {
		printf("restart_io: FAIL open: %s\n", rb_guest_errmsg());
		return 1;
	}
	pthread_t t[17];
	struct ndp_arg na = {nw, progs};
	for (unsigned w = 0; w < nw; w++)
		pthread_create(&t[w], NULL, writer, (void *)(uintptr_t)w);
	if (progs)
		pthread_create(&t[nw], NULL, ndp_thread, &na);
	else
		printf("restart_io: running\n");
	for (unsigned w = 0; w < nw + (progs ? 1 : 0); w++)
		pthread_join(t[w], NULL);
	rb_guest_close(dev);
	printf("restart_io: %s\n", atomic_load(&failed) ? "FAIL" : "ok");
	return atomic_load(&failed) ? 1 : 0;
}
