/* SPDX-License-Identifier: MIT */
/*
 * The verifier: its number domain is checked for soundness against the
 * interpreter on random values; the hostile corpus (C programs and raw
 * instructions) must each be rejected for the expected reason; the accepted
 * corpus (BPF-KV's programs, idioms clang emits) must verify and then never
 * fault under the interpreter's run-time checks on random inputs.
 */
#include "harness.h"
#include "../../lib/bpf/verifier_internal.h"

#include <rosen/bpf.h>
#include <rosen/ndp.h>

#include <errno.h>
#include <inttypes.h>

/* ---- helpers ------------------------------------------------------------------- */


static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	return rt_xorshift(&rng_state);
}

/* Interesting numbers: edges of every width, small values, random ones. */
static uint64_t rnd_value(void)
{
	static const uint64_t edges[] = {
		0, 1, 2, 7, 8, 31, 32, 63, 64, 511, 512, 4095, 4096, 0x7f, 0x80, 0xff,
		0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull,
		0x7fffffffffffffffull, 0x8000000000000000ull, 0xffffffffffffffffull,
		0xfffffffffffff000ull, 0xffffffff80000000ull,
	};
	switch (rnd() % 4) {
	case 0: return edges[rnd() % (sizeof(edges) / sizeof(edges[0]))];
	case 1: return rnd() % 64;
	case 2: return edges[rnd() % (sizeof(edges) / sizeof(edges[0]))] + (rnd() % 5) - 2;
	}
	return rnd();
}

static bool contains(const struct scal *s, uint64_t v)
{
	return v >= s->umin && v <= s->umax && (int64_t)v >= s->smin && (int64_t)v <= s->smax &&
	       (uint32_t)v >= s->u32min && (uint32_t)v <= s->u32max &&
	       (int32_t)v >= s->s32min && (int32_t)v <= s->s32max &&
	       (v & ~s->t.mask) == s->t.value;
}

/* An abstract number covering n random values (kept in vals). */
static struct scal rnd_scal(uint64_t *vals, int n)
{
	vals[0] = rnd_value();
	struct scal s = scal_const(vals[0]);
	for (int i = 1; i < n; i++) {
		vals[i] = rnd() % 3 ? rnd_value() : vals[0] + rnd() % 16;
		struct scal o = scal_const(vals[i]);
		scal_join(&s, &o, false);
	}
	return s;
}

/* What the interpreter computes for one ALU instruction. */
static uint64_t run_alu(const struct rb_bpf_insn *op, uint64_t a, uint64_t b)
{
	struct rb_bpf_insn prog[6] = {
		{.code = RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW, .dst = 0, .imm = (int32_t)(uint32_t)a},
		{.imm = (int32_t)(uint32_t)(a >> 32)},
		{.code = RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW, .dst = 1, .imm = (int32_t)(uint32_t)b},
		{.imm = (int32_t)(uint32_t)(b >> 32)},
		*op,
		{.code = RB_BPF_JMP | RB_BPF_EXIT},
	};
	struct rb_bpf_prog *p = NULL;
	struct rb_bpf_result res;
	struct rb_bpf_run_opts o = {.budget = 100};
	char err[256];

	if (rb_bpf_prog_new(prog, 6, NULL, NULL, &p, err, sizeof(err)))
		fprintf(stderr, "    %s\n", err);
	REQUIRE(p);
	REQUIRE(rb_bpf_run_interp(p, &o, &res) == 0);
	rb_bpf_prog_free(p);
	return res.r0;
}

/* ---- the number domain ------------------------------------------------------- */

TEST(scalar_alu_sound_against_interpreter)
{
	static const uint8_t ops[] = {RB_BPF_ADD, RB_BPF_SUB, RB_BPF_MUL, RB_BPF_DIV, RB_BPF_OR,
				      RB_BPF_AND, RB_BPF_LSH, RB_BPF_RSH, RB_BPF_MOD, RB_BPF_XOR,
				      RB_BPF_MOV, RB_BPF_ARSH, RB_BPF_NEG};
	int bad = 0;

	for (int iter = 0; iter < 3000 && bad < 5; iter++) {
		uint64_t av[3], bv[3];
		struct scal a = rnd_scal(av, 1 + (int)(rnd() % 3));
		struct scal b = rnd_scal(bv, 1 + (int)(rnd() % 3));
		uint8_t op = ops[rnd() % sizeof(ops)];
		bool is64 = rnd() & 1;
		bool sdiv = (op == RB_BPF_DIV || op == RB_BPF_MOD) && (rnd() & 1);
		struct rb_bpf_insn in = {.code = (uint8_t)((is64 ? RB_BPF_ALU64 : RB_BPF_ALU) | op |
							   (op == RB_BPF_NEG ? 0 : RB_BPF_X)),
					 .dst = 0, .src = op == RB_BPF_NEG ? 0 : 1, .off = sdiv ? 1 : 0};
		struct scal r = a;
		scal_alu(&r, &b, op, is64, sdiv);
		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 3; j++) {
				uint64_t x = av[i % 3], y = bv[j % 3];
				if (!contains(&a, x) || !contains(&b, y))
					continue;
				uint64_t want = run_alu(&in, x, y);
				if (!contains(&r, want) && bad++ < 5) {
					char buf[128];
					scal_fmt(buf, sizeof(buf), &r);
					RT_FAIL_AT("op 0x%02x is64=%d sdiv=%d: %#" PRIx64 " , %#" PRIx64
						   " = %#" PRIx64 " not in %s (t %#" PRIx64 "/%#" PRIx64 ")",
						   op, is64, sdiv, x, y, want, buf, r.t.value, r.t.mask);
				}
			}
	}
	CHECK(bad == 0);
}

static bool rel_holds(enum scal_rel rel, uint64_t a, uint64_t b, bool is32)
{
	if (is32) {
		a = (uint32_t)a;
		b = (uint32_t)b;
	}
	int64_t sa = is32 ? (int32_t)a : (int64_t)a, sb = is32 ? (int32_t)b : (int64_t)b;
	switch (rel) {
	case REL_EQ: return a == b;
	case REL_NE: return a != b;
	case REL_GT: return a > b;
	case REL_GE: return a >= b;
	case REL_LT: return a < b;
	case REL_LE: return a <= b;
	case REL_SGT: return sa > sb;
	case REL_SGE: return sa >= sb;
	case REL_SLT: return sa < sb;
	case REL_SLE: return sa <= sb;
	case REL_SET: return (a & b) != 0;
	case REL_NSET: return (a & b) == 0;
	}
	return false;
}

TEST(scalar_refine_keeps_every_value_that_satisfies_the_branch)
{
	int bad = 0;

	for (int iter = 0; iter < 20000 && bad < 5; iter++) {
		uint64_t av[3], bv[3];
		struct scal a = rnd_scal(av, 1 + (int)(rnd() % 3));
		struct scal b = rnd_scal(bv, 1 + (int)(rnd() % 2));
		enum scal_rel rel = (enum scal_rel)(rnd() % 12);
		bool is32 = rnd() & 1;
		struct scal ra = a, rb = b;
		bool possible = scal_refine(&ra, &rb, rel, is32);
		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 3; j++) {
				uint64_t x = av[i], y = bv[j];
				if (!contains(&a, x) || !contains(&b, y) || !rel_holds(rel, x, y, is32))
					continue;
				if ((!possible || !contains(&ra, x) || !contains(&rb, y)) && bad++ < 5)
					RT_FAIL_AT("rel %d is32=%d: %#" PRIx64 " vs %#" PRIx64
						   " satisfies it but refine %s it",
						   rel, is32, x, y, possible ? "dropped" : "called it impossible");
			}
	}
	CHECK(bad == 0);
}

