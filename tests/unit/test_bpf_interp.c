/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of program validation and the interpreter's safety net: what
 * is rejected at load (with the instruction index in the message), what
 * faults at run time, the instruction budget, stack frames and helpers.
 * Instruction semantics are covered op by op by tests/conformance.
 */
#include <rosen/bpf.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define INS(c, d, s, o, i) \
	((struct rb_bpf_insn){.code = (c), .dst = (d), .src = (s), .off = (o), .imm = (i)})
#define MOV64_K(d, i) INS(0xb7, d, 0, 0, i)
#define MOV64_X(d, s) INS(0xbf, d, s, 0, 0)
#define ADD64_K(d, i) INS(0x07, d, 0, 0, i)
#define ADD64_X(d, s) INS(0x0f, d, s, 0, 0)
#define LDXB(d, s, o) INS(0x71, d, s, o, 0)
#define LDXDW(d, s, o) INS(0x79, d, s, o, 0)
#define STXDW(d, s, o) INS(0x7b, d, s, o, 0)
#define STB(d, o, i) INS(0x72, d, 0, o, i)
#define JA(o) INS(0x05, 0, 0, o, 0)
#define JEQ_K(d, i, o) INS(0x15, d, 0, o, i)
#define JNE_K(d, i, o) INS(0x55, d, 0, o, i)
#define CALL(id) INS(0x85, 0, 0, 0, id)
#define CALL_LOCAL(rel) INS(0x85, 0, 1, 0, rel)
#define CALLX(r) INS(0x8d, r, 0, 0, 0)
#define EXIT() INS(0x95, 0, 0, 0, 0)
#define LDDW(d, lo, hi) INS(0x18, d, 0, 0, lo), INS(0, 0, 0, 0, hi)
#define N(a) (sizeof(a) / sizeof((a)[0]))

static char err[256];

static int load(const struct rb_bpf_insn *insns, size_t n,
		const struct rb_bpf_helpers *h, struct rb_bpf_prog **p)
{
	err[0] = 0;
	return rb_bpf_prog_new(insns, n, h, NULL, p, err, sizeof(err));
}

/* Loads, runs with one region, frees. */
static int run_with(const struct rb_bpf_insn *insns, size_t n,
		    const struct rb_bpf_helpers *h, void *mem, size_t len,
		    bool writable, uint64_t budget, struct rb_bpf_result *res)
{
	struct rb_bpf_prog *p;
	struct rb_bpf_region reg = {(uint64_t)(uintptr_t)mem, len, writable};
	struct rb_bpf_run_opts o = {
		.args = {(uint64_t)(uintptr_t)mem, len},
		.regions = &reg,
		.n_regions = mem ? 1 : 0,
		.budget = budget,
	};
	int rc = load(insns, n, h, &p);

	if (rc) {
		fprintf(stderr, "    load failed: %s\n", err);
		memset(res, 0, sizeof(*res));
		return rc;
	}
	rc = rb_bpf_run(p, &o, res);
	rb_bpf_prog_free(p);
	return rc;
}

/* ---- load-time rejections ---------------------------------------------- */

TEST(rejects_empty_program)
{
	struct rb_bpf_prog *p;
	CHECK(load(NULL, 0, NULL, &p) == -EINVAL);
	CHECK(p == NULL);
}

TEST(rejects_unknown_opcode_naming_the_index)
{
	struct rb_bpf_insn prog[] = {MOV64_K(0, 0), INS(0xff, 0, 0, 0, 0), EXIT()};
	struct rb_bpf_prog *p;
	CHECK(load(prog, N(prog), NULL, &p) == -EINVAL);
	CHECK_STR_CONTAINS(err, "insn 1");
	CHECK_STR_CONTAINS(err, "0xff");
}

TEST(rejects_jump_past_the_end)
{
	struct rb_bpf_insn prog[] = {JA(5), EXIT()};
	struct rb_bpf_prog *p;
	CHECK(load(prog, N(prog), NULL, &p) == -EINVAL);
	CHECK_STR_CONTAINS(err, "insn 0");
	CHECK_STR_CONTAINS(err, "outside the program");
}

