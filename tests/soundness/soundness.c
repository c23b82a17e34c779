/* SPDX-License-Identifier: MIT */
/*
 * The two-worlds check of soundness.h: one verified program, two runs whose
 * only differences are what the program must never observe (host addresses,
 * garbage in what it never wrote).  Any fault or any difference in what it
 * leaves behind is a verifier bug.  Never aborts: the caller decides.
 */
#include "soundness.h"
#include "../../lib/bpf/bpf_internal.h"

#include <rosen/ndp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SD_REGION 4096u
#define SD_MEM 64u
#define SD_CAPACITY (1ull << 30)

union sd_ctx {
	struct rb_ndp_ctx n;
	struct bpf_xrp x;
};

/* Everything one run sees, at its own host addresses. */
struct sd_world {
	union sd_ctx ctx __attribute__((aligned(64)));
	uint8_t meta[SD_REGION] __attribute__((aligned(64)));
	uint8_t data[SD_REGION] __attribute__((aligned(64)));
	uint8_t scratch[SD_REGION] __attribute__((aligned(64)));
	uint8_t mem[SD_MEM] __attribute__((aligned(64)));
	struct rb_bpf_interp_debug dbg;
	uint32_t type;
	uint64_t helper_calls;
};

/* What a run left behind. */
struct sd_out {
	struct rb_bpf_result res;
	union sd_ctx ctx;
	uint8_t meta[SD_REGION], data[SD_REGION], scratch[SD_REGION], mem[SD_MEM];
	uint8_t *pdata[RB_BPF_DATA_KINDS];
};

_Static_assert(RB_NDP_MAX_META <= SD_REGION && RB_NDP_MAX_DATA <= SD_REGION &&
		       RB_NDP_MAX_SCRATCH <= SD_REGION && XRP_DATA_SIZE <= SD_REGION &&
		       XRP_SCRATCH_SIZE <= SD_REGION,
	       "the worlds grant every region its verified size");

/* Two worlds (A, B); B also sits at another offset inside its page. */
static struct {
	struct sd_world a;
	uint8_t shift[192];
	struct sd_world b;
} g_worlds;
static struct sd_world *const g_a = &g_worlds.a, *const g_b = &g_worlds.b;
static struct sd_world g_tmpl; /* contents both runs start from */
static struct sd_out g_out_a, g_out_b, g_out_j;

static uint64_t sd_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- stand-in helpers -------------------------------------------------------- */

static bool proto_fills(uint32_t type, uint32_t id, unsigned arg)
{
	const struct rb_bpf_type *t = rb_ndp_bpf_type(type);

	for (unsigned i = 0; t && i < t->n_helpers; i++)
		if (t->helpers[i].id == id)
			return t->helpers[i].arg[arg].filled;
	return false;
}

/* As lib/ndp/exec.c, minus the bytes RB_BPF_UNWRITTEN_POISON (the debug
 * interpreter would not see a helper write those). */
static uint64_t sd_get_sqe(struct rb_bpf_call *c, uint64_t ctx, uint64_t idx, uint64_t out,
			   uint64_t a4, uint64_t a5)
{
	struct sd_world *w = rb_bpf_call_user(c);
	struct rb_ndp_sqe sqe = {0};
	uint64_t rc = 0;

	(void)ctx, (void)a4, (void)a5;
	w->helper_calls++;
	if (!rb_bpf_call_mem_ok(c, out, sizeof(sqe), true)) {
		rb_bpf_call_fail(c, "out-buffer %#" PRIx64 " is not the program's writable memory",
				 out);
		return 0;
	}
	if (idx == RB_NDP_SQE_CURRENT) {
		sqe.off = w->ctx.n.offset;
		sqe.len = w->ctx.n.len;
	} else if (idx < RB_NDP_CTX_MAX_NEXT && idx < w->ctx.n.n_next) {
		sqe.off = w->ctx.n.next_off[idx];
		sqe.len = w->ctx.n.next_len[idx];
	} else {
		rc = (uint64_t)-EINVAL;
		/* The weakest helper the prototype allows: one that returns
		 * early leaves the buffer as it was. */
		if (!proto_fills(w->type, RB_NDP_HELPER_GET_SQE, 2))
			return rc;
	}
	uint8_t *b = (uint8_t *)&sqe;
	for (size_t i = 0; i < sizeof(sqe); i++)
		if (b[i] == RB_BPF_UNWRITTEN_POISON)
			b[i]--;
	memcpy((void *)(uintptr_t)out, &sqe, sizeof(sqe));
	return rc;
}