TEST(scalar_join_and_widen_cover_both)
{
	for (int iter = 0; iter < 5000; iter++) {
		uint64_t av[3], bv[3];
		struct scal a = rnd_scal(av, 3), b = rnd_scal(bv, 3);
		struct scal j = a, w = a;
		scal_join(&j, &b, false);
		scal_join(&w, &b, true);
		for (int i = 0; i < 3; i++) {
			CHECK(contains(&j, av[i]) && contains(&j, bv[i]));
			CHECK(contains(&w, av[i]) && contains(&w, bv[i]));
		}
		CHECK(scal_subset(&a, &j) && scal_subset(&b, &j) && scal_subset(&j, &w));
		/* Widening to thresholds covers both too. */
		uint64_t thr[4] = {rnd_value(), rnd_value(), rnd_value(), rnd_value()};
		for (int x = 0; x < 4; x++)
			for (int y = x + 1; y < 4; y++)
				if (thr[y] < thr[x]) {
					uint64_t t = thr[x];
					thr[x] = thr[y];
					thr[y] = t;
				}
		struct scal t = a;
		scal_widen(&t, &b, thr, 4);
		for (int i = 0; i < 3; i++)
			CHECK(contains(&t, av[i]) && contains(&t, bv[i]));
	}
	/* A counter in [0..16] growing to 17 toward a loop bound of 20 stops
	 * at the next constant, not at infinity. */
	struct scal c = scal_const(0), n6 = scal_const(17);
	for (uint64_t k = 1; k <= 16; k++) {
		struct scal kk = scal_const(k);
		scal_join(&c, &kk, false);
	}
	uint64_t thr[] = {0, 19, 20, 21, 4096};
	scal_widen(&c, &n6, thr, 5);
	CHECK_EQ_U64(c.umin, 0);
	CHECK_EQ_U64(c.umax, 19);
}

TEST(scalar_masks_and_bound_checks_bound_the_value)
{
	struct scal x = scal_unknown(), m = scal_const(31);
	scal_alu(&x, &m, RB_BPF_AND, true, false);
	CHECK_EQ_U64(x.umin, 0);
	CHECK_EQ_U64(x.umax, 31);

	struct scal i = scal_unknown(), n = scal_const(4096);
	CHECK(scal_refine(&i, &n, REL_LT, false));
	CHECK_EQ_U64(i.umax, 4095);
	CHECK(i.smin >= 0);

	/* A 32-bit counter checked with a 32-bit compare bounds the 64-bit value
	 * when its upper half is known to be zero (a w-register). */
	struct scal w = scal_width(4), lim = scal_const(32);
	CHECK(scal_refine(&w, &lim, REL_LT, true));
	CHECK_EQ_U64(w.umax, 31);

	/* Signed check alone leaves negative values: not bounded below. */
	struct scal s = scal_unknown(), k = scal_const(4096);
	CHECK(scal_refine(&s, &k, REL_SLT, false));
	CHECK(s.smin < 0);

	/* x != c on a constant c is impossible. */
	struct scal c = scal_const(5), c2 = scal_const(5);
	CHECK(!scal_refine(&c, &c2, REL_NE, false));
}

/* ---- corpus --------------------------------------------------------------------- */

static struct rb_bpf_helpers *helpers_all(void);

static int verify_section(const struct rt_blob *b, const char *sec, uint32_t type, char *log,
			  size_t loglen, struct rb_bpf_prog **keep)
{
	struct rb_bpf_helpers *h = helpers_all();
	struct rb_bpf_prog *p = NULL;
	int rc;

	REQUIRE(h);
	rc = rb_bpf_prog_load_elf(b->p, b->len, sec, h, &p, log, loglen);
	if (rc) {
		fprintf(stderr, "    %s: load failed: %s\n", sec, log);
		rb_bpf_helpers_free(h);
		return -1000;
	}
	rc = rb_bpf_verify(p, rb_ndp_bpf_type(type), log, loglen);
	if (keep)
		*keep = p;
	else
		rb_bpf_prog_free(p);
	rb_bpf_helpers_free(h);
	return rc;
}

struct hostile {
	const char *section;
	const char *reason;
};

/* Every section of verifier_hostile.c with the reason it must be rejected. */
static const struct hostile hostile_c[] = {
	{"cq_data_fwd", "bytes 4096..4096 of the 4096-byte data"},
	{"cq_data_back", "bytes -1..-1 of the 4096-byte data"},
	{"cq_scratch_fwd", "bytes 4092..4099 of the 4096-byte scratch"},
	{"cq_scratch_back", "bytes -8..-1 of the 4096-byte scratch"},
	{"cq_meta_fwd", "of the 4096-byte meta"},
	{"cq_meta_back", "bytes -8..-8 of the 4096-byte meta"},
	{"cq_ctx_fwd", "is not a field of the cq context"},
	{"cq_ctx_back", "context offset -8"},
	{"cq_rodata_fwd", "of the 32-byte rodata"},
	{"xrp_data_fwd", "of the 4096-byte data"},
	{"xrp_scratch_back", "bytes -4..-4 of the 4096-byte scratch"},
	{"cq_unbounded_index", "must be proven within +-2^29"},
	{"cq_off_by_one", "bytes 0..4096 of the 4096-byte data"},
	{"cq_signed_index", "must be proven within +-2^29"},
	{"cq_mask_too_wide", "bytes 0..8191 of the 4096-byte data"},
	{"cq_loop_overrun", "of the 4096-byte data"},
	{"cq_unbounded_loop", "of the 4096-byte data"},
	{"cq_ptr_escape", "bytes 0..65535 of the 4096-byte data"},
	{"cq_ptr_multiply", "only 64-bit add and sub"},
	{"cq_ptr_and", "only 64-bit add and sub"},
	{"cq_number_as_ptr", "is a number, not a pointer"},
	{"cq_end_deref", "never dereferenced"},
	{"cq_leak_scratch", "pointer is stored into the scratch"},
	{"cq_leak_data", "pointer is stored into the data"},
	{"cq_leak_ctx", "pointer is stored into context field 'next_off'"},
	{"cq_leak_return", "returns a pointer"},
	{"cq_leak_low_half", "part of a pointer is stored"},
	{"cq_leak_compare", "would reveal the address"},
	{"cq_leak_partial_spill", "reads part of a pointer spilled"},
	{"xrp_leak_next_addr", "pointer is stored into context field 'next_addr'"},
	{"cq_compare_regions", "different regions are compared"},
	{"cq_write_meta", "the meta is read-only"},
	{"cq_write_rodata", "the rodata is read-only"},
	{"cq_write_ctx_offset", "context field 'offset' is read-only"},
	{"cq_write_ctx_pointer", "context field 'data' is read-only"},
	{"xrp_write_ctx_pointer", "context field 'data' is read-only"},
	{"cq_atomic_meta", "the meta is read-only"},
	{"cq_atomic_ctx", "atomic operations work on the stack and writable regions only"},
	{"cq_uninit_stack", "which is not initialised"},
	{"cq_uninit_stack_var", "which is not initialised"},
	{"cq_unknown_helper", "helper 99"},
	{"xrp_ndp_helper", "is not callable from xrp programs"},
	{"cq_helper_not_ctx", "must be the context pointer"},
	{"cq_helper_ptr_as_number", "argument 3 must be a number, not a pointer"},
	{"cq_helper_out_small", "bytes 4090..4105 of the 4096-byte data"},
	{"cq_helper_out_meta", "points into the read-only meta"},
	{"cq_helper_out_number", "must point to writable memory"},
	{"cq_mem_trans_null", "may be NULL"},
	{"cq_mem_trans_overrun", "of the 64-byte helper memory"},
	{"cq_calls_too_deep", "nested deeper than 8 frames"},
	{"cq_recursion", "nested deeper than 8 frames"},
	{"cq_return_stack_ptr", "pointer to its own stack frame"},
	{"cq_compare_mem_blocks", "different regions are compared"},
	{"cq_end_check_too_short", "of the 4096-byte meta"},
};

