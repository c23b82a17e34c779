/* SPDX-License-Identifier: MIT */
/*
 * Per-VM throttling on the I/O path (multi-path collaborative throttling):
 * every I/O that reaches io_uring is charged to its disk's throttle group
 * first (lib/qos), whether the guest asked for it or a program did.  A step
 * over budget is parked in its own queue and resumed by the worker; it
 * never blocks the worker, other queues or other VMs, and a stopping queue
 * lets its parked steps go without waiting for their budget.
 */
#include "io_internal.h"

#include <string.h>
#include <time.h>

uint64_t rb_io_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void rb_io_throttle_new_step(struct rb_io_req *req)
{
	memset(req->qt, 0, sizeof(req->qt));
}

static void park(struct rb_io_queue *q, struct rb_io_req *req, uint64_t until,
		 void (*resume)(struct rb_worker *, struct rb_io_req *))
{
	req->park_until_ns = until;
	req->park_resume = resume;
	req->park_next = NULL;
	if (q->park_tail)
		q->park_tail->park_next = req;
	else
		q->park_head = req;
	q->park_tail = req;
}

bool rb_io_throttle(struct rb_worker *w, struct rb_io_req *req, unsigned n, const bool *write,
		    const uint64_t *bytes, void (*resume)(struct rb_worker *, struct rb_io_req *))
{
	struct rb_qos_disk *g = req->q->disk->qos;
	uint64_t now, wait = 0;

	(void)w;
	if (!g || req->qos_free)
		return true;
	now = rb_io_now_ns();
	for (unsigned i = 0; i < n && i < RB_NDP_MAX_NEXT_IOS; i++) {
		uint64_t t = rb_qos_charge(g, &req->qt[i], write[i], bytes[i], now);
		if (t > wait)
			wait = t;
	}
	if (!wait)
		return true;
	park(req->q, req, now + wait, resume);
	return false;
}

unsigned rb_io_throttle_run(struct rb_worker *w, struct rb_io_queue *q, uint64_t now_ns)
{
	unsigned n = 0;

	/* Oldest first: a step that must wait again goes back to the end,
	 * so one pass resumes each step at most once. */
	for (struct rb_io_req *stop = q->park_tail; q->park_head;) {
		struct rb_io_req *req = q->park_head;
		if (req->park_until_ns > now_ns)
			break;
		q->park_head = req->park_next;
		if (!q->park_head)
			q->park_tail = NULL;
		req->park_resume(w, req);
		n++;
		if (req == stop)
			break;
	}
	return n;
}

void rb_io_throttle_flush(struct rb_worker *w, struct rb_io_queue *q)
{
	while (q->park_head) {
		struct rb_io_req *req = q->park_head;
		q->park_head = req->park_next;
		if (!q->park_head)
			q->park_tail = NULL;
		req->qos_free = true;
		req->park_resume(w, req);
	}
}

uint64_t rb_io_throttle_next_ns(const struct rb_worker *w)
{
	uint64_t next = 0;

	for (unsigned i = 0; i < w->nq; i++) {
		const struct rb_io_req *h = w->queues[i]->park_head;
		if (h && (!next || h->park_until_ns < next))
			next = h->park_until_ns;
	}
	return next;
}
