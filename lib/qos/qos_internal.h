/* SPDX-License-Identifier: MIT */
/*
 * What the files of lib/qos share: the leaky bucket in fixed point, a
 * group's state, a disk's membership.  Nothing outside lib/qos includes it
 * (the unit tests do, to check the arithmetic on its own).
 */
#ifndef ROSEN_QOS_INTERNAL_H
#define ROSEN_QOS_INTERNAL_H

#include <rosen/qos.h>

#include <pthread.h>
#include <stdatomic.h>

/*
 * Levels are kept in nano-units (units x 1e9) in 128 bits, so a leak over
 * delta_ns at avg units/s is exactly avg x delta_ns, avg/10 is exact, and
 * the tests can count I/Os to the unit.  Bounds: avg, max <= 1e15 and
 * max x max-length <= 1e15, so a bucket's size is <= 1e24 nano-units; one
 * I/O adds at most 2^64 x 1e9 (~1.8e28); a leak is at most 1e15 x 2^64.
 * All far below 2^127.
 */
typedef unsigned __int128 rb_qos_u128;
#define RB_QOS_NANO 1000000000ull

struct rb_qos_bkt {
	/* configuration, fixed between two rb_qos_set_limits() */
	uint64_t avg;          /* units/s, 0 = bucket off */
	uint64_t max;          /* burst rate given, units/s (0: implicit avg/10) */
	uint64_t length;       /* burst length, seconds, >= 1 */
	rb_qos_u128 size;      /* nano-units: (max or avg/10) x length */
	rb_qos_u128 burst_thr; /* nano-units: max/10, the burst smoothing (length > 1) */
	/* state */
	rb_qos_u128 level;       /* nano-units; drains at avg */
	rb_qos_u128 burst_level; /* nano-units; drains at max, only when length > 1 */
};

/* lib/qos/bucket.c: the arithmetic, no locking. */
void rb_qos_bkt_config(struct rb_qos_bkt *b, const struct rb_qos_bucket_limit *l, bool keep);
void rb_qos_bkt_leak(struct rb_qos_bkt *b, uint64_t delta_ns);
uint64_t rb_qos_bkt_wait(const struct rb_qos_bkt *b);
/* The wait if `extra` nano-units were added first (another I/O's room). */
uint64_t rb_qos_bkt_wait_after(const struct rb_qos_bkt *b, rb_qos_u128 extra);
void rb_qos_bkt_add(struct rb_qos_bkt *b, rb_qos_u128 nano_units);

/* The buckets one I/O of a direction goes through: bps and iops, total and its own. */
extern const enum rb_qos_bucket rb_qos_bkt_of_dir[2][4];

struct rb_qos_group {
	pthread_mutex_t lock; /* everything below but name/refs/next */
	struct rb_qos_bkt b[RB_QOS_NR_BUCKETS];
	struct rb_qos_limits limits; /* as given (max 0 = implicit) */
	bool limits_given;
	bool any;             /* some bucket is on: else charging only counts */
	atomic_bool limited;  /* any, readable without the lock (hot path) */
	uint64_t last_ns;     /* time of the last leak */
	struct rb_qos_counters c;
	/* Round robin among the disks with I/Os waiting (QEMU round-robins
	 * the members of a group too): the head of this FIFO has the turn;
	 * while others wait, room in the buckets goes to it first.  A holder
	 * that does not come for its room within RB_QOS_TURN_GRACE_NS loses
	 * the turn (to the end of the line), so a slow or stopped one cannot
	 * block the group. */
	struct rb_qos_disk *wait_head, *wait_tail;
	uint64_t room_since_ns; /* room seen but refused for the turn; 0: none */
	/* under the registry's lock */
	struct rb_qos_registry *reg;
	unsigned refs;        /* disks + rb_qos_group_find() references */
	unsigned disks;
	struct rb_qos_group *next;
	char name[RB_QOS_NAME_MAX];
};

struct rb_qos_disk {
	struct rb_qos_group *g;
	struct rb_qos_counters c; /* under g->lock */
	/* under g->lock: its tickets told to wait and not admitted yet, and
	 * its place in the group's line while that is above 0 */
	unsigned waiting;
	bool in_line;
	struct rb_qos_disk *line_next;
	char name[RB_QOS_NAME_MAX];
};

struct rb_qos_registry {
	pthread_mutex_t lock;
	struct rb_qos_group *groups;
};

/* lib/qos/limits.c */
/* One key of a limits object: the kv parser and the JSON file both call it. */
int rb_qos_limits_set_key(struct rb_qos_limits *lim, const char *key, bool has_num,
			  int64_t num, const char *str, uint32_t *seen, char *err, size_t errlen);

/* How long the disk holding the turn may leave room unclaimed. */
#define RB_QOS_TURN_GRACE_NS 2000000ull

#define RB_QOS_TICKET_PARKED 1u
#define RB_QOS_TICKET_CHARGED 2u

#endif
