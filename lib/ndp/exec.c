/* SPDX-License-Identifier: MIT */
/*
 * Running the hooks of one NDP request: the sq hook before the first I/O,
 * the cq/xrp hook after each round of I/O, and the checks on what a program
 * asks for next (alignment, size, the VM's disk bounds, the hop limit), and
 * on a file request the translation of each file offset through its map.
 * A program only ever sees its context and the buffers of its own request.
 */
#include "ndp_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int done(struct rb_ndp_exec *x, uint32_t status)
{
	x->status = status;
	x->n_io = 0;
	return RB_NDP_STEP_DONE;
}

int rb_ndp_exec_done(struct rb_ndp_exec *x, uint32_t status)
{
	return done(x, status);
}

/* A file request: one program I/O [off, off + len) becomes disk pieces at
 * io_off/io_len[k..], landing from data offset `at`.  Returns the number of
 * pieces, or 0 with the request ended. */
static unsigned queue_file_io(struct rb_ndp_exec *x, unsigned k, uint32_t at, uint64_t off,
			      uint32_t len)
{
	const struct rb_ndp_file *f = x->file;
	int np = rb_ndp_file_translate(f->ext, f->n, f->size, off, len, x->io_off + k, x->io_len + k,
				       RB_NDP_MAX_NEXT_IOS - k);

	if (np < 0) {
		snprintf(x->msg, sizeof(x->msg), "I/O of %u bytes at file offset %" PRIu64 " of file %u %s",
			 len, off, f->key,
			 np == -EFBIG ? "goes past the file's size"
			 : np == -ENXIO ? "is not in the file's map (a hole, or past its last extent)"
					: "needs more disk I/Os than a hop may issue");
		if (np == -E2BIG)
			snprintf(x->msg + strlen(x->msg), sizeof(x->msg) - strlen(x->msg), " (%u)",
				 RB_NDP_MAX_NEXT_IOS);
		done(x, RB_NDP_S_OUT_OF_RANGE);
		return 0;
	}
	for (int j = 0; j < np; j++, k++) {
		/* The map was checked against the disk at REG_FILE; the disk
		 * is still the judge of every I/O. */
		if (!rb_blk_range_ok(x->io_off[k] / RB_VIRTIO_BLK_SECTOR, x->io_len[k],
				     x->capacity_bytes / RB_VIRTIO_BLK_SECTOR)) {
			snprintf(x->msg, sizeof(x->msg),
				 "I/O at file offset %" PRIu64 " maps to %u bytes at disk offset %" PRIu64 ", which leaves the %" PRIu64 "-byte disk",
				 off, x->io_len[k], x->io_off[k], x->capacity_bytes);
			done(x, RB_NDP_S_OUT_OF_RANGE);
			return 0;
		}
		x->data_off[k] = at;
		at += x->io_len[k];
	}
	return (unsigned)np;
}

/* Checks and queues the next I/Os the program asked for (file offsets on a
 * file request, translated here exactly once); the data of I/O i lands
 * right after that of I/O i - 1. */
static int queue_ios(struct rb_ndp_exec *x, unsigned n, const uint64_t *off, const uint32_t *len)
{
	uint32_t at = 0;
	unsigned k = 0;

	if (n == 0 || n > RB_NDP_MAX_NEXT_IOS) {
		snprintf(x->msg, sizeof(x->msg), "program asked for %u next I/Os (1..%u)", n,
			 RB_NDP_MAX_NEXT_IOS);
		return done(x, RB_NDP_S_OUT_OF_RANGE);
	}
	if (x->hops + n > x->max_hops) {
		snprintf(x->msg, sizeof(x->msg), "hop limit of %u reached", x->max_hops);
		return done(x, RB_NDP_S_HOP_LIMIT);
	}
	for (unsigned i = 0; i < n; i++) {
		if (len[i] == 0 || len[i] % RB_VIRTIO_BLK_SECTOR || off[i] % RB_VIRTIO_BLK_SECTOR ||
		    len[i] > RB_NDP_MAX_DATA - at ||
		    (!x->file && !rb_blk_range_ok(off[i] / RB_VIRTIO_BLK_SECTOR, len[i],
						  x->capacity_bytes / RB_VIRTIO_BLK_SECTOR))) {
			snprintf(x->msg, sizeof(x->msg),
				 "I/O of %u bytes at %soffset %" PRIu64 " is not 512-aligned, exceeds the %u-byte buffer or leaves the %" PRIu64 "-byte disk",
				 len[i], x->file ? "file " : "", off[i], RB_NDP_MAX_DATA, x->capacity_bytes);
			return done(x, RB_NDP_S_OUT_OF_RANGE);
		}
		if (x->file) {
			unsigned np = queue_file_io(x, k, at, off[i], len[i]);
			if (!np)
				return RB_NDP_STEP_DONE;
			k += np;
		} else {
			x->io_off[k] = off[i];
			x->io_len[k] = len[i];
			x->data_off[k] = at;
			k++;
		}
		at += len[i];
	}
	x->n_req = n;
	x->ctx_off = off[0];
	x->n_io = k;
	return RB_NDP_STEP_IO;
}

