/* SPDX-License-Identifier: MIT */
/*
 * The verifier's log: what it knew of every register and stack slot, and
 * why it refused, written for the person who must fix their program.
 */
#include "verifier_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- logs --------------------------------------------------------------------- */

static void logf_(struct verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct verifier *v, const char *fmt, ...)
{
	size_t used = strlen(v->log);
	va_list ap;

	if (used + 1 >= v->loglen)
		return;
	va_start(ap, fmt);
	vsnprintf(v->log + used, v->loglen - used, fmt, ap);
	va_end(ap);
}

const char *vregion_name(const struct verifier *v, const struct vreg *r)
{
	static const char *const sec[] = {"rodata", "data section", "bss"};

	switch (r->type) {
	case T_CTX: return "context";
	case T_REGION:
	case T_REGION_END: return v->type->regions[r->idx].name;
	case T_STACK: return "stack";
	case T_SECTION: return sec[r->idx];
	case T_MEM:
	case T_MEM_OR_NULL: return "helper memory";
	}
	return "?";
}

void vreg_fmt(const struct verifier *v, const struct vreg *r, char *buf, size_t len)
{
	char off[96];

	if (r->type == T_NOINIT) {
		snprintf(buf, len, "uninit");
		return;
	}
	scal_fmt(off, sizeof(off), &r->v);
	switch (r->type) {
	case T_SCALAR:
		snprintf(buf, len, "%s", off);
		return;
	case T_REGION_END:
		snprintf(buf, len, "%s_end", vregion_name(v, r));
		return;
	case T_STACK:
		if (scal_is_const(&r->v))
			snprintf(buf, len, "fp%s%" PRId64, r->idx ? "(caller)" : "",
				 (int64_t)r->v.t.value - (int64_t)RB_BPF_STACK_SIZE);
		else
			snprintf(buf, len, "stack+%s", off);
		return;
	case T_MEM:
	case T_MEM_OR_NULL:
		snprintf(buf, len, "%s(%u bytes%s)+%s",
			 r->type == T_MEM ? "mem" : "mem_or_null", r->size,
			 r->writable ? "" : ", read-only", off);
		return;
	default:
		snprintf(buf, len, "%s+%s", vregion_name(v, r), off);
	}
}

static void log_state(struct verifier *v, struct vstate *s)
{
	char buf[160];
	struct vframe *f = s->f[s->nframes - 1];

	logf_(v, "  registers (frame %u):", s->nframes - 1);
	for (int i = 0; i <= 10; i++) {
		if (f->r[i].type == T_NOINIT)
			continue;
		vreg_fmt(v, &f->r[i], buf, sizeof(buf));
		logf_(v, " r%d=%s", i, buf);
	}
	logf_(v, "\n  stack:");
	bool any = false;
	for (unsigned slot = f->min_slot; slot < NSLOTS; slot++) {
		const uint8_t *b = &f->byte[slot * 8];
		int off = (int)(slot * 8) - (int)RB_BPF_STACK_SIZE;
		if (b[0] == B_SPILL) {
			vreg_fmt(v, &f->spill[slot], buf, sizeof(buf));
			logf_(v, " fp%d=%s", off, buf);
			any = true;
			continue;
		}
		char m[9];
		bool used = false;
		for (int i = 0; i < 8; i++) {
			m[i] = b[i] == B_MISC ? 'm' : '.';
			used |= b[i] != B_INVALID;
		}
		m[8] = 0;
		if (used) {
			logf_(v, " fp%d=%s", off, m);
			any = true;
		}
	}
	logf_(v, "%s\n", any ? "" : " (nothing written)");
	if (s->nhist) {
		logf_(v, "  last branches taken:");
		unsigned n = s->nhist < HIST ? s->nhist : HIST;
		for (unsigned i = s->nhist - n; i < s->nhist; i++)
			logf_(v, " %u->%u", s->hist[i % HIST][0], s->hist[i % HIST][1]);
		logf_(v, "\n");
	}
}

int vreject(struct verifier *v, struct vstate *s, const char *fmt, ...)
{
	char why[384];
	char insn[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	v->log[0] = 0;
	rb_bpf_disasm_insn(v->in, v->n, s->pc, v->prog->helpers, insn, sizeof(insn));
	logf_(v, "insn %u: %s\n  at: %s\n", s->pc, why, insn);
	log_state(v, s);
	return -EACCES;
}

