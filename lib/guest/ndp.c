/* SPDX-License-Identifier: MIT */
/*
 * librosen's NDP requests: PROBE (at open), LOAD, UNLOAD, REG/UNREG_MEM,
 * REG/UNREG_FILE, READ_ND and WRITE_ND, laid out as docs/virtio-ndp.md says.  Each request is staged in
 * one block of DMA memory (a readable part and a writable part) and sent as
 * one two-descriptor chain plus the status byte.
 */
#include "guest_internal.h"

#include <rosen/virtio_ndp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Sends one chain on an idle queue and waits for it.  0 with *used_len and
 * *status set, or -errno. */
static int raw_sync(struct rb_guest_dev *d, unsigned qi, const struct rb_virtq_buf *bufs,
		    unsigned n, uint8_t *status_byte, uint32_t *used_len, int timeout_ms)
{
	struct rb_guest_queue *q;
	char err[256];
	static int marker;
	struct timespec t0, t;
	int rc;

	if (qi >= d->nq) {
		rb_guest_seterr("queue %u does not exist", qi);
		return -EINVAL;
	}
	q = &d->q[qi];
	if (q->inflight > q->n_retry) { /* requests waiting to be retried are off the ring */
		rb_guest_seterr("queue %u has requests in flight; NDP control calls need an idle queue", qi);
		return -EBUSY;
	}
	*status_byte = 0xff;
	rc = rb_virtq_drv_add(&q->vq, bufs, n, &marker);
	if (rc) {
		rb_guest_seterr("queue %u: cannot add request: %s", qi, strerror(-rc));
		return rc;
	}
	q->vq.kicked_idx = q->vq.avail_idx;
	d->t->kick(d, qi);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned spins = 0;; spins++) {
		void *cookie;
		rc = rb_virtq_drv_get(&q->vq, &cookie, used_len, err, sizeof(err));
		if (rc < 0) {
			rb_guest_seterr("queue %u: the device broke the virtio protocol: %s", qi, err);
			return -EPROTO;
		}
		if (rc == 1)
			return cookie == &marker ? 0 : -EPROTO;
		if (d->opts.notify == RB_GUEST_NOTIFY_EVENT && d->t->wait) {
			rb_virtq_drv_set_interrupts(&q->vq, true);
			rc = rb_virtq_drv_get(&q->vq, &cookie, used_len, err, sizeof(err));
			if (rc == 1)
				return cookie == &marker ? 0 : -EPROTO;
			if (rc == 0 && d->t->wait(d, qi, 100) == -ENOTSUP)
				d->opts.notify = RB_GUEST_NOTIFY_POLL;
		}
		if (spins % 1024 == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms) {
				rb_guest_seterr("queue %u: no answer from the device within %d ms", qi,
						timeout_ms);
				return -ETIMEDOUT;
			}
			/* The backend may have gone away: the transport sets the
			 * next one up and the request is resubmitted there. */
			if ((rc = rb_guest_check(d, qi, false)))
				return rc;
		}
	}
}

/* Times a READ_ND/WRITE_ND answered STATE_LOST is retried (each time
 * after loading and registering again: each is another device restart). */
#define ND_RETRIES 16

/* A staging block: [readable rlen][writable wlen][status]. */
struct stage {
	uint8_t *mem;
	size_t rlen, wlen;
	bool owned; /* allocated for this request (else the queue's) */
};

/* The largest READ_ND/WRITE_ND: header, io, meta, scratch in, data,
 * scratch out, result, status.  Such requests reuse one block per queue. */
#define ND_STAGE_MAX (16 + sizeof(struct rb_ndp_io) + RB_NDP_MAX_META + 2 * RB_NDP_MAX_SCRATCH + \
		      RB_NDP_MAX_DATA + sizeof(struct rb_ndp_result) + 1)

/* With q, small requests reuse that queue's staging block. */
static int stage_alloc_in(struct rb_guest_dev *d, struct rb_guest_queue *q, struct stage *s,
			  size_t rlen, size_t wlen)
{
	s->rlen = rlen;
	s->wlen = wlen;
	s->owned = true;
	if (q && rlen + wlen + 1 <= ND_STAGE_MAX) {
		if (!q->ndp_stage)
			q->ndp_stage = rb_guest_dma_alloc(d, ND_STAGE_MAX);
		if (q->ndp_stage) {
			s->mem = q->ndp_stage;
			s->owned = false;
			return 0;
		}
	}
	s->mem = rb_guest_dma_alloc(d, rlen + wlen + 1);
	return s->mem ? 0 : -ENOMEM;
}

static int stage_alloc(struct rb_guest_dev *d, struct stage *s, size_t rlen, size_t wlen)
{
	return stage_alloc_in(d, NULL, s, rlen, wlen);
}

static void stage_free(struct rb_guest_dev *d, struct stage *s)
{
	if (s->owned)
		rb_guest_dma_free(d, s->mem);
}

