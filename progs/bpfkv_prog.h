/* SPDX-License-Identifier: MIT */
/*
 * BPF-KV batched lookups and range queries as step functions, written once
 * and compiled three ways: into the `cq` and `xrp` NDP programs
 * (progs/bpfkv_get*.c, progs/bpfkv_range*.c, clang -target bpf) and natively
 * into app/bpfkv, whose guest-driven modes run the very same steps on each
 * block they read themselves.  So every mode does the same I/Os in the same
 * order, and the benchmark compares where the step runs, not two
 * algorithms.
 *
 * A step looks at the 512-byte block just read (`data`, at the start of a
 * 4096-byte buffer) and the caller's scratch, and either finishes
 * (returns 1) or names the next 512-byte block to read (*next, returns 0).
 * The first block of a call is the root (offset 0), or for a resumed range
 * query the leaf in `resume`.
 *
 * Written for a verifier: loops have constant bounds, indexes into scratch
 * arrays are masked (& 31), offsets into data are masked to stay inside the
 * block, no pointer is ever stored into scratch, no stack is read before it
 * is written.
 */
#ifndef ROSEN_PROGS_BPFKV_PROG_H
#define ROSEN_PROGS_BPFKV_PROG_H

#include "bpfkv_node.h"

#define BPFKV_VALUE_SIZE 64
#define BPFKV_BATCH_MAX 32 /* keys per lookup call, pairs per range call */
#define BPFKV_MASK 31      /* BPFKV_BATCH_MAX - 1 */
#define BPFKV_VALUE_MASK (BPFKV_BLOCK_SIZE - BPFKV_VALUE_SIZE) /* 448: a value slot in a block */

#define BPFKV_INLINE static inline __attribute__((always_inline))

/* Hides a value from the optimiser, so that a loop index is masked where
 * it is used instead of being turned into a pointer stepped through the
 * loop (which a verifier cannot bound). */
#define BPFKV_OPAQUE(x) __asm__ volatile("" : "+r"(x))

/* ---- batched point lookups ------------------------------------------------------ */

/* One key of a batch: in key; out found (0/1) and the 64-byte value. */
struct bpfkv_get_entry {
	unsigned long long key;
	unsigned long long found;
	char value[BPFKV_VALUE_SIZE];
};

/*
 * Scratch of a lookup call (in and out).  The caller sets n (1..32) and
 * e[0..n).key and zeroes the rest of the header; scratch_len may stop after
 * e[n-1]: BPFKV_GET_SCRATCH_LEN(n).  Each key is walked root -> leaf, then
 * its value block is read and the value copied into e[i].value; the walk
 * then restarts at the root for the next key.  A batch of n keys in a tree
 * of L levels takes n * (L + 1) reads (n * L for keys that are absent).
 */
struct bpfkv_get_scratch {
	unsigned long long n;         /* keys in the batch */
	unsigned long long i;         /* state: the key being looked up */
	unsigned long long stage;     /* state: 0 walking the tree, 1 reading the value */
	unsigned long long value_off; /* state: byte offset of the value */
	unsigned long long reserved[4];
	struct bpfkv_get_entry e[BPFKV_BATCH_MAX];
};

#define BPFKV_GET_HDR 64
#define BPFKV_GET_SCRATCH_LEN(n) (BPFKV_GET_HDR + (n) * sizeof(struct bpfkv_get_entry))

BPFKV_INLINE int bpfkv_get_step(const unsigned char *data, struct bpfkv_get_scratch *s,
				unsigned long long *next)
{
	unsigned long long i = s->i;

	BPFKV_OPAQUE(i);
	i &= BPFKV_MASK;

	if (s->stage == 1) {
		__builtin_memcpy(s->e[i].value, data + (s->value_off & BPFKV_VALUE_MASK),
				 BPFKV_VALUE_SIZE);
		s->e[i].found = 1;
	} else {
		const struct bpfkv_node *n = (const struct bpfkv_node *)data;
		unsigned long long child = bpfkv_node_child(n, s->e[i].key);
		if (n->type != BPFKV_NODE_LEAF) {
			*next = child;
			return 0;
		}
		if (child != BPFKV_NOT_FOUND) {
			s->stage = 1;
			s->value_off = child;
			*next = child & ~(unsigned long long)(BPFKV_BLOCK_SIZE - 1);
			return 0;
		}
		s->e[i].found = 0;
	}
	/* This key is done: the next one starts at the root. */
	s->stage = 0;
	s->i = i + 1;
	if (s->i >= s->n || s->i >= BPFKV_BATCH_MAX)
		return 1;
	*next = 0;
	return 0;
}