/* Runs the program with r1 = ctx; maps engine failures to NDP statuses. */
static int run(struct rb_ndp_exec *x, void *ctx, size_t ctx_len, uint64_t *r0)
{
	struct rb_bpf_region regions[4 + RB_NDP_MAX_REGIONS];
	unsigned n = 0;
	struct rb_bpf_result res;

	/* The request's budget caps each run's, so a run never takes the
	 * request past it. */
	uint64_t left = RB_NDP_REQUEST_BUDGET - x->insns;
	if (x->insns >= RB_NDP_REQUEST_BUDGET) {
		snprintf(x->msg, sizeof(x->msg),
			 "program %u: request budget of %u instructions (all runs together) exhausted after %u hops",
			 x->prog->handle, RB_NDP_REQUEST_BUDGET, x->hops);
		return RB_NDP_S_BUDGET;
	}
	regions[n++] = (struct rb_bpf_region){(uintptr_t)ctx, ctx_len, true};
	regions[n++] = (struct rb_bpf_region){(uintptr_t)x->data, RB_NDP_MAX_DATA, true};
	regions[n++] = (struct rb_bpf_region){(uintptr_t)x->scratch, RB_NDP_MAX_SCRATCH, true};
	/* Metadata is a read-only RB_NDP_MAX_META-byte buffer, zero-padded
	 * past meta_len (a fixed size lets the verifier prove accesses). */
	if (x->meta)
		regions[n++] = (struct rb_bpf_region){(uintptr_t)x->meta, RB_NDP_MAX_META, false};
	for (unsigned i = 0; i < x->n_mem && i < RB_NDP_MAX_REGIONS; i++)
		regions[n++] = (struct rb_bpf_region){(uintptr_t)x->mem_host[i], x->mem_len[i], true};
	struct rb_bpf_run_opts o = {
		.args = {(uintptr_t)ctx},
		.regions = regions,
		.n_regions = n,
		.budget = left < RB_NDP_BUDGET ? left : RB_NDP_BUDGET,
		.user = x,
	};
	int rc = rb_bpf_run(x->prog->bpf, &o, &res);
	x->insns += res.executed;
	x->runs++;
	if (rc == 0) {
		*r0 = res.r0;
		x->retval = res.r0;
		return 0;
	}
	if (res.status == RB_BPF_E_BUDGET && x->insns >= RB_NDP_REQUEST_BUDGET)
		snprintf(x->msg, sizeof(x->msg),
			 "program %u: request budget of %u instructions (all runs together) exhausted after %u hops",
			 x->prog->handle, RB_NDP_REQUEST_BUDGET, x->hops);
	else
		snprintf(x->msg, sizeof(x->msg), "program %u: %s", x->prog->handle, res.msg);
	return res.status == RB_BPF_E_BUDGET ? RB_NDP_S_BUDGET : RB_NDP_S_FAULT;
}

static void fill_ctx(struct rb_ndp_exec *x, uint64_t off, uint32_t len)
{
	struct rb_ndp_ctx *c = &x->c.ctx;

	memset(c, 0, sizeof(*c));
	c->meta = (uintptr_t)x->meta;
	c->meta_end = (uintptr_t)x->meta + x->meta_len;
	c->data = (uintptr_t)x->data;
	c->data_end = (uintptr_t)x->data + RB_NDP_MAX_DATA;
	c->scratch = (uintptr_t)x->scratch;
	c->scratch_end = (uintptr_t)x->scratch + x->scratch_len;
	c->offset = off;
	c->len = len;
	c->hop = x->hops;
}

