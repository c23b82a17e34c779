/* SPDX-License-Identifier: MIT */
/*
 * The verifier's hostile corpus: each section breaks one rule, and
 * tests/unit/test_bpf_verifier.c checks that it is rejected for that reason
 * (the expected reason sits in the test's table, by section name).  Section
 * names start with the program type they are verified as: cq_, sq_ or xrp_.
 * `volatile` keeps clang from optimising the misbehaviour away.
 */
#include <rosen/prog.h>
#include <rosen/xrp.h>

#pragma clang diagnostic ignored "-Warray-bounds"
#pragma clang diagnostic ignored "-Wreturn-stack-address"

typedef __u64 u64;
typedef __u32 u32;
typedef __u8 u8;

static const u64 table[4] = {1, 2, 3, 4};

/* A number the verifier cannot know: the guest's scratch. */
#define UNKNOWN(ctx) (*(volatile u64 *)(ctx)->scratch)

/* ---- each region overrun, forwards and backwards ---- */

SEC("cq_data_fwd") int data_fwd(struct rb_ndp_ctx *ctx)
{
	return ((volatile u8 *)ctx->data)[4096];
}

SEC("cq_data_back") int data_back(struct rb_ndp_ctx *ctx)
{
	return ((volatile u8 *)ctx->data)[-1];
}

SEC("cq_scratch_fwd") int scratch_fwd(struct rb_ndp_ctx *ctx)
{
	((volatile u64 *)ctx->scratch)[511] = 1; /* bytes 4088..4095: fine */
	*(volatile u64 *)((u8 *)ctx->scratch + 4092) = 1; /* 4092..4099: not */
	return 0;
}

SEC("cq_scratch_back") int scratch_back(struct rb_ndp_ctx *ctx)
{
	((volatile u64 *)ctx->scratch)[-1] = 1;
	return 0;
}

SEC("cq_meta_fwd") int meta_fwd(struct rb_ndp_ctx *ctx)
{
	return ((volatile const u8 *)ctx->meta)[4096];
}

SEC("cq_meta_back") int meta_back(struct rb_ndp_ctx *ctx)
{
	return ((volatile const u8 *)ctx->meta)[-8];
}

SEC("cq_ctx_fwd") int ctx_fwd(struct rb_ndp_ctx *ctx)
{
	return ((volatile u64 *)ctx)[sizeof(*ctx) / 8];
}

SEC("cq_ctx_back") int ctx_back(struct rb_ndp_ctx *ctx)
{
	return ((volatile u64 *)ctx)[-1];
}

SEC("cq_rodata_fwd") int rodata_fwd(struct rb_ndp_ctx *ctx)
{
	return ((volatile const u64 *)table)[4];
}

SEC("xrp_data_fwd") int xrp_data_fwd_prog(struct bpf_xrp *ctx)
{
	return ((volatile u8 *)ctx->data)[4096 + 64];
}

SEC("xrp_scratch_back") int xrp_scratch_back_prog(struct bpf_xrp *ctx)
{
	return ((volatile u8 *)ctx->scratch)[-4];
}

/* ---- indexes the program does not bound (or bounds wrongly) ---- */

SEC("cq_unbounded_index") int unbounded_index(struct rb_ndp_ctx *ctx)
{
	return ((volatile u8 *)ctx->data)[UNKNOWN(ctx)];
}

SEC("cq_off_by_one") int off_by_one(struct rb_ndp_ctx *ctx)
{
	u64 i = UNKNOWN(ctx);

	if (i <= 4096)
		return ((volatile u8 *)ctx->data)[i];
	return 0;
}

SEC("cq_signed_index") int signed_index(struct rb_ndp_ctx *ctx)
{
	long i = (long)UNKNOWN(ctx);

	if (i < 4096) /* but it may be negative */
		return ((volatile u8 *)ctx->data)[i];
	return 0;
}

SEC("cq_mask_too_wide") int mask_too_wide(struct rb_ndp_ctx *ctx)
{
	/* & 8191 lets the index reach 8191. */
	return ((volatile u8 *)ctx->data)[UNKNOWN(ctx) & 8191];
}

SEC("cq_loop_overrun") int loop_overrun(struct rb_ndp_ctx *ctx)
{
	volatile u8 *d = (volatile u8 *)ctx->data;

	for (u32 i = 0; i <= 4096; i++)
		d[i] = 0;
	return 0;
}

SEC("cq_unbounded_loop") int unbounded_loop(struct rb_ndp_ctx *ctx)
{
	volatile u8 *d = (volatile u8 *)ctx->data;
	u64 i = 0;

	while (d[0] != 7) /* its bound is the data, not the program */
		d[i++] = 1;
	return 0;
}

