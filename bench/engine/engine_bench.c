/* SPDX-License-Identifier: MIT */
/*
 * bench/engine: what one program run costs in the eBPF engine, through the
 * entry point rosenbridged uses (rb_bpf_run), against the same work compiled
 * natively: the BPF-KV node search (find the child of a 512-byte node of 31
 * keys), an empty program (entering and leaving), and an instruction mix
 * (ALU, loads/stores, branches, a counted loop, helper calls).  Every engine
 * runs in the same interleaved rounds (order rotating), and each figure is
 * the median with the spread (min..max) of those rounds.  CSV on stdout, a
 * summary with ratios on stderr.  Every result is checked against native
 * code first.  Also: how long the verifier takes to prove each shipped NDP
 * program safe, and what the unchecked JIT's hardening costs.
 */
#include <rosen/bpf.h>
#include <rosen/ndp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/bpf/bpf_internal.h" /* jit_code, for --perf-map */
#include "bpfkv_node.h"

/* issue 16 */
#define JIT_TARGET_RATIO 1.15   /* unchecked JIT <= 1.15x native, node search */
#define ENTRY_TARGET_NS 3.0     /* empty program through rb_bpf_run <= 3 ns */
#define INTERP_TARGET_NS 150.0  /* interpreter <= 150 ns per node search */
#define HARDENING_TARGET 1.10   /* issue 10: hardened JIT <= +10% */

#define INS(c, d, s, o, i) \
	((struct rb_bpf_insn){.code = (c), .dst = (d), .src = (s), .off = (o), .imm = (i)})

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long sz;

	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return -EIO;
	}
	*out = malloc((size_t)sz + 1);
	if (!*out || fread(*out, 1, (size_t)sz, f) != (size_t)sz) {
		free(*out);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	*len = (size_t)sz;
	return 0;
}

/* ---- the node search's inputs ------------------------------------------------------ */

struct input {
	struct bpfkv_node node;
	unsigned long long key;
} __attribute__((aligned(64)));

enum { N_INPUTS = 4096 };
static struct input *inputs;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: fixed seed so runs are comparable. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* A node like BPF-KV writes, with the searched key uniformly placed. */
static void make_input(struct input *in)
{
	uint64_t k = rnd() % 1000;

	memset(in, 0, sizeof(*in));
	in->node.type = rnd() % 8 == 0 ? BPFKV_NODE_LEAF : BPFKV_NODE_INTERNAL;
	for (int i = 0; i < BPFKV_FANOUT; i++) {
		k += 1 + rnd() % 1000;
		in->node.key[i] = k;
		in->node.ptr[i] = BPFKV_PTR_TAG | ((uint64_t)(i + 1) * 512 + rnd() % 64 * 4096);
	}
	if (in->node.type == BPFKV_NODE_LEAF && rnd() % 2)
		in->key = in->node.key[rnd() % BPFKV_FANOUT];
	else
		in->key = in->node.key[0] + rnd() % (k - in->node.key[0] + 100);
}

/* noinline: the compiler must not hoist the search out of the timing loop. */
static __attribute__((noinline)) uint64_t native_search(const void *in)
{
	const struct input *i = in;
	return bpfkv_node_child(&i->node, i->key);
}

/*
 * The node search as a verifier sees a guest program: r1 = a context whose
 * one field points at the node and key (520 bytes, read-only).  Two
 * instructions in front of the shipped program load that pointer and set
 * r2 = 520 (the length it checks), so the verifier can prove it and record
 * the facts the hardened JIT uses.
 */
#define SEARCH_INPUT_BYTES (sizeof(struct bpfkv_node) + 8)
static const struct rb_bpf_region_type search_regions[] = {
	{"input", SEARCH_INPUT_BYTES, false},
};
static const struct rb_bpf_ctx_field search_fields[] = {
	{"input", 0, 8, 1, RB_BPF_ACC_READ, RB_BPF_FIELD_PTR, 0},
};
static const struct rb_bpf_type search_type = {
	.name = "node_search", .ctx_size = 8,
	.regions = search_regions, .n_regions = 1,
	.fields = search_fields, .n_fields = 1,
};

/* ---- the instruction mix -------------------------------------------------------------- */

/*
 * Each mix program gets r1 = a context whose one field points at a 4 KiB
 * writable buffer, is verified as such and compiled as rosenbridged does
 * (unchecked, hardened).  Its native twin does the same work in C.
 */
