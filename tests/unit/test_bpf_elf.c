/* SPDX-License-Identifier: MIT */
/*
 * Tests of the ELF loader (lib/bpf/elf.c) against real clang-19 objects from
 * tests/programs: each program is loaded and run and its result compared
 * with the same computation in C; malformed objects must give errors, never
 * crashes (run this binary from the sanitizer build too).
 */
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rosen/bpf.h>

#include "harness.h"

/* ---- Objects ------------------------------------------------------------ */


static struct rt_blob read_obj(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s.o", TEST_PROGS_DIR, name);
	return rt_read_file(path);
}

static int load_blob(const struct rt_blob *b, const char *sec,
		     struct rb_bpf_prog **p, char *err, size_t errlen)
{
	return rb_bpf_prog_load_elf(b->p, b->len, sec, NULL, p, err, errlen);
}

static struct rb_bpf_prog *load_prog(const char *obj, const char *sec)
{
	struct rt_blob b = read_obj(obj);
	struct rb_bpf_prog *p = NULL;
	char err[256] = "";
	int rc = load_blob(&b, sec, &p, err, sizeof(err));

	free(b.p);
	if (rc)
		fprintf(stderr, "    load %s:%s: %d %s\n", obj, sec, rc, err);
	REQUIRE(rc == 0 && p);
	return p;
}

/* Expects loading `sec` of `b` to fail with `rc` and a message containing
 * `needle`. */
static void expect_load_error(const struct rt_blob *b, const char *sec, int rc,
			      const char *needle)
{
	struct rb_bpf_prog *p = (struct rb_bpf_prog *)&p; /* must be reset */
	char err[256] = "";
	int got = load_blob(b, sec, &p, err, sizeof(err));

	if (got != rc)
		fprintf(stderr, "    %s: got %d (%s), want %d\n", sec, got, err, rc);
	CHECK(got == rc);
	CHECK(p == NULL);
	CHECK_STR_CONTAINS(err, needle);
	if (got == 0 && p)
		rb_bpf_prog_free(p);
}

/* ---- Running ------------------------------------------------------------ */

/* Runs with r1 = mem, r2 = arg and [mem, mem + mem_len) granted. */
static int run_prog(const struct rb_bpf_prog *p, void *mem, size_t mem_len,
		    uint64_t arg, bool writable, uint64_t budget,
		    struct rb_bpf_result *res)
{
	struct rb_bpf_region reg = {
		.addr = (uint64_t)(uintptr_t)mem, .len = mem_len,
		.writable = writable,
	};
	struct rb_bpf_run_opts o = { 0 };

	o.args[0] = (uint64_t)(uintptr_t)mem;
	o.args[1] = arg;
	o.regions = &reg;
	o.n_regions = mem ? 1 : 0;
	o.budget = budget;
	memset(res, 0, sizeof(*res));
	return rb_bpf_run(p, &o, res);
}

static uint64_t run_ok(const struct rb_bpf_prog *p, void *mem, size_t mem_len,
		       uint64_t arg)
{
	struct rb_bpf_result res;
	int rc = run_prog(p, mem, mem_len, arg, false, 0, &res);

	if (rc || res.status != RB_BPF_OK)
		fprintf(stderr, "    run: rc %d status %s at pc %u: %s\n", rc,
			rb_bpf_status_name(res.status), res.pc, res.msg);
	REQUIRE(rc == 0 && res.status == RB_BPF_OK);
	return res.r0;
}

/* Deterministic pseudo-random numbers (xorshift64*). */
static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
	rng_state = s ? s : 1;
}

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* ---- Raw ELF access, to check listings and forge malformed objects ------ */

static Elf64_Shdr *raw_shdrs(const struct rt_blob *b, size_t *n)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)b->p;

	REQUIRE(b->len >= sizeof(*eh) && eh->e_shoff % 8 == 0 &&
		eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) <= b->len);
	*n = eh->e_shnum;
	return (Elf64_Shdr *)(b->p + eh->e_shoff);
}

static const char *raw_name(const struct rt_blob *b, const Elf64_Shdr *sh)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)b->p;
	size_t n;
	const Elf64_Shdr *all = raw_shdrs(b, &n);

	return (const char *)b->p + all[eh->e_shstrndx].sh_offset + sh->sh_name;
}

static Elf64_Shdr *raw_section(const struct rt_blob *b, const char *name)
{
	size_t n;
	Elf64_Shdr *sh = raw_shdrs(b, &n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(raw_name(b, &sh[i]), name) == 0)
			return &sh[i];
	fprintf(stderr, "    no section %s\n", name);
	REQUIRE(0);
	return NULL;
}

static struct rb_bpf_insn *raw_insns(const struct rt_blob *b, const char *sec)
{
	return (struct rb_bpf_insn *)(b->p + raw_section(b, sec)->sh_offset);
}

/* Relocation `i` of section `sec` (from the REL section naming it). */
static Elf64_Rel *raw_rel(const struct rt_blob *b, const char *sec, size_t i)
{
	char name[128];
	Elf64_Shdr *rs;

	snprintf(name, sizeof(name), ".rel%s", sec);
	rs = raw_section(b, name);
	REQUIRE((i + 1) * sizeof(Elf64_Rel) <= rs->sh_size);
	return (Elf64_Rel *)(b->p + rs->sh_offset) + i;
}

static struct rt_blob copy_blob(const struct rt_blob *b)
{
	struct rt_blob c = { malloc(b->len), b->len };

	REQUIRE(c.p);
	memcpy(c.p, b->p, b->len);
	return c;
}

/* ---- Section listings --------------------------------------------------- */

struct listing {
	char name[16][64];
	size_t n_insns[16];
	size_t n;
};

static void collect(const char *name, size_t n_insns, void *arg)
{
	struct listing *l = arg;

	if (l->n < 16) {
		snprintf(l->name[l->n], sizeof(l->name[0]), "%s", name);
		l->n_insns[l->n] = n_insns;
	}
	l->n++;
}

