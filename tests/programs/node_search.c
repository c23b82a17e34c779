/* SPDX-License-Identifier: MIT */
/*
 * BPF-KV node search: r1 points at a 512-byte B+-tree node followed by the
 * 8-byte key searched for (r2 >= 520).  Returns the decoded child pointer to
 * follow (internal node) or the value pointer for the key (leaf, type 1),
 * (u64)-1 when a leaf lacks the key, (u64)-2 when the buffer is too short.
 */
typedef unsigned long long u64;
#define SEC(name) __attribute__((section(name), used))

#define NODE_CAPACITY 31
#define NODE_LEAF 1
#define PTR_FLAG (1ULL << 63) /* BPF-KV tags pointers with the top bit */

struct node {
	u64 next;
	u64 type;
	u64 key[NODE_CAPACITY];
	u64 ptr[NODE_CAPACITY];
};

_Static_assert(sizeof(struct node) == 512, "a node is 512 bytes");

SEC("node_search") u64 node_search_prog(void *mem, u64 len)
{
	const struct node *n = mem;
	u64 key;

	if (len < sizeof(struct node) + sizeof(u64))
		return (u64)-2;
	key = *(const u64 *)((const char *)mem + sizeof(struct node));
	if (n->type == NODE_LEAF) {
		for (int i = 0; i < NODE_CAPACITY; i++)
			if (n->key[i] == key)
				return n->ptr[i] & ~PTR_FLAG;
		return (u64)-1;
	}
	for (int i = 1; i < NODE_CAPACITY; i++)
		if (key < n->key[i])
			return n->ptr[i - 1] & ~PTR_FLAG;
	return n->ptr[NODE_CAPACITY - 1] & ~PTR_FLAG;
}
