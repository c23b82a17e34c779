/* SPDX-License-Identifier: MIT */
/*
 * Differential tests of the x86-64 JIT against the interpreter (the
 * reference): random ALU/jump programs, random memory programs with
 * in- and out-of-bounds accesses, calls, helpers, budgets.  Same r0, same
 * memory, same error class; the JIT may stop a budget up to one block early.
 * Then the unchecked JIT's hardening, one test per layer, each showing
 * what the same program does with RB_BPF_JIT_NO_HARDENING.
 */
#include <rosen/bpf.h>

#include "../../lib/bpf/bpf_internal.h" /* hand-made verifier facts */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define INS(c, d, s, o, i) \
	((struct rb_bpf_insn){.code = (c), .dst = (d), .src = (s), .off = (o), .imm = (i)})

static uint64_t rng = 0x1234567887654321ull;

static uint64_t rnd(void)
{
	return rt_xorshift(&rng);
}

static const uint8_t alu_ops[] = {0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70,
				  0x80, 0x90, 0xa0, 0xb0, 0xc0};

/* A random valid ALU instruction writing r0..r9. */
static struct rb_bpf_insn rand_alu(void)
{
	uint8_t op = alu_ops[rnd() % sizeof(alu_ops)];
	uint8_t cls = rnd() % 2 ? RB_BPF_ALU64 : RB_BPF_ALU;
	bool x = rnd() % 2;
	/* r10 is an address: it differs between the two engines, keep it out. */
	uint8_t d = (uint8_t)(rnd() % 10), s = (uint8_t)(rnd() % 10);
	int32_t imm = (int32_t)(rnd() % 4 == 0 ? rnd() % 70 : rnd());
	int16_t off = 0;

	switch (rnd() % 12) {
	case 0: /* signed div/mod */
		op = rnd() % 2 ? 0x30 : 0x90;
		off = 1;
		break;
	case 1: /* movsx */
		op = 0xb0;
		x = true;
		off = cls == RB_BPF_ALU64 ? (int16_t)(8 << (rnd() % 3)) : (int16_t)(8 << (rnd() % 2));
		break;
	case 2: /* byte swaps */
		return INS((uint8_t)(cls | 0xd0 | (cls == RB_BPF_ALU && rnd() % 2 ? RB_BPF_X : 0)), d, 0, 0,
			   16 << (rnd() % 3));
	case 3: /* division by a small or zero or -1 value */
		imm = (int32_t)(rnd() % 3) - 1;
		break;
	}
	if (op == 0x80)
		return INS((uint8_t)(cls | op), d, 0, 0, 0);
	if (x)
		return INS((uint8_t)(cls | op | RB_BPF_X), d, s, off, 0);
	return INS((uint8_t)(cls | op), d, 0, off, imm);
}

static const uint8_t jmp_ops[] = {0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0};

static int run_both(const struct rb_bpf_insn *code, size_t n, const struct rb_bpf_helpers *h,
		    uint8_t *mem, size_t len, uint64_t budget, struct rb_bpf_result *ri,
		    struct rb_bpf_result *rj, uint8_t *mem_after_interp)
{
	struct rb_bpf_prog *pi, *pj;
	char err[256];
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	if (rb_bpf_prog_new(code, n, h, NULL, &pi, err, sizeof(err))) {
		fprintf(stderr, "    rejected: %s\n", err);
		free(copy);
		return -1;
	}
	REQUIRE(rb_bpf_prog_new(code, n, h, NULL, &pj, err, sizeof(err)) == 0);
	REQUIRE(rb_bpf_jit(pj, RB_BPF_JIT_CHECKED, err, sizeof(err)) == 0);
	REQUIRE(rb_bpf_prog_is_jitted(pj));
	if (len)
		memcpy(copy, mem, len);
	struct rb_bpf_region r = {(uintptr_t)mem, len, true};
	struct rb_bpf_run_opts o = {.args = {(uintptr_t)mem, len}, .regions = &r,
				    .n_regions = len ? 1 : 0, .budget = budget};
	rc = rb_bpf_run(pi, &o, ri);
	if (len) {
		memcpy(mem_after_interp, mem, len);
		memcpy(mem, copy, len);
	}
	int rcj = rb_bpf_run(pj, &o, rj);
	rb_bpf_prog_free(pi);
	rb_bpf_prog_free(pj);
	free(copy);
	return rc == rcj ? 0 : 1;
}

TEST(random_alu_programs_match_the_interpreter)
{
	struct rb_bpf_insn code[64];
	struct rb_bpf_result ri, rj;
	int mismatches = 0;

	for (int t = 0; t < 3000 && mismatches < 5; t++) {
		size_t n = 0;
		for (int r = 0; r < 10; r++) /* seed every register */
			code[n++] = INS(0xb7, (uint8_t)r, 0, 0, (int32_t)rnd());
		for (int i = 0; i < 30; i++) {
			if (rnd() % 6 == 0) { /* a forward conditional jump over 1..3 */
				uint8_t cls = rnd() % 2 ? RB_BPF_JMP : RB_BPF_JMP32;
				uint8_t op = jmp_ops[rnd() % sizeof(jmp_ops)];
				if (rnd() % 2)
					code[n++] = INS((uint8_t)(cls | op | RB_BPF_X), (uint8_t)(rnd() % 10),
							(uint8_t)(rnd() % 10), (int16_t)(1 + rnd() % 3), 0);
				else
					code[n++] = INS((uint8_t)(cls | op), (uint8_t)(rnd() % 10), 0,
							(int16_t)(1 + rnd() % 3), (int32_t)(rnd() % 5 ? rnd() : rnd() % 4));
			} else {
				code[n++] = rand_alu();
			}
		}
		for (int r = 1; r < 10; r++) /* fold every register into r0 */
			code[n++] = INS(0xaf, 0, (uint8_t)r, 0, 0);
		code[n++] = INS(0x95, 0, 0, 0, 0);
		uint8_t after[1];
		if (run_both(code, n, NULL, NULL, 0, 0, &ri, &rj, after)) {
			mismatches++;
			RT_FAIL_AT("program %d: interpreter %s, JIT %s", t, ri.msg, rj.msg);
			continue;
		}
		if (ri.r0 != rj.r0) {
			mismatches++;
			RT_FAIL_AT("program %d: r0 0x%llx vs JIT 0x%llx", t, (unsigned long long)ri.r0,
				   (unsigned long long)rj.r0);
			/* Find the first instruction after which they differ. */
			size_t body = n - 10;
			for (size_t k = 10; k <= body; k++) {
				struct rb_bpf_insn pre[64];
				size_t m = 0;
				memcpy(pre, code, k * sizeof(*pre));
				m = k;
				for (size_t q = 0; q < k; q++) /* drop jumps past the cut */
					if ((pre[q].code & 7) == RB_BPF_JMP || (pre[q].code & 7) == RB_BPF_JMP32)
						if (q + 1 + pre[q].off > k)
							pre[q].off = (int16_t)(k - q - 1);
				for (int r = 1; r < 10; r++)
					pre[m++] = INS(0xaf, 0, (uint8_t)r, 0, 0);
				pre[m++] = INS(0x95, 0, 0, 0, 0);
				struct rb_bpf_result a, b;
				uint8_t af[1];
				run_both(pre, m, NULL, NULL, 0, 0, &a, &b, af);
				if (a.r0 != b.r0) {
					char line[128];
					rb_bpf_disasm_insn(code, n, k - 1, NULL, line, sizeof(line));
					fprintf(stderr, "      first difference after insn %zu: %s (0x%02x off %d imm %d)\n",
						k - 1, line, code[k - 1].code, code[k - 1].off, code[k - 1].imm);
					break;
				}
			}
		}
	}
}

/* Random loads, stores and atomics on r1 (64 bytes of memory, randomised)
 * and r10, mostly in bounds, sometimes just out; fills code[0..64). */
