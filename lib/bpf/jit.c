/* SPDX-License-Identifier: MIT */
/*
 * x86-64 JIT for the eBPF engine.  One pass emits code with rel32 jumps and
 * records fixups; out-of-line stubs report budget, fault and helper failures
 * with the instruction index.  Code lives in memory that is never writable
 * and executable at once.  In checked mode every load/store is checked
 * against the granted regions like the interpreter does; unchecked mode is
 * only for programs the verifier proved safe, and unless told otherwise
 * (RB_BPF_JIT_NO_HARDENING, benchmarks only) hardens them so that one
 * verifier bug is not enough to reach host memory: registers and stack
 * cleared, proven constants and pointer-offset ranges enforced, unreachable
 * code trapped.  It must never trust a fact to widen what a program can do.
 *
 * Register mapping (BPF -> x86): r0 rax, r1 rdi, r2 rsi, r3 rdx, r4 rcx,
 * r5 r8, r6 rbx, r7 r13, r8 r14, r9 r15, r10 rbp; r12 holds the run context,
 * r9-r11 are scratch.
 */
#include "bpf_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { RAX = 0, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

static const uint8_t bpf2x86[11] = {RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP};

#define CTXREG R12
#define STACK_BYTES (RB_BPF_MAX_FRAMES * RB_BPF_STACK_SIZE)

/* What the generated code reads and writes while it runs. */
/*
 * What the generated code reads and writes while it runs.  A lean program
 * (no helper or local calls, no run-time checks) only ever writes the
 * head, and only when it fails: its run's context is the head alone, and
 * rb_bpf_run_jit() fills nothing of it before the call.
 */
struct rb_jit_head {
	int64_t budget;  /* instructions left (a failure, or no register for it) */
	uint32_t pc;     /* instruction of a failure */
	uint32_t status; /* enum rb_bpf_status of a failure */
	uint32_t refund; /* a failure: instructions charged ahead but not run */
	const struct rb_bpf_prog *prog;     /* for a failure's message */
	const struct rb_bpf_run_opts *opts;
};

struct rb_jit_ctx {
	struct rb_jit_head h;
	struct rb_bpf_call call; /* helpers receive &ctx->call */
	uint64_t rlo, rspan, wlo, wspan; /* last region hit, for reads/writes */
	uint64_t depth;                  /* local call depth */
	uint64_t saved_rsp;
	const rb_bpf_helper_fn *helpers;
	uint64_t fault_addr, fault_size;
	uint64_t helper_id;
};

/*
 * The generated code's signature: r1..r5 from args[], `budget` instructions
 * at most; r0 in rax and the budget left in rdx, or rdx = -1 when the
 * program failed (ctx->status, pc, budget and refund say how).
 */
struct rb_jit_ret {
	uint64_t r0;
	int64_t left;
};
typedef struct rb_jit_ret (*rb_jit_fn)(struct rb_jit_ctx *ctx, const uint64_t *args, int64_t budget);

#define OFF(f) ((int32_t)offsetof(struct rb_jit_ctx, f))
#define CALL_OFF(f) ((int32_t)(offsetof(struct rb_jit_ctx, call) + offsetof(struct rb_bpf_call, f)))

/* ---- code buffer ----------------------------------------------------------------- */

struct fixup {
	uint32_t at;     /* position of the rel32 */
	uint32_t target; /* BPF instruction index, or a stub label */
	uint8_t kind;    /* FIX_INSN, FIX_LABEL */
};

enum { FIX_INSN, FIX_LABEL, FIX_SLOW /* a superblock's slow copy, exact budget */ };
enum {
	L_EPILOGUE, L_ZERO_FRAME, L_CHECK_READ, L_CHECK_WRITE, L_FAIL, L_STOP, L_BUDGET, L_COUNT
};

/* Per-instruction plan (plan_blocks()). */
enum {
	P_LEAD = RB_PLAN_LEAD, P_TARGET = RB_PLAN_TARGET, P_HEAD = RB_PLAN_HEAD,
	P_SLOT2 = RB_PLAN_SLOT2, P_NOFOLD = RB_PLAN_NOFOLD,
};

struct jit {
	uint8_t *buf;
	size_t len, cap;
	bool oom;
	uint32_t *insn_off; /* x86 offset of each BPF instruction */
	struct fixup *fix;
	size_t nfix, capfix;
	uint32_t label[L_COUNT];
	bool checked;
	bool has_local_calls;
	/* Unchecked mode's defence in depth (see rb_bpf_jit_ex()); facts only
	 * when hardening and the verifier ran. */
	bool harden;
	const struct rb_bpf_fact *facts;
	bool mentions_fp; /* some instruction names r10 */
	/* Frame layout, fixed by plan_frame(): callee-saved registers pushed by
	 * the prologue (R12 always), bytes reserved below them, and which BPF
	 * registers the program mentions at all. */
	uint8_t saved[6];
	unsigned n_saved;
	uint32_t frame_bytes;
	bool uses[11];
	/* A register the program leaves free holds the budget (a memory
	 * counter costs a store-forward per block), or -1: r9 when nothing
	 * else needs it, else a callee-saved one. */
	int budget_reg;
	/* Lean: unchecked, no local calls: rsp never moves after the
	 * prologue, so the epilogue need not restore it. */
	bool lean;
	const struct rb_bpf_prog *prog;
	/* Out-of-line failure stubs: (position of rel32 to patch, pc, status,
	 * instructions charged ahead of pc that it did not run). */
	struct {
		uint32_t at, pc, status, refund;
	} *stub;
	size_t nstub, capstub;
	/* Out-of-line edges that change the budget: add delta, jump on. */
	struct {
		uint32_t at, target;
		int32_t delta;
		uint8_t kind;
	} *edge;
	size_t nedge, capedge;
	/* The budget plan (plan_blocks()): flags, instructions of its
	 * superblock after each pc, the end and size of each superblock
	 * (at its head), and what a head's charge leaves to its one entry
	 * edge (fold). */
	struct rb_bpf_plan plan;
	uint8_t *pflags;
	uint32_t *rest, *sb_end, *sb_total, *fold;
	uint32_t *slow_at; /* at a head: where its jl to the slow copy is, or 0 */
	uint32_t *slow_entry; /* at a head: its slow copy, entered with the exact budget */
	/* Emission state: instructions charged ahead of the one being
	 * emitted (refunded when it leaves or fails), and whether this is a
	 * superblock's exact slow copy. */
	uint32_t cur_rest;
	bool slow;
};

static void emit(struct jit *j, const void *p, size_t n)
{
	if (j->len + n > j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 65536;
		while (cap < j->len + n)
			cap *= 2;
		uint8_t *nb = realloc(j->buf, cap);
		if (!nb) {
			j->oom = true;
			return;
		}
		j->buf = nb;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, p, n);
	j->len += n;
}

static void e1(struct jit *j, uint8_t b)
{
	emit(j, &b, 1);
}

static void e4(struct jit *j, uint32_t v)
{
	emit(j, &v, 4);
}

static void e8(struct jit *j, uint64_t v)
{
	emit(j, &v, 8);
}

static void rex(struct jit *j, bool w, int reg, int rm, bool force)
{
	uint8_t r = (uint8_t)(0x40 | (w ? 8 : 0) | ((reg & 8) ? 4 : 0) | ((rm & 8) ? 1 : 0));
	if (r != 0x40 || force)
		e1(j, r);
}

/* op reg, rm (register direct). */
static void rr(struct jit *j, bool w, const uint8_t *op, size_t oplen, int reg, int rm, bool byte)
{
	rex(j, w, reg, rm, byte);
	emit(j, op, oplen);
	e1(j, (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7)));
}

/* op reg, [base + disp32]. */
static void rm_mem(struct jit *j, bool w, const uint8_t *op, size_t oplen, int reg, int base,
		   int32_t disp, bool byte)
{
	rex(j, w, reg, base, byte);
	emit(j, op, oplen);
	e1(j, (uint8_t)(0x80 | ((reg & 7) << 3) | (base & 7)));
	if ((base & 7) == RSP)
		e1(j, 0x24);
	e4(j, (uint32_t)disp);
}

#define OP(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

static void mov_rr(struct jit *j, bool w, int dst, int src)
{
	rr(j, w, OP(0x89), src, dst, false);
}

static void mov_imm64(struct jit *j, int dst, uint64_t v)
{
	if (v <= UINT32_MAX) { /* mov r32, imm32 zero-extends */
		rex(j, false, 0, dst, false);
		e1(j, (uint8_t)(0xb8 + (dst & 7)));
		e4(j, (uint32_t)v);
	} else if ((int64_t)v == (int32_t)v) {
		rr(j, true, OP(0xc7), 0, dst, false);
		e4(j, (uint32_t)v);
	} else {
		rex(j, true, 0, dst, false);
		e1(j, (uint8_t)(0xb8 + (dst & 7)));
		e8(j, v);
	}
}

static void load_ctx(struct jit *j, int dst, int32_t off)
{
	rm_mem(j, true, OP(0x8b), dst, CTXREG, off, false);
}

static void store_ctx(struct jit *j, int src, int32_t off)
{
	rm_mem(j, true, OP(0x89), src, CTXREG, off, false);
}

static void push(struct jit *j, int r)
{
	rex(j, false, 0, r, false);
	e1(j, (uint8_t)(0x50 + (r & 7)));
}

static void pop(struct jit *j, int r)
{
	rex(j, false, 0, r, false);
	e1(j, (uint8_t)(0x58 + (r & 7)));
}

static void add_fix(struct jit *j, uint32_t target, uint8_t kind)
{
	if (j->oom)
		return;
	if (j->nfix == j->capfix) {
		/* The capacity grows only with the array: after a failed
		 * realloc the old one is still the one we have. */
		size_t cap = j->capfix ? j->capfix * 2 : 256;
		struct fixup *nf = realloc(j->fix, cap * sizeof(*nf));
		if (!nf) {
			j->oom = true;
			return;
		}
		j->fix = nf;
		j->capfix = cap;
	}
	j->fix[j->nfix++] = (struct fixup){(uint32_t)j->len, target, kind};
}

