/* SPDX-License-Identifier: MIT */
/*
 * Soundness of the verifier, tested from outside: every program it accepts
 * (the accepted corpus, and random programs shaped like the attacks that
 * got through before) must, in the interpreter with every access checked,
 * never fault, never read a stack byte it did not write, and leave exactly
 * the same results when its memory sits at other host addresses and every
 * register and stack byte it never wrote holds other garbage
 * (tests/soundness/).  The unchecked JIT must agree with the interpreter.
 */
#include "harness.h"
#include "../soundness/soundness.h"

#include <rosen/bpf.h>
#include <rosen/ndp.h>

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <time.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	return rt_xorshift(&rng_state);
}

static void dump(const struct rb_bpf_insn *prog, unsigned n, const struct rb_bpf_helpers *h)
{
	for (unsigned i = 0; i < n; i++) {
		char b[96];
		rb_bpf_disasm_insn(prog, n, i, h, b, sizeof(b));
		fprintf(stderr, "      %3u: %s\n", i, b);
	}
}

/* A verifier that crashes on a guest's program takes the daemon down: the
 * random test reports it with the program and goes on. */
static sigjmp_buf crash_jmp;
static volatile sig_atomic_t crash_sig;

static void on_crash(int sig)
{
	crash_sig = sig;
	siglongjmp(crash_jmp, 1);
}

static int verify_guarded(struct rb_bpf_prog *p, uint32_t type, char *log, size_t len)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
	struct sigaction sa, old[4];
	volatile int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_crash;
	sa.sa_flags = SA_NODEFER;
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], &sa, &old[i]);
	if (sigsetjmp(crash_jmp, 1) == 0) {
		rc = rb_bpf_verify(p, rb_ndp_bpf_type(type), log, len);
	} else {
		snprintf(log, len, "the verifier crashed (signal %d)", (int)crash_sig);
		rc = -ECANCELED;
	}
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], &old[i], NULL);
	return rc;
}

/* ---- the accepted corpus ----------------------------------------------------- */

struct accepted {
	const char *path;
	const char *section;
};

static const struct accepted accepted[] = {
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_mask"},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_bound_check"},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_meta_len"},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_loop_sum"},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_stack_array"},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_call_stack_arg"},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_spilled_ptr"},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_helpers"},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_mem_trans"},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_globals"},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_next_ios"},
	{TEST_PROGS_DIR "/verifier_ok.o", "sq_rewrite"},
	{TEST_PROGS_DIR "/verifier_ok.o", "xrp_walk"},
	{TEST_PROGS_DIR "/verifier_ok.o", "xrp_spin"},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_ptr_walk"},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_meta_end_walk"},
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_sum"},
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_helpers"},
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_mem_copy"},
	/* BPF-KV's lookup and range programs, as shipped */
	{TEST_PROGS_DIR "/../../progs/bpfkv_xrp_lookup.o", "xrp_bpfkv_xrp_lookup"},
	{TEST_PROGS_DIR "/../../progs/bpfkv_xrp_get.o", "xrp_bpfkv_xrp_get"},
	{TEST_PROGS_DIR "/../../progs/bpfkv_xrp_range.o", "xrp_bpfkv_xrp_range"},
	{TEST_PROGS_DIR "/../../progs/bpfkv_get.o", "cq_bpfkv_get"},
	{TEST_PROGS_DIR "/../../progs/bpfkv_range.o", "cq_bpfkv_range"},
};

static uint32_t type_of(const char *section)
{
	return !strncmp(section, "xrp_", 4) ? RB_NDP_PROG_XRP
	       : !strncmp(section, "sq_", 3) ? RB_NDP_PROG_SQ : RB_NDP_PROG_CQ;
}

