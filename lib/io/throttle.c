/* SPDX-License-Identifier: MIT */
/*
 * Admission of storage I/O: fair sharing of a worker between its queues
 * (deficit round robin by bytes, see RB_IO_FAIR_QUANTUM), then per-VM
 * throttling (multi-path collaborative throttling):
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

/* Tickets told to wait that will not be retried leave the group's line. */
static void cancel_tickets(struct rb_io_req *req)
{
	struct rb_qos_disk *g = req->q->disk->qos;

	if (g && req->qt_used)
		for (unsigned i = 0; i < RB_NDP_MAX_NEXT_IOS; i++)
			rb_qos_cancel(g, &req->qt[i]);
}

void rb_io_throttle_new_step(struct rb_io_req *req)
{
	/* A disk nothing limits never touches its tickets: nothing to do
	 * on its hop path. */
	if (!req->qt_used)
		return;
	cancel_tickets(req);
	memset(req->qt, 0, sizeof(req->qt));
	req->qt_used = false;
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
		    const uint64_t *bytes, bool charge,
		    void (*resume)(struct rb_worker *, struct rb_io_req *))
{
	struct rb_io_queue *q = req->q;
	struct rb_qos_disk *g = charge && q->disk->qos && rb_qos_disk_limited(q->disk->qos)
					? q->disk->qos
					: NULL;
	uint64_t now = 0, wait = 0;

	if (req->qos_free)
		return true;
	if (n > RB_NDP_MAX_NEXT_IOS)
		n = RB_NDP_MAX_NEXT_IOS;
	/* Out of its share of the worker while others have work: the next
	 * round (the deficit is topped up at the start of each). */
	if (w->contended && q->io_deficit <= 0) {
		now = rb_io_now_ns();
		park(q, req, now, resume);
		return false;
	}
	/* The device is as busy as the worker lets it be: the next free slot
	 * (a step of n I/Os goes whole once some are free, so one larger
	 * than the depth cannot wait forever). */
	if (w->depth_now && w->dev_inflight &&
	    (w->dev_inflight + n > w->depth_now || (w->slot_waiters && !req->slot_turn))) {
		/* Others wait for a slot already: in line with them (a hop of
		 * an NDP chain would otherwise take every slot it frees). */
		req->slot_turn = false;
		w->slot_waiters++;
		park(q, req, RB_IO_PARK_SLOT, resume);
		return false;
	}
	req->slot_turn = false;
	if (g) {
		now = now ? now : rb_io_now_ns();
		req->qt_used = true;
		for (unsigned i = 0; i < n; i++) {
			uint64_t t = rb_qos_charge(g, &req->qt[i], write[i], bytes[i], now);
			if (t > wait)
				wait = t;
		}
		if (wait) {
			park(q, req, now + wait, resume);
			return false;
		}
	}
	if (w->contended)
		for (unsigned i = 0; i < n; i++)
			q->io_deficit -= (int64_t)(bytes[i] > RB_IO_FAIR_MIN_IO ? bytes[i] : RB_IO_FAIR_MIN_IO);
	req->dev_ios += n;
	w->dev_inflight += n;
	return true;
}

void rb_io_unadmit(struct rb_worker *w, struct rb_io_req *req, unsigned k)
{
	if (k > req->dev_ios)
		k = req->dev_ios;
	req->dev_ios -= k;
	w->dev_inflight -= k;
}

/* Takes q's oldest parked step off its list. */
static struct rb_io_req *unpark(struct rb_worker *w, struct rb_io_queue *q)
{
	struct rb_io_req *req = q->park_head;

	q->park_head = req->park_next;
	if (!q->park_head)
		q->park_tail = NULL;
	if (req->park_until_ns == RB_IO_PARK_SLOT)
		w->slot_waiters--;
	return req;
}

unsigned rb_io_throttle_run(struct rb_worker *w, struct rb_io_queue *q, uint64_t now_ns)
{
	unsigned n = 0;

	/* Oldest first: a step that must wait again goes back to the end,
	 * so one pass resumes each step at most once.  A step waiting for a
	 * device slot takes one if there is one, and ends the queue's pass:
	 * the queues take free slots in turns, one per round each. */
	for (struct rb_io_req *stop = q->park_tail; q->park_head;) {
		struct rb_io_req *req = q->park_head;
		bool slot = req->park_until_ns == RB_IO_PARK_SLOT;
		if (slot ? w->depth_now && w->dev_inflight >= w->depth_now
			 : req->park_until_ns > now_ns)
			break;
		unpark(w, q);
		req->slot_turn = slot;
		req->park_resume(w, req);
		n++;
		if (req == stop || slot)
			break;
	}
	return n;
}

void rb_io_throttle_flush(struct rb_worker *w, struct rb_io_queue *q)
{
	while (q->park_head) {
		struct rb_io_req *req = unpark(w, q);
		req->qos_free = true;
		cancel_tickets(req);
		req->park_resume(w, req);
	}
}

uint64_t rb_io_throttle_next_ns(const struct rb_worker *w)
{
	uint64_t next = 0;

	for (unsigned i = 0; i < w->nq; i++) {
		const struct rb_io_req *h = w->queues[i]->park_head;
		if (h && h->park_until_ns != RB_IO_PARK_SLOT && (!next || h->park_until_ns < next))
			next = h->park_until_ns;
	}
	return next;
}
