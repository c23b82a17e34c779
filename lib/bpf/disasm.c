/* SPDX-License-Identifier: MIT */
/*
 * Disassembler: one instruction to one line of text, in the syntax the
 * project's tests and docs use ("add32 r1, 5", "ldxw r0, [r1+4]",
 * "jeq r1, r2, +3 <12>").  It only formats; it never judges validity beyond
 * printing "invalid" for what the engine would reject.
 */
#include "bpf_internal.h"

#include <stdio.h>

static const char *const alu_names[16] = {
	"add", "sub", "mul", "div", "or", "and", "lsh", "rsh",
	"neg", "mod", "xor", "mov", "arsh", "end", NULL, NULL,
};
static const char *const jmp_names[16] = {
	"ja", "jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge",
	"call", "exit", "jlt", "jle", "jslt", "jsle", NULL, NULL,
};
static const char *const size_names[4] = {"w", "h", "b", "dw"};

static void fmt_mem(char *buf, size_t n, unsigned reg, int16_t off)
{
	if (off)
		snprintf(buf, n, "[r%u%+d]", reg, off);
	else
		snprintf(buf, n, "[r%u]", reg);
}

static void disasm_alu(const struct rb_bpf_insn *in, unsigned idx, char *buf,
		       size_t n)
{
	bool is64 = (in->code & 7) == RB_BPF_ALU64, x = in->code & RB_BPF_X;
	const char *w = is64 ? "" : "32";
	const char *name = alu_names[in->code >> 4];

	if (idx >= RB_XOP_LE16 && idx <= RB_XOP_BSWAP64) {
		const char *kind = idx >= RB_XOP_BSWAP16 ? "bswap" :
				   idx >= RB_XOP_BE16 ? "be" : "le";
		snprintf(buf, n, "%s%d r%u", kind, in->imm, in->dst);
		return;
	}
	if (idx >= RB_XOP_MOVSX32_8 && idx <= RB_XOP_MOVSX64_32) {
		snprintf(buf, n, "movsx%s%d r%u, r%u", is64 ? "" : "32_", in->off,
			 in->dst, in->src);
		return;
	}
	if (idx >= RB_XOP_SDIV32_K && idx <= RB_XOP_SMOD64_X)
		name = (in->code & 0xf0) == RB_BPF_DIV ? "sdiv" : "smod";
	if ((in->code & 0xf0) == RB_BPF_NEG) {
		snprintf(buf, n, "neg%s r%u", w, in->dst);
		return;
	}
	if (x)
		snprintf(buf, n, "%s%s r%u, r%u", name, w, in->dst, in->src);
	else
		snprintf(buf, n, "%s%s r%u, %d", name, w, in->dst, in->imm);
}

static void disasm_jmp(const struct rb_bpf_insn *in, unsigned idx, size_t pc,
		       const struct rb_bpf_helpers *helpers, char *buf,
		       size_t n)
{
	bool is32 = (in->code & 7) == RB_BPF_JMP32;
	const char *name = jmp_names[in->code >> 4];
	long long target = (long long)pc + 1 + in->off;

	switch (in->code & 0xf0) {
	case RB_BPF_EXIT:
		snprintf(buf, n, "exit");
		return;
	case RB_BPF_CALL:
		if (idx == RB_XOP_CALLX) {
			snprintf(buf, n, "callx r%u", in->dst);
		} else if (idx == RB_XOP_CALL_LOCAL) {
			snprintf(buf, n, "call local %+d <%lld>", in->imm,
				 (long long)pc + 1 + in->imm);
		} else {
			const char *h = rb_bpf_helpers_name(helpers, (uint32_t)in->imm);
			if (h)
				snprintf(buf, n, "call %d ; %s", in->imm, h);
			else
				snprintf(buf, n, "call %d", in->imm);
		}
		return;
	case RB_BPF_JA:
		if (is32)
			snprintf(buf, n, "ja32 %+d <%lld>", in->imm,
				 (long long)pc + 1 + in->imm);
		else
			snprintf(buf, n, "ja %+d <%lld>", in->off, target);
		return;
	}
	if (in->code & RB_BPF_X)
		snprintf(buf, n, "%s%s r%u, r%u, %+d <%lld>", name, is32 ? "32" : "",
			 in->dst, in->src, in->off, target);
	else
		snprintf(buf, n, "%s%s r%u, %d, %+d <%lld>", name, is32 ? "32" : "",
			 in->dst, in->imm, in->off, target);
}

