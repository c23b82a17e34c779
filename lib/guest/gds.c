/* SPDX-License-Identifier: MIT */
/*
 * librosen's RosenGDS requests: REG_GPU, UNREG_GPU, GPU_SUM and the GPU
 * read (a READ_ND with RB_NDP_IO_F_GPU whose data never pass through this
 * process), laid out as docs/virtio-ndp.md says.  Region keys are the
 * device's own: a region does not survive a device restart, so unlike
 * programs it is not restored; its key then answers -ESTALE.
 */
#include "guest_internal.h"

#include <rosen/virtio_ndp.h>

#include <errno.h>
#include <string.h>

static int status_errno(uint32_t st)
{
	switch (st) {
	case RB_NDP_S_OK: return 0;
	case RB_NDP_S_NO_GPU: return -ENODEV;
	case RB_NDP_S_LIMIT: return -ENOSPC;
	case RB_NDP_S_NO_MEMORY: return -ENOENT;
	case RB_NDP_S_STATE_LOST: return -ESTALE;
	case RB_NDP_S_OUT_OF_RANGE: return -ERANGE;
	case RB_NDP_S_BAD_REQUEST: return -EINVAL;
	}
	return -EIO;
}

static int need_gds(struct rb_guest_dev *d)
{
	if (d->ndp && !(d->ndp_caps & RB_NDP_CAP_GDS)) {
		rb_guest_seterr("the device does not serve GPU regions (PROBE caps 0x%x)", d->ndp_caps);
		return -ENOTSUP;
	}
	return 0;
}

/* A control request with a fixed reply; the virtio status must be OK. */
static int control(struct rb_guest_dev *d, unsigned q, uint32_t type, const void *in, size_t in_len,
		   void *out, size_t out_len, const char *what)
{
	uint8_t vst;
	int rc = need_gds(d);

	if (!rc)
		rc = rb_guest_ndp_xfer(d, q, type, 0, in, in_len, out, out_len, &vst);
	if (rc == 0 && vst != RB_VIRTIO_BLK_S_OK) {
		rb_guest_seterr("the device failed the %s request (status %u)", what, vst);
		rc = vst == RB_VIRTIO_BLK_S_UNSUPP ? -ENOTSUP : -EIO;
	}
	return rc;
}

int rb_guest_ndp_reg_gpu(struct rb_guest_dev *d, unsigned q, uint32_t target, uint64_t size,
			 uint32_t *key)
{
	struct rb_ndp_reg_gpu rg = {.size = size, .target = target};
	struct rb_ndp_reg_result res;
	int rc = control(d, q, RB_NDP_T_REG_GPU, &rg, sizeof(rg), &res, sizeof(res), "REG_GPU");

	if (rc)
		return rc;
	if (res.status != RB_NDP_S_OK) {
		rb_guest_seterr(res.status == RB_NDP_S_NO_GPU
					? "no GPU: the device has no CUDA GPU for a %s region of %llu bytes (rosenbridged --gpu N on a machine with one)"
					: "GPU region (%s) of %llu bytes refused: %s",
				target == RB_GUEST_GPU_CUDA ? "cuda" : "host", (unsigned long long)size,
				rb_ndp_status_name(res.status));
		return status_errno(res.status);
	}
	*key = res.key;
	return 0;
}

int rb_guest_ndp_unreg_gpu(struct rb_guest_dev *d, unsigned q, uint32_t key)
{
	struct rb_ndp_unreg_gpu u = {.key = key};
	uint32_t st;
	int rc = control(d, q, RB_NDP_T_UNREG_GPU, &u, sizeof(u), &st, sizeof(st), "UNREG_GPU");

	if (rc)
		return rc;
	if (st != RB_NDP_S_OK)
		rb_guest_seterr("GPU region %u: %s", key, rb_ndp_status_name(st));
	return status_errno(st);
}

int rb_guest_ndp_gpu_sum(struct rb_guest_dev *d, unsigned q, uint32_t key, uint64_t offset,
			 uint64_t len, uint32_t *crc)
{
	struct rb_ndp_gpu_sum gs = {.key = key, .offset = offset, .len = len};
	struct rb_ndp_gpu_sum_result res;
	int rc = control(d, q, RB_NDP_T_GPU_SUM, &gs, sizeof(gs), &res, sizeof(res), "GPU_SUM");

	if (rc)
		return rc;
	if (res.status != RB_NDP_S_OK) {
		rb_guest_seterr("GPU_SUM of %llu bytes at %llu of region %u: %s", (unsigned long long)len,
				(unsigned long long)offset, key, rb_ndp_status_name(res.status));
		return status_errno(res.status);
	}
	*crc = (uint32_t)res.sum;
	return 0;
}

static int send_gds(struct rb_guest_dev *d, unsigned q, const struct rb_guest_gds *g,
		    struct rb_guest_nd_result *out)
{
	uint8_t in[sizeof(struct rb_ndp_io) + RB_NDP_MAX_META];
	struct rb_ndp_io io = {
		.handle = rb_guest_ndp_dev_handle(d, g->handle, false),
		.io_len = g->len, .meta_len = g->meta_len, .flags = RB_NDP_IO_F_GPU};
	struct rb_ndp_result res;
	uint8_t vst;

	memcpy(in, &io, sizeof(io));
	if (g->meta_len)
		memcpy(in + sizeof(io), g->meta, g->meta_len);
	int rc = rb_guest_ndp_xfer(d, q, RB_NDP_T_READ_ND, g->offset / 512, in,
				   sizeof(io) + g->meta_len, &res, sizeof(res), &vst);
	if (rc == 0 && vst != RB_VIRTIO_BLK_S_OK) {
		rb_guest_seterr("the device failed the GPU read (status %u)", vst);
		rc = vst == RB_VIRTIO_BLK_S_UNSUPP ? -ENOTSUP : -EIO;
	}
	if (rc)
		return rc;
	out->status = res.status;
	out->hops = res.hops;
	out->retval = res.retval;
	out->bytes = res.bytes;
	if (res.status != RB_NDP_S_OK)
		rb_guest_seterr("the GPU read ended with status %s", rb_ndp_status_name(res.status));
	return 0;
}

int rb_guest_read_gds(struct rb_guest_dev *d, unsigned q, const struct rb_guest_gds *g,
		      struct rb_guest_nd_result *out)
{
	int rc = need_gds(d);

	if (rc)
		return rc;
	if (g->offset % 512 || g->len == 0 || g->len % 512 || g->len > RB_NDP_MAX_GPU_READ ||
	    g->meta_len > RB_NDP_MAX_META || (g->meta_len && !g->meta)) {
		rb_guest_seterr("bad GPU read: offset %llu, len %u (512..%u, multiples of 512), meta %u",
				(unsigned long long)g->offset, g->len, RB_NDP_MAX_GPU_READ, g->meta_len);
		return -EINVAL;
	}
	unsigned gen = rb_guest_ndp_generation(d);
	rc = send_gds(d, q, g, out);
	/* A device restart lost the program (librosen loads it again) and
	 * the region (the caller must register it again): one retry tells
	 * which. */
	if (rc == 0 && out->status == RB_NDP_S_STATE_LOST && !rb_guest_ndp_restore(d, q, gen))
		rc = send_gds(d, q, g, out);
	return rc;
}
