/* SPDX-License-Identifier: MIT */
/*
 * The static verifier: abstract interpretation of every path through a
 * program.  Each register and stack byte carries what is known of it (a
 * number with ranges and known bits, or a pointer into a named region with
 * an offset range); every load, store, helper call and exit is checked
 * against that.  Paths are explored depth-first; at jump targets the states
 * seen are kept, and a new state that a kept one covers is cut (its
 * continuation was or will be checked from the more general state).  Loop
 * heads visited too often join their states with widening, so a loop whose
 * bound cannot be proven is still verified in finite time (the run-time
 * instruction budget ends it).
 */
#include "verifier_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- reading registers ----------------------------------------------------------- */

static int need_init(struct verifier *v, struct vstate *s, unsigned r)
{
	if (regs(s)[r].type == T_NOINIT)
		return vreject(v, s, "r%u is read before it is written", r);
	return 0;
}

static int need_scalar(struct verifier *v, struct vstate *s, unsigned r, const char *why)
{
	int rc = need_init(v, s, r);

	if (rc)
		return rc;
	if (is_ptr(&regs(s)[r])) {
		char b[160];
		vreg_fmt(v, &regs(s)[r], b, sizeof(b));
		return vreject(v, s, "r%u holds a pointer (%s) where %s needs a number: that would leak an address",
			      r, b, why);
	}
	return 0;
}

/* After a refinement, every register linked to r learns it. */
static void propagate_link(struct vstate *s, const struct vreg *r)
{
	if (!r->link || r->type == T_NOINIT)
		return;
	for (unsigned fi = 0; fi < s->nframes; fi++) {
		struct vframe *f = s->f[fi];
		for (int i = 0; i < 12; i++) {
			bool spill = i == 11;
			for (unsigned k = spill ? f->min_slot : 0; k < (spill ? NSLOTS : 1); k++) {
				struct vreg *q = spill ? &f->spill[k] : &f->r[i];
				if (spill && f->byte[k * 8] != B_SPILL)
					continue;
				if (q == r || q->link != r->link || q->type != r->type || q->idx != r->idx)
					continue;
				struct scal nv = r->v, delta = scal_const((uint64_t)(q->link_off - r->link_off));
				scal_alu(&nv, &delta, RB_BPF_ADD, true, false);
				scal_meet(&q->v, &nv);
			}
		}
	}
}

/* ---- memory ---------------------------------------------------------------------- */

/* Size of what the pointer leads to (for regions with a fixed size). */
static uint64_t ptr_limit(const struct verifier *v, const struct vreg *p)
{
	switch (p->type) {
	case T_REGION: return v->type->regions[p->idx].size;
	case T_STACK: return RB_BPF_STACK_SIZE;
	case T_SECTION: return v->prog->data_len[p->idx];
	case T_MEM: return p->size;
	}
	return 0;
}

static bool ptr_writable(const struct verifier *v, const struct vreg *p)
{
	switch (p->type) {
	case T_REGION: return v->type->regions[p->idx].writable;
	case T_STACK: return true;
	case T_SECTION: return p->idx != RB_BPF_DATA_RODATA;
	case T_MEM: return p->writable;
	}
	return false;
}

/* The byte range [lo, hi) an access of `size` bytes at p + off may touch;
 * rejects unbounded or out-of-region ones. */
static int access_range(struct verifier *v, struct vstate *s, unsigned reg, const struct vreg *p,
			int64_t off, uint64_t size, int64_t *lo, int64_t *hi)
{
	uint64_t limit = ptr_limit(v, p);
	char b[160];

	if (p->v.smin <= -OFF_LIMIT || p->v.smax >= OFF_LIMIT) {
		vreg_fmt(v, p, b, sizeof(b));
		return vreject(v, s, "r%u = %s: the offset into the %s is not bounded (mask it or compare it first)",
			      reg, b, vregion_name(v, p));
	}
	*lo = p->v.smin + off;
	*hi = p->v.smax + off + (int64_t)size;
	if (*lo < 0 || (uint64_t)*hi > limit) {
		vreg_fmt(v, p, b, sizeof(b));
		return vreject(v, s,
			      "r%u = %s: access of %" PRIu64 " bytes at offset %+" PRId64 " may touch bytes %" PRId64 "..%" PRId64 " of the %" PRIu64 "-byte %s",
			      reg, b, size, off, *lo, *hi - 1, limit, vregion_name(v, p));
	}
	return 0;
}

static const struct rb_bpf_ctx_field *ctx_field(const struct rb_bpf_type *t, uint64_t off,
						unsigned size, unsigned *elem)
{
	for (unsigned i = 0; i < t->n_fields; i++) {
		const struct rb_bpf_ctx_field *f = &t->fields[i];
		uint64_t start = f->offset, end = start + (uint64_t)f->size * f->count;
		if (off < start || off >= end)
			continue;
		uint64_t in = (off - start) % f->size;
		if (in + size > f->size || off % size)
			return NULL;
		*elem = (unsigned)((off - start) / f->size);
		return f;
	}
	return NULL;
}

/* A context access at a constant offset. */
static int ctx_access(struct verifier *v, struct vstate *s, unsigned reg, const struct vreg *p,
		      int64_t off, unsigned size, bool write, bool sx, const struct vreg *val,
		      struct vreg *out)
{
	if (!scal_is_const(&p->v))
		return vreject(v, s, "r%u: the context is accessed at a variable offset", reg);
	int64_t o = (int64_t)p->v.t.value + off;
	unsigned elem;
	const struct rb_bpf_ctx_field *f =
		o < 0 || (uint64_t)o >= v->type->ctx_size ? NULL : ctx_field(v->type, (uint64_t)o, size, &elem);
	if (!f)
		return vreject(v, s, "context offset %" PRId64 " (%u bytes) is not a field of the %s context, or is misaligned",
			      o, size, v->type->name);
	if (write) {
		if (f->kind != RB_BPF_FIELD_SCALAR || !(f->access & RB_BPF_ACC_WRITE))
			return vreject(v, s, "context field '%s' is read-only", f->name);
		if (val && is_ptr(val))
			return vreject(v, s, "a pointer is stored into context field '%s': the guest could read it back",
				      f->name);
		return 0;
	}
	if (!(f->access & RB_BPF_ACC_READ))
		return vreject(v, s, "context field '%s' may not be read", f->name);
	if (f->kind == RB_BPF_FIELD_SCALAR) {
		*out = scalar(sx ? scal_swidth(size) : scal_width(size));
		return 0;
	}
	if (size != 8 || sx)
		return vreject(v, s, "pointer field '%s' must be read whole (8 bytes)", f->name);
	*out = (struct vreg){.type = f->kind == RB_BPF_FIELD_PTR ? T_REGION : T_REGION_END,
			     .idx = f->region};
	out->v = scal_const(0);
	if (f->kind == RB_BPF_FIELD_PTR_END) {
		/* Anywhere from the start to the end of the region. */
		struct scal end = scal_const(v->type->regions[f->region].size);
		scal_join(&out->v, &end, false);
	}
	return 0;
}

