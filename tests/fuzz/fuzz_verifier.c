/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: "accepted => never faults under run-time checks and
 * leaks nothing".  Bytes become a program (and its data sections, its type
 * and the contents of its regions); whatever the verifier accepts is run
 * the ways tests/soundness/ describes, and any fault, any difference
 * between the runs, or any disagreement of the unchecked JIT aborts.
 *
 * Input (little-endian; what is missing is zero):
 *   [0]      program type: sq, cq, xrp (byte % 3)
 *   [1]      reserved
 *   [2..3]   number of instructions (at most RB_FUZZ_MAX_INSNS)
 *   [4..5]   .rodata length, [6..7] .data length, [8..9] .bss length
 *            (each at most 4096; a section of length 0 is absent)
 *   then the instructions (8 bytes each), the .rodata bytes, the .data
 *   bytes; the rest fills the context's number fields, then scratch, data,
 *   meta and helper memory (soundness.h), on top of contents drawn from a
 *   hash of the whole input.
 *
 * RB_FUZZ_WRITE_SEEDS=DIR in the environment writes the seed corpus (the
 * accepted test programs in this format) to DIR and exits; RB_FUZZ_VERBOSE
 * prints the verifier's verdict on each input.
 */
#include "../soundness/soundness.h"
#include "../../lib/bpf/bpf_internal.h"

#include <rosen/bpf.h>
#include <rosen/ndp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RB_FUZZ_HEADER 10u
#define RB_FUZZ_MAX_INSNS 4096u
#define RB_FUZZ_MAX_SECTION 4096u

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct rb_bpf_helpers *g_helpers;
static bool g_verbose; /* RB_FUZZ_VERBOSE=1: say what the verifier decided */

static unsigned get16(const uint8_t *d, size_t n, size_t at)
{
	return (at < n ? d[at] : 0) | (at + 1 < n ? d[at + 1] : 0) << 8;
}

static uint64_t fnv1a(const uint8_t *d, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ d[i]) * 0x100000001b3ull;
	return h;
}

static void report(const char *why, const struct rb_bpf_insn *insns, size_t n_insns, uint32_t type)
{
	fprintf(stderr, "\nfuzz_verifier: VERIFIER BUG: a %s program the verifier accepted: %s\n",
		rb_ndp_prog_type_name(type), why);
	for (size_t i = 0; i < n_insns; i++) {
		char b[96];
		rb_bpf_disasm_insn(insns, n_insns, i, g_helpers, b, sizeof(b));
		fprintf(stderr, "  %4zu: %s\n", i, b);
	}
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static struct rb_bpf_insn insns[RB_FUZZ_MAX_INSNS];
	static uint8_t sec[RB_BPF_DATA_KINDS][RB_FUZZ_MAX_SECTION];
	uint32_t type = RB_NDP_PROG_SQ + (n ? d[0] % 3 : 0);
	size_t at = RB_FUZZ_HEADER;
	struct rb_bpf_data_section data[RB_BPF_DATA_KINDS] = {{0}};
	struct rb_bpf_prog *a = NULL, *b = NULL;
	char log[1024], why[512];

	if (!g_helpers && !(g_helpers = sd_helpers()))
		abort();
	size_t n_insns = get16(d, n, 2);
	if (n_insns > RB_FUZZ_MAX_INSNS)
		n_insns = RB_FUZZ_MAX_INSNS;
	if (n_insns > (n > at ? (n - at) / 8 : 0))
		n_insns = n > at ? (n - at) / 8 : 0;
	if (!n_insns)
		return 0;
	memcpy(insns, d + at, n_insns * 8);
	at += n_insns * 8;
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++) {
		size_t len = get16(d, n, 4 + 2 * (size_t)k);
		if (len > RB_FUZZ_MAX_SECTION)
			len = RB_FUZZ_MAX_SECTION;
		memset(sec[k], 0, len);
		if (k != RB_BPF_DATA_BSS) {
			size_t have = n > at ? n - at : 0;
			memcpy(sec[k], d + at, have < len ? have : len);
			at += have < len ? have : len;
		}
		data[k].bytes = k == RB_BPF_DATA_BSS ? NULL : sec[k];
		data[k].len = len;
	}
	if (rb_bpf_prog_new(insns, n_insns, g_helpers, data, &a, log, sizeof(log)))
		return 0;
	/* The limit an NDP LOAD has: what the daemon would accept. */
	struct rb_bpf_verify_opts vo = {.max_insns = RB_NDP_VERIFY_MAX_INSNS};
	int rc = rb_bpf_verify_ex(a, rb_ndp_bpf_type(type), &vo, NULL, log, sizeof(log));
	if (g_verbose)
		fprintf(stderr, "fuzz_verifier: %zu insns, %s: %s\n", n_insns, rc ? "rejected" : "accepted",
			rc ? log : "");
	if (rc == 0) {
		if (rb_bpf_prog_new(insns, n_insns, g_helpers, data, &b, log, sizeof(log)))
			report("the same instructions do not load twice", insns, n_insns, type);
		if (sd_check(a, b, type, fnv1a(d, n), n > at ? d + at : NULL, n > at ? n - at : 0, true,
			     NULL, why, sizeof(why)))
			report(why, insns, n_insns, type);
	}
	rb_bpf_prog_free(a);
	rb_bpf_prog_free(b);
	return 0;
}

