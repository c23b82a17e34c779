/* SPDX-License-Identifier: MIT */
/*
 * rosen-bpf: run, disassemble and conformance-test eBPF programs with the
 * RosenBridge engine.  A tool for program authors and for CI; it must report
 * every failure as a message and a non-zero exit, never as a crash.
 */
#include <rosen/bpf.h>
#include <rosen/ndp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_helpers.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rosen-bpf COMMAND ...\n"
		"\n"
		"  run OBJECT.o SECTION [--mem FILE] [--budget N] [--stats]\n"
		"      Load the program in SECTION of a clang -target bpf object and run\n"
		"      it in the interpreter with r1 = a private copy of FILE's bytes\n"
		"      (writable; 0 without --mem) and r2 = their length.  Prints r0 as\n"
		"      lowercase hex.  --budget caps the instructions executed (default\n"
		"      %u); --stats prints the count on stderr.\n"
		"  disasm OBJECT.o [SECTION]\n"
		"      Disassemble one program (with the .text subprograms it calls\n"
		"      linked in), or every program section of the object.\n"
		"  verify OBJECT.o SECTION --type sq|cq|xrp [--stats]\n"
		"      Prove the program safe as an NDP program of that type (the\n"
		"      check rosenbridged runs at LOAD): exit 0 when accepted, 1 when\n"
		"      rejected, with the verifier's log on stderr (the instruction,\n"
		"      what was known of every register and the stack, the reason).\n"
		"      --stats prints the work it took.\n"
		"  plugin [MEMORY] [--interpret | --jit]\n"
		"      bpf_conformance plugin: reads one line of hex bytes (the\n"
		"      program) from stdin, MEMORY in the same form, runs with\n"
		"      r1 = MEMORY, r2 = its length, prints r0 in hex.  --jit compiles\n"
		"      to x86-64 (with run-time memory checks) instead of interpreting.\n"
		"\n"
		"Programs may call the conformance test helpers: 0 gather_bytes,\n"
		"1 memfrob, 2 no_op, 3 sqrti, 4 strcmp_ext, 5 unwind.\n"
		"Exit status: 0 on success, 1 when the program is rejected or fails,\n"
		"2 on bad usage.\n",
		RB_BPF_DEFAULT_BUDGET);
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		fprintf(stderr, "rosen-bpf: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			uint8_t *nb = realloc(buf, cap);
			if (!nb) {
				fprintf(stderr, "rosen-bpf: %s: out of memory\n", path);
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "rosen-bpf: %s: read error\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parses "b7 00 00 ..." (bytes separated by blanks) into a new buffer. */
static int parse_hex_bytes(const char *s, uint8_t **out, size_t *len)
{
	size_t cap = strlen(s) / 2 + 1, n = 0;
	uint8_t *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	while (*s) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
			s++;
			continue;
		}
		int hi = hexval(s[0]), lo = hi >= 0 ? hexval(s[1]) : -1;
		if (hi < 0) {
			free(buf);
			return -EINVAL;
		}
		if (lo < 0) { /* a single hex digit */
			buf[n++] = (uint8_t)hi;
			s += 1;
		} else {
			buf[n++] = (uint8_t)(hi << 4 | lo);
			s += 2;
		}
		if (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') {
			free(buf);
			return -EINVAL;
		}
	}
	*out = buf;
	*len = n;
	return 0;
}

static int run_and_print(const struct rb_bpf_prog *prog, uint8_t *mem,
			 size_t mem_len, uint64_t budget, bool stats)
{
	struct rb_bpf_region region = {
		.addr = (uint64_t)(uintptr_t)mem, .len = mem_len, .writable = true,
	};
	struct rb_bpf_run_opts opts = {
		.args = {mem_len ? (uint64_t)(uintptr_t)mem : 0, mem_len},
		.regions = &region,
		.n_regions = mem_len ? 1 : 0,
		.budget = budget,
	};
	struct rb_bpf_result res;
	int rc = rb_bpf_run(prog, &opts, &res);

	if (stats)
		fprintf(stderr, "executed %" PRIu64 " instructions\n", res.executed);
	if (rc) {
		fprintf(stderr, "rosen-bpf: program failed (%s): %s\n",
			rb_bpf_status_name(res.status), res.msg);
		return 1;
	}
	printf("%" PRIx64 "\n", res.r0);
	return 0;
}

