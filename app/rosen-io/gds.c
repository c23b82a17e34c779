/* SPDX-License-Identifier: MIT */
/*
 * rosen-io gds-read: one RosenGDS read end to end, the way an application
 * would do it -- a GPU region, progs/gds_map.o mapping a phony destination
 * address to it, one READ_ND -- and its check: the region's CRC-32 as the
 * device reads it back (GPU_SUM) against the CRC-32 of the same disk range
 * read through the normal path.  Results on stdout as key: value lines.
 */
#include "gds.h"

#include <rosen/gpu.h>
#include <rosen/virtio_ndp.h>

#include "../../progs/gds_map.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PHONY 0x7e0000000000ull /* the guest's name for the region's start */
#define NORMAL_CHUNK (1u << 20)

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* The CRC-32 of [off, off + len) of the device, read the normal way. */
static int normal_crc(struct rb_guest_dev *d, uint64_t off, uint64_t len, uint32_t *crc)
{
	uint8_t *buf = rb_guest_dma_alloc(d, NORMAL_CHUNK);
	uint32_t c = 0;

	if (!buf) {
		fprintf(stderr, "rosen-io gds-read: no DMA memory for the normal read\n");
		return -1;
	}
	for (uint64_t at = 0; at < len; at += NORMAL_CHUNK) {
		size_t n = len - at < NORMAL_CHUNK ? (size_t)(len - at) : NORMAL_CHUNK;
		if (rb_guest_read(d, 0, buf, off + at, n)) {
			fprintf(stderr, "rosen-io gds-read: normal read at %" PRIu64 ": %s\n", off + at,
				rb_guest_errmsg());
			rb_guest_dma_free(d, buf);
			return -1;
		}
		c = rb_gpu_crc32(c, buf, n);
	}
	rb_guest_dma_free(d, buf);
	*crc = c;
	return 0;
}

int cmd_gds_read(struct rb_guest_dev *d, int argc, char **argv)
{
	uint64_t off, len;
	uint32_t target = RB_GUEST_GPU_HOST;

	if (argc < 2) {
		fprintf(stderr, "usage: rosen-io URI gds-read OFFSET LENGTH [--target host|cuda]\n");
		return 2;
	}
	if (parse_aligned("OFFSET", argv[0], &off) || parse_aligned("LENGTH", argv[1], &len))
		return 2;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--target") && i + 1 < argc &&
		    (!strcmp(argv[i + 1], "host") || !strcmp(argv[i + 1], "cuda"))) {
			target = !strcmp(argv[++i], "cuda") ? RB_GUEST_GPU_CUDA : RB_GUEST_GPU_HOST;
		} else {
			fprintf(stderr, "rosen-io gds-read: unknown or incomplete option '%s' (--target host|cuda)\n",
				argv[i]);
			return 2;
		}
	}
	if (len == 0 || len > RB_NDP_MAX_GPU_READ) {
		fprintf(stderr, "rosen-io gds-read: LENGTH must be 512..%u bytes\n", RB_NDP_MAX_GPU_READ);
		return 2;
	}
	struct rb_guest_info info;
	rb_guest_info(d, &info);
	if (off > info.capacity_bytes || len > info.capacity_bytes - off) {
		fprintf(stderr, "rosen-io gds-read: %" PRIu64 " bytes at %" PRIu64 " run past the end of the %" PRIu64 "-byte device\n",
			len, off, info.capacity_bytes);
		return 1;
	}
	uint32_t key, handle, region_crc = 0, file_crc = 0;
	int rc = rb_guest_ndp_reg_gpu(d, 0, target, len, &key);
	if (rc) {
		/* NO_GPU says so by name: "no GPU: the device has no CUDA GPU ..." */
		fprintf(stderr, "rosen-io gds-read: %s\n", rb_guest_errmsg());
		return 1;
	}
	int ret = 1;
	if (load_prog(d, "gds_map.o", "gds_map", RB_NDP_PROG_SQ, &handle))
		goto unreg;
	struct gds_map_meta m = {.dest = PHONY, .n = 1};
	m.e[0] = (struct gds_map_entry){.phony = PHONY, .len = len, .region_off = 0, .key = key};
	struct rb_guest_gds g = {.handle = handle, .offset = off, .len = (uint32_t)len, .meta = &m,
				 .meta_len = sizeof(m)};
	struct rb_guest_nd_result res = {0};
	double t0 = now_us();
	rc = rb_guest_read_gds(d, 0, &g, &res);
	double t1 = now_us();
	rb_guest_ndp_unload(d, 0, handle);
	if (rc || res.status != RB_NDP_S_OK) {
		fprintf(stderr, "rosen-io gds-read: %s\n", rb_guest_errmsg());
		goto unreg;
	}
	if (rb_guest_ndp_gpu_sum(d, 0, key, 0, len, &region_crc)) {
		fprintf(stderr, "rosen-io gds-read: GPU_SUM: %s\n", rb_guest_errmsg());
		goto unreg;
	}
	if (normal_crc(d, off, len, &file_crc))
		goto unreg;
	printf("target: %s\noffset: %" PRIu64 "\nbytes: %" PRIu64 "\nhops: %u\ngds_us: %.0f\nregion_crc32: 0x%08x\nfile_crc32: 0x%08x\nmatch: %s\n",
	       target == RB_GUEST_GPU_CUDA ? "cuda" : "host", off, res.bytes, res.hops, t1 - t0,
	       region_crc, file_crc, region_crc == file_crc && res.bytes == len ? "yes" : "no");
	ret = region_crc == file_crc && res.bytes == len ? 0 : 1;
	if (ret)
		fprintf(stderr, "rosen-io gds-read: the region does not hold the range's bytes\n");
unreg:
	rb_guest_ndp_unreg_gpu(d, 0, key);
	return ret;
}
