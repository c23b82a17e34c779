/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk request state machine: parse a popped chain, check it
 * against the disk (range, read-only), turn it into io_uring operations at
 * one submission point, and complete it with a status byte.  Every request
 * popped is given back exactly once, whatever the guest sent.
 */
#include "io_internal.h"

#include <rosen/log.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/ioctl.h>
#include <unistd.h>

void rb_io_req_finish(struct rb_io_req *req, uint32_t used_len)
{
	struct rb_io_queue *q = req->q;
	struct rb_io_qstats *st = &q->st;

	rb_virtq_push(&q->vq, req->chain.head, used_len);
	q->need_notify = true;
	q->inflight--;
	/* Counted once, here: by type and outcome, and its latency from the
	 * ring poll that took it (rb_io_clock: a clock read per batch). */
	/* (Answered in the batch that took it, without I/O: its own read.) */
	if (q->worker->clock_ns == req->t_pop_ns)
		rb_io_clock_stale(q->worker);
	uint64_t now = rb_io_clock(q->worker);
	uint64_t ns = now > req->t_pop_ns ? now - req->t_pop_ns : 0;
	unsigned b = rb_io_lat_bucket(ns);
	rb_io_count(&st->req[req->rtype][req->rstatus], 1);
	rb_io_count(&st->lat[req->rtype][b], 1);
	rb_io_count(&st->lat_sum_ns[req->rtype], ns);
	atomic_store_explicit(&st->inflight, q->inflight, memory_order_relaxed);
	req->next_free = q->free;
	q->free = req;
}

bool rb_io_handing_over(const struct rb_io_queue *q)
{
	return q->vq.inflight && atomic_load_explicit(&q->disk->handover, memory_order_relaxed);
}

void rb_io_req_abandon(struct rb_io_req *req)
{
	struct rb_io_queue *q = req->q;

	rb_io_write_end(q->worker, req); /* flushes do not wait for it */
	q->inflight--;
	q->handed_over++;
	req->next_free = q->free;
	q->free = req;
}

/* Writes the status byte and gives the request back; a write it was
 * lets the flushes waiting for it go. */
static void complete(struct rb_io_req *req, uint8_t status, uint32_t data_written)
{
	if (status != RB_VIRTIO_BLK_S_OK)
		rb_io_count(&req->q->st.errors, 1);
	req->rstatus = rb_io_rs_virtio(status);
	*req->blk.status = status;
	rb_io_write_end(req->q->worker, req);
	rb_io_req_finish(req, data_written + 1);
}

/* The request type of a header's type field, for metrics. */
static uint8_t rtype_of(uint32_t type)
{
	switch (type) {
	case RB_VIRTIO_BLK_T_IN: return RB_IO_RT_READ;
	case RB_VIRTIO_BLK_T_OUT: return RB_IO_RT_WRITE;
	case RB_VIRTIO_BLK_T_FLUSH: return RB_IO_RT_FLUSH;
	case RB_VIRTIO_BLK_T_GET_ID: return RB_IO_RT_GET_ID;
	case RB_VIRTIO_BLK_T_DISCARD: return RB_IO_RT_DISCARD;
	case RB_VIRTIO_BLK_T_WRITE_ZEROES: return RB_IO_RT_WRITE_ZEROES;
	case RB_NDP_T_PROBE: return RB_IO_RT_NDP_PROBE;
	case RB_NDP_T_LOAD: return RB_IO_RT_NDP_LOAD;
	case RB_NDP_T_UNLOAD: return RB_IO_RT_NDP_UNLOAD;
	case RB_NDP_T_READ_ND: return RB_IO_RT_READ_ND;
	case RB_NDP_T_WRITE_ND: return RB_IO_RT_WRITE_ND;
	case RB_NDP_T_REG_MEM: return RB_IO_RT_REG_MEM;
	case RB_NDP_T_UNREG_MEM: return RB_IO_RT_UNREG_MEM;
	case RB_NDP_T_REG_FILE: return RB_IO_RT_REG_FILE;
	case RB_NDP_T_UNREG_FILE: return RB_IO_RT_UNREG_FILE;
	case RB_NDP_T_REG_GPU: return RB_IO_RT_REG_GPU;
	case RB_NDP_T_UNREG_GPU: return RB_IO_RT_UNREG_GPU;
	case RB_NDP_T_GPU_SUM: return RB_IO_RT_GPU_SUM;
	}
	return RB_IO_RT_OTHER;
}