/* Marks stack bytes [lo, hi) of frame f as written by a number (when
 * `surely`) or as possibly written (then they keep nothing we knew). */
static void stack_clobber(struct vframe *f, int64_t lo, int64_t hi, bool surely)
{
	for (int64_t slot = lo / 8; slot * 8 < hi; slot++) {
		uint8_t *b = &f->byte[slot * 8];
		if (b[0] != B_SPILL)
			continue;
		/* A spilled pointer partly overwritten must not be read back as
		 * a number: what is left of it becomes unreadable. */
		uint8_t rest = f->spill[slot].type == T_SCALAR ? B_MISC : B_INVALID;
		for (int i = 0; i < 8; i++)
			b[i] = rest;
	}
	if (!surely)
		return;
	if ((unsigned)(lo / 8) < f->min_slot)
		f->min_slot = (unsigned)(lo / 8);
	for (int64_t i = lo; i < hi; i++)
		f->byte[i] = B_MISC;
}

static int stack_read(struct verifier *v, struct vstate *s, unsigned reg, struct vframe *f,
		      const struct vreg *p, int64_t lo, int64_t hi, unsigned size, bool sx,
		      struct vreg *out)
{
	bool fixed = scal_is_const(&p->v);

	/* A whole spilled register read back: what was known of it.  Not
	 * for the byte checks of atomics and helper arguments (out == NULL),
	 * which must refuse a spilled pointer like any other read of it as
	 * a number. */
	if (out && fixed && size == 8 && lo % 8 == 0 && f->byte[lo] == B_SPILL) {
		*out = f->spill[lo / 8];
		return 0;
	}
	for (int64_t i = lo; i < hi; i++) {
		if (f->byte[i] == B_INVALID)
			return vreject(v, s, "r%u: reads stack byte fp%" PRId64 ", which is not initialised",
				      reg, i - (int64_t)RB_BPF_STACK_SIZE);
		if (f->byte[i] == B_SPILL && f->spill[i / 8].type != T_SCALAR)
			return vreject(v, s, "r%u: reads part of a pointer spilled at fp%" PRId64 " as a number",
				      reg, (i / 8) * 8 - (int64_t)RB_BPF_STACK_SIZE);
	}
	if (out)
		*out = scalar(sx ? scal_swidth(size) : scal_width(size));
	return 0;
}

static int stack_write(struct verifier *v, struct vstate *s, struct vframe *f, const struct vreg *p,
		       int64_t lo, int64_t hi, unsigned size, const struct vreg *val)
{
	bool fixed = scal_is_const(&p->v);

	if (fixed && size == 8 && lo % 8 == 0 && val) {
		/* A whole aligned slot: keep what we know of the value. */
		for (int i = 0; i < 8; i++)
			f->byte[lo + i] = B_SPILL;
		f->spill[lo / 8] = *val;
		if ((unsigned)(lo / 8) < f->min_slot)
			f->min_slot = (unsigned)(lo / 8);
		return 0;
	}
	if (val && is_ptr(val))
		return vreject(v, s, "a pointer is stored to the stack in pieces or at a variable offset");
	stack_clobber(f, lo, hi, fixed);
	return 0;
}

/*
 * A load (out != NULL) or store (val: the value, NULL for a stored
 * immediate) of `size` bytes at reg + off.
 */
static int mem_access(struct verifier *v, struct vstate *s, unsigned reg, int16_t off,
		      unsigned size, bool write, bool sx, const struct vreg *val, struct vreg *out)
{
	struct vreg p = regs(s)[reg];
	int64_t lo, hi;
	int rc;

	switch (p.type) {
	case T_NOINIT:
		return vreject(v, s, "r%u is read before it is written", reg);
	case T_SCALAR:
		return vreject(v, s, "r%u is a number, not a pointer: memory cannot be %s through it",
			      reg, write ? "written" : "read");
	case T_MEM_OR_NULL:
		return vreject(v, s, "r%u may be NULL: compare it with 0 before using it", reg);
	case T_REGION_END:
		return vreject(v, s, "r%u is the end of the %s: it marks a bound and is never dereferenced",
			      reg, vregion_name(v, &p));
	case T_CTX:
		return ctx_access(v, s, reg, &p, off, size, write, sx, val, out);
	}
	rc = access_range(v, s, reg, &p, off, size, &lo, &hi);
	if (rc)
		return rc;
	if (p.type == T_STACK) {
		struct vframe *f = s->f[p.idx];
		vfact_stack(v, s, p.idx, lo);
		if (write)
			return stack_write(v, s, f, &p, lo, hi, size, val);
		return stack_read(v, s, reg, f, &p, lo, hi, size, sx, out);
	}
	if (write) {
		if (!ptr_writable(v, &p))
			return vreject(v, s, "r%u: the %s is read-only", reg, vregion_name(v, &p));
		if (val && is_ptr(val))
			return vreject(v, s, "a pointer is stored into the %s: the guest could read it back",
				      vregion_name(v, &p));
		return 0;
	}
	*out = scalar(sx ? scal_swidth(size) : scal_width(size));
	return 0;
}

/* ---- instructions ------------------------------------------------------------------ */

/* After dst op= src: a 64-bit add or sub of a constant keeps dst linked
 * to its copies (at another distance); anything else cuts the link. */
static void keep_link(struct vreg *d, const struct rb_bpf_insn *in)
{
	uint8_t op = in->code & 0xf0;
	bool k64 = (in->code & 7) == RB_BPF_ALU64 && !(in->code & RB_BPF_X);

	if (d->link && k64 && (op == RB_BPF_ADD || op == RB_BPF_SUB))
		d->link_off += op == RB_BPF_ADD ? in->imm : -(int64_t)in->imm;
	else
		d->link = 0, d->link_off = 0;
}

