/* SPDX-License-Identifier: MIT */
/*
 * What the files of lib/bpf share: the prepared (pre-decoded) form of a
 * program the interpreter dispatches on, the per-run call state helpers see,
 * and the internal operation numbers.  Nothing outside lib/bpf includes it.
 */
#ifndef ROSEN_BPF_INTERNAL_H
#define ROSEN_BPF_INTERNAL_H

#include <rosen/bpf.h>
#include <stdarg.h>

#define RB_LIKELY(x) __builtin_expect(!!(x), 1)
#define RB_UNLIKELY(x) __builtin_expect(!!(x), 0)

struct rb_bpf_helpers {
	struct {
		char name[32];
		rb_bpf_helper_fn fn;
	} slot[RB_BPF_MAX_HELPERS];
};

/*
 * Internal operation numbers.  0..255 are plain opcodes whose meaning the
 * opcode alone fixes; variants that the offset or imm field select (signed
 * division, movsx, byte swaps, atomics, call kinds) get their own number so
 * the interpreter never decodes a field twice at run time.
 */
enum rb_bpf_xop {
	RB_XOP_BASE = 256,
	RB_XOP_SDIV32_K = RB_XOP_BASE, RB_XOP_SDIV32_X, RB_XOP_SMOD32_K,
	RB_XOP_SMOD32_X, RB_XOP_SDIV64_K, RB_XOP_SDIV64_X, RB_XOP_SMOD64_K,
	RB_XOP_SMOD64_X,
	RB_XOP_MOVSX32_8, RB_XOP_MOVSX32_16, RB_XOP_MOVSX64_8,
	RB_XOP_MOVSX64_16, RB_XOP_MOVSX64_32,
	RB_XOP_LE16, RB_XOP_LE32, RB_XOP_LE64, RB_XOP_BE16, RB_XOP_BE32,
	RB_XOP_BE64, RB_XOP_BSWAP16, RB_XOP_BSWAP32, RB_XOP_BSWAP64,
	RB_XOP_CALL_LOCAL, RB_XOP_CALLX,
	RB_XOP_A32_ADD, RB_XOP_A32_OR, RB_XOP_A32_AND, RB_XOP_A32_XOR,
	RB_XOP_A32_FADD, RB_XOP_A32_FOR, RB_XOP_A32_FAND, RB_XOP_A32_FXOR,
	RB_XOP_A32_XCHG, RB_XOP_A32_CMPXCHG,
	RB_XOP_A64_ADD, RB_XOP_A64_OR, RB_XOP_A64_AND, RB_XOP_A64_XOR,
	RB_XOP_A64_FADD, RB_XOP_A64_FOR, RB_XOP_A64_FAND, RB_XOP_A64_FXOR,
	RB_XOP_A64_XCHG, RB_XOP_A64_CMPXCHG,
	RB_XOP_HEAD,    /* a superblock's head: charge the budget, then the op */
	RB_XOP_STEP,    /* the stepping ops: one instruction charged at a time */
	RB_XOP_INVALID, /* never reached: validation rejects it */
	RB_XOP_COUNT,
};

/* One prepared instruction: 16 bytes, handler address first. */
struct rb_bpf_op {
	const void *handler;
	uint8_t dst;
	uint8_t src;
	int16_t off;
	int32_t imm;
};

/*
 * What the verifier proved about one instruction: the union over every
 * state it walked there.  The unchecked JIT reads it (defence in depth);
 * nothing else depends on it.
 */
enum {
	RB_FACT_SEEN = 1,       /* some verified path reaches it */
	RB_FACT_SRC_CONST = 2,  /* X-form ALU/JMP: src was the number `k` on every path */
	RB_FACT_PTR_ARITH = 4,  /* 64-bit add/sub of a number and a pointer on some path */
	RB_FACT_NUM_IS_DST = 8, /* PTR_ARITH: the number is dst (number + pointer) */
	RB_FACT_FN_ENTRY = 16,  /* pc 0 or a local call target: stack_depth is valid */
};

struct rb_bpf_fact {
	uint8_t flags;
	uint16_t stack_depth; /* FN_ENTRY: bytes of its frame (from the top) the
	                       * function may touch, a multiple of 8 */
	int64_t lo, hi;       /* PTR_ARITH: the number's signed range, every path */
	uint64_t k;           /* SRC_CONST */
};

/* Beside each prepared instruction (same index, same size, so that the
 * interpreter finds it from the op's address with one add): its own
 * handler, and at a superblock's head what the head charges (budget.c). */
struct rb_bpf_head {
	const void *real; /* the op's handler (ops[pc] of a head charges first) */
	int32_t charge;   /* instructions of its superblock less fold */
	uint32_t fold;    /* charged ahead by its one way in */
};

struct rb_bpf_prog {
	struct rb_bpf_insn *insns; /* as loaded (for disasm, later verifier) */
	size_t n_insns;
	struct rb_bpf_op *ops;     /* prepared for the interpreter (heads charge) */
	/* The same ops stepping one charged instruction at a time (when a
	 * head's charge does not fit the budget left), each op's own handler
	 * and head's charge, and what each pc's superblock runs after it (given
	 * back when the run stops there).  n_insns + 1 entries. */
	struct rb_bpf_op *step_ops;
	struct rb_bpf_head *heads;
	uint32_t *rest;
	const struct rb_bpf_helpers *helpers;
	rb_bpf_helper_fn helper_fn[RB_BPF_MAX_HELPERS]; /* snapshot at load */
	void *data[RB_BPF_DATA_KINDS]; /* program-owned copies, 8-aligned */
	size_t data_len[RB_BPF_DATA_KINDS];
	void *jit_code;  /* x86-64 code (read+exec), or NULL */
	size_t jit_size;
	bool jit_checked;
	bool jit_full_ctx; /* the JIT'd code reads the run context (calls, checks) */
	bool has_calls; /* calls helpers (directly or through callx) */
	bool uses_stack; /* names r10 or makes a local call: needs a stack frame */
	struct rb_bpf_fact *facts; /* n_insns, from the verifier; NULL if none */
};

