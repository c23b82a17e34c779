/* SPDX-License-Identifier: MIT */
/*
 * Worker threads: each owns an io_uring and the queues placed on it, polls
 * them, submits in batches and reaps completions in the same loop, and backs
 * off to sleeping on kick/completion eventfds when idle (or always sleeps in
 * event mode).  Queue state is only touched on the owning worker's thread:
 * the control thread reaches it through rb_worker_call().
 */
#include "io_internal.h"

#include <rosen/log.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

uint64_t rb_io_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void queue_vlog(struct rb_io_queue *q, enum rb_log_level level, const char *fmt, va_list ap)
{
	char msg[512];

	if (!rb_log_limit(&q->disk->log_limit, RB_IO_LOG_BURST, q->disk->name))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	rb_log(level, q->disk->name, "queue %u: %s", q->index, msg);
}

void rb_io_guest_log(struct rb_io_queue *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	queue_vlog(q, RB_LOG_WARN, fmt, ap);
	va_end(ap);
}

void rb_io_storage_log(struct rb_io_queue *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	queue_vlog(q, RB_LOG_ERROR, fmt, ap);
	va_end(ap);
}

/* ---- the hot loop ------------------------------------------------------- */

static unsigned poll_queue(struct rb_worker *w, struct rb_io_queue *q)
{
	unsigned n = 0;
	char err[256];

	if (q->stopping || q->vq.broken || q->park_head || q->nwait_head)
		return 0; /* parked steps first: new requests wait in the ring */
	rb_io_clock_stale(w); /* the requests found now share a clock read */
	/* A queue whose programs used up its credit this round takes no new
	 * requests either (an sq hook runs at the start of a request); they
	 * wait in the ring for the next round. */
	/* (With the device slots all taken, a request is still taken: it
	 * waits for its slot in line with the other queues' steps.) */
	while (q->free && q->ndp_credit > 0 && q->io_deficit > 0) {
		struct rb_io_req *req = q->free;
		int rc = rb_virtq_pop(&q->vq, &req->chain, err, sizeof(err));

		if (rc == 0)
			break;
		if (rc == -EIO) {
			if (!q->broken_logged)
				rb_err(q->disk->name, "queue %u: ring is corrupt (%s); no more requests are taken from it until the device is reset",
				       q->index, err);
			q->broken_logged = true;
			break;
		}
		q->free = req->next_free;
		q->inflight++;
		atomic_store_explicit(&q->st.inflight, q->inflight, memory_order_relaxed);
		n++;
		req->t_pop_ns = rb_io_clock(w);
		req->rtype = RB_IO_RT_OTHER;
		req->rstatus = RB_IO_RS_MALFORMED;
		if (rc < 0) {
			rb_io_guest_log(q, "malformed descriptor chain: %s", err);
			rb_io_count(&q->st.bad_chains, 1);
			rb_io_req_finish(req, 0);
			continue;
		}
		rb_blk_start(w, req);
		/* An NDP request may have run a program (its sq hook) or a
		 * LOAD's copy: the next one found reads the clock afresh. */
		if (req->rtype >= RB_IO_RT_NDP_PROBE)
			rb_io_clock_stale(w);
	}
	return n;
}

static unsigned reap(struct rb_worker *w)
{
	struct io_uring_cqe *cqe;
	unsigned n = 0;

	rb_io_clock_stale(w);
	/* Reads done inline, in the order they were done.  Handling one may
	 * do the next (an NDP chain's next hop): as many as the queue's
	 * program credit allows, then the chain is deferred (ndp_io.c). */
	while (w->inl_n) {
		struct rb_io_inline e = w->inl[w->inl_head];

		w->inl_head = (w->inl_head + 1) % RB_IO_INLINE_MAX;
		w->inl_n--;
		w->sq_inflight--;
		int res = rb_io_watch_done(e.req, e.res);
		rb_io_slot_done(w, e.req);
		rb_blk_io_done(w, e.req, res);
		n++;
	}
	while (io_uring_peek_cqe(&w->ring, &cqe) == 0) {
		rb_io_fault_cqe(w, cqe); /* test builds: trace, inject */
		struct rb_io_req *req = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&w->ring, cqe);
		w->sq_inflight--;
		if (!req)
			continue; /* the watchdog's cancel (watch.c) */
		res = rb_io_watch_done(req, res);
		rb_io_slot_done(w, req);
		rb_blk_io_done(w, req, res);
		n++;
	}
	return n;
}