static void jmp_to(struct jit *j, uint8_t cc /* 0xff: jmp */, uint32_t target, uint8_t kind)
{
	if (cc == 0xff) {
		e1(j, 0xe9);
	} else {
		e1(j, 0x0f);
		e1(j, (uint8_t)(0x80 + cc));
	}
	add_fix(j, target, kind);
	e4(j, 0);
}

static void call_label(struct jit *j, uint32_t label)
{
	e1(j, 0xe8);
	add_fix(j, label, FIX_LABEL);
	e4(j, 0);
}

/* A conditional jump to an out-of-line stub that records (pc, status) and
 * leaves through L_FAIL. */
static void fail_if(struct jit *j, uint8_t cc, uint32_t pc, uint32_t status)
{
	if (j->oom)
		return;
	if (j->nstub == j->capstub) {
		size_t cap = j->capstub ? j->capstub * 2 : 64; /* as in add_fix() */
		void *ns = realloc(j->stub, cap * sizeof(*j->stub));
		if (!ns) {
			j->oom = true;
			return;
		}
		j->stub = ns;
		j->capstub = cap;
	}
	if (cc == 0xff) {
		e1(j, 0xe9);
	} else {
		e1(j, 0x0f);
		e1(j, (uint8_t)(0x80 + cc));
	}
	j->stub[j->nstub].at = (uint32_t)j->len;
	j->stub[j->nstub].pc = pc;
	j->stub[j->nstub].status = status;
	j->stub[j->nstub].refund = j->cur_rest;
	j->nstub++;
	e4(j, 0);
}

/* budget += delta (a refund, or a charge when negative; flags not used). */
static void budget_add(struct jit *j, int64_t delta)
{
	if (delta == 0)
		return;
	if (j->budget_reg >= 0)
		rr(j, true, OP(0x81), 0, j->budget_reg, false);
	else
		rm_mem(j, true, OP(0x81), 0, CTXREG, OFF(h.budget), false);
	e4(j, (uint32_t)(int32_t)delta);
}

/* budget -= n, setting the flags (jl: it ran out). */
static void budget_sub(struct jit *j, uint32_t n)
{
	if (j->budget_reg >= 0)
		rr(j, true, OP(0x81), 5, j->budget_reg, false);
	else
		rm_mem(j, true, OP(0x81), 5, CTXREG, OFF(h.budget), false);
	e4(j, n);
}

/* A (conditional) jump through an out-of-line stub that adds delta to the
 * budget first. */
static void jmp_adjusted(struct jit *j, uint8_t cc, uint32_t target, uint8_t kind, int32_t delta)
{
	if (delta == 0) {
		jmp_to(j, cc, target, kind);
		return;
	}
	if (j->oom)
		return;
	if (j->nedge == j->capedge) {
		size_t cap = j->capedge ? j->capedge * 2 : 64; /* as in add_fix() */
		void *ne = realloc(j->edge, cap * sizeof(*j->edge));
		if (!ne) {
			j->oom = true;
			return;
		}
		j->edge = ne;
		j->capedge = cap;
	}
	if (cc == 0xff) {
		e1(j, 0xe9);
	} else {
		e1(j, 0x0f);
		e1(j, (uint8_t)(0x80 + cc));
	}
	j->edge[j->nedge].at = (uint32_t)j->len;
	j->edge[j->nedge].target = target;
	j->edge[j->nedge].delta = delta;
	j->edge[j->nedge].kind = kind;
	j->nedge++;
	e4(j, 0);
}

/*
 * A jump to instruction t that leaves the current superblock.  In the
 * fast code the instructions charged ahead (cur_rest) are given back on
 * the way, unless t's own charge was lowered by as much (t has no other
 * way in); a slow copy, which charges exactly, goes on in t's slow copy
 * when t's charge was lowered.
 */
static void branch_to(struct jit *j, uint8_t cc, uint32_t t)
{
	if (j->slow && j->fold[t]) {
		/* t's fast code may skip its check (its charge, lowered, can
		 * be <= 0): an exact budget goes on in t's slow copy. */
		jmp_to(j, cc, t, FIX_SLOW);
		return;
	}
	if (j->slow)
		jmp_to(j, cc, t, FIX_INSN);
	else
		jmp_adjusted(j, cc, t, FIX_INSN,
			     j->fold[t] && j->fold[t] == j->cur_rest ? 0 : (int32_t)j->cur_rest);
}

/* Status flags beside the kind (status & 0xff). */
enum { ST_MISALIGNED = 0x80, ST_CALLX_UNKNOWN = 0x100, ST_UNREACHABLE = 0x200, ST_OUT_OF_RANGE = 0x400 };

enum { CC_B = 2, CC_AE = 3, CC_E = 4, CC_NE = 5, CC_BE = 6, CC_A = 7, CC_S = 8, CC_L = 12,
       CC_GE = 13, CC_LE = 14, CC_G = 15 };

/* ---- C called from generated code ----------------------------------------------- */

/* Slow path of an access check: finds the region, refreshes the cache.
 * info = refund << 32 | pc << 8 | write << 4 | size.  1 when allowed. */
static uint64_t jit_slow_check(struct rb_jit_ctx *c, uint64_t addr, uint64_t info)
{
	uint64_t size = info & 15;
	bool write = (info >> 4) & 1;
	struct rb_bpf_call *call = &c->call;

	if (addr - call->stack_lo < call->stack_hi - call->stack_lo &&
	    (call->stack_hi - call->stack_lo) - (addr - call->stack_lo) >= size) {
		if (write) {
			c->wlo = call->stack_lo;
			c->wspan = call->stack_hi - call->stack_lo;
		} else {
			c->rlo = call->stack_lo;
			c->rspan = call->stack_hi - call->stack_lo;
		}
		return 1;
	}
	for (unsigned i = 0; i < call->n_spans; i++) {
		const struct rb_bpf_span *s = &call->spans[i];
		if (write && !s->writable)
			continue;
		if (addr - s->lo < s->span && s->span - (addr - s->lo) >= size) {
			if (write) {
				c->wlo = s->lo;
				c->wspan = s->span;
			} else {
				c->rlo = s->lo;
				c->rspan = s->span;
			}
			return 1;
		}
	}
	c->h.pc = (uint32_t)(info >> 8) & 0xffffff;
	c->h.refund = (uint32_t)(info >> 32);
	c->h.status = RB_BPF_E_FAULT;
	c->fault_addr = addr;
	c->fault_size = size | (write ? 0x100 : 0);
	return 0;
}

/* ---- instruction emitters ---------------------------------------------------------- */

/* r11 = address of the access; checks it in checked mode. */
static void addr_of(struct jit *j, int base, int16_t off, unsigned size, bool write, uint32_t pc)
{
	/* lea r11, [base + off] */
	rm_mem(j, true, OP(0x8d), R11, base, off, false);
	if (!j->checked)
		return;
	int32_t lo = write ? OFF(wlo) : OFF(rlo), span = write ? OFF(wspan) : OFF(rspan);
	/* Fast path: o = a - lo < span, and the last byte too. */
	mov_rr(j, true, R10, R11);
	rm_mem(j, true, OP(0x2b), R10, CTXREG, lo, false);       /* sub r10, [lo] */
	rm_mem(j, true, OP(0x3b), R10, CTXREG, span, false);     /* cmp r10, [span] */
	size_t j1 = j->len;
	e1(j, 0x73); /* jae slow (rel8, patched) */
	e1(j, 0);
	rm_mem(j, true, OP(0x8d), R10, R10, (int32_t)size - 1, false); /* lea r10, [r10+size-1] */
	rm_mem(j, true, OP(0x3b), R10, CTXREG, span, false);
	size_t j2 = j->len;
	e1(j, 0x72); /* jb ok */
	e1(j, 0);
	/* slow: */
	j->buf[j1 + 1] = (uint8_t)(j->len - (j1 + 2));
	mov_imm64(j, R10, (uint64_t)j->cur_rest << 32 | (uint64_t)pc << 8 | (write ? 16 : 0) | size);
	call_label(j, write ? L_CHECK_WRITE : L_CHECK_READ);
	/* ok: */
	j->buf[j2 + 1] = (uint8_t)(j->len - (j2 + 2));
}

static void emit_load(struct jit *j, const struct rb_bpf_insn *in, uint32_t pc)
{
	int d = bpf2x86[in->dst], s = bpf2x86[in->src];
	unsigned size = (in->code & 0x18) == RB_BPF_B ? 1 : (in->code & 0x18) == RB_BPF_H ? 2
			: (in->code & 0x18) == RB_BPF_W ? 4 : 8;
	bool sx = (in->code & 0xe0) == RB_BPF_MEMSX;
	int base = s;
	int32_t disp = in->off;

	if (j->checked) {
		addr_of(j, s, in->off, size, false, pc);
		base = R11;
		disp = 0;
	}
	switch (size) {
	case 1:
		if (sx)
			rm_mem(j, true, OP(0x0f, 0xbe), d, base, disp, false);
		else
			rm_mem(j, false, OP(0x0f, 0xb6), d, base, disp, false);
		break;
	case 2:
		if (sx)
			rm_mem(j, true, OP(0x0f, 0xbf), d, base, disp, false);
		else
			rm_mem(j, false, OP(0x0f, 0xb7), d, base, disp, false);
		break;
	case 4:
		if (sx)
			rm_mem(j, true, OP(0x63), d, base, disp, false);
		else
			rm_mem(j, false, OP(0x8b), d, base, disp, false);
		break;
	default:
		rm_mem(j, true, OP(0x8b), d, base, disp, false);
		break;
	}
}