static int alu(struct verifier *v, struct vstate *s, const struct rb_bpf_insn *in)
{
	struct vreg *r = regs(s);
	uint8_t cls = in->code & 7, op = in->code & 0xf0;
	bool is64 = cls == RB_BPF_ALU64, x = in->code & RB_BPF_X;
	struct vreg src;
	int rc;

	if (op == RB_BPF_END) {
		if ((rc = need_scalar(v, s, in->dst, "a byte swap")))
			return rc;
		scal_bswap(&r[in->dst].v, (unsigned)in->imm, is64 || x);
		r[in->dst].link = 0;
		r[in->dst].link_off = 0;
		return 0;
	}
	if (x) {
		if ((rc = need_init(v, s, in->src)))
			return rc;
		src = r[in->src];
	} else {
		src = scalar(scal_const(is64 ? (uint64_t)(int64_t)in->imm : (uint32_t)in->imm));
	}
	if (op == RB_BPF_MOV) {
		if (in->off) { /* movsx */
			if ((rc = need_scalar(v, s, in->src, "a sign extension")))
				return rc;
			r[in->dst] = scalar(r[in->src].v);
			scal_movsx(&r[in->dst].v, &src.v, (unsigned)in->off, is64);
			return 0;
		}
		if (!is64) {
			if (is_ptr(&src))
				return vreject(v, s, "32-bit move of a pointer: its low half would be a readable number");
			r[in->dst] = scalar(src.v);
			scal_alu(&r[in->dst].v, &src.v, RB_BPF_MOV, false, false);
			return 0;
		}
		if (x) {
			/* Copies share a link, so a bound check on one bounds both. */
			if (!r[in->src].link) {
				r[in->src].link = ++v->next_id;
				r[in->src].link_off = 0;
			}
			src.link = r[in->src].link;
			src.link_off = r[in->src].link_off;
		}
		r[in->dst] = src;
		return 0;
	}
	if ((rc = need_init(v, s, in->dst)))
		return rc;
	if (is64 && x && (op == RB_BPF_ADD || op == RB_BPF_SUB) &&
	    (rc = vfact_add_operands(v, s, in)))
		return rc;
	struct vreg *d = &r[in->dst];
	if (d->type == T_SCALAR && src.type == T_SCALAR) {
		bool sdiv = (op == RB_BPF_DIV || op == RB_BPF_MOD) && in->off == 1;
		scal_alu(&d->v, &src.v, op, is64, sdiv);
		keep_link(d, in);
		return 0;
	}
	/* Pointer arithmetic: only 64-bit add/sub of a number, and the
	 * difference of two pointers into the same region. */
	const struct vreg *ptr = is_ptr(d) ? d : &src;
	if (!is64 || (op != RB_BPF_ADD && op != RB_BPF_SUB))
		return vreject(v, s, "%s on a pointer into the %s is not allowed (only 64-bit add and sub)",
			      is64 ? "this operation" : "32-bit arithmetic", vregion_name(v, ptr));
	if (ptr->type == T_MEM_OR_NULL)
		return vreject(v, s, "arithmetic on a pointer that may be NULL: compare it with 0 first");
	if (is_ptr(d) && is_ptr(&src)) {
		bool same = op == RB_BPF_SUB && d->idx == src.idx &&
			    ((d->type == src.type) ||
			     ((d->type == T_REGION || d->type == T_REGION_END) &&
			      (src.type == T_REGION || src.type == T_REGION_END)));
		if (!same || d->type == T_MEM)
			return vreject(v, s, "only pointers into the same region may be subtracted");
		struct scal diff = d->v;
		scal_alu(&diff, &src.v, RB_BPF_SUB, true, false);
		*d = scalar(diff);
		return 0;
	}
	if (!is_ptr(d) && op == RB_BPF_SUB)
		return vreject(v, s, "a pointer is subtracted from a number");
	/* pointer +- number, number + pointer: the number and the offset it
	 * makes must stay within +-2^29, whatever the access later does, so
	 * that no offset wraps the address (and no compare can reveal it). */
	const struct vreg *num = is_ptr(d) ? &src : d;
	unsigned num_reg = is_ptr(d) ? in->src : in->dst;
	char b[160];
	if (num->v.smin < -PTR_OFF_MAX || num->v.smax > PTR_OFF_MAX) {
		vreg_fmt(v, num, b, sizeof(b));
		if (!x)
			return vreject(v, s, "a constant of %" PRId64 " is added to a pointer into the %s: pointer arithmetic is limited to +-2^29",
				      num->v.smin, vregion_name(v, ptr));
		return vreject(v, s, "r%u = %s is added to a pointer into the %s: the number must be proven within +-2^29 first (mask or compare it)",
			      num_reg, b, vregion_name(v, ptr));
	}
	struct scal o = ptr->v;
	scal_alu(&o, &num->v, is_ptr(d) ? op : RB_BPF_ADD, true, false);
	if (o.smin < -PTR_OFF_MAX || o.smax > PTR_OFF_MAX) {
		vreg_fmt(v, ptr, b, sizeof(b));
		return vreject(v, s, "the pointer (%s) would move to an offset outside +-2^29 of the %s",
			      b, vregion_name(v, ptr));
	}
	if (is_ptr(d)) {
		d->v = o;
		keep_link(d, in);
		return 0;
	}
	*d = src;
	d->v = o;
	d->link = 0, d->link_off = 0;
	return 0;
}

static int load_imm64(struct verifier *v, struct vstate *s, const struct rb_bpf_insn *in)
{
	struct vreg *d = &regs(s)[in->dst];

	if (in->src == RB_BPF_PSEUDO_DATA) {
		*d = (struct vreg){.type = T_SECTION, .idx = (uint8_t)in->imm};
		d->v = scal_const((uint32_t)in[1].imm);
		return 0;
	}
	(void)v;
	*d = scalar(scal_const((uint64_t)(uint32_t)in->imm | ((uint64_t)(uint32_t)in[1].imm << 32)));
	return 0;
}

static unsigned size_of(uint8_t code)
{
	switch (code & 0x18) {
	case RB_BPF_B: return 1;
	case RB_BPF_H: return 2;
	case RB_BPF_W: return 4;
	}
	return 8;
}

static int atomic_op(struct verifier *v, struct vstate *s, const struct rb_bpf_insn *in)
{
	struct vreg *r = regs(s);
	unsigned size = size_of(in->code);
	struct vreg p = r[in->dst];
	int64_t lo, hi;
	int rc;

	if ((rc = need_scalar(v, s, in->src, "an atomic operation")))
		return rc;
	if (in->imm == RB_BPF_CMPXCHG && (rc = need_scalar(v, s, 0, "cmpxchg's comparand")))
		return rc;
	if (p.type == T_CTX || p.type == T_REGION_END || p.type == T_MEM_OR_NULL || !is_ptr(&p))
		return mem_access(v, s, in->dst, in->off, size, true, false, NULL, NULL) ?:
		       vreject(v, s, "atomic operations work on the stack and writable regions only");
	if ((rc = access_range(v, s, in->dst, &p, in->off, size, &lo, &hi)))
		return rc;
	/* Locked instructions on a misaligned address split across cache
	 * lines (a kernel with split-lock detection kills the daemon): the
	 * offset must be provably aligned, from a base known to be. */
	if (p.type == T_MEM || (p.v.t.mask & (size - 1)) ||
	    ((p.v.t.value + (uint64_t)(int64_t)in->off) & (size - 1)))
		return vreject(v, s, "atomic access to the %s is not provably %u-byte aligned",
			      vregion_name(v, &p), size);
	if (p.type == T_STACK) {
		vfact_stack(v, s, p.idx, lo);
		/* Reads then writes: the bytes must hold a number already. */
		if ((rc = stack_read(v, s, in->dst, s->f[p.idx], &p, lo, hi, size, false, NULL)))
			return rc;
		stack_clobber(s->f[p.idx], lo, hi, scal_is_const(&p.v));
	} else if (!ptr_writable(v, &p)) {
		return vreject(v, s, "r%u: the %s is read-only", in->dst, vregion_name(v, &p));
	}
	if (in->imm == RB_BPF_CMPXCHG)
		r[0] = scalar(scal_width(size));
	else if (in->imm & RB_BPF_FETCH)
		r[in->src] = scalar(scal_width(size));
	return 0;
}

