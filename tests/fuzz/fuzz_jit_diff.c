/* SPDX-License-Identifier: MIT */
/*
 * Differential libFuzzer target: a program the verifier accepts runs in the
 * interpreter (the reference) and in the unchecked JIT rosenbridged uses,
 * on the same inputs; on a normal exit they must agree on r0 and on every
 * byte of every region, the context and the program's data sections; when
 * the interpreter runs out of budget the JIT must too, at the same
 * instruction, with the same memory (the budget is exact in both); the
 * instructions executed must match whatever the ending.  ASan cannot see inside
 * JIT code, so every region the program can reach (context, data, scratch,
 * metadata, helper memory, .rodata/.data/.bss) sits between PROT_NONE
 * guard pages, read-only ones are mapped read-only while it runs, and the
 * JIT'd code runs on a stack of its own between guard pages (sized so
 * that, without helper calls, the page under its BPF frames is a guard):
 * an access outside them faults, and the fault handler names the region.
 *
 * Input: fuzz_verifier's format (fuzz_verifier.c), so the two share seeds;
 * byte [1] is read here as:
 *   bit 0  regions start right after their guard (else end right before it)
 *   bit 1  a program the verifier rejects (and that calls no helper) runs
 *          in the interpreter and the checked JIT: same status, r0, fault
 *          pc and bytes
 *   bit 2  the unchecked JIT without its hardening (RB_BPF_JIT_NO_HARDENING)
 *   bit 3  a budget of 1..300 instructions (from the input's hash), so that
 *          it runs out in the middle of programs, not only in endless loops
 * RB_FUZZ_SELFTEST=1 skips the verifier (every program counts as accepted,
 * the JIT runs unhardened): the inputs in tests/fuzz/selftest/jit_diff/
 * reach past a region or the stack and must be reported.
 * The rest fills the context's number fields, then scratch, data, meta and
 * helper memory.
 */
#include "fuzz_common.h"
#include "prog_seeds.h"

#include "../../lib/bpf/bpf_internal.h"

#include <rosen/bpf.h>
#include <rosen/ndp.h>

#include <errno.h>
#include <inttypes.h>
#include <sanitizer/common_interface_defs.h>
#include <signal.h>
#include <ucontext.h>

#define T "fuzz_jit_diff"
#define BUDGET 100000u
#define MEM_BYTES 64u
#define ROOMY_STACK (256u << 10)

union ctx {
	struct rb_ndp_ctx n;
	struct bpf_xrp x;
};

/* ---- the world: every region between guard pages ------------------------------ */

enum { R_CTX, R_DATA, R_SCRATCH, R_META, R_MEM, R_RODATA, R_DATA_SEC, R_BSS, R_STACK, R_N };
static const char *const region_name[R_N] = {
	"context", "data", "scratch", "meta", "helper memory", ".rodata", ".data", ".bss",
	"the JIT's stack"};

static struct fz_guarded g_reg[R_N];
static uint8_t *g_at[R_N];         /* where each region starts for this input */
static size_t g_len[R_N];
static uint32_t g_type;
static uint64_t g_helper_calls;

/* Copies of the starting contents and of what the interpreter left. */
static uint8_t g_start[R_BSS + 1][4096], g_after[R_BSS + 1][4096];

static void place(int r, size_t len, bool left)
{
	g_len[r] = len;
	g_at[r] = left ? g_reg[r].body : g_reg[r].body + g_reg[r].body_len - ((len + 7) & ~(size_t)7);
}

/* ---- stand-in helpers: exactly the prototypes' contracts, deterministic -------- */

static union ctx *wctx(void)
{
	return (union ctx *)g_at[R_CTX];
}