static size_t rand_mem_prog(struct rb_bpf_insn *code, uint8_t *mem)
{
	static const uint8_t sizes[] = {RB_BPF_B, RB_BPF_H, RB_BPF_W, RB_BPF_DW};
	size_t n = 0;

	for (int i = 0; i < 64; i++)
		mem[i] = (uint8_t)rnd();
	for (int r = 2; r < 10; r++)
		code[n++] = INS(0xb7, (uint8_t)r, 0, 0, (int32_t)(rnd() % 1000));
	for (int i = 0; i < 20; i++) {
		uint8_t sz = sizes[rnd() % 4];
		/* Mostly in bounds, sometimes just out (either end), on r1 or r10. */
		bool stack = rnd() % 4 == 0;
		int16_t off = stack ? (int16_t)(-(int)(rnd() % 520) - 1) : (int16_t)(rnd() % 70 - 3);
		uint8_t base = stack ? 10 : 1;
		switch (rnd() % 5) {
		case 0:
			code[n++] = INS((uint8_t)(RB_BPF_LDX | RB_BPF_MEM | sz), (uint8_t)(2 + rnd() % 8), base, off, 0);
			break;
		case 1:
			if (sz != RB_BPF_DW) {
				code[n++] = INS((uint8_t)(RB_BPF_LDX | RB_BPF_MEMSX | sz), (uint8_t)(2 + rnd() % 8), base, off, 0);
				break;
			}
			/* fall through */
		case 2:
			code[n++] = INS((uint8_t)(RB_BPF_STX | RB_BPF_MEM | sz), base, (uint8_t)(2 + rnd() % 8), off, 0);
			break;
		case 3:
			code[n++] = INS((uint8_t)(RB_BPF_ST | RB_BPF_MEM | sz), base, 0, off, (int32_t)rnd());
			break;
		default: {
			static const int32_t aops[] = {0x00, 0x40, 0x50, 0xa0, 0x01, 0x41, 0x51, 0xa1, 0xe1, 0xf1};
			uint8_t asz = rnd() % 2 ? RB_BPF_W : RB_BPF_DW;
			int16_t aoff = (int16_t)((rnd() % 9) * (asz == RB_BPF_DW ? 8 : 4));
			code[n++] = INS((uint8_t)(RB_BPF_STX | RB_BPF_ATOMIC | asz), 1, (uint8_t)(rnd() % 10),
					aoff, aops[rnd() % 10]);
		}
		}
		code[n++] = rand_alu();
		if (code[n - 1].dst == 1)
			code[n - 1].dst = 2; /* keep the base pointer */
	}
	for (int r = 2; r < 10; r++)
		code[n++] = INS(0xaf, 0, (uint8_t)r, 0, 0);
	code[n++] = INS(0x95, 0, 0, 0, 0);
	return n;
}

TEST(random_memory_programs_match_including_faults)
{
	struct rb_bpf_insn code[64];
	struct rb_bpf_result ri, rj;
	uint8_t mem[64], after[64];
	int mismatches = 0;

	for (int t = 0; t < 3000 && mismatches < 5; t++) {
		size_t n = rand_mem_prog(code, mem);
		if (run_both(code, n, NULL, mem, sizeof(mem), 0, &ri, &rj, after) || ri.status != rj.status) {
			mismatches++;
			RT_FAIL_AT("program %d: interpreter [%s] %s, JIT [%s] %s", t,
				   rb_bpf_status_name(ri.status), ri.msg, rb_bpf_status_name(rj.status), rj.msg);
			continue;
		}
		if (ri.status == RB_BPF_OK && ri.r0 != rj.r0) {
			mismatches++;
			RT_FAIL_AT("program %d: r0 differs", t);
		}
		if (ri.status == RB_BPF_E_FAULT && ri.pc != rj.pc) {
			mismatches++;
			RT_FAIL_AT("program %d: fault at insn %u vs JIT %u", t, ri.pc, rj.pc);
		}
		if (memcmp(mem, after, sizeof(mem))) {
			mismatches++;
			RT_FAIL_AT("program %d: memory differs after the run (status %s)", t,
				   rb_bpf_status_name(ri.status));
			if (getenv("JIT_DEBUG")) {
				char line[128];
				for (size_t i = 0; i < n; i++) {
					rb_bpf_disasm_insn(code, n, i, NULL, line, sizeof(line));
					fprintf(stderr, "      %zu: %s\n", i, line);
				}
				for (int i = 0; i < 64; i++)
					if (mem[i] != after[i])
						fprintf(stderr, "      byte %d: interp %02x jit %02x\n", i, after[i], mem[i]);
			}
		}
	}
}

static uint64_t h_add(struct rb_bpf_call *c, uint64_t a, uint64_t b, uint64_t d, uint64_t e, uint64_t f)
{
	(void)c;
	return a * 3 + b * 5 + d * 7 + e * 11 + f * 13;
}

static uint64_t h_stop(struct rb_bpf_call *c, uint64_t a, uint64_t b, uint64_t d, uint64_t e, uint64_t f)
{
	(void)b, (void)d, (void)e, (void)f;
	rb_bpf_call_stop(c, a);
	return 0;
}

static uint64_t h_fail(struct rb_bpf_call *c, uint64_t a, uint64_t b, uint64_t d, uint64_t e, uint64_t f)
{
	(void)a, (void)b, (void)d, (void)e, (void)f;
	rb_bpf_call_fail(c, "refused");
	return 0;
}

TEST(helpers_calls_and_budgets_match)
{
	struct rb_bpf_helpers *h = rb_bpf_helpers_new();
	REQUIRE(h);
	rb_bpf_helpers_register(h, 1, "add", h_add);
	rb_bpf_helpers_register(h, 2, "stop", h_stop);
	rb_bpf_helpers_register(h, 3, "fail", h_fail);
	struct rb_bpf_result ri, rj;
	uint8_t after[1];

	/* helper arguments and r6-r9 preserved across calls */
	struct rb_bpf_insn call[] = {
		INS(0xb7, 1, 0, 0, 1), INS(0xb7, 2, 0, 0, 2), INS(0xb7, 3, 0, 0, 3), INS(0xb7, 4, 0, 0, 4),
		INS(0xb7, 5, 0, 0, 5), INS(0xb7, 6, 0, 0, 60), INS(0xb7, 9, 0, 0, 90), INS(0x85, 0, 0, 0, 1),
		INS(0x0f, 0, 6, 0, 0), INS(0x0f, 0, 9, 0, 0), INS(0x95, 0, 0, 0, 0)};
	REQUIRE(run_both(call, 11, h, NULL, 0, 0, &ri, &rj, after) == 0);
	CHECK_EQ_U64(ri.r0, 3 + 10 + 21 + 44 + 65 + 150);
	CHECK_EQ_U64(rj.r0, ri.r0);

	/* stop, fail, callx unknown */
	struct rb_bpf_insn stop[] = {INS(0xb7, 1, 0, 0, 77), INS(0x85, 0, 0, 0, 2), INS(0xb7, 0, 0, 0, 1),
				     INS(0x95, 0, 0, 0, 0)};
	REQUIRE(run_both(stop, 4, h, NULL, 0, 0, &ri, &rj, after) == 0);
	CHECK_EQ_U64(rj.r0, 77);
	struct rb_bpf_insn fail[] = {INS(0x85, 0, 0, 0, 3), INS(0x95, 0, 0, 0, 0)};
	run_both(fail, 2, h, NULL, 0, 0, &ri, &rj, after);
	CHECK(ri.status == RB_BPF_E_HELPER && rj.status == RB_BPF_E_HELPER);
	CHECK_STR_CONTAINS(rj.msg, "refused");
	struct rb_bpf_insn callx[] = {INS(0xb7, 7, 0, 0, 200), INS(0x8d, 7, 0, 0, 0), INS(0x95, 0, 0, 0, 0)};
	run_both(callx, 3, h, NULL, 0, 0, &ri, &rj, after);
	CHECK(ri.status == RB_BPF_E_HELPER && rj.status == RB_BPF_E_HELPER);
	CHECK_STR_CONTAINS(rj.msg, "unknown helper 200");

	/* local calls: frames, recursion limit */
	struct rb_bpf_insn local[] = {
		INS(0xb7, 6, 0, 0, 6), INS(0x7b, 10, 6, -8, 0), INS(0x85, 0, 1, 0, 4),
		INS(0x79, 1, 10, -8, 0), INS(0x0f, 0, 1, 0, 0), INS(0x0f, 0, 6, 0, 0), INS(0x95, 0, 0, 0, 0),
		INS(0xb7, 6, 0, 0, 1), INS(0x7b, 10, 6, -8, 0), INS(0xb7, 0, 0, 0, 100), INS(0x95, 0, 0, 0, 0)};
	local[2].imm = 4; /* pc 2 -> 7 */
	REQUIRE(run_both(local, 11, h, NULL, 0, 0, &ri, &rj, after) == 0);
	CHECK_EQ_U64(ri.r0, 112);
	CHECK_EQ_U64(rj.r0, 112);
	struct rb_bpf_insn deep[] = {INS(0x85, 0, 1, 0, -1), INS(0x95, 0, 0, 0, 0)};
	run_both(deep, 2, h, NULL, 0, 0, &ri, &rj, after);
	CHECK(ri.status == RB_BPF_E_DEPTH && rj.status == RB_BPF_E_DEPTH);

	/* budget: exact in instructions, the same stopping instruction */
	struct rb_bpf_insn loop[] = {INS(0xb7, 0, 0, 0, 0), INS(0x07, 0, 0, 0, 1), INS(0x55, 0, 0, -2, 1000),
				     INS(0x95, 0, 0, 0, 0)};
	REQUIRE(run_both(loop, 4, h, NULL, 0, 0, &ri, &rj, after) == 0);
	CHECK_EQ_U64(rj.r0, 1000);
	CHECK_EQ_U64(rj.executed, ri.executed);
	CHECK(run_both(loop, 4, h, NULL, 0, 1500, &ri, &rj, after) == 0);
	CHECK(ri.status == RB_BPF_E_BUDGET && rj.status == RB_BPF_E_BUDGET);
	CHECK_EQ_U64(ri.pc, 2); /* 1 + 749 x 2 + 1: the 750th r0 += 1 ran, its jump did not */
	CHECK_EQ_U64(rj.pc, ri.pc);
	CHECK_EQ_U64(rj.executed, 1500);
	struct rb_bpf_insn forever[] = {INS(0x05, 0, 0, -1, 0)};
	run_both(forever, 1, h, NULL, 0, 0, &ri, &rj, after);
	CHECK(rj.status == RB_BPF_E_BUDGET);
	rb_bpf_helpers_free(h);
}