static size_t listed(const struct listing *l, const char *name)
{
	for (size_t i = 0; i < l->n && i < 16; i++)
		if (strcmp(l->name[i], name) == 0)
			return l->n_insns[i];
	return 0;
}

static struct listing list_sections(const struct rt_blob *b)
{
	struct listing l = { 0 };
	char err[256] = "";
	int rc = rb_bpf_elf_sections(b->p, b->len, collect, &l, err, sizeof(err));

	if (rc)
		fprintf(stderr, "    sections: %d %s\n", rc, err);
	REQUIRE(rc == 0);
	return l;
}

/* The listing must be exactly the non-empty SHF_EXECINSTR sections. */
static void check_listing_matches_headers(const struct rt_blob *b)
{
	struct listing l = list_sections(b);
	size_t n, expect = 0;
	Elf64_Shdr *sh = raw_shdrs(b, &n);

	for (size_t i = 0; i < n; i++) {
		if (!(sh[i].sh_flags & SHF_EXECINSTR) || !sh[i].sh_size)
			continue;
		expect++;
		CHECK_EQ_U64(listed(&l, raw_name(b, &sh[i])), sh[i].sh_size / 8);
	}
	CHECK_EQ_U64(l.n, expect);
}

TEST(sections_lists_each_program_of_a_multi_program_object)
{
	struct rt_blob b = read_obj("multi");
	struct listing l = list_sections(&b);

	/* .text is empty in this object, so exactly the three programs. */
	CHECK_EQ_U64(l.n, 3);
	CHECK(listed(&l, "sum") > 0);
	CHECK(listed(&l, "xor") > 0);
	CHECK(listed(&l, "max") > 0);
	check_listing_matches_headers(&b);
	free(b.p);
}

TEST(sections_lists_text_and_program_with_instruction_counts)
{
	static const char *objs[] = { "subprog", "rodata", "globals", "v4",
				      "node_search", "hostile", "unsupported" };

	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
		struct rt_blob b = read_obj(objs[i]);

		check_listing_matches_headers(&b);
		free(b.p);
	}
}

/* ---- Programs ----------------------------------------------------------- */