static struct rb_bpf_helpers *test_helpers(void)
{
	struct rb_bpf_helpers *h = rb_bpf_helpers_new();

	if (!h || rosen_bpf_register_test_helpers(h)) {
		fprintf(stderr, "rosen-bpf: cannot set up helpers\n");
		rb_bpf_helpers_free(h);
		return NULL;
	}
	return h;
}

static int cmd_plugin(int argc, char **argv)
{
	const char *mem_hex = NULL;
	char *line = NULL;
	size_t cap = 0;
	uint8_t *code = NULL, *mem = NULL;
	size_t code_len = 0, mem_len = 0;
	struct rb_bpf_helpers *h = NULL;
	struct rb_bpf_prog *prog = NULL;
	char err[256];
	int ret = 1;

	bool jit = false;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--interpret") || !strcmp(argv[i], "--jit")) {
			jit = !strcmp(argv[i], "--jit");
			continue;
		}
		if (!strncmp(argv[i], "--", 2)) {
			fprintf(stderr, "rosen-bpf plugin: unknown option %s\n", argv[i]);
			return 2;
		}
		if (mem_hex) {
			fprintf(stderr, "rosen-bpf plugin: more than one memory argument\n");
			return 2;
		}
		mem_hex = argv[i];
	}
	if (getline(&line, &cap, stdin) < 0) {
		fprintf(stderr, "rosen-bpf plugin: no program on stdin\n");
		goto out;
	}
	if (parse_hex_bytes(line, &code, &code_len)) {
		fprintf(stderr, "rosen-bpf plugin: program is not hex bytes\n");
		goto out;
	}
	if (code_len == 0 || code_len % sizeof(struct rb_bpf_insn)) {
		fprintf(stderr,
			"rosen-bpf plugin: program is %zu bytes, not a positive multiple of 8\n",
			code_len);
		goto out;
	}
	if (mem_hex && parse_hex_bytes(mem_hex, &mem, &mem_len)) {
		fprintf(stderr, "rosen-bpf plugin: memory is not hex bytes\n");
		goto out;
	}
	h = test_helpers();
	if (!h)
		goto out;
	if (rb_bpf_prog_new((const struct rb_bpf_insn *)code,
			    code_len / sizeof(struct rb_bpf_insn), h, NULL, &prog,
			    err, sizeof(err))) {
		fprintf(stderr, "rosen-bpf plugin: program rejected: %s\n", err);
		goto out;
	}
	/* Unverified programs: the JIT keeps run-time checks. */
	if (jit && rb_bpf_jit(prog, RB_BPF_JIT_CHECKED, err, sizeof(err))) {
		fprintf(stderr, "rosen-bpf plugin: cannot compile: %s\n", err);
		goto out;
	}
	ret = run_and_print(prog, mem, mem_len, 0, false);
out:
	rb_bpf_prog_free(prog);
	rb_bpf_helpers_free(h);
	free(line);
	free(code);
	free(mem);
	return ret;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (!*s || *s == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

/* An argument that is not an option of its command: OBJECT.o, then
 * SECTION.  0, or 2 (bad usage, said on stderr). */
static int take_positional(const char *cmd, const char *arg, const char **obj, const char **section)
{
	if (arg[0] == '-') {
		fprintf(stderr, "rosen-bpf %s: unknown or incomplete option %s\n", cmd, arg);
		return 2;
	}
	if (!*obj) {
		*obj = arg;
	} else if (!*section) {
		*section = arg;
	} else {
		fprintf(stderr, "rosen-bpf %s: unexpected argument %s\n", cmd, arg);
		return 2;
	}
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	const char *obj = NULL, *section = NULL, *mem_path = NULL;
	uint64_t budget = 0;
	bool stats = false;
	uint8_t *elf = NULL, *mem = NULL;
	size_t elf_len = 0, mem_len = 0;
	struct rb_bpf_helpers *h = NULL;
	struct rb_bpf_prog *prog = NULL;
	char err[256];
	int ret = 1;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--mem") && i + 1 < argc) {
			mem_path = argv[++i];
		} else if (!strcmp(argv[i], "--budget") && i + 1 < argc) {
			if (parse_u64(argv[++i], &budget) || budget == 0) {
				fprintf(stderr, "rosen-bpf run: --budget needs a positive number, got '%s'\n",
					argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "--stats")) {
			stats = true;
		} else if (take_positional("run", argv[i], &obj, &section)) {
			return 2;
		}
	}
	if (!obj || !section) {
		fprintf(stderr, "usage: rosen-bpf run OBJECT.o SECTION [--mem FILE] [--budget N] [--stats]\n");
		return 2;
	}
	if (read_file(obj, &elf, &elf_len))
		goto out;
	if (mem_path && read_file(mem_path, &mem, &mem_len))
		goto out;
	h = test_helpers();
	if (!h)
		goto out;
	if (rb_bpf_prog_load_elf(elf, elf_len, section, h, &prog, err, sizeof(err))) {
		fprintf(stderr, "rosen-bpf run: %s: %s\n", obj, err);
		goto out;
	}
	ret = run_and_print(prog, mem, mem_len, budget, stats);
out:
	rb_bpf_prog_free(prog);
	rb_bpf_helpers_free(h);
	free(elf);
	free(mem);
	return ret;
}