static uint64_t sd_new_sqe(struct rb_bpf_call *c, uint64_t ctx, uint64_t a2, uint64_t a3,
			   uint64_t a4, uint64_t a5)
{
	struct sd_world *w = rb_bpf_call_user(c);

	(void)ctx, (void)a2, (void)a3, (void)a4, (void)a5;
	w->helper_calls++;
	if (w->ctx.n.n_next >= RB_NDP_CTX_MAX_NEXT)
		return (uint64_t)-ENOSPC;
	w->ctx.n.next_off[w->ctx.n.n_next] = 0;
	w->ctx.n.next_len[w->ctx.n.n_next] = 0;
	return w->ctx.n.n_next++;
}

static uint64_t sd_set_sqe(struct rb_bpf_call *c, uint64_t ctx, uint64_t idx, uint64_t off,
			   uint64_t len, uint64_t a5)
{
	struct sd_world *w = rb_bpf_call_user(c);

	(void)ctx, (void)a5;
	w->helper_calls++;
	if (idx >= RB_NDP_CTX_MAX_NEXT || idx >= w->ctx.n.n_next)
		return (uint64_t)-EINVAL;
	if (!len || len > RB_NDP_MAX_DATA || len % 512 || off % 512 || off > SD_CAPACITY - len)
		return (uint64_t)-ERANGE;
	w->ctx.n.next_off[idx] = off;
	w->ctx.n.next_len[idx] = (uint32_t)len;
	return 0;
}

static uint64_t sd_disk_trans(struct rb_bpf_call *c, uint64_t ctx, uint64_t off, uint64_t a3,
			      uint64_t a4, uint64_t a5)
{
	struct sd_world *w = rb_bpf_call_user(c);

	(void)ctx, (void)a3, (void)a4, (void)a5;
	w->helper_calls++;
	return off < SD_CAPACITY ? off : (uint64_t)-ERANGE;
}

/* Registered memory: keys not divisible by 4 name the world's 64 bytes. */
static uint64_t sd_mem_trans(struct rb_bpf_call *c, uint64_t ctx, uint64_t key, uint64_t off,
			     uint64_t len, uint64_t a5)
{
	struct sd_world *w = rb_bpf_call_user(c);

	(void)ctx, (void)a5;
	w->helper_calls++;
	if (key % 4 == 0 || off > SD_MEM || len > SD_MEM - off)
		return 0;
	return (uint64_t)(uintptr_t)(w->mem + off);
}

