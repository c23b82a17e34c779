/* SPDX-License-Identifier: MIT */
/*
 * librosen, transport-independent part: the public API, DMA memory,
 * virtio-blk requests on driver-side rings, completions.  Nothing the
 * device writes is trusted: used elements are validated by lib/virtio and
 * status bytes are mapped, never used as indexes.
 */
#include "guest_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static __thread char errmsg[512];

static uint64_t now_ms(void);

void rb_guest_seterr(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
}

const char *rb_guest_errmsg(void)
{
	return errmsg;
}

uint64_t rb_guest_wanted_features(uint64_t offered)
{
	uint64_t want = (1ull << RB_VIRTIO_F_VERSION_1) | (1ull << RB_VIRTIO_F_EVENT_IDX) |
			(1ull << RB_VIRTIO_BLK_F_MQ) | (1ull << RB_VIRTIO_BLK_F_RO) |
			(1ull << RB_VIRTIO_BLK_F_BLK_SIZE) | (1ull << RB_VIRTIO_BLK_F_FLUSH) |
			(1ull << RB_VIRTIO_BLK_F_SEG_MAX);
	return offered & want;
}

/* ---- DMA memory ------------------------------------------------------------ */

int rb_guest_dma_init(struct rb_guest_dev *d, void *base, size_t size)
{
	size_t pages = size / RB_GUEST_PAGE;

	if (((uintptr_t)base & (RB_GUEST_PAGE - 1)) || pages == 0)
		return -EINVAL;
	d->dma_pages = calloc(pages, sizeof(*d->dma_pages));
	d->dma_used = calloc(pages, 1);
	if (!d->dma_pages || !d->dma_used) {
		free(d->dma_pages);
		free(d->dma_used);
		d->dma_pages = NULL;
		d->dma_used = NULL;
		return -ENOMEM;
	}
	d->dma_base = base;
	d->dma_size = pages * RB_GUEST_PAGE;
	pthread_mutex_init(&d->dma_lock, NULL);
	return 0;
}

void rb_guest_dma_fini(struct rb_guest_dev *d)
{
	if (!d->dma_pages)
		return;
	free(d->dma_pages);
	free(d->dma_used);
	d->dma_pages = NULL;
	d->dma_used = NULL;
	pthread_mutex_destroy(&d->dma_lock);
}

/* Blocks up to 2 MiB never cross a 2 MiB boundary: on the pci transport
 * DMA memory is made of hugepages, contiguous for the device only inside
 * one page. */
#define HUGE_PAGES (2u * 1024 * 1024 / RB_GUEST_PAGE)

void *rb_guest_dma_alloc(struct rb_guest_dev *d, size_t len)
{
	size_t n = (len + RB_GUEST_PAGE - 1) / RB_GUEST_PAGE, total = d->dma_size / RB_GUEST_PAGE;
	void *p = NULL;

	if (len == 0 || !d->dma_pages)
		return NULL;
	pthread_mutex_lock(&d->dma_lock);
	for (size_t i = 0; i + n <= total;) {
		if (n <= HUGE_PAGES && i / HUGE_PAGES != (i + n - 1) / HUGE_PAGES) {
			i = (i / HUGE_PAGES + 1) * HUGE_PAGES;
			continue;
		}
		size_t j = 0;
		while (j < n && !d->dma_used[i + j])
			j++;
		if (j == n) {
			memset(d->dma_used + i, 1, n);
			d->dma_pages[i] = (uint32_t)n;
			p = d->dma_base + i * RB_GUEST_PAGE;
			break;
		}
		i += j + 1;
	}
	pthread_mutex_unlock(&d->dma_lock);
	if (p)
		memset(p, 0, n * RB_GUEST_PAGE);
	else
		rb_guest_seterr("DMA memory exhausted (%zu bytes asked, %zu in the pool)", len,
				d->dma_size);
	return p;
}

void rb_guest_dma_free(struct rb_guest_dev *d, void *buf)
{
	uint8_t *p = buf;

	if (!p || p < d->dma_base || p >= d->dma_base + d->dma_size)
		return;
	size_t i = (size_t)(p - d->dma_base) / RB_GUEST_PAGE;
	pthread_mutex_lock(&d->dma_lock);
	uint32_t n = d->dma_pages[i];
	if (n) {
		memset(d->dma_used + i, 0, n);
		d->dma_pages[i] = 0;
	}
	pthread_mutex_unlock(&d->dma_lock);
}

