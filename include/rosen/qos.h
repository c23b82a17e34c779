/* SPDX-License-Identifier: MIT */
/*
 * Per-VM I/O throttling with QEMU's throttle-group semantics (leaky buckets
 * on bps/iops, total/read/write, bursts, iops-size, groups of disks), and
 * the parsing of its configuration (--throttle KEY=VALUE,..., a JSON file).
 * Pure bookkeeping: it never sleeps, never reads a clock and does no I/O;
 * the caller passes the time and parks what it is told to park.
 */
#ifndef ROSEN_QOS_H
#define ROSEN_QOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Limits ------------------------------------------------------------ */

/* The six buckets, as QEMU numbers its parameters. */
enum rb_qos_bucket {
	RB_QOS_BPS_TOTAL,
	RB_QOS_BPS_READ,
	RB_QOS_BPS_WRITE,
	RB_QOS_IOPS_TOTAL,
	RB_QOS_IOPS_READ,
	RB_QOS_IOPS_WRITE,
	RB_QOS_NR_BUCKETS
};

/* QEMU's THROTTLE_VALUE_MAX: no rate, burst rate or max x max-length above. */
#define RB_QOS_VALUE_MAX 1000000000000000ull
#define RB_QOS_NAME_MAX 64 /* group and disk names, with the NUL */

struct rb_qos_bucket_limit {
	uint64_t avg;        /* <kind>-<dir>: units per second, 0 = unlimited */
	uint64_t max;        /* <kind>-<dir>-max: burst rate, 0 = none (avg/10) */
	uint64_t max_length; /* <kind>-<dir>-max-length: seconds, 0 = unset (1) */
};

struct rb_qos_limits {
	struct rb_qos_bucket_limit b[RB_QOS_NR_BUCKETS];
	uint64_t iops_size;           /* iops-size: bytes, 0 = every I/O counts 1 */
	char group[RB_QOS_NAME_MAX];  /* group=NAME; "" = the disk's own group */
};

/*
 * Parses "iops-total=2000,bps-read=1048576,group=g1" (QEMU's -drive
 * throttling.* names without the prefix) into *out and validates it
 * (rb_qos_limits_check).  Values are plain decimal integers, as QEMU takes
 * them: no K/M/G suffix.  A key given twice is refused.  Returns 0, or
 * -EINVAL with a message naming the key in err.  *out is all zero on error.
 */
int rb_qos_limits_parse(const char *kv, struct rb_qos_limits *out, char *err, size_t errlen);

/*
 * QEMU's refusals, with the key named: a value above RB_QOS_VALUE_MAX, total
 * together with read or write of the same kind, max without its average,
 * max below its average, max-length without max, max x max-length above
 * RB_QOS_VALUE_MAX, iops-size without an iops limit, a bad group name.
 * Pure: returns 0 or -EINVAL with a message.
 */
int rb_qos_limits_check(const struct rb_qos_limits *lim, char *err, size_t errlen);

/* True when any rate is set (the disk is throttled at all). */
bool rb_qos_limits_any(const struct rb_qos_limits *lim);

/* Same rates (group names not compared; max-length 0 and 1 are the same). */
bool rb_qos_limits_equal(const struct rb_qos_limits *a, const struct rb_qos_limits *b);

/* "iops-total=2000,bps-read=1048576" (only what is set; "" when nothing). */
int rb_qos_limits_format(const struct rb_qos_limits *lim, char *buf, size_t len);

/*
 * A group or disk name, QEMU's id_wellformed(): a letter, then letters,
 * digits, '-', '.' or '_', at most RB_QOS_NAME_MAX - 1 characters.
 * rosenbridged holds disk names to the same rule (a disk's own throttle
 * group carries its name).
 */
bool rb_qos_name_ok(const char *name);