static void notify(struct rb_worker *w)
{
	for (unsigned i = 0; i < w->nq; i++) {
		struct rb_io_queue *q = w->queues[i];

		if (!q->need_notify)
			continue;
		q->need_notify = false;
		if (q->call_fd >= 0 && rb_virtq_should_notify(&q->vq))
			eventfd_write(q->call_fd, 1);
	}
}

static void run_cmd(struct rb_worker *w)
{
	pthread_mutex_lock(&w->lock);
	if (w->cmd_fn && w->cmd_fn(w, w->cmd_arg)) {
		w->cmd_fn = NULL;
		w->cmd_done = true;
		atomic_store(&w->cmd_pending, 0);
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
}

static void drain_eventfd(int fd)
{
	eventfd_t v;

	if (fd >= 0)
		eventfd_read(fd, &v);
}

/* Asks for kicks, closes the race with the driver, and sleeps until a
 * kick, a completion or a command arrives. */
static void sleep_until_event(struct rb_worker *w)
{
	struct epoll_event ev[32];
	bool work = false;

	for (unsigned i = 0; i < w->nq; i++) {
		struct rb_io_queue *q = w->queues[i];
		rb_virtq_set_kicks(&q->vq, true);
		if (!q->stopping && !q->vq.broken && q->free && rb_virtq_pending(&q->vq))
			work = true;
	}
	/* While polling, completions do not signal the eventfd (a wasted
	 * wake-up path on every I/O); turn it back on before sleeping.  The
	 * kernel may read the flag before our write is visible while we read
	 * an older tail (store-load reordering), so with I/O in flight the
	 * sleep is bounded: a completion is never waited on for long. */
	if (w->mode == RB_IO_POLL) {
		io_uring_cq_eventfd_toggle(&w->ring, true);
		atomic_thread_fence(memory_order_seq_cst);
	}
	if (!work && !io_uring_cq_ready(&w->ring) && !atomic_load(&w->stop)) {
		int timeout = w->mode == RB_IO_POLL && w->sq_inflight ? 1 : -1;
		/* With I/O in flight the watchdog looks once a second. */
		if (timeout < 0 && w->sq_inflight)
			timeout = 1000;
		/* Steps parked for their throttle budget wake the worker. */
		uint64_t park = rb_io_throttle_next_ns(w);
		if (park) {
			uint64_t now = rb_io_now_ns();
			int ms = park <= now ? 0 : (int)((park - now + 999999) / 1000000);
			if (timeout < 0 || ms < timeout)
				timeout = ms;
		}
		int n = epoll_wait(w->epfd, ev, 32, timeout);
		for (int i = 0; i < n; i++)
			drain_eventfd(ev[i].data.fd);
	}
	if (w->mode == RB_IO_POLL) {
		io_uring_cq_eventfd_toggle(&w->ring, false);
		for (unsigned i = 0; i < w->nq; i++)
			rb_virtq_set_kicks(&w->queues[i]->vq, false);
	}
	if (w->sq_inflight)
		rb_io_watch(w);
}

/*
 * Busy time (rb_workers_busy_ns) costs no clock read of its own while the
 * worker has work: a busy period starts at the first time a request is
 * stamped (rb_io_clock) and grows to the latest stamp at the end of each
 * iteration that did work; the first iteration without work closes it at
 * its clock read (the one the poll back-off makes anyway, or, before a
 * sleep, one more).  Time asleep or polling idle is not busy.
 */
static void busy_until(struct rb_worker *w, uint64_t t)
{
	if (w->busy_since && t > w->busy_since)
		rb_io_count(&w->busy_ns, t - w->busy_since);
	if (w->busy_since)
		w->busy_since = t;
}

static void *worker_main(void *arg)
{
	struct rb_worker *w = arg;
	uint64_t last_work = 0;

	rb_debug(w->name, "started (%s)", w->mode == RB_IO_POLL ? "polling" : "event-driven");
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		unsigned work = 0;

		rb_io_clock_stale(w);
		if (atomic_load_explicit(&w->cmd_pending, memory_order_acquire))
			run_cmd(w);
		/* A round: every queue's program credit is topped up, its
		 * deferred chains go on while it lasts, then its ring is polled. */
		uint64_t now_ns = 0;
		unsigned busy = 0;
		for (unsigned i = 0; i < w->nq; i++)
			busy += w->queues[i]->inflight > 0;
		w->contended = busy > 1;
		w->depth_now = atomic_load_explicit(&w->depth, memory_order_relaxed);
		/* Who goes first in a round takes the free device slots first:
		 * the order rotates. */
		unsigned first = w->nq ? w->rr_start++ % w->nq : 0;
		for (unsigned k = 0; k < w->nq; k++) {
			struct rb_io_queue *q = w->queues[(first + k) % w->nq];
			rb_io_clock_stale(w); /* a new batch: its requests' time */
			q->ndp_credit += RB_IO_NDP_QUANTUM;
			if (q->ndp_credit > RB_IO_NDP_QUANTUM)
				q->ndp_credit = RB_IO_NDP_QUANTUM;
			q->io_deficit += RB_IO_FAIR_QUANTUM;
			if (q->io_deficit > RB_IO_FAIR_QUANTUM)
				q->io_deficit = RB_IO_FAIR_QUANTUM;
			if (q->park_head) {
				if (!now_ns)
					now_ns = rb_io_now_ns();
				work += rb_io_throttle_run(w, q, now_ns);
			}
			if (q->defer_head)
				work += rb_ndp_io_run_deferred(w, q);
			if (q->nwait_head)
				work += rb_ndp_io_run_waiting(w, q);
			work += poll_queue(w, q);
		}
		if (w->sq_pending) {
			rb_io_fault_sqes(w);
			io_uring_submit(&w->ring);
			w->sq_pending = 0;
		}
		work += reap(w);
		notify(w);
		if (w->sq_inflight && ++w->watch_iter >= 1024) {
			w->watch_iter = 0;
			rb_io_watch(w); /* reads the clock: not every round */
		}
		if (work || w->ndp_deferred) {
			busy_until(w, w->clock_last);
			last_work = 0; /* measured lazily below */
			continue;
		}
		uint64_t now = rb_io_now_ns();
		busy_until(w, now);
		w->busy_since = 0;
		if (w->mode == RB_IO_POLL) {
			if (last_work == 0)
				last_work = now;
			if (now - last_work < RB_IO_POLL_IDLE_US * 1000ull)
				continue;
		}
		sleep_until_event(w);
		last_work = 0;
	}
	rb_debug(w->name, "stopped");
	return NULL;
}

