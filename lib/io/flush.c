/* SPDX-License-Identifier: MIT */
/*
 * Write ordering for FLUSH: a flush is submitted, as fdatasync of the
 * image, only after every write of its queue that was in flight when it
 * arrived has completed, and each queue has at most one fdatasync in
 * flight (flushes ready meanwhile share the next one).  Never IOSQE_IO_DRAIN:
 * the ring is the worker's, shared by every VM it serves.
 */
#include "io_internal.h"

#include <rosen/log.h>

#include <errno.h>
#include <string.h>

/* ---- writes in flight, oldest first ------------------------------------------- */

void rb_io_write_begin(struct rb_io_req *req)
{
	struct rb_io_queue *q = req->q;

	req->wr_seq = q->wr_next_seq++;
	req->wr_next = NULL;
	req->wr_prev = q->wr_tail;
	if (q->wr_tail)
		q->wr_tail->wr_next = req;
	else
		q->wr_head = req;
	q->wr_tail = req;
	req->wr_active = true;
}

static void flush_kick(struct rb_worker *w, struct rb_io_queue *q);

/* Flushes at the front of the waiting list whose writes are all done. */
static void release_ready(struct rb_worker *w, struct rb_io_queue *q)
{
	bool moved = false;

	while (q->fl_wait_head &&
	       (!q->wr_head || q->wr_head->wr_seq >= q->fl_wait_head->wr_seq)) {
		struct rb_io_req *f = q->fl_wait_head;
		q->fl_wait_head = f->fl_next;
		if (!q->fl_wait_head)
			q->fl_wait_tail = NULL;
		f->fl_next = NULL;
		if (q->fl_ready_tail)
			q->fl_ready_tail->fl_next = f;
		else
			q->fl_ready_head = f;
		q->fl_ready_tail = f;
		moved = true;
	}
	if (moved)
		flush_kick(w, q);
}

void rb_io_write_end(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_io_queue *q = req->q;

	if (!req->wr_active)
		return;
	req->wr_active = false;
	if (req->wr_prev)
		req->wr_prev->wr_next = req->wr_next;
	else
		q->wr_head = req->wr_next;
	if (req->wr_next)
		req->wr_next->wr_prev = req->wr_prev;
	else
		q->wr_tail = req->wr_prev;
	req->wr_prev = req->wr_next = NULL;
	/* Only the oldest write holds flushes back. */
	if (q->fl_wait_head)
		release_ready(w, q);
}

/* ---- flushes ---------------------------------------------------------------- */

static void flush_finish(struct rb_io_req *f, int res)
{
	if (res < 0)
		rb_io_count(&f->q->st.errors, 1);
	else
		rb_io_count(&f->q->st.flushes, 1);
	*f->blk.status = res < 0 ? RB_VIRTIO_BLK_S_IOERR : RB_VIRTIO_BLK_S_OK;
	f->rstatus = rb_io_rs_virtio(*f->blk.status);
	rb_io_req_finish(f, 1);
}

/* Submits one fdatasync for every ready flush, unless one is in flight. */
static void flush_kick(struct rb_worker *w, struct rb_io_queue *q)
{
	struct rb_io_req *leader = q->fl_ready_head;

	if (q->fl_leader || !leader)
		return;
	q->fl_riders = leader->fl_next;
	q->fl_ready_head = q->fl_ready_tail = NULL;
	leader->fl_next = NULL;
	q->fl_leader = leader;
	struct io_uring_sqe *sqe = rb_io_submit_point(w, leader);
	if (!sqe) {
		rb_io_flush_done(w, leader, -EBUSY);
		return;
	}
	leader->expected = 0;
	io_uring_prep_fsync(sqe, q->disk->fd, IORING_FSYNC_DATASYNC);
}

void rb_io_flush_start(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_io_queue *q = req->q;

	req->fl_next = NULL;
	req->wr_seq = q->wr_next_seq; /* covers every write begun before it */
	if (q->wr_head) {
		if (q->fl_wait_tail)
			q->fl_wait_tail->fl_next = req;
		else
			q->fl_wait_head = req;
		q->fl_wait_tail = req;
		return;
	}
	if (q->fl_ready_tail)
		q->fl_ready_tail->fl_next = req;
	else
		q->fl_ready_head = req;
	q->fl_ready_tail = req;
	flush_kick(w, q);
}

void rb_io_flush_done(struct rb_worker *w, struct rb_io_req *req, int res)
{
	struct rb_io_queue *q = req->q;
	struct rb_io_req *riders = q->fl_riders;
	unsigned n = 1;

	if ((res == -EAGAIN || res == -EINTR) && req->retries < RB_IO_MAX_RETRIES) {
		struct io_uring_sqe *sqe = rb_io_submit_point(w, req);
		if (sqe) {
			req->retries++;
			io_uring_prep_fsync(sqe, q->disk->fd, IORING_FSYNC_DATASYNC);
			return;
		}
	}

	q->fl_leader = NULL;
	q->fl_riders = NULL;
	for (struct rb_io_req *r = riders; r; r = r->fl_next)
		n++;
	if (res < 0)
		rb_io_storage_log(q, "flush (fdatasync of %s) failed: %s; %u flush request%s answered IOERR",
				  q->disk->path, strerror(-res), n, n == 1 ? "" : "s");
	flush_finish(req, res);
	while (riders) {
		struct rb_io_req *r = riders;
		riders = r->fl_next;
		r->fl_next = NULL;
		flush_finish(r, res);
	}
	/* Flushes that became ready while this one was in flight. */
	flush_kick(w, q);
}
