/* SPDX-License-Identifier: MIT */
/*
 * Throttling (lib/qos): the leaky-bucket arithmetic against hand-computed
 * cases on a fake clock (steady rate, implicit and explicit bursts, bps,
 * iops-size, read/write vs total, groups, run-time changes, tickets),
 * every refusal of --throttle with its message, and --throttle-file.
 */
#include <rosen/qos.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define MS 1000000ull
#define SEC 1000000000ull

static char err[512];

/* A registry with one disk of the given limits ("" = none). */
struct one {
	struct rb_qos_registry *reg;
	struct rb_qos_disk *d;
};

static struct one open_one(const char *kv)
{
	struct one o = {rb_qos_registry_new(), NULL};
	struct rb_qos_limits lim = {0};

	REQUIRE(o.reg);
	if (*kv) {
		err[0] = 0;
		if (rb_qos_limits_parse(kv, &lim, err, sizeof(err)))
			RT_FAIL_AT("'%s': %s", kv, err);
	}
	REQUIRE(rb_qos_disk_open(o.reg, "vm0", &lim, 0, &o.d, err, sizeof(err)) == 0);
	return o;
}

static void close_one(struct one *o)
{
	rb_qos_disk_close(o->d);
	rb_qos_registry_free(o->reg);
}

/* Charges fresh I/Os at `now` until one must wait; returns how many went
 * and, in *wait, what the first refused one was told. */
static unsigned burst_at(struct rb_qos_disk *d, bool w, uint64_t bytes, uint64_t now,
			 uint64_t *wait)
{
	unsigned n = 0;

	for (;;) {
		struct rb_qos_ticket t = {0};
		uint64_t ns = rb_qos_charge(d, &t, w, bytes, now);
		if (ns) {
			if (wait)
				*wait = ns;
			rb_qos_cancel(d, &t); /* dropped, not retried */
			return n;
		}
		n++;
		REQUIRE(n < 10000000);
	}
}

/* Charges n fresh I/Os at `now`; returns how many went. */
static unsigned admit_n(struct rb_qos_disk *d, bool w, uint64_t bytes, uint64_t now, unsigned n)
{
	unsigned ok = 0;

	for (unsigned i = 0; i < n; i++) {
		struct rb_qos_ticket t = {0};
		ok += rb_qos_charge(d, &t, w, bytes, now) == 0;
		rb_qos_cancel(d, &t);
	}
	return ok;
}

/*
 * A greedy client: one I/O parked at a time, retried exactly when told,
 * from `from` up to and including `until`.  Returns the I/Os admitted;
 * *next gets the time the next one would go.
 */
static unsigned greedy(struct rb_qos_disk *d, bool w, uint64_t bytes, uint64_t from,
		       uint64_t until, uint64_t *next)
{
	struct rb_qos_ticket t = {0};
	uint64_t now = from;
	unsigned n = 0;

	while (now <= until) {
		uint64_t ns = rb_qos_charge(d, &t, w, bytes, now);
		if (ns) {
			now += ns;
			continue;
		}
		n++;
		rb_qos_ticket_init(&t);
	}
	if (next)
		*next = now;
	return n;
}

/* ---- Steady rate and the implicit burst --------------------------------- */

TEST(steady_iops_total_100_admits_11_at_once_then_one_per_10ms)
{
	struct one o = open_one("iops-total=100");
	uint64_t wait = 0, next;

	/* No max: the bucket holds avg/10 = 10; an I/O goes while it is not
	 * over full, so 11 go at t=0 and the 12th waits 1/100 s. */
	CHECK_EQ_U64(burst_at(o.d, false, 4096, 0, &wait), 11);
	CHECK_EQ_U64(wait, 10 * MS);
	/* Then exactly one per 10 ms: 100 more by t = 1 s inclusive. */
	CHECK_EQ_U64(greedy(o.d, false, 4096, 0, SEC, &next), 100);
	CHECK_EQ_U64(next, SEC + 10 * MS);
	close_one(&o);
}

TEST(steady_rate_over_10_seconds_is_the_average_plus_the_implicit_burst)
{
	struct one o = open_one("iops-total=100");

	CHECK_EQ_U64(greedy(o.d, true, 512, 0, 10 * SEC, NULL), 11 + 1000);
	close_one(&o);
}

TEST(implicit_burst_is_a_tenth_of_the_average_for_bps)
{
	struct one o = open_one("bps-total=1000000");
	uint64_t wait = 0;

	/* Bucket 100000 bytes: 4 KiB I/Os go while level <= 100000: 25 of
	 * them (24 x 4096 = 98304), leaving 102400; the excess 2400 bytes
	 * drain in 2.4 ms. */
	CHECK_EQ_U64(burst_at(o.d, false, 4096, 0, &wait), 25);
	CHECK_EQ_U64(wait, 2400000);
	close_one(&o);
}

TEST(an_idle_bucket_refills_at_the_average_rate)
{
	struct one o = open_one("iops-total=100");

	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, NULL), 11);
	/* 50 ms idle drains 5 (level 11 -> 6): five go (levels 6..10 before). */
	CHECK_EQ_U64(burst_at(o.d, false, 0, 50 * MS, NULL), 5);
	/* A long idle refills it all, never beyond: 11 again. */
	CHECK_EQ_U64(burst_at(o.d, false, 0, 1000 * SEC, NULL), 11);
	close_one(&o);
}

/* ---- Explicit bursts ---------------------------------------------------- */