/* ---- commands from the control thread ----------------------------------- */

void rb_worker_call(struct rb_worker *w, bool (*fn)(struct rb_worker *, void *), void *arg)
{
	pthread_mutex_lock(&w->lock);
	w->cmd_fn = fn;
	w->cmd_arg = arg;
	w->cmd_done = false;
	atomic_store_explicit(&w->cmd_pending, 1, memory_order_release);
	eventfd_write(w->cmd_efd, 1);
	while (!w->cmd_done)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

unsigned rb_workers_count(const struct rb_workers *p)
{
	return p ? p->n : 0;
}

uint64_t rb_workers_busy_ns(const struct rb_workers *p, unsigned i)
{
	return p && i < p->n ? atomic_load_explicit(&p->w[i].busy_ns, memory_order_relaxed) : 0;
}

void rb_workers_set_depth(struct rb_workers *p, unsigned depth)
{
	for (unsigned i = 0; i < p->n; i++)
		atomic_store_explicit(&p->w[i].depth, depth, memory_order_relaxed);
}

void rb_workers_set_io_timeout(struct rb_workers *p, unsigned seconds)
{
	if (seconds > RB_IO_TIMEOUT_MAX_S)
		seconds = RB_IO_TIMEOUT_MAX_S;
	for (unsigned i = 0; i < p->n; i++)
		atomic_store_explicit(&p->w[i].io_timeout_s, seconds, memory_order_relaxed);
}

struct rb_worker *rb_workers_pick(struct rb_workers *pool)
{
	struct rb_worker *w = &pool->w[pool->next % pool->n];

	pool->next++;
	return w;
}

/* ---- set-up and tear-down ------------------------------------------------ */

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int worker_init(struct rb_worker *w, struct rb_workers *pool, unsigned id,
		       enum rb_io_notify mode, char *err, size_t errlen)
{
	int rc;

	w->pool = pool;
	w->id = id;
	w->mode = mode;
	snprintf(w->name, sizeof(w->name), "worker%u", id);
	w->ring_efd = w->cmd_efd = w->epfd = -1;
	w->io_timeout_s = RB_IO_TIMEOUT_DEFAULT_S;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	rc = io_uring_queue_init(RB_IO_URING_ENTRIES, &w->ring, 0);
	if (rc < 0) {
		snprintf(err, errlen, "%s: io_uring_queue_init: %s", w->name, strerror(-rc));
		return rc;
	}
	w->ring_ready = true;
	w->ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->cmd_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->ring_efd < 0 || w->cmd_efd < 0 || w->epfd < 0 ||
	    epoll_add(w->epfd, w->ring_efd) || epoll_add(w->epfd, w->cmd_efd)) {
		snprintf(err, errlen, "%s: eventfd/epoll: %s", w->name, strerror(errno));
		return -errno;
	}
	rc = io_uring_register_eventfd(&w->ring, w->ring_efd);
	if (rc < 0) {
		snprintf(err, errlen, "%s: io_uring_register_eventfd: %s", w->name, strerror(-rc));
		return rc;
	}
	if (mode == RB_IO_POLL)
		io_uring_cq_eventfd_toggle(&w->ring, false); /* on only while asleep */
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	if (rc) {
		snprintf(err, errlen, "%s: pthread_create: %s", w->name, strerror(rc));
		return -rc;
	}
	w->thread_started = true;
	return 0;
}

