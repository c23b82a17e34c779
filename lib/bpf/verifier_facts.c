/* SPDX-License-Identifier: MIT */
/*
 * What the verifier hands the unchecked JIT: per instruction, the union of
 * what it proved over every state it walked there (rb_bpf_fact).  It
 * refuses only what no single fact could describe.
 */
#include "verifier_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what the JIT is told ---------------------------------------------------------- */

static void range_union(int64_t *lo, int64_t *hi, bool seen, const struct scal *n)
{
	if (!seen || n->smin < *lo)
		*lo = n->smin;
	if (!seen || n->smax > *hi)
		*hi = n->smax;
}

/*
 * A 64-bit add/sub X: records the ranges of its number operands over every
 * path, so that the JIT can clamp the number added to a pointer to what
 * was proven.  A register that is the number in a pointer addition on one
 * path and a pointer on another is refused: no clamp would fit both.
 */
int vfact_add_operands(struct verifier *v, struct vstate *s, const struct rb_bpf_insn *in)
{
	struct ptr_use *u = &v->use[s->pc];
	const struct vreg *d = &regs(s)[in->dst], *src = &regs(s)[in->src];

	if (is_ptr(src)) {
		u->flags |= USE_SRC_PTR;
	} else {
		range_union(&u->src_lo, &u->src_hi, u->flags & USE_SRC_SEEN, &src->v);
		u->flags |= USE_SRC_SEEN;
	}
	if (is_ptr(d)) {
		u->flags |= USE_DST_PTR;
	} else {
		range_union(&u->dst_lo, &u->dst_hi, u->flags & USE_DST_SEEN, &d->v);
		u->flags |= USE_DST_SEEN;
	}
	if (is_ptr(d) && !is_ptr(src))
		u->flags |= USE_NUM_SRC;
	if (!is_ptr(d) && is_ptr(src))
		u->flags |= USE_NUM_DST;
	if (((u->flags & USE_NUM_SRC) && (u->flags & USE_SRC_PTR)) ||
	    ((u->flags & USE_NUM_DST) && (u->flags & USE_DST_PTR)))
		return vreject(v, s, "r%u is added to a pointer as a number on one path and is a pointer on another: use separate registers",
			      (u->flags & USE_NUM_SRC) && (u->flags & USE_SRC_PTR) ? in->src : in->dst);
	return 0;
}

/* X-form ALU and jumps: is src the same known number on every path? */
void vfact_src_const(struct verifier *v, struct vstate *s, const struct rb_bpf_insn *in)
{
	struct rb_bpf_fact *f = &v->facts[s->pc];
	struct ptr_use *u = &v->use[s->pc];
	const struct vreg *src = &regs(s)[in->src];
	bool known = src->type == T_SCALAR && scal_is_const(&src->v);

	if (u->flags & USE_SRC_VARIES)
		return;
	if (known && (!(f->flags & RB_FACT_SRC_CONST) || f->k == src->v.t.value) &&
	    (!(f->flags & RB_FACT_SEEN) || (f->flags & RB_FACT_SRC_CONST))) {
		f->flags |= RB_FACT_SRC_CONST;
		f->k = src->v.t.value;
		return;
	}
	f->flags &= (uint8_t)~RB_FACT_SRC_CONST;
	u->flags |= USE_SRC_VARIES;
}

/* An access to the stack of frame `fi` from byte `lo` of it up: the JIT
 * zeroes what a function may touch at its entry. */
void vfact_stack(struct verifier *v, struct vstate *s, unsigned fi, int64_t lo)
{
	struct rb_bpf_fact *f = &v->facts[s->f[fi]->entry];
	int64_t depth = ((int64_t)RB_BPF_STACK_SIZE - lo + 7) & ~(int64_t)7;

	if (depth > f->stack_depth)
		f->stack_depth = (uint16_t)depth;
}

/* Accepted: the facts become the program's (for rb_bpf_jit). */
void vfact_finish(struct verifier *v, struct rb_bpf_prog *prog)
{
	for (size_t pc = 0; pc < v->n; pc++) {
		struct rb_bpf_fact *f = &v->facts[pc];
		const struct ptr_use *u = &v->use[pc];
		if (u->flags & USE_NUM_SRC) {
			f->flags |= RB_FACT_PTR_ARITH;
			f->lo = u->src_lo;
			f->hi = u->src_hi;
		} else if (u->flags & USE_NUM_DST) {
			f->flags |= RB_FACT_PTR_ARITH | RB_FACT_NUM_IS_DST;
			f->lo = u->dst_lo;
			f->hi = u->dst_hi;
		}
	}
	free(prog->facts);
	prog->facts = v->facts;
	v->facts = NULL;
}