static uint32_t type_of(const char *section)
{
	return !strncmp(section, "xrp_", 4) ? RB_NDP_PROG_XRP
	       : !strncmp(section, "sq_", 3) ? RB_NDP_PROG_SQ : RB_NDP_PROG_CQ;
}

TEST(hostile_c_corpus_is_rejected_with_its_reason)
{
	struct rt_blob b = rt_read_file(TEST_PROGS_DIR "/verifier_hostile.o");
	static char log[8192];
	unsigned n = sizeof(hostile_c) / sizeof(hostile_c[0]);

	CHECK(n >= 40);
	for (unsigned i = 0; i < n; i++) {
		int rc = verify_section(&b, hostile_c[i].section, type_of(hostile_c[i].section), log,
					sizeof(log), NULL);
		if (rc != -EACCES || !strstr(log, hostile_c[i].reason) || !strstr(log, "registers") ||
		    strncmp(log, "insn ", 5)) {
			RT_FAIL_AT("%s: rc %d, want -EACCES with '%s'; log:\n%s", hostile_c[i].section,
				   rc, hostile_c[i].reason, log);
		}
	}
	free(b.p);
}

static void collect(const char *name, size_t n_insns, void *arg)
{
	struct {
		unsigned n;
		char name[128][64];
	} *names = arg;
	(void)n_insns;
	if (names->n < 128)
		snprintf(names->name[names->n++], 64, "%s", name);
}

TEST(every_hostile_section_is_in_the_table)
{
	struct rt_blob b = rt_read_file(TEST_PROGS_DIR "/verifier_hostile.o");
	struct names {
		unsigned n;
		char name[128][64];
	} names = {0};
	char err[256];

	REQUIRE(rb_bpf_elf_sections(b.p, b.len, collect, &names, err, sizeof(err)) == 0);
	for (unsigned i = 0; i < names.n; i++) {
		bool found = false;
		for (size_t k = 0; k < sizeof(hostile_c) / sizeof(hostile_c[0]); k++)
			found |= !strcmp(hostile_c[k].section, names.name[i]);
		if (!found && strcmp(names.name[i], ".text"))
			RT_FAIL_AT("section %s has no expected reason", names.name[i]);
	}
	free(b.p);
}


/* Raw instruction programs for what C cannot express. */
#define I(c, d, s, o, i) {.code = (c), .dst = (d), .src = (s), .off = (o), .imm = (i)}
#define EXIT I(RB_BPF_JMP | RB_BPF_EXIT, 0, 0, 0, 0)
#define MOV64K(d, i) I(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, d, 0, 0, i)

struct raw_case {
	const char *name;
	struct rb_bpf_insn insns[8];
	unsigned n;
	const char *reason;
};

static const struct raw_case raw_cases[] = {
	{"uninit register", {I(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 0, 2, 0, 0), EXIT}, 2,
	 "r2 is read before it is written"},
	{"exit without r0", {EXIT}, 1, "r0 is read before it is written"},
	{"stack below the frame",
	 {MOV64K(0, 0), I(RB_BPF_STX | RB_BPF_MEM | RB_BPF_DW, 10, 0, -520, 0), EXIT}, 3,
	 "of the 512-byte stack"},
	{"stack above the frame",
	 {I(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, 0, 10, 0, 0), EXIT}, 2, "of the 512-byte stack"},
	{"callx with an unknown id",
	 {I(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, 2, 1, 0, 0), I(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, 2, 2, 0, 0),
	  I(RB_BPF_JMP | RB_BPF_CALL | RB_BPF_X, 2, 0, 0, 0), EXIT}, 4, "not a known constant"},
	{"32-bit pointer arithmetic",
	 {I(RB_BPF_ALU | RB_BPF_ADD | RB_BPF_K, 1, 0, 0, 8), MOV64K(0, 0), EXIT}, 3,
	 "32-bit arithmetic"},
	{"callee reads the caller's r6",
	 {MOV64K(6, 1), I(RB_BPF_JMP | RB_BPF_CALL, 0, RB_BPF_CALL_LOCAL, 0, 1), EXIT,
	  I(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 0, 6, 0, 0), EXIT}, 5, "r6 is read before it is written"},
	{"misaligned atomic",
	 {I(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, 2, 1, 32, 0), MOV64K(3, 1),
	  I(RB_BPF_STX | RB_BPF_ATOMIC | RB_BPF_DW, 2, 3, 4, RB_BPF_ADD), MOV64K(0, 0), EXIT}, 5,
	 "not provably 8-byte aligned"},
	{"pointer spilled then partly overwritten",
	 {I(RB_BPF_STX | RB_BPF_MEM | RB_BPF_DW, 10, 1, -8, 0), I(RB_BPF_ST | RB_BPF_MEM | RB_BPF_B, 10, 0, -8, 0),
	  I(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, 0, 10, -8, 0), EXIT}, 4, "not initialised"},
};

TEST(hostile_raw_programs_are_rejected_with_their_reason)
{
	static char log[8192];
	struct rb_bpf_helpers *h = helpers_all();

	REQUIRE(h);
	for (size_t i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++) {
		struct rb_bpf_prog *p = NULL;
		char err[256];
		REQUIRE(rb_bpf_prog_new(raw_cases[i].insns, raw_cases[i].n, h, NULL, &p, err,
					sizeof(err)) == 0);
		int rc = rb_bpf_verify(p, rb_ndp_bpf_type(RB_NDP_PROG_CQ), log, sizeof(log));
		if (rc != -EACCES || !strstr(log, raw_cases[i].reason))
			RT_FAIL_AT("%s: rc %d, want -EACCES with '%s'; log:\n%s", raw_cases[i].name, rc,
				   raw_cases[i].reason, log);
		rb_bpf_prog_free(p);
	}
	rb_bpf_helpers_free(h);
}

/*
 * One program per soundness rule of issue 10, each the shape of an exploit
 * that worked against the verifier before (the reason quoted is the new
 * rejection; most of these were accepted then).  cq context: meta +0,
 * data +16, scratch +32, offset +48 (a number the guest chooses).
 */
#define LDX64(d, s, o) I(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, d, s, o, 0)
#define LDXB(d, s, o) I(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_B, d, s, o, 0)
#define STX64(d, s, o) I(RB_BPF_STX | RB_BPF_MEM | RB_BPF_DW, d, s, o, 0)
#define ST64(d, o, k) I(RB_BPF_ST | RB_BPF_MEM | RB_BPF_DW, d, 0, o, k)
#define ALU64X(op, d, s) I(RB_BPF_ALU64 | (op) | RB_BPF_X, d, s, 0, 0)
#define ALU64K(op, d, k) I(RB_BPF_ALU64 | (op) | RB_BPF_K, d, 0, 0, k)
#define MOV64X(d, s) ALU64X(RB_BPF_MOV, d, s)
#define JK(op, d, k, o) I(RB_BPF_JMP | (op) | RB_BPF_K, d, 0, o, k)
#define JX(op, d, s, o) I(RB_BPF_JMP | (op) | RB_BPF_X, d, s, o, 0)
#define JA(o) I(RB_BPF_JMP | RB_BPF_JA, 0, 0, o, 0)
#define CALL_HELPER(id) I(RB_BPF_JMP | RB_BPF_CALL, 0, 0, 0, id)
#define CALL_LOCAL(o) I(RB_BPF_JMP | RB_BPF_CALL, 0, RB_BPF_CALL_LOCAL, 0, o)

struct rule_case {
	const char *rule;
	const char *name;
	struct rb_bpf_insn insns[24];
	unsigned n;
	const char *reason;
};