#define MIX_BUF 4096u
static const struct rb_bpf_region_type mix_regions[] = {{"buf", MIX_BUF, true}};
static const struct rb_bpf_ctx_field mix_fields[] = {
	{"buf", 0, 8, 1, RB_BPF_ACC_READ, RB_BPF_FIELD_PTR, 0},
};
#define ARG_NUM {RB_BPF_ARG_SCALAR, 0, 0, false}
static const struct rb_bpf_helper_proto mix_protos[] = {
	{.id = 1, .name = "mix_add", .arg = {ARG_NUM, ARG_NUM}, .ret = RB_BPF_RET_SCALAR},
};
static const struct rb_bpf_type mix_type = {
	.name = "mix", .ctx_size = 8, .regions = mix_regions, .n_regions = 1,
	.fields = mix_fields, .n_fields = 1, .helpers = mix_protos, .n_helpers = 1,
};

static uint64_t mix_add(struct rb_bpf_call *c, uint64_t a, uint64_t b, uint64_t x, uint64_t y,
			uint64_t z)
{
	(void)c, (void)x, (void)y, (void)z;
	return a * 3 + b;
}

static uint64_t *mix_buf;
static struct {
	uint64_t buf;
} mix_ctx;
/* As rosenbridged runs a program: the context and what it points to granted. */
static struct rb_bpf_region mix_grant[2];
#define MIX_OPTS {.args = {(uintptr_t)&mix_ctx}, .regions = mix_grant, .n_regions = 2}

#define NATIVE static __attribute__((noinline)) uint64_t
/* Keeps the compiler from folding a loop into a formula or a copy away. */
#define OPAQUE(x) __asm__ volatile("" : "+r"(x))

NATIVE native_empty(const void *in)
{
	(void)in;
	return 0;
}

/* r0 = buf[0]; 16 x (r0 *= K; r0 ^= r2; r2 += K2; r3 = r0 >> 29; r0 += r3) */
static size_t prog_alu(struct rb_bpf_insn *c)
{
	size_t n = 0;
	c[n++] = INS(0x79, 6, 1, 0, 0);
	c[n++] = INS(0x79, 0, 6, 0, 0);
	c[n++] = INS(0xbf, 2, 0, 0, 0);
	for (int k = 0; k < 16; k++) {
		c[n++] = INS(0x27, 0, 0, 0, 0x9e37);
		c[n++] = INS(0xaf, 0, 2, 0, 0);
		c[n++] = INS(0x07, 2, 0, 0, 0x7f4a);
		c[n++] = INS(0xbf, 3, 0, 0, 0);
		c[n++] = INS(0x77, 3, 0, 0, 29);
		c[n++] = INS(0x0f, 0, 3, 0, 0);
	}
	c[n++] = INS(0x95, 0, 0, 0, 0);
	return n;
}

NATIVE native_alu(const void *in)
{
	const uint64_t *buf = in;
	uint64_t r0 = buf[0], r2 = r0;
	for (int k = 0; k < 16; k++) {
		r0 *= 0x9e37;
		r0 ^= r2;
		r2 += 0x7f4a;
		r0 += r0 >> 29;
	}
	return r0;
}

/* 16 qwords buf -> stack; then sum their low words, storing each running
 * sum to buf[256 + k]. */
static size_t prog_ldst(struct rb_bpf_insn *c)
{
	size_t n = 0;
	c[n++] = INS(0x79, 6, 1, 0, 0);
	for (int k = 0; k < 16; k++) {
		c[n++] = INS(0x79, 2, 6, (int16_t)(8 * k), 0);
		c[n++] = INS(0x7b, 10, 2, (int16_t)(-128 + 8 * k), 0);
	}
	c[n++] = INS(0xb7, 0, 0, 0, 0);
	for (int k = 0; k < 16; k++) {
		c[n++] = INS(0x61, 3, 10, (int16_t)(-128 + 8 * k), 0);
		c[n++] = INS(0x0f, 0, 3, 0, 0);
		c[n++] = INS(0x7b, 6, 0, (int16_t)(2048 + 8 * k), 0);
	}
	c[n++] = INS(0x95, 0, 0, 0, 0);
	return n;
}

NATIVE native_ldst(const void *in)
{
	uint64_t *buf = (uint64_t *)(uintptr_t)in, st[16], r0 = 0;
	for (int k = 0; k < 16; k++)
		st[k] = buf[k];
	__asm__ volatile("" : : "r"(st) : "memory");
	for (int k = 0; k < 16; k++) {
		r0 += (uint32_t)st[k];
		buf[256 + k] = r0;
	}
	return r0;
}

/* Counts the first 32 qwords not above buf[32]: a load, a compare and a
 * conditional jump over an add, 32 times. */
