/* SPDX-License-Identifier: MIT */
/*
 * The I/O engine: worker threads that poll virtqueues and an io_uring each,
 * and the per-VM disk state (struct rb_disk) with the virtio-blk request
 * state machine.  All storage I/O of a disk leaves through one submission
 * point (where later issues charge per-VM throttling).  Control-path calls
 * (queue start/stop) come from one control thread and are executed on the
 * worker that owns the queue, so data-path state is only ever touched by
 * its worker.  Knows nothing of vhost-user: rings arrive as rb_virtq.
 */
#ifndef ROSEN_IO_H
#define ROSEN_IO_H

#include <rosen/virtio.h>

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rb_io_notify {
	RB_IO_POLL,  /* poll rings and completions; back off to sleep when idle */
	RB_IO_EVENT, /* never poll: sleep on kick eventfds and completions */
};

struct rb_workers;

#define RB_IO_MAX_WORKERS 64u

/* Starts n worker threads.  0 or -errno with a message. */
int rb_workers_new(unsigned n, enum rb_io_notify mode, struct rb_workers **out,
		   char *err, size_t errlen);
/* Stops and joins the workers; every disk must have been freed first. */
void rb_workers_free(struct rb_workers *w);
/*
 * Device depth of each worker (rosenbridged --worker-depth): at most this
 * many storage I/Os in flight per worker, the slots handed out among its
 * queues by deficit round robin, so a VM with many requests outstanding
 * gets no more of the device than one with few (docs/throttling.md,
 * "Fairness on a worker").  0 (the default): no limit; the worker's own
 * time is still shared fairly, the device's queue is not.
 */
void rb_workers_set_depth(struct rb_workers *w, unsigned depth);
/*
 * Storage I/O stuck for this many seconds (neither submitted nor completed
 * for its request; default 60, at most 3600; 0: never) is cancelled and its
 * request fails (IOERR / NDP IO_ERROR), so no request and no drain waits
 * forever on storage that never answers (docs/robustness.md).
 */
void rb_workers_set_io_timeout(struct rb_workers *w, unsigned seconds);
/*
 * Shutdown, before the disks are freed: answers every NDP LOAD still
 * waiting for the loader thread (LIMIT: the queue stopped) and refuses new
 * ones, so stopping the queues waits for at most the LOAD being verified.
 */
void rb_workers_cancel_loads(struct rb_workers *w);

enum rb_disk_cache {
	RB_DISK_CACHE_DIRECT,   /* O_DIRECT where the disk allows it */
	RB_DISK_CACHE_BUFFERED, /* through the host page cache */
};

struct rb_qos_registry;
struct rb_qos_limits;
struct rb_ndp_table;

struct rb_disk_opts {
	const char *path;
	const char *name;      /* for logs, e.g. "vm0" */
	bool readonly;
	enum rb_disk_cache cache;
	unsigned queues;       /* 1..16 */
	/* Throttling (docs/throttling.md): the daemon's groups and this
	 * disk's limits / group (NULL or nothing set: unlimited).  Every I/O
	 * that reaches storage is charged, the guest's and its programs'. */
	struct rb_qos_registry *qos;
	const struct rb_qos_limits *throttle;
	/* The fairness experiment only (bench/fairness): program hops are not
	 * charged, as if throttling saw only the guest's requests. */
	bool uncharged_program_io;
	/* NDP requests (READ_ND/WRITE_ND) in flight per queue, each holding
	 * ~28 KiB of state; more wait in the ring.  0: RB_IO_NDP_INFLIGHT. */
	unsigned ndp_inflight;
	/* Reads are first tried at once with preadv2(RWF_NOWAIT) on a
	 * buffered image (a page-cache hit costs one syscall instead of an
	 * io_uring round trip; a miss goes to io_uring, never waiting):
	 * true turns that off (--no-inline-reads). */
	bool no_inline_reads;
};

