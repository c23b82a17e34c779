/* SPDX-License-Identifier: MIT */
/*
 * The eBPF interpreter: direct-threaded dispatch over pre-decoded
 * instructions (computed goto), an instruction budget, and a bounds check on
 * every load and store.  It must never read or write host memory outside the
 * regions granted for the run, the program's data sections and its live
 * stack frames.  Only programs validated by prog.c reach it.
 */
#include "bpf_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct frame {
	const struct rb_bpf_op *ret;
	uint64_t saved[4]; /* r6..r9 */
	uint64_t fp;
};

#define DEBUG_PATH __attribute__((noinline, cold))

/* A run that ends at pc in the fast ops was charged for the rest of its
 * superblock: given back (the stepping ops charged exactly). */
static inline uint64_t refund(const struct rb_bpf_prog *prog, const struct rb_bpf_op *base,
			      uint32_t pc)
{
	return base == prog->ops ? prog->rest[pc] : 0;
}
static DEBUG_PATH bool debug_find_span(const struct rb_bpf_call *c, uint64_t a, uint64_t sz,
				       bool write, uint64_t *lo, uint64_t *span);

/* The span holding [a, a+sz): the live stack or a granted region. */
static inline bool span_lookup(const struct rb_bpf_call *c, uint64_t a, uint64_t sz, bool write,
			       uint64_t *lo, uint64_t *span)
{
	uint64_t slo = c->stack_lo, sspan = c->stack_hi - c->stack_lo;

	if (a - slo < sspan && sspan - (a - slo) >= sz) {
		*lo = slo;
		*span = sspan;
		return true;
	}
	for (unsigned i = 0; i < c->n_spans; i++) {
		const struct rb_bpf_span *s = &c->spans[i];

		if (write && !s->writable)
			continue;
		if (a - s->lo < s->span && s->span - (a - s->lo) >= sz) {
			*lo = s->lo;
			*span = s->span;
			return true;
		}
	}
	return false;
}

/* A span found by the slow path.  Span 0 is never hit by the fast check:
 * {1, 0} says no span holds the access, {0, 0} (debug mode) that one does
 * but must not be cached. */
struct span {
	uint64_t lo, span;
};
#define SPAN_MISSED(f) ((f).span == 0 && (f).lo != 0)

/* Slow path of the access check: finds the span holding [a, a+sz), which
 * becomes the cached one.  Returned in registers, so that the cache (never
 * address-taken) stays in registers in the interpreter's loop. */
static struct span __attribute__((noinline))
find_span(const struct rb_bpf_call *c, uint64_t a, uint64_t sz, bool write)
{
	struct span r = {0, 0};

	if (RB_UNLIKELY(c->dbg)) {
		if (!debug_find_span(c, a, sz, write, &r.lo, &r.span))
			r = (struct span){1, 0};
		return r;
	}
	if (!span_lookup(c, a, sz, write, &r.lo, &r.span))
		r = (struct span){1, 0};
	return r;
}

/* Zeroes one 512-byte frame with 16-byte stores: a memset this small
 * becomes rep stos, whose start-up cost was most of a short run. */
static inline void zero_frame(uint64_t addr)
{
	typedef uint64_t v2 __attribute__((vector_size(16), may_alias));
	v2 *q = (v2 *)(uintptr_t)addr;

	for (unsigned i = 0; i < RB_BPF_STACK_SIZE / 16; i += 4) {
		q[i] = q[i + 1] = q[i + 2] = q[i + 3] = (v2){0, 0};
		__asm__ volatile("" : : "r"(q) : "memory"); /* stays stores, not memset */
	}
}

static inline uint64_t sdiv64(uint64_t a, uint64_t b)
{
	if (b == 0)
		return 0;
	if ((int64_t)b == -1)
		return -a; /* INT64_MIN / -1 wraps to INT64_MIN */
	return (uint64_t)((int64_t)a / (int64_t)b);
}

static inline uint64_t smod64(uint64_t a, uint64_t b)
{
	if (b == 0)
		return a;
	if ((int64_t)b == -1)
		return 0;
	return (uint64_t)((int64_t)a % (int64_t)b);
}

static inline uint32_t sdiv32(uint32_t a, uint32_t b)
{
	if (b == 0)
		return 0;
	if ((int32_t)b == -1)
		return -a;
	return (uint32_t)((int32_t)a / (int32_t)b);
}

static inline uint32_t smod32(uint32_t a, uint32_t b)
{
	if (b == 0)
		return a;
	if ((int32_t)b == -1)
		return 0;
	return (uint32_t)((int32_t)a % (int32_t)b);
}

/* ---- the test-only debug mode (bpf_internal.h) ------------------------------- */

static uint64_t garbage(struct rb_bpf_interp_debug *d)
{
	uint64_t z = (d->seed += 0x9e3779b97f4a7c15ull); /* splitmix64 */

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void debug_fill(struct rb_bpf_interp_debug *d, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t g = garbage(d);
		memcpy(p + i, &g, 8);
	}
}