static uint64_t ref_fold(const uint8_t *p, uint64_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	if (n > 64)
		n = 64;
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static uint64_t ref_chain(uint64_t x)
{
	return (x * x + 1) + ((x + 1) * (x + 1) + 1);
}

TEST(subprog_links_text_calls_and_computes_like_c)
{
	struct rt_blob b = read_obj("subprog");
	struct listing l = list_sections(&b);
	struct rb_bpf_prog *p = load_prog("subprog", "subprog");
	const struct rb_bpf_insn *in = rb_bpf_prog_insns(p);
	size_t n = rb_bpf_prog_len(p), entry = listed(&l, "subprog");
	uint8_t mem[100];
	static const uint64_t lens[] = { 0, 1, 7, 63, 64, 65, 99, 100 };
	unsigned local_calls = 0;

	/* The whole of .text follows the entry section. */
	CHECK_EQ_U64(n, entry + listed(&l, ".text"));
	/* Every local call lands inside the program; the entry's land in the
	 * appended .text. */
	for (size_t pc = 0; pc < n; pc++) {
		int64_t t;

		if (in[pc].code != (RB_BPF_JMP | RB_BPF_CALL) ||
		    in[pc].src != RB_BPF_CALL_LOCAL)
			continue;
		local_calls++;
		t = (int64_t)pc + 1 + in[pc].imm;
		CHECK(t >= 0 && (uint64_t)t < n);
		if (pc < entry)
			CHECK((uint64_t)t >= entry);
	}
	CHECK(local_calls >= 5);
	for (size_t i = 0; i < sizeof(mem); i++)
		mem[i] = (uint8_t)(i * 37 + 11);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		CHECK_EQ_U64(run_ok(p, mem, lens[i], lens[i]),
			     ref_fold(mem, lens[i]) ^ ref_chain(lens[i]));
	rb_bpf_prog_free(p);
	free(b.p);
}

static const uint64_t primes[8] = { 2, 3, 5, 7, 11, 13, 17, 19 };
static const uint64_t squares[8] = { 0, 1, 4, 9, 16, 25, 36, 49 };
static const char motto[] = "RosenBridge eBPF";

TEST(rodata_tables_are_read_at_run_time_with_lddw_addends)
{
	struct rb_bpf_prog *p = load_prog("rodata", "rodata_table");
	const struct rb_bpf_insn *in = rb_bpf_prog_insns(p);
	uint64_t offsets[2], n_lddw = 0;
	uint8_t dummy[8] = { 0 };

	/* Both lddws now refer to the rodata image: the first table at 0,
	 * the second at 64 (clang put that in the lddw's imm). */
	for (size_t pc = 0; pc + 1 < rb_bpf_prog_len(p); pc++) {
		if (in[pc].code != (RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW))
			continue;
		CHECK_EQ_U64(in[pc].src, RB_BPF_PSEUDO_DATA);
		CHECK_EQ_U64(in[pc].imm, RB_BPF_DATA_RODATA);
		if (n_lddw < 2)
			offsets[n_lddw] = (uint32_t)in[pc + 1].imm;
		n_lddw++;
		pc++;
	}
	REQUIRE(n_lddw == 2);
	CHECK_EQ_U64(offsets[0], 0);
	CHECK_EQ_U64(offsets[1], 64);
	for (uint64_t i = 0; i < 64; i++)
		CHECK_EQ_U64(run_ok(p, dummy, sizeof(dummy), i),
			     primes[i & 7] * 1000 + squares[(i >> 3) & 7]);
	rb_bpf_prog_free(p);
}

TEST(rodata_string_from_merged_str_section_reads_right_bytes)
{
	/* The string lives in .rodata.str1.1, placed after .rodata in the
	 * one rodata image: a wrong base offset reads the tables instead. */
	struct rb_bpf_prog *p = load_prog("rodata", "rodata_string");
	uint8_t dummy[8] = { 0 };

	for (uint64_t i = 0; i < 40; i++)
		CHECK_EQ_U64(run_ok(p, dummy, sizeof(dummy), i),
			     (uint64_t)(int64_t)motto[i % (sizeof(motto) - 1)]);
	rb_bpf_prog_free(p);
}

TEST(bss_global_is_writable_and_persists_across_runs_of_one_prog)
{
	struct rb_bpf_prog *p = load_prog("globals", "bss_counter");
	struct rb_bpf_prog *q;
	uint8_t dummy[8] = { 0 };

	CHECK_EQ_U64(run_ok(p, dummy, sizeof(dummy), 0), 1);
	CHECK_EQ_U64(run_ok(p, dummy, sizeof(dummy), 0), 2);
	CHECK_EQ_U64(run_ok(p, dummy, sizeof(dummy), 0), 3);
	/* A second load of the same object starts from zero again. */
	q = load_prog("globals", "bss_counter");
	CHECK_EQ_U64(run_ok(q, dummy, sizeof(dummy), 0), 1);
	CHECK_EQ_U64(run_ok(p, dummy, sizeof(dummy), 0), 4);
	rb_bpf_prog_free(q);
	rb_bpf_prog_free(p);
}

TEST(data_global_starts_from_initialiser_and_persists)
{
	struct rb_bpf_prog *p = load_prog("globals", "data_counter");
	struct rb_bpf_prog *q;
	uint8_t dummy[8] = { 0 };

	CHECK_EQ_U64(run_ok(p, dummy, sizeof(dummy), 5), 1005);
	CHECK_EQ_U64(run_ok(p, dummy, sizeof(dummy), 7), 1012);
	q = load_prog("globals", "data_counter");
	CHECK_EQ_U64(run_ok(q, dummy, sizeof(dummy), 3), 1003);
	CHECK_EQ_U64(run_ok(p, dummy, sizeof(dummy), 1), 1013);
	rb_bpf_prog_free(q);
	rb_bpf_prog_free(p);
}

TEST(relocations_against_variable_symbols_use_their_offsets)
{
	/* data_count and bss_first sit at offset 8 of their sections; the
	 * relocations name the variables, so st_value has to be added. */
	struct rb_bpf_prog *p = load_prog("globals", "all_globals");
	uint8_t dummy[8] = { 0 };

	CHECK_EQ_U64(run_ok(p, dummy, sizeof(dummy), 0),
		     (uint64_t)(1 * 100 + 2) << 32 | (7 * 10000 + 1000));
	CHECK_EQ_U64(run_ok(p, dummy, sizeof(dummy), 0),
		     (uint64_t)(2 * 100 + 4) << 32 | (7 * 10000 + 1000));
	rb_bpf_prog_free(p);
}

TEST(each_section_of_multi_program_object_loads_and_runs)
{
	uint64_t w[20];
	uint64_t sum = 0, x = 0, max = 0;
	struct rb_bpf_prog *ps = load_prog("multi", "sum");
	struct rb_bpf_prog *px = load_prog("multi", "xor");
	struct rb_bpf_prog *pm = load_prog("multi", "max");

	rng_seed(42);
	for (size_t i = 0; i < 20; i++) {
		w[i] = rng();
		sum += w[i];
		x ^= w[i];
		max = w[i] > max ? w[i] : max;
	}
	CHECK_EQ_U64(run_ok(ps, w, sizeof(w), sizeof(w)), sum);
	CHECK_EQ_U64(run_ok(px, w, sizeof(w), sizeof(w)), x);
	CHECK_EQ_U64(run_ok(pm, w, sizeof(w), sizeof(w)), max);
	CHECK_EQ_U64(run_ok(ps, w, sizeof(w), 8), w[0]);
	rb_bpf_prog_free(ps);
	rb_bpf_prog_free(px);
	rb_bpf_prog_free(pm);
}

/* True when the loaded program contains opcode `code` with offset `off`
 * (or any offset when off < 0) and imm `imm` (any when imm < 0). */
static bool has_insn(const struct rb_bpf_prog *p, uint8_t code, int off,
		     int imm)
{
	const struct rb_bpf_insn *in = rb_bpf_prog_insns(p);

	for (size_t pc = 0; pc < rb_bpf_prog_len(p); pc++)
		if (in[pc].code == code && (off < 0 || in[pc].off == off) &&
		    (imm < 0 || in[pc].imm == imm))
			return true;
	return false;
}

TEST(v4_signed_division_and_modulo_match_c)
{
	static const int64_t pairs[][2] = {
		{ 7, 2 }, { -7, 2 }, { 7, -2 }, { -7, -2 }, { 0, 5 },
		{ INT64_MAX, 3 }, { INT64_MIN, 2 }, { INT64_MIN, 7 },
		{ -1, INT64_MIN }, { 123456789012345, -1000 }, { 5, 0 },
	};
	struct rb_bpf_prog *d = load_prog("v4", "sdiv");
	struct rb_bpf_prog *m = load_prog("v4", "smod");
	int64_t v[2];

	/* The objects really use the v4 forms (offset 1 = signed). */
	CHECK(has_insn(d, RB_BPF_ALU64 | RB_BPF_DIV | RB_BPF_X, 1, -1));
	CHECK(has_insn(m, RB_BPF_ALU64 | RB_BPF_MOD | RB_BPF_X, 1, -1));
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		v[0] = pairs[i][0];
		v[1] = pairs[i][1];
		CHECK_EQ_U64(run_ok(d, v, sizeof(v), sizeof(v)),
			     v[1] ? (uint64_t)(v[0] / v[1]) : 0);
		CHECK_EQ_U64(run_ok(m, v, sizeof(v), sizeof(v)),
			     v[1] ? (uint64_t)(v[0] % v[1]) : 0);
	}
	/* INT64_MIN / -1 overflows: RFC 9669 wraps to INT64_MIN, remainder 0
	 * (and the host must not trap). */
	v[0] = INT64_MIN;
	v[1] = -1;
	CHECK_EQ_U64(run_ok(d, v, sizeof(v), sizeof(v)), (uint64_t)INT64_MIN);
	CHECK_EQ_U64(run_ok(m, v, sizeof(v), sizeof(v)), 0);
	rb_bpf_prog_free(d);
	rb_bpf_prog_free(m);
}