/* ---- pointer arithmetic that escapes ---- */

SEC("cq_ptr_escape") int ptr_escape(struct rb_ndp_ctx *ctx)
{
	volatile u8 *p = (volatile u8 *)ctx->data + (UNKNOWN(ctx) & 0xffff);

	return *p;
}

SEC("cq_ptr_multiply") int ptr_multiply(struct rb_ndp_ctx *ctx)
{
	u64 a = (u64)ctx->data;

	a *= 2;
	return *(volatile u8 *)a;
}

SEC("cq_ptr_and") int ptr_and(struct rb_ndp_ctx *ctx)
{
	u64 a = (u64)ctx->data & ~0xfffULL;

	return *(volatile u8 *)a;
}

SEC("cq_number_as_ptr") int number_as_ptr(struct rb_ndp_ctx *ctx)
{
	return *(volatile u8 *)UNKNOWN(ctx);
}

SEC("cq_end_deref") int end_deref(struct rb_ndp_ctx *ctx)
{
	return *((volatile u8 *)ctx->data_end - 1);
}

/* ---- pointers leaking to where the guest can read them ---- */

SEC("cq_leak_scratch") int leak_scratch(struct rb_ndp_ctx *ctx)
{
	*(volatile u64 *)ctx->scratch = ctx->data;
	return 0;
}

SEC("cq_leak_data") int leak_data(struct rb_ndp_ctx *ctx)
{
	*(volatile u64 *)ctx->data = (u64)ctx;
	return 0;
}

SEC("cq_leak_ctx") int leak_ctx(struct rb_ndp_ctx *ctx)
{
	ctx->next_off[0] = ctx->scratch;
	return 0;
}

SEC("cq_leak_return") u64 leak_return(struct rb_ndp_ctx *ctx)
{
	return ctx->meta;
}

SEC("cq_leak_low_half") int leak_low_half(struct rb_ndp_ctx *ctx)
{
	*(volatile u32 *)ctx->scratch = (u32)ctx->data;
	return 0;
}

SEC("cq_leak_compare") int leak_compare(struct rb_ndp_ctx *ctx)
{
	/* Learning the address bit by bit through branches. */
	*(volatile u64 *)ctx->scratch = ctx->data > 0x7f0000000000ULL;
	return 0;
}

SEC("cq_leak_partial_spill") int leak_partial_spill(struct rb_ndp_ctx *ctx)
{
	volatile u64 slot = ctx->data;

	*(volatile u32 *)ctx->scratch = *(volatile u32 *)&slot;
	return 0;
}

SEC("xrp_leak_next_addr") int xrp_leak_next_addr_prog(struct bpf_xrp *ctx)
{
	ctx->next_addr[0] = (u64)ctx->scratch;
	ctx->size[0] = 512;
	return 0;
}

SEC("cq_compare_regions") int compare_regions(struct rb_ndp_ctx *ctx)
{
	const u8 *a = (const u8 *)ctx->data, *b = (const u8 *)ctx->scratch;

	return a < b;
}

/* ---- writes to read-only memory ---- */

SEC("cq_write_meta") int write_meta(struct rb_ndp_ctx *ctx)
{
	*(volatile u8 *)ctx->meta = 1;
	return 0;
}

SEC("cq_write_rodata") int write_rodata(struct rb_ndp_ctx *ctx)
{
	((volatile u64 *)table)[UNKNOWN(ctx) & 3] = 9;
	return 0;
}

SEC("cq_write_ctx_offset") int write_ctx_offset(struct rb_ndp_ctx *ctx)
{
	ctx->offset = 0;
	return 0;
}

SEC("cq_write_ctx_pointer") int write_ctx_pointer(struct rb_ndp_ctx *ctx)
{
	ctx->data = ctx->scratch;
	return 0;
}

SEC("xrp_write_ctx_pointer") int xrp_write_ctx_pointer_prog(struct bpf_xrp *ctx)
{
	ctx->data = ctx->scratch;
	return 0;
}

SEC("cq_atomic_meta") int atomic_meta(struct rb_ndp_ctx *ctx)
{
	__sync_fetch_and_add((u64 *)ctx->meta, 1);
	return 0;
}

SEC("cq_atomic_ctx") int atomic_ctx(struct rb_ndp_ctx *ctx)
{
	__sync_fetch_and_add(&ctx->n_next, 1);
	return 0;
}

/* ---- uninitialised reads ---- */

SEC("cq_uninit_stack") int uninit_stack(struct rb_ndp_ctx *ctx)
{
	volatile u64 a[4];

	(void)ctx;
	return a[1];
}