TEST(burst_max_100_for_3_seconds_over_an_average_of_10)
{
	struct one o = open_one("iops-total=10,iops-total-max=100,iops-total-max-length=3");
	uint64_t wait = 0, next;

	/* Bucket 100 x 3 = 300, draining at 10/s.  The burst rate is held
	 * to 100/s with the same smoothing of max/10 = 10: 11 at t=0, then
	 * one per 10 ms. */
	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, &wait), 11);
	CHECK_EQ_U64(wait, 10 * MS);
	/* The k-th of those goes at k x 10 ms while the level before it,
	 * 10 + k - 10 x k/100 = 10 + 0.9k, is <= 300: k <= 322, so 322 more
	 * by t = 3.22 s (the burst lasts a bit more than max-length: the
	 * bucket leaks meanwhile). */
	CHECK_EQ_U64(greedy(o.d, false, 0, 10 * MS, 3220 * MS, &next), 322);
	/* Level after the 333rd: 333 - 32.2 = 300.8; the 0.8 over drains at
	 * 10/s in 80 ms: the next goes at 3.30 s, then one per 100 ms. */
	CHECK_EQ_U64(next, 3300 * MS);
	CHECK_EQ_U64(greedy(o.d, false, 0, next, next + 10 * SEC, &next), 101);
	close_one(&o);
}

TEST(burst_refills_after_size_over_average_seconds_idle)
{
	struct one o = open_one("iops-total=10,iops-total-max=100,iops-total-max-length=3");

	CHECK_EQ_U64(greedy(o.d, false, 0, 0, 3220 * MS, NULL), 333);
	/* Full (300.8): 30.08 s of idle empties it; the same burst again. */
	CHECK_EQ_U64(greedy(o.d, false, 0, 3220 * MS + 30080 * MS, 3220 * MS + 30080 * MS +
			    3220 * MS, NULL), 333);
	close_one(&o);
}

TEST(burst_of_one_second_has_no_burst_rate_limit)
{
	/* max-length 1 (the default): the bucket is max = 200; 201 at once. */
	struct one o = open_one("iops-write=100,iops-write-max=200");
	uint64_t wait = 0;

	CHECK_EQ_U64(burst_at(o.d, true, 0, 0, &wait), 201);
	CHECK_EQ_U64(wait, 10 * MS);
	/* Reads are not limited at all. */
	CHECK_EQ_U64(admit_n(o.d, false, 1 << 20, 0, 100000), 100000);
	close_one(&o);
}

/* ---- bps with mixed sizes, iops-size ------------------------------------ */

TEST(bps_a_small_io_waits_behind_a_large_one)
{
	struct one o = open_one("bps-read=1000000");
	struct rb_qos_ticket t = {0};

	/* Bucket 100000 bytes. 64 KiB goes (level 0), 64 KiB goes (65536 <=
	 * 100000), then 512 bytes waits for 131072 - 100000 bytes: 31.072 ms. */
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, false, 65536, 0), 0);
	rb_qos_ticket_init(&t);
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, false, 65536, 0), 0);
	rb_qos_ticket_init(&t);
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, false, 512, 0), 31072000);
	/* A write is not a read: bps-read does not hold it. */
	struct rb_qos_ticket tw = {0};
	CHECK_EQ_U64(rb_qos_charge(o.d, &tw, true, 1 << 20, 0), 0);
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, false, 512, 31072000), 0);
	close_one(&o);
}

TEST(iops_size_counts_large_ios_proportionally)
{
	struct one o = open_one("iops-total=100,iops-size=4096");
	struct rb_qos_ticket t = {0};
	uint64_t wait = 0;

	/* 8 KiB counts 2: 6 go at t=0 (level before the 6th: 10), level 12,
	 * 2 over drain in 20 ms. */
	CHECK_EQ_U64(burst_at(o.d, false, 8192, 0, &wait), 6);
	CHECK_EQ_U64(wait, 20 * MS);
	/* 6 KiB counts 1.5: goes at 20 ms (level 10), level 11.5. */
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, false, 6144, 20 * MS), 0);
	/* 2 KiB (smaller than iops-size) counts 1; 1.5 over: 15 ms. */
	rb_qos_ticket_init(&t);
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, false, 2048, 20 * MS), 15 * MS);
	close_one(&o);
}

TEST(without_iops_size_a_huge_io_counts_one)
{
	struct one o = open_one("iops-total=100");

	CHECK_EQ_U64(burst_at(o.d, false, 1u << 30, 0, NULL), 11);
	close_one(&o);
}

/* ---- Read/write split against total ------------------------------------- */

TEST(read_and_write_limits_are_separate_buckets)
{
	struct one o = open_one("iops-read=100,iops-write=50");

	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, NULL), 11);
	CHECK_EQ_U64(burst_at(o.d, true, 0, 0, NULL), 6);
	CHECK_EQ_U64(greedy(o.d, true, 0, 0, SEC, NULL), 50);
	close_one(&o);
}

TEST(total_is_shared_by_reads_and_writes)
{
	struct one o = open_one("iops-total=100");

	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, NULL), 11);
	CHECK_EQ_U64(burst_at(o.d, true, 0, 0, NULL), 0);
	close_one(&o);
}

TEST(every_bucket_of_the_direction_must_have_room)
{
	/* A read passes bps-total and iops-read; the tighter one decides. */
	struct one o = open_one("bps-total=1000000,iops-read=1000");
	uint64_t wait = 0;

	/* iops-read allows 101, bps-total 100000 bytes: 10 KB reads, 11 go
	 * (level before the 11th: 100000), 110000 - 100000 over: 10 ms. */
	CHECK_EQ_U64(burst_at(o.d, false, 10000, 0, &wait), 11);
	CHECK_EQ_U64(wait, 10 * MS);
	close_one(&o);
}

/* ---- Groups ------------------------------------------------------------- */

