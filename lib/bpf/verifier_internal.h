/* SPDX-License-Identifier: MIT */
/*
 * What the verifier's files share: the abstract value of a number (ranges
 * and known bits), of a register and of a stack slot, and the pure
 * operations on numbers (verifier_scalar.c).  Nothing outside lib/bpf's
 * verifier_*.c includes it.
 */
#ifndef ROSEN_BPF_VERIFIER_INTERNAL_H
#define ROSEN_BPF_VERIFIER_INTERNAL_H

#include "bpf_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Known bits: a bit is known when its mask bit is 0, and then equals the
 * value bit (Linux's tnum). */
struct tnum {
	uint64_t value;
	uint64_t mask;
};

/*
 * Everything known of a 64-bit number: unsigned and signed ranges of the
 * whole value and of its low 32 bits, and its known bits.  Kept consistent
 * by scal_sync(); every field is a sound over-approximation on its own.
 */
struct scal {
	uint64_t umin, umax;
	int64_t smin, smax;
	uint32_t u32min, u32max;
	int32_t s32min, s32max;
	struct tnum t;
};

/* Relations a conditional jump establishes between dst and src. */
enum scal_rel {
	REL_EQ, REL_NE, REL_GT, REL_GE, REL_LT, REL_LE,
	REL_SGT, REL_SGE, REL_SLT, REL_SLE, REL_SET, REL_NSET,
};

struct tnum tnum_const(uint64_t v);
struct tnum tnum_unknown(void);

struct scal scal_const(uint64_t v);
struct scal scal_unknown(void);
/* What a zero-extending load of `bytes` bytes gives. */
struct scal scal_width(unsigned bytes);
/* What a sign-extending load of `bytes` bytes gives. */
struct scal scal_swidth(unsigned bytes);
bool scal_is_const(const struct scal *s);
/* Tightens every field from the others; false when they contradict each
 * other (the value cannot exist: a branch that cannot be taken). */
bool scal_sync(struct scal *s);
/* dst op= src for ALU op (RB_BPF_ADD...RB_BPF_ARSH, with `sdiv` for the
 * signed DIV/MOD forms), 64- or 32-bit (32-bit results are zero-extended). */
void scal_alu(struct scal *dst, const struct scal *src, uint8_t op, bool is64,
	      bool sdiv);
/* mov(sx): dst = src sign-extended from `bits` (8, 16, 32; 64 = plain
 * copy), as a 64- or 32-bit (zero-extended) result. */
void scal_movsx(struct scal *dst, const struct scal *src, unsigned bits, bool is64);
/* Byte-order operations: to-little-endian truncates (the host is
 * little-endian), swaps keep only what constants give. */
void scal_bswap(struct scal *dst, unsigned bits, bool swap);
/* Keeps the low `bytes` bytes (zero-extends them). */
void scal_trunc(struct scal *dst, unsigned bytes);
/* Refines a and b with "a rel b" (on their low 32 bits when is32); false
 * when that cannot hold. */
bool scal_refine(struct scal *a, struct scal *b, enum scal_rel rel, bool is32);
/* Is every value `small` allows also allowed by `big`? */
bool scal_subset(const struct scal *small, const struct scal *big);
/* dst = a value covering dst and other; with widen, bounds that grew jump
 * to their extremes (then back to what the known bits allow), so that
 * repeated widening reaches a fixed point. */
void scal_join(struct scal *dst, const struct scal *other, bool widen);
/* dst = a value covering dst and other, where bounds that grew move on to
 * the next of the sorted thresholds thr[0..n) (the program's constants), or
 * to the extreme past the last. */
void scal_widen(struct scal *dst, const struct scal *other, const uint64_t *thr, unsigned n);
/* q = what both q and n allow (n itself when they contradict). */
void scal_meet(struct scal *q, const struct scal *n);
/* "42", "[0..4095]", "scalar(u[..] s[..] bits=..)" for logs. */
void scal_fmt(char *buf, size_t len, const struct scal *s);

/* ---- abstract registers, stack and states ---- */

/* What a register holds. */
enum vtype {
	T_NOINIT = 0,  /* never written (or clobbered by a call) */
	T_SCALAR,      /* a number */
	T_CTX,         /* the context */
	T_REGION,      /* into region `idx` of the program type */
	T_REGION_END,  /* end marker of region `idx` (offset 0..size) */
	T_STACK,       /* into the stack of frame `idx` (offset 0..512) */
	T_SECTION,     /* into data section `idx` (enum rb_bpf_data_kind) */
	T_MEM,         /* memory a helper returned, `size` bytes */
	T_MEM_OR_NULL, /* the same, not yet compared with 0 */
};

struct vreg {
	uint8_t type;
	uint8_t idx;
	bool writable; /* T_MEM* */
	uint32_t size; /* T_MEM* */
	uint32_t id;   /* T_MEM*: which block (NULL checks apply to all copies) */
	/* Registers sharing a link hold one value moved by constants:
	 * this = (the link's value) + link_off.  Made by 64-bit moves, kept by
	 * adding or subtracting constants: clang's `i` and `i + 8`, `p` and
	 * `p + 8`, so that a check on one bounds the others. */
	uint32_t link;
	int64_t link_off;
	struct scal v; /* the number, or the pointer's offset */
};

enum { B_INVALID = 0, B_MISC = 1, B_SPILL = 2 };

#define NSLOTS (RB_BPF_STACK_SIZE / 8)

struct vframe {
	struct vreg r[11];
	uint8_t byte[RB_BPF_STACK_SIZE];
	uint32_t callsite;         /* pc of the call that made this frame */
	uint32_t entry;            /* pc of the function's first instruction */
	/* Slots below min_slot were never written (programs use the top of
	 * their frame): copies and comparisons skip them. */
	unsigned min_slot;
	struct vreg spill[NSLOTS]; /* where all 8 bytes of a slot are B_SPILL; last */
};

#define HIST 8

/* What the states of one verification cost: every frame allocated,
 * copied or compared is counted here (the limits of rb_bpf_verify_opts). */
struct vacct {
	uint64_t live_bytes, peak_bytes;
	uint64_t frames_copied, frames_compared;
};

struct vstate {
	struct vacct *acct; /* shared by every state of one verification */
	uint32_t pc;
	unsigned nframes;
	struct vframe *f[RB_BPF_MAX_FRAMES];
	uint32_t hist[HIST][2]; /* last branches taken: from, to */
	unsigned nhist;
};

/* ---- states (verifier_state.c) ---- */

void vstate_free(struct vstate *s);
bool vstate_copy(struct vstate *dst, const struct vstate *src);
struct vframe *vframe_new(struct vacct *acct, uint32_t callsite, uint32_t entry);
/* Same call chain (number of frames and call sites). */
bool vstate_same_frames(const struct vstate *a, const struct vstate *b);
/* Does every concrete state cur allows, old allow too (with the same
 * links)?  Then a path reaching cur need not be followed further. */
bool vstate_covers(const struct vstate *old, const struct vstate *cur);
/* d = a state covering d and o (same frames), bounds that grew widened to
 * the thresholds thr[0..n). */
void vstate_join(struct vstate *d, const struct vstate *o, const uint64_t *thr, unsigned n);

/* ---- one verification (verifier.c; its log in verifier_log.c, what it
 * tells the JIT in verifier_facts.c) ---- */

struct stored {
	struct stored *next;
	struct vstate st;
};

struct verifier {
	const struct rb_bpf_prog *prog;
	const struct rb_bpf_type *type;
	const struct rb_bpf_insn *in;
	size_t n;
	uint8_t *prune;         /* 1: a jump target; 2: also a loop head */
	uint32_t *visits;
	struct stored **kept;
	uint16_t *n_kept;
	struct vstate **work;   /* pending branches */
	size_t n_work, cap_work;
	uint32_t next_id;
	uint64_t max_insns, max_work, max_mem, max_cpu_ns;
	uint64_t cpu0_ns;       /* thread CPU time at the start */
	uint64_t fixed_bytes;   /* per-instruction arrays */
	struct vacct acct;      /* what the states cost */
	struct rb_bpf_verify_stats stats;
	/* What is proven per instruction, for the JIT (rb_bpf_fact), and what
	 * recording it needs on the way (ptr_use). */
	struct rb_bpf_fact *facts;
	struct ptr_use *use;
	uint64_t thr[256]; /* widening thresholds: the program's constants */
	unsigned n_thr;
	char *log;
	size_t loglen;
	bool oom;
};

#define MAX_KEPT_PER_INSN 32
#define WIDEN_AFTER 128 /* visits of a loop head before widening */
#define OFF_LIMIT ((int64_t)1 << 40)
/* A number added to a pointer, and any pointer's offset, stays within
 * +-2^29 (Linux's BPF_MAX_VAR_OFF): offsets never wrap an address, so two
 * pointers into one region compare as their offsets do, and no pointer can
 * be walked to NULL or to another mapping. */
#define PTR_OFF_MAX ((int64_t)1 << 29)
/* Addresses of user mappings lie above 64 KiB (mmap_min_addr) and below
 * 2^47: a pointer whose offset stays above -64 KiB is never NULL and never
 * wraps. */
#define OFF_WINDOW_LO (-(int64_t)65536)

/* How one 64-bit add/sub X instruction used its operands over every path:
 * the number in a pointer addition must be a number on every path, or the
 * JIT could not clamp it to its proven range. */
enum {
	USE_SRC_PTR = 1,  /* src was a pointer on some path */
	USE_DST_PTR = 2,
	USE_NUM_SRC = 4,  /* pointer (dst) +- number (src) on some path */
	USE_NUM_DST = 8,  /* number (dst) + pointer (src) on some path */
	USE_SRC_SEEN = 16, /* src_lo/hi hold something */
	USE_DST_SEEN = 32,
	USE_SRC_VARIES = 64, /* X-form: src was not one constant on every path */
};

struct ptr_use {
	uint8_t flags;
	int64_t src_lo, src_hi, dst_lo, dst_hi; /* signed ranges of numbers seen */
};

/* ---- registers of a state ------------------------------------------------------------------- */

static inline struct vreg *regs(struct vstate *s)
{
	return s->f[s->nframes - 1]->r;
}

static inline struct vreg scalar(struct scal v)
{
	return (struct vreg){.type = T_SCALAR, .v = v};
}

static inline bool is_ptr(const struct vreg *r)
{
	return r->type > T_SCALAR;
}

/* verifier_log.c */
const char *vregion_name(const struct verifier *v, const struct vreg *r);
void vreg_fmt(const struct verifier *v, const struct vreg *r, char *buf, size_t len);
/* Rejects the program: "insn N: reason", then what was known; -EACCES. */
int vreject(struct verifier *v, struct vstate *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* verifier_facts.c: what the unchecked JIT is told (struct rb_bpf_fact). */
int vfact_add_operands(struct verifier *v, struct vstate *s, const struct rb_bpf_insn *in);
void vfact_src_const(struct verifier *v, struct vstate *s, const struct rb_bpf_insn *in);
void vfact_stack(struct verifier *v, struct vstate *s, unsigned fi, int64_t lo);
void vfact_finish(struct verifier *v, struct rb_bpf_prog *prog);

#endif