static void emit_store(struct jit *j, const struct rb_bpf_insn *in, uint32_t pc)
{
	unsigned size = (in->code & 0x18) == RB_BPF_B ? 1 : (in->code & 0x18) == RB_BPF_H ? 2
			: (in->code & 0x18) == RB_BPF_W ? 4 : 8;
	int base = bpf2x86[in->dst];
	int32_t disp = in->off;

	if (j->checked) {
		addr_of(j, base, in->off, size, true, pc);
		base = R11;
		disp = 0;
	}
	if ((in->code & 7) == RB_BPF_ST) {
		switch (size) {
		case 1: rm_mem(j, false, OP(0xc6), 0, base, disp, false); e1(j, (uint8_t)in->imm); break;
		case 2: e1(j, 0x66); rm_mem(j, false, OP(0xc7), 0, base, disp, false);
			e1(j, (uint8_t)in->imm); e1(j, (uint8_t)(in->imm >> 8)); break;
		case 4: rm_mem(j, false, OP(0xc7), 0, base, disp, false); e4(j, (uint32_t)in->imm); break;
		default: rm_mem(j, true, OP(0xc7), 0, base, disp, false); e4(j, (uint32_t)in->imm); break;
		}
		return;
	}
	int s = bpf2x86[in->src];
	switch (size) {
	case 1: rm_mem(j, false, OP(0x88), s, base, disp, true); break;
	case 2: e1(j, 0x66); rm_mem(j, false, OP(0x89), s, base, disp, false); break;
	case 4: rm_mem(j, false, OP(0x89), s, base, disp, false); break;
	default: rm_mem(j, true, OP(0x89), s, base, disp, false); break;
	}
}

static void emit_atomic(struct jit *j, const struct rb_bpf_insn *in, uint32_t pc)
{
	bool w = (in->code & 0x18) == RB_BPF_DW;
	unsigned size = w ? 8 : 4;
	int s = bpf2x86[in->src];

	addr_of(j, bpf2x86[in->dst], in->off, size, true, pc);
	if (!j->checked) {
		/* Unchecked mode still computed r11 = address. */
	} else {
		/* test r11, size-1 ; jnz misaligned */
		rr(j, true, OP(0xf7), 0, R11, false);
		e4(j, size - 1);
		fail_if(j, CC_NE, pc, RB_BPF_E_FAULT | ST_MISALIGNED);
	}
	switch (in->imm) {
	case RB_BPF_ADD:
		e1(j, 0xf0);
		rm_mem(j, w, OP(0x01), s, R11, 0, false);
		return;
	case RB_BPF_OR:
		e1(j, 0xf0);
		rm_mem(j, w, OP(0x09), s, R11, 0, false);
		return;
	case RB_BPF_AND:
		e1(j, 0xf0);
		rm_mem(j, w, OP(0x21), s, R11, 0, false);
		return;
	case RB_BPF_XOR:
		e1(j, 0xf0);
		rm_mem(j, w, OP(0x31), s, R11, 0, false);
		return;
	case RB_BPF_ADD | RB_BPF_FETCH:
		e1(j, 0xf0);
		rm_mem(j, w, OP(0x0f, 0xc1), s, R11, 0, false); /* lock xadd: s = old */
		return;
	case RB_BPF_XCHG:
		rm_mem(j, w, OP(0x87), s, R11, 0, false); /* xchg is locked */
		return;
	case RB_BPF_CMPXCHG:
		e1(j, 0xf0);
		rm_mem(j, w, OP(0x0f, 0xb1), s, R11, 0, false); /* compares with rax */
		if (!w)
			mov_rr(j, false, RAX, RAX); /* r0 = (u32)old */
		return;
	}
	/* fetch_or / fetch_and / fetch_xor: a cmpxchg loop through rax. */
	uint8_t op = (in->imm & ~RB_BPF_FETCH) == RB_BPF_OR ? 0x09
		     : (in->imm & ~RB_BPF_FETCH) == RB_BPF_AND ? 0x21 : 0x31;
	mov_rr(j, true, R9, RAX);                       /* save r0 */
	int operand = s == RAX ? R9 : s;                /* rax is the loop's */
	size_t loop = j->len;
	rm_mem(j, w, OP(0x8b), RAX, R11, 0, false);     /* rax = [r11] */
	mov_rr(j, true, R10, RAX);
	rr(j, w, &op, 1, operand, R10, false);          /* r10 op= src */
	e1(j, 0xf0);
	rm_mem(j, w, OP(0x0f, 0xb1), R10, R11, 0, false);
	e1(j, 0x75); /* jnz loop */
	e1(j, (uint8_t)(loop - (j->len + 1)));
	if (!w)
		mov_rr(j, false, RAX, RAX);
	mov_rr(j, true, R10, RAX);  /* old */
	mov_rr(j, true, RAX, R9);   /* restore r0 */
	mov_rr(j, true, s, R10);    /* src = old (wins if src is r0) */
}

/* dst = dst / or % src for DIV/MOD, unsigned and signed, 32/64 bit. */
static void emit_divmod(struct jit *j, const struct rb_bpf_insn *in, bool is64, bool x,
			bool mod, bool sign, int s)
{
	int d = bpf2x86[in->dst];

	if (x)
		mov_rr(j, true, R11, s);
	else
		mov_imm64(j, R11, is64 ? (uint64_t)(int64_t)in->imm : (uint32_t)in->imm);
	/* test r11, r11 (width of the op) */
	rr(j, is64, OP(0x85), R11, R11, false);
	size_t jz = j->len;
	e1(j, 0x74); /* jz by_zero */
	e1(j, 0);
	size_t jm1 = 0;
	if (sign) {
		/* cmp r11, -1 */
		rr(j, is64, OP(0x83), 7, R11, false);
		e1(j, 0xff);
		jm1 = j->len;
		e1(j, 0x74); /* je minus_one */
		e1(j, 0);
	}
	mov_rr(j, true, R9, RAX);
	mov_rr(j, true, R10, RDX);
	mov_rr(j, is64, RAX, d);
	if (sign) {
		if (is64)
			emit(j, OP(0x48, 0x99)); /* cqo */
		else
			e1(j, 0x99); /* cdq */
	} else {
		rr(j, false, OP(0x31), RDX, RDX, false); /* xor edx, edx */
	}
	rr(j, is64, OP(0xf7), sign ? 7 : 6, R11, false); /* (i)div r11 */
	mov_rr(j, is64, R11, mod ? RDX : RAX);
	mov_rr(j, true, RAX, R9);
	mov_rr(j, true, RDX, R10);
	mov_rr(j, true, d, R11);
	size_t jend = j->len;
	e1(j, 0xeb);
	e1(j, 0);
	/* by_zero: div -> 0; mod -> dst (upper half zeroed in 32-bit) */
	j->buf[jz + 1] = (uint8_t)(j->len - (jz + 2));
	if (mod) {
		if (!is64)
			mov_rr(j, false, d, d);
	} else {
		rr(j, false, OP(0x31), d, d, false);
	}
	size_t jend2 = 0;
	if (sign) {
		jend2 = j->len;
		e1(j, 0xeb);
		e1(j, 0);
		/* minus_one: div -> -dst (wraps); mod -> 0 */
		j->buf[jm1 + 1] = (uint8_t)(j->len - (jm1 + 2));
		if (mod) {
			rr(j, false, OP(0x31), d, d, false);
		} else {
			rr(j, is64, OP(0xf7), 3, d, false); /* neg */
		}
	}
	j->buf[jend + 1] = (uint8_t)(j->len - (jend + 2));
	if (sign)
		j->buf[jend2 + 1] = (uint8_t)(j->len - (jend2 + 2));
}

/* s: the x86 register holding the source (never r11, which it uses). */
static void emit_shift(struct jit *j, const struct rb_bpf_insn *in, bool is64, bool x, int digit,
		       int s)
{
	int d = bpf2x86[in->dst];

	if (!x) {
		rr(j, is64, OP(0xc1), digit, d, false);
		e1(j, (uint8_t)(in->imm & (is64 ? 63 : 31)));
		return;
	}
	if (s == RCX) {
		rr(j, is64, OP(0xd3), digit, d, false);
		return;
	}
	mov_rr(j, true, R11, RCX);
	mov_rr(j, true, RCX, s);
	if (d == RCX) {
		rr(j, is64, OP(0xd3), digit, R11, false);
		mov_rr(j, true, RCX, R11);
	} else {
		rr(j, is64, OP(0xd3), digit, d, false);
		mov_rr(j, true, RCX, R11);
	}
}

/* s: the x86 register holding the source operand of an X form (normally
 * bpf2x86[in->src]; r11 when the hardening put a proven value there). */
static int emit_alu(struct jit *j, const struct rb_bpf_insn *in, unsigned idx, int s)
{
	bool is64 = (in->code & 7) == RB_BPF_ALU64, x = in->code & RB_BPF_X;
	int d = bpf2x86[in->dst];
	uint8_t op = in->code & 0xf0;

	if (idx >= RB_XOP_MOVSX32_8 && idx <= RB_XOP_MOVSX64_32) {
		switch (idx) {
		case RB_XOP_MOVSX32_8: rr(j, false, OP(0x0f, 0xbe), d, s, true); break;
		case RB_XOP_MOVSX32_16: rr(j, false, OP(0x0f, 0xbf), d, s, false); break;
		case RB_XOP_MOVSX64_8: rr(j, true, OP(0x0f, 0xbe), d, s, true); break;
		case RB_XOP_MOVSX64_16: rr(j, true, OP(0x0f, 0xbf), d, s, false); break;
		default: rr(j, true, OP(0x63), d, s, false); break;
		}
		return 0;
	}
	if (idx >= RB_XOP_LE16 && idx <= RB_XOP_BSWAP64) {
		switch (idx) {
		case RB_XOP_LE16: rr(j, false, OP(0x0f, 0xb7), d, d, false); break;
		case RB_XOP_LE32: mov_rr(j, false, d, d); break;
		case RB_XOP_LE64: break;
		case RB_XOP_BE16: case RB_XOP_BSWAP16:
			e1(j, 0x66); /* ror r16, 8 then zero-extend */
			rr(j, false, OP(0xc1), 1, d, false);
			e1(j, 8);
			rr(j, false, OP(0x0f, 0xb7), d, d, false);
			break;
		case RB_XOP_BE32: case RB_XOP_BSWAP32:
			rex(j, false, 0, d, false);
			e1(j, 0x0f);
			e1(j, (uint8_t)(0xc8 + (d & 7)));
			break;
		default:
			rex(j, true, 0, d, false);
			e1(j, 0x0f);
			e1(j, (uint8_t)(0xc8 + (d & 7)));
			break;
		}
		return 0;
	}
	if (idx >= RB_XOP_SDIV32_K && idx <= RB_XOP_SMOD64_X) {
		emit_divmod(j, in, is64, x, op == RB_BPF_MOD, true, s);
		return 0;
	}
	switch (op) {
	case RB_BPF_DIV:
	case RB_BPF_MOD:
		emit_divmod(j, in, is64, x, op == RB_BPF_MOD, false, s);
		return 0;
	case RB_BPF_LSH: emit_shift(j, in, is64, x, 4, s); return 0;
	case RB_BPF_RSH: emit_shift(j, in, is64, x, 5, s); return 0;
	case RB_BPF_ARSH: emit_shift(j, in, is64, x, 7, s); return 0;
	case RB_BPF_NEG: rr(j, is64, OP(0xf7), 3, d, false); return 0;
	case RB_BPF_MOV:
		if (x)
			mov_rr(j, is64, d, s);
		else if (is64)
			mov_imm64(j, d, (uint64_t)(int64_t)in->imm);
		else
			mov_imm64(j, d, (uint32_t)in->imm);
		return 0;
	case RB_BPF_MUL:
		if (x) {
			rr(j, is64, OP(0x0f, 0xaf), d, s, false);
		} else {
			rr(j, is64, OP(0x69), d, d, false);
			e4(j, (uint32_t)in->imm);
		}
		return 0;
	}
	/* add, sub, or, and, xor */
	static const struct {
		uint8_t code, rm_r, digit;
	} ops[] = {
		{RB_BPF_ADD, 0x01, 0}, {RB_BPF_SUB, 0x29, 5}, {RB_BPF_OR, 0x09, 1},
		{RB_BPF_AND, 0x21, 4}, {RB_BPF_XOR, 0x31, 6},
	};
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (ops[i].code != op)
			continue;
		if (x) {
			rr(j, is64, &ops[i].rm_r, 1, s, d, false);
		} else {
			rr(j, is64, OP(0x81), ops[i].digit, d, false);
			e4(j, (uint32_t)in->imm);
		}
		return 0;
	}
	return -EINVAL;
}