TEST(rejects_jump_before_the_start)
{
	struct rb_bpf_insn prog[] = {MOV64_K(0, 0), JEQ_K(0, 0, -3), EXIT()};
	struct rb_bpf_prog *p;
	CHECK(load(prog, N(prog), NULL, &p) == -EINVAL);
	CHECK_STR_CONTAINS(err, "insn 1");
}

TEST(rejects_jump_into_middle_of_lddw)
{
	struct rb_bpf_insn prog[] = {JA(1), LDDW(0, 1, 2), EXIT()};
	struct rb_bpf_prog *p;
	CHECK(load(prog, N(prog), NULL, &p) == -EINVAL);
	CHECK_STR_CONTAINS(err, "second half of an lddw");
}

TEST(rejects_lddw_split_at_the_end)
{
	struct rb_bpf_insn prog[] = {MOV64_K(0, 0), EXIT(), INS(0x18, 0, 0, 0, 1)};
	struct rb_bpf_prog *p;
	CHECK(load(prog, N(prog), NULL, &p) == -EINVAL);
	CHECK_STR_CONTAINS(err, "insn 2");
	CHECK_STR_CONTAINS(err, "lddw");
}

TEST(rejects_call_to_unknown_helper)
{
	struct rb_bpf_insn prog[] = {CALL(77), EXIT()};
	struct rb_bpf_prog *p;
	CHECK(load(prog, N(prog), NULL, &p) == -EINVAL);
	CHECK_STR_CONTAINS(err, "unknown helper 77");
}

TEST(rejects_btf_id_call)
{
	struct rb_bpf_insn prog[] = {INS(0x85, 0, 2, 0, 42), EXIT()};
	struct rb_bpf_prog *p;
	CHECK(load(prog, N(prog), NULL, &p) == -EINVAL);
	CHECK_STR_CONTAINS(err, "BTF");
}

TEST(rejects_write_to_frame_pointer)
{
	struct rb_bpf_insn prog[] = {MOV64_K(10, 0), EXIT()};
	struct rb_bpf_prog *p;
	CHECK(load(prog, N(prog), NULL, &p) == -EINVAL);
	CHECK_STR_CONTAINS(err, "frame pointer");
}

TEST(rejects_register_above_r10)
{
	struct rb_bpf_insn prog[] = {MOV64_X(0, 11), EXIT()};
	struct rb_bpf_prog *p;
	CHECK(load(prog, N(prog), NULL, &p) == -EINVAL);
	CHECK_STR_CONTAINS(err, "register");
}

TEST(rejects_program_that_falls_off_the_end)
{
	struct rb_bpf_insn prog[] = {MOV64_K(0, 0)};
	struct rb_bpf_prog *p;
	CHECK(load(prog, N(prog), NULL, &p) == -EINVAL);
	CHECK_STR_CONTAINS(err, "off its end");
}

TEST(rejects_legacy_packet_access)
{
	struct rb_bpf_insn prog[] = {INS(0x20, 0, 0, 0, 0), EXIT()};
	struct rb_bpf_prog *p;
	CHECK(load(prog, N(prog), NULL, &p) == -EINVAL);
}

TEST(rejects_program_over_the_size_limit)
{
	size_t n = RB_BPF_MAX_INSNS + 1;
	struct rb_bpf_insn *prog = calloc(n, sizeof(*prog));
	struct rb_bpf_prog *p;
	REQUIRE(prog);
	for (size_t i = 0; i < n; i++)
		prog[i] = EXIT();
	CHECK(load(prog, n, NULL, &p) == -E2BIG);
	free(prog);
}

TEST(accepts_exit_that_is_not_last)
{
	/* ja +2; exit; ...; ja -2: legal as long as nothing falls off the end */
	struct rb_bpf_insn prog[] = {MOV64_K(0, 7), JA(1), EXIT(), JA(-2)};
	struct rb_bpf_result res;
	CHECK(run_with(prog, N(prog), NULL, NULL, 0, false, 0, &res) == 0);
	CHECK_EQ_U64(res.r0, 7);
}

/* ---- run-time memory checks -------------------------------------------- */