static const struct rule_case rule_cases[] = {
	/* hole 1: data - x, then "== 0" assumed never taken */
	{"unbounded arithmetic", "data minus a guest number, then its == 0 branch",
	 {LDX64(2, 1, 16), LDX64(3, 1, 48), ALU64X(RB_BPF_SUB, 2, 3), JK(RB_BPF_JEQ, 2, 0, 2),
	  MOV64K(0, 0), EXIT, LDX64(0, 2, 0), EXIT}, 8, "must be proven within +-2^29"},
	{"unbounded arithmetic", "a constant of 2^30 added and taken away",
	 {LDX64(2, 1, 16), MOV64K(3, 1 << 30), ALU64X(RB_BPF_ADD, 2, 3), ALU64X(RB_BPF_SUB, 2, 3),
	  LDXB(0, 2, 0), EXIT}, 6, "must be proven within +-2^29"},
	{"unbounded arithmetic", "an offset walked past 2^29 in two steps",
	 {LDX64(2, 1, 16), MOV64K(3, 1 << 29), ALU64X(RB_BPF_ADD, 2, 3), ALU64X(RB_BPF_ADD, 2, 3),
	  ALU64X(RB_BPF_SUB, 2, 3), ALU64X(RB_BPF_SUB, 2, 3), LDXB(0, 2, 0), EXIT}, 8,
	 "outside +-2^29"},
	{"unbounded arithmetic", "the same register a number on one path, a pointer on another",
	 {LDX64(4, 1, 48), ALU64K(RB_BPF_AND, 4, 7), LDX64(5, 1, 16), JK(RB_BPF_JGT, 4, 3, 3),
	  MOV64X(2, 5), MOV64X(3, 4), JA(2), MOV64X(2, 4), MOV64X(3, 5), ALU64X(RB_BPF_ADD, 2, 3),
	  MOV64K(0, 0), EXIT}, 12, "as a number on one path and is a pointer on another"},
	/* pointer vs 0 */
	{"pointer vs 0", "the == 0 branch of a real pointer is verified too",
	 {LDX64(2, 1, 16), JK(RB_BPF_JNE, 2, 0, 2), LDX64(0, 2, 8192), EXIT, MOV64K(0, 0), EXIT}, 6,
	 "of the 4096-byte data"},
	{"pointer vs 0", "a pointer moved 64 KiB below its region compared with 0",
	 {LDX64(2, 1, 16), ALU64K(RB_BPF_ADD, 2, -65536), JK(RB_BPF_JEQ, 2, 0, 0), MOV64K(0, 0), EXIT},
	 5, "compared with 0"},
	{"pointer vs 0", "a pointer compared with a number other than 0",
	 {LDX64(2, 1, 16), JK(RB_BPF_JGT, 2, 4096, 0), MOV64K(0, 0), EXIT}, 4,
	 "other than by ==/!= 0"},
	/* hole 2: pointer vs pointer */
	{"pointer vs pointer", "data - guess < data (the address search)",
	 {LDX64(2, 1, 16), LDX64(3, 1, 16), LDX64(4, 1, 48), ALU64X(RB_BPF_SUB, 2, 4),
	  JX(RB_BPF_JLT, 2, 3, 1), MOV64K(0, 0), MOV64K(0, 1), EXIT}, 8, "must be proven within +-2^29"},
	{"pointer vs pointer", "an offset outside the window compared",
	 {LDX64(2, 1, 16), ALU64K(RB_BPF_ADD, 2, -(1 << 20)), LDX64(3, 1, 16), JX(RB_BPF_JGT, 2, 3, 1),
	  MOV64K(0, 0), MOV64K(0, 1), EXIT}, 7, "within (-64 KiB, 2^40)"},
	{"pointer vs pointer", "jset of two pointers into one region",
	 {LDX64(2, 1, 16), LDX64(3, 1, 16), ALU64K(RB_BPF_ADD, 3, 1), JX(RB_BPF_JSET, 2, 3, 1),
	  MOV64K(0, 0), MOV64K(0, 1), EXIT}, 7, "jset"},
	{"pointer vs pointer", "data compared with scratch",
	 {LDX64(2, 1, 16), LDX64(3, 1, 32), JX(RB_BPF_JGT, 2, 3, 1), MOV64K(0, 0), MOV64K(0, 1), EXIT},
	 6, "different regions are compared"},
	/* hole 3: registers after a helper */
	{"uninitialised registers", "r1 read after a helper call",
	 {CALL_HELPER(RB_NDP_HELPER_NEW_SQE), MOV64X(0, 1), EXIT}, 3, "r1 is read before it is written"},
	{"uninitialised registers", "r5 read after a helper call",
	 {MOV64K(5, 7), CALL_HELPER(RB_NDP_HELPER_NEW_SQE), MOV64X(0, 5), EXIT}, 4,
	 "r5 is read before it is written"},
	/* local-call frames */
	{"local-call frames", "a later callee reads what an earlier one left in its frame",
	 {CALL_LOCAL(3), CALL_LOCAL(5), MOV64K(0, 0), EXIT,
	  /* f1 */ ST64(10, -8, 7), MOV64K(0, 0), EXIT,
	  /* f2 */ LDX64(0, 10, -8), EXIT}, 9, "which is not initialised"},
	{"local-call frames", "a pointer into a frame that returned, left in the caller's stack",
	 {ST64(10, -8, 0), MOV64X(2, 10), ALU64K(RB_BPF_ADD, 2, -8), CALL_LOCAL(3), LDX64(3, 10, -8),
	  LDXB(0, 3, 0), EXIT,
	  /* f */ MOV64X(4, 10), ALU64K(RB_BPF_ADD, 4, -16), STX64(2, 4, 0), MOV64K(0, 0), EXIT}, 12,
	 "which is not initialised"},
	{"local-call frames", "a callee returns a pointer to its own frame",
	 {CALL_LOCAL(1), EXIT, MOV64X(0, 10), ALU64K(RB_BPF_ADD, 0, -8), EXIT}, 5,
	 "pointer to its own stack frame"},
};

/* Found by a red team: an atomic on a stack slot holding a spilled
 * register crashed the verifier (and the daemon with it), and on a spilled
 * pointer would have returned the address as a number. */
TEST(atomics_on_spilled_slots_are_checked_not_crashed)
{
	static char log[8192];
	struct rb_bpf_helpers *h = helpers_all();
	const struct rb_bpf_insn num[] = {
		MOV64K(2, 5), STX64(10, 2, -8), MOV64K(3, 1),
		I(RB_BPF_STX | RB_BPF_ATOMIC | RB_BPF_DW, 10, 3, -8, RB_BPF_ADD), LDX64(0, 10, -8), EXIT,
	};
	const struct rb_bpf_insn ptr[] = {
		STX64(10, 1, -8), MOV64K(3, 0),
		I(RB_BPF_STX | RB_BPF_ATOMIC | RB_BPF_DW, 10, 3, -8, RB_BPF_ADD | RB_BPF_FETCH),
		MOV64X(0, 3), EXIT,
	};
	struct rb_bpf_prog *p = NULL;

	REQUIRE(h);
	REQUIRE(rb_bpf_prog_new(num, sizeof(num) / sizeof(num[0]), h, NULL, &p, log, sizeof(log)) == 0);
	CHECK(rb_bpf_verify(p, rb_ndp_bpf_type(RB_NDP_PROG_CQ), log, sizeof(log)) == 0);
	struct rb_bpf_run_opts o = {.args = {0}};
	struct rb_bpf_result res;
	CHECK(rb_bpf_run_interp(p, &o, &res) == 0);
	CHECK_EQ_U64(res.r0, 6);
	rb_bpf_prog_free(p);
	REQUIRE(rb_bpf_prog_new(ptr, sizeof(ptr) / sizeof(ptr[0]), h, NULL, &p, log, sizeof(log)) == 0);
	int rc = rb_bpf_verify(p, rb_ndp_bpf_type(RB_NDP_PROG_CQ), log, sizeof(log));
	if (rc != -EACCES || !strstr(log, "reads part of a pointer spilled at fp-8"))
		RT_FAIL_AT("fetch-add on a spilled pointer: rc %d; log:\n%s", rc, log);
	rb_bpf_prog_free(p);
	rb_bpf_helpers_free(h);
}

