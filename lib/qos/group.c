/* SPDX-License-Identifier: MIT */
/*
 * Throttle groups: charging an I/O against the buckets of its disk's group
 * (the hot path, one mutex per group), the daemon-wide registry of groups,
 * run-time limit changes and statistics.  It decides and counts; it never
 * waits: the caller parks what it is told to park.
 */
#include "qos_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Under g->lock: drain every bucket up to now (never backwards). */
static void group_leak(struct rb_qos_group *g, uint64_t now_ns)
{
	uint64_t delta;

	if (now_ns <= g->last_ns)
		return;
	delta = now_ns - g->last_ns;
	g->last_ns = now_ns;
	for (int i = 0; i < RB_QOS_NR_BUCKETS; i++)
		rb_qos_bkt_leak(&g->b[i], delta);
}

static void count_admitted(struct rb_qos_counters *c, const struct rb_qos_ticket *t,
			   bool is_write, uint64_t bytes, uint64_t now_ns)
{
	c->ios[is_write]++;
	c->bytes[is_write] += bytes;
	if ((t->flags & RB_QOS_TICKET_PARKED) && now_ns > t->parked_since_ns)
		c->parked_ns += now_ns - t->parked_since_ns;
}

/* ---- The line of disks waiting for room (round robin) ------------------ */

static void line_append(struct rb_qos_group *g, struct rb_qos_disk *d)
{
	d->in_line = true;
	d->line_next = NULL;
	if (g->wait_tail)
		g->wait_tail->line_next = d;
	else
		g->wait_head = d;
	g->wait_tail = d;
}

static void line_remove(struct rb_qos_group *g, struct rb_qos_disk *d)
{
	struct rb_qos_disk *prev = NULL;

	for (struct rb_qos_disk *x = g->wait_head; x; prev = x, x = x->line_next) {
		if (x != d)
			continue;
		if (prev)
			prev->line_next = d->line_next;
		else
			g->wait_head = d->line_next;
		if (g->wait_tail == d)
			g->wait_tail = prev;
		break;
	}
	d->in_line = false;
	d->line_next = NULL;
}

/* The head had its turn (or lost it): to the end of the line if it still
 * has I/Os waiting, out of it otherwise. */
static void line_next_turn(struct rb_qos_group *g)
{
	struct rb_qos_disk *h = g->wait_head;

	line_remove(g, h);
	if (h->waiting)
		line_append(g, h);
	g->room_since_ns = 0;
}

/* What one I/O adds to bucket bk, in nano-units.  iops-size: an I/O larger
 * than it counts size/iops-size I/Os (6K at 4K is 1.5), rounded up to the
 * nano-unit. */
static rb_qos_u128 io_cost(const struct rb_qos_group *g, enum rb_qos_bucket bk, uint64_t bytes)
{
	uint64_t opsz = g->limits.iops_size;

	if (bk <= RB_QOS_BPS_WRITE)
		return (rb_qos_u128)bytes * RB_QOS_NANO;
	if (opsz && bytes > opsz)
		return ((rb_qos_u128)bytes * RB_QOS_NANO + opsz - 1) / opsz;
	return RB_QOS_NANO;
}

/* Under g->lock, leaked to now: the wait of an I/O if `ahead` other I/Os
 * of the same cost went first. */
static uint64_t buckets_wait(const struct rb_qos_group *g, int w, uint64_t bytes, unsigned ahead)
{
	uint64_t wait = 0;

	for (int i = 0; i < 4; i++) {
		enum rb_qos_bucket bk = rb_qos_bkt_of_dir[w][i];
		uint64_t bw = rb_qos_bkt_wait_after(&g->b[bk], io_cost(g, bk, bytes) * ahead);
		if (bw > wait)
			wait = bw;
	}
	return wait;
}

/*
 * Under g->lock, leaked to now: the wait of d's I/O.  While other disks
 * wait, room goes to the one whose turn it is: another disk's I/O goes
 * only if the buckets have room for the turn holder's next I/O as well
 * (estimated at this I/O's cost), else it waits until they would.
 */
static uint64_t group_wait(struct rb_qos_group *g, struct rb_qos_disk *d, int w, uint64_t bytes,
			   uint64_t now_ns)
{
	uint64_t wait = buckets_wait(g, w, bytes, 0);

	if (wait || !g->wait_head || g->wait_head == d)
		return wait;
	if (!g->room_since_ns)
		g->room_since_ns = now_ns;
	else if (now_ns - g->room_since_ns >= RB_QOS_TURN_GRACE_NS) {
		line_next_turn(g); /* the holder left its room unclaimed */
		if (!g->wait_head || g->wait_head == d)
			return 0;
		g->room_since_ns = now_ns;
	}
	return buckets_wait(g, w, bytes, 1);
}

