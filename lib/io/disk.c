/* SPDX-License-Identifier: MIT */
/*
 * Per-VM disk state: opening the image (file or block device, direct or
 * buffered, locked against a second daemon), the virtio-blk features and
 * config space it implies, and starting/stopping its queues on workers.
 * Everything a later issue adds per VM (programs, throttle group) hangs here.
 */
#include "io_internal.h"

#include <rosen/log.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per request */

/* Smallest buffer/offset alignment O_DIRECT accepts on this file. */
static unsigned probe_dio_align(int fd)
{
	uint8_t *buf = aligned_alloc(4096, 8192);
	unsigned align = 4096;

	if (!buf)
		return align;
	/* A 512-aligned (but not 4096-aligned) read either works or EINVALs. */
	ssize_t n = pread(fd, buf + 512, 512, 0);
	if (n >= 0)
		align = 512;
	free(buf);
	return align;
}

static void make_serial(struct rb_disk *d)
{
	const char *base = strrchr(d->path, '/');

	base = base ? base + 1 : d->path;
	/* GET_ID: up to 20 bytes, NUL-padded when shorter. */
	size_t n = strlen(base);
	memset(d->serial, 0, sizeof(d->serial));
	memcpy(d->serial, base, n < sizeof(d->serial) ? n : sizeof(d->serial));
}

/* A queue's request slots have pages of their own (zeroed), so stopping
 * the queue gives them back to the system, not to the heap. */
static int reqs_alloc(struct rb_io_queue *q, unsigned n)
{
	void *p = mmap(NULL, (size_t)n * sizeof(*q->reqs), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		q->reqs = NULL;
		q->n_reqs = 0;
		return -ENOMEM;
	}
	q->reqs = p;
	q->n_reqs = n;
	return 0;
}

static void reqs_free(struct rb_io_queue *q)
{
	if (q->reqs)
		munmap(q->reqs, (size_t)q->n_reqs * sizeof(*q->reqs));
	q->reqs = NULL;
	q->n_reqs = 0;
}

/* The image's size now (regular file or block device); warns when it is
 * not whole sectors (the tail is not exposed). */
static int image_bytes(struct rb_disk *d, uint64_t *bytes, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(d->fd_buffered, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "disk %s: %s", d->path, strerror(e));
		return -e;
	}
	*bytes = (uint64_t)st.st_size;
	if (d->is_blockdev && ioctl(d->fd_buffered, BLKGETSIZE64, bytes) < 0) {
		int e = errno;
		snprintf(err, errlen, "disk %s: BLKGETSIZE64: %s", d->path, strerror(e));
		return -e;
	}
	if (*bytes % RB_VIRTIO_BLK_SECTOR)
		rb_warn(d->name, "%s is %llu bytes, not a multiple of 512: the last %llu bytes are not exposed",
			d->path, (unsigned long long)*bytes,
			(unsigned long long)(*bytes % RB_VIRTIO_BLK_SECTOR));
	return 0;
}