static bool iov_aligned(const struct iovec *iov, unsigned n, unsigned align)
{
	for (unsigned i = 0; i < n; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (align - 1))
			return false;
	return true;
}

static size_t copy_to_iov(const struct iovec *iov, unsigned n, const void *src, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t c = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		memcpy(iov[i].iov_base, (const uint8_t *)src + done, c);
		done += c;
	}
	return done;
}

/*
 * The one place where storage I/O of every request leaves the daemon:
 * per-VM throttling (a later issue) charges here, for requests from the
 * guest and, later, for I/O that NDP programs issue.
 */
struct io_uring_sqe *rb_io_submit_point(struct rb_worker *w, struct rb_io_req *req)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		/* Flush what is queued and retry: the ring holds more entries
		 * than all queues of a worker can have in flight at once. */
		rb_io_fault_sqes(w);
		io_uring_submit(&w->ring);
		w->sq_pending = 0;
		sqe = io_uring_get_sqe(&w->ring);
	}
	if (sqe) {
		io_uring_sqe_set_data(sqe, req);
		w->sq_pending++;
		w->sq_inflight++;
		req->sqes++;
		req->idle_s = 0;
	}
	return sqe;
}

bool rb_io_read_inline(struct rb_worker *w, struct rb_io_req *req, int fd, const struct iovec *iov,
		       int iovcnt, uint64_t off, uint64_t want)
{
	struct rb_disk *d = req->q->disk;

	if (fd != d->fd_buffered || w->inl_n == RB_IO_INLINE_MAX ||
	    !atomic_load_explicit(&d->inline_reads, memory_order_relaxed) || !rb_io_fault_inline_ok(w))
		return false;
	ssize_t n = preadv2(fd, iov, iovcnt, (off_t)off, RWF_NOWAIT);
	rb_io_clock_stale(w); /* a syscall: the next request reads the clock */
	if (n != (ssize_t)want) {
		if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
			/* A file that cannot do RWF_NOWAIT: not again. */
			atomic_store_explicit(&d->inline_reads, false, memory_order_relaxed);
			rb_info(d->name, "%s cannot be read without waiting (RWF_NOWAIT: %s): every read goes through io_uring",
				d->path, strerror(errno));
		}
		/* A miss (EAGAIN), a part cached (short) or an error: the whole
		 * read through io_uring, which reports what is wrong. */
		rb_io_count(&req->q->st.inline_misses, 1);
		return false;
	}
	rb_io_count(&req->q->st.inline_hits, 1);
	/* In flight until reap() hands its result over, like an SQE. */
	req->sqes++;
	req->idle_s = 0;
	w->sq_inflight++;
	w->inl[(w->inl_head + w->inl_n++) % RB_IO_INLINE_MAX] = (struct rb_io_inline){req, (int)n};
	return true;
}

/* The readv/writev of `bytes` at `off` into/from b->iov.  false: no SQE. */
static bool prep_rw(struct rb_worker *w, struct rb_io_req *req, uint64_t off, uint64_t bytes)
{
	struct rb_disk *d = req->q->disk;
	struct rb_blk_req *b = &req->blk;

	/* O_DIRECT needs aligned buffers and offsets; the rare request that
	 * is not (or the rest of a short transfer) goes through the page
	 * cache (Linux keeps the two coherent). */
	int fd = d->fd;
	if (d->direct && (!iov_aligned(b->iov, b->iovcnt, d->dio_align) ||
			  (off | bytes) & (d->dio_align - 1)))
		fd = d->fd_buffered;
	req->expected = bytes;
	if (b->hdr.type != RB_VIRTIO_BLK_T_OUT &&
	    rb_io_read_inline(w, req, fd, b->iov, b->iovcnt, off, bytes))
		return true;
	struct io_uring_sqe *sqe = rb_io_submit_point(w, req);
	if (!sqe)
		return false;
	if (b->hdr.type == RB_VIRTIO_BLK_T_OUT)
		io_uring_prep_writev(sqe, fd, b->iov, b->iovcnt, off);
	else
		io_uring_prep_readv(sqe, fd, b->iov, b->iovcnt, off);
	return true;
}

/* Drops the first n bytes of the request's data iovecs (done already). */
static void iov_advance(struct rb_blk_req *b, uint64_t n)
{
	while (n && b->iovcnt) {
		if (n < b->iov[0].iov_len) {
			b->iov[0].iov_base = (uint8_t *)b->iov[0].iov_base + n;
			b->iov[0].iov_len -= n;
			return;
		}
		n -= b->iov[0].iov_len;
		b->iov++;
		b->iovcnt--;
	}
}