uint64_t rb_qos_charge(struct rb_qos_disk *d, struct rb_qos_ticket *t, bool is_write,
		       uint64_t bytes, uint64_t now_ns)
{
	struct rb_qos_group *g = d->g;
	uint64_t wait = 0;
	int w = is_write ? 1 : 0;

	if (t->flags & RB_QOS_TICKET_CHARGED)
		return 0;
	pthread_mutex_lock(&g->lock);
	if (g->any) {
		group_leak(g, now_ns);
		wait = group_wait(g, d, w, bytes, now_ns);
	}
	if (wait) {
		if (!(t->flags & RB_QOS_TICKET_PARKED)) {
			t->flags |= RB_QOS_TICKET_PARKED;
			t->parked_since_ns = now_ns;
			d->c.delayed++;
			g->c.delayed++;
			if (d->waiting++ == 0 && !d->in_line)
				line_append(g, d);
		}
		d->c.waits++;
		g->c.waits++;
		pthread_mutex_unlock(&g->lock);
		return wait;
	}
	if (g->any) {
		for (int i = 0; i < 4; i++) {
			enum rb_qos_bucket bk = rb_qos_bkt_of_dir[w][i];
			rb_qos_bkt_add(&g->b[bk], io_cost(g, bk, bytes));
		}
	}
	if (t->flags & RB_QOS_TICKET_PARKED)
		d->waiting--;
	if (g->wait_head == d)
		line_next_turn(g); /* one I/O per turn */
	else if (d->in_line && !d->waiting)
		line_remove(g, d);
	count_admitted(&d->c, t, is_write, bytes, now_ns);
	count_admitted(&g->c, t, is_write, bytes, now_ns);
	t->flags |= RB_QOS_TICKET_CHARGED;
	pthread_mutex_unlock(&g->lock);
	return 0;
}

void rb_qos_cancel(struct rb_qos_disk *d, struct rb_qos_ticket *t)
{
	struct rb_qos_group *g = d->g;

	if ((t->flags & (RB_QOS_TICKET_PARKED | RB_QOS_TICKET_CHARGED)) != RB_QOS_TICKET_PARKED)
		return;
	pthread_mutex_lock(&g->lock);
	t->flags &= ~RB_QOS_TICKET_PARKED;
	if (d->waiting && --d->waiting == 0 && d->in_line) {
		if (g->wait_head == d)
			g->room_since_ns = 0;
		line_remove(g, d);
	}
	pthread_mutex_unlock(&g->lock);
}

/* ---- Limits ------------------------------------------------------------ */

/* Under g->lock, the time already leaked to. */
static void group_apply(struct rb_qos_group *g, const struct rb_qos_limits *lim, bool keep)
{
	char name[RB_QOS_NAME_MAX];

	memcpy(name, g->limits.group, sizeof(name));
	g->limits = *lim;
	memcpy(g->limits.group, name, sizeof(name));
	for (int i = 0; i < RB_QOS_NR_BUCKETS; i++)
		rb_qos_bkt_config(&g->b[i], &lim->b[i], keep);
	g->any = rb_qos_limits_any(lim);
	atomic_store_explicit(&g->limited, g->any, memory_order_relaxed);
}

bool rb_qos_disk_limited(const struct rb_qos_disk *d)
{
	return atomic_load_explicit(&d->g->limited, memory_order_relaxed);
}

int rb_qos_set_limits(struct rb_qos_group *g, const struct rb_qos_limits *lim, uint64_t now_ns,
		      char *err, size_t errlen)
{
	int rc = rb_qos_limits_check(lim, err, errlen);

	if (rc)
		return rc;
	pthread_mutex_lock(&g->lock);
	/* A reload that repeats the limits must not touch the levels. */
	if (!g->limits_given || !rb_qos_limits_equal(&g->limits, lim)) {
		group_leak(g, now_ns);
		group_apply(g, lim, true);
	}
	g->limits_given = true;
	pthread_mutex_unlock(&g->lock);
	return 0;
}

void rb_qos_get_limits(struct rb_qos_group *g, struct rb_qos_limits *out)
{
	pthread_mutex_lock(&g->lock);
	*out = g->limits;
	pthread_mutex_unlock(&g->lock);
}

/* ---- Statistics ---------------------------------------------------------- */

void rb_qos_disk_stats(struct rb_qos_disk *d, struct rb_qos_counters *out)
{
	pthread_mutex_lock(&d->g->lock);
	*out = d->c;
	pthread_mutex_unlock(&d->g->lock);
}

void rb_qos_group_stats(struct rb_qos_group *g, uint64_t now_ns, struct rb_qos_group_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&g->reg->lock);
	out->disks = g->disks;
	pthread_mutex_unlock(&g->reg->lock);
	pthread_mutex_lock(&g->lock);
	group_leak(g, now_ns);
	out->c = g->c;
	for (int i = 0; i < RB_QOS_NR_BUCKETS; i++) {
		if (!g->b[i].avg)
			continue;
		out->level[i] = (double)g->b[i].level / (double)RB_QOS_NANO;
		out->size[i] = (double)g->b[i].size / (double)RB_QOS_NANO;
	}
	pthread_mutex_unlock(&g->lock);
}

/* ---- Registry, groups, disks ----------------------------------------------- */