/* ---- the budget is exact ------------------------------------------------------ */

/*
 * A random program with loops: r9 = the 64 bytes of memory, r6 counts the
 * outer loop down; inside, ALU on r0 r3 r4 r5 r7 r8, forward jumps, loads
 * and stores through r9 and r10, helper calls (r1..r5 rewritten after
 * them), lddw, the "if c goto +1; goto back" loop bottom clang emits and,
 * with `local`, a call to a subprogram at the end that runs a loop of its
 * own.  Every access stays in bounds: the unchecked JIT runs it too.
 */
static size_t rand_loop_prog(struct rb_bpf_insn *code, bool local)
{
	static const uint8_t regs[] = {0, 3, 4, 5, 7, 8};
	size_t n = 0, call_at[8];
	unsigned n_calls = 0;

	code[n++] = INS(0xbf, 9, 1, 0, 0);
	code[n++] = INS(0xb7, 6, 0, 0, (int32_t)(2 + rnd() % 6));
	for (unsigned i = 0; i < sizeof(regs); i++)
		code[n++] = INS(0xb7, regs[i], 0, 0, (int32_t)(rnd() % 100));
	for (int k = 1; k <= 4; k++) /* no read of unwritten stack (the JIT without hardening) */
		code[n++] = INS(0x7a, 10, 0, (int16_t)(-8 * k), (int32_t)rnd());
	size_t top = n;
	int body = 4 + (int)(rnd() % 14);
	for (int i = 0; i < body; i++) {
		uint8_t d = regs[rnd() % sizeof(regs)], s = regs[rnd() % sizeof(regs)];
		switch (rnd() % 9) {
		case 0: /* forward conditional jump over 1..2 */
			if (rnd() % 2)
				code[n++] = INS((uint8_t)(RB_BPF_JMP | jmp_ops[rnd() % sizeof(jmp_ops)] | RB_BPF_X), d, s,
						(int16_t)(1 + rnd() % 2), 0);
			else
				code[n++] = INS((uint8_t)(RB_BPF_JMP | jmp_ops[rnd() % sizeof(jmp_ops)]), d, 0,
						(int16_t)(1 + rnd() % 2), (int32_t)(rnd() % 100));
			code[n++] = INS(0x07, d, 0, 0, (int32_t)(rnd() % 7));
			code[n++] = INS(0xaf, d, s, 0, 0);
			break;
		case 1:
			code[n++] = INS(0x7b, 9, s, (int16_t)(8 * (rnd() % 8)), 0);
			break;
		case 2:
			code[n++] = INS(0x79, d, 9, (int16_t)(8 * (rnd() % 8)), 0);
			break;
		case 3:
			code[n++] = INS(0x7b, 10, s, (int16_t)(-8 * (1 + rnd() % 4)), 0);
			code[n++] = INS(0x79, d, 10, (int16_t)(-8 * (1 + rnd() % 4)), 0);
			break;
		case 4: /* helper, then r1..r5 are fresh */
			code[n++] = INS(0x85, 0, 0, 0, 1);
			for (int r = 1; r <= 5; r++)
				code[n++] = INS(0xb7, (uint8_t)r, 0, 0, (int32_t)(rnd() % 50));
			break;
		case 5:
			code[n++] = INS(0x18, d, 0, 0, (int32_t)rnd());
			code[n++] = INS(0, 0, 0, 0, (int32_t)rnd());
			break;
		case 6:
			if (local && n_calls < 8) {
				call_at[n_calls++] = n;
				code[n++] = INS(0x85, 0, 1, 0, 0); /* patched below */
				break;
			}
			/* fall through */
		default: /* add sub mul div or and lsh rsh */
			if (rnd() % 2)
				code[n++] = INS((uint8_t)(RB_BPF_ALU64 | alu_ops[rnd() % 8] | RB_BPF_X), d, s, 0, 0);
			else
				code[n++] = INS((uint8_t)(RB_BPF_ALU64 | alu_ops[rnd() % 8]), d, 0, 0,
						(int32_t)(rnd() % 100));
			break;
		}
	}
	code[n++] = INS(0x07, 6, 0, 0, -1);
	if (rnd() % 2) {
		code[n] = INS(0x55, 6, 0, (int16_t)(top - (n + 1)), 0); /* if r6 != 0 goto top */
		n++;
	} else {
		code[n++] = INS(0x15, 6, 0, 1, 0); /* if r6 == 0 goto +1 */
		code[n] = INS(0x05, 0, 0, (int16_t)(top - (n + 1)), 0);
		n++;
	}
	for (unsigned i = 0; i < sizeof(regs); i++)
		code[n++] = INS(0xaf, 0, regs[i], 0, 0);
	code[n++] = INS(0x95, 0, 0, 0, 0);
	if (n_calls) { /* sub: r0 = sum of 1..(r6 & 7) with a loop of its own */
		size_t sub = n;
		code[n++] = INS(0xbf, 7, 6, 0, 0);
		code[n++] = INS(0x57, 7, 0, 0, 7);
		code[n++] = INS(0xb7, 0, 0, 0, 0);
		code[n++] = INS(0x15, 7, 0, 3, 0);
		code[n++] = INS(0x0f, 0, 7, 0, 0);
		code[n++] = INS(0x07, 7, 0, 0, -1);
		code[n++] = INS(0x05, 0, 0, -4, 0);
		code[n++] = INS(0x95, 0, 0, 0, 0);
		for (unsigned i = 0; i < n_calls; i++)
			code[call_at[i]].imm = (int32_t)(sub - (call_at[i] + 1));
	}
	return n;
}

/* Runs `p` on a fresh copy of `mem0` (always at the same address: r1 is
 * a helper's argument): the result and the memory after.  `how`: 0 the
 * interpreter, 1 rb_bpf_run (the JIT'd code), 2 the interpreter's debug
 * mode, which charges every instruction on its own (the reference). */
static void run_copy(const struct rb_bpf_prog *p, int how, const uint8_t *mem0, uint8_t *after,
		     uint64_t budget, struct rb_bpf_result *r)
{
	static uint8_t mem[64];
	static struct rb_bpf_interp_debug dbg;
	memcpy(mem, mem0, 64);
	struct rb_bpf_region reg = {(uintptr_t)mem, 64, true};
	struct rb_bpf_run_opts o = {.args = {(uintptr_t)mem, 64}, .regions = &reg, .n_regions = 1,
				    .budget = budget};
	if (how == 0) {
		rb_bpf_run_interp(p, &o, r);
	} else if (how == 1) {
		rb_bpf_run(p, &o, r);
	} else {
		dbg.seed = 42;
		dbg.n_args = 5;
		rb_bpf_run_interp_debug(p, &o, &dbg, r);
	}
	memcpy(after, mem, 64);
}

