/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the device side of the split virtqueue
 * (lib/virtio/virtq.c): a hostile driver's rings and descriptors, direct
 * and indirect chains, loops, wrap-around of the 16-bit indexes, and a
 * driver that rewrites its memory between the device's steps.  Guest memory
 * is one or two regions, each mapped with PROT_NONE guard pages on both
 * sides and translated by lib/vhost's rb_vhost_gpa_to_host() (what
 * rosenbridged uses): a segment the device would read or write past its
 * region faults.  Every popped chain must keep the promises of
 * rosen/virtio.h (segments inside guest memory, non-empty, readable ones
 * first, counts and byte sums right), and the device must touch every byte
 * of every segment without faulting.
 *
 * Input (little-endian; missing bytes are zero):
 *   [0]      log2 of the queue size (% 16: 1..32768 entries)
 *   [1]      bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 rings at offsets
 *            given below (else desc | avail | used back to back from 0),
 *            bit 3 a second memory region
 *   [2..3]   the device's starting avail index (vring base)
 *   [4..11]  guest-physical address of region 0
 *   [12..13] region 0's bytes beyond the rings, in 16-byte units
 *   [14..25] bit 2: desc, avail and used offsets in region 0 (u32 each)
 *   [26..33] region 1's guest-physical address, [34..35] its size / 16
 *   [36]     number of device steps (0: pop and push until empty, at most
 *            600 pops)
 *   then the steps, 4 bytes each: [op % 6, a, b, c] (see step()),
 *   then region 0's contents, then region 1's.
 */
#include "fuzz_common.h"

#include <rosen/vhost.h>
#include <rosen/virtio.h>

#include <errno.h>

#define T "fuzz_virtq"

struct guest {
	struct rb_vhost_mem mem;
	struct fz_guarded g[2];
	unsigned n;
};

static void *translate(void *ctx, uint64_t gpa, uint64_t len)
{
	return rb_vhost_gpa_to_host(ctx, gpa, len);
}

/* Where host memory the device got lies: inside one region, or NULL. */
static bool in_guest(const struct guest *gm, const void *p, size_t len)
{
	for (unsigned i = 0; i < gm->mem.n; i++) {
		const struct rb_vhost_mem_region *r = &gm->mem.r[i];
		uintptr_t a = (uintptr_t)p, lo = (uintptr_t)r->host;
		if (a >= lo && a - lo <= r->size && len <= r->size - (a - lo))
			return true;
	}
	return false;
}

static void check_chain(const struct guest *gm, const struct rb_virtq *vq,
			const struct rb_virtq_chain *c)
{
	uint64_t rd = 0, wr = 0;
	volatile uint8_t sink = 0;

	if (c->head >= vq->size)
		fz_bug(T, "popped head %u in a %u-entry queue", c->head, vq->size);
	if (c->n_segs > RB_VIRTQ_MAX_SEGS || c->n_read > c->n_segs)
		fz_bug(T, "chain %u: %u segments, %u readable", c->head, c->n_segs, c->n_read);
	for (unsigned i = 0; i < c->n_segs; i++) {
		const struct iovec *v = &c->iov[i];
		if (v->iov_len == 0)
			fz_bug(T, "chain %u: segment %u is empty", c->head, i);
		if (!in_guest(gm, v->iov_base, v->iov_len))
			fz_bug(T, "chain %u: segment %u (%p, %zu bytes) is not inside one guest region",
			       c->head, i, v->iov_base, v->iov_len);
		/* Every byte, as a device would: a fault here is the bug. */
		const uint8_t *b = v->iov_base;
		for (size_t k = 0; k < v->iov_len; k += 64)
			sink ^= b[k];
		sink ^= b[v->iov_len - 1];
		if (i >= c->n_read) {
			((uint8_t *)v->iov_base)[0] ^= 0;
			((uint8_t *)v->iov_base)[v->iov_len - 1] ^= 0;
			wr += v->iov_len;
		} else {
			rd += v->iov_len;
		}
	}
	(void)sink;
	if (rd != c->read_bytes || wr != c->write_bytes)
		fz_bug(T, "chain %u: byte counts %llu/%llu, segments hold %llu/%llu", c->head,
		       (unsigned long long)c->read_bytes, (unsigned long long)c->write_bytes,
		       (unsigned long long)rd, (unsigned long long)wr);
}

