/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk request parsing: splits a popped chain into a header (copied
 * once), the status byte and the data iovecs, and picks the status of
 * malformed requests.  It must never read a header or range byte twice from
 * guest memory, read past a segment, or write guest memory itself.
 */
#include "virtio_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

_Static_assert(sizeof(struct rb_virtio_blk_outhdr) == 16, "header layout");
_Static_assert(sizeof(struct rb_virtio_blk_discard_wz) == 16, "range layout");
/* QEMU 7.2 reads config bytes [0, 57): up to write_zeroes_may_unmap. */
_Static_assert(offsetof(struct rb_virtio_blk_config, write_zeroes_may_unmap) == 56,
	       "config layout");

/*
 * Copies up to `len` bytes from iov[*at .. end) into `dst`, taking them off
 * the front of the iovecs in place (an iovec used up advances *at).  The
 * bytes may be spread over any number of segments: with VERSION_1 the
 * driver may lay a request out however it likes.  Returns the bytes copied.
 */
static size_t take(struct iovec *iov, unsigned end, unsigned *at, void *dst,
		   size_t len)
{
	size_t got = 0;

	while (got < len && *at < end) {
		struct iovec *v = &iov[*at];
		size_t n = v->iov_len < len - got ? v->iov_len : len - got;

		rb_virtio_copy_once((char *)dst + got, v->iov_base, n);
		v->iov_base = (char *)v->iov_base + n;
		v->iov_len -= n;
		got += n;
		if (v->iov_len == 0)
			(*at)++;
	}
	return got;
}

static uint64_t iov_bytes(const struct iovec *iov, unsigned from, unsigned to)
{
	uint64_t n = 0;

	for (unsigned i = from; i < to; i++)
		n += iov[i].iov_len;
	return n;
}

/* Completes parsing with `status` and a message; the data is not to be
 * used, the status byte stays for the caller to write. */
static int __attribute__((format(printf, 5, 6)))
req_fail(struct rb_blk_req *req, int status, char *err, size_t errlen,
	 const char *fmt, ...)
{
	va_list ap;

	req->iov = NULL;
	req->iovcnt = 0;
	req->data_bytes = 0;
	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return status;
}

/* Sector data (IN, OUT): one direction only, whole sectors. */
static int check_rw(struct rb_blk_req *req, const char *name, uint64_t wrong,
		    uint64_t right, char *err, size_t errlen)
{
	if (wrong)
		return req_fail(req, RB_VIRTIO_BLK_S_IOERR, err, errlen,
				"%s request carries %" PRIu64
				" data bytes in the wrong direction",
				name, wrong);
	if (right % RB_VIRTIO_BLK_SECTOR)
		return req_fail(req, RB_VIRTIO_BLK_S_IOERR, err, errlen,
				"%s data of %" PRIu64
				" bytes is not a multiple of %u",
				name, right, RB_VIRTIO_BLK_SECTOR);
	return RB_VIRTIO_BLK_S_OK;
}

/*
 * DISCARD and WRITE_ZEROES: exactly one range (we advertise
 * max_discard_seg = max_write_zeroes_seg = 1), gathered into req->range.
 * Flags follow virtio 1.2, 5.2.6.2: an unknown flag, or unmap on a
 * discard, is UNSUPP (not IOERR): the request is well formed, we just do
 * not offer what it asks.
 */
static int parse_range(struct rb_virtq_chain *chain, unsigned at,
		       struct rb_blk_req *req, uint64_t rd, uint64_t wr,
		       char *err, size_t errlen)
{
	bool discard = req->hdr.type == RB_VIRTIO_BLK_T_DISCARD;
	const char *name = discard ? "DISCARD" : "WRITE_ZEROES";
	uint32_t allowed = discard ? 0 : 1; /* bit 0: unmap */

	if (wr)
		return req_fail(req, RB_VIRTIO_BLK_S_IOERR, err, errlen,
				"%s request carries %" PRIu64
				" device-writable data bytes", name, wr);
	if (rd != sizeof(req->range)) {
		if (rd > sizeof(req->range) && rd % sizeof(req->range) == 0)
			return req_fail(req, RB_VIRTIO_BLK_S_IOERR, err, errlen,
					"%s request with %" PRIu64
					" ranges; at most 1 is supported",
					name, rd / sizeof(req->range));
		return req_fail(req, RB_VIRTIO_BLK_S_IOERR, err, errlen,
				"%s range data is %" PRIu64 " bytes, needs %zu",
				name, rd, sizeof(req->range));
	}
	take(chain->iov, chain->n_read, &at, &req->range, sizeof(req->range));
	if (req->range.flags & ~allowed)
		return req_fail(req, RB_VIRTIO_BLK_S_UNSUPP, err, errlen,
				"%s range has unsupported flags 0x%" PRIx32,
				name, req->range.flags);
	req->iov = NULL;
	req->iovcnt = 0;
	req->data_bytes = 0;
	return RB_VIRTIO_BLK_S_OK;
}