static int stage_send(struct rb_guest_dev *d, unsigned q, struct stage *s, uint32_t *used,
		      uint8_t *status)
{
	struct rb_virtq_buf b[3];
	unsigned n = 0;

	b[n++] = (struct rb_virtq_buf){d->t->dma_addr(d, s->mem, s->rlen), (uint32_t)s->rlen, false};
	if (s->wlen)
		b[n++] = (struct rb_virtq_buf){d->t->dma_addr(d, s->mem + s->rlen, s->wlen),
					       (uint32_t)s->wlen, true};
	b[n++] = (struct rb_virtq_buf){d->t->dma_addr(d, s->mem + s->rlen + s->wlen, 1), 1, true};
	for (unsigned i = 0; i < n; i++)
		if (b[i].addr == UINT64_MAX) {
			rb_guest_seterr("NDP staging memory is not contiguous for the device");
			return -EFAULT;
		}
	int rc = raw_sync(d, q, b, n, s->mem + s->rlen + s->wlen, used, 30000);
	*status = s->mem[s->rlen + s->wlen];
	return rc;
}

static void put_hdr(uint8_t *p, uint32_t type, uint64_t sector)
{
	struct rb_virtio_blk_outhdr h = {.type = type, .ioprio = 0, .sector = sector};
	memcpy(p, &h, sizeof(h));
}

int rb_guest_ndp_probe(struct rb_guest_dev *d)
{
	struct stage s;
	struct rb_ndp_probe p;
	uint32_t used;
	uint8_t st;

	d->ndp = false;
	if (stage_alloc(d, &s, 16, sizeof(p)))
		return -ENOMEM;
	put_hdr(s.mem, RB_NDP_T_PROBE, 0);
	int rc = stage_send(d, 0, &s, &used, &st);
	if (rc == 0 && st == RB_VIRTIO_BLK_S_OK) {
		memcpy(&p, s.mem + 16, sizeof(p));
		d->ndp = p.magic == RB_NDP_MAGIC && p.version == RB_NDP_VERSION;
		d->ndp_caps = d->ndp ? p.caps : 0;
	}
	stage_free(d, &s);
	/* A plain virtio-blk device answers UNSUPP (or IOERR): no NDP. */
	return rc;
}

static int send_unload(struct rb_guest_dev *d, unsigned q, uint32_t handle, uint32_t *ndp_out);

static int need_ndp(struct rb_guest_dev *d)
{
	if (!d->ndp) {
		rb_guest_seterr("the device does not speak virtio-ndp (plain virtio-blk backend?)");
		return -ENOTSUP;
	}
	return 0;
}

/* LOAD as the device sees it (no record kept): restores use it too. */
int rb_guest_ndp_send_load(struct rb_guest_dev *d, unsigned q, const void *elf, size_t elf_len,
			   const char *section, uint32_t prog_type, uint32_t *handle, char *log,
			   size_t loglen)
{
	struct rb_ndp_load ld = {.prog_type = prog_type, .elf_len = (uint32_t)elf_len};
	struct rb_ndp_load_result res;
	struct stage s;
	uint32_t used;
	uint8_t st;
	int rc;

	if (log && loglen)
		log[0] = 0;
	strcpy(ld.section, section);
	if (d->t->direct)
		return d->t->direct->load(d, elf, elf_len, section, prog_type, handle, log, loglen);
	if (stage_alloc(d, &s, 16 + sizeof(ld) + elf_len, sizeof(res) + RB_NDP_LOG_MAX)) {
		rb_guest_seterr("no DMA memory for a %zu-byte object", elf_len);
		return -ENOMEM;
	}
	put_hdr(s.mem, RB_NDP_T_LOAD, 0);
	memcpy(s.mem + 16, &ld, sizeof(ld));
	memcpy(s.mem + 16 + sizeof(ld), elf, elf_len);
	rc = stage_send(d, q, &s, &used, &st);
	if (rc == 0 && st != RB_VIRTIO_BLK_S_OK) {
		rb_guest_seterr("the device failed the LOAD request (status %u)", st);
		rc = -EIO;
	}
	if (rc == 0) {
		memcpy(&res, s.mem + s.rlen, sizeof(res));
		if (log && loglen && res.log_len) {
			size_t n = res.log_len < RB_NDP_LOG_MAX ? res.log_len : RB_NDP_LOG_MAX;
			if (n > loglen)
				n = loglen;
			memcpy(log, s.mem + s.rlen + sizeof(res), n);
			log[n - 1] = 0;
		}
		if (res.status == RB_NDP_S_OK) {
			*handle = res.handle;
		} else {
			rb_guest_seterr("program not loaded (%s)%s%s", rb_ndp_status_name(res.status),
					log && log[0] ? ": " : "", log ? log : "");
			rc = res.status == RB_NDP_S_LIMIT ? -ENOSPC : -EINVAL;
		}
	}
	stage_free(d, &s);
	return rc;
}