TEST(accepted_corpus_is_safe_and_blind_to_addresses_and_garbage)
{
	struct rb_bpf_helpers *h = sd_helpers();
	struct sd_stats st = {0};
	static char log[8192];

	REQUIRE(h);
	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		const char *sec = accepted[i].section;
		uint32_t type = type_of(sec);
		if (strstr(accepted[i].path, "/progs/"))
			sec = strchr(sec, '_') + 1; /* "xrp_bpfkv_...": prefix = type */
		struct rt_blob blob = rt_read_file(accepted[i].path);
		struct rb_bpf_prog *a = NULL, *b = NULL;
		if (rb_bpf_prog_load_elf(blob.p, blob.len, sec, h, &a, log, sizeof(log)) ||
		    rb_bpf_prog_load_elf(blob.p, blob.len, sec, h, &b, log, sizeof(log))) {
			RT_FAIL_AT("%s: does not load: %s", sec, log);
		} else if (rb_bpf_verify(a, rb_ndp_bpf_type(type), log, sizeof(log))) {
			RT_FAIL_AT("%s: rejected:\n%s", sec, log);
		} else {
			for (uint64_t seed = 1; seed <= 150; seed++)
				if (sd_check(a, b, type, seed * 7919 + i, NULL, 0, true, &st, log,
					     sizeof(log))) {
					RT_FAIL_AT("%s (seed %" PRIu64 "): %s", sec, seed * 7919 + i, log);
					break;
				}
		}
		rb_bpf_prog_free(a);
		rb_bpf_prog_free(b);
		free(blob.p);
	}
	fprintf(stderr, "    %" PRIu64 " checks: %" PRIu64 " ok, %" PRIu64 " out of budget, %" PRIu64
		" helper calls\n", st.runs, st.ok, st.budget, st.helpers);
	CHECK(st.helpers > 0);
	rb_bpf_helpers_free(h);
}

/* ---- random programs ---------------------------------------------------------- */

/*
 * Registers at the start of every function: r6 = ctx, r7 = data,
 * r8 = scratch, r9 = meta; r0, r2..r5 numbers read from scratch.  The menu
 * leans toward the shapes that got past the verifier before: pointers
 * compared with 0, with each other (same and different regions, moved by
 * unknown numbers), pointers plus unbounded numbers, pointer differences,
 * spills and narrow reads of them, helper calls with out-buffers on the
 * stack read back afterwards (get_sqe with invalid indexes), r1..r5 read
 * after a call, local calls given stack pointers.
 */
#define R_CTX 6
#define R_DATA 7
#define R_SCRATCH 8
#define R_META 9

static const uint8_t alu_ops[] = {RB_BPF_ADD, RB_BPF_SUB, RB_BPF_MUL, RB_BPF_AND, RB_BPF_OR,
				  RB_BPF_XOR, RB_BPF_LSH, RB_BPF_RSH, RB_BPF_ARSH, RB_BPF_MOD,
				  RB_BPF_DIV, RB_BPF_MOV};
static const uint8_t jmp_ops[] = {RB_BPF_JEQ, RB_BPF_JNE, RB_BPF_JGT, RB_BPF_JGE, RB_BPF_JLT,
				  RB_BPF_JLE, RB_BPF_JSGT, RB_BPF_JSGE, RB_BPF_JSLT, RB_BPF_JSLE,
				  RB_BPF_JSET};
static const uint8_t sizes[] = {RB_BPF_B, RB_BPF_H, RB_BPF_W, RB_BPF_DW};
static const int32_t imms[] = {0, 1, 7, 8, 15, 16, 31, 63, 255, 511, 4088, 4095, 4096, 4100, -1, -8};
/* Context offsets of cq: meta, meta_end, data, data_end, scratch,
 * scratch_end, offset, len, hop, n_next, reserved, next_off[0], next_len[0]. */
static const int16_t ctx_offs[] = {0, 8, 16, 24, 32, 40, 48, 56, 60, 64, 68, 72, 200};

#define INSN(c, d, s, o, i) \
	((struct rb_bpf_insn){.code = (uint8_t)(c), .dst = (d), .src = (s), .off = (int16_t)(o), .imm = (i)})

static uint8_t any_reg(void) { return (uint8_t)(rnd() % 10); }
static uint8_t num_reg(void) { return (uint8_t)(rnd() % 6); }
static uint8_t ptr_reg(void) { return (uint8_t)(rnd() % 5 ? R_CTX + rnd() % 4 : 10); }
static int32_t an_imm(void) { return rnd() % 3 ? imms[rnd() % (sizeof(imms) / 4)] : (int32_t)rnd(); }
static int16_t an_off(void)
{
	return (int16_t)(rnd() % 4 ? (int)(rnd() % 9) * 8 - 32 : (int)(rnd() % 4200) - 50);
}
static int16_t a_stack_off(void)
{
	return (int16_t)(rnd() % 5 ? -8 * (int)(1 + rnd() % 8) : -(int)(1 + rnd() % 80));
}

/* Prologue of every function (main and local): the register plan above. */
static unsigned prologue(struct rb_bpf_insn *o)
{
	unsigned n = 0;

	o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, R_CTX, 1, 0, 0);
	o[n++] = INSN(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, R_DATA, 1, 16, 0);
	o[n++] = INSN(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, R_SCRATCH, 1, 32, 0);
	o[n++] = INSN(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, R_META, 1, 0, 0);
	for (uint8_t k = 0; k < 4; k++)
		o[n++] = INSN(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, 2 + k, R_SCRATCH, 8 * k, 0);
	o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 0, 0, 0, 0);
	return n;
}

