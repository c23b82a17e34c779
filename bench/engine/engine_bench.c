/* SPDX-License-Identifier: MIT */
/*
 * bench/engine: executions per second of the BPF-KV node search (find the
 * child of a 512-byte node of 31 keys) in the interpreter vs the same
 * function compiled natively.  Prints CSV on stdout, a summary on stderr.
 * Every result the interpreter returns is checked against the native one.
 * Also: how long the verifier takes to prove each shipped NDP program safe
 * (what a LOAD costs before the program is compiled), and what the
 * unchecked JIT's hardening costs on the node search once verified.
 */
#include <rosen/bpf.h>
#include <rosen/ndp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bpfkv_node.h"

#define TARGET_NS 400.0    /* issue 2: one node-search run in <= 400 ns */
#define JIT_TARGET_NS 25.0 /* issue 6: JIT <= 25 ns, <= 1.5x native */
#define HARDENING_TARGET 1.10 /* issue 10: hardened JIT <= +10% */

struct input {
	struct bpfkv_node node;
	unsigned long long key;
} __attribute__((aligned(64)));

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

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* noinline: the compiler must not hoist the search out of the timing loop. */
static __attribute__((noinline)) unsigned long long
native_search(const struct input *in)
{
	return bpfkv_node_child(&in->node, in->key);
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

static void usage(void)
{
	fprintf(stderr,
		"usage: engine_bench [--obj FILE] [--runs N] [--quick]\n"
		"  Times the BPF-KV node search (progs/bpfkv_node_search.c) in the\n"
		"  eBPF interpreter and natively, over %s nodes, best of 5 rounds.\n"
		"  --obj FILE  eBPF object (default: the one built with this bench)\n"
		"  --runs N    searches per round and engine (default 2000000)\n"
		"  --quick     200000 searches per round\n",
		"4096");
}

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

static int read_file(const char *path, uint8_t **out, size_t *len);

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

struct search_ctx {
	uint64_t input;
};

/* The verified node search compiled unchecked with `flags`; NULL (and a
 * message) on failure.  *verified says whether the verifier accepted it. */
static struct rb_bpf_prog *verified_search(const struct rb_bpf_prog *search, unsigned flags,
					   bool *verified)
{
	size_t n = rb_bpf_prog_len(search);
	struct rb_bpf_insn *code = malloc((n + 2) * sizeof(*code));
	struct rb_bpf_prog *p = NULL;
	char log[4096];

	if (!code)
		return NULL;
	code[0] = (struct rb_bpf_insn){.code = RB_BPF_LDX | RB_BPF_MEM | RB_BPF_DW, .dst = 1, .src = 1};
	code[1] = (struct rb_bpf_insn){.code = RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_K, .dst = 2,
				       .imm = (int32_t)SEARCH_INPUT_BYTES};
	memcpy(code + 2, rb_bpf_prog_insns(search), n * sizeof(*code));
	if (rb_bpf_prog_new(code, n + 2, NULL, NULL, &p, log, sizeof(log))) {
		fprintf(stderr, "engine_bench: node search with a context: %s\n", log);
		free(code);
		return NULL;
	}
	free(code);
	*verified = rb_bpf_verify_ex(p, &search_type, NULL, NULL, log, sizeof(log)) == 0;
	if (!*verified)
		fprintf(stderr, "engine_bench: the verifier rejects the node search: %s\n", log);
	if (rb_bpf_jit_ex(p, RB_BPF_JIT_UNCHECKED, flags, log, sizeof(log))) {
		fprintf(stderr, "engine_bench: JIT: %s\n", log);
		rb_bpf_prog_free(p);
		return NULL;
	}
	return p;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

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
		printf("verifier,%s,%d,%.0f,%.0f,%" PRIu64 ",\n", shipped[i].section, reps, ns, 1e9 / ns,
		       st.insns_processed);
		rb_bpf_prog_free(p);
		free(elf);
	}
	rb_bpf_helpers_free(h);
}