static size_t debug_index(const struct rb_bpf_call *c, uint64_t a)
{
	return (size_t)(a - (uint64_t)(uintptr_t)c->dbg->stack);
}

static DEBUG_PATH void debug_start(struct rb_bpf_call *c, uint64_t *r)
{
	struct rb_bpf_interp_debug *d = c->dbg;

	d->unwritten_read = false;
	debug_fill(d, d->stack, sizeof(d->stack));
	memset(d->written, 0, sizeof(d->written));
	r[0] = garbage(d);
	for (unsigned i = d->n_args + 1; i <= 9; i++)
		r[i] = garbage(d);
}

static DEBUG_PATH void debug_new_frame(struct rb_bpf_call *c)
{
	struct rb_bpf_interp_debug *d = c->dbg;
	size_t at = debug_index(c, c->stack_lo);

	debug_fill(d, d->stack + at, RB_BPF_STACK_SIZE);
	memset(d->written + at, 0, RB_BPF_STACK_SIZE);
}

/* What a helper changes on the live stack counts as written: unwritten
 * bytes are poisoned first so that a change is seen. */
static DEBUG_PATH void debug_before_helper(struct rb_bpf_call *c)
{
	struct rb_bpf_interp_debug *d = c->dbg;

	for (size_t i = debug_index(c, c->stack_lo); i < sizeof(d->stack); i++)
		if (!d->written[i])
			d->stack[i] = RB_BPF_UNWRITTEN_POISON;
}

static DEBUG_PATH void debug_after_helper(struct rb_bpf_call *c, uint64_t *r)
{
	struct rb_bpf_interp_debug *d = c->dbg;

	for (size_t i = debug_index(c, c->stack_lo); i < sizeof(d->stack); i++)
		if (!d->written[i] && d->stack[i] != RB_BPF_UNWRITTEN_POISON)
			d->written[i] = 1;
	for (int i = 1; i <= 5; i++) /* the caller-saved registers are gone */
		r[i] = garbage(d);
}

/* find_span() in debug mode: the same answer, never cached (span 0), and
 * stack bytes checked against (reads) or recorded in (writes) the map. */
static DEBUG_PATH bool debug_find_span(const struct rb_bpf_call *c, uint64_t a, uint64_t sz,
				       bool write, uint64_t *lo, uint64_t *span)
{
	struct rb_bpf_interp_debug *d = c->dbg;

	if (!span_lookup(c, a, sz, write, lo, span))
		return false;
	*lo = 0;
	*span = 0;
	if (a - c->stack_lo >= c->stack_hi - c->stack_lo)
		return true;
	size_t at = debug_index(c, a);
	for (uint64_t i = 0; i < sz; i++) {
		if (write) {
			d->written[at + i] = 1;
		} else if (!d->written[at + i]) {
			d->unwritten_read = true;
			return false;
		}
	}
	return true;
}

void rb_bpf_fill_spans(struct rb_bpf_call *c, const struct rb_bpf_prog *prog,
		       const struct rb_bpf_run_opts *opts)
{
	c->n_spans = 0;
	for (unsigned i = 0; i < opts->n_regions; i++) {
		if (!opts->regions[i].len)
			continue;
		c->spans[c->n_spans++] = (struct rb_bpf_span){
			.lo = opts->regions[i].addr,
			.span = opts->regions[i].len,
			.writable = opts->regions[i].writable,
		};
	}
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++) {
		if (!prog->data_len[k])
			continue;
		c->spans[c->n_spans++] = (struct rb_bpf_span){
			.lo = (uint64_t)(uintptr_t)prog->data[k],
			.span = prog->data_len[k],
			.writable = k != RB_BPF_DATA_RODATA,
		};
	}
}

#define D r[ins->dst]
#define S r[ins->src]
#define K ((uint64_t)(int64_t)ins->imm)
#define K32 ((uint32_t)ins->imm)

/*
 * No budget work per instruction: a superblock's head op charges the whole
 * superblock (charge_head), and when that does not fit, the run goes on in
 * the stepping ops, whose every handler charges one instruction (step).
 * ins points into prog->ops or prog->step_ops (base: the one in use).
 */
#define DISPATCH() goto *ins->handler
#define NEXT()                                                              \
	do {                                                                \
		ins++;                                                      \
		DISPATCH();                                                 \
	} while (0)
#define PC() ((uint32_t)(ins - base))

#define CHECK_READ(a, sz)                                                   \
	do {                                                                \
		if (RB_UNLIKELY(!((a) - rlo < rspan &&                      \
				  rspan - ((a) - rlo) >= (sz)))) {          \
			struct span f_ = find_span(&call, (a), (sz), false); \
			if (SPAN_MISSED(f_)) {                              \
				fault_addr = (a);                           \
				fault_size = (sz);                          \
				goto out_fault_read;                        \
			}                                                   \
			rlo = f_.lo;                                        \
			rspan = f_.span;                                    \
		}                                                           \
	} while (0)