TEST(group_shared_by_two_disks_third_disk_unaffected)
{
	struct rb_qos_registry *reg = rb_qos_registry_new();
	struct rb_qos_limits g1 = {0}, own = {0};
	struct rb_qos_disk *a, *b, *c;
	struct rb_qos_group_stats gs;
	struct rb_qos_counters cs;

	REQUIRE(rb_qos_limits_parse("iops-total=100,group=g1", &g1, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_limits_parse("iops-total=100", &own, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_disk_open(reg, "vm0", &g1, 0, &a, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_disk_open(reg, "vm1", &g1, 0, &b, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_disk_open(reg, "vm2", &own, 0, &c, err, sizeof(err)) == 0);
	CHECK(rb_qos_disk_group(a) == rb_qos_disk_group(b));
	CHECK(!strcmp(rb_qos_group_name(rb_qos_disk_group(a)), "g1"));
	CHECK(!strcmp(rb_qos_group_name(rb_qos_disk_group(c)), "vm2"));

	/* 11 between them at t=0: 6 from vm0, then vm1 gets the other 5. */
	for (int i = 0; i < 6; i++) {
		struct rb_qos_ticket t = {0};
		CHECK_EQ_U64(rb_qos_charge(a, &t, false, 0, 0), 0);
	}
	CHECK_EQ_U64(burst_at(b, true, 0, 0, NULL), 5);
	CHECK_EQ_U64(burst_at(a, false, 0, 0, NULL), 0);
	/* vm2 is its own group: its 11. */
	CHECK_EQ_U64(burst_at(c, false, 0, 0, NULL), 11);

	rb_qos_group_stats(rb_qos_disk_group(a), 0, &gs);
	CHECK_EQ_U64(gs.disks, 2);
	CHECK_EQ_U64(gs.c.ios[0], 6);
	CHECK_EQ_U64(gs.c.ios[1], 5);
	CHECK(gs.level[RB_QOS_IOPS_TOTAL] == 11.0 && gs.size[RB_QOS_IOPS_TOTAL] == 10.0);
	CHECK(gs.size[RB_QOS_BPS_TOTAL] == 0.0);
	rb_qos_disk_stats(b, &cs);
	CHECK_EQ_U64(cs.ios[1], 5);
	CHECK_EQ_U64(cs.ios[0], 0);
	/* 50 ms later the group's level has drained by 5. */
	rb_qos_group_stats(rb_qos_disk_group(a), 50 * MS, &gs);
	CHECK(gs.level[RB_QOS_IOPS_TOTAL] == 6.0);

	rb_qos_disk_close(a);
	rb_qos_disk_close(b);
	rb_qos_disk_close(c);
	CHECK(rb_qos_group_find(reg, "g1") == NULL);
	rb_qos_registry_free(reg);
}

/*
 * Two disks of one group, both always with I/Os waiting, vm0 always asking
 * first (the order one worker polls them in): each gets half.  Without
 * the turns, vm0 took whatever room appeared before vm1 asked.
 */
struct rr_disk {
	struct rb_qos_disk *d;
	struct rb_qos_ticket t[4]; /* its queue depth: 4 I/Os outstanding */
	uint64_t retry_at[4];
	unsigned admitted;
};

static void rr_step(struct rr_disk *x, uint64_t now)
{
	for (int i = 0; i < 4; i++) {
		if (x->retry_at[i] > now)
			continue;
		uint64_t ns = rb_qos_charge(x->d, &x->t[i], false, 4096, now);
		if (ns) {
			x->retry_at[i] = now + ns;
			continue;
		}
		x->admitted++;
		rb_qos_ticket_init(&x->t[i]); /* the next I/O of that slot */
		x->retry_at[i] = now;
	}
}

TEST(group_disks_take_turns_whoever_asks_first)
{
	struct rb_qos_registry *reg = rb_qos_registry_new();
	struct rb_qos_limits g = {0};
	struct rr_disk a = {0}, b = {0};

	REQUIRE(rb_qos_limits_parse("iops-total=1000,group=g", &g, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_disk_open(reg, "vm0", &g, 0, &a.d, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_disk_open(reg, "vm1", &g, 0, &b.d, err, sizeof(err)) == 0);
	/* 10 s in steps of 50 us, vm0 first in every step. */
	for (uint64_t now = 0; now < 10 * SEC; now += 50000) {
		rr_step(&a, now);
		rr_step(&b, now);
	}
	/* 10 s x 1000 + the burst of 100 (+1: a bucket takes one over). */
	CHECK(a.admitted + b.admitted >= 10100 && a.admitted + b.admitted <= 10101);
	CHECK(a.admitted >= 5000 && b.admitted >= 5000);
	CHECK(a.admitted > b.admitted ? a.admitted - b.admitted <= 60 : b.admitted - a.admitted <= 60);
	for (int i = 0; i < 4; i++) {
		rb_qos_cancel(a.d, &a.t[i]);
		rb_qos_cancel(b.d, &b.t[i]);
	}
	rb_qos_disk_close(a.d);
	rb_qos_disk_close(b.d);
	rb_qos_registry_free(reg);
}

/* The turn holder stops asking (its queue stopped without cancelling, a
 * slow worker): after 2 ms the others go on; cancelled, at once. */
TEST(group_turn_holder_that_never_comes_back_blocks_nobody)
{
	struct rb_qos_registry *reg = rb_qos_registry_new();
	struct rb_qos_limits g = {0};
	struct rb_qos_disk *a, *b;
	struct rb_qos_ticket ta = {0}, tb = {0};

	REQUIRE(rb_qos_limits_parse("iops-total=100,iops-total-max=100,group=g", &g, err,
				    sizeof(err)) == 0);
	REQUIRE(rb_qos_disk_open(reg, "vm0", &g, 0, &a, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_disk_open(reg, "vm1", &g, 0, &b, err, sizeof(err)) == 0);
	/* 101 at t=0: room for one more at 10 ms, for two at 20 ms. */
	CHECK_EQ_U64(burst_at(a, false, 0, 0, NULL), 101);
	CHECK(rb_qos_charge(a, &ta, false, 0, 0) > 0); /* vm0 waits: its turn */
	/* 12 ms: room for one, vm0's; vm1 waits until there is room for two. */
	CHECK_EQ_U64(rb_qos_charge(b, &tb, false, 0, 12 * MS), 8 * MS);
	/* vm0 never comes: 2 ms after vm1 first saw room, vm1 goes. */
	CHECK(rb_qos_charge(b, &tb, false, 0, 13 * MS) > 0);
	CHECK_EQ_U64(rb_qos_charge(b, &tb, false, 0, 14 * MS), 0);
	/* Cancelled instead, the holder is out of the way at once. */
	struct rb_qos_ticket ta2 = {0}, tb2 = {0};
	rb_qos_cancel(a, &ta);
	CHECK(rb_qos_charge(a, &ta2, false, 0, 14 * MS) > 0); /* full: vm0 waits, its turn */
	CHECK(rb_qos_charge(b, &tb2, false, 0, 25 * MS) > 0); /* room for one: vm0's */
	rb_qos_cancel(a, &ta2);
	CHECK_EQ_U64(rb_qos_charge(b, &tb2, false, 0, 25 * MS), 0);
	rb_qos_disk_close(a);
	rb_qos_disk_close(b);
	rb_qos_registry_free(reg);
}

TEST(group_limits_are_set_once_different_ones_refused)
{
	struct rb_qos_registry *reg = rb_qos_registry_new();
	struct rb_qos_limits l100 = {0}, l200 = {0}, join = {0};
	struct rb_qos_disk *a, *b = NULL, *c;

	REQUIRE(rb_qos_limits_parse("iops-total=100,group=g1", &l100, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_limits_parse("iops-total=200,group=g1", &l200, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_limits_parse("group=g1", &join, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_disk_open(reg, "vm0", &l100, 0, &a, err, sizeof(err)) == 0);
	err[0] = 0;
	CHECK_EQ_U64(rb_qos_disk_open(reg, "vm1", &l200, 0, &b, err, sizeof(err)), -EEXIST);
	CHECK(b == NULL);
	CHECK_STR_CONTAINS(err, "disk 'vm1': throttle group 'g1' already has limits "
				"'iops-total=100', not 'iops-total=200'");
	/* No limits: joins, and is held by the group's. */
	REQUIRE(rb_qos_disk_open(reg, "vm2", &join, 0, &c, err, sizeof(err)) == 0);
	CHECK_EQ_U64(burst_at(c, false, 0, 0, NULL), 11);
	/* The same limits again: fine. */
	REQUIRE(rb_qos_disk_open(reg, "vm1", &l100, 0, &b, err, sizeof(err)) == 0);
	CHECK_EQ_U64(burst_at(b, false, 0, 0, NULL), 0);
	rb_qos_disk_close(a);
	rb_qos_disk_close(b);
	rb_qos_disk_close(c);
	rb_qos_registry_free(reg);
}

TEST(group_joined_without_limits_takes_them_from_a_later_disk)
{
	struct rb_qos_registry *reg = rb_qos_registry_new();
	struct rb_qos_limits join = {0}, l100 = {0};
	struct rb_qos_disk *a, *b;

	REQUIRE(rb_qos_limits_parse("group=g2", &join, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_limits_parse("group=g2,iops-total=100", &l100, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_disk_open(reg, "vm0", &join, 0, &a, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_disk_open(reg, "vm1", &l100, 0, &b, err, sizeof(err)) == 0);
	CHECK_EQ_U64(burst_at(a, false, 0, 0, NULL), 11);
	rb_qos_disk_close(a);
	rb_qos_disk_close(b);
	rb_qos_registry_free(reg);
}

TEST(a_disk_without_limits_is_never_held_but_counted)
{
	struct one o = open_one("");
	struct rb_qos_counters c;

	CHECK_EQ_U64(admit_n(o.d, false, 1 << 20, 0, 100000), 100000);
	rb_qos_disk_stats(o.d, &c);
	CHECK(c.ios[0] == 100000 && c.bytes[0] == 100000ull << 20 && c.delayed == 0);
	close_one(&o);
}

TEST(group_find_holds_a_reference_past_its_last_disk)
{
	struct one o = open_one("iops-total=100");
	struct rb_qos_group *g = rb_qos_group_find(o.reg, "vm0");

	REQUIRE(g);
	rb_qos_disk_close(o.d);
	CHECK(rb_qos_group_find(o.reg, "nope") == NULL);
	CHECK(!strcmp(rb_qos_group_name(g), "vm0"));
	rb_qos_group_put(g);
	CHECK(rb_qos_group_find(o.reg, "vm0") == NULL);
	rb_qos_registry_free(o.reg);
}

/* ---- Tickets: charged exactly once, parked time counted ------------------ */

TEST(a_parked_request_is_charged_once_when_it_goes)
{
	struct one o = open_one("iops-total=100");
	struct rb_qos_ticket t = {0};
	struct rb_qos_counters c;
	struct rb_qos_group_stats gs;

	CHECK_EQ_U64(admit_n(o.d, false, 0, 0, 11), 11);
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, true, 4096, 0), 10 * MS);
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, true, 4096, 4 * MS), 6 * MS); /* early retry */
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, true, 4096, 10 * MS), 0);
	/* Retried again after it went (say io_uring said -EAGAIN): free. */
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, true, 4096, 10 * MS), 0);
	rb_qos_disk_stats(o.d, &c);
	CHECK_EQ_U64(c.ios[1], 1);
	CHECK_EQ_U64(c.bytes[1], 4096);
	CHECK_EQ_U64(c.delayed, 1);
	CHECK_EQ_U64(c.waits, 2);
	CHECK_EQ_U64(c.parked_ns, 10 * MS);
	/* Level: 11 - 1 (10 ms) + 1 = 11, not 12. */
	rb_qos_group_stats(rb_qos_disk_group(o.d), 10 * MS, &gs);
	CHECK(gs.level[RB_QOS_IOPS_TOTAL] == 11.0);
	close_one(&o);
}

TEST(a_time_older_than_the_last_leaks_nothing)
{
	struct one o = open_one("iops-total=100");
	struct rb_qos_ticket t = {0};

	CHECK_EQ_U64(burst_at(o.d, false, 0, 100 * MS, NULL), 11);
	/* Another worker's clock read a little earlier: no leak, no harm. */
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, false, 0, 95 * MS), 10 * MS);
	/* And the group's time did not go back: at 110 ms, 10 ms leaked. */
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, false, 0, 110 * MS), 0);
	close_one(&o);
}

struct hammer {
	struct rb_qos_disk *d;
	unsigned admitted;
};

static void *hammer_fn(void *arg)
{
	struct hammer *h = arg;

	for (int i = 0; i < 200000; i++) {
		struct rb_qos_ticket t = {0};
		if (!rb_qos_charge(h->d, &t, i & 1, 512, 0))
			h->admitted++;
	}
	return NULL;
}

TEST(disks_of_one_group_on_two_threads_share_the_bucket_exactly)
{
	struct rb_qos_registry *reg = rb_qos_registry_new();
	struct rb_qos_limits lim = {0};
	struct hammer h[2] = {{0}};
	pthread_t th[2];

	/* 1000/s, bucket 100: at a frozen t=0 exactly 101 go, however the two
	 * workers interleave. */
	REQUIRE(rb_qos_limits_parse("iops-total=1000,group=g", &lim, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_disk_open(reg, "vm0", &lim, 0, &h[0].d, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_disk_open(reg, "vm1", &lim, 0, &h[1].d, err, sizeof(err)) == 0);
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&th[i], NULL, hammer_fn, &h[i]) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_U64(h[0].admitted + h[1].admitted, 101);
	rb_qos_disk_close(h[0].d);
	rb_qos_disk_close(h[1].d);
	rb_qos_registry_free(reg);
}

/* ---- Run-time changes ------------------------------------------------------ */

static void set(struct rb_qos_disk *d, const char *kv, uint64_t now)
{
	struct rb_qos_limits lim;

	REQUIRE(rb_qos_limits_parse(kv, &lim, err, sizeof(err)) == 0);
	REQUIRE(rb_qos_set_limits(rb_qos_disk_group(d), &lim, now, err, sizeof(err)) == 0);
}

TEST(raising_a_limit_keeps_the_level_no_free_burst)
{
	struct one o = open_one("iops-total=100");

	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, NULL), 11);
	set(o.d, "iops-total=1000", 0);
	/* Level 11 in a bucket of 100: 90 more (an emptied one would give 101). */
	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, NULL), 90);
	close_one(&o);
}