static uint64_t h_get_sqe(struct rb_bpf_call *c, uint64_t ctx, uint64_t idx, uint64_t out,
			  uint64_t a4, uint64_t a5)
{
	struct rb_ndp_sqe sqe = {0};
	uint64_t rc = 0;

	(void)ctx, (void)a4, (void)a5;
	g_helper_calls++;
	if (!rb_bpf_call_mem_ok(c, out, sizeof(sqe), true)) {
		rb_bpf_call_fail(c, "out-buffer not writable");
		return 0;
	}
	if (idx == RB_NDP_SQE_CURRENT) {
		sqe.off = wctx()->n.offset;
		sqe.len = wctx()->n.len;
	} else if (idx < RB_NDP_CTX_MAX_NEXT && idx < wctx()->n.n_next) {
		sqe.off = wctx()->n.next_off[idx];
		sqe.len = wctx()->n.next_len[idx];
	} else {
		rc = (uint64_t)-EINVAL;
	}
	memcpy((void *)(uintptr_t)out, &sqe, sizeof(sqe)); /* filled on every path */
	return rc;
}

static uint64_t h_new_sqe(struct rb_bpf_call *c, uint64_t ctx, uint64_t a2, uint64_t a3,
			  uint64_t a4, uint64_t a5)
{
	struct rb_ndp_ctx *n = &wctx()->n;

	(void)c, (void)ctx, (void)a2, (void)a3, (void)a4, (void)a5;
	g_helper_calls++;
	if (n->n_next >= RB_NDP_CTX_MAX_NEXT)
		return (uint64_t)-ENOSPC;
	n->next_off[n->n_next] = 0;
	n->next_len[n->n_next] = 0;
	return n->n_next++;
}

static uint64_t h_set_sqe(struct rb_bpf_call *c, uint64_t ctx, uint64_t idx, uint64_t off,
			  uint64_t len, uint64_t a5)
{
	struct rb_ndp_ctx *n = &wctx()->n;

	(void)c, (void)ctx, (void)a5;
	g_helper_calls++;
	if (idx >= RB_NDP_CTX_MAX_NEXT || idx >= n->n_next)
		return (uint64_t)-EINVAL;
	if (!len || len > RB_NDP_MAX_DATA || len % 512 || off % 512 || off > (1ull << 30) - len)
		return (uint64_t)-ERANGE;
	n->next_off[idx] = off;
	n->next_len[idx] = (uint32_t)len;
	return 0;
}

static uint64_t h_disk_trans(struct rb_bpf_call *c, uint64_t ctx, uint64_t off, uint64_t a3,
			     uint64_t a4, uint64_t a5)
{
	(void)c, (void)ctx, (void)a3, (void)a4, (void)a5;
	g_helper_calls++;
	return off < (1ull << 30) ? off : (uint64_t)-ERANGE;
}

static uint64_t h_mem_trans(struct rb_bpf_call *c, uint64_t ctx, uint64_t key, uint64_t off,
			    uint64_t len, uint64_t a5)
{
	(void)c, (void)ctx, (void)a5;
	g_helper_calls++;
	if (key % 4 == 0 || off > MEM_BYTES || len > MEM_BYTES - off)
		return 0;
	return (uint64_t)(uintptr_t)(g_at[R_MEM] + off);
}

static uint64_t h_unknown(struct rb_bpf_call *c, uint64_t a1, uint64_t a2, uint64_t a3,
			  uint64_t a4, uint64_t a5)
{
	(void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
	rb_bpf_call_fail(c, "a helper the program type does not have");
	return 0;
}

static struct rb_bpf_helpers *g_helpers;
/* RB_FUZZ_SELFTEST=1: treat every program as verified (tests the guards:
 * an out-of-bounds program must then be reported, never missed). */
static bool g_selftest;

/* ---- the program's data sections, moved between guard pages -------------------- */

static struct rb_bpf_prog *g_prog;
static void *g_orig_data[RB_BPF_DATA_KINDS];

/* The engine resolved each data reference to a host address when it
 * prepared the program: point them, and the sections, at guarded copies. */
static void guard_sections(struct rb_bpf_prog *p, bool left)
{
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++) {
		int r = R_RODATA + k;
		g_orig_data[k] = p->data[k];
		if (!p->data_len[k])
			continue;
		place(r, p->data_len[k], left);
		memcpy(g_at[r], p->data[k], p->data_len[k]);
		p->data[k] = g_at[r];
	}
	for (size_t pc = 0; pc + 1 < p->n_insns; pc++) {
		const struct rb_bpf_insn *in = &p->insns[pc];
		if (in->code != (RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW))
			continue;
		if (in->src == RB_BPF_PSEUDO_DATA) {
			uint64_t addr = (uint64_t)(uintptr_t)p->data[in->imm] + (uint32_t)p->insns[pc + 1].imm;
			p->ops[pc].imm = p->step_ops[pc].imm = (int32_t)(uint32_t)addr;
			p->ops[pc + 1].imm = p->step_ops[pc + 1].imm = (int32_t)(uint32_t)(addr >> 32);
		}
		pc++;
	}
}