/* ---- queues ---------------------------------------------------------------- */

int rb_guest_queues_alloc(struct rb_guest_dev *d)
{
	for (unsigned i = 0; i < d->nq; i++) {
		struct rb_guest_queue *q = &d->q[i];
		size_t avail_off = rb_vring_desc_bytes(d->qsize);
		size_t used_off = (avail_off + rb_vring_avail_bytes(d->qsize) + 2 + RB_GUEST_PAGE - 1) &
				  ~(size_t)(RB_GUEST_PAGE - 1);
		int rc;

		q->kick_fd = q->call_fd = -1;
		q->ring_bytes = used_off + rb_vring_used_bytes(d->qsize) + 2;
		q->ring = rb_guest_dma_alloc(d, q->ring_bytes);
		q->hdrs = rb_guest_dma_alloc(d, sizeof(*q->hdrs) * d->qsize);
		q->reqs = calloc(d->qsize, sizeof(*q->reqs));
		if (!q->ring || !q->hdrs || !q->reqs) {
			rb_guest_seterr("not enough DMA memory for %u queues of %u entries", d->nq, d->qsize);
			return -ENOMEM;
		}
		uint8_t *r = q->ring;
		rc = rb_virtq_drv_init(&q->vq, d->qsize, r, r + avail_off, r + used_off,
				       d->features & (1ull << RB_VIRTIO_F_EVENT_IDX));
		if (rc) {
			rb_guest_seterr("cannot set up queue %u: %s", i, strerror(-rc));
			return rc;
		}
		q->desc_addr = d->t->dma_addr(d, r, rb_vring_desc_bytes(d->qsize));
		q->avail_addr = d->t->dma_addr(d, r + avail_off, rb_vring_avail_bytes(d->qsize) + 2);
		q->used_addr = d->t->dma_addr(d, r + used_off, rb_vring_used_bytes(d->qsize) + 2);
		if (q->desc_addr == UINT64_MAX || q->avail_addr == UINT64_MAX ||
		    q->used_addr == UINT64_MAX) {
			rb_guest_seterr("queue %u: ring memory is not contiguous for the device", i);
			return -EFAULT;
		}
		q->free = NULL;
		for (unsigned k = d->qsize; k-- > 0;) {
			q->reqs[k].dma = &q->hdrs[k];
			q->reqs[k].next_free = q->free;
			q->free = &q->reqs[k];
		}
		q->inflight = 0;
	}
	return 0;
}

void rb_guest_queues_free(struct rb_guest_dev *d)
{
	for (unsigned i = 0; i < RB_GUEST_MAX_QUEUES; i++) {
		struct rb_guest_queue *q = &d->q[i];
		rb_virtq_drv_fini(&q->vq);
		free(q->reqs);
		q->reqs = NULL;
		if (q->ring)
			rb_guest_dma_free(d, q->ring);
		if (q->hdrs)
			rb_guest_dma_free(d, q->hdrs);
		if (q->ndp_stage)
			rb_guest_dma_free(d, q->ndp_stage);
		q->ring = NULL;
		q->hdrs = NULL;
		q->ndp_stage = NULL;
	}
}

/* ---- open / close / info ------------------------------------------------------ */