int main(int argc, char **argv)
{
	const char *obj = PROGS_DIR "/bpfkv_node_search.o";
	uint64_t runs = 2000000;
	enum { N_INPUTS = 4096, ROUNDS = 5 };

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
		} else if (!strcmp(argv[i], "--quick")) {
			runs = 200000;
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
	struct rb_bpf_prog *prog;
	char err[256];
	if (rb_bpf_prog_load_elf(elf, elf_len, "bpfkv_node_search", NULL, &prog,
				 err, sizeof(err))) {
		fprintf(stderr, "engine_bench: %s: %s\n", obj, err);
		return 1;
	}
	uint8_t *elf_copy = elf;
	size_t elf_copy_len = elf_len;

	struct input *inputs = aligned_alloc(64, N_INPUTS * sizeof(*inputs));
	if (!inputs)
		return 1;
	for (int i = 0; i < N_INPUTS; i++)
		make_input(&inputs[i]);

	struct rb_bpf_region region = {.len = sizeof(struct input), .writable = false};
	struct rb_bpf_run_opts opts = {.regions = &region, .n_regions = 1,
				       .args = {0, sizeof(struct input)}};
	struct rb_bpf_result res;
	uint64_t insns_total = 0;

	/* Correctness first: the interpreter must agree with native code. */
	for (int i = 0; i < N_INPUTS; i++) {
		region.addr = opts.args[0] = (uint64_t)(uintptr_t)&inputs[i];
		if (rb_bpf_run(prog, &opts, &res) || res.r0 != native_search(&inputs[i])) {
			fprintf(stderr, "engine_bench: node %d: interpreter gave 0x%" PRIx64
				" (%s), native 0x%llx\n", i, res.r0, res.msg,
				native_search(&inputs[i]));
			return 1;
		}
		insns_total += res.executed;
	}

	/* The same program compiled: with run-time checks (as for programs
	 * nobody verified) and without (as for verified ones). */
	struct rb_bpf_prog *progs[3] = {prog, NULL, NULL};
	const char *names[3] = {"interpreter", "jit-checked", "jit-unchecked"};
	for (int k = 1; k < 3; k++) {
		if (rb_bpf_prog_load_elf(elf_copy, elf_copy_len, "bpfkv_node_search", NULL, &progs[k],
					 err, sizeof(err)) ||
		    rb_bpf_jit(progs[k], k == 1 ? RB_BPF_JIT_CHECKED : RB_BPF_JIT_UNCHECKED, err,
			       sizeof(err))) {
			fprintf(stderr, "engine_bench: JIT: %s\n", err);
			return 1;
		}
		for (int i = 0; i < N_INPUTS; i++) {
			region.addr = opts.args[0] = (uint64_t)(uintptr_t)&inputs[i];
			if (rb_bpf_run(progs[k], &opts, &res) || res.r0 != native_search(&inputs[i])) {
				fprintf(stderr, "engine_bench: node %d: %s gave 0x%" PRIx64 " (%s)\n", i,
					names[k], res.r0, res.msg);
				return 1;
			}
		}
	}

	double best[3] = {1e300, 1e300, 1e300}, best_native = 1e300;
	volatile unsigned long long sink = 0;
	for (int round = 0; round < ROUNDS; round++) {
		for (int k = 0; k < 3; k++) {
			double t0 = now_ns();
			for (uint64_t r = 0; r < runs; r++) {
				const struct input *in = &inputs[r % N_INPUTS];
				region.addr = opts.args[0] = (uint64_t)(uintptr_t)in;
				rb_bpf_run(progs[k], &opts, &res);
				sink += res.r0;
			}
			double t = (now_ns() - t0) / (double)runs;
			if (t < best[k])
				best[k] = t;
		}
		double t1 = now_ns();
		for (uint64_t r = 0; r < runs; r++)
			sink += native_search(&inputs[r % N_INPUTS]);
		double t2 = now_ns();
		if ((t2 - t1) / (double)runs < best_native)
			best_native = (t2 - t1) / (double)runs;
	}

	/* Hardening on vs off: the same verified program, rounds interleaved
	 * (the order alternating) so drift hits both alike; medians. */
	enum { HROUNDS = 11 };
	bool verified[2] = {false, false};
	struct rb_bpf_prog *hp[2] = {verified_search(prog, 0, &verified[0]),
				     verified_search(prog, RB_BPF_JIT_NO_HARDENING, &verified[1])};
	if (!hp[0] || !hp[1])
		return 1;
	struct search_ctx sctx;
	struct rb_bpf_run_opts hopts = {.args = {(uint64_t)(uintptr_t)&sctx}};
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < N_INPUTS; i++) {
			sctx.input = (uint64_t)(uintptr_t)&inputs[i];
			if (rb_bpf_run(hp[k], &hopts, &res) || res.r0 != native_search(&inputs[i])) {
				fprintf(stderr, "engine_bench: node %d: verified node search (%s) gave 0x%"
					PRIx64 " (%s)\n", i, k ? "no hardening" : "hardened", res.r0, res.msg);
				return 1;
			}
		}
	double ht[2][HROUNDS];
	for (int round = 0; round < HROUNDS; round++) {
		for (int o = 0; o < 2; o++) {
			int k = (round + o) % 2;
			double t0 = now_ns();
			for (uint64_t r = 0; r < runs; r++) {
				sctx.input = (uint64_t)(uintptr_t)&inputs[r % N_INPUTS];
				rb_bpf_run(hp[k], &hopts, &res);
				sink += res.r0;
			}
			ht[k][round] = (now_ns() - t0) / (double)runs;
		}
	}
	(void)sink;
	double hmed[2], ratios[HROUNDS];
	for (int round = 0; round < HROUNDS; round++)
		ratios[round] = ht[0][round] / ht[1][round];
	for (int k = 0; k < 2; k++) {
		qsort(ht[k], HROUNDS, sizeof(double), cmp_double);
		hmed[k] = ht[k][HROUNDS / 2];
	}
	qsort(ratios, HROUNDS, sizeof(double), cmp_double);
	double hratio = hmed[0] / hmed[1];

	double mean_insns = (double)insns_total / N_INPUTS;
	printf("engine,program,runs,ns_per_run,runs_per_s,insns_per_run,vs_native\n");
	printf("native,bpfkv_node_search,%" PRIu64 ",%.1f,%.0f,,1.00\n", runs,
	       best_native, 1e9 / best_native);
	for (int k = 0; k < 3; k++)
		printf("%s,bpfkv_node_search,%" PRIu64 ",%.1f,%.0f,%.1f,%.2f\n", names[k], runs,
		       best[k], 1e9 / best[k], mean_insns, best[k] / best_native);
	/* Medians of interleaved rounds (not best-of), with the verifier's
	 * two-instruction context prologue. */
	printf("jit-hardened,bpfkv_node_search_verified,%" PRIu64 ",%.1f,%.0f,%.1f,%.2f\n", runs,
	       hmed[0], 1e9 / hmed[0], mean_insns + 2, hmed[0] / best_native);
	printf("jit-no-hardening,bpfkv_node_search_verified,%" PRIu64 ",%.1f,%.0f,%.1f,%.2f\n", runs,
	       hmed[1], 1e9 / hmed[1], mean_insns + 2, hmed[1] / best_native);

	fprintf(stderr,
		"\nBPF-KV node search, best of %d rounds of %" PRIu64 " runs (%.1f eBPF instructions/run):\n"
		"  native C:       %7.1f ns/run\n"
		"  interpreter:    %7.1f ns/run  %5.1fx native   target <= %.0f ns: %s\n"
		"  JIT, checked:   %7.1f ns/run  %5.1fx native   (run-time memory checks)\n"
		"  JIT, unchecked: %7.1f ns/run  %5.1fx native   targets <= 1.5x native: %s, <= %.0f ns: %s\n",
		ROUNDS, runs, mean_insns, best_native, best[0], best[0] / best_native, TARGET_NS,
		best[0] <= TARGET_NS ? "met" : "MISSED", best[1], best[1] / best_native, best[2],
		best[2] / best_native, best[2] <= 1.5 * best_native ? "met" : "MISSED",
		JIT_TARGET_NS, best[2] <= JIT_TARGET_NS ? "met" : "MISSED");
	fprintf(stderr,
		"\nUnchecked JIT hardening, node search through a verified context (%s), median of %d\n"
		"interleaved rounds of %" PRIu64 " runs:\n"
		"  layers on:      %7.1f ns/run\n"
		"  layers off:     %7.1f ns/run  (RB_BPF_JIT_NO_HARDENING)\n"
		"  on / off:       %7.3f  (per-round ratios %.3f..%.3f, median %.3f)   target <= %.2f: %s\n",
		verified[0] ? "verified" : "NOT verified: no facts", HROUNDS, runs, hmed[0], hmed[1],
		hratio, ratios[0], ratios[HROUNDS - 1], ratios[HROUNDS / 2], HARDENING_TARGET,
		hratio <= HARDENING_TARGET ? "met" : "MISSED");
	verify_times(runs >= 2000000 ? 200 : 20);
	for (int k = 0; k < 3; k++)
		rb_bpf_prog_free(progs[k]);
	rb_bpf_prog_free(hp[0]);
	rb_bpf_prog_free(hp[1]);
	free(elf_copy);
	free(inputs);
	return 0;
}