#define RB_IO_NDP_INFLIGHT 64u      /* default NDP requests in flight per queue */
#define RB_IO_NDP_INFLIGHT_MAX 4096u

/* Per-VM state: the disk, its queues, their requests. */
struct rb_disk;

/*
 * Opens a regular file or block device.  -ENOENT/-EACCES/... with a message
 * naming the path; a file that is not a multiple of 512 bytes exposes the
 * whole sectors only; a disk locked by another rosenbridged is refused.
 * With RB_DISK_CACHE_DIRECT on a filesystem without O_DIRECT (tmpfs) the
 * disk falls back to buffered and logs it.
 */
int rb_disk_open(const struct rb_disk_opts *opts, struct rb_workers *workers,
		 struct rb_disk **out, char *err, size_t errlen);
/* Every queue must be stopped. */
void rb_disk_free(struct rb_disk *d);

uint64_t rb_disk_capacity_sectors(const struct rb_disk *d);
unsigned rb_disk_num_queues(const struct rb_disk *d);
bool rb_disk_is_direct(const struct rb_disk *d);
const char *rb_disk_name(const struct rb_disk *d);
const char *rb_disk_path(const struct rb_disk *d);
bool rb_disk_readonly(const struct rb_disk *d);
enum rb_disk_cache rb_disk_cache_mode(const struct rb_disk *d);
/* The VM's NDP program table (program_list, program_unload, mem_list:
 * the table is thread-safe; the control thread may use it while the
 * workers run). */
struct rb_ndp_table *rb_disk_programs(struct rb_disk *d);
/* Name of the disk's throttle group (its own carries the disk's name);
 * NULL when the disk was opened without a registry. */
const char *rb_disk_throttle_group(const struct rb_disk *d);

/*
 * Reads the image's size again (a file grown or shrunk, a block device
 * resized) and makes it the disk's capacity: requests checked from now on
 * see it, and so does the config space (rb_disk_blk_config()).  Telling
 * the frontend is the caller's business (vhost-user: a config-change
 * message).  Control thread.  0 or -errno with a message.
 */
int rb_disk_resize(struct rb_disk *d, uint64_t *old_sectors, uint64_t *new_sectors, char *err,
		   size_t errlen);
/* virtio-blk device features and config space for this disk. */
uint64_t rb_disk_blk_features(const struct rb_disk *d);
void rb_disk_blk_config(const struct rb_disk *d, struct rb_virtio_blk_config *cfg);

/*
 * Starts serving queue `q` from the ring described by `vq` (copied; its
 * rings and translate callback must stay valid until the queue stops).
 * kick_fd (-1: none) wakes a sleeping worker; call_fd (-1: none) is written
 * when the driver wants an interrupt.  The fds stay owned by the caller.
 */
int rb_disk_queue_start(struct rb_disk *d, unsigned q, const struct rb_virtq *vq,
			int kick_fd, int call_fd);
/* Stops taking requests from queue q, waits for its in-flight ones, and
 * returns the avail index to resume from. */
uint16_t rb_disk_queue_stop(struct rb_disk *d, unsigned q);
/*
 * The daemon is going away and a successor will serve this disk (SIGTERM):
 * from now on, stopping a queue whose ring has an inflight log leaves the
 * requests that cannot finish promptly (NDP chains cut short by the stop,
 * LOADs not verified yet) in flight, to be resubmitted by the successor
 * and rerun from their start, instead of failing them (IO_ERROR, LIMIT).
 * Everything else still drains.
 */
void rb_disk_handover(struct rb_disk *d);