struct rb_qos_registry *rb_qos_registry_new(void)
{
	struct rb_qos_registry *reg = calloc(1, sizeof(*reg));

	if (reg)
		pthread_mutex_init(&reg->lock, NULL);
	return reg;
}

void rb_qos_registry_free(struct rb_qos_registry *reg)
{
	if (!reg)
		return;
	/* Groups live as long as their disks; what is left was leaked by a caller. */
	while (reg->groups) {
		struct rb_qos_group *g = reg->groups;
		reg->groups = g->next;
		pthread_mutex_destroy(&g->lock);
		free(g);
	}
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

/* Under reg->lock. */
static struct rb_qos_group *lookup(struct rb_qos_registry *reg, const char *name)
{
	for (struct rb_qos_group *g = reg->groups; g; g = g->next)
		if (!strcmp(g->name, name))
			return g;
	return NULL;
}

struct rb_qos_group *rb_qos_group_find(struct rb_qos_registry *reg, const char *name)
{
	struct rb_qos_group *g;

	pthread_mutex_lock(&reg->lock);
	g = lookup(reg, name);
	if (g)
		g->refs++;
	pthread_mutex_unlock(&reg->lock);
	return g;
}

void rb_qos_group_put(struct rb_qos_group *g)
{
	struct rb_qos_registry *reg = g->reg;

	pthread_mutex_lock(&reg->lock);
	if (--g->refs == 0) {
		for (struct rb_qos_group **pp = &reg->groups; *pp; pp = &(*pp)->next) {
			if (*pp == g) {
				*pp = g->next;
				break;
			}
		}
		pthread_mutex_destroy(&g->lock);
		free(g);
	}
	pthread_mutex_unlock(&reg->lock);
}

int rb_qos_disk_open(struct rb_qos_registry *reg, const char *name,
		     const struct rb_qos_limits *lim, uint64_t now_ns, struct rb_qos_disk **out,
		     char *err, size_t errlen)
{
	const char *gname = lim->group[0] ? lim->group : name;
	struct rb_qos_group *g;
	struct rb_qos_disk *d;
	int rc;

	*out = NULL;
	if (!rb_qos_name_ok(name)) {
		snprintf(err, errlen, "disk '%s': not a valid name for a throttle group", name);
		return -EINVAL;
	}
	rc = rb_qos_limits_check(lim, err, errlen);
	if (rc)
		return rc;
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(d->name, sizeof(d->name), "%s", name);

	pthread_mutex_lock(&reg->lock);
	g = lookup(reg, gname);
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g) {
			pthread_mutex_unlock(&reg->lock);
			free(d);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		pthread_mutex_init(&g->lock, NULL);
		snprintf(g->name, sizeof(g->name), "%s", gname);
		snprintf(g->limits.group, sizeof(g->limits.group), "%s", gname);
		g->reg = reg;
		g->last_ns = now_ns;
		g->next = reg->groups;
		reg->groups = g;
	}
	pthread_mutex_lock(&g->lock);
	if (rb_qos_limits_any(lim)) {
		if (g->limits_given && !rb_qos_limits_equal(&g->limits, lim)) {
			char have[256], want[256];
			struct rb_qos_limits h = g->limits, w = *lim;
			h.group[0] = w.group[0] = 0; /* the rates, for the message */
			rb_qos_limits_format(&h, have, sizeof(have));
			rb_qos_limits_format(&w, want, sizeof(want));
			snprintf(err, errlen,
				 "disk '%s': throttle group '%s' already has limits '%s', not '%s' "
				 "(a group's limits are set once; change them for the whole "
				 "group, or give this disk no limits to join it)",
				 name, gname, have, want);
			/* (A group has limits only once a disk joined: g is not new.) */
			pthread_mutex_unlock(&g->lock);
			pthread_mutex_unlock(&reg->lock);
			free(d);
			return -EEXIST;
		}
		if (!g->limits_given) {
			group_leak(g, now_ns);
			group_apply(g, lim, false);
			g->limits_given = true;
		}
	}
	pthread_mutex_unlock(&g->lock);
	g->refs++;
	g->disks++;
	d->g = g;
	pthread_mutex_unlock(&reg->lock);
	*out = d;
	return 0;
}

void rb_qos_disk_close(struct rb_qos_disk *d)
{
	struct rb_qos_group *g;

	if (!d)
		return;
	g = d->g;
	pthread_mutex_lock(&g->lock);
	if (d->in_line)
		line_remove(g, d);
	pthread_mutex_unlock(&g->lock);
	pthread_mutex_lock(&g->reg->lock);
	g->disks--;
	pthread_mutex_unlock(&g->reg->lock);
	rb_qos_group_put(g);
	free(d);
}

struct rb_qos_group *rb_qos_disk_group(struct rb_qos_disk *d)
{
	return d->g;
}

const char *rb_qos_disk_name(const struct rb_qos_disk *d)
{
	return d->name;
}

const char *rb_qos_group_name(const struct rb_qos_group *g)
{
	return g->name;
}