#define CHECK_WRITE(a, sz)                                                  \
	do {                                                                \
		if (RB_UNLIKELY(!((a) - wlo < wspan &&                      \
				  wspan - ((a) - wlo) >= (sz)))) {          \
			struct span f_ = find_span(&call, (a), (sz), true); \
			if (SPAN_MISSED(f_)) {                              \
				fault_addr = (a);                           \
				fault_size = (sz);                          \
				goto out_fault_write;                       \
			}                                                   \
			wlo = f_.lo;                                        \
			wspan = f_.span;                                    \
		}                                                           \
	} while (0)

#define ALU64_OPS(name, op)                                                 \
	name##64_k : D = D op K; NEXT();                                    \
	name##64_x : D = D op S; NEXT();                                    \
	name##32_k : D = (uint32_t)((uint32_t)D op K32); NEXT();            \
	name##32_x : D = (uint32_t)((uint32_t)D op(uint32_t) S); NEXT();

#define JMP_OPS(name, cmp, T64, T32)                                        \
	name##_k : if ((T64)D cmp(T64) K) ins += ins->off; NEXT();          \
	name##_x : if ((T64)D cmp(T64) S) ins += ins->off; NEXT();          \
	name##32_k : if ((T32)D cmp(T32) ins->imm) ins += ins->off; NEXT(); \
	name##32_x : if ((T32)D cmp(T32) S) ins += ins->off; NEXT();

#define LDX_OP(name, T, CAST)                                               \
	name : {                                                            \
		uint64_t a = S + (int64_t)ins->off;                         \
		T v;                                                        \
		CHECK_READ(a, sizeof(T));                                   \
		memcpy(&v, (const void *)(uintptr_t)a, sizeof(T));          \
		D = (uint64_t)(CAST)v;                                      \
	}                                                                   \
	NEXT();

#define ST_OP(name, T, VAL)                                                 \
	name : {                                                            \
		uint64_t a = D + (int64_t)ins->off;                         \
		T v = (T)(VAL);                                             \
		CHECK_WRITE(a, sizeof(T));                                  \
		memcpy((void *)(uintptr_t)a, &v, sizeof(T));                \
	}                                                                   \
	NEXT();

#define ATOMIC_ADDR(T)                                                      \
	uint64_t a = D + (int64_t)ins->off;                                 \
	if (RB_UNLIKELY(a & (sizeof(T) - 1))) {                             \
		fault_addr = a;                                             \
		fault_size = sizeof(T);                                     \
		goto out_fault_align;                                       \
	}                                                                   \
	CHECK_READ(a, sizeof(T)); /* it reads the old value too */         \
	CHECK_WRITE(a, sizeof(T));                                          \
	T *p = (T *)(uintptr_t)a;

#define ATOMIC_OPS(W, T)                                                    \
	a##W##_add : { ATOMIC_ADDR(T) __atomic_fetch_add(p, (T)S, __ATOMIC_SEQ_CST); } NEXT(); \
	a##W##_or : { ATOMIC_ADDR(T) __atomic_fetch_or(p, (T)S, __ATOMIC_SEQ_CST); } NEXT();   \
	a##W##_and : { ATOMIC_ADDR(T) __atomic_fetch_and(p, (T)S, __ATOMIC_SEQ_CST); } NEXT(); \
	a##W##_xor : { ATOMIC_ADDR(T) __atomic_fetch_xor(p, (T)S, __ATOMIC_SEQ_CST); } NEXT(); \
	a##W##_fadd : { ATOMIC_ADDR(T) S = __atomic_fetch_add(p, (T)S, __ATOMIC_SEQ_CST); } NEXT(); \
	a##W##_for : { ATOMIC_ADDR(T) S = __atomic_fetch_or(p, (T)S, __ATOMIC_SEQ_CST); } NEXT();   \
	a##W##_fand : { ATOMIC_ADDR(T) S = __atomic_fetch_and(p, (T)S, __ATOMIC_SEQ_CST); } NEXT(); \
	a##W##_fxor : { ATOMIC_ADDR(T) S = __atomic_fetch_xor(p, (T)S, __ATOMIC_SEQ_CST); } NEXT(); \
	a##W##_xchg : { ATOMIC_ADDR(T) S = __atomic_exchange_n(p, (T)S, __ATOMIC_SEQ_CST); } NEXT(); \
	a##W##_cmpxchg : {                                                  \
		ATOMIC_ADDR(T)                                              \
		T expected = (T)r[0];                                       \
		__atomic_compare_exchange_n(p, &expected, (T)S, false,      \
					    __ATOMIC_SEQ_CST,               \
					    __ATOMIC_SEQ_CST);              \
		r[0] = expected;                                            \
	}                                                                   \
	NEXT();

