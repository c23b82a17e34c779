/* SPDX-License-Identifier: MIT */
/*
 * BPF-KV node search as an eBPF program: r1 points at a 512-byte node
 * followed by the 8-byte key (r2 >= 520).  Returns the byte offset of the
 * child (internal node) or value (leaf) to read next, ~0 when a leaf lacks
 * the key, ~1 when the buffer is too short.  Used by the demo and
 * bench/engine; the NDP hooks of later issues build on the same step.
 */
#include "bpfkv_node.h"

#define SEC(name) __attribute__((section(name), used))

SEC("bpfkv_node_search")
unsigned long long bpfkv_node_search_prog(void *mem, unsigned long long len)
{
	const struct bpfkv_node *n = mem;
	unsigned long long key;

	if (len < sizeof(*n) + sizeof(key))
		return ~1ULL;
	key = *(const unsigned long long *)((const char *)mem + sizeof(*n));
	return bpfkv_node_child(n, key);
}

char LICENSE[] SEC("license") = "MIT";
