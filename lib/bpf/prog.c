/* SPDX-License-Identifier: MIT */
/*
 * Program creation: validate raw instructions (opcodes, registers, jump and
 * call targets, helper ids, lddw pairs) and prepare them for the interpreter.
 * Everything the interpreter assumes without checking is proven here; a
 * program that fails any rule never reaches rb_bpf_run().
 */
#include "bpf_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned alu_index(const struct rb_bpf_insn *in)
{
	uint8_t cls = in->code & 7, op = in->code & 0xf0;
	bool x = in->code & RB_BPF_X, is64 = cls == RB_BPF_ALU64;

	switch (op) {
	case RB_BPF_ADD: case RB_BPF_SUB: case RB_BPF_MUL: case RB_BPF_OR:
	case RB_BPF_AND: case RB_BPF_LSH: case RB_BPF_RSH: case RB_BPF_XOR:
	case RB_BPF_ARSH:
		return in->code;
	case RB_BPF_NEG:
		return x ? RB_XOP_INVALID : in->code;
	case RB_BPF_DIV:
	case RB_BPF_MOD:
		if (in->off == 0)
			return in->code;
		if (in->off != 1)
			return RB_XOP_INVALID;
		/* Signed forms: SDIV32_K, SDIV32_X, SMOD32_K, SMOD32_X, then 64. */
		return RB_XOP_SDIV32_K + (is64 ? 4 : 0) +
		       (op == RB_BPF_MOD ? 2 : 0) + (x ? 1 : 0);
	case RB_BPF_MOV:
		if (in->off == 0)
			return in->code;
		if (!x)
			return RB_XOP_INVALID;
		switch (in->off) {
		case 8: return is64 ? RB_XOP_MOVSX64_8 : RB_XOP_MOVSX32_8;
		case 16: return is64 ? RB_XOP_MOVSX64_16 : RB_XOP_MOVSX32_16;
		case 32: return is64 ? RB_XOP_MOVSX64_32 : RB_XOP_INVALID;
		}
		return RB_XOP_INVALID;
	case RB_BPF_END: {
		unsigned w = in->imm == 16 ? 0 : in->imm == 32 ? 1 :
			     in->imm == 64 ? 2 : 3;
		if (w == 3)
			return RB_XOP_INVALID;
		if (is64)
			return x ? RB_XOP_INVALID : RB_XOP_BSWAP16 + w;
		return (x ? RB_XOP_BE16 : RB_XOP_LE16) + w;
	}
	}
	return RB_XOP_INVALID;
}

static unsigned jmp_index(const struct rb_bpf_insn *in)
{
	uint8_t cls = in->code & 7, op = in->code & 0xf0;
	bool x = in->code & RB_BPF_X;

	switch (op) {
	case RB_BPF_JA:
		return x ? RB_XOP_INVALID : in->code;
	case RB_BPF_JEQ: case RB_BPF_JGT: case RB_BPF_JGE: case RB_BPF_JSET:
	case RB_BPF_JNE: case RB_BPF_JSGT: case RB_BPF_JSGE: case RB_BPF_JLT:
	case RB_BPF_JLE: case RB_BPF_JSLT: case RB_BPF_JSLE:
		return in->code;
	case RB_BPF_CALL:
		if (cls != RB_BPF_JMP)
			return RB_XOP_INVALID;
		if (x)
			return RB_XOP_CALLX;
		if (in->src == RB_BPF_CALL_HELPER)
			return in->code;
		if (in->src == RB_BPF_CALL_LOCAL)
			return RB_XOP_CALL_LOCAL;
		return RB_XOP_INVALID;
	case RB_BPF_EXIT:
		return cls == RB_BPF_JMP && !x ? in->code : RB_XOP_INVALID;
	}
	return RB_XOP_INVALID;
}

static unsigned atomic_index(const struct rb_bpf_insn *in)
{
	bool is64 = (in->code & 0x18) == RB_BPF_DW;
	unsigned base = is64 ? RB_XOP_A64_ADD : RB_XOP_A32_ADD;

	switch (in->imm) {
	case RB_BPF_ADD: return base + 0;
	case RB_BPF_OR: return base + 1;
	case RB_BPF_AND: return base + 2;
	case RB_BPF_XOR: return base + 3;
	case RB_BPF_ADD | RB_BPF_FETCH: return base + 4;
	case RB_BPF_OR | RB_BPF_FETCH: return base + 5;
	case RB_BPF_AND | RB_BPF_FETCH: return base + 6;
	case RB_BPF_XOR | RB_BPF_FETCH: return base + 7;
	case RB_BPF_XCHG: return base + 8;
	case RB_BPF_CMPXCHG: return base + 9;
	}
	return RB_XOP_INVALID;
}