/* A helper call with its arguments, and what a program does with it. */
static unsigned gen_helper(struct rb_bpf_insn *o)
{
	static const int32_t idxs[] = {0, 1, 15, 16, 99, -1, 0x7fffffff};
	unsigned n = 0;
	int16_t buf = (int16_t)(-8 * (int)(2 + rnd() % 6));

	o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 1, R_CTX, 0, 0);
	switch (rnd() % 6) {
	case 0: case 1: /* get_sqe into the stack (or a region), then read it */
		if (rnd() % 3)
			o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 2, 0, 0, idxs[rnd() % 7]);
		o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 3, rnd() % 4 ? 10 : ptr_reg(), 0, 0);
		o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_K, 3, 0, 0, rnd() % 4 ? buf : an_imm());
		o[n++] = INSN(RB_BPF_JMP | RB_BPF_CALL, 0, 0, 0, RB_NDP_HELPER_GET_SQE);
		o[n++] = INSN(RB_BPF_LDX | RB_BPF_MEM | sizes[rnd() % 4], num_reg(), 10,
			      rnd() % 2 ? buf + 8 * (int)(rnd() % 2) : a_stack_off(), 0);
		break;
	case 2:
		o[n++] = INSN(RB_BPF_JMP | RB_BPF_CALL, 0, 0, 0, RB_NDP_HELPER_NEW_SQE);
		break;
	case 3:
		o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 2, 0, 0, idxs[rnd() % 7]);
		o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 3, 0, 0, (int32_t)(rnd() % 8) * 512);
		o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 4, 0, 0, rnd() % 2 ? 512 : an_imm());
		o[n++] = INSN(RB_BPF_JMP | RB_BPF_CALL, 0, 0, 0, RB_NDP_HELPER_SET_SQE);
		break;
	case 4: /* mem_trans, then NULL check (or not) and use */
		o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 2, 0, 0, rnd() % 3 ? 1 : 4);
		o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 3, 0, 0, (int32_t)(rnd() % 3) * 8);
		o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 4, 0, 0, rnd() % 2 ? 16 : 64);
		o[n++] = INSN(RB_BPF_JMP | RB_BPF_CALL, 0, 0, 0, RB_NDP_HELPER_MEM_TRANS);
		if (rnd() % 4)
			o[n++] = INSN(RB_BPF_JMP | RB_BPF_JEQ | RB_BPF_K, 0, 0, 2, 0);
		o[n++] = INSN(RB_BPF_LDX | RB_BPF_MEM | sizes[rnd() % 4], num_reg(), 0, (int)(rnd() % 3) * 8, 0);
		o[n++] = INSN(RB_BPF_STX | RB_BPF_MEM | RB_BPF_DW, 0, num_reg(), 0, 0);
		break;
	default:
		o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 2, num_reg(), 0, 0);
		o[n++] = INSN(RB_BPF_JMP | RB_BPF_CALL, 0, 0, 0,
			      rnd() % 8 ? RB_NDP_HELPER_DISK_TRANS : (int32_t)(rnd() % 256));
		break;
	}
	if (rnd() % 3 == 0) /* a caller-saved register after the call */
		o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, (uint8_t)(rnd() % 6),
			      (uint8_t)(1 + rnd() % 5), 0, 0);
	return n;
}

