/* SPDX-License-Identifier: MIT */
/*
 * The storage watchdog: about once a second while a worker has I/O in
 * flight, it cancels the storage I/O of any request that has waited
 * --io-timeout seconds since its last submission or completion, so the
 * request ends with a status and a drain (which holds the control thread
 * every VM shares) ends.  It never touches a LOAD (bounded elsewhere) and
 * never completes a request itself: the cancelled I/O's CQE does.
 */
#include "io_internal.h"

#include <rosen/log.h>

void rb_io_watch(struct rb_worker *w)
{
	unsigned timeout = atomic_load_explicit(&w->io_timeout_s, memory_order_relaxed);
	uint64_t now = rb_io_now_us();

	if (!timeout || now - w->watch_last_us < 1000000u)
		return;
	w->watch_last_us = now;
	for (unsigned k = 0; k < w->nq; k++) {
		struct rb_io_queue *q = w->queues[k];
		if (!q->inflight)
			continue;
		for (unsigned i = 0; i < q->n_reqs; i++) {
			struct rb_io_req *req = &q->reqs[i];
			if (!req->sqes || req->load)
				continue;
			if (req->idle_s < timeout) {
				req->idle_s++;
				continue;
			}
			struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
			if (!sqe)
				return; /* the ring is full: next second */
			/* Every SQE of the request (an NDP round has several).
			 * Again every second while it does not end: a cancel
			 * can miss an I/O io_uring is between two tries of. */
			io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)req, IORING_ASYNC_CANCEL_ALL);
			io_uring_sqe_set_data(sqe, NULL);
			w->sq_pending++;
			w->sq_inflight++;
			if (!req->cancelled)
				rb_io_storage_log(q, "storage I/O in flight for %u s without completing: cancelled, the request fails (is the storage stuck? --io-timeout)",
						  timeout);
			req->cancelled = true;
		}
	}
}
