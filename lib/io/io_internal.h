/* SPDX-License-Identifier: MIT */
/* What the files of lib/io share.  Nothing outside lib/io includes it. */
#ifndef ROSEN_IO_INTERNAL_H
#define ROSEN_IO_INTERNAL_H

#include <rosen/io.h>
#include <rosen/log.h>
#include <rosen/ndp.h>
#include <rosen/qos.h>

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>

#define RB_IO_MAX_QUEUES_PER_WORKER 256u
#define RB_IO_POLL_IDLE_US 1000u /* spin this long without work, then sleep */
#define RB_IO_URING_ENTRIES 1024u
#define RB_IO_LOG_BURST 50u      /* guest-triggered log lines per second, per VM */
/*
 * Program CPU on a worker is shared between its queues by deficit round
 * robin, counted in eBPF instructions (no clock read per hop): each loop
 * iteration (a round) tops a queue's credit up to RB_IO_NDP_QUANTUM, and a
 * queue runs programs (and pops new requests) only while its credit is
 * positive.  A run is charged what it executed plus RB_IO_NDP_HOP_COST for
 * the daemon's own work around a hop; a run that overshoots leaves the
 * credit negative, repaid over the next rounds.  So one queue holds a round
 * for at most QUANTUM + RB_NDP_BUDGET instructions plus the hops a positive
 * credit admits, and over time every queue with programs to run gets the
 * same instructions.  docs/rosenbridged.md, "Program CPU".
 */
#define RB_IO_NDP_QUANTUM 262144
#define RB_IO_NDP_HOP_COST 1000
/*
 * Storage I/O on a worker is shared between its queues by deficit round
 * robin by bytes, while two or more of them have requests in flight: each
 * round tops a queue's deficit up to RB_IO_FAIR_QUANTUM; a queue takes new
 * requests from its ring, and its NDP chains submit their next hop, only
 * while its deficit is positive; each I/O costs its length, at least
 * RB_IO_FAIR_MIN_IO (a 512-byte read costs the worker about what a 4 KiB
 * one does).  A step out of deficit waits in its queue for the next round.
 * docs/throttling.md, "Fairness on a worker".
 */
#define RB_IO_FAIR_QUANTUM 65536
#define RB_IO_FAIR_MIN_IO 4096
/*
 * Storage I/O that ends with -EAGAIN/-EINTR, or short (fewer bytes than
 * asked, more than none), is submitted again at most this many times per
 * request (virtio-blk: the remainder; NDP: the whole round); then the
 * request fails.  A read that returns 0 bytes is the end of the image
 * (truncated under the daemon): it fails at once.  docs/robustness.md.
 */
#define RB_IO_MAX_RETRIES 4u
/*
 * The watchdog (watch.c): a request whose storage I/O has neither been
 * submitted nor completed for --io-timeout seconds (default below; 0:
 * never) has it cancelled (IORING_OP_ASYNC_CANCEL), so it ends with a
 * status and a drain does not wait forever: io_uring itself reissues
 * some I/O that keeps failing with EAGAIN (a regular file's async
 * completion), where the daemon never sees it.  Checked about once a
 * second while I/O is in flight.
 */
#define RB_IO_TIMEOUT_DEFAULT_S 60u
#define RB_IO_TIMEOUT_MAX_S 3600u

struct rb_worker;
struct rb_io_queue;

/*
 * A counter with one writer (the worker that owns its queue or itself)
 * and readers on any thread: a relaxed load and store, so the hot path
 * pays no locked read-modify-write and no cache line shared with another
 * worker; readers see every value whole.
 */
static inline void rb_io_count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* A queue's counters: written by its worker only, summed over the queues
 * of a disk by rb_disk_stats() and rb_disk_metrics(). */
struct rb_io_qstats {
	_Atomic uint64_t reads, writes, flushes, discards, wz, ids;
	_Atomic uint64_t bytes_read, bytes_written, errors, bad_chains;
	_Atomic uint64_t guest_ios, prog_ios, prog_bytes, ndp_requests, ndp_hops;
	/* Metrics: every request by type and outcome, its latency. */
	_Atomic uint64_t req[RB_IO_NR_RTYPES][RB_IO_NR_RSTATUS];
	_Atomic uint64_t lat[RB_IO_NR_RTYPES][RB_IO_LAT_BUCKETS + 1];
	_Atomic uint64_t lat_sum_ns[RB_IO_NR_RTYPES];
	_Atomic uint64_t ndp_bytes_read, ndp_bytes_written;
	_Atomic uint64_t prog_insns, prog_run_ns, prog_sampled;
	_Atomic uint64_t inflight;
	/* Reads tried inline (rb_io_read_inline): served from the page
	 * cache, or not (a miss, a short read: io_uring did them). */
	_Atomic uint64_t inline_hits, inline_misses;
};