int rb_guest_ndp_load(struct rb_guest_dev *d, unsigned q, const void *elf, size_t elf_len,
		      const char *section, uint32_t prog_type, uint32_t *handle, char *log,
		      size_t loglen)
{
	int rc = need_ndp(d);

	if (log && loglen)
		log[0] = 0;
	if (rc)
		return rc;
	if (elf_len > RB_NDP_MAX_ELF_BYTES || !section || strlen(section) >= RB_NDP_SECTION_MAX) {
		rb_guest_seterr("object of %zu bytes (max %u) or section name too long", elf_len,
				RB_NDP_MAX_ELF_BYTES);
		return -EINVAL;
	}
	rc = rb_guest_ndp_send_load(d, q, elf, elf_len, section, prog_type, handle, log, loglen);
	/* Kept so that a device that restarts gets it again (STATE_LOST). */
	if (rc == 0 && rb_guest_ndp_note_prog(d, handle, prog_type, elf, elf_len, section)) {
		send_unload(d, q, *handle, NULL);
		rb_guest_seterr("out of memory");
		return -ENOMEM;
	}
	return rc;
}

/* UNLOAD as the device sees it; *ndp_st (may be NULL) gets its status. */
static int send_unload(struct rb_guest_dev *d, unsigned q, uint32_t handle, uint32_t *ndp_out)
{
	struct rb_ndp_unload u = {.handle = handle};
	struct stage s;
	uint32_t used, ndp_st = 0;
	uint8_t st;
	int rc;

	if (d->t->direct)
		return d->t->direct->unload(d, handle);
	if (stage_alloc(d, &s, 16 + sizeof(u), sizeof(ndp_st)))
		return -ENOMEM;
	put_hdr(s.mem, RB_NDP_T_UNLOAD, 0);
	memcpy(s.mem + 16, &u, sizeof(u));
	rc = stage_send(d, q, &s, &used, &st);
	if (rc == 0) {
		memcpy(&ndp_st, s.mem + s.rlen, sizeof(ndp_st));
		if (ndp_out)
			*ndp_out = ndp_st;
		if (st != RB_VIRTIO_BLK_S_OK) {
			rb_guest_seterr("the device failed the UNLOAD request (status %u)", st);
			rc = -EIO;
		} else if (ndp_st == RB_NDP_S_STATE_LOST) {
			rc = 0; /* the device restarted: the program is gone anyway */
		} else if (ndp_st != RB_NDP_S_OK) {
			rb_guest_seterr("no program with handle %u", handle);
			rc = -ENOENT;
		}
	}
	stage_free(d, &s);
	return rc;
}

int rb_guest_ndp_unload(struct rb_guest_dev *d, unsigned q, uint32_t handle)
{
	int rc = need_ndp(d);

	if (rc)
		return rc;
	rc = send_unload(d, q, rb_guest_ndp_dev_handle(d, handle, false), NULL);
	if (rc == 0 || rc == -ENOENT)
		rb_guest_ndp_dev_handle(d, handle, true);
	return rc;
}

/* ---- READ_ND / WRITE_ND: one layout for the sync and async paths ---------- */

/* The request's checks, shared by both paths. */
static int nd_check(struct rb_guest_dev *d, unsigned q, const struct rb_guest_nd *nd)
{
	int rc = need_ndp(d);

	if (rc)
		return rc;
	if (q >= d->nq) {
		rb_guest_seterr("queue %u does not exist", q);
		return -EINVAL;
	}
	if (nd->flags & ~RB_GUEST_ND_FILE) {
		rb_guest_seterr("bad NDP request: unknown flags 0x%x", nd->flags);
		return -EINVAL;
	}
	if ((nd->flags & RB_GUEST_ND_FILE) && d->t->direct) {
		rb_guest_seterr("the %s transport does not send file requests yet", d->t->name);
		return -ENOTSUP;
	}
	if (nd->offset % 512 || nd->meta_len > RB_NDP_MAX_META || nd->scratch_len > RB_NDP_MAX_SCRATCH ||
	    nd->data_len > RB_NDP_MAX_DATA || (nd->meta_len && !nd->meta) ||
	    (nd->scratch_len && !nd->scratch) || (nd->data_len && !nd->data)) {
		rb_guest_seterr("bad NDP request: offset %llu, meta %u, scratch %u, data %u",
				(unsigned long long)nd->offset, nd->meta_len, nd->scratch_len,
				nd->data_len);
		return -EINVAL;
	}
	return 0;
}

/* Device-readable bytes (header, io, meta, scratch in, write data) and
 * device-writable ones (read data, scratch out, result), status excluded. */
static void nd_lengths(const struct rb_guest_nd *nd, bool write, size_t *rlen, size_t *wlen)
{
	*rlen = 16 + sizeof(struct rb_ndp_io) + nd->meta_len + nd->scratch_len +
		(write ? nd->data_len : 0);
	*wlen = (write ? 0 : nd->data_len) + nd->scratch_len + sizeof(struct rb_ndp_result);
}

/* The device's current handle and file key for what the application
 * names (they change when librosen restores them after a restart). */