static void worker_fini(struct rb_worker *w)
{
	if (w->thread_started) {
		atomic_store(&w->stop, true);
		eventfd_write(w->cmd_efd, 1);
		pthread_join(w->thread, NULL);
	}
	if (w->ring_ready)
		io_uring_queue_exit(&w->ring);
	if (w->ring_efd >= 0)
		close(w->ring_efd);
	if (w->cmd_efd >= 0)
		close(w->cmd_efd);
	if (w->epfd >= 0)
		close(w->epfd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
}

int rb_workers_new(unsigned n, enum rb_io_notify mode, struct rb_workers **out, char *err,
		   size_t errlen)
{
	struct rb_workers *p;

	*out = NULL;
	if (n == 0 || n > RB_IO_MAX_WORKERS) {
		snprintf(err, errlen, "%u workers (must be 1..%u)", n, RB_IO_MAX_WORKERS);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->w = calloc(n, sizeof(*p->w)))) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int lrc = rb_loader_new(RB_NDP_LOADS_QUEUED, &p->loader, err, errlen);
	if (lrc) {
		rb_workers_free(p);
		return lrc;
	}
	for (unsigned i = 0; i < n; i++) {
		int rc = worker_init(&p->w[i], p, i, mode, err, errlen);
		p->n = i + 1;
		if (rc) {
			rb_workers_free(p);
			return rc;
		}
	}
	*out = p;
	return 0;
}