TEST(lowering_a_limit_cuts_the_level_to_the_new_bucket)
{
	struct one o = open_one("iops-total=1000");
	struct rb_qos_ticket t = {0};
	struct rb_qos_limits now;

	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, NULL), 101);
	set(o.d, "iops-total=100", 0);
	rb_qos_get_limits(rb_qos_disk_group(o.d), &now);
	CHECK_EQ_U64(now.b[RB_QOS_IOPS_TOTAL].avg, 100);
	CHECK(!strcmp(now.group, "vm0"));
	/* Level 101 (1 over a bucket of 100) cut to 10 + 1: the next waits
	 * 10 ms, not the 910 ms the old level would cost. */
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, false, 0, 0), 10 * MS);
	/* At 10 ms the level is 10; raised back to 1000: 91 go (10..100). */
	set(o.d, "iops-total=1000", 10 * MS);
	CHECK_EQ_U64(burst_at(o.d, false, 0, 10 * MS, NULL), 91);
	/* At 15 ms the level is 101 - 5 = 96, below the old size: lowered,
	 * it is cut to the new size, 10, and one goes at once. */
	set(o.d, "iops-total=100", 15 * MS);
	CHECK_EQ_U64(burst_at(o.d, false, 0, 15 * MS, NULL), 1);
	close_one(&o);
}