/* One hostile step; `at` and `n_total` bound jumps. */
static unsigned gen_hostile(struct rb_bpf_insn *o, unsigned at, unsigned n_total, bool may_call)
{
	uint8_t r = num_reg(), q = any_reg();
	int32_t imm = an_imm();

	switch (rnd() % 20) {
	case 0: case 1: /* ALU on numbers */
		o[0] = INSN((rnd() % 4 ? RB_BPF_ALU64 : RB_BPF_ALU) | alu_ops[rnd() % sizeof(alu_ops)] |
				    (rnd() % 2 ? RB_BPF_X : RB_BPF_K),
			    r, 0, 0, imm);
		if (o[0].code & RB_BPF_X) {
			o[0].src = q;
			o[0].imm = 0;
		}
		return 1;
	case 2: case 3: /* a pointer plus a number, maybe unbounded */
		o[0] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, r, ptr_reg(), 0, 0);
		if (rnd() % 2)
			o[1] = INSN(RB_BPF_ALU64 | (rnd() % 4 ? RB_BPF_ADD : RB_BPF_SUB) | RB_BPF_X, r,
				    num_reg(), 0, 0);
		else
			o[1] = INSN(RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_K, r, 0, 0, imm);
		return 2;
	case 4: case 5: /* load */
		o[0] = INSN(RB_BPF_LDX | (rnd() % 6 ? RB_BPF_MEM : RB_BPF_MEMSX) | sizes[rnd() % 4], r,
			    rnd() % 3 ? any_reg() : 10, 0, 0);
		o[0].off = o[0].src == 10 ? a_stack_off() : an_off();
		if ((o[0].code & 0xe0) == RB_BPF_MEMSX && (o[0].code & 0x18) == RB_BPF_DW)
			o[0].code = (uint8_t)(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW);
		return 1;
	case 6: case 7: /* store a register (pointers too) or an immediate */
		if (rnd() % 2)
			o[0] = INSN(RB_BPF_STX | RB_BPF_MEM | sizes[rnd() % 4], rnd() % 3 ? ptr_reg() : 10, q,
				    0, 0);
		else
			o[0] = INSN(RB_BPF_ST | RB_BPF_MEM | sizes[rnd() % 4], rnd() % 3 ? ptr_reg() : 10, 0,
				    0, imm);
		o[0].off = o[0].dst == 10 ? a_stack_off() : an_off();
		return 1;
	case 8: case 9: case 10: { /* conditional jump: numbers, pointer vs 0, pointer vs pointer */
		int span = (int)(rnd() % 6) + 1;
		if (rnd() % 5 == 0 && at >= 12)
			span = -(int)(rnd() % 5) - 2; /* a loop */
		if ((int)at + 1 + span >= (int)n_total || (int)at + 1 + span < 9)
			span = 0;
		uint8_t d = rnd() % 3 ? r : ptr_reg();
		o[0] = INSN((rnd() % 4 ? RB_BPF_JMP : RB_BPF_JMP32) | jmp_ops[rnd() % sizeof(jmp_ops)] |
				    (rnd() % 2 ? RB_BPF_K : RB_BPF_X),
			    d, 0, span, rnd() % 3 ? imm : 0);
		if (o[0].code & RB_BPF_X) {
			o[0].src = rnd() % 2 ? ptr_reg() : q;
			o[0].imm = 0;
		}
		return 1;
	}
	case 11: /* mask */
		o[0] = INSN(RB_BPF_ALU64 | RB_BPF_AND | RB_BPF_K, r, 0, 0,
			    (int32_t)((1u << (rnd() % 14)) - 1) & ~(int32_t)(rnd() % 2 ? 7 : 0));
		return 1;
	case 12: /* a counter step, for loops */
		o[0] = INSN(RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_K, r, 0, 0, rnd() % 2 ? 1 : 8);
		return 1;
	case 13: /* copy a register, 64 or 32 bits (pointers too) */
		o[0] = INSN((rnd() % 4 ? RB_BPF_ALU64 : RB_BPF_ALU) | RB_BPF_MOV | RB_BPF_X, r, q, 0, 0);
		return 1;
	case 14: /* a pointer difference (same or different regions) */
		o[0] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, r, ptr_reg(), 0, 0);
		o[1] = INSN(RB_BPF_ALU64 | RB_BPF_SUB | RB_BPF_X, r, rnd() % 3 ? ptr_reg() : q, 0, 0);
		return 2;
	case 15: /* context fields: read, write */
		if (rnd() % 3)
			o[0] = INSN(RB_BPF_LDX | RB_BPF_MEM | (rnd() % 3 ? RB_BPF_DW : RB_BPF_W), r, R_CTX,
				    ctx_offs[rnd() % sizeof(ctx_offs) / 2], 0);
		else
			o[0] = INSN(RB_BPF_STX | RB_BPF_MEM | (rnd() % 3 ? RB_BPF_DW : RB_BPF_W), R_CTX, q,
				    ctx_offs[rnd() % sizeof(ctx_offs) / 2], 0);
		return 1;
	case 16: case 17:
		return gen_helper(o);
	case 18: /* a local call (patched to the subprogram) given a pointer */
		if (!may_call)
			return 0;
		o[0] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 1, R_CTX, 0, 0);
		o[1] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 2, rnd() % 2 ? 10 : ptr_reg(), 0, 0);
		o[2] = INSN(RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_K, 2, 0, 0, rnd() % 2 ? -16 : imm);
		o[3] = INSN(RB_BPF_JMP | RB_BPF_CALL, 0, RB_BPF_CALL_LOCAL, 0, 0x7fff); /* patched */
		return 4;
	default: /* an atomic on the stack or a region */
		o[0] = INSN(RB_BPF_STX | RB_BPF_ATOMIC | (rnd() % 2 ? RB_BPF_DW : RB_BPF_W),
			    rnd() % 2 ? 10 : ptr_reg(), q, 0,
			    rnd() % 2 ? RB_BPF_ADD : (rnd() % 2 ? RB_BPF_XCHG : RB_BPF_ADD | RB_BPF_FETCH));
		o[0].off = o[0].dst == 10 ? (int16_t)(-8 * (int)(1 + rnd() % 4)) : an_off();
		return 1;
	}
}