static int interp(const struct rb_bpf_prog *prog,
		  const struct rb_bpf_run_opts *opts, struct rb_bpf_result *res,
		  const void *const **table_out, struct rb_bpf_interp_debug *dbg)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
	static const void *const table[RB_XOP_COUNT] = {
		[0 ... RB_XOP_COUNT - 1] = &&op_invalid,
#define ALU_ENTRIES(op, name)                                               \
	[RB_BPF_ALU64 | RB_BPF_K | op] = &&name##64_k,                      \
	[RB_BPF_ALU64 | RB_BPF_X | op] = &&name##64_x,                      \
	[RB_BPF_ALU | RB_BPF_K | op] = &&name##32_k,                        \
	[RB_BPF_ALU | RB_BPF_X | op] = &&name##32_x
		ALU_ENTRIES(RB_BPF_ADD, add), ALU_ENTRIES(RB_BPF_SUB, sub),
		ALU_ENTRIES(RB_BPF_MUL, mul), ALU_ENTRIES(RB_BPF_DIV, div),
		ALU_ENTRIES(RB_BPF_OR, or), ALU_ENTRIES(RB_BPF_AND, and),
		ALU_ENTRIES(RB_BPF_LSH, lsh), ALU_ENTRIES(RB_BPF_RSH, rsh),
		ALU_ENTRIES(RB_BPF_MOD, mod), ALU_ENTRIES(RB_BPF_XOR, xor),
		ALU_ENTRIES(RB_BPF_MOV, mov), ALU_ENTRIES(RB_BPF_ARSH, arsh),
		[RB_BPF_ALU64 | RB_BPF_NEG] = &&neg64,
		[RB_BPF_ALU | RB_BPF_NEG] = &&neg32,
		[RB_XOP_SDIV32_K] = &&sdiv32_k, [RB_XOP_SDIV32_X] = &&sdiv32_x,
		[RB_XOP_SMOD32_K] = &&smod32_k, [RB_XOP_SMOD32_X] = &&smod32_x,
		[RB_XOP_SDIV64_K] = &&sdiv64_k, [RB_XOP_SDIV64_X] = &&sdiv64_x,
		[RB_XOP_SMOD64_K] = &&smod64_k, [RB_XOP_SMOD64_X] = &&smod64_x,
		[RB_XOP_MOVSX32_8] = &&movsx32_8,
		[RB_XOP_MOVSX32_16] = &&movsx32_16,
		[RB_XOP_MOVSX64_8] = &&movsx64_8,
		[RB_XOP_MOVSX64_16] = &&movsx64_16,
		[RB_XOP_MOVSX64_32] = &&movsx64_32,
		[RB_XOP_LE16] = &&le16, [RB_XOP_LE32] = &&le32,
		[RB_XOP_LE64] = &&le64, [RB_XOP_BE16] = &&be16,
		[RB_XOP_BE32] = &&be32, [RB_XOP_BE64] = &&be64,
		[RB_XOP_BSWAP16] = &&be16, [RB_XOP_BSWAP32] = &&be32,
		[RB_XOP_BSWAP64] = &&be64,
#define JMP_ENTRIES(op, name)                                               \
	[RB_BPF_JMP | RB_BPF_K | op] = &&name##_k,                          \
	[RB_BPF_JMP | RB_BPF_X | op] = &&name##_x,                          \
	[RB_BPF_JMP32 | RB_BPF_K | op] = &&name##32_k,                      \
	[RB_BPF_JMP32 | RB_BPF_X | op] = &&name##32_x
		JMP_ENTRIES(RB_BPF_JEQ, jeq), JMP_ENTRIES(RB_BPF_JGT, jgt),
		JMP_ENTRIES(RB_BPF_JGE, jge), JMP_ENTRIES(RB_BPF_JSET, jset),
		JMP_ENTRIES(RB_BPF_JNE, jne), JMP_ENTRIES(RB_BPF_JSGT, jsgt),
		JMP_ENTRIES(RB_BPF_JSGE, jsge), JMP_ENTRIES(RB_BPF_JLT, jlt),
		JMP_ENTRIES(RB_BPF_JLE, jle), JMP_ENTRIES(RB_BPF_JSLT, jslt),
		JMP_ENTRIES(RB_BPF_JSLE, jsle),
		[RB_BPF_JMP | RB_BPF_JA] = &&ja,
		[RB_BPF_JMP32 | RB_BPF_JA] = &&ja32,
		[RB_BPF_JMP | RB_BPF_CALL] = &&call_helper,
		[RB_XOP_CALLX] = &&callx,
		[RB_XOP_CALL_LOCAL] = &&call_local,
		[RB_BPF_JMP | RB_BPF_EXIT] = &&exit_,
		[RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW] = &&lddw,
		[RB_BPF_LDX | RB_BPF_MEM | RB_BPF_B] = &&ldxb,
		[RB_BPF_LDX | RB_BPF_MEM | RB_BPF_H] = &&ldxh,
		[RB_BPF_LDX | RB_BPF_MEM | RB_BPF_W] = &&ldxw,
		[RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW] = &&ldxdw,
		[RB_BPF_LDX | RB_BPF_MEMSX | RB_BPF_B] = &&ldxsb,
		[RB_BPF_LDX | RB_BPF_MEMSX | RB_BPF_H] = &&ldxsh,
		[RB_BPF_LDX | RB_BPF_MEMSX | RB_BPF_W] = &&ldxsw,
		[RB_BPF_ST | RB_BPF_MEM | RB_BPF_B] = &&stb,
		[RB_BPF_ST | RB_BPF_MEM | RB_BPF_H] = &&sth,
		[RB_BPF_ST | RB_BPF_MEM | RB_BPF_W] = &&stw,
		[RB_BPF_ST | RB_BPF_MEM | RB_BPF_DW] = &&stdw,
		[RB_BPF_STX | RB_BPF_MEM | RB_BPF_B] = &&stxb,
		[RB_BPF_STX | RB_BPF_MEM | RB_BPF_H] = &&stxh,
		[RB_BPF_STX | RB_BPF_MEM | RB_BPF_W] = &&stxw,
		[RB_BPF_STX | RB_BPF_MEM | RB_BPF_DW] = &&stxdw,
#define ATOMIC_ENTRIES(W, base)                                             \
	[base + 0] = &&a##W##_add, [base + 1] = &&a##W##_or,                \
	[base + 2] = &&a##W##_and, [base + 3] = &&a##W##_xor,               \
	[base + 4] = &&a##W##_fadd, [base + 5] = &&a##W##_for,              \
	[base + 6] = &&a##W##_fand, [base + 7] = &&a##W##_fxor,             \
	[base + 8] = &&a##W##_xchg, [base + 9] = &&a##W##_cmpxchg
		ATOMIC_ENTRIES(32, RB_XOP_A32_ADD),
		ATOMIC_ENTRIES(64, RB_XOP_A64_ADD),
		[RB_XOP_HEAD] = &&charge_head,
		[RB_XOP_STEP] = &&step,
	};