static size_t prog_branch(struct rb_bpf_insn *c)
{
	size_t n = 0;
	c[n++] = INS(0x79, 6, 1, 0, 0);
	c[n++] = INS(0x79, 2, 6, 256, 0);
	c[n++] = INS(0xb7, 0, 0, 0, 0);
	for (int k = 0; k < 32; k++) {
		c[n++] = INS(0x79, 3, 6, (int16_t)(8 * k), 0);
		c[n++] = INS(0x2d, 3, 2, 1, 0); /* if r3 > r2 goto +1 */
		c[n++] = INS(0x07, 0, 0, 0, 1);
	}
	c[n++] = INS(0x95, 0, 0, 0, 0);
	return n;
}

NATIVE native_branch(const void *in)
{
	const uint64_t *buf = in;
	uint64_t r0 = 0;
	for (int k = 0; k < 32; k++) {
		uint64_t v = buf[k];
		OPAQUE(v); /* a branch per element, as the program has */
		if (v <= buf[32])
			r0++;
	}
	return r0;
}

/* for (i = 0; i < 100; i++) r0 += i */
static size_t prog_loop(struct rb_bpf_insn *c)
{
	size_t n = 0;
	c[n++] = INS(0xb7, 0, 0, 0, 0);
	c[n++] = INS(0xb7, 2, 0, 0, 0);
	c[n++] = INS(0x0f, 0, 2, 0, 0);
	c[n++] = INS(0x07, 2, 0, 0, 1);
	c[n++] = INS(0xa5, 2, 0, -3, 100); /* if r2 < 100 goto -3 */
	c[n++] = INS(0x95, 0, 0, 0, 0);
	return n;
}

NATIVE native_loop(const void *in)
{
	uint64_t r0 = 0;
	(void)in;
	for (uint64_t i = 0; i < 100; i++) {
		r0 += i;
		OPAQUE(r0);
	}
	return r0;
}

/* r0 = 1; 8 x (r1 = r0; r2 = k; call mix_add) */
static size_t prog_helper(struct rb_bpf_insn *c)
{
	size_t n = 0;
	c[n++] = INS(0xb7, 0, 0, 0, 1);
	for (int k = 0; k < 8; k++) {
		c[n++] = INS(0xbf, 1, 0, 0, 0);
		c[n++] = INS(0xb7, 2, 0, 0, k);
		c[n++] = INS(0x85, 0, 0, 0, 1);
	}
	c[n++] = INS(0x95, 0, 0, 0, 0);
	return n;
}

static rb_bpf_helper_fn volatile native_helper_fn = mix_add;
NATIVE native_helper(const void *in)
{
	uint64_t r0 = 1;
	(void)in;
	for (int k = 0; k < 8; k++)
		r0 = native_helper_fn(NULL, r0, (uint64_t)k, 0, 0, 0);
	return r0;
}

static size_t prog_empty(struct rb_bpf_insn *c)
{
	c[0] = INS(0xb7, 0, 0, 0, 0);
	c[1] = INS(0x95, 0, 0, 0, 0);
	return 2;
}

/* ---- cases and engines ------------------------------------------------------------------ */

enum engine { E_NATIVE, E_INTERP, E_JIT_CHECKED, E_JIT, E_JIT_VERIFIED, E_JIT_NOHARDEN, E_N };
static const char *const engine_name[E_N] = {
	"native", "interpreter", "jit-checked", "jit-unchecked", "jit-hardened", "jit-no-hardening"};

struct bench_case {
	const char *name;
	uint64_t (*native)(const void *);
	size_t (*build)(struct rb_bpf_insn *); /* NULL: the node search */
	double scale;                          /* runs = --runs x scale */
	struct rb_bpf_prog *prog[E_N];         /* NULL: engine not measured */
	double insns;                          /* per run (interpreter's count) */
	double t[E_N][64];                     /* ns per run, per round */
	double med[E_N], lo[E_N], hi[E_N];
};