static const char *atomic_name(int32_t imm)
{
	switch (imm) {
	case RB_BPF_ADD: return "add";
	case RB_BPF_OR: return "or";
	case RB_BPF_AND: return "and";
	case RB_BPF_XOR: return "xor";
	case RB_BPF_ADD | RB_BPF_FETCH: return "fetch_add";
	case RB_BPF_OR | RB_BPF_FETCH: return "fetch_or";
	case RB_BPF_AND | RB_BPF_FETCH: return "fetch_and";
	case RB_BPF_XOR | RB_BPF_FETCH: return "fetch_xor";
	case RB_BPF_XCHG: return "xchg";
	case RB_BPF_CMPXCHG: return "cmpxchg";
	}
	return "?";
}

int rb_bpf_disasm_insn(const struct rb_bpf_insn *insns, size_t n, size_t pc,
		       const struct rb_bpf_helpers *helpers, char *buf,
		       size_t buflen)
{
	const struct rb_bpf_insn *in = &insns[pc];
	unsigned idx = rb_bpf_op_index(in);
	const char *sz = size_names[(in->code >> 3) & 3];
	char mem[32];

	if (idx == RB_XOP_INVALID) {
		snprintf(buf, buflen, "invalid (opcode 0x%02x)", in->code);
		return 1;
	}
	switch (in->code & 7) {
	case RB_BPF_ALU:
	case RB_BPF_ALU64:
		disasm_alu(in, idx, buf, buflen);
		return 1;
	case RB_BPF_JMP:
	case RB_BPF_JMP32:
		disasm_jmp(in, idx, pc, helpers, buf, buflen);
		return 1;
	case RB_BPF_LD:
		if (pc + 1 >= n) {
			snprintf(buf, buflen, "lddw r%u, <truncated>", in->dst);
			return 1;
		}
		if (in->src == RB_BPF_PSEUDO_DATA) {
			static const char *const sec[] = {".rodata", ".data", ".bss"};
			snprintf(buf, buflen, "lddw r%u, %s+%u", in->dst,
				 (uint32_t)in->imm < 3 ? sec[in->imm] : "?",
				 (uint32_t)insns[pc + 1].imm);
		} else {
			snprintf(buf, buflen, "lddw r%u, 0x%llx", in->dst,
				 (unsigned long long)((uint64_t)(uint32_t)in->imm |
						      (uint64_t)(uint32_t)insns[pc + 1].imm << 32));
		}
		return 2;
	case RB_BPF_LDX:
		fmt_mem(mem, sizeof(mem), in->src, in->off);
		snprintf(buf, buflen, "ldx%s%s r%u, %s",
			 (in->code & 0xe0) == RB_BPF_MEMSX ? "s" : "", sz, in->dst, mem);
		return 1;
	case RB_BPF_ST:
		fmt_mem(mem, sizeof(mem), in->dst, in->off);
		snprintf(buf, buflen, "st%s %s, %d", sz, mem, in->imm);
		return 1;
	case RB_BPF_STX:
		fmt_mem(mem, sizeof(mem), in->dst, in->off);
		if ((in->code & 0xe0) == RB_BPF_ATOMIC)
			snprintf(buf, buflen, "lock %s%s %s, r%u", atomic_name(in->imm),
				 (in->code & 0x18) == RB_BPF_W ? "32" : "", mem, in->src);
		else
			snprintf(buf, buflen, "stx%s %s, r%u", sz, mem, in->src);
		return 1;
	}
	snprintf(buf, buflen, "invalid (opcode 0x%02x)", in->code);
	return 1;
}