TEST(read_past_end_of_region_faults_with_index)
{
	uint8_t mem[16] = {0};
	struct rb_bpf_insn prog[] = {MOV64_K(0, 0), LDXDW(0, 1, 9), EXIT()};
	struct rb_bpf_result res;
	CHECK(run_with(prog, N(prog), NULL, mem, sizeof(mem), true, 0, &res) == -EFAULT);
	CHECK(res.status == RB_BPF_E_FAULT);
	CHECK_EQ_U64(res.pc, 1);
	CHECK_STR_CONTAINS(res.msg, "insn 1");
	CHECK_STR_CONTAINS(res.msg, "read of 8 bytes");
}

TEST(last_bytes_of_region_are_readable)
{
	uint8_t mem[16];
	for (int i = 0; i < 16; i++)
		mem[i] = (uint8_t)i;
	struct rb_bpf_insn prog[] = {LDXDW(0, 1, 8), EXIT()};
	struct rb_bpf_result res;
	CHECK(run_with(prog, N(prog), NULL, mem, sizeof(mem), false, 0, &res) == 0);
	CHECK_EQ_U64(res.r0, 0x0f0e0d0c0b0a0908ull);
}

TEST(read_before_start_of_region_faults)
{
	uint8_t mem[16] = {0};
	struct rb_bpf_insn prog[] = {LDXB(0, 1, -1), EXIT()};
	struct rb_bpf_result res;
	CHECK(run_with(prog, N(prog), NULL, mem, sizeof(mem), true, 0, &res) == -EFAULT);
	CHECK(res.status == RB_BPF_E_FAULT);
}

TEST(pointer_wrapping_around_address_space_faults)
{
	uint8_t mem[16] = {0};
	struct rb_bpf_insn prog[] = {LDDW(2, 0, (int32_t)0x80000000), ADD64_X(1, 2),
				     ADD64_X(1, 2), LDXB(0, 1, -1), EXIT()};
	struct rb_bpf_result res;
	/* r1 + 2*2^63 == r1 (wrap), minus 1 is just before the region. */
	CHECK(run_with(prog, N(prog), NULL, mem, sizeof(mem), true, 0, &res) == -EFAULT);
}