TEST(budget_is_exact_in_the_interpreter_and_every_jit_mode_at_every_boundary)
{
	struct rb_bpf_helpers *h = rb_bpf_helpers_new();
	REQUIRE(h);
	rb_bpf_helpers_register(h, 1, "add", h_add);
	struct rb_bpf_insn code[256];
	uint8_t mem0[64], mi[64], mj[64];
	int bad = 0;
	unsigned long runs = 0;

	for (int t = 0; t < 150 && bad < 5; t++) {
		size_t n = rand_loop_prog(code, t % 3 == 2);
		struct rb_bpf_prog *pi, *pj[3];
		char err[256];
		for (int i = 0; i < 64; i++)
			mem0[i] = (uint8_t)rnd();
		if (rb_bpf_prog_new(code, n, h, NULL, &pi, err, sizeof(err))) {
			RT_FAIL_AT("program %d: %s", t, err);
			break;
		}
		for (int m = 0; m < 3; m++) {
			REQUIRE(rb_bpf_prog_new(code, n, h, NULL, &pj[m], err, sizeof(err)) == 0);
			REQUIRE(rb_bpf_jit_ex(pj[m], m == 0 ? RB_BPF_JIT_CHECKED : RB_BPF_JIT_UNCHECKED,
					      m == 2 ? RB_BPF_JIT_NO_HARDENING : 0, err, sizeof(err)) == 0);
		}
		struct rb_bpf_result ri, rj;
		run_copy(pi, 2, mem0, mi, 0, &ri);
		if (ri.status != RB_BPF_OK) {
			RT_FAIL_AT("program %d: %s", t, ri.msg);
			bad++;
		}
		uint64_t total = ri.executed;
		/* Every budget from 1 to one past what it needs: the
		 * interpreter (superblocks) and the three JIT modes against
		 * the interpreter charging each instruction on its own. */
		for (uint64_t b = 1; b <= total + 1 && bad < 5; b++) {
			run_copy(pi, 2, mem0, mi, b, &ri);
			for (int m = 0; m < 4; m++) {
				run_copy(m == 3 ? pi : pj[m], m == 3 ? 0 : 1, mem0, mj, b, &rj);
				runs++;
				if (ri.status != rj.status || ri.executed != rj.executed ||
				    (ri.status != RB_BPF_OK && ri.pc != rj.pc) ||
				    (ri.status == RB_BPF_OK && ri.r0 != rj.r0) || memcmp(mi, mj, 64)) {
					RT_FAIL_AT("program %d, %s %d, budget %" PRIu64 " of %" PRIu64
						   ": reference %s at insn %u after %" PRIu64 " (%s), engine %s at insn %u after %" PRIu64 " (%s)%s",
						   t, m == 3 ? "interpreter" : "JIT mode", m,
						   b, total, rb_bpf_status_name(ri.status), ri.pc, ri.executed, ri.msg,
						   rb_bpf_status_name(rj.status), rj.pc, rj.executed, rj.msg,
						   memcmp(mi, mj, 64) ? ", memory differs" : "");
					if (getenv("JIT_DEBUG") && !bad) {
						char line[128];
						for (size_t i = 0; i < n; i++) {
							rb_bpf_disasm_insn(code, n, i, h, line, sizeof(line));
							fprintf(stderr, "      %zu: %s\n", i, line);
						}
					}
					bad++;
					break;
				}
			}
		}
		rb_bpf_prog_free(pi);
		for (int m = 0; m < 3; m++)
			rb_bpf_prog_free(pj[m]);
	}
	CHECK(runs > 10000);
	rb_bpf_helpers_free(h);
}

/* A loop whose budget runs out exactly at N instructions: the same stop in
 * every engine, and N + 1 lets it finish. */
TEST(budget_runs_out_at_the_same_instruction_in_a_counted_loop)
{
	/* r0 = 0; r1 = 10; loop: r0 += r1; r1 -= 1; if r1 != 0 goto loop; exit:
	 * 2 + 3 x 10 + 1 = 33 instructions. */
	struct rb_bpf_insn code[] = {INS(0xb7, 0, 0, 0, 0), INS(0xb7, 1, 0, 0, 10), INS(0x0f, 0, 1, 0, 0),
				     INS(0x07, 1, 0, 0, -1), INS(0x55, 1, 0, -3, 0), INS(0x95, 0, 0, 0, 0)};
	struct rb_bpf_prog *p[3];
	char err[256];

	for (int m = 0; m < 3; m++) {
		REQUIRE(rb_bpf_prog_new(code, 6, NULL, NULL, &p[m], err, sizeof(err)) == 0);
		if (m)
			REQUIRE(rb_bpf_jit(p[m], m == 1 ? RB_BPF_JIT_CHECKED : RB_BPF_JIT_UNCHECKED, err,
					   sizeof(err)) == 0);
	}
	for (int m = 0; m < 3; m++) {
		struct rb_bpf_result r;
		struct rb_bpf_run_opts o = {.budget = 33};
		CHECK(rb_bpf_run(p[m], &o, &r) == 0);
		CHECK_EQ_U64(r.r0, 55);
		CHECK_EQ_U64(r.executed, 33);
		o.budget = 32; /* everything but the exit */
		CHECK(rb_bpf_run(p[m], &o, &r) == -E2BIG);
		CHECK(r.status == RB_BPF_E_BUDGET);
		CHECK_EQ_U64(r.pc, 5);
		CHECK_EQ_U64(r.executed, 32);
		o.budget = 30; /* 2 + 9 x 3 + 1: stops before the tenth r1 -= 1 */
		CHECK(rb_bpf_run(p[m], &o, &r) == -E2BIG);
		CHECK_EQ_U64(r.pc, 3);
		CHECK_STR_CONTAINS(r.msg, "insn 3: instruction budget of 30 exhausted");
		rb_bpf_prog_free(p[m]);
	}
}

/* A fault charges exactly the instructions run, the faulting one included,
 * though its superblock was charged whole at its head. */
TEST(a_fault_in_the_middle_of_a_superblock_reports_the_instructions_run)
{
	/* r0 = 0; if r0 != 0 goto +3 (never); r0 = 1; r2 = *(u64 *)(r1 + 64)
	 * (out of bounds); r0 = 2; exit */
	uint64_t mem[8] = {0};
	struct rb_bpf_insn code[] = {INS(0xb7, 0, 0, 0, 0), INS(0x55, 0, 0, 3, 0), INS(0xb7, 0, 0, 0, 1),
				     INS(0x79, 2, 1, 64, 0), INS(0xb7, 0, 0, 0, 2), INS(0x95, 0, 0, 0, 0)};
	struct rb_bpf_region reg = {(uintptr_t)mem, sizeof(mem), true};
	struct rb_bpf_run_opts o = {.args = {(uintptr_t)mem}, .regions = &reg, .n_regions = 1};
	struct rb_bpf_result ri, rj;
	struct rb_bpf_prog *pi, *pj;
	char err[256];

	REQUIRE(rb_bpf_prog_new(code, 6, NULL, NULL, &pi, err, sizeof(err)) == 0);
	REQUIRE(rb_bpf_prog_new(code, 6, NULL, NULL, &pj, err, sizeof(err)) == 0);
	REQUIRE(rb_bpf_jit(pj, RB_BPF_JIT_CHECKED, err, sizeof(err)) == 0);
	CHECK(rb_bpf_run(pi, &o, &ri) == -EFAULT);
	CHECK(rb_bpf_run(pj, &o, &rj) == -EFAULT);
	CHECK_EQ_U64(ri.pc, 3);
	CHECK_EQ_U64(rj.pc, 3);
	CHECK_EQ_U64(ri.executed, 4);
	CHECK_EQ_U64(rj.executed, 4);
	rb_bpf_prog_free(pi);
	rb_bpf_prog_free(pj);
}

/* "d = s; d += x" is one lea in the JIT: every register as d, s and x
 * (r10 as s, taken back out, and r7/r13 as a base need their own
 * encodings), checked and unchecked, against the interpreter. */
TEST(mov_then_add_as_one_lea_matches_for_every_register)
{
	struct rb_bpf_insn code[32];
	int bad = 0;

	for (uint8_t d = 0; d <= 9 && bad < 5; d++)
		for (uint8_t s = 0; s <= 10; s++)
			for (uint8_t x = 0; x <= 9; x++) {
				if (x == d)
					continue;
				size_t n = 0;
				for (uint8_t r = 0; r <= 9; r++)
					code[n++] = INS(0xb7, r, 0, 0, (int32_t)(0x1000 * (r + 1) + r));
				code[n++] = INS(0xbf, d, s, 0, 0);
				code[n++] = INS(0x0f, d, x, 0, 0);
				if (s == 10) /* the stack address differs between engines */
					code[n++] = INS(0x1f, d, 10, 0, 0);
				for (uint8_t r = 1; r <= 9; r++)
					code[n++] = INS(0x27, 0, 0, 0, 3), code[n++] = INS(0x0f, 0, r, 0, 0);
				code[n++] = INS(0x95, 0, 0, 0, 0);
				struct rb_bpf_prog *p[3];
				struct rb_bpf_result r[3];
				char err[256];
				for (int m = 0; m < 3; m++) {
					REQUIRE(rb_bpf_prog_new(code, n, NULL, NULL, &p[m], err, sizeof(err)) == 0);
					if (m)
						REQUIRE(rb_bpf_jit(p[m], m == 1 ? RB_BPF_JIT_CHECKED : RB_BPF_JIT_UNCHECKED,
								   err, sizeof(err)) == 0);
					struct rb_bpf_run_opts o = {0};
					rb_bpf_run(p[m], &o, &r[m]);
					rb_bpf_prog_free(p[m]);
				}
				for (int m = 1; m < 3; m++)
					if (r[m].status != RB_BPF_OK || r[m].r0 != r[0].r0 || r[m].executed != r[0].executed) {
						RT_FAIL_AT("r%u = r%u; r%u += r%u: JIT mode %d gave 0x%llx (%s), interpreter 0x%llx",
							   d, s, d, x, m, (unsigned long long)r[m].r0, r[m].msg,
							   (unsigned long long)r[0].r0);
						bad++;
					}
			}
}