static uint64_t any_helper(struct rb_bpf_call *c, uint64_t a1, uint64_t a2,
			   uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)c, (void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
	return 0;
}

static void disasm_prog(const struct rb_bpf_prog *prog,
			const struct rb_bpf_helpers *h)
{
	const struct rb_bpf_insn *insns = rb_bpf_prog_insns(prog);
	size_t n = rb_bpf_prog_len(prog);
	char line[160];

	for (size_t pc = 0; pc < n;) {
		int used = rb_bpf_disasm_insn(insns, n, pc, h, line, sizeof(line));
		printf("%5zu: %s\n", pc, line);
		pc += (size_t)used;
	}
}

struct section_list {
	char **names;
	size_t n;
};

static void collect_section(const char *name, size_t n_insns, void *arg)
{
	struct section_list *l = arg;
	char **nn = realloc(l->names, (l->n + 1) * sizeof(*nn));

	(void)n_insns;
	if (!nn)
		return;
	l->names = nn;
	l->names[l->n] = strdup(name);
	if (l->names[l->n])
		l->n++;
}

static int cmd_disasm(int argc, char **argv)
{
	struct section_list list = {0};
	struct rb_bpf_helpers *h = NULL;
	uint8_t *elf = NULL;
	size_t elf_len = 0;
	char err[256];
	int ret = 1;

	if (argc < 1 || argc > 2) {
		fprintf(stderr, "usage: rosen-bpf disasm OBJECT.o [SECTION]\n");
		return 2;
	}
	if (read_file(argv[0], &elf, &elf_len))
		return 1;
	/* Disassembly shows what a program calls even when this tool does not
	 * provide it: known ids print their names, the rest their numbers. */
	h = test_helpers();
	if (!h)
		goto out;
	for (uint32_t id = 0; id < RB_BPF_MAX_HELPERS; id++)
		if (!rb_bpf_helpers_name(h, id)) {
			char name[24];
			snprintf(name, sizeof(name), "helper_%u", id);
			rb_bpf_helpers_register(h, id, name, any_helper);
		}
	if (argc == 2) {
		list.names = malloc(sizeof(char *));
		if (!list.names || !(list.names[0] = strdup(argv[1])))
			goto out;
		list.n = 1;
	} else if (rb_bpf_elf_sections(elf, elf_len, collect_section, &list, err,
				       sizeof(err))) {
		fprintf(stderr, "rosen-bpf disasm: %s: %s\n", argv[0], err);
		goto out;
	}
	ret = 0;
	for (size_t i = 0; i < list.n; i++) {
		struct rb_bpf_prog *prog;

		if (rb_bpf_prog_load_elf(elf, elf_len, list.names[i], h, &prog, err,
					 sizeof(err))) {
			fprintf(stderr, "rosen-bpf disasm: %s: %s\n", argv[0], err);
			ret = 1;
			continue;
		}
		printf("%s%s:\n", i ? "\n" : "", list.names[i]);
		disasm_prog(prog, h);
		rb_bpf_prog_free(prog);
	}
out:
	for (size_t i = 0; i < list.n; i++)
		free(list.names[i]);
	free(list.names);
	rb_bpf_helpers_free(h);
	free(elf);
	return ret;
}