static int ldst(struct verifier *v, struct vstate *s, const struct rb_bpf_insn *in)
{
	uint8_t cls = in->code & 7, mode = in->code & 0xe0;
	unsigned size = size_of(in->code);
	struct vreg *r = regs(s);
	int rc;

	if (cls == RB_BPF_LDX) {
		struct vreg out;
		if ((rc = mem_access(v, s, in->src, in->off, size, false, mode == RB_BPF_MEMSX, NULL, &out)))
			return rc;
		regs(s)[in->dst] = out;
		return 0;
	}
	if (mode == RB_BPF_ATOMIC)
		return atomic_op(v, s, in);
	if (cls == RB_BPF_STX) {
		if ((rc = need_init(v, s, in->src)))
			return rc;
		struct vreg val = r[in->src];
		if (is_ptr(&val) && size != 8)
			return vreject(v, s, "part of a pointer is stored to memory");
		return mem_access(v, s, in->dst, in->off, size, true, false, &val, NULL);
	}
	/* ST: an immediate. */
	struct vreg val = scalar(scal_const((uint64_t)(int64_t)in->imm));
	if (size < 8)
		scal_trunc(&val.v, size);
	return mem_access(v, s, in->dst, in->off, size, true, false, size == 8 ? &val : NULL, NULL);
}

static const struct rb_bpf_helper_proto *find_helper(const struct rb_bpf_type *t, uint32_t id)
{
	for (unsigned i = 0; i < t->n_helpers; i++)
		if (t->helpers[i].id == id)
			return &t->helpers[i];
	return NULL;
}

/* One memory argument of a helper. */
static int helper_mem_arg(struct verifier *v, struct vstate *s, const struct rb_bpf_helper_proto *h,
			  unsigned argno, const struct rb_bpf_helper_arg *a)
{
	struct vreg *r = regs(s);
	struct vreg p = r[argno];
	uint64_t size = a->size;
	bool write = a->kind == RB_BPF_ARG_MEM_W;
	int64_t lo, hi;
	int rc;

	if (a->size_arg) {
		const struct vreg *sz = &r[a->size_arg];
		if (sz->type != T_SCALAR)
			return vreject(v, s, "%s: argument %u (a size) must be a number", h->name, a->size_arg);
		size = sz->v.umax;
	}
	if (!is_ptr(&p) || p.type == T_CTX || p.type == T_REGION_END || p.type == T_MEM_OR_NULL) {
		char b[160];
		vreg_fmt(v, &p, b, sizeof(b));
		return vreject(v, s, "%s: argument %u must point to %s memory of %" PRIu64 " bytes; r%u = %s",
			      h->name, argno, write ? "writable" : "initialised", size, argno, b);
	}
	if (size > RB_BPF_STACK_SIZE * 16)
		return vreject(v, s, "%s: argument %u's size is not bounded", h->name, argno);
	if ((rc = access_range(v, s, argno, &p, 0, size, &lo, &hi)))
		return rc;
	if (p.type == T_STACK) {
		struct vframe *f = s->f[p.idx];
		vfact_stack(v, s, p.idx, lo);
		if (!write)
			return stack_read(v, s, argno, f, &p, lo, hi, 1, false, NULL);
		/* Written only if the helper fills the buffer on every path;
		 * otherwise the bytes keep their state (stale host stack must
		 * never count as the program's own data). */
		stack_clobber(f, lo, hi, scal_is_const(&p.v) && !a->size_arg && a->filled);
		return 0;
	}
	if (write && !ptr_writable(v, &p))
		return vreject(v, s, "%s: argument %u points into the read-only %s", h->name, argno,
			      vregion_name(v, &p));
	return 0;
}

static void clobber_args(struct vstate *s)
{
	for (int i = 1; i <= 5; i++)
		regs(s)[i] = (struct vreg){0};
}

static int helper_call(struct verifier *v, struct vstate *s, uint32_t id)
{
	const struct rb_bpf_helper_proto *h = find_helper(v->type, id);
	struct vreg *r = regs(s);
	int rc;

	if (!h) {
		const char *name = rb_bpf_helpers_name(v->prog->helpers, id);
		return vreject(v, s, "helper %u%s%s%s is not callable from %s programs", id,
			      name ? " (" : "", name ? name : "", name ? ")" : "", v->type->name);
	}
	for (unsigned i = 0; i < 5; i++) {
		const struct rb_bpf_helper_arg *a = &h->arg[i];
		unsigned argno = i + 1;
		if (a->kind == RB_BPF_ARG_NONE)
			continue;
		if ((rc = need_init(v, s, argno)))
			return rc;
		switch (a->kind) {
		case RB_BPF_ARG_SCALAR:
			if (is_ptr(&r[argno]))
				return vreject(v, s, "%s: argument %u must be a number, not a pointer (it would leak an address)",
					      h->name, argno);
			break;
		case RB_BPF_ARG_CTX:
			if (r[argno].type != T_CTX || !scal_is_const(&r[argno].v) || r[argno].v.t.value)
				return vreject(v, s, "%s: argument %u must be the context pointer the program got in r1",
					      h->name, argno);
			break;
		default:
			if ((rc = helper_mem_arg(v, s, h, argno, a)))
				return rc;
		}
	}
	struct vreg ret = scalar(scal_unknown());
	if (h->ret == RB_BPF_RET_MEM_OR_NULL) {
		const struct vreg *sz = &r[h->ret_size_arg];
		uint64_t size = sz->type == T_SCALAR ? sz->v.umin : 0;
		ret = (struct vreg){.type = T_MEM_OR_NULL, .writable = h->ret_writable,
				    .size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size,
				    .id = ++v->next_id, .v = scal_const(0)};
	}
	clobber_args(s);
	r[0] = ret;
	return 0;
}