TEST(unchecked_jit_runs_verified_style_code)
{
	/* Sum 8 u64 of memory: unchecked mode (no per-access checks). */
	uint64_t mem[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct rb_bpf_insn code[] = {
		INS(0xb7, 0, 0, 0, 0), INS(0xb7, 2, 0, 0, 0),
		INS(0x79, 3, 1, 0, 0), INS(0x0f, 0, 3, 0, 0), INS(0x07, 1, 0, 0, 8), INS(0x07, 2, 0, 0, 1),
		INS(0xa5, 2, 0, -5, 8), INS(0x95, 0, 0, 0, 0)};
	struct rb_bpf_prog *p;
	char err[256];
	REQUIRE(rb_bpf_prog_new(code, 8, NULL, NULL, &p, err, sizeof(err)) == 0);
	REQUIRE(rb_bpf_jit(p, RB_BPF_JIT_UNCHECKED, err, sizeof(err)) == 0);
	struct rb_bpf_run_opts o = {.args = {(uintptr_t)mem}};
	struct rb_bpf_result r;
	CHECK(rb_bpf_run(p, &o, &r) == 0);
	CHECK_EQ_U64(r.r0, 36);
	/* The interpreter stays available as the reference. */
	struct rb_bpf_region reg = {(uintptr_t)mem, sizeof(mem), false};
	o.regions = &reg;
	o.n_regions = 1;
	uint64_t executed_jit = 0;
	o.regions = NULL;
	o.n_regions = 0;
	CHECK(rb_bpf_run(p, &o, &r) == 0);
	executed_jit = r.executed;
	o.regions = &reg;
	o.n_regions = 1;
	CHECK(rb_bpf_run_interp(p, &o, &r) == 0);
	CHECK_EQ_U64(r.r0, 36);
	/* A finished run is charged exactly what the interpreter counts. */
	CHECK_EQ_U64(executed_jit, r.executed);
	rb_bpf_prog_free(p);
}

TEST(unchecked_jit_budget_stops_an_endless_loop)
{
	/* r0 = 0; loop: r0 += 1; goto loop (the budget lives in a register
	 * in lean frames: it must still stop the program and be reported). */
	struct rb_bpf_insn code[] = {INS(0xb7, 0, 0, 0, 0), INS(0x07, 0, 0, 0, 1), INS(0x05, 0, 0, -2, 0),
				     INS(0x95, 0, 0, 0, 0)};
	struct rb_bpf_prog *p;
	char err[256];
	REQUIRE(rb_bpf_prog_new(code, 4, NULL, NULL, &p, err, sizeof(err)) == 0);
	REQUIRE(rb_bpf_jit(p, RB_BPF_JIT_UNCHECKED, err, sizeof(err)) == 0);
	struct rb_bpf_run_opts o = {.budget = 10001};
	struct rb_bpf_result r;
	CHECK(rb_bpf_run(p, &o, &r) == -E2BIG);
	CHECK(r.status == RB_BPF_E_BUDGET);
	CHECK_EQ_U64(r.executed, 10001);
	CHECK(r.pc == 1);
	/* And runs again from a full budget. */
	CHECK(rb_bpf_run(p, &o, &r) == -E2BIG);
	CHECK(r.status == RB_BPF_E_BUDGET);
	rb_bpf_prog_free(p);
}

/* ---- hardening of the unchecked JIT ------------------------------------------- */

#define JUNK 0x4a554e4b4a554e4bull /* "JUNKJUNK" */

/*
 * A caller whose callee-saved registers hold junk (as a daemon's do) and a
 * helper that leaves junk in every argument register: what the hardening
 * must keep from the program.  x86-64 SysV only, like the JIT.
 */
int rt_run_with_junk(const struct rb_bpf_prog *p, const struct rb_bpf_run_opts *o,
		     struct rb_bpf_result *r);
uint64_t rt_helper_junk(struct rb_bpf_call *c, uint64_t a, uint64_t b, uint64_t d, uint64_t e,
			uint64_t f);
__asm__(".pushsection .text\n"
	".type rt_run_with_junk, @function\n"
	"rt_run_with_junk:\n"
	"	push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
	"	movabs $0x4a554e4b4a554e4b, %rax\n"
	"	mov %rax, %rbx\n mov %rax, %r12\n mov %rax, %r13\n mov %rax, %r14\n mov %rax, %r15\n"
	"	call rb_bpf_run@PLT\n"
	"	pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n"
	"	ret\n"
	".size rt_run_with_junk, .-rt_run_with_junk\n"
	".type rt_helper_junk, @function\n"
	"rt_helper_junk:\n"
	"	movabs $0x4a554e4b4a554e4b, %rdi\n"
	"	mov %rdi, %rsi\n mov %rdi, %rdx\n mov %rdi, %rcx\n mov %rdi, %r8\n mov %rdi, %r9\n"
	"	mov %rdi, %r10\n mov %rdi, %r11\n"
	"	xor %eax, %eax\n"
	"	ret\n"
	".size rt_helper_junk, .-rt_helper_junk\n"
	".popsection\n");

/* Every instruction seen, pc 0 an entry with `depth` bytes of stack. */
static struct rb_bpf_fact *facts_seen(size_t n, uint16_t depth)
{
	struct rb_bpf_fact *f = calloc(n, sizeof(*f));
	if (!f)
		return NULL;
	for (size_t i = 0; i < n; i++)
		f[i].flags = RB_FACT_SEEN;
	f[0].flags |= RB_FACT_FN_ENTRY;
	f[0].stack_depth = depth;
	return f;
}

/* Loads raw instructions and compiles them unchecked with `flags`; facts
 * (n entries, or NULL) become the program's, as if the verifier had run. */
static struct rb_bpf_prog *jit_unchecked(const struct rb_bpf_insn *code, size_t n,
					 const struct rb_bpf_helpers *h, const struct rb_bpf_fact *facts,
					 unsigned flags)
{
	struct rb_bpf_prog *p;
	char err[256];

	if (rb_bpf_prog_new(code, n, h, NULL, &p, err, sizeof(err))) {
		RT_FAIL_AT("rejected: %s", err);
		return NULL;
	}
	if (facts) {
		p->facts = malloc(n * sizeof(*facts));
		if (p->facts)
			memcpy(p->facts, facts, n * sizeof(*facts));
	}
	if (rb_bpf_jit_ex(p, RB_BPF_JIT_UNCHECKED, flags, err, sizeof(err))) {
		RT_FAIL_AT("JIT: %s", err);
		rb_bpf_prog_free(p);
		return NULL;
	}
	return p;
}

/* r0 of one run (junk in the caller's registers), or ~0 on a failure. */
static uint64_t run_r0(const struct rb_bpf_prog *p, uint64_t r1, struct rb_bpf_result *res)
{
	struct rb_bpf_run_opts o = {.args = {r1}};
	struct rb_bpf_result local;

	if (!res)
		res = &local;
	if (!p || rt_run_with_junk(p, &o, res))
		return ~0ull;
	return res->r0;
}

TEST(hardening_unwritten_registers_read_zero_not_host_values)
{
	/* r0 = r0 | r2 | ... | r9, none of them written (raw program, no
	 * verifier): each would otherwise be whatever the host left there. */
	struct rb_bpf_insn code[16];
	size_t n = 0;
	for (int r = 2; r < 10; r++)
		code[n++] = INS(0x4f, 0, (uint8_t)r, 0, 0);
	code[n++] = INS(0x95, 0, 0, 0, 0);
	struct rb_bpf_prog *p = jit_unchecked(code, n, NULL, NULL, 0);
	struct rb_bpf_prog *raw = jit_unchecked(code, n, NULL, NULL, RB_BPF_JIT_NO_HARDENING);
	CHECK_EQ_U64(run_r0(p, 0, NULL), 0);
	/* r2..r5 are the caller's arguments: 0 unless it passes some. */
	struct rb_bpf_run_opts o = {.args = {0, 0x10, 0x200, 0x3000, 0x40000}};
	struct rb_bpf_result r;
	CHECK(p && rt_run_with_junk(p, &o, &r) == 0);
	CHECK_EQ_U64(r.r0, 0x43210);
	/* Unhardened, the junk of the caller's registers shows. */
	uint64_t leak = run_r0(raw, 0, NULL);
	fprintf(stderr, "    without hardening: r0 = 0x%" PRIx64 "\n", leak);
	CHECK(leak != 0);
	rb_bpf_prog_free(p);
	rb_bpf_prog_free(raw);
}

TEST(hardening_argument_registers_read_zero_after_a_helper)
{
	struct rb_bpf_helpers *h = rb_bpf_helpers_new();
	REQUIRE(h);
	rb_bpf_helpers_register(h, 1, "junk", rt_helper_junk);
	/* r1..r5 = 1..5; call junk; r0 = r1 | ... | r5 (all dead after a call) */
	struct rb_bpf_insn code[] = {
		INS(0xb7, 1, 0, 0, 1), INS(0xb7, 2, 0, 0, 2), INS(0xb7, 3, 0, 0, 3), INS(0xb7, 4, 0, 0, 4),
		INS(0xb7, 5, 0, 0, 5), INS(0x85, 0, 0, 0, 1), INS(0xbf, 0, 1, 0, 0), INS(0x4f, 0, 2, 0, 0),
		INS(0x4f, 0, 3, 0, 0), INS(0x4f, 0, 4, 0, 0), INS(0x4f, 0, 5, 0, 0), INS(0x95, 0, 0, 0, 0)};
	size_t n = sizeof(code) / sizeof(code[0]);
	struct rb_bpf_prog *p = jit_unchecked(code, n, h, NULL, 0);
	struct rb_bpf_prog *raw = jit_unchecked(code, n, h, NULL, RB_BPF_JIT_NO_HARDENING);
	CHECK_EQ_U64(run_r0(p, 0, NULL), 0);
	CHECK_EQ_U64(run_r0(raw, 0, NULL), JUNK);
	/* Each register alone, so none is missed by the OR. */
	for (int r = 1; r <= 5; r++) {
		struct rb_bpf_insn one[] = {INS(0x85, 0, 0, 0, 1), INS(0xbf, 0, (uint8_t)r, 0, 0),
					    INS(0x95, 0, 0, 0, 0)};
		struct rb_bpf_prog *q = jit_unchecked(one, 3, h, NULL, 0);
		CHECK_EQ_U64(run_r0(q, 0, NULL), 0);
		rb_bpf_prog_free(q);
	}
	rb_bpf_prog_free(p);
	rb_bpf_prog_free(raw);
	rb_bpf_helpers_free(h);
}

/* if r1 != 0: fill the whole frame with 0x55..; else r0 = OR of the top
 * `slots` qwords (which this run never wrote). */
static size_t stack_reader(struct rb_bpf_insn *code, unsigned slots)
{
	size_t n = 0;
	code[n++] = INS(0x15, 1, 0, 0, 0); /* if r1 == 0 goto read (patched) */
	code[n++] = INS(0x18, 2, 0, 0, 0x55555555);
	code[n++] = INS(0, 0, 0, 0, 0x55555555);
	for (int k = 1; k <= 64; k++)
		code[n++] = INS(0x7b, 10, 2, (int16_t)(-8 * k), 0);
	code[0].off = (int16_t)(n + 1); /* past the writes, r0 = 0 and exit */
	code[n++] = INS(0xb7, 0, 0, 0, 0);
	code[n++] = INS(0x95, 0, 0, 0, 0);
	code[n++] = INS(0xb7, 0, 0, 0, 0);
	for (unsigned k = 1; k <= slots; k++) {
		code[n++] = INS(0x79, 3, 10, (int16_t)(-8 * (int)k), 0);
		code[n++] = INS(0x4f, 0, 3, 0, 0);
	}
	code[n++] = INS(0x95, 0, 0, 0, 0);
	return n;
}

TEST(hardening_stack_is_zero_at_entry_after_an_earlier_run_wrote_it)
{
	/* Without facts the whole frame; with facts as deep as they say
	 * (each zeroing sequence: stores, rep stos). */
	static const uint16_t depths[] = {0, 8, 64, 128, 136, 256, 512};
	struct rb_bpf_insn code[256];

	for (unsigned i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		unsigned depth = depths[i] ? depths[i] : 512;
		size_t n = stack_reader(code, depth / 8);
		struct rb_bpf_fact *f = depths[i] ? facts_seen(n, depths[i]) : NULL;
		struct rb_bpf_prog *p = jit_unchecked(code, n, NULL, f, 0);
		struct rb_bpf_prog *raw = jit_unchecked(code, n, NULL, f, RB_BPF_JIT_NO_HARDENING);
		/* The same call chain runs both, so the frame is at the same
		 * address: unhardened, the second run reads the first's bytes
		 * (or, under ASan, what the host wrote over them since). */
		CHECK_EQ_U64(run_r0(p, 1, NULL), 0);
		uint64_t got = run_r0(p, 0, NULL);
		if (got != 0)
			RT_FAIL_AT("depth %u: read 0x%" PRIx64 " left by the previous run", depth, got);
		run_r0(raw, 1, NULL);
		CHECK(run_r0(raw, 0, NULL) != 0);
		rb_bpf_prog_free(p);
		rb_bpf_prog_free(raw);
		free(f);
	}
}

TEST(hardening_stack_is_zero_at_a_local_call)
{
	/* main: call f(1) (fills f's frame); call f(0) (reads it: the same
	 * addresses); r0 = what the second read. */
	static const uint16_t depths[] = {0, 64, 256, 512};
	struct rb_bpf_insn code[256];

	for (unsigned i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		unsigned depth = depths[i] ? depths[i] : 512;
		size_t n = 0;
		code[n++] = INS(0xb7, 1, 0, 0, 1);
		code[n++] = INS(0x85, 0, 1, 0, 3);
		code[n++] = INS(0xb7, 1, 0, 0, 0);
		code[n++] = INS(0x85, 0, 1, 0, 1);
		code[n++] = INS(0x95, 0, 0, 0, 0);
		n += stack_reader(code + n, depth / 8);
		struct rb_bpf_fact *f = NULL;
		if (depths[i]) {
			f = facts_seen(n, 8);
			REQUIRE(f);
			f[5].flags |= RB_FACT_FN_ENTRY;
			f[5].stack_depth = depths[i];
		}
		struct rb_bpf_prog *p = jit_unchecked(code, n, NULL, f, 0);
		struct rb_bpf_prog *raw = jit_unchecked(code, n, NULL, f, RB_BPF_JIT_NO_HARDENING);
		uint64_t got = run_r0(p, 0, NULL);
		if (got != 0)
			RT_FAIL_AT("depth %u: the callee read 0x%" PRIx64 " left by the previous call", depth, got);
		CHECK_EQ_U64(run_r0(raw, 0, NULL), 0x5555555555555555ull);
		rb_bpf_prog_free(p);
		rb_bpf_prog_free(raw);
		free(f);
	}
}

/* Runs p with r1 = mem: 0xaaaa.. (what it read), or the fault. */
static bool faults_out_of_range(const struct rb_bpf_prog *p, uint64_t *mem)
{
	struct rb_bpf_result res;
	uint64_t r0 = run_r0(p, (uintptr_t)mem, &res);
	(void)r0;
	return res.status == RB_BPF_E_FAULT && strstr(res.msg, "outside the range the verifier proved");
}

TEST(hardening_pointer_offsets_stay_in_the_proven_range)
{
	/* mem: [0] = the offset to add, [1] = 0xaaaa (in the proven range),
	 * at 1 MiB: 0xbbbb (where an unchecked offset lands). */
	size_t len = (1u << 20) + 64;
	uint64_t *mem = calloc(1, len);
	REQUIRE(mem);
	mem[1] = 0xaaaa;
	mem[(1u << 20) / 8] = 0xbbbb;
	const struct {
		const char *what;
		struct rb_bpf_insn code[5];
		uint8_t flags;
		int64_t lo, hi, value, inside;
	} cases[] = {
		{"ptr += num", {INS(0x79, 2, 1, 0, 0), INS(0x0f, 1, 2, 0, 0), INS(0x79, 0, 1, 0, 0),
				INS(0x95, 0, 0, 0, 0)}, 0, 0, 8, 1 << 20, 8},
		{"num += ptr", {INS(0x79, 2, 1, 0, 0), INS(0x0f, 2, 1, 0, 0), INS(0x79, 0, 2, 0, 0),
				INS(0x95, 0, 0, 0, 0)}, RB_FACT_NUM_IS_DST, 0, 8, 1 << 20, 8},
		{"ptr -= num", {INS(0x79, 2, 1, 0, 0), INS(0x1f, 1, 2, 0, 0), INS(0x79, 0, 1, 0, 0),
				INS(0x95, 0, 0, 0, 0)}, 0, -(1 << 19), -8, -(1 << 20), -8},
		{"num -= ptr", {INS(0x79, 2, 1, 0, 0), INS(0x87, 1, 0, 0, 0), INS(0x1f, 2, 1, 0, 0),
				INS(0x79, 0, 2, 0, 0), INS(0x95, 0, 0, 0, 0)},
		 RB_FACT_NUM_IS_DST, 0, 8, 1 << 20, 8},
		/* bounds that need 64-bit immediates */
		{"ptr += num, wide", {INS(0x79, 2, 1, 0, 0), INS(0x0f, 1, 2, 0, 0), INS(0x79, 0, 1, 0, 0),
				      INS(0x95, 0, 0, 0, 0)}, 0, -(1ll << 40), 8, 1ll << 41, 8},
		{"num += ptr, wide", {INS(0x79, 2, 1, 0, 0), INS(0x0f, 2, 1, 0, 0), INS(0x79, 0, 2, 0, 0),
				      INS(0x95, 0, 0, 0, 0)}, RB_FACT_NUM_IS_DST, -(1ll << 40), 8, 1 << 20, 8},
		{"ptr -= num, wide", {INS(0x79, 2, 1, 0, 0), INS(0x1f, 1, 2, 0, 0), INS(0x79, 0, 1, 0, 0),
				      INS(0x95, 0, 0, 0, 0)}, 0, -(1ll << 40), -8, 1ll << 41, -8},
		{"ptr += num, lo = INT64_MIN", {INS(0x79, 2, 1, 0, 0), INS(0x0f, 1, 2, 0, 0),
						INS(0x79, 0, 1, 0, 0), INS(0x95, 0, 0, 0, 0)},
		 0, INT64_MIN, 8, 1 << 20, 8},
		/* r3 = r1; r3 += r2: one lea after the check */
		{"p = ptr; p += num", {INS(0x79, 2, 1, 0, 0), INS(0xbf, 3, 1, 0, 0), INS(0x0f, 3, 2, 0, 0),
				       INS(0x79, 0, 3, 0, 0), INS(0x95, 0, 0, 0, 0)}, 0, 0, 8, 1 << 20, 8},
		{"p = ptr; p += num, lo > 0", {INS(0x79, 2, 1, 0, 0), INS(0xbf, 3, 1, 0, 0),
					       INS(0x0f, 3, 2, 0, 0), INS(0x79, 0, 3, 0, 0),
					       INS(0x95, 0, 0, 0, 0)}, 0, 8, 16, 1 << 20, 8},
		{"p = ptr; p += num, below lo", {INS(0x79, 2, 1, 0, 0), INS(0xbf, 3, 1, 0, 0),
						 INS(0x0f, 3, 2, 0, 0), INS(0x79, 0, 3, 0, 0),
						 INS(0x95, 0, 0, 0, 0)}, 0, 8, 16, 0, 8},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* num -= ptr is r1 = -r1; r2 -= r1 (the number minus -mem) */
		size_t n = cases[i].code[4].code ? 5 : 4, at = n == 5 ? 2 : 1;
		struct rb_bpf_fact *f = facts_seen(n, 0);
		REQUIRE(f);
		f[at].flags |= RB_FACT_PTR_ARITH | cases[i].flags;
		f[at].lo = cases[i].lo;
		f[at].hi = cases[i].hi;
		struct rb_bpf_prog *p = jit_unchecked(cases[i].code, n, NULL, f, 0);
		mem[0] = (uint64_t)cases[i].inside;
		uint64_t got = run_r0(p, (uintptr_t)mem, NULL);
		if (got != 0xaaaa)
			RT_FAIL_AT("%s: read 0x%" PRIx64 ", not the in-range 0xaaaa", cases[i].what, got);
		mem[0] = (uint64_t)cases[i].value;
		if (!faults_out_of_range(p, mem))
			RT_FAIL_AT("%s: a number outside the proven range did not stop the program",
				   cases[i].what);
		rb_bpf_prog_free(p);
		/* Unhardened the offset goes where the value says (only run
		 * where that is inside mem). */
		if (cases[i].value == 1 << 20) {
			p = jit_unchecked(cases[i].code, n, NULL, f, RB_BPF_JIT_NO_HARDENING);
			CHECK_EQ_U64(run_r0(p, (uintptr_t)mem, NULL), 0xbbbb);
			rb_bpf_prog_free(p);
		}
		free(f);
	}
	/* Values inside the range (both ends) pass; outside it, on either
	 * side, the program stops. */
	struct rb_bpf_fact *f = facts_seen(4, 0);
	REQUIRE(f);
	f[1].flags |= RB_FACT_PTR_ARITH;
	f[1].lo = 8;
	f[1].hi = 1 << 20;
	struct rb_bpf_prog *p = jit_unchecked(cases[0].code, 4, NULL, f, 0);
	static const struct {
		int64_t value;
		uint64_t want; /* 0: a fault */
	} edge[] = {{8, 0xaaaa}, {1 << 20, 0xbbbb}, {(1 << 20) + 8, 0}, {0, 0},
		    {7, 0}, {INT64_MIN, 0}, {INT64_MAX, 0}, {-1, 0}};
	for (unsigned i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
		mem[0] = (uint64_t)edge[i].value;
		if (edge[i].want)
			CHECK_EQ_U64(run_r0(p, (uintptr_t)mem, NULL), edge[i].want);
		else if (!faults_out_of_range(p, mem))
			RT_FAIL_AT("value %" PRId64 " outside [8, 1 MiB] did not stop the program", edge[i].value);
	}
	rb_bpf_prog_free(p);
	/* Proven constant and proven range at once: the constant, in range. */
	f[1].flags |= RB_FACT_SRC_CONST;
	f[1].k = 8;
	mem[0] = 1 << 20;
	p = jit_unchecked(cases[0].code, 4, NULL, f, 0);
	CHECK_EQ_U64(run_r0(p, (uintptr_t)mem, NULL), 0xaaaa);
	rb_bpf_prog_free(p);
	free(f);
	free(mem);
}

/* lddw r0, a; lddw r2, src; <insn> (r0 op r2, or a jump over r0 = 1 to
 * r0 = 2); exit. */
static size_t const_prog(struct rb_bpf_insn *code, struct rb_bpf_insn insn, uint64_t a, uint64_t src)
{
	size_t n = 0;
	code[n++] = INS(0x18, 0, 0, 0, (int32_t)a);
	code[n++] = INS(0, 0, 0, 0, (int32_t)(a >> 32));
	code[n++] = INS(0x18, 2, 0, 0, (int32_t)src);
	code[n++] = INS(0, 0, 0, 0, (int32_t)(src >> 32));
	insn.dst = 0;
	insn.src = 2;
	code[n++] = insn;
	if ((insn.code & 7) == RB_BPF_JMP || (insn.code & 7) == RB_BPF_JMP32) {
		code[n - 1].off = 2;
		code[n++] = INS(0xb7, 0, 0, 0, 1);
		code[n++] = INS(0x95, 0, 0, 0, 0);
		code[n++] = INS(0xb7, 0, 0, 0, 2);
	}
	code[n++] = INS(0x95, 0, 0, 0, 0);
	return n;
}

TEST(hardening_proven_constant_sources_are_used_whatever_the_register_holds)
{
	static const uint64_t ks[] = {0, 1, 2, 7, 31, 32, 63, 64, 0x7f, 0x80, 0x7fff, 0x8000,
				      0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull,
				      0x123456789abcdefull, 0x8000000000000000ull, ~0ull, ~0ull - 1,
				      0xffffffff80000000ull};
	struct rb_bpf_insn ops[64];
	size_t nops = 0;
	for (int cls = 0; cls < 2; cls++) {
		uint8_t c = cls ? RB_BPF_ALU64 : RB_BPF_ALU;
		for (unsigned i = 0; i < sizeof(alu_ops); i++)
			if (alu_ops[i] != 0x80)
				ops[nops++] = INS((uint8_t)(c | alu_ops[i] | RB_BPF_X), 0, 2, 0, 0);
		ops[nops++] = INS((uint8_t)(c | 0x30 | RB_BPF_X), 0, 2, 1, 0); /* sdiv */
		ops[nops++] = INS((uint8_t)(c | 0x90 | RB_BPF_X), 0, 2, 1, 0); /* smod */
		ops[nops++] = INS((uint8_t)(c | 0xb0 | RB_BPF_X), 0, 2, 8, 0); /* movsx */
		ops[nops++] = INS((uint8_t)(c | 0xb0 | RB_BPF_X), 0, 2, 16, 0);
		uint8_t j = cls ? RB_BPF_JMP : RB_BPF_JMP32;
		for (unsigned i = 0; i < sizeof(jmp_ops); i++)
			ops[nops++] = INS((uint8_t)(j | jmp_ops[i] | RB_BPF_X), 0, 2, 0, 0);
	}
	ops[nops++] = INS(0xbf, 0, 2, 32, 0); /* movsx64 from 32 */
	struct rb_bpf_insn code[16];
	int bad = 0;

	for (size_t o = 0; o < nops && bad < 5; o++) {
		for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]) && bad < 5; ki++) {
			uint64_t k = ks[ki], a = rnd() % 3 ? rnd() : ks[rnd() % (sizeof(ks) / sizeof(ks[0]))];
			/* Reference: the interpreter with src = k. */
			size_t n = const_prog(code, ops[o], a, k);
			struct rb_bpf_prog *ref;
			char err[256];
			REQUIRE(rb_bpf_prog_new(code, n, NULL, NULL, &ref, err, sizeof(err)) == 0);
			struct rb_bpf_run_opts opts = {0};
			struct rb_bpf_result want;
			REQUIRE(rb_bpf_run_interp(ref, &opts, &want) == 0);
			rb_bpf_prog_free(ref);
			/* The JIT told src = k, with src really k and with src
			 * something else: the same as the reference. */
			struct rb_bpf_fact *f = facts_seen(n, 0);
			REQUIRE(f);
			f[4].flags |= RB_FACT_SRC_CONST;
			f[4].k = k;
			for (int lie = 0; lie < 2; lie++) {
				uint64_t other = lie ? k ^ (rnd() | 1) : k;
				n = const_prog(code, ops[o], a, other);
				struct rb_bpf_prog *p = jit_unchecked(code, n, NULL, f, 0);
				uint64_t got = run_r0(p, 0, NULL);
				rb_bpf_prog_free(p);
				if (got != want.r0) {
					bad++;
					RT_FAIL_AT("op 0x%02x off %d, a 0x%" PRIx64 ", k 0x%" PRIx64
						   " (register 0x%" PRIx64 "): r0 0x%" PRIx64 ", want 0x%" PRIx64,
						   ops[o].code, ops[o].off, a, k, other, got, want.r0);
				}
			}
			free(f);
		}
	}
	/* And the fact really is what is used: unhardened, a register that
	 * differs from k changes the result. */
	size_t n = const_prog(code, INS(0x0f, 0, 2, 0, 0), 5, 1000);
	struct rb_bpf_fact *f = facts_seen(n, 0);
	REQUIRE(f);
	f[4].flags |= RB_FACT_SRC_CONST;
	f[4].k = 3;
	struct rb_bpf_prog *p = jit_unchecked(code, n, NULL, f, 0);
	CHECK_EQ_U64(run_r0(p, 0, NULL), 8);
	rb_bpf_prog_free(p);
	p = jit_unchecked(code, n, NULL, f, RB_BPF_JIT_NO_HARDENING);
	CHECK_EQ_U64(run_r0(p, 0, NULL), 1005);
	rb_bpf_prog_free(p);
	free(f);
}

