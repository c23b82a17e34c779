/* SPDX-License-Identifier: MIT */
/*
 * RosenGDS's control requests in the worker: REG_GPU (a region allocated on
 * the VM's behalf and accounted to it), UNREG_GPU, and GPU_SUM (the CRC-32
 * of a region's bytes, read back from where they landed).  Parse (exact
 * lengths, one copy out of guest memory), validate (pure, lib/ndp), act;
 * every refusal is a status in the result and a line in the log.
 */
#include "io_internal.h"

#include <inttypes.h>
#include <stdio.h>

/* The status byte of a chain with a writable part, or NULL. */
static uint8_t *status_of(struct rb_virtq_chain *c)
{
	unsigned nw = c->n_segs - c->n_read;

	if (nw == 0)
		return NULL;
	return (uint8_t *)c->iov[c->n_segs - 1].iov_base + c->iov[c->n_segs - 1].iov_len - 1;
}

static const char *type_name(uint32_t type)
{
	return type == RB_NDP_T_REG_GPU ? "REG_GPU" : type == RB_NDP_T_UNREG_GPU ? "UNREG_GPU" : "GPU_SUM";
}

void rb_gds_ctl(struct rb_io_req *req, uint32_t type)
{
	struct rb_virtq_chain *c = &req->chain;
	struct rb_ndp_table *t = req->q->disk->progs;
	struct iovec *w = c->iov + c->n_read;
	unsigned nw = c->n_segs - c->n_read;
	uint8_t *status = status_of(c);
	size_t in_len = type == RB_NDP_T_REG_GPU     ? sizeof(struct rb_ndp_reg_gpu)
			: type == RB_NDP_T_UNREG_GPU ? sizeof(struct rb_ndp_unreg_gpu)
						     : sizeof(struct rb_ndp_gpu_sum);
	size_t out_len = type == RB_NDP_T_REG_GPU     ? sizeof(struct rb_ndp_reg_result)
			 : type == RB_NDP_T_UNREG_GPU ? sizeof(uint32_t)
						      : sizeof(struct rb_ndp_gpu_sum_result);
	char err[256];

	if (!status) {
		rb_io_guest_log(req->q, "NDP %s without a status byte", type_name(type));
		rb_ndp_io_finish(req, NULL, 0, 0);
		return;
	}
	if (c->read_bytes != 16 + in_len || c->write_bytes != out_len + 1) {
		rb_io_guest_log(req->q,
				"NDP %s with wrong lengths: readable %llu (expected %zu), writable %llu (expected %zu)",
				type_name(type), (unsigned long long)c->read_bytes, 16 + in_len,
				(unsigned long long)c->write_bytes, out_len + 1);
		rb_ndp_io_finish(req, status, RB_VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	if (type == RB_NDP_T_REG_GPU) {
		struct rb_ndp_reg_gpu rg;
		struct rb_ndp_reg_result res = {0};
		rb_iov_gather(c->iov, c->n_read, 16, &rg, sizeof(rg));
		if (rb_ndp_gpu_reg_check(&rg, err, sizeof(err)))
			res.status = RB_NDP_S_BAD_REQUEST;
		else
			res.status = rb_ndp_reg_gpu(t, &rg, &res.key, err, sizeof(err));
		if (res.status != RB_NDP_S_OK) {
			res.key = 0;
			rb_io_guest_log(req->q, "REG_GPU refused (%s): %s", rb_ndp_status_name(res.status), err);
		}
		rb_ndp_io_outcome(req, res.status);
		rb_iov_scatter(w, nw, 0, &res, sizeof(res));
	} else if (type == RB_NDP_T_UNREG_GPU) {
		struct rb_ndp_unreg_gpu u;
		rb_iov_gather(c->iov, c->n_read, 16, &u, sizeof(u));
		uint32_t st = rb_ndp_unreg_gpu(t, u.key);
		if (st != RB_NDP_S_OK)
			rb_io_guest_log(req->q, "UNREG_GPU: no GPU region with key %u on this disk%s", u.key,
					st == RB_NDP_S_STATE_LOST ? " (a key from before the daemon restarted)"
								  : "");
		rb_ndp_io_outcome(req, st);
		rb_iov_scatter(w, nw, 0, &st, sizeof(st));
	} else {
		struct rb_ndp_gpu_sum gs;
		struct rb_ndp_gpu_sum_result res = {0};
		struct rb_gpu_region *r = NULL;
		uint32_t crc = 0;
		rb_iov_gather(c->iov, c->n_read, 16, &gs, sizeof(gs));
		if (rb_ndp_gpu_sum_check(&gs, err, sizeof(err))) {
			res.status = RB_NDP_S_BAD_REQUEST;
		} else if (!(r = rb_ndp_gpu_acquire(t, gs.key))) {
			res.status = rb_ndp_missing(gs.key, RB_NDP_S_NO_MEMORY);
			snprintf(err, sizeof(err), "no GPU region with key %u on this disk%s", gs.key,
				 res.status == RB_NDP_S_STATE_LOST ? " (a key from before the daemon restarted)"
								   : "");
		} else {
			/* The region is held: an UNREG_GPU meanwhile does not
			 * free it under the copy. */
			int rc = rb_gpu_region_sum(r, gs.offset, gs.len, &crc, err, sizeof(err));
			res.status = rc == 0 ? RB_NDP_S_OK : rc == -ERANGE ? RB_NDP_S_OUT_OF_RANGE : RB_NDP_S_IO_ERROR;
			res.sum = rc == 0 ? crc : 0;
			rb_gpu_region_put(r);
			rb_io_clock_stale(req->q->worker); /* up to tens of ms */
			/* Worker CPU like a program's: charged to the queue's
			 * credit (a byte summed as an instruction), so a ring
			 * full of sums takes one per round, not the worker
			 * that other VMs share for all of them. */
			req->q->ndp_credit -= (int64_t)gs.len;
		}
		if (res.status != RB_NDP_S_OK)
			rb_io_guest_log(req->q, "GPU_SUM refused (%s): %s", rb_ndp_status_name(res.status), err);
		rb_ndp_io_outcome(req, res.status);
		rb_iov_scatter(w, nw, 0, &res, sizeof(res));
	}
	rb_ndp_io_finish(req, status, RB_VIRTIO_BLK_S_OK, (uint32_t)(out_len + 1));
}
