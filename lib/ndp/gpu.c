/* SPDX-License-Identifier: MIT */
/*
 * RosenGDS in the executor: a VM's GPU regions (REG_GPU/UNREG_GPU, keys
 * with the daemon's epoch and a generation like file keys), the checks of
 * the wire structs (pure), the gpu_target helper that points a GPU read
 * at (key, offset) of a region without giving the program a pointer, and
 * the verdict that checks the read and its destination once more against
 * the final length.  A program never learns where a region lives.
 */
#include "ndp_internal.h"

#include <rosen/log.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Keys: epoch (12 bits) | generation (16) | slot (4; 8 used). */
#define GPU_SLOT_BITS 4u
#define GPU_GEN_MASK 0xffffu
_Static_assert(RB_NDP_MAX_GPU_REGIONS <= 1u << GPU_SLOT_BITS, "GPU keys name a slot in their low bits");
_Static_assert(16 + GPU_SLOT_BITS == RB_NDP_ID_EPOCH_SHIFT, "the epoch sits above generation and slot");

struct rb_ndp_gpu_set {
	pthread_mutex_t lock;
	uint32_t generation;
	uint64_t bytes; /* of all regions: RB_NDP_MAX_GPU_BYTES */
	uint32_t key[RB_NDP_MAX_GPU_REGIONS];
	struct rb_gpu_region *reg[RB_NDP_MAX_GPU_REGIONS];
};

struct rb_ndp_gpu_set *rb_ndp_gpu_set_new(void)
{
	struct rb_ndp_gpu_set *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	pthread_mutex_init(&g->lock, NULL);
	if (getrandom(&g->generation, sizeof(g->generation), GRND_NONBLOCK) != sizeof(g->generation))
		g->generation = (uint32_t)(uintptr_t)g;
	return g;
}