TEST(hardening_an_instruction_the_verifier_never_reached_faults)
{
	/* r0 = 1; if r1 != 0 goto +1; exit; r0 = 2 (never seen); exit */
	struct rb_bpf_insn code[] = {INS(0xb7, 0, 0, 0, 1), INS(0x55, 1, 0, 1, 0), INS(0x95, 0, 0, 0, 0),
				     INS(0xb7, 0, 0, 0, 2), INS(0x95, 0, 0, 0, 0)};
	struct rb_bpf_fact *f = facts_seen(6, 0);
	REQUIRE(f);
	f[3].flags = 0;
	struct rb_bpf_prog *p = jit_unchecked(code, 5, NULL, f, 0);
	struct rb_bpf_result r;
	CHECK_EQ_U64(run_r0(p, 0, &r), 1);
	CHECK(run_r0(p, 1, &r) == ~0ull);
	CHECK(r.status == RB_BPF_E_FAULT);
	CHECK_EQ_U64(r.pc, 3);
	CHECK_STR_CONTAINS(r.msg, "insn 3: reached an instruction the verifier proved unreachable");
	rb_bpf_prog_free(p);
	p = jit_unchecked(code, 5, NULL, f, RB_BPF_JIT_NO_HARDENING);
	CHECK_EQ_U64(run_r0(p, 1, &r), 2);
	rb_bpf_prog_free(p);
	/* An lddw never reached: both slots. */
	struct rb_bpf_insn wide[] = {INS(0xb7, 0, 0, 0, 1), INS(0x55, 1, 0, 1, 0), INS(0x95, 0, 0, 0, 0),
				     INS(0x18, 0, 0, 0, 7), INS(0, 0, 0, 0, 0), INS(0x95, 0, 0, 0, 0)};
	f[4].flags = 0;
	p = jit_unchecked(wide, 6, NULL, f, 0);
	CHECK(run_r0(p, 1, &r) == ~0ull);
	CHECK_EQ_U64(r.pc, 3);
	rb_bpf_prog_free(p);
	free(f);
}