static uint64_t sd_unknown(struct rb_bpf_call *c, uint64_t a1, uint64_t a2, uint64_t a3,
			   uint64_t a4, uint64_t a5)
{
	(void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
	rb_bpf_call_fail(c, "a helper the program type does not have ran");
	return 0;
}

struct rb_bpf_helpers *sd_helpers(void)
{
	struct rb_bpf_helpers *h = rb_bpf_helpers_new();
	char name[32];

	if (!h)
		return NULL;
	rb_bpf_helpers_register(h, RB_NDP_HELPER_GET_SQE, "rb_ndp_get_sqe", sd_get_sqe);
	rb_bpf_helpers_register(h, RB_NDP_HELPER_NEW_SQE, "rb_ndp_new_sqe", sd_new_sqe);
	rb_bpf_helpers_register(h, RB_NDP_HELPER_SET_SQE, "rb_ndp_set_sqe", sd_set_sqe);
	rb_bpf_helpers_register(h, RB_NDP_HELPER_DISK_TRANS, "rb_ndp_disk_trans", sd_disk_trans);
	rb_bpf_helpers_register(h, RB_NDP_HELPER_MEM_TRANS, "rb_ndp_mem_trans", sd_mem_trans);
	for (uint32_t id = 0; id < RB_BPF_MAX_HELPERS; id++) {
		if (rb_bpf_helpers_name(h, id))
			continue;
		snprintf(name, sizeof(name), "unknown_%u", id);
		rb_bpf_helpers_register(h, id, name, sd_unknown);
	}
	return h;
}

/* ---- contents ---------------------------------------------------------------- */

/* Host addresses a leak would expose: both worlds' regions, stacks and
 * contexts (start and end), both programs' data sections. */
static unsigned leak_targets(uint64_t *t, const struct rb_bpf_prog *a, const struct rb_bpf_prog *b)
{
	unsigned n = 0;
	const struct sd_world *ws[2] = {g_a, g_b};

	for (int i = 0; i < 2; i++) {
		const struct sd_world *w = ws[i];
		t[n++] = (uintptr_t)&w->ctx;
		t[n++] = (uintptr_t)w->meta;
		t[n++] = (uintptr_t)w->meta + SD_REGION;
		t[n++] = (uintptr_t)w->data;
		t[n++] = (uintptr_t)w->data + SD_REGION;
		t[n++] = (uintptr_t)w->scratch;
		t[n++] = (uintptr_t)w->scratch + SD_REGION;
		t[n++] = (uintptr_t)w->mem;
		t[n++] = (uintptr_t)w->dbg.stack + sizeof(w->dbg.stack);
		t[n++] = (uintptr_t)w->dbg.stack + sizeof(w->dbg.stack) - RB_BPF_STACK_SIZE;
	}
	const struct rb_bpf_prog *ps[2] = {a, b};
	for (int i = 0; i < 2; i++)
		for (int k = 0; ps[i] && k < RB_BPF_DATA_KINDS; k++)
			if (ps[i]->data_len[k])
				t[n++] = (uintptr_t)ps[i]->data[k];
	return n;
}

static uint64_t sd_value(uint64_t *rng, const uint64_t *targets, unsigned n_targets)
{
	static const uint64_t edges[] = {
		0, 1, 2, 7, 8, 15, 16, 31, 63, 64, 511, 512, 4088, 4095, 4096, 0x7f, 0x80, 0xff,
		0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull, 0x7fffffffffffffffull,
		0x8000000000000000ull, 0xffffffffffffffffull, 0xfffffffffffff000ull,
	};
	uint64_t r = sd_rand(rng);

	uint64_t t = targets[(r >> 8) % n_targets] + ((r >> 20) % 3 ? 0 : (r >> 24) % 33 - 16);

	switch (r % 10) {
	case 0: case 1: /* an address, or next to one */
		return t;
	case 7: /* what added to an address wraps it to 0, or to the sign bit */
		return ((r >> 28) % 2 ? 0 : 0x8000000000000000ull) - t;
	case 8: return ~t;
	case 2: return 0;
	case 3: return edges[(r >> 8) % (sizeof(edges) / sizeof(edges[0]))];
	case 4: return (r >> 8) % 64;
	case 5: return edges[(r >> 8) % (sizeof(edges) / sizeof(edges[0]))] + (r >> 20) % 5 - 2;
	case 6: return (r >> 8) % 4096;
	}
	return sd_rand(rng);
}

static void fill_words(uint8_t *p, size_t n, uint64_t *rng, const uint64_t *t, unsigned nt)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v = sd_value(rng, t, nt);
		memcpy(p + i, &v, 8);
	}
}

/* Bytes no context field covers: garbage that differs between worlds. */
static void ctx_cover(const struct rb_bpf_type *t, uint8_t *kind, size_t n)
{
	memset(kind, 0, n);
	for (unsigned i = 0; i < t->n_fields; i++) {
		const struct rb_bpf_ctx_field *f = &t->fields[i];
		for (size_t b = 0; b < (size_t)f->size * f->count && f->offset + b < n; b++)
			kind[f->offset + b] = f->kind == RB_BPF_FIELD_SCALAR ? 1 : 2;
	}
}