/* The conditional jump, to `target` (its own target, or with `invert`
 * the other way: the peephole in compile()). */
static void emit_jcc(struct jit *j, const struct rb_bpf_insn *in, int s, bool invert,
		     uint32_t target)
{
	bool is32 = (in->code & 7) == RB_BPF_JMP32, x = in->code & RB_BPF_X;
	int d = bpf2x86[in->dst];
	uint8_t op = in->code & 0xf0, cc;

	if (op == RB_BPF_JSET) {
		if (x) {
			rr(j, !is32, OP(0x85), s, d, false);
		} else {
			rr(j, !is32, OP(0xf7), 0, d, false);
			e4(j, (uint32_t)in->imm);
		}
		branch_to(j, invert ? CC_E : CC_NE, target);
		return;
	}
	if (x) {
		rr(j, !is32, OP(0x39), s, d, false); /* cmp d, s */
	} else {
		rr(j, !is32, OP(0x81), 7, d, false); /* cmp d, imm32 (sign-extended) */
		e4(j, (uint32_t)in->imm);
	}
	switch (op) {
	case RB_BPF_JEQ: cc = CC_E; break;
	case RB_BPF_JNE: cc = CC_NE; break;
	case RB_BPF_JGT: cc = CC_A; break;
	case RB_BPF_JGE: cc = CC_AE; break;
	case RB_BPF_JLT: cc = CC_B; break;
	case RB_BPF_JLE: cc = CC_BE; break;
	case RB_BPF_JSGT: cc = CC_G; break;
	case RB_BPF_JSGE: cc = CC_GE; break;
	case RB_BPF_JSLT: cc = CC_L; break;
	default: cc = CC_LE; break;
	}
	branch_to(j, invert ? cc ^ 1 : cc, target); /* x86 conditions pair up by the low bit */
}

/* ---- hardening of unchecked code (defence in depth) -------------------------------- */

static bool fits_imm32(uint64_t v)
{
	return (int64_t)v == (int32_t)v;
}

/* cmp r, v (64-bit, v through r10 when no imm32 holds it). */
static void cmp_imm(struct jit *j, int r, int64_t v)
{
	if (fits_imm32((uint64_t)v)) {
		rr(j, true, OP(0x81), 7, r, false);
		e4(j, (uint32_t)v);
	} else {
		mov_imm64(j, R10, (uint64_t)v);
		rr(j, true, OP(0x39), R10, r, false);
	}
}

/*
 * 64-bit dst +/- src where one operand is a number the verifier proved in
 * [lo, hi] on every path (the other a pointer): the number is checked
 * against that range first, and outside it the program stops with a
 * fault, so a wrong range in the verifier cannot move the pointer further
 * than the range it believed.  Linux's ALU sanitation masks the offset
 * instead; a compare and a never-taken branch (fused into one micro-op,
 * two for a range not starting at 0) costs a third of a clamp in the
 * node search's inner loop, and turns a verifier bug into a clear fault
 * rather than a silently different result.
 */
/* The check of emit_ptr_arith(): n (an x86 register) in [lo, hi]. */
static void range_check(struct jit *j, int n, const struct rb_bpf_fact *f, uint32_t pc)
{
	int64_t lo = f->lo, hi = f->hi < f->lo ? f->lo : f->hi; /* inconsistent: just lo */

	if (lo == 0) {
		cmp_imm(j, n, hi);
		fail_if(j, CC_A, pc, RB_BPF_E_FAULT | ST_OUT_OF_RANGE); /* unsigned: < 0 too */
	} else if (lo > INT32_MIN && lo <= INT32_MAX && (uint64_t)hi - (uint64_t)lo <= INT32_MAX) {
		/* n - lo <= hi - lo, unsigned: one compare and branch, not two */
		rm_mem(j, true, OP(0x8d), R10, n, (int32_t)-lo, false); /* lea r10, [n - lo] */
		rr(j, true, OP(0x81), 7, R10, false);
		e4(j, (uint32_t)((uint64_t)hi - (uint64_t)lo));
		fail_if(j, CC_A, pc, RB_BPF_E_FAULT | ST_OUT_OF_RANGE);
	} else if (lo != INT64_MIN || hi != INT64_MAX) {
		if (lo != INT64_MIN) {
			cmp_imm(j, n, lo);
			fail_if(j, CC_L, pc, RB_BPF_E_FAULT | ST_OUT_OF_RANGE);
		}
		if (hi != INT64_MAX) {
			cmp_imm(j, n, hi);
			fail_if(j, CC_G, pc, RB_BPF_E_FAULT | ST_OUT_OF_RANGE);
		}
	}
}

static void emit_ptr_arith(struct jit *j, const struct rb_bpf_insn *in, const struct rb_bpf_fact *f,
			   uint32_t pc)
{
	bool sub = (in->code & 0xf0) == RB_BPF_SUB, num_dst = f->flags & RB_FACT_NUM_IS_DST;
	int d = bpf2x86[in->dst], s = bpf2x86[in->src];
	static const uint8_t op_add = 0x01, op_sub = 0x29;

	range_check(j, num_dst ? d : s, f, pc);
	rr(j, true, sub ? &op_sub : &op_add, 1, s, d, false);
}

/* lea d, [base + index] (64-bit). */
static void lea_sum(struct jit *j, int d, int base, int index)
{
	e1(j, (uint8_t)(0x48 | ((d & 8) ? 4 : 0) | ((index & 8) ? 2 : 0) | ((base & 8) ? 1 : 0)));
	e1(j, 0x8d);
	if ((base & 7) == RBP) { /* rbp/r13 as a base need a displacement */
		e1(j, (uint8_t)(0x44 | ((d & 7) << 3)));
		e1(j, (uint8_t)(((index & 7) << 3) | (base & 7)));
		e1(j, 0);
	} else {
		e1(j, (uint8_t)(0x04 | ((d & 7) << 3)));
		e1(j, (uint8_t)(((index & 7) << 3) | (base & 7)));
	}
}

/* The instruction with its source register replaced by the number k
 * (the K form), or false when no K form computes the same (a 64-bit
 * operand k that a sign-extended imm32 cannot hold). */
static bool k_form(const struct rb_bpf_insn *in, uint64_t k, bool wide, struct rb_bpf_insn *out)
{
	if (wide && !fits_imm32(k))
		return false;
	*out = *in;
	out->code = (uint8_t)(in->code & ~RB_BPF_X);
	out->src = 0;
	out->imm = (int32_t)(uint32_t)k;
	return true;
}

/* An X-form ALU instruction whose source the verifier proved to be k on
 * every path: computed from k, whatever the register holds. */
static int emit_alu_const(struct jit *j, const struct rb_bpf_insn *in, unsigned idx, uint64_t k)
{
	bool is64 = (in->code & 7) == RB_BPF_ALU64;
	uint8_t op = in->code & 0xf0;
	int d = bpf2x86[in->dst];
	struct rb_bpf_insn kin;

	if (idx >= RB_XOP_MOVSX32_8 && idx <= RB_XOP_MOVSX64_32) {
		int64_t v = idx == RB_XOP_MOVSX32_8 || idx == RB_XOP_MOVSX64_8 ? (int8_t)k
			    : idx == RB_XOP_MOVSX64_32 ? (int32_t)k : (int16_t)k;
		mov_imm64(j, d, idx <= RB_XOP_MOVSX32_16 ? (uint32_t)v : (uint64_t)v);
		return 0;
	}
	if (op == RB_BPF_MOV) {
		mov_imm64(j, d, is64 ? k : (uint32_t)k);
		return 0;
	}
	if (op == RB_BPF_LSH || op == RB_BPF_RSH || op == RB_BPF_ARSH)
		k &= is64 ? 63 : 31; /* what the X form would use */
	if (k_form(in, k, is64, &kin))
		return emit_alu(j, &kin, rb_bpf_op_index(&kin), 0);
	mov_imm64(j, R11, k);
	return emit_alu(j, in, idx, R11);
}

/*
 * ALU with the verifier's facts applied: a proven-constant source is
 * emitted as that constant; the number added to (or subtracted from) a
 * pointer is checked against its proven range first, so that a wrong
 * range in the verifier cannot move the pointer further than the range
 * allows (Linux's ALU sanitation is the model).  r10/r11 are the scratch.
 */
