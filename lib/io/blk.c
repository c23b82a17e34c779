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
#include <sys/ioctl.h>
#include <unistd.h>

static void count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

void rb_io_req_finish(struct rb_io_req *req, uint32_t used_len)
{
	struct rb_io_queue *q = req->q;

	rb_virtq_push(&q->vq, req->chain.head, used_len);
	q->need_notify = true;
	q->inflight--;
	req->next_free = q->free;
	q->free = req;
}

/* Writes the status byte and gives the request back. */
static void complete(struct rb_io_req *req, uint8_t status, uint32_t data_written)
{
	if (status != RB_VIRTIO_BLK_S_OK)
		count(&req->q->disk->st_errors, 1);
	*req->blk.status = status;
	rb_io_req_finish(req, data_written + 1);
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
		io_uring_submit(&w->ring);
		w->sq_pending = 0;
		sqe = io_uring_get_sqe(&w->ring);
	}
	if (sqe) {
		io_uring_sqe_set_data(sqe, req);
		w->sq_pending++;
		w->sq_inflight++;
	}
	return sqe;
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
	submit_rw(w, req);
}

/* Charges the read or write to the VM's throttle group and submits it;
 * parked (and resumed here) while the group has no budget. */
static void submit_rw(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_disk *d = req->q->disk;
	struct rb_blk_req *b = &req->blk;
	bool write = b->hdr.type == RB_VIRTIO_BLK_T_OUT;
	uint64_t off = b->hdr.sector * RB_VIRTIO_BLK_SECTOR, bytes = b->data_bytes;

	if (!rb_io_throttle(w, req, 1, &write, &bytes, true, submit_rw))
		return;
	count(&d->st_guest_ios, 1);
	/* O_DIRECT needs aligned buffers and offsets; the rare request that
	 * is not goes through the page cache (Linux keeps the two coherent). */
	int fd = d->fd;
	if (d->direct && (!iov_aligned(b->iov, b->iovcnt, d->dio_align) ||
			  (off | b->data_bytes) & (d->dio_align - 1)))
		fd = d->fd_buffered;
	struct io_uring_sqe *sqe = rb_io_submit_point(w, req);
	if (!sqe) {
		rb_io_unadmit(w, req, 1);
		complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	req->expected = b->data_bytes;
	if (write)
		io_uring_prep_writev(sqe, fd, b->iov, b->iovcnt, off);
	else
		io_uring_prep_readv(sqe, fd, b->iov, b->iovcnt, off);
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
		rb_io_unadmit(w, req, 1);
		complete(req, rc == 0 ? RB_VIRTIO_BLK_S_OK : RB_VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	/* Discard, and write-zeroes that may unmap, punch a hole (it reads
	 * back as zeros); plain write-zeroes keeps the blocks allocated. */
	int mode = FALLOC_FL_KEEP_SIZE |
		   (wz && !(r->flags & 1) ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE);
	struct io_uring_sqe *sqe = rb_io_submit_point(w, req);
	if (!sqe) {
		rb_io_unadmit(w, req, 1);
		complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	req->expected = 0;
	io_uring_prep_fallocate(sqe, d->fd, mode, (off_t)(r->sector * RB_VIRTIO_BLK_SECTOR),
				(off_t)bytes);
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
	req->ndp = NULL;
	req->qos_free = false;
	rb_io_throttle_new_step(req);
	if (type >= RB_NDP_T_BASE && type < RB_NDP_T_BASE + 0x100) {
		rb_ndp_io_start(w, req, type);
		return;
	}
	int st = rb_blk_req_parse(&req->chain, &req->blk, err, sizeof(err));

	if (st < 0) {
		rb_io_guest_log(q, "request without a status byte: %s", err);
		count(&d->st_bad_chains, 1);
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
	case RB_VIRTIO_BLK_T_FLUSH: {
		struct io_uring_sqe *sqe = rb_io_submit_point(w, req);
		if (!sqe) {
			complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
			return;
		}
		req->expected = 0;
		io_uring_prep_fsync(sqe, d->fd, IORING_FSYNC_DATASYNC);
		return;
	}
	case RB_VIRTIO_BLK_T_GET_ID: {
		size_t n = copy_to_iov(req->blk.iov, req->blk.iovcnt, d->serial, sizeof(d->serial));
		count(&d->st_ids, 1);
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
	case RB_VIRTIO_BLK_T_OUT: {
		bool write = b->hdr.type == RB_VIRTIO_BLK_T_OUT;
		if (res < 0 || (uint64_t)res != req->expected) {
			rb_err(d->name, "%s of %llu bytes at sector %llu failed: %s", write ? "write" : "read",
			       (unsigned long long)req->expected, (unsigned long long)b->hdr.sector,
			       res < 0 ? strerror(-res) : "short transfer");
			complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
			return;
		}
		if (write) {
			count(&d->st_writes, 1);
			count(&d->st_bytes_written, (uint64_t)res);
			complete(req, RB_VIRTIO_BLK_S_OK, 0);
		} else {
			count(&d->st_reads, 1);
			count(&d->st_bytes_read, (uint64_t)res);
			complete(req, RB_VIRTIO_BLK_S_OK, (uint32_t)res);
		}
		return;
	}
	case RB_VIRTIO_BLK_T_FLUSH:
		if (res < 0)
			rb_err(d->name, "flush failed: %s", strerror(-res));
		else
			count(&d->st_flushes, 1);
		complete(req, res < 0 ? RB_VIRTIO_BLK_S_IOERR : RB_VIRTIO_BLK_S_OK, 0);
		return;
	case RB_VIRTIO_BLK_T_DISCARD:
	case RB_VIRTIO_BLK_T_WRITE_ZEROES: {
		bool wz = b->hdr.type == RB_VIRTIO_BLK_T_WRITE_ZEROES;
		if (res == -EOPNOTSUPP && wz)
			res = write_zeroes_slow(d, b->range.sector * RB_VIRTIO_BLK_SECTOR,
						(uint64_t)b->range.num_sectors * RB_VIRTIO_BLK_SECTOR);
		if (res == -EOPNOTSUPP && !wz) {
			/* Discard is a hint: a filesystem without hole punching
			 * has nothing to free, which is still success. */
			res = 0;
		}
		if (res < 0)
			rb_err(d->name, "%s failed: %s", wz ? "write-zeroes" : "discard", strerror(-res));
		else
			count(wz ? &d->st_wz : &d->st_discards, 1);
		complete(req, res < 0 ? RB_VIRTIO_BLK_S_IOERR : RB_VIRTIO_BLK_S_OK, 0);
		return;
	}
	}
	complete(req, RB_VIRTIO_BLK_S_IOERR, 0);
}