/* The template: contents both worlds start from (pointer fields unset). */
static void make_template(uint32_t type, uint64_t seed, const uint8_t *fill, size_t fill_len,
			  const uint64_t *targets, unsigned nt)
{
	uint64_t rng = seed;
	struct sd_world *t = &g_tmpl;

	t->type = type;
	fill_words(t->meta, sizeof(t->meta), &rng, targets, nt);
	fill_words(t->data, sizeof(t->data), &rng, targets, nt);
	fill_words(t->scratch, sizeof(t->scratch), &rng, targets, nt);
	fill_words(t->mem, sizeof(t->mem), &rng, targets, nt);
	if (sd_rand(&rng) % 3 == 0)
		memset(t->scratch, 0, 64); /* small keys: walks that go deep */
	memset(&t->ctx, 0, sizeof(t->ctx));
	if (type == RB_NDP_PROG_XRP) {
		t->ctx.x.done = (int)(sd_rand(&rng) % 2);
		for (int i = 0; i < XRP_MAX_NEXT; i++) {
			t->ctx.x.next_addr[i] = sd_value(&rng, targets, nt);
			t->ctx.x.size[i] = sd_value(&rng, targets, nt);
		}
	} else {
		t->ctx.n.offset = sd_value(&rng, targets, nt) & ~511ull;
		t->ctx.n.len = (uint32_t)(sd_rand(&rng) % 4097);
		t->ctx.n.hop = (uint32_t)(sd_rand(&rng) % 4);
		t->ctx.n.n_next = (uint32_t)(sd_rand(&rng) % 17);
		for (int i = 0; i < RB_NDP_CTX_MAX_NEXT; i++) {
			t->ctx.n.next_off[i] = sd_value(&rng, targets, nt);
			t->ctx.n.next_len[i] = (uint32_t)sd_value(&rng, targets, nt);
		}
		/* meta_end's distance from meta: kept in meta_end until placed. */
		t->ctx.n.meta_end = sd_rand(&rng) % (SD_REGION + 1);
	}
	/* The fuzzer's bytes, in this order: context numbers, scratch, data,
	 * meta, helper memory. */
	struct {
		uint8_t *p;
		size_t n;
	} dst[] = {{(uint8_t *)&t->ctx, sizeof(t->ctx)}, {t->scratch, sizeof(t->scratch)},
		   {t->data, sizeof(t->data)}, {t->meta, sizeof(t->meta)}, {t->mem, sizeof(t->mem)}};
	uint8_t cover[sizeof(union sd_ctx)];
	ctx_cover(rb_ndp_bpf_type(type), cover, sizeof(cover));
	size_t at = 0;
	for (size_t d = 0; fill && d < sizeof(dst) / sizeof(dst[0]) && at < fill_len; d++) {
		size_t n = fill_len - at < dst[d].n ? fill_len - at : dst[d].n;
		for (size_t i = 0; i < n; i++)
			if (d || cover[i] == 1)
				dst[d].p[i] = fill[at + i];
		at += n;
	}
	if (type != RB_NDP_PROG_XRP)
		t->ctx.n.meta_end %= SD_REGION + 1;
}

/* World w from the template, at its own addresses, with its own garbage
 * where the program must not look. */
static void place(struct sd_world *w, uint64_t garbage)
{
	const struct sd_world *t = &g_tmpl;
	uint8_t cover[sizeof(union sd_ctx)];

	w->type = t->type;
	w->helper_calls = 0;
	memcpy(w->meta, t->meta, sizeof(w->meta));
	memcpy(w->data, t->data, sizeof(w->data));
	memcpy(w->scratch, t->scratch, sizeof(w->scratch));
	memcpy(w->mem, t->mem, sizeof(w->mem));
	w->ctx = t->ctx;
	ctx_cover(rb_ndp_bpf_type(t->type), cover, sizeof(cover));
	for (size_t i = 0; i < sizeof(cover); i++)
		if (!cover[i])
			((uint8_t *)&w->ctx)[i] = (uint8_t)sd_rand(&garbage);
	if (t->type == RB_NDP_PROG_XRP) {
		w->ctx.x.data = (char *)w->data;
		w->ctx.x.scratch = (char *)w->scratch;
	} else {
		w->ctx.n.meta = (uintptr_t)w->meta;
		w->ctx.n.meta_end = (uintptr_t)w->meta + t->ctx.n.meta_end;
		w->ctx.n.data = (uintptr_t)w->data;
		w->ctx.n.data_end = (uintptr_t)w->data + SD_REGION;
		w->ctx.n.scratch = (uintptr_t)w->scratch;
		w->ctx.n.scratch_end = (uintptr_t)w->scratch + SD_REGION;
	}
	w->dbg.seed = garbage;
	w->dbg.n_args = 1;
}