static void nd_ids(struct rb_guest_dev *d, const struct rb_guest_nd *nd, uint32_t *handle,
		   uint32_t *file_key)
{
	*handle = rb_guest_ndp_dev_handle(d, nd->handle, false);
	*file_key = nd->flags & RB_GUEST_ND_FILE ? rb_guest_ndp_dev_file(d, nd->file_key, false)
						 : nd->file_key;
}

/* Writes the readable part of a request at p. */
static void nd_pack(struct rb_guest_dev *d, uint8_t *p, bool write, const struct rb_guest_nd *nd)
{
	struct rb_ndp_io io = {
		.io_len = nd->io_len, .meta_len = nd->meta_len,
		.scratch_len = nd->scratch_len, .data_len = nd->data_len, .max_hops = nd->max_hops,
		.flags = nd->flags & RB_GUEST_ND_FILE ? RB_NDP_IO_F_FILE : 0};

	nd_ids(d, nd, &io.handle, &io.file_key);

	put_hdr(p, write ? RB_NDP_T_WRITE_ND : RB_NDP_T_READ_ND, nd->offset / 512);
	memcpy(p + 16, &io, sizeof(io));
	p += 16 + sizeof(io);
	if (nd->meta_len)
		memcpy(p, nd->meta, nd->meta_len);
	p += nd->meta_len;
	if (nd->scratch_len)
		memcpy(p, nd->scratch, nd->scratch_len);
	p += nd->scratch_len;
	if (write && nd->data_len)
		memcpy(p, nd->data, nd->data_len);
}

/* Copies what the device wrote (at w) back to the caller's buffers. */
static void nd_unpack(const uint8_t *w, bool write, void *data, uint32_t data_len, void *scratch,
		      uint32_t scratch_len, struct rb_guest_nd_result *out)
{
	struct rb_ndp_result res;

	if (!write && data_len)
		memcpy(data, w, data_len);
	w += write ? 0 : data_len;
	if (scratch_len)
		memcpy(scratch, w, scratch_len);
	w += scratch_len;
	memcpy(&res, w, sizeof(res));
	out->status = res.status;
	out->hops = res.hops;
	out->retval = res.retval;
	out->bytes = res.bytes;
}

/* A kernel-driven device: submit, then wait for exactly this request. */
static int direct_nd(struct rb_guest_dev *d, unsigned q, bool write, const struct rb_guest_nd *nd,
		     struct rb_guest_nd_result *out)
{
	struct rb_guest_cpl cpl;
	struct rb_guest_nd dnd = *nd;
	int rc;

	if (rb_guest_inflight(d, q)) {
		rb_guest_seterr("queue %u has asynchronous requests in flight; synchronous calls need an idle queue",
				q);
		return -EBUSY;
	}
	nd_ids(d, nd, &dnd.handle, &dnd.file_key);
	rc = d->t->direct->submit_nd(d, q, write, &dnd, out, NULL);
	if (rc)
		return rc;
	rc = rb_guest_wait(d, q, &cpl, 1, 30000);
	if (rc < 0)
		return rc;
	if (cpl.status) {
		rb_guest_seterr("the driver failed the %s request (%s)", write ? "WRITE_ND" : "READ_ND",
				strerror(-cpl.status));
		return cpl.status;
	}
	if (out->status != RB_NDP_S_OK)
		rb_guest_seterr("the request ended with status %s after %u hops",
				rb_ndp_status_name(out->status), out->hops);
	return 0;
}

static int send_nd(struct rb_guest_dev *d, unsigned q, bool write, const struct rb_guest_nd *nd,
		   struct rb_guest_nd_result *out);

/*
 * READ_ND / WRITE_ND, synchronous.  A device that restarted answers
 * STATE_LOST: librosen loads and registers again what it had (on this
 * queue, idle again) and retries; the request reruns from its start, as
 * the device reruns any request it had in flight.  A device restarted
 * again meanwhile answers STATE_LOST again: up to ND_RETRIES times.
 */
static int do_nd(struct rb_guest_dev *d, unsigned q, uint32_t type, const struct rb_guest_nd *nd,
		 struct rb_guest_nd_result *out)
{
	bool write = type == RB_NDP_T_WRITE_ND;
	int rc = nd_check(d, q, nd);

	if (rc)
		return rc;
	for (int tries = 0;; tries++) {
		unsigned gen = rb_guest_ndp_generation(d);
		rc = send_nd(d, q, write, nd, out);
		if (rc || out->status != RB_NDP_S_STATE_LOST || tries == ND_RETRIES)
			return rc;
		if ((rc = rb_guest_ndp_restore(d, q, gen)))
			return rc;
	}
}

static int send_nd(struct rb_guest_dev *d, unsigned q, bool write, const struct rb_guest_nd *nd,
		   struct rb_guest_nd_result *out)
{
	struct stage s;
	size_t rlen, wlen;
	uint32_t used;
	uint8_t st;
	int rc;