SEC("cq_uninit_stack_var") int uninit_stack_var(struct rb_ndp_ctx *ctx)
{
	volatile u64 a[4];

	a[0] = 1;
	return a[UNKNOWN(ctx) & 3];
}

/* ---- helpers ---- */

static long (*const helper_99)(void *ctx) = (void *)99;

SEC("cq_unknown_helper") int unknown_helper(struct rb_ndp_ctx *ctx)
{
	return helper_99(ctx);
}

SEC("xrp_ndp_helper") int xrp_ndp_helper_prog(struct bpf_xrp *ctx)
{
	return rb_ndp_new_sqe((struct rb_ndp_ctx *)ctx);
}

SEC("cq_helper_not_ctx") int helper_not_ctx(struct rb_ndp_ctx *ctx)
{
	return rb_ndp_new_sqe((struct rb_ndp_ctx *)ctx->scratch);
}

SEC("cq_helper_ptr_as_number") int helper_ptr_as_number(struct rb_ndp_ctx *ctx)
{
	return rb_ndp_set_sqe(ctx, 0, ctx->data, 512);
}

SEC("cq_helper_out_small") int helper_out_small(struct rb_ndp_ctx *ctx)
{
	return rb_ndp_get_sqe(ctx, 0, (struct rb_ndp_sqe *)((u8 *)ctx->data + 4090));
}

SEC("cq_helper_out_meta") int helper_out_meta(struct rb_ndp_ctx *ctx)
{
	return rb_ndp_get_sqe(ctx, 0, (struct rb_ndp_sqe *)ctx->meta);
}

SEC("cq_helper_out_number") int helper_out_number(struct rb_ndp_ctx *ctx)
{
	return rb_ndp_get_sqe(ctx, 0, (struct rb_ndp_sqe *)UNKNOWN(ctx));
}

SEC("cq_mem_trans_null") int mem_trans_null(struct rb_ndp_ctx *ctx)
{
	volatile u8 *p = rb_ndp_mem_trans(ctx, 1, 0, 64);

	return *p;
}

SEC("cq_mem_trans_overrun") int mem_trans_overrun(struct rb_ndp_ctx *ctx)
{
	volatile u8 *p = rb_ndp_mem_trans(ctx, 1, 0, 64);

	if (!p)
		return 0;
	return p[64];
}

/* ---- calls ---- */

#define LEVEL(n, next) \
	__attribute__((noinline)) static u64 level##n(volatile u64 *x) { return next(x) + 1; }
__attribute__((noinline)) static u64 level9(volatile u64 *x)
{
	return *x;
}
LEVEL(8, level9)
LEVEL(7, level8)
LEVEL(6, level7)
LEVEL(5, level6)
LEVEL(4, level5)
LEVEL(3, level4)
LEVEL(2, level3)
LEVEL(1, level2)

SEC("cq_calls_too_deep") int calls_too_deep(struct rb_ndp_ctx *ctx)
{
	return (int)level1((volatile u64 *)ctx->scratch);
}

__attribute__((noinline)) static u64 recurse(volatile u64 *x, u64 n)
{
	return n ? recurse(x, n - 1) + *x : 0;
}

SEC("cq_recursion") int recursion(struct rb_ndp_ctx *ctx)
{
	return (int)recurse((volatile u64 *)ctx->scratch, UNKNOWN(ctx));
}

__attribute__((noinline)) static u64 *own_stack(u64 v)
{
	volatile u64 local = v;

	return (u64 *)&local;
}

SEC("cq_return_stack_ptr") int return_stack_ptr(struct rb_ndp_ctx *ctx)
{
	return (int)*own_stack(UNKNOWN(ctx));
}

SEC("cq_compare_mem_blocks") int compare_mem_blocks(struct rb_ndp_ctx *ctx)
{
	/* Which of two guest buffers the host mapped lower: a layout leak. */
	u8 *a = rb_ndp_mem_trans(ctx, 1, 0, 8), *b = rb_ndp_mem_trans(ctx, 2, 0, 8);

	if (!a || !b)
		return 0;
	return a < b;
}

SEC("cq_end_check_too_short") int end_check_too_short(struct rb_ndp_ctx *ctx)
{
	/* Checks 4 bytes against meta_end, reads 8. */
	const u8 *p = (const u8 *)ctx->meta, *end = (const u8 *)ctx->meta_end;
	u64 sum = 0;

	for (int i = 0; i < 1024; i++) {
		if (p + 4 > end)
			break;
		sum += *(const volatile u64 *)p;
		p += 4;
	}
	return (int)sum;
}

char LICENSE[] SEC("license") = "MIT";