static int call(struct verifier *v, struct vstate *s, const struct rb_bpf_insn *in)
{
	struct vreg *r = regs(s);
	int rc;

	if (in->src == RB_BPF_CALL_LOCAL) {
		if (s->nframes >= RB_BPF_MAX_FRAMES)
			return vreject(v, s, "local calls nested deeper than %u frames", RB_BPF_MAX_FRAMES);
		uint32_t entry = s->pc + (uint32_t)in->imm + 1;
		struct vframe *f = vframe_new(s->acct, s->pc, entry);
		if (!f)
			return -ENOMEM;
		v->facts[entry].flags |= RB_FACT_FN_ENTRY;
		for (int i = 1; i <= 5; i++)
			f->r[i] = r[i];
		f->r[10] = (struct vreg){.type = T_STACK, .idx = (uint8_t)s->nframes,
					 .v = scal_const(RB_BPF_STACK_SIZE)};
		s->f[s->nframes++] = f;
		s->pc = s->pc + (uint32_t)in->imm + 1;
		return 1; /* pc set */
	}
	uint32_t id = (uint32_t)in->imm;
	if ((in->code & RB_BPF_X)) { /* callx: the id in a register */
		if ((rc = need_scalar(v, s, in->dst, "callx")))
			return rc;
		if (!scal_is_const(&r[in->dst].v))
			return vreject(v, s, "callx: the helper id in r%u is not a known constant", in->dst);
		id = (uint32_t)r[in->dst].v.t.value;
		if (r[in->dst].v.t.value >= RB_BPF_MAX_HELPERS)
			return vreject(v, s, "callx: helper id %" PRIu64 " is out of range", r[in->dst].v.t.value);
	}
	return helper_call(v, s, id);
}

/* Pointers into a frame that is gone must not be used again. */
static void forget_frame(struct vstate *s, unsigned gone)
{
	for (unsigned fi = 0; fi < s->nframes; fi++) {
		struct vframe *f = s->f[fi];
		for (int i = 0; i < 11; i++)
			if (f->r[i].type == T_STACK && f->r[i].idx >= gone)
				f->r[i] = (struct vreg){0};
		for (unsigned k = f->min_slot; k < NSLOTS; k++)
			if (f->byte[k * 8] == B_SPILL && f->spill[k].type == T_STACK &&
			    f->spill[k].idx >= gone)
				memset(&f->byte[k * 8], B_INVALID, 8);
	}
}

/* 1: path finished; 2: returned to a caller (pc set); <0 rejected. */
static int do_exit(struct verifier *v, struct vstate *s)
{
	struct vreg *r = regs(s);
	char b[160];
	int rc;

	if ((rc = need_init(v, s, 0)))
		return rc;
	if (s->nframes == 1) {
		if (r[0].type != T_SCALAR) {
			vreg_fmt(v, &r[0], b, sizeof(b));
			return vreject(v, s, "the program returns a pointer (r0 = %s): its value would reach the guest", b);
		}
		return 1;
	}
	if (r[0].type == T_STACK && r[0].idx == s->nframes - 1)
		return vreject(v, s, "a function returns a pointer to its own stack frame");
	struct vreg ret = r[0];
	struct vframe *f = s->f[--s->nframes];
	s->pc = f->callsite + 1;
	free(f);
	s->acct->live_bytes -= sizeof(*f);
	forget_frame(s, s->nframes);
	clobber_args(s);
	regs(s)[0] = ret;
	if (ret.type == T_STACK && ret.idx >= s->nframes)
		regs(s)[0] = (struct vreg){0};
	return 2;
}

static enum scal_rel jmp_rel(uint8_t op)
{
	switch (op) {
	case RB_BPF_JEQ: return REL_EQ;
	case RB_BPF_JNE: return REL_NE;
	case RB_BPF_JGT: return REL_GT;
	case RB_BPF_JGE: return REL_GE;
	case RB_BPF_JLT: return REL_LT;
	case RB_BPF_JLE: return REL_LE;
	case RB_BPF_JSGT: return REL_SGT;
	case RB_BPF_JSGE: return REL_SGE;
	case RB_BPF_JSLT: return REL_SLT;
	case RB_BPF_JSLE: return REL_SLE;
	}
	return REL_SET;
}

static enum scal_rel negate(enum scal_rel r)
{
	static const enum scal_rel neg[] = {
		[REL_EQ] = REL_NE, [REL_NE] = REL_EQ, [REL_GT] = REL_LE, [REL_GE] = REL_LT,
		[REL_LT] = REL_GE, [REL_LE] = REL_GT, [REL_SGT] = REL_SLE, [REL_SGE] = REL_SLT,
		[REL_SLT] = REL_SGE, [REL_SLE] = REL_SGT, [REL_SET] = REL_NSET, [REL_NSET] = REL_SET,
	};
	return neg[r];
}

/* Applies "dst rel src" to state s; false when it cannot hold. */
static bool assume(struct vstate *s, const struct rb_bpf_insn *in, enum scal_rel rel)
{
	struct vreg *r = regs(s);
	bool x = in->code & RB_BPF_X, is32 = (in->code & 7) == RB_BPF_JMP32;
	struct vreg *d = &r[in->dst];
	struct vreg k = scalar(scal_const(is32 ? (uint32_t)in->imm : (uint64_t)(int64_t)in->imm));
	struct vreg *src = x ? &r[in->src] : &k;

	/* Null checks: a maybe-NULL pointer against 0. */
	if (d->type == T_MEM_OR_NULL || (x && src->type == T_MEM_OR_NULL)) {
		struct vreg *p = d->type == T_MEM_OR_NULL ? d : src;
		uint32_t id = p->id;
		bool null = rel == REL_EQ;
		for (unsigned fi = 0; fi < s->nframes; fi++) {
			struct vframe *f = s->f[fi];
			for (int i = 0; i < 11; i++)
				if (f->r[i].type == T_MEM_OR_NULL && f->r[i].id == id) {
					if (null)
						f->r[i] = scalar(scal_const(0));
					else
						f->r[i].type = T_MEM;
				}
			for (unsigned kk = f->min_slot; kk < NSLOTS; kk++)
				if (f->byte[kk * 8] == B_SPILL && f->spill[kk].type == T_MEM_OR_NULL &&
				    f->spill[kk].id == id) {
					if (null)
						f->spill[kk] = scalar(scal_const(0));
					else
						f->spill[kk].type = T_MEM;
				}
		}
		return true;
	}
	if (is_ptr(d) || is_ptr(src)) {
		/* A pointer that cannot be NULL against 0 (check_cond allowed
		 * only ==/!= 0 with its offset in the window): both branches
		 * are walked, the pointer unchanged.  Deciding "never NULL"
		 * here would leave the other branch unverified, and a verifier
		 * bug elsewhere could steer execution into it. */
		if (!is_ptr(d) || !is_ptr(src))
			return true;
		/* Two pointers into one region share its base, and no address
		 * wraps (check_cond keeps both offsets in (-64 KiB, 2^40), user
		 * mappings lie in [64 KiB, 2^47)): they compare as their offsets
		 * do, signed or not (`p + 8 <= end`, `p < q` loops). */
		static const enum scal_rel as_signed[] = {
			[REL_EQ] = REL_EQ, [REL_NE] = REL_NE, [REL_GT] = REL_SGT, [REL_GE] = REL_SGE,
			[REL_LT] = REL_SLT, [REL_LE] = REL_SLE, [REL_SGT] = REL_SGT, [REL_SGE] = REL_SGE,
			[REL_SLT] = REL_SLT, [REL_SLE] = REL_SLE, [REL_SET] = REL_SET, [REL_NSET] = REL_NSET,
		};
		enum scal_rel srel = as_signed[rel];
		struct scal a = d->v, b = src->v;
		if (!scal_refine(&a, &b, srel, false))
			return false;
		d->v = a;
		propagate_link(s, d);
		src->v = b;
		propagate_link(s, src);
		return true;
	}
	struct scal a = d->v, b = src->v;
	if (!scal_refine(&a, &b, rel, is32))
		return false;
	d->v = a;
	propagate_link(s, d);
	if (x) {
		src->v = b;
		propagate_link(s, src);
	}
	return true;
}