/* A cq/sq program's verdict: done, or its next I/Os. */
static int native_verdict(struct rb_ndp_exec *x, uint64_t r0)
{
	struct rb_ndp_ctx *c = &x->c.ctx;

	if (r0 == RB_NDP_OK)
		return done(x, RB_NDP_S_OK);
	if (r0 != RB_NDP_RESUBMIT) {
		snprintf(x->msg, sizeof(x->msg), "program %u returned %" PRIu64 " (0 = OK, 1 = RESUBMIT)",
			 x->prog->handle, r0);
		return done(x, RB_NDP_S_FAULT);
	}
	/* Copy what the program wrote before checking it: the context is
	 * program-writable memory. */
	uint64_t off[RB_NDP_MAX_NEXT_IOS];
	uint32_t len[RB_NDP_MAX_NEXT_IOS];
	unsigned n = c->n_next;
	if (n > RB_NDP_MAX_NEXT_IOS)
		n = RB_NDP_MAX_NEXT_IOS + 1; /* rejected by queue_ios */
	for (unsigned i = 0; i < n && i < RB_NDP_MAX_NEXT_IOS; i++) {
		off[i] = c->next_off[i];
		len[i] = c->next_len[i];
	}
	if (x->gpu) /* one read, up to 64 MiB, into a region (gpu.c) */
		return rb_ndp_gpu_verdict(x, n, off, len);
	return queue_ios(x, n, off, len);
}

int rb_ndp_exec_start(struct rb_ndp_exec *x, uint64_t off, uint32_t len)
{
	uint64_t r0;
	int st;

	x->hops = 0;
	x->insns = 0;
	x->runs = 0;
	x->status = RB_NDP_S_OK;
	x->retval = 0;
	x->bytes = 0;
	x->msg[0] = 0;
	if (!x->max_hops || x->max_hops > RB_NDP_MAX_HOPS)
		x->max_hops = x->max_hops ? RB_NDP_MAX_HOPS : RB_NDP_DEFAULT_HOPS;
	if (x->gpu && x->prog->type != RB_NDP_PROG_SQ) {
		snprintf(x->msg, sizeof(x->msg),
			 "a GPU read needs an sq program that names its destination; program %u is %s",
			 x->prog->handle, rb_ndp_prog_type_name(x->prog->type));
		return done(x, RB_NDP_S_WRONG_TYPE);
	}
	if (x->prog->type != RB_NDP_PROG_SQ)
		return queue_ios(x, 1, &off, &len);
	fill_ctx(x, off, len);
	x->c.ctx.n_next = 1;
	x->c.ctx.next_off[0] = off;
	x->c.ctx.next_len[0] = len;
	st = run(x, &x->c.ctx, sizeof(x->c.ctx), &r0);
	if (st)
		return done(x, (uint32_t)st);
	return native_verdict(x, r0);
}

int rb_ndp_exec_io_done(struct rb_ndp_exec *x, int res)
{
	uint64_t r0;
	int st;

	/* Hops count the program's I/Os, however many disk I/Os a file's
	 * layout made of them: a program behaves the same on any layout. */
	x->hops += x->n_req;
	if (res < 0) {
		snprintf(x->msg, sizeof(x->msg), "storage I/O failed: %s", strerror(-res));
		return done(x, RB_NDP_S_IO_ERROR);
	}
	x->bytes = x->data_off[x->n_io - 1] + x->io_len[x->n_io - 1];
	switch (x->prog->type) {
	case RB_NDP_PROG_SQ:
		/* An sq program shapes the I/O; there is no completion hook. */
		return done(x, RB_NDP_S_OK);
	case RB_NDP_PROG_CQ:
		fill_ctx(x, x->ctx_off, (uint32_t)x->bytes);
		st = run(x, &x->c.ctx, sizeof(x->c.ctx), &r0);
		if (st)
			return done(x, (uint32_t)st);
		return native_verdict(x, r0);
	case RB_NDP_PROG_XRP: {
		struct bpf_xrp *c = &x->c.xrp;
		memset(c, 0, sizeof(*c));
		c->data = (char *)x->data;
		c->scratch = (char *)x->scratch;
		st = run(x, c, sizeof(*c), &r0);
		if (st)
			return done(x, (uint32_t)st);
		/* XRP semantics: done, or exactly one next read (size 0: none). */
		uint64_t off = c->next_addr[0], len = c->size[0];
		if (c->done || len == 0)
			return done(x, RB_NDP_S_OK);
		if (len > RB_NDP_MAX_DATA) {
			snprintf(x->msg, sizeof(x->msg), "program asked for a %" PRIu64 "-byte read", len);
			return done(x, RB_NDP_S_OUT_OF_RANGE);
		}
		uint32_t l = (uint32_t)len;
		return queue_ios(x, 1, &off, &l);
	}
	}
	return done(x, RB_NDP_S_WRONG_TYPE);
}