	if (d->t->direct)
		return direct_nd(d, q, write, nd, out);
	nd_lengths(nd, write, &rlen, &wlen);
	if (stage_alloc_in(d, &d->q[q], &s, rlen, wlen)) {
		rb_guest_seterr("no DMA memory for an NDP request");
		return -ENOMEM;
	}
	nd_pack(d, s.mem, write, nd);
	rc = stage_send(d, q, &s, &used, &st);
	if (rc == 0 && st != RB_VIRTIO_BLK_S_OK) {
		rb_guest_seterr("the device failed the %s request (status %u%s)",
				write ? "WRITE_ND" : "READ_ND", st,
				st == RB_VIRTIO_BLK_S_UNSUPP ? ": unsupported" : "");
		rc = st == RB_VIRTIO_BLK_S_UNSUPP ? -ENOTSUP : -EIO;
	}
	if (rc == 0) {
		nd_unpack(s.mem + s.rlen, write, nd->data, nd->data_len, nd->scratch, nd->scratch_len,
			  out);
		if (out->status != RB_NDP_S_OK)
			rb_guest_seterr("the request ended with status %s after %u hops",
					rb_ndp_status_name(out->status), out->hops);
	}
	stage_free(d, &s);
	return rc;
}

/* ---- asynchronous READ_ND / WRITE_ND --------------------------------------- */

struct rb_guest_nd_pending {
	uint8_t *stage; /* DMA: readable part, writable part, status */
	size_t rlen, wlen;
	bool write;
	void *data;
	uint32_t data_len;
	void *scratch;
	uint32_t scratch_len;
	struct rb_guest_nd_result *res;
	/* For a retry after STATE_LOST: what the application named, the
	 * restore generation it was sent at, and how often it was retried. */
	struct rb_guest_nd nd;
	unsigned gen;
	unsigned tries;
	struct rb_guest_req *next_retry;
};

int rb_guest_submit_nd(struct rb_guest_dev *d, unsigned qi, bool write,
		       const struct rb_guest_nd *nd, struct rb_guest_nd_result *res, void *user)
{
	struct rb_virtq_buf b[3];
	int rc = nd_check(d, qi, nd);

	if (rc)
		return rc;
	if (!res) {
		rb_guest_seterr("bad NDP request: no result");
		return -EINVAL;
	}
	if (d->t->direct) {
		struct rb_guest_nd dnd = *nd;
		nd_ids(d, nd, &dnd.handle, &dnd.file_key);
		return d->t->direct->submit_nd(d, qi, write, &dnd, res, user);
	}
	struct rb_guest_queue *q = &d->q[qi];
	if (!q->free) {
		rb_guest_seterr("queue %u is full", qi);
		return -EAGAIN;
	}
	struct rb_guest_nd_pending *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	nd_lengths(nd, write, &p->rlen, &p->wlen);
	p->stage = rb_guest_dma_alloc(d, p->rlen + p->wlen + 1);
	if (!p->stage) {
		free(p);
		return -ENOMEM;
	}
	p->write = write;
	p->data = nd->data;
	p->data_len = nd->data_len;
	p->scratch = nd->scratch;
	p->scratch_len = nd->scratch_len;
	p->res = res;
	p->nd = *nd;
	p->gen = rb_guest_ndp_generation(d);
	nd_pack(d, p->stage, write, nd);
	p->stage[p->rlen + p->wlen] = 0xff;
	b[0] = (struct rb_virtq_buf){d->t->dma_addr(d, p->stage, p->rlen), (uint32_t)p->rlen, false};
	b[1] = (struct rb_virtq_buf){d->t->dma_addr(d, p->stage + p->rlen, p->wlen), (uint32_t)p->wlen, true};
	b[2] = (struct rb_virtq_buf){d->t->dma_addr(d, p->stage + p->rlen + p->wlen, 1), 1, true};
	struct rb_guest_req *req = q->free;
	rc = rb_virtq_drv_add(&q->vq, b, 3, req);
	if (rc) {
		rb_guest_dma_free(d, p->stage);
		free(p);
		rb_guest_seterr("queue %u: cannot add request: %s", qi, strerror(-rc));
		return rc == -ENOSPC ? -EAGAIN : rc;
	}
	q->free = req->next_free;
	req->user = user;
	req->op = RB_GUEST_OP_READ;
	req->nd = p;
	q->inflight++;
	rb_guest_kick_if_needed(d, qi);
	return 0;
}

int rb_guest_nd_finish(struct rb_guest_dev *d, struct rb_guest_req *req, uint32_t *len)
{
	struct rb_guest_nd_pending *p = req->nd;
	uint8_t st = __atomic_load_n(&p->stage[p->rlen + p->wlen], __ATOMIC_ACQUIRE);
	int rc = st == RB_VIRTIO_BLK_S_OK ? 0 : st == RB_VIRTIO_BLK_S_UNSUPP ? -ENOTSUP : -EIO;

	*len = 0;
	if (rc == 0 && p->tries < ND_RETRIES) {
		struct rb_ndp_result r;
		memcpy(&r, p->stage + p->rlen + p->wlen - sizeof(r), sizeof(r));
		if (r.status == RB_NDP_S_STATE_LOST)
			return -ESTALE; /* the caller retries it (rb_guest_nd_retry) */
	}
	if (rc == 0) {
		nd_unpack(p->stage + p->rlen, p->write, p->data, p->data_len, p->scratch,
			  p->scratch_len, p->res);
		*len = (uint32_t)p->res->bytes;
	}
	rb_guest_dma_free(d, p->stage);
	free(p);
	req->nd = NULL;
	return rc;
}

