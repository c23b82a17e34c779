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

#ifdef __cplusplus
}
#endif
#endif /* ROSEN_IO_H */