int rb_ndp_exec_stopped(struct rb_ndp_exec *x)
{
	x->hops += x->n_req;
	snprintf(x->msg, sizeof(x->msg),
		 "the device stopped the queue (ring stop, memory table change, disconnect or shutdown) after %u hops; the request may be retried",
		 x->hops);
	return done(x, RB_NDP_S_IO_ERROR);
}

/* ---- helpers (ids in rosen/prog.h) ------------------------------------------ */

/* Whether queue_ios() would take [off, off + len) (on a file: a file range
 * the map holds in pieces inside the disk). */
static bool io_ok(const struct rb_ndp_exec *x, uint64_t off, uint64_t len)
{
	uint64_t doff[RB_NDP_MAX_NEXT_IOS];
	uint32_t dlen[RB_NDP_MAX_NEXT_IOS];

	if (!len || len > RB_NDP_MAX_DATA || len % RB_VIRTIO_BLK_SECTOR || off % RB_VIRTIO_BLK_SECTOR)
		return false;
	if (!x->file)
		return rb_blk_range_ok(off / RB_VIRTIO_BLK_SECTOR, len,
				       x->capacity_bytes / RB_VIRTIO_BLK_SECTOR);
	int np = rb_ndp_file_translate(x->file->ext, x->file->n, x->file->size, off, len, doff, dlen,
				       RB_NDP_MAX_NEXT_IOS);
	for (int i = 0; i < np; i++)
		if (!rb_blk_range_ok(doff[i] / RB_VIRTIO_BLK_SECTOR, dlen[i],
				     x->capacity_bytes / RB_VIRTIO_BLK_SECTOR))
			return false;
	return np > 0;
}

/* The helpers work on the native context; xrp programs have another one. */
static struct rb_ndp_exec *native_exec(struct rb_bpf_call *call)
{
	struct rb_ndp_exec *x = rb_bpf_call_user(call);

	if (x->prog->type == RB_NDP_PROG_XRP) {
		rb_bpf_call_fail(call, "NDP helpers serve sq and cq programs only");
		return NULL;
	}
	return x;
}

static uint64_t h_get_sqe(struct rb_bpf_call *call, uint64_t ctx, uint64_t idx, uint64_t out,
			  uint64_t a4, uint64_t a5)
{
	struct rb_ndp_exec *x = native_exec(call);
	struct rb_ndp_sqe sqe = {0};

	(void)ctx, (void)a4, (void)a5;
	if (!x)
		return 0;
	/* The verifier proved the buffer writable; if it is not, nothing
	 * can be written and the program would read what it held before as
	 * "written": end it (FAULT) instead of returning. */
	if (!rb_bpf_call_mem_ok(call, out, sizeof(sqe), true)) {
		rb_bpf_call_fail(call, "rb_ndp_get_sqe: out-buffer not writable");
		return 0;
	}
	/* The out-buffer is written on every path (zeroes on failure): the
	 * verifier counts it initialised after the call (types.c). */
	uint64_t rc = 0;
	if (idx == RB_NDP_SQE_CURRENT) {
		sqe.off = x->c.ctx.offset;
		sqe.len = x->c.ctx.len;
	} else if (idx < RB_NDP_CTX_MAX_NEXT && idx < x->c.ctx.n_next) {
		sqe.off = x->c.ctx.next_off[idx];
		sqe.len = x->c.ctx.next_len[idx];
	} else {
		rc = (uint64_t)-EINVAL;
	}
	memcpy((void *)(uintptr_t)out, &sqe, sizeof(sqe));
	return rc;
}