/*
 * Asynchronous requests that came back STATE_LOST wait on their queue
 * (off the ring) until nothing else of the queue is on the ring; then the
 * programs and registrations are restored on it and they go again, with
 * the device's new handles and keys.  The application sees only their
 * final completion.
 */
void rb_guest_nd_park(struct rb_guest_dev *d, unsigned qi, struct rb_guest_req *req)
{
	struct rb_guest_queue *q = &d->q[qi];

	req->nd->tries++;
	req->nd->next_retry = q->retry;
	q->retry = req;
	q->n_retry++;
}

int rb_guest_nd_retry(struct rb_guest_dev *d, unsigned qi)
{
	struct rb_guest_queue *q = &d->q[qi];
	struct rb_guest_req *list = q->retry;
	unsigned gen = UINT32_MAX;
	int rc = 0;

	if (!list || q->inflight > q->n_retry)
		return 0;
	for (struct rb_guest_req *r = list; r; r = r->nd->next_retry)
		if (r->nd->gen < gen)
			gen = r->nd->gen;
	/* Sent again even if the restore failed: they come back STATE_LOST
	 * and, after ND_RETRIES retries, go to the application so. */
	rb_guest_ndp_restore(d, qi, gen);
	q->retry = NULL;
	q->n_retry = 0;
	while (list) {
		struct rb_guest_req *req = list;
		struct rb_guest_nd_pending *p = req->nd;
		struct rb_ndp_io io;
		struct rb_virtq_buf b[3];

		list = p->next_retry;
		memcpy(&io, p->stage + 16, sizeof(io));
		nd_ids(d, &p->nd, &io.handle, &io.file_key);
		memcpy(p->stage + 16, &io, sizeof(io));
		p->gen = rb_guest_ndp_generation(d);
		p->stage[p->rlen + p->wlen] = 0xff;
		b[0] = (struct rb_virtq_buf){d->t->dma_addr(d, p->stage, p->rlen), (uint32_t)p->rlen, false};
		b[1] = (struct rb_virtq_buf){d->t->dma_addr(d, p->stage + p->rlen, p->wlen),
					     (uint32_t)p->wlen, true};
		b[2] = (struct rb_virtq_buf){d->t->dma_addr(d, p->stage + p->rlen + p->wlen, 1), 1, true};
		/* The ring is empty: there is room for what was on it before. */
		if (rb_virtq_drv_add(&q->vq, b, 3, req)) {
			rb_guest_nd_park(d, qi, req);
			rc = -EAGAIN;
		}
	}
	rb_guest_kick_if_needed(d, qi);
	return rc;
}

int rb_guest_read_nd(struct rb_guest_dev *d, unsigned q, const struct rb_guest_nd *nd,
		     struct rb_guest_nd_result *res)
{
	return do_nd(d, q, RB_NDP_T_READ_ND, nd, res);
}

int rb_guest_write_nd(struct rb_guest_dev *d, unsigned q, const struct rb_guest_nd *nd,
		      struct rb_guest_nd_result *res)
{
	return do_nd(d, q, RB_NDP_T_WRITE_ND, nd, res);
}

/* REG_MEM as the device sees it: by guest-physical address, or by buffer
 * on a kernel-driven device. */
int rb_guest_ndp_send_reg_mem(struct rb_guest_dev *d, unsigned q, uint64_t gpa, const void *buf,
			      uint64_t len, uint32_t *key)
{
	struct rb_ndp_reg_mem m = {.gpa = gpa, .len = len};
	struct rb_ndp_reg_result res;
	struct stage s;
	uint32_t used;
	uint8_t st;
	int rc;

	if (d->t->direct)
		return d->t->direct->reg_mem(d, buf, (size_t)len, key);
	if (stage_alloc(d, &s, 16 + sizeof(m), sizeof(res)))
		return -ENOMEM;
	put_hdr(s.mem, RB_NDP_T_REG_MEM, 0);
	memcpy(s.mem + 16, &m, sizeof(m));
	rc = stage_send(d, q, &s, &used, &st);
	if (rc == 0 && st != RB_VIRTIO_BLK_S_OK) {
		rb_guest_seterr("the device failed the REG_MEM request (status %u)", st);
		rc = st == RB_VIRTIO_BLK_S_UNSUPP ? -ENOTSUP : -EIO;
	}
	if (rc == 0) {
		memcpy(&res, s.mem + s.rlen, sizeof(res));
		if (res.status == RB_NDP_S_OK) {
			*key = res.key;
		} else {
			rb_guest_seterr("memory 0x%llx+%llu not registered (%s)", (unsigned long long)gpa,
					(unsigned long long)len, rb_ndp_status_name(res.status));
			rc = res.status == RB_NDP_S_LIMIT ? -ENOSPC : -EFAULT;
		}
	}
	stage_free(d, &s);
	return rc;
}