static int check_cond(struct verifier *v, struct vstate *s, const struct rb_bpf_insn *in)
{
	struct vreg *r = regs(s);
	bool x = in->code & RB_BPF_X, is32 = (in->code & 7) == RB_BPF_JMP32;
	int rc;

	if ((rc = need_init(v, s, in->dst)) || (x && (rc = need_init(v, s, in->src))))
		return rc;
	const struct vreg *d = &r[in->dst], *src = x ? &r[in->src] : NULL;
	bool dp = is_ptr(d), sp = src && is_ptr(src);
	if (!dp && !sp)
		return 0;
	if (is32)
		return vreject(v, s, "32-bit comparison of a pointer");
	bool zero = src ? (!sp && scal_is_const(&src->v) && src->v.t.value == 0) : in->imm == 0;
	uint8_t op = in->code & 0xf0;
	char b[160];
	if (op == RB_BPF_JSET)
		return vreject(v, s, "a pointer is tested with jset: the branch would reveal bits of the address");
	if (dp && sp) {
		/* Helper memory: the same block only (its id), or the compare
		 * would reveal how the host laid out the guest's memory. */
		bool same = d->idx == src->idx &&
			    ((d->type == src->type && (d->type != T_MEM || d->id == src->id)) ||
			     ((d->type == T_REGION || d->type == T_REGION_END) &&
			      (src->type == T_REGION || src->type == T_REGION_END)));
		if (!same || d->type == T_MEM_OR_NULL || src->type == T_MEM_OR_NULL)
			return vreject(v, s, "pointers into different regions are compared");
		/* Outside the window an offset could wrap the address, and the
		 * branch would depend on where the host put the region. */
		for (int i = 0; i < 2; i++) {
			const struct vreg *q = i ? src : d;
			if (q->v.smin <= OFF_WINDOW_LO || q->v.smax >= OFF_LIMIT) {
				vreg_fmt(v, q, b, sizeof(b));
				return vreject(v, s, "r%u = %s is compared with another pointer: its offset must be proven within (-64 KiB, 2^40) of the %s",
					      i ? in->src : in->dst, b, vregion_name(v, q));
			}
		}
		return 0;
	}
	if (!zero || (op != RB_BPF_JEQ && op != RB_BPF_JNE))
		return vreject(v, s, "a pointer is compared with a number other than by ==/!= 0: the branch would reveal the address");
	const struct vreg *q = dp ? d : src;
	if (q->type != T_MEM_OR_NULL && q->v.smin <= OFF_WINDOW_LO) {
		vreg_fmt(v, q, b, sizeof(b));
		return vreject(v, s, "r%u = %s is compared with 0: a pointer moved more than 64 KiB below its %s could be NULL, and the branch would reveal the address",
			      dp ? in->dst : in->src, b, vregion_name(v, q));
	}
	return 0;
}

/* ---- pruning ----------------------------------------------------------------- */

static int keep(struct verifier *v, const struct vstate *s)
{
	struct stored *k;

	if (v->n_kept[s->pc] >= MAX_KEPT_PER_INSN)
		return 0;
	k = malloc(sizeof(*k));
	if (!k || !vstate_copy(&k->st, s)) {
		free(k);
		return -ENOMEM;
	}
	k->next = v->kept[s->pc];
	v->kept[s->pc] = k;
	v->n_kept[s->pc]++;
	v->stats.states_stored++;
	v->acct.live_bytes += sizeof(*k);
	return 0;
}

/* At a jump target: 1 when a kept state covers s (the path ends here). */
static int prune_point(struct verifier *v, struct vstate *s)
{
	uint32_t pc = s->pc;

	v->visits[pc]++;
	struct stored *joined = NULL;

	if (v->prune[pc] == 2 && v->visits[pc] > WIDEN_AFTER) {
		/* A loop head seen often: continue from the join of this state
		 * and the last one kept here, widened, so the loop's states
		 * stop growing. */
		for (struct stored *k = v->kept[pc]; k; k = k->next) {
			if (!vstate_same_frames(&k->st, s))
				continue;
			struct vstate j;
			if (!vstate_copy(&j, &k->st))
				return -ENOMEM;
			vstate_join(&j, s, v->thr, v->n_thr);
			j.nhist = s->nhist;
			memcpy(j.hist, s->hist, sizeof(j.hist));
			vstate_free(s);
			*s = j;
			v->stats.states_joined++;
			joined = k;
			break;
		}
	}
	for (struct stored *k = v->kept[pc]; k; k = k->next) {
		if (vstate_covers(&k->st, s)) {
			v->stats.states_pruned++;
			return 1;
		}
	}
	if (joined) {
		/* The widened state replaces the one it grew from. */
		struct vstate c;
		if (!vstate_copy(&c, s))
			return -ENOMEM;
		vstate_free(&joined->st);
		joined->st = c;
		return 0;
	}
	return keep(v, s);
}

/* ---- the walk ------------------------------------------------------------------- */

static int push_work(struct verifier *v, const struct vstate *s)
{
	if (v->n_work == v->cap_work) {
		size_t cap = v->cap_work ? v->cap_work * 2 : 64;
		struct vstate **w = realloc(v->work, cap * sizeof(*w));
		if (!w)
			return -ENOMEM;
		v->fixed_bytes += (cap - v->cap_work) * sizeof(*w);
		v->work = w;
		v->cap_work = cap;
	}
	struct vstate *c = malloc(sizeof(*c));
	if (!c || !vstate_copy(c, s)) {
		free(c);
		return -ENOMEM;
	}
	v->work[v->n_work++] = c;
	v->acct.live_bytes += sizeof(*c);
	return 0;
}