/*
 * One JSON object of limits ({"iops-total": 2000, "group": "g1"}: the keys
 * of rb_qos_limits_parse, integer values), as the throttle file, the
 * daemon's --config and the control socket give them.  `where` names the
 * object in messages; with key_paths a refusal of one key names it as
 * "where.key" (e.g. "disks[1].throttle.iops-total: ..."), else "where: ...".
 * Validated whole (rb_qos_limits_check).  0 or -EINVAL with a message.
 */
struct json_object;
int rb_qos_limits_from_json(struct json_object *o, const char *where, bool group_ok,
			    bool key_paths, struct rb_qos_limits *out, char *err, size_t errlen);

/* ---- Groups and disks -------------------------------------------------- */

struct rb_qos_registry; /* every group of the daemon, by name */
struct rb_qos_group;    /* one set of buckets, shared by its disks */
struct rb_qos_disk;     /* one disk's membership of a group, and its counters */

struct rb_qos_registry *rb_qos_registry_new(void);
/* Every disk must have been closed. */
void rb_qos_registry_free(struct rb_qos_registry *reg);

/*
 * Attaches disk `name` to its group: lim->group, or a group named after the
 * disk when lim->group is "" (as QEMU does).  The group is created when
 * absent.  Its limits are set once: by the first disk that gives any
 * (rb_qos_limits_any); a disk that gives none just joins; a disk that gives
 * different ones is refused with -EEXIST and a message naming both.  Later
 * changes go through rb_qos_set_limits().  now_ns: CLOCK_MONOTONIC.
 * Thread-safe.  Returns 0 or -EINVAL/-EEXIST/-ENOMEM with a message.
 */
int rb_qos_disk_open(struct rb_qos_registry *reg, const char *name,
		     const struct rb_qos_limits *lim, uint64_t now_ns, struct rb_qos_disk **out,
		     char *err, size_t errlen);
/* No request of the disk may be parked any more. The last disk frees the group. */
void rb_qos_disk_close(struct rb_qos_disk *d);

struct rb_qos_group *rb_qos_disk_group(struct rb_qos_disk *d);
/* Whether the disk's group has any limit now (no lock: for the hot path,
 * to skip charging a disk that nothing limits; a change made by
 * rb_qos_set_limits() is seen by the next I/O). */
bool rb_qos_disk_limited(const struct rb_qos_disk *d);
const char *rb_qos_disk_name(const struct rb_qos_disk *d);
const char *rb_qos_group_name(const struct rb_qos_group *g);

/*
 * The group named `name` with a reference the caller drops with
 * rb_qos_group_put(), or NULL (the control socket and reload find groups so).
 */
struct rb_qos_group *rb_qos_group_find(struct rb_qos_registry *reg, const char *name);
void rb_qos_group_put(struct rb_qos_group *g);

/* ---- Charging (the hot path) ------------------------------------------- */

/*
 * One per I/O that reaches storage, kept in the request from its first
 * charge until it is submitted; zero it ({0} or rb_qos_ticket_init) for
 * every new I/O, including each I/O a program resubmits.  It makes a retry
 * safe: an I/O is charged exactly once, when it is admitted, however often
 * it is retried, and the time it was parked is counted.
 */
struct rb_qos_ticket {
	uint64_t parked_since_ns;
	uint32_t flags; /* private */
};

static inline void rb_qos_ticket_init(struct rb_qos_ticket *t)
{
	t->parked_since_ns = 0;
	t->flags = 0;
}

/*
 * May this I/O (bytes long, a write or a read) go now?  Returns 0: it is
 * admitted and charged to every bucket of the group; submit it.  Otherwise
 * the nanoseconds to wait: nothing was charged; park the request and call
 * again with the same ticket once now_ns has advanced by that much (it goes
 * then unless other I/Os of the group took the room first).  A ticket that
 * was admitted answers 0 again and is not charged twice.
 *
 * Fairness within a group: the disks with I/Os told to wait take turns,
 * one I/O each, in the order they first had to wait (QEMU round-robins the
 * members of a group too).  While another disk has the turn, an I/O goes
 * only if there is room for the turn holder's next one as well.  A disk
 * that leaves its turn unclaimed for 2 ms loses it.
 *
 * Thread-safe (one mutex per group); the disks of a group may be served by
 * different workers.  now_ns need not be strictly monotonic across threads:
 * a time older than the group's last one leaks nothing.  A flush is not
 * charged (QEMU charges reads and writes only); the caller decides what a
 * discard or write-zeroes counts as.
 */