static void submit_rw(struct rb_worker *w, struct rb_io_req *req);

static void start_rw(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_disk *d = req->q->disk;
	struct rb_blk_req *b = &req->blk;
	bool write = b->hdr.type == RB_VIRTIO_BLK_T_OUT;

	if (write && d->readonly) {
		rb_io_guest_log(req->q, "write to read-only disk at sector %llu refused",
				(unsigned long long)b->hdr.sector);
		complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	if (!rb_blk_range_ok(b->hdr.sector, b->data_bytes, rb_io_capacity(d))) {
		rb_io_guest_log(req->q, "%s of %llu bytes at sector %llu is outside the disk (%llu sectors)",
				write ? "write" : "read", (unsigned long long)b->data_bytes,
				(unsigned long long)b->hdr.sector,
				(unsigned long long)rb_io_capacity(d));
		complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	if (b->data_bytes == 0) {
		complete(req, RB_VIRTIO_BLK_S_OK, 0);
		return;
	}
	if (write)
		rb_io_write_begin(req); /* flushes after it wait for it */
	submit_rw(w, req);
}

/* Charges the read or write to the VM's throttle group and submits it;
 * parked (and resumed here) while the group has no budget. */
static void submit_rw(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_blk_req *b = &req->blk;
	bool write = b->hdr.type == RB_VIRTIO_BLK_T_OUT;
	uint64_t off = b->hdr.sector * RB_VIRTIO_BLK_SECTOR, bytes = b->data_bytes;

	if (!rb_io_throttle(w, req, 1, &write, &bytes, true, submit_rw))
		return;
	rb_io_count(&req->q->st.guest_ios, 1);
	if (!prep_rw(w, req, off, bytes)) {
		rb_io_unadmit(w, req, 1);
		complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
	}
}

static bool prep_discard_wz(struct rb_worker *w, struct rb_io_req *req)
{
	const struct rb_virtio_blk_discard_wz *r = &req->blk.range;
	bool wz = req->blk.hdr.type == RB_VIRTIO_BLK_T_WRITE_ZEROES;
	uint64_t bytes = (uint64_t)r->num_sectors * RB_VIRTIO_BLK_SECTOR;
	/* Discard, and write-zeroes that may unmap, punch a hole (it reads
	 * back as zeros); plain write-zeroes keeps the blocks allocated. */
	int mode = FALLOC_FL_KEEP_SIZE |
		   (wz && !(r->flags & 1) ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE);
	struct io_uring_sqe *sqe = rb_io_submit_point(w, req);

	if (!sqe)
		return false;
	req->expected = 0;
	io_uring_prep_fallocate(sqe, req->q->disk->fd, mode,
				(off_t)(r->sector * RB_VIRTIO_BLK_SECTOR), (off_t)bytes);
	return true;
}

static void submit_discard_wz(struct rb_worker *w, struct rb_io_req *req);

static void start_discard_wz(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_disk *d = req->q->disk;
	const struct rb_virtio_blk_discard_wz *r = &req->blk.range;
	bool wz = req->blk.hdr.type == RB_VIRTIO_BLK_T_WRITE_ZEROES;
	uint64_t bytes = (uint64_t)r->num_sectors * RB_VIRTIO_BLK_SECTOR;

	if (d->readonly) {
		rb_io_guest_log(req->q, "%s on a read-only disk refused", wz ? "write-zeroes" : "discard");
		complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	if (!rb_blk_range_ok(r->sector, bytes, rb_io_capacity(d))) {
		rb_io_guest_log(req->q, "%s of %u sectors at sector %llu is outside the disk",
				wz ? "write-zeroes" : "discard", r->num_sectors,
				(unsigned long long)r->sector);
		complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	if (bytes == 0) {
		complete(req, RB_VIRTIO_BLK_S_OK, 0);
		return;
	}
	rb_io_write_begin(req);
	submit_discard_wz(w, req);
}

/*
 * Charged as writes: write-zeroes as a write of its length (QEMU does the
 * same), a discard as one write I/O of no bytes (QEMU charges nothing; a
 * guest flooding discards would then punch holes for free, so here it
 * counts against the iops limits, not the bps ones).
 */
static void submit_discard_wz(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_disk *d = req->q->disk;
	const struct rb_virtio_blk_discard_wz *r = &req->blk.range;
	bool wz = req->blk.hdr.type == RB_VIRTIO_BLK_T_WRITE_ZEROES, write = true;
	uint64_t bytes = (uint64_t)r->num_sectors * RB_VIRTIO_BLK_SECTOR;
	uint64_t charged = wz ? bytes : 0;

	if (!rb_io_throttle(w, req, 1, &write, &charged, true, submit_discard_wz))
		return;
	if (d->is_blockdev) {
		/* Block devices take these as (synchronous) ioctls. */
		uint64_t range[2] = {r->sector * RB_VIRTIO_BLK_SECTOR, bytes};
		int rc = ioctl(d->fd, wz ? BLKZEROOUT : BLKDISCARD, range);
		rb_io_clock_stale(w);
		rb_io_unadmit(w, req, 1);
		complete(req, rc == 0 ? RB_VIRTIO_BLK_S_OK : RB_VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	if (!prep_discard_wz(w, req)) {
		rb_io_unadmit(w, req, 1);
		complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
	}
}

void rb_blk_start(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_io_queue *q = req->q;
	struct rb_disk *d = q->disk;
	char err[256];
	uint32_t type = UINT32_MAX;

	/* NDP requests use vendor types; peek at the type (copied once, from
	 * however many descriptors the header spans) and hand them over.  The
	 * NDP parser gathers and re-checks it. */
	if (req->chain.read_bytes >= sizeof(type))
		rb_iov_gather(req->chain.iov, req->chain.n_read, 0, &type, sizeof(type));
	req->rtype = rtype_of(type);
	req->ndp = NULL;
	req->qos_free = false;
	req->retries = 0;
	req->done_bytes = 0;
	rb_io_throttle_new_step(req);
	if (type >= RB_NDP_T_BASE && type < RB_NDP_T_BASE + 0x100) {
		rb_ndp_io_start(w, req, type);
		return;
	}
	int st = rb_blk_req_parse(&req->chain, &req->blk, err, sizeof(err));

	if (st < 0) {
		rb_io_guest_log(q, "request without a status byte: %s", err);
		rb_io_count(&q->st.bad_chains, 1);
		rb_io_req_finish(req, 0);
		return;
	}
	if (st != RB_VIRTIO_BLK_S_OK) {
		rb_io_guest_log(q, "request refused: %s", err);
		complete(req, (uint8_t)st, 0);
		return;
	}
	switch (req->blk.hdr.type) {
	case RB_VIRTIO_BLK_T_IN:
	case RB_VIRTIO_BLK_T_OUT:
		start_rw(w, req);
		return;
	case RB_VIRTIO_BLK_T_FLUSH:
		/* After the writes in flight on this queue (flush.c). */
		rb_io_flush_start(w, req);
		return;
	case RB_VIRTIO_BLK_T_GET_ID: {
		size_t n = copy_to_iov(req->blk.iov, req->blk.iovcnt, d->serial, sizeof(d->serial));
		rb_io_count(&q->st.ids, 1);
		complete(req, RB_VIRTIO_BLK_S_OK, (uint32_t)n);
		return;
	}
	case RB_VIRTIO_BLK_T_DISCARD:
	case RB_VIRTIO_BLK_T_WRITE_ZEROES:
		start_discard_wz(w, req);
		return;
	}
	/* rb_blk_req_parse answers UNSUPP for every other type. */
	complete(req, RB_VIRTIO_BLK_S_UNSUPP, 0);
}

/* Fallback for WRITE_ZEROES where the filesystem has no ZERO_RANGE. */
static int write_zeroes_slow(struct rb_disk *d, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536];

	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		ssize_t w = pwrite(d->fd_buffered, zeros, n, (off_t)off);
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

/*
 * A read or write completed.  Short transfers are not errors of the
 * device: the rest is submitted again (a FUSE or network filesystem may
 * return less, a signal may cut a transfer), while it makes progress, at
 * most RB_IO_MAX_RETRIES times; so is one that ended with -EAGAIN/-EINTR.
 * A read that returns nothing is the end of the image: truncated under
 * the daemon.  It fails at once (IOERR) rather than handing the guest
 * zeros for data that was there.
 */
static void rw_done(struct rb_worker *w, struct rb_io_req *req, int res)
{
	struct rb_disk *d = req->q->disk;
	struct rb_blk_req *b = &req->blk;
	bool write = b->hdr.type == RB_VIRTIO_BLK_T_OUT;
	const char *why = NULL;

	if (res >= 0 && (uint64_t)res < req->expected && res > 0) {
		req->done_bytes += (uint64_t)res;
		iov_advance(b, (uint64_t)res);
		why = "short transfer";
	} else if (res == -EAGAIN || res == -EINTR) {
		why = strerror(-res);
	}
	if (why && req->retries < RB_IO_MAX_RETRIES) {
		uint64_t left = b->data_bytes - req->done_bytes;
		req->retries++;
		rb_debug(d->name, "queue %u: %s of %llu bytes at sector %llu: %s; submitting the remaining %llu bytes again (retry %u of %u)",
			 req->q->index, write ? "write" : "read", (unsigned long long)b->data_bytes,
			 (unsigned long long)b->hdr.sector, why, (unsigned long long)left, req->retries,
			 RB_IO_MAX_RETRIES);
		if (prep_rw(w, req, b->hdr.sector * RB_VIRTIO_BLK_SECTOR + req->done_bytes, left))
			return;
		res = -EBUSY;
	}
	if (res >= 0 && (uint64_t)res == req->expected) {
		uint64_t all = req->done_bytes + (uint64_t)res;
		if (write) {
			rb_io_count(&req->q->st.writes, 1);
			rb_io_count(&req->q->st.bytes_written, all);
			complete(req, RB_VIRTIO_BLK_S_OK, 0);
		} else {
			rb_io_count(&req->q->st.reads, 1);
			rb_io_count(&req->q->st.bytes_read, all);
			complete(req, RB_VIRTIO_BLK_S_OK, (uint32_t)all);
		}
		return;
	}
	if (res == 0 && !write)
		rb_io_storage_log(req->q, "read of %llu bytes at sector %llu: end of %s after %llu bytes: the image is shorter than the disk's %llu sectors (truncated under the daemon?); IOERR",
				  (unsigned long long)b->data_bytes, (unsigned long long)b->hdr.sector,
				  d->path, (unsigned long long)req->done_bytes,
				  (unsigned long long)d->capacity_sectors);
	else
		rb_io_storage_log(req->q, "%s of %llu bytes at sector %llu failed: %s; IOERR",
				  write ? "write" : "read", (unsigned long long)b->data_bytes,
				  (unsigned long long)b->hdr.sector,
				  res < 0 ? strerror(-res)
				  : req->retries >= RB_IO_MAX_RETRIES ? "still short after retries"
								       : "no progress");
	complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
}

void rb_blk_io_done(struct rb_worker *w, struct rb_io_req *req, int res)
{
	struct rb_disk *d = req->q->disk;
	struct rb_blk_req *b = &req->blk;

	if (req->load) {
		rb_ndp_load_done(w, req, res);
		return;
	}
	if (req->ndp) {
		rb_ndp_io_done(w, req, res);
		return;
	}
	switch (b->hdr.type) {
	case RB_VIRTIO_BLK_T_IN:
	case RB_VIRTIO_BLK_T_OUT:
		rw_done(w, req, res);
		return;
	case RB_VIRTIO_BLK_T_FLUSH:
		rb_io_flush_done(w, req, res);
		return;
	case RB_VIRTIO_BLK_T_DISCARD:
	case RB_VIRTIO_BLK_T_WRITE_ZEROES: {
		bool wz = b->hdr.type == RB_VIRTIO_BLK_T_WRITE_ZEROES;
		if ((res == -EAGAIN || res == -EINTR) && req->retries < RB_IO_MAX_RETRIES) {
			req->retries++;
			if (prep_discard_wz(w, req))
				return;
			res = -EBUSY;
		}
		if (res == -EOPNOTSUPP && wz) {
			res = write_zeroes_slow(d, b->range.sector * RB_VIRTIO_BLK_SECTOR,
						(uint64_t)b->range.num_sectors * RB_VIRTIO_BLK_SECTOR);
			rb_io_clock_stale(w); /* synchronous writes took time */
		}
		if (res == -EOPNOTSUPP && !wz) {
			/* Discard is a hint: a filesystem without hole punching
			 * has nothing to free, which is still success. */
			res = 0;
		}
		if (res < 0)
			rb_io_storage_log(req->q, "%s of %u sectors at sector %llu failed: %s",
					  wz ? "write-zeroes" : "discard", b->range.num_sectors,
					  (unsigned long long)b->range.sector, strerror(-res));
		else
			rb_io_count(wz ? &req->q->st.wz : &req->q->st.discards, 1);
		complete(req, res < 0 ? RB_VIRTIO_BLK_S_IOERR : RB_VIRTIO_BLK_S_OK, 0);
		return;
	}
	}
	complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
}