static void note_branch(struct vstate *s, uint32_t from, uint32_t to)
{
	s->hist[s->nhist % HIST][0] = from;
	s->hist[s->nhist % HIST][1] = to;
	s->nhist++;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t work_done(const struct verifier *v)
{
	return v->stats.insns_processed +
	       (v->acct.frames_copied + v->acct.frames_compared) * RB_BPF_VERIFY_FRAME_WORK;
}

/* The limits of one verification (rb_bpf_verify_opts); -E2BIG past one. */
static int over_limits(struct verifier *v, const struct vstate *s)
{
	const char *what = NULL;
	char why[160];

	if (v->stats.insns_processed > v->max_insns) {
		snprintf(why, sizeof(why), "more than %" PRIu64 " instructions walked", v->max_insns);
		what = why;
	} else if (work_done(v) > v->max_work) {
		snprintf(why, sizeof(why), "more than %" PRIu64 " units of work: %" PRIu64 " instructions walked, %" PRIu64 " state frames copied, %" PRIu64 " compared",
			 v->max_work, v->stats.insns_processed, v->acct.frames_copied, v->acct.frames_compared);
		what = why;
	} else if (v->acct.live_bytes + v->fixed_bytes > v->max_mem) {
		snprintf(why, sizeof(why), "its states need more than %" PRIu64 " KiB of verifier memory",
			 v->max_mem >> 10);
		what = why;
	} else if (v->max_cpu_ns && !(v->stats.insns_processed & 1023) &&
		   cpu_ns() - v->cpu0_ns > v->max_cpu_ns) {
		snprintf(why, sizeof(why), "more than %" PRIu64 " ms of CPU time", v->max_cpu_ns / 1000000);
		what = why;
	}
	if (!what)
		return 0;
	snprintf(v->log, v->loglen, "insn %u: the program is too complex to verify (%s)\n", s->pc, what);
	return -E2BIG;
}

/* Follows one path until it ends (exit, pruned) or fails. */
static int walk(struct verifier *v, struct vstate *s)
{
	for (;;) {
		int rc;
		if (s->pc >= v->n)
			return vreject(v, s, "execution falls off the end of the program");
		++v->stats.insns_processed;
		if ((rc = over_limits(v, s)))
			return rc;
		if (v->prune[s->pc]) {
			rc = prune_point(v, s);
			if (rc)
				return rc < 0 ? rc : 0;
		}
		const struct rb_bpf_insn *in = &v->in[s->pc];
		uint8_t cls = in->code & 7, op = in->code & 0xf0;

		if ((in->code & RB_BPF_X) &&
		    (cls == RB_BPF_ALU || cls == RB_BPF_ALU64 ||
		     ((cls == RB_BPF_JMP || cls == RB_BPF_JMP32) && op != RB_BPF_JA &&
		      op != RB_BPF_CALL && op != RB_BPF_EXIT)))
			vfact_src_const(v, s, in);
		v->facts[s->pc].flags |= RB_FACT_SEEN;

		switch (cls) {
		case RB_BPF_ALU:
		case RB_BPF_ALU64:
			if ((rc = alu(v, s, in)))
				return rc;
			s->pc++;
			continue;
		case RB_BPF_LD:
			if ((rc = load_imm64(v, s, in)))
				return rc;
			s->pc += 2;
			continue;
		case RB_BPF_LDX:
		case RB_BPF_ST:
		case RB_BPF_STX:
			if ((rc = ldst(v, s, in)))
				return rc;
			s->pc++;
			continue;
		}
		/* JMP, JMP32 */
		if (op == RB_BPF_JA) {
			int32_t off = cls == RB_BPF_JMP32 ? in->imm : in->off;
			s->pc = s->pc + 1 + (uint32_t)off;
			continue;
		}
		if (op == RB_BPF_EXIT) {
			rc = do_exit(v, s);
			if (rc == 1)
				return 0;
			if (rc < 0)
				return rc;
			continue;
		}
		if (op == RB_BPF_CALL) {
			rc = call(v, s, in);
			if (rc < 0)
				return rc;
			if (rc == 0)
				s->pc++;
			continue;
		}
		if ((rc = check_cond(v, s, in)))
			return rc;
		enum scal_rel rel = op == RB_BPF_JSET ? REL_SET : jmp_rel(op);
		uint32_t target = s->pc + 1 + (uint32_t)(int32_t)in->off;
		struct vstate taken;
		if (!vstate_copy(&taken, s))
			return -ENOMEM;
		bool can_take = assume(&taken, in, rel);
		bool can_fall = assume(s, in, negate(rel));
		if (can_take) {
			note_branch(&taken, s->pc, target);
			taken.pc = target;
			if (can_fall)
				rc = push_work(v, &taken);
		}
		if (!can_fall) {
			if (!can_take) {
				vstate_free(&taken);
				return 0; /* neither: this path cannot happen */
			}
			vstate_free(s);
			*s = taken;
			continue;
		}
		vstate_free(&taken);
		if (rc)
			return rc;
		s->pc++;
	}
}

static int check_type(const struct rb_bpf_type *t, char *log, size_t loglen)
{
	if (!t || !t->name || t->n_regions > RB_BPF_VERIFY_MAX_REGIONS ||
	    (t->n_regions && !t->regions) || (t->n_fields && !t->fields) ||
	    (t->n_helpers && !t->helpers)) {
		snprintf(log, loglen, "malformed program type\n");
		return -EINVAL;
	}
	for (unsigned i = 0; i < t->n_fields; i++) {
		const struct rb_bpf_ctx_field *f = &t->fields[i];
		bool size_ok = f->size == 1 || f->size == 2 || f->size == 4 || f->size == 8;
		if (!size_ok || !f->count || (uint64_t)f->offset + (uint64_t)f->size * f->count > t->ctx_size ||
		    f->offset % f->size ||
		    (f->kind != RB_BPF_FIELD_SCALAR && (f->size != 8 || f->region >= t->n_regions))) {
			snprintf(log, loglen, "malformed program type: field '%s'\n",
				 f->name ? f->name : "?");
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < t->n_helpers; i++) {
		const struct rb_bpf_helper_proto *h = &t->helpers[i];
		for (int a = 0; a < 5; a++)
			if (h->arg[a].size_arg > 5) {
				snprintf(log, loglen, "malformed program type: helper %u\n", h->id);
				return -EINVAL;
			}
		if (h->ret == RB_BPF_RET_MEM_OR_NULL && (h->ret_size_arg < 1 || h->ret_size_arg > 5)) {
			snprintf(log, loglen, "malformed program type: helper %u\n", h->id);
			return -EINVAL;
		}
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The constants the program compares with (and one past each): where a
 * widened loop counter should stop growing. */
static void collect_thresholds(struct verifier *v)
{
	unsigned n = 0;

	for (size_t pc = 0; pc < v->n && n + 4 <= 256; pc++) {
		const struct rb_bpf_insn *in = &v->in[pc];
		uint8_t cls = in->code & 7, op = in->code & 0xf0;
		if (in->code == (RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW)) {
			pc++;
			continue;
		}
		bool cmp = (cls == RB_BPF_JMP || cls == RB_BPF_JMP32) && !(in->code & RB_BPF_X) &&
			   op != RB_BPF_JA && op != RB_BPF_CALL && op != RB_BPF_EXIT;
		bool mov = (cls == RB_BPF_ALU || cls == RB_BPF_ALU64) && op == RB_BPF_MOV &&
			   !(in->code & RB_BPF_X);
		if (!cmp && !mov)
			continue;
		uint64_t k = cls == RB_BPF_JMP32 || cls == RB_BPF_ALU ? (uint32_t)in->imm
								      : (uint64_t)(int64_t)in->imm;
		v->thr[n++] = k;
		v->thr[n++] = k - 1;
		v->thr[n++] = k + 1;
	}
	for (unsigned i = 0; i < v->type->n_regions && n < 256; i++)
		v->thr[n++] = v->type->regions[i].size;
	qsort(v->thr, n, sizeof(v->thr[0]), cmp_u64);
	v->n_thr = 0;
	for (unsigned i = 0; i < n; i++)
		if (!v->n_thr || v->thr[v->n_thr - 1] != v->thr[i])
			v->thr[v->n_thr++] = v->thr[i];
}

/* Jump targets are prune points; targets of backward jumps are loop heads. */
static void mark_prune_points(struct verifier *v)
{
	for (size_t pc = 0; pc < v->n; pc++) {
		const struct rb_bpf_insn *in = &v->in[pc];
		uint8_t cls = in->code & 7, op = in->code & 0xf0;
		if (in->code == (RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW)) {
			pc++;
			continue;
		}
		if ((cls != RB_BPF_JMP && cls != RB_BPF_JMP32) || op == RB_BPF_EXIT)
			continue;
		int64_t target;
		if (op == RB_BPF_CALL) {
			if (in->src != RB_BPF_CALL_LOCAL)
				continue;
			target = (int64_t)pc + 1 + in->imm;
		} else if (op == RB_BPF_JA && cls == RB_BPF_JMP32) {
			target = (int64_t)pc + 1 + in->imm;
		} else {
			target = (int64_t)pc + 1 + in->off;
		}
		if (target < 0 || (size_t)target >= v->n)
			continue; /* prog.c rejected it already */
		if (v->prune[target] < 1)
			v->prune[target] = 1;
		if (target <= (int64_t)pc && op != RB_BPF_CALL)
			v->prune[target] = 2;
		/* The fall-through of a conditional jump, too. */
		if (op != RB_BPF_JA && op != RB_BPF_CALL && pc + 1 < v->n && !v->prune[pc + 1])
			v->prune[pc + 1] = 1;
	}
}

static void verifier_free(struct verifier *v)
{
	for (size_t i = 0; v->kept && i < v->n; i++) {
		struct stored *k = v->kept[i];
		while (k) {
			struct stored *next = k->next;
			vstate_free(&k->st);
			free(k);
			k = next;
		}
	}
	for (size_t i = 0; i < v->n_work; i++) {
		vstate_free(v->work[i]);
		free(v->work[i]);
	}
	free(v->work);
	free(v->facts);
	free(v->use);
	free(v->kept);
	free(v->n_kept);
	free(v->visits);
	free(v->prune);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int rb_bpf_verify_ex(struct rb_bpf_prog *prog, const struct rb_bpf_type *type,
		     const struct rb_bpf_verify_opts *opts, struct rb_bpf_verify_stats *stats,
		     char *log, size_t loglen)
{
	char dummy[1];
	uint64_t t0 = now_ns();
	int rc;

	if (!log || !loglen) {
		log = dummy;
		loglen = sizeof(dummy);
	}
	log[0] = 0;
	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!prog)
		return -EINVAL;
	if ((rc = check_type(type, log, loglen)))
		return rc;

	struct verifier v = {
		.prog = prog, .type = type, .in = prog->insns, .n = prog->n_insns,
		.max_insns = opts && opts->max_insns ? opts->max_insns : RB_BPF_VERIFY_MAX_INSNS,
		.max_work = opts && opts->max_work ? opts->max_work : RB_BPF_VERIFY_MAX_WORK,
		.max_mem = opts && opts->max_mem ? opts->max_mem : RB_BPF_VERIFY_MAX_MEM,
		.max_cpu_ns = opts ? opts->max_cpu_ns : 0,
		.cpu0_ns = cpu_ns(),
		.log = log, .loglen = loglen,
	};
	v.prune = calloc(v.n + 1, 1);
	v.visits = calloc(v.n + 1, sizeof(*v.visits));
	v.kept = calloc(v.n + 1, sizeof(*v.kept));
	v.n_kept = calloc(v.n + 1, sizeof(*v.n_kept));
	v.facts = calloc(v.n + 1, sizeof(*v.facts));
	v.use = calloc(v.n + 1, sizeof(*v.use));
	v.fixed_bytes = (v.n + 1) * (1 + sizeof(*v.visits) + sizeof(*v.kept) + sizeof(*v.n_kept) +
				     sizeof(*v.facts) + sizeof(*v.use));
	struct vstate s = {.acct = &v.acct, .pc = 0, .nframes = 1};
	s.f[0] = vframe_new(&v.acct, 0, 0);
	if (!v.prune || !v.visits || !v.kept || !v.n_kept || !v.facts || !v.use || !s.f[0]) {
		vstate_free(&s);
		verifier_free(&v);
		snprintf(log, loglen, "out of memory while verifying\n");
		return -ENOMEM;
	}
	mark_prune_points(&v);
	collect_thresholds(&v);
	v.facts[0].flags |= RB_FACT_FN_ENTRY;
	s.f[0]->r[1] = (struct vreg){.type = T_CTX, .v = scal_const(0)};
	s.f[0]->r[10] = (struct vreg){.type = T_STACK, .idx = 0, .v = scal_const(RB_BPF_STACK_SIZE)};

	rc = walk(&v, &s);
	vstate_free(&s);
	while (!rc && v.n_work) {
		struct vstate *w = v.work[--v.n_work];
		rc = walk(&v, w);
		vstate_free(w);
		free(w);
		v.acct.live_bytes -= sizeof(*w);
	}
	if (rc == -ENOMEM)
		snprintf(log, loglen, "out of memory while verifying\n");
	v.stats.elapsed_ns = now_ns() - t0;
	v.stats.frames_copied = v.acct.frames_copied;
	v.stats.frames_compared = v.acct.frames_compared;
	v.stats.work = work_done(&v);
	v.stats.peak_mem = v.acct.peak_bytes + v.fixed_bytes;
	if (stats)
		*stats = v.stats;
	if (!rc) {
		vfact_finish(&v, prog);
		log[0] = 0;
	}
	verifier_free(&v);
	return rc;
}

int rb_bpf_verify(struct rb_bpf_prog *prog, const struct rb_bpf_type *type, char *log,
		  size_t loglen)
{
	return rb_bpf_verify_ex(prog, type, NULL, NULL, log, loglen);
}
