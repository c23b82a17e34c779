/* SPDX-License-Identifier: MIT */
/*
 * What rosenbridged is told to do: flags, a --config JSON file, and the
 * disk_add of the control socket all fill the same structures, checked by
 * the same functions.  Parsing only: nothing here opens a disk or a socket.
 */
#ifndef ROSENBRIDGED_CONFIG_H
#define ROSENBRIDGED_CONFIG_H

#include <rosen/io.h>
#include <rosen/log.h>
#include <rosen/qos.h>

#include <stdbool.h>
#include <stddef.h>

#define MAX_DISKS 64

struct json_object;

struct disk_arg {
	char name[RB_QOS_NAME_MAX]; /* "" until given or defaulted (vm0, vm1, ...) */
	char *disk;                 /* owned */
	char *socket;               /* owned */
	bool readonly;
	unsigned queues;
	enum rb_disk_cache cache;
	struct rb_qos_limits throttle; /* nothing set = unlimited */
};

struct config_group {
	char name[RB_QOS_NAME_MAX];
	struct rb_qos_limits limits;
};

struct config {
	struct disk_arg disks[MAX_DISKS];
	unsigned ndisks;
	/* The file's "groups": their limits go to the disks that join them
	 * (config_finish()). */
	struct config_group groups[MAX_DISKS];
	unsigned ngroups;
	unsigned workers;
	enum rb_io_notify mode;
	bool uncharged_program_io;
	char *throttle_file;     /* owned; NULL: none */
	char *control;           /* owned; NULL: no control socket */
	char *config_file;       /* owned; NULL: flags only */
	unsigned stats_interval; /* seconds; 0: counters at shutdown only */
	unsigned worker_depth;   /* 0: no limit */
	unsigned io_timeout;     /* seconds; 0: never cancel */
	char *metrics_listen;    /* owned; --metrics-listen; NULL: no HTTP endpoint */
	bool allow_unsealed_memory;
	bool no_inline_reads;
	int gpu;                 /* --gpu N: the CUDA device for GPU regions; -1: none */    /* --no-inline-reads: every read through io_uring */
	unsigned ndp_inflight;   /* per queue; 0: the default */
	int log_level;           /* -1: not given */
	int log_format;          /* -1: not given */
	bool check_only;         /* --check-config: read, check, exit */
};

/* A disk with the defaults: 4 queues, direct. */
void disk_arg_init(struct disk_arg *a);
void disk_arg_free(struct disk_arg *a);

/* Flags (and --config FILE, read first, the flags then added on top).
 * 0, or -1 after a message on stderr; exits 0 on --help. */
int config_parse_args(int argc, char **argv, struct config *c);
void config_free(struct config *c);

/*
 * A --config file into c (before the flags).  Errors name the key by its
 * path ("disks[1].throttle.iops-total: ..."), syntax errors by line and
 * column.  0 or -EINVAL with err.
 */
int config_load_file(const char *path, struct config *c, char *err, size_t errlen);
/* The same from a string (tests, and the path for messages). */
int config_load_json(const char *text, const char *path, struct config *c, char *err,
		     size_t errlen);

/*
 * One disk as the control socket's disk_add gives it: {name, disk,
 * socket, readonly, queues, cache, throttle}; `where` prefixes messages
 * ("disks[1]" in a file, "params" on the socket).  Unknown keys are
 * refused.  0 or -EINVAL with err naming the key.
 */
int disk_arg_from_json(struct json_object *o, const char *where, struct disk_arg *a, char *err,
		       size_t errlen);

/* The checks every disk passes, however it was given: a valid name (the
 * throttle group rule: rb_qos_name_ok), a disk and a socket path. */
int disk_arg_check(const struct disk_arg *a, const char *where, char *err, size_t errlen);

#endif