struct rb_io_ndp; /* ndp_io.c: state of an NDP request */

struct rb_io_req {
	struct rb_io_queue *q;
	struct rb_io_req *next_free;
	struct rb_blk_req blk;
	uint64_t expected; /* bytes the storage I/O must transfer */
	struct rb_io_ndp *ndp; /* NULL for virtio-blk requests */
	struct rb_io_load *load; /* an NDP LOAD queued for or on the loader */
	/* Its queue's deferred NDP chains (FIFO): a round of I/O done, the
	 * program not run yet because the queue had no credit left. */
	struct rb_io_req *next_deferred;
	/* Throttling (throttle.c): one ticket per I/O of the current step
	 * (a guest request, or one hop of an NDP chain), and the parking
	 * place of a step that must wait for its budget. */
	struct rb_qos_ticket qt[RB_NDP_MAX_NEXT_IOS];
	bool qt_used; /* a ticket was charged or told to wait this step */
	struct rb_io_req *park_next;
	uint64_t park_until_ns;
	void (*park_resume)(struct rb_worker *w, struct rb_io_req *req);
	bool qos_free; /* the queue is stopping: go without charging */
	unsigned dev_ios; /* its storage I/Os in flight, in w->dev_inflight */
	bool slot_turn;   /* resumed for a free slot: ahead of other waiters */
	/* Write ordering (flush.c).  A write: its place in its queue's list
	 * of writes in flight (wr_seq: its number).  A flush: wr_seq is the
	 * first write number it does not cover; fl_next links it into the
	 * queue's waiting, ready or riding list. */
	struct rb_io_req *wr_prev, *wr_next, *fl_next;
	uint64_t wr_seq;
	bool wr_active;
	/* Retries of this request's storage I/O (RB_IO_MAX_RETRIES), and
	 * what a virtio-blk read/write transferred before the one in flight. */
	unsigned retries;
	uint64_t done_bytes;
	/* The watchdog (watch.c): its SQEs in flight, whole seconds since
	 * one of them was submitted or completed, and whether it cancelled
	 * them (then EINTR/EAGAIN are not retried). */
	unsigned sqes;
	uint16_t idle_s;
	bool cancelled;
	/* Metrics: when its worker took it from the ring, its type and its
	 * outcome (enum rb_io_rtype / rb_io_rstatus), counted when it is
	 * given back (rb_io_req_finish). */
	uint8_t rtype, rstatus;
	uint64_t t_pop_ns;
	struct rb_virtq_chain chain; /* large: last */
};

struct rb_io_queue {
	struct rb_disk *disk;
	unsigned index;
	struct rb_worker *worker;
	struct rb_virtq vq;
	int kick_fd;
	int call_fd;
	bool active;   /* in its worker's list */
	bool stopping; /* no new requests; waiting for in-flight ones */
	unsigned handed_over; /* left in flight for the next daemon (this stop) */
	bool need_notify;
	bool broken_logged;
	unsigned inflight;
	/* Program CPU (RB_IO_NDP_QUANTUM): credit in instructions, and the
	 * chains waiting for it.  Worker thread only. */
	int64_t ndp_credit;
	/* Storage I/O (RB_IO_FAIR_QUANTUM): deficit in bytes. */
	int64_t io_deficit;
	/* Steps waiting for their throttle budget, oldest first; while any
	 * waits, no new request is taken from the ring (they wait there). */
	struct rb_io_req *park_head, *park_tail;
	struct rb_io_req *defer_head, *defer_tail;
	/* NDP state: at most disk->ndp_inflight per queue, kept in a pool
	 * for reuse (it only ever holds this queue's, this VM's, data) and
	 * freed when the queue stops; READ_NDs/WRITE_NDs that find none wait
	 * here, oldest first (linked by park_next), and the ring behind them. */
	struct rb_io_ndp *ndp_pool;
	unsigned ndp_allocated;
	struct rb_io_req *nwait_head, *nwait_tail;
	struct rb_io_req *reqs;
	unsigned n_reqs;
	struct rb_io_req *free;
	/* Write ordering (flush.c): writes in flight, oldest first, and the
	 * flushes waiting for the older ones to complete; flushes whose
	 * writes are done wait in `ready` while the queue's one fdatasync is
	 * in flight (fl_leader's SQE; fl_riders complete with it). */
	uint64_t wr_next_seq;
	struct rb_io_req *wr_head, *wr_tail;
	struct rb_io_req *fl_wait_head, *fl_wait_tail;
	struct rb_io_req *fl_ready_head, *fl_ready_tail;
	struct rb_io_req *fl_leader, *fl_riders;
	/* Program run time (rb_disk_metrics): requests until the next timed
	 * one, and what the timed ones measured.  Worker thread only. */
	unsigned prog_sample_left;
	uint64_t sampled_ns, sampled_insns, unconverted_insns;
	struct rb_io_qstats st;
};