#pragma GCC diagnostic pop

	if (table_out) {
		*table_out = table;
		return 0;
	}

	/* Frame 0 is the top 512 bytes; local calls grow downwards. */
	uint8_t stack[RB_BPF_MAX_FRAMES * RB_BPF_STACK_SIZE]
		__attribute__((aligned(16)));
	struct frame frames[RB_BPF_MAX_FRAMES];
	unsigned depth = 0;
	uint64_t r[11] = {0};
	struct rb_bpf_call call;
	call.prog = prog;
	call.user = opts->user;
	call.stop = false;
	call.failed = false;
	call.stop_value = 0;
	call.msg[0] = 0;
	call.dbg = dbg;
	const struct rb_bpf_op *ins = prog->ops;
	uint64_t budget = opts->budget ? opts->budget : RB_BPF_DEFAULT_BUDGET;
	/* Fast ops: what is left once the current superblock runs to its
	 * end (never < 0); stepping ops: what is left, exactly. */
	int64_t b = budget > INT64_MAX ? INT64_MAX : (int64_t)budget;
	int64_t remaining = b;
	const struct rb_bpf_op *base = prog->ops;
	const uintptr_t head_at = (uintptr_t)prog->heads - (uintptr_t)prog->ops;
	const uintptr_t step_head_at = (uintptr_t)prog->heads - (uintptr_t)prog->step_ops;
	uint64_t fault_addr = 0, fault_size = 0;
	rb_bpf_helper_fn fn;
	uint32_t helper_id;
	const char *what;

	/* Zero each frame as it comes into use: a program must never read
	 * what an earlier run (of another VM's program) left there.  A
	 * program that never names r10 nor makes a local call (which moves
	 * it) has no way to the stack: it gets none (an empty live stack, so
	 * not even a guessed address reaches it), and nothing is zeroed. */
	uint64_t frame = prog->uses_stack || dbg ? RB_BPF_STACK_SIZE : 0;
	call.stack_hi = (uint64_t)(uintptr_t)((dbg ? dbg->stack : stack) + sizeof(stack));
	call.stack_lo = call.stack_hi - frame;
	if (frame)
		zero_frame(call.stack_lo);
	rb_bpf_fill_spans(&call, prog, opts);
	uint64_t rlo = call.stack_lo, rspan = frame;
	uint64_t wlo = rlo, wspan = rspan;

	for (int i = 0; i < 5; i++)
		r[i + 1] = opts->args[i];
	r[10] = call.stack_hi;
	if (RB_UNLIKELY(dbg)) {
		debug_start(&call, r);
		rspan = wspan = 0; /* every access takes the slow path */
		/* The reference the tests compare with: one instruction
		 * charged at a time, all the way. */
		base = ins = prog->step_ops;
	}

	DISPATCH();