static uint8_t benign_reg(void)
{
	static const uint8_t regs[] = {0, 2, 3, 4, 5};
	return regs[rnd() % 5];
}

/* A jump target inside the function, mostly forward, 0 when none fits. */
static int16_t a_span(unsigned at, unsigned n_total)
{
	int span = (int)(rnd() % 6) + 1;

	if (rnd() % 6 == 0 && at >= 14)
		span = -(int)(rnd() % 5) - 2; /* a loop */
	if ((int)at + 1 + span >= (int)n_total || (int)at + 1 + span < 13)
		span = 0;
	return (int16_t)span;
}

/* One step a verifier should accept (most of the time): they build the
 * state in which the hostile steps are tried. */
static unsigned gen_benign(struct rb_bpf_insn *o, unsigned at, unsigned n_total, bool may_call)
{
	uint8_t r = benign_reg(), q = benign_reg();
	int32_t imm = an_imm();
	uint8_t region = (uint8_t)(R_DATA + rnd() % 3);

	switch (rnd() % 12) {
	case 0: case 1: /* ALU on numbers */
		o[0] = INSN((rnd() % 4 ? RB_BPF_ALU64 : RB_BPF_ALU) | alu_ops[rnd() % sizeof(alu_ops)] |
				    (rnd() % 2 ? RB_BPF_X : RB_BPF_K),
			    r, 0, 0, imm);
		if (o[0].code & RB_BPF_X) {
			o[0].src = q;
			o[0].imm = 0;
		}
		return 1;
	case 2: /* a masked number added to a region pointer, then a load or store */
		o[0] = INSN(RB_BPF_ALU64 | RB_BPF_AND | RB_BPF_K, q, 0, 0, rnd() % 2 ? 0xff8 : 0x7f);
		o[1] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, r, region, 0, 0);
		o[2] = INSN(RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_X, r, q, 0, 0);
		if (rnd() % 2 || region == R_META)
			o[3] = INSN(RB_BPF_LDX | RB_BPF_MEM | sizes[rnd() % 4], q, r, 0, 0);
		else
			o[3] = INSN(RB_BPF_STX | RB_BPF_MEM | sizes[rnd() % 4], r, q, 0, 0);
		return 4;
	case 3: /* a load from a region */
		o[0] = INSN(RB_BPF_LDX | RB_BPF_MEM | sizes[rnd() % 4], r, region, 8 * (int)(rnd() % 16), 0);
		return 1;
	case 4: /* a store of a number to data or scratch */
		o[0] = INSN(RB_BPF_STX | RB_BPF_MEM | sizes[rnd() % 4], (uint8_t)(R_DATA + rnd() % 2), q,
			    8 * (int)(rnd() % 16), 0);
		return 1;
	case 5: /* the stack: spill a register (pointers too), read a slot */
		if (rnd() % 2)
			o[0] = INSN(RB_BPF_STX | RB_BPF_MEM | RB_BPF_DW, 10, rnd() % 3 ? q : (uint8_t)(6 + rnd() % 4),
				    -8 * (int)(1 + rnd() % 8), 0);
		else
			o[0] = INSN(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, r, 10, -8 * (int)(1 + rnd() % 8), 0);
		return 1;
	case 6: case 7: /* a jump on numbers */
		o[0] = INSN((rnd() % 4 ? RB_BPF_JMP : RB_BPF_JMP32) | jmp_ops[rnd() % sizeof(jmp_ops)] |
				    (rnd() % 2 ? RB_BPF_K : RB_BPF_X),
			    r, 0, a_span(at, n_total), imm);
		if (o[0].code & RB_BPF_X) {
			o[0].src = q;
			o[0].imm = 0;
		}
		return 1;
	case 8:
		o[0] = INSN(RB_BPF_ALU64 | RB_BPF_AND | RB_BPF_K, r, 0, 0, (int32_t)((1u << (rnd() % 14)) - 1));
		return 1;
	case 9:
		o[0] = INSN(RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_K, r, 0, 0, rnd() % 2 ? 1 : 8);
		return 1;
	case 10: /* a pointer compared with 0, or with a pointer into its own region */
		o[0] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, r, region, 0, 0);
		o[1] = INSN(RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_K, r, 0, 0, 8 * (int)(rnd() % 64));
		if (rnd() % 2)
			o[2] = INSN(RB_BPF_JMP | (rnd() % 2 ? RB_BPF_JEQ : RB_BPF_JNE) | RB_BPF_K, r, 0,
				    a_span(at + 2, n_total), 0);
		else
			o[2] = INSN(RB_BPF_JMP | jmp_ops[rnd() % 6] | RB_BPF_X, r, region, a_span(at + 2, n_total), 0);
		o[3] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, r, 0, 0, 0);
		return 4;
	default:
		if (rnd() % 3 || !may_call)
			return gen_helper(o);
		o[0] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 1, R_CTX, 0, 0);
		o[1] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 2, 10, 0, 0);
		o[2] = INSN(RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_K, 2, 0, 0, -8 * (int)(1 + rnd() % 4));
		o[3] = INSN(RB_BPF_JMP | RB_BPF_CALL, 0, RB_BPF_CALL_LOCAL, 0, 0x7fff); /* patched */
		return 4;
	}
}