TEST(v4_sign_extending_moves_and_loads_match_c)
{
	static const uint64_t xs[] = { 0, 0x7f, 0xff, 0x7fff, 0x8000,
				       0xffffffffffffffffULL, 0x12345678abcdefULL,
				       0x0800000000000000ULL };
	static const uint8_t bytes[] = { 0, 1, 0x7f, 0x80, 0xff };
	struct rb_bpf_prog *p = load_prog("v4", "sext");
	uint64_t v[2];

	CHECK(has_insn(p, RB_BPF_LDX | RB_BPF_MEMSX | RB_BPF_B, -1, -1));
	CHECK(has_insn(p, RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 8, -1));
	CHECK(has_insn(p, RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 32, -1));
	for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
		for (size_t j = 0; j < sizeof(bytes) / sizeof(bytes[0]); j++) {
			uint64_t x = xs[i];
			int64_t want = (int64_t)(int8_t)bytes[j] +
				       (int64_t)(int8_t)(uint8_t)(x + 1) +
				       (int64_t)(int16_t)(uint16_t)(x * 3) +
				       (int64_t)(int32_t)(uint32_t)(x << 4);

			v[0] = 0x5555555555555500ULL | bytes[j];
			v[1] = x;
			CHECK_EQ_U64(run_ok(p, v, sizeof(v), sizeof(v)),
				     (uint64_t)want);
		}
	}
	rb_bpf_prog_free(p);
}

TEST(v4_byte_swaps_match_c)
{
	struct rb_bpf_prog *p = load_prog("v4", "bswap");
	uint64_t v[2];

	CHECK(has_insn(p, RB_BPF_ALU64 | RB_BPF_END, -1, 64));
	rng_seed(7);
	for (int i = 0; i < 50; i++) {
		v[0] = rng();
		v[1] = rng();
		CHECK_EQ_U64(run_ok(p, v, sizeof(v), sizeof(v)),
			     __builtin_bswap64(v[0]) ^
			     __builtin_bswap32((uint32_t)v[1]) ^
			     __builtin_bswap16((uint16_t)(v[1] >> 32)));
	}
	rb_bpf_prog_free(p);
}

/* ---- BPF-KV node search ------------------------------------------------- */

struct kv_node {
	uint64_t next;
	uint64_t type;
	uint64_t key[31];
	uint64_t ptr[31];
};

#define KV_PTR_FLAG (1ULL << 63)

