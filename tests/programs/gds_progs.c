/* SPDX-License-Identifier: MIT */
/*
 * RosenGDS test programs (tests/vhost/test_gds.py): one that retargets to
 * whatever (key, offset) the test names, to try every bound of the
 * gpu_target helper, and hostile ones that try to reach a GPU region
 * without it.  Each must end its request (or its LOAD) with a distinct,
 * expected status.
 */
#include <rosen/prog.h>

/* meta = {u32 key; u32 calls; u64 off; u64 len_after; u64 src_after}:
 * calls the helper `calls` times (0..2) with (key, off), then, if
 * len_after / src_after are not 0, rewrites the read's length / source
 * after the helper accepted the destination (the verdict must catch a
 * read grown past the region).  scratch = {s64 rc of the last call}. */
struct raw_meta {
	__u32 key;
	__u32 calls;
	__u64 off;
	__u64 len_after;
	__u64 src_after;
};

SEC("sq_gds_raw")
int sq_gds_raw_prog(struct rb_ndp_ctx *ctx)
{
	const struct raw_meta *m = (const struct raw_meta *)ctx->meta;
	long rc = 1;

	for (__u32 i = 0; i < m->calls && i < 2; i++)
		rc = rb_ndp_gpu_target(ctx, m->key, m->off);
	*(__s64 *)ctx->scratch = rc;
	if (m->len_after)
		ctx->next_len[0] = (__u32)m->len_after;
	if (m->src_after)
		ctx->next_off[0] = m->src_after;
	return RB_NDP_RESUBMIT;
}

/* Tries to reach the region through mem_trans (which only knows guest
 * memory registered with REG_MEM) and write it; asks for the read
 * without a destination.  scratch = {u64 1 if it got a pointer}. */
SEC("sq_gds_mem_trans")
int sq_gds_mem_trans_prog(struct rb_ndp_ctx *ctx)
{
	__u32 key = *(const __u32 *)ctx->meta;
	unsigned char *p = rb_ndp_mem_trans(ctx, key, 0, 4096);

	*(__u64 *)ctx->scratch = p != 0;
	if (p)
		p[0] = 0x77;
	return RB_NDP_RESUBMIT;
}

/* Treats the phony address as a pointer and writes through it: the
 * verifier refuses the LOAD (a scalar is not memory). */
SEC("sq_gds_phony_ptr")
int sq_gds_phony_ptr_prog(struct rb_ndp_ctx *ctx)
{
	__u64 dest = *(const __u64 *)ctx->meta;

	*(volatile __u64 *)(unsigned long)dest = 0x77;
	return RB_NDP_RESUBMIT;
}

/* A cq program calling gpu_target: the verifier refuses the LOAD (the
 * helper is the sq hook's). */
SEC("cq_gds_target")
int cq_gds_target_prog(struct rb_ndp_ctx *ctx)
{
	rb_ndp_gpu_target(ctx, 1, 0);
	return RB_NDP_OK;
}

/* Answers without any I/O (sq verdict OK): a GPU read that reads nothing. */
SEC("sq_gds_skip")
int sq_gds_skip_prog(struct rb_ndp_ctx *ctx)
{
	(void)ctx;
	return RB_NDP_OK;
}

char LICENSE[] SEC("license") = "MIT";