static int emit_alu_hardened(struct jit *j, const struct rb_bpf_insn *in, unsigned idx, uint32_t pc)
{
	const struct rb_bpf_fact *f = j->facts ? &j->facts[pc] : NULL;
	uint8_t op = in->code & 0xf0;
	int s = bpf2x86[in->src];

	if (!f || !(in->code & RB_BPF_X) || op == RB_BPF_NEG || op == RB_BPF_END)
		return emit_alu(j, in, idx, s);
	bool ptr = (f->flags & RB_FACT_PTR_ARITH) && (in->code & 7) == RB_BPF_ALU64 &&
		   (op == RB_BPF_ADD || op == RB_BPF_SUB);
	bool num_dst = ptr && (f->flags & RB_FACT_NUM_IS_DST);

	if ((f->flags & RB_FACT_SRC_CONST) && !num_dst) {
		uint64_t k = f->k;
		if (ptr) /* both proven: the constant, kept in the range too */
			k = (uint64_t)((int64_t)k < f->lo ? f->lo : (int64_t)k > f->hi ? f->hi : (int64_t)k);
		return emit_alu_const(j, in, idx, k);
	}
	if (ptr) {
		emit_ptr_arith(j, in, f, pc);
		return 0;
	}
	return emit_alu(j, in, idx, s);
}

/* A conditional jump X whose source was proven constant: compares with k. */
static void emit_jcc_hardened(struct jit *j, const struct rb_bpf_insn *in, uint32_t pc, bool invert,
			      uint32_t target)
{
	const struct rb_bpf_fact *f = j->facts ? &j->facts[pc] : NULL;
	struct rb_bpf_insn kin;

	if (!f || !(in->code & RB_BPF_X) || !(f->flags & RB_FACT_SRC_CONST)) {
		emit_jcc(j, in, bpf2x86[in->src], invert, target);
	} else if (k_form(in, f->k, (in->code & 7) == RB_BPF_JMP, &kin)) {
		emit_jcc(j, &kin, 0, invert, target);
	} else {
		mov_imm64(j, R11, f->k);
		emit_jcc(j, in, R11, invert, target);
	}
}

/* Bytes of the frame of the function that starts at pc to zero when it is
 * entered: as deep as the verifier saw it used, else the whole frame. */
static uint32_t frame_depth(const struct jit *j, size_t pc)
{
	if (!j->mentions_fp)
		return 0; /* no instruction can reach the stack */
	if (!j->facts || !(j->facts[pc].flags & RB_FACT_FN_ENTRY))
		return RB_BPF_STACK_SIZE;
	uint32_t d = (j->facts[pc].stack_depth + 7u) & ~7u;
	return d > RB_BPF_STACK_SIZE ? RB_BPF_STACK_SIZE : d;
}

/*
 * Zeroes [rbp - depth, rbp): so that no run sees what an earlier run (of
 * another guest's program) or an earlier callee left there, even if the
 * verifier wrongly believed a slot written.  16-byte stores (rep stos's
 * start-up cost more than a whole short run on this machine), and the
 * BPF registers untouched (at a local call r1..r5 hold the arguments).
 */
static void zero_stack(struct jit *j, uint32_t depth, bool entry)
{
	(void)entry;
	if (depth == 0)
		return;
	if (depth % 16) { /* the odd qword at the bottom */
		rr(j, false, OP(0x31), R10, R10, false); /* xor r10d, r10d */
		rm_mem(j, true, OP(0x89), R10, RBP, -(int32_t)depth, false);
	}
	if (depth < 16)
		return;
	/* 16-byte stores of xmm0 (caller-saved, unused by the program):
	 * straight-line code, no rep stos start-up, no loop. */
	emit(j, OP(0x66, 0x0f, 0xef, 0xc0)); /* pxor xmm0, xmm0 */
	for (uint32_t k = 16; k <= depth; k += 16) {
		if (k <= 128) {
			emit(j, OP(0x0f, 0x11, 0x45)); /* movups [rbp + disp8], xmm0 */
			e1(j, (uint8_t)(256 - k));
		} else {
			emit(j, OP(0x0f, 0x11, 0x85)); /* movups [rbp + disp32], xmm0 */
			e4(j, (uint32_t)-(int32_t)k);
		}
	}
}

/* Moves BPF r1..r5 into the helper's argument registers (call, a1..a5). */
static void helper_args(struct jit *j)
{
	mov_rr(j, true, R9, R8);   /* a5 */
	mov_rr(j, true, R8, RCX);  /* a4 */
	mov_rr(j, true, RCX, RDX); /* a3 */
	mov_rr(j, true, RDX, RSI); /* a2 */
	mov_rr(j, true, RSI, RDI); /* a1 */
	rm_mem(j, true, OP(0x8d), RDI, CTXREG, OFF(call), false); /* lea rdi, &ctx->call */
}

static void emit_helper_call(struct jit *j, const struct rb_bpf_insn *in, unsigned idx, uint32_t pc)
{
	if (idx == RB_XOP_CALLX) {
		int d = bpf2x86[in->dst];
		/* cmp d, 256 ; jae unknown */
		rr(j, true, OP(0x81), 7, d, false);
		e4(j, RB_BPF_MAX_HELPERS);
		store_ctx(j, d, OFF(helper_id));
		fail_if(j, CC_AE, pc, RB_BPF_E_HELPER | ST_CALLX_UNKNOWN);
		load_ctx(j, R11, OFF(helpers));
		/* mov r11, [r11 + d*8] */
		rex(j, true, R11, R11, false);
		if (d & 8)
			j->buf[j->len - 1] |= 2; /* REX.X for the index */
		e1(j, 0x8b);
		e1(j, (uint8_t)(0x04 | ((R11 & 7) << 3)));
		e1(j, (uint8_t)(0xc0 | ((d & 7) << 3) | (R11 & 7)));
		rr(j, true, OP(0x85), R11, R11, false);
		fail_if(j, CC_E, pc, RB_BPF_E_HELPER | ST_CALLX_UNKNOWN);
	} else {
		mov_imm64(j, R11, (uint64_t)(uintptr_t)j->prog->helper_fn[(uint32_t)in->imm]);
		mov_imm64(j, R10, (uint32_t)in->imm);
		store_ctx(j, R10, OFF(helper_id));
	}
	helper_args(j);
	rr(j, false, OP(0xff), 2, R11, false); /* call r11 */
	/* r1..r5 are dead after a call; what the C helper left in them (host
	 * pointers, its locals) must not reach the program. */
	for (int r = 1; j->harden && r <= 5; r++)
		if (j->uses[r])
			rr(j, false, OP(0x31), bpf2x86[r], bpf2x86[r], false);
	/* The helper may have failed or stopped the program. */
	rm_mem(j, false, OP(0x80), 7, CTXREG, CALL_OFF(failed), false);
	e1(j, 0);
	fail_if(j, CC_NE, pc, RB_BPF_E_HELPER);
	rm_mem(j, false, OP(0x80), 7, CTXREG, CALL_OFF(stop), false);
	e1(j, 0);
	jmp_adjusted(j, CC_NE, L_STOP, FIX_LABEL, (int32_t)j->cur_rest);
}

static void set_stack_lo(struct jit *j)
{
	/* call.stack_lo = rbp - 512; the read/write caches = the live stack */
	rm_mem(j, true, OP(0x8d), R11, RBP, -(int32_t)RB_BPF_STACK_SIZE, false);
	store_ctx(j, R11, CALL_OFF(stack_lo));
	store_ctx(j, R11, OFF(rlo));
	store_ctx(j, R11, OFF(wlo));
	load_ctx(j, R10, CALL_OFF(stack_hi));
	rr(j, true, OP(0x29), R11, R10, false); /* r10 = hi - lo */
	store_ctx(j, R10, OFF(rspan));
	store_ctx(j, R10, OFF(wspan));
}

static void emit_local_call(struct jit *j, const struct rb_bpf_insn *in, uint32_t pc)
{
	/* cmp qword [depth], MAX-1 ; jae too deep */
	rm_mem(j, true, OP(0x81), 7, CTXREG, OFF(depth), false);
	e4(j, RB_BPF_MAX_FRAMES - 1);
	fail_if(j, CC_AE, pc, RB_BPF_E_DEPTH);
	push(j, RBX);
	push(j, R13);
	push(j, R14);
	push(j, R15);
	push(j, RBP);
	rr(j, true, OP(0x81), 5, RBP, false); /* sub rbp, 512 */
	e4(j, RB_BPF_STACK_SIZE);
	rm_mem(j, true, OP(0xff), 0, CTXREG, OFF(depth), false); /* inc */
	set_stack_lo(j);
	if (j->checked)
		call_label(j, L_ZERO_FRAME);
	else if (j->harden)
		zero_stack(j, frame_depth(j, pc + 1 + (size_t)(int64_t)in->imm), false);
	e1(j, 0xe8);
	add_fix(j, pc + 1 + (uint32_t)in->imm, FIX_INSN);
	e4(j, 0);
	rm_mem(j, true, OP(0xff), 1, CTXREG, OFF(depth), false); /* dec */
	pop(j, RBP);
	pop(j, R15);
	pop(j, R14);
	pop(j, R13);
	pop(j, RBX);
	set_stack_lo(j);
}

/* ---- basic blocks and the budget plan --------------------------------------------- */

#define is_branch rb_bpf_is_branch
#define is_lddw rb_bpf_is_lddw
#define is_cond_jump rb_bpf_is_cond_jump
#define jump_target rb_bpf_jump_target

/* The budget plan (budget.c), and what only the JIT needs beside it. */
static int plan_blocks(struct jit *j)
{
	size_t n = j->prog->n_insns;
	int rc = rb_bpf_plan_budget(j->prog, &j->plan);

	if (rc)
		return rc;
	j->pflags = j->plan.flags;
	j->rest = j->plan.rest;
	j->sb_end = j->plan.sb_end;
	j->sb_total = j->plan.sb_total;
	j->fold = j->plan.fold;
	j->slow_at = calloc(n + 1, sizeof(uint32_t));
	j->slow_entry = calloc(n + 1, sizeof(uint32_t));
	return j->slow_at && j->slow_entry ? 0 : -ENOMEM;
}