static struct bench_case cases[] = {
	{.name = "bpfkv_node_search", .native = native_search, .build = NULL, .scale = 1.0},
	{.name = "empty", .native = native_empty, .build = prog_empty, .scale = 5.0},
	{.name = "mix_alu", .native = native_alu, .build = prog_alu, .scale = 0.5},
	{.name = "mix_ldst", .native = native_ldst, .build = prog_ldst, .scale = 0.5},
	{.name = "mix_branch", .native = native_branch, .build = prog_branch, .scale = 0.5},
	{.name = "mix_loop", .native = native_loop, .build = prog_loop, .scale = 0.25},
	{.name = "mix_helper", .native = native_helper, .build = prog_helper, .scale = 1.0},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static volatile uint64_t sink;

/* One timed batch: ns per run. */
static double time_case(struct bench_case *bc, enum engine e, uint64_t runs)
{
	struct rb_bpf_result res;
	uint64_t s = 0;
	double t0;

	if (bc->build) { /* the mix: one context */
		struct rb_bpf_run_opts o = MIX_OPTS;
		t0 = now_ns();
		if (e == E_NATIVE) {
			for (uint64_t r = 0; r < runs; r++)
				s += bc->native(mix_buf);
		} else {
			for (uint64_t r = 0; r < runs; r++) {
				rb_bpf_run(bc->prog[e], &o, &res);
				s += res.r0;
			}
		}
	} else if (e == E_NATIVE) {
		t0 = now_ns();
		for (uint64_t r = 0; r < runs; r++)
			s += native_search(&inputs[r % N_INPUTS]);
	} else if (e >= E_JIT_VERIFIED) { /* through a verified context */
		struct {
			uint64_t input;
		} sctx;
		struct rb_bpf_region g[2] = {{(uintptr_t)&sctx, sizeof(sctx), false},
					     {0, sizeof(struct input), false}};
		struct rb_bpf_run_opts o = {.args = {(uintptr_t)&sctx}, .regions = g, .n_regions = 2};
		t0 = now_ns();
		for (uint64_t r = 0; r < runs; r++) {
			g[1].addr = sctx.input = (uintptr_t)&inputs[r % N_INPUTS];
			rb_bpf_run(bc->prog[e], &o, &res);
			s += res.r0;
		}
	} else { /* r1 = the input, r2 = its length: the shipped program as is */
		struct rb_bpf_region region = {.len = sizeof(struct input), .writable = false};
		struct rb_bpf_run_opts o = {.regions = &region, .n_regions = 1,
					    .args = {0, sizeof(struct input)}};
		t0 = now_ns();
		for (uint64_t r = 0; r < runs; r++) {
			region.addr = o.args[0] = (uintptr_t)&inputs[r % N_INPUTS];
			rb_bpf_run(bc->prog[e], &o, &res);
			s += res.r0;
		}
	}
	double t = (now_ns() - t0) / (double)runs;
	sink += s;
	return t;
}

/* Checks every engine against native code; fills bc->insns. */
static int check_case(struct bench_case *bc)
{
	struct rb_bpf_result res;

	for (int e = 1; e < E_N; e++) {
		if (!bc->prog[e])
			continue;
		int n = bc->build ? 1 : N_INPUTS;
		uint64_t total = 0;
		for (int i = 0; i < n; i++) {
			uint64_t want;
			int rc;
			if (bc->build) {
				struct rb_bpf_run_opts o = MIX_OPTS;
				want = bc->native(mix_buf);
				rc = rb_bpf_run(bc->prog[e], &o, &res);
			} else if (e >= E_JIT_VERIFIED) {
				struct {
					uint64_t input;
				} sctx = {(uintptr_t)&inputs[i]};
				struct rb_bpf_region g[2] = {{(uintptr_t)&sctx, sizeof(sctx), false},
							     {sctx.input, sizeof(struct input), false}};
				struct rb_bpf_run_opts o = {.args = {(uintptr_t)&sctx}, .regions = g,
							    .n_regions = 2};
				want = native_search(&inputs[i]);
				rc = rb_bpf_run(bc->prog[e], &o, &res);
			} else {
				struct rb_bpf_region region = {(uintptr_t)&inputs[i], sizeof(struct input),
							       false};
				struct rb_bpf_run_opts o = {.regions = &region, .n_regions = 1,
							    .args = {region.addr, sizeof(struct input)}};
				want = native_search(&inputs[i]);
				rc = rb_bpf_run(bc->prog[e], &o, &res);
			}
			if (rc || res.r0 != want) {
				fprintf(stderr, "engine_bench: %s, input %d: %s gave 0x%" PRIx64 " (%s), native 0x%" PRIx64 "\n",
					bc->name, i, engine_name[e], res.r0, res.msg, want);
				return -1;
			}
			total += res.executed;
		}
		if (e == E_INTERP)
			bc->insns = (double)total / n;
	}
	return 0;
}

/* A program from raw instructions or the node search's object: verified
 * against `type` (NULL: not verified) and compiled as `e` says. */
static struct rb_bpf_prog *make_prog(const struct rb_bpf_insn *code, size_t n,
				     const struct rb_bpf_helpers *h, const struct rb_bpf_type *type,
				     enum engine e)
{
	struct rb_bpf_prog *p;
	char log[4096];