/* ---- range queries --------------------------------------------------------------- */

#define BPFKV_RANGE_BEGIN_EXCL 1ull /* begin is not part of the range */
#define BPFKV_RANGE_END_INCL 2ull   /* end is part of the range */
#define BPFKV_RANGE_SUM 4ull        /* aggregate instead of returning pairs */

#define BPFKV_RANGE_TRAVERSE 0ull /* state: walking root -> leaf */
#define BPFKV_RANGE_LEAF 1ull     /* state: the block read is the leaf to scan */
#define BPFKV_RANGE_VALUE 2ull    /* state: the block read holds values of the leaf */

/* SUM suspends after this many reads in one call (a resumable query never
 * runs into the device's hop limit, whatever the range). */
#define BPFKV_RANGE_SUM_HOPS 256

struct bpfkv_pair {
	unsigned long long key;
	char value[BPFKV_VALUE_SIZE];
};

/*
 * Scratch of a range-query call (in and out).  The caller sets begin, end,
 * flags and state = TRAVERSE, and reads the root first.  A call returns when
 * the range is exhausted (done = 1) or when it holds 32 pairs (SUM: after
 * BPFKV_RANGE_SUM_HOPS reads); begin/flags then say where the query stands
 * (begin = the last key returned, BEGIN_EXCL set) and `resume` is the leaf
 * to read first in the next call, with state = LEAF and n = 0; sums carry
 * over.  Pairs mode returns pair[0..n); SUM mode adds up count, the keys
 * (sum_keys) and the numbers the values spell (sum_values: each value is
 * its key in decimal, so a healthy database has sum_values == sum_keys).
 * Values are read one 512-byte block at a time, each block serving the up
 * to 8 keys of the leaf whose values it holds.
 */
struct bpfkv_range_scratch {
	unsigned long long begin, end, flags;
	unsigned long long state;
	unsigned long long done;       /* out: the range is exhausted */
	unsigned long long n;          /* out: pairs returned by this call */
	unsigned long long resume;     /* out: the leaf to read first next call */
	unsigned long long count;      /* SUM: keys in the range so far */
	unsigned long long sum_keys;   /* SUM */
	unsigned long long sum_values; /* SUM */
	unsigned long long ix;         /* state: next key index in the leaf */
	unsigned long long cur;        /* state: offset of the block read last */
	unsigned long long leaf_off;   /* state: offset of the current leaf */
	unsigned long long hops;       /* state: reads in this call */
	unsigned long long reserved[2];
	struct bpfkv_node leaf;        /* copy of the current leaf */
	struct bpfkv_pair pair[BPFKV_BATCH_MAX];
};

#define BPFKV_RANGE_SCRATCH_LEN(sum) \
	((sum) ? __builtin_offsetof(struct bpfkv_range_scratch, pair) : sizeof(struct bpfkv_range_scratch))

/* The number a value spells: its decimal digits (at most 20, at the end). */
BPFKV_INLINE unsigned long long bpfkv_value_number(const unsigned char *v)
{
	unsigned long long x = 0;

	for (int i = BPFKV_VALUE_SIZE - 21; i < BPFKV_VALUE_SIZE - 1; i++) {
		unsigned char c = v[i];
		if (c >= '0' && c <= '9')
			x = x * 10 + (c - '0');
	}
	return x;
}

/* The range is over: finish this call. */
BPFKV_INLINE int bpfkv_range_over(struct bpfkv_range_scratch *s)
{
	s->done = 1;
	return 1;
}

/* Scans the copied leaf from ix: the next value block to read, the next
 * leaf, or the end of the call. */