/* Helpers as an NDP table sees them, and every other id registered as an
 * unknown placeholder, so that the verifier (not the loader) names a helper
 * the program type may not call. */
static struct rb_bpf_helpers *verify_helpers(void)
{
	struct rb_bpf_helpers *h = rb_bpf_helpers_new();
	char name[32];

	if (!h || rb_ndp_register_helpers(h)) {
		rb_bpf_helpers_free(h);
		return NULL;
	}
	for (uint32_t id = 0; id < RB_BPF_MAX_HELPERS; id++) {
		if (rb_bpf_helpers_name(h, id))
			continue;
		snprintf(name, sizeof(name), "unknown_%u", id);
		rb_bpf_helpers_register(h, id, name, any_helper);
	}
	return h;
}

static int cmd_verify(int argc, char **argv)
{
	const char *obj = NULL, *section = NULL, *type_name = NULL;
	bool stats = false;
	uint8_t *elf = NULL;
	size_t elf_len = 0;
	struct rb_bpf_helpers *h = NULL;
	struct rb_bpf_prog *prog = NULL;
	static char log[RB_NDP_LOG_MAX * 4];
	int ret = 1;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--type") && i + 1 < argc) {
			type_name = argv[++i];
		} else if (!strcmp(argv[i], "--stats")) {
			stats = true;
		} else if (take_positional("verify", argv[i], &obj, &section)) {
			return 2;
		}
	}
	if (!obj || !section || !type_name) {
		fprintf(stderr, "usage: rosen-bpf verify OBJECT.o SECTION --type sq|cq|xrp [--stats]\n");
		return 2;
	}
	uint32_t type = rb_ndp_prog_type_parse(type_name);
	if (!type) {
		fprintf(stderr, "rosen-bpf verify: --type must be sq, cq or xrp, not '%s'\n", type_name);
		return 2;
	}
	if (read_file(obj, &elf, &elf_len))
		goto out;
	h = verify_helpers();
	if (!h)
		goto out;
	if (rb_bpf_prog_load_elf(elf, elf_len, section, h, &prog, log, sizeof(log))) {
		fprintf(stderr, "rosen-bpf verify: %s: %s\n", obj, log);
		goto out;
	}
	struct rb_bpf_verify_stats st;
	/* The limits an NDP LOAD has in rosenbridged (lib/ndp/table.c). */
	const struct rb_bpf_verify_opts opts = {
		.max_insns = RB_NDP_VERIFY_MAX_INSNS, .max_work = RB_NDP_VERIFY_MAX_WORK,
		.max_mem = RB_NDP_VERIFY_MAX_MEM, .max_cpu_ns = RB_NDP_VERIFY_MAX_CPU_NS,
	};
	int rc = rb_bpf_verify_ex(prog, rb_ndp_bpf_type(type), &opts, &st, log, sizeof(log));
	if (rc == 0) {
		fprintf(stderr, "rosen-bpf verify: %s section '%s': accepted as a %s program\n", obj,
			section, type_name);
		ret = 0;
	} else {
		fprintf(stderr, "rosen-bpf verify: %s section '%s': rejected as a %s program\n%s", obj,
			section, type_name, log);
	}
	if (stats)
		fprintf(stderr,
			"insns %zu, walked %llu, states kept %llu, pruned %llu, joined %llu, "
			"frames copied %llu, compared %llu, work %llu, peak memory %llu KiB, %.3f ms\n",
			rb_bpf_prog_len(prog), (unsigned long long)st.insns_processed,
			(unsigned long long)st.states_stored, (unsigned long long)st.states_pruned,
			(unsigned long long)st.states_joined, (unsigned long long)st.frames_copied,
			(unsigned long long)st.frames_compared, (unsigned long long)st.work,
			(unsigned long long)(st.peak_mem >> 10), st.elapsed_ns / 1e6);
out:
	rb_bpf_prog_free(prog);
	rb_bpf_helpers_free(h);
	free(elf);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "plugin"))
		return cmd_plugin(argc - 2, argv + 2);
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 2, argv + 2);
	if (!strcmp(argv[1], "disasm"))
		return cmd_disasm(argc - 2, argv + 2);
	if (!strcmp(argv[1], "verify"))
		return cmd_verify(argc - 2, argv + 2);
	fprintf(stderr, "rosen-bpf: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
