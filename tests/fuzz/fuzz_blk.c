/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for virtio-blk request parsing (lib/virtio/blk.c): any
 * chain a driver can make (what rb_virtq_pop() hands over: non-empty
 * segments, readable ones first) becomes a request, or the status it must
 * be completed with.  Each segment is its own heap buffer, so ASan sees a
 * read or write one byte past it.  The verdict is checked against a
 * reference model of the rules rosen/virtio.h states, the data iovecs
 * against the segments they came from (never the header, never the status
 * byte), and rb_blk_range_ok() against 128-bit arithmetic.
 *
 * Input (little-endian; missing bytes are zero):
 *   [0]      number of segments - 1 (1..256)
 *   [1]      readable segments (% (segments + 1))
 *   [2..25]  sector, bytes, capacity for rb_blk_range_ok()
 *   then one u16 length per segment (% 8192 + 1), then the segments'
 *   bytes, one after the other.
 */
#include "fuzz_common.h"

#include <rosen/virtio.h>

#include <errno.h>

#define T "fuzz_blk"

static struct rb_virtq_chain g_chain;
static uint8_t *g_seg[RB_VIRTQ_MAX_SEGS];
static size_t g_len[RB_VIRTQ_MAX_SEGS];

/* The segment that holds [p, p + len), or -1. */
static int seg_of(const void *p, size_t len, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uintptr_t a = (uintptr_t)p, lo = (uintptr_t)g_seg[i];
		if (a >= lo && a - lo < g_len[i] && len <= g_len[i] - (a - lo))
			return (int)i;
	}
	return -1;
}

/* The model: what rosen/virtio.h says the verdict is. */
static int model(uint64_t rd, uint64_t wr, const uint8_t *hdr_range)
{
	struct rb_virtio_blk_outhdr h;
	struct rb_virtio_blk_discard_wz r;

	if (rd < sizeof(h))
		return RB_VIRTIO_BLK_S_IOERR;
	memcpy(&h, hdr_range, sizeof(h));
	memcpy(&r, hdr_range + sizeof(h), sizeof(r));
	uint64_t drd = rd - sizeof(h), dwr = wr - 1;
	switch (h.type) {
	case RB_VIRTIO_BLK_T_IN:
		return drd || dwr % 512 ? RB_VIRTIO_BLK_S_IOERR : RB_VIRTIO_BLK_S_OK;
	case RB_VIRTIO_BLK_T_OUT:
		return dwr || drd % 512 ? RB_VIRTIO_BLK_S_IOERR : RB_VIRTIO_BLK_S_OK;
	case RB_VIRTIO_BLK_T_FLUSH:
		return RB_VIRTIO_BLK_S_OK;
	case RB_VIRTIO_BLK_T_GET_ID:
		return drd || dwr < RB_VIRTIO_BLK_ID_BYTES ? RB_VIRTIO_BLK_S_IOERR : RB_VIRTIO_BLK_S_OK;
	case RB_VIRTIO_BLK_T_DISCARD:
	case RB_VIRTIO_BLK_T_WRITE_ZEROES:
		if (dwr || drd != sizeof(r))
			return RB_VIRTIO_BLK_S_IOERR;
		return r.flags & ~(h.type == RB_VIRTIO_BLK_T_DISCARD ? 0u : 1u) ? RB_VIRTIO_BLK_S_UNSUPP
										 : RB_VIRTIO_BLK_S_OK;
	}
	return RB_VIRTIO_BLK_S_UNSUPP;
}