unsigned rb_bpf_op_index(const struct rb_bpf_insn *in)
{
	uint8_t size = in->code & 0x18, mode = in->code & 0xe0;

	switch (in->code & 7) {
	case RB_BPF_ALU:
	case RB_BPF_ALU64:
		return alu_index(in);
	case RB_BPF_JMP:
	case RB_BPF_JMP32:
		return jmp_index(in);
	case RB_BPF_LD:
		return in->code == (RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW) ?
			       in->code : RB_XOP_INVALID;
	case RB_BPF_LDX:
		if (mode == RB_BPF_MEM)
			return in->code;
		if (mode == RB_BPF_MEMSX && size != RB_BPF_DW)
			return in->code;
		return RB_XOP_INVALID;
	case RB_BPF_ST:
		return mode == RB_BPF_MEM ? in->code : RB_XOP_INVALID;
	case RB_BPF_STX:
		if (mode == RB_BPF_MEM)
			return in->code;
		if (mode == RB_BPF_ATOMIC &&
		    (size == RB_BPF_W || size == RB_BPF_DW))
			return atomic_index(in);
		return RB_XOP_INVALID;
	}
	return RB_XOP_INVALID;
}

/* Does this instruction write its dst register?  (r10 is read-only.) */
static bool writes_dst(const struct rb_bpf_insn *in)
{
	uint8_t cls = in->code & 7;

	return cls == RB_BPF_ALU || cls == RB_BPF_ALU64 || cls == RB_BPF_LDX ||
	       cls == RB_BPF_LD;
}

/* Does this instruction read its src register? */
static bool reads_src(const struct rb_bpf_insn *in, unsigned idx)
{
	uint8_t cls = in->code & 7;

	switch (cls) {
	case RB_BPF_ALU:
	case RB_BPF_ALU64:
		return (in->code & RB_BPF_X) && idx < RB_XOP_LE16;
	case RB_BPF_JMP:
	case RB_BPF_JMP32:
		return (in->code & RB_BPF_X) && idx != RB_XOP_CALLX;
	case RB_BPF_LDX:
	case RB_BPF_STX:
		return true;
	}
	return false;
}

static bool is_jump_with_target(const struct rb_bpf_insn *in, unsigned idx)
{
	uint8_t cls = in->code & 7, op = in->code & 0xf0;

	if (cls != RB_BPF_JMP && cls != RB_BPF_JMP32)
		return false;
	if (idx == RB_XOP_CALL_LOCAL)
		return true;
	return op != RB_BPF_CALL && op != RB_BPF_EXIT;
}

static int64_t jump_target(const struct rb_bpf_insn *in, size_t pc)
{
	/* JMP32|JA (the "long jump") and local calls carry the offset in imm. */
	if (in->code == (RB_BPF_JMP32 | RB_BPF_JA) ||
	    ((in->code & 0xf0) == RB_BPF_CALL))
		return (int64_t)pc + 1 + in->imm;
	return (int64_t)pc + 1 + in->off;
}

/*
 * RFC 9669: "unused fields shall be cleared to zero".  A program that sets
 * them is not one we understand; reject it rather than guess.  Returns the
 * name of the first offending field, or NULL.
 */
static const char *reserved_field_set(const struct rb_bpf_insn *in, unsigned idx)
{
	uint8_t cls = in->code & 7, op = in->code & 0xf0;
	bool x = in->code & RB_BPF_X;

	switch (cls) {
	case RB_BPF_ALU:
	case RB_BPF_ALU64:
		if (op == RB_BPF_END)
			return in->src ? "src" : in->off ? "offset" : NULL;
		if (op == RB_BPF_NEG)
			return in->src ? "src" : in->imm ? "imm" : in->off ? "offset" : NULL;
		if (x && in->imm)
			return "imm";
		if (!x && in->src)
			return "src";
		/* DIV/MOD/MOV offsets were checked by alu_index(). */
		if (in->off && op != RB_BPF_DIV && op != RB_BPF_MOD && op != RB_BPF_MOV)
			return "offset";
		return NULL;
	case RB_BPF_JMP:
	case RB_BPF_JMP32:
		if (op == RB_BPF_EXIT)
			return in->dst ? "dst" : in->src ? "src" : in->off ? "offset" : in->imm ? "imm" : NULL;
		if (op == RB_BPF_CALL) {
			if (idx == RB_XOP_CALLX)
				return in->src ? "src" : in->off ? "offset" : in->imm ? "imm" : NULL;
			return in->dst ? "dst" : in->off ? "offset" : NULL;
		}
		if (op == RB_BPF_JA) {
			if (in->dst || in->src)
				return in->dst ? "dst" : "src";
			return cls == RB_BPF_JMP ? (in->imm ? "imm" : NULL) : (in->off ? "offset" : NULL);
		}
		if (x && in->imm)
			return "imm";
		if (!x && in->src)
			return "src";
		return NULL;
	case RB_BPF_LD:
		return in->off ? "offset" : NULL;
	case RB_BPF_LDX:
		return in->imm ? "imm" : NULL;
	case RB_BPF_ST:
		return in->src ? "src" : NULL;
	case RB_BPF_STX:
		return (in->code & 0xe0) == RB_BPF_MEM && in->imm ? "imm" : NULL;
	}
	return NULL;
}

