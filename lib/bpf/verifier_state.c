/* SPDX-License-Identifier: MIT */
/*
 * The verifier's states: copying them, deciding whether a kept state
 * covers a new one (so the new path can be cut), and joining two with
 * widening at loop heads.  Pure functions over struct vstate.
 */
#include "verifier_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static void acct_alloc(struct vacct *a, unsigned frames)
{
	if (!a)
		return;
	a->live_bytes += frames * sizeof(struct vframe);
	if (a->live_bytes > a->peak_bytes)
		a->peak_bytes = a->live_bytes;
}

void vstate_free(struct vstate *s)
{
	for (unsigned i = 0; i < s->nframes; i++)
		free(s->f[i]);
	if (s->acct)
		s->acct->live_bytes -= s->nframes * sizeof(struct vframe);
	s->nframes = 0;
}

static void frame_copy(struct vframe *d, const struct vframe *s)
{
	memcpy(d, s, offsetof(struct vframe, spill));
	memcpy(&d->spill[s->min_slot], &s->spill[s->min_slot],
	       (NSLOTS - s->min_slot) * sizeof(struct vreg));
}

bool vstate_copy(struct vstate *dst, const struct vstate *src)
{
	*dst = *src;
	for (unsigned i = 0; i < src->nframes; i++) {
		dst->f[i] = malloc(sizeof(struct vframe));
		if (!dst->f[i]) {
			dst->nframes = i;
			vstate_free(dst);
			return false;
		}
		frame_copy(dst->f[i], src->f[i]);
		/* Counted as it goes, so vstate_free() of a partial copy
		 * subtracts exactly what was added. */
		acct_alloc(src->acct, 1);
	}
	if (src->acct)
		src->acct->frames_copied += src->nframes;
	return true;
}

struct vframe *vframe_new(struct vacct *acct, uint32_t callsite, uint32_t entry)
{
	struct vframe *f = calloc(1, sizeof(*f));

	if (f) {
		f->callsite = callsite;
		f->entry = entry;
		f->min_slot = NSLOTS;
		acct_alloc(acct, 1);
	}
	return f;
}


struct idmap {
	uint32_t old[64], cur[64];
	int64_t delta[64]; /* cur's link_off - old's link_off, the same for all */
	unsigned n;
};

/* Links in old must be links in cur, with the same constant distances. */
static bool id_match(struct idmap *m, uint32_t old, int64_t old_off, uint32_t cur, int64_t cur_off)
{
	if (!old)
		return true;
	for (unsigned i = 0; i < m->n; i++)
		if (m->old[i] == old)
			return m->cur[i] == cur && m->delta[i] == cur_off - old_off;
	if (m->n == 64 || !cur)
		return false;
	m->old[m->n] = old;
	m->cur[m->n] = cur;
	m->delta[m->n++] = cur_off - old_off;
	return true;
}

/* Does every concrete value `cur` allows, `old` allow too? */
static bool reg_covers(const struct vreg *old, const struct vreg *cur, struct idmap *m)
{
	if (old->type == T_NOINIT)
		return true; /* the old path never read it: no later path does */
	if (old->type != cur->type)
		return false;
	if (!id_match(m, old->link, old->link_off, cur->link, cur->link_off))
		return false;
	if (old->type == T_SCALAR)
		return scal_subset(&cur->v, &old->v);
	if (old->idx != cur->idx || old->size != cur->size || old->writable != cur->writable)
		return false;
	if ((old->type == T_MEM_OR_NULL || old->type == T_MEM) && !id_match(m, old->id, 0, cur->id, 0))
		return false;
	return scal_subset(&cur->v, &old->v);
}

static bool frame_covers(const struct vframe *o, const struct vframe *c, struct idmap *m)
{
	if (o->callsite != c->callsite)
		return false;
	for (int i = 0; i < 11; i++)
		if (!reg_covers(&o->r[i], &c->r[i], m))
			return false;
	for (unsigned k = o->min_slot < c->min_slot ? o->min_slot : c->min_slot; k < NSLOTS; k++) {
		const uint8_t *ob = &o->byte[k * 8], *cb = &c->byte[k * 8];
		if (ob[0] == B_SPILL) {
			if (cb[0] != B_SPILL || !reg_covers(&o->spill[k], &c->spill[k], m))
				return false;
			continue;
		}
		for (int i = 0; i < 8; i++) {
			if (ob[i] == B_INVALID)
				continue;
			/* old: some number */
			if (cb[i] == B_INVALID)
				return false;
			if (cb[i] == B_SPILL && c->spill[k].type != T_SCALAR)
				return false;
		}
	}
	return true;
}

bool vstate_covers(const struct vstate *o, const struct vstate *c)
{
	struct idmap m = {.n = 0};

	if (o->nframes != c->nframes)
		return false;
	for (unsigned i = 0; i < o->nframes; i++) {
		if (c->acct)
			c->acct->frames_compared++;
		if (!frame_covers(o->f[i], c->f[i], &m))
			return false;
	}
	return true;
}

static void reg_join(struct vreg *d, const struct vreg *o, const uint64_t *thr, unsigned n)
{
	if (d->type != o->type || d->idx != o->idx || d->size != o->size ||
	    d->writable != o->writable ||
	    ((d->type == T_MEM_OR_NULL || d->type == T_MEM) && d->id != o->id)) {
		*d = (struct vreg){0};
		return;
	}
	if (d->type == T_NOINIT)
		return;
	scal_widen(&d->v, &o->v, thr, n);
	if (d->link != o->link || d->link_off != o->link_off)
		d->link = 0, d->link_off = 0;
}

void vstate_join(struct vstate *d, const struct vstate *o, const uint64_t *thr, unsigned n)
{
	for (unsigned fi = 0; fi < d->nframes; fi++) {
		struct vframe *a = d->f[fi];
		const struct vframe *b = o->f[fi];
		for (int i = 0; i < 11; i++)
			reg_join(&a->r[i], &b->r[i], thr, n);
		if (b->min_slot < a->min_slot)
			a->min_slot = b->min_slot; /* bytes below stay unwritten in a */
		for (unsigned k = a->min_slot; k < NSLOTS; k++) {
			uint8_t *ab = &a->byte[k * 8];
			const uint8_t *bb = &b->byte[k * 8];
			if (ab[0] == B_SPILL && bb[0] == B_SPILL) {
				reg_join(&a->spill[k], &b->spill[k], thr, n);
				if (a->spill[k].type == T_NOINIT)
					memset(ab, B_INVALID, 8);
				continue;
			}
			for (int i = 0; i < 8; i++) {
				bool an = ab[i] == B_MISC || (ab[i] == B_SPILL && a->spill[k].type == T_SCALAR);
				bool bn = bb[i] == B_MISC || (bb[i] == B_SPILL && b->spill[k].type == T_SCALAR);
				ab[i] = an && bn ? B_MISC : B_INVALID;
			}
		}
	}
}

bool vstate_same_frames(const struct vstate *a, const struct vstate *b)
{
	if (a->nframes != b->nframes)
		return false;
	for (unsigned i = 0; i < a->nframes; i++)
		if (a->f[i]->callsite != b->f[i]->callsite)
			return false;
	return true;
}