static void check_range_ok(uint64_t sector, uint64_t bytes, uint64_t cap)
{
	unsigned __int128 start = (unsigned __int128)sector * 512;
	unsigned __int128 end = start + bytes;
	unsigned __int128 count = ((unsigned __int128)bytes + 511) / 512;
	bool want = end <= UINT64_MAX && (unsigned __int128)sector + count <= cap;

	if (rb_blk_range_ok(sector, bytes, cap) != want)
		fz_bug(T, "rb_blk_range_ok(%llu, %llu, %llu) = %d", (unsigned long long)sector,
		       (unsigned long long)bytes, (unsigned long long)cap, !want);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct fz f = {d, n, 0};
	struct rb_blk_req req;
	char err[256];
	static uint8_t readable[2 * sizeof(struct rb_virtio_blk_outhdr)];

	unsigned ns = fz_u8(&f) + 1u;
	unsigned nr = fz_u8(&f) % (ns + 1);
	uint64_t sector = fz_u64(&f), bytes = fz_u64(&f), cap = fz_u64(&f);
	check_range_ok(sector, bytes, cap);

	uint64_t rd = 0, wr = 0;
	for (unsigned i = 0; i < ns; i++)
		g_len[i] = fz_u16(&f) % 8192 + 1;
	memset(readable, 0, sizeof(readable));
	for (unsigned i = 0; i < ns; i++) {
		g_seg[i] = malloc(g_len[i]);
		if (!g_seg[i])
			abort();
		fz_bytes(&f, g_seg[i], g_len[i]);
		if (i < nr) {
			if (rd < sizeof(readable))
				memcpy(readable + rd, g_seg[i],
				       g_len[i] < sizeof(readable) - rd ? g_len[i] : sizeof(readable) - rd);
			rd += g_len[i];
		} else {
			wr += g_len[i];
		}
		g_chain.iov[i] = (struct iovec){g_seg[i], g_len[i]};
	}
	g_chain.head = 0;
	g_chain.n_segs = ns;
	g_chain.n_read = nr;
	g_chain.read_bytes = rd;
	g_chain.write_bytes = wr;

	int st = rb_blk_req_parse(&g_chain, &req, err, sizeof(err));
	if (nr == ns) {
		if (st != -EINVAL)
			fz_bug(T, "a chain without a writable byte parsed (%d)", st);
		goto out;
	}
	if (req.status != g_seg[ns - 1] + g_len[ns - 1] - 1)
		fz_bug(T, "the status byte is not the last writable byte");
	int want = model(rd, wr, readable);
	if (st != want)
		fz_bug(T, "status %d, the model says %d (type %u, %llu readable, %llu writable): %s", st,
		       want, req.hdr.type, (unsigned long long)rd, (unsigned long long)wr,
		       st ? err : "");
	if (rd >= sizeof(req.hdr) && memcmp(&req.hdr, readable, sizeof(req.hdr)))
		fz_bug(T, "the header is not the first 16 readable bytes");
	if (st != RB_VIRTIO_BLK_S_OK) {
		if (req.iov || req.iovcnt || req.data_bytes)
			fz_bug(T, "a failed request left data iovecs");
		goto out;
	}
	if (req.hdr.type == RB_VIRTIO_BLK_T_DISCARD || req.hdr.type == RB_VIRTIO_BLK_T_WRITE_ZEROES) {
		if (memcmp(&req.range, readable + sizeof(req.hdr), sizeof(req.range)) || req.iovcnt)
			fz_bug(T, "the range is not the 16 bytes after the header");
		goto out;
	}
	/* The data: inside the segments, in the right direction, never the
	 * header or the status byte, adding up. */
	uint64_t sum = 0;
	for (unsigned i = 0; i < req.iovcnt; i++) {
		const struct iovec *v = &req.iov[i];
		int s = seg_of(v->iov_base, v->iov_len, ns);
		if (v->iov_len == 0)
			continue; /* an iovec left empty by trimming carries nothing */
		if (s < 0)
			fz_bug(T, "data iovec %u is not inside one segment", i);
		bool writable = (unsigned)s >= nr;
		if (writable != (req.hdr.type == RB_VIRTIO_BLK_T_IN ||
				 req.hdr.type == RB_VIRTIO_BLK_T_GET_ID))
			fz_bug(T, "data iovec %u points the wrong way (segment %d)", i, s);
		if ((uint8_t *)v->iov_base <= req.status &&
		    req.status < (uint8_t *)v->iov_base + v->iov_len)
			fz_bug(T, "data iovec %u covers the status byte", i);
		/* Its place in the readable stream: past the header. */
		uint64_t pos = (uint64_t)((uint8_t *)v->iov_base - g_seg[s]);
		for (int k = 0; k < s; k++)
			pos += g_len[k];
		if (!writable && pos < sizeof(req.hdr))
			fz_bug(T, "data iovec %u covers header byte %llu", i, (unsigned long long)pos);
		sum += v->iov_len;
		/* What the device does with it: every byte. */
		if (writable)
			memset(v->iov_base, 0x5a, v->iov_len);
		else
			for (size_t k = 0; k < v->iov_len; k++)
				(void)*(volatile uint8_t *)((uint8_t *)v->iov_base + k);
	}
	if (sum != req.data_bytes)
		fz_bug(T, "data iovecs hold %llu bytes, data_bytes says %llu",
		       (unsigned long long)sum, (unsigned long long)req.data_bytes);
	/* The header's bytes in guest memory must not be data: an OUT's data
	 * is exactly the readable bytes after it. */
	if (req.hdr.type == RB_VIRTIO_BLK_T_OUT && req.data_bytes != rd - sizeof(req.hdr))
		fz_bug(T, "OUT data of %llu bytes, %llu readable after the header",
		       (unsigned long long)req.data_bytes, (unsigned long long)(rd - sizeof(req.hdr)));
	if ((req.hdr.type == RB_VIRTIO_BLK_T_IN || req.hdr.type == RB_VIRTIO_BLK_T_GET_ID) &&
	    req.data_bytes != wr - 1)
		fz_bug(T, "IN data of %llu bytes, %llu writable before the status",
		       (unsigned long long)req.data_bytes, (unsigned long long)(wr - 1));
out:
	for (unsigned i = 0; i < ns; i++)
		free(g_seg[i]);
	return 0;
}