void rb_ndp_gpu_set_free(struct rb_ndp_gpu_set *g)
{
	if (!g)
		return;
	for (unsigned i = 0; i < RB_NDP_MAX_GPU_REGIONS; i++)
		rb_gpu_region_put(g->reg[i]);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* ---- pure checks --------------------------------------------------------------- */

int rb_ndp_gpu_reg_check(const struct rb_ndp_reg_gpu *rg, char *err, size_t errlen)
{
	if (rg->flags) {
		snprintf(err, errlen, "REG_GPU flags 0x%x: none are defined", rg->flags);
		return -EINVAL;
	}
	if (rg->target != RB_NDP_GPU_HOST && rg->target != RB_NDP_GPU_CUDA) {
		snprintf(err, errlen, "REG_GPU target %u: 1 (host) or 2 (cuda)", rg->target);
		return -EINVAL;
	}
	if (rg->size == 0 || rg->size % 512 || rg->size > RB_NDP_MAX_GPU_REGION_BYTES) {
		snprintf(err, errlen,
			 "REG_GPU of %" PRIu64 " bytes: a region is 512..%u bytes, a multiple of 512",
			 (uint64_t)rg->size, RB_NDP_MAX_GPU_REGION_BYTES);
		return -EINVAL;
	}
	return 0;
}

int rb_ndp_gpu_sum_check(const struct rb_ndp_gpu_sum *gs, char *err, size_t errlen)
{
	if (gs->reserved) {
		snprintf(err, errlen, "GPU_SUM reserved field %u: must be 0", gs->reserved);
		return -EINVAL;
	}
	if (gs->len == 0 || gs->len > RB_NDP_MAX_GPU_READ || gs->offset > UINT64_MAX - gs->len) {
		snprintf(err, errlen, "GPU_SUM of %" PRIu64 " bytes at %" PRIu64 ": 1..%u bytes",
			 (uint64_t)gs->len, (uint64_t)gs->offset, RB_NDP_MAX_GPU_READ);
		return -EINVAL;
	}
	return 0;
}

/* ---- the VM's regions ------------------------------------------------------------ */

/* A region unregistered while a read or GPU_SUM still held it keeps its
 * slot and its bytes (key 0: nothing finds it again) until the last holder
 * lets go; then, here, under the lock, the VM gets them back.  Otherwise
 * REG_GPU, read, UNREG_GPU over and over would hold any number of regions. */
static void reap_unregistered(struct rb_ndp_gpu_set *g)
{
	for (unsigned i = 0; i < RB_NDP_MAX_GPU_REGIONS; i++)
		if (g->reg[i] && !g->key[i] && !rb_gpu_region_shared(g->reg[i])) {
			g->bytes -= rb_gpu_region_size(g->reg[i]);
			rb_gpu_region_put(g->reg[i]);
			g->reg[i] = NULL;
		}
}

static int find(const struct rb_ndp_gpu_set *g, uint32_t key)
{
	unsigned slot = key & ((1u << GPU_SLOT_BITS) - 1);

	return key && slot < RB_NDP_MAX_GPU_REGIONS && g->reg[slot] && g->key[slot] == key ? (int)slot
											 : -1;
}

uint32_t rb_ndp_reg_gpu(struct rb_ndp_table *t, const struct rb_ndp_reg_gpu *rg, uint32_t *key,
			char *err, size_t errlen)
{
	struct rb_ndp_gpu_set *g = rb_ndp_table_gpu(t);
	struct rb_gpu_region *r = NULL;
	unsigned slot = RB_NDP_MAX_GPU_REGIONS;
	uint32_t st = RB_NDP_S_OK;

	*key = 0;
	pthread_mutex_lock(&g->lock);
	reap_unregistered(g);
	for (unsigned i = 0; i < RB_NDP_MAX_GPU_REGIONS; i++)
		if (!g->reg[i]) {
			slot = i;
			break;
		}
	if (slot == RB_NDP_MAX_GPU_REGIONS) {
		snprintf(err, errlen, "this VM already has %u GPU regions", RB_NDP_MAX_GPU_REGIONS);
		st = RB_NDP_S_LIMIT;
	} else if (rg->size > RB_NDP_MAX_GPU_BYTES - g->bytes) {
		snprintf(err, errlen,
			 "a region of %" PRIu64 " bytes would take this VM's GPU regions past %llu bytes (it holds %" PRIu64 ")",
			 (uint64_t)rg->size, RB_NDP_MAX_GPU_BYTES, g->bytes);
		st = RB_NDP_S_LIMIT;
	} else {
		/* Under the VM's lock: its regions are counted before another
		 * queue of the same VM can register one. */
		int rc = rb_gpu_region_new(rg->target == RB_NDP_GPU_CUDA ? RB_GPU_CUDA : RB_GPU_HOST,
					   rg->size, &r, err, errlen);
		if (rc) {
			st = rc == -ENODEV ? RB_NDP_S_NO_GPU : RB_NDP_S_LIMIT;
		} else {
			g->generation++;
			g->key[slot] = rb_ndp_id(((g->generation & GPU_GEN_MASK) << GPU_SLOT_BITS) | slot);
			g->reg[slot] = r;
			g->bytes += rg->size;
			*key = g->key[slot];
		}
	}
	pthread_mutex_unlock(&g->lock);
	return st;
}

uint32_t rb_ndp_unreg_gpu(struct rb_ndp_table *t, uint32_t key)
{
	struct rb_ndp_gpu_set *g = rb_ndp_table_gpu(t);

	pthread_mutex_lock(&g->lock);
	int s = find(g, key);
	if (s >= 0) {
		g->key[s] = 0;
		reap_unregistered(g); /* at once unless a read holds it */
	}
	pthread_mutex_unlock(&g->lock);
	if (s < 0)
		return rb_ndp_missing(key, RB_NDP_S_NO_MEMORY);
	return RB_NDP_S_OK;
}

struct rb_gpu_region *rb_ndp_gpu_acquire(struct rb_ndp_table *t, uint32_t key)
{
	struct rb_ndp_gpu_set *g = rb_ndp_table_gpu(t);
	struct rb_gpu_region *r = NULL;

	pthread_mutex_lock(&g->lock);
	int s = find(g, key);
	if (s >= 0) {
		r = g->reg[s];
		rb_gpu_region_get(r);
	}
	pthread_mutex_unlock(&g->lock);
	return r;
}

unsigned rb_ndp_gpu_count(struct rb_ndp_table *t, uint64_t *bytes)
{
	struct rb_ndp_gpu_set *g = rb_ndp_table_gpu(t);
	unsigned n = 0;

	pthread_mutex_lock(&g->lock);
	reap_unregistered(g);
	for (unsigned i = 0; i < RB_NDP_MAX_GPU_REGIONS; i++)
		n += g->reg[i] != NULL;
	if (bytes)
		*bytes = g->bytes;
	pthread_mutex_unlock(&g->lock);
	return n;
}

/* ---- the helper and the verdict --------------------------------------------------- */

uint64_t rb_ndp_h_gpu_target(struct rb_bpf_call *call, uint64_t ctx, uint64_t key, uint64_t off,
			     uint64_t a4, uint64_t a5)
{
	struct rb_ndp_exec *x = rb_bpf_call_user(call);

	(void)ctx, (void)a4, (void)a5;
	/* The verifier lets only sq programs call it; a GPU read is what
	 * gives it a meaning. */
	if (!x->gpu || x->prog->type != RB_NDP_PROG_SQ || !x->table)
		return (uint64_t)-EINVAL;
	struct rb_gpu_region *r = key <= UINT32_MAX ? rb_ndp_gpu_acquire(x->table, (uint32_t)key) : NULL;
	if (!r) {
		x->dest_err = key <= UINT32_MAX ? rb_ndp_missing((uint32_t)key, RB_NDP_S_NO_MEMORY)
						: RB_NDP_S_NO_MEMORY;
		snprintf(x->msg, sizeof(x->msg),
			 x->dest_err == RB_NDP_S_STATE_LOST
				 ? "rb_ndp_gpu_target: GPU region key %" PRIu64 " is from before the daemon restarted: the region is gone (register it again)"
				 : "rb_ndp_gpu_target: no GPU region with key %" PRIu64 " on this VM (never registered, unregistered, or another VM's)",
			 key);
		return x->dest_err == RB_NDP_S_STATE_LOST ? (uint64_t)-ESTALE : (uint64_t)-ENOENT;
	}
	/* Checked now against the read's length as it stands, and again in
	 * the verdict against the final one. */
	uint64_t len = x->c.ctx.n_next ? x->c.ctx.next_len[0] : 0;
	if (off % 512 || !rb_gpu_range_ok(rb_gpu_region_size(r), off, len ? len : 1)) {
		x->dest_err = RB_NDP_S_OUT_OF_RANGE;
		snprintf(x->msg, sizeof(x->msg),
			 "rb_ndp_gpu_target: %" PRIu64 " bytes at offset %" PRIu64 " of GPU region %" PRIu64 " (%" PRIu64 " bytes) are not inside it, or the offset is not a multiple of 512",
			 len, off, key, rb_gpu_region_size(r));
		rb_gpu_region_put(r);
		return (uint64_t)-ERANGE;
	}
	rb_gpu_region_put(x->dest);
	x->dest = r;
	x->dest_key = (uint32_t)key;
	x->dest_off = off;
	return 0;
}

int rb_ndp_gpu_verdict(struct rb_ndp_exec *x, unsigned n, const uint64_t *off, const uint32_t *len)
{
	if (n != 1) {
		snprintf(x->msg, sizeof(x->msg), "a GPU read is one I/O; the program asked for %u", n);
		return rb_ndp_exec_done(x, RB_NDP_S_OUT_OF_RANGE);
	}
	if (len[0] == 0 || len[0] % 512 || len[0] > RB_NDP_MAX_GPU_READ || off[0] % 512 ||
	    !rb_blk_range_ok(off[0] / 512, len[0], x->capacity_bytes / 512)) {
		snprintf(x->msg, sizeof(x->msg),
			 "GPU read of %u bytes at offset %" PRIu64 " is not 512-aligned, over %u bytes or leaves the %" PRIu64 "-byte disk",
			 len[0], off[0], RB_NDP_MAX_GPU_READ, x->capacity_bytes);
		return rb_ndp_exec_done(x, RB_NDP_S_OUT_OF_RANGE);
	}
	if (!x->dest) {
		if (!x->dest_err)
			snprintf(x->msg, sizeof(x->msg),
				 "program %u asked for a GPU read without a destination (rb_ndp_gpu_target)",
				 x->prog->handle);
		return rb_ndp_exec_done(x, x->dest_err ? x->dest_err : RB_NDP_S_FAULT);
	}
	if (!rb_gpu_range_ok(rb_gpu_region_size(x->dest), x->dest_off, len[0])) {
		snprintf(x->msg, sizeof(x->msg),
			 "GPU read of %u bytes into offset %" PRIu64 " of GPU region %u (%" PRIu64 " bytes) leaves the region",
			 len[0], x->dest_off, x->dest_key, rb_gpu_region_size(x->dest));
		return rb_ndp_exec_done(x, RB_NDP_S_OUT_OF_RANGE);
	}
	x->gpu_off = off[0];
	x->gpu_len = len[0];
	x->n_req = 1;
	x->n_io = 0;
	return RB_NDP_STEP_IO;
}

int rb_ndp_exec_gpu_done(struct rb_ndp_exec *x, int res)
{
	x->hops += 1;
	if (res < 0) {
		snprintf(x->msg, sizeof(x->msg), "GPU read of %u bytes failed: %s", x->gpu_len,
			 strerror(-res));
		return rb_ndp_exec_done(x, RB_NDP_S_IO_ERROR);
	}
	x->bytes = x->gpu_len;
	return rb_ndp_exec_done(x, RB_NDP_S_OK);
}