TEST(each_soundness_rule_rejects_its_exploit)
{
	static char log[8192];
	struct rb_bpf_helpers *h = helpers_all();

	REQUIRE(h);
	for (size_t i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
		const struct rule_case *c = &rule_cases[i];
		struct rb_bpf_prog *p = NULL;
		char err[256];
		if (rb_bpf_prog_new(c->insns, c->n, h, NULL, &p, err, sizeof(err))) {
			RT_FAIL_AT("%s / %s: does not load: %s", c->rule, c->name, err);
			continue;
		}
		int rc = rb_bpf_verify(p, rb_ndp_bpf_type(RB_NDP_PROG_CQ), log, sizeof(log));
		if (rc != -EACCES || !strstr(log, c->reason))
			RT_FAIL_AT("%s / %s: rc %d, want -EACCES with '%s'; log:\n%s", c->rule, c->name,
				   rc, c->reason, log);
		rb_bpf_prog_free(p);
	}
	rb_bpf_helpers_free(h);
}

/* A helper that may return without writing its out-buffer leaves the
 * bytes as they were: uninitialised stack stays unreadable (the unchecked
 * JIT does not clear the stack for the program, so "written" would hand
 * it stale host stack).  Only a helper declared `filled` initialises. */
TEST(helper_out_buffer_counts_as_written_only_when_filled)
{
	static char log[8192];
	struct rb_bpf_helpers *h = helpers_all();
	const struct rb_bpf_type *cq = rb_ndp_bpf_type(RB_NDP_PROG_CQ);
	/* get_sqe(ctx, 5, fp-16), then read the out-buffer. */
	const struct rb_bpf_insn prog[] = {
		MOV64K(2, 5), MOV64X(3, 10), ALU64K(RB_BPF_ADD, 3, -16),
		CALL_HELPER(RB_NDP_HELPER_GET_SQE), LDX64(0, 10, -16), EXIT,
	};
	struct rb_bpf_helper_proto protos[8];
	struct rb_bpf_type t = *cq;

	REQUIRE(h && cq->n_helpers <= 8);
	memcpy(protos, cq->helpers, cq->n_helpers * sizeof(protos[0]));
	t.helpers = protos;
	bool found = false;
	for (unsigned i = 0; i < t.n_helpers; i++) {
		if (protos[i].id != RB_NDP_HELPER_GET_SQE)
			continue;
		found = true;
		CHECK(protos[i].arg[2].kind == RB_BPF_ARG_MEM_W);
		CHECK(protos[i].arg[2].filled); /* exec.c's get_sqe zeroes it on failure */
		protos[i].arg[2].filled = false;
	}
	CHECK(found);
	struct rb_bpf_prog *p = NULL;
	REQUIRE(rb_bpf_prog_new(prog, sizeof(prog) / sizeof(prog[0]), h, NULL, &p, log, sizeof(log)) == 0);
	CHECK(rb_bpf_verify(p, cq, log, sizeof(log)) == 0);
	int rc = rb_bpf_verify(p, &t, log, sizeof(log));
	if (rc != -EACCES || !strstr(log, "fp-16, which is not initialised"))
		RT_FAIL_AT("unfilled out-buffer read back: rc %d; log:\n%s", rc, log);
	rb_bpf_prog_free(p);
	rb_bpf_helpers_free(h);
}

/*
 * Hole 4: a program built to make states explode (nested local calls, each
 * level branching on numbers reloaded from the context so that no state
 * covers another) must be refused quickly and within the memory limit,
 * whatever the instruction cap says.
 */
static size_t explosion_prog(struct rb_bpf_insn *out, unsigned levels, unsigned branches)
{
	size_t n = 0;

	/* main: r6 = ctx, call level 1, exit */
	for (unsigned lv = 0; lv < levels; lv++) {
		out[n++] = (struct rb_bpf_insn)MOV64X(6, 1);
		out[n++] = (struct rb_bpf_insn)MOV64K(7, 0);
		for (unsigned b = 0; b < branches; b++) {
			out[n++] = (struct rb_bpf_insn)LDX64(2, 6, 48);
			out[n++] = (struct rb_bpf_insn)JK(RB_BPF_JGT, 2, (int32_t)b, 1);
			out[n++] = (struct rb_bpf_insn)ALU64K(RB_BPF_ADD, 7, (int32_t)(1u << (b % 30)));
		}
		if (lv + 1 < levels) {
			out[n++] = (struct rb_bpf_insn)MOV64X(1, 6);
			out[n++] = (struct rb_bpf_insn)CALL_LOCAL(2); /* the next level follows this function's exit */
		}
		out[n++] = (struct rb_bpf_insn)MOV64X(0, 7);
		out[n++] = (struct rb_bpf_insn)EXIT;
	}
	return n;
}

TEST(state_explosion_is_refused_within_time_and_memory)
{
	static struct rb_bpf_insn insns[4096];
	static char log[8192];
	struct rb_bpf_helpers *h = helpers_all();
	size_t n = explosion_prog(insns, 8, 24);
	struct rb_bpf_prog *p = NULL;
	struct rb_bpf_verify_stats st;
	/* What an NDP LOAD allows (lib/ndp), but with no instruction cap to
	 * hide behind: work and memory must stop it. */
	struct rb_bpf_verify_opts o = {.max_insns = UINT64_MAX, .max_mem = 64u << 20,
				       .max_cpu_ns = 2000000000ull};

	REQUIRE(h);
	REQUIRE(rb_bpf_prog_new(insns, n, h, NULL, &p, log, sizeof(log)) == 0);
	int rc = rb_bpf_verify_ex(p, rb_ndp_bpf_type(RB_NDP_PROG_CQ), &o, &st, log, sizeof(log));
	fprintf(stderr, "    %zu insns: rc %d, %" PRIu64 " walked, %" PRIu64 " frames copied, %" PRIu64
		" compared, work %" PRIu64 ", peak %" PRIu64 " KiB, %.3f s\n    %s", n, rc,
		st.insns_processed, st.frames_copied, st.frames_compared, st.work, st.peak_mem >> 10,
		st.elapsed_ns / 1e9, log);
	CHECK(rc == -E2BIG);
	CHECK(strstr(log, "too complex") != NULL);
	CHECK(st.peak_mem <= (64u << 20) + (1u << 20));
	CHECK(st.work <= RB_BPF_VERIFY_MAX_WORK + 32 * RB_BPF_MAX_FRAMES * RB_BPF_VERIFY_FRAME_WORK);
	CHECK(st.elapsed_ns < 1500000000ull);
	/* A memory cap alone stops it too, with a message that says so. */
	o.max_work = UINT64_MAX;
	o.max_mem = 4u << 20;
	rc = rb_bpf_verify_ex(p, rb_ndp_bpf_type(RB_NDP_PROG_CQ), &o, &st, log, sizeof(log));
	CHECK(rc == -E2BIG);
	CHECK(strstr(log, "KiB of verifier memory") != NULL);
	CHECK(st.peak_mem <= (4u << 20) + (1u << 20));
	/* And the work cap alone. */
	o.max_mem = UINT64_MAX;
	o.max_work = 100000;
	rc = rb_bpf_verify_ex(p, rb_ndp_bpf_type(RB_NDP_PROG_CQ), &o, &st, log, sizeof(log));
	CHECK(rc == -E2BIG);
	CHECK(strstr(log, "units of work") != NULL);
	rb_bpf_prog_free(p);
	rb_bpf_helpers_free(h);
}