static void unguard_sections(struct rb_bpf_prog *p)
{
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++)
		p->data[k] = g_orig_data[k];
}

/* ---- contents ------------------------------------------------------------------------ */

static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The starting contents: a hash of the input, then the input's bytes. */
static void make_start(const uint8_t *fill, size_t fill_len, uint64_t seed)
{
	const struct rb_bpf_type *t = rb_ndp_bpf_type(g_type);
	uint8_t cover[sizeof(union ctx)] = {0};

	for (int r = R_CTX; r <= R_MEM; r++)
		for (size_t i = 0; i < g_len[r]; i += 8) {
			uint64_t v = mix(&seed);
			v = v % 4 == 0 ? v % 4096 : v % 4 == 1 ? 0 : v;
			memcpy(g_start[r] + i, &v, g_len[r] - i < 8 ? g_len[r] - i : 8);
		}
	/* Context numbers only where a number field is (pointers set below). */
	for (unsigned i = 0; i < t->n_fields; i++)
		for (size_t b = 0; b < (size_t)t->fields[i].size * t->fields[i].count; b++)
			cover[t->fields[i].offset + b] = t->fields[i].kind == RB_BPF_FIELD_SCALAR;
	static const int order[] = {R_CTX, R_SCRATCH, R_DATA, R_META, R_MEM};
	size_t at = 0;
	for (size_t o = 0; o < 5 && at < fill_len; o++) {
		int r = order[o];
		for (size_t i = 0; i < g_len[r] && at < fill_len; i++, at++)
			if (r != R_CTX || cover[i])
				g_start[r][i] = fill[at];
	}
	union ctx *c = (union ctx *)g_start[R_CTX];
	if (g_type == RB_NDP_PROG_XRP) {
		c->x.data = (char *)g_at[R_DATA];
		c->x.scratch = (char *)g_at[R_SCRATCH];
	} else {
		c->n.meta = (uintptr_t)g_at[R_META];
		c->n.meta_end = (uintptr_t)g_at[R_META] + mix(&seed) % (g_len[R_META] + 1);
		c->n.data = (uintptr_t)g_at[R_DATA];
		c->n.data_end = (uintptr_t)g_at[R_DATA] + g_len[R_DATA];
		c->n.scratch = (uintptr_t)g_at[R_SCRATCH];
		c->n.scratch_end = (uintptr_t)g_at[R_SCRATCH] + mix(&seed) % (g_len[R_SCRATCH] + 1);
	}
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++)
		if (g_prog->data_len[k])
			memcpy(g_start[R_RODATA + k], g_at[R_RODATA + k], g_prog->data_len[k]);
}

static void reset(void)
{
	for (int r = R_CTX; r <= R_BSS; r++)
		if (g_len[r])
			memcpy(g_at[r], g_start[r], g_len[r]);
}

static void snapshot(void)
{
	for (int r = R_CTX; r <= R_BSS; r++)
		if (g_len[r])
			memcpy(g_after[r], g_at[r], g_len[r]);
}

/* Read-only regions are read-only while the program runs. */
static void protect(bool running)
{
	static const int ro[] = {R_META, R_RODATA};
	for (size_t i = 0; i < 2; i++)
		if (g_len[ro[i]])
			mprotect(g_reg[ro[i]].body, g_reg[ro[i]].body_len,
				 running ? PROT_READ : PROT_READ | PROT_WRITE);
}