/* Counters, for logs and tests. */
struct rb_disk_stats {
	uint64_t reads, writes, flushes, discards, write_zeroes, get_ids;
	uint64_t bytes_read, bytes_written;
	uint64_t errors;     /* requests completed with IOERR or UNSUPP */
	uint64_t bad_chains; /* malformed chains given back with length 0 */
	/* Storage I/Os by path: the guest's own (virtio-blk requests and the
	 * first I/O of each NDP request) and its programs' hops. */
	uint64_t guest_ios, program_ios, program_bytes;
	uint64_t ndp_requests, ndp_hops;
	/* Throttling (0 when the disk has no limits): I/Os told to wait, the
	 * time they waited, the group's bucket levels now (units: I/Os or
	 * bytes; -1 when the bucket is unlimited). */
	bool throttled;
	uint64_t throttle_delayed, throttle_wait_ns;
	double bucket_level[6];
	char throttle_group[64];
};
void rb_disk_stats(const struct rb_disk *d, struct rb_disk_stats *out);

#ifdef RB_FAULT_HOOKS
/*
 * Test builds only (meson -Dfault_hooks=true, which defines RB_FAULT_HOOKS;
 * the asan build): fault injection into storage I/O and a trace of its
 * order (lib/io/fault.c, docs/robustness.md).  A spec is a comma-separated
 * list of rules OP:FAULT[:skip=N][:count=N][:vm=NAME]: OP read, write
 * (writes, also of WRITE_ND), flush, discard (discard and write-zeroes) or
 * any; FAULT eio, enospc, eagain, short (half the bytes, never none) or
 * hang (the I/O never completes unless cancelled: the watchdog's test);
 * skip: matching I/Os let through first; count: I/Os hit after them
 * (default 1; 0: every one).  The first rule that matches an I/O takes
 * it.  The daemon reads ROSEN_FAULTS when its first I/O goes out, and
 * ROSEN_FAULTS_FILE again on SIGUSR1.
 */
struct rb_io_fault_stats {
	uint64_t read_sqes, write_sqes; /* storage reads and writes submitted */
	uint64_t flush_sqes;            /* fsyncs submitted */
	uint64_t flush_datasync;        /* of them, with IORING_FSYNC_DATASYNC */
	uint64_t flush_overtakes;       /* of them, while a write of their queue was in flight */
	uint64_t injected;              /* results changed by a rule */
};
int rb_io_fault_set(const char *spec, char *err, size_t errlen);
/* ROSEN_FAULTS_FILE's contents as the spec; msg says what was armed. */
int rb_io_fault_reload(char *msg, size_t msglen);
void rb_io_fault_get_stats(struct rb_io_fault_stats *out);
/* Live heap bytes as ASan counts them; -1 without a sanitizer. */
long long rb_io_test_allocated_bytes(void);
#endif

/* ---- Metrics (docs/metrics.md) -------------------------------------------- */

/*
 * Every request taken from a ring is counted once, when it is given back:
 * by type, by outcome, and in a latency histogram per type (from the moment
 * its worker took it from the ring to the moment it gave it back).  The
 * counters live in each queue and are written only by the queue's worker
 * (relaxed atomic stores, no read-modify-write shared between threads);
 * rb_disk_metrics() adds the queues up from any thread.  A reading taken
 * while requests complete may see one request's counters half-updated (its
 * count but not yet its histogram bucket), never a counter going back.
 */
enum rb_io_rtype {
	RB_IO_RT_READ, RB_IO_RT_WRITE, RB_IO_RT_FLUSH, RB_IO_RT_DISCARD, RB_IO_RT_WRITE_ZEROES,
	RB_IO_RT_GET_ID, RB_IO_RT_NDP_PROBE, RB_IO_RT_NDP_LOAD, RB_IO_RT_NDP_UNLOAD,
	RB_IO_RT_READ_ND, RB_IO_RT_WRITE_ND, RB_IO_RT_REG_MEM, RB_IO_RT_UNREG_MEM,
	RB_IO_RT_REG_FILE, RB_IO_RT_UNREG_FILE, RB_IO_RT_REG_GPU, RB_IO_RT_UNREG_GPU,
	RB_IO_RT_GPU_SUM,
	RB_IO_RT_OTHER, /* an unknown type, or a chain too malformed to have one */
	RB_IO_NR_RTYPES
};
/* "read", "write", "flush", "discard", "write_zeroes", "get_id", "ndp_probe",
 * "ndp_load", "ndp_unload", "read_nd", "write_nd", "reg_mem", "unreg_mem",
 * "reg_file", "unreg_file", "other". */