struct rb_disk {
	char name[64];
	char path[4096];
	int fd;          /* O_DIRECT when direct */
	int fd_buffered; /* for requests O_DIRECT cannot take (alignment) */
	bool readonly;
	bool direct;
	enum rb_disk_cache cache; /* as asked (direct may have fallen back) */
	bool is_blockdev;
	unsigned dio_align;
	/* Changed at run time by rb_disk_resize() (control thread); the
	 * workers read it per request: relaxed atomic (rb_io_capacity()). */
	_Atomic uint64_t capacity_sectors;
	char serial[RB_VIRTIO_BLK_ID_BYTES];
	struct rb_ndp_table *progs; /* NDP programs belong to the disk (the VM) */
	struct rb_qos_disk *qos;    /* its throttle group; NULL: unlimited */
	bool uncharged_program_io;  /* experiment only: program hops are free */
	/* Log lines its requests trigger on the I/O path: rate-limited per
	 * VM (whatever its number of queues), shared by its workers. */
	struct rb_log_limit log_limit;
	unsigned ndp_inflight;      /* NDP states per queue (rb_disk_opts) */
	/* Reads on fd_buffered are tried inline first (rb_io_read_inline);
	 * cleared for good if the file cannot do RWF_NOWAIT. */
	_Atomic bool inline_reads;
	/* LOADs of this VM queued for or running on the loader: capped at
	 * RB_NDP_LOADS_PER_VM, so one guest cannot fill the daemon's queue. */
	atomic_uint loads_pending;
	atomic_bool handover; /* rb_disk_handover(): the daemon is going away */
	unsigned nqueues;
	/* Its counters are in its queues (struct rb_io_qstats). */
	struct rb_io_queue queues[16];
};

static inline uint64_t rb_io_capacity(const struct rb_disk *d)
{
	return atomic_load_explicit(&d->capacity_sectors, memory_order_relaxed);
}

/* ---- throttle.c ---- */

/*
 * Admits the n I/Os of req's current step (write, bytes each): its queue's
 * fair share of the worker (RB_IO_FAIR_QUANTUM), then its disk's throttle
 * group (unless !charge: --uncharged-program-io).  true: go on and
 * submit them (they hold device slots until their completions are reaped:
 * rb_io_slot_done(), or rb_io_unadmit() if they are not submitted).  false: parked; the
 * worker calls resume(w, req) when the budget is there (or, on a queue
 * stop, at once with req->qos_free set).  Tickets of I/Os admitted before
 * a wait stay admitted: an I/O is charged exactly once.
 */
bool rb_io_throttle(struct rb_worker *w, struct rb_io_req *req, unsigned n, const bool *write,
		    const uint64_t *bytes, bool charge,
		    void (*resume)(struct rb_worker *, struct rb_io_req *));
/* k I/Os admitted by rb_io_throttle() that will not complete (no SQE). */
void rb_io_unadmit(struct rb_worker *w, struct rb_io_req *req, unsigned k);
/* A new step: its tickets start empty. */
void rb_io_throttle_new_step(struct rb_io_req *req);
/* Resumes the parked steps of q whose time has come; returns how many. */
unsigned rb_io_throttle_run(struct rb_worker *w, struct rb_io_queue *q, uint64_t now_ns);
/* Resumes every parked step of q without charging (the queue stops). */
void rb_io_throttle_flush(struct rb_worker *w, struct rb_io_queue *q);
/* Parked until a device slot frees (not a time; never woken by a timer). */
#define RB_IO_PARK_SLOT UINT64_MAX
/* The earliest time a parked step of this worker may go (0: none). */
uint64_t rb_io_throttle_next_ns(const struct rb_worker *w);
uint64_t rb_io_now_ns(void);

/* Inline reads waiting for their worker's reap() (at most). */
#define RB_IO_INLINE_MAX 64u