uint64_t rb_qos_charge(struct rb_qos_disk *d, struct rb_qos_ticket *t, bool is_write,
		       uint64_t bytes, uint64_t now_ns);

/*
 * A ticket told to wait that will not be retried (its request goes
 * uncharged because its queue stops, or is dropped): it leaves the disk's
 * place in the group's round robin.  Harmless on any other ticket.
 */
void rb_qos_cancel(struct rb_qos_disk *d, struct rb_qos_ticket *t);

/*
 * Run-time change of a group's limits (SIGHUP reload, control socket).
 * lim is checked first (nothing changes on -EINVAL).  Bucket levels are
 * kept: a change that changes nothing changes nothing, a raised limit gives
 * no free burst, a lowered one applies at once (a level above the new size
 * is cut to it, plus what it was already over the old one).  (QEMU instead
 * empties every bucket on a change; see docs/throttling.md.)  lim->group
 * is ignored.
 */
int rb_qos_set_limits(struct rb_qos_group *g, const struct rb_qos_limits *lim, uint64_t now_ns,
		      char *err, size_t errlen);
void rb_qos_get_limits(struct rb_qos_group *g, struct rb_qos_limits *out);

/* ---- Statistics --------------------------------------------------------- */

struct rb_qos_counters {
	uint64_t ios[2];       /* admitted, [0] reads, [1] writes */
	uint64_t bytes[2];
	uint64_t delayed;      /* I/Os that were told to wait at least once */
	uint64_t waits;        /* answers "wait" (retries included) */
	uint64_t parked_ns;    /* sum over admitted I/Os of first refusal -> admission */
};

struct rb_qos_group_stats {
	struct rb_qos_counters c; /* all disks of the group together */
	unsigned disks;
	/* Per bucket, at now_ns: the units in it (bytes or I/Os), and its size
	 * (max x max-length; 0: bucket unlimited). */
	double level[RB_QOS_NR_BUCKETS];
	double size[RB_QOS_NR_BUCKETS];
};

void rb_qos_disk_stats(struct rb_qos_disk *d, struct rb_qos_counters *out);
void rb_qos_group_stats(struct rb_qos_group *g, uint64_t now_ns, struct rb_qos_group_stats *out);

/* ---- The configuration file -------------------------------------------- */

/*
 * --throttle-file FILE (docs/throttling.md):
 *   {"groups": {"g1": {"iops-total": 4000}},
 *    "disks":  {"vm0": {"iops-total": 2000},
 *               "vm1": {"group": "g1"}, "vm2": {"group": "g1"}}}
 * Read as a whole: one bad entry refuses the file and nothing is returned.
 */
enum rb_qos_target_kind { RB_QOS_TARGET_GROUP, RB_QOS_TARGET_DISK };

struct rb_qos_target {
	enum rb_qos_target_kind kind;
	char name[RB_QOS_NAME_MAX];
	/* Resolved: a disk's limits are its group's, limits.group names the
	 * group ("" never: a disk's own group carries the disk's name). */
	struct rb_qos_limits limits;
};

struct rb_qos_config {
	struct rb_qos_target *t; /* groups first, then disks, in file order */
	size_t n;
};

int rb_qos_config_parse_json(const char *text, struct rb_qos_config *out, char *err,
			     size_t errlen);
int rb_qos_config_parse_file(const char *path, struct rb_qos_config *out, char *err,
			     size_t errlen);
void rb_qos_config_free(struct rb_qos_config *cfg);

/* The entry of disk `name`, or NULL. */
const struct rb_qos_target *rb_qos_config_disk(const struct rb_qos_config *cfg,
					       const char *name);

#ifdef __cplusplus
}
#endif

#endif