/* ---- whole program ------------------------------------------------------------------ */

/*
 * What the prologue must save and reserve.  Programs nobody verified get the
 * full frame (all callee-saved registers, the whole stack area, registers
 * zeroed).  A verified program without local calls saves only the
 * registers it mentions and reserves the stack only if it uses r10 or
 * calls helpers (which get the stack bounds): the per-run entry is most of
 * the cost of a short program.  The budget lives in r9 when nothing else
 * uses it (no helper calls, division or fetching atomic), else in a
 * callee-saved register the program leaves free, else in memory.
 */
static void plan_frame(struct jit *j)
{
	const struct rb_bpf_prog *p = j->prog;
	bool lean = !j->checked && !j->has_local_calls;
	bool r9_free = lean && !p->has_calls;

	for (size_t pc = 0; pc < p->n_insns; pc++) {
		const struct rb_bpf_insn *in = &p->insns[pc];
		unsigned idx = rb_bpf_op_index(in);
		uint8_t cls = in->code & 7, op = in->code & 0xf0;

		j->uses[in->dst] = true;
		j->uses[in->src & 0xf] = true;
		if ((cls == RB_BPF_ALU || cls == RB_BPF_ALU64) && (op == RB_BPF_DIV || op == RB_BPF_MOD))
			r9_free = false;
		if ((idx >= RB_XOP_A32_FOR && idx <= RB_XOP_A32_FXOR) ||
		    (idx >= RB_XOP_A64_FOR && idx <= RB_XOP_A64_FXOR))
			r9_free = false;
		if (is_lddw(in))
			pc++; /* the second slot holds no registers */
	}
	j->lean = lean;
	j->mentions_fp = j->uses[10];
	/* r0 is the result; r1..r5 are a helper's arguments (what the run's
	 * options gave, unless the program wrote them), otherwise loaded only
	 * when the program names them. */
	j->uses[0] = true;
	for (int r = 1; p->has_calls && r <= 5; r++)
		j->uses[r] = true;
	if (p->has_calls || !lean)
		j->uses[10] = true;
	if (!lean)
		for (int r = 0; r < 11; r++)
			j->uses[r] = true;
	static const uint8_t callee_saved[] = {RBP, RBX, R12, R13, R14, R15};
	static const int bpf_reg[] = {10, 6, -1, 7, 8, 9};
	j->budget_reg = r9_free ? R9 : -1;
	for (int i = 5; lean && i >= 1 && j->budget_reg < 0; i--)
		if (bpf_reg[i] >= 0 && !j->uses[bpf_reg[i]])
			j->budget_reg = callee_saved[i];
	j->n_saved = 0;
	for (unsigned i = 0; i < 6; i++)
		if (bpf_reg[i] < 0 || j->uses[bpf_reg[i]] || callee_saved[i] == j->budget_reg)
			j->saved[j->n_saved++] = callee_saved[i];
	/* n pushes + return address: pad to keep rsp 16-aligned for calls
	 * (code that calls nothing needs no padding). */
	bool calls = p->has_calls || !lean;
	j->frame_bytes = (j->uses[10] ? STACK_BYTES : 0) + (calls && j->n_saved % 2 == 0 ? 8 : 0);
}

/* Entered as rb_jit_fn: rdi = ctx, rsi = args, rdx = budget. */
static void emit_prologue(struct jit *j)
{
	for (unsigned i = 0; i < j->n_saved; i++)
		push(j, j->saved[i]);
	if (j->frame_bytes) {
		rr(j, true, OP(0x81), 5, RSP, false);
		e4(j, j->frame_bytes);
	}
	mov_rr(j, true, CTXREG, RDI);
	if (!j->lean)
		store_ctx(j, RSP, OFF(saved_rsp));
	if (j->budget_reg >= 0)
		mov_rr(j, true, j->budget_reg, RDX);
	else
		store_ctx(j, RDX, OFF(h.budget));
	if (j->uses[10]) {
		/* rbp = top of the BPF stack area */
		rm_mem(j, true, OP(0x8d), RBP, RSP, (int32_t)j->frame_bytes, false);
	}
	/* The live-stack bounds serve run-time checks, helpers and local
	 * calls only. */
	if (j->checked || j->prog->has_calls || j->has_local_calls) {
		store_ctx(j, RBP, CALL_OFF(stack_hi));
		set_stack_lo(j);
	}
	if (j->checked) {
		/* A run must never read what an earlier run left on the stack;
		 * verified programs are proven not to read before writing. */
		zero_stack(j, RB_BPF_STACK_SIZE, true);
	} else if (j->harden) {
		zero_stack(j, frame_depth(j, 0), true);
	}
	/* r1..r5: the caller's arguments (rosenbridged passes the context and
	 * zeros), never what the registers held; r2 (rsi, the pointer to
	 * them) last. */
	for (int i = 0; i < 5; i++)
		if (i != 1 && j->uses[i + 1])
			rm_mem(j, true, OP(0x8b), bpf2x86[i + 1], RSI, 8 * i, false);
	if (j->uses[2])
		rm_mem(j, true, OP(0x8b), RSI, RSI, 8, false);
	if (!j->checked) {
		/* Verified programs are proven not to read a register before
		 * writing it; hardened, a wrong proof still reads 0, not the
		 * host's values. */
		static const int cleared[] = {0, 6, 7, 8, 9};
		for (unsigned i = 0; j->harden && i < sizeof(cleared) / sizeof(cleared[0]); i++)
			if (j->uses[cleared[i]])
				rr(j, false, OP(0x31), bpf2x86[cleared[i]], bpf2x86[cleared[i]], false);
		return;
	}
	rr(j, false, OP(0x31), RAX, RAX, false);
	rr(j, false, OP(0x31), RBX, RBX, false);
	rr(j, false, OP(0x31), R13, R13, false);
	rr(j, false, OP(0x31), R14, R14, false);
	rr(j, false, OP(0x31), R15, R15, false);
}

/* Leaves the generated code: rsp back, registers restored, ret. */
static void emit_tail(struct jit *j)
{
	if (!j->lean)
		load_ctx(j, RSP, OFF(saved_rsp));
	if (j->frame_bytes) {
		rr(j, true, OP(0x81), 0, RSP, false);
		e4(j, j->frame_bytes);
	}
	for (unsigned i = j->n_saved; i-- > 0;)
		pop(j, j->saved[i]);
	e1(j, 0xc3);
}

/* A normal exit: r0 is in rax, the budget left goes to rdx. */
static void emit_return(struct jit *j)
{
	if (j->budget_reg >= 0)
		mov_rr(j, true, RDX, j->budget_reg);
	else
		load_ctx(j, RDX, OFF(h.budget));
	emit_tail(j);
}

static void emit_stubs(struct jit *j)
{
	/* L_ZERO_FRAME: zero [rbp - 512, rbp) (preserves everything but r10/r11) */
	j->label[L_ZERO_FRAME] = (uint32_t)j->len;
	mov_imm64(j, R11, (uint64_t)-(int64_t)RB_BPF_STACK_SIZE);
	rr(j, false, OP(0x31), R10, R10, false);
	size_t loop = j->len;
	/* mov [rbp + r11], r10 */
	e1(j, 0x4e);
	e1(j, 0x89);
	e1(j, 0x54);
	e1(j, 0x1d);
	e1(j, 0x00);
	rr(j, true, OP(0x83), 0, R11, false); /* add r11, 8 */
	e1(j, 8);
	e1(j, 0x75);
	e1(j, (uint8_t)(loop - (j->len + 1)));
	e1(j, 0xc3);

	/* L_CHECK_READ / L_CHECK_WRITE: r11 = address, r10 = info. */
	for (int w = 0; w < 2; w++) {
		j->label[w ? L_CHECK_WRITE : L_CHECK_READ] = (uint32_t)j->len;
		static const int saved[] = {RAX, RDI, RSI, RDX, RCX, R8, R11};
		for (unsigned i = 0; i < 7; i++)
			push(j, saved[i]);
		/* 7 pushes + return address = 64: aligned. */
		mov_rr(j, true, RDI, CTXREG);
		mov_rr(j, true, RSI, R11);
		mov_rr(j, true, RDX, R10);
		mov_imm64(j, R11, (uint64_t)(uintptr_t)jit_slow_check);
		rr(j, false, OP(0xff), 2, R11, false);
		rr(j, true, OP(0x85), RAX, RAX, false);
		for (int i = 6; i >= 0; i--)
			pop(j, saved[i]);
		/* pops leave flags alone */
		jmp_to(j, CC_E, L_FAIL, FIX_LABEL);
		e1(j, 0xc3);
	}

	/* Failure stubs: record pc, status and refund, then L_FAIL. */
	for (size_t i = 0; i < j->nstub; i++) {
		uint32_t here = (uint32_t)j->len;
		int32_t rel = (int32_t)(here - (j->stub[i].at + 4));
		memcpy(j->buf + j->stub[i].at, &rel, 4);
		rm_mem(j, false, OP(0xc7), 0, CTXREG, OFF(h.pc), false);
		e4(j, j->stub[i].pc);
		rm_mem(j, false, OP(0xc7), 0, CTXREG, OFF(h.status), false);
		e4(j, j->stub[i].status);
		rm_mem(j, false, OP(0xc7), 0, CTXREG, OFF(h.refund), false);
		e4(j, j->stub[i].refund);
		jmp_to(j, 0xff, L_FAIL, FIX_LABEL);
	}

	/* Edges that adjust the budget on the way. */
	for (size_t i = 0; i < j->nedge; i++) {
		uint32_t here = (uint32_t)j->len;
		int32_t rel = (int32_t)(here - (j->edge[i].at + 4));
		memcpy(j->buf + j->edge[i].at, &rel, 4);
		budget_add(j, j->edge[i].delta);
		jmp_to(j, 0xff, j->edge[i].target, j->edge[i].kind);
	}

	/* L_BUDGET: a slow copy found the budget spent before the
	 * instruction in r10. */
	j->label[L_BUDGET] = (uint32_t)j->len;
	rm_mem(j, false, OP(0x89), R10, CTXREG, OFF(h.pc), false);
	rm_mem(j, false, OP(0xc7), 0, CTXREG, OFF(h.status), false);
	e4(j, RB_BPF_E_BUDGET);
	rm_mem(j, false, OP(0xc7), 0, CTXREG, OFF(h.refund), false);
	e4(j, 0);
	jmp_to(j, 0xff, L_FAIL, FIX_LABEL);

	/* L_STOP: a helper ended the program: r0 = stop value. */
	j->label[L_STOP] = (uint32_t)j->len;
	load_ctx(j, RAX, CALL_OFF(stop_value));
	jmp_to(j, 0xff, L_EPILOGUE, FIX_LABEL);

	/* L_FAIL: status, pc and refund recorded; the budget left too. */
	j->label[L_FAIL] = (uint32_t)j->len;
	if (j->budget_reg >= 0)
		store_ctx(j, j->budget_reg, OFF(h.budget));
	mov_imm64(j, RDX, (uint64_t)-1);
	emit_tail(j);

	j->label[L_EPILOGUE] = (uint32_t)j->len;
	emit_return(j);
}

