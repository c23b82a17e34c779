/* SPDX-License-Identifier: MIT */
/*
 * NDP test programs for file requests (tests/ndp/test_ndp.c): what a
 * program is shown and what the helpers answer when the request's offsets
 * are a registered file's.  Apart from ndp_progs.o so that object keeps
 * its size (test_ndp_bad_input.py splits it over at most 256 descriptors).
 */
#include <rosen/prog.h>

/* cq on a file request: meta = {u64 probe[4]; u64 stride; u64 hops};
 * records per hop the offset the program is shown (ctx->offset) and the
 * first 8 bytes read, and on the first hop what disk_trans answers for
 * the probes; then reads the 512 bytes `stride` further on, `hops` times
 * (at most 4). */
struct view_meta {
	__u64 probe[4];
	__u64 stride;
	__u64 hops;
};
struct view_scratch {
	__u64 hops;
	__u64 off[4];
	__u64 head[4];
	__s64 trans[4];
};

SEC("cq_file_view")
int cq_file_view_prog(struct rb_ndp_ctx *ctx)
{
	const struct view_meta *m = (const struct view_meta *)ctx->meta;
	struct view_scratch *s = (struct view_scratch *)ctx->scratch;
	__u64 h = s->hops & 3;

	s->off[h] = ctx->offset;
	s->head[h] = *(const __u64 *)ctx->data;
	if (s->hops == 0) {
		s->trans[0] = (__s64)rb_ndp_disk_trans(ctx, m->probe[0]);
		s->trans[1] = (__s64)rb_ndp_disk_trans(ctx, m->probe[1]);
		s->trans[2] = (__s64)rb_ndp_disk_trans(ctx, m->probe[2]);
		s->trans[3] = (__s64)rb_ndp_disk_trans(ctx, m->probe[3]);
	}
	s->hops++;
	if (s->hops >= m->hops || s->hops >= 4)
		return RB_NDP_OK;
	ctx->n_next = 1;
	ctx->next_off[0] = ctx->offset + m->stride;
	ctx->next_len[0] = 512;
	return RB_NDP_RESUBMIT;
}

char LICENSE[] SEC("license") = "MIT";