static void set_pdata(struct rb_bpf_prog *p, uint8_t *const *from)
{
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++)
		if (p->data_len[k])
			memcpy(p->data[k], from[k], p->data_len[k]);
}

static void run(struct sd_world *w, struct rb_bpf_prog *p, bool jit, uint8_t *const *pdata0,
		struct sd_out *out)
{
	struct rb_bpf_region regions[] = {
		{(uintptr_t)&w->ctx,
		 w->type == RB_NDP_PROG_XRP ? sizeof(struct bpf_xrp) : sizeof(struct rb_ndp_ctx), true},
		{(uintptr_t)w->data, SD_REGION, true},
		{(uintptr_t)w->scratch, SD_REGION, true},
		{(uintptr_t)w->meta, SD_REGION, false},
		{(uintptr_t)w->mem, SD_MEM, true},
	};
	struct rb_bpf_run_opts o = {.args = {(uintptr_t)&w->ctx}, .regions = regions,
				    .n_regions = 5, .budget = SD_BUDGET, .user = w};

	set_pdata(p, pdata0);
	if (jit)
		rb_bpf_run(p, &o, &out->res);
	else
		rb_bpf_run_interp_debug(p, &o, &w->dbg, &out->res);
	out->ctx = w->ctx;
	memcpy(out->meta, w->meta, sizeof(w->meta));
	memcpy(out->data, w->data, sizeof(w->data));
	memcpy(out->scratch, w->scratch, sizeof(w->scratch));
	memcpy(out->mem, w->mem, sizeof(w->mem));
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++) {
		free(out->pdata[k]);
		out->pdata[k] = NULL;
		if (p->data_len[k]) {
			out->pdata[k] = malloc(p->data_len[k]);
			if (out->pdata[k])
				memcpy(out->pdata[k], p->data[k], p->data_len[k]);
		}
	}
}

static void whyf(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void whyf(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

static const char *first_diff(const uint8_t *x, const uint8_t *y, size_t n, char *buf, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i]) {
			uint64_t vx = 0, vy = 0;
			size_t w = i & ~(size_t)7;
			memcpy(&vx, x + w, n - w < 8 ? n - w : 8);
			memcpy(&vy, y + w, n - w < 8 ? n - w : 8);
			snprintf(buf, len, "byte %zu (word %#" PRIx64 " vs %#" PRIx64 ")", i, vx, vy);
			return buf;
		}
	return NULL;
}

/* Where two runs' results differ (NULL when they do not); `r0` compares
 * the return value too. */
static const char *compare(const struct sd_out *x, const struct sd_out *y, uint32_t type,
			   const struct rb_bpf_prog *p, bool r0, char *buf, size_t len)
{
	static char d[160];
	uint8_t cover[sizeof(union sd_ctx)];
	const uint8_t *cx = (const uint8_t *)&x->ctx, *cy = (const uint8_t *)&y->ctx;

	if (r0 && x->res.r0 != y->res.r0) {
		snprintf(buf, len, "r0 %#" PRIx64 " vs %#" PRIx64, x->res.r0, y->res.r0);
		return buf;
	}
#define CMP(field, name)                                                                   \
	if (first_diff(x->field, y->field, sizeof(x->field), d, sizeof(d))) {              \
		snprintf(buf, len, "%s %s", name, d);                                      \
		return buf;                                                                \
	}
	CMP(data, "data")
	CMP(scratch, "scratch")
	CMP(meta, "meta")
	CMP(mem, "helper memory")
#undef CMP
	ctx_cover(rb_ndp_bpf_type(type), cover, sizeof(cover));
	for (size_t i = 0; i < sizeof(cover); i++)
		if (cover[i] == 1 && cx[i] != cy[i]) {
			snprintf(buf, len, "context byte %zu (%#x vs %#x)", i, cx[i], cy[i]);
			return buf;
		}
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++)
		if (p->data_len[k] && x->pdata[k] && y->pdata[k] &&
		    first_diff(x->pdata[k], y->pdata[k], p->data_len[k], d, sizeof(d))) {
			snprintf(buf, len, "%s %s", k == RB_BPF_DATA_RODATA ? ".rodata"
						    : k == RB_BPF_DATA_DATA ? ".data" : ".bss", d);
			return buf;
		}
	return NULL;
}