TEST(a_reload_with_the_same_limits_changes_nothing)
{
	struct one o = open_one("iops-total=100");
	struct rb_qos_ticket t = {0};

	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, NULL), 11);
	set(o.d, "iops-total=100", 0);
	CHECK_EQ_U64(rb_qos_charge(o.d, &t, false, 0, 0), 10 * MS);
	close_one(&o);
}

TEST(limits_can_be_lifted_and_set_again_at_run_time)
{
	struct one o = open_one("iops-total=100");
	struct rb_qos_limits none = {0};

	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, NULL), 11);
	REQUIRE(rb_qos_set_limits(rb_qos_disk_group(o.d), &none, 0, err, sizeof(err)) == 0);
	CHECK_EQ_U64(admit_n(o.d, false, 0, 0, 100000), 100000);
	/* A bucket turned on starts empty. */
	set(o.d, "iops-total=100", 0);
	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, NULL), 11);
	close_one(&o);
}

TEST(a_refused_change_changes_nothing)
{
	struct one o = open_one("iops-total=100");
	struct rb_qos_limits bad = {0};

	bad.b[RB_QOS_IOPS_TOTAL].avg = 100;
	bad.b[RB_QOS_IOPS_READ].avg = 100;
	err[0] = 0;
	CHECK_EQ_U64(rb_qos_set_limits(rb_qos_disk_group(o.d), &bad, 0, err, sizeof(err)),
		     -EINVAL);
	CHECK_STR_CONTAINS(err, "iops-total and iops-read cannot be used together");
	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, NULL), 11);
	close_one(&o);
}