/* What the verifier hands the JIT: the union of what it proved. */
TEST(facts_record_what_was_proven)
{
	static char log[8192];
	struct rb_bpf_helpers *h = helpers_all();
	const struct rb_bpf_insn prog[] = {
		/* 0 */ LDX64(2, 1, 16),            /* r2 = data */
		/* 1 */ LDX64(3, 1, 48),            /* r3 = offset */
		/* 2 */ ALU64K(RB_BPF_AND, 3, 255), /* r3 in [0, 255] */
		/* 3 */ ALU64X(RB_BPF_ADD, 2, 3),   /* pointer + [0, 255] */
		/* 4 */ MOV64K(4, 9),
		/* 5 */ ALU64X(RB_BPF_ADD, 3, 4),   /* src always 9 */
		/* 6 */ ST64(10, -24, 1),           /* 24 bytes of stack */
		/* 7 */ JK(RB_BPF_JEQ, 4, 9, 1),    /* always taken */
		/* 8 */ LDX64(0, 2, 4000),          /* never reached */
		/* 9 */ LDXB(0, 2, 0),
		/* 10 */ EXIT,
	};
	struct rb_bpf_prog *p = NULL;

	REQUIRE(h);
	REQUIRE(rb_bpf_prog_new(prog, sizeof(prog) / sizeof(prog[0]), h, NULL, &p, log, sizeof(log)) == 0);
	REQUIRE(rb_bpf_verify(p, rb_ndp_bpf_type(RB_NDP_PROG_CQ), log, sizeof(log)) == 0);
	const struct rb_bpf_fact *f = p->facts;
	REQUIRE(f);
	CHECK(f[0].flags & RB_FACT_FN_ENTRY);
	CHECK_EQ_U64(f[0].stack_depth, 24);
	CHECK(f[3].flags & RB_FACT_PTR_ARITH);
	CHECK(!(f[3].flags & RB_FACT_NUM_IS_DST));
	CHECK_EQ_U64((uint64_t)f[3].lo, 0);
	CHECK_EQ_U64((uint64_t)f[3].hi, 255);
	CHECK(f[5].flags & RB_FACT_SRC_CONST);
	CHECK_EQ_U64(f[5].k, 9);
	CHECK(!(f[5].flags & RB_FACT_PTR_ARITH));
	CHECK(f[7].flags & RB_FACT_SEEN);
	CHECK(!(f[8].flags & RB_FACT_SEEN));
	CHECK(f[9].flags & RB_FACT_SEEN);
	rb_bpf_prog_free(p);
	rb_bpf_helpers_free(h);
}

TEST(too_complex_is_e2big_and_log_says_so)
{
	struct rt_blob b = rt_read_file(TEST_PROGS_DIR "/verifier_ok.o");
	struct rb_bpf_helpers *h = helpers_all();
	struct rb_bpf_prog *p = NULL;
	char log[512];
	struct rb_bpf_verify_opts o = {.max_insns = 20};
	struct rb_bpf_verify_stats st;

	REQUIRE(rb_bpf_prog_load_elf(b.p, b.len, "cq_loop_sum", h, &p, log, sizeof(log)) == 0);
	CHECK(rb_bpf_verify_ex(p, rb_ndp_bpf_type(RB_NDP_PROG_CQ), &o, &st, log, sizeof(log)) == -E2BIG);
	CHECK_STR_CONTAINS(log, "too complex");
	CHECK(st.insns_processed > 20);
	rb_bpf_prog_free(p);
	rb_bpf_helpers_free(h);
	free(b.p);
}

TEST(malformed_type_is_einval)
{
	static const struct rb_bpf_ctx_field bad_field[] = {
		{"p", 4, 8, 1, RB_BPF_ACC_READ, RB_BPF_FIELD_PTR, 3},
	};
	struct rb_bpf_type t = {"bad", 16, NULL, 0, bad_field, 1, NULL, 0};
	struct rb_bpf_insn prog[] = {MOV64K(0, 0), EXIT};
	struct rb_bpf_prog *p = NULL;
	char log[256];

	REQUIRE(rb_bpf_prog_new(prog, 2, NULL, NULL, &p, log, sizeof(log)) == 0);
	CHECK(rb_bpf_verify(p, &t, log, sizeof(log)) == -EINVAL);
	CHECK(rb_bpf_verify(p, NULL, log, sizeof(log)) == -EINVAL);
	CHECK(rb_bpf_verify(p, rb_ndp_bpf_type(RB_NDP_PROG_XRP), log, sizeof(log)) == 0);
	CHECK_EQ_U64(log[0], 0);
	rb_bpf_prog_free(p);
}

/* ---- accepted programs, then run under run-time checks --------------------------- */

static uint8_t g_mem[64];

static uint64_t h_get_sqe(struct rb_bpf_call *c, uint64_t ctx, uint64_t idx, uint64_t out,
			  uint64_t a4, uint64_t a5)
{
	(void)ctx, (void)idx, (void)a4, (void)a5;
	if (!rb_bpf_call_mem_ok(c, out, 16, true)) {
		rb_bpf_call_fail(c, "get_sqe: bad out pointer");
		return 0;
	}
	memset((void *)(uintptr_t)out, 0, 16);
	return idx % 2 ? 0 : (uint64_t)-22;
}

/* Stand-ins, deterministic in the arguments each helper declares (the
 * others hold whatever the engine left there), so the interpreter and the
 * JIT see the same answers. */
static uint64_t h_new_sqe(struct rb_bpf_call *c, uint64_t ctx, uint64_t a2, uint64_t a3,
			  uint64_t a4, uint64_t a5)
{
	const struct rb_ndp_ctx *x = (const struct rb_ndp_ctx *)(uintptr_t)ctx;

	(void)c, (void)a2, (void)a3, (void)a4, (void)a5;
	return x->n_next < 16 ? x->n_next : (uint64_t)-28;
}

static uint64_t h_set_sqe(struct rb_bpf_call *c, uint64_t ctx, uint64_t idx, uint64_t off,
			  uint64_t len, uint64_t a5)
{
	(void)c, (void)ctx, (void)a5;
	return (idx < 16 && !(off % 512) && len == 512) ? 0 : (uint64_t)-34;
}

static uint64_t h_disk_trans(struct rb_bpf_call *c, uint64_t ctx, uint64_t off, uint64_t a3,
			     uint64_t a4, uint64_t a5)
{
	(void)c, (void)ctx, (void)a3, (void)a4, (void)a5;
	return off < (1ull << 30) ? off : (uint64_t)-34;
}

static uint64_t h_mem_trans(struct rb_bpf_call *c, uint64_t ctx, uint64_t key, uint64_t off,
			    uint64_t len, uint64_t a5)
{
	(void)c, (void)ctx, (void)a5;
	if (off > sizeof(g_mem) || len > sizeof(g_mem) - off || key % 4 == 0)
		return 0;
	return (uint64_t)(uintptr_t)(g_mem + off);
}

