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
 *   [1]      bit 0: verify once more under a smaller limit ((byte >> 2) * 64
 *            + 1 instructions) into a 48-byte log: the verdicts must agree
 *            (accepted there => accepted here; a program unsafe there is
 *            unsafe here with the same log, cut short); bit 1: verify a
 *            second load of a rejected program too: same verdict, same log
 *   [2..3]   number of instructions (at most RB_FUZZ_MAX_INSNS)
 *   [4..5]   .rodata length, [6..7] .data length, [8..9] .bss length
 *            (each at most 4096; a section of length 0 is absent)
 *   then the instructions (8 bytes each), the .rodata bytes, the .data
 *   bytes; the rest fills the context's number fields, then scratch, data,
 *   meta and helper memory (soundness.h), on top of contents drawn from a
 *   hash of the whole input.
 *
 * RB_FUZZ_WRITE_SEEDS=DIR in the environment writes the seed corpus (the
 * accepted test programs in this format, and the rejected ones of
 * verifier_hostile.c, one per rule, as rejected_*) to DIR and exits;
 * RB_FUZZ_VERBOSE prints the verifier's verdict on each input.
 */
#include "../soundness/soundness.h"
#include "../../lib/bpf/bpf_internal.h"
#include "prog_seeds.h"

#include <rosen/bpf.h>
#include <rosen/ndp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RB_FUZZ_HEADER FZ_PROG_HEADER
#define RB_FUZZ_MAX_INSNS FZ_PROG_MAX_INSNS
#define RB_FUZZ_MAX_SECTION FZ_PROG_MAX_SECTION

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

/* A verdict's log: NUL-terminated inside its buffer, empty exactly when
 * the program was accepted (rosen/bpf.h). */
static void check_log(int rc, const char *log, size_t len, const struct rb_bpf_insn *insns,
		      size_t n_insns, uint32_t type)
{
	if (!memchr(log, 0, len))
		report("the verifier's log is not NUL-terminated", insns, n_insns, type);
	if (rc > 0 || (rc && rc != -EACCES && rc != -E2BIG && rc != -EINVAL && rc != -ENOMEM))
		report("the verifier returned a status it does not document", insns, n_insns, type);
	if ((rc == 0) != (log[0] == 0))
		report(rc ? "a rejection without a log" : "an acceptance with a log", insns, n_insns, type);
}

/*
 * The walk does not depend on its limit until it reaches it: under a
 * smaller limit the verifier must stop at the same unsafe instruction
 * (same log, cut to the smaller buffer), give up (-E2BIG), or accept a
 * program the full limit accepts too.
 */
static void check_smaller_limit(int rc, const char *log, uint64_t limit,
				const struct rb_bpf_insn *insns, size_t n_insns,
				const struct rb_bpf_data_section *data, uint32_t type)
{
	struct rb_bpf_prog *c = NULL;
	struct rb_bpf_verify_opts vo = {.max_insns = limit};
	char small[48];

	if (rb_bpf_prog_new(insns, n_insns, g_helpers, data, &c, small, sizeof(small)))
		report("the same instructions do not load twice", insns, n_insns, type);
	int rc2 = rb_bpf_verify_ex(c, rb_ndp_bpf_type(type), &vo, NULL, small, sizeof(small));
	rb_bpf_prog_free(c);
	check_log(rc2, small, sizeof(small), insns, n_insns, type);
	if (rc2 == 0 && rc != 0)
		report("accepted under a smaller limit, rejected under the full one", insns, n_insns,
		       type);
	if (rc2 == -EACCES && (rc != -EACCES || strncmp(small, log, sizeof(small) - 1)))
		report("unsafe under a smaller limit, not for the same reason under the full one",
		       insns, n_insns, type);
	if (rc == 0 && rc2 && rc2 != -E2BIG)
		report("accepted, but rejected under a smaller limit for another reason than the limit",
		       insns, n_insns, type);
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
	check_log(rc, log, sizeof(log), insns, n_insns, type);
	uint8_t flags = n > 1 ? d[1] : 0;
	if (flags & 1)
		check_smaller_limit(rc, log, (uint64_t)(flags >> 2) * 64 + 1, insns, n_insns, data, type);
	if ((flags & 2) && rc) {
		char log2[sizeof(log)];
		if (rb_bpf_prog_new(insns, n_insns, g_helpers, data, &b, log2, sizeof(log2)))
			report("the same instructions do not load twice", insns, n_insns, type);
		int rc2 = rb_bpf_verify_ex(b, rb_ndp_bpf_type(type), &vo, NULL, log2, sizeof(log2));
		if (rc2 != rc || strcmp(log, log2))
			report("verified twice, it got two verdicts or two logs", insns, n_insns, type);
		rb_bpf_prog_free(b);
		b = NULL;
	}
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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("RB_FUZZ_WRITE_SEEDS");

	(void)argc, (void)argv;
	if (!(g_helpers = sd_helpers()))
		abort();
	if (dir)
		exit(fz_write_prog_seeds(dir, g_helpers, true));
	g_verbose = getenv("RB_FUZZ_VERBOSE") != NULL;
	return 0;
}