TEST(a_burst_level_survives_a_change_of_the_average)
{
	struct one o = open_one("iops-total=10,iops-total-max=100,iops-total-max-length=3");
	uint64_t wait = 0;

	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, NULL), 11);
	/* Burst level 11 > 10 stays: still one per 10 ms at the burst rate. */
	set(o.d, "iops-total=20,iops-total-max=100,iops-total-max-length=3", 0);
	CHECK_EQ_U64(burst_at(o.d, false, 0, 0, &wait), 0);
	CHECK_EQ_U64(wait, 10 * MS);
	close_one(&o);
}

/* ---- --throttle: parsing and every refusal --------------------------------- */

TEST(parse_accepts_qemu_keys_and_formats_them_back)
{
	struct rb_qos_limits l;
	char buf[512];
	const char *kv = "bps-read=1048576,bps-write=2097152,iops-total=100,iops-total-max=2000,"
			 "iops-total-max-length=60,iops-size=4096,group=g1";

	REQUIRE(rb_qos_limits_parse(kv, &l, err, sizeof(err)) == 0);
	CHECK_EQ_U64(l.b[RB_QOS_BPS_READ].avg, 1048576);
	CHECK_EQ_U64(l.b[RB_QOS_BPS_WRITE].avg, 2097152);
	CHECK_EQ_U64(l.b[RB_QOS_IOPS_TOTAL].avg, 100);
	CHECK_EQ_U64(l.b[RB_QOS_IOPS_TOTAL].max, 2000);
	CHECK_EQ_U64(l.b[RB_QOS_IOPS_TOTAL].max_length, 60);
	CHECK_EQ_U64(l.iops_size, 4096);
	CHECK(!strcmp(l.group, "g1"));
	REQUIRE(rb_qos_limits_format(&l, buf, sizeof(buf)) == 0);
	CHECK(!strcmp(buf, kv));
	CHECK_EQ_U64(rb_qos_limits_format(&l, buf, 10), -ENOSPC);
	/* Values at the edges. */
	REQUIRE(rb_qos_limits_parse("iops-total=1000000000000000,iops-total-max-length=1", &l,
				    err, sizeof(err)) == 0);
	REQUIRE(rb_qos_limits_parse("iops-read=0", &l, err, sizeof(err)) == 0);
	CHECK(!rb_qos_limits_any(&l));
}