static int unreg_mem_one(struct rb_guest_dev *d, unsigned q, uint32_t dev_key);

static int reg_and_note(struct rb_guest_dev *d, unsigned q, uint64_t gpa, const void *buf,
			uint64_t len, uint32_t *key)
{
	int rc = rb_guest_ndp_send_reg_mem(d, q, gpa, buf, len, key);

	/* Kept so that a device that restarts gets it again (STATE_LOST). */
	if (rc == 0 && rb_guest_ndp_note_mem(d, key, gpa, buf, len)) {
		unreg_mem_one(d, q, *key);
		rb_guest_seterr("out of memory");
		return -ENOMEM;
	}
	return rc;
}

int rb_guest_ndp_reg_gpa(struct rb_guest_dev *d, unsigned q, uint64_t gpa, uint64_t len,
			 uint32_t *key)
{
	int rc = need_ndp(d);

	if (rc)
		return rc;
	if (d->t->direct) {
		rb_guest_seterr("the kernel transport registers DMA memory only (rb_guest_ndp_reg_mem): the driver does not let user space name guest-physical addresses");
		return -ENOTSUP;
	}
	return reg_and_note(d, q, gpa, NULL, len, key);
}

int rb_guest_ndp_reg_mem(struct rb_guest_dev *d, unsigned q, const void *buf, size_t len,
			 uint32_t *key)
{
	int rc = need_ndp(d);

	if (rc)
		return rc;
	if (d->t->direct)
		return reg_and_note(d, q, 0, buf, len, key);
	uint64_t gpa = d->t->dma_addr(d, buf, len);

	if (gpa == UINT64_MAX) {
		rb_guest_seterr("buffer %p+%zu is not DMA memory from rb_guest_dma_alloc()", buf, len);
		return -EFAULT;
	}
	return reg_and_note(d, q, gpa, buf, len, key);
}

static int unreg_mem_one(struct rb_guest_dev *d, unsigned q, uint32_t key)
{
	struct rb_ndp_unreg_mem u = {.key = key};
	struct stage s;
	uint32_t used, ndp_st = 0;
	uint8_t st;
	int rc;

	if (d->t->direct)
		return d->t->direct->unreg_mem(d, key);
	if (stage_alloc(d, &s, 16 + sizeof(u), sizeof(ndp_st)))
		return -ENOMEM;
	put_hdr(s.mem, RB_NDP_T_UNREG_MEM, 0);
	memcpy(s.mem + 16, &u, sizeof(u));
	rc = stage_send(d, q, &s, &used, &st);
	if (rc == 0) {
		memcpy(&ndp_st, s.mem + s.rlen, sizeof(ndp_st));
		/* STATE_LOST: the device restarted, the range is not registered
		 * any more: what was asked. */
		if (st != RB_VIRTIO_BLK_S_OK || (ndp_st != RB_NDP_S_OK && ndp_st != RB_NDP_S_STATE_LOST)) {
			rb_guest_seterr("no registered memory with key %u", key);
			rc = -ENOENT;
		}
	}
	stage_free(d, &s);
	return rc;
}

int rb_guest_ndp_unreg_mem(struct rb_guest_dev *d, unsigned q, uint32_t key)
{
	int rc = need_ndp(d);

	if (rc)
		return rc;
	rc = unreg_mem_one(d, q, rb_guest_ndp_dev_mem(d, key, false));
	if (rc == 0 || rc == -ENOENT)
		rb_guest_ndp_dev_mem(d, key, true);
	return rc;
}

/* ---- registered files ------------------------------------------------------- */

static int need_files(struct rb_guest_dev *d)
{
	int rc = need_ndp(d);

	if (rc)
		return rc;
	if (d->t->direct) {
		rb_guest_seterr("the %s transport does not register files yet", d->t->name);
		return -ENOTSUP;
	}
	if (!(d->ndp_caps & RB_NDP_CAP_FILES)) {
		rb_guest_seterr("the device does not serve files (PROBE caps 0x%x)", d->ndp_caps);
		return -ENOTSUP;
	}
	return 0;
}

static int unreg_file_one(struct rb_guest_dev *d, unsigned q, uint32_t key);

