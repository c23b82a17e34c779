/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the ELF loader (lib/bpf/elf.c), the first thing an
 * NDP LOAD runs on the guest's object: any bytes, any section name it
 * lists.  The loader must refuse with a message or produce a program that
 * rb_bpf_prog_new() accepts again from its own instructions and data
 * sections, that disassembles, and that the interpreter (run-time checks,
 * no verifier) runs to some status without a crash.
 *
 * Input: [0] which section to load (% the sections rb_bpf_elf_sections()
 * lists; when it lists none, "prog"), [1] bit 0: run the program; the rest
 * is the object.
 *
 * Seeds: the objects of tests/programs and progs/ with their debug and BTF
 * sections removed (llvm-objcopy-19 --strip-debug --remove-section=.BTF
 * --remove-section=.BTF.ext --remove-section=.llvm_addrsig), committed;
 * RB_FUZZ_WRITE_SEEDS=DIR writes the unstripped objects instead.
 */
#include "fuzz_common.h"

#include "../../lib/bpf/bpf_internal.h"

#include <rosen/bpf.h>

#include <errno.h>

#define T "fuzz_elf"
#define MAX_NAMES 64u

static struct rb_bpf_helpers *g_helpers; /* every id: a helper that fails */

static uint64_t h_fail(struct rb_bpf_call *c, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		       uint64_t a5)
{
	(void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
	rb_bpf_call_fail(c, "stand-in");
	return 0;
}

struct names {
	char name[MAX_NAMES][128];
	size_t insns[MAX_NAMES];
	unsigned n;
};

static void collect(const char *name, size_t n_insns, void *arg)
{
	struct names *ns = arg;

	if (!name)
		fz_bug(T, "rb_bpf_elf_sections listed a section without a name");
	if (ns->n < MAX_NAMES) {
		snprintf(ns->name[ns->n], sizeof(ns->name[0]), "%s", name);
		ns->insns[ns->n] = n_insns;
		ns->n++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static struct names ns;
	struct rb_bpf_prog *p = NULL, *q = NULL;
	char err[512], buf[128];

	if (n < 2)
		return 0;
	uint8_t pick = d[0], flags = d[1];
	const uint8_t *elf = d + 2;
	size_t len = n - 2;

	ns.n = 0;
	err[0] = 0;
	int rc = rb_bpf_elf_sections(elf, len, collect, &ns, err, sizeof(err));
	if (rc && (ns.n || !err[0]))
		fz_bug(T, "rb_bpf_elf_sections failed (%d) after listing %u sections, or silently", rc,
		       ns.n);
	const char *section = ns.n ? ns.name[pick % ns.n] : "prog";
	err[0] = 0;
	rc = rb_bpf_prog_load_elf(elf, len, section, g_helpers, &p, err, sizeof(err));
	if (rc) {
		if (p || !err[0] || rc > 0)
			fz_bug(T, "a refusal (%d) without a message, or with a program", rc);
		return 0;
	}
	size_t ni = rb_bpf_prog_len(p);
	const struct rb_bpf_insn *in = rb_bpf_prog_insns(p);
	if (ni == 0 || ni > RB_BPF_MAX_INSNS)
		fz_bug(T, "loaded %zu instructions", ni);
	for (size_t pc = 0; pc < ni;) {
		int k = rb_bpf_disasm_insn(in, ni, pc, g_helpers, buf, sizeof(buf));
		if (k != 1 && k != 2)
			fz_bug(T, "disassembly of insn %zu consumed %d slots", pc, k);
		pc += (size_t)k;
	}
	/* What the loader made, rb_bpf_prog_new() takes again. */
	struct rb_bpf_data_section data[RB_BPF_DATA_KINDS];
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++) {
		data[k].bytes = k == RB_BPF_DATA_BSS ? NULL : p->data[k];
		data[k].len = p->data_len[k];
	}
	if (rb_bpf_prog_new(in, ni, g_helpers, data, &q, err, sizeof(err)))
		fz_bug(T, "section '%s' loaded, but its %zu instructions do not load again: %s", section,
		       ni, err);
	rb_bpf_prog_free(q);
	if (flags & 1) {
		/* No verifier: the interpreter's run-time checks are all there is. */
		static uint8_t ctx[256];
		struct rb_bpf_region r = {(uintptr_t)ctx, sizeof(ctx), true};
		struct rb_bpf_run_opts o = {.args = {(uintptr_t)ctx}, .regions = &r, .n_regions = 1,
					    .budget = 4096};
		struct rb_bpf_result res;
		memset(ctx, 0, sizeof(ctx));
		rb_bpf_run(p, &o, &res);
		if (res.status > RB_BPF_E_ARG || res.executed > 4096 + 1)
			fz_bug(T, "a run ended with status %d after %llu instructions", res.status,
			       (unsigned long long)res.executed);
	}
	rb_bpf_prog_free(p);
	return 0;
}

/* ---- seeds ------------------------------------------------------------------------- */

static int write_seeds(const char *dir)
{
	static const char *const objs[] = {
		TEST_PROGS_DIR "/globals.o", TEST_PROGS_DIR "/helper_failures.o",
		TEST_PROGS_DIR "/hostile.o", TEST_PROGS_DIR "/multi.o",
		TEST_PROGS_DIR "/ndp_busy.o", TEST_PROGS_DIR "/ndp_file_progs.o",
		TEST_PROGS_DIR "/ndp_progs.o", TEST_PROGS_DIR "/node_search.o",
		TEST_PROGS_DIR "/rodata.o", TEST_PROGS_DIR "/subprog.o",
		TEST_PROGS_DIR "/unsupported.o", TEST_PROGS_DIR "/v4.o",
		TEST_PROGS_DIR "/verifier_hostile.o", TEST_PROGS_DIR "/verifier_ok.o",
		PROGS_DIR "/bpfkv_get.o", PROGS_DIR "/bpfkv_range.o",
		PROGS_DIR "/bpfkv_xrp_get.o", PROGS_DIR "/bpfkv_xrp_lookup.o",
		PROGS_DIR "/bpfkv_xrp_range.o", PROGS_DIR "/bpfkv_node_search.o",
	};
	int bad = 0;

	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
		size_t len;
		uint8_t *o = fz_slurp(objs[i], &len);
		struct fz_buf b = {0};
		const char *base = strrchr(objs[i], '/') + 1;
		if (!o) {
			fprintf(stderr, "fuzz_elf: cannot read %s\n", objs[i]);
			bad = 1;
			continue;
		}
		FZ_PUT(&b, uint8_t, i);
		FZ_PUT(&b, uint8_t, 1);
		fz_put(&b, o, len);
		bad |= fz_write_seed(dir, base, b.p, b.len);
		free(b.p);
		free(o);
	}
	return bad;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("RB_FUZZ_WRITE_SEEDS");
	char name[32];

	(void)argc, (void)argv;
	g_helpers = rb_bpf_helpers_new();
	if (!g_helpers)
		abort();
	for (uint32_t id = 0; id < RB_BPF_MAX_HELPERS; id++) {
		snprintf(name, sizeof(name), "helper_%u", id);
		if (rb_bpf_helpers_register(g_helpers, id, name, h_fail))
			abort();
	}
	if (dir)
		exit(write_seeds(dir));
	return 0;
}
