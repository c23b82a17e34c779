/* SPDX-License-Identifier: MIT */
/*
 * A hostile guest's CPU hog (tests/vhost/test_ndp_fairness.py): a cq
 * program that spins through most of its per-run instruction budget on
 * every hop and resubmits the same block, so one request costs up to
 * max_hops full runs unless the device bounds it.
 */
#include <rosen/prog.h>

/* meta = {u32 iters, u32 hops}: each run spins iters rounds of a loop the
 * compiler must keep (a volatile counter, ~6 instructions a round); the
 * request ends OK after `hops` hops.  scratch = {u64 runs}. */
struct busy_meta {
	__u32 iters;
	__u32 hops;
};

SEC("cq_busy")
int cq_busy_prog(struct rb_ndp_ctx *ctx)
{
	const struct busy_meta *m = (const struct busy_meta *)ctx->meta;
	__u64 *runs = (__u64 *)ctx->scratch;
	volatile __u32 i = 0;

	while (i < m->iters)
		i = i + 1;
	*runs += 1;
	if (ctx->hop >= m->hops)
		return RB_NDP_OK;
	ctx->n_next = 1;
	ctx->next_off[0] = ctx->offset;
	ctx->next_len[0] = 512;
	return RB_NDP_RESUBMIT;
}

char LICENSE[] SEC("license") = "MIT";
