/* SPDX-License-Identifier: MIT */
/*
 * NDP test programs, one per section: well-behaved ones for each hook type
 * and hostile ones that must end their request with a distinct status.
 */
#include <rosen/prog.h>
#include <rosen/xrp.h>

/* cq: meta = {u32 nblocks, u32 stride}; reads nblocks 512-byte blocks, two
 * per hop, summing every byte; scratch = {u64 sum, u64 blocks_seen}. */
struct sum_meta {
	__u32 nblocks;
	__u32 stride;
};
struct sum_scratch {
	__u64 sum;
	__u64 seen;
};

SEC("cq_sum")
int cq_sum_prog(struct rb_ndp_ctx *ctx)
{
	const struct sum_meta *m = (const struct sum_meta *)ctx->meta;
	struct sum_scratch *s = (struct sum_scratch *)ctx->scratch;
	const unsigned char *d = (const unsigned char *)ctx->data;

	for (unsigned i = 0; i < 4096 && i < ctx->len; i++)
		s->sum += d[i];
	s->seen += ctx->len / 512;
	if (s->seen >= m->nblocks)
		return RB_NDP_OK;
	__u64 next = ctx->offset + (__u64)(ctx->len / 512) * m->stride * 512;
	ctx->n_next = s->seen + 2 <= m->nblocks ? 2 : 1;
	ctx->next_off[0] = next;
	ctx->next_len[0] = 512;
	ctx->next_off[1] = next + (__u64)m->stride * 512;
	ctx->next_len[1] = 512;
	return RB_NDP_RESUBMIT;
}

/* sq: meta = {u64 offset}: redirects the first read there. */
SEC("sq_redirect")
int sq_redirect_prog(struct rb_ndp_ctx *ctx)
{
	ctx->next_off[0] = *(const __u64 *)ctx->meta;
	ctx->n_next = 1;
	return RB_NDP_RESUBMIT;
}

/* cq: tries to write the read-only metadata. */
SEC("cq_write_meta")
int cq_write_meta_prog(struct rb_ndp_ctx *ctx)
{
	*(__u64 *)ctx->meta = 1;
	return RB_NDP_OK;
}

/* cq: returns neither OK nor RESUBMIT. */
SEC("cq_bad_return")
int cq_bad_return_prog(struct rb_ndp_ctx *ctx)
{
	(void)ctx;
	return 7;
}

/* xrp: asks for a read far past the end of any test disk. */
SEC("xrp_out_of_range")
int xrp_out_of_range_prog(struct bpf_xrp *ctx)
{
	ctx->next_addr[0] = 1ULL << 50;
	ctx->size[0] = 512;
	return 0;
}

/* xrp: asks for the same block again forever (hop limit). */
SEC("xrp_forever")
int xrp_forever_prog(struct bpf_xrp *ctx)
{
	ctx->next_addr[0] = 0;
	ctx->size[0] = 512;
	return 0;
}

/* xrp: reads past its 4096-byte data buffer. */
SEC("xrp_fault")
int xrp_fault_prog(struct bpf_xrp *ctx)
{
	volatile __u64 off = 1 << 20; /* far past every buffer of the request */
	return ctx->data[off];
}

/* xrp: never ends (instruction budget). */
SEC("xrp_spin")
int xrp_spin_prog(struct bpf_xrp *ctx)
{
	volatile int x = 1;
	while (x)
		ctx->done = 0;
	return 0;
}

/* xrp: copies the first 16 bytes of each block into scratch and stops. */
SEC("xrp_peek")
int xrp_peek_prog(struct bpf_xrp *ctx)
{
	__builtin_memcpy(ctx->scratch, ctx->data, 16);
	ctx->done = 1;
	return 0;
}

char LICENSE[] SEC("license") = "MIT";

/* cq with helpers: walks 4 consecutive blocks one per hop; records in
 * scratch what the helpers answered for bad requests. */
struct helper_scratch {
	__s64 hops;
	__s64 set_bad;     /* set_sqe outside the disk */
	__s64 disk_trans_bad;
	__s64 get_bad;     /* get_sqe of a slot that does not exist */
	__u64 cur_off[4];
};

SEC("cq_helpers")
int cq_helpers_prog(struct rb_ndp_ctx *ctx)
{
	struct helper_scratch *s = (struct helper_scratch *)ctx->scratch;
	struct rb_ndp_sqe cur, bad;

	if (rb_ndp_get_sqe(ctx, RB_NDP_SQE_CURRENT, &cur))
		return 7;
	s->cur_off[s->hops & 3] = cur.off;
	s->hops++;
	/* A failing get_sqe zeroes its out-buffer: not `cur`. */
	s->get_bad = rb_ndp_get_sqe(ctx, 5, &bad);
	s->disk_trans_bad = (__s64)rb_ndp_disk_trans(ctx, 1ULL << 50);
	if (s->hops >= 4)
		return RB_NDP_OK;
	long idx = rb_ndp_new_sqe(ctx);
	if (idx < 0)
		return 8;
	s->set_bad = rb_ndp_set_sqe(ctx, idx, 1ULL << 50, 512);
	if (rb_ndp_set_sqe(ctx, idx, cur.off + 512, 512))
		return 9;
	return RB_NDP_RESUBMIT;
}

/* cq with mem_trans: meta = {u32 key}; copies the first 64 bytes read into
 * the guest memory registered under key; returns 1 if mem_trans refused. */
SEC("cq_mem_copy")
int cq_mem_copy_prog(struct rb_ndp_ctx *ctx)
{
	__u32 key = *(const __u32 *)ctx->meta;
	char *dst = rb_ndp_mem_trans(ctx, key, 0, 64);

	if (!dst)
		return RB_NDP_OK; /* retval 0 tells the test it was refused */
	__builtin_memcpy(dst, (const char *)ctx->data, 64);
	/* Beyond the region: must be refused. */
	if (rb_ndp_mem_trans(ctx, key, 1ULL << 40, 64))
		return 5;
	return RB_NDP_OK;
}