static int validate_lddw(const struct rb_bpf_insn *insns, size_t n, size_t pc,
			 const struct rb_bpf_data_section *data, char *err,
			 size_t errlen)
{
	const struct rb_bpf_insn *in = &insns[pc];

	if (pc + 1 >= n) {
		rb_bpf_errf(err, errlen,
			    "insn %zu: lddw is missing its second half at the end of the program",
			    pc);
		return -EINVAL;
	}
	if (insns[pc + 1].code != 0 || insns[pc + 1].dst || insns[pc + 1].src ||
	    insns[pc + 1].off) {
		rb_bpf_errf(err, errlen,
			    "insn %zu: second half of lddw must be all zero but imm", pc + 1);
		return -EINVAL;
	}
	if (in->src == 0)
		return 0;
	if (in->src != RB_BPF_PSEUDO_DATA) {
		rb_bpf_errf(err, errlen,
			    "insn %zu: lddw with src %u (maps and BTF objects are not supported)",
			    pc, in->src);
		return -EINVAL;
	}
	uint32_t kind = (uint32_t)in->imm, off = (uint32_t)insns[pc + 1].imm;
	if (kind >= RB_BPF_DATA_KINDS || !data || off > data[kind].len ||
	    (data[kind].len == 0)) {
		rb_bpf_errf(err, errlen,
			    "insn %zu: lddw refers to data section %u offset %u, which the program does not have",
			    pc, kind, off);
		return -EINVAL;
	}
	return 0;
}

static int validate_one(const struct rb_bpf_insn *insns, size_t n, size_t pc,
			unsigned idx, const struct rb_bpf_helpers *helpers,
			const struct rb_bpf_data_section *data,
			const uint8_t *is_second, char *err, size_t errlen)
{
	const struct rb_bpf_insn *in = &insns[pc];

	if (idx == RB_XOP_INVALID) {
		rb_bpf_errf(err, errlen,
			    "insn %zu: invalid instruction (opcode 0x%02x, src %u, off %d, imm %d)",
			    pc, in->code, in->src, in->off, in->imm);
		return -EINVAL;
	}
	const char *field = reserved_field_set(in, idx);
	if (field) {
		rb_bpf_errf(err, errlen,
			    "insn %zu: opcode 0x%02x does not use its %s field, which must be zero",
			    pc, in->code, field);
		return -EINVAL;
	}
	if (in->dst > 10 || (writes_dst(in) && in->dst == 10)) {
		rb_bpf_errf(err, errlen, "insn %zu: %s r%u", pc,
			    in->dst == 10 ? "cannot write the read-only frame pointer"
					  : "invalid destination register",
			    in->dst);
		return -EINVAL;
	}
	if (reads_src(in, idx) && in->src > 10) {
		rb_bpf_errf(err, errlen, "insn %zu: invalid source register r%u",
			    pc, in->src);
		return -EINVAL;
	}
	/* Fetching atomics write their src register. */
	if (idx >= RB_XOP_A32_ADD && idx <= RB_XOP_A64_CMPXCHG &&
	    (in->imm & RB_BPF_FETCH) && in->src == 10) {
		rb_bpf_errf(err, errlen,
			    "insn %zu: atomic fetch cannot write the frame pointer r10", pc);
		return -EINVAL;
	}
	if (in->code == (RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW))
		return validate_lddw(insns, n, pc, data, err, errlen);
	if (idx == (RB_BPF_JMP | RB_BPF_CALL)) {
		uint32_t id = (uint32_t)in->imm;

		if (!helpers || id >= RB_BPF_MAX_HELPERS || !helpers->slot[id].fn) {
			rb_bpf_errf(err, errlen, "insn %zu: call to unknown helper %d",
				    pc, in->imm);
			return -EINVAL;
		}
	}
	if (is_jump_with_target(in, idx)) {
		int64_t t = jump_target(in, pc);

		if (t < 0 || t >= (int64_t)n) {
			rb_bpf_errf(err, errlen,
				    "insn %zu: %s target %lld is outside the program (0..%zu)",
				    pc, idx == RB_XOP_CALL_LOCAL ? "call" : "jump",
				    (long long)t, n - 1);
			return -EINVAL;
		}
		if (is_second[t]) {
			rb_bpf_errf(err, errlen,
				    "insn %zu: %s target %lld is the second half of an lddw",
				    pc, idx == RB_XOP_CALL_LOCAL ? "call" : "jump",
				    (long long)t);
			return -EINVAL;
		}
	}
	return 0;
}