/* A function body of about `want` instructions ending in exit, r0 = a
 * number or whatever a random register holds. */
static unsigned gen_function(struct rb_bpf_insn *o, unsigned base, unsigned want, bool may_call)
{
	unsigned n = prologue(o);

	if (rnd() % 2) /* initialised slots to read back */
		for (int k = 1; k <= 4; k++)
			o[n++] = INSN(RB_BPF_STX | RB_BPF_MEM | RB_BPF_DW, 10, (uint8_t)(2 + rnd() % 4), -8 * k, 0);
	while (n < want)
		n += rnd() % 5 ? gen_benign(&o[n], base + n, base + want + 2, may_call)
			       : gen_hostile(&o[n], base + n, base + want + 2, may_call);
	if (rnd() % 3 == 0) /* a register's value into the guest's scratch */
		o[n++] = INSN(RB_BPF_STX | RB_BPF_MEM | RB_BPF_DW, R_SCRATCH, any_reg(), 8 * (int)(rnd() % 8), 0);
	if (rnd() % 2)
		o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 0, any_reg(), 0, 0);
	else
		o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 0, 0, 0, 0);
	o[n++] = INSN(RB_BPF_JMP | RB_BPF_EXIT, 0, 0, 0, 0);
	return n;
}

static unsigned gen_program(struct rb_bpf_insn *prog, unsigned cap)
{
	unsigned n = gen_function(prog, 0, 14 + (unsigned)(rnd() % 30), true);
	unsigned sub = n;
	bool has_call = false;

	for (unsigned i = 0; i < n; i++)
		has_call |= prog[i].code == (RB_BPF_JMP | RB_BPF_CALL) && prog[i].src == RB_BPF_CALL_LOCAL;
	if (has_call) {
		n += gen_function(prog + n, n, 12 + (unsigned)(rnd() % 12), false);
		for (unsigned i = 0; i < sub; i++)
			if (prog[i].code == (RB_BPF_JMP | RB_BPF_CALL) && prog[i].src == RB_BPF_CALL_LOCAL)
				prog[i].imm = (int32_t)sub - (int32_t)i - 1;
	}
	REQUIRE(n <= cap);
	return n;
}