int rb_guest_ndp_reg_file(struct rb_guest_dev *d, unsigned q, const struct rb_ndp_extent *ext,
			  unsigned n, uint64_t file_size, uint32_t *key)
{
	int rc = need_files(d);

	if (rc)
		return rc;
	/* The device checks the map; only what cannot be sent is refused here. */
	if (n > RB_NDP_MAX_EXTENTS || (n && !ext)) {
		rb_guest_seterr("a map of %u extents (1..%u)", n, RB_NDP_MAX_EXTENTS);
		return -EINVAL;
	}
	rc = rb_guest_ndp_send_reg_file(d, q, ext, n, file_size, key);
	if (rc == 0 && rb_guest_ndp_note_file(d, key, ext, n, file_size)) {
		unreg_file_one(d, q, *key);
		rb_guest_seterr("out of memory");
		return -ENOMEM;
	}
	return rc;
}

/* REG_FILE as the device sees it. */
int rb_guest_ndp_send_reg_file(struct rb_guest_dev *d, unsigned q, const struct rb_ndp_extent *ext,
			       unsigned n, uint64_t file_size, uint32_t *key)
{
	struct rb_ndp_reg_file rf = {.file_size = file_size, .n_extents = n};
	struct rb_ndp_reg_result res;
	struct stage s;
	uint32_t used;
	uint8_t st;
	int rc;

	if (stage_alloc(d, &s, 16 + sizeof(rf) + (size_t)n * sizeof(*ext), sizeof(res))) {
		rb_guest_seterr("no DMA memory for a map of %u extents", n);
		return -ENOMEM;
	}
	put_hdr(s.mem, RB_NDP_T_REG_FILE, 0);
	memcpy(s.mem + 16, &rf, sizeof(rf));
	if (n)
		memcpy(s.mem + 16 + sizeof(rf), ext, (size_t)n * sizeof(*ext));
	rc = stage_send(d, q, &s, &used, &st);
	if (rc == 0 && st != RB_VIRTIO_BLK_S_OK) {
		rb_guest_seterr("the device failed the REG_FILE request (status %u)", st);
		rc = st == RB_VIRTIO_BLK_S_UNSUPP ? -ENOTSUP : -EIO;
	}
	if (rc == 0) {
		memcpy(&res, s.mem + s.rlen, sizeof(res));
		if (res.status == RB_NDP_S_OK) {
			*key = res.key;
		} else {
			rb_guest_seterr("file map of %u extents not registered (%s; the device's log says why)",
					n, rb_ndp_status_name(res.status));
			rc = res.status == RB_NDP_S_LIMIT ? -ENOSPC : -EINVAL;
		}
	}
	stage_free(d, &s);
	return rc;
}

int rb_guest_ndp_unreg_file(struct rb_guest_dev *d, unsigned q, uint32_t key)
{
	int rc = need_files(d);

	if (rc)
		return rc;
	rc = unreg_file_one(d, q, rb_guest_ndp_dev_file(d, key, false));
	if (rc == 0 || rc == -ENOENT)
		rb_guest_ndp_dev_file(d, key, true);
	return rc;
}

static int unreg_file_one(struct rb_guest_dev *d, unsigned q, uint32_t key)
{
	struct rb_ndp_unreg_file u = {.key = key};
	struct stage s;
	uint32_t used, ndp_st = 0;
	uint8_t st;
	int rc;

	if (stage_alloc(d, &s, 16 + sizeof(u), sizeof(ndp_st)))
		return -ENOMEM;
	put_hdr(s.mem, RB_NDP_T_UNREG_FILE, 0);
	memcpy(s.mem + 16, &u, sizeof(u));
	rc = stage_send(d, q, &s, &used, &st);
	if (rc == 0) {
		memcpy(&ndp_st, s.mem + s.rlen, sizeof(ndp_st));
		if (st != RB_VIRTIO_BLK_S_OK) {
			rb_guest_seterr("the device failed the UNREG_FILE request (status %u)", st);
			rc = st == RB_VIRTIO_BLK_S_UNSUPP ? -ENOTSUP : -EIO;
		} else if (ndp_st != RB_NDP_S_OK && ndp_st != RB_NDP_S_STATE_LOST) {
			rb_guest_seterr("no registered file with key %u", key);
			rc = -ENOENT;
		}
	}
	stage_free(d, &s);
	return rc;
}

/* ---- one staged request, for the other NDP files (gds.c) ------------------- */

int rb_guest_ndp_xfer(struct rb_guest_dev *d, unsigned q, uint32_t type, uint64_t sector,
		      const void *in, size_t in_len, void *out, size_t out_len, uint8_t *vstatus)
{
	struct stage s;
	uint32_t used;
	int rc = need_ndp(d);

	if (rc)
		return rc;
	if (d->t->direct) {
		rb_guest_seterr("the %s transport does not send this NDP request", d->t->name);
		return -ENOTSUP;
	}
	if (stage_alloc_in(d, q < d->nq ? &d->q[q] : NULL, &s, 16 + in_len, out_len)) {
		rb_guest_seterr("no DMA memory for an NDP request");
		return -ENOMEM;
	}
	put_hdr(s.mem, type, sector);
	memcpy(s.mem + 16, in, in_len);
	rc = stage_send(d, q, &s, &used, vstatus);
	if (rc == 0)
		memcpy(out, s.mem + s.rlen, out_len);
	stage_free(d, &s);
	return rc;
}
