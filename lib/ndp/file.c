/* SPDX-License-Identifier: MIT */
/*
 * Registered files' extent maps: translating a file range into disk pieces
 * (the hot path: a binary search, no allocation) and checking a REG_FILE's
 * map before it is kept.  Both are pure: they touch nothing but their
 * arguments, so they are tested on their own (tests/unit/test_ndp_files.c).
 */
#include "ndp_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define SECTOR RB_VIRTIO_BLK_SECTOR

/* The first extent whose file range ends after off (they are sorted and
 * disjoint, so ends are sorted too), or n. */
static uint32_t first_ending_after(const struct rb_ndp_extent *ext, uint32_t n, uint64_t off)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (ext[mid].file_off + ext[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int rb_ndp_file_translate(const struct rb_ndp_extent *ext, uint32_t n, uint64_t file_size,
			  uint64_t off, uint64_t len, uint64_t *disk_off, uint32_t *piece_len,
			  unsigned max)
{
	/* I/O is in whole sectors: the file's last, partial sector is its own. */
	uint64_t end_max = file_size > UINT64_MAX - (SECTOR - 1) ? UINT64_MAX - (SECTOR - 1)
								 : (file_size + SECTOR - 1) / SECTOR * SECTOR;
	unsigned k = 0;

	if (len > UINT32_MAX)
		return -E2BIG;
	if (len == 0 || off > end_max || len > end_max - off)
		return -EFBIG;
	uint32_t i = first_ending_after(ext, n, off);
	while (len) {
		if (i == n || ext[i].file_off > off)
			return -ENXIO; /* a hole, or past the map's last extent */
		uint64_t in = off - ext[i].file_off, c = ext[i].len - in;
		if (c > len)
			c = len;
		uint64_t d = ext[i].disk_off + in;
		if (k && disk_off[k - 1] + piece_len[k - 1] == d) {
			piece_len[k - 1] += (uint32_t)c; /* contiguous on the disk too: one I/O */
		} else {
			if (k == max)
				return -E2BIG;
			disk_off[k] = d;
			piece_len[k] = (uint32_t)c;
			k++;
		}
		off += c;
		len -= c;
		i++;
	}
	return (int)k;
}

static void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int by_disk_off(const void *a, const void *b)
{
	const struct rb_ndp_extent *x = *(const struct rb_ndp_extent *const *)a;
	const struct rb_ndp_extent *y = *(const struct rb_ndp_extent *const *)b;

	return x->disk_off < y->disk_off ? -1 : x->disk_off > y->disk_off;
}

int rb_ndp_file_check(const struct rb_ndp_reg_file *rf, const struct rb_ndp_extent *ext,
		      uint64_t disk_bytes, char *err, size_t errlen)
{
	if (rf->flags) {
		errf(err, errlen, "flags 0x%x set (none are defined)", rf->flags);
		return -EINVAL;
	}
	if (rf->n_extents == 0 || rf->n_extents > RB_NDP_MAX_EXTENTS) {
		errf(err, errlen, "%u extents (1..%u)", rf->n_extents, RB_NDP_MAX_EXTENTS);
		return -EINVAL;
	}
	if (rf->file_size > UINT64_MAX - (SECTOR - 1)) {
		errf(err, errlen, "file size %" PRIu64 " is not a size", rf->file_size);
		return -EINVAL;
	}
	uint64_t end_max = (rf->file_size + SECTOR - 1) / SECTOR * SECTOR;
	for (uint32_t i = 0; i < rf->n_extents; i++) {
		const struct rb_ndp_extent *e = &ext[i];
		if (e->len == 0 || e->file_off % SECTOR || e->disk_off % SECTOR || e->len % SECTOR) {
			errf(err, errlen,
			     "extent %u (file %" PRIu64 ", disk %" PRIu64 ", %" PRIu64 " bytes): empty or not in whole 512-byte sectors",
			     i, e->file_off, e->disk_off, e->len);
			return -EINVAL;
		}
		if (e->file_off > end_max || e->len > end_max - e->file_off) {
			errf(err, errlen,
			     "extent %u (file %" PRIu64 ", %" PRIu64 " bytes) ends past the file's %" PRIu64 " bytes (%" PRIu64 " in sectors)",
			     i, e->file_off, e->len, rf->file_size, end_max);
			return -EINVAL;
		}
		if (e->disk_off > disk_bytes || e->len > disk_bytes - e->disk_off) {
			errf(err, errlen,
			     "extent %u (disk %" PRIu64 ", %" PRIu64 " bytes) leaves the %" PRIu64 "-byte disk",
			     i, e->disk_off, e->len, disk_bytes);
			return -EINVAL;
		}
		if (i && e->file_off < ext[i - 1].file_off + ext[i - 1].len) {
			errf(err, errlen,
			     "extent %u (file %" PRIu64 ") is not after extent %u (file %" PRIu64 ", %" PRIu64 " bytes): the map must be sorted by file offset, without overlaps",
			     i, e->file_off, i - 1, ext[i - 1].file_off, ext[i - 1].len);
			return -EINVAL;
		}
	}
	/* No two extents share disk blocks: sorted by disk offset, each must
	 * end before the next begins. */
	const struct rb_ndp_extent **s = malloc(rf->n_extents * sizeof(*s));
	if (!s) {
		errf(err, errlen, "out of memory checking %u extents", rf->n_extents);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < rf->n_extents; i++)
		s[i] = &ext[i];
	qsort(s, rf->n_extents, sizeof(*s), by_disk_off);
	int rc = 0;
	for (uint32_t i = 1; i < rf->n_extents; i++)
		if (s[i]->disk_off < s[i - 1]->disk_off + s[i - 1]->len) {
			errf(err, errlen,
			     "extents %u and %u overlap on the disk (disk %" PRIu64 "+%" PRIu64 " and %" PRIu64 "+%" PRIu64 ")",
			     (unsigned)(s[i - 1] - ext), (unsigned)(s[i] - ext), s[i - 1]->disk_off,
			     s[i - 1]->len, s[i]->disk_off, s[i]->len);
			rc = -EINVAL;
			break;
		}
	free(s);
	return rc;
}