int rb_blk_req_parse(struct rb_virtq_chain *chain, struct rb_blk_req *req,
		     char *err, size_t errlen)
{
	unsigned end = chain->n_segs, n_read = chain->n_read, at = 0;
	struct iovec *last;
	uint64_t rd, wr;
	size_t got;

	memset(req, 0, sizeof(*req));
	if (n_read > end || end > RB_VIRTQ_MAX_SEGS) {
		rb_virtio_errf(err, errlen, "chain %u: inconsistent segment counts",
			       chain->head);
		return -EINVAL;
	}
	/* rb_virtq_pop() stores no empty segment; a hand-built chain might. */
	while (end > n_read && chain->iov[end - 1].iov_len == 0)
		end--;
	if (end == n_read) {
		rb_virtio_errf(err, errlen,
			       "chain %u: no device-writable byte for the status",
			       chain->head);
		return -EINVAL;
	}
	last = &chain->iov[end - 1];
	last->iov_len--;
	req->status = (uint8_t *)last->iov_base + last->iov_len;
	if (last->iov_len == 0)
		end--;

	got = take(chain->iov, n_read, &at, &req->hdr, sizeof(req->hdr));
	if (got < sizeof(req->hdr))
		return req_fail(req, RB_VIRTIO_BLK_S_IOERR, err, errlen,
				"chain %u: request header is %zu device-readable "
				"bytes, needs %zu",
				chain->head, got, sizeof(req->hdr));
	rd = iov_bytes(chain->iov, at, n_read);
	wr = iov_bytes(chain->iov, n_read, end);
	req->iov = &chain->iov[at];
	req->iovcnt = end - at;
	req->data_bytes = rd + wr;

	switch (req->hdr.type) {
	case RB_VIRTIO_BLK_T_IN:
		return check_rw(req, "IN", rd, wr, err, errlen);
	case RB_VIRTIO_BLK_T_OUT:
		return check_rw(req, "OUT", wr, rd, err, errlen);
	case RB_VIRTIO_BLK_T_FLUSH:
		/* Nothing to transfer; buffers a driver added are ignored,
		 * as QEMU does. */
		req->iov = NULL;
		req->iovcnt = 0;
		req->data_bytes = 0;
		return RB_VIRTIO_BLK_S_OK;
	case RB_VIRTIO_BLK_T_GET_ID:
		if (rd)
			return req_fail(req, RB_VIRTIO_BLK_S_IOERR, err, errlen,
					"GET_ID request carries %" PRIu64
					" device-readable data bytes", rd);
		if (wr < RB_VIRTIO_BLK_ID_BYTES)
			return req_fail(req, RB_VIRTIO_BLK_S_IOERR, err, errlen,
					"GET_ID buffer is %" PRIu64
					" bytes, needs %u",
					wr, RB_VIRTIO_BLK_ID_BYTES);
		return RB_VIRTIO_BLK_S_OK;
	case RB_VIRTIO_BLK_T_DISCARD:
	case RB_VIRTIO_BLK_T_WRITE_ZEROES:
		return parse_range(chain, at, req, rd, wr, err, errlen);
	default:
		return req_fail(req, RB_VIRTIO_BLK_S_UNSUPP, err, errlen,
				"unknown request type %" PRIu32, req->hdr.type);
	}
}

bool rb_blk_range_ok(uint64_t sector, uint64_t bytes, uint64_t capacity_sectors)
{
	/* A partial sector still touches that sector. */
	uint64_t count = bytes / RB_VIRTIO_BLK_SECTOR +
			 (bytes % RB_VIRTIO_BLK_SECTOR != 0);

	if (sector > UINT64_MAX / RB_VIRTIO_BLK_SECTOR)
		return false; /* its byte offset overflows */
	if (bytes > UINT64_MAX - sector * RB_VIRTIO_BLK_SECTOR)
		return false; /* its end offset overflows */
	return sector <= capacity_sectors && count <= capacity_sectors - sector;
}