charge_head: {
	/* heads[pc] sits head_at bytes from ops[pc] (heads are fast ops) */
	const struct rb_bpf_head *hd = (const struct rb_bpf_head *)((uintptr_t)ins + head_at);
	if (RB_UNLIKELY(remaining < hd->charge)) {
		/* The superblock may not fit: on, one instruction at a time,
		 * from the exact budget (its one way in charged fold ahead). */
		remaining += hd->fold;
		ins = prog->step_ops + (ins - prog->ops);
		base = prog->step_ops;
		goto step;
	}
	remaining -= hd->charge;
	goto *hd->real;
}
step:
	if (RB_UNLIKELY(remaining == 0))
		goto out_budget;
	remaining--;
	goto *((const struct rb_bpf_head *)((uintptr_t)ins + step_head_at))->real;

	ALU64_OPS(add, +)
	ALU64_OPS(sub, -)
	ALU64_OPS(mul, *)
	ALU64_OPS(or, |)
	ALU64_OPS(and, &)
	ALU64_OPS(xor, ^)

lsh64_k: D <<= (K & 63); NEXT();
lsh64_x: D <<= (S & 63); NEXT();
lsh32_k: D = (uint32_t)((uint32_t)D << (K32 & 31)); NEXT();
lsh32_x: D = (uint32_t)((uint32_t)D << (S & 31)); NEXT();
rsh64_k: D >>= (K & 63); NEXT();
rsh64_x: D >>= (S & 63); NEXT();
rsh32_k: D = (uint32_t)D >> (K32 & 31); NEXT();
rsh32_x: D = (uint32_t)D >> (S & 31); NEXT();
arsh64_k: D = (uint64_t)((int64_t)D >> (K & 63)); NEXT();
arsh64_x: D = (uint64_t)((int64_t)D >> (S & 63)); NEXT();
arsh32_k: D = (uint32_t)((int32_t)(uint32_t)D >> (K32 & 31)); NEXT();
arsh32_x: D = (uint32_t)((int32_t)(uint32_t)D >> (S & 31)); NEXT();

div64_k: D = K ? D / K : 0; NEXT();
div64_x: D = S ? D / S : 0; NEXT();
div32_k: D = K32 ? (uint32_t)D / K32 : 0; NEXT();
div32_x: D = (uint32_t)S ? (uint32_t)D / (uint32_t)S : 0; NEXT();
mod64_k: D = K ? D % K : D; NEXT();
mod64_x: D = S ? D % S : D; NEXT();
mod32_k: D = K32 ? (uint32_t)D % K32 : (uint32_t)D; NEXT();
mod32_x: D = (uint32_t)S ? (uint32_t)D % (uint32_t)S : (uint32_t)D; NEXT();
sdiv64_k: D = sdiv64(D, K); NEXT();
sdiv64_x: D = sdiv64(D, S); NEXT();
smod64_k: D = smod64(D, K); NEXT();
smod64_x: D = smod64(D, S); NEXT();
sdiv32_k: D = sdiv32((uint32_t)D, K32); NEXT();
sdiv32_x: D = sdiv32((uint32_t)D, (uint32_t)S); NEXT();
smod32_k: D = smod32((uint32_t)D, K32); NEXT();
smod32_x: D = smod32((uint32_t)D, (uint32_t)S); NEXT();

neg64: D = -D; NEXT();
neg32: D = (uint32_t)-(uint32_t)D; NEXT();
mov64_k: D = K; NEXT();
mov64_x: D = S; NEXT();
mov32_k: D = K32; NEXT();
mov32_x: D = (uint32_t)S; NEXT();
movsx32_8: D = (uint32_t)(int32_t)(int8_t)S; NEXT();
movsx32_16: D = (uint32_t)(int32_t)(int16_t)S; NEXT();
movsx64_8: D = (uint64_t)(int64_t)(int8_t)S; NEXT();
movsx64_16: D = (uint64_t)(int64_t)(int16_t)S; NEXT();
movsx64_32: D = (uint64_t)(int64_t)(int32_t)S; NEXT();

le16: D = (uint16_t)D; NEXT();
le32: D = (uint32_t)D; NEXT();
le64: NEXT();
be16: D = __builtin_bswap16((uint16_t)D); NEXT();
be32: D = __builtin_bswap32((uint32_t)D); NEXT();
be64: D = __builtin_bswap64(D); NEXT();

	JMP_OPS(jeq, ==, uint64_t, uint32_t)
	JMP_OPS(jne, !=, uint64_t, uint32_t)
	JMP_OPS(jgt, >, uint64_t, uint32_t)
	JMP_OPS(jge, >=, uint64_t, uint32_t)
	JMP_OPS(jlt, <, uint64_t, uint32_t)
	JMP_OPS(jle, <=, uint64_t, uint32_t)
	JMP_OPS(jsgt, >, int64_t, int32_t)
	JMP_OPS(jsge, >=, int64_t, int32_t)
	JMP_OPS(jslt, <, int64_t, int32_t)
	JMP_OPS(jsle, <=, int64_t, int32_t)