static uint64_t h_unknown(struct rb_bpf_call *c, uint64_t a1, uint64_t a2, uint64_t a3,
			  uint64_t a4, uint64_t a5)
{
	(void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
	rb_bpf_call_fail(c, "an unknown helper ran");
	return 0;
}

/* The NDP helper ids with stand-ins (the real ones need a request), every
 * other id registered so that the verifier, not the loader, refuses it. */
static struct rb_bpf_helpers *helpers_all(void)
{
	struct rb_bpf_helpers *h = rb_bpf_helpers_new();
	char name[32];

	if (!h)
		return NULL;
	rb_bpf_helpers_register(h, RB_NDP_HELPER_GET_SQE, "rb_ndp_get_sqe", h_get_sqe);
	rb_bpf_helpers_register(h, RB_NDP_HELPER_NEW_SQE, "rb_ndp_new_sqe", h_new_sqe);
	rb_bpf_helpers_register(h, RB_NDP_HELPER_SET_SQE, "rb_ndp_set_sqe", h_set_sqe);
	rb_bpf_helpers_register(h, RB_NDP_HELPER_DISK_TRANS, "rb_ndp_disk_trans", h_disk_trans);
	rb_bpf_helpers_register(h, RB_NDP_HELPER_MEM_TRANS, "rb_ndp_mem_trans", h_mem_trans);
	for (uint32_t id = 0; id < RB_BPF_MAX_HELPERS; id++) {
		if (rb_bpf_helpers_name(h, id))
			continue;
		snprintf(name, sizeof(name), "unknown_%u", id);
		rb_bpf_helpers_register(h, id, name, h_unknown);
	}
	return h;
}

/* Runs an accepted program many times on random inputs: in the interpreter
 * with every access checked (a verifier that let an unsafe program through
 * shows up as a fault), then compiled without checks on the same inputs,
 * which must give the same r0 and leave the same bytes. */
static void run_randomly(struct rb_bpf_prog *p, uint32_t type, const char *name, int iters)
{
	static uint8_t data[4096], scratch[4096], meta[4096];
	static uint8_t in_data[4096], in_scratch[4096], out_data[4096], out_scratch[4096];
	uint8_t in_mem[sizeof(g_mem)], out_mem[sizeof(g_mem)];
	union {
		struct rb_ndp_ctx n;
		struct bpf_xrp x;
	} ctx, in_ctx, out_ctx;
	char err[256];

	if (rb_bpf_jit(p, RB_BPF_JIT_UNCHECKED, err, sizeof(err))) {
		RT_FAIL_AT("%s: does not compile: %s", name, err);
		return;
	}
	for (int iter = 0; iter < iters; iter++) {
		for (size_t i = 0; i < sizeof(data); i += 8) {
			uint64_t v = rnd_value();
			memcpy(data + i, &v, 8);
			v = rnd_value();
			memcpy(scratch + i, &v, 8);
			v = rnd_value();
			memcpy(meta + i, &v, 8);
		}
		if (iter % 3 == 0)
			memset(scratch, 0, 64); /* small keys: walks that go deep */
		for (size_t i = 0; i < sizeof(g_mem); i++)
			g_mem[i] = (uint8_t)rnd();
		memset(&ctx, 0, sizeof(ctx));
		size_t ctx_len;
		if (type == RB_NDP_PROG_XRP) {
			ctx.x.data = (char *)data;
			ctx.x.scratch = (char *)scratch;
			ctx_len = sizeof(ctx.x);
		} else {
			ctx.n.meta = (uintptr_t)meta;
			ctx.n.meta_end = (uintptr_t)meta + rnd() % 4097;
			ctx.n.data = (uintptr_t)data;
			ctx.n.data_end = (uintptr_t)data + 4096;
			ctx.n.scratch = (uintptr_t)scratch;
			ctx.n.scratch_end = (uintptr_t)scratch + 4096;
			ctx.n.offset = rnd_value() & ~511ull;
			ctx.n.len = (uint32_t)(rnd() % 4097);
			ctx.n.n_next = (uint32_t)(rnd() % 17);
			ctx_len = sizeof(ctx.n);
		}
		memcpy(in_data, data, sizeof(data));
		memcpy(in_scratch, scratch, sizeof(scratch));
		memcpy(in_mem, g_mem, sizeof(g_mem));
		in_ctx = ctx;
		struct rb_bpf_region regions[] = {
			{(uintptr_t)&ctx, ctx_len, true},
			{(uintptr_t)data, sizeof(data), true},
			{(uintptr_t)scratch, sizeof(scratch), true},
			{(uintptr_t)meta, sizeof(meta), false},
			{(uintptr_t)g_mem, sizeof(g_mem), true},
		};
		struct rb_bpf_run_opts o = {.args = {(uintptr_t)&ctx}, .regions = regions,
					    .n_regions = 5, .budget = 200000};
		struct rb_bpf_result ri, rj;
		rb_bpf_run_interp(p, &o, &ri);
		if (ri.status != RB_BPF_OK && ri.status != RB_BPF_E_BUDGET) {
			RT_FAIL_AT("%s: accepted by the verifier but failed at run time: %s", name, ri.msg);
			return;
		}
		if (ri.status == RB_BPF_E_BUDGET)
			continue; /* the JIT may stop up to a block earlier */
		memcpy(out_data, data, sizeof(data));
		memcpy(out_scratch, scratch, sizeof(scratch));
		memcpy(out_mem, g_mem, sizeof(g_mem));
		out_ctx = ctx;
		memcpy(data, in_data, sizeof(data));
		memcpy(scratch, in_scratch, sizeof(scratch));
		memcpy(g_mem, in_mem, sizeof(g_mem));
		ctx = in_ctx;
		rb_bpf_run(p, &o, &rj);
		if (rj.status != RB_BPF_OK || rj.r0 != ri.r0 || memcmp(data, out_data, sizeof(data)) ||
		    memcmp(scratch, out_scratch, sizeof(scratch)) || memcmp(g_mem, out_mem, sizeof(g_mem)) ||
		    memcmp(&ctx, &out_ctx, ctx_len)) {
			RT_FAIL_AT("%s: unchecked JIT differs from the interpreter (status %d r0 %#" PRIx64
				   " vs %#" PRIx64 "; data %d scratch %d mem %d ctx %d)", name, rj.status, rj.r0,
				   ri.r0, !!memcmp(data, out_data, sizeof(data)),
				   !!memcmp(scratch, out_scratch, sizeof(scratch)),
				   !!memcmp(g_mem, out_mem, sizeof(g_mem)), !!memcmp(&ctx, &out_ctx, ctx_len));
			return;
		}
	}
}

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

TEST(accepted_corpus_never_faults_and_unchecked_jit_matches_interpreter)
{
	static char log[8192];

	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		const char *sec = accepted[i].section;
		uint32_t type = type_of(sec);
		/* "xrp_bpfkv_...": the prefix names the type, the rest the section. */
		if (strstr(accepted[i].path, "/progs/"))
			sec = strchr(sec, '_') + 1;
		struct rt_blob b = rt_read_file(accepted[i].path);
		struct rb_bpf_prog *p = NULL;
		int rc = verify_section(&b, sec, type, log, sizeof(log), &p);
		if (rc) {
			RT_FAIL_AT("%s: rejected (%d):\n%s", sec, rc, log);
		} else {
			run_randomly(p, type, sec, 300);
		}
		rb_bpf_prog_free(p);
		free(b.p);
	}
}

/* ---- random programs: whatever the verifier accepts must be safe ------------- */

/* One random instruction from a menu biased toward what makes verification
 * hard: pointers into the buffers, masks and bound checks, pointer
 * arithmetic, stack spills, forward and backward jumps.  r6 = data,
 * r7 = scratch, r8 = meta, r9 = meta_end are loaded first; anything goes
 * after that (the verifier decides). */