TEST(random_programs_the_verifier_accepts_are_safe_and_blind)
{
	struct rb_bpf_helpers *h = sd_helpers();
	unsigned accepted_n = 0, tried = 0, failures = 0, crashes = 0, with_helpers = 0, with_calls = 0;
	struct sd_stats st = {0};
	char log[4096], why[512];
	struct timespec t0, t1;

	REQUIRE(h);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int iter = 0; iter < 40000 && failures < 5; iter++) {
		struct rb_bpf_insn prog[160];
		unsigned n = gen_program(prog, 160);
		struct rb_bpf_prog *a = NULL, *b = NULL;
		if (rb_bpf_prog_new(prog, n, h, NULL, &a, log, sizeof(log)))
			continue; /* e.g. a jump into nowhere: not the verifier's business */
		tried++;
		int rc = verify_guarded(a, RB_NDP_PROG_CQ, log, sizeof(log));
		if (rc == -ECANCELED) {
			if (crashes++ < 2) {
				RT_FAIL_AT("random program %d: %s", iter, log);
				dump(prog, n, h);
			}
			rt_cur_failed = 1;
			a = NULL; /* its state is lost with the crash: leak it */
		} else if (rc && getenv("SD_REASONS")) {
			const char *c = strchr(log, ':');
			char line[200];
			snprintf(line, sizeof(line), "%.190s", c ? c + 2 : log);
			line[strcspn(line, "\n")] = 0;
			fprintf(stderr, "REASON %s\n", line);
		} else if (rc == 0) {
			accepted_n++;
			REQUIRE(rb_bpf_prog_new(prog, n, h, NULL, &b, log, sizeof(log)) == 0);
			uint64_t helpers_before = st.helpers;
			bool calls = false;
			for (unsigned i = 0; i < n; i++)
				calls |= prog[i].src == RB_BPF_CALL_LOCAL &&
					 prog[i].code == (RB_BPF_JMP | RB_BPF_CALL);
			for (uint64_t seed = 1; seed <= 6; seed++) {
				if (sd_check(a, b, RB_NDP_PROG_CQ, (uint64_t)iter * 31 + seed, NULL, 0, true,
					     &st, why, sizeof(why))) {
					RT_FAIL_AT("random program %d (seed %" PRIu64 "): %s", iter,
						   (uint64_t)iter * 31 + seed, why);
					dump(prog, n, h);
					failures++;
					break;
				}
			}
			with_helpers += st.helpers > helpers_before;
			with_calls += calls;
		}
		rb_bpf_prog_free(a);
		rb_bpf_prog_free(b);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "    %u random programs verified, %u accepted (%u calling helpers, %u with "
		"local calls), %u crashed the verifier, %.1f s\n", tried, accepted_n, with_helpers,
		with_calls, crashes,
		(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	/* The menu must produce accepted programs of every shape, or this
	 * tests nothing. */
	CHECK(accepted_n > 1000);
	CHECK(with_helpers > 100);
	CHECK(with_calls > 50);
	rb_bpf_helpers_free(h);
}

/* ---- probes: one attack shape each, run on many contents ------------------------- */

/*
 * Each probe sits in a loop over the 64 words of the guest's scratch, x =
 * each word in turn (the contents hold host addresses, their negations and
 * their neighbours, so some x makes a leaky comparison come out differently
 * at other addresses), and sets r0 = 1 when its condition holds.  r6 = ctx,
 * r7 = data, r8 = scratch, r9 = the loop offset, r2 = x.  A probe must be
 * rejected, or be safe and blind.
 */
struct probe {
	const char *name;
	struct rb_bpf_insn insns[6];
	unsigned n;
};

#define MOVX(d, s) INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, d, s, 0, 0)
#define ADDX(d, s) INSN(RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_X, d, s, 0, 0)
#define SUBX(d, s) INSN(RB_BPF_ALU64 | RB_BPF_SUB | RB_BPF_X, d, s, 0, 0)
#define JX(op, d, s, o) INSN(RB_BPF_JMP | (op) | RB_BPF_X, d, s, o, 0)
#define JK(op, d, i, o) INSN(RB_BPF_JMP | (op) | RB_BPF_K, d, 0, o, i)
#define LDX(sz, d, s, o) INSN(RB_BPF_LDX | RB_BPF_MEM | (sz), d, s, o, 0)
#define SET_R0 INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 0, 0, 0, 1)

static const struct probe probes[] = {
	{"data + x == 0", {MOVX(4, 7), ADDX(4, 2), JK(RB_BPF_JNE, 4, 0, 1), SET_R0}, 4},
	{"data - x == 0", {MOVX(4, 7), SUBX(4, 2), JK(RB_BPF_JNE, 4, 0, 1), SET_R0}, 4},
	{"stack + x == 0", {MOVX(4, 10), ADDX(4, 2), JK(RB_BPF_JNE, 4, 0, 1), SET_R0}, 4},
	{"ctx + x == 0", {MOVX(4, 6), ADDX(4, 2), JK(RB_BPF_JNE, 4, 0, 1), SET_R0}, 4},
	{"data + x wraps below data", {MOVX(4, 7), ADDX(4, 2), JX(RB_BPF_JGE, 4, 7, 1), SET_R0}, 4},
	{"data + x signed below data", {MOVX(4, 7), ADDX(4, 2), JX(RB_BPF_JSGE, 4, 7, 1), SET_R0}, 4},
	{"data + x past data_end", {LDX(RB_BPF_DW, 5, 6, 24), MOVX(4, 7), ADDX(4, 2),
				    JX(RB_BPF_JLE, 4, 5, 1), SET_R0}, 5},
	{"meta + x past meta_end", {LDX(RB_BPF_DW, 5, 6, 8), LDX(RB_BPF_DW, 4, 6, 0), ADDX(4, 2),
				    JX(RB_BPF_JLE, 4, 5, 1), SET_R0}, 5},
	{"stack + x below stack", {MOVX(4, 10), ADDX(4, 2), JX(RB_BPF_JLE, 4, 10, 1), SET_R0}, 4},
	{"data + x == data + 8 (x unknown)", {MOVX(4, 7), ADDX(4, 2), MOVX(5, 7),
				    INSN(RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_K, 5, 0, 0, 8),
				    JX(RB_BPF_JNE, 4, 5, 1), SET_R0}, 6},
	{"data vs scratch", {MOVX(4, 7), ADDX(4, 2), JX(RB_BPF_JGT, 4, 8, 1), SET_R0}, 4},
	{"data vs stack", {MOVX(4, 10), ADDX(4, 2), JX(RB_BPF_JGT, 4, 7, 1), SET_R0}, 4},
	{"x vs data", {JX(RB_BPF_JGT, 2, 7, 1), SET_R0}, 2},
	{"data == x", {JX(RB_BPF_JNE, 7, 2, 1), SET_R0}, 2},
	{"data - scratch", {MOVX(4, 7), SUBX(4, 8), JX(RB_BPF_JNE, 4, 2, 1), SET_R0}, 4},
	{"(data + x) - data", {MOVX(4, 7), ADDX(4, 2), SUBX(4, 7), JK(RB_BPF_JNE, 4, 0, 1), SET_R0}, 5},
	{"32-bit data + x == 0", {MOVX(4, 7), ADDX(4, 2), INSN(RB_BPF_JMP32 | RB_BPF_JNE | RB_BPF_K, 4, 0, 1, 0),
				  SET_R0}, 4},
	{"data + x, low byte", {MOVX(4, 7), ADDX(4, 2), INSN(RB_BPF_STX | RB_BPF_MEM | RB_BPF_B, 10, 4, -8, 0),
				LDX(RB_BPF_B, 0, 10, -8)}, 4},
	{"data + x spilled, read as a number", {MOVX(4, 7), ADDX(4, 2),
				INSN(RB_BPF_STX | RB_BPF_MEM | RB_BPF_DW, 10, 4, -8, 0), LDX(RB_BPF_W, 0, 10, -8)}, 4},
};

static unsigned probe_program(struct rb_bpf_insn *o, const struct probe *pr)
{
	unsigned n = 0;

	o[n++] = MOVX(6, 1);
	o[n++] = LDX(RB_BPF_DW, 7, 1, 16);
	o[n++] = LDX(RB_BPF_DW, 8, 1, 32);
	o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 0, 0, 0, 0);
	o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 9, 0, 0, 0);
	unsigned loop = n;
	o[n++] = MOVX(3, 8);
	o[n++] = ADDX(3, 9);
	o[n++] = LDX(RB_BPF_DW, 2, 3, 0);
	for (unsigned i = 0; i < pr->n; i++)
		o[n++] = pr->insns[i];
	o[n++] = INSN(RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_K, 9, 0, 0, 8);
	o[n] = JK(RB_BPF_JLT, 9, 512, (int)loop - (int)n - 1);
	n++;
	o[n++] = INSN(RB_BPF_JMP | RB_BPF_EXIT, 0, 0, 0, 0);
	return n;
}