struct rb_worker {
	struct rb_workers *pool;
	unsigned id;
	char name[24];
	pthread_t thread;
	bool thread_started;
	enum rb_io_notify mode;
	struct io_uring ring;
	bool ring_ready;
	int ring_efd; /* signalled by io_uring on each completion */
	int cmd_efd;  /* signalled by the control thread */
	int epfd;
	unsigned sq_pending;
	unsigned sq_inflight; /* submitted, completion not reaped yet */
	unsigned ndp_deferred; /* chains deferred on all its queues: not idle */
	bool contended; /* 2+ queues had requests in flight at the round's start */
	_Atomic unsigned depth; /* rb_workers_set_depth(); 0: no limit */
	unsigned depth_now;     /* depth, read once per round */
	unsigned dev_inflight;  /* storage I/Os admitted, not completed */
	unsigned slot_waiters;  /* steps parked for a device slot */
	unsigned rr_start;      /* the queue the round starts with (rotates) */
	_Atomic unsigned io_timeout_s; /* rb_workers_set_io_timeout(); 0: never */
	uint64_t watch_last_us; /* the watchdog's last look (watch.c) */
	unsigned watch_iter;
	/* One command at a time from the control thread. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool (*cmd_fn)(struct rb_worker *w, void *arg);
	void *cmd_arg;
	bool cmd_done;
	atomic_int cmd_pending;
	atomic_bool stop;
	/* Time in loop iterations that did work (rb_workers_busy_ns). */
	_Atomic uint64_t busy_ns;
	/* Metrics' clock (rb_io_clock): 0 until read in this batch; the
	 * latest read; the start of the current busy period (0: idle). */
	uint64_t clock_ns, clock_last, busy_since;
	struct rb_io_queue *queues[RB_IO_MAX_QUEUES_PER_WORKER];
	unsigned nq;
	/* Reads served inline (rb_io_read_inline), their results waiting for
	 * reap() like CQEs, in order: a FIFO of inl_n entries from inl_head. */
	struct rb_io_inline {
		struct rb_io_req *req;
		int res;
	} inl[RB_IO_INLINE_MAX];
	unsigned inl_head, inl_n;
};

/*
 * The time request metrics stamp (taken from the ring, given back): one
 * clock read shared by the requests a batch handles together (a ring
 * poll, a reap of completions), each a few hundred nanoseconds apart.
 * Whatever may take longer (a program run, synchronous I/O, an NDP
 * request's start) calls rb_io_clock_stale() after it, and so do the
 * starts of a loop iteration, a ring poll and a reap: the next request
 * reads the clock afresh.
 */
static inline uint64_t rb_io_clock(struct rb_worker *w)
{
	if (!w->clock_ns) {
		w->clock_ns = w->clock_last = rb_io_now_ns();
		if (!w->busy_since)
			w->busy_since = w->clock_ns; /* worker_main: busy time */
	}
	return w->clock_ns;
}

static inline void rb_io_clock_stale(struct rb_worker *w)
{
	w->clock_ns = 0;
}

/* A completion of req arrived: if it was a storage I/O, its slot is free. */
static inline void rb_io_slot_done(struct rb_worker *w, struct rb_io_req *req)
{
	if (req->dev_ios) {
		req->dev_ios--;
		w->dev_inflight--;
	}
}

struct rb_workers {
	unsigned n;
	unsigned next; /* round-robin queue placement */
	struct rb_worker *w;
	struct rb_loader *loader; /* the daemon's one LOAD thread */
};

/* Runs fn on worker w's thread and waits until it returns true (it is
 * called again on every loop iteration until then). */
void rb_worker_call(struct rb_worker *w, bool (*fn)(struct rb_worker *, void *), void *arg);
/* Places a queue on its worker / takes it off after draining it. */
int rb_io_queue_attach(struct rb_io_queue *q);
void rb_io_queue_detach(struct rb_io_queue *q);
/* Picks the worker for a new queue. */
struct rb_worker *rb_workers_pick(struct rb_workers *pool);

/*
 * flush.c: a FLUSH is submitted (as fdatasync) only after every write of
 * its queue that was in flight when it arrived has completed, and a queue
 * has at most one fdatasync in flight: flushes that become ready meanwhile
 * share the next one.  Writes are virtio-blk OUT, DISCARD, WRITE_ZEROES
 * and the write round of a WRITE_ND, from the moment they are accepted
 * (before throttling) until they complete.
 */
