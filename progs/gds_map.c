/* SPDX-License-Identifier: MIT */
/*
 * RosenGDS's sq program: a GPU read (RB_NDP_IO_F_GPU) names its destination
 * by a phony address (struct gds_map_meta, progs/gds_map.h); the program
 * finds the table entry whose range holds it and retargets the read to
 * (key, offset) of that GPU region with the rb_ndp_gpu_target helper.  It
 * never holds a pointer to the region: the device checks the key and the
 * bounds, and again when the program returns.  When no entry holds the
 * address, or the helper refuses, it still asks for the read, so that the
 * device ends the request with the reason (FAULT: no destination; the
 * helper's refusal otherwise); r0 says what the program saw.
 */
#include <rosen/prog.h>

#include "gds_map.h"

SEC("gds_map")
int gds_map_prog(struct rb_ndp_ctx *ctx)
{
	const struct gds_map_meta *m = (const struct gds_map_meta *)ctx->meta;
	__u64 dest = m->dest;
	__u32 n = m->n;

	if (n > GDS_MAP_MAX)
		n = GDS_MAP_MAX;
	for (__u32 i = 0; i < n; i++) {
		const struct gds_map_entry *e = &m->e[i];
		if (dest < e->phony || dest - e->phony >= e->len)
			continue;
		/* The range named must hold the whole read, not only its
		 * first byte; the device checks the region's bounds anyway. */
		if (ctx->next_len[0] > e->len - (dest - e->phony))
			break;
		rb_ndp_gpu_target(ctx, e->key, e->region_off + (dest - e->phony));
		break;
	}
	return RB_NDP_RESUBMIT;
}

char LICENSE[] SEC("license") = "MIT";