const char *rb_io_rtype_name(unsigned t);

/*
 * Outcomes.  The virtio status byte: OK, IOERR, UNSUPP; MALFORMED: the
 * chain was given back without a status (no room for one, or a malformed
 * descriptor chain).  An NDP request the device answered with status OK is
 * counted by the NDP status in its result instead (enum rb_ndp_status):
 * RB_IO_RS_NDP + status - 1, named as rb_ndp_status_name() names it
 * ("hop-limit", "rejected", ...); NDP status OK counts as RB_IO_RS_OK.
 */
enum rb_io_rstatus {
	RB_IO_RS_OK, RB_IO_RS_IOERR, RB_IO_RS_UNSUPP, RB_IO_RS_MALFORMED,
	RB_IO_RS_NDP, /* first NDP status (1, bad-request) */
};
#define RB_IO_NR_RSTATUS (RB_IO_RS_NDP + 15u) /* NDP statuses 1..15 (RB_NDP_S_NO_GPU) */
/* "ok", "ioerr", "unsupp", "malformed", then the NDP status names. */
const char *rb_io_rstatus_name(unsigned s);

/* Latency histogram: upper bounds (inclusive) of its buckets, 10 us to
 * 10 s, three a decade (1, 2.5, 5); one more bucket counts the rest. */
#define RB_IO_LAT_BUCKETS 19u
extern const uint64_t rb_io_lat_bound_ns[RB_IO_LAT_BUCKETS];

struct rb_disk_metrics {
	uint64_t requests[RB_IO_NR_RTYPES][RB_IO_NR_RSTATUS];
	/* Per bucket (not cumulative); [RB_IO_LAT_BUCKETS]: over 10 s. */
	uint64_t latency[RB_IO_NR_RTYPES][RB_IO_LAT_BUCKETS + 1];
	uint64_t latency_sum_ns[RB_IO_NR_RTYPES];
	/* Bytes moved between storage and the daemon for the guest: its
	 * reads and writes, and every I/O of its NDP requests (first I/O and
	 * program hops), counted as they complete. */
	uint64_t bytes_read, bytes_written;
	uint64_t ndp_hops;     /* storage I/Os of NDP requests (their results' hops) */
	uint64_t prog_insns;   /* eBPF instructions its programs executed (exact) */
	/* Time its programs ran: 1 request with programs in
	 * RB_IO_PROG_SAMPLE_EVERY is timed (a clock read around each of its
	 * runs); the others are converted from their exact instruction counts
	 * at the rate the samples of their queue measured (docs/metrics.md). */
	uint64_t prog_run_ns;
	uint64_t prog_sampled_requests;
	uint64_t verifier_rejections; /* LOADs its verifier refused */
	uint64_t throttled_ns; /* sum over its I/Os of the time they waited for budget */
	uint64_t inflight;     /* requests taken from its rings, not given back */
	/* Reads tried inline (preadv2 RWF_NOWAIT on a buffered image): hits
	 * served from the page cache; misses then went through io_uring. */
	uint64_t inline_hits, inline_misses;
};
#define RB_IO_PROG_SAMPLE_EVERY 64u
void rb_disk_metrics(const struct rb_disk *d, struct rb_disk_metrics *out);

/* The daemon's workers, for metrics: how many, and the time each has spent
 * in loop iterations that did work (requests, completions, programs,
 * commands) since it started; the rest it spent polling idle or asleep. */
unsigned rb_workers_count(const struct rb_workers *w);
uint64_t rb_workers_busy_ns(const struct rb_workers *w, unsigned i);

#ifdef __cplusplus
}
#endif
#endif /* ROSEN_IO_H */