static int add_region(struct guest *gm, uint64_t gpa, size_t len, bool right)
{
	unsigned i = gm->n;

	if (fz_guard_alloc(&gm->g[i], len, right, 16))
		return -1;
	gm->mem.r[i] = (struct rb_vhost_mem_region){.gpa = gpa, .size = len, .uva = gpa,
						    .host = gm->g[i].p};
	gm->n++;
	gm->mem.n = gm->n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static struct rb_virtq_chain chain;
	struct fz f = {d, n, 0};
	struct guest gm = {0};
	struct rb_virtq vq;
	char err[256];
	uint8_t steps[4 * 255];

	uint16_t size = (uint16_t)(1u << (fz_u8(&f) % 16));
	uint8_t flags = fz_u8(&f);
	uint16_t base = fz_u16(&f);
	uint64_t gpa0 = fz_u64(&f);
	size_t extra = (size_t)fz_u16(&f) * 16;
	uint32_t offs[3] = {fz_u32(&f), fz_u32(&f), fz_u32(&f)};
	uint64_t gpa1 = fz_u64(&f);
	size_t len1 = (size_t)fz_u16(&f) * 16;
	unsigned n_steps = fz_u8(&f);
	fz_bytes(&f, steps, 4 * (size_t)n_steps);

	size_t db = rb_vring_desc_bytes(size), ab = rb_vring_avail_bytes(size),
	       ub = rb_vring_used_bytes(size);
	size_t std_used = (db + ab + 3) & ~(size_t)3;
	size_t len0 = std_used + ub + extra;
	/* Only tables the vhost-user validator lets through: regions that
	 * do not overlap or wrap.  Region 0's end is guarded (right-aligned):
	 * most chains that run off guest memory run off its end. */
	struct rb_vhost_mem_table_desc td = {.nregions = 1, .regions = {{gpa0, len0, gpa0, 0}}};
	if ((flags & 8) && len1) {
		td.regions[1] = (struct rb_vhost_mem_region_desc){gpa1, len1, gpa1, 0};
		td.nregions = 2;
	}
	struct rb_vhost_mem_table_desc ok;
	while (rb_vhost_check_mem_table(&td, 8 + 32 * td.nregions, td.nregions, &ok, err,
					sizeof(err))) {
		if (td.nregions == 2)
			td.nregions = 1;
		else if (td.regions[0].gpa != 0x10000)
			td.regions[0].gpa = td.regions[0].uva = 0x10000;
		else
			fz_bug(T, "the validator refuses a plain table: %s", err);
	}
	for (unsigned i = 0; i < td.nregions; i++)
		if (add_region(&gm, td.regions[i].gpa, td.regions[i].size, i == 0 || !(flags & 16))) {
			for (unsigned k = 0; k < gm.n; k++)
				fz_guard_free(&gm.g[k]);
			return 0;
		}
	/* Guest memory: the rest of the input. */
	for (unsigned i = 0; i < gm.n; i++)
		fz_bytes(&f, gm.mem.r[i].host, gm.mem.r[i].size);

	size_t o_desc = 0, o_avail = db, o_used = std_used;
	if (flags & 4) {
		/* Anywhere in region 0, overlapping if the driver likes. */
		o_desc = (offs[0] % (len0 - db + 1)) & ~(size_t)15;
		o_avail = (offs[1] % (len0 - ab + 1)) & ~(size_t)1;
		o_used = (offs[2] % (len0 - ub + 1)) & ~(size_t)3;
	}
	uint8_t *h = gm.mem.r[0].host;
	if (rb_virtq_init(&vq, size, h + o_desc, h + o_avail, h + o_used, base, flags & 1,
			  flags & 2, translate, &gm.mem))
		fz_bug(T, "rb_virtq_init refused a valid ring (size %u)", size);

	uint16_t popped[256];
	unsigned n_popped = 0;
	bool broken = false;
	/* Without steps: pop until empty, at most 600 times (each pop costs
	 * up to RB_VIRTQ_MAX_SEGS + 1 descriptor reads). */
	unsigned limit = n_steps ? n_steps : 2u * size + 2 < 600 ? 2u * size + 2 : 600;
	for (unsigned s = 0; s < limit; s++) {
		const uint8_t *st = n_steps ? &steps[4 * s] : (const uint8_t[4]){0};
		unsigned op = st[0] % 6;
		int rc;

		switch (op) {
		case 0: /* pop */
		case 5:
			rc = rb_virtq_pop(&vq, &chain, err, sizeof(err));
			if (broken && rc != -EIO)
				fz_bug(T, "a broken queue popped again (rc %d)", rc);
			if (rc == 1) {
				check_chain(&gm, &vq, &chain);
			} else if (rc == -EINVAL) {
				if (chain.n_segs || chain.read_bytes || chain.write_bytes ||
				    chain.head >= size)
					fz_bug(T, "a malformed chain left %u segments (head %u)",
					       chain.n_segs, chain.head);
				if (!err[0])
					fz_bug(T, "a malformed chain without a message");
			} else if (rc == -EIO) {
				broken = true;
				if (rb_virtq_pending(&vq))
					fz_bug(T, "a broken queue reports pending chains");
			} else if (rc == 0) {
				if (rb_virtq_pending(&vq))
					fz_bug(T, "pop found the ring empty, pending says %u",
					       rb_virtq_pending(&vq));
				if (!n_steps)
					s = limit;
			} else {
				fz_bug(T, "rb_virtq_pop returned %d", rc);
			}
			if ((rc == 1 || rc == -EINVAL) && n_popped < 256)
				popped[n_popped++] = chain.head;
			/* Without explicit steps, every chain goes straight back. */
			if (!n_steps && (rc == 1 || rc == -EINVAL)) {
				rb_virtq_push(&vq, chain.head, (uint32_t)chain.write_bytes);
				n_popped--;
			}
			break;
		case 1: /* push the oldest chain still held, with a length */
			if (n_popped) {
				rb_virtq_push(&vq, popped[0], (uint32_t)st[1] << 8 | st[2]);
				memmove(popped, popped + 1, --n_popped * sizeof(popped[0]));
			}
			break;
		case 2:
			rb_virtq_should_notify(&vq);
			break;
		case 3:
			rb_virtq_set_kicks(&vq, st[1] & 1);
			(void)rb_virtq_pending(&vq);
			break;
		case 4: { /* the driver writes its memory meanwhile */
			size_t at = ((size_t)st[1] << 8 | st[2]) * 2 % (gm.mem.r[0].size - 1);
			h[at] = st[3];
			h[at + 1] = st[1] ^ st[3];
			break;
		}
		}
	}
	for (unsigned i = 0; i < gm.n; i++)
		fz_guard_free(&gm.g[i]);
	return 0;
}