/* ---- a stack of its own ------------------------------------------------------------- */

static ucontext_t g_main_uc, g_jit_uc;
static const struct rb_bpf_run_opts *g_opts;
static struct rb_bpf_result *g_res;
static const void *g_main_bottom;
static size_t g_main_size;
static size_t g_tight_size; /* stack that puts a guard right under the BPF frames */

static void jit_entry(void)
{
	__sanitizer_finish_switch_fiber(NULL, &g_main_bottom, &g_main_size);
	rb_bpf_run(g_prog, g_opts, g_res);
	__sanitizer_start_switch_fiber(NULL, g_main_bottom, g_main_size);
	swapcontext(&g_jit_uc, &g_main_uc);
}

static void run_on_own_stack(const struct rb_bpf_run_opts *o, struct rb_bpf_result *res,
			     size_t size)
{
	void *fake = NULL;

	g_opts = o;
	g_res = res;
	g_at[R_STACK] = g_reg[R_STACK].body; /* for the fault report */
	g_len[R_STACK] = size;
	if (getcontext(&g_jit_uc))
		abort();
	g_jit_uc.uc_stack.ss_sp = g_reg[R_STACK].body;
	g_jit_uc.uc_stack.ss_size = size;
	g_jit_uc.uc_link = NULL;
	makecontext(&g_jit_uc, jit_entry, 0);
	__sanitizer_start_switch_fiber(&fake, g_reg[R_STACK].body, size);
	if (swapcontext(&g_main_uc, &g_jit_uc))
		abort();
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
}

/* ---- faults in guard pages ---------------------------------------------------------- */

static struct sigaction g_old_segv, g_old_bus;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	for (int r = 0; r < R_N; r++) {
		const struct fz_guarded *g = &g_reg[r];
		uintptr_t lo = (uintptr_t)g->map, body = (uintptr_t)g->body;
		if (!g->map || a < lo || a >= lo + g->map_len)
			continue;
		const char *where = a < body ? "the guard page before"
				    : a >= body + g->body_len ? "the guard page after"
							      : "(read-only)";
		fprintf(stderr, "\n%s: JIT BUG: a %s program's access at %#" PRIxPTR " hit %s %s "
			"(it starts at %p, %zu bytes)\n", T, rb_ndp_prog_type_name(g_type), a, where,
			region_name[r], (void *)g_at[r], g_len[r]);
		for (size_t i = 0; g_prog && i < g_prog->n_insns; i++) {
			char b[96];
			rb_bpf_disasm_insn(g_prog->insns, g_prog->n_insns, i, g_helpers, b, sizeof(b));
			fprintf(stderr, "  %4zu: %s\n", i, b);
		}
		abort();
	}
	/* Not ours: let the sanitizer's handler see it. */
	const struct sigaction *old = sig == SIGSEGV ? &g_old_segv : &g_old_bus;
	if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
		old->sa_sigaction(sig, si, uc);
		return;
	}
	sigaction(sig, old, NULL);
}

/* ---- one input -------------------------------------------------------------------- */

static void report(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\n%s: JIT BUG: a %s program: ", T, rb_ndp_prog_type_name(g_type));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	for (size_t i = 0; i < g_prog->n_insns; i++) {
		char b[96];
		rb_bpf_disasm_insn(g_prog->insns, g_prog->n_insns, i, g_helpers, b, sizeof(b));
		fprintf(stderr, "  %4zu: %s\n", i, b);
	}
	abort();
}

static void compare(const struct rb_bpf_result *ri, const struct rb_bpf_result *rj, bool r0)
{
	if (r0 && ri->r0 != rj->r0)
		report("r0 %#" PRIx64 " (interpreter) vs %#" PRIx64 " (JIT)", ri->r0, rj->r0);
	for (int r = R_CTX; r <= R_BSS; r++)
		for (size_t i = 0; i < g_len[r]; i++)
			if (g_after[r][i] != g_at[r][i])
				report("%s byte %zu: %#x (interpreter) vs %#x (JIT)", region_name[r], i,
				       g_after[r][i], g_at[r][i]);
}