TEST(attack_shapes_are_rejected_or_blind)
{
	struct rb_bpf_helpers *h = sd_helpers();
	struct sd_stats st = {0};
	char log[4096], why[512];
	unsigned n_accepted = 0;

	REQUIRE(h);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		struct rb_bpf_insn prog[32];
		unsigned n = probe_program(prog, &probes[i]);
		struct rb_bpf_prog *a = NULL, *b = NULL;
		REQUIRE(rb_bpf_prog_new(prog, n, h, NULL, &a, log, sizeof(log)) == 0);
		REQUIRE(rb_bpf_prog_new(prog, n, h, NULL, &b, log, sizeof(log)) == 0);
		int rc = verify_guarded(a, RB_NDP_PROG_CQ, log, sizeof(log));
		if (rc == 0) {
			n_accepted++;
			for (uint64_t seed = 1; seed <= 300; seed++)
				if (sd_check(a, b, RB_NDP_PROG_CQ, seed, NULL, 0, true, &st, why, sizeof(why))) {
					RT_FAIL_AT("'%s' is accepted and (seed %" PRIu64 ") %s", probes[i].name,
						   seed, why);
					dump(prog, n, h);
					break;
				}
		} else if (rc != -EACCES) {
			RT_FAIL_AT("'%s': verifier returned %d: %s", probes[i].name, rc, log);
		}
		rb_bpf_prog_free(a);
		rb_bpf_prog_free(b);
	}
	fprintf(stderr, "    %u of %zu probes accepted\n", n_accepted, sizeof(probes) / sizeof(probes[0]));
	rb_bpf_helpers_free(h);
}

TEST_MAIN()
