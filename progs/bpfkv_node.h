/* SPDX-License-Identifier: MIT */
/*
 * BPF-KV's on-disk B+-tree node and its search step, written once and
 * compiled twice: into eBPF by clang -target bpf (progs/bpfkv_node_search.c)
 * and natively into bench/engine, so the benchmark compares the same code.
 * Format: ../shared/reference/bpf-kv.md (512-byte nodes, fanout 31).
 */
#ifndef ROSEN_PROGS_BPFKV_NODE_H
#define ROSEN_PROGS_BPFKV_NODE_H

#define BPFKV_BLOCK_SIZE 512
#define BPFKV_FANOUT 31
#define BPFKV_NODE_INTERNAL 0
#define BPFKV_NODE_LEAF 1
#define BPFKV_PTR_TAG (1ULL << 63) /* "file offset" tag on child/value ptrs */
#define BPFKV_NOT_FOUND (~0ULL)

struct bpfkv_node {
	unsigned long long next; /* byte offset of the next node on the level */
	unsigned long long type; /* BPFKV_NODE_INTERNAL or BPFKV_NODE_LEAF */
	unsigned long long key[BPFKV_FANOUT];
	unsigned long long ptr[BPFKV_FANOUT];
};

_Static_assert(sizeof(struct bpfkv_node) == BPFKV_BLOCK_SIZE,
	       "a BPF-KV node is one 512-byte block");

/*
 * The byte offset to read next for `key`: in an internal node the child
 * whose range holds the key (the first i in 1..30 with key < key[i] gives
 * ptr[i-1], else ptr[30]); in a leaf the value's offset when the key is
 * there, else BPFKV_NOT_FOUND.
 */
static inline unsigned long long
bpfkv_node_child(const struct bpfkv_node *n, unsigned long long key)
{
	if (n->type == BPFKV_NODE_LEAF) {
		for (int i = 0; i < BPFKV_FANOUT; i++)
			if (n->key[i] == key)
				return n->ptr[i] & ~BPFKV_PTR_TAG;
		return BPFKV_NOT_FOUND;
	}
	for (int i = 1; i < BPFKV_FANOUT; i++)
		if (key < n->key[i])
			return n->ptr[i - 1] & ~BPFKV_PTR_TAG;
	return n->ptr[BPFKV_FANOUT - 1] & ~BPFKV_PTR_TAG;
}

#endif