/*
 * Whether the program uses r10's value as a number (arithmetic, a store of
 * it, a comparison) rather than only as the base of its stack accesses.
 * The two engines' stacks lie at different addresses, so such a program's
 * results differ between them with nothing wrong: the verifier refuses it
 * (a pointer leak), and for a refused program run in the checked engines
 * only the status, the pc and the count are compared.
 */
static bool fp_as_value(const struct rb_bpf_insn *insns, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned cls = insns[i].code & 7, x = insns[i].code & RB_BPF_X;
		if ((cls == RB_BPF_ALU || cls == RB_BPF_ALU64) && x && insns[i].src == 10)
			return true;
		if (cls == RB_BPF_STX && insns[i].src == 10)
			return true;
		if ((cls == RB_BPF_JMP || cls == RB_BPF_JMP32) && (insns[i].dst == 10 || (x && insns[i].src == 10)))
			return true;
		if (cls == RB_BPF_LD && insns[i].code == (RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW))
			i++; /* the lddw's second slot */
	}
	return false;
}

static void run_both(const uint8_t *fill, size_t fill_len, uint64_t seed, bool accepted,
		     unsigned flags)
{
	const struct rb_bpf_type *t = rb_ndp_bpf_type(g_type);
	struct rb_bpf_region regions[5];
	unsigned nr = 0;
	struct rb_bpf_result ri, rj;
	char err[256];

	make_start(fill, fill_len, seed);
	regions[nr++] = (struct rb_bpf_region){(uintptr_t)g_at[R_CTX], g_len[R_CTX], true};
	for (unsigned i = 0; i < t->n_regions; i++) {
		int r = !strcmp(t->regions[i].name, "meta")      ? R_META
			: !strcmp(t->regions[i].name, "scratch") ? R_SCRATCH
								 : R_DATA;
		regions[nr++] = (struct rb_bpf_region){(uintptr_t)g_at[r], g_len[r],
						       t->regions[i].writable};
	}
	regions[nr++] = (struct rb_bpf_region){(uintptr_t)g_at[R_MEM], MEM_BYTES, true};
	struct rb_bpf_run_opts o = {.args = {(uintptr_t)g_at[R_CTX]}, .regions = regions,
				    .n_regions = nr, .budget = flags & 8 ? 1 + seed % 300 : BUDGET};

	reset();
	protect(true);
	rb_bpf_run_interp(g_prog, &o, &ri);
	protect(false);
	snapshot();

	if (accepted ? rb_bpf_jit_ex(g_prog, RB_BPF_JIT_UNCHECKED,
				     flags & 4 ? RB_BPF_JIT_NO_HARDENING : 0, err, sizeof(err))
		     : rb_bpf_jit(g_prog, RB_BPF_JIT_CHECKED, err, sizeof(err)))
		report("does not compile: %s", err);
	reset();
	protect(true);
	/* Without helper calls (and the checked JIT's C slow path) nothing
	 * but the JIT'd code runs below its frames: a stack that ends just
	 * under them faults there. */
	run_on_own_stack(&o, &rj,
			 accepted && !g_prog->has_calls && g_tight_size ? g_tight_size : ROOMY_STACK);
	protect(false);

	if (accepted && ri.status != RB_BPF_OK && ri.status != RB_BPF_E_BUDGET)
		report("accepted, but the interpreter ended it with %s: %s", rb_bpf_status_name(ri.status),
		       ri.msg);
	if (ri.status == RB_BPF_E_BUDGET && rj.status != RB_BPF_E_BUDGET)
		report("the interpreter ran out of budget, the JIT ended with %s: %s",
		       rb_bpf_status_name(rj.status), rj.msg);
	if (rj.status != ri.status)
		report("the interpreter ended with %s (%s), the JIT with %s (%s)",
		       rb_bpf_status_name(ri.status), ri.msg, rb_bpf_status_name(rj.status), rj.msg);
	if (ri.status != RB_BPF_OK && ri.pc != rj.pc)
		report("%s at insn %u in the interpreter, at insn %u in the JIT",
		       rb_bpf_status_name(ri.status), ri.pc, rj.pc);
	if (ri.executed != rj.executed)
		report("%s after %" PRIu64 " instructions in the interpreter, %" PRIu64 " in the JIT",
		       rb_bpf_status_name(ri.status), ri.executed, rj.executed);
	if (accepted || !fp_as_value(g_prog->insns, g_prog->n_insns))
		compare(&ri, &rj, ri.status == RB_BPF_OK);
}