static uint64_t h_new_sqe(struct rb_bpf_call *call, uint64_t ctx, uint64_t a2, uint64_t a3,
			  uint64_t a4, uint64_t a5)
{
	struct rb_ndp_exec *x = native_exec(call);

	(void)ctx, (void)a2, (void)a3, (void)a4, (void)a5;
	if (!x)
		return 0;
	if (x->c.ctx.n_next >= RB_NDP_CTX_MAX_NEXT)
		return (uint64_t)-ENOSPC;
	x->c.ctx.next_off[x->c.ctx.n_next] = 0;
	x->c.ctx.next_len[x->c.ctx.n_next] = 0;
	return x->c.ctx.n_next++;
}

static uint64_t h_set_sqe(struct rb_bpf_call *call, uint64_t ctx, uint64_t idx, uint64_t off,
			  uint64_t len, uint64_t a5)
{
	struct rb_ndp_exec *x = native_exec(call);

	(void)ctx, (void)a5;
	if (!x)
		return 0;
	if (idx >= RB_NDP_CTX_MAX_NEXT || idx >= x->c.ctx.n_next)
		return (uint64_t)-EINVAL;
	if (!io_ok(x, off, len))
		return (uint64_t)-ERANGE;
	x->c.ctx.next_off[idx] = off;
	x->c.ctx.next_len[idx] = (uint32_t)len;
	return 0;
}

static uint64_t h_disk_trans(struct rb_bpf_call *call, uint64_t ctx, uint64_t off, uint64_t a3,
			     uint64_t a4, uint64_t a5)
{
	struct rb_ndp_exec *x = rb_bpf_call_user(call);

	(void)ctx, (void)a3, (void)a4, (void)a5;
	/* A raw image maps disk offsets 1:1.  On a file request programs
	 * live in file offsets and never learn disk ones: the answer is the
	 * offset itself when the map holds its sector. */
	if (x->file) {
		uint64_t d;
		uint32_t l;
		uint64_t sec = off / RB_VIRTIO_BLK_SECTOR * RB_VIRTIO_BLK_SECTOR;
		return rb_ndp_file_translate(x->file->ext, x->file->n, x->file->size, sec,
					     RB_VIRTIO_BLK_SECTOR, &d, &l, 1) == 1
			       ? off
			       : (uint64_t)-ERANGE;
	}
	return off < x->capacity_bytes ? off : (uint64_t)-ERANGE;
}

static uint64_t h_mem_trans(struct rb_bpf_call *call, uint64_t ctx, uint64_t key, uint64_t off,
			    uint64_t len, uint64_t a5)
{
	struct rb_ndp_exec *x = rb_bpf_call_user(call);

	(void)ctx, (void)a5;
	for (unsigned i = 0; i < x->n_mem; i++) {
		if (x->mem_key[i] != key)
			continue;
		if (off > x->mem_len[i] || len > x->mem_len[i] - off)
			return 0;
		return (uint64_t)(uintptr_t)(x->mem_host[i] + off);
	}
	return 0;
}

int rb_ndp_register_helpers(struct rb_bpf_helpers *h)
{
	int rc = 0;

	rc = rc ? rc : rb_bpf_helpers_register(h, RB_NDP_HELPER_GET_SQE, "rb_ndp_get_sqe", h_get_sqe);
	rc = rc ? rc : rb_bpf_helpers_register(h, RB_NDP_HELPER_NEW_SQE, "rb_ndp_new_sqe", h_new_sqe);
	rc = rc ? rc : rb_bpf_helpers_register(h, RB_NDP_HELPER_SET_SQE, "rb_ndp_set_sqe", h_set_sqe);
	rc = rc ? rc : rb_bpf_helpers_register(h, RB_NDP_HELPER_DISK_TRANS, "rb_ndp_disk_trans",
					       h_disk_trans);
	rc = rc ? rc : rb_bpf_helpers_register(h, RB_NDP_HELPER_MEM_TRANS, "rb_ndp_mem_trans",
					       h_mem_trans);
	rc = rc ? rc : rb_bpf_helpers_register(h, RB_NDP_HELPER_GPU_TARGET, "rb_ndp_gpu_target",
					       rb_ndp_h_gpu_target);
	return rc;
}
