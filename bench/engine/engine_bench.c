/* SPDX-License-Identifier: MIT */
/*
 * bench/engine: executions per second of the BPF-KV node search (find the
 * child of a 512-byte node of 31 keys) in the interpreter vs the same
 * function compiled natively.  Prints CSV on stdout, a summary on stderr.
 * Every result the interpreter returns is checked against the native one.
 * Also: how long the verifier takes to prove each shipped NDP program safe
 * (what a LOAD costs before the program is compiled).
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
	(void)sink;

	double mean_insns = (double)insns_total / N_INPUTS;
	printf("engine,program,runs,ns_per_run,runs_per_s,insns_per_run,vs_native\n");
	printf("native,bpfkv_node_search,%" PRIu64 ",%.1f,%.0f,,1.00\n", runs,
	       best_native, 1e9 / best_native);
	for (int k = 0; k < 3; k++)
		printf("%s,bpfkv_node_search,%" PRIu64 ",%.1f,%.0f,%.1f,%.2f\n", names[k], runs,
		       best[k], 1e9 / best[k], mean_insns, best[k] / best_native);

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
	verify_times(runs >= 2000000 ? 200 : 20);
	for (int k = 0; k < 3; k++)
		rb_bpf_prog_free(progs[k]);
	free(elf_copy);
	free(inputs);
	return 0;
}
