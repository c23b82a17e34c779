/* SPDX-License-Identifier: MIT */
/*
 * Parsing READ_ND/WRITE_ND chains (docs/virtio-ndp.md): the readable part
 * is gathered once into the request's own buffer and checked field by
 * field against the lengths of the descriptors; the writable part is only
 * located.  Nothing here is read twice from guest memory.
 */
#include "ndp_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

size_t rb_iov_scatter(const struct iovec *iov, unsigned n, size_t offset, const void *src,
		      size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		size_t c = iov[i].iov_len - offset;
		if (c > len - done)
			c = len - done;
		memcpy((uint8_t *)iov[i].iov_base + offset, (const uint8_t *)src + done, c);
		done += c;
		offset = 0;
	}
	return done;
}

size_t rb_iov_gather(const struct iovec *iov, unsigned n, size_t offset, void *dst, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		size_t c = iov[i].iov_len - offset;
		if (c > len - done)
			c = len - done;
		memcpy((uint8_t *)dst + done, (const uint8_t *)iov[i].iov_base + offset, c);
		__asm__ __volatile__("" ::: "memory"); /* use the copy, not guest memory */
		done += c;
		offset = 0;
	}
	return done;
}

int rb_ndp_req_parse(struct rb_virtq_chain *chain, struct rb_ndp_req *r, bool *can_reply,
		     char *err, size_t errlen)
{
	struct iovec *w = chain->iov + chain->n_read;
	unsigned nw = chain->n_segs - chain->n_read;
	uint64_t rbytes = chain->read_bytes, wbytes = chain->write_bytes;
	const size_t fixed = 16 + sizeof(struct rb_ndp_io);

	*can_reply = false;
	/* Writable tail: result struct and status byte are always last. */
	if (nw == 0 || wbytes < sizeof(struct rb_ndp_result) + 1) {
		errf(err, errlen, "no room for the result and status (%llu writable bytes)",
		     (unsigned long long)wbytes);
		return -EINVAL;
	}
	struct iovec *last = &w[nw - 1];
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	r->wiov = w;
	r->wiovcnt = nw;
	*can_reply = true;

	if (rbytes < fixed || rbytes > sizeof(r->buf)) {
		errf(err, errlen, "readable part of %llu bytes (expected %zu..%zu)",
		     (unsigned long long)rbytes, fixed, sizeof(r->buf));
		return -EINVAL;
	}
	rb_iov_gather(chain->iov, chain->n_read, 0, r->buf, (size_t)rbytes);
	struct rb_virtio_blk_outhdr hdr;
	memcpy(&hdr, r->buf, sizeof(hdr));
	memcpy(&r->io, r->buf + 16, sizeof(r->io));
	r->type = hdr.type;
	r->sector = hdr.sector;
	const struct rb_ndp_io *io = &r->io;
	/* file_key names a file only with RB_NDP_IO_F_FILE; 0 never does. */
	if ((io->flags & ~RB_NDP_IO_F_KNOWN) || (io->file_key && !(io->flags & RB_NDP_IO_F_FILE))) {
		errf(err, errlen, "reserved fields set (flags 0x%x, file_key %u)", io->flags,
		     io->file_key);
		return -EINVAL;
	}
	if ((io->flags & RB_NDP_IO_F_FILE) && !io->file_key) {
		errf(err, errlen, "file request (flags 0x%x) without a file key", io->flags);
		return -EINVAL;
	}
	/* A GPU read: its data go to a region, never into the request. */
	bool gpu = io->flags & RB_NDP_IO_F_GPU;
	if (gpu && (r->type != RB_NDP_T_READ_ND || (io->flags & RB_NDP_IO_F_FILE) || io->data_len)) {
		errf(err, errlen,
		     "GPU read (flags 0x%x): READ_ND only, not on a file, with data_len 0 (got %u)",
		     io->flags, io->data_len);
		return -EINVAL;
	}
	uint32_t max_io = gpu ? RB_NDP_MAX_GPU_READ : RB_NDP_MAX_DATA;
	if (io->meta_len > RB_NDP_MAX_META || io->scratch_len > RB_NDP_MAX_SCRATCH ||
	    io->data_len > RB_NDP_MAX_DATA || io->io_len == 0 || io->io_len > max_io ||
	    io->io_len % RB_VIRTIO_BLK_SECTOR || io->max_hops > RB_NDP_MAX_HOPS) {
		errf(err, errlen,
		     "limits: meta %u (max %u), scratch %u (max %u), data %u (max %u), first I/O %u (512..%u, multiple of 512), hops %u (max %u)",
		     io->meta_len, RB_NDP_MAX_META, io->scratch_len, RB_NDP_MAX_SCRATCH, io->data_len,
		     RB_NDP_MAX_DATA, io->io_len, max_io, io->max_hops, RB_NDP_MAX_HOPS);
		return -EINVAL;
	}
	bool write = r->type == RB_NDP_T_WRITE_ND;
	uint64_t want_r = fixed + io->meta_len + io->scratch_len + (write ? io->data_len : 0);
	uint64_t want_w = (write ? 0 : io->data_len) + io->scratch_len + sizeof(struct rb_ndp_result) + 1;
	if (rbytes != want_r || wbytes != want_w) {
		errf(err, errlen,
		     "descriptor lengths do not match the request: readable %llu (expected %llu), writable %llu (expected %llu)",
		     (unsigned long long)rbytes, (unsigned long long)want_r, (unsigned long long)wbytes,
		     (unsigned long long)want_w);
		return -EINVAL;
	}
	if (write && io->data_len != io->io_len) {
		errf(err, errlen, "WRITE_ND carries %u data bytes for a %u-byte write", io->data_len,
		     io->io_len);
		return -EINVAL;
	}
	r->meta = r->buf + fixed;
	r->scratch_in = r->meta + io->meta_len;
	r->wdata = write ? r->scratch_in + io->scratch_len : NULL;
	return 0;
}