/* Interpreter, hardened (no facts / all seen) and unhardened unchecked JIT
 * on one program that reads nothing it did not write: same r0 and memory.
 * 1 on a difference, 0 otherwise (or when the program faults). */
static int compare_unchecked(const struct rb_bpf_insn *code, size_t n, uint8_t *mem, size_t len)
{
	uint8_t ref[64], start[64];
	struct rb_bpf_region reg = {(uintptr_t)mem, len, true};
	struct rb_bpf_run_opts o = {.args = {(uintptr_t)mem}, .regions = &reg, .n_regions = len ? 1 : 0};
	struct rb_bpf_result want, got;
	struct rb_bpf_prog *pi;
	char err[256];

	memcpy(start, mem, len);
	if (rb_bpf_prog_new(code, n, NULL, NULL, &pi, err, sizeof(err)))
		return 1;
	int rc = rb_bpf_run_interp(pi, &o, &want);
	rb_bpf_prog_free(pi);
	if (rc)
		return 0; /* faults: not a program the unchecked JIT may run */
	memcpy(ref, mem, len);
	struct rb_bpf_fact *f = facts_seen(n, 512);
	int bad = 0;
	for (int v = 0; v < 3; v++) {
		memcpy(mem, start, len);
		struct rb_bpf_prog *p = jit_unchecked(code, n, NULL, v == 1 ? f : NULL,
						      v == 2 ? RB_BPF_JIT_NO_HARDENING : 0);
		if (!p || rb_bpf_run(p, &o, &got) || got.r0 != want.r0) {
			RT_FAIL_AT("variant %d: r0 0x%" PRIx64 " (%s), interpreter 0x%" PRIx64, v, got.r0,
				   got.msg, want.r0);
			bad = 1;
		}
		if (memcmp(mem, ref, len)) {
			RT_FAIL_AT("variant %d: memory differs", v);
			bad = 1;
		}
		rb_bpf_prog_free(p);
	}
	free(f);
	return bad;
}

