/* SPDX-License-Identifier: MIT */
/*
 * Differential tests of the x86-64 JIT against the interpreter (the
 * reference): random ALU/jump programs, random memory programs with
 * in- and out-of-bounds accesses, calls, helpers, budgets.  Same r0, same
 * memory, same error class; the JIT may stop a budget up to one block early.
 */
#include <rosen/bpf.h>

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

TEST(random_memory_programs_match_including_faults)
{
	struct rb_bpf_insn code[64];
	struct rb_bpf_result ri, rj;
	uint8_t mem[64], after[64];
	int mismatches = 0;
	static const uint8_t sizes[] = {RB_BPF_B, RB_BPF_H, RB_BPF_W, RB_BPF_DW};

	for (int t = 0; t < 3000 && mismatches < 5; t++) {
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

	/* budget: the JIT charges per block, at most one block earlier */
	struct rb_bpf_insn loop[] = {INS(0xb7, 0, 0, 0, 0), INS(0x07, 0, 0, 0, 1), INS(0x55, 0, 0, -2, 1000),
				     INS(0x95, 0, 0, 0, 0)};
	REQUIRE(run_both(loop, 4, h, NULL, 0, 0, &ri, &rj, after) == 0);
	CHECK_EQ_U64(rj.r0, 1000);
	CHECK(run_both(loop, 4, h, NULL, 0, 1500, &ri, &rj, after) == 0);
	CHECK(ri.status == RB_BPF_E_BUDGET && rj.status == RB_BPF_E_BUDGET);
	CHECK(ri.pc == 1 || ri.pc == 2);
	CHECK_EQ_U64(rj.pc, 1);
	struct rb_bpf_insn forever[] = {INS(0x05, 0, 0, -1, 0)};
	run_both(forever, 1, h, NULL, 0, 0, &ri, &rj, after);
	CHECK(rj.status == RB_BPF_E_BUDGET);
	rb_bpf_helpers_free(h);
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

TEST_MAIN()
