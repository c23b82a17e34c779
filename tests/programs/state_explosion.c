/* SPDX-License-Identifier: MIT */
/*
 * A program built to make a path-walking verifier explode: local calls
 * nested 7 deep, each function branching many times on a value reloaded
 * from the guest's metadata and folding a distinct constant into an
 * accumulator, so no two paths reach a prune point in the same state and
 * none is pruned.  Proving it would take ~2^200 paths; a LOAD of it must
 * end quickly (REJECTED as too complex) with bounded host memory.  Never
 * meant to be accepted or run.
 */
#include <rosen/prog.h>

typedef __u64 u64;

/* One branch on a reloaded value; the constant makes every path distinct. */
#define B(i) if (m[(i) & 511] > (i)) acc += (u64)(i) * 0x9e3779b97f4a7c15ULL;
#define B4(i) B(i) B((i) + 1) B((i) + 2) B((i) + 3)
#define B16(i) B4(i) B4((i) + 4) B4((i) + 8) B4((i) + 12)
#define B64(i) B16(i) B16((i) + 16) B16((i) + 32) B16((i) + 48)
#define B128(i) B64(i) B64((i) + 64)

/* Every branch comes before the call: the last branches of a path are
 * the deepest ones, so the walk backtracks with all 8 frames live. */
#define LEVEL(n, next, base)                                                   \
	static __attribute__((noinline)) u64 n(const volatile u64 *m, u64 acc) \
	{                                                                      \
		B128(base)                                                     \
		B128((base) + 128)                                             \
		return next(m, acc) ^ acc;                                     \
	}

static __attribute__((noinline)) u64 leaf(const volatile u64 *m, u64 acc)
{
	B128(6 * 256)
	B128(6 * 256 + 128)
	return acc;
}

LEVEL(l5, leaf, 5 * 256)
LEVEL(l4, l5, 4 * 256)
LEVEL(l3, l4, 3 * 256)
LEVEL(l2, l3, 2 * 256)
LEVEL(l1, l2, 1 * 256)
LEVEL(l0, l1, 0)

SEC("cq_explode")
int cq_explode_prog(struct rb_ndp_ctx *ctx)
{
	const volatile u64 *m = (const volatile u64 *)ctx->meta;

	*(volatile u64 *)ctx->scratch = l0(m, 0);
	return RB_NDP_OK;
}

char LICENSE[] SEC("license") = "MIT";
