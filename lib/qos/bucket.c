/* SPDX-License-Identifier: MIT */
/*
 * The leaky bucket ("as a meter") of QEMU's throttling, in exact fixed
 * point: leak, how long an I/O must wait, charge.  No locks, no clock: the
 * group (group.c) holds the lock and passes the time.
 */
#include "qos_internal.h"

const enum rb_qos_bucket rb_qos_bkt_of_dir[2][4] = {
	{RB_QOS_BPS_TOTAL, RB_QOS_IOPS_TOTAL, RB_QOS_BPS_READ, RB_QOS_IOPS_READ},
	{RB_QOS_BPS_TOTAL, RB_QOS_IOPS_TOTAL, RB_QOS_BPS_WRITE, RB_QOS_IOPS_WRITE},
};

static rb_qos_u128 sub_floor0(rb_qos_u128 a, rb_qos_u128 b)
{
	return a > b ? a - b : 0;
}

static uint64_t div_ceil_ns(rb_qos_u128 extra, uint64_t rate)
{
	rb_qos_u128 w = (extra + rate - 1) / rate;

	/* A wait beyond 584 years only comes from an I/O of 2^64 bytes. */
	return w > UINT64_MAX ? UINT64_MAX : (uint64_t)w;
}

void rb_qos_bkt_leak(struct rb_qos_bkt *b, uint64_t delta_ns)
{
	if (!b->avg)
		return;
	b->level = sub_floor0(b->level, (rb_qos_u128)b->avg * delta_ns);
	if (b->length > 1)
		b->burst_level = sub_floor0(b->burst_level, (rb_qos_u128)b->max * delta_ns);
}

/*
 * An I/O may go while the bucket is not over full, whatever its own size
 * (so a bucket holds at most one I/O more than its size); past that, the
 * wait is the time the excess takes to drain.  Rounded up: retrying after
 * exactly that long finds the room.  With bursts longer than a second the
 * burst rate itself is enforced too, smoothed over max/10 like the average
 * (QEMU's throttle_compute_wait()).
 */
uint64_t rb_qos_bkt_wait_after(const struct rb_qos_bkt *b, rb_qos_u128 extra)
{
	if (!b->avg)
		return 0;
	if (b->level + extra > b->size)
		return div_ceil_ns(b->level + extra - b->size, b->avg);
	if (b->length > 1 && b->burst_level + extra > b->burst_thr)
		return div_ceil_ns(b->burst_level + extra - b->burst_thr, b->max);
	return 0;
}

uint64_t rb_qos_bkt_wait(const struct rb_qos_bkt *b)
{
	return rb_qos_bkt_wait_after(b, 0);
}

void rb_qos_bkt_add(struct rb_qos_bkt *b, rb_qos_u128 nano_units)
{
	if (!b->avg)
		return;
	b->level += nano_units;
	if (b->length > 1)
		b->burst_level += nano_units;
}

/*
 * (Re)configures a bucket.  Without a burst rate QEMU allows avg/10 (the
 * Linux CFQ scheduler batches reads and writes by 100 ms; a bucket of
 * avg/10 absorbs one batch).  keep (rb_qos_set_limits()): the levels
 * survive; one above the new size is cut to it, plus what it was already
 * over the old size (the wait an I/O had already earned), so an unchanged
 * size keeps its level exactly and a smaller one leaves no longer debt.
 * Else the bucket starts empty.
 */
static rb_qos_u128 cut(rb_qos_u128 level, rb_qos_u128 old_size, rb_qos_u128 new_size)
{
	rb_qos_u128 limit = new_size + sub_floor0(level, old_size);

	return level < limit ? level : limit;
}

void rb_qos_bkt_config(struct rb_qos_bkt *b, const struct rb_qos_bucket_limit *l, bool keep)
{
	rb_qos_u128 old_size = b->size, old_thr = b->burst_thr, rate;
	bool was_on = b->avg != 0, had_burst = b->length > 1;

	b->avg = l->avg;
	b->max = l->avg ? l->max : 0;
	b->length = l->avg && l->max && l->max_length ? l->max_length : 1;
	rate = b->max ? (rb_qos_u128)b->max * RB_QOS_NANO : (rb_qos_u128)b->avg * (RB_QOS_NANO / 10);
	b->size = rate * b->length;
	b->burst_thr = (rb_qos_u128)b->max * (RB_QOS_NANO / 10);
	if (!keep || !b->avg || !was_on) {
		b->level = 0;
		b->burst_level = 0;
		return;
	}
	b->level = cut(b->level, old_size, b->size);
	b->burst_level = b->length > 1 && had_burst ? cut(b->burst_level, old_thr, b->burst_thr) : 0;
}