/* One instruction (two slots for lddw).  `invert_to`: a conditional jump
 * emitted the other way, to that instruction (the peephole in
 * emit_fast()); UINT32_MAX for none. */
static int emit_insn(struct jit *j, size_t pc, uint32_t invert_to, char *err, size_t errlen)
{
	const struct rb_bpf_prog *p = j->prog;
	const struct rb_bpf_insn *in = &p->insns[pc];
	unsigned idx = rb_bpf_op_index(in);

	/* (The peephole's jump is the ja's edge: nothing runs after it.) */
	j->cur_rest = j->slow ? 0 : j->rest[invert_to != UINT32_MAX ? pc + 1 : pc];
	if (j->facts && !(j->facts[pc].flags & RB_FACT_SEEN)) {
		/* The verifier never got here: its real code is never
		 * emitted, so a wrong jump cannot run unproven code. */
		fail_if(j, 0xff, (uint32_t)pc, RB_BPF_E_FAULT | ST_UNREACHABLE);
		return 0;
	}
	switch (in->code & 7) {
	case RB_BPF_ALU:
	case RB_BPF_ALU64:
		if (emit_alu_hardened(j, in, idx, (uint32_t)pc)) {
			snprintf(err, errlen, "insn %zu: cannot compile opcode 0x%02x", pc, in->code);
			return -EINVAL;
		}
		break;
	case RB_BPF_LD: {
		uint64_t v = (uint64_t)(uint32_t)in->imm | (uint64_t)(uint32_t)p->insns[pc + 1].imm << 32;
		if (in->src == RB_BPF_PSEUDO_DATA)
			v = (uint64_t)(uintptr_t)p->data[in->imm] + (uint32_t)p->insns[pc + 1].imm;
		mov_imm64(j, bpf2x86[in->dst], v);
		break;
	}
	case RB_BPF_LDX:
		emit_load(j, in, (uint32_t)pc);
		break;
	case RB_BPF_ST:
	case RB_BPF_STX:
		if ((in->code & 0xe0) == RB_BPF_ATOMIC)
			emit_atomic(j, in, (uint32_t)pc);
		else
			emit_store(j, in, (uint32_t)pc);
		break;
	case RB_BPF_JMP:
	case RB_BPF_JMP32: {
		uint8_t op = in->code & 0xf0;
		if (op == RB_BPF_JA) {
			jmp_to(j, 0xff, jump_target(in, pc), FIX_INSN);
		} else if (op == RB_BPF_EXIT && !j->has_local_calls) {
			if (j->lean)
				emit_return(j);
			else
				jmp_to(j, 0xff, L_EPILOGUE, FIX_LABEL);
		} else if (op == RB_BPF_EXIT) {
			/* depth 0: leave; else return to the local caller */
			rm_mem(j, true, OP(0x81), 7, CTXREG, OFF(depth), false);
			e4(j, 0);
			jmp_to(j, CC_E, L_EPILOGUE, FIX_LABEL);
			e1(j, 0xc3);
		} else if (idx == RB_XOP_CALL_LOCAL) {
			emit_local_call(j, in, (uint32_t)pc);
		} else if (op == RB_BPF_CALL) {
			emit_helper_call(j, in, idx, (uint32_t)pc);
		} else if (invert_to != UINT32_MAX) {
			emit_jcc_hardened(j, in, (uint32_t)pc, true, invert_to);
		} else {
			emit_jcc_hardened(j, in, (uint32_t)pc, false, jump_target(in, pc));
		}
		break;
	}
	}
	return 0;
}

/*
 * "if cond goto +1; goto T" as one jump "if !cond goto T" (what clang
 * emits at the bottom of a loop whose exit test is not the back edge):
 * when the ja is nothing's target and both were reached.  Returns T or
 * UINT32_MAX.
 */
static uint32_t jcc_over_ja(const struct jit *j, size_t pc)
{
	const struct rb_bpf_prog *p = j->prog;
	const struct rb_bpf_insn *in = &p->insns[pc];

	if (!is_cond_jump(in) || in->off != 1 || pc + 2 >= p->n_insns)
		return UINT32_MAX;
	const struct rb_bpf_insn *ja = &p->insns[pc + 1];
	if ((ja->code != (RB_BPF_JMP | RB_BPF_JA) && ja->code != (RB_BPF_JMP32 | RB_BPF_JA)) ||
	    (j->pflags[pc + 1] & (P_TARGET | P_HEAD)))
		return UINT32_MAX;
	if (j->facts && (!(j->facts[pc].flags & RB_FACT_SEEN) || !(j->facts[pc + 1].flags & RB_FACT_SEEN)))
		return UINT32_MAX;
	return jump_target(ja, pc + 1);
}

/*
 * "d = s; d += x" (clang's way to form a pointer plus an offset) as one
 * "lea d, [s + x]", after the range check of x when x is the number the
 * verifier saw added to a pointer: when the add is no jump's target and
 * neither has a fact that changes its code.  True when it emitted them.
 */
static bool mov_add_lea(struct jit *j, size_t pc)
{
	const struct rb_bpf_prog *p = j->prog;
	const struct rb_bpf_insn *mov = &p->insns[pc], *add = &p->insns[pc + 1];

	if (pc + 1 >= p->n_insns || mov->code != (RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X) || mov->off ||
	    add->code != (RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_X) || add->dst != mov->dst ||
	    add->src == mov->dst || (j->pflags[pc + 1] & P_LEAD))
		return false;
	const struct rb_bpf_fact *f = j->facts ? &j->facts[pc + 1] : NULL;
	if (j->facts) {
		const struct rb_bpf_fact *m = &j->facts[pc];
		if (!(m->flags & RB_FACT_SEEN) || (m->flags & RB_FACT_SRC_CONST) || !(f->flags & RB_FACT_SEEN) ||
		    (f->flags & (RB_FACT_SRC_CONST | RB_FACT_NUM_IS_DST)))
			return false;
	}
	if (f && (f->flags & RB_FACT_PTR_ARITH)) {
		j->cur_rest = j->rest[pc + 1];
		range_check(j, bpf2x86[add->src], f, (uint32_t)pc + 1);
	}
	lea_sum(j, bpf2x86[mov->dst], bpf2x86[mov->src], bpf2x86[add->src]);
	return true;
}

/* The fast code: each superblock charged once at its head. */
static int emit_fast(struct jit *j, char *err, size_t errlen)
{
	const struct rb_bpf_prog *p = j->prog;

	for (size_t pc = 0; pc < p->n_insns; pc++) {
		j->insn_off[pc] = (uint32_t)j->len;
		if (j->pflags[pc] & P_HEAD) {
			int64_t charge = (int64_t)j->sb_total[pc] - j->fold[pc];
			if (charge > 0) {
				budget_sub(j, (uint32_t)charge);
				/* jl: the slow copy (emit_slow() patches it) */
				e1(j, 0x0f);
				e1(j, 0x80 + CC_L);
				j->slow_at[pc] = (uint32_t)j->len;
				e4(j, 0);
			} else {
				budget_add(j, -charge); /* gives back what it was overcharged */
			}
		}
		if (mov_add_lea(j, pc)) { /* two instructions, one lea */
			j->insn_off[pc + 1] = j->insn_off[pc];
			pc++;
			if (j->oom)
				break;
			continue;
		}
		uint32_t over = jcc_over_ja(j, pc);
		int rc = emit_insn(j, pc, over, err, errlen);
		if (rc)
			return rc;
		if (over != UINT32_MAX) {
			/* The ja emits nothing; falling through to pc + 2 is the
			 * jump's taken edge, with its refund unless folded. */
			uint32_t t = (uint32_t)pc + 2;
			if (!(j->fold[t] && j->fold[t] == j->rest[pc]))
				budget_add(j, j->rest[pc]);
			j->insn_off[++pc] = (uint32_t)j->len;
		} else if (is_lddw(&p->insns[pc])) {
			j->insn_off[++pc] = (uint32_t)j->len;
		}
		if (j->oom)
			break;
	}
	return 0;
}

/*
 * The exact slow copies: for each superblock whose charge can fail, its
 * instructions again, each charged one at a time (stopping, as the
 * interpreter does, at the first one the budget does not cover), leaving
 * to the fast code's heads.
 */
static int emit_slow(struct jit *j, char *err, size_t errlen)
{
	const struct rb_bpf_prog *p = j->prog;

	j->slow = true;
	for (size_t h = 0; h < p->n_insns && !j->oom; h++) {
		if (!j->slow_at[h] && !j->fold[h])
			continue;
		size_t end = j->sb_end[h];
		if (j->slow_at[h]) {
			int32_t rel = (int32_t)(j->len - (j->slow_at[h] + 4));
			memcpy(j->buf + j->slow_at[h], &rel, 4);
			/* The true budget: the head took sb_total - fold from a
			 * budget that was fold short already. */
			budget_add(j, j->sb_total[h]);
		}
		j->slow_entry[h] = (uint32_t)j->len;
		size_t pc;
		for (pc = h; pc < end; pc += is_lddw(&p->insns[pc]) ? 2 : 1) {
			budget_sub(j, 1);
			size_t jge = j->len;
			e1(j, 0x7d); /* jge: still covered */
			e1(j, 0);
			mov_imm64(j, R10, pc);
			jmp_to(j, 0xff, L_BUDGET, FIX_LABEL);
			j->buf[jge + 1] = (uint8_t)(j->len - (jge + 2));
			int rc = emit_insn(j, pc, UINT32_MAX, err, errlen);
			if (rc)
				return rc;
		}
		/* Fall through into the next superblock's fast code. */
		const struct rb_bpf_insn *last = NULL;
		for (size_t q = h; q < end; q += is_lddw(&p->insns[q]) ? 2 : 1)
			last = &p->insns[q];
		uint8_t op = last->code & 0xf0;
		if (end < p->n_insns && !(is_branch(last) && (op == RB_BPF_JA || op == RB_BPF_EXIT)))
			jmp_to(j, 0xff, (uint32_t)end, FIX_INSN);
		h = end - 1;
	}
	j->slow = false;
	return 0;
}