void rb_io_write_begin(struct rb_io_req *req);
/* No-op unless req is a write in flight; may submit waiting flushes. */
void rb_io_write_end(struct rb_worker *w, struct rb_io_req *req);
void rb_io_flush_start(struct rb_worker *w, struct rb_io_req *req);
/* The fdatasync of req (the leader) completed: it and its riders finish. */
void rb_io_flush_done(struct rb_worker *w, struct rb_io_req *req, int res);

/* watch.c: cancels storage I/O stuck for io_timeout_s (worker thread). */
void rb_io_watch(struct rb_worker *w);
/* A CQE of req: the watchdog's bookkeeping; returns the result to use. */
static inline int rb_io_watch_done(struct rb_io_req *req, int res)
{
	req->sqes--;
	req->idle_s = 0;
	if (__builtin_expect(req->cancelled, 0)) {
		if (res == -EINTR || res == -EAGAIN)
			res = -ECANCELED; /* not a transient error: no retry */
		if (!req->sqes)
			req->cancelled = false;
	}
	return res;
}

/*
 * fault.c, test builds only (meson -Dfault_hooks=true): sees every SQE
 * just before it goes to the kernel and every CQE before it is handled,
 * to trace the order of writes and flushes and to inject errors
 * (ROSEN_FAULTS, rb_io_fault_set()).  Release builds: nothing.
 */
#ifdef RB_FAULT_HOOKS
void rb_io_fault_sqes(struct rb_worker *w);
void rb_io_fault_cqe(struct rb_worker *w, struct io_uring_cqe *cqe);
/* Whether a read may be done inline now (no rule armed); counts it. */
bool rb_io_fault_inline_ok(struct rb_worker *w);
#else
static inline bool rb_io_fault_inline_ok(struct rb_worker *w)
{
	(void)w;
	return true;
}
static inline void rb_io_fault_sqes(struct rb_worker *w)
{
	(void)w;
}
static inline void rb_io_fault_cqe(struct rb_worker *w, struct io_uring_cqe *cqe)
{
	(void)w;
	(void)cqe;
}
#endif

/* blk.c: turn a popped chain into storage I/O, and finish it. */
void rb_blk_start(struct rb_worker *w, struct rb_io_req *req);
void rb_blk_io_done(struct rb_worker *w, struct rb_io_req *req, int res);
/* ndp_io.c: NDP request types (RB_NDP_T_*). */
void rb_ndp_io_start(struct rb_worker *w, struct rb_io_req *req, uint32_t type);
void rb_ndp_io_done(struct rb_worker *w, struct rb_io_req *req, int res);
/* Answers an NDP request: writes the virtio status byte (status NULL: no
 * room for one), gives the chain back with `used` bytes, frees its state;
 * and the NDP status it ended with, for metrics. */
void rb_ndp_io_finish(struct rb_io_req *req, uint8_t *status, uint8_t st, uint32_t used);
void rb_ndp_io_outcome(struct rb_io_req *req, uint32_t ndp_status);
/* gds_ctl.c: REG_GPU, UNREG_GPU and GPU_SUM (RosenGDS). */
void rb_gds_ctl(struct rb_io_req *req, uint32_t type);
/* The loader is done with an NDP LOAD (its eventfd read completed). */
void rb_ndp_load_done(struct rb_worker *w, struct rb_io_req *req, int res);
/* The one submission point of every storage I/O (blk.c). */
struct io_uring_sqe *rb_io_submit_point(struct rb_worker *w, struct rb_io_req *req);
/*
 * A read of `want` bytes at off into iov, done at once if fd is the disk's
 * buffered fd and the page cache holds all of it (preadv2 RWF_NOWAIT: it
 * never waits for the device); its result then reaches the request's
 * completion through reap(), as a CQE would.  false: not done (a miss, a
 * short read, inline reads off, the FIFO full): submit it to io_uring.
 * Only for reads admitted like an SQE (throttle, device slot).
 */
bool rb_io_read_inline(struct rb_worker *w, struct rb_io_req *req, int fd, const struct iovec *iov,
		       int iovcnt, uint64_t off, uint64_t want);
/* Runs q's deferred NDP chains while its credit lasts; returns how many. */
unsigned rb_ndp_io_run_deferred(struct rb_worker *w, struct rb_io_queue *q);
/* Ends q's deferred NDP chains (the queue is stopping): IO_ERROR. */
void rb_ndp_io_stop_deferred(struct rb_worker *w, struct rb_io_queue *q);
/* Starts q's requests waiting for NDP state while the pool has some;
 * returns how many. */
