/* SPDX-License-Identifier: MIT */
/*
 * BPF-KV point lookup as an XRP program (`xrp` type), written against
 * XRP's interface only: it is built with `clang -include rosen/xrp.h`, as an
 * existing XRP program would be.  The first read is the root node (offset
 * 0); each run decodes the node just read and asks for the next one; at the
 * leaf it reads the value block and copies the 64-byte value into scratch.
 *
 * scratch (in):  u64 key
 * scratch (out): u64 key, u64 stage, u64 value_offset, u64 found,
 *                char value[64]
 */
#include "bpfkv_node.h"

#define SEC(name) __attribute__((section(name), used))

struct lookup_scratch {
	unsigned long long key;
	unsigned long long stage; /* 0: walking the tree, 1: reading the value */
	unsigned long long value_offset;
	unsigned long long found;
	char value[64];
};

#define STAGE_WALK 0
#define STAGE_VALUE 1
#define VALUE_SIZE 64

SEC("bpfkv_xrp_lookup")
int xrp_lookup_prog(struct bpf_xrp *ctx)
{
	struct lookup_scratch *s = (struct lookup_scratch *)ctx->scratch;

	if (s->stage == STAGE_VALUE) {
		/* The value block is 512 bytes at the start of data; ours is
		 * at value_offset & 511 (masked so the offset stays in it). */
		const char *v = ctx->data + (s->value_offset & (BPFKV_BLOCK_SIZE - VALUE_SIZE));
		__builtin_memcpy(s->value, v, VALUE_SIZE);
		s->found = 1;
		ctx->done = 1;
		return 0;
	}
	const struct bpfkv_node *n = (const struct bpfkv_node *)ctx->data;
	unsigned long long next = bpfkv_node_child(n, s->key);
	if (n->type == BPFKV_NODE_LEAF) {
		if (next == BPFKV_NOT_FOUND) {
			s->found = 0;
			ctx->done = 1;
			return 0;
		}
		s->stage = STAGE_VALUE;
		s->value_offset = next;
		next &= ~(unsigned long long)(BPFKV_BLOCK_SIZE - 1);
	}
	ctx->next_addr[0] = next;
	ctx->size[0] = BPFKV_BLOCK_SIZE;
	return 0;
}

char LICENSE[] SEC("license") = "MIT";