/* ---- seeds ------------------------------------------------------------------------ */

static void seed(const char *dir, const char *name, const uint16_t *lens, unsigned ns,
		 unsigned nr, const void *hdr, size_t hdr_len, int *bad)
{
	struct fz_buf b = {0};
	size_t total = 0;

	FZ_PUT(&b, uint8_t, ns - 1);
	FZ_PUT(&b, uint8_t, nr);
	FZ_PUT(&b, uint64_t, 8);
	FZ_PUT(&b, uint64_t, 4096);
	FZ_PUT(&b, uint64_t, 2048);
	for (unsigned i = 0; i < ns; i++) {
		FZ_PUT(&b, uint16_t, lens[i] - 1);
		total += lens[i];
	}
	uint8_t *bytes = calloc(1, total);
	memcpy(bytes, hdr, hdr_len < total ? hdr_len : total);
	fz_put(&b, bytes, total);
	*bad |= fz_write_seed(dir, name, b.p, b.len);
	free(bytes);
	free(b.p);
}

static int write_seeds(const char *dir)
{
	struct {
		struct rb_virtio_blk_outhdr h;
		struct rb_virtio_blk_discard_wz r;
	} m = {{RB_VIRTIO_BLK_T_IN, 0, 8}, {8, 16, 0}};
	int bad = 0;

	seed(dir, "in", (uint16_t[]){16, 4096, 1}, 3, 1, &m, 16, &bad);
	m.h.type = RB_VIRTIO_BLK_T_OUT;
	seed(dir, "out", (uint16_t[]){16, 512, 512, 1}, 4, 3, &m, 16, &bad);
	seed(dir, "out_header_shares_data", (uint16_t[]){1040, 1}, 2, 1, &m, 16, &bad);
	seed(dir, "out_split_header", (uint16_t[]){3, 5, 8, 512, 1}, 5, 4, &m, 16, &bad);
	m.h.type = RB_VIRTIO_BLK_T_FLUSH;
	seed(dir, "flush", (uint16_t[]){16, 1}, 2, 1, &m, 16, &bad);
	m.h.type = RB_VIRTIO_BLK_T_GET_ID;
	seed(dir, "get_id", (uint16_t[]){16, 21}, 2, 1, &m, 16, &bad);
	m.h.type = RB_VIRTIO_BLK_T_DISCARD;
	seed(dir, "discard", (uint16_t[]){16, 16, 1}, 3, 2, &m, 32, &bad);
	m.h.type = RB_VIRTIO_BLK_T_WRITE_ZEROES;
	m.r.flags = 1;
	seed(dir, "write_zeroes_unmap", (uint16_t[]){32, 1}, 2, 1, &m, 32, &bad);
	m.h.type = 0x52420004u; /* an NDP type: not virtio-blk's */
	seed(dir, "unknown_type", (uint16_t[]){16, 1}, 2, 1, &m, 16, &bad);
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