static bool status_ok(const struct rb_bpf_result *r)
{
	return r->status == RB_BPF_OK || r->status == RB_BPF_E_BUDGET;
}

int sd_check(struct rb_bpf_prog *a, struct rb_bpf_prog *b, uint32_t type, uint64_t seed,
	     const uint8_t *fill, size_t fill_len, bool jit, struct sd_stats *st, char *why,
	     size_t whylen)
{
	uint64_t targets[32];
	uint8_t *pdata0[RB_BPF_DATA_KINDS] = {0};
	char buf[256];
	const char *diff;
	int bad = 1;

	if (!b)
		b = a;
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++)
		if (a->data_len[k] != b->data_len[k]) {
			whyf(why, whylen, "the two loads differ in data section %d", k);
			return 1;
		}
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++) {
		if (!a->data_len[k])
			continue;
		pdata0[k] = malloc(a->data_len[k]);
		if (!pdata0[k]) {
			whyf(why, whylen, "out of memory");
			goto out;
		}
		memcpy(pdata0[k], a->data[k], a->data_len[k]);
	}
	unsigned nt = leak_targets(targets, a, b);
	make_template(type, seed, fill, fill_len, targets, nt);

	place(g_a, seed * 2 + 1);
	run(g_a, a, false, pdata0, &g_out_a);
	place(g_b, seed * 2 + 2);
	run(g_b, b, false, pdata0, &g_out_b);
	if (st) {
		st->runs++;
		st->ok += g_out_a.res.status == RB_BPF_OK;
		st->budget += g_out_a.res.status == RB_BPF_E_BUDGET;
		st->helpers += g_a->helper_calls;
	}
	const struct sd_out *bad_run = !status_ok(&g_out_a.res) ? &g_out_a
				       : !status_ok(&g_out_b.res) ? &g_out_b : NULL;
	if (bad_run) {
		whyf(why, whylen, "accepted by the verifier but failed at run time (%s): %s",
		     rb_bpf_status_name(bad_run->res.status), bad_run->res.msg);
		goto out;
	}
	if (g_out_a.res.status != g_out_b.res.status) {
		whyf(why, whylen, "the runs at other addresses end differently: %s vs %s (%s)",
		     rb_bpf_status_name(g_out_a.res.status), rb_bpf_status_name(g_out_b.res.status),
		     g_out_a.res.status ? g_out_a.res.msg : g_out_b.res.msg);
		goto out;
	}
	diff = compare(&g_out_a, &g_out_b, type, a, true, buf, sizeof(buf));
	if (diff) {
		whyf(why, whylen,
		     "the program sees host addresses or bytes it never wrote: runs with its "
		     "memory elsewhere differ in %s", diff);
		goto out;
	}
	if (jit) {
		if (!rb_bpf_prog_is_jitted(a) && rb_bpf_jit(a, RB_BPF_JIT_UNCHECKED, buf, sizeof(buf))) {
			whyf(why, whylen, "does not compile: %s", buf);
			goto out;
		}
		place(g_a, seed * 2 + 1);
		run(g_a, a, true, pdata0, &g_out_j);
		if (g_out_a.res.status == RB_BPF_E_BUDGET) {
			if (g_out_j.res.status != RB_BPF_E_BUDGET) {
				whyf(why, whylen, "interpreter ran out of budget, unchecked JIT: %s (%s)",
				     rb_bpf_status_name(g_out_j.res.status), g_out_j.res.msg);
				goto out;
			}
		} else if (g_out_a.res.executed + 4096 < SD_BUDGET) {
			/* (the JIT may stop up to a block earlier) */
			if (g_out_j.res.status != RB_BPF_OK) {
				whyf(why, whylen, "unchecked JIT: %s (%s), interpreter: ok",
				     rb_bpf_status_name(g_out_j.res.status), g_out_j.res.msg);
				goto out;
			}
			diff = compare(&g_out_a, &g_out_j, type, a, true, buf, sizeof(buf));
			if (diff) {
				whyf(why, whylen, "unchecked JIT differs from the interpreter in %s", diff);
				goto out;
			}
		}
	}
	bad = 0;
out:
	set_pdata(a, pdata0);
	if (b != a)
		set_pdata(b, pdata0);
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++)
		free(pdata0[k]);
	return bad;
}