TEST(parse_refuses_each_bad_option_naming_the_key)
{
	static const struct {
		const char *kv, *msg;
	} bad[] = {
		{"iops-total=100,iops-read=50", "iops-total and iops-read cannot be used together"},
		{"iops-write=5,iops-total=100", "iops-total and iops-write cannot be used together"},
		{"bps-total=100,bps-write=5", "bps-total and bps-write cannot be used together"},
		{"iops-total-max=100,iops-read-max=100",
		 "iops-total-max and iops-read-max cannot be used together"},
		{"iops-total=100,iops-total-max=50", "iops-total-max=50 is below iops-total=100"},
		{"bps-read=100,bps-read-max=99", "bps-read-max=99 is below bps-read=100"},
		{"iops-total-max=100", "iops-total-max=100 requires iops-total"},
		{"iops-total=100,iops-total-max-length=5",
		 "iops-total-max-length=5 requires iops-total-max"},
		{"iops-total=100,iops-total-max=200,iops-total-max-length=0",
		 "iops-total-max-length=0: the burst length cannot be 0"},
		{"iops-total=1000,iops-total-max=1000000000000000,iops-total-max-length=2",
		 "iops-total-max-length=2 is too long for iops-total-max=1000000000000000"},
		{"bps-total=100,iops-size=4096", "iops-size=4096 requires an iops limit"},
		{"iops-total=-5", "iops-total=-5: must not be negative"},
		{"bps-read-max=-1", "bps-read-max=-1: must not be negative"},
		{"iops-read=-99999999999999999999", "=-99999999999999999999: must not be negative"},
		{"iops-read=-1k", "iops-read=-1k: not a number"},
		{"iops-total=1000000000000001", "iops-total=1000000000000001: above the maximum"},
		{"iops-total=99999999999999999999999", "iops-total=99999999999999999999999: above"},
		{"bps-read=1M", "bps-read=1M: not a plain number (QEMU's throttle options take no "
				"K/M/G suffix: write bps-read=1048576)"},
		{"bps-total=4KiB", "write bps-total=4096"},
		{"bps-write=2g", "write bps-write=2147483648"},
		{"iops-total=abc", "iops-total=abc: not a plain number"},
		{"iops-total=1.5", "iops-total=1.5: not a plain number"},
		{"iops-total= 5", "iops-total= 5: not a plain number"},
		{"iops-total=0x10", "iops-total=0x10: not a plain number"},
		{"iops-total=", "iops-total: no value"},
		{"iops-total=-", "iops-total=-: not a number"},
		{"iops=100", "unknown key 'iops' (that is QMP's name; the option takes QEMU's -drive "
			     "name 'iops-total')"},
		{"bps_wr=100", "'bps-write'"},
		{"throttling.iops-total=100", "write it without 'throttling.'"},
		{"iops-totl=100", "unknown key 'iops-totl'"},
		{"iops-total-max-len=3", "unknown key 'iops-total-max-len'"},
		{"iops-total=1,iops-total=2", "iops-total is given twice"},
		{"iops-total", "'iops-total': expected KEY=VALUE"},
		{"iops-total=100,,bps-total=5", "empty item"},
		{"iops-total=100,", "empty item"},
		{",iops-total=100", "empty item"},
		{"", "no limits given"},
		{"group=1abc", "group='1abc': a group name is a letter"},
		{"group=", "group='': a group name"},
		{"group=a/b", "group='a/b'"},
		{"iops-total=1,group=a,group=b", "group is given twice"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rb_qos_limits l;
		memset(&l, 0xa5, sizeof(l));
		err[0] = 0;
		int rc = rb_qos_limits_parse(bad[i].kv, &l, err, sizeof(err));
		if (rc != -EINVAL || !strstr(err, bad[i].msg))
			RT_FAIL_AT("'%s': rc %d, message '%s' (expected '%s')", bad[i].kv, rc, err,
				   bad[i].msg);
		if (l.b[0].avg || l.group[0])
			RT_FAIL_AT("'%s': *out not cleared", bad[i].kv);
	}
}

TEST(check_refuses_values_set_past_the_parser)
{
	struct rb_qos_limits l = {0};

	l.b[RB_QOS_BPS_WRITE].avg = RB_QOS_VALUE_MAX + 1;
	CHECK_EQ_U64(rb_qos_limits_check(&l, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "bps-write: values must be within [0, 1000000000000000]");
	memset(&l, 0, sizeof(l));
	memset(l.group, 'a', sizeof(l.group));
	CHECK_EQ_U64(rb_qos_limits_check(&l, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "group: name not terminated");
}

TEST(disk_open_refuses_bad_names_and_bad_limits)
{
	struct rb_qos_registry *reg = rb_qos_registry_new();
	struct rb_qos_limits l = {0};
	struct rb_qos_disk *d = (void *)1;

	CHECK_EQ_U64(rb_qos_disk_open(reg, "", &l, 0, &d, err, sizeof(err)), -EINVAL);
	CHECK(d == NULL);
	CHECK_STR_CONTAINS(err, "disk '': not a valid name");
	l.b[RB_QOS_IOPS_READ].max = 5;
	CHECK_EQ_U64(rb_qos_disk_open(reg, "vm0", &l, 0, &d, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "iops-read-max=5 requires iops-read");
	rb_qos_registry_free(reg);
}

/* ---- --throttle-file ---------------------------------------------------------- */

TEST(file_resolves_groups_and_disks)
{
	struct rb_qos_config cfg;
	const struct rb_qos_target *t;
	const char *json =
		"{\n"
		"  \"groups\": {\"g1\": {\"iops-total\": 4000, \"bps-total\": 104857600}},\n"
		"  \"disks\": {\n"
		"    \"vm0\": {\"iops-total\": 2000, \"iops-total-max\": 4000,\n"
		"            \"iops-total-max-length\": 10},\n"
		"    \"vm1\": {\"group\": \"g1\"},\n"
		"    \"vm2\": {\"group\": \"g1\", \"iops-total\": 4000, \"bps-total\": 104857600},\n"
		"    \"vm3\": {\"group\": \"g2\", \"iops-read\": 100},\n"
		"    \"vm4\": {\"group\": \"g2\"},\n"
		"    \"vm5\": {\"group\": \"vm0\"}\n"
		"  }\n"
		"}\n";

	err[0] = 0;
	if (rb_qos_config_parse_json(json, &cfg, err, sizeof(err)))
		RT_FAIL_AT("%s", err);
	REQUIRE(cfg.n == 7);
	CHECK(cfg.t[0].kind == RB_QOS_TARGET_GROUP && !strcmp(cfg.t[0].name, "g1"));
	CHECK(!strcmp(cfg.t[0].limits.group, "g1"));
	CHECK(cfg.t[1].kind == RB_QOS_TARGET_DISK && !strcmp(cfg.t[1].name, "vm0"));
	t = rb_qos_config_disk(&cfg, "vm0");
	REQUIRE(t);
	CHECK(!strcmp(t->limits.group, "vm0"));
	CHECK_EQ_U64(t->limits.b[RB_QOS_IOPS_TOTAL].max_length, 10);
	t = rb_qos_config_disk(&cfg, "vm1");
	REQUIRE(t);
	CHECK(!strcmp(t->limits.group, "g1"));
	CHECK_EQ_U64(t->limits.b[RB_QOS_BPS_TOTAL].avg, 104857600);
	t = rb_qos_config_disk(&cfg, "vm4");
	REQUIRE(t);
	CHECK(!strcmp(t->limits.group, "g2"));
	CHECK_EQ_U64(t->limits.b[RB_QOS_IOPS_READ].avg, 100);
	t = rb_qos_config_disk(&cfg, "vm5");
	REQUIRE(t);
	CHECK(!strcmp(t->limits.group, "vm0"));
	CHECK_EQ_U64(t->limits.b[RB_QOS_IOPS_TOTAL].avg, 2000);
	CHECK(rb_qos_config_disk(&cfg, "g1") == NULL);
	CHECK(rb_qos_config_disk(&cfg, "vm9") == NULL);
	rb_qos_config_free(&cfg);

	REQUIRE(rb_qos_config_parse_json("{}", &cfg, err, sizeof(err)) == 0);
	CHECK_EQ_U64(cfg.n, 0);
	rb_qos_config_free(&cfg);
}

TEST(file_refuses_each_kind_of_bad_file_whole)
{
	static const struct {
		const char *json, *msg;
	} bad[] = {
		{"{\"disks\": {\"vm0\": {\"iops-total\": 100}\n", "line 2, column 1: not valid JSON"},
		{"{\"disks\": {\"vm0\": {\"iops-total\": 100,}}}", "line 1, column 38: not valid JSON"},
		{"{} x", "not valid JSON"},
		{"", "not valid JSON"},
		{"[1]", "the file must hold one object"},
		{"5", "the file must hold one object"},
		{"{\"disk\": {}}", "unknown key 'disk' at the top"},
		{"{\"groups\": []}", "\"groups\" must be an object"},
		{"{\"disks\": {\"vm0\": 5}}", "disks.vm0: must be an object of limits"},
		{"{\"disks\": {\"vm0\": {\"iops-total\": \"2000\"}}}",
		 "disks.vm0: iops-total must be an integer"},
		{"{\"disks\": {\"vm0\": {\"iops-total\": 2000.5}}}",
		 "disks.vm0: iops-total must be an integer"},
		{"{\"disks\": {\"vm0\": {\"iops-total\": true}}}",
		 "disks.vm0: iops-total must be an integer"},
		{"{\"disks\": {\"vm0\": {\"iops-total\": -1}}}",
		 "disks.vm0: iops-total=-1: must not be negative"},
		{"{\"disks\": {\"vm0\": {\"iops-total\": 100000000000000000000000}}}",
		 "disks.vm0: iops-total=9223372036854775807: above the maximum"},
		{"{\"disks\": {\"vm0\": {\"iops\": 100}}}", "disks.vm0: unknown key 'iops'"},
		{"{\"disks\": {\"vm0\": {\"bogus\": \"x\"}}}", "disks.vm0: unknown key 'bogus'"},
		{"{\"groups\": {\"g1\": {\"iops-total\": 1, \"iops-read\": 1}}}",
		 "groups.g1: iops-total and iops-read cannot be used together"},
		{"{\"disks\": {\"vm0\": {\"iops-total\": 100, \"iops-total-max\": 10}}}",
		 "disks.vm0: iops-total-max=10 is below iops-total=100"},
		{"{\"disks\": {\"vm0\": {\"iops-total\": 100, \"group\": 5}}}",
		 "disks.vm0: group must be a string"},
		{"{\"disks\": {\"vm0\": {\"group\": \"9x\"}}}", "disks.vm0: group='9x'"},
		{"{\"groups\": {\"g1\": {\"group\": \"g2\", \"iops-total\": 1}}}",
		 "groups.g1: a group does not name a group"},
		{"{\"groups\": {\"g1\": {}}}", "groups.g1: no limits given"},
		{"{\"groups\": {\"g 1\": {\"iops-total\": 1}}}", "groups: group 'g 1': a name is"},
		{"{\"disks\": {\"0vm\": {\"iops-total\": 1}}}", "disks: disk '0vm': a name is"},
		{"{\"disks\": {\"vm0\": {}}}", "disks.vm0: no limits given"},
		{"{\"disks\": {\"vm0\": {\"group\": \"gx\"}}}",
		 "disks.vm0: group 'gx' has no limits anywhere in the file"},
		{"{\"groups\": {\"g1\": {\"iops-total\": 100}},"
		 " \"disks\": {\"vm0\": {\"group\": \"g1\", \"iops-total\": 200}}}",
		 "disks.vm0: limits 'iops-total=200' differ from those of groups.g1 'iops-total=100'"},
		{"{\"disks\": {\"vm0\": {\"group\": \"g\", \"iops-total\": 100},"
		 " \"vm1\": {\"group\": \"g\", \"iops-total\": 200}}}",
		 "disks.vm1: limits 'iops-total=200' differ from 'iops-total=100' that disks.vm0 "
		 "gives group 'g'"},
		{"{\"groups\": {\"vm0\": {\"iops-total\": 100}},"
		 " \"disks\": {\"vm0\": {\"iops-total\": 100}}}",
		 "disks.vm0: its own group would be named 'vm0', which is already a group"},
		/* One bad disk among good ones refuses the file. */
		{"{\"groups\": {\"g1\": {\"iops-total\": 100}}, \"disks\": {\"vm0\": {\"group\": "
		 "\"g1\"}, \"vm1\": {\"iops-total\": 1}, \"vm2\": {\"bps-read\": -1}}}",
		 "disks.vm2: bps-read=-1"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rb_qos_config cfg = {(void *)1, 99};
		err[0] = 0;
		int rc = rb_qos_config_parse_json(bad[i].json, &cfg, err, sizeof(err));
		if (rc != -EINVAL || !strstr(err, bad[i].msg))
			RT_FAIL_AT("%s: rc %d, message '%s' (expected '%s')", bad[i].json, rc, err,
				   bad[i].msg);
		if (cfg.t || cfg.n)
			RT_FAIL_AT("%s: a refused file returned entries", bad[i].json);
	}
}

TEST(file_errors_name_the_file)
{
	char path[] = "/tmp/test_qos_XXXXXX";
	struct rb_qos_config cfg;
	int fd = mkstemp(path);
	FILE *f;

	REQUIRE(fd >= 0);
	f = fdopen(fd, "w");
	REQUIRE(f);
	fputs("{\"disks\": {\"vm0\": {\"iops-total\": 2000}}}\n", f);
	fclose(f);
	REQUIRE(rb_qos_config_parse_file(path, &cfg, err, sizeof(err)) == 0);
	CHECK_EQ_U64(cfg.n, 1);
	rb_qos_config_free(&cfg);

	f = fopen(path, "w");
	REQUIRE(f);
	fputs("{\"disks\": {\"vm0\": {\"iops-total\": 2000, \"iops-read\": 1}}}\n", f);
	fclose(f);
	CHECK_EQ_U64(rb_qos_config_parse_file(path, &cfg, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, path);
	CHECK_STR_CONTAINS(err, ": disks.vm0: iops-total and iops-read cannot");
	CHECK(cfg.t == NULL && cfg.n == 0);
	unlink(path);
	CHECK_EQ_U64(rb_qos_config_parse_file(path, &cfg, err, sizeof(err)), -ENOENT);
	CHECK_STR_CONTAINS(err, "No such file");
}

TEST_MAIN()