/* A region as the run-time checks see it: [lo, lo + span). */
struct rb_bpf_span {
	uint64_t lo;
	uint64_t span;
	bool writable;
};

#define RB_BPF_MAX_SPANS (RB_BPF_MAX_REGIONS + RB_BPF_DATA_KINDS)

struct rb_bpf_call {
	const struct rb_bpf_prog *prog;
	void *user;
	struct rb_bpf_span spans[RB_BPF_MAX_SPANS];
	unsigned n_spans;
	uint64_t stack_lo, stack_hi; /* frames of the running call chain */
	bool stop;
	bool failed;
	uint64_t stop_value;
	char msg[128];
	struct rb_bpf_interp_debug *dbg; /* interpreter only: NULL but in tests */
};

/* True when [addr, addr+len) lies inside one accessible span (or the live
 * stack).  Overflow-safe. */
bool rb_bpf_mem_ok(const struct rb_bpf_call *call, uint64_t addr,
		   uint64_t len, bool write);

/* Grants the caller's regions and the program's data sections. */
void rb_bpf_fill_spans(struct rb_bpf_call *c, const struct rb_bpf_prog *prog,
		       const struct rb_bpf_run_opts *opts);
/*
 * A test-only run mode of the interpreter (tests/unit/test_bpf_soundness.c,
 * tests/fuzz/): it makes visible what a verified program must never see.
 * Registers the program has not written (r0, r(n_args+1)..r9 at entry,
 * r1..r5 after every helper call) and stack bytes it has not written hold
 * garbage drawn from `seed`, and a read of a stack byte never written (by
 * the program, or by a helper: a byte a helper call changed) faults.  The
 * frames live in `stack`, so two runs can put them at different addresses.
 * A helper that writes RB_BPF_UNWRITTEN_POISON into a byte nothing wrote is
 * not seen writing it (test stand-ins avoid that byte).  Normal runs pay
 * one predictable branch on the access check's slow path, on helper and
 * local calls and on returns, nothing in the fast path.
 */
#define RB_BPF_UNWRITTEN_POISON 0xa5
struct rb_bpf_interp_debug {
	uint64_t seed;    /* in: garbage; advanced as it is drawn */
	unsigned n_args;  /* in: opts->args[0..n_args) are real, the rest garbage */
	bool unwritten_read; /* out: the fault read a stack byte never written */
	uint8_t stack[RB_BPF_MAX_FRAMES * RB_BPF_STACK_SIZE] __attribute__((aligned(16)));
	uint8_t written[RB_BPF_MAX_FRAMES * RB_BPF_STACK_SIZE];
};
int rb_bpf_run_interp_debug(const struct rb_bpf_prog *prog, const struct rb_bpf_run_opts *opts,
			    struct rb_bpf_interp_debug *dbg, struct rb_bpf_result *res);

/* budget.c: the instruction budget's plan (see rb_bpf_plan_budget()). */
enum {
	RB_PLAN_LEAD = 1,    /* starts a basic block */
	RB_PLAN_TARGET = 2,  /* a jump or local-call target, or pc 0 */
	RB_PLAN_HEAD = 4,    /* starts a superblock: the budget is charged here */
	RB_PLAN_SLOT2 = 8,   /* second slot of an lddw */
	RB_PLAN_NOFOLD = 16, /* entered some other way than one jump edge */
};
struct rb_bpf_plan {
	uint8_t *flags;    /* RB_PLAN_*, per pc */
	uint8_t *npred;    /* ways in (jump edges, falling through), saturating */
	uint32_t *rest;    /* instructions of its superblock after pc */
	uint32_t *sb_end;  /* at a head: the first pc past its superblock */
	uint32_t *sb_total; /* at a head: its superblock's instructions */
	uint32_t *fold;    /* at a head: what its one way in charged ahead (its
	                    * charge is sb_total - fold) */
};
int rb_bpf_plan_budget(const struct rb_bpf_prog *p, struct rb_bpf_plan *plan);
void rb_bpf_plan_free(struct rb_bpf_plan *plan);
bool rb_bpf_is_branch(const struct rb_bpf_insn *in);
bool rb_bpf_is_lddw(const struct rb_bpf_insn *in);
bool rb_bpf_is_cond_jump(const struct rb_bpf_insn *in);
uint32_t rb_bpf_jump_target(const struct rb_bpf_insn *in, size_t pc);

/* jit.c */
int rb_bpf_run_jit(const struct rb_bpf_prog *prog, const struct rb_bpf_run_opts *opts,
		   struct rb_bpf_result *res);
void rb_bpf_jit_free(struct rb_bpf_prog *prog);

/* The interpreter's handler table, indexed by opcode or enum rb_bpf_xop. */
const void *const *rb_bpf_interp_handlers(void);

/* Maps an instruction to its internal operation (opcode or RB_XOP_*); returns
 * RB_XOP_INVALID for anything the engine does not accept. */
unsigned rb_bpf_op_index(const struct rb_bpf_insn *insn);

void rb_bpf_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
