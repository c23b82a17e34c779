/* SPDX-License-Identifier: MIT */
/*
 * Programs the verifier must accept: the idioms clang emits for safe code
 * (masks, bound checks on copies, bounded loops, 32-bit counters, stack
 * arrays, spilled pointers, bpf-to-bpf calls with stack arguments, helpers
 * with NULL checks).  tests/unit/test_bpf_verifier.c verifies each and then
 * runs it on random buffers under the interpreter's run-time checks, which
 * must never fault.  Section prefixes name the type: cq_, sq_, xrp_.
 */
#include <rosen/prog.h>
#include <rosen/xrp.h>

typedef __u64 u64;
typedef __u32 u32;
typedef __u8 u8;

static const u64 squares[8] = {0, 1, 4, 9, 16, 25, 36, 49};
static u64 counter;

#define UNKNOWN(ctx) (*(volatile u64 *)(ctx)->scratch)

SEC("cq_mask") int ok_mask(struct rb_ndp_ctx *ctx)
{
	const u8 *d = (const u8 *)ctx->data;

	return d[UNKNOWN(ctx) & 4095] + squares[UNKNOWN(ctx) & 7];
}

SEC("cq_bound_check") int ok_bound_check(struct rb_ndp_ctx *ctx)
{
	u64 i = UNKNOWN(ctx);
	const u64 *d = (const u64 *)ctx->data;

	if (i < 512)
		return d[i] != 0;
	return 0;
}

SEC("cq_meta_len") int ok_meta_len(struct rb_ndp_ctx *ctx)
{
	const u8 *m = (const u8 *)ctx->meta, *end = (const u8 *)ctx->meta_end;
	u64 sum = 0;

	/* The packet idiom: check against the end marker; the fixed 4096-byte
	 * metadata buffer is what makes it safe. */
	if (m + 8 <= end)
		sum = *(const u64 *)m;
	return sum & 1;
}

SEC("cq_loop_sum") int ok_loop_sum(struct rb_ndp_ctx *ctx)
{
	const u8 *d = (const u8 *)ctx->data;
	u64 *s = (u64 *)ctx->scratch;
	u64 sum = 0;

	for (u32 i = 0; i < 4096 && i < ctx->len; i++)
		sum += d[i];
	s[1] = sum;
	return RB_NDP_OK;
}

SEC("cq_stack_array") int ok_stack_array(struct rb_ndp_ctx *ctx)
{
	u64 a[16];

	for (int i = 0; i < 16; i++)
		a[i] = ((const u64 *)ctx->data)[i];
	return a[UNKNOWN(ctx) & 15] & 1;
}

__attribute__((noinline)) static u64 fill(u64 *out, const u8 *src, u64 n)
{
	for (u64 i = 0; i < 8; i++)
		out[i] = i < n ? src[i] : 0;
	return n;
}

SEC("cq_call_stack_arg") int ok_call_stack_arg(struct rb_ndp_ctx *ctx)
{
	u64 buf[8];

	fill(buf, (const u8 *)ctx->data, UNKNOWN(ctx) & 7);
	((u64 *)ctx->scratch)[2] = buf[3];
	return 0;
}

SEC("cq_spilled_ptr") int ok_spilled_ptr(struct rb_ndp_ctx *ctx)
{
	volatile u64 slot = ctx->data; /* a pointer through the stack */
	const u8 *d = (const u8 *)slot;

	return d[100];
}

SEC("cq_helpers") int ok_helpers(struct rb_ndp_ctx *ctx)
{
	struct rb_ndp_sqe cur;

	if (rb_ndp_get_sqe(ctx, RB_NDP_SQE_CURRENT, &cur))
		return RB_NDP_OK;
	long idx = rb_ndp_new_sqe(ctx);
	if (idx < 0)
		return RB_NDP_OK;
	if (rb_ndp_set_sqe(ctx, (u32)idx, cur.off + 512, 512))
		return RB_NDP_OK;
	return cur.off < 8192 ? RB_NDP_RESUBMIT : RB_NDP_OK;
}

SEC("cq_mem_trans") int ok_mem_trans(struct rb_ndp_ctx *ctx)
{
	u8 *p = rb_ndp_mem_trans(ctx, 1, 0, 64);

	if (!p)
		return RB_NDP_OK;
	for (int i = 0; i < 64; i++)
		p[i] = ((const u8 *)ctx->data)[i];
	return RB_NDP_OK;
}

SEC("cq_globals") int ok_globals(struct rb_ndp_ctx *ctx)
{
	counter += ctx->len;
	__sync_fetch_and_add((u64 *)ctx->scratch, 1);
	return RB_NDP_OK;
}

SEC("cq_next_ios") int ok_next_ios(struct rb_ndp_ctx *ctx)
{
	u32 n = (u32)UNKNOWN(ctx) & 15;

	for (u32 i = 0; i < n; i++) {
		ctx->next_off[i] = ctx->offset + (u64)(i + 1) * 512;
		ctx->next_len[i & 15] = 512;
	}
	ctx->n_next = n;
	return n ? RB_NDP_RESUBMIT : RB_NDP_OK;
}

SEC("sq_rewrite") int ok_sq_rewrite(struct rb_ndp_ctx *ctx)
{
	ctx->next_off[0] = *(const u64 *)ctx->meta & ~511ULL;
	ctx->next_len[0] = 512;
	ctx->n_next = 1;
	return RB_NDP_RESUBMIT;
}

SEC("xrp_walk") int ok_xrp_walk(struct bpf_xrp *ctx)
{
	const u64 *node = (const u64 *)ctx->data;
	u64 key = *(u64 *)ctx->scratch;
	u64 next = 0;

	for (int i = 1; i < 31; i++) {
		if (key < node[2 + i]) {
			next = node[33 + i - 1];
			break;
		}
	}
	if (!next) {
		ctx->done = 1;
		return 0;
	}
	ctx->next_addr[0] = next & ~(1ULL << 63);
	ctx->size[0] = 512;
	return 0;
}

SEC("xrp_spin") int ok_xrp_spin(struct bpf_xrp *ctx)
{
	/* Safe but unbounded: the run-time budget ends it. */
	volatile u64 *s = (volatile u64 *)ctx->scratch;

	while (s[0] != 1)
		s[1]++;
	ctx->done = 1;
	return 0;
}

SEC("cq_ptr_walk") int ok_ptr_walk(struct rb_ndp_ctx *ctx)
{
	/* A pointer stepped to an end pointer, 512 times: bounded by the
	 * pointer compare, not by a counter. */
	const u64 *p = (const u64 *)ctx->data, *end = p + 512;
	u64 sum = 0;

	for (; p < end; p++)
		sum += *p;
	((u64 *)ctx->scratch)[3] = sum;
	return RB_NDP_OK;
}

SEC("cq_meta_end_walk") int ok_meta_end_walk(struct rb_ndp_ctx *ctx)
{
	/* The packet idiom with a variable end: every 8-byte read checked
	 * against meta_end first. */
	const u8 *p = (const u8 *)ctx->meta, *end = (const u8 *)ctx->meta_end;
	u64 sum = 0;

	for (int i = 0; i < 1024; i++) {
		if (p + 8 > end)
			break;
		sum += *(const u64 *)p;
		p += 8;
	}
	((u64 *)ctx->scratch)[4] = sum;
	return RB_NDP_OK;
}

char LICENSE[] SEC("license") = "MIT";