TEST(hardening_changes_no_result_of_programs_that_follow_the_rules)
{
	struct rb_bpf_insn code[160];
	uint8_t mem[64];
	int bad = 0;

	for (int t = 0; t < 1500 && bad < 5; t++) {
		size_t n = 0;
		for (int r = 0; r < 10; r++)
			code[n++] = INS(0xb7, (uint8_t)r, 0, 0, (int32_t)rnd());
		for (int i = 0; i < 30; i++)
			code[n++] = rand_alu();
		for (int r = 1; r < 10; r++)
			code[n++] = INS(0xaf, 0, (uint8_t)r, 0, 0);
		code[n++] = INS(0x95, 0, 0, 0, 0);
		bad += compare_unchecked(code, n, mem, 0);
	}
	for (int t = 0; t < 3000 && bad < 5; t++) {
		/* r0 and the stack written first: unhardened code zeroes
		 * neither. */
		struct rb_bpf_insn body[64];
		size_t m = rand_mem_prog(body, mem), n = 0;
		code[n++] = INS(0xb7, 0, 0, 0, 0);
		for (int k = 1; k <= 64; k++)
			code[n++] = INS(0x7a, 10, 0, (int16_t)(-8 * k), 0);
		memcpy(code + n, body, m * sizeof(*body));
		n += m;
		bad += compare_unchecked(code, n, mem, sizeof(mem));
	}
}

TEST_MAIN()