static unsigned gen_insn(struct rb_bpf_insn *out, unsigned at, unsigned n_total)
{
	static const uint8_t alu_ops[] = {RB_BPF_ADD, RB_BPF_SUB, RB_BPF_MUL, RB_BPF_AND, RB_BPF_OR,
					  RB_BPF_XOR, RB_BPF_LSH, RB_BPF_RSH, RB_BPF_ARSH, RB_BPF_MOD,
					  RB_BPF_DIV, RB_BPF_MOV};
	static const uint8_t jmp_ops[] = {RB_BPF_JEQ, RB_BPF_JNE, RB_BPF_JGT, RB_BPF_JGE, RB_BPF_JLT,
					  RB_BPF_JLE, RB_BPF_JSGT, RB_BPF_JSLT, RB_BPF_JSET};
	static const uint8_t sizes[] = {RB_BPF_B, RB_BPF_H, RB_BPF_W, RB_BPF_DW};
	static const int32_t imms[] = {0, 1, 7, 8, 15, 31, 63, 255, 511, 4088, 4095, 4096, 4100, -1, -8};
	uint8_t r = (uint8_t)(rnd() % 6), q = (uint8_t)(rnd() % 10);
	int32_t imm = rnd() % 3 ? imms[rnd() % (sizeof(imms) / 4)] : (int32_t)rnd();
	int16_t off = (int16_t)(rnd() % 4 ? (int)(rnd() % 9) * 8 - 32 : (int)(rnd() % 4200) - 50);

	switch (rnd() % 11) {
	case 0: case 1: /* ALU on numbers */
		*out = (struct rb_bpf_insn){.code = (uint8_t)((rnd() % 4 ? RB_BPF_ALU64 : RB_BPF_ALU) |
							alu_ops[rnd() % sizeof(alu_ops)] |
							(rnd() % 2 ? RB_BPF_X : RB_BPF_K)),
					    .dst = r, .src = rnd() % 2 ? q : 0, .imm = imm};
		if (!(out->code & RB_BPF_X))
			out->src = 0;
		else
			out->imm = 0;
		return 1;
	case 2: /* a pointer plus a number: r = (data|scratch|meta) + rX */
		out[0] = (struct rb_bpf_insn){.code = RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, .dst = r,
					      .src = (uint8_t)(6 + rnd() % 3)};
		out[1] = (struct rb_bpf_insn){.code = RB_BPF_ALU64 | RB_BPF_ADD | (rnd() % 2 ? RB_BPF_X : RB_BPF_K),
					      .dst = r, .src = 0, .imm = imm};
		if (out[1].code & RB_BPF_X) {
			out[1].src = (uint8_t)(rnd() % 6);
			out[1].imm = 0;
		}
		return 2;
	case 3: case 4: /* load */
		*out = (struct rb_bpf_insn){.code = (uint8_t)(RB_BPF_LDX | RB_BPF_MEM | sizes[rnd() % 4]),
					    .dst = r, .src = rnd() % 3 ? (uint8_t)(rnd() % 10) : 10, .off = off};
		return 1;
	case 5: /* store a register or an immediate */
		if (rnd() % 2)
			*out = (struct rb_bpf_insn){.code = (uint8_t)(RB_BPF_STX | RB_BPF_MEM | sizes[rnd() % 4]),
						    .dst = rnd() % 3 ? (uint8_t)(rnd() % 10) : 10, .src = q, .off = off};
		else
			*out = (struct rb_bpf_insn){.code = (uint8_t)(RB_BPF_ST | RB_BPF_MEM | sizes[rnd() % 4]),
						    .dst = rnd() % 3 ? (uint8_t)(rnd() % 10) : 10, .off = off, .imm = imm};
		return 1;
	case 6: case 7: { /* conditional jump, mostly forward */
		int span = (int)(rnd() % 6) + 1;
		if (rnd() % 5 == 0 && at >= 6)
			span = -(int)(rnd() % 5) - 2; /* a loop */
		if ((int)at + 1 + span >= (int)n_total || (int)at + 1 + span < 4)
			span = 0;
		*out = (struct rb_bpf_insn){.code = (uint8_t)((rnd() % 4 ? RB_BPF_JMP : RB_BPF_JMP32) |
							jmp_ops[rnd() % sizeof(jmp_ops)] |
							(rnd() % 3 ? RB_BPF_K : RB_BPF_X)),
					    .dst = rnd() % 4 ? r : (uint8_t)(6 + rnd() % 4),
					    .src = 0, .off = (int16_t)span, .imm = imm};
		if (out->code & RB_BPF_X) {
			out->src = q;
			out->imm = 0;
		}
		return 1;
	}
	case 8: /* mask */
		*out = (struct rb_bpf_insn){.code = RB_BPF_ALU64 | RB_BPF_AND | RB_BPF_K, .dst = r,
					    .imm = (int32_t)((1u << (rnd() % 14)) - 1) & ~(int32_t)(rnd() % 2 ? 7 : 0)};
		return 1;
	case 9: /* a counter step, for loops */
		*out = (struct rb_bpf_insn){.code = RB_BPF_ALU64 | RB_BPF_ADD | RB_BPF_K, .dst = r,
					    .imm = rnd() % 2 ? 1 : 8};
		return 1;
	default: /* copy a register (pointers too) */
		*out = (struct rb_bpf_insn){.code = RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, .dst = r, .src = q};
		return 1;
	}
}

TEST(random_programs_the_verifier_accepts_never_fault)
{
	struct rb_bpf_helpers *h = helpers_all();
	unsigned accepted_n = 0, tried = 0;
	char log[4096];

	REQUIRE(h);
	for (int iter = 0; iter < 30000; iter++) {
		struct rb_bpf_insn prog[48];
		unsigned n = 0, want = 12 + (unsigned)(rnd() % 30);
		prog[n++] = (struct rb_bpf_insn){.code = RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, .dst = 6, .src = 1, .off = 16};
		prog[n++] = (struct rb_bpf_insn){.code = RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, .dst = 7, .src = 1, .off = 32};
		prog[n++] = (struct rb_bpf_insn){.code = RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, .dst = 8, .src = 1, .off = 0};
		prog[n++] = (struct rb_bpf_insn){.code = RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, .dst = 9, .src = 1, .off = 8};
		for (int k = 0; k < 4; k++) /* numbers from the guest's scratch */
			prog[n++] = (struct rb_bpf_insn){.code = RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW,
							 .dst = (uint8_t)(2 + k), .src = 7, .off = (int16_t)(8 * k)};
		prog[n++] = (struct rb_bpf_insn){.code = RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, .dst = 0};
		while (n < want)
			n += gen_insn(&prog[n], n, want + 2);
		prog[n++] = (struct rb_bpf_insn){.code = RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, .dst = 0};
		prog[n++] = (struct rb_bpf_insn){.code = RB_BPF_JMP | RB_BPF_EXIT};
		struct rb_bpf_prog *p = NULL;
		if (rb_bpf_prog_new(prog, n, h, NULL, &p, log, sizeof(log)))
			continue; /* e.g. a jump into nowhere: not the verifier's business */
		tried++;
		if (rb_bpf_verify(p, rb_ndp_bpf_type(RB_NDP_PROG_CQ), log, sizeof(log)) == 0) {
			accepted_n++;
			char name[32];
			snprintf(name, sizeof(name), "random program %d", iter);
			run_randomly(p, RB_NDP_PROG_CQ, name, 40);
			if (rt_cur_failed) {
				for (unsigned i = 0; i < n; i++) {
					char b[96];
					rb_bpf_disasm_insn(prog, n, i, h, b, sizeof(b));
					fprintf(stderr, "      %3u: %s\n", i, b);
				}
				rb_bpf_prog_free(p);
				break;
			}
		}
		rb_bpf_prog_free(p);
	}
	fprintf(stderr, "    %u random programs verified, %u accepted\n", tried, accepted_n);
	/* The menu must produce accepted programs, or this tests nothing. */
	CHECK(accepted_n > 500);
	rb_bpf_helpers_free(h);
}

TEST(verification_is_fast_for_bpfkv_programs)
{
	struct rt_blob b = rt_read_file(TEST_PROGS_DIR "/../../progs/bpfkv_xrp_lookup.o");
	struct rb_bpf_helpers *h = helpers_all();
	struct rb_bpf_prog *p = NULL;
	struct rb_bpf_verify_stats st;
	char log[4096];

	REQUIRE(rb_bpf_prog_load_elf(b.p, b.len, "bpfkv_xrp_lookup", h, &p, log, sizeof(log)) == 0);
	CHECK(rb_bpf_verify_ex(p, rb_ndp_bpf_type(RB_NDP_PROG_XRP), NULL, &st, log, sizeof(log)) == 0);
	CHECK(st.insns_processed > 0);
	/* Generous: it takes tens of microseconds; a regression to seconds
	 * (exponential paths) would fail. */
	CHECK(st.elapsed_ns < 500000000ull);
	rb_bpf_prog_free(p);
	rb_bpf_helpers_free(h);
	free(b.p);
}

TEST_MAIN()