static uint64_t fnv1a(const uint8_t *d, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ d[i]) * 0x100000001b3ull;
	return h;
}

static unsigned get16(const uint8_t *d, size_t n, size_t at)
{
	return (at < n ? d[at] : 0) | (at + 1 < n ? d[at + 1] : 0) << 8;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static struct rb_bpf_insn insns[FZ_PROG_MAX_INSNS];
	static uint8_t sec[RB_BPF_DATA_KINDS][FZ_PROG_MAX_SECTION];
	struct rb_bpf_data_section data[RB_BPF_DATA_KINDS] = {{0}};
	size_t at = FZ_PROG_HEADER;
	char log[1024];

	g_type = RB_NDP_PROG_SQ + (n ? d[0] % 3 : 0);
	unsigned flags = n > 1 ? d[1] : 0;
	size_t n_insns = get16(d, n, 2);
	if (n_insns > FZ_PROG_MAX_INSNS)
		n_insns = FZ_PROG_MAX_INSNS;
	if (n_insns > (n > at ? (n - at) / 8 : 0))
		n_insns = n > at ? (n - at) / 8 : 0;
	if (!n_insns)
		return 0;
	memcpy(insns, d + at, n_insns * 8);
	at += n_insns * 8;
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++) {
		size_t len = get16(d, n, 4 + 2 * (size_t)k);
		if (len > FZ_PROG_MAX_SECTION)
			len = FZ_PROG_MAX_SECTION;
		memset(sec[k], 0, len);
		if (k != RB_BPF_DATA_BSS) {
			size_t have = n > at ? n - at : 0;
			memcpy(sec[k], d + at, have < len ? have : len);
			at += have < len ? have : len;
		}
		data[k].bytes = k == RB_BPF_DATA_BSS ? NULL : sec[k];
		data[k].len = len;
	}
	if (rb_bpf_prog_new(insns, n_insns, g_helpers, data, &g_prog, log, sizeof(log)))
		return 0;
	const struct rb_bpf_type *t = rb_ndp_bpf_type(g_type);
	bool left = flags & 1;
	memset(g_len, 0, sizeof(g_len));
	place(R_CTX, t->ctx_size, left);
	for (unsigned i = 0; i < t->n_regions; i++)
		place(!strcmp(t->regions[i].name, "meta")      ? R_META
		      : !strcmp(t->regions[i].name, "scratch") ? R_SCRATCH
							       : R_DATA,
		      t->regions[i].size, left);
	place(R_MEM, MEM_BYTES, left);
	guard_sections(g_prog, left);
	struct rb_bpf_verify_opts vo = {.max_insns = RB_NDP_VERIFY_MAX_INSNS};
	/* The self-test of the guards: every program counts as accepted and
	 * runs unhardened, so an out-of-bounds one must be caught here. */
	int rc = g_selftest ? 0 : rb_bpf_verify_ex(g_prog, t, &vo, NULL, log, sizeof(log));
	if (g_selftest)
		flags |= 4;
	if (rc == 0 || ((flags & 2) && !g_prog->has_calls))
		run_both(n > at ? d + at : NULL, n > at ? n - at : 0, fnv1a(d, n), rc == 0, flags);
	unguard_sections(g_prog);
	rb_bpf_prog_free(g_prog);
	g_prog = NULL;
	return 0;
}

/* ---- set-up ------------------------------------------------------------------------ */

/* How deep the JIT's BPF frames sit under the top of its stack: a program
 * that returns r10 (the top of its frames) tells. */