static int validate(const struct rb_bpf_insn *insns, size_t n,
		    const struct rb_bpf_helpers *helpers,
		    const struct rb_bpf_data_section *data, unsigned *index,
		    char *err, size_t errlen)
{
	uint8_t *is_second = calloc(n + 1, 1);
	int rc = 0;

	if (!is_second)
		return -ENOMEM;
	/* First pass: which slots are lddw second halves, and every opcode. */
	for (size_t pc = 0; pc < n; pc++) {
		if (is_second[pc]) {
			index[pc] = RB_XOP_INVALID;
			continue;
		}
		index[pc] = rb_bpf_op_index(&insns[pc]);
		if (insns[pc].code == (RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW))
			is_second[pc + 1] = 1;
	}
	for (size_t pc = 0; pc < n && rc == 0; pc++) {
		if (is_second[pc])
			continue;
		if (insns[pc].code == (RB_BPF_JMP | RB_BPF_CALL) &&
		    insns[pc].src == RB_BPF_CALL_BTF) {
			rb_bpf_errf(err, errlen,
				    "insn %zu: calls by BTF id (kfuncs) are not supported",
				    pc);
			rc = -EINVAL;
			break;
		}
		rc = validate_one(insns, n, pc, index[pc], helpers, data,
				  is_second, err, errlen);
	}
	if (rc == 0) {
		/* The last instruction must not fall through off the end. */
		const struct rb_bpf_insn *last = &insns[n - 1];
		bool ends = is_second[n - 1] ? false :
			    last->code == (RB_BPF_JMP | RB_BPF_EXIT) ||
			    last->code == (RB_BPF_JMP | RB_BPF_JA) ||
			    last->code == (RB_BPF_JMP32 | RB_BPF_JA);
		if (!ends) {
			rb_bpf_errf(err, errlen,
				    "insn %zu: program can run off its end (the last instruction must be exit or ja)",
				    n - 1);
			rc = -EINVAL;
		}
	}
	free(is_second);
	return rc;
}

static void *copy_section(const struct rb_bpf_data_section *s, int kind)
{
	/* Round up so 8-byte loads near the end stay inside our allocation;
	 * the checks still use the real length. */
	size_t cap = (s->len + 7) & ~(size_t)7;
	void *p = aligned_alloc(16, cap ? (cap + 15) & ~(size_t)15 : 16);

	if (!p)
		return NULL;
	memset(p, 0, cap ? (cap + 15) & ~(size_t)15 : 16);
	if (kind != RB_BPF_DATA_BSS && s->bytes)
		memcpy(p, s->bytes, s->len);
	return p;
}

/* The budget plan (budget.c) as the interpreter charges it: heads charge
 * their superblock; a copy of the ops steps one instruction at a time. */
static int prepare_budget(struct rb_bpf_prog *p, const void *const *handlers)
{
	struct rb_bpf_plan plan;
	size_t n = p->n_insns;

	if (rb_bpf_plan_budget(p, &plan))
		return -ENOMEM;
	_Static_assert(sizeof(struct rb_bpf_head) == sizeof(struct rb_bpf_op),
		       "the interpreter finds a head from its op's address");
	p->step_ops = malloc((n + 1) * sizeof(*p->step_ops));
	p->heads = calloc(n + 1, sizeof(*p->heads));
	if (!p->step_ops || !p->heads) {
		rb_bpf_plan_free(&plan);
		return -ENOMEM;
	}
	for (size_t pc = 0; pc <= n; pc++) {
		p->heads[pc].real = p->ops[pc].handler;
		p->step_ops[pc] = p->ops[pc];
		p->step_ops[pc].handler = handlers[RB_XOP_STEP];
		if (pc < n && (plan.flags[pc] & RB_PLAN_HEAD)) {
			p->heads[pc].charge = (int32_t)plan.sb_total[pc] - (int32_t)plan.fold[pc];
			p->heads[pc].fold = plan.fold[pc];
			p->ops[pc].handler = handlers[RB_XOP_HEAD];
		}
	}
	p->rest = plan.rest; /* kept; the rest of the plan is not */
	plan.rest = NULL;
	rb_bpf_plan_free(&plan);
	return 0;
}