	if (rb_bpf_prog_new(code, n, h, NULL, &p, log, sizeof(log))) {
		fprintf(stderr, "engine_bench: %s\n", log);
		return NULL;
	}
	if (type && rb_bpf_verify(p, type, log, sizeof(log))) {
		fprintf(stderr, "engine_bench: the verifier rejects a benchmark program: %s\n", log);
		rb_bpf_prog_free(p);
		return NULL;
	}
	int rc = 0;
	if (e == E_JIT_CHECKED)
		rc = rb_bpf_jit(p, RB_BPF_JIT_CHECKED, log, sizeof(log));
	else if (e != E_INTERP)
		rc = rb_bpf_jit_ex(p, RB_BPF_JIT_UNCHECKED, e == E_JIT_NOHARDEN ? RB_BPF_JIT_NO_HARDENING : 0,
				   log, sizeof(log));
	if (rc) {
		fprintf(stderr, "engine_bench: JIT: %s\n", log);
		rb_bpf_prog_free(p);
		return NULL;
	}
	return p;
}

static int setup_cases(const struct rb_bpf_prog *search, const struct rb_bpf_helpers *h)
{
	struct rb_bpf_insn code[512];
	size_t n = rb_bpf_prog_len(search);

	for (size_t i = 0; i < N_CASES; i++) {
		struct bench_case *bc = &cases[i];
		if (bc->build) {
			size_t len = bc->build(code);
			bc->prog[E_INTERP] = make_prog(code, len, h, NULL, E_INTERP);
			bc->prog[E_JIT_CHECKED] = make_prog(code, len, h, NULL, E_JIT_CHECKED);
			bc->prog[E_JIT_VERIFIED] = make_prog(code, len, h, &mix_type, E_JIT_VERIFIED);
			if (!bc->prog[E_INTERP] || !bc->prog[E_JIT_CHECKED] || !bc->prog[E_JIT_VERIFIED])
				return -1;
			continue;
		}
		if (n + 2 > sizeof(code) / sizeof(code[0]))
			return -1;
		const struct rb_bpf_insn *insns = rb_bpf_prog_insns(search);
		bc->prog[E_INTERP] = make_prog(insns, n, NULL, NULL, E_INTERP);
		bc->prog[E_JIT_CHECKED] = make_prog(insns, n, NULL, NULL, E_JIT_CHECKED);
		bc->prog[E_JIT] = make_prog(insns, n, NULL, NULL, E_JIT);
		code[0] = INS(RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, 1, 1, 0, 0);
		code[1] = INS(RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, 2, 0, 0, (int32_t)SEARCH_INPUT_BYTES);
		memcpy(code + 2, insns, n * sizeof(*code));
		bc->prog[E_JIT_VERIFIED] = make_prog(code, n + 2, NULL, &search_type, E_JIT_VERIFIED);
		bc->prog[E_JIT_NOHARDEN] = make_prog(code, n + 2, NULL, &search_type, E_JIT_NOHARDEN);
		for (int e = E_INTERP; e < E_N; e++)
			if (!bc->prog[e])
				return -1;
	}
	return 0;
}

/* perf can name JIT'd code from /tmp/perf-PID.map. */
static void write_perf_map(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	for (size_t i = 0; i < N_CASES; i++)
		for (int e = E_JIT_CHECKED; e < E_N; e++)
			if (cases[i].prog[e] && cases[i].prog[e]->jit_code)
				fprintf(f, "%" PRIxPTR " %zx bpf_%s_%s\n", (uintptr_t)cases[i].prog[e]->jit_code,
					cases[i].prog[e]->jit_size, cases[i].name, engine_name[e]);
	fclose(f);
	fprintf(stderr, "engine_bench: JIT symbols in %s\n", path);
}

/* The JIT'd code of every program, one file each, for objdump -D -b binary
 * -m i386:x86-64. */
static void dump_code(const char *dir)
{
	char path[512];
	for (size_t i = 0; i < N_CASES; i++)
		for (int e = E_JIT_CHECKED; e < E_N; e++) {
			const struct rb_bpf_prog *p = cases[i].prog[e];
			if (!p || !p->jit_code)
				continue;
			snprintf(path, sizeof(path), "%s/%s.%s.bin", dir, cases[i].name, engine_name[e]);
			FILE *f = fopen(path, "wb");
			if (!f || fwrite(p->jit_code, 1, p->jit_size, f) != p->jit_size)
				fprintf(stderr, "engine_bench: cannot write %s\n", path);
			if (f)
				fclose(f);
		}
}

/* ---- the verifier's cost ------------------------------------------------------------------- */

/* The shipped NDP programs and the type each is loaded as. */
static const struct {
	const char *obj, *section;
	uint32_t type;
} shipped[] = {
	{"bpfkv_xrp_lookup.o", "bpfkv_xrp_lookup", RB_NDP_PROG_XRP},
	{"bpfkv_xrp_get.o", "bpfkv_xrp_get", RB_NDP_PROG_XRP},
	{"bpfkv_xrp_range.o", "bpfkv_xrp_range", RB_NDP_PROG_XRP},
	{"bpfkv_get.o", "bpfkv_get", RB_NDP_PROG_CQ},
	{"bpfkv_range.o", "bpfkv_range", RB_NDP_PROG_CQ},
};

/* CSV rows "verifier,PROGRAM,..." (ns_per_run = one verification,
 * insns_per_run = instructions walked) and a summary on stderr. */
static void verify_times(int reps)
{
	struct rb_bpf_helpers *h = rb_bpf_helpers_new();
	char log[4096], path[512];

	if (!h || rb_ndp_register_helpers(h)) {
		rb_bpf_helpers_free(h);
		return;
	}
	fprintf(stderr, "\nVerifier: time to prove each shipped NDP program safe (mean of %d):\n", reps);
	for (size_t i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++) {
		uint8_t *elf;
		size_t len;
		struct rb_bpf_prog *p;
		struct rb_bpf_verify_stats st = {0};
		snprintf(path, sizeof(path), "%s/%s", PROGS_DIR, shipped[i].obj);
		if (read_file(path, &elf, &len)) {
			fprintf(stderr, "  %-18s missing (%s)\n", shipped[i].section, path);
			continue;
		}
		if (rb_bpf_prog_load_elf(elf, len, shipped[i].section, h, &p, log, sizeof(log))) {
			fprintf(stderr, "  %-18s does not load: %s\n", shipped[i].section, log);
			free(elf);
			continue;
		}
		double t0 = now_ns();
		int rc = 0;
		for (int r = 0; r < reps && !rc; r++)
			rc = rb_bpf_verify_ex(p, rb_ndp_bpf_type(shipped[i].type), NULL, &st, log, sizeof(log));
		double ns = (now_ns() - t0) / reps;
		if (rc)
			fprintf(stderr, "  %-18s REJECTED: %s\n", shipped[i].section, log);
		else
			fprintf(stderr,
				"  %-18s %-3s %4zu insns, %6" PRIu64 " walked, %8" PRIu64
				" work units (NDP LOAD limit %u), %.1f MiB peak: %8.1f us\n",
				shipped[i].section, rb_ndp_prog_type_name(shipped[i].type), rb_bpf_prog_len(p),
				st.insns_processed, st.work, RB_NDP_VERIFY_MAX_WORK, st.peak_mem / 1048576.0,
				ns / 1e3);
		printf("verifier,%s,%d,%.0f,%.0f,%" PRIu64 ",,,\n", shipped[i].section, reps, ns, 1e9 / ns,
		       st.insns_processed);
		rb_bpf_prog_free(p);
		free(elf);
	}
	rb_bpf_helpers_free(h);
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: engine_bench [--obj FILE] [--runs N] [--rounds N] [--quick] [--case NAME]\n"
		"                    [--engine NAME] [--perf-map] [--no-verifier]\n"
		"  Times one program run through rb_bpf_run (the entry point rosenbridged\n"
		"  uses) in the interpreter and the JIT against native C: the BPF-KV node\n"
		"  search (progs/bpfkv_node_search.c, over %d nodes), an empty program and\n"
		"  an instruction mix; interleaved rounds, medians and spread.\n"
		"  --obj FILE    the node search's eBPF object (default: the one built here)\n"
		"  --runs N      node searches per round and engine (default 1000000; the\n"
		"                other cases scale it)\n"
		"  --rounds N    interleaved rounds (default 7, at most 64)\n"
		"  --quick       100000 runs, 5 rounds\n"
		"  --case NAME   only that case (e.g. for perf record)\n"
		"  --engine NAME only that engine (native, interpreter, jit-checked,\n"
		"                jit-unchecked, jit-hardened, jit-no-hardening)\n"
		"  --perf-map    write /tmp/perf-PID.map naming the JIT'd code\n"
		"  --dump DIR    write each program's JIT'd code to DIR/CASE.ENGINE.bin, exit\n"
		"  --no-verifier skip the verifier timings\n",
		N_INPUTS);
}