jset_k: if (D & K) ins += ins->off; NEXT();
jset_x: if (D & S) ins += ins->off; NEXT();
jset32_k: if ((uint32_t)D & K32) ins += ins->off; NEXT();
jset32_x: if ((uint32_t)D & (uint32_t)S) ins += ins->off; NEXT();
ja: ins += ins->off; NEXT();
ja32: ins += ins->imm; NEXT();

lddw:
	D = (uint64_t)(uint32_t)ins->imm | (uint64_t)(uint32_t)ins[1].imm << 32;
	ins++;
	NEXT();

	LDX_OP(ldxb, uint8_t, uint8_t)
	LDX_OP(ldxh, uint16_t, uint16_t)
	LDX_OP(ldxw, uint32_t, uint32_t)
	LDX_OP(ldxdw, uint64_t, uint64_t)
	LDX_OP(ldxsb, int8_t, int64_t)
	LDX_OP(ldxsh, int16_t, int64_t)
	LDX_OP(ldxsw, int32_t, int64_t)
	ST_OP(stb, uint8_t, K)
	ST_OP(sth, uint16_t, K)
	ST_OP(stw, uint32_t, K)
	ST_OP(stdw, uint64_t, K)
	ST_OP(stxb, uint8_t, S)
	ST_OP(stxh, uint16_t, S)
	ST_OP(stxw, uint32_t, S)
	ST_OP(stxdw, uint64_t, S)
	ATOMIC_OPS(32, uint32_t)
	ATOMIC_OPS(64, uint64_t)

call_helper:
	helper_id = (uint32_t)ins->imm;
	fn = prog->helper_fn[helper_id];
	goto do_helper;
callx:
	helper_id = (uint32_t)D;
	if (D >= RB_BPF_MAX_HELPERS || !(fn = prog->helper_fn[D])) {
		snprintf(res->msg, sizeof(res->msg),
			 "insn %u: callx r%u to unknown helper %" PRIu64,
			 PC(), ins->dst, D);
		res->status = RB_BPF_E_HELPER;
		goto out_err;
	}
do_helper:
	if (RB_UNLIKELY(call.dbg))
		debug_before_helper(&call);
	r[0] = fn(&call, r[1], r[2], r[3], r[4], r[5]);
	if (RB_UNLIKELY(call.dbg))
		debug_after_helper(&call, r);
	if (RB_UNLIKELY(call.failed)) {
		snprintf(res->msg, sizeof(res->msg), "insn %u: helper %s: %s",
			 PC(),
			 prog->helpers ? prog->helpers->slot[helper_id].name : "?",
			 call.msg);
		res->status = RB_BPF_E_HELPER;
		goto out_err;
	}
	if (RB_UNLIKELY(call.stop)) {
		r[0] = call.stop_value;
		goto out_ok;
	}
	NEXT();

call_local:
	if (depth + 1 >= RB_BPF_MAX_FRAMES) {
		snprintf(res->msg, sizeof(res->msg),
			 "insn %u: local calls nested deeper than %u frames",
			 PC(), RB_BPF_MAX_FRAMES);
		res->status = RB_BPF_E_DEPTH;
		goto out_err;
	}
	frames[depth].ret = ins + 1;
	memcpy(frames[depth].saved, &r[6], sizeof(frames[depth].saved));
	frames[depth].fp = r[10];
	depth++;
	r[10] -= RB_BPF_STACK_SIZE;
	call.stack_lo = r[10] - RB_BPF_STACK_SIZE;
	if (RB_UNLIKELY(call.dbg))
		debug_new_frame(&call);
	else
		zero_frame(call.stack_lo);
	ins += ins->imm + 1;
	DISPATCH();

exit_:
	if (depth == 0)
		goto out_ok;
	depth--;
	ins = frames[depth].ret;
	/* A call made in the fast ops returns to them, to a head (exact
	 * budget: a return point folds nothing). */
	base = ins >= prog->step_ops && ins <= prog->step_ops + prog->n_insns ? prog->step_ops : prog->ops;
	memcpy(&r[6], frames[depth].saved, sizeof(frames[depth].saved));
	r[10] = frames[depth].fp;
	call.stack_lo = r[10] - RB_BPF_STACK_SIZE;
	/* The callee's frame is gone: forget cached spans that held it. */
	rlo = wlo = call.stack_lo;
	rspan = wspan = call.stack_hi - call.stack_lo;
	if (RB_UNLIKELY(call.dbg))
		rspan = wspan = 0;
	DISPATCH();