int rb_disk_open(const struct rb_disk_opts *o, struct rb_workers *workers, struct rb_disk **out,
		 char *err, size_t errlen)
{
	struct rb_disk *d;
	struct stat st;
	int flags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;

	*out = NULL;
	if (o->queues == 0 || o->queues > 16) {
		snprintf(err, errlen, "%s: %u queues (must be 1..16)", o->path, o->queues);
		return -EINVAL;
	}
	if (stat(o->path, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "disk %s: %s", o->path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "disk %s is not a regular file or block device", o->path);
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&d->log_limit.lock, NULL);
	snprintf(d->name, sizeof(d->name), "%s", o->name ? o->name : "disk");
	snprintf(d->path, sizeof(d->path), "%s", o->path);
	d->readonly = o->readonly;
	d->is_blockdev = S_ISBLK(st.st_mode);
	d->fd = d->fd_buffered = -1;
	d->nqueues = o->queues;

	d->fd_buffered = open(o->path, flags);
	if (d->fd_buffered < 0) {
		int e = errno;
		snprintf(err, errlen, "disk %s: %s", o->path, strerror(e));
		free(d);
		return -e;
	}
	/* Two daemons writing one image would corrupt it. */
	if (flock(d->fd_buffered, (o->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		int e = errno;
		snprintf(err, errlen, "disk %s is in use by another process (%s)", o->path,
			 e == EWOULDBLOCK ? "locked" : strerror(e));
		close(d->fd_buffered);
		free(d);
		return -EBUSY;
	}
	if (o->cache == RB_DISK_CACHE_DIRECT) {
		d->fd = open(o->path, flags | O_DIRECT);
		if (d->fd < 0 && errno == EINVAL) {
			rb_warn(d->name, "%s: the filesystem has no O_DIRECT (tmpfs?); serving it through the page cache",
				o->path);
		} else if (d->fd < 0) {
			int e = errno;
			snprintf(err, errlen, "disk %s: %s", o->path, strerror(e));
			close(d->fd_buffered);
			free(d);
			return -e;
		} else {
			d->direct = true;
		}
	}
	if (!d->direct)
		d->fd = d->fd_buffered;
	d->dio_align = d->direct ? probe_dio_align(d->fd) : 1;

	uint64_t bytes;
	int rc = image_bytes(d, &bytes, err, errlen);
	if (rc) {
		rb_disk_free(d);
		return rc;
	}
	atomic_init(&d->capacity_sectors, bytes / RB_VIRTIO_BLK_SECTOR);
	d->cache = o->cache;
	make_serial(d);
	d->progs = rb_ndp_table_new(d->name);
	if (!d->progs) {
		snprintf(err, errlen, "out of memory");
		rb_disk_free(d);
		return -ENOMEM;
	}

	d->uncharged_program_io = o->uncharged_program_io;
	atomic_init(&d->inline_reads, !o->no_inline_reads);
	d->ndp_inflight = o->ndp_inflight ? o->ndp_inflight : RB_IO_NDP_INFLIGHT;
	if (d->ndp_inflight > RB_IO_NDP_INFLIGHT_MAX)
		d->ndp_inflight = RB_IO_NDP_INFLIGHT_MAX;
	/* Every disk is in a throttle group (its own, named after it, unless
	 * it names one), limits or not, so limits can be given at run time;
	 * a group without any costs the I/O path one relaxed load. */
	if (o->qos) {
		static const struct rb_qos_limits none;
		const struct rb_qos_limits *lim0 = o->throttle ? o->throttle : &none;
		int rc = rb_qos_disk_open(o->qos, d->name, lim0, rb_io_now_ns(), &d->qos, err, errlen);
		if (rc) {
			rb_disk_free(d);
			return rc;
		}
	}
	if (d->qos && o->throttle && (rb_qos_limits_any(o->throttle) || o->throttle->group[0])) {
		char lim[256];
		struct rb_qos_limits g;
		rb_qos_get_limits(rb_qos_disk_group(d->qos), &g);
		rb_qos_limits_format(&g, lim, sizeof(lim));
		rb_info(d->name, "throttle group '%s': %s%s", rb_qos_group_name(rb_qos_disk_group(d->qos)),
			lim[0] ? lim : "no limits", d->uncharged_program_io ? " (program I/O uncharged)" : "");
	}

	for (unsigned i = 0; i < d->nqueues; i++) {
		struct rb_io_queue *q = &d->queues[i];
		q->disk = d;
		q->index = i;
		q->kick_fd = q->call_fd = -1;
		q->worker = rb_workers_pick(workers);
	}
	rb_info(d->name, "disk %s: %llu sectors (%llu MiB), %s, %s, %u queue%s", o->path,
		(unsigned long long)rb_io_capacity(d),
		(unsigned long long)(rb_io_capacity(d) >> 11),
		d->readonly ? "read-only" : "read-write",
		d->direct ? "O_DIRECT" : "page cache", d->nqueues, d->nqueues == 1 ? "" : "s");
	*out = d;
	return 0;
}

void rb_disk_free(struct rb_disk *d)
{
	if (!d)
		return;
	for (unsigned i = 0; i < d->nqueues; i++) {
		rb_ndp_io_free_cache(&d->queues[i]);
		reqs_free(&d->queues[i]);
	}
	rb_ndp_table_free(d->progs);
	if (d->qos)
		rb_qos_disk_close(d->qos);
	if (d->fd >= 0 && d->fd != d->fd_buffered)
		close(d->fd);
	if (d->fd_buffered >= 0)
		close(d->fd_buffered);
	pthread_mutex_destroy(&d->log_limit.lock);
	free(d);
}

uint64_t rb_disk_capacity_sectors(const struct rb_disk *d)
{
	return rb_io_capacity(d);
}

int rb_disk_resize(struct rb_disk *d, uint64_t *old_sectors, uint64_t *new_sectors, char *err,
		   size_t errlen)
{
	uint64_t bytes;
	int rc = image_bytes(d, &bytes, err, errlen);

	if (rc)
		return rc;
	*old_sectors = rb_io_capacity(d);
	*new_sectors = bytes / RB_VIRTIO_BLK_SECTOR;
	/* Requests already past their range check finish as they were; a
	 * request checked from now on sees the new size. */
	atomic_store_explicit(&d->capacity_sectors, *new_sectors, memory_order_relaxed);
	if (*new_sectors != *old_sectors)
		rb_info(d->name, "disk %s resized: %llu -> %llu sectors (%llu MiB)", d->path,
			(unsigned long long)*old_sectors, (unsigned long long)*new_sectors,
			(unsigned long long)(*new_sectors >> 11));
	return 0;
}

const char *rb_disk_name(const struct rb_disk *d)
{
	return d->name;
}

const char *rb_disk_path(const struct rb_disk *d)
{
	return d->path;
}

bool rb_disk_readonly(const struct rb_disk *d)
{
	return d->readonly;
}

enum rb_disk_cache rb_disk_cache_mode(const struct rb_disk *d)
{
	return d->cache;
}

struct rb_ndp_table *rb_disk_programs(struct rb_disk *d)
{
	return d->progs;
}

const char *rb_disk_throttle_group(const struct rb_disk *d)
{
	return d->qos ? rb_qos_group_name(rb_qos_disk_group(d->qos)) : NULL;
}

unsigned rb_disk_num_queues(const struct rb_disk *d)
{
	return d->nqueues;
}

bool rb_disk_is_direct(const struct rb_disk *d)
{
	return d->direct;
}

uint64_t rb_disk_blk_features(const struct rb_disk *d)
{
	uint64_t f = (1ull << RB_VIRTIO_BLK_F_SEG_MAX) | (1ull << RB_VIRTIO_BLK_F_BLK_SIZE) |
		     (1ull << RB_VIRTIO_BLK_F_FLUSH) | (1ull << RB_VIRTIO_BLK_F_MQ);

	if (d->readonly)
		f |= 1ull << RB_VIRTIO_BLK_F_RO;
	else
		f |= (1ull << RB_VIRTIO_BLK_F_DISCARD) | (1ull << RB_VIRTIO_BLK_F_WRITE_ZEROES);
	return f;
}

void rb_disk_blk_config(const struct rb_disk *d, struct rb_virtio_blk_config *c)
{
	memset(c, 0, sizeof(*c));
	c->capacity = rb_io_capacity(d);
	c->seg_max = RB_VIRTQ_MAX_SEGS - 2; /* header and status take two */
	c->blk_size = RB_VIRTIO_BLK_SECTOR;
	c->num_queues = (uint16_t)d->nqueues;
	c->max_discard_sectors = MAX_DISCARD_SECTORS;
	c->max_discard_seg = 1;
	c->discard_sector_alignment = 1;
	c->max_write_zeroes_sectors = MAX_DISCARD_SECTORS;
	c->max_write_zeroes_seg = 1;
	c->write_zeroes_may_unmap = 1;
}

int rb_disk_queue_start(struct rb_disk *d, unsigned qi, const struct rb_virtq *vq, int kick_fd,
			int call_fd)
{
	struct rb_io_queue *q;

	if (qi >= d->nqueues)
		return -EINVAL;
	q = &d->queues[qi];
	if (q->active)
		return -EBUSY;
	if (q->n_reqs != vq->size) {
		rb_ndp_io_free_cache(q);
		reqs_free(q);
		if (reqs_alloc(q, vq->size))
			return -ENOMEM;
	}
	q->free = NULL;
	for (unsigned i = 0; i < q->n_reqs; i++) {
		q->reqs[i].q = q;
		q->reqs[i].ndp = NULL;
		q->reqs[i].next_free = q->free;
		q->free = &q->reqs[i];
	}
	q->vq = *vq;
	q->kick_fd = kick_fd;
	q->call_fd = call_fd;
	q->stopping = false;
	q->need_notify = false;
	q->broken_logged = false;
	q->inflight = 0;
	/* A drained queue has no writes or flushes in flight. */
	q->wr_head = q->wr_tail = NULL;
	q->fl_wait_head = q->fl_wait_tail = NULL;
	q->fl_ready_head = q->fl_ready_tail = NULL;
	q->fl_leader = q->fl_riders = NULL;
	return rb_io_queue_attach(q);
}

uint16_t rb_disk_queue_stop(struct rb_disk *d, unsigned qi)
{
	struct rb_io_queue *q;

	if (qi >= d->nqueues)
		return 0;
	q = &d->queues[qi];
	if (!q->active)
		return q->vq.last_avail;
	q->handed_over = 0;
	rb_io_queue_detach(q);
	if (q->handed_over)
		rb_info(d->name, "queue %u: %u NDP request%s left in flight for the next daemon (rerun from their start)",
			qi, q->handed_over, q->handed_over == 1 ? "" : "s");
	/* Drained (and its NDP pool freed): nothing of the queue's requests
	 * is in flight.  Their slots (~4.5 KiB each: a 32768-entry ring holds
	 * 150 MiB) go now, not with the disk: a frontend that leaves, or
	 * vanishes, leaves nothing behind.  The next start allocates them. */
	reqs_free(q);
	q->free = NULL;
	return q->vq.last_avail;
}

void rb_disk_handover(struct rb_disk *d)
{
	atomic_store(&d->handover, true);
}

void rb_disk_stats(const struct rb_disk *d, struct rb_disk_stats *s)
{
	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; i < d->nqueues; i++) {
		const struct rb_io_qstats *q = &d->queues[i].st;
#define LOAD(x) atomic_load_explicit(&q->x, memory_order_relaxed)
		s->reads += LOAD(reads);
		s->writes += LOAD(writes);
		s->flushes += LOAD(flushes);
		s->discards += LOAD(discards);
		s->write_zeroes += LOAD(wz);
		s->get_ids += LOAD(ids);
		s->bytes_read += LOAD(bytes_read);
		s->bytes_written += LOAD(bytes_written);
		s->errors += LOAD(errors);
		s->bad_chains += LOAD(bad_chains);
		s->guest_ios += LOAD(guest_ios);
		s->program_ios += LOAD(prog_ios);
		s->program_bytes += LOAD(prog_bytes);
		s->ndp_requests += LOAD(ndp_requests);
		s->ndp_hops += LOAD(ndp_hops);
#undef LOAD
	}
	s->throttled = d->qos && rb_qos_disk_limited(d->qos);
	s->throttle_delayed = s->throttle_wait_ns = 0;
	s->throttle_group[0] = 0;
	for (int i = 0; i < 6; i++)
		s->bucket_level[i] = -1;
	if (d->qos) {
		struct rb_qos_counters c;
		struct rb_qos_group_stats g;
		rb_qos_disk_stats(d->qos, &c);
		s->throttle_delayed = c.delayed;
		s->throttle_wait_ns = c.parked_ns;
		rb_qos_group_stats(rb_qos_disk_group(d->qos), rb_io_now_ns(), &g);
		for (int i = 0; i < 6 && i < RB_QOS_NR_BUCKETS; i++)
			s->bucket_level[i] = g.size[i] > 0 ? g.level[i] : -1;
		snprintf(s->throttle_group, sizeof(s->throttle_group), "%s",
			 rb_qos_group_name(rb_qos_disk_group(d->qos)));
	}
}