int rb_guest_open(const char *uri, const struct rb_guest_opts *opts, struct rb_guest_dev **out)
{
	struct rb_guest_dev *d;
	const struct rb_guest_transport *t;
	const char *addr;
	int rc;

	*out = NULL;
	if (!uri) {
		rb_guest_seterr("no device URI");
		return -EINVAL;
	}
	if (!strncmp(uri, "vhost-user:", 11)) {
		t = &rb_guest_vhost_user;
		addr = uri + 11;
	} else if (!strncmp(uri, "pci:", 4)) {
		t = &rb_guest_pci;
		addr = uri + 4;
	} else if (!strncmp(uri, "kernel:", 7)) {
		t = &rb_guest_kernel;
		addr = uri + 7;
	} else if (!strncmp(uri, "file:", 5)) {
		t = &rb_guest_file;
		addr = uri + 5;
	} else {
		rb_guest_seterr("unknown device URI '%s' (use vhost-user:/path/to.sock, pci:0000:00:05.0, kernel:/dev/virtio-ndp/vndpa or file:/path/on/a/virtio_ndp/disk)",
				uri);
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		rb_guest_seterr("out of memory");
		return -ENOMEM;
	}
	d->t = t;
	if (opts)
		d->opts = *opts;
	if (!d->opts.queue_size)
		d->opts.queue_size = 256;
	if (!d->opts.dma_bytes)
		d->opts.dma_bytes = 64u << 20;
	if (d->opts.queue_size > 32768 || (d->opts.queue_size & (d->opts.queue_size - 1)) ||
	    d->opts.num_queues > RB_GUEST_MAX_QUEUES) {
		rb_guest_seterr("queue size %u must be a power of two <= 32768 and at most %u queues",
				d->opts.queue_size, RB_GUEST_MAX_QUEUES);
		free(d);
		return -EINVAL;
	}
	for (unsigned i = 0; i < RB_GUEST_MAX_QUEUES; i++)
		d->q[i].kick_fd = d->q[i].call_fd = -1;
	rc = t->open(d, addr);
	if (rc) {
		free(d);
		return rc;
	}
	if (t->direct) {
		*out = d; /* the kernel driver probed NDP itself */
		return 0;
	}
	if (d->opts.notify == RB_GUEST_NOTIFY_POLL)
		for (unsigned i = 0; i < d->nq; i++)
			rb_virtq_drv_set_interrupts(&d->q[i].vq, false);
	/* A plain virtio-blk backend answers the probe UNSUPP: no NDP. */
	rc = rb_guest_ndp_probe(d);
	if (rc) {
		t->close(d);
		free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void rb_guest_close(struct rb_guest_dev *d)
{
	if (!d)
		return;
	/* A backend gone now is not waited for (no reconnecting). */
	d->closing = true;
	/* Let requests in flight finish (bounded) before the rings stop: a
	 * backend asked to stop a ring mid-request may not cope (qsd panics). */
	for (unsigned q = 0; q < d->nq; q++) {
		struct rb_guest_cpl cpl[32];
		uint64_t deadline = now_ms() + 1000;
		while (d->q[q].inflight && now_ms() < deadline)
			if (rb_guest_poll(d, q, cpl, 32) < 0)
				break;
	}
	d->t->close(d);
	rb_guest_ndp_state_free(d);
	free(d);
}

void rb_guest_info(const struct rb_guest_dev *d, struct rb_guest_info *i)
{
	memset(i, 0, sizeof(*i));
	i->capacity_bytes = d->cfg.capacity * RB_VIRTIO_BLK_SECTOR;
	i->block_size = (d->features & (1ull << RB_VIRTIO_BLK_F_BLK_SIZE)) && d->cfg.blk_size
				? d->cfg.blk_size
				: RB_VIRTIO_BLK_SECTOR;
	i->num_queues = d->nq;
	i->max_queues = d->max_queues;
	i->queue_size = d->qsize;
	i->features = d->features;
	i->ndp = d->ndp;
	i->readonly = d->features & (1ull << RB_VIRTIO_BLK_F_RO);
	i->transport = d->t->name;
	if (d->t->direct && d->t->direct->nd_requests)
		i->nd_requests = d->t->direct->nd_requests(d);
}

/* ---- requests -------------------------------------------------------------------- */

static int check_queue(const struct rb_guest_dev *d, unsigned q)
{
	if (q >= d->nq) {
		rb_guest_seterr("queue %u does not exist (%u queues)", q, d->nq);
		return -EINVAL;
	}
	return 0;
}

int rb_guest_submit(struct rb_guest_dev *d, unsigned qi, enum rb_guest_op op, void *buf,
		    uint64_t offset, size_t len, void *user)
{
	struct rb_virtq_buf bufs[3];
	unsigned n = 0;
	int rc = check_queue(d, qi);

	if (rc)
		return rc;
	struct rb_guest_queue *q = &d->q[qi];
	if (op != RB_GUEST_OP_FLUSH) {
		uint64_t cap = d->cfg.capacity * RB_VIRTIO_BLK_SECTOR;
		if ((offset | len) % RB_VIRTIO_BLK_SECTOR || len == 0 || len > UINT32_MAX ||
		    offset > cap || len > cap - offset) {
			rb_guest_seterr("%s of %zu bytes at offset %llu: offset and length must be multiples of 512 inside the %llu-byte device",
					op == RB_GUEST_OP_READ ? "read" : "write", len,
					(unsigned long long)offset, (unsigned long long)cap);
			return -EINVAL;
		}
		if (op == RB_GUEST_OP_WRITE && (d->features & (1ull << RB_VIRTIO_BLK_F_RO))) {
			rb_guest_seterr("the device is read-only");
			return -EROFS;
		}
	} else if (!(d->features & (1ull << RB_VIRTIO_BLK_F_FLUSH))) {
		rb_guest_seterr("the device does not support flush");
		return -ENOTSUP;
	}
	if (d->t->direct)
		return d->t->direct->submit(d, qi, op, buf, offset, len, user);
	if (!q->free) {
		rb_guest_seterr("queue %u is full (%u requests in flight)", qi, q->inflight);
		return -EAGAIN;
	}
	struct rb_guest_req *req = q->free;
	req->dma->hdr.type = op == RB_GUEST_OP_READ ? RB_VIRTIO_BLK_T_IN
			     : op == RB_GUEST_OP_WRITE ? RB_VIRTIO_BLK_T_OUT
						       : RB_VIRTIO_BLK_T_FLUSH;
	req->dma->hdr.ioprio = 0;
	req->dma->hdr.sector = op == RB_GUEST_OP_FLUSH ? 0 : offset / RB_VIRTIO_BLK_SECTOR;
	req->dma->status = 0xff;
	bufs[n++] = (struct rb_virtq_buf){d->t->dma_addr(d, &req->dma->hdr, 16), 16, false};
	if (op != RB_GUEST_OP_FLUSH) {
		uint64_t a = d->t->dma_addr(d, buf, len);
		if (a == UINT64_MAX) {
			rb_guest_seterr("buffer %p+%zu is not DMA memory from rb_guest_dma_alloc()", buf, len);
			return -EFAULT;
		}
		bufs[n++] = (struct rb_virtq_buf){a, (uint32_t)len, op == RB_GUEST_OP_READ};
	}
	bufs[n++] = (struct rb_virtq_buf){d->t->dma_addr(d, &req->dma->status, 1), 1, true};
	rc = rb_virtq_drv_add(&q->vq, bufs, n, req);
	if (rc) {
		rb_guest_seterr("queue %u: cannot add request: %s", qi, strerror(-rc));
		return rc == -ENOSPC ? -EAGAIN : rc;
	}
	q->free = req->next_free;
	req->user = user;
	req->op = op;
	req->nd = NULL;
	q->inflight++;
	rb_guest_kick_if_needed(d, qi);
	return 0;
}

int rb_guest_check(struct rb_guest_dev *d, unsigned qi, bool now)
{
	struct rb_guest_queue *q = &d->q[qi];

	if (!d->t->check || d->closing)
		return 0;
	uint64_t t = now_ms();
	if (!now && t - q->checked_ms < RB_GUEST_CHECK_MS)
		return 0;
	q->checked_ms = t;
	return d->t->check(d);
}

void rb_guest_kick_if_needed(struct rb_guest_dev *d, unsigned qi)
{
	struct rb_guest_queue *q = &d->q[qi];

	/* Event mode kicks every submission; poll mode only when the device
	 * has not said it polls. */
	if (d->opts.notify == RB_GUEST_NOTIFY_EVENT) {
		q->vq.kicked_idx = q->vq.avail_idx;
		d->t->kick(d, qi);
	} else if (rb_virtq_drv_need_kick(&q->vq)) {
		d->t->kick(d, qi);
	}
}

int rb_guest_poll(struct rb_guest_dev *d, unsigned qi, struct rb_guest_cpl *cpl, unsigned max)
{
	int rc = check_queue(d, qi);
	unsigned n = 0;
	char err[256];

	if (rc)
		return rc;
	if (d->t->direct)
		return d->t->direct->poll(d, qi, cpl, max);
	struct rb_guest_queue *q = &d->q[qi];
	while (n < max) {
		void *cookie;
		uint32_t len;
		rc = rb_virtq_drv_get(&q->vq, &cookie, &len, err, sizeof(err));
		if (rc == 0)
			break;
		if (rc < 0) {
			rb_guest_seterr("queue %u: the device broke the virtio protocol: %s", qi, err);
			return -EPROTO;
		}
		struct rb_guest_req *req = cookie;
		cpl[n].user = req->user;
		if (req->nd) {
			cpl[n].status = rb_guest_nd_finish(d, req, &len);
			cpl[n].len = len;
			if (cpl[n].status == -ESTALE) { /* the device restarted */
				rb_guest_nd_park(d, qi, req);
				continue;
			}
		} else {
			uint8_t st = __atomic_load_n(&req->dma->status, __ATOMIC_ACQUIRE);
			cpl[n].status = st == RB_VIRTIO_BLK_S_OK ? 0
					: st == RB_VIRTIO_BLK_S_UNSUPP ? -ENOTSUP
								      : -EIO;
			/* The used length counts the status byte; report data only. */
			cpl[n].len = len ? len - 1 : 0;
		}
		req->next_free = q->free;
		q->free = req;
		q->inflight--;
		n++;
	}
	if (q->retry && (rc = rb_guest_nd_retry(d, qi)) && rc != -EAGAIN && n == 0)
		return rc;
	/* An application that only polls learns of a backend gone away here
	 * too (a cheap clock read every 1024 empty polls). */
	if (n == 0 && q->inflight && ++q->empty_polls % 1024 == 0) {
		rc = rb_guest_check(d, qi, false);
		if (rc)
			return rc;
	}
	return (int)n;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int rb_guest_wait(struct rb_guest_dev *d, unsigned qi, struct rb_guest_cpl *cpl, unsigned max,
		  int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_ms() + (uint64_t)timeout_ms;
	bool can_sleep = d->opts.notify == RB_GUEST_NOTIFY_EVENT;
	unsigned spins = 0;

	if (d->t->direct) {
		int rc = check_queue(d, qi);
		return rc ? rc : d->t->direct->wait(d, qi, cpl, max, timeout_ms);
	}

	for (;;) {
		int n = rb_guest_poll(d, qi, cpl, max);
		if (n != 0)
			return n;
		if (can_sleep) {
			struct rb_guest_queue *q = &d->q[qi];
			rb_virtq_drv_set_interrupts(&q->vq, true);
			n = rb_guest_poll(d, qi, cpl, max); /* closes the race */
			if (n != 0)
				return n;
			uint64_t now = now_ms();
			if (now >= deadline)
				break;
			/* Sleep in slices: a backend that died sends no call. */
			int left = deadline - now > RB_GUEST_CHECK_MS ? RB_GUEST_CHECK_MS
								      : (int)(deadline - now);
			int rc = d->t->wait(d, qi, left);
			if (rc == -ENOTSUP)
				can_sleep = false;
			else if (rc < 0 && rc != -ETIMEDOUT && rc != -EINTR)
				return rc;
			if (rc == -ETIMEDOUT && (rc = rb_guest_check(d, qi, false)))
				return rc;
			continue;
		}
		if (++spins % 1024 == 0) {
			if (now_ms() >= deadline)
				break;
			int rc = rb_guest_check(d, qi, false);
			if (rc)
				return rc;
		}
	}
	rb_guest_seterr("queue %u: no completion within %d ms", qi, timeout_ms);
	return -ETIMEDOUT;
}

unsigned rb_guest_inflight(const struct rb_guest_dev *d, unsigned q)
{
	return q < d->nq ? d->q[q].inflight : 0;
}

/* Synchronous calls: one request, then wait for exactly it. */
static int sync_io(struct rb_guest_dev *d, unsigned q, enum rb_guest_op op, void *buf,
		   uint64_t off, size_t len)
{
	struct rb_guest_cpl cpl;
	int rc = check_queue(d, q);

	if (rc)
		return rc;
	if (d->q[q].inflight) {
		rb_guest_seterr("queue %u has asynchronous requests in flight; synchronous calls need an idle queue",
				q);
		return -EBUSY;
	}
	rc = rb_guest_submit(d, q, op, buf, off, len, NULL);
	if (rc)
		return rc;
	rc = rb_guest_wait(d, q, &cpl, 1, 30000);
	if (rc < 0)
		return rc;
	if (cpl.status) {
		rb_guest_seterr("%s at offset %llu: the device answered %s",
				op == RB_GUEST_OP_READ ? "read" : op == RB_GUEST_OP_WRITE ? "write" : "flush",
				(unsigned long long)off, cpl.status == -ENOTSUP ? "UNSUPP" : "IOERR");
		return cpl.status;
	}
	return 0;
}

int rb_guest_read(struct rb_guest_dev *d, unsigned q, void *buf, uint64_t off, size_t len)
{
	return sync_io(d, q, RB_GUEST_OP_READ, buf, off, len);
}

int rb_guest_write(struct rb_guest_dev *d, unsigned q, const void *buf, uint64_t off, size_t len)
{
	return sync_io(d, q, RB_GUEST_OP_WRITE, (void *)buf, off, len);
}

int rb_guest_flush(struct rb_guest_dev *d, unsigned q)
{
	return sync_io(d, q, RB_GUEST_OP_FLUSH, NULL, 0, 0);
}