void rb_workers_cancel_loads(struct rb_workers *p)
{
	unsigned n = p && p->loader ? rb_loader_cancel(p->loader, NULL) : 0;

	if (n)
		rb_info("loader", "%u LOAD%s answered unverified at shutdown", n, n == 1 ? "" : "s");
}

void rb_workers_free(struct rb_workers *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n; i++)
		worker_fini(&p->w[i]);
	rb_loader_free(p->loader);
	free(p->w);
	free(p);
}

/* ---- queue placement (commands run on the worker) ------------------------ */

static bool cmd_queue_add(struct rb_worker *w, void *arg)
{
	struct rb_io_queue *q = arg;

	if (w->nq == RB_IO_MAX_QUEUES_PER_WORKER) {
		rb_err(w->name, "too many queues on one worker");
		return true; /* q->active stays false: the caller sees it */
	}
	w->queues[w->nq++] = q;
	q->active = true;
	q->ndp_credit = RB_IO_NDP_QUANTUM;
	q->io_deficit = RB_IO_FAIR_QUANTUM;
	q->defer_head = q->defer_tail = NULL;
	/* Edge-triggered: a kick is only a hint (the rings are re-checked on
	 * every wake-up), and a frontend's fd that stays readable (a pipe
	 * whose writer is gone, a semaphore eventfd with a huge count) must
	 * not keep the worker spinning.  A kick already pending is reported
	 * once when the fd is added. */
	struct epoll_event kev = {.events = EPOLLIN | EPOLLET, .data.fd = q->kick_fd};
	if (q->kick_fd >= 0 && epoll_ctl(w->epfd, EPOLL_CTL_ADD, q->kick_fd, &kev))
		rb_warn(w->name, "cannot watch kick fd of %s queue %u: %s", q->disk->name, q->index,
			strerror(errno));
	/* Polling workers ask the driver not to kick; event-driven ones do. */
	rb_virtq_set_kicks(&q->vq, w->mode == RB_IO_EVENT);
	return true;
}

static bool cmd_queue_remove(struct rb_worker *w, void *arg)
{
	struct rb_io_queue *q = arg;

	q->stopping = true;
	/* Steps waiting for their throttle budget go now, uncharged: one VM
	 * at iops-total=1 must not hold the control path every VM shares. */
	rb_io_throttle_flush(w, q);
	/* Chains waiting for program CPU end now; those with I/O in flight
	 * end when it completes (ndp_io.c), without running again. */
	rb_ndp_io_stop_deferred(w, q);
	rb_ndp_io_stop_waiting(q);
	if (q->inflight) {
		/* LOADs still waiting for the loader are answered now; the
		 * drain then waits for at most the one being verified. */
		rb_loader_cancel(w->pool->loader, q);
		return false; /* called again after completions */
	}
	for (unsigned i = 0; i < w->nq; i++) {
		if (w->queues[i] == q) {
			w->queues[i] = w->queues[--w->nq];
			break;
		}
	}
	if (q->kick_fd >= 0)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, q->kick_fd, NULL);
	/* The last completions of the drain may still be unannounced. */
	if (q->need_notify && q->call_fd >= 0)
		eventfd_write(q->call_fd, 1);
	q->need_notify = false;
	q->active = false;
	/* Nothing of the queue is in flight: its NDP state goes (a ring
	 * that once carried thousands of READ_NDs keeps nothing). */
	rb_ndp_io_free_cache(q);
	return true;
}

int rb_io_queue_attach(struct rb_io_queue *q)
{
	rb_worker_call(q->worker, cmd_queue_add, q);
	return q->active ? 0 : -ENOSPC;
}

void rb_io_queue_detach(struct rb_io_queue *q)
{
	rb_worker_call(q->worker, cmd_queue_remove, q);
}