static int compile(struct jit *j, char *err, size_t errlen)
{
	const struct rb_bpf_prog *p = j->prog;
	int rc;

	for (size_t pc = 0; pc < p->n_insns; pc++)
		if (rb_bpf_op_index(&p->insns[pc]) == RB_XOP_CALL_LOCAL)
			j->has_local_calls = true;
	rc = plan_blocks(j);
	if (rc)
		return rc;
	plan_frame(j);
	emit_prologue(j);
	rc = emit_fast(j, err, errlen);
	if (!rc)
		rc = emit_slow(j, err, errlen);
	if (rc)
		return rc;
	emit_stubs(j);
	if (j->oom)
		return -ENOMEM;
	for (size_t i = 0; i < j->nfix; i++) {
		const struct fixup *f = &j->fix[i];
		uint32_t to = f->kind == FIX_INSN ? j->insn_off[f->target]
			      : f->kind == FIX_SLOW ? j->slow_entry[f->target] : j->label[f->target];
		int32_t rel = (int32_t)(to - (f->at + 4));
		memcpy(j->buf + f->at, &rel, 4);
	}
	return 0;
}

int rb_bpf_jit(struct rb_bpf_prog *p, enum rb_bpf_jit_mode mode, char *err, size_t errlen)
{
	return rb_bpf_jit_ex(p, mode, 0, err, errlen);
}

int rb_bpf_jit_ex(struct rb_bpf_prog *p, enum rb_bpf_jit_mode mode, unsigned flags, char *err,
		  size_t errlen)
{
	bool harden = mode == RB_BPF_JIT_UNCHECKED && !(flags & RB_BPF_JIT_NO_HARDENING);
	struct jit j = {.checked = mode == RB_BPF_JIT_CHECKED, .prog = p, .harden = harden,
			.facts = harden ? p->facts : NULL};
	int rc;

	if (p->jit_code)
		return 0;
	j.insn_off = calloc(p->n_insns + 1, sizeof(*j.insn_off));
	if (!j.insn_off)
		return -ENOMEM;
	rc = compile(&j, err, errlen);
	if (rc == 0) {
		size_t page = (size_t)sysconf(_SC_PAGESIZE), size = (j.len + page - 1) & ~(page - 1);
		void *code = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (code == MAP_FAILED) {
			rc = -ENOMEM;
		} else {
			memcpy(code, j.buf, j.len);
			/* Never writable and executable at once. */
			if (mprotect(code, size, PROT_READ | PROT_EXEC)) {
				munmap(code, size);
				rc = -errno;
			} else {
				p->jit_code = code;
				p->jit_size = size;
				p->jit_checked = j.checked;
				p->jit_full_ctx = j.checked || p->has_calls || j.has_local_calls;
			}
		}
	}
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory compiling the program");
	free(j.buf);
	free(j.fix);
	free(j.stub);
	free(j.edge);
	free(j.insn_off);
	rb_bpf_plan_free(&j.plan);
	free(j.slow_at);
	free(j.slow_entry);
	return rc;
}

void rb_bpf_jit_free(struct rb_bpf_prog *p)
{
	if (p->jit_code)
		munmap(p->jit_code, p->jit_size);
	p->jit_code = NULL;
}

bool rb_bpf_prog_is_jitted(const struct rb_bpf_prog *p)
{
	return p->jit_code != NULL;
}

/* Why a run failed, for a person (off the hot path).  The fields past the
 * head are only read where a lean program cannot fail (faults of the
 * checked mode, helpers). */
static __attribute__((noinline, cold)) int jit_failed(const struct rb_jit_head *h,
						    struct rb_bpf_result *res)
{
	const struct rb_jit_ctx *c = (const struct rb_jit_ctx *)h;
	const struct rb_bpf_prog *prog = h->prog;
	uint64_t budget = h->opts->budget ? h->opts->budget : RB_BPF_DEFAULT_BUDGET;
	int64_t b = budget > INT64_MAX ? INT64_MAX : (int64_t)budget;
	uint32_t kind = h->status & 0xff;

	res->r0 = 0;
	res->pc = h->pc;
	res->executed = (uint64_t)(b - h->budget) - h->refund;
	switch (kind) {
	case RB_BPF_E_BUDGET:
		res->status = RB_BPF_E_BUDGET;
		res->executed = budget;
		snprintf(res->msg, sizeof(res->msg), "insn %u: instruction budget of %" PRIu64 " exhausted",
			 h->pc, budget);
		return -E2BIG;
	case RB_BPF_E_FAULT:
		res->status = RB_BPF_E_FAULT;
		if (h->status & ST_UNREACHABLE)
			snprintf(res->msg, sizeof(res->msg),
				 "insn %u: reached an instruction the verifier proved unreachable "
				 "(stopped by the JIT's hardening: a verifier bug)", h->pc);
		else if (h->status & ST_OUT_OF_RANGE)
			snprintf(res->msg, sizeof(res->msg),
				 "insn %u: a number added to a pointer is outside the range the verifier "
				 "proved (stopped by the JIT's hardening: a verifier bug)", h->pc);
		else if (h->status & ST_MISALIGNED)
			snprintf(res->msg, sizeof(res->msg), "insn %u: misaligned atomic access", h->pc);
		else
			snprintf(res->msg, sizeof(res->msg),
				 "insn %u: %s %" PRIu64 " bytes at 0x%" PRIx64 " outside the memory granted to the program",
				 h->pc, (c->fault_size & 0x100) ? "write of" : "read of", c->fault_size & 0xff,
				 c->fault_addr);
		return -EFAULT;
	case RB_BPF_E_DEPTH:
		res->status = RB_BPF_E_DEPTH;
		snprintf(res->msg, sizeof(res->msg), "insn %u: local calls nested deeper than %u frames",
			 h->pc, RB_BPF_MAX_FRAMES);
		return -EINVAL;
	default:
		res->status = RB_BPF_E_HELPER;
		if (h->status & ST_CALLX_UNKNOWN)
			snprintf(res->msg, sizeof(res->msg), "insn %u: callx to unknown helper %" PRIu64,
				 h->pc, c->helper_id);
		else
			snprintf(res->msg, sizeof(res->msg), "insn %u: helper %s: %s", h->pc,
				 prog->helpers && c->helper_id < RB_BPF_MAX_HELPERS
					 ? prog->helpers->slot[c->helper_id].name : "?",
				 c->call.msg);
		return -EINVAL;
	}
}

/* Generated code carries no type signature before its entry, so clang's
 * -fsanitize=function (part of UBSan) would read before the code page: the
 * function that holds the call must say so (inlining does not carry it). */
#if defined(__clang__)
#define NO_SANITIZE_FUNCTION __attribute__((no_sanitize("function")))
#else
#define NO_SANITIZE_FUNCTION
#endif

/* Calls the code: only the result lives across the call (no callee-saved
 * registers to save around it); a failure finds the rest in the head. */
static inline NO_SANITIZE_FUNCTION __attribute__((always_inline)) int
run_code(const struct rb_bpf_prog *prog, const struct rb_bpf_run_opts *opts,
	 struct rb_bpf_result *res, struct rb_jit_head *h)
{
	uint64_t budget = opts->budget ? opts->budget : RB_BPF_DEFAULT_BUDGET;
	int64_t b = budget > INT64_MAX ? INT64_MAX : (int64_t)budget;

	h->prog = prog;
	h->opts = opts;
	res->executed = (uint64_t)b;
	struct rb_jit_ret r = ((rb_jit_fn)prog->jit_code)((struct rb_jit_ctx *)h, opts->args, b);
	if (RB_UNLIKELY(r.left < 0))
		return jit_failed(h, res);
	res->status = RB_BPF_OK;
	res->r0 = r.r0;
	res->pc = 0;
	res->executed -= (uint64_t)r.left;
	res->msg[0] = 0;
	return 0;
}

/* A program with calls or run-time checks: its whole context filled first. */
static NO_SANITIZE_FUNCTION __attribute__((noinline)) int
run_jit_full(const struct rb_bpf_prog *prog, const struct rb_bpf_run_opts *opts,
	     struct rb_bpf_result *res)
{
	struct rb_jit_ctx c;

	c.call.prog = prog;
	c.call.user = opts->user;
	c.call.stop = false;
	c.call.failed = false;
	c.call.msg[0] = 0;
	c.call.dbg = NULL;
	c.depth = 0;
	c.helpers = prog->helper_fn;
	/* The regions are only looked at by run-time checks and helpers. */
	rb_bpf_fill_spans(&c.call, prog, opts);
	/* The stack lives on the native stack inside the generated code,
	 * which sets stack_lo/hi and the caches from its own frame. */
	return run_code(prog, opts, res, &c.h);
}

/*
 * The entry point of every JIT'd run: a lean program (no calls, no
 * run-time checks) gets nothing but its arguments and budget, in
 * registers, and a context of a few bytes that the code only writes when
 * the program fails.
 */
NO_SANITIZE_FUNCTION
int rb_bpf_run_jit(const struct rb_bpf_prog *prog, const struct rb_bpf_run_opts *opts,
		   struct rb_bpf_result *res)
{
	struct rb_jit_head h;

	if (prog->jit_full_ctx)
		return run_jit_full(prog, opts, res);
	return run_code(prog, opts, res, &h);
}