static uint64_t ref_node_search(const struct kv_node *n, uint64_t key)
{
	if (n->type == 1) {
		for (int i = 0; i < 31; i++)
			if (n->key[i] == key)
				return n->ptr[i] & ~KV_PTR_FLAG;
		return (uint64_t)-1;
	}
	for (int i = 1; i < 31; i++)
		if (key < n->key[i])
			return n->ptr[i - 1] & ~KV_PTR_FLAG;
	return n->ptr[30] & ~KV_PTR_FLAG;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Strictly increasing keys: small ones, ones straddling 2^63 (where a
 * signed comparison would go wrong) or spread over the whole range. */
static void random_node(struct kv_node *n, int style, uint64_t type)
{
	uint64_t k;

	memset(n, 0, sizeof(*n));
	n->next = rng();
	n->type = type;
	if (style == 2) {
		for (int i = 0; i < 31; i++)
			n->key[i] = rng();
		qsort(n->key, 31, sizeof(uint64_t), cmp_u64);
		for (int i = 1; i < 31; i++)
			if (n->key[i] <= n->key[i - 1])
				n->key[i] = n->key[i - 1] + 1;
	} else {
		k = style == 0 ? rng() % 1000 : KV_PTR_FLAG - (15u << 20);
		for (int i = 0; i < 31; i++) {
			n->key[i] = k;
			k += 1 + rng() % (style == 0 ? 1000 : (1u << 21));
		}
	}
	for (int i = 0; i < 31; i++)
		n->ptr[i] = (rng() & ~KV_PTR_FLAG) | (rng() & KV_PTR_FLAG);
}

static uint64_t run_node_search(const struct rb_bpf_prog *p,
				const struct kv_node *n, uint64_t key)
{
	uint8_t buf[520];

	memcpy(buf, n, sizeof(*n));
	memcpy(buf + 512, &key, 8);
	return run_ok(p, buf, sizeof(buf), sizeof(buf));
}

TEST(node_search_matches_reference_on_random_nodes)
{
	struct rb_bpf_prog *p = load_prog("node_search", "node_search");
	struct kv_node n;
	unsigned runs = 0;

	_Static_assert(sizeof(struct kv_node) == 512, "node layout");
	rng_seed(0x6b76);
	for (int iter = 0; iter < 150; iter++) {
		uint64_t type = iter % 3 == 0 ? 1 : (iter % 7 == 1 ? 2 : 0);
		uint64_t q[100];
		size_t nq = 0;

		random_node(&n, iter % 3, type);
		q[nq++] = 0;
		q[nq++] = UINT64_MAX;
		q[nq++] = rng();
		if (n.key[1])
			q[nq++] = n.key[1] - 1;  /* below key[1] */
		if (n.key[30] != UINT64_MAX)
			q[nq++] = n.key[30] + 1; /* above key[30] */
		for (int i = 0; i < 31; i++) {
			q[nq++] = n.key[i];      /* equal: leaf hit */
			q[nq++] = n.key[i] + 1;  /* between: leaf miss */
		}
		for (size_t i = 0; i < nq; i++) {
			CHECK_EQ_U64(run_node_search(p, &n, q[i]),
				     ref_node_search(&n, q[i]));
			runs++;
		}
	}
	CHECK(runs > 10000);
	rb_bpf_prog_free(p);
}

TEST(node_search_leaf_hits_misses_and_internal_edges)
{
	struct rb_bpf_prog *p = load_prog("node_search", "node_search");
	struct kv_node n;

	memset(&n, 0, sizeof(n));
	for (int i = 0; i < 31; i++) {
		n.key[i] = 100 + 10 * (uint64_t)i;
		n.ptr[i] = KV_PTR_FLAG | (0x1000 + (uint64_t)i);
	}
	/* Internal node: below key[1] -> ptr[0]; == key[5] -> ptr[5];
	 * above key[30] -> ptr[30]; flag bit stripped. */
	CHECK_EQ_U64(run_node_search(p, &n, 0), 0x1000);
	CHECK_EQ_U64(run_node_search(p, &n, 109), 0x1000);
	CHECK_EQ_U64(run_node_search(p, &n, 110), 0x1001);
	CHECK_EQ_U64(run_node_search(p, &n, 150), 0x1005);
	CHECK_EQ_U64(run_node_search(p, &n, 155), 0x1005);
	CHECK_EQ_U64(run_node_search(p, &n, 399), 0x101d);
	CHECK_EQ_U64(run_node_search(p, &n, 400), 0x101e);
	CHECK_EQ_U64(run_node_search(p, &n, UINT64_MAX), 0x101e);
	/* Leaf: exact matches only. */
	n.type = 1;
	CHECK_EQ_U64(run_node_search(p, &n, 100), 0x1000);
	CHECK_EQ_U64(run_node_search(p, &n, 400), 0x101e);
	CHECK_EQ_U64(run_node_search(p, &n, 250), 0x100f);
	CHECK_EQ_U64(run_node_search(p, &n, 251), UINT64_MAX);
	CHECK_EQ_U64(run_node_search(p, &n, 0), UINT64_MAX);
	rb_bpf_prog_free(p);
}

TEST(node_search_short_length_returns_minus_two_and_short_region_faults)
{
	struct rb_bpf_prog *p = load_prog("node_search", "node_search");
	uint8_t buf[520] = { 0 };
	struct rb_bpf_result res;

	CHECK_EQ_U64(run_ok(p, buf, sizeof(buf), 519), (uint64_t)-2);
	CHECK_EQ_U64(run_ok(p, buf, sizeof(buf), 0), (uint64_t)-2);
	/* Claiming 520 bytes but granting only the node: reading the key
	 * must fault, not read past the region. */
	CHECK(run_prog(p, buf, 512, 520, false, 0, &res) != 0);
	CHECK_EQ_U64(res.status, RB_BPF_E_FAULT);
	rb_bpf_prog_free(p);
}

/* ---- Hostile programs --------------------------------------------------- */

TEST(hostile_read_past_granted_memory_faults)
{
	struct rb_bpf_prog *p = load_prog("hostile", "read_oob");
	uint8_t buf[32] = { 0 };
	struct rb_bpf_result res;

	CHECK(run_prog(p, buf, sizeof(buf), sizeof(buf), false, 0, &res) != 0);
	CHECK_EQ_U64(res.status, RB_BPF_E_FAULT);
	/* Reading inside the region is fine: r2 = len - 65 -> mem[len - 1]. */
	buf[31] = 0x5a;
	CHECK_EQ_U64(run_ok(p, buf, sizeof(buf), (uint64_t)-33), 0x5a);
	rb_bpf_prog_free(p);
}

TEST(hostile_write_past_granted_memory_faults_and_leaves_it_alone)
{
	struct rb_bpf_prog *p = load_prog("hostile", "write_oob");
	uint8_t buf[64] = { 0 };
	struct rb_bpf_result res;

	/* Grant 32 of the 64 bytes; the store at mem[32] must not land. */
	CHECK(run_prog(p, buf, 32, 32, true, 0, &res) != 0);
	CHECK_EQ_U64(res.status, RB_BPF_E_FAULT);
	CHECK_EQ_U64(buf[32], 0);
	/* Read-only memory is not writable either. */
	CHECK(run_prog(p, buf, 32, 31, false, 0, &res) != 0);
	CHECK_EQ_U64(res.status, RB_BPF_E_FAULT);
	CHECK_EQ_U64(buf[31], 0);
	rb_bpf_prog_free(p);
}

TEST(hostile_store_into_rodata_faults)
{
	struct rb_bpf_prog *p = load_prog("hostile", "write_rodata");
	uint8_t buf[8] = { 0 };
	struct rb_bpf_result res;

	CHECK(run_prog(p, buf, sizeof(buf), 1, true, 0, &res) != 0);
	CHECK_EQ_U64(res.status, RB_BPF_E_FAULT);
	rb_bpf_prog_free(p);
}

TEST(hostile_recursion_deeper_than_frame_limit_is_stopped)
{
	struct rb_bpf_prog *p = load_prog("hostile", "deep_recursion");
	uint8_t buf[8] = { 0 };
	struct rb_bpf_result res;

	/* recurse(n) nests n + 1 calls below the entry frame. */
	CHECK_EQ_U64(run_ok(p, buf, sizeof(buf), RB_BPF_MAX_FRAMES - 2),
		     RB_BPF_MAX_FRAMES - 2);
	CHECK(run_prog(p, buf, sizeof(buf), RB_BPF_MAX_FRAMES - 1, false, 0,
		       &res) != 0);
	CHECK_EQ_U64(res.status, RB_BPF_E_DEPTH);
	CHECK(run_prog(p, buf, sizeof(buf), 1000, false, 0, &res) != 0);
	CHECK_EQ_U64(res.status, RB_BPF_E_DEPTH);
	rb_bpf_prog_free(p);
}

TEST(hostile_endless_loop_is_stopped_by_budget)
{
	struct rb_bpf_prog *p = load_prog("hostile", "spin");
	uint8_t buf[8] = { 0 };
	struct rb_bpf_result res;

	CHECK(run_prog(p, buf, sizeof(buf), 0, false, 10000, &res) != 0);
	CHECK_EQ_U64(res.status, RB_BPF_E_BUDGET);
	CHECK(res.executed >= 9000 && res.executed <= 11000);
	rb_bpf_prog_free(p);
}

/* ---- Loader errors on valid objects ------------------------------------- */

TEST(missing_section_gives_enoent_naming_it)
{
	struct rt_blob b = read_obj("multi");

	expect_load_error(&b, "no_such_prog", -ENOENT, "no_such_prog");
	/* A section that exists but holds no code is not a program either. */
	expect_load_error(&b, ".symtab", -ENOENT, ".symtab");
	expect_load_error(&b, "", -ENOENT, "''");
	free(b.p);
}

TEST(unsupported_features_are_rejected_with_clear_messages)
{
	struct rt_blob b = read_obj("unsupported");

	expect_load_error(&b, "uses_map", -EINVAL, "maps are not supported");
	expect_load_error(&b, "uses_extern", -EINVAL, "outside_value");
	expect_load_error(&b, "uses_extern", -EINVAL, "undefined");
	expect_load_error(&b, "func_pointer", -EINVAL,
			  "function pointers are not supported");
	expect_load_error(&b, "pointer_in_data", -EINVAL,
			  "pointers in initialised globals");
	free(b.p);
}

TEST(bad_arguments_are_rejected)
{
	struct rt_blob b = read_obj("multi");
	struct rb_bpf_prog *p = NULL;
	char err[128] = "";
	struct listing l = { 0 };

	CHECK(rb_bpf_prog_load_elf(b.p, b.len, NULL, NULL, &p, err,
				   sizeof(err)) == -EINVAL);
	CHECK(err[0] != '\0');
	CHECK(rb_bpf_prog_load_elf(b.p, b.len, "sum", NULL, NULL, err,
				   sizeof(err)) == -EINVAL);
	CHECK(rb_bpf_prog_load_elf(NULL, 0, "sum", NULL, &p, err,
				   sizeof(err)) == -EINVAL);
	CHECK(rb_bpf_elf_sections(b.p, b.len, NULL, NULL, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(rb_bpf_elf_sections(NULL, 0, collect, &l, err, sizeof(err)) ==
	      -EINVAL);
	CHECK_EQ_U64(l.n, 0);
	/* No error buffer, or a 1-byte one, is fine too. */
	CHECK(rb_bpf_prog_load_elf(b.p, b.len, "nope", NULL, &p, NULL, 0) ==
	      -ENOENT);
	CHECK(rb_bpf_prog_load_elf(b.p, b.len, "nope", NULL, &p, err, 1) ==
	      -ENOENT);
	CHECK_EQ_U64(err[0], 0);
	free(b.p);
}

/* ---- Malformed objects -------------------------------------------------- */

TEST(non_elf_input_is_rejected)
{
	static const char text[] = "int main(void) { return 0; } /* not ELF */";
	struct rt_blob b = { (unsigned char *)text, sizeof(text) };
	struct listing l = { 0 };
	char err[128] = "";

	expect_load_error(&b, "sum", -EINVAL, "not an ELF");
	CHECK(rb_bpf_elf_sections(text, sizeof(text), collect, &l, err,
				  sizeof(err)) == -EINVAL);
	CHECK_STR_CONTAINS(err, "not an ELF");
	b.len = 3;
	expect_load_error(&b, "sum", -EINVAL, "too short");
}

TEST(elf32_header_is_rejected)
{
	Elf32_Ehdr eh;
	struct rt_blob b = { (unsigned char *)&eh, sizeof(eh) };
	struct rt_blob real = read_obj("multi");
	struct rt_blob c = copy_blob(&real);

	memset(&eh, 0, sizeof(eh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_REL;
	eh.e_machine = EM_BPF;
	eh.e_version = EV_CURRENT;
	eh.e_ehsize = sizeof(eh);
	expect_load_error(&b, "sum", -EINVAL, "64-bit");
	/* A real object relabelled as 32-bit too. */
	c.p[EI_CLASS] = ELFCLASS32;
	expect_load_error(&c, "sum", -EINVAL, "64-bit");
	free(c.p);
	free(real.p);
}

TEST(big_endian_object_is_rejected)
{
	struct rt_blob real = read_obj("multi");
	struct rt_blob c = copy_blob(&real);

	c.p[EI_DATA] = ELFDATA2MSB;
	expect_load_error(&c, "sum", -EINVAL, "little-endian");
	free(c.p);
	free(real.p);
}

TEST(wrong_machine_or_type_is_rejected)
{
	struct rt_blob real = read_obj("multi");
	struct rt_blob c = copy_blob(&real);

	((Elf64_Ehdr *)c.p)->e_machine = EM_X86_64;
	expect_load_error(&c, "sum", -EINVAL, "EM_BPF");
	memcpy(c.p, real.p, c.len);
	((Elf64_Ehdr *)c.p)->e_type = ET_EXEC;
	expect_load_error(&c, "sum", -EINVAL, "ET_REL");
	free(c.p);
	free(real.p);
}

TEST(section_size_not_a_multiple_of_8_is_rejected)
{
	struct rt_blob real = read_obj("multi");
	struct rt_blob c = copy_blob(&real);
	struct listing l = { 0 };
	char err[256] = "";

	raw_section(&c, "sum")->sh_size -= 4;
	expect_load_error(&c, "sum", -EINVAL, "multiple of 8");
	CHECK(rb_bpf_elf_sections(c.p, c.len, collect, &l, err, sizeof(err)) ==
	      -EINVAL);
	CHECK_STR_CONTAINS(err, "multiple of 8");
	CHECK_EQ_U64(l.n, 0); /* no partial listing before the error */
	free(c.p);
	free(real.p);
}

TEST(section_beyond_end_of_file_is_rejected)
{
	struct rt_blob real = read_obj("multi");
	struct rt_blob c = copy_blob(&real);
	Elf64_Shdr *sh = raw_section(&c, "sum");

	sh->sh_offset = c.len - 8;
	sh->sh_size = 64;
	expect_load_error(&c, "sum", -EINVAL, "sum");
	sh->sh_offset = UINT64_MAX - 8;
	expect_load_error(&c, "sum", -EINVAL, "sum");
	free(c.p);
	free(real.p);
}

TEST(relocation_offsets_outside_section_or_misaligned_are_rejected)
{
	struct rt_blob real = read_obj("rodata");
	struct rt_blob c = copy_blob(&real);
	Elf64_Rel *r = raw_rel(&c, "rodata_table", 0);
	uint64_t size = raw_section(&c, "rodata_table")->sh_size;

	r->r_offset += 4;
	expect_load_error(&c, "rodata_table", -EINVAL, "not on an instruction");
	r->r_offset = size;
	expect_load_error(&c, "rodata_table", -EINVAL, "outside the section");
	r->r_offset = UINT64_MAX - 7;
	expect_load_error(&c, "rodata_table", -EINVAL, "outside the section");
	free(c.p);
	free(real.p);
}

TEST(relocation_symbol_index_out_of_range_is_rejected)
{
	struct rt_blob real = read_obj("rodata");
	struct rt_blob c = copy_blob(&real);
	Elf64_Rel *r = raw_rel(&c, "rodata_table", 0);

	r->r_info = ELF64_R_INFO(0xffffff, ELF64_R_TYPE(r->r_info));
	expect_load_error(&c, "rodata_table", -EINVAL, "symbol");
	r->r_info = ELF64_R_INFO(0, ELF64_R_TYPE(r->r_info));
	expect_load_error(&c, "rodata_table", -EINVAL, "symbol 0");
	free(c.p);
	free(real.p);
}

TEST(unknown_relocation_type_is_rejected_and_none_ignored)
{
	struct rt_blob real = read_obj("subprog");
	struct rt_blob c = copy_blob(&real);
	Elf64_Rel *r = raw_rel(&c, "subprog", 0);
	struct rb_bpf_prog *p = NULL;
	char err[256] = "";

	r->r_info = ELF64_R_INFO(ELF64_R_SYM(r->r_info), 2); /* R_BPF_64_ABS64 */
	expect_load_error(&c, "subprog", -EINVAL, "relocation type 2");
	/* R_BPF_NONE is skipped: the call keeps clang's imm of -1 (a call to
	 * itself, still in range), so the object loads. */
	r->r_info = ELF64_R_INFO(ELF64_R_SYM(r->r_info), R_BPF_NONE);
	CHECK(load_blob(&c, "subprog", &p, err, sizeof(err)) == 0);
	rb_bpf_prog_free(p);
	free(c.p);
	free(real.p);
}

TEST(lddw_relocation_not_on_lddw_is_rejected)
{
	struct rt_blob real = read_obj("rodata");
	struct rt_blob c = copy_blob(&real);
	Elf64_Rel *r = raw_rel(&c, "rodata_table", 0);

	r->r_offset = 0; /* insn 0 is r1 = r2 */
	expect_load_error(&c, "rodata_table", -EINVAL, "not on a plain lddw");
	/* An lddw's second slot is not an lddw either. */
	memcpy(c.p, real.p, c.len);
	r->r_offset += 8;
	expect_load_error(&c, "rodata_table", -EINVAL, "not on a plain lddw");
	free(c.p);
	free(real.p);
}

TEST(call_relocation_not_on_call_is_rejected)
{
	struct rt_blob real = read_obj("subprog");
	struct rt_blob c = copy_blob(&real);
	Elf64_Rel *r = raw_rel(&c, "subprog", 0);

	r->r_offset = 0; /* insn 0 is r6 = r2 */
	expect_load_error(&c, "subprog", -EINVAL, "not on a local call");
	free(c.p);
	free(real.p);
}

TEST(call_target_outside_text_is_rejected)
{
	struct rt_blob real = read_obj("subprog");
	struct rt_blob c = copy_blob(&real);
	Elf64_Rel *r = raw_rel(&c, "subprog", 0);
	struct rb_bpf_insn *in = raw_insns(&c, "subprog");

	in[r->r_offset / 8].imm = 100000;
	expect_load_error(&c, "subprog", -EINVAL, "lands outside");
	in[r->r_offset / 8].imm = -2;
	expect_load_error(&c, "subprog", -EINVAL, "lands outside");
	free(c.p);
	free(real.p);
}

TEST(lddw_addend_outside_data_section_is_rejected)
{
	struct rt_blob real = read_obj("rodata");
	struct rt_blob c = copy_blob(&real);
	Elf64_Rel *r = raw_rel(&c, "rodata_table", 0);
	struct rb_bpf_insn *in = raw_insns(&c, "rodata_table");

	in[r->r_offset / 8].imm = 0x10000;
	expect_load_error(&c, "rodata_table", -EINVAL, "lies outside");
	memcpy(c.p, real.p, c.len);
	in[r->r_offset / 8 + 1].imm = 1; /* addend 2^32 */
	expect_load_error(&c, "rodata_table", -EINVAL, "lies outside");
	free(c.p);
	free(real.p);
}

TEST(two_relocations_on_one_instruction_are_rejected)
{
	struct rt_blob real = read_obj("rodata");
	struct rt_blob c = copy_blob(&real);

	*raw_rel(&c, "rodata_table", 1) = *raw_rel(&c, "rodata_table", 0);
	expect_load_error(&c, "rodata_table", -EINVAL, "two relocations");
	free(c.p);
	free(real.p);
}

TEST(lddw_with_pseudo_src_but_no_relocation_is_rejected)
{
	struct rt_blob real = read_obj("v4");
	struct rt_blob c = copy_blob(&real);
	struct rb_bpf_insn *in = raw_insns(&c, "sext");
	size_t n = raw_section(&c, "sext")->sh_size / 8, pc;

	/* sext has a plain 64-bit constant lddw; pretend it is a data ref. */
	for (pc = 0; pc < n; pc++)
		if (in[pc].code == (RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW))
			break;
	REQUIRE(pc < n);
	in[pc].src = RB_BPF_PSEUDO_DATA;
	expect_load_error(&c, "sext", -EINVAL, "no relocation");
	free(c.p);
	free(real.p);
}

TEST(missing_symbol_table_is_rejected)
{
	struct rt_blob real = read_obj("rodata");
	struct rt_blob c = copy_blob(&real);

	raw_section(&c, ".symtab")->sh_type = SHT_PROGBITS;
	expect_load_error(&c, "rodata_table", -EINVAL, "symbol table");
	free(c.p);
	free(real.p);
}

/* Loads (and, when that works, runs) a possibly corrupt object; the only
 * requirement is an error with a message or a program that runs safely. */
static unsigned try_hostile(const unsigned char *bytes, size_t len,
			    const char *sec)
{
	/* An exactly sized heap copy so ASan sees any read past the end. */
	unsigned char *copy = malloc(len ? len : 1);
	struct rb_bpf_prog *p = NULL;
	struct listing l = { 0 };
	char err[256] = "";
	uint8_t mem[1024] = { 0 };
	struct rb_bpf_result res;
	int rc;

	REQUIRE(copy);
	memcpy(copy, bytes, len);
	rc = rb_bpf_prog_load_elf(copy, len, sec, NULL, &p, err, sizeof(err));
	if (rc) {
		CHECK(rc < 0);
		CHECK(p == NULL);
		if (!err[0])
			fprintf(stderr, "    len %zu: rc %d without message\n",
				len, rc);
		CHECK(err[0] != '\0');
	} else {
		REQUIRE(p);
		run_prog(p, mem, sizeof(mem), sizeof(mem), true, 10000, &res);
		rb_bpf_prog_free(p);
	}
	err[0] = '\0';
	if (rb_bpf_elf_sections(copy, len, collect, &l, err, sizeof(err)) != 0)
		CHECK(err[0] != '\0');
	free(copy);
	return rc == 0;
}

TEST(every_truncation_of_a_real_object_errors_without_crashing)
{
	static const char *objs[][2] = { { "subprog", "subprog" },
					 { "rodata", "rodata_string" } };

	for (size_t o = 0; o < 2; o++) {
		struct rt_blob b = read_obj(objs[o][0]);
		unsigned ok = 0;

		for (size_t len = 0; len < b.len; len++)
			ok += try_hostile(b.p, len, objs[o][1]);
		/* The section headers sit at the end of clang's objects, so
		 * every truncation loses them. */
		CHECK_EQ_U64(ok, 0);
		/* The untouched object still loads. */
		CHECK_EQ_U64(try_hostile(b.p, b.len, objs[o][1]), 1);
		free(b.p);
	}
}

/* File ranges where a flipped byte changes what the loader reads: the ELF
 * header, the section headers, and every section it parses (symbols,
 * relocations, code, data). */
struct range {
	size_t off, len;
};

static size_t interesting_ranges(const struct rt_blob *b, struct range *r,
				 size_t max)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)b->p;
	size_t n, k = 0;
	Elf64_Shdr *sh = raw_shdrs(b, &n);

	r[k++] = (struct range){ 0, sizeof(*eh) };
	r[k++] = (struct range){ eh->e_shoff, n * sizeof(Elf64_Shdr) };
	for (size_t i = 1; i < n && k < max; i++) {
		bool parsed = sh[i].sh_type == SHT_SYMTAB ||
			      sh[i].sh_type == SHT_REL ||
			      (sh[i].sh_flags & SHF_ALLOC);

		if (parsed && sh[i].sh_type != SHT_NOBITS && sh[i].sh_size)
			r[k++] = (struct range){ sh[i].sh_offset, sh[i].sh_size };
	}
	return k;
}

TEST(random_byte_flips_of_real_objects_never_crash)
{
	static const char *objs[][2] = { { "subprog", "subprog" },
					 { "rodata", "rodata_table" },
					 { "globals", "all_globals" },
					 { "node_search", "node_search" },
					 { "hostile", "deep_recursion" } };

	rng_seed(0x5eed);
	for (size_t o = 0; o < sizeof(objs) / sizeof(objs[0]); o++) {
		struct rt_blob b = read_obj(objs[o][0]);
		struct rt_blob c = copy_blob(&b);
		struct range r[64];
		size_t n_r = interesting_ranges(&b, r, 64);
		unsigned ok = 0;

		for (int iter = 0; iter < 1000; iter++) {
			int flips = 1 + (int)(rng() % 4);

			memcpy(c.p, b.p, b.len);
			for (int f = 0; f < flips; f++) {
				const struct range *x = &r[rng() % n_r];
				size_t at = rng() % 4 == 0 ?
						    rng() % c.len :
						    x->off + rng() % x->len;

				c.p[at] ^= (uint8_t)(1 + rng() % 255);
			}
			ok += try_hostile(c.p, c.len, objs[o][1]);
		}
		/* Many flips change nothing that matters (or only code, which
		 * the engine then validates and runs). */
		CHECK(ok > 0);
		free(c.p);
		free(b.p);
	}
}

TEST_MAIN()