static int prepare(struct rb_bpf_prog *p, const unsigned *index)
{
	const void *const *handlers = rb_bpf_interp_handlers();

	p->ops = calloc(p->n_insns + 1, sizeof(*p->ops));
	if (!p->ops)
		return -ENOMEM;
	for (size_t pc = 0; pc < p->n_insns; pc++) {
		const struct rb_bpf_insn *in = &p->insns[pc];
		struct rb_bpf_op *op = &p->ops[pc];

		op->handler = handlers[index[pc]];
		if (index[pc] == (RB_BPF_JMP | RB_BPF_CALL) || index[pc] == RB_XOP_CALLX)
			p->has_calls = true;
		if (index[pc] == RB_XOP_CALL_LOCAL || in->dst == 10 || in->src == 10)
			p->uses_stack = true;
		op->dst = in->dst;
		op->src = in->src;
		op->off = in->off;
		op->imm = in->imm;
		if (in->code == (RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW) &&
		    in->src == RB_BPF_PSEUDO_DATA) {
			uint64_t addr = (uint64_t)(uintptr_t)p->data[in->imm] +
					(uint32_t)p->insns[pc + 1].imm;

			op->imm = (int32_t)(uint32_t)addr;
			p->ops[pc + 1].imm = (int32_t)(uint32_t)(addr >> 32);
			p->ops[pc + 1].handler = handlers[RB_XOP_INVALID];
			pc++;
		}
	}
	p->ops[p->n_insns].handler = handlers[RB_XOP_INVALID];
	return prepare_budget(p, handlers);
}

int rb_bpf_prog_new(const struct rb_bpf_insn *insns, size_t n_insns,
		    const struct rb_bpf_helpers *helpers,
		    const struct rb_bpf_data_section data[RB_BPF_DATA_KINDS],
		    struct rb_bpf_prog **out, char *err, size_t errlen)
{
	struct rb_bpf_prog *p;
	unsigned *index;
	int rc;

	*out = NULL;
	if (!insns || n_insns == 0) {
		rb_bpf_errf(err, errlen, "empty program");
		return -EINVAL;
	}
	if (n_insns > RB_BPF_MAX_INSNS) {
		rb_bpf_errf(err, errlen, "program has %zu instructions, limit is %u",
			    n_insns, RB_BPF_MAX_INSNS);
		return -E2BIG;
	}
	index = calloc(n_insns, sizeof(*index));
	p = calloc(1, sizeof(*p));
	if (!index || !p) {
		free(index);
		free(p);
		return -ENOMEM;
	}
	rc = validate(insns, n_insns, helpers, data, index, err, errlen);
	if (rc)
		goto fail;
	rc = -ENOMEM;
	p->n_insns = n_insns;
	p->insns = malloc(n_insns * sizeof(*insns));
	if (!p->insns)
		goto fail;
	memcpy(p->insns, insns, n_insns * sizeof(*insns));
	p->helpers = helpers;
	for (unsigned id = 0; helpers && id < RB_BPF_MAX_HELPERS; id++)
		p->helper_fn[id] = helpers->slot[id].fn;
	for (int k = 0; data && k < RB_BPF_DATA_KINDS; k++) {
		if (!data[k].len)
			continue;
		p->data[k] = copy_section(&data[k], k);
		if (!p->data[k])
			goto fail;
		p->data_len[k] = data[k].len;
	}
	rc = prepare(p, index);
	if (rc)
		goto fail;
	free(index);
	*out = p;
	return 0;
fail:
	if (rc == -ENOMEM)
		rb_bpf_errf(err, errlen, "out of memory");
	free(index);
	rb_bpf_prog_free(p);
	return rc;
}

void rb_bpf_prog_free(struct rb_bpf_prog *p)
{
	if (!p)
		return;
	rb_bpf_jit_free(p);
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++)
		free(p->data[k]);
	free(p->ops);
	free(p->step_ops);
	free(p->heads);
	free(p->rest);
	free(p->insns);
	free(p->facts);
	free(p);
}

size_t rb_bpf_prog_len(const struct rb_bpf_prog *p)
{
	return p->n_insns;
}

const struct rb_bpf_insn *rb_bpf_prog_insns(const struct rb_bpf_prog *p)
{
	return p->insns;
}