unsigned rb_ndp_io_run_waiting(struct rb_worker *w, struct rb_io_queue *q);
/* Ends q's requests waiting for NDP state (the queue is stopping): IOERR. */
void rb_ndp_io_stop_waiting(struct rb_io_queue *q);
/* Frees q's pool of NDP state (nothing of the queue in flight). */
void rb_ndp_io_free_cache(struct rb_io_queue *q);
/* The latency bucket of ns (RB_IO_LAT_BUCKETS: over the last bound) in a
 * few instructions: the octave's first bucket, then one comparison. */
extern const uint8_t rb_io_lat_octave[64];
static inline unsigned rb_io_lat_bucket(uint64_t ns)
{
	if (!ns)
		return 0;
	unsigned b = rb_io_lat_octave[63 - __builtin_clzll(ns)];
	return b + (b < RB_IO_LAT_BUCKETS && ns > rb_io_lat_bound_ns[b]);
}

/* Gives a request back to the ring (used length) and frees it; counts it
 * (req->rtype, req->rstatus, its latency). */
void rb_io_req_finish(struct rb_io_req *req, uint32_t used_len);
/* rb_disk_handover(): true when a request cut short by the daemon's
 * shutdown is left to the next daemon (the ring has an inflight log);
 * rb_io_req_abandon() frees its slot without giving it back. */
bool rb_io_handing_over(const struct rb_io_queue *q);
void rb_io_req_abandon(struct rb_io_req *req);
/* The outcome a virtio status byte stands for (enum rb_io_rstatus). */
static inline uint8_t rb_io_rs_virtio(uint8_t st)
{
	return st == RB_VIRTIO_BLK_S_OK	      ? RB_IO_RS_OK
	       : st == RB_VIRTIO_BLK_S_UNSUPP ? RB_IO_RS_UNSUPP
					      : RB_IO_RS_IOERR;
}

/*
 * loader.c: the daemon's one LOAD thread and its bounded FIFO.  A job is
 * the submitter's until rb_loader_submit() takes it, and again once the
 * loader writes 1 to job->efd (the status, handle and log are then set);
 * the loader touches nothing of it after that write.  `table` must outlive
 * the job: a disk's table is freed only after every queue of the disk has
 * stopped, and a queue stops only once its LOADs have come back (stopping
 * cancels the queued ones, so it waits for at most the running one).
 */
struct rb_loader;
struct rb_load_job {
	struct rb_load_job *next;   /* the loader's FIFO */
	const void *owner;          /* what rb_loader_cancel() matches: the queue */
	const char *vm;             /* for log lines */
	struct rb_ndp_table *table;
	uint32_t prog_type;
	const uint8_t *elf;         /* the copy out of guest memory */
	size_t elf_len;
	char section[RB_NDP_SECTION_MAX];
	int efd;
	uint64_t queued_us;
	/* result */
	uint32_t status;            /* enum rb_ndp_status */
	bool cancelled;             /* answered unverified: its queue stopped */
	uint32_t handle;
	char log[RB_NDP_LOG_MAX];
};
int rb_loader_new(unsigned max_jobs, struct rb_loader **out, char *err, size_t errlen);
/* Joins the thread; every queue must be stopped (nothing queued). */
void rb_loader_free(struct rb_loader *l);
/*
 * The submitter's io_uring read of job->efd completed: call this before
 * touching the job.  The loader answers jobs under its lock, so taking it
 * orders the loader's writes (and its write to efd, which the submitter
 * then closes) before the submitter's reads: a happens-before that
 * ThreadSanitizer can see, where an eventfd read through io_uring is
 * invisible to it.  Costs one uncontended lock per LOAD.
 */
void rb_loader_sync(struct rb_loader *l);
/* Queues a job: 0, or -EAGAIN when max_jobs are queued or running. */
int rb_loader_submit(struct rb_loader *l, struct rb_load_job *j);
/* Answers `owner`'s jobs still waiting (LIMIT, "the queue stopped") on the
 * caller's thread; a running one finishes.  Returns how many.  owner NULL:
 * every job, and the loader takes no new ones (shutdown). */
unsigned rb_loader_cancel(struct rb_loader *l, const void *owner);

/* Rate-limited log line about what a guest sent. */
void rb_io_guest_log(struct rb_io_queue *q, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same limiter, at error level: storage failures a guest can repeat
 * at will (reads of a truncated image, a full disk). */
void rb_io_storage_log(struct rb_io_queue *q, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

uint64_t rb_io_now_us(void);

#endif