TEST(write_to_read_only_region_faults_and_leaves_it_intact)
{
	uint8_t mem[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct rb_bpf_insn prog[] = {STB(1, 0, 0x55), MOV64_K(0, 0), EXIT()};
	struct rb_bpf_result res;
	CHECK(run_with(prog, N(prog), NULL, mem, sizeof(mem), false, 0, &res) == -EFAULT);
	CHECK_STR_CONTAINS(res.msg, "write of 1 bytes");
	CHECK_EQ_U64(mem[0], 1);
}

TEST(null_pointer_without_memory_faults)
{
	struct rb_bpf_insn prog[] = {LDXB(0, 1, 0), EXIT()};
	struct rb_bpf_result res;
	CHECK(run_with(prog, N(prog), NULL, NULL, 0, false, 0, &res) == -EFAULT);
}

TEST(stack_below_512_bytes_faults)
{
	struct rb_bpf_insn ok[] = {MOV64_K(1, 9), STXDW(10, 1, -512), LDXDW(0, 10, -512), EXIT()};
	struct rb_bpf_insn bad[] = {MOV64_K(1, 9), STXDW(10, 1, -520), MOV64_K(0, 0), EXIT()};
	struct rb_bpf_insn above[] = {LDXB(0, 10, 0), EXIT()};
	struct rb_bpf_result res;
	CHECK(run_with(ok, N(ok), NULL, NULL, 0, false, 0, &res) == 0);
	CHECK_EQ_U64(res.r0, 9);
	CHECK(run_with(bad, N(bad), NULL, NULL, 0, false, 0, &res) == -EFAULT);
	CHECK(run_with(above, N(above), NULL, NULL, 0, false, 0, &res) == -EFAULT);
}

TEST(stack_starts_zeroed_on_every_run)
{
	/* Run 1 leaves 0x1234 at r10-8 and returns what it found there first. */
	struct rb_bpf_insn prog[] = {LDXDW(0, 10, -8), MOV64_K(1, 0x1234),
				     STXDW(10, 1, -8), EXIT()};
	struct rb_bpf_prog *p;
	struct rb_bpf_run_opts o = {0};
	struct rb_bpf_result res;
	REQUIRE(load(prog, N(prog), NULL, &p) == 0);
	CHECK(rb_bpf_run(p, &o, &res) == 0);
	CHECK_EQ_U64(res.r0, 0);
	CHECK(rb_bpf_run(p, &o, &res) == 0);
	CHECK_EQ_U64(res.r0, 0);
	rb_bpf_prog_free(p);
}

/* ---- budget ------------------------------------------------------------- */

TEST(budget_counts_executed_instructions)
{
	/* r0 = 0; loop 10 times: r0 += 1 ; jne r0, 10, -2; exit */
	struct rb_bpf_insn prog[] = {MOV64_K(0, 0), ADD64_K(0, 1), JNE_K(0, 10, -2), EXIT()};
	struct rb_bpf_result res;
	CHECK(run_with(prog, N(prog), NULL, NULL, 0, false, 0, &res) == 0);
	CHECK_EQ_U64(res.r0, 10);
	CHECK_EQ_U64(res.executed, 1 + 10 * 2 + 1);
	/* Exactly enough budget passes; one less stops with a clear error. */
	CHECK(run_with(prog, N(prog), NULL, NULL, 0, false, 22, &res) == 0);
	CHECK(run_with(prog, N(prog), NULL, NULL, 0, false, 21, &res) == -E2BIG);
	CHECK(res.status == RB_BPF_E_BUDGET);
	CHECK_STR_CONTAINS(res.msg, "budget of 21 exhausted");
}

TEST(infinite_loop_stops_at_default_budget)
{
	struct rb_bpf_insn prog[] = {JA(-1)};
	struct rb_bpf_result res;
	CHECK(run_with(prog, N(prog), NULL, NULL, 0, false, 0, &res) == -E2BIG);
	CHECK_EQ_U64(res.executed, RB_BPF_DEFAULT_BUDGET);
}

/* ---- local calls -------------------------------------------------------- */

TEST(local_call_gets_own_frame_and_preserves_callee_saved)
{
	struct rb_bpf_insn code[] = {
		MOV64_K(6, 66),      /* 0 */
		MOV64_K(1, 5),       /* 1 */
		STXDW(10, 1, -8),    /* 2: caller frame slot = 5 */
		CALL_LOCAL(4),       /* 3: -> 8 */
		LDXDW(2, 10, -8),    /* 4: still 5 */
		ADD64_X(0, 2),       /* 5 */
		ADD64_X(0, 6),       /* 6 */
		EXIT(),              /* 7 */
		MOV64_K(6, 0),       /* 8: callee clobbers r6 */
		MOV64_K(3, 100),     /* 9 */
		STXDW(10, 3, -8),    /* 10: callee's own slot */
		LDXDW(0, 10, -8),    /* 11: r0 = 100 */
		EXIT(),              /* 12 */
	};
	struct rb_bpf_result res;
	CHECK(run_with(code, N(code), NULL, NULL, 0, false, 0, &res) == 0);
	CHECK_EQ_U64(res.r0, 100 + 5 + 66);
}

TEST(recursion_deeper_than_frame_limit_fails)
{
	struct rb_bpf_insn code[] = {CALL_LOCAL(-1), EXIT()};
	struct rb_bpf_result res;
	CHECK(run_with(code, N(code), NULL, NULL, 0, false, 0, &res) == -EINVAL);
	CHECK(res.status == RB_BPF_E_DEPTH);
}

/* ---- helpers ------------------------------------------------------------ */

static uint64_t h_sum(struct rb_bpf_call *c, uint64_t a, uint64_t b,
		      uint64_t d, uint64_t e, uint64_t f)
{
	(void)c;
	return a + b + d + e + f;
}

static uint64_t h_write8(struct rb_bpf_call *c, uint64_t ptr, uint64_t v,
			 uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	if (!rb_bpf_call_mem_ok(c, ptr, 8, true)) {
		rb_bpf_call_fail(c, "bad pointer");
		return 0;
	}
	memcpy((void *)(uintptr_t)ptr, &v, 8);
	return 0;
}

static uint64_t h_stop(struct rb_bpf_call *c, uint64_t v, uint64_t a2,
		       uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a2, (void)a3, (void)a4, (void)a5;
	rb_bpf_call_stop(c, v);
	return 0;
}

static struct rb_bpf_helpers *make_helpers(void)
{
	struct rb_bpf_helpers *h = rb_bpf_helpers_new();
	if (!h)
		return NULL;
	rb_bpf_helpers_register(h, 1, "sum", h_sum);
	rb_bpf_helpers_register(h, 2, "write8", h_write8);
	rb_bpf_helpers_register(h, 3, "stop", h_stop);
	return h;
}

TEST(helper_registry_rejects_bad_and_duplicate_ids)
{
	struct rb_bpf_helpers *h = make_helpers();
	REQUIRE(h);
	CHECK(rb_bpf_helpers_register(h, 1, "again", h_sum) == -EEXIST);
	CHECK(rb_bpf_helpers_register(h, RB_BPF_MAX_HELPERS, "big", h_sum) == -EINVAL);
	CHECK(rb_bpf_helpers_register(h, 9, "", h_sum) == -EINVAL);
	CHECK(rb_bpf_helpers_register(h, 9, "nofn", NULL) == -EINVAL);
	CHECK(strcmp(rb_bpf_helpers_name(h, 2), "write8") == 0);
	CHECK(rb_bpf_helpers_name(h, 9) == NULL);
	rb_bpf_helpers_free(h);
}

TEST(helper_gets_five_arguments)
{
	struct rb_bpf_helpers *h = make_helpers();
	struct rb_bpf_insn code[] = {MOV64_K(1, 1), MOV64_K(2, 2), MOV64_K(3, 3),
				     MOV64_K(4, 4), MOV64_K(5, 5), CALL(1), EXIT()};
	struct rb_bpf_result res;
	REQUIRE(h);
	CHECK(run_with(code, N(code), h, NULL, 0, false, 0, &res) == 0);
	CHECK_EQ_U64(res.r0, 15);
	rb_bpf_helpers_free(h);
}

TEST(helper_can_write_to_program_stack_but_not_outside)
{
	struct rb_bpf_helpers *h = make_helpers();
	struct rb_bpf_insn good[] = {MOV64_X(1, 10), ADD64_K(1, -8), MOV64_K(2, 77),
				     CALL(2), LDXDW(0, 10, -8), EXIT()};
	struct rb_bpf_insn bad[] = {MOV64_X(1, 10), ADD64_K(1, -4), MOV64_K(2, 77),
				    CALL(2), MOV64_K(0, 0), EXIT()};
	struct rb_bpf_result res;
	REQUIRE(h);
	CHECK(run_with(good, N(good), h, NULL, 0, false, 0, &res) == 0);
	CHECK_EQ_U64(res.r0, 77);
	/* r10-4 .. r10+4 crosses the top of the stack. */
	CHECK(run_with(bad, N(bad), h, NULL, 0, false, 0, &res) != 0);
	CHECK(res.status == RB_BPF_E_HELPER);
	CHECK_STR_CONTAINS(res.msg, "write8");
	CHECK_STR_CONTAINS(res.msg, "insn 3");
	rb_bpf_helpers_free(h);
}

TEST(helper_can_stop_the_program)
{
	struct rb_bpf_helpers *h = make_helpers();
	struct rb_bpf_insn code[] = {MOV64_K(1, 42), CALL(3), MOV64_K(0, 1), EXIT()};
	struct rb_bpf_result res;
	REQUIRE(h);
	CHECK(run_with(code, N(code), h, NULL, 0, false, 0, &res) == 0);
	CHECK_EQ_U64(res.r0, 42);
	rb_bpf_helpers_free(h);
}

TEST(callx_calls_helper_by_register_and_rejects_unknown_ids)
{
	struct rb_bpf_helpers *h = make_helpers();
	struct rb_bpf_insn good[] = {MOV64_K(1, 20), MOV64_K(2, 22), MOV64_K(3, 0),
				     MOV64_K(4, 0), MOV64_K(5, 0), MOV64_K(7, 1),
				     CALLX(7), EXIT()};
	struct rb_bpf_insn bad[] = {MOV64_K(7, 200), CALLX(7), EXIT()};
	struct rb_bpf_result res;
	REQUIRE(h);
	CHECK(run_with(good, N(good), h, NULL, 0, false, 0, &res) == 0);
	CHECK_EQ_U64(res.r0, 42);
	CHECK(run_with(bad, N(bad), h, NULL, 0, false, 0, &res) != 0);
	CHECK(res.status == RB_BPF_E_HELPER);
	CHECK_STR_CONTAINS(res.msg, "unknown helper 200");
	rb_bpf_helpers_free(h);
}

/* ---- data sections ------------------------------------------------------ */

TEST(pseudo_data_lddw_points_into_program_data)
{
	static const uint8_t ro[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x22};
	struct rb_bpf_data_section data[RB_BPF_DATA_KINDS] = {
		[RB_BPF_DATA_RODATA] = {ro, sizeof(ro)},
		[RB_BPF_DATA_BSS] = {NULL, 8},
	};
	struct rb_bpf_insn code[] = {
		INS(0x18, 1, RB_BPF_PSEUDO_DATA, 0, RB_BPF_DATA_RODATA), INS(0, 0, 0, 0, 8),
		INS(0x69, 0, 1, 0, 0), /* ldxh r0, [r1] = 0x2211 */
		INS(0x18, 2, RB_BPF_PSEUDO_DATA, 0, RB_BPF_DATA_BSS), INS(0, 0, 0, 0, 0),
		LDXDW(3, 2, 0), ADD64_K(3, 1), STXDW(2, 3, 0), /* bss counter++ */
		ADD64_X(0, 3), EXIT(),
	};
	struct rb_bpf_insn write_ro[] = {
		INS(0x18, 1, RB_BPF_PSEUDO_DATA, 0, RB_BPF_DATA_RODATA), INS(0, 0, 0, 0, 0),
		STB(1, 0, 1), EXIT(),
	};
	struct rb_bpf_prog *p;
	struct rb_bpf_run_opts o = {0};
	struct rb_bpf_result res;
	REQUIRE(rb_bpf_prog_new(code, N(code), NULL, data, &p, err, sizeof(err)) == 0);
	CHECK(rb_bpf_run(p, &o, &res) == 0);
	CHECK_EQ_U64(res.r0, 0x2211 + 1);
	CHECK(rb_bpf_run(p, &o, &res) == 0);
	CHECK_EQ_U64(res.r0, 0x2211 + 2); /* .bss persists across runs */
	rb_bpf_prog_free(p);
	REQUIRE(rb_bpf_prog_new(write_ro, N(write_ro), NULL, data, &p, err, sizeof(err)) == 0);
	CHECK(rb_bpf_run(p, &o, &res) == -EFAULT);
	rb_bpf_prog_free(p);
	/* A reference past the section is rejected at load. */
	code[1].imm = 17;
	CHECK(rb_bpf_prog_new(code, N(code), NULL, data, &p, err, sizeof(err)) == -EINVAL);
	CHECK_STR_CONTAINS(err, "data section");
}

/* ---- disassembler ------------------------------------------------------- */

TEST(disasm_formats_common_instructions)
{
	struct rb_bpf_insn code[] = {MOV64_K(0, 1), LDXDW(2, 1, 8), JEQ_K(0, 3, 1),
				     LDDW(4, 0x55667788, 0x11223344), CALLX(7), EXIT()};
	char line[128];
	rb_bpf_disasm_insn(code, N(code), 0, NULL, line, sizeof(line));
	CHECK(strcmp(line, "mov r0, 1") == 0);
	rb_bpf_disasm_insn(code, N(code), 1, NULL, line, sizeof(line));
	CHECK(strcmp(line, "ldxdw r2, [r1+8]") == 0);
	rb_bpf_disasm_insn(code, N(code), 2, NULL, line, sizeof(line));
	CHECK(strcmp(line, "jeq r0, 3, +1 <4>") == 0);
	CHECK(rb_bpf_disasm_insn(code, N(code), 3, NULL, line, sizeof(line)) == 2);
	CHECK(strcmp(line, "lddw r4, 0x1122334455667788") == 0);
	rb_bpf_disasm_insn(code, N(code), 5, NULL, line, sizeof(line));
	CHECK(strcmp(line, "callx r7") == 0);
}

TEST_MAIN()