/* ---- seeds ------------------------------------------------------------------------ */

/* A 16-entry queue at gpa 0x10000, standard layout, with the chains the
 * unit tests build: a plain request, an indirect one, a loop, a chain
 * with writable-then-readable segments and an index that wraps. */
static void seed(const char *dir, const char *name, uint8_t flags, uint16_t base,
		 const struct rb_vring_desc *desc, unsigned n_desc, const uint16_t *avail_ring,
		 unsigned n_avail, const struct rb_vring_desc *table, unsigned n_table, int *bad)
{
	struct fz_buf b = {0};
	const uint16_t size = 16;
	const uint64_t gpa = 0x10000;
	size_t db = rb_vring_desc_bytes(size), ab = rb_vring_avail_bytes(size);
	size_t used_at = (db + ab + 3) & ~(size_t)3, ub = rb_vring_used_bytes(size);
	size_t extra = 4096, len0 = used_at + ub + extra;
	uint8_t *mem = calloc(1, len0);

	FZ_PUT(&b, uint8_t, 4);
	FZ_PUT(&b, uint8_t, flags);
	FZ_PUT(&b, uint16_t, base);
	FZ_PUT(&b, uint64_t, gpa);
	FZ_PUT(&b, uint16_t, extra / 16);
	for (int i = 0; i < 3; i++)
		FZ_PUT(&b, uint32_t, 0);
	FZ_PUT(&b, uint64_t, 0);
	FZ_PUT(&b, uint16_t, 0);
	FZ_PUT(&b, uint8_t, 0);
	memcpy(mem, desc, n_desc * sizeof(*desc));
	struct rb_vring_avail *av = (struct rb_vring_avail *)(mem + db);
	av->idx = (uint16_t)(base + n_avail);
	for (unsigned i = 0; i < n_avail; i++)
		av->ring[(uint16_t)(base + i) % size] = avail_ring[i];
	if (table)
		memcpy(mem + used_at + ub, table, n_table * sizeof(*table));
	fz_put(&b, mem, len0);
	*bad |= fz_write_seed(dir, name, b.p, b.len);
	free(mem);
	free(b.p);
}