int main(int argc, char **argv)
{
	const char *obj = PROGS_DIR "/bpfkv_node_search.o", *only = NULL, *only_engine = NULL;
	uint64_t runs = 1000000;
	int rounds = 7;
	bool perf_map = false, verifier = true;
	const char *dump_dir = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--obj") && i + 1 < argc) {
			obj = argv[++i];
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			char *end;
			runs = strtoull(argv[++i], &end, 10);
			if (*end || runs == 0) {
				fprintf(stderr, "engine_bench: --runs needs a positive number\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
			rounds = atoi(argv[++i]);
			if (rounds < 1 || rounds > 64) {
				fprintf(stderr, "engine_bench: --rounds needs 1..64\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "--quick")) {
			runs = 100000;
			rounds = 5;
		} else if (!strcmp(argv[i], "--case") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strcmp(argv[i], "--engine") && i + 1 < argc) {
			only_engine = argv[++i];
		} else if (!strcmp(argv[i], "--dump") && i + 1 < argc) {
			dump_dir = argv[++i];
		} else if (!strcmp(argv[i], "--perf-map")) {
			perf_map = true;
		} else if (!strcmp(argv[i], "--no-verifier")) {
			verifier = false;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage();
			return 0;
		} else {
			usage();
			return 2;
		}
	}

	uint8_t *elf = NULL;
	size_t elf_len = 0;
	int rc = read_file(obj, &elf, &elf_len);
	if (rc) {
		fprintf(stderr, "engine_bench: cannot read %s: %s\n", obj, strerror(-rc));
		return 1;
	}
	struct rb_bpf_prog *search;
	char err[256];
	if (rb_bpf_prog_load_elf(elf, elf_len, "bpfkv_node_search", NULL, &search, err, sizeof(err))) {
		fprintf(stderr, "engine_bench: %s: %s\n", obj, err);
		return 1;
	}
	struct rb_bpf_helpers *h = rb_bpf_helpers_new();
	inputs = aligned_alloc(64, N_INPUTS * sizeof(*inputs));
	mix_buf = aligned_alloc(64, MIX_BUF);
	if (!h || !inputs || !mix_buf || rb_bpf_helpers_register(h, 1, "mix_add", mix_add))
		return 1;
	for (int i = 0; i < N_INPUTS; i++)
		make_input(&inputs[i]);
	for (unsigned i = 0; i < MIX_BUF / 8; i++)
		mix_buf[i] = rnd() % 1000;
	mix_ctx.buf = (uintptr_t)mix_buf;
	mix_grant[0] = (struct rb_bpf_region){(uintptr_t)&mix_ctx, sizeof(mix_ctx), false};
	mix_grant[1] = (struct rb_bpf_region){(uintptr_t)mix_buf, MIX_BUF, true};
	if (setup_cases(search, h))
		return 1;
	for (size_t i = 0; i < N_CASES; i++)
		if (check_case(&cases[i]))
			return 1;
	if (perf_map)
		write_perf_map();
	if (dump_dir) {
		dump_code(dump_dir);
		return 0;
	}

	/* Interleaved rounds: cases and engines in an order that rotates, so
	 * drift and neighbours hit every engine alike. */
	for (int round = 0; round < rounds; round++)
		for (size_t ci = 0; ci < N_CASES; ci++) {
			struct bench_case *bc = &cases[(ci + (size_t)round) % N_CASES];
			if (only && strcmp(only, bc->name))
				continue;
			uint64_t n = (uint64_t)((double)runs * bc->scale);
			for (int ei = 0; ei < E_N; ei++) {
				int e = (ei + round) % E_N;
				if (only_engine && strcmp(only_engine, engine_name[e]))
					continue;
				if (e == E_NATIVE || bc->prog[e])
					bc->t[e][round] = time_case(bc, e, n ? n : 1);
			}
		}

	printf("engine,program,runs,ns_per_run,runs_per_s,insns_per_run,vs_native,ns_min,ns_max\n");
	for (size_t i = 0; i < N_CASES; i++) {
		struct bench_case *bc = &cases[i];
		if (only && strcmp(only, bc->name))
			continue;
		for (int e = 0; e < E_N; e++) {
			if (e != E_NATIVE && !bc->prog[e])
				continue;
			double t[64];
			memcpy(t, bc->t[e], sizeof(double) * (size_t)rounds);
			qsort(t, (size_t)rounds, sizeof(double), cmp_double);
			bc->med[e] = t[rounds / 2];
			bc->lo[e] = t[0];
			bc->hi[e] = t[rounds - 1];
		}
		for (int e = 0; e < E_N; e++) {
			if (e != E_NATIVE && !bc->prog[e])
				continue;
			double insns = e == E_NATIVE ? 0 : bc->insns + (e >= E_JIT_VERIFIED && !bc->build ? 2 : 0);
			printf("%s,%s,%" PRIu64 ",%.2f,%.0f,", engine_name[e], bc->name,
			       (uint64_t)((double)runs * bc->scale), bc->med[e], 1e9 / bc->med[e]);
			if (e == E_NATIVE)
				printf(",1.00");
			else
				printf("%.1f,%.2f", insns, bc->med[e] / bc->med[E_NATIVE]);
			printf(",%.2f,%.2f\n", bc->lo[e], bc->hi[e]);
		}
	}

	fprintf(stderr, "\nns per run through rb_bpf_run: median of %d interleaved rounds (min..max);\n"
		"x = vs native.  jit-unchecked: the shipped program as is (no verifier facts);\n"
		"jit-hardened: verified, unchecked, hardened (what rosenbridged runs).\n", rounds);
	fprintf(stderr, "%-18s %6s %-22s", "case", "insns", "native");
	for (int e = 1; e < E_N; e++)
		fprintf(stderr, " %-24s", engine_name[e]);
	fprintf(stderr, "\n");
	for (size_t i = 0; i < N_CASES; i++) {
		struct bench_case *bc = &cases[i];
		if (only && strcmp(only, bc->name))
			continue;
		char cell[64];
		snprintf(cell, sizeof(cell), "%.1f (%.1f..%.1f)", bc->med[0], bc->lo[0], bc->hi[0]);
		fprintf(stderr, "%-18s %6.1f %-22s", bc->name, bc->insns, cell);
		for (int e = 1; e < E_N; e++) {
			if (!bc->prog[e])
				snprintf(cell, sizeof(cell), "-");
			else
				snprintf(cell, sizeof(cell), "%.1f (%.1f..%.1f) %.2fx", bc->med[e], bc->lo[e],
					 bc->hi[e], bc->med[e] / bc->med[0]);
			fprintf(stderr, " %-24s", cell);
		}
		fprintf(stderr, "\n");
	}

	if (!only || !strcmp(only, "bpfkv_node_search")) {
		struct bench_case *s = &cases[0];
		double ratios[64];
		for (int r = 0; r < rounds; r++)
			ratios[r] = s->t[E_JIT_VERIFIED][r] / s->t[E_JIT_NOHARDEN][r];
		qsort(ratios, (size_t)rounds, sizeof(double), cmp_double);
		double jr = s->med[E_JIT] / s->med[E_NATIVE], hr = s->med[E_JIT_VERIFIED] / s->med[E_NATIVE];
		fprintf(stderr,
			"\nTargets (issue 16):\n"
			"  unchecked JIT <= %.2fx native on the node search: %.2fx as is, %.2fx verified+hardened: %s\n"
			"  interpreter <= %.0f ns per node search: %.1f ns: %s\n",
			JIT_TARGET_RATIO, jr, hr, jr <= JIT_TARGET_RATIO && hr <= JIT_TARGET_RATIO ? "met" : "MISSED",
			INTERP_TARGET_NS, s->med[E_INTERP], s->med[E_INTERP] <= INTERP_TARGET_NS ? "met" : "MISSED");
		fprintf(stderr,
			"  hardening on / off (verified node search): %.3f (per-round ratios %.3f..%.3f)"
			" target <= %.2f: %s\n",
			s->med[E_JIT_VERIFIED] / s->med[E_JIT_NOHARDEN], ratios[0], ratios[rounds - 1],
			HARDENING_TARGET,
			s->med[E_JIT_VERIFIED] / s->med[E_JIT_NOHARDEN] <= HARDENING_TARGET ? "met" : "MISSED");
	}
	if (!only || !strcmp(only, "empty")) {
		struct bench_case *e = &cases[1];
		fprintf(stderr, "  empty program through rb_bpf_run (JIT, as rosenbridged) <= %.0f ns: %.2f ns: %s\n",
			ENTRY_TARGET_NS, e->med[E_JIT_VERIFIED],
			e->med[E_JIT_VERIFIED] <= ENTRY_TARGET_NS ? "met" : "MISSED");
	}
	if (verifier && !only)
		verify_times(runs >= 1000000 ? 200 : 20);
	for (size_t i = 0; i < N_CASES; i++)
		for (int e = 0; e < E_N; e++)
			rb_bpf_prog_free(cases[i].prog[e]);
	rb_bpf_prog_free(search);
	rb_bpf_helpers_free(h);
	free(elf);
	free(inputs);
	free(mix_buf);
	return 0;
}
