/* SPDX-License-Identifier: MIT */
/*
 * The instruction budget's plan, shared by the interpreter and the JIT:
 * where a program's superblocks start, how much each head charges, what a
 * side exit or a failure gives back.  Both engines charge by it and both
 * stay exact: it must never let a run execute an instruction the budget
 * does not cover, nor count one it did not run.
 */
#include "bpf_internal.h"

#include <errno.h>
#include <stdlib.h>

bool rb_bpf_is_branch(const struct rb_bpf_insn *in)
{
	uint8_t cls = in->code & 7;
	return cls == RB_BPF_JMP || cls == RB_BPF_JMP32;
}

bool rb_bpf_is_lddw(const struct rb_bpf_insn *in)
{
	return in->code == (RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW);
}

/* A conditional jump (JMP/JMP32 other than ja, call and exit). */
bool rb_bpf_is_cond_jump(const struct rb_bpf_insn *in)
{
	uint8_t op = in->code & 0xf0;
	return rb_bpf_is_branch(in) && op != RB_BPF_JA && op != RB_BPF_CALL && op != RB_BPF_EXIT;
}

/* A helper call (call or callx): it returns to the next instruction. */
static bool is_helper_call(const struct rb_bpf_insn *in)
{
	return in->code == (RB_BPF_JMP | RB_BPF_CALL) && in->src != RB_BPF_CALL_LOCAL;
}

uint32_t rb_bpf_jump_target(const struct rb_bpf_insn *in, size_t pc)
{
	if (in->code == (RB_BPF_JMP32 | RB_BPF_JA) || (in->code & 0xf0) == RB_BPF_CALL)
		return (uint32_t)((int64_t)pc + 1 + in->imm);
	return (uint32_t)((int64_t)pc + 1 + in->off);
}

void rb_bpf_plan_free(struct rb_bpf_plan *pl)
{
	free(pl->flags);
	free(pl->npred);
	free(pl->rest);
	free(pl->sb_end);
	free(pl->sb_total);
	free(pl->fold);
	*pl = (struct rb_bpf_plan){0};
}

/*
 * The budget counts instructions exactly, as the interpreter always did,
 * but is not charged per instruction or even per basic block: a
 * superblock (a block and the blocks that follow it only by returning
 * from a helper or by falling through a conditional jump whose target
 * nothing else enters) is charged in one subtraction at its head, and the
 * instructions it did not run are given back where it leaves early: a
 * side exit lowers its target's own charge by as much (fold; the target
 * has no other way in), a helper that stops or fails the program and a
 * fault give back rest[pc].  A jump to a block with other ways in (a
 * loop's back edge typically) ends the superblock.  When a head's charge
 * does not fit the budget left, the engine runs on one instruction at a
 * time (the JIT's slow copies, the interpreter's stepping ops) and stops
 * at the first instruction the budget does not cover.
 */
int rb_bpf_plan_budget(const struct rb_bpf_prog *p, struct rb_bpf_plan *pl)
{
	size_t n = p->n_insns;

	*pl = (struct rb_bpf_plan){0};
	pl->flags = calloc(n + 1, 1);
	pl->npred = calloc(n + 1, 1);
	pl->rest = calloc(n + 1, sizeof(uint32_t));
	pl->sb_end = calloc(n + 1, sizeof(uint32_t));
	pl->sb_total = calloc(n + 1, sizeof(uint32_t));
	pl->fold = calloc(n + 1, sizeof(uint32_t));
	if (!pl->flags || !pl->npred || !pl->rest || !pl->sb_end || !pl->sb_total || !pl->fold) {
		rb_bpf_plan_free(pl);
		return -ENOMEM;
	}
	uint8_t *f = pl->flags, *np = pl->npred;

	f[0] |= RB_PLAN_LEAD | RB_PLAN_TARGET | RB_PLAN_NOFOLD;
	for (size_t pc = 0; pc < n; pc++) {
		const struct rb_bpf_insn *in = &p->insns[pc];
		size_t next = pc + (rb_bpf_is_lddw(in) ? 2 : 1);

		if (rb_bpf_is_lddw(in))
			f[pc + 1] |= RB_PLAN_SLOT2;
		bool falls = true;
		if (rb_bpf_is_branch(in)) {
			uint8_t op = in->code & 0xf0;
			f[next] |= RB_PLAN_LEAD;
			if (op == RB_BPF_EXIT || op == RB_BPF_JA)
				falls = false;
			if (op == RB_BPF_JA || rb_bpf_is_cond_jump(in)) {
				uint32_t t = rb_bpf_jump_target(in, pc);
				f[t] |= RB_PLAN_LEAD | RB_PLAN_TARGET;
				if (np[t] < 255)
					np[t]++;
			} else if (op == RB_BPF_CALL && in->src == RB_BPF_CALL_LOCAL) {
				uint32_t t = rb_bpf_jump_target(in, pc);
				f[t] |= RB_PLAN_LEAD | RB_PLAN_TARGET | RB_PLAN_NOFOLD; /* a function entry */
				f[next] |= RB_PLAN_NOFOLD;                              /* a return point */
			}
		}
		if (falls && next < n && np[next] < 255)
			np[next]++;
		pc = next - 1;
	}
	for (size_t pc = 0; pc < n; pc++) {
		if (f[pc] & RB_PLAN_SLOT2 || !(f[pc] & RB_PLAN_LEAD))
			continue;
		const struct rb_bpf_insn *prev = pc > 0 ? &p->insns[pc - 1] : NULL;
		bool cont = prev && !(f[pc] & (RB_PLAN_TARGET | RB_PLAN_NOFOLD)) && !(f[pc - 1] & RB_PLAN_SLOT2) &&
			    (is_helper_call(prev) ||
			     (rb_bpf_is_cond_jump(prev) && np[rb_bpf_jump_target(prev, pc - 1)] == 1 &&
			      !(f[rb_bpf_jump_target(prev, pc - 1)] & RB_PLAN_NOFOLD)));
		if (!cont)
			f[pc] |= RB_PLAN_HEAD;
	}
	for (size_t h = 0; h < n; h++) {
		if (!(f[h] & RB_PLAN_HEAD))
			continue;
		size_t e = h;
		uint32_t total = 0;
		do {
			total++;
			e += rb_bpf_is_lddw(&p->insns[e]) ? 2 : 1;
		} while (e < n && !(f[e] & RB_PLAN_HEAD));
		pl->sb_end[h] = (uint32_t)e;
		pl->sb_total[h] = total;
		uint32_t done = 0;
		for (size_t pc = h; pc < e; pc += rb_bpf_is_lddw(&p->insns[pc]) ? 2 : 1)
			pl->rest[pc] = total - ++done;
		h = e - 1;
	}
	for (size_t pc = 0; pc < n; pc++) {
		const struct rb_bpf_insn *in = &p->insns[pc];
		if (f[pc] & RB_PLAN_SLOT2 || !rb_bpf_is_cond_jump(in) || !pl->rest[pc])
			continue;
		uint32_t t = rb_bpf_jump_target(in, pc);
		if (np[t] == 1 && !(f[t] & RB_PLAN_NOFOLD))
			pl->fold[t] = pl->rest[pc];
	}
	return 0;
}