static void calibrate(void)
{
	static const struct rb_bpf_insn ret_fp[] = {
		{RB_BPF_ALU64 | RB_BPF_MOV | RB_BPF_X, 0, 10, 0, 0},
		{RB_BPF_JMP | RB_BPF_EXIT, 0, 0, 0, 0},
	};
	struct rb_bpf_result res;
	struct rb_bpf_run_opts o = {.budget = 100};
	char err[256];

	/* (It leaks a pointer: the verifier would refuse it, so it runs
	 * unverified, in the lean frame an unchecked program without calls
	 * gets.) */
	if (rb_bpf_prog_new(ret_fp, 2, g_helpers, NULL, &g_prog, err, sizeof(err)) ||
	    rb_bpf_jit_ex(g_prog, RB_BPF_JIT_UNCHECKED, RB_BPF_JIT_NO_HARDENING, err, sizeof(err)))
		abort();
	run_on_own_stack(&o, &res, ROOMY_STACK);
	uint8_t *top = g_reg[R_STACK].body + ROOMY_STACK;
	uint64_t fp = res.r0;
	if (res.status == RB_BPF_OK && fp < (uintptr_t)top && fp > (uintptr_t)g_reg[R_STACK].body) {
		/* Frames of the call chain above the BPF area, the area, and
		 * room under it for what local calls push (5 registers and a
		 * return address per level), prologues that save more
		 * registers than this one, and the C code that formats a
		 * failure's message once the JIT'd code has returned (ASan's
		 * snprintf takes more than the area). */
		size_t above = (size_t)((uintptr_t)top - fp);
		g_tight_size = (above + RB_BPF_MAX_FRAMES * RB_BPF_STACK_SIZE + 1024 + 15) & ~(size_t)15;
	}
	rb_bpf_prog_free(g_prog);
	g_prog = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("RB_FUZZ_WRITE_SEEDS");
	char name[32];

	(void)argc, (void)argv;
	g_helpers = rb_bpf_helpers_new();
	if (!g_helpers)
		abort();
	rb_bpf_helpers_register(g_helpers, RB_NDP_HELPER_GET_SQE, "rb_ndp_get_sqe", h_get_sqe);
	rb_bpf_helpers_register(g_helpers, RB_NDP_HELPER_NEW_SQE, "rb_ndp_new_sqe", h_new_sqe);
	rb_bpf_helpers_register(g_helpers, RB_NDP_HELPER_SET_SQE, "rb_ndp_set_sqe", h_set_sqe);
	rb_bpf_helpers_register(g_helpers, RB_NDP_HELPER_DISK_TRANS, "rb_ndp_disk_trans", h_disk_trans);
	rb_bpf_helpers_register(g_helpers, RB_NDP_HELPER_MEM_TRANS, "rb_ndp_mem_trans", h_mem_trans);
	for (uint32_t id = 0; id < RB_BPF_MAX_HELPERS; id++) {
		if (rb_bpf_helpers_name(g_helpers, id))
			continue;
		snprintf(name, sizeof(name), "unknown_%u", id);
		rb_bpf_helpers_register(g_helpers, id, name, h_unknown);
	}
	if (dir)
		exit(fz_write_prog_seeds(dir, g_helpers, false));
	for (int r = 0; r < R_N; r++)
		if (fz_guard_alloc(&g_reg[r], r == R_STACK ? ROOMY_STACK : 4096, false, 8))
			abort();
	/* Faults in our guard pages are reported; others go on to ASan. */
	static uint8_t altstack[64 << 10];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
	struct sigaction sa = {.sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_ONSTACK};
	sigemptyset(&sa.sa_mask);
	if (sigaltstack(&ss, NULL) || sigaction(SIGSEGV, &sa, &g_old_segv) ||
	    sigaction(SIGBUS, &sa, &g_old_bus))
		abort();
	calibrate();
	g_selftest = getenv("RB_FUZZ_SELFTEST") != NULL;
	if (getenv("RB_FUZZ_VERBOSE"))
		fprintf(stderr, "%s: own stack of %zu bytes for programs without helper calls\n", T,
			g_tight_size);
	return 0;
}