BPFKV_INLINE int bpfkv_range_scan(struct bpfkv_range_scratch *s, unsigned long long *next)
{
	unsigned long long first = s->begin + (s->flags & BPFKV_RANGE_BEGIN_EXCL ? 1 : 0);
	int sum = (s->flags & BPFKV_RANGE_SUM) != 0;

	if ((s->flags & BPFKV_RANGE_BEGIN_EXCL) && s->begin == ~0ull)
		return bpfkv_range_over(s);
	for (int k = 0; k < BPFKV_FANOUT; k++) {
		unsigned long long ix = s->ix;
		BPFKV_OPAQUE(ix);
		if (ix >= BPFKV_FANOUT)
			break;
		ix &= BPFKV_MASK;
		unsigned long long key = s->leaf.key[ix];
		if (key > s->end || (key == s->end && !(s->flags & BPFKV_RANGE_END_INCL)))
			return bpfkv_range_over(s);
		if (key < first) {
			s->ix = ix + 1;
			continue;
		}
		if ((!sum && s->n >= BPFKV_BATCH_MAX) || (sum && s->hops >= BPFKV_RANGE_SUM_HOPS)) {
			/* Full: the next call re-reads this leaf and skips
			 * what it already returned. */
			s->resume = s->leaf_off;
			s->state = BPFKV_RANGE_LEAF;
			return 1;
		}
		s->state = BPFKV_RANGE_VALUE;
		*next = (s->leaf.ptr[ix] & ~BPFKV_PTR_TAG) &
			~(unsigned long long)(BPFKV_BLOCK_SIZE - 1);
		s->cur = *next;
		return 0;
	}
	/* Leaf exhausted: on to the next one. */
	if (s->leaf.next == 0)
		return bpfkv_range_over(s);
	if (s->hops >= BPFKV_RANGE_SUM_HOPS && sum) {
		s->resume = s->leaf.next;
		s->state = BPFKV_RANGE_LEAF;
		s->ix = 0;
		return 1;
	}
	s->state = BPFKV_RANGE_LEAF;
	*next = s->leaf.next;
	s->cur = *next;
	return 0;
}

BPFKV_INLINE int bpfkv_range_step(const unsigned char *data, struct bpfkv_range_scratch *s,
				  unsigned long long *next)
{
	s->hops++;
	if (s->state == BPFKV_RANGE_VALUE) {
		/* Harvest every key of the leaf whose value is in this block. */
		int sum = (s->flags & BPFKV_RANGE_SUM) != 0;
		for (int k = 0; k < 8; k++) {
			unsigned long long ix = s->ix;
			BPFKV_OPAQUE(ix);
			if (ix >= BPFKV_FANOUT)
				break;
			ix &= BPFKV_MASK;
			unsigned long long key = s->leaf.key[ix];
			unsigned long long vo = s->leaf.ptr[ix] & ~BPFKV_PTR_TAG;
			if ((vo & ~(unsigned long long)(BPFKV_BLOCK_SIZE - 1)) != s->cur)
				break;
			if (key > s->end || (key == s->end && !(s->flags & BPFKV_RANGE_END_INCL)))
				break;
			if (!sum && s->n >= BPFKV_BATCH_MAX)
				break;
			const unsigned char *v = data + (vo & BPFKV_VALUE_MASK);
			if (sum) {
				s->count++;
				s->sum_keys += key;
				s->sum_values += bpfkv_value_number(v);
			} else {
				unsigned long long j = s->n;
				BPFKV_OPAQUE(j);
				j &= BPFKV_MASK;
				s->pair[j].key = key;
				__builtin_memcpy(s->pair[j].value, v, BPFKV_VALUE_SIZE);
				s->n = j + 1;
			}
			s->begin = key;
			s->flags |= BPFKV_RANGE_BEGIN_EXCL;
			s->ix = ix + 1;
		}
		return bpfkv_range_scan(s, next);
	}
	const struct bpfkv_node *n = (const struct bpfkv_node *)data;
	if (s->state == BPFKV_RANGE_TRAVERSE && n->type != BPFKV_NODE_LEAF) {
		unsigned long long first = s->begin + (s->flags & BPFKV_RANGE_BEGIN_EXCL ? 1 : 0);
		*next = bpfkv_node_child(n, first);
		s->cur = *next;
		return 0;
	}
	/* A leaf: the end of the walk, the next leaf, or a resumed call's. */
	if (n->type != BPFKV_NODE_LEAF)
		return bpfkv_range_over(s); /* not a leaf where one must be */
	__builtin_memcpy(&s->leaf, n, sizeof(s->leaf));
	s->leaf_off = s->cur;
	s->ix = 0;
	return bpfkv_range_scan(s, next);
}

#endif