static int write_seeds(const char *dir)
{
	const uint64_t buf = 0x10000 + 0x400; /* in region 0, past the rings */
	const uint64_t tab = 0x10000 + ((rb_vring_desc_bytes(16) + rb_vring_avail_bytes(16) + 3) &
					~3ull) + rb_vring_used_bytes(16);
	int bad = 0;

	struct rb_vring_desc req[] = {
		{buf, 16, RB_VRING_DESC_F_NEXT, 1},
		{buf + 512, 512, RB_VRING_DESC_F_NEXT | RB_VRING_DESC_F_WRITE, 2},
		{buf + 1024, 1, RB_VRING_DESC_F_WRITE, 0},
	};
	uint16_t heads[] = {0};
	seed(dir, "plain", 0, 0, req, 3, heads, 1, NULL, 0, &bad);
	seed(dir, "wrap", 1, 0xfffe, req, 3, heads, 1, NULL, 0, &bad);

	struct rb_vring_desc ind[] = {{tab, 48, RB_VRING_DESC_F_INDIRECT, 0}};
	seed(dir, "indirect", 2, 0, ind, 1, heads, 1, req, 3, &bad);

	struct rb_vring_desc loop[] = {
		{buf, 16, RB_VRING_DESC_F_NEXT, 1},
		{buf, 16, RB_VRING_DESC_F_NEXT, 0},
	};
	seed(dir, "loop", 0, 0, loop, 2, heads, 1, NULL, 0, &bad);

	struct rb_vring_desc order[] = {
		{buf, 16, RB_VRING_DESC_F_NEXT | RB_VRING_DESC_F_WRITE, 1},
		{buf + 16, 16, 0, 0},
	};
	seed(dir, "write_then_read", 0, 0, order, 2, heads, 1, NULL, 0, &bad);

	/* Three requests, the second through an indirect table. */
	struct rb_vring_desc many[] = {
		{buf, 16, RB_VRING_DESC_F_NEXT, 1},
		{buf + 1024, 1, RB_VRING_DESC_F_WRITE, 0},
		{tab, 48, RB_VRING_DESC_F_INDIRECT, 0},
		{buf + 2048, 0, RB_VRING_DESC_F_NEXT, 4},
		{buf + 2048, 4, RB_VRING_DESC_F_WRITE, 0},
	};
	uint16_t three[] = {0, 2, 3};
	seed(dir, "three", 3, 0xffff, many, 5, three, 3, req, 3, &bad);
	return bad;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("RB_FUZZ_WRITE_SEEDS");

	(void)argc, (void)argv;
	if (dir)
		exit(write_seeds(dir));
	return 0;
}