op_invalid:
	/* Unreachable for validated programs; fail safe all the same. */
	snprintf(res->msg, sizeof(res->msg), "insn %u: invalid instruction",
		 PC());
	res->status = RB_BPF_E_ARG;
	goto out_err;

out_fault_read:
	what = "read of";
	goto out_fault;
out_fault_write:
	what = "write of";
	goto out_fault;
out_fault_align:
	snprintf(res->msg, sizeof(res->msg),
		 "insn %u: misaligned %" PRIu64 "-byte atomic access at 0x%" PRIx64,
		 PC(), fault_size, fault_addr);
	res->status = RB_BPF_E_FAULT;
	goto out_err;
out_fault:
	if (RB_UNLIKELY(call.dbg && call.dbg->unwritten_read))
		what = "read of never-written stack:";
	snprintf(res->msg, sizeof(res->msg),
		 "insn %u: %s %" PRIu64 " bytes at 0x%" PRIx64
		 " outside the memory granted to the program",
		 PC(), what, fault_size, fault_addr);
	res->status = RB_BPF_E_FAULT;
	goto out_err;

out_budget:
	snprintf(res->msg, sizeof(res->msg),
		 "insn %u: instruction budget of %" PRIu64 " exhausted",
		 PC(), budget);
	res->status = RB_BPF_E_BUDGET;
	res->pc = (uint32_t)(PC());
	res->executed = budget;
	return -E2BIG;

out_err:
	res->pc = (uint32_t)(PC());
	res->executed = (uint64_t)(b - remaining) - refund(prog, base, PC());
	return res->status == RB_BPF_E_FAULT ? -EFAULT : -EINVAL;

out_ok:
	res->status = RB_BPF_OK;
	res->r0 = r[0];
	res->pc = (uint32_t)(PC());
	res->executed = (uint64_t)(b - remaining) - refund(prog, base, PC());
	return 0;
}

const void *const *rb_bpf_interp_handlers(void)
{
	const void *const *table = NULL;

	interp(NULL, NULL, NULL, &table, NULL);
	return table;
}

static __attribute__((noinline, cold)) int bad_opts(struct rb_bpf_result *res)
{
	res->status = RB_BPF_E_ARG;
	res->r0 = 0;
	res->pc = 0;
	res->executed = 0;
	snprintf(res->msg, sizeof(res->msg), "bad run options");
	return -EINVAL;
}

static inline bool opts_ok(const struct rb_bpf_prog *prog, const struct rb_bpf_run_opts *opts)
{
	return prog && opts && opts->n_regions <= RB_BPF_MAX_REGIONS &&
	       (!opts->n_regions || opts->regions);
}

static int check_opts(const struct rb_bpf_prog *prog, const struct rb_bpf_run_opts *opts,
		      struct rb_bpf_result *res)
{
	if (RB_UNLIKELY(!opts_ok(prog, opts)))
		return bad_opts(res);
	/* Not a memset of the whole result: this is on every run's path. */
	res->status = RB_BPF_OK;
	res->r0 = 0;
	res->pc = 0;
	res->executed = 0;
	res->msg[0] = 0;
	return 0;
}

/* The entry point rosenbridged uses: the JIT'd code when there is some
 * (rb_bpf_run_jit() fills the whole result itself), else the interpreter. */
int rb_bpf_run(const struct rb_bpf_prog *prog,
	       const struct rb_bpf_run_opts *opts, struct rb_bpf_result *res)
{
	if (RB_UNLIKELY(!opts_ok(prog, opts)))
		return bad_opts(res);
	if (prog->jit_code)
		return rb_bpf_run_jit(prog, opts, res);
	check_opts(prog, opts, res);
	return interp(prog, opts, res, NULL, NULL);
}

int rb_bpf_run_interp(const struct rb_bpf_prog *prog, const struct rb_bpf_run_opts *opts,
		      struct rb_bpf_result *res)
{
	int rc = check_opts(prog, opts, res);

	return rc ? rc : interp(prog, opts, res, NULL, NULL);
}

int rb_bpf_run_interp_debug(const struct rb_bpf_prog *prog, const struct rb_bpf_run_opts *opts,
			    struct rb_bpf_interp_debug *dbg, struct rb_bpf_result *res)
{
	int rc = check_opts(prog, opts, res);

	if (!rc && !dbg)
		rc = -EINVAL;
	return rc ? rc : interp(prog, opts, res, NULL, dbg);
}

const char *rb_bpf_status_name(enum rb_bpf_status s)
{
	switch (s) {
	case RB_BPF_OK: return "ok";
	case RB_BPF_E_FAULT: return "memory fault";
	case RB_BPF_E_BUDGET: return "budget exhausted";
	case RB_BPF_E_HELPER: return "helper failed";
	case RB_BPF_E_DEPTH: return "call depth exceeded";
	case RB_BPF_E_ARG: return "bad arguments";
	}
	return "unknown";
}