/* ---- the seed corpus -------------------------------------------------------- */

static const struct {
	const char *path;
	const char *section;
	uint32_t type;
} seeds[] = {
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_mask", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_bound_check", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_meta_len", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_loop_sum", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_stack_array", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_call_stack_arg", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_spilled_ptr", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_helpers", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_mem_trans", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_globals", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_next_ios", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "sq_rewrite", RB_NDP_PROG_SQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "xrp_walk", RB_NDP_PROG_XRP},
	{TEST_PROGS_DIR "/verifier_ok.o", "xrp_spin", RB_NDP_PROG_XRP},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_ptr_walk", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_meta_end_walk", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_sum", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_helpers", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_mem_copy", RB_NDP_PROG_CQ},
	{PROGS_DIR "/bpfkv_xrp_lookup.o", "bpfkv_xrp_lookup", RB_NDP_PROG_XRP},
	{PROGS_DIR "/bpfkv_xrp_get.o", "bpfkv_xrp_get", RB_NDP_PROG_XRP},
	{PROGS_DIR "/bpfkv_xrp_range.o", "bpfkv_xrp_range", RB_NDP_PROG_XRP},
	{PROGS_DIR "/bpfkv_get.o", "bpfkv_get", RB_NDP_PROG_CQ},
	{PROGS_DIR "/bpfkv_range.o", "bpfkv_range", RB_NDP_PROG_CQ},
};

static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	void *p = NULL;
	long sz;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (sz = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET) &&
	    (p = malloc((size_t)sz)) && fread(p, 1, (size_t)sz, f) != (size_t)sz) {
		free(p);
		p = NULL;
	}
	*len = p ? (size_t)sz : 0;
	fclose(f);
	return p;
}

static int write_seeds(const char *dir)
{
	int bad = 0;

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		size_t len;
		void *elf = slurp(seeds[i].path, &len);
		struct rb_bpf_prog *p = NULL;
		char err[512], path[4096];

		if (!elf || rb_bpf_prog_load_elf(elf, len, seeds[i].section, g_helpers, &p, err, sizeof(err))) {
			fprintf(stderr, "fuzz_verifier: %s %s: %s\n", seeds[i].path, seeds[i].section,
				elf ? err : "cannot read");
			free(elf);
			bad = 1;
			continue;
		}
		size_t ni = rb_bpf_prog_len(p);
		uint8_t hdr[RB_FUZZ_HEADER] = {(uint8_t)(seeds[i].type - RB_NDP_PROG_SQ), 0,
					       (uint8_t)ni, (uint8_t)(ni >> 8)};
		for (int k = 0; k < RB_BPF_DATA_KINDS; k++) {
			hdr[4 + 2 * k] = (uint8_t)p->data_len[k];
			hdr[5 + 2 * k] = (uint8_t)(p->data_len[k] >> 8);
		}
		snprintf(path, sizeof(path), "%s/%s", dir, seeds[i].section);
		if (strstr(seeds[i].path, "ndp_progs"))
			snprintf(path, sizeof(path), "%s/ndp_%s", dir, seeds[i].section);
		FILE *f = fopen(path, "wb");
		if (!f || ni > RB_FUZZ_MAX_INSNS || p->data_len[0] > RB_FUZZ_MAX_SECTION ||
		    p->data_len[1] > RB_FUZZ_MAX_SECTION || p->data_len[2] > RB_FUZZ_MAX_SECTION) {
			fprintf(stderr, "fuzz_verifier: cannot write %s\n", path);
			bad = 1;
		} else {
			fwrite(hdr, 1, sizeof(hdr), f);
			fwrite(rb_bpf_prog_insns(p), sizeof(struct rb_bpf_insn), ni, f);
			for (int k = RB_BPF_DATA_RODATA; k <= RB_BPF_DATA_DATA; k++)
				if (p->data_len[k])
					fwrite(p->data[k], 1, p->data_len[k], f);
		}
		if (f)
			fclose(f);
		rb_bpf_prog_free(p);
		free(elf);
	}
	return bad;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("RB_FUZZ_WRITE_SEEDS");

	(void)argc, (void)argv;
	if (!(g_helpers = sd_helpers()))
		abort();
	if (dir)
		exit(write_seeds(dir));
	g_verbose = getenv("RB_FUZZ_VERBOSE") != NULL;
	return 0;
}
